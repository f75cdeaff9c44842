"""What a learner sees: notebook 08's dashboard with personalisation and its live
per-hospital panel, in JupyterLab in headless Chromium.

1. open ``08-personalisation.ipynb``, Run All (fast mode), no output shows an error;
2. the dashboard (a personalised run): its Personalisation control is there; press
   Run, wait until the run ends; the learning chart has one point per round, and the
   per-hospital panel (``.fedlab-hospitals``) has a local-only, a global and a
   personalised bar for every hospital, and a verdict above each;
3. every plotly figure in the page is drawn: at least ``MIN_FIGURES``;
4. save, reload the page: the bars and verdicts are still there (the dashboard
   re-syncs its FigureWidgets; browser notes, pitfall 4), and so is the chart;
5. a screenshot of the status line, the chart and the panel: in the lab's artefact
   folder, and to ``docs/personal.png`` only with ``FEDLAB_UPDATE_SCREENSHOT=1``.

    python -m pytest -q tests/browser/test_personal_browser.py
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from labkit import (assert_figures_back, count_js, drawn_points, error_outputs, failure_report,
                    find_dashboard, frame_for_screenshot, kernels_idle, open_and_run_all,
                    publish_screenshot, run_live_widgets, run_to_end, save_with_figures, status,
                    union_clip, wait_for_figures, wait_until)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "08-personalisation.ipynb"
SCREENSHOT = ROOT / "docs" / "personal.png"
MIN_FIGURES = 6
RUN_TIMEOUT_S = 90

CHART_JS = count_js(chart="fedlab-chart", stop="fedlab-stop", status="fedlab-status")

# Run in the page with the dashboard's root element: traces 0-2 are the bars
# (local-only, global, personalised), trace 3 the verdict texts.
PANEL_JS = """
(root) => {
  const box = root.querySelector('.fedlab-hospitals');
  const gd = box && box.querySelector('.js-plotly-plot');
  if (!gd || !gd.data || !gd.calcdata) return {found: false};
  const finite = cd => (cd || []).filter(p => Number.isFinite(p.s !== undefined ? p.s : p.y)).length;
  const texts = Array.from(gd.querySelectorAll('.scatterlayer .textpoint text'))
                     .map(t => t.textContent).filter(t => t.length > 0);
  return {
    found: true,
    drawn: !!gd.querySelector('.main-svg .cartesianlayer .xy'),
    hospitals: (gd.data[0].x || []).length,
    bars: gd.calcdata.slice(0, 3).map(finite),
    paths: gd.querySelectorAll('.barlayer .point path').length,
    verdicts: texts,
  };
}
"""


def panel_state(dash) -> dict:
    return dash.evaluate(PANEL_JS)


def full_panel(s: dict) -> bool:
    K = s.get("hospitals", 0)
    return (s.get("found") and s.get("drawn") and K > 0 and s["bars"] == [K, K, K]
            and len(s["verdicts"]) == K)








def test_learner_asks_whether_each_hospital_gained(lab, browser_page):
    page = browser_page
    t_start = time.monotonic()
    with failure_report(lab, page):
        _learner_runs_a_personalised_federation(lab, page, t_start)


def _learner_runs_a_personalised_federation(lab, page, t_start: float) -> None:
    # 1. open, Run All, no error ------------------------------------------------------
    open_and_run_all(page, lab, NOTEBOOK, t_start)
    errors = error_outputs(page)
    assert not errors, f"{NOTEBOOK} shows errors:\n" + "\n----\n".join(t[-1500:] for t in errors)

    # 2. the dashboard: Run, the run ends, chart and panel are full ------------------------
    dash = find_dashboard(page)
    for cls in ("fedlab-run", "fedlab-status", "fedlab-chart", "fedlab-hospitals",
                "fedlab-personal-method"):
        assert dash.locator(f".{cls}").count() > 0, f"the dashboard has no .{cls} element"
    assert dash.locator(".fedlab-error").inner_text().strip() == "", \
        f"the dashboard shows an error: {dash.locator('.fedlab-error').inner_text()!r}"
    t_click = time.monotonic()
    rounds = run_to_end(dash, timeout=RUN_TIMEOUT_S)
    wait_until(lambda: drawn_points(dash.evaluate(CHART_JS)) == rounds, timeout=20,
               what=f"{rounds} points in the learning chart")
    dash.locator(".fedlab-hospitals").scroll_into_view_if_needed()
    s = wait_until(lambda: full_panel(st := panel_state(dash)) and st, timeout=30,
                   what="a local-only, global and personalised bar and a verdict per hospital")
    assert s["paths"] >= 3 * s["hospitals"], f"bars are in the data but not drawn: {s}"
    assert all(v.split()[-1] in ("gained", "lost", "close") for v in s["verdicts"]), s
    lab.note(f"run ended {time.monotonic() - t_click:.1f} s after Run: round {rounds}; panel {s}")
    final_status = status(dash)

    # 3. every plotly figure in the page is drawn -----------------------------------------
    wait_for_figures(page, lab, MIN_FIGURES)

    # 4. save, reload: the bars and verdicts are still there, every figure its own -----------
    run_live_widgets(page, lab)   # the notebook's other dashboard, as a learner would
    before, saved = save_with_figures(page, lab, NOTEBOOK)
    page.reload(wait_until="domcontentloaded", timeout=60_000)
    dash = find_dashboard(page)
    dash.locator(".fedlab-hospitals").scroll_into_view_if_needed()
    try:
        after = wait_until(lambda: full_panel(st := panel_state(dash)) and st, timeout=60,
                           what="the per-hospital panel's bars and verdicts after the reload "
                                "(pitfall 4: FigureWidget state not re-synced?)")
    except AssertionError as err:
        raise AssertionError(f"{err}; panel now: {panel_state(dash)}") from None
    assert after["verdicts"] == s["verdicts"], f"verdicts changed on reload: {s} -> {after}"
    wait_until(lambda: drawn_points(dash.evaluate(CHART_JS)) == rounds, timeout=30,
               what=f"the learning chart's {rounds} points after the reload")
    assert status(dash) == final_status, f"status after reload: {status(dash)!r}"
    wait_until(lambda: kernels_idle(lab), timeout=30, what="the kernel after reload")
    assert_figures_back(page, lab, before, saved)

    # 5. the screenshot -------------------------------------------------------------------
    status_el = dash.locator(".fedlab-status")
    frame_for_screenshot(page, lab, status_el, height=1100)
    clip = union_clip(page, [status_el, dash.locator(".fedlab-chart"),
                             dash.locator(".fedlab-hospitals")], pad=10)
    shot = lab.artifacts / "personal.png"
    page.screenshot(path=str(shot), clip=clip)
    lab.note(f"screenshot {shot}; done after {time.monotonic() - t_start:.1f} s")
    publish_screenshot(shot, SCREENSHOT)
