"""Every notebook runs top to bottom in fast mode, and is committed without outputs.

The notebooks are executed in a temporary copy of ``notebooks/`` (so no
output is ever written back to the repository) with ``FEDLAB_FAST=1`` and
the live plotly widget path (``FEDLAB_STATIC_PLOTS`` unset). A failure names
the failing cell, its source and the error.

    python -m pytest -m notebooks -q
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SHARED_HEART = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "uci-heart-disease"
NOTEBOOK_TIMEOUT_S = 120  # the whole notebook, not each cell
# notebook 10 starts and stops two real Flower deployments (a SuperLink and SuperNodes that
# poll every 3 s, a fresh process per message): ~100 s on 2 quiet cores, more on busy ones
SLOW_NOTEBOOKS_TIMEOUT_S = {"10-deployment.ipynb": 300}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _ids(paths):
    return [p.name for p in paths]


def _error_report(nb, name: str) -> str:
    """The first cell with an error output: its number, source and traceback."""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tb = _ANSI.sub("", "\n".join(out.get("traceback", [])))
                return (f"{name}: cell {i} (execution count {cell.get('execution_count')}) failed\n"
                        f"---- source ----\n{cell.source}\n"
                        f"---- error ----\n{out.get('ename')}: {out.get('evalue')}\n{tb}")
    return f"{name}: failed, but no cell has an error output"


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_in_fast_mode(path: Path, tmp_path: Path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    # the kernel inherits this process's environment
    monkeypatch.setenv("FEDLAB_FAST", "1")
    monkeypatch.delenv("FEDLAB_STATIC_PLOTS", raising=False)
    monkeypatch.delenv("VSCODE_PID", raising=False)
    # no internet in tests: the real heart data comes from the shared offline copy
    if "FEDLAB_HEART_DIR" not in os.environ and SHARED_HEART.is_dir():
        monkeypatch.setenv("FEDLAB_HEART_DIR", str(SHARED_HEART))
    # a copy of the whole folder: notebooks may read files next to them
    workdir = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, workdir)
    nb_path = workdir / path.name
    nb = nbformat.read(nb_path, as_version=4)

    budget = SLOW_NOTEBOOKS_TIMEOUT_S.get(path.name, NOTEBOOK_TIMEOUT_S)
    deadline = time.monotonic() + budget

    def remaining(_cell) -> int:  # every cell gets what is left of the notebook's budget
        return max(1, int(deadline - time.monotonic()))

    client = nbclient.NotebookClient(
        nb, timeout=budget, timeout_func=remaining, kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}}, allow_errors=False,
        record_timing=False)
    t0 = time.monotonic()
    failure = None   # failed outside the except blocks: no chained nbclient traceback
    try:
        client.execute()
    except CellTimeoutError as e:
        failure = (f"{path.name}: over {budget} s in fast mode "
                   f"(stopped after {time.monotonic() - t0:.0f} s): {e}")
    except DeadKernelError as e:
        failure = f"{path.name}: the kernel died: {e}"
    except CellExecutionError:
        failure = _error_report(nb, path.name)
    if failure:
        pytest.fail(failure, pytrace=False)
    elapsed = time.monotonic() - t0
    print(f"{path.name}: {elapsed:.1f} s", file=sys.stderr)


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_committed_without_outputs(path: Path):
    """The repo rule: notebooks are committed clean (no outputs, no execution counts)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            dirty.append(f"cell {i}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            dirty.append(f"cell {i}: execution_count {cell['execution_count']}")
    widgets = nb.get("metadata", {}).get("widgets")
    if widgets:
        dirty.append("notebook metadata holds saved widget state ('widgets')")
    assert not dirty, (f"{path.name} must be committed without outputs "
                       f"(e.g. `jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)}`"
                       "): " + "; ".join(dirty))
