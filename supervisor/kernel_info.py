"""The kernel_info_reply content, shared by the worker (which knows IPython's banner) and
the supervisor (which answers before any worker is up). Stdlib only: both import it."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from kernelsvc.supervisor import __version__
from kernelsvc.supervisor.protocol import PROTOCOL_VERSION


def debugger_available() -> bool:
    """debugpy installed? Looked up, not imported: it loads on the first debug session."""
    try:
        return importlib.util.find_spec("debugpy") is not None
    except (ImportError, ValueError):
        return False


def kernel_info_content(ipython_version: str, banner: str) -> dict[str, Any]:
    version = ".".join(map(str, sys.version_info[:3]))
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    debugger = debugger_available()
    return {
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "kernelsvc",
        "implementation_version": __version__,
        "language_info": {
            "name": "python",
            "version": version,
            "mimetype": "text/x-python",
            "codemirror_mode": {"name": "ipython", "version": 3},
            "pygments_lexer": "ipython3",
            "nbconvert_exporter": "python",
            "file_extension": ".py",
        },
        "banner": f"kernelsvc {__version__} (IPython {ipython_version})\n{banner}",
        "help_links": [
            {"text": "Python Reference", "url": f"https://docs.python.org/{minor}"},
            {"text": "IPython Reference", "url": "https://ipython.org/documentation.html"},
            {"text": "kernelsvc", "url": "https://pypi.org/project/kernelsvc/"},
        ],
        "supported_features": ["debugger"] if debugger else [],
        "debugger": debugger,
    }
