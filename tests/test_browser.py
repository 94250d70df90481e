"""The SMTP console widget works in a real JupyterLab, in a real browser, with a live kernel.

The test starts JupyterLab from this venv on a free loopback port with a
notebook in a temporary folder (the first of the course's ``01-smtp-dialogue``,
``03-relay-control`` and ``00-welcome`` notebooks that shows an ``SMTPConsole``,
copied with its folder; else a two-cell notebook written here), opens it in
headless Chromium driven by Playwright, runs all cells from the *Run* menu,
types ``EHLO client.example.org`` + Enter into the console's command line and
waits for the server's ``250-PIPELINING`` line in that console's dialogue. No
cell may show a traceback and no widget may fail to render. On failure the
message names a screenshot of the page and the server's log.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs
it) and the ``playwright`` Python package (``pip install -e '.[test,ci]'``);
it never downloads a browser (no ``playwright install``). Every wait is bounded
(:data:`BUDGET` seconds in all) and the server is always shut down.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect
    from playwright.sync_api import sync_playwright
except ImportError:  # the test skips, saying so
    sync_playwright = None

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
#: seconds for everything: server start, page load, running the cells, the reply
BUDGET = 120.0
#: notebooks of the course that show the console, in order of preference
COURSE_NOTEBOOKS = ("01-smtp-dialogue.ipynb", "03-relay-control.ipynb", "00-welcome.ipynb")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
TOKEN = "mailsim-browser-test"
COMMAND = "EHLO client.example.org"
EXPECTED = "250-PIPELINING"


def _requirements():
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install chromium); "
                    ".ci/run installs it, so CI runs this test")
    if sync_playwright is None:
        pytest.skip("the playwright package is not installed "
                    "(pip install -e '.[test,ci]'; it drives /usr/bin/chromium, "
                    "no `playwright install` needed)")


def _own_notebook() -> dict:
    code = [
        "import tempfile\nimport mailsim\nimport mailsim.widgets\n"
        "host = mailsim.init_host(tempfile.mkdtemp() + \"/mx\", users=[\"alice\"])",
        "mailsim.widgets.SMTPConsole(host)",
    ]
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell{i}",
                   "metadata": {}, "outputs": [], "source": src} for i, src in enumerate(code)],
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                    "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def _prepare_notebook(root: Path) -> tuple[str, str]:
    """Put a notebook into ``root``; returns (its name, where it came from)."""
    for name in COURSE_NOTEBOOKS:
        src = ROOT / "notebooks" / name
        if src.exists() and "SMTPConsole" in src.read_text(encoding="utf-8"):
            # the whole folder, in case the notebook reads files beside it
            shutil.copytree(ROOT / "notebooks", root, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            return name, f"notebooks/{name}"
    (root / "console.ipynb").write_text(json.dumps(_own_notebook(), indent=1), encoding="utf-8")
    return "console.ipynb", "a notebook written by the test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, at_most: float | None = None) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the browser test took more than {BUDGET:.0f} s")
        return min(left, at_most) if at_most is not None else left

    def ms(self, at_most: float | None = None) -> float:
        return self.left(at_most) * 1000


def _api(port: int, path: str, method: str = "GET", timeout: float = 5.0):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


class Lab:
    """JupyterLab from this venv, on loopback, isolated from the user's settings."""

    def __init__(self, root: Path, state: Path) -> None:
        self.root, self.state, self.port = root, state, _free_port()
        self.log = state / "jupyter.log"
        self.proc: subprocess.Popen | None = None

    def start(self, deadline: Deadline) -> None:
        env = dict(os.environ,
                   JUPYTER_CONFIG_DIR=str(self.state / "config"),
                   JUPYTER_RUNTIME_DIR=str(self.state / "runtime"),
                   JUPYTER_DATA_DIR=str(self.state / "data"),
                   IPYTHONDIR=str(self.state / "ipython"),
                   JUPYTER_PLATFORM_DIRS="1")
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
               "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
               f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={self.root}",
               f"--LabApp.user_settings_dir={self.state / 'user-settings'}",
               f"--LabApp.workspaces_dir={self.state / 'workspaces'}",
               "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited with {self.proc.returncode}:\n"
                                     + self.log.read_text(errors="replace")[-3000:])
            try:
                if _api(self.port, "/api/status", timeout=deadline.left(2))[0] == 200:
                    return
            except (urllib.error.URLError, OSError):
                pass
            deadline.left()
            time.sleep(0.25)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Shut the server down (its kernels with it); kill it if it doesn't go."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:  # kernels are in their own sessions: let the server shut them down
            for k in json.loads(_api(self.port, "/api/kernels")[1]):
                _api(self.port, f"/api/kernels/{k['id']}", method="DELETE", timeout=10)
            _api(self.port, "/api/shutdown", method="POST")
        except (urllib.error.URLError, OSError, ValueError):
            pass
        try:
            self.proc.wait(10)
            return
        except subprocess.TimeoutExpired:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(5)
                return
            except subprocess.TimeoutExpired:
                continue


def _run_all(page, deadline: Deadline) -> int:
    """Run > Run All Cells, as a person would.

    Until JupyterLab has made the notebook its current widget, the menu's item
    is disabled (and a click on it does nothing): click into the notebook, open
    the menu, and try again while the item is greyed out or no cell has started.
    Returns how many times the menu was opened.
    """
    menu = page.locator("#jp-MainMenu").get_by_text("Run", exact=True)
    item = page.locator(".lm-Menu-item", has_text="Run All Cells").filter(
        has_not_text="Restart").first
    started = ("() => [...document.querySelectorAll('.jp-Notebook .jp-InputPrompt')]"
               ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))")
    tries = 0
    while True:
        tries += 1
        page.locator(".jp-Notebook .jp-InputPrompt").first.click(timeout=deadline.ms(10))
        menu.click(timeout=deadline.ms(10))
        item.wait_for(state="visible", timeout=deadline.ms(10))
        cls = item.get_attribute("class", timeout=deadline.ms(5)) or ""
        if "lm-mod-disabled" in cls:
            page.keyboard.press("Escape")
            page.wait_for_timeout(500)
            deadline.left()
            continue
        item.click(timeout=deadline.ms(10))
        try:
            page.wait_for_function(started, timeout=deadline.ms(10), polling=200)
            return tries
        except PlaywrightTimeout:
            deadline.left()


#: the status bar names a kernel that is idle, and the notebook says idle too
KERNEL_IDLE = """() => {
    const bar = [...document.querySelectorAll('.jp-StatusBar-Widget')].map(e => e.textContent).join(' ');
    const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return /\\| Idle/.test(bar) && !bar.includes('No Kernel') && !!ind
        && ind.getAttribute('data-status') === 'idle';
}"""


def _wait_idle(page, deadline: Deadline, at_most: float) -> None:
    """Until some cell has run, none is queued or running, and the kernel is idle."""
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-InputPrompt')];
            const busy = prompts.some(p => p.textContent.includes('*'));
            const ran = prompts.some(p => /\\[\\d+\\]/.test(p.textContent));
            return ran && !busy && (%s)();
        }""" % KERNEL_IDLE, timeout=deadline.ms(at_most), polling=250)


def _assert_no_errors(page) -> None:
    """No output area shows a traceback (JupyterLab renders errors as stderr)."""
    errors = [t for t in page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    ).all_text_contents() if "Traceback" in t or "Error" in t]
    assert not errors, "a cell failed:\n" + "\n---\n".join(errors)


def test_console_answers_in_jupyterlab(tmp_path):
    _requirements()

    started = time.monotonic()
    deadline = Deadline(BUDGET)
    root, state = tmp_path / "lab", tmp_path / "state"
    root.mkdir()
    state.mkdir()
    name, origin = _prepare_notebook(root)
    lab = Lab(root, state)
    timings: dict[str, float] = {}
    tries = 0
    shot = state / "page.png"
    page = None
    try:
        lab.start(deadline)
        timings["server"] = time.monotonic() - started
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(state / "chromium-profile"), executable_path=CHROMIUM, headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.goto(f"{lab.url}/lab/tree/{name}?reset&token={TOKEN}",
                          timeout=deadline.ms(60), wait_until="domcontentloaded")
                page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=deadline.ms(60))
                # the kernel is up once the status bar says "Python 3 (ipykernel) | Idle"
                # (before, it says "No Kernel | Initializing", then "| Connecting",
                # and the execution indicator reads idle while there is no kernel yet)
                page.wait_for_function(KERNEL_IDLE, timeout=deadline.ms(60), polling=250)
                timings["notebook open"] = time.monotonic() - started
                tries = _run_all(page, deadline)
                _wait_idle(page, deadline, 90)
                timings["cells run"] = time.monotonic() - started
                _assert_no_errors(page)   # Run All stops at a failing cell

                box = page.locator('.jp-OutputArea input[placeholder^="EHLO"]').first
                box.wait_for(state="visible", timeout=deadline.ms(30))
                # this console's own dialogue (a %%smtp cell above may show EHLO replies too)
                console = box.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '),"
                                      " ' widget-vbox ')][1]")
                shown = console.locator("pre.mailsim-smtp")
                # JupyterLab skips rendering cells out of view (Run All leaves the page at
                # the bottom): bring the console into view, read text, not rendering
                box.scroll_into_view_if_needed(timeout=deadline.ms(10))
                before = shown.text_content(timeout=deadline.ms(10)) or ""
                assert before.startswith("S: 220 "), f"the greeting, before anything is typed: {before!r}"
                # a course notebook may already have sent EHLO from a cell: count the replies
                replies = shown.locator("span", has_text=EXPECTED)
                n = replies.count()
                box.click(timeout=deadline.ms(10))
                box.fill(COMMAND, timeout=deadline.ms(10))
                box.press("Enter", timeout=deadline.ms(10))
                expect(replies).to_have_count(n + 1, timeout=deadline.ms(30))
                timings["reply shown"] = time.monotonic() - started
                dialogue = shown.text_content(timeout=deadline.ms(5)) or ""
                assert dialogue.count(f"C: {COMMAND}") == before.count(f"C: {COMMAND}") + 1, dialogue
                assert dialogue.rstrip().endswith("S: 250 CHUNKING"), dialogue[-500:]
                assert box.input_value(timeout=deadline.ms(5)) == "", "Enter clears the command line"

                _assert_no_errors(page)
                body = page.locator(".jp-Notebook").first.text_content(timeout=deadline.ms(5)) or ""
                assert "Error displaying widget" not in body, body[-2000:]
                assert "Traceback (most recent call last)" not in body, body[-3000:]
            except (AssertionError, PlaywrightError) as e:
                try:
                    if page is not None:
                        page.screenshot(path=str(shot), timeout=10_000)
                except Exception:
                    pass
                raise AssertionError(f"{origin}: {e}\n(screenshot: {shot}; server log: "
                                     f"{lab.log})") from e
            finally:
                ctx.close()
    finally:
        lab.stop()
    total = time.monotonic() - started
    print(f"browser test with {origin} (Run menu opened {tries}x): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + f", total {total:.1f} s")
    assert total < BUDGET + 30
