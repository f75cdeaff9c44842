"""The course's map, glossary and instructor guide point at notebooks and sections that exist.

Every link to a notebook must reach a file in ``notebooks/``; a section named in
quotes (“…”) in the link's text must be a heading of that notebook, as it is
titled there; the instructor guide's minutes must be the notebooks' own
estimates and its plans must add up. When a notebook's section is renamed,
these tests say which document to update.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
GLOSSARY = ROOT / "docs" / "glossary.md"
GUIDE = ROOT / "docs" / "instructor-guide.md"
PRESETS = ROOT / "presets"

LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])+)\]\(([^)\s]+)\)")
QUOTED = re.compile(r"“([^”]+)”")
MINUTES = re.compile(r"about (\d+) minutes")
# the course marks exercises and predictions with an emoji the documents leave out
MARKS = ("✍️", "✍", "🔮", "\ufe0f")


def normalise(title: str) -> str:
    for mark in MARKS:
        title = title.replace(mark, "")
    return " ".join(title.split())


@lru_cache(maxsize=None)
def notebook_cells(path: Path) -> tuple[str, ...]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return tuple("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def headings(path: Path) -> set[str]:
    return {normalise(line.lstrip("#")) for cell in notebook_cells(path)
            for line in cell.splitlines() if line.startswith("#")}


def own_minutes(path: Path) -> int:
    found = MINUTES.search(notebook_cells(path)[0])
    assert found, f"{path.name} does not state its time ('about N minutes') in its first cell"
    return int(found.group(1))


def notebook_links(text: str, base: Path) -> list[tuple[str, Path]]:
    """``(link text, notebook path)`` for every Markdown link to a ``.ipynb``."""
    return [(label, (base / target.split("#")[0]).resolve()) for label, target in LINK.findall(text)
            if target.split("#")[0].endswith(".ipynb")]


def check_link(label: str, path: Path) -> list[str]:
    """What is wrong with one link to a notebook (an empty list when nothing is)."""
    if not path.is_file():
        return [f"{label!r}: no notebook {path.relative_to(ROOT)}"]
    problems = []
    if not label.startswith(path.name[:2]):
        problems.append(f"{label!r}: the text should start with the notebook's number {path.name[:2]}")
    known = headings(path)
    problems += [f"{label!r}: {path.name} has no section titled “{title}”"
                 for title in QUOTED.findall(label) if normalise(title) not in known]
    return problems


def section(text: str, title: str, level: str = "## ") -> str:
    start = text.index(f"\n{level}{title}")
    rest = text[start + 1:]
    end = rest.find(f"\n{level}", len(level))
    return rest if end < 0 else rest[:end]


def table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


# ---- glossary -----------------------------------------------------------------

def glossary_entries() -> dict[str, str]:
    entries = {}
    for block in GLOSSARY.read_text(encoding="utf-8").split("\n### ")[1:]:
        title, _, body = block.partition("\n")
        entries[title.strip()] = body.split("\n## ")[0]
    return entries


def test_every_glossary_entry_links_a_notebook_section_that_exists():
    entries = glossary_entries()
    assert len(entries) >= 40
    problems = []
    for term, body in entries.items():
        links = notebook_links(body, GLOSSARY.parent)
        if not links:
            problems.append(f"{term}: no link to the notebook that teaches it")
        for label, path in links:
            problems += [f"{term}: {p}" for p in check_link(label, path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("term", ["FedAvg", "round", "local epoch", "client drift", "non-IID",
                                  "Dirichlet", "FedProx", "SCAFFOLD", "Krum", "ε", "δ", "RDP", "PLD",
                                  "clipping", "secure aggregation", "Shamir", "Paillier", "SuperLink",
                                  "SuperNode", "FedBN", "Ditto", "LiRA", "DP-SGD"])
def test_the_glossary_defines_the_terms_learners_meet(term):
    assert any(term.lower() in title.lower() for title in glossary_entries()), term


# ---- README: the concept map ------------------------------------------------

CONCEPTS = ["participants", "central server", "secure communication", "aggregation",
            "convergence criteria", "heterogeneity", "communication efficiency", "security",
            "scalability", "privacy", "personalisation"]


def concept_map() -> str:
    return section(README.read_text(encoding="utf-8"), "Concept map, glossary and instructor guide")


def test_the_concept_map_covers_every_concept_of_the_issue():
    concepts = [row[0].strip("*") for row in table_rows(concept_map())]
    assert concepts == CONCEPTS


def test_the_concept_map_points_at_sections_and_modules_that_exist():
    problems = []
    for concept, _, taught, engine in table_rows(concept_map()):
        links = notebook_links(taught, ROOT)
        if not links:
            problems.append(f"{concept}: no notebook")
        for label, path in links:
            problems += [f"{concept}: {p}" for p in check_link(label, path)]
        paths = re.findall(r"`((?:fedlab_core|benchmarks)/[^`]*)`", engine)
        if not paths:
            problems.append(f"{concept}: no engine module")
        problems += [f"{concept}: no {p}" for p in paths if not (ROOT / p).exists()]
    assert not problems, "\n".join(problems)


def test_the_readme_links_the_glossary_and_the_guide():
    text = concept_map()
    assert "(docs/glossary.md)" in text and "(docs/instructor-guide.md)" in text
    assert GLOSSARY.is_file() and GUIDE.is_file()


# ---- the instructor guide ------------------------------------------------------

def test_every_notebook_link_of_the_guide_exists():
    text = GUIDE.read_text(encoding="utf-8")
    links = notebook_links(text, GUIDE.parent)
    assert len(links) > 30
    problems = [p for label, path in links for p in check_link(label, path)]
    assert not problems, "\n".join(problems)


def test_the_timings_table_quotes_every_notebook_s_own_estimate():
    table = section(GUIDE.read_text(encoding="utf-8"), "The notebooks and their times")
    listed = {}
    for row in table_rows(table):
        [(_, path)] = notebook_links(row[0], GUIDE.parent)
        listed[path.name] = int(MINUTES.search(row[1]).group(1))
    numbered = {p.name: own_minutes(p) for p in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))}
    assert listed == numbered


def _clock(text: str) -> int:
    hours, minutes = text.split(":")
    return 60 * int(hours) + int(minutes)


def plans() -> dict[str, str]:
    text = section(GUIDE.read_text(encoding="utf-8"), "Three plans")
    return {block.partition("\n")[0]: block for block in text.split("\n### ")[1:]}


def test_there_is_a_90_minute_a_half_day_and_a_full_day_plan():
    lengths = sorted(int(re.search(r"\((\d+) minutes", title).group(1)) for title in plans())
    assert lengths == [90, 210, 480]


@pytest.mark.parametrize("title", list(plans()))
def test_a_plan_adds_up_and_takes_whole_notebooks_at_their_own_estimate(title):
    length = int(re.search(r"\((\d+) minutes", title).group(1))
    rows = table_rows(plans()[title])
    *blocks, total = rows
    assert total[0] == "**total**" and total[1] == f"**{length}**"
    assert sum(int(row[1]) for row in blocks) == length
    for row, following in zip(blocks, blocks[1:]):   # the clock advances by each block's minutes
        assert _clock(following[0]) == _clock(row[0]) + int(row[1]), row
    for start, minutes, block, source in blocks:
        links = notebook_links(block, GUIDE.parent)
        whole = [path for label, path in links if not QUOTED.search(label)]
        if whole:
            [path] = whole
            assert int(minutes) == own_minutes(path) and source == "the notebook", (start, block)
        elif links:
            assert source == "this guide\\*", (start, block)


def test_every_preset_is_part_of_a_plan_and_every_linked_preset_exists():
    text = GUIDE.read_text(encoding="utf-8")
    linked = set(re.findall(r"\(\.\./presets/([\w-]+\.toml)\)", text))
    assert linked == {p.name for p in PRESETS.glob("*.toml")}
    for title, plan in plans().items():
        assert re.search(r"\*\*Preset:\*\* \[`presets/[\w-]+\.toml`\]", plan), title


def test_every_misconception_names_the_notebook_section_that_corrects_it():
    rows = table_rows(section(GUIDE.read_text(encoding="utf-8"),
                              "Misconceptions, and the cells that correct them"))
    assert len(rows) >= 12
    for misconception, _, where in rows:
        links = notebook_links(where, GUIDE.parent)
        assert links and all(QUOTED.search(label) for label, _ in links), misconception
