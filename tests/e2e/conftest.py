"""JupyterLab in headless Chromium: one server for these tests, a browser per test.

See README.md here. Without selenium, jupyterlab or Debian's chromium and chromium-driver
the tests are skipped, unless KERNELSVC_E2E_REQUIRED=1 (what `make e2e` sets): then
that is an error.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.e2e import lab

HERE = Path(__file__).resolve().parent
REQUIRED = os.environ.get("KERNELSVC_E2E_REQUIRED") == "1"


def missing() -> list[str]:
    gone = [f"the Python package {name}" for name in ("selenium", "jupyterlab")
            if importlib.util.find_spec(name) is None]
    gone += [path for path in (lab.CHROMIUM, lab.CHROMEDRIVER) if not os.access(path, os.X_OK)]
    return gone


def pytest_collection_modifyitems(config, items):
    ours = [item for item in items if HERE in Path(str(item.path)).parents]
    gone = missing()
    if not ours or not gone:
        return
    reason = f"end-to-end tests need {', '.join(gone)} (`make e2e` installs them)"
    if REQUIRED:
        raise pytest.UsageError(reason)
    for item in ours:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter):
    if lab.FIGURES:
        terminalreporter.section("kernelsvc in JupyterLab: figures")
        for label, value, unit in lab.FIGURES:
            terminalreporter.write_line(f"{label}: {value:.3f} {unit}")
        terminalreporter.write_line(f"screenshots: {lab.ARTIFACTS}")


@pytest.fixture(scope="package")
def lab_server(tmp_path_factory):
    """`jupyter lab` on 127.0.0.1, a random port and token, isolated Jupyter dirs, and
    kernelsvc installed with `kernelsvc install --prefix`. Stopped by pid at the end."""
    server = lab.LabServer(tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.start()
        yield server
    finally:
        lab.save_figures()
        left = server.stop()
        if server.log_path.exists():  # kept with the screenshots: pytest's tmp dirs rotate
            lab.ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(server.log_path, lab.ARTIFACTS / "server.log")
        assert not left, f"processes left after stopping the server: {left}"
        assert not lab.processes_mentioning(str(server.base)), "a Jupyter process survived"


@pytest.fixture
def notebook(lab_server, tmp_path, request):
    """Opens a notebook of the given cells in a fresh headless Chromium. At the end: a
    screenshot if the test failed, the browser quit and checked gone by pid, every kernel
    shut down through the REST API and checked gone by pid."""
    profile = tmp_path / "chromium-profile"
    state: dict = {}
    for old in lab.ARTIFACTS.glob(f"FAILED-{glob.escape(request.node.name)}.*"):
        old.unlink()  # a past run's
    log_mark = lab_server.log_size()

    def open_notebook(sources: list[str]) -> lab.NotebookPage:
        state["driver"] = driver = lab.chrome(profile)
        state["chromedriver"] = driver.service.process.pid
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-") + ".ipynb"
        state["page"] = page = lab.NotebookPage(driver, lab_server, name, sources)
        return page.open()

    yield open_notebook

    problems = []
    driver = state.get("driver")
    if driver is not None:
        call = getattr(request.node, "report_call", None)
        if call is not None and call.failed and "page" in state:
            try:
                state["page"].screenshot(f"FAILED-{request.node.name}")
                (lab.ARTIFACTS / f"FAILED-{request.node.name}.log").write_text(
                    f"page: {state['page'].describe()}\n\nserver log during the test:\n"
                    + lab_server.log_since(log_mark))
            except Exception as exc:  # the screenshot is a courtesy; report, don't mask
                problems.append(f"failure screenshot: {exc!r}")
        browser_pids = {state["chromedriver"]} | lab.descendants(state["chromedriver"])
        try:
            driver.quit()
        finally:
            left = lab.kill_pids(browser_pids | lab.processes_mentioning(str(profile)))
            if left:
                problems.append(f"browser processes survived quit(): {left}")
    try:
        lab_server.shutdown_kernels()
    except AssertionError as exc:
        problems.append(str(exc))
    assert not lab_server.kernel_pids(), "kernel processes left under the server"
    assert not problems, problems
