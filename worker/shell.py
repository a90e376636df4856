"""IPython's InteractiveShell, wired to publish over the worker's link."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from IPython.core import page
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.history import HistoryOutput
from IPython.core.interactiveshell import InteractiveShell
from traitlets import Any as AnyTrait
from traitlets import Type

from kernelsvc.worker import interrupts
from kernelsvc.worker.cellfiles import CellCompiler
from kernelsvc.worker.forkserver import memo_executing_node_style
from kernelsvc.worker.kernel import Header, Kernel

# IPython writes each cell's history to SQLite (a commit, with its fsyncs) as the cell ends.
# Here cells are written in batches instead: at most HISTORY_WRITE_DELAY seconds after a cell
# (or at once when HISTORY_BATCH cells are waiting), and at a clean stop. A worker that dies
# loses at most the cells of the last HISTORY_WRITE_DELAY seconds from the database (the
# running session's history, in memory, is what history requests read).
HISTORY_BATCH = 1000
HISTORY_WRITE_DELAY = 1.0


class KernelDisplayHook(DisplayHook):
    """The value of a cell's last expression becomes an ``execute_result``."""

    _local = threading.local()  # subshells run cells concurrently: per-thread state

    @property
    def _content(self) -> dict[str, Any]:
        return self._local.__dict__.setdefault("content", {})

    @_content.setter
    def _content(self, value: dict[str, Any]) -> None:
        self._local.content = value

    def start_displayhook(self) -> None:
        self._content: dict[str, Any] = {"data": {}, "metadata": {}}

    def write_output_prompt(self) -> None:
        self._content["execution_count"] = self.prompt_count

    def write_format_data(self, format_dict, md_dict=None) -> None:
        self._content["data"] = format_dict
        self._content["metadata"] = md_dict or {}

    def finish_displayhook(self) -> None:
        kernel = self.shell.kernel
        kernel.flush_streams()
        if self._content["data"]:
            kernel.publish("execute_result", self._content)
        self._content = {}


class KernelDisplayPublisher(DisplayPublisher):
    """``display()`` and ``clear_output()`` become IOPub messages."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False,
                **kwargs) -> None:
        kernel = self.shell.kernel
        kernel.flush_streams()
        content = {"data": data, "metadata": metadata or {}, "transient": transient or {}}
        kernel.publish("update_display_data" if update else "display_data", content)

    def clear_output(self, wait: bool = False) -> None:
        kernel = self.shell.kernel
        kernel.flush_streams()
        kernel.publish("clear_output", {"wait": bool(wait)})


class KernelShell(InteractiveShell):
    """An InteractiveShell whose output, errors and payloads go to Jupyter clients."""

    displayhook_class = Type(KernelDisplayHook)
    display_pub_class = Type(KernelDisplayPublisher)
    compiler_class = Type(CellCompiler)  # cells get the file names the debugger expects
    kernel = AnyTrait(allow_none=True)
    _errors = threading.local()  # each shell thread's last error, for its execute_reply

    @property
    def _last_error(self) -> dict[str, Any] | None:
        return getattr(self._errors, "last", None)

    @_last_error.setter
    def _last_error(self, value: dict[str, Any] | None) -> None:
        self._errors.last = value

    def init_history(self) -> None:
        super().init_history()
        history = self.history_manager
        if history.db_cache_size <= 1:  # IPython's default; a configured batch is kept
            history.db_cache_size = HISTORY_BATCH
        self._history_write_due = False

    def schedule_history_write(self) -> None:
        """A cell was stored: have the history thread write the batch a little later."""
        if self._history_write_due or self.kernel is None:
            return
        self._history_write_due = True
        self.kernel.link.call_later(HISTORY_WRITE_DELAY, self._write_history)

    def _write_history(self) -> None:
        """On the IO thread: wake IPython's history thread (it writes on its own connection)."""
        self._history_write_due = False
        history = self.history_manager
        if history.using_thread:
            history._restart_thread_if_stopped()  # a fork by user code stops it
            if history.save_flag is not None:
                history.save_flag.set()

    @contextlib.contextmanager
    def _tee(self, channel):
        """IPython 9 wraps sys.stdout/stderr.write around each cell to copy the cell's stream
        output into history (for %notebook): a Python call more per write, and not thread
        safe (subshells run cells at once). Here the streams copy it instead, once per batch
        they send (record_stream): the cell's request header says which cell it is."""
        header = self.kernel.parent_header if self.kernel is not None else None
        if channel == "stdout" and isinstance(header, Header):
            header.cell = self.execution_count
        yield

    def record_stream(self, cell: int, name: str, text: str) -> None:
        """Stream output of history cell ``cell``, as IPython's tee keeps it."""
        output_type = "out_stream" if name == "stdout" else "err_stream"
        outputs = self.history_manager.outputs[cell]
        if not outputs or outputs[-1].output_type != output_type:
            outputs.append(HistoryOutput(output_type=output_type, bundle={"stream": []}))
        outputs[-1].bundle["stream"].append(text)

    def init_environment(self) -> None:
        super().init_environment()
        import os

        # What a notebook user expects from subprocesses and pagers.
        os.environ.update({"TERM": "xterm-color", "CLICOLOR": "1", "PAGER": "cat",
                           "GIT_PAGER": "cat"})

    def init_hooks(self) -> None:
        super().init_hooks()
        # `obj?` output goes to the frontend's pager as a payload.
        self.set_hook("show_in_pager", page.as_hook(self.page_payload), 99)

    def page_payload(self, strng, start: int = 0, screen_lines: int = 0, pager_cmd=None) -> None:
        data = strng if isinstance(strng, dict) else {"text/plain": strng}
        self.payload_manager.write_payload({"source": "page", "data": data, "start": start})

    def set_next_input(self, text: str, replace: bool = False) -> None:
        self.payload_manager.write_payload(
            {"source": "set_next_input", "text": text, "replace": replace}
        )

    def ask_exit(self) -> None:
        self.payload_manager.write_payload({"source": "ask_exit", "keepkernel": False})

    def _atexit_once(self) -> None:
        """A stopping worker ends with os._exit, so IPython's full reset (gc.collect, fresh
        aliases and namespace: ~20 ms of every restart) is skipped. The namespace is still
        emptied and the history session closed: the finalizers of what only they held (the
        output history too) run; garbage in reference cycles is not collected."""
        if getattr(self, "_atexit_once_called", False):
            return
        self._atexit_once_called = True
        self.user_ns.clear()
        self.user_global_ns.clear()
        if self.history_manager is not None:
            self.history_manager.end_session()
            self.history_manager.close()
            self.history_manager = None

    def should_run_async(self, raw_cell: str, *, transformed_cell=None,
                         preprocessing_exc_tuple=None) -> bool:
        """IPython compiles every cell once more to see whether it needs top-level await;
        one without the words await or async cannot (~4 % of a `pass` request)."""
        cell = transformed_cell if transformed_cell is not None else raw_cell
        if "await" not in cell and "async" not in cell:
            return False
        return super().should_run_async(raw_cell, transformed_cell=transformed_cell,
                                        preprocessing_exc_tuple=preprocessing_exc_tuple)

    def _get_exc_info(self, exc_tuple=None):
        etype, value, tb = super()._get_exc_info(exc_tuple)
        if etype is KeyboardInterrupt:
            interrupts.hide_handler_frame(tb)
        return etype, value, tb

    def showtraceback(self, exc_tuple=None, filename=None, tb_offset=None,
                      exception_only=False, running_compiled_code=False) -> None:
        memo_executing_node_style()  # as the first traceback imports stack_data; then a no-op
        # Only a full traceback is what IPython's history would store (not SystemExit's
        # one line, nor a custom exception handler's output).
        self._errors.full = not exception_only and not self.custom_exceptions
        super().showtraceback(exc_tuple, filename, tb_offset, exception_only,
                              running_compiled_code)

    def _showtraceback(self, etype, evalue, stb) -> None:
        kernel = self.kernel
        kernel.flush_streams()
        kernel.release_held_output()  # the output's tail belongs above its traceback
        content = {"traceback": stb, "ename": str(etype.__name__), "evalue": str(evalue)}
        kernel.publish("error", content)
        self._last_error = content
        self._errors.shown = evalue if getattr(self._errors, "full", False) else None
        self._errors.full = False  # set again by the next showtraceback

    def _format_exception_for_storage(self, exception, filename=None,
                                      running_compiled_code=False) -> dict[str, Any]:
        """IPython 9 formats a cell's error again for its history (%notebook), as it has
        just shown it (InteractiveTB, same traceback and offset): ~2 ms an error, before
        the execute_reply. The error shown for this exception is reused."""
        last, shown = self._last_error, getattr(self._errors, "shown", None)
        self._errors.shown = None  # not kept alive (with its frames) past this cell
        if last is not None and shown is exception \
                and not isinstance(exception, SyntaxError):  # shown by another formatter
            return dict(last)
        return super()._format_exception_for_storage(exception, filename, running_compiled_code)

    def enable_gui(self, gui=None) -> None:
        if gui not in (None, "inline"):
            raise NotImplementedError(f"kernelsvc has no event loop integration for {gui!r}")


def build_shell(kernel: Kernel) -> KernelShell:
    shell = KernelShell.instance(kernel=kernel)
    shell._last_error = None
    kernel.stream_history = shell.record_stream
    return shell
