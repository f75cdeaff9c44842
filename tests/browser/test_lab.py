"""What a learner sees: notebook 01 in JupyterLab, in headless Chromium.

One test, in the order a learner works:

1. open ``01-why-federated.ipynb``, wait for its kernel, Run All, check that
   the prompts changed and no cell raised;
2. set the dashboard's rounds to 40 (the status line says so), press Run and
   watch the learning curves grow, live (plotly.js applies updates with increasing
   point counts, recorded at its own update events: ``labkit.record_chart_updates``);
3. press Stop, then Step: the status changes and exactly one point is added
   (if the run ended before Stop landed, Step starts a new run: one point);
4. save, reload the page: the chart still shows every point (plotly's
   FigureWidget keeps streamed data only if the dashboard re-syncs its state);
5. Run again to the end (the widgets still work after the reload) and save
   ``docs/screenshot.png`` for the README.

How points are counted. The chart is a plotly figure; its first trace is the
global model on the pooled test set, which has one value per round. Counting
``path.point`` markers is not reliable past 25 rounds (the traces set
``marker.maxdisplayed=25``, so plotly thins them) and the vertices of the
``path.js-line`` are not either (``line.simplify`` drops nearly collinear
points, e.g. a plateau). So the count is the number of finite points plotly.js
computed for drawing that trace (``gd.calcdata[0]``, what the line and markers
are drawn from), and the test also checks that markers and a line are actually
in the SVG whenever that count is positive.

    python -m pytest -m browser -q
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from labkit import (assert_figures_back, assert_grew_in_steps, button, chart_updates, count_js,
                    drawn_points, frame_for_screenshot, is_running, kernels_idle, note_samples,
                    open_notebook, progress_round, prompts, publish_screenshot,
                    record_chart_updates, report_failure, run_all_cells, run_live_widgets,
                    save_with_figures, status, wait_until)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "01-why-federated.ipynb"
SCREENSHOT = ROOT / "docs" / "screenshot.png"
POLL_S = 0.05
ROUNDS = 40   # set in the dashboard before Run: ~2 s at notebook 01's round_delay=0.05

# Run in the page with the dashboard's root element; see labkit.count_js.
COUNT_JS = count_js(chart="fedlab-chart", stop="fedlab-stop", status="fedlab-status")


# ---- small helpers ----------------------------------------------------------

def chart_state(dash) -> dict:
    return dash.evaluate(COUNT_JS)


def points(dash, s: dict | None = None) -> int:
    return drawn_points(s or chart_state(dash))




def progress_total(dash) -> int | None:
    m = re.search(r"round\s+(\d+)\s*/\s*(\d+)", dash.locator(".fedlab-progress-text").inner_text())
    return int(m.group(2)) if m else None






class Diagnostics:
    """On failure: a screenshot, the browser console, the lab log and the test's notes."""

    def __init__(self, lab, page):
        self.lab, self.page = lab, page

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and exc_type is not KeyboardInterrupt:
            report_failure(self.lab, self.page)
        return False


# ---- the test ---------------------------------------------------------------

def test_learner_runs_the_dashboard_in_jupyterlab(lab, browser_page):
    page = browser_page
    t_start = time.monotonic()
    with Diagnostics(lab, page):
        # 1. open the notebook, wait for a kernel that is really there -------------
        ks = open_notebook(page, lab, NOTEBOOK)
        lab.note(f"kernel ready after {time.monotonic() - t_start:.1f} s: {ks[0]['name']}")
        n_code = len(prompts(page))
        assert n_code > 0, "the notebook shows no code cells"

        # 2. Run All, and check it really ran (pitfall: an early Run All runs nothing)
        final = run_all_cells(page, lab)
        lab.note(f"Run All done after {time.monotonic() - t_start:.1f} s; prompts {final}")

        # 3. the dashboard: Run, and watch the chart grow while it runs ---------------
        cell = (page.locator(".jp-CodeCell", has=page.locator(".jp-OutputArea-output .fedlab-dashboard"))
                .filter(has_text="Dashboard("))
        if cell.count() == 0:
            lab.note("no cell with 'Dashboard(' in its source shows a dashboard; using the first one")
            cell = page.locator(".jp-CodeCell", has=page.locator(".jp-OutputArea-output .fedlab-dashboard"))
        dash = cell.first.locator(".jp-OutputArea-output .fedlab-dashboard").first
        dash.wait_for(state="visible", timeout=30_000)
        for cls in ("fedlab-run", "fedlab-step", "fedlab-stop", "fedlab-status",
                    "fedlab-progress", "fedlab-chart"):
            assert dash.locator(f".{cls}").count() > 0, f"the dashboard has no .{cls} element"
        dash.locator(".fedlab-chart").scroll_into_view_if_needed()
        wait_until(lambda: chart_state(dash)["drawn"], timeout=30,
                   what="the plotly chart inside .fedlab-chart to draw its axes")
        lab.note(f"dashboard found: {progress_total(dash)} rounds, {points(dash)} points, "
                 f"status {status(dash)!r}")

        # a setting's visible effect: more rounds (a run long enough to watch and Stop
        # whatever notebook 01's fast mode sets), and the status line says so
        rounds_box = dash.locator(".fedlab-federation-rounds input").first
        rounds_box.fill(str(ROUNDS))
        rounds_box.blur()                  # an IntText syncs on change (blur), not per key
        wait_until(lambda: f"{ROUNDS} rounds" in status(dash), timeout=15,
                   what=f"the status to say '{ROUNDS} rounds' after setting rounds")
        total = ROUNDS
        assert points(dash) == 0, "the chart shows points before the first Run"

        handle = dash.element_handle()   # no locator re-query per sample: ~50 ms polling
        record_chart_updates(handle, "fedlab-chart")
        button(dash, "fedlab-run").click()
        samples: list[tuple[float, int, bool]] = []   # (seconds since click, points, running)
        t_click = time.monotonic()
        stop_clicked = False
        while time.monotonic() - t_click < 60:
            st = handle.evaluate(COUNT_JS)   # one round trip: points, running, status
            n, running = st["calc"], st["running"]
            samples.append((time.monotonic() - t_click, n, running))
            grown = {c for _, c, _ in samples if c > 0}
            if not stop_clicked and len(grown) >= 2 and running:
                # the curves grew live (two different counts): now Stop mid-run
                # force: the run may end between the sample and the click (Stop disabled)
                button(dash, "fedlab-stop").click(force=True, timeout=5_000)
                stop_clicked = True
            if not running and n > 0 and not st["status"].startswith(("running", "stopping")):
                break
            time.sleep(POLL_S)
        # the samples where something changed, for the report
        compact = note_samples(lab, samples)
        assert not is_running(dash), f"the run did not end within 60 s: {compact}"

        # 4. a widget's visible effect: Stop, then Step adds exactly one point ---------
        wait_until(lambda: progress_round(dash), timeout=10, what="the progress text 'round k / N'")
        wait_until(lambda: points(dash) == progress_round(dash), timeout=15,
                   what="the chart to show one point per round done")
        k = progress_round(dash)
        applied = chart_updates(handle)
        lab.note(f"points after each of plotly.js's {len(applied)} updates: {applied}")
        assert_grew_in_steps(applied, k, compact)
        after_run_status = status(dash)
        lab.note(f"after Run{' + Stop' if stop_clicked else ''}: round {k} / {total}, "
                 f"status {after_run_status!r}")
        stopped_by_user = "stopped by user" in after_run_status
        if stop_clicked and k < (total or 0):
            assert stopped_by_user, f"Stop was pressed at round {k} but the status says " \
                                    f"{after_run_status!r}"
        expect = k + 1 if stopped_by_user else 1   # a finished run: Step starts a new one
        button(dash, "fedlab-step").click()
        wait_until(lambda: progress_round(dash) == expect and points(dash) == expect
                   and status(dash) != after_run_status, timeout=30,
                   what=f"Step to show round {expect}, {expect} points and a new status")
        after_step_status = status(dash)
        if expect < total:
            assert f"round {expect} / {total}" in after_step_status, after_step_status
        lab.note(f"after Step: {points(dash)} points, status {after_step_status!r}")
        n_before_reload = points(dash)

        # 5. save, reload the page: the chart still shows the data, and every other
        # figure of the notebook its own ------------------------------------------------
        run_live_widgets(page, lab)   # any other dashboard, as a learner would
        before, saved = save_with_figures(page, lab, NOTEBOOK)
        page.reload(wait_until="domcontentloaded", timeout=60_000)
        dash = (page.locator(".jp-OutputArea-output .fedlab-dashboard").first)
        dash.wait_for(state="visible", timeout=60_000)
        dash.locator(".fedlab-chart").scroll_into_view_if_needed()
        wait_until(lambda: chart_state(dash)["drawn"] and points(dash) > 0, timeout=60,
                   what="the chart to show points after the page reload (see pitfall 4: "
                        "FigureWidget state not re-synced?)")
        n_after_reload = wait_until(lambda: points(dash) == n_before_reload and points(dash),
                                    timeout=15, what=f"{n_before_reload} points after reload")
        lab.note(f"after reload: {n_after_reload} points (before: {n_before_reload})")
        wait_until(lambda: kernels_idle(lab), timeout=30, what="the kernel after reload")
        assert_figures_back(page, lab, before, saved)

        # 6. run to the end (the widgets still work after a reload), then the screenshot
        button(dash, "fedlab-run").click()
        wait_until(lambda: is_running(dash) or progress_round(dash) == total, timeout=15,
                   what="the run to start after reload")
        wait_until(lambda: not is_running(dash) and progress_round(dash) == total
                   and points(dash) == total, timeout=90, interval=0.1,
                   what=f"the run to reach round {total} with {total} points")
        lab.note(f"final: {points(dash)} points, status {status(dash)!r}, "
                 f"{time.monotonic() - t_start:.1f} s since opening")
        take_screenshot(page, dash, lab)
        lab.note(f"screenshot {SCREENSHOT} after {time.monotonic() - t_start:.1f} s")


def take_screenshot(page, dash, lab) -> None:
    """The whole dashboard, settings to learning curves, in a tidy 1280×1450 window."""
    # tall enough for the whole dashboard: the README shows what a learner sees at once
    frame_for_screenshot(page, lab, dash, height=1450)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    tmp = lab.artifacts / "screenshot.png"
    page.screenshot(path=str(tmp), full_page=False)
    # the README's picture is refreshed on request only, so a test run leaves git clean
    publish_screenshot(tmp, SCREENSHOT)
