"""Where the kit is published, and how a learner opens it: Colab, Binder and the setup cell.

The published location is one constant, :data:`GITHUB_REPOSITORY` (with
:data:`GITHUB_BRANCH`). Every link a learner clicks is built from it: the
"Open in Colab" and "Launch Binder" badges of the README, and the GitHub
address the notebooks' setup cell installs the kit from on Colab. A fork
changes the constant, then rewrites the copies that live in files::

    python -m fedlab_core.launch notebooks/0*.ipynb     # each notebook's setup cell
    python -m fedlab_core.launch --badges               # prints the README's badge cells

(``tests/test_launch.py`` fails while a notebook's setup cell or a README
badge still names the old location.)

The setup cell is the first code cell of every numbered notebook, and the same
text in all of them. On Colab it installs the kit (``%pip``, without touching
Colab's own ipywidgets 7) and turns on Colab's custom widget manager; on Colab
and in VS Code, where plotly's live widget does not render, it sets
``FEDLAB_STATIC_PLOTS=1`` unless the learner chose otherwise. Anywhere else it
does nothing visible. It is plain Python (``%pip`` is called through
``get_ipython().run_line_magic`` on Colab only), so the notebook stays valid
everywhere.

>>> colab_url("01-why-federated")
'https://colab.research.google.com/github/fedlab-kit/fedlab/blob/main/notebooks/01-why-federated.ipynb'
>>> binder_url("01-why-federated.ipynb")
'https://mybinder.org/v2/gh/fedlab-kit/fedlab/main?urlpath=lab/tree/notebooks/01-why-federated.ipynb'
>>> pip_spec()
'fedlab-core[colab] @ git+https://github.com/fedlab-kit/fedlab@main'
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

__all__ = ["GITHUB_REPOSITORY", "GITHUB_BRANCH", "NOTEBOOK_FOLDER", "COLAB_EXTRA",
           "SETUP_CELL_ID", "COLAB_BADGE", "BINDER_BADGE", "colab_url", "binder_url",
           "binder_app_url", "binder_home_url", "badges", "pip_spec", "setup_cell_source", "is_setup_cell",
           "write_setup_cell", "main"]

# The published location of the kit. Change these two lines if you fork it.
GITHUB_REPOSITORY = "fedlab-kit/fedlab"
GITHUB_BRANCH = "main"

NOTEBOOK_FOLDER = "notebooks"
# pyproject's extra with what Colab lacks (the secure-aggregation libraries, anywidget, psutil),
# without ipywidgets or jupyterlab: Colab keeps its own front end and ipywidgets 7
COLAB_EXTRA = "colab"
SETUP_CELL_ID = "fedlab-setup"   # a fixed cell id: rewriting the cell leaves a one-cell diff
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SETUP_MARKER = "# fedlab setup"   # the first line of the setup cell, how a rewrite finds it


def _notebook_file(notebook: str) -> str:
    """``"01-why-federated"`` or ``"01-why-federated.ipynb"`` → ``"01-why-federated.ipynb"``."""
    name = str(notebook)
    if name.endswith(".ipynb"):
        name = name[: -len(".ipynb")]
    if not _NAME.match(name):
        raise ValueError(f"notebook = {notebook!r} is not allowed: use a notebook's file name "
                         "such as '01-why-federated' (letters, digits, '.', '_' and '-'; no folders)")
    return name + ".ipynb"


def colab_url(notebook: str) -> str:
    """The address that opens ``notebooks/<notebook>`` of the published repository in Colab."""
    return (f"https://colab.research.google.com/github/{GITHUB_REPOSITORY}/blob/{GITHUB_BRANCH}/"
            f"{NOTEBOOK_FOLDER}/{_notebook_file(notebook)}")


def binder_url(notebook: str) -> str:
    """The address that builds (or reuses) the Binder image and opens the notebook in JupyterLab."""
    return (f"https://mybinder.org/v2/gh/{GITHUB_REPOSITORY}/{GITHUB_BRANCH}"
            f"?urlpath=lab/tree/{NOTEBOOK_FOLDER}/{_notebook_file(notebook)}")


def binder_app_url(notebook: str) -> str:
    """Binder, showing the notebook as a Voilà app: its outputs and widgets, without the code.

    >>> binder_app_url("dashboard-app")
    'https://mybinder.org/v2/gh/fedlab-kit/fedlab/main?urlpath=voila/render/notebooks/dashboard-app.ipynb'
    """
    return (f"https://mybinder.org/v2/gh/{GITHUB_REPOSITORY}/{GITHUB_BRANCH}"
            f"?urlpath=voila/render/{NOTEBOOK_FOLDER}/{_notebook_file(notebook)}")


def binder_home_url() -> str:
    """Binder, opening JupyterLab on the start-here notebook."""
    return binder_url("00-start-here")


def badges(notebook: str) -> str:
    """The README's Markdown for one notebook: an "Open in Colab" and a "Launch Binder" badge.

    >>> print(badges("00-start-here"))  # doctest: +NORMALIZE_WHITESPACE
    [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fedlab-kit/fedlab/blob/main/notebooks/00-start-here.ipynb)
    [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fedlab-kit/fedlab/main?urlpath=lab/tree/notebooks/00-start-here.ipynb)
    """
    return (f"[![Open in Colab]({COLAB_BADGE})]({colab_url(notebook)}) "
            f"[![Launch Binder]({BINDER_BADGE})]({binder_url(notebook)})")


def pip_spec() -> str:
    """What the setup cell installs on Colab: the kit from GitHub, with the Colab extra."""
    return f"fedlab-core[{COLAB_EXTRA}] @ git+https://github.com/{GITHUB_REPOSITORY}@{GITHUB_BRANCH}"


def setup_cell_source() -> str:
    """The first code cell of every numbered notebook (see the module docstring)."""
    return f'''{_SETUP_MARKER}, the same in every notebook: on Google Colab it installs the kit and turns
# on widgets; on Colab and in VS Code it picks static figures. Elsewhere it changes nothing.
import os
import sys

if "google.colab" in sys.modules:
    import importlib.util

    if importlib.util.find_spec("fedlab_core") is None:
        print("Installing fedlab on this Colab machine, once per session; pip is quiet until it is done...")
        # %pip, called so that this cell is plain Python in every other front end
        get_ipython().run_line_magic("pip", "install --quiet '{pip_spec()}'")
        importlib.invalidate_caches()   # so the new package is found without a restart
    from google.colab import output

    output.enable_custom_widget_manager()   # Colab shows third-party widgets only after this
if "google.colab" in sys.modules or "VSCODE_PID" in os.environ:
    os.environ.setdefault("FEDLAB_STATIC_PLOTS", "1")   # plotly's live widget does not render there'''


def is_setup_cell(cell: dict) -> bool:
    """Whether a notebook cell (as JSON) is a setup cell, of this or an older location."""
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    return cell.get("cell_type") == "code" and source.startswith(_SETUP_MARKER)


def _source_lines(text: str) -> list[str]:
    # nbformat's on-disk form: one string per line, each but the last ending in "\n"
    return text.splitlines(keepends=True)


def write_setup_cell(path: str | Path) -> bool:
    """Put :func:`setup_cell_source` first among the code cells of the notebook at ``path``.

    An existing setup cell is rewritten in place; otherwise a new cell is
    inserted before the first code cell (after the title and objectives).
    The file is written in nbformat's own layout, and only when it changes.

    Returns
    -------
    bool : whether the file changed.
    """
    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"path = {str(path)!r} is not allowed: it must be an existing .ipynb file")
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    cells = nb.get("cells", [])
    cell = {"cell_type": "code", "execution_count": None, "id": SETUP_CELL_ID, "metadata": {},
            "outputs": [], "source": _source_lines(setup_cell_source())}
    existing = [i for i, c in enumerate(cells) if is_setup_cell(c)]
    if existing:
        i = existing[0]
        cell["metadata"] = cells[i].get("metadata", {})
        cell["id"] = cells[i].get("id", SETUP_CELL_ID)
        cells[i] = cell
    else:
        first_code = next((i for i, c in enumerate(cells) if c.get("cell_type") == "code"), len(cells))
        if any(c.get("id") == SETUP_CELL_ID for c in cells):
            raise ValueError(f"{path}: a cell already has the id {SETUP_CELL_ID!r} but is not a setup cell")
        cells.insert(first_code, cell)
    nb["cells"] = cells
    new_text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if new_text == text:
        return False
    path.write_text(new_text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m fedlab_core.launch NOTEBOOK...`` writes the setup cell; ``--badges`` prints badges."""
    parser = argparse.ArgumentParser(
        prog="python -m fedlab_core.launch",
        description=f"Write the setup cell into notebooks, for the kit published at {GITHUB_REPOSITORY}.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="the .ipynb files to update")
    parser.add_argument("--badges", action="store_true",
                        help="print the README's Colab and Binder badges of every notebook in notebooks/")
    args = parser.parse_args(argv)
    if args.badges:
        folder = Path(NOTEBOOK_FOLDER)
        for nb in sorted(folder.glob("[0-9][0-9]-*.ipynb")):
            print(f"{nb.stem}: {badges(nb.stem)}")
    for nb in args.notebooks:
        try:
            changed = write_setup_cell(nb)
        except ValueError as err:
            parser.error(str(err))
        print(f"{nb}: {'setup cell written' if changed else 'already up to date'}")
    if not args.notebooks and not args.badges:
        parser.print_usage(sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
