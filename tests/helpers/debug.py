"""Jupyter's debugger protocol as JupyterLab's debugger panel speaks it.

DAP requests go out as ``debug_request`` on control and come back as ``debug_reply``;
DAP events arrive as ``debug_event`` on IOPub.
"""

from __future__ import annotations

from typing import Any

from jupyter_client import BlockingKernelClient

from tests.helpers.kernel import get_reply

# What JupyterLab's DebuggerSession.start() sends.
JUPYTERLAB_INITIALIZE = {
    "clientID": "jupyterlab",
    "clientName": "JupyterLab",
    "adapterID": "python",
    "pathFormat": "path",
    "linesStartAt1": True,
    "columnsStartAt1": True,
    "supportsVariableType": True,
    "supportsVariablePaging": True,
    "supportsRunInTerminalRequest": True,
    "locale": "en",
}


class DebugClient:
    def __init__(self, kc: BlockingKernelClient, timeout: float = 30) -> None:
        self.kc = kc
        self.timeout = timeout
        self.seq = 0  # JupyterLab numbers its requests from 0 in each session

    def request(self, command: str, timeout: float | None = None, **arguments: Any) -> dict:
        """One DAP request; returns the DAP response (the debug_reply's content)."""
        content = {"type": "request", "seq": self.seq, "command": command,
                   "arguments": arguments}
        self.seq += 1
        msg = self.kc.session.msg("debug_request", content)
        self.kc.control_channel.send(msg)
        reply = get_reply(self.kc, msg["header"]["msg_id"], timeout or self.timeout, "control")
        assert reply["msg_type"] == "debug_reply"
        return reply["content"]

    def ok(self, command: str, **arguments: Any) -> dict:
        """A request that must succeed; returns its body."""
        response = self.request(command, **arguments)
        assert response["success"], response
        assert response["command"] == command
        return response.get("body", {})

    def start(self) -> dict:
        """Turn the debugger on as JupyterLab does: initialize, then attach."""
        capabilities = self.ok("initialize", **JUPYTERLAB_INITIALIZE)
        self.ok("attach")
        return capabilities

    def wait_event(self, event: str, timeout: float | None = None) -> dict:
        """The next ``debug_event`` of that kind on IOPub (other messages are skipped)."""
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout or self.timeout)
            if msg["msg_type"] == "debug_event" and msg["content"].get("event") == event:
                return msg["content"]

    def stop_at(self, event: dict) -> dict:
        """The top stack frame of the thread a ``stopped`` event names."""
        frames = self.ok("stackTrace", threadId=event["body"]["threadId"])["stackFrames"]
        return frames[0]
