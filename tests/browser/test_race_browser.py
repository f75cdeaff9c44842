"""What a learner sees: notebook 03's robustness race in JupyterLab, in headless Chromium.

1. open ``03-aggregators-and-attacks.ipynb``, wait for its kernel, Run All, check
   that every cell ran;
2. set the race to 40 rounds, press its Run and watch the lines grow, live (plotly.js
   applies updates with increasing point counts of the first rule's line, recorded at
   its own update events: ``labkit.record_chart_updates``), until every round is drawn
   and the summary table is there;
3. screenshot the race (under the test's tmp dir; ``docs/race.png`` only with
   ``FEDLAB_UPDATE_SCREENSHOT=1``);
4. save, reload the page: the chart still shows every point (the race re-syncs
   the FigureWidget's state; browser-testing notes, pitfall 4).

Points are counted as in test_lab.py: the finite points plotly.js computed for
the first trace (``gd.calcdata[0]``), plus a check that markers and a line are
really in the SVG.

    python -m pytest -q tests/browser/test_race_browser.py
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from labkit import (assert_figures_back, assert_grew_in_steps, button, chart_updates, count_js,
                    drawn_points, failure_report, frame_for_screenshot, note_samples,
                    open_and_run_all, publish_screenshot, record_chart_updates, run_live_widgets,
                    sample_run, save_with_figures, wait_until)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "03-aggregators-and-attacks.ipynb"
SCREENSHOT = ROOT / "docs" / "race.png"
POLL_S = 0.05
ROUNDS = 40   # ~2.5 s at the notebook's round_delay=0.05 with five rules

COUNT_JS = count_js(chart="fedlab-race-chart", stop="fedlab-race-stop", status="fedlab-race-status")


def chart_state(race) -> dict:
    return race.evaluate(COUNT_JS)


def points(race, s: dict | None = None) -> int:
    return drawn_points(s or chart_state(race))


def status(race) -> str:
    return race.locator(".fedlab-race-status").inner_text().strip()


def test_learner_races_the_aggregators_in_jupyterlab(lab, browser_page):
    page = browser_page
    t_start = time.monotonic()
    with failure_report(lab, page):
        _learner_races(lab, page, t_start)


def _learner_races(lab, page, t_start: float) -> None:
    # 1. open, wait for a kernel that is really there, Run All ---------------------
    open_and_run_all(page, lab, NOTEBOOK, t_start)

    # 2. the race: 40 rounds, Run, watch it grow -------------------------------------
    race = page.locator(".jp-OutputArea-output .fedlab-race").first
    race.wait_for(state="visible", timeout=30_000)
    for cls in ("fedlab-race-run", "fedlab-race-stop", "fedlab-race-status",
                "fedlab-race-chart"):
        assert race.locator(f".{cls}").count() > 0, f"the race has no .{cls} element"
    race.locator(".fedlab-race-chart").scroll_into_view_if_needed()
    wait_until(lambda: chart_state(race)["drawn"], timeout=30,
               what="the plotly chart inside .fedlab-race-chart to draw its axes")
    rounds_box = race.locator(".fedlab-race-rounds input").first
    rounds_box.fill(str(ROUNDS))
    rounds_box.blur()                       # an IntText syncs on change (blur), not per key
    wait_until(lambda: f"{ROUNDS} rounds" in status(race), timeout=15,
               what=f"the status to say '{ROUNDS} rounds'")
    assert points(race) == 0, "the chart shows points before the first Run"

    handle = race.element_handle()
    record_chart_updates(handle, "fedlab-race-chart")
    button(race, "fedlab-race-run").click()
    samples = sample_run(handle, COUNT_JS, timeout=45, poll_s=POLL_S, ended=lambda st: (
        not st["running"] and st["calc"] > 0 and st["status"].startswith("done")))
    compact = note_samples(lab, samples)
    wait_until(lambda: points(race) == ROUNDS and status(race).startswith("done"), timeout=30,
               what=f"{ROUNDS} points and a 'done' status")
    applied = chart_updates(handle)
    lab.note(f"points after each of plotly.js's {len(applied)} updates: {applied}")
    assert_grew_in_steps(applied, ROUNDS, compact)
    s = chart_state(race)
    assert s["traces"] >= 2, f"expected a line per rule, got {s['traces']} traces"
    table = race.locator(".fedlab-race-table table")
    wait_until(lambda: table.count() == 1, timeout=10, what="the summary table under the chart")
    rows = table.locator("tbody tr").count()
    lab.note(f"race done: {points(race)} points, {s['traces']} traces drawn, table rows {rows}, "
             f"status {status(race)!r}")
    assert rows >= 2

    # 3. the screenshot -----------------------------------------------------------------
    frame_for_screenshot(page, lab, race, height=1200)
    shot = lab.artifacts / "race.png"
    race.screenshot(path=str(shot))
    lab.note(f"screenshot {shot}")
    publish_screenshot(shot, SCREENSHOT)

    # 4. save, reload: the points are still there, and every other figure its own --------
    n_before = points(race)
    run_live_widgets(page, lab)   # any other live widget, as a learner would
    before, saved = save_with_figures(page, lab, NOTEBOOK)
    page.reload(wait_until="domcontentloaded", timeout=60_000)
    race = page.locator(".jp-OutputArea-output .fedlab-race").first
    race.wait_for(state="visible", timeout=60_000)
    race.locator(".fedlab-race-chart").scroll_into_view_if_needed()
    wait_until(lambda: chart_state(race)["drawn"] and points(race) == n_before, timeout=60,
               what=f"{n_before} points after the page reload (FigureWidget state re-synced?)")
    assert_figures_back(page, lab, before, saved)
    lab.note(f"after reload: {points(race)} points; {time.monotonic() - t_start:.1f} s in all")
