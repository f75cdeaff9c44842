"""Every numbered notebook has the parts of a lesson, in the course's own words.

A title ``# NN · …`` with an estimated time and learning objectives; at least
one "🔮 Predict" before a run; exercises ("✍️ Exercise") each with an automatic
check from ``fedlab_core.exercises``, a hint and an answer in ``<details>``
blocks; and "Key takeaways" at the end. Notebook 00's map of the course lists
every notebook with the time its own title gives.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fedlab_core import exercises

ROOT = Path(__file__).resolve().parents[1]
NUMBERED = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
CHECKS = {name for name in dir(exercises) if name.startswith("check_")}
TIME = re.compile(r"about (\d+) minutes")
HINT = re.compile(r"<details>\s*<summary>\s*Hint", re.I)
ANSWER = re.compile(r"<details>\s*<summary>\s*Show (the|a) (answer|solution)", re.I)


def _cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [{"type": c["cell_type"], "text": "".join(c["source"])} for c in cells]


def _exercises(cells: list[dict]) -> list[tuple[str, str]]:
    """Each exercise's heading and everything after it up to the next section (``#``/``##``) heading."""
    lines = [(c["type"], line) for c in cells for line in c["text"].splitlines()]
    found, current = [], None
    for kind, line in lines:
        heading = kind == "markdown" and re.match(r"#{1,2} ", line)
        if heading and current is not None:
            found.append(current)
            current = None
        if heading and "✍️ Exercise" in line:
            current = (line, "")
        elif current is not None:
            current = (current[0], current[1] + line + "\n")
    if current is not None:
        found.append(current)
    return found


def test_the_course_has_its_notebooks_numbered_from_00():
    numbers = [int(p.name[:2]) for p in NUMBERED]
    assert numbers == list(range(len(numbers))), f"notebooks must be numbered 00, 01, … without gaps: {numbers}"


@pytest.mark.parametrize("path", NUMBERED, ids=[p.name for p in NUMBERED])
def test_title_time_and_objectives(path: Path):
    first = _cells(path)[0]
    assert first["type"] == "markdown"
    assert first["text"].startswith(f"# {path.name[:2]} · "), f"{path.name}: title must be '# {path.name[:2]} · …'"
    assert TIME.search(first["text"]), f"{path.name}: the title cell must give an estimated time ('about N minutes')"
    objectives = first["text"].split("By the end of this notebook you will be able to", 1)
    assert len(objectives) == 2, f"{path.name}: the title cell must list learning objectives"
    items = re.findall(r"^\d+\. ", objectives[1], re.M)
    assert len(items) >= 2, f"{path.name}: at least two numbered learning objectives"


@pytest.mark.parametrize("path", NUMBERED, ids=[p.name for p in NUMBERED])
def test_predict_then_run(path: Path):
    cells = _cells(path)
    predicts = [i for i, c in enumerate(cells) if c["type"] == "markdown"
                and re.search(r"^#+ 🔮 Predict", c["text"], re.M)]
    assert predicts, f"{path.name}: no '🔮 Predict' question"
    for i in predicts:   # a prediction comes before something to run
        assert any(c["type"] == "code" for c in cells[i + 1:]), f"{path.name}: nothing to run after cell {i}"


@pytest.mark.parametrize("path", NUMBERED, ids=[p.name for p in NUMBERED])
def test_exercises_check_themselves_and_have_a_hint_and_an_answer(path: Path):
    cells = _cells(path)
    found = _exercises(cells)
    assert found, f"{path.name}: no '✍️ Exercise'"
    code = "\n".join(c["text"] for c in cells if c["type"] == "code")
    assert re.search(r"from fedlab_core\.exercises import", code), f"{path.name}: exercises use fedlab_core.exercises"
    for heading, body in found:
        called = set(re.findall(r"\b(check_\w+)\(", body)) & CHECKS
        assert called, f"{path.name}: {heading!r} has no automatic check (one of {sorted(CHECKS)})"
        assert HINT.search(body), f"{path.name}: {heading!r} has no <details><summary>Hint"
        assert ANSWER.search(body), f"{path.name}: {heading!r} has no <details><summary>Show the answer"


@pytest.mark.parametrize("path", NUMBERED, ids=[p.name for p in NUMBERED])
def test_key_takeaways_close_the_notebook(path: Path):
    last = _cells(path)[-1]
    parts = re.split(r"^## Key takeaways\s*$", last["text"], flags=re.M)
    assert last["type"] == "markdown" and len(parts) == 2, (
        f"{path.name}: the last cell must hold the '## Key takeaways' section")
    takeaways = parts[1]
    assert not re.search(r"^#{1,2} ", takeaways, re.M), f"{path.name}: nothing may follow the takeaways' section"
    assert len(re.findall(r"^\* ", takeaways, re.M)) >= 2, f"{path.name}: at least two takeaways"


def test_start_here_maps_every_notebook_with_its_time():
    start = next(p for p in NUMBERED if p.name.startswith("00-"))
    text = "\n".join(c["text"] for c in _cells(start))
    for path in NUMBERED[1:]:
        rows = [line for line in text.splitlines() if line.startswith(f"| `{path.stem}` |")]
        assert len(rows) == 1, f"notebook 00's course map has no row for {path.stem}"
        minutes = TIME.search(_cells(path)[0]["text"]).group(1)
        assert f"about {minutes} minutes" in rows[0], (
            f"notebook 00 gives {path.stem} another time than its title (about {minutes} minutes)")
