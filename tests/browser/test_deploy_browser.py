"""What a learner sees: notebook 10's dashboard following a Flower deployment (a SuperLink
and a SuperNode per hospital, real processes on 127.0.0.1), in JupyterLab in headless
Chromium.

1. open ``10-deployment.ipynb``, Run All (fast mode: two hospitals, two rounds, then a
   one-round run with a frozen hospital), wait until every cell has run: the notebook
   starts and stops two deployments, so this takes a few minutes, more than
   ``labkit.run_all_cells`` allows; no output shows an error;
2. the dashboard that followed the deployment: no error text, a final status, and its
   learning-curve chart has a point for every round the deployment recorded (the
   rounds its progress text shows, and the notebook printed);
3. save, reload the page: the chart's points are still there (the dashboard re-syncs its
   FigureWidget when the run ends; browser notes, pitfall 4), and every figure of the
   notebook is drawn with the same data as before (``labkit.assert_figures_back``);
4. no Flower process started from this lab's folder is left running (every deployment
   is stopped by the notebook; the test stops any it finds, and then fails);
5. a screenshot of the controls, the progress, the status and the chart: in the lab's artefact
   folder, and to ``docs/deploy.png`` only with ``FEDLAB_UPDATE_SCREENSHOT=1``.

    python -m pytest -q tests/browser/test_deploy_browser.py
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
from labkit import (assert_figures_back, button, count_js, drawn_points, error_outputs,
                    failure_report, find_dashboard, frame_for_screenshot, kernels_idle,
                    open_notebook, progress_round, publish_screenshot, run_all_cells,
                    save_with_figures, status, union_clip, wait_until)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "10-deployment.ipynb"
SCREENSHOT = ROOT / "docs" / "deploy.png"
RUN_ALL_TIMEOUT_S = 420   # two deployments of real processes: ~2 min on 2 quiet cores

CHART_JS = count_js(chart="fedlab-chart", stop="fedlab-stop", status="fedlab-status")
# the notebook's own count, printed when the followed run has ended
ROUNDS_PRINTED = re.compile(r"(\d+) rounds in [\d.]+ s; the server stopped")


def flower_processes(root: Path) -> list:
    """Flower's processes (``flower-*``, ``flwr*``) working in a folder under ``root``: a
    deployment starts every process in its run folder (under the lab's notebooks copy),
    and their children inherit it. Other Flower processes on the machine are not ours."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        info = proc.info
        cmd = info.get("cmdline") or []
        if info.get("status") == psutil.STATUS_ZOMBIE or not info.get("cwd"):
            continue
        if (any(Path(arg).name.startswith(("flower-", "flwr")) for arg in cmd[:2])
                and Path(info["cwd"]).is_relative_to(root.resolve())):
            found.append(proc)
    return found


def stop_processes(procs) -> None:
    """SIGCONT (a test may fail while a node is frozen), SIGTERM, then SIGKILL, by pid."""
    import psutil

    for sig in (signal.SIGCONT, signal.SIGTERM):
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)


def describe(procs) -> str:
    import psutil

    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline()[1:3])[:120]}")
        except psutil.Error:
            out.append(f"{p.pid} (gone)")
    return "; ".join(out)


def test_learner_follows_a_deployed_federation(lab, browser_page):
    page = browser_page
    t_start = time.monotonic()
    try:
        with failure_report(lab, page):
            _learner_follows_a_deployment(lab, page, t_start)
    finally:
        # whatever happened, leave no Flower process of this lab behind
        left = flower_processes(lab.root_dir)
        if left:
            lab.note(f"stopping {len(left)} Flower processes left behind: {describe(left)}")
            stop_processes(left)
    assert not left, f"Flower processes were left running after the notebook: {describe(left)}"


def _learner_follows_a_deployment(lab, page, t_start: float) -> None:
    # 1. open, Run All (slowly), no error ------------------------------------------------
    open_notebook(page, lab, NOTEBOOK)
    lab.note(f"kernel ready after {time.monotonic() - t_start:.1f} s")
    final = run_all_cells(page, lab, timeout=RUN_ALL_TIMEOUT_S)
    lab.note(f"Run All done after {time.monotonic() - t_start:.1f} s; prompts {final}")
    errors = error_outputs(page)
    assert not errors, f"{NOTEBOOK} shows errors:\n" + "\n----\n".join(t[-1500:] for t in errors)

    # 2. the followed dashboard: ended, no error, a point per round -------------------------
    dash = find_dashboard(page)
    for cls in ("fedlab-status", "fedlab-chart", "fedlab-progress-text", "fedlab-stop"):
        assert dash.locator(f".{cls}").count() > 0, f"the dashboard has no .{cls} element"
    error_text = dash.locator(".fedlab-error").inner_text().strip()
    assert error_text == "", f"the dashboard shows an error: {error_text!r}"
    outputs = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
    printed = ROUNDS_PRINTED.search(outputs)
    assert printed, "the notebook did not print how many rounds the followed run recorded"
    rounds = int(printed.group(1))
    assert rounds >= 1, f"the deployment recorded no round: {printed.group(0)!r}"
    assert progress_round(dash) == rounds, \
        f"the dashboard's progress says round {progress_round(dash)}, the notebook {rounds}"
    final_status = status(dash)
    assert not final_status.startswith(("running", "starting", "stopping")), final_status
    state = wait_until(lambda: (s := dash.evaluate(CHART_JS)) and drawn_points(s) == rounds and s,
                       timeout=30, what=f"{rounds} points in the learning chart")
    assert not state["running"], f"Stop is still enabled after the run: {state}"
    lab.note(f"chart: {state}; status {final_status!r}")

    # 3. save, reload: the points are still there, and every figure of the notebook -----------
    before, saved = save_with_figures(page, lab, NOTEBOOK)
    page.reload(wait_until="domcontentloaded", timeout=60_000)
    dash = find_dashboard(page)
    dash.locator(".fedlab-chart").scroll_into_view_if_needed()
    try:
        wait_until(lambda: drawn_points(dash.evaluate(CHART_JS)) == rounds, timeout=60,
                   what=f"the learning chart's {rounds} points after the reload "
                        "(pitfall 4: FigureWidget state not re-synced?)")
    except AssertionError as err:
        raise AssertionError(f"{err}; chart now: {dash.evaluate(CHART_JS)}") from None
    assert status(dash) == final_status, f"status after reload: {status(dash)!r}"
    wait_until(lambda: kernels_idle(lab), timeout=30, what="the kernel after reload")
    assert_figures_back(page, lab, before, saved)

    # 4. no Flower process of ours is left ------------------------------------------------------
    left = flower_processes(lab.root_dir)
    assert not left, f"Flower processes still running after Run All: {describe(left)}"

    # 5. the screenshot ---------------------------------------------------------------------------
    top = button(dash, "fedlab-run")
    frame_for_screenshot(page, lab, top, height=900)
    clip = union_clip(page, [top, dash.locator(".fedlab-metric"), dash.locator(".fedlab-progress-text"),
                             dash.locator(".fedlab-status"), dash.locator(".fedlab-chart")], pad=10)
    shot = lab.artifacts / "deploy.png"
    page.screenshot(path=str(shot), clip=clip)
    lab.note(f"screenshot {shot}; done after {time.monotonic() - t_start:.1f} s")
    publish_screenshot(shot, SCREENSHOT)
