"""What a learner sees: notebook 05's dashboard with DP-SGD and its live ε meter, in
JupyterLab in headless Chromium.

1. open ``05-differential-privacy.ipynb``, wait for its kernel, Run All (fast mode, as
   the fixtures set it), check that every cell ran and no output shows an error;
2. the dashboard (DP-SGD, ``stop.max_epsilon = 4``): its Privacy controls are there;
   press Run, wait until the run ends (the privacy budget may stop it after a round or
   two, or the round limit); the learning chart has one point per round done, the ε
   meter's headline line too (and each hospital's line), the gauge shows ε > 0, and the
   status line speaks of ε;
3. every plotly figure in the page is drawn (the dashboard's partition, chart and meter,
   the two frontier figures, the adaptive-clipping figure): at least ``MIN_FIGURES``;
4. save, reload the page: the meter still shows its points and its gauge value (plotly's
   FigureWidget keeps streamed data only if the dashboard re-syncs its state; browser
   notes, pitfall 4), and so does the chart;
5. a screenshot of the status line, the chart and the meter: always in the lab's
   artefact folder, and to ``docs/privacy.png`` only with ``FEDLAB_UPDATE_SCREENSHOT=1``.

Points are counted as in test_lab.py: the finite points plotly.js computed for a trace
(``gd.calcdata``), plus a check that markers (and a line, from two points on) are really
in the SVG. In the meter, trace 0 is the gauge (an Indicator), trace 1 the headline ε
(worst protected unit), traces 2… one per hospital.

    python -m pytest -q tests/browser/test_privacy_browser.py
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from labkit import (assert_figures_back, count_js, drawn_points, error_outputs, failure_report,
                    find_dashboard, frame_for_screenshot, kernels_idle, open_and_run_all,
                    publish_screenshot, run_live_widgets, run_to_end, save_with_figures, status,
                    union_clip, wait_for_figures, wait_until)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "05-differential-privacy.ipynb"
SCREENSHOT = ROOT / "docs" / "privacy.png"
# measured in fast mode: the dashboard's partition, learning chart and ε meter, the two
# frontier figures (AUC, accuracy) and the adaptive-clipping figure
MIN_FIGURES = 6
PRIVACY_CONTROLS = ("fedlab-privacy-mechanism", "fedlab-privacy-noise-multiplier",
                    "fedlab-privacy-clip", "fedlab-privacy-target-epsilon",
                    "fedlab-stop-max-epsilon")
RUN_TIMEOUT_S = 90   # fast mode: 15 rounds at most, about a second; the budget stops it sooner

CHART_JS = count_js(chart="fedlab-chart", stop="fedlab-stop", status="fedlab-status")

# Run in the page with the dashboard's root element.
METER_JS = """
(root) => {
  const box = root.querySelector('.fedlab-meter');
  const gd = box && box.querySelector('.js-plotly-plot');
  if (!gd || !gd.data || !gd.calcdata) return {found: false};
  const finite = cd => (cd || []).filter(p => Number.isFinite(p.x) && Number.isFinite(p.y)).length;
  const traces = gd.querySelectorAll('.scatterlayer .trace.scatter');
  // the gauge is no scatter: the first scatter is the headline, a band drawn as a line
  // only (no markers); the hospitals' lines after it carry the markers
  const first = traces[0];
  const hospital = traces[1];
  const line = first ? first.querySelector('path.js-line') : null;
  const d = line ? (line.getAttribute('d') || '') : '';
  const number = gd.querySelector('.indicatorlayer text.number');
  // the gauge's title inside the figure: a title wider than the gauge runs off its edge
  const title = gd.querySelector('.indicatorlayer text.title');
  const svg = gd.querySelector('.main-svg').getBoundingClientRect();
  const t = title ? title.getBoundingClientRect() : null;
  return {
    gaugeTitle: title ? title.textContent : '',
    gaugeTitleInside: !!t && t.width > 0 && t.left >= svg.left - 1 && t.right <= svg.right + 1,
    found: true,
    drawn: !!gd.querySelector('.main-svg .cartesianlayer .xy')
           && !!gd.querySelector('.indicatorlayer .trace'),
    nData: gd.data.length,
    gaugeType: gd.data[0].type,
    gaugeValue: gd.data[0].value,
    gaugeText: number ? number.textContent : '',
    headlineMeta: (gd.data[1] && gd.data[1].meta) || null,
    calc: finite(gd.calcdata[1]),
    hospitals: gd.calcdata.slice(2).map(finite),
    markers: hospital ? hospital.querySelectorAll('path.point').length : 0,
    lineVertices: (d.match(/[ML]/g) || []).length,
    traces: traces.length,
  };
}
"""


# ---- small helpers ----------------------------------------------------------

def chart_points(dash) -> int:
    return drawn_points(dash.evaluate(CHART_JS))


def meter_state(dash) -> dict:
    return dash.evaluate(METER_JS)


def meter_points(dash, s: dict | None = None) -> int:
    s = s or meter_state(dash)
    return drawn_points(s) if s.get("found") else 0


def gauge_number(s: dict) -> float | None:
    """The number the gauge shows, as drawn (plotly writes a minus sign as U+2212)."""
    m = re.search(r"[-−]?\d+(?:\.\d+)?(?:e[-+−]?\d+)?", s.get("gaugeText") or "")
    return float(m.group(0).replace("−", "-")) if m else None










# ---- the test ---------------------------------------------------------------

def test_learner_watches_the_privacy_meter_in_jupyterlab(lab, browser_page):
    page = browser_page
    t_start = time.monotonic()
    with failure_report(lab, page):
        _learner_spends_epsilon(lab, page, t_start)


def _learner_spends_epsilon(lab, page, t_start: float) -> None:
    # 1. open, wait for a kernel that is really there, Run All, no error ---------------
    open_and_run_all(page, lab, NOTEBOOK, t_start)
    errors = error_outputs(page)
    assert not errors, f"{NOTEBOOK} shows errors:\n" + "\n----\n".join(t[-1500:] for t in errors)

    # 2. the dashboard: privacy controls, Run, the run ends, chart and meter agree -------
    dash = find_dashboard(page)
    for cls in ("fedlab-run", "fedlab-stop", "fedlab-status", "fedlab-progress-text",
                "fedlab-chart", "fedlab-meter", *PRIVACY_CONTROLS):
        assert dash.locator(f".{cls}").count() > 0, f"the dashboard has no .{cls} element"
    for cls in PRIVACY_CONTROLS:   # DP-SGD is on: every privacy knob is shown
        assert dash.locator(f".{cls}").first.is_visible(), f"the .{cls} control is hidden"
    assert dash.locator(".fedlab-error").inner_text().strip() == "", \
        f"the dashboard shows an error: {dash.locator('.fedlab-error').inner_text()!r}"
    dash.locator(".fedlab-meter").scroll_into_view_if_needed()
    wait_until(lambda: dash.evaluate(CHART_JS)["drawn"], timeout=30,
               what="the learning chart inside .fedlab-chart to draw its axes")
    s = wait_until(lambda: (st := meter_state(dash)).get("drawn") and st, timeout=30,
                   what="the ε meter inside .fedlab-meter to draw its gauge and axes")
    assert s["gaugeType"] == "indicator", f"the meter's trace 0 is not a gauge: {s}"
    n_hospitals = s["nData"] - 2
    assert n_hospitals >= 1, f"the meter has no line per hospital: {s}"
    assert chart_points(dash) == 0 and meter_points(dash) == 0, \
        f"points before the first Run: chart {chart_points(dash)}, meter {s}"
    before = status(dash)
    lab.note(f"dashboard ready: meter with {n_hospitals} hospital lines; status {before!r}")

    t_click = time.monotonic()
    rounds = run_to_end(dash, timeout=RUN_TIMEOUT_S)
    wait_until(lambda: chart_points(dash) == rounds and meter_points(dash) == rounds,
               timeout=20, what=f"{rounds} points in the chart and in the meter's headline "
                                f"(rounds done) after the run")
    s = meter_state(dash)
    final_status = status(dash)
    lab.note(f"run ended {time.monotonic() - t_click:.1f} s after Run: round {rounds}, "
             f"status {final_status!r}, meter {s}")
    assert dash.locator(".fedlab-error").inner_text().strip() == "", \
        f"the run failed: {dash.locator('.fedlab-error').inner_text()!r}"
    assert s["hospitals"] == [rounds] * n_hospitals, \
        f"DP-SGD: every hospital's ε line should have {rounds} points: {s}"
    assert s["traces"] == 1 + n_hospitals, f"not every ε line is drawn: {s}"
    assert s["gaugeValue"] and s["gaugeValue"] > 0, f"the gauge shows no ε spent: {s}"
    assert s["gaugeTitleInside"], f"the gauge's title {s['gaugeTitle']!r} runs off the figure: {s}"
    shown = gauge_number(s)
    assert shown is not None and shown > 0, f"the gauge's number reads {s['gaugeText']!r}"
    assert "ε" in final_status or "privacy budget" in final_status, \
        f"the status after the run does not mention ε: {final_status!r}"
    if final_status.startswith("privacy budget"):
        assert "one more round would spend ε" in final_status, final_status
    else:
        assert "round limit" in final_status, f"unexpected end of run: {final_status!r}"

    # 3. every plotly figure in the page is drawn -----------------------------------------
    wait_for_figures(page, lab, MIN_FIGURES)

    # 4. save, reload the page: the meter still shows its points, every figure its own -----
    n_before, gauge_before = meter_points(dash), s["gaugeValue"]
    run_live_widgets(page, lab)   # the notebook's other dashboard, as a learner would
    before, saved = save_with_figures(page, lab, NOTEBOOK)
    page.reload(wait_until="domcontentloaded", timeout=60_000)
    dash = find_dashboard(page)
    dash.locator(".fedlab-meter").scroll_into_view_if_needed()
    wait_until(lambda: meter_state(dash).get("drawn"), timeout=60,
               what="the ε meter to draw after the page reload")
    try:
        wait_until(lambda: meter_points(dash) == n_before
                   and meter_state(dash)["gaugeValue"] == gauge_before, timeout=30,
                   what=f"the meter's {n_before} points and gauge value {gauge_before} "
                        "after the reload (pitfall 4: FigureWidget state not re-synced?)")
    except AssertionError as err:
        raise AssertionError(f"{err}; meter now: {meter_state(dash)}") from None
    wait_until(lambda: chart_points(dash) == rounds, timeout=30,
               what=f"the learning chart's {rounds} points after the reload")
    s = meter_state(dash)
    assert s["hospitals"] == [rounds] * n_hospitals, f"hospital lines after reload: {s}"
    assert status(dash) == final_status, f"status after reload: {status(dash)!r}"
    wait_until(lambda: kernels_idle(lab), timeout=30, what="the kernel after reload")
    assert_figures_back(page, lab, before, saved)
    lab.note(f"after reload: meter {s}")

    # 5. the screenshot: status, learning chart and ε meter --------------------------------
    take_screenshot(page, dash, lab)
    lab.note(f"done after {time.monotonic() - t_start:.1f} s")


def take_screenshot(page, dash, lab) -> None:
    """The status line, the learning curves and the ε meter under them, as a learner sees
    them after a run (in the lab's artefact folder; the README's copy on request only, so
    a test run leaves git clean)."""
    status_el = dash.locator(".fedlab-status")
    frame_for_screenshot(page, lab, status_el, height=1100)
    clip = union_clip(page, [status_el, dash.locator(".fedlab-chart"),
                             dash.locator(".fedlab-meter")], pad=10)
    meter_box = dash.locator(".fedlab-meter").bounding_box()
    assert meter_box and clip["y"] + clip["height"] >= meter_box["y"] + meter_box["height"], \
        f"the meter does not fit in the 1280×1100 window: {meter_box}, clip {clip}"
    shot = lab.artifacts / "privacy.png"
    page.screenshot(path=str(shot), clip=clip)
    lab.note(f"screenshot {shot} ({clip['width']:.0f}×{clip['height']:.0f})")
    publish_screenshot(shot, SCREENSHOT)
