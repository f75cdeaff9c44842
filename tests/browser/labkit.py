"""What the browser tests share: polling, counting a live chart's points, Run All, saving,
and a failure report. Imported by the test modules beside it (pytest puts this folder on
``sys.path``); the JupyterLab and Chromium fixtures are in ``conftest.py``."""

from __future__ import annotations

import contextlib
import re
import sys
import time


def count_js(*, chart: str, stop: str, status: str) -> str:
    """Page-side function measuring the first trace of the plotly chart inside ``.{chart}``.

    ``calc`` counts the finite points plotly.js computed (``gd.calcdata[0]``): markers are
    thinned past 25 points and line simplification drops collinear vertices, so neither
    SVG count follows the data. ``markers`` and ``lineVertices`` check it is really drawn.
    """
    return f"""
(root) => {{
  const chart = root.querySelector('.{chart}');
  const gd = chart && chart.querySelector('.js-plotly-plot');
  if (!gd) return {{found: false, drawn: false, calc: 0, markers: 0, lineVertices: 0, traces: 0}};
  // an empty trace draws no SVG group: 'drawn' only says the axes are there
  const drawn = !!gd.querySelector('.main-svg .cartesianlayer .xy');
  const traces = gd.querySelectorAll('.scatterlayer .trace.scatter');
  const first = traces[0];
  const markers = first ? first.querySelectorAll('path.point').length : 0;
  const line = first ? first.querySelector('path.js-line') : null;
  const d = line ? (line.getAttribute('d') || '') : '';
  const lineVertices = (d.match(/[ML]/g) || []).length;
  let calc = 0;
  const cd = gd.calcdata && gd.calcdata[0];
  if (cd) calc = cd.filter(p => Number.isFinite(p.x) && Number.isFinite(p.y)).length;
  // Stop is enabled exactly while a background run goes on
  const stop = root.querySelector('button.{stop}, .{stop} button');
  const st = root.querySelector('.{status}');
  return {{found: true, drawn, calc, markers, lineVertices, traces: traces.length,
          running: !!stop && !stop.disabled, status: st ? st.innerText.trim() : ''}};
}}
"""


def wait_until(cond, *, timeout: float, what: str, interval: float = 0.1):
    """Poll ``cond()`` until truthy; return its value, or raise naming ``what``."""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
        except Exception as e:  # a transient DOM/API error counts as "not yet"
            last = e
        else:
            if last:
                return last
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} "
                                 f"(last value: {last!r})")
        time.sleep(interval)


def drawn_points(state: dict) -> int:
    """The points plotly computed, after checking that markers and a line are in the SVG."""
    if state["calc"] > 0:
        assert state["markers"] > 0, f"plotly computed {state['calc']} points but drew no marker: {state}"
        if state["calc"] > 1:
            assert state["lineVertices"] > 1, f"plotly computed {state['calc']} points but no line: {state}"
    return state["calc"]


def button(root, cls: str):
    return root.locator(f"button.{cls}, .{cls} button").first


def kernels_idle(lab) -> list | None:
    ks = lab.api("api/kernels")
    if len(ks) == 1 and ks[0]["execution_state"] == "idle" and ks[0].get("connections", 0) >= 1:
        return ks
    return None


def prompts(page) -> list[str]:
    return [t.strip() for t in
            page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()]


def run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()


def open_notebook(page, lab, notebook: str) -> list:
    """Open ``notebook`` and wait for a kernel that is really there (accepting a kernel
    chooser if one appears); returns the kernels the server reports."""
    import pytest

    if not (lab.root_dir / notebook).exists():
        pytest.fail(f"{notebook} not found in the notebooks folder", pytrace=False)
    page.goto(lab.url(f"lab/tree/{notebook}"), wait_until="domcontentloaded", timeout=60_000)
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(state="visible", timeout=60_000)

    def kernel_or_dialog():
        dialog = page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.is_visible():
            # a kernel chooser (notebook without kernelspec): take the default
            lab.note(f"dialog: {dialog.first.inner_text()[:200]!r}")
            dialog.locator(".jp-mod-accept").first.click()
        return kernels_idle(lab)

    return wait_until(kernel_or_dialog, timeout=60, interval=0.25,
                      what="an idle kernel with a connection (/api/kernels)")


def open_and_run_all(page, lab, notebook: str, t_start: float) -> list[str]:
    """``open_notebook`` then ``run_all_cells``, noting when each was done; the final prompts."""
    open_notebook(page, lab, notebook)
    lab.note(f"kernel ready after {time.monotonic() - t_start:.1f} s")
    final = run_all_cells(page, lab)
    lab.note(f"Run All done after {time.monotonic() - t_start:.1f} s; prompts {final}")
    return final


def note_samples(lab, samples: list[tuple[float, int, bool]]) -> list[tuple[float, int, bool]]:
    """Note the (seconds after Run, points, running) samples where something changed; return them."""
    compact = [(round(t, 2), n, r) for i, (t, n, r) in enumerate(samples)
               if i == 0 or (n, r) != samples[i - 1][1:]]
    lab.note(f"{len(samples)} samples in {samples[-1][0]:.2f} s after Run; "
             f"changes (s, points, running): {compact}")
    return compact


def run_all_cells(page, lab) -> list[str]:
    """Run All, check it really ran (an early Run All runs nothing), wait until no cell is
    queued or running and the kernel is idle; fail with the stderr outputs if a cell
    raised (Run All then stops early, leaving later cells unnumbered). Returns the prompts."""
    import pytest

    before = prompts(page)
    for attempt in (1, 2):
        run_all(page)
        try:
            wait_until(lambda: prompts(page) != before, timeout=15,
                       what="a cell prompt to change after Run All")
            break
        except AssertionError:
            if attempt == 2:
                raise
            lab.note("Run All changed no prompt; trying once more")
    wait_until(lambda: not any("*" in p for p in prompts(page)) and kernels_idle(lab),
               timeout=120, interval=0.25, what="Run All to finish (no [*] prompt, kernel idle)")
    final = prompts(page)
    if not all(re.fullmatch(r"\[\d+\]:", p) for p in final):
        stderr = page.locator(".jp-OutputArea-output[data-mime-type="
                              "'application/vnd.jupyter.stderr']").all_inner_texts()
        pytest.fail(f"Run All stopped early (prompts {final}); stderr outputs:\n"
                    + "\n----\n".join(t[-1500:] for t in stderr), pytrace=False)
    return final


def save_notebook(page, lab, notebook: str) -> None:
    """Ctrl+S (File ▸ Save Notebook if the key press was lost); wait for the file on disk."""
    def modified():
        return lab.api(f"api/contents/{notebook}?content=0")["last_modified"]

    before = modified()
    page.locator(".jp-Notebook .jp-Cell").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    try:
        wait_until(lambda: modified() != before, timeout=10, what="the notebook to be saved")
    except AssertionError:
        lab.note("Ctrl+S saved nothing in 10 s; saving from the File menu")
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).first.click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Save Notebook$")).first.click()
        wait_until(lambda: modified() != before, timeout=20, what="the notebook to be saved")
    wait_until(lambda: page.locator(".jp-mod-dirty").count() == 0, timeout=10,
               what="no unsaved-changes marker")


def report_failure(lab, page) -> None:
    """A failure screenshot, the browser console, the lab log and the test's notes, on stderr."""
    shot = lab.artifacts / "failure.png"
    try:
        page.screenshot(path=str(shot), full_page=False)
        where = f"failure screenshot: {shot}"
    except Exception as e:
        where = f"no failure screenshot ({e})"
    console = getattr(page, "fedlab_console", [])
    print("\n==== browser test failed ====", where, sep="\n", file=sys.stderr)
    print("---- notes ----", *lab.notes, sep="\n", file=sys.stderr)
    print("---- browser console (errors, warnings) ----", *console[-40:], sep="\n",
          file=sys.stderr)
    print("---- lab log (tail) ----", lab.log_tail(), sep="\n", file=sys.stderr)


@contextlib.contextmanager
def failure_report(lab, page):
    """Run a test's body; on any failure (not Ctrl-C) print ``report_failure`` and re-raise."""
    try:
        yield
    except BaseException as e:
        if not isinstance(e, KeyboardInterrupt):
            report_failure(lab, page)
        raise


def frame_for_screenshot(page, lab, root, *, height: int) -> None:
    """Hide the file browser, make the window ``height`` tall, put ``root`` at the top,
    and leave no cursor, hover effect or tooltip in the picture."""
    left = page.locator("#jp-left-stack")
    if left.count() and left.is_visible():
        page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
        page.keyboard.press("Control+b")   # hide the file browser: room for the widget
        try:
            wait_until(lambda: not left.is_visible(), timeout=5, what="the left sidebar to close")
        except AssertionError:
            lab.note("could not hide the left sidebar; screenshot with it")
    page.set_viewport_size({"width": 1280, "height": height})
    page.mouse.move(1270, height - 10)     # no hover effects or plotly tooltips
    page.keyboard.press("Escape")          # command mode: no blinking cursor
    root.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(600)             # let the scroll and plotly's relayout settle


# ---- added for the privacy test (test_privacy_browser.py) -----------------------------

PLOTLY_FIGURES_JS = """
() => {
  const plots = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea .js-plotly-plot')];
  const name = gd => {
    const m = gd.layout && gd.layout.meta;
    const t = gd.layout && gd.layout.title && gd.layout.title.text;
    return (m && m.fedlab) || t || (gd.closest('[class*="fedlab-"]') || {}).className || '?';
  };
  const drawn = plots.filter(gd => gd.querySelector('.main-svg .cartesianlayer .xy'));
  return {figures: plots.length, drawn: drawn.length,
          undrawn: plots.filter(gd => !drawn.includes(gd)).map(name),
          names: plots.map(name)};
}
"""


def plotly_figures(page) -> dict:
    """Every plotly figure in the notebook's outputs: how many, how many have their axes
    drawn, and a name for each (``layout.meta.fedlab``, else its title)."""
    return page.evaluate(PLOTLY_FIGURES_JS)


def error_outputs(page) -> list[str]:
    """The texts of the outputs that show an error: tracebacks (error outputs are rendered
    as stderr in JupyterLab) and stderr text naming an Error."""
    stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    return [t for t in stderr.all_inner_texts() if "Traceback" in t or "Error" in t]


def union_clip(page, locators, *, pad: int = 8) -> dict:
    """A screenshot ``clip`` (page coordinates) around the bounding boxes of ``locators``,
    ``pad`` pixels wider on every side and kept inside the viewport."""
    boxes = [b for b in (loc.bounding_box() for loc in locators) if b]
    if not boxes:
        raise AssertionError("nothing to frame: none of the elements has a bounding box")
    x0 = max(0, min(b["x"] for b in boxes) - pad)
    y0 = max(0, min(b["y"] for b in boxes) - pad)
    vp = page.viewport_size or {"width": 1280, "height": 900}
    x1 = min(vp["width"], max(b["x"] + b["width"] for b in boxes) + pad)
    y1 = min(vp["height"], max(b["y"] + b["height"] for b in boxes) + pad)
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


# ---- the dashboard's status line and progress ---------------------------------

def find_dashboard(page):
    """The first fedlab dashboard in the notebook's outputs, once visible."""
    dash = page.locator(".jp-OutputArea-output .fedlab-dashboard").first
    dash.wait_for(state="visible", timeout=60_000)
    return dash


def status(dash) -> str:
    return dash.locator(".fedlab-status").inner_text().strip()


def progress_round(dash) -> int | None:
    """The round the dashboard's progress text shows ("round 3 / 20" -> 3)."""
    m = re.search(r"round\s+(\d+)\s*/\s*(\d+)", dash.locator(".fedlab-progress-text").inner_text())
    return int(m.group(1)) if m else None


def is_running(dash) -> bool:
    # Stop is enabled exactly while a background run goes on
    return not button(dash, "fedlab-stop").is_disabled()


def run_to_end(dash, *, timeout: float) -> int:
    """Press the dashboard's Run and wait until the run ends (Stop disabled, a final
    status, at least one round); the rounds done."""
    before = status(dash)
    button(dash, "fedlab-run").click()

    def ended():
        st = status(dash)
        return (st != before and not st.startswith(("running", "stopping"))
                and not is_running(dash) and (progress_round(dash) or 0) >= 1)

    wait_until(ended, timeout=timeout, interval=0.1,
               what="the run to end (Stop disabled, a final status)")
    return progress_round(dash)


def wait_for_figures(page, lab, minimum: int) -> dict:
    """Wait until at least ``minimum`` plotly figures are drawn and none lacks its axes."""
    seen: dict = {}

    def enough():
        seen.update(plotly_figures(page))
        return seen["drawn"] >= minimum and seen["drawn"] == seen["figures"]

    try:
        wait_until(enough, timeout=30, what=f"{minimum} drawn plotly figures")
    except AssertionError as err:
        raise AssertionError(f"{err}; last seen: {seen}") from None
    lab.note(f"figures: {seen['figures']} drawn: {seen['names']}")
    return seen
