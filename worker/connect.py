"""Where the kernel is reachable: the PUBLIC connection a second client needs."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from jupyter_client.connect import write_connection_file

__all__ = [
    "connect_qtconsole",
    "get_connection_file",
    "get_connection_info",
    "write_connection_file",
]

_connection_file: str | None = None
_connection_info: dict[str, Any] | None = None


def configure(connection_file: str, connection_info: dict[str, Any]) -> None:
    global _connection_file, _connection_info
    _connection_file = connection_file
    _connection_info = dict(connection_info)


def get_connection_file() -> str:
    """The path of the connection file clients use to reach this kernel."""
    if _connection_file is None:
        raise RuntimeError("not running inside a kernelsvc kernel")
    return _connection_file


def get_connection_info(unpack: bool = False) -> str | dict[str, Any]:
    """The public connection info: a JSON string, or a dict when ``unpack`` is true."""
    if _connection_info is None:
        raise RuntimeError("not running inside a kernelsvc kernel")
    info = dict(_connection_info)
    return info if unpack else json.dumps(info, indent=2)


def connect_qtconsole(argv: list[str] | None = None, **kwargs: Any) -> subprocess.Popen:
    """Start a Qt console attached to this kernel."""
    try:
        import qtconsole  # noqa: F401
    except ImportError:
        raise ImportError(
            "connect_qtconsole needs qtconsole: pip install qtconsole"
        ) from None
    cmd = [sys.executable, "-m", "qtconsole", "--existing", get_connection_file(), *(argv or [])]
    return subprocess.Popen(cmd, start_new_session=True, **kwargs)


CONNECT_INFO_TEXT = """{info}

Paste the above JSON into a file, and connect with:
    $> jupyter <app> --existing <file>
or, if you are local, you can connect with just:
    $> jupyter <app> --existing {name}
or even just:
    $> jupyter <app> --existing
if this is the most recent Jupyter kernel you have started."""


def connect_info_magic(line: str = "") -> None:
    """%connect_info: print how another client connects to this kernel."""
    import os

    print(CONNECT_INFO_TEXT.format(info=get_connection_info(),
                                   name=os.path.basename(get_connection_file())))
