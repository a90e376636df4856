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


class ConnectionInfo(dict):
    """The connection info as a dict (``info['ip']``) that prints as the JSON text
    ipykernel's ``get_connection_info()`` returns."""

    def __str__(self) -> str:
        return json.dumps(dict(self), indent=2)


def get_connection_file() -> str | None:
    """The path of the connection file clients use to reach this kernel (None outside one)."""
    return _connection_file


def get_connection_info(connection_file: str | None = None,
                        unpack: bool = False) -> ConnectionInfo | dict[str, Any]:
    """The public connection info (what a second client needs): a dict that prints as JSON,
    or a plain dict with ``unpack=True``. ``connection_file`` reads another kernel's file."""
    if connection_file is not None:
        with open(connection_file) as f:
            info = json.load(f)
    elif _connection_info is None:
        raise RuntimeError("not running inside a kernelsvc kernel")
    else:
        info = dict(_connection_info)
    return dict(info) if unpack else ConnectionInfo(info)


def connect_qtconsole(argv: list[str] | None = None, **kwargs: Any) -> subprocess.Popen:
    """Start a Qt console attached to this kernel."""
    try:
        import qtconsole  # noqa: F401
    except ImportError:
        raise ImportError(
            "connect_qtconsole needs qtconsole: pip install qtconsole"
        ) from None
    if isinstance(argv, str):
        argv = argv.split()
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
