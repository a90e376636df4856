"""Run a whole notebook through nbclient against kernelsvc, launched from a temporary spec."""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import psutil
import pytest
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from tests.helpers.kernelspec import KERNEL_NAME, write_kernelspec
from tests.helpers.waiting import wait_until

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"



class RecordingClient(NotebookClient):
    """Owns a kernel from ``kernel_dirs``; remembers its pids and the widget comm_opens."""

    def __init__(self, nb: nbformat.NotebookNode, kernel_dirs: list[str], **kwargs) -> None:
        super().__init__(nb, **kwargs)
        self.kernel_dirs = kernel_dirs
        self.kernel_pids: set[int] = set()
        self.widget_comm_opens: list[dict] = []
        self.on_notebook_start = self._remember_pids
        self.on_cell_executed = self._remember_pids

    def create_kernel_manager(self) -> AsyncKernelManager:
        self.km = AsyncKernelManager(
            kernel_name=self.kernel_name,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=self.kernel_dirs),
            config=self.config,
        )
        return self.km

    def _remember_pids(self, **_: object) -> None:
        pid = self.km.provisioner.pid if self.km and self.km.provisioner else None
        if pid is None:
            return
        try:
            root = psutil.Process(pid)
            self.kernel_pids |= {pid, *(p.pid for p in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            pass

    def on_comm_open_jupyter_widget(self, msg: dict):
        self.widget_comm_opens.append(msg)
        return super().on_comm_open_jupyter_widget(msg)


def build_notebook() -> nbformat.NotebookNode:
    cells = [
        new_code_cell("print('hello from cell 1')\nprint(6 * 7)"),
        new_code_cell(
            "from IPython.display import HTML, Markdown, display\n"
            "display(HTML('<b>bold move</b>'))\n"
            "display(Markdown('# A title'))"
        ),
        new_code_cell(
            "raise ValueError('expected failure')",
            metadata={"tags": ["raises-exception"]},
        ),
        new_code_cell("x = 21\nprint('still running', x * 2)\nx * 2"),
        new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"),
        new_code_cell(
            "import ipywidgets as widgets\n"
            "slider = widgets.IntSlider(value=7, min=0, max=10, description='n')\n"
            "display(slider)"
        ),
        new_code_cell("slider.value = 9\nslider.value"),
    ]
    return new_notebook(
        cells=cells,
        metadata={"kernelspec": {"name": KERNEL_NAME, "display_name": "kernelsvc (test)",
                                 "language": "python"}},
    )


def stdout_of(cell) -> str:
    return "".join(o["text"] for o in cell.outputs
                   if o["output_type"] == "stream" and o["name"] == "stdout")


def of_type(cell, output_type: str) -> list:
    return [o for o in cell.outputs if o["output_type"] == output_type]


@pytest.mark.timeout(120)
def test_notebook_runs_end_to_end(tmp_path: Path):
    kernels = write_kernelspec(tmp_path / "jupyter")
    nb = build_notebook()
    client = RecordingClient(
        nb, [str(kernels)], kernel_name=KERNEL_NAME, timeout=60, startup_timeout=30,
        allow_errors=False, shutdown_kernel="graceful",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    assert client.owns_km
    client.execute()  # nbclient owns the manager, so it shuts the kernel down itself
    assert client.kernel_pids, "never saw the kernel's processes"
    assert len(client.kernel_pids) >= 2, "expected the supervisor and its worker"

    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    wait_until(lambda: not any(alive(p) for p in client.kernel_pids), 15, "kernel exit")

    hello, display, failing, after, figure, slider, update = nb.cells

    assert [c.execution_count for c in nb.cells] == [1, 2, 3, 4, 5, 6, 7]

    assert stdout_of(hello) == "hello from cell 1\n42\n"
    assert not of_type(hello, "error")

    shown = of_type(display, "display_data")
    assert len(shown) == 2
    assert shown[0]["data"]["text/html"] == "<b>bold move</b>"
    assert shown[1]["data"]["text/markdown"] == "# A title"

    (error,) = of_type(failing, "error")
    assert error["ename"] == "ValueError"
    assert error["evalue"] == "expected failure"
    assert any("expected failure" in line for line in error["traceback"])

    assert stdout_of(after) == "still running 42\n"
    (result,) = of_type(after, "execute_result")
    assert result["data"]["text/plain"] == "42"
    assert result["execution_count"] == 4

    pngs = [o for o in of_type(figure, "display_data") if "image/png" in o["data"]]
    assert len(pngs) == 1
    assert base64.b64decode(pngs[0]["data"]["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert not of_type(figure, "error")

    views = [o for o in of_type(slider, "display_data") if WIDGET_VIEW in o["data"]]
    assert len(views) == 1
    model_id = views[0]["data"][WIDGET_VIEW]["model_id"]
    assert views[0]["data"]["text/plain"].startswith("IntSlider(value=7")

    opened = [m for m in client.widget_comm_opens if m["content"]["comm_id"] == model_id]
    assert len(opened) == 1
    assert opened[0]["content"]["target_name"] == "jupyter.widget"
    assert opened[0]["content"]["data"]["state"]["_model_name"] == "IntSliderModel"
    assert opened[0]["content"]["data"]["state"]["value"] == 7

    (value,) = of_type(update, "execute_result")
    assert value["data"]["text/plain"] == "9"
    # The kernel's comm_msg update reached nbclient: the saved state has the new value.
    assert client.widget_state[model_id]["value"] == 9
    saved = nb.metadata.widgets[WIDGET_STATE]["state"][model_id]
    assert saved["model_name"] == "IntSliderModel"
    assert saved["model_module"] == "@jupyter-widgets/controls"
    assert saved["state"]["value"] == 9
    assert saved["state"]["description"] == "n"
    assert saved["state"]["max"] == 10
