"""Jupyter's debugger protocol: ``debug_request`` on control, ``debug_event`` on IOPub.

A debug_request carries one DAP request. The worker's control thread hands it to
``Debugger.handle`` and sends back the DAP response it returns, so requests are answered
while the main thread (the user's code) is stopped at a breakpoint. pydevd, debugpy's
debugger, runs in the worker (see debug_server.py) and this module is its only client:
most requests are forwarded to it; the kernel answers the Jupyter extensions itself
(debugInfo, dumpCell, inspectVariables, richInspectVariables, copyToGlobals, modules)
and describes the namespace while no thread is stopped. pydevd's events go to IOPub.

debugpy is optional (``pip install kernelsvc[debug]``) and imported on the first
``initialize``, in the worker, never in the fork server.
"""

from __future__ import annotations

import ast
import itertools
import json
import linecache
import logging
import sys
import threading
from typing import Any

from kernelsvc.supervisor.kernel_info import debugger_available
from kernelsvc.supervisor.protocol import dap_failure
from kernelsvc.worker import cellfiles
from kernelsvc.worker.dap import DapClient
from kernelsvc.worker.debug_variables import NamespaceVariables, hidden_from_frames

log = logging.getLogger("kernelsvc.worker.debugger")

# Requests with a handler here; any other goes to pydevd while a session is open.
HANDLERS = {
    "debugInfo": "debug_info",
    "dumpCell": "dump_cell",
    "source": "source",
    "inspectVariables": "inspect_variables",
    "richInspectVariables": "rich_inspect_variables",
    "modules": "modules",
    "initialize": "initialize",
    "attach": "attach",
    "configurationDone": "configuration_done",
    "disconnect": "disconnect",
    "setBreakpoints": "set_breakpoints",
    "variables": "variables",
    "copyToGlobals": "copy_to_globals",
}


def make_debugger(kernel, shell) -> Debugger | None:
    return Debugger(kernel, shell) if debugger_available() else None


class Debugger:
    def __init__(self, kernel, shell) -> None:
        self.kernel = kernel
        self.shell = shell
        self.client: DapClient | None = None  # the connection to pydevd, once started
        self.address: tuple[str, int] = ("", 0)
        self.token = ""
        self.started = False  # between a successful initialize and disconnect
        self.breakpoints: dict[str, list[dict[str, Any]]] = {}
        self.stopped_threads: set[int] = set()
        self.namespace = NamespaceVariables()
        self.parent: dict[str, Any] = {}  # header of the last debug_request: events' parent
        self._state = threading.Lock()  # stopped_threads is also updated by the DAP reader
        self._seq = itertools.count(1)

    # --------------------------------------------------------------- entry points

    def handle(self, content: dict[str, Any], parent: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """Answer one DAP request (the debug_request's content) with a DAP response."""
        if parent is not None:
            self.parent = parent
        request = content if isinstance(content, dict) else {}
        command = str(request.get("command", ""))
        try:
            method = HANDLERS.get(command)
            if method is not None:
                response = getattr(self, method)(request)
            elif not self.started:
                response = self.fail(request, "the debugger is not started")
            else:
                response = self.forward(request)
        except Exception as exc:  # a bug of ours or a broken request: still an answer
            log.exception("debug_request_failed")
            response = self.fail(request, f"{type(exc).__name__}: {exc}")
        response["seq"] = next(self._seq)
        return response

    # --------------------------------------------------------------- replies

    def reply(self, request: dict[str, Any], body: dict[str, Any] | None = None
              ) -> dict[str, Any]:
        return {"type": "response", "request_seq": request.get("seq", 0), "success": True,
                "command": request.get("command", ""), "body": body or {}}

    def fail(self, request: dict[str, Any], message: str) -> dict[str, Any]:
        return dap_failure(request, message)

    def forward(self, request: dict[str, Any], command: str | None = None,
                arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Ask pydevd; the response answers the client's request (its seq, its command)."""
        if self.client is None:
            return self.fail(request, "the debugger is not started")
        command = command or request.get("command", "")
        if arguments is None:
            arguments = request.get("arguments") or {}
        response = dict(self.client.request(command, arguments))
        response.pop("pydevd_cmd_id", None)
        response["request_seq"] = request.get("seq", 0)
        response["command"] = request.get("command", command)
        return response

    # --------------------------------------------------------------- session

    def initialize(self, request: dict[str, Any]) -> dict[str, Any]:
        self.connect()
        # Each session logs in again: pydevd forgets the login at disconnect.
        login = self.client.request("pydevdAuthorize", {"debugServerAccessToken": self.token})
        if not login.get("success"):
            return self.fail(request, f"the debugger refused us: {login.get('message')}")
        response = self.forward(request)
        if response.get("success"):
            self.started = True
        return response

    def connect(self) -> None:
        if self.client is not None and not self.client.closed:
            return
        from kernelsvc.worker import debug_server

        if not self.token:
            self.address, self.token = debug_server.start()
            self.shell.events.register("post_run_cell", self.after_cell)
        self.client = DapClient(self.address, self.on_event)

    def attach(self, request: dict[str, Any]) -> dict[str, Any]:
        from kernelsvc.worker import debug_server

        if not self.started:
            return self.fail(request, "the debugger is not started")
        arguments = dict(request.get("arguments") or {})
        arguments.setdefault("justMyCode", True)
        arguments.setdefault("redirectOutput", False)  # output already goes to IOPub
        arguments["rules"] = list(arguments.get("rules") or []) + debug_server.internal_rules()
        response = self.forward(request, arguments=arguments)
        if response.get("success"):
            # JupyterLab sends configurationDone only when it restores a session, so the
            # kernel completes the configuration itself.
            self.client.request("configurationDone")
        return response

    def configuration_done(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.reply(request)  # done at attach

    def disconnect(self, request: dict[str, Any]) -> dict[str, Any]:
        response = self.forward(request) if self.started else self.reply(request)
        # pydevd has dropped its breakpoints and resumed every thread.
        self.started = False
        self.breakpoints.clear()
        with self._state:
            self.stopped_threads.clear()
        return response

    def set_breakpoints(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.started:
            return self.fail(request, "the debugger is not started")
        response = self.forward(request)
        path = ((request.get("arguments") or {}).get("source") or {}).get("path")
        if response.get("success") and path:
            # pydevd may move a breakpoint (off a blank line): remember where it went.
            lines = [{"line": bp["line"]} for bp in response["body"].get("breakpoints", [])
                     if "line" in bp]
            if lines:
                self.breakpoints[path] = lines
            else:
                self.breakpoints.pop(path, None)
        return response

    # --------------------------------------------------------------- Jupyter extensions

    def debug_info(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._state:
            stopped = sorted(self.stopped_threads)
        return self.reply(request, {
            "isStarted": self.started,
            "hashMethod": "Murmur2",
            "hashSeed": cellfiles.HASH_SEED,
            "tmpFilePrefix": cellfiles.prefix(),
            "tmpFileSuffix": cellfiles.SUFFIX,
            "breakpoints": [{"source": path, "breakpoints": lines}
                            for path, lines in self.breakpoints.items()],
            "stoppedThreads": stopped,
            "richRendering": True,
            "exceptionPaths": ["Python Exceptions"],
            "copyToGlobals": True,
        })

    def dump_cell(self, request: dict[str, Any]) -> dict[str, Any]:
        """Write a cell's code where breakpoints and stack frames will name it."""
        code = (request.get("arguments") or {}).get("code")
        if not isinstance(code, str):
            return self.fail(request, "dumpCell needs arguments.code")
        path = cellfiles.cell_filename(code)
        if path is None:
            return self.fail(request, "this cell is too big to debug")
        cellfiles.prepare_cell_dir()
        with open(path, "w", encoding="utf-8") as f:
            f.write(code)
        return self.reply(request, {"sourcePath": path})

    def source(self, request: dict[str, Any]) -> dict[str, Any]:
        """A file's text; a cell that was run but never dumped is still in linecache."""
        arguments = request.get("arguments") or {}
        path = (arguments.get("source") or {}).get("path") or ""
        try:
            with open(path, encoding="utf-8") as f:
                return self.reply(request, {"content": f.read()})
        except (OSError, UnicodeDecodeError):
            pass
        lines = linecache.getlines(path) if path else []
        if lines:
            return self.reply(request, {"content": "".join(lines)})
        if self.started and (arguments.get("sourceReference") or 0) > 0:
            return self.forward(request)
        return self.fail(request, "source unavailable")

    def stopped(self) -> bool:
        with self._state:
            return bool(self.stopped_threads)

    def inspect_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.reply(request, {"variables": self.namespace.top(self.shell)})

    def variables(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.stopped():
            ref = (request.get("arguments") or {}).get("variablesReference", 0)
            return self.reply(request, {"variables": self.namespace.children(int(ref))})
        response = self.forward(request)
        if response.get("success"):
            response["body"]["variables"] = [
                v for v in response["body"].get("variables", [])
                if not hidden_from_frames(v.get("name", ""), self.shell)]
        return response

    def rich_inspect_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        name = str(arguments.get("variableName", ""))
        if not name.isidentifier():
            return self.reply(request, {"data": {}, "metadata": {}})
        if self.stopped():
            bundle = self.rich_in_frame(request, name, arguments.get("frameId"))
        else:
            bundle = self.rich_in_namespace(name)
        if bundle is None:
            return self.fail(request, f"cannot display {name}")
        data, metadata = bundle.get("data", {}), bundle.get("metadata", {})
        return self.reply(request, {
            "data": data, "metadata": {k: v for k, v in metadata.items() if k in data}})

    def rich_in_namespace(self, name: str) -> dict[str, Any] | None:
        result = self.shell.user_expressions({name: name})[name]
        return result if result.get("status") == "ok" else None

    def rich_in_frame(self, request: dict[str, Any], name: str, frame_id: Any
                      ) -> dict[str, Any] | None:
        """Format the variable in the stopped frame, with IPython's display formatter."""
        expression = (f"__import__('kernelsvc.worker.debug_variables', fromlist=['_'])"
                      f".rich_json({name})")
        response = self.forward(request, command="evaluate", arguments={
            "expression": expression, "frameId": frame_id, "context": "clipboard"})
        if not response.get("success"):
            return None
        # The clipboard context gives the full repr of the returned JSON string.
        return json.loads(ast.literal_eval(response["body"]["result"]))

    def copy_to_globals(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        source, target = arguments.get("srcVariableName"), arguments.get("dstVariableName")
        if not (isinstance(source, str) and source.isidentifier()
                and isinstance(target, str) and target.isidentifier()):
            return self.fail(request, "srcVariableName and dstVariableName must be names")
        if not self.started:
            return self.fail(request, "the debugger is not started")
        return self.forward(request, command="setExpression", arguments={
            "expression": f"globals()[{target!r}]", "value": source,
            "frameId": arguments.get("srcFrameId")})

    def modules(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        loaded = list(sys.modules.items())
        start = int(arguments.get("startModule") or 0)
        count = int(arguments.get("moduleCount") or len(loaded))
        found = []
        for index, (name, module) in enumerate(loaded[start:start + count], start):
            path = getattr(getattr(module, "__spec__", None), "origin", None)
            if isinstance(path, str) and path.endswith(".py"):
                found.append({"id": index, "name": name, "path": path})
        return self.reply(request, {"modules": found, "totalModules": len(loaded)})

    # --------------------------------------------------------------- events

    def after_cell(self, result: Any = None) -> None:
        from kernelsvc.worker import debug_server

        try:
            debug_server.after_cell()
        except Exception:  # never the user's problem
            log.exception("debugger_after_cell_failed")

    def on_event(self, event: dict[str, Any]) -> None:
        """On the DAP reader thread: note stopped threads, then publish on IOPub."""
        body = event.get("body") or {}
        with self._state:
            if event.get("event") == "stopped" and "threadId" in body:
                self.stopped_threads.add(body["threadId"])
            elif event.get("event") == "continued":
                if body.get("allThreadsContinued", True):
                    self.stopped_threads.clear()
                else:
                    self.stopped_threads.discard(body.get("threadId"))
        self.kernel.publish("debug_event", event, parent=self.parent)

