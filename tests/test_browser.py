"""End to end in a real browser: JupyterLab from the venv, headless Chromium, lesson 00.

Starts ``jupyter lab`` exactly as a learner would (own port, random token, a scratch copy of
``notebooks/`` and a scratch ``CLOUDHSM_LAB_HOME``), drives it with Playwright, runs every cell
through the Run menu and asserts on what the page renders. Screenshots go to ``artifacts/``.

Needs Debian's ``chromium`` and the ``playwright`` Python package (no ``playwright install``:
we launch ``/usr/bin/chromium``). Without them the test skips locally; under ``CI`` it fails.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
JUPYTER = Path(sys.executable).parent / "jupyter"
LESSON_00 = "00_setup_check.ipynb"
EXERCISE_00 = "00_setup_check_exercise.ipynb"  # exercises/00 copied next to the lessons
RUN_TIMEOUT_MS = int(os.environ.get("LAB_BROWSER_TIMEOUT_S", "240")) * 1000
SETTINGS = {
    # Render every cell (no virtual scrolling), so the whole notebook is in the DOM.
    "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # No "get notified about Jupyter news?" toast over the screenshots; no network calls.
    "apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}


def _require(ok: bool, why: str) -> None:
    """Skip locally, fail under CI: CI must prove the browser path works."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI is set, so the browser test must run)")
    pytest.skip(f"{why}: install it (see .ci/run) to run the browser test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: base URL, token and its scratch folders."""

    url: str
    token: str
    notebooks: Path
    home: Path

    def api(self, path: str, method: str = "GET") -> object:
        """Call the Jupyter REST API with the token; JSON-decoded reply (or None)."""
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None


def _prepare_exercise(target: Path) -> None:
    """Exercise 00 as a learner has it after tasks 1-3: their code in, Q1 still open.

    The solution's code goes into the task cells (the learner's work so far); the first
    graded cell keeps its placeholder, for the browser test to answer wrongly, then rightly.
    """
    import nbformat

    exercise = nbformat.read(ROOT / "exercises" / LESSON_00, as_version=4)
    solution = nbformat.read(ROOT / "solutions" / LESSON_00, as_version=4)
    for ex_cell, sol_cell in zip(exercise.cells, solution.cells, strict=True):
        if ex_cell.cell_type == "code" and "graded" not in ex_cell.metadata.get("tags", []):
            ex_cell.source = sol_cell.source.replace("### BEGIN SOLUTION\n", "").replace(
                "### END SOLUTION\n", ""
            )
    nbformat.write(exercise, target)


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """Start ``jupyter lab`` on a free port; always shut it (and its kernels) down."""
    _require(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _require(False, "the playwright package is not installed in this venv")
    tmp = tmp_path_factory.mktemp("browser")
    notebooks = tmp / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks, ignore=shutil.ignore_patterns(".ipynb_*"))
    _prepare_exercise(notebooks / EXERCISE_00)
    home = tmp / "lab-home"
    env = dict(os.environ)
    env.update(
        CLOUDHSM_LAB_HOME=str(home),
        # Own settings/workspace/runtime dirs: no layout restored from the user's JupyterLab.
        JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "lab-workspaces"),
        JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"),
    )
    settings = tmp / "lab-settings" / "@jupyterlab"
    for plugin, values in SETTINGS.items():
        f = settings / plugin
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(values), encoding="utf-8")
    token = secrets.token_hex(16)
    port = _free_port()
    log = (tmp / "jupyter.log").open("wb")
    proc = subprocess.Popen(
        [
            str(JUPYTER),
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--notebook-dir={notebooks}",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: cleanup reaches every kernel
    )
    server = LabServer(f"http://127.0.0.1:{port}", token, notebooks, home)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited: {(tmp / 'jupyter.log').read_text()[-2000:]}")
            try:
                server.api("/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("jupyter lab did not answer within 90 s")
                time.sleep(0.5)
        yield server
    finally:
        try:
            server.api("/api/shutdown", method="POST")  # stops kernels cleanly
            proc.wait(timeout=20)
        except Exception:
            pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        try:  # kernels that outlived the server are in the same session
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


@pytest.fixture(scope="module")
def browser(lab_server: LabServer) -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _run_all(browser: object, server: LabServer, notebook: str, shot: str) -> object:
    """Open ``notebook``, Run → Run All Cells, wait until every code cell ran; the page."""
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    # A JupyterLab workspace of its own per notebook: only this tab is restored.
    page.goto(f"{server.url}/lab/workspaces/{shot}/tree/{notebook}?token={server.token}")
    nb = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(nb.locator(".jp-Notebook")).to_be_visible(timeout=90_000)  # slow under load
    # The kernel is up when the toolbar names it and the status bar says Idle.
    expect(nb.locator(".jp-KernelName")).not_to_have_text("No Kernel", timeout=90_000)
    expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle")).to_have_count(1, timeout=90_000)
    expect(nb.locator(".jp-Cell").last).to_be_attached()
    page.screenshot(path=str(ARTIFACTS / f"{shot}-opened.png"))

    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

    # Every code cell gets an execution count ("[n]:"), none stays "[*]:" or "[ ]:".
    code_cells = nb.locator(".jp-CodeCell")
    n = code_cells.count()
    assert n > 0
    page.wait_for_function(
        """([sel, n]) => {
             const panel = document.querySelector(sel);
             const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
             return prompts.length === n && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
           }""",
        arg=[".jp-NotebookPanel:not(.lm-mod-hidden)", n],
        timeout=RUN_TIMEOUT_MS,
    )
    expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle")).to_have_count(1)
    return page


def test_lesson_00_runs_in_jupyterlab(browser: object, lab_server: LabServer) -> None:
    """Run all of lesson 00 through the UI; its check cell prints, its answers stay folded."""
    from playwright.sync_api import expect

    page = _run_all(browser, lab_server, LESSON_00, "00")
    try:
        outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output")
        checked = outputs.filter(has_text="GCM added 16 bytes")
        expect(checked).to_have_count(1)
        checked.scroll_into_view_if_needed()
        expect(checked).to_be_visible()
        # "Predict, then reveal": the answer is in a closed <details> until the learner asks.
        expect(
            page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) details").first
        ).not_to_have_attribute("open", "")
        page.screenshot(path=str(ARTIFACTS / "00-checked.png"))
        expect(outputs.filter(has_text="round trip ok: True")).to_have_count(1)
        # The wrong-PIN cell is tagged raises-exception: Run All continued past it and
        # rendered the lab's explanation under the traceback.
        expect(outputs.filter(has_text="PinIncorrect")).not_to_have_count(0)
        # The kernel really used the scratch workspace, not the learner's home.
        assert lab_server.home.is_dir()
    finally:
        page.close()


def _notebook_with_plot() -> str | None:
    """First lesson whose stored outputs contain a PNG figure (lesson 00 has none)."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            for out in cell.get("outputs", []):
                if "image/png" in out.get("data", {}):
                    return path.name
    return None


def test_matplotlib_figure_renders(browser: object, lab_server: LabServer) -> None:
    """A lesson with a matplotlib plot shows it as an image in the browser."""
    from playwright.sync_api import expect

    name = _notebook_with_plot()
    if name is None:
        pytest.skip("no lesson in notebooks/ has a matplotlib figure yet (lesson 00 has none)")
    page = _run_all(browser, lab_server, name, Path(name).stem[:2])
    try:
        images = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img")
        expect(images.first).to_be_attached()
        images.first.scroll_into_view_if_needed()
        expect(images.first).to_be_visible()
        width = images.first.evaluate("img => img.complete ? img.naturalWidth : 0")
        assert width > 100, f"the figure did not load (naturalWidth={width})"
        page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem[:2]}-figure.png"))
    finally:
        page.close()


def _answer(page: object, cell: object, source: str) -> object:
    """Replace ``cell``'s text as a learner would (select all, type) and run it (Shift+Enter)."""
    from playwright.sync_api import expect

    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(source)  # no auto-indent or bracket closing in between
    page.keyboard.press("Shift+Enter")
    prompt = cell.locator(".jp-InputArea-prompt")
    expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=RUN_TIMEOUT_MS)
    output = cell.locator(".jp-OutputArea-output").last
    expect(output).to_be_visible()
    output.scroll_into_view_if_needed()
    return output


def test_exercise_00_wrong_then_right_answer(browser: object, lab_server: LabServer) -> None:
    """A learner answers exercise 00's Q1 wrongly, reads the feedback, then answers rightly.

    Screenshots of both outcomes go to artifacts/browser/ (ex00-wrong-answer.png,
    ex00-right-answer.png).
    """
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        page.goto(
            f"{lab_server.url}/lab/workspaces/ex00/tree/{EXERCISE_00}?token={lab_server.token}"
        )
        nb = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        expect(nb.locator(".jp-KernelName")).not_to_have_text("No Kernel", timeout=90_000)
        expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle")).to_have_count(
            1, timeout=90_000
        )
        # The learner's tasks 1-3 run first (up to the open question).
        code_cells = nb.locator(".jp-CodeCell")
        question = code_cells.filter(has_text='check("00.ex_moving"')
        expect(question).to_have_count(1)
        for i in range(code_cells.count()):
            cell = code_cells.nth(i)
            if 'check("00.ex_moving"' in cell.inner_text():
                break
            cell.locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")
            expect(cell.locator(".jp-InputArea-prompt")).to_have_text(
                re.compile(r"\[\d+\]"), timeout=RUN_TIMEOUT_MS
            )

        wrong = _answer(page, question, 'answer_q1 = "a"\ncheck("00.ex_moving", answer_q1)')
        expect(wrong).to_contain_text("00.ex_moving")
        expect(wrong).to_contain_text("Hint")
        page.screenshot(path=str(ARTIFACTS / "ex00-wrong-answer.png"))

        right = _answer(
            page, question, 'answer_q1 = "b, c, d, e"\ncheck("00.ex_moving", answer_q1)'
        )
        expect(right).to_contain_text("✅ 00.ex_moving: correct")
        page.screenshot(path=str(ARTIFACTS / "ex00-right-answer.png"))
    finally:
        page.close()
