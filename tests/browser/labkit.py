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


def sample_run(handle, count_js: str, *, ended, timeout: float,
               poll_s: float = 0.05) -> list[tuple[float, int, bool]]:
    """After a click on Run: read ``count_js`` under ``handle`` every ``poll_s`` seconds
    until ``ended(state)`` or ``timeout``; returns the (seconds since the start, points,
    running) samples, for ``note_samples`` and the failure messages."""
    samples: list[tuple[float, int, bool]] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        st = handle.evaluate(count_js)   # one round trip: points, running, status
        samples.append((time.monotonic() - t0, st["calc"], st["running"]))
        if ended(st):
            break
        time.sleep(poll_s)
    return samples


def note_samples(lab, samples: list[tuple[float, int, bool]]) -> list[tuple[float, int, bool]]:
    """Note the (seconds after Run, points, running) samples where something changed; return them."""
    compact = [(round(t, 2), n, r) for i, (t, n, r) in enumerate(samples)
               if i == 0 or (n, r) != samples[i - 1][1:]]
    lab.note(f"{len(samples)} samples in {samples[-1][0]:.2f} s after Run; "
             f"changes (s, points, running): {compact}")
    return compact


def run_all_cells(page, lab, timeout: float = 120) -> list[str]:
    """Run All, check it really ran (an early Run All runs nothing), wait (up to
    ``timeout`` seconds) until no cell is queued or running and the kernel is idle; fail
    with the stderr outputs if a cell raised (Run All then stops early, leaving later
    cells unnumbered). Returns the prompts."""
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
               timeout=timeout, interval=0.25, what="Run All to finish (no [*] prompt, kernel idle)")
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


def publish_screenshot(shot, readme_picture) -> None:
    """Copy a test's screenshot to the README's picture (``docs/*.png``) only when asked
    with ``FEDLAB_UPDATE_SCREENSHOT=1``, so a test run leaves git clean."""
    import os
    import shutil
    from pathlib import Path

    if os.environ.get("FEDLAB_UPDATE_SCREENSHOT") == "1":
        Path(readme_picture).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, readme_picture)


def report_failure(lab, page, name: str = "failure.png") -> None:
    """A failure screenshot (``name`` in the lab's artefacts), the browser console, the lab
    log and the test's notes, on stderr."""
    shot = lab.artifacts / name
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
def failure_report(lab, page, name: str = "failure.png"):
    """Run a test's body; on any failure (not Ctrl-C) print ``report_failure`` and re-raise."""
    try:
        yield
    except BaseException as e:
        if not isinstance(e, KeyboardInterrupt):
            report_failure(lab, page, name)
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


# ---- every figure has data; no widget error (test_notebooks_browser.py, Voilà) ---------

# Counting a trace's data from what plotly.js computed for drawing it (``gd.calcdata``),
# so a figure whose axes are drawn but whose traces are empty counts 0:
# scatter: points with a finite x and y; bar: bars with a finite size; heatmap: finite
# cells; indicator: a finite value; any other type: its calc points.
_FIGURES_FN = """
function fedlabFigures(root, selector) {
  const finite = v => typeof v === 'number' && Number.isFinite(v);
  const count = (trace, cd) => {
    if (!cd || !cd.length) return 0;
    const type = trace.type || 'scatter';
    if (type === 'heatmap' || type === 'contour' || type === 'image') {
      let n = 0;
      for (const row of (cd[0].z || [])) for (const v of (row || [])) if (finite(v)) n++;
      return n;
    }
    if (type === 'indicator') return finite(cd[0].y) ? 1 : 0;
    if (type === 'bar') return cd.filter(p => finite(p.s)).length;
    if (type === 'scatter' || type === 'scattergl')
      return cd.filter(p => finite(p.x) && finite(p.y)).length;
    return cd.length;
  };
  return [...root.querySelectorAll(selector)].map((gd, i) => {
    const meta = gd.layout && gd.layout.meta;
    const title = gd.layout && gd.layout.title && gd.layout.title.text;
    const data = gd.data || [];
    const counts = data.map((t, k) => count(t, gd.calcdata && gd.calcdata[k]));
    return {
      index: i,
      name: (meta && meta.fedlab) || title || (gd.closest('[class*="fedlab-"]') || {}).className || '?',
      types: [...new Set(data.map(t => t.type || 'scatter'))],
      drawn: !!gd.querySelector('.main-svg .cartesianlayer .xy, .main-svg .indicatorlayer .trace'),
      traces: data.length,
      points: counts.reduce((a, b) => a + b, 0),
      // an output (JupyterLab's plotly renderer), not a live widget
      output: gd.classList.contains('jp-RenderedPlotly'),
    };
  });
}
"""
FIGURE_DATA_JS = f"(selector) => {{ {_FIGURES_FN}; return fedlabFigures(document, selector); }}"
# the same, run with an element as the root
FIGURE_DATA_IN_JS = f"(el, selector) => {{ {_FIGURES_FN}; return fedlabFigures(el, selector); }}"

NOTEBOOK_FIGURES = ".jp-Notebook .jp-OutputArea .js-plotly-plot"

# What JupyterLab's widget manager writes where a widget cannot be shown, and the
# placeholder it leaves while a widget's model has not arrived.
WIDGET_ERROR_TEXTS = ("Error displaying widget", "Failed to load model class",
                      "model not found", "Could not create a model", "Could not create a view")
WIDGET_LOADING_TEXT = "Loading widget..."


def figure_data(page, selector: str = NOTEBOOK_FIGURES) -> list[dict]:
    """Every plotly figure under ``selector``, in page order: a name (``layout.meta.fedlab``,
    its title, or its fedlab container), its trace types, whether its axes (or gauge) are
    drawn, and ``points``: the data plotly computed for drawing it (``FIGURE_DATA_JS``)."""
    return page.evaluate(FIGURE_DATA_JS, selector)


def wake_plotly_pictures(page, lab, scope: str = ".jp-Notebook .jp-OutputArea") -> int:
    """Turn every plotly output that shows its picture into a live chart, as a learner's
    mouse does; returns how many there were.

    After a reload, JupyterLab's plotly renderer (jupyterlab-plotly 7) shows the PNG
    snapshot it saved in the output (``image/png`` beside the figure's JSON) and draws the
    interactive chart only on mouse-over. Each picture must have loaded (a decoded image)
    before the mouse goes over it.
    """
    nodes = page.locator(f"{scope} .jp-RenderedPlotly")
    woken = 0
    for i in range(nodes.count()):
        node = nodes.nth(i)
        if node.evaluate("n => n.classList.contains('js-plotly-plot')"):
            continue   # already a live chart
        img = node.locator("img.plot-img")
        wait_until(lambda: img.evaluate("i => i.complete && i.naturalWidth > 0 "
                                        "&& getComputedStyle(i).display !== 'none'"),
                   timeout=15, what=f"plotly output #{i} to show its saved picture")
        # the mouse itself, not Locator.hover: the chart replaces the picture under the
        # pointer at once, and hover's retry would then wait for a hidden picture
        # (first off the notebook: a picture scrolled under a resting pointer wakes too)
        page.mouse.move(1270, 10)
        img.scroll_into_view_if_needed()
        box = img.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=2)
        wait_until(lambda: node.evaluate("n => n.classList.contains('js-plotly-plot')"),
                   timeout=15, what=f"plotly output #{i}'s picture to turn into a chart on "
                                    "mouse-over")
        woken += 1
    page.mouse.move(1270, 10)   # no plotly hover label left behind
    return woken


def empty_figures(figures: list[dict]) -> list[dict]:
    """The figures a learner would see without data: not drawn, or no point, bar or cell."""
    return [f for f in figures if not f["drawn"] or f["points"] <= 0]


def widget_problems(page, scope: str = ".jp-OutputArea-output") -> list[str]:
    """Widget error texts and the fedlab widgets' own error lines (``.fedlab-error``,
    ``.fedlab-partition-error``, the race's messages in red) shown under ``scope``."""
    texts = page.locator(scope).all_inner_texts()
    found = [f"{needle!r} in: {t.strip()[:300]!r}" for t in texts
             for needle in WIDGET_ERROR_TEXTS if needle in t]
    for cls in ("fedlab-error", "fedlab-partition-error"):
        for t in page.locator(f"{scope} .{cls}").all_inner_texts():
            if t.strip():
                found.append(f".{cls}: {t.strip()[:300]!r}")
    return found


def widgets_loading(page, scope: str = ".jp-OutputArea-output") -> int:
    """How many outputs still show the widget placeholder (a model that has not arrived)."""
    return sum(WIDGET_LOADING_TEXT in t for t in page.locator(scope).all_inner_texts())


# the live widgets whose chart stays empty until the learner presses Run:
# (root, Run button, Stop button, status line, chart box) classes
LIVE_WIDGETS = (("fedlab-dashboard", "fedlab-run", "fedlab-stop", "fedlab-status", "fedlab-chart"),
                ("fedlab-race", "fedlab-race-run", "fedlab-race-stop", "fedlab-race-status",
                 "fedlab-race-chart"))


def run_live_widgets(page, lab, *, scope: str = ".jp-OutputArea-output",
                     timeout: float = 90) -> list[str]:
    """Press Run on every dashboard and race under ``scope`` whose chart has no data yet,
    one at a time, and wait until its run ends (Stop disabled, a final status, data in
    its chart). Returns what each run's status line said at its end."""
    ended: list[str] = []
    for root_cls, run_cls, stop_cls, status_cls, chart_cls in LIVE_WIDGETS:
        roots = page.locator(f"{scope} .{root_cls}")
        for i in range(roots.count()):
            root = roots.nth(i)
            root.locator(f".{chart_cls}").scroll_into_view_if_needed()

            def chart_points():
                figs = root.evaluate(FIGURE_DATA_IN_JS, f".{chart_cls} .js-plotly-plot")
                return figs[0]["points"] if figs and figs[0]["drawn"] else None

            wait_until(lambda: chart_points() is not None, timeout=30,
                       what=f"the chart of .{root_cls} #{i}")
            if chart_points() > 0:
                continue
            status_el = root.locator(f".{status_cls}").first
            before = status_el.inner_text().strip()
            t0 = time.monotonic()
            button(root, run_cls).click()

            def finished():
                st = status_el.inner_text().strip()
                return (st != before and not st.startswith(("running", "racing", "stopping",
                                                            "starting"))
                        and button(root, stop_cls).is_disabled() and (chart_points() or 0) > 0
                        and st)

            st = wait_until(finished, timeout=timeout, interval=0.1,
                            what=f"the run of .{root_cls} #{i} to end with data in its chart")
            lab.note(f".{root_cls} #{i}: Run ended after {time.monotonic() - t0:.1f} s: {st!r}")
            ended.append(st)
    return ended


# ---- every figure across a save and a reload (every notebook's test) ----------------------

PLOTLY_MIME = "application/vnd.plotly.v1+json"
SETTLE_TIMEOUT_S = 60   # figures drawn and widgets loaded, after Run All or a reload


def settled_figures(page, minimum: int) -> list[dict]:
    """Wait until no widget is still loading, at least ``minimum`` figures are there, each
    drawn with data, and two looks 0.3 s apart agree; return the figures."""
    last: list = []

    def settled():
        if widgets_loading(page):
            last[:] = ["widgets still loading"]
            return None
        figs = figure_data(page)
        ok = len(figs) >= minimum and not empty_figures(figs)
        stable = ok and figs == last
        last[:] = figs
        return figs if stable else None

    try:
        return wait_until(settled, timeout=SETTLE_TIMEOUT_S, interval=0.3,
                          what=f"at least {minimum} drawn plotly figures, each with data")
    except AssertionError as err:
        empty = empty_figures([f for f in last if isinstance(f, dict)])
        raise AssertionError(f"{err}\nfigures without data: {empty}\nall: {last}") from None


def plotly_outputs(lab, notebook: str) -> int:
    """How many plotly figures the saved notebook holds as outputs (not widgets)."""
    nb = lab.api(f"api/contents/{notebook}?content=1&type=notebook", timeout=30)["content"]
    return sum(PLOTLY_MIME in out.get("data", {})
               for cell in nb["cells"] if cell["cell_type"] == "code"
               for out in cell.get("outputs", []))


def save_with_figures(page, lab, notebook: str) -> tuple[list[dict], int]:
    """Before a reload: every figure drawn with data (``settled_figures``), the notebook
    saved, and one plotly output in the file for every output figure on the page.
    Returns (the figures, the saved outputs) for ``assert_figures_back``."""
    before = settled_figures(page, 1)
    lab.note(f"{notebook}: {len(before)} figures: "
             + "; ".join(f"{f['name']} {f['types']} {f['points']}" for f in before))
    save_notebook(page, lab, notebook)
    saved = plotly_outputs(lab, notebook)
    shown = sum(f["output"] for f in before)
    assert shown == saved, (f"the saved notebook holds {saved} plotly outputs, the page "
                            f"drew {shown}: {before}")
    return before, saved


def assert_figures_back(page, lab, before: list[dict], saved: int) -> list[dict]:
    """After the reload: the same figures with the same data as ``before``, and no widget
    error. Live widgets (plotly ``FigureWidget``) come back from the kernel, which lives
    across the reload; plotly outputs come back from the saved file as the picture
    JupyterLab's plotly renderer saved with them, which must have loaded, and turn into
    charts under the mouse (``wake_plotly_pictures``)."""
    wait_until(lambda: page.locator(".jp-Notebook .jp-OutputArea .jp-RenderedPlotly").count()
               >= saved, timeout=SETTLE_TIMEOUT_S, what=f"{saved} plotly outputs after the reload")
    pictures = wake_plotly_pictures(page, lab)
    lab.note(f"after the reload, {pictures} of {saved} plotly outputs were pictures until "
             "the mouse went over them")

    def back():
        if widget_problems(page):
            return "widget errors"   # stop waiting: the assert below says which
        if widgets_loading(page):
            return None
        return figure_data(page) == before and "same figures"

    try:
        wait_until(back, timeout=SETTLE_TIMEOUT_S,
                   what="the same figures with the same data after the reload")
    except AssertionError as err:
        raise AssertionError(f"{err}\nbefore the reload: {before}\n"
                             f"now: {figure_data(page)}") from None
    problems = widget_problems(page)
    assert not problems, "widget errors after the reload:\n" + "\n".join(problems)
    after = figure_data(page)
    assert after == before, f"figures changed on reload:\n{before}\n{after}"
    return after


# ---- "the chart grows live", from plotly.js's own update events ---------------------------

# Why events and not only samples of the page every 50 ms: on a busy 2-core machine the
# browser can fall a whole short run behind the kernel and apply every update after the run
# ended, so no sample sees a point while Stop is enabled (the Voilà test failed that way in
# ~2 of 11 busy runs). The widget messages still arrive, in order, one per redraw: plotly.js
# fires an event for each, and the points it drew by then are recorded.
_RECORD_UPDATES_JS = """(root, chart) => {
  const gd = root.querySelector('.' + chart + ' .js-plotly-plot');
  const points = () => {
    const cd = gd.calcdata && gd.calcdata[0];
    return cd ? cd.filter(p => Number.isFinite(p.x) && Number.isFinite(p.y)).length : 0;
  };
  root.__fedlabPoints = [];
  for (const ev of ['plotly_update', 'plotly_restyle', 'plotly_relayout'])
    gd.on(ev, () => { root.__fedlabPoints.push(points()); });
}"""


def record_chart_updates(handle, chart: str) -> None:
    """From now on, note the first trace's points after every update plotly.js applies to
    the chart ``.{chart}`` under the element ``handle`` (read back with ``chart_updates``)."""
    handle.evaluate(_RECORD_UPDATES_JS, chart)


def chart_updates(handle) -> list[int]:
    """The points after each update since ``record_chart_updates``."""
    return handle.evaluate("root => root.__fedlabPoints || []")


def assert_grew_in_steps(applied: list[int], final: int, samples) -> None:
    """The chart grew in steps, not in one draw at the end: updates with a point count
    between 0 and ``final``, never fewer than before, the last one ``final``."""
    growing = [n for n in applied if n > 0]
    assert all(a <= b for a, b in zip(growing, growing[1:])), \
        f"the point count went down between updates: {applied}"
    assert growing and growing[-1] == final and any(n < final for n in growing), (
        f"the chart was not drawn live: plotly.js applied the point counts {applied} "
        f"(the run drew {final} points); samples (s, points, running): {samples}")
