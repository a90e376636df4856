"""Connection files: read and validate one, or describe a new one to write.

Writing goes through jupyter_client's ``write_connection_file`` (mode 0600).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from kernelsvc.supervisor.errors import ConnectionFileError

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
TRANSPORTS = ("tcp", "ipc")


@dataclass(frozen=True)
class ConnectionInfo:
    """Everything a client needs to reach the kernel's public sockets."""

    transport: str = "tcp"
    ip: str = "127.0.0.1"
    shell_port: int = 0
    iopub_port: int = 0
    stdin_port: int = 0
    control_port: int = 0
    hb_port: int = 0
    key: bytes = b""
    signature_scheme: str = "hmac-sha256"
    kernel_name: str = ""

    def endpoint(self, port: int) -> str:
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{port}"
        return f"tcp://{self.ip}:{port}"

    def with_ports(self, ports: dict[str, int]) -> ConnectionInfo:
        return replace(self, **ports)

    def to_dict(self) -> dict[str, object]:
        """The JSON form clients read (key as text)."""
        data = asdict(self)
        data["key"] = self.key.decode()
        return data


def new_connection(ip: str = "127.0.0.1", transport: str = "tcp") -> ConnectionInfo:
    """A connection with a fresh key and ports still to be chosen by binding."""
    return ConnectionInfo(transport=transport, ip=ip, key=secrets.token_hex(32).encode())


def load_connection_file(path: Path) -> ConnectionInfo:
    """Read and validate ``path``; every problem becomes one ConnectionFileError line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConnectionFileError(f"cannot read connection file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConnectionFileError(f"connection file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConnectionFileError(f"connection file {path} must hold a JSON object")
    return _validate(path, data)


def _validate(path: Path, data: dict) -> ConnectionInfo:
    ports = {name: _require(path, data, name, int) for name in PORT_NAMES}
    for name, port in ports.items():
        if not 0 < port <= 65535:
            raise ConnectionFileError(f"connection file {path}: {name} {port} is out of range")
    transport = data.get("transport", "tcp")
    if transport not in TRANSPORTS:
        raise ConnectionFileError(
            f"connection file {path}: unsupported transport {transport!r} (use tcp or ipc)"
        )
    scheme = data.get("signature_scheme", "hmac-sha256")
    _check_scheme(path, scheme)
    key = _require(path, data, "key", str)
    ip = _require(path, data, "ip", str) if "ip" in data or transport == "tcp" else "kernel-ipc"
    kernel_name = data.get("kernel_name", "")
    if not isinstance(kernel_name, str):
        raise ConnectionFileError(f"connection file {path}: 'kernel_name' must be a string")
    return ConnectionInfo(
        transport=transport,
        ip=ip,
        key=key.encode(),
        signature_scheme=scheme,
        kernel_name=kernel_name,
        **ports,
    )


def _require(path: Path, data: dict, name: str, kind: type) -> object:
    if name not in data:
        raise ConnectionFileError(f"connection file {path}: missing field '{name}'")
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        wanted = "an integer" if kind is int else "a string"
        raise ConnectionFileError(
            f"connection file {path}: '{name}' must be {wanted}, not {type(value).__name__}"
        )
    return value


def _check_scheme(path: Path, scheme: object) -> None:
    if not isinstance(scheme, str) or not scheme.startswith("hmac-"):
        raise ConnectionFileError(
            f"connection file {path}: unsupported signature_scheme {scheme!r} (use hmac-sha256)"
        )
    try:
        hashlib.new(scheme.removeprefix("hmac-"))
    except ValueError:
        raise ConnectionFileError(
            f"connection file {path}: unsupported signature_scheme {scheme!r}"
        ) from None


def write_connection(path: Path, info: ConnectionInfo) -> None:
    """Write ``info`` to ``path`` with mode 0600 (jupyter_client's helper)."""
    from jupyter_client.connect import write_connection_file  # not needed to read one

    write_connection_file(
        fname=str(path),
        ip=info.ip,
        key=info.key,
        transport=info.transport,
        signature_scheme=info.signature_scheme,
        kernel_name=info.kernel_name,
        **{name: getattr(info, name) for name in PORT_NAMES},
    )
