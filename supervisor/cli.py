"""`kernelsvc start`: parse options, bind the public sockets, run the supervisor."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import click
import structlog
import zmq

from kernelsvc.supervisor import __version__, gateway, gateway_requests, kernelspec
from kernelsvc.supervisor.config import Config, RestartMode, default_restart_mode
from kernelsvc.supervisor.connection import (
    ConnectionInfo,
    load_connection_file,
    new_connection,
    write_connection,
)
from kernelsvc.supervisor.earlybind import take_bound
from kernelsvc.supervisor.errors import SupervisorError
from kernelsvc.supervisor.gateway import GatewayConfig, parse_port_range
from kernelsvc.supervisor.health import check_health
from kernelsvc.supervisor.heartbeat import Heartbeat
from kernelsvc.supervisor.limits import parse_size, resolve_limits
from kernelsvc.supervisor.logconfig import configure_logging
from kernelsvc.supervisor.loop import Supervisor
from kernelsvc.supervisor.restart_policy import RestartPolicy
from kernelsvc.supervisor.sockets import bind_public, private_endpoint_dir

log = structlog.get_logger("kernelsvc.supervisor")


@click.group()
@click.version_option(__version__, prog_name="kernelsvc")
def main() -> None:
    """kernelsvc: a Jupyter kernel that survives its user's code."""


@main.command()
@click.option(
    "--connection-file",
    "-f",
    "connection_file",
    required=True,
    type=click.Path(path_type=Path),
    help="Use this connection file if it exists; otherwise create it (and remove it on exit).",
)
@click.option("--ip", default="127.0.0.1", show_default=True, help="IP to bind for a new file.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default="auto",
    show_default=True,
)
@click.option("--boot-retries", default=5, show_default=True, type=click.IntRange(1),
              help="Failed worker starts in a row before the kernel reports itself dead.")
@click.option("--max-backoff", default=5.0, show_default=True, type=click.FloatRange(0.01),
              help="Longest wait, in seconds, between two tries to start a worker.")
@click.option("--restart-mode", type=click.Choice([m.value for m in RestartMode]),
              default=None, help="What shutdown_request(restart=True) does: restart the worker "
              "behind the same sockets, or exit. Default: exit when launched by jupyter_client "
              "(JPY_PARENT_PID is set), else in-place.")
@click.option("--preload", default="", metavar="MODULES",
              help="Comma-separated modules to import once in the fork server (e.g. "
              "numpy,pandas), so a restarted worker has them at no cost.")
@click.option("--memory-limit", default=None, metavar="SIZE",
              help="Stop and restart a worker whose process tree passes SIZE (e.g. 2G); a "
              "warning shows in the cell at 80%. Default: from the cgroup's memory limit.")
@click.option("--cell-timeout", default=None, type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Interrupt a cell running longer (per request: "
              "execute_request metadata {'timeout': seconds}).")
@click.option("--interrupt-timeout", default=3.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Restart a worker that has not ended an interrupted cell by then.")
@click.option("--max-message-size", default="1G", show_default=True, metavar="SIZE",
              help="Refuse inbound messages larger than this (an error reply when possible).")
@click.option("--max-output-bytes", default=None, metavar="SIZE",
              help="Per request, keep this much stream output (its head and its tail) and "
              "say how much of the middle was left out.")
@click.option("--gateway-response-address", default=None, metavar="HOST:PORT",
              help="Enterprise Gateway mode: send the connection info here (encrypted).")
@click.option("--gateway-public-key", default=None, metavar="B64",
              help="Enterprise Gateway mode: the gateway's public key.")
@click.option("--gateway-port-range", default=None, metavar="LOW..HIGH",
              help="Enterprise Gateway mode: choose every port in this range.")
@click.option("--gateway-kernel-id", default="", metavar="ID",
              help="Enterprise Gateway mode: the kernel id to report.")
def start(connection_file: Path, ip: str, log_level: str, log_format: str, boot_retries: int,
          max_backoff: float, restart_mode: str | None, preload: str, memory_limit: str | None,
          cell_timeout: float | None, interrupt_timeout: float, max_message_size: str,
          max_output_bytes: str | None, gateway_response_address: str | None,
          gateway_public_key: str | None, gateway_port_range: str | None,
          gateway_kernel_id: str) -> None:
    """Start the kernel service on CONNECTION_FILE's sockets."""
    configure_logging(log_level, log_format)
    mode = RestartMode(restart_mode) if restart_mode else default_restart_mode(os.environ)
    try:
        limits = resolve_limits(memory_limit, cell_timeout, interrupt_timeout)
        max_size = parse_size(max_message_size)
        max_output = (parse_size(max_output_bytes) or None) if max_output_bytes else None  # 0: none
    except ValueError as exc:
        click.echo(f"kernelsvc: error: size option: {exc}", err=True)
        sys.exit(2)
    config = Config(
        restart_mode=mode,
        limits=limits,
        max_message_size=max_size,
        max_output_bytes=max_output,
        preload=preload,
        connection_file=connection_file,
        ip=ip,
        log_level=log_level,
        log_format=log_format,
        restart_policy=RestartPolicy(budget=boot_retries, max_delay=max_backoff),
    )
    try:
        if gateway_response_address or gateway_public_key:
            if not (gateway_response_address and gateway_public_key):
                raise SupervisorError("gateway mode needs both --gateway-response-address "
                                      "and --gateway-public-key")
            config = replace(config, gateway=GatewayConfig(
                response_address=gateway_response_address, public_key=gateway_public_key,
                port_range=parse_port_range(gateway_port_range), kernel_id=gateway_kernel_id))
        code = serve(config)
    except SupervisorError as exc:
        click.echo(f"kernelsvc: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code)


@main.command()
@click.option("--connection-file", "-f", "connection_file", required=True,
              type=click.Path(path_type=Path), help="The running kernel's connection file.")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds each check may take.")
def health(connection_file: Path, timeout: float) -> None:
    """Exit 0 if the heartbeat and a kernel_info request answer in time; print JSON status."""
    try:
        healthy, report = check_health(connection_file, timeout)
    except SupervisorError as exc:
        click.echo(f"kernelsvc: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(json.dumps(report))
    sys.exit(0 if healthy else 1)


@main.command()
@click.option("--user", is_flag=True, help="Install for the current user (~/.local/share/jupyter).")
@click.option("--sys-prefix", is_flag=True, help="Install into sys.prefix (this virtualenv).")
@click.option("--prefix", default=None, help="Install into PREFIX/share/jupyter/kernels.")
@click.option("--name", default=kernelspec.DEFAULT_NAME, show_default=True)
@click.option("--display-name", default=kernelspec.DEFAULT_DISPLAY_NAME, show_default=True)
@click.option("--env", nargs=2, multiple=True, metavar="KEY VALUE",
              help="An environment variable for the kernel (repeatable).")
@click.option("--max-output-bytes", default=kernelspec.DEFAULT_MAX_OUTPUT_BYTES,
              show_default=True, metavar="SIZE",
              help="Per-cell output budget written into the kernelspec (0: none).")
def install(user: bool, sys_prefix: bool, prefix: str | None, name: str, display_name: str,
            env: tuple[tuple[str, str], ...], max_output_bytes: str) -> None:
    """Install a kernelspec so JupyterLab, nbclient and VS Code can launch kernelsvc."""
    if sum([user, sys_prefix, prefix is not None]) > 1:
        click.echo("kernelsvc: error: choose one of --user, --sys-prefix, --prefix", err=True)
        sys.exit(2)
    if sys_prefix:
        prefix = sys.prefix
    try:
        path = kernelspec.install(name, display_name, user=user, prefix=prefix, env=dict(env),
                                  max_output_bytes=max_output_bytes)
    except ValueError as exc:
        click.echo(f"kernelsvc: error: --max-output-bytes: {exc}", err=True)
        sys.exit(2)
    click.echo(f"Installed kernelspec {name} in {path}")


def serve(config: Config) -> int:
    path = config.connection_file
    created = not path.exists()
    info: ConnectionInfo = new_connection(config.ip) if created else load_connection_file(path)
    if info.ip not in ("127.0.0.1", "localhost", "::1") and info.transport == "tcp":
        log.warning("binding_non_loopback", ip=info.ip)
    if not info.key:
        log.warning("signing_disabled", detail="the connection file has an empty key: anyone "
                    "who can reach these ports can run code as this user")
    port_range = config.gateway.port_range if config.gateway else (0, 0)
    bound = take_bound(path, config.max_message_size, config.gateway)
    if bound is not None:
        ctx, sockets, info = bound
    else:
        ctx = zmq.Context()
        sockets, info = bind_public(ctx, info, config.max_message_size, port_range)
    if created:
        write_connection(path, info)
    comm_port = None
    if config.gateway is not None:
        comm_port = gateway.open_comm_port(port_range)
        gateway.announce(config.gateway, info.to_dict(), comm_port.getsockname()[1])
        log.info("gateway_announced", response_address=config.gateway.response_address,
                 comm_port=comm_port.getsockname()[1], kernel_id=config.gateway.kernel_id)
    heartbeat = Heartbeat(ctx, sockets.hb)
    heartbeat.start()
    private_dir = private_endpoint_dir()
    log.info("kernel_listening", connection_file=str(path), transport=info.transport, ip=info.ip,
             shell_port=info.shell_port, created=created, **config.limits.describe())
    try:
        supervisor = Supervisor(config, info, ctx, sockets, private_dir)
        if comm_port is not None:
            supervisor.watch_fd(comm_port.fileno(),
                                lambda: gateway_requests.accept(supervisor, comm_port))
        return supervisor.run()
    finally:
        if comm_port is not None:
            comm_port.close()
        heartbeat.stop()
        sockets.close(linger_ms=200)
        ctx.term()
        if created:
            path.unlink(missing_ok=True)
