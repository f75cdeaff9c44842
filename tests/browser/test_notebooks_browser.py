"""What a learner sees in every numbered notebook, in JupyterLab in headless Chromium.

Each notebook ``notebooks/NN-*.ipynb`` (found by glob, so a new one is covered without
editing this file), on one JupyterLab for the whole module (a server per notebook would
cost ~5 s more each), in fast mode (``FEDLAB_FAST=1``, as the fixtures set it):

1. open it, wait for its kernel, Run All; every cell ran (``labkit.run_all_cells``);
2. no output shows a traceback or an error on stderr, and no widget shows an error
   ("Error displaying widget", "Failed to load model class", a dashboard's red line);
3. every dashboard and robustness race whose chart is still empty is Run, as a learner
   would, until its run ends;
4. every plotly figure in the page is drawn and has data: the points, bars or cells
   plotly.js computed for drawing it (``gd.calcdata``), not only its axes; at least one
   figure, and one drawn figure for every plotly output the saved notebook holds (an
   output whose figure did not render counts as missing);
5. save, reload the page: the same figures come back with the same data. The kernel
   stays alive across the reload, so live widgets (plotly ``FigureWidget``) come back
   from it (the lab does not save widget state: ``saveState`` is off in conftest);
   plotly outputs come back from the saved file as the picture JupyterLab's plotly
   renderer saved with them, which must have loaded, and turn into charts when the mouse
   goes over them (``labkit.wake_plotly_pictures``); no widget error appears;
6. a screenshot of the whole notebook, ``<notebook>.png`` in the lab's artefacts folder.

``10-deployment`` is left to ``test_deploy_browser.py`` (``ELSEWHERE``): it starts two
real Flower deployments, minutes of work that test already does with these checks' aim.
Notebooks 01, 03, 05 and 08 are left to their own tests too (``ELSEWHERE``), which
Run All, drive their live widgets in depth and check them across a reload; covering
them here again would add ~2 minutes to CI (measured ~130 s on 2 busy cores) for their
other figures and a whole-notebook screenshot.

    python -m pytest -q -m browser tests/browser/test_notebooks_browser.py
"""

from __future__ import annotations

import time

import pytest
from conftest import NOTEBOOK_DIR
from labkit import (assert_figures_back, error_outputs, failure_report, frame_for_screenshot,
                    kernels_idle, open_notebook, run_all_cells, run_live_widgets,
                    save_with_figures, wait_until, widget_problems)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# notebooks another browser test covers, and why
ELSEWHERE = {
    "01-why-federated.ipynb": "test_lab.py: Run All, the live dashboard across a reload",
    "03-aggregators-and-attacks.ipynb": "test_race_browser.py: the robustness race",
    "05-differential-privacy.ipynb": "test_privacy_browser.py: the live ε meter across a reload",
    "08-personalisation.ipynb": "test_personal_browser.py: the per-hospital panel across a reload",
    "10-deployment.ipynb": "test_deploy_browser.py: two real Flower deployments (minutes)",
}
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9][0-9]-*.ipynb")
                   if p.name not in ELSEWHERE)

RUN_ALL_TIMEOUT_S = 240    # fast mode; notebook 09 (CNNs) takes ~2 min on 2 busy cores
MAX_SCREENSHOT_PX = 32000  # a taller notebook is cut there


def assert_nothing_wrong(page, notebook: str, when: str) -> None:
    errors = error_outputs(page)
    assert not errors, f"{notebook} shows errors {when}:\n" + "\n----\n".join(
        t[-1500:] for t in errors)
    problems = widget_problems(page)
    # why a widget failed is in the browser console (e.g. anywidget gives a model 2 s to
    # load its module, plotly's is 5 MB: "[anywidget] Failed to initialize model")
    console = [m for m in getattr(page, "fedlab_console", []) if not m.startswith("warning:")]
    assert not problems, (f"{notebook}: widget errors {when}:\n" + "\n".join(problems)
                          + "\nbrowser console errors:\n" + "\n".join(console[-10:]))


def screenshot_whole_notebook(page, lab, path) -> None:
    """The whole notebook in one picture: the window made as tall as the notebook's
    content (up to ``MAX_SCREENSHOT_PX``), file browser hidden; back to 1280×900 after."""
    frame_for_screenshot(page, lab, page.locator(".jp-Notebook .jp-Cell").first, height=900)
    content, visible = page.evaluate("""() => {
        const s = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
        return s ? [s.scrollHeight, s.clientHeight] : [0, 0]; }""")
    height = min(MAX_SCREENSHOT_PX, max(900, 900 - visible + content))
    page.set_viewport_size({"width": 1280, "height": height})
    page.wait_for_timeout(500)    # plotly relayouts on the resize
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_draws_and_reloads_in_jupyterlab(shared_lab, shared_lab_page, notebook):
    lab, page = shared_lab, shared_lab_page
    stem = notebook.removesuffix(".ipynb")
    t = {"start": time.monotonic()}
    with failure_report(lab, page, f"{stem}-failure.png"):
        # 1-2. open, Run All, nothing shows an error ------------------------------------
        open_notebook(page, lab, notebook)
        t["kernel"] = time.monotonic()
        run_all_cells(page, lab, timeout=RUN_ALL_TIMEOUT_S)
        t["run all"] = time.monotonic()
        assert_nothing_wrong(page, notebook, "after Run All")

        # 3. the live widgets: Run the ones with an empty chart ---------------------------
        ended = run_live_widgets(page, lab)
        assert_nothing_wrong(page, notebook, "after running its dashboards")
        t["live runs"] = time.monotonic()

        # 4-5. every figure drawn, with data; save, reload: the same figures, the same data
        before, saved = save_with_figures(page, lab, notebook)
        lab.note(f"{notebook}: live runs ended {ended}")
        t["figures"] = time.monotonic()
        page.reload(wait_until="domcontentloaded", timeout=60_000)
        page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(state="visible", timeout=60_000)
        wait_until(lambda: kernels_idle(lab), timeout=60, what="the kernel after the reload")
        after = assert_figures_back(page, lab, before, saved)
        assert_nothing_wrong(page, notebook, "after the reload")
        t["reload"] = time.monotonic()

        # 6. the whole notebook in one picture -----------------------------------------------
        shot = lab.artifacts / f"{stem}.png"
        screenshot_whole_notebook(page, lab, shot)
        t["screenshot"] = time.monotonic()
        phases = list(t)
        lab.note(f"{notebook}: {len(after)} figures with data after reload; screenshot {shot}; "
                 "seconds: " + ", ".join(f"{b} {t[b] - t[a]:.1f}" for a, b in zip(phases, phases[1:]))
                 + f", total {t['screenshot'] - t['start']:.1f}")
