"""What a learner sees in app mode: ``voila notebooks/dashboard-app.ipynb`` in headless
Chromium.

1. Voilà serves the app notebook on a free port of 127.0.0.1 (fast mode, as the lab
   fixtures set it), with a token; the page shows the title and the dashboard, and no
   code: no code cell, no line of the notebook's source;
2. no widget error text, no error line on the dashboard; the learning-curve chart is
   drawn and empty;
3. press Run: the chart grows in steps (plotly.js applies updates with two or more
   increasing point counts, recorded at its own update events), and at the end has one
   point per round done; the status line says the run ended (the round limit) and Stop
   is disabled;
4. every plotly figure in the page (the data split, the curves) is drawn with data;
5. a screenshot of the whole page: ``voila-dashboard.png`` in the artefacts folder
   (``docs/voila.png`` only with ``FEDLAB_UPDATE_SCREENSHOT=1``).

Voilà is stopped by the PID this test started (SIGTERM, then SIGKILL), and the kernels
it started with it (its child processes), also when the test fails.

    python -m pytest -q -m browser tests/browser/test_voila_browser.py
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import (NOTEBOOK_DIR, artifacts_dir, chromium_page, free_port, kernel_env,
                      wait_for_server)
from labkit import (assert_grew_in_steps, button, chart_updates, count_js, drawn_points,
                    empty_figures, figure_data, note_samples, progress_round, publish_screenshot,
                    record_chart_updates, sample_run, status, wait_until, widget_problems)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
APP = "dashboard-app.ipynb"
SCREENSHOT = ROOT / "docs" / "voila.png"
START_TIMEOUT_S = 60      # Voilà's own start; the notebook runs when the page is asked for
PAGE_TIMEOUT_S = 120      # the page: a kernel, the notebook in fast mode, the widgets
STOP_TIMEOUT_S = 15
POLL_S = 0.05
MAX_SCREENSHOT_PX = 6000
# the app notebook's source lines a learner must not see (Voilà strips the code)
SOURCE_LINES = ("from fedlab_core.ui import Dashboard", "Dashboard(config, round_delay",
                "get_ipython()")

COUNT_JS = count_js(chart="fedlab-chart", stop="fedlab-stop", status="fedlab-status")
# visible code inputs, prompts or editors (a markdown cell's rendered text, the title,
# also sits in a .jp-InputArea: only code cells count)
CODE_CELLS_JS = """() => [...document.querySelectorAll(
    '.jp-CodeCell .jp-InputArea, .jp-CodeCell .jp-InputPrompt, .jp-CodeCell .highlight, '
    + '.jp-CodeMirrorEditor, .cm-editor, .CodeMirror')]
  .filter(el => el.offsetParent !== null)
  .map(el => el.className + ': ' + el.innerText.slice(0, 80))"""

# the element that scrolls the page's content (the tallest scrollable one), scrolled to
# its top: [content height, visible height]
SCROLLER_JS = """() => {
  const scrollers = [document.scrollingElement, ...document.querySelectorAll('body *')]
    .filter(el => el && el.scrollHeight > el.clientHeight + 10
            && (el === document.scrollingElement
                || ['auto', 'scroll'].includes(getComputedStyle(el).overflowY)));
  if (!scrollers.length) return [0, 0];
  const el = scrollers.reduce((a, b) => (b.scrollHeight > a.scrollHeight ? b : a));
  el.scrollTop = 0;
  return [el.scrollHeight, el.clientHeight];
}"""


@dataclass
class VoilaApp:
    """A Voilà server this test started."""

    proc: subprocess.Popen
    port: int
    token: str
    log_path: Path
    artifacts: Path
    notes: list[str] = field(default_factory=list)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no Voilà log)"

    def note(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        self.notes.append(line)
        print(line, file=sys.stderr)


def _port_open(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass   # connecting asks for no page: a page request would start a kernel


def _stop(app: VoilaApp) -> None:
    """SIGTERM to the Voilà process we started, then its kernels if any is left; SIGKILL
    after ``STOP_TIMEOUT_S``. Only our process and its children are touched."""
    import psutil

    try:
        children = psutil.Process(app.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if app.proc.poll() is None:
        app.proc.terminate()
        try:
            app.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            app.proc.kill()
            app.proc.wait(STOP_TIMEOUT_S)
    _, alive = psutil.wait_procs(children, timeout=5)
    for p in alive:   # a kernel Voilà did not shut down
        app.note(f"stopping Voilà's child process {p.pid} left behind")
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(alive, timeout=STOP_TIMEOUT_S)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture
def voila_app(chromium_path, tmp_path: Path, request):
    """``voila dashboard-app.ipynb`` on a free port of 127.0.0.1, on a copy of the notebooks."""
    if not (NOTEBOOK_DIR / APP).exists():
        pytest.fail(f"{APP} not found in {NOTEBOOK_DIR}", pytrace=False)
    try:
        import voila  # noqa: F401
    except ImportError:
        pytest.fail("voila is not installed (pip install -e '.[notebooks]')", pytrace=False)
    root = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, root,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (tmp_path / "jupyter-config").mkdir()
    (tmp_path / "runtime").mkdir()
    env = kernel_env(tmp_path / "jupyter-config", tmp_path / "runtime")
    port, token = free_port(), secrets.token_hex(16)
    log_path = tmp_path / "voila.log"
    cmd = [sys.executable, "-m", "voila", str(root / APP), "--no-browser",
           "--Voila.ip=127.0.0.1", f"--Voila.port={port}", "--Voila.port_retries=0",
           f"--Voila.token={token}", "--show_tracebacks=True"]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(root),
                            stdin=subprocess.DEVNULL)
    app = VoilaApp(proc=proc, port=port, token=token, log_path=log_path,
                   artifacts=artifacts_dir(tmp_path / "artifacts", request.node.name))
    app.note(f"started Voilà pid {proc.pid} on port {port}, log {log_path}")
    try:
        wait_for_server(proc, lambda: _port_open(port), START_TIMEOUT_S, "Voilà", app.log_tail)
        app.note("Voilà is listening")
        yield app
    finally:
        _stop(app)
        log.close()
        app.note(f"stopped Voilà pid {proc.pid} (exit code {proc.returncode})")


def _report(app: VoilaApp, page) -> None:
    shot = app.artifacts / "failure.png"
    try:
        page.screenshot(path=str(shot), full_page=True)
        where = f"failure screenshot: {shot}"
    except Exception as e:
        where = f"no failure screenshot ({e})"
    print("\n==== Voilà browser test failed ====", where, sep="\n", file=sys.stderr)
    print("---- notes ----", *app.notes, sep="\n", file=sys.stderr)
    print("---- browser console (errors, warnings) ----",
          *getattr(page, "fedlab_console", [])[-40:], sep="\n", file=sys.stderr)
    print("---- Voilà log (tail) ----", app.log_tail(), sep="\n", file=sys.stderr)


def test_dashboard_runs_as_a_voila_app(voila_app, chromium_path, tmp_path):
    app = voila_app
    with chromium_page(chromium_path, tmp_path / "chromium-profile") as page:
        try:
            _learner_uses_the_app(app, page)
        except BaseException as e:
            if not isinstance(e, KeyboardInterrupt):
                _report(app, page)
            raise


def _learner_uses_the_app(app: VoilaApp, page) -> None:
    t_start = time.monotonic()
    # 1. the page: the title and the dashboard, no code ----------------------------------
    page.goto(app.url(), wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_S * 1000)
    dash = page.locator(".fedlab-dashboard").first
    dash.wait_for(state="visible", timeout=PAGE_TIMEOUT_S * 1000)
    app.note(f"dashboard visible {time.monotonic() - t_start:.1f} s after asking for the page")
    assert page.get_by_role("heading", name=re.compile("fedlab · the dashboard")).count() == 1, \
        "the app's title is not shown"
    text = page.locator("body").inner_text()
    shown = [line for line in SOURCE_LINES if line in text]
    assert not shown, f"the app shows its code: {shown}"
    code = page.evaluate(CODE_CELLS_JS)
    assert not code, f"the app shows code cells or prompts: {code}"

    # 2. no widget error; the chart is drawn, empty ---------------------------------------
    problems = widget_problems(page, scope="body")
    assert not problems, "widget errors in the app:\n" + "\n".join(problems)
    for cls in ("fedlab-run", "fedlab-step", "fedlab-stop", "fedlab-status",
                "fedlab-progress-text", "fedlab-chart", "fedlab-partition"):
        assert dash.locator(f".{cls}").count() > 0, f"the dashboard has no .{cls} element"
    dash.locator(".fedlab-chart").scroll_into_view_if_needed()
    wait_until(lambda: dash.evaluate(COUNT_JS)["drawn"], timeout=30,
               what="the learning-curve chart to draw its axes")
    assert drawn_points(dash.evaluate(COUNT_JS)) == 0, "the chart shows points before Run"
    before = status(dash)
    app.note(f"ready: status {before!r}")

    # 3. Run: the curve gains points live, the run ends -----------------------------------
    handle = dash.element_handle()
    record_chart_updates(handle, "fedlab-chart")
    button(dash, "fedlab-run").click()
    t_click = time.monotonic()
    # until the run ended, with or without points: the asserts below say
    samples = sample_run(handle, COUNT_JS, timeout=60, poll_s=POLL_S, ended=lambda st: (
        not st["running"] and st["status"] != before
        and not st["status"].startswith(("running", "stopping"))))
    compact = note_samples(app, samples)
    rounds = wait_until(lambda: progress_round(dash), timeout=10, what="the progress 'round k / N'")
    wait_until(lambda: drawn_points(dash.evaluate(COUNT_JS)) == rounds, timeout=15,
               what=f"one point per round done ({rounds})")
    applied = chart_updates(handle)
    app.note(f"points after each of plotly.js's {len(applied)} updates: {applied}; "
             f"points seen while Stop was enabled: {sorted({n for _, n, r in samples if r})}")
    assert_grew_in_steps(applied, rounds, compact)
    final = status(dash)
    app.note(f"run ended after {time.monotonic() - t_click:.1f} s: round {rounds}, {final!r}")
    assert button(dash, "fedlab-stop").is_disabled(), "Stop is still enabled after the run"
    assert "round limit" in final and "reached" in final, \
        f"the status line does not say the run ended: {final!r}"
    assert dash.locator(".fedlab-error").inner_text().strip() == "", \
        f"the run failed: {dash.locator('.fedlab-error').inner_text()!r}"

    # 4. every figure drawn with data -----------------------------------------------------
    figures = figure_data(page, ".js-plotly-plot")
    assert len(figures) >= 2, f"expected the data split and the curves: {figures}"
    assert not empty_figures(figures), f"figures without data: {empty_figures(figures)}"
    problems = widget_problems(page, scope="body")
    assert not problems, "widget errors after the run:\n" + "\n".join(problems)

    # 5. the screenshot ---------------------------------------------------------------------
    page.mouse.move(1270, 10)   # no hover effects or plotly tooltips
    # Voilà scrolls an inner element, not the page: make the window as tall as its content
    content, visible = page.evaluate(SCROLLER_JS)
    height = min(MAX_SCREENSHOT_PX, max(900, 900 - visible + content))
    page.set_viewport_size({"width": 1280, "height": height})
    page.wait_for_timeout(500)   # plotly relayouts on the resize
    shot = app.artifacts / "voila-dashboard.png"
    page.screenshot(path=str(shot))
    app.note(f"screenshot {shot}; {time.monotonic() - t_start:.1f} s in all")
    publish_screenshot(shot, SCREENSHOT)
