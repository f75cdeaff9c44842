"""What a learner sees in the notebooks without a live-widget test of their own:
each opens in JupyterLab in headless Chromium, runs top to bottom (fast mode), shows
no error, and draws its figures (every plotly figure in the page has its axes).

    python -m pytest -q tests/browser/test_notebooks_browser.py
"""

from __future__ import annotations

import time

import pytest
from labkit import open_notebook, report_failure, run_all_cells, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# notebook -> the least number of plotly figures a learner must see
NOTEBOOKS = {"02-non-iid.ipynb": 6, "04-beyond-fedavg.ipynb": 7, "06-privacy-attacks.ipynb": 3,
             "07-secure-aggregation.ipynb": 2, "09-medical-imaging.ipynb": 8}

FIGURES_JS = """
() => {
  const plots = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea .js-plotly-plot')];
  return {figures: plots.length,
          drawn: plots.filter(gd => gd.querySelector('.main-svg .cartesianlayer .xy')).length};
}
"""


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS))
def test_notebook_runs_and_draws_in_jupyterlab(lab, browser_page, notebook):
    page, t_start = browser_page, time.monotonic()
    try:
        open_notebook(page, lab, notebook)
        run_all_cells(page, lab)
        lab.note(f"{notebook}: Run All done after {time.monotonic() - t_start:.1f} s")
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
        assert not tracebacks, f"{notebook} shows errors:\n" + "\n----\n".join(tracebacks)
        want = NOTEBOOKS[notebook]
        seen = {}

        def enough():
            seen.update(page.evaluate(FIGURES_JS))
            return seen["drawn"] >= want

        try:
            wait_until(enough, timeout=30, what=f"{want} drawn plotly figures in {notebook}")
        except AssertionError as err:
            raise AssertionError(f"{err}; last seen: {seen}") from None
        state = dict(seen)
        assert state["drawn"] == state["figures"], f"some figures have no axes: {state}"
    except BaseException as e:
        if not isinstance(e, KeyboardInterrupt):
            report_failure(lab, page)
        raise
