"""What a person at a JupyterLab notebook sees when code crashes, hangs, floods or restarts.

A real `jupyter lab` on loopback runs kernelsvc (installed with `kernelsvc install
--prefix`); headless Chromium, driven by Selenium, clicks and types as a person would.
Every wait is on the page (WebDriverWait) or on the server's REST API, with a timeout.
Screenshots go to tests/e2e/artifacts/, figures to the end of pytest's output.
"""

from __future__ import annotations

import time

import pytest

from kernelsvc.supervisor import kernelspec
from kernelsvc.supervisor.limits import parse_size
from tests.e2e import lab
from tests.e2e.lab import CELL, PAGE, is_number_prompt, record
from tests.helpers.waiting import wait_until

INTERRUPT = "notebook:interrupt-kernel"
RESTART = "notebook:restart-kernel"
GRACE = 3.0  # kernelsvc's default --interrupt-timeout


def first(found: list):
    return found[0] if found else None


def no_died_dialog(page: lab.NotebookPage) -> list[str]:
    shown = page.died_dialogs()
    return [f"a dialog said the kernel died or restarted by itself: {shown}"] if shown else []


@pytest.mark.timeout(300)
def test_kernelsvc_kernelspec_is_listed_by_the_server(lab_server):
    specs = lab_server.api("GET", "/api/kernelspecs")["kernelspecs"]
    assert lab.KERNEL_NAME in specs, sorted(specs)
    spec = specs[lab.KERNEL_NAME]["spec"]
    assert spec["metadata"]["kernel_provisioner"]["provisioner_name"] == "kernelsvc"
    assert spec["interrupt_mode"] == "signal" and spec["language"] == "python"
    # the default per-cell output budget: what keeps the page usable under a print flood
    assert spec["argv"][-2:] == ["--max-output-bytes", kernelspec.DEFAULT_MAX_OUTPUT_BYTES]
    installed = lab_server.base / "prefix" / "share" / "jupyter" / "kernels" / lab.KERNEL_NAME
    assert (installed / "kernel.json").is_file()


@pytest.mark.timeout(300)
def test_cells_render_text_html_result_figure_and_traceback(notebook):
    page = notebook([
        "print('hello from kernelsvc')",
        "from IPython.display import HTML\nHTML('<b class=\"e2e-rich\">rich <i>HTML</i></b>')",
        "6 * 7",
        "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(3, 2))\nax.plot([0, 1, 2], [0, 1, 4])\nplt.show()",
        "1 / 0",
    ])
    for index in range(5):
        assert page.run_and_wait(index) == f"[{index + 1}]:"

    assert page.stream(0, "stdout") == "hello from kernelsvc"
    rich = page.find("b.e2e-rich", page.cell(1))
    assert rich and rich[0].text == "rich HTML" and page.find("i", rich[0])
    result = page.find(".jp-OutputArea-executeResult", page.cell(2))
    assert result, "no execute_result in the cell"
    assert page.find(".jp-OutputPrompt", result[0])[0].text == "[3]:"
    assert page.find(".jp-OutputArea-output", result[0])[0].text == "42"
    image = page.wait(lambda: first(page.find(".jp-RenderedImage img", page.cell(3))),
                      CELL, "the matplotlib figure")
    assert image.get_attribute("src").startswith("data:image/png")
    page.wait(lambda: page.driver.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", image) > 100,
        CELL, "the figure to load")
    error = page.errors(4)
    assert "ZeroDivisionError" in error and "division by zero" in error

    page.scroll_to(2)
    page.screenshot("1-outputs")


@pytest.mark.timeout(300)
def test_slider_moves_both_ways(notebook):
    page = notebook([
        "import ipywidgets as widgets\n"
        "slider = widgets.IntSlider(value=5, min=0, max=10, description='level')\nslider",
        "print('kernel sees', slider.value)",
        "print('kernel sees', slider.value)",
        "slider.value = 2",
    ])
    assert is_number_prompt(page.run_and_wait(0))
    handle = page.wait(lambda: first(page.find('.widget-hslider [role="slider"]',
                                               page.cell(0))), CELL, "the slider")
    readout = page.find(".widget-hslider .widget-readout", page.cell(0))[0]

    def value() -> int:
        return round(float(handle.get_attribute("aria-valuenow")))

    assert value() == 5 and readout.text == "5"

    # frontend -> kernel: drag the handle to the right with the mouse
    track = page.find(".widget-hslider .slider", page.cell(0))[0]
    page.drag(handle, int(track.size["width"] * 0.3))
    dragged = page.wait(lambda: value() > 5 and value(), CELL, "the handle to move right")
    page.wait(lambda: readout.text == str(dragged), CELL, "the readout to follow the drag")
    assert page.run_and_wait(1)
    assert page.stream(1, "stdout") == f"kernel sees {dragged}"

    # frontend -> kernel: the keyboard, one step left
    page.press(handle, "ARROW_LEFT")
    page.wait(lambda: value() == dragged - 1, CELL, "the handle to move one step left")
    assert page.run_and_wait(2)
    assert page.stream(2, "stdout") == f"kernel sees {dragged - 1}"

    # kernel -> frontend
    assert page.run_and_wait(3)
    page.wait(lambda: value() == 2 and readout.text == "2", CELL,
              "the slider to follow slider.value = 2")
    page.scroll_to(0)
    page.screenshot("2-slider")
    assert not no_died_dialog(page)


CRASHES = {
    "os_exit": ("import os; os._exit(1)", "worker exited with code 1"),
    "segfault": ("import ctypes; ctypes.string_at(0)", "SIGSEGV"),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", sorted(CRASHES))
def test_crash_ends_with_an_error_in_the_cell_and_the_next_cell_runs(notebook, kind):
    code, says = CRASHES[kind]
    page = notebook(["x = 1", code, "print('next cell ran'); 'x' in globals()"])
    assert page.run_and_wait(0) == "[1]:"

    pressed = page.run(1)
    prompt = page.wait_done(1)
    elapsed = time.monotonic() - pressed
    record(f"{kind}: Shift+Enter to the crashed cell's error, kernel idle", elapsed)
    page.scroll_to(1)
    page.screenshot(f"3-crash-{kind}")
    page.screenshot(f"3-crash-{kind}-cell", page.cell(1))

    error = page.errors(1)
    assert "WorkerDied" in error and says in error, error
    problems = no_died_dialog(page)
    if not is_number_prompt(prompt):
        problems.append(f"the crashed cell's prompt shows {prompt!r}, not [N]: "
                        f"(prompt history {page.prompt_history(1)})")
    assert not problems, problems
    assert elapsed < 30, f"the crash took {elapsed:.1f} s to show"

    assert is_number_prompt(page.run_and_wait(2))
    assert page.stream(2, "stdout") == "next cell ran"
    assert page.find(".jp-OutputArea-executeResult", page.cell(2))[0].text.endswith("False")
    assert page.history() is not None, "the page was reloaded"
    assert not no_died_dialog(page)


@pytest.mark.timeout(300)
def test_interrupt_button_stops_a_busy_loop_and_variables_survive(notebook):
    page = notebook(["x = 41", "while True: pass", "x + 1"])
    assert page.run_and_wait(0) == "[1]:"
    page.run(1)
    page.wait_running(1)

    clicked = time.monotonic()
    page.click_button(INTERRUPT)
    prompt = page.wait_done(1)
    record("interrupt button to KeyboardInterrupt, kernel idle", time.monotonic() - clicked)
    assert "KeyboardInterrupt" in page.errors(1)
    assert prompt == "[2]:"

    assert page.run_and_wait(2) == "[3]:"
    assert page.output_text(2) == "42"
    page.scroll_to(1)
    page.screenshot("4-interrupt")
    assert not no_died_dialog(page)


IGNORES_SIGINT = ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                  "print('ignoring SIGINT')\nwhile True: pass")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("presses", [1, 2])
def test_interrupting_code_that_ignores_sigint_restarts_the_worker(notebook, lab_server,
                                                                   presses):
    page = notebook(["x = 1", IGNORES_SIGINT, "print('next cell ran'); 'x' in globals()"])
    assert page.run_and_wait(0) == "[1]:"
    page.run(1)
    page.wait_running(1)
    # an interrupt that came before SIG_IGN would be an ordinary KeyboardInterrupt
    page.wait(lambda: page.stream(1, "stdout") == "ignoring SIGINT", CELL,
              "the cell to say it ignores SIGINT")

    mark = lab_server.log_size()
    clicked = time.monotonic()
    for press in range(presses):
        if press:
            # Pressed again once the first press took effect, as a person would: two SIGINTs
            # sent before the supervisor gets the CPU are one signal (POSIX does not queue
            # them), and that one would be escalated after the grace period instead.
            wait_until(lambda: '"interrupt_sent"' in lab_server.log_since(mark), CELL,
                       "the supervisor to pass the first press on to the worker")
        page.click_button(INTERRUPT)
    prompt = page.wait_done(1, timeout=CELL + GRACE)
    elapsed = time.monotonic() - clicked
    how = "after the grace period" if presses == 1 else "at the second press"
    record(f"SIGINT ignored: interrupt to WorkerRestarted {how}", elapsed)
    page.scroll_to(1)
    page.screenshot(f"4-escalation-{presses}-press")

    error = page.errors(1)
    assert "WorkerRestarted" in error and "worker restarted, variables lost" in error, error
    if presses == 1:
        assert f"did not respond to interrupt within {GRACE:g} s" in error, error
        assert elapsed >= GRACE - 0.5, f"restarted after {elapsed:.2f} s, before the grace"
    else:
        assert "was interrupted twice" in error, error
    problems = no_died_dialog(page)
    if not is_number_prompt(prompt):
        problems.append(f"the restarted cell's prompt shows {prompt!r}, not [N]:")
    assert not problems, problems

    assert is_number_prompt(page.run_and_wait(2))
    assert page.stream(2, "stdout") == "next cell ran"
    assert page.find(".jp-OutputArea-executeResult", page.cell(2))[0].text.endswith("False")
    assert not no_died_dialog(page)


@pytest.mark.timeout(300)
def test_restart_button_restarts_in_place(notebook, lab_server):
    page = notebook(["x = 1", "1 + 1", "'x' in globals()"])
    assert page.run_and_wait(0) == "[1]:"
    supervisor = lab_server.supervisor_pid(page.kernel_id)
    workers_before = lab.descendants(supervisor)

    page.click_button(RESTART)
    dialog = page.wait(lambda: first(page.dialogs()), PAGE, "the restart confirmation")
    assert "restart the kernel" in dialog.text
    accept = page.find("button.jp-mod-accept", dialog)[0]
    assert accept.text == "Restart"
    page.screenshot("5-restart-confirmation")

    clicked_ms, clicked = time.time() * 1000, time.monotonic()
    accept.click()
    wait_until(lambda: lab.descendants(supervisor) - workers_before
               and lab_server.kernel(page.kernel_id)["execution_state"] == "idle",
               CELL, "a fresh worker under the same supervisor, idle in the REST API")
    rest_idle = time.monotonic() - clicked
    record("restart: click Restart to idle with a fresh worker (REST API)", rest_idle)
    assert not no_died_dialog(page), no_died_dialog(page)

    def idle_again_ms():
        statuses = [(s, t) for s, t in page.history()["statuses"] if t >= clicked_ms - 50]
        left = next((i for i, (s, _) in enumerate(statuses) if s != "idle"), None)
        if left is None:
            return None
        return next((t for s, t in statuses[left:] if s == "idle"), None)

    idle_ms = page.wait(idle_again_ms, CELL, "the toolbar to leave idle and come back")
    record("restart: click Restart to kernel idle on the page", (idle_ms - clicked_ms) / 1000)
    assert not page.dialogs(), [d.text for d in page.dialogs()]

    assert page.run_and_wait(1) == "[1]:", "the execution count did not start again"
    assert page.output_text(1) == "2"
    record("restart: click Restart to 1+1 showing 2", time.monotonic() - clicked)
    assert page.run_and_wait(2) == "[2]:" and page.output_text(2) == "False"

    assert lab_server.supervisor_pid(page.kernel_id) == supervisor, "not restarted in place"
    assert f"kernelsvc restarted in place (pid {supervisor})" in lab_server.log()
    page.scroll_to(0)
    page.screenshot("5-restarted")
    assert not no_died_dialog(page)


@pytest.mark.timeout(300)
def test_print_flood_leaves_the_page_responsive_and_interrupt_works(notebook, lab_server):
    from selenium.common.exceptions import TimeoutException

    page = notebook(["x = 41", "while True: print('x' * 100)", "x + 1"])
    assert page.run_and_wait(0) == "[1]:"
    page.run(1)
    page.wait_running(1)
    page.wait(lambda: page.find('[data-mime-type="application/vnd.jupyter.stdout"]',
                                page.cell(1)), CELL, "the flood to reach the page")

    slowest: dict[str, float] = {}
    probes = {"a script round trip": lambda: page.driver.execute_script("return 1"),
              "a click selecting the cell below": lambda: page.select(2),
              "a click selecting the cell above": lambda: page.select(0)}
    for _ in range(3):  # while it floods, the page answers and clicks select cells
        for what, probe in probes.items():
            started = time.monotonic()
            try:
                probe()
            except TimeoutException:
                record(f"print flood: {what} while flooding took more than", PAGE)
                pytest.fail(f"the page did not react to {what} within {PAGE} s of the flood")
            slowest[what] = max(slowest.get(what, 0.0), time.monotonic() - started)
        assert lab_server.kernel(page.kernel_id)["execution_state"] == "busy"
    for what, seconds in slowest.items():
        record(f"print flood: slowest {what} while flooding", seconds)
    shown = page.driver.execute_script("return arguments[0].textContent.length", page.cell(1))
    record("print flood: text in the flooding cell by then", shown / 1e6, "MB")
    assert max(slowest.values()) < 10, f"the page was slow during the flood: {slowest}"
    page.screenshot("6-flood")

    clicked = time.monotonic()
    page.click_button(INTERRUPT)
    prompt = page.wait_done(1, timeout=CELL * 2)
    record("print flood: interrupt button to kernel idle", time.monotonic() - clicked)
    errors = page.errors(1)
    assert "KeyboardInterrupt" in errors
    # kernelspec's default budget kept the head and the tail and said what it left out
    budget = parse_size(kernelspec.DEFAULT_MAX_OUTPUT_BYTES)
    assert f"characters of output omitted here (--max-output-bytes {budget})" in errors, errors
    assert prompt == "[2]:"
    shown = page.driver.execute_script("return arguments[0].textContent.length", page.cell(1))
    record("print flood: text in the flooded cell at the end", shown / 1e6, "MB")
    started = time.monotonic()
    page.select(0)
    record("print flood: a click after the cell ended", time.monotonic() - started)
    assert page.run_and_wait(2) == "[3]:"
    assert page.output_text(2) == "42"
    assert not no_died_dialog(page)
