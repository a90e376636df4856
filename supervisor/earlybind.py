"""Bind the public sockets first thing, before the supervisor's imports (~130 ms).

A client that connects before the kernel has bound is refused, and ZMQ tries again only
every 100 ms (``reconnect_ivl``), so a kernel that binds late answers its manager's first
kernel_info_request up to 100 ms later than it could. Bound ~40 ms after exec, the request
is waiting when the loop starts. Only the plain case is bound here (an existing connection
file that names its ports, no gateway, the default --max-message-size); anything else, and
any error, is left to ``serve``, which binds and reports as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULT_MAX_MESSAGE_SIZE = 2**30  # --max-message-size's default, 1G

_bound: tuple[Path, Any, Any, Any] | None = None  # (connection file, context, sockets, info)


def bind_early(argv: list[str]) -> None:
    """From ``kernelsvc start``'s arguments: bind now if the case is plain."""
    global _bound
    path = argv_option(argv, "--connection-file", "-f")
    if path is None or any(
            arg.startswith(("--gateway", "--max-message-size")) for arg in argv):
        return
    try:
        import zmq

        from kernelsvc.supervisor.connection import PORT_NAMES, load_connection_file
        from kernelsvc.supervisor.sockets import bind_public

        info = load_connection_file(Path(path))
        if not all(getattr(info, name) for name in PORT_NAMES):
            return  # ports to choose, and a file to write: serve() does both
        ctx = zmq.Context()
        try:
            sockets, info = bind_public(ctx, info, DEFAULT_MAX_MESSAGE_SIZE)
        except Exception:
            ctx.term()
            raise
    except Exception:
        return  # serve() tries again, and says what is wrong
    _bound = (Path(path).resolve(), ctx, sockets, info)


def take_bound(path: Path, max_message_size: int, gateway: object) -> tuple[Any, Any, Any] | None:
    """The context, sockets and connection info bound early for this configuration."""
    global _bound
    bound, _bound = _bound, None
    if bound is None:
        return None
    bound_path, ctx, sockets, info = bound
    if gateway is not None or max_message_size != DEFAULT_MAX_MESSAGE_SIZE \
            or bound_path != path.resolve():
        sockets.close()
        sockets.hb.close(linger=0)
        ctx.term()
        return None
    return ctx, sockets, info


def argv_option(argv: list[str], *names: str) -> str | None:
    """An option's value from ``kernelsvc start``'s arguments, before click parses them
    (``--name value`` or ``--name=value``; the last one wins, as with click)."""
    value = None
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(tuple(f"{name}=" for name in names)):
            value = arg.partition("=")[2]
    return value
