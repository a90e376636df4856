"""A real JupyterLab server on loopback and headless Chromium driven by Selenium.

Everything here waits on events (the page through WebDriverWait, the server through its
REST API) with a timeout; nothing sleeps. Processes are stopped by pid.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.helpers.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
KERNEL_NAME = "kernelsvc"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

# The machine may be busy (benchmarks, two cores): waits are generous, never unbounded.
SERVER_START = 120
PAGE = 90
CELL = 60

LAB_SETTINGS = {
    # No news or update checks (a closed network) and no toast asking about them.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    # Every cell attached to the DOM, so the page can be inspected as a whole.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
# No build check: it runs node when there is one (CPU on every page load) and could put a
# "Build Recommended" dialog over the notebook on a machine whose node finds something to do.
PAGE_CONFIG = {"buildCheck": False, "buildAvailable": False}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_pids(pids: set[int], grace: float = 10, timeout: float = 15) -> list[int]:
    """Give ``pids`` ``grace`` seconds to exit, then SIGTERM, then SIGKILL what is left.
    Returns the pids still alive after all that (there should be none)."""
    def gone():
        return not any(alive(p) for p in pids)
    try:
        wait_until(gone, grace, f"{sorted(pids)} to exit")
        return []
    except TimeoutError:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            if alive(pid):
                print(f"e2e: sending {sig.name} to pid {pid}")
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        try:
            wait_until(gone, timeout, f"{sorted(pids)} to exit after {sig.name}")
            return []
        except TimeoutError:
            continue
    return [p for p in pids if alive(p)]


def descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def processes_mentioning(marker: str) -> set[int]:
    """Processes whose command line contains ``marker`` (a tmp path only we use)."""
    found = set()
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or ()):
                found.add(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@dataclass
class LabServer:
    """A `jupyter lab` process in its own process group, with isolated Jupyter dirs."""

    base: Path
    port: int = 0
    token: str = ""
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.base / "server.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_size(self) -> int:
        """A mark in the server's log (kernelsvc's JSON lines included), for log_since."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, mark: int) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace")

    def start(self) -> LabServer:
        dirs = {var: self.base / sub for var, sub in (
            ("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
            ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"))}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        for name, values in LAB_SETTINGS.items():
            target = dirs["JUPYTERLAB_SETTINGS_DIR"] / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        labconfig = dirs["JUPYTER_CONFIG_DIR"] / "labconfig"
        labconfig.mkdir()
        (labconfig / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
        prefix = self.base / "prefix"
        install = subprocess.run(
            [sys.executable, "-m", "kernelsvc.supervisor", "install", "--prefix", str(prefix)],
            capture_output=True, text=True, timeout=120)
        assert install.returncode == 0, install.stderr
        notebooks = self.base / "notebooks"
        notebooks.mkdir()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JUPYTER", "JPY_")) and k != "IPYTHONDIR"}
        env.update({var: str(path) for var, path in dirs.items()})
        env["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        self.env = env
        self.token = secrets.token_hex(24)
        for attempt in range(3):  # a free port can be taken before the server binds it
            self.port = free_port()
            cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={notebooks}", "--ServerApp.terminals_enabled=False",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
            if os.geteuid() == 0:
                cmd.append("--allow-root")
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(cmd, env=env, cwd=notebooks,
                                             stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait_until(self._ready, SERVER_START, "the Jupyter server to answer /api/status")
                return self
            except RuntimeError:
                if attempt == 2 or "already in use" not in self.log():
                    raise
        raise AssertionError("unreachable")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited ({self.proc.returncode}):\n{self.log()}")
        try:
            self.api("GET", "/api/status", timeout=5)
            return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
        return json.loads(text) if text else None

    # --- kernels, through the REST API ------------------------------------------------

    def kernels(self) -> list[dict]:
        return self.api("GET", "/api/kernels")

    def kernel(self, kernel_id: str) -> dict:
        return self.api("GET", f"/api/kernels/{kernel_id}")

    def kernel_for(self, path: str, timeout: float = PAGE) -> dict:
        def find():
            for session in self.api("GET", "/api/sessions"):
                if session["path"] == path and session.get("kernel"):
                    return session["kernel"]
            return None
        return wait_until(find, timeout, f"a session for {path}")

    def wait_kernel_state(self, kernel_id: str, state: str, timeout: float = CELL) -> dict:
        return wait_until(lambda: (k := self.kernel(kernel_id))["execution_state"] == state
                          and k, timeout, f"kernel execution_state == {state!r}")

    def kernel_pids(self) -> set[int]:
        """Every process under the server: kernels (supervisors, fork servers, workers)."""
        pids = descendants(self.proc.pid)
        self.seen |= pids
        return pids

    def supervisor_pid(self, kernel_id: str) -> int:
        """The kernelsvc supervisor the server launched for this kernel (its direct child)."""
        marker = f"kernel-{kernel_id}.json"
        for child in psutil.Process(self.proc.pid).children():
            try:
                if any(marker in part for part in child.cmdline()):
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        raise AssertionError(f"no kernel process for {kernel_id} under the server")

    def shutdown_kernels(self, timeout: float = 60) -> None:
        """DELETE every session and kernel, then wait for their processes to be gone."""
        pids = self.kernel_pids()
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}", timeout=timeout)
        for kernel in self.kernels():
            self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=timeout)
        try:
            wait_until(lambda: not any(alive(p) for p in pids), timeout, "kernels to exit")
        except TimeoutError:
            left = kill_pids(pids, grace=0)
            raise AssertionError(f"kernel processes survived their shutdown: {left}") from None

    def put_notebook(self, name: str, sources: list[str]) -> str:
        cells = [{"cell_type": "code", "execution_count": None, "metadata": {},
                  "outputs": [], "source": src} for src in sources]
        content = {
            "nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {
                "kernelspec": {"name": KERNEL_NAME, "display_name": "Python 3 (kernelsvc)",
                               "language": "python"},
                "language_info": {"name": "python"}},
        }
        for cell in cells:
            cell["id"] = secrets.token_hex(4)
        self.api("PUT", f"/api/contents/{name}",
                 {"type": "notebook", "format": "json", "content": content})
        return name

    def stop(self) -> list[int]:
        """Stop the server's process group and every process seen under it, by pid."""
        if self.proc is None:
            return []
        pids = self.kernel_pids() | self.seen
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # the server shuts its kernels down
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=30)
        return kill_pids(pids | processes_mentioning(str(self.base)))


def chrome(user_data_dir: Path, downloads: Path | None = None):
    """Headless Debian Chromium through Debian's chromedriver (no browser downloads)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                f"--user-data-dir={user_data_dir}"):
        options.add_argument(arg)
    options.set_capability("unhandledPromptBehavior", "accept")
    service = Service(CHROMEDRIVER, log_output=str(user_data_dir.parent / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(PAGE)
    driver.set_script_timeout(PAGE)
    return driver


PROMPT_NUMBER = re.compile(r"^\[(\d+)\]:?$")


# --- the notebook page ------------------------------------------------------------------

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
CELLS = f"{NOTEBOOK} .jp-Notebook .jp-Cell.jp-CodeCell"
DIALOG = ".jp-Dialog"

# Installed once per page load. It remembers every dialog ever shown (even briefly), every
# status the notebook toolbar showed and every text each input prompt showed, with times,
# so a test can assert on what happened, not only on what is on screen at the end. A page
# reload loses it: finding it again proves the page was not reloaded.
WATCH_JS = """
if (!window.__e2e) {
  const e2e = window.__e2e = {dialogs: [], statuses: [], prompts: {}};
  const seenDialogs = new WeakSet();
  const look = () => {
    for (const d of document.querySelectorAll('.jp-Dialog')) {
      if (!seenDialogs.has(d)) { seenDialogs.add(d); e2e.dialogs.push(d.innerText); }
    }
    const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
    const s = ind && ind.getAttribute('data-status');
    const st = e2e.statuses;
    if (s && (!st.length || st[st.length - 1][0] !== s)) st.push([s, Date.now()]);
    document.querySelectorAll('.jp-Notebook .jp-Cell').forEach((cell, i) => {
      const p = cell.querySelector('.jp-InputPrompt');
      if (!p) return;
      const list = e2e.prompts[i] = e2e.prompts[i] || [];
      const text = p.textContent.trim();
      if (!list.length || list[list.length - 1][0] !== text) list.push([text, Date.now()]);
    });
  };
  new MutationObserver(look).observe(document.body, {childList: true, subtree: true,
      characterData: true, attributes: true, attributeFilter: ['data-status']});
  look();
}
"""


DESCRIBE_JS = """
const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
return {
  toolbar: ind && ind.getAttribute('data-status'),
  prompts: [...document.querySelectorAll('.jp-Notebook .jp-Cell .jp-InputPrompt')]
      .map(p => p.textContent.trim()),
  statuses: window.__e2e ? window.__e2e.statuses.slice(-8) : 'the page was reloaded',
  dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText),
};
"""


class NotebookPage:
    """One notebook open in JupyterLab: cells run with Shift+Enter, buttons clicked."""

    def __init__(self, driver, server: LabServer, name: str, sources: list[str]):
        self.driver, self.server, self.name, self.sources = driver, server, name, sources
        self.kernel_id = ""

    # --- waiting ------------------------------------------------------------------------

    def wait(self, condition, timeout: float = CELL, what: str = "the page"):
        """WebDriverWait on ``condition()`` (no arguments), polling every 50 ms."""
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda _driver: condition())
        except TimeoutException:
            raise TimeoutException(f"timed out after {timeout}s waiting for {what}; "
                                   f"then: {self.describe()}") from None

    def describe(self) -> str:
        """What the server and the page say now, for a failure message (one script call, so
        a frozen page costs one script timeout, not one per element)."""
        state: dict[str, Any] = {}
        try:
            state["kernel"] = (self.server.kernel(self.kernel_id)["execution_state"]
                               if self.kernel_id else None)
        except Exception as exc:  # a description must not hide the failure it describes
            state["kernel"] = f"unavailable: {exc!r}"
        try:
            state["page"] = self.driver.execute_script(DESCRIBE_JS)
        except Exception as exc:
            state["page"] = f"unavailable: {exc.__class__.__name__}"
        return json.dumps(state)

    def open(self) -> NotebookPage:
        """Create the notebook through the contents API and open it in a fresh workspace."""
        self.server.put_notebook(self.name, self.sources)
        workspace = secrets.token_hex(4)  # nothing from another test's layout is restored
        self.driver.get(f"{self.server.url}/lab/workspaces/{workspace}/tree/{self.name}"
                        f"?token={self.server.token}")
        self.wait(lambda: len(self.cells()) >= len(self.sources), PAGE, "the notebook's cells")
        self.driver.execute_script(WATCH_JS)
        self.kernel_id = self.server.kernel_for(self.name)["id"]
        self.server.wait_kernel_state(self.kernel_id, "idle", PAGE)
        self.wait(lambda: self.toolbar_status() == "idle", PAGE, "the toolbar to show idle")
        return self

    # --- reading the page ---------------------------------------------------------------

    def find(self, css: str, root=None) -> list:
        from selenium.webdriver.common.by import By

        return (root or self.driver).find_elements(By.CSS_SELECTOR, css)

    def cells(self) -> list:
        return self.find(CELLS)

    def cell(self, index: int):
        return self.cells()[index]

    def prompt(self, index: int) -> str:
        return self.find(".jp-InputPrompt", self.cell(index))[0].text.strip()

    def outputs(self, index: int) -> list:
        return self.find(".jp-OutputArea-output", self.cell(index))

    def output_text(self, index: int) -> str:
        return "\n".join(o.text for o in self.outputs(index))

    def stream(self, index: int, name: str) -> str:
        mime = f"application/vnd.jupyter.{name}"
        return "\n".join(o.text for o in self.find(
            f'.jp-OutputArea-output[data-mime-type="{mime}"]', self.cell(index)))

    def errors(self, index: int) -> str:
        """Error outputs (tracebacks render as stderr-typed text)."""
        return self.stream(index, "stderr")

    def toolbar_status(self) -> str | None:
        found = self.find(f"{NOTEBOOK} .jp-Notebook-ExecutionIndicator")
        return found[0].get_attribute("data-status") if found else None

    def history(self) -> dict | None:
        """What the page showed since it loaded; None if the page was reloaded."""
        return self.driver.execute_script("return window.__e2e || null")

    def prompt_history(self, index: int) -> list[tuple[str, int]]:
        history = self.history() or {}
        return [tuple(p) for p in history.get("prompts", {}).get(str(index), [])]

    def died_dialogs(self) -> list[str]:
        """Dialogs ever shown that say the kernel died or is restarting by itself."""
        return [text for text in (self.history() or {}).get("dialogs", [])
                if re.search(r"died|Kernel Restarting|Dead kernel|Kernel Error", text, re.I)]

    def dialogs(self) -> list:
        return self.find(DIALOG)

    # --- acting -------------------------------------------------------------------------

    def button(self, command: str):
        """A notebook toolbar button, by its stable data-command attribute."""
        found = self.find(f'{NOTEBOOK} .jp-NotebookPanel-toolbar [data-command="{command}"]')
        assert found, f"no toolbar button with data-command={command!r}"
        return found[0]

    def click_button(self, command: str) -> None:
        self.button(command).click()

    def select(self, index: int) -> None:
        """Click the cell's input prompt (command mode), as a person would. The click is
        retried while the layout moves under it (a growing output), never through a dialog."""
        from selenium.common.exceptions import ElementClickInterceptedException

        def attempt() -> bool:
            shown = self.dialogs()
            if shown:
                raise AssertionError(f"a dialog is in the way: {[d.text for d in shown]}")
            cell = self.cell(index)
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
            try:
                self.find(".jp-InputPrompt", cell)[0].click()
            except ElementClickInterceptedException:
                return False
            return "jp-mod-selected" in self.cell(index).get_attribute("class")

        self.wait(attempt, PAGE, f"cell {index} to be selected")

    def run(self, index: int) -> float:
        """Select the cell and press Shift+Enter, as a person would; wait until it shows
        [*] (queued or running). Returns the monotonic time of the key press."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        self.select(index)
        before = len(self.prompt_history(index))
        pressed = time.monotonic()
        ActionChains(self.driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER) \
            .key_up(Keys.SHIFT).perform()
        self.wait(lambda: any(text == "[*]:" for text, _ in
                              self.prompt_history(index)[before:]),
                  PAGE, f"cell {index} to show [*]")
        return pressed

    def wait_running(self, index: int, timeout: float = CELL) -> None:
        """The cell is the one running: [*] on the page and busy in the REST API."""
        self.wait(lambda: self.prompt(index) == "[*]:", timeout, f"cell {index} to show [*]")
        self.server.wait_kernel_state(self.kernel_id, "busy", timeout)

    def wait_done(self, index: int, timeout: float = CELL) -> str:
        """Wait until the cell's prompt leaves [*] and the kernel is idle in the REST API;
        returns the prompt it shows then (a person expects [N]:)."""
        self.wait(lambda: self.prompt(index) != "[*]:", timeout,
                  f"cell {index} to leave [*] (it shows {self.prompt(index)!r})")
        self.server.wait_kernel_state(self.kernel_id, "idle", timeout)
        self.wait(lambda: self.toolbar_status() == "idle", timeout, "the toolbar to show idle")
        return self.prompt(index)

    def run_and_wait(self, index: int, timeout: float = CELL) -> str:
        self.run(index)
        return self.wait_done(index, timeout)

    def scroll_to(self, index: int) -> None:
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})",
                                   self.cell(index))

    def drag(self, element, dx: int) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).click_and_hold(element).move_by_offset(dx // 2, 0) \
            .move_by_offset(dx - dx // 2, 0).release().perform()

    def press(self, element, key: str) -> None:
        from selenium.webdriver.common.keys import Keys

        element.send_keys(getattr(Keys, key))

    def screenshot(self, name: str, element=None) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        if element is not None:
            element.screenshot(str(path))
        else:
            self.driver.save_screenshot(str(path))
        return path


def is_number_prompt(text: str) -> bool:
    return bool(PROMPT_NUMBER.match(text))


# --- figures: printed at the end of the run and saved next to the screenshots -------------

FIGURES: list[tuple[str, float, str]] = []


def record(label: str, value: float, unit: str = "s") -> None:
    FIGURES.append((label, value, unit))
    print(f"e2e figure: {label}: {value:.3f} {unit}")


def save_figures() -> None:
    if FIGURES:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "figures.json").write_text(json.dumps(
            [{"what": label, "value": round(value, 4), "unit": unit}
             for label, value, unit in FIGURES], indent=1))
