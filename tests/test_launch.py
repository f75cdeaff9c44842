"""One-click launch: the Binder configuration, the notebooks' setup cell, the README's badges.

Binder builds its image from ``.binder/``; these tests check what can be
checked without building it: a CPU torch from PyTorch's CPU index, strict
pins that cover and satisfy pyproject's dependencies, a runtime Python the kit
supports, and a postBuild that installs the kit without re-resolving the pins.
The setup cell is executed here under a fake Colab and a fake VS Code.
"""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import sys
import tomllib
import types
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from fedlab_core import launch

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / ".binder"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
NUMBERED = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _requirement_lines() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in _requirement_lines():
        if line.startswith("-"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        pins[_normal(req.name)] = Version(spec.version)
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_python() -> str:
    text = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", text)
    assert match, f".binder/runtime.txt = {text!r}: expected 'python-X.Y'"
    return match.group(1)


def _needs(extras: tuple[str, ...], python: str) -> list[Requirement]:
    """pyproject's requirements for ``fedlab-core[extras]`` on ``python``, self-references expanded."""
    project = PYPROJECT["project"]
    texts, todo, done = list(project["dependencies"]), list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in done:
            continue
        done.add(extra)
        for text in project["optional-dependencies"][extra]:
            req = Requirement(text)
            if _normal(req.name) == "fedlab-core":   # e.g. "fedlab-core[secure,flower]"
                todo += sorted(req.extras)
            else:
                texts.append(text)
    env = {"python_version": python, "python_full_version": python + ".0", "extra": ""}
    reqs = [Requirement(text) for text in dict.fromkeys(texts)]
    return [req for req in reqs if req.marker is None or req.marker.evaluate(env)]


# ---------------------------------------------------------------- Binder

def test_binder_has_one_configuration_folder():
    # repo2docker reads binder/ or .binder/ and refuses both at once
    assert BINDER.is_dir(), ".binder/ is missing"
    assert not (ROOT / "binder").exists(), "binder/ and .binder/ both exist: Binder refuses that"
    for name in ("requirements.txt", "runtime.txt", "postBuild"):
        assert (BINDER / name).is_file(), f".binder/{name} is missing"


def test_binder_requirements_name_a_cpu_torch_from_the_cpu_index():
    lines = _requirement_lines()
    assert f"--extra-index-url {CPU_INDEX}" in lines, (
        f".binder/requirements.txt must fetch torch from PyTorch's CPU index ({CPU_INDEX}), "
        "or pip pulls a multi-GB CUDA build")
    torch_lines = [line for line in lines if re.match(r"torch\b", line)]
    assert len(torch_lines) == 1, f"expected one torch line, got {torch_lines}"
    match = re.fullmatch(r"torch==(\d+\.\d+\.\d+)\+cpu", torch_lines[0])
    assert match, f"{torch_lines[0]!r}: torch must be pinned to a CPU build, torch==X.Y.Z+cpu"
    # the same torch as the Makefile installs for development and CI
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    made = re.search(r"^TORCH_SPEC\s*\?=\s*torch==([\d.]+)", makefile, re.M)
    assert made, "the Makefile's TORCH_SPEC no longer pins torch; update this test"
    assert match.group(1) == made.group(1), (
        f"Binder pins torch {match.group(1)}, the Makefile installs {made.group(1)}: keep them equal")


def test_binder_requirements_are_strict_pins():
    names = []
    for line in _requirement_lines():
        if line.startswith("-"):
            assert line == f"--extra-index-url {CPU_INDEX}", f"unexpected pip option {line!r}"
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
            f"{line!r} is not a strict pin (name==version): Binder must build what was tested")
        assert not req.extras and req.marker is None, f"{line!r}: keep pins plain"
        names.append(_normal(req.name))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"pinned more than once: {duplicates}"


def test_binder_pins_cover_and_satisfy_what_the_notebooks_need():
    python = _runtime_python()
    pins = _pins()
    problems = []
    for req in _needs(("notebooks",), python):
        name = _normal(req.name)
        if name not in pins:
            problems.append(f"{req} (pyproject) is not pinned in .binder/requirements.txt")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{name}=={pins[name]} does not satisfy pyproject's {req}")
    assert not problems, "\n".join(problems)


def test_binder_runtime_is_a_python_the_kit_supports():
    python = Version(_runtime_python())
    requires = PYPROJECT["project"]["requires-python"]
    from packaging.specifiers import SpecifierSet

    assert SpecifierSet(requires).contains(python), (
        f".binder/runtime.txt asks for Python {python}; pyproject requires {requires}")


def test_postbuild_installs_the_kit_without_re_resolving_the_pins():
    post = BINDER / "postBuild"
    text = post.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/bash"), "postBuild must start with a bash shebang"
    assert post.stat().st_mode & stat.S_IXUSR, "postBuild must be executable (chmod +x)"
    assert "set -euo pipefail" in text, "postBuild must stop at the first failing command"
    commands = [line.strip() for line in text.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    installs = [c for c in commands if "pip install" in c]
    assert installs and all("--no-deps" in c for c in installs), (
        f"postBuild must install the kit with --no-deps (the pins are in requirements.txt): {installs}")
    assert any(c.split()[-1] == "." for c in installs), "postBuild must install the kit itself ('.')"
    # the image is checked at build time, so a broken one fails there and not in a workshop
    assert any("fedlab_core.environment" in c for c in commands)


# ---------------------------------------------------------------- the setup cell

def test_colab_extra_does_not_force_ipywidgets_8_or_jupyterlab():
    # Colab keeps ipywidgets 7 and its own front end; installing either would fight it
    for req in _needs((launch.COLAB_EXTRA,), "3.12"):
        name = _normal(req.name)
        assert name != "jupyterlab", "the Colab extra must not install JupyterLab"
        if name == "ipywidgets":
            assert req.specifier.contains("7.7.1"), f"the Colab extra forces {req}: Colab ships 7.7"
    assert launch.COLAB_EXTRA in PYPROJECT["project"]["optional-dependencies"]


def test_setup_cell_is_plain_python_and_names_the_published_location():
    source = launch.setup_cell_source()
    ast.parse(source)   # no %magic: valid in any kernel, and under nbformat's validators
    assert f"git+https://github.com/{launch.GITHUB_REPOSITORY}@{launch.GITHUB_BRANCH}" in source
    assert "ipywidgets" not in source.split("run_line_magic", 1)[1].splitlines()[0]


@pytest.mark.parametrize("path", NUMBERED, ids=[p.name for p in NUMBERED])
def test_every_numbered_notebook_starts_with_the_setup_cell(path: Path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code cell"
    first = "".join(code[0]["source"])
    assert first == launch.setup_cell_source(), (
        f"{path.name}: the first code cell is not the setup cell of fedlab_core.launch; "
        f"run `python -m fedlab_core.launch notebooks/{path.name}`")
    assert nb["cells"].index(code[0]) == 1, f"{path.name}: the setup cell should follow the title cell"


def _run_setup_cell(monkeypatch, *, colab: bool, installed: bool = True,
                    environ: dict[str, str] | None = None):
    """Execute the setup cell with a fake Colab module and IPython; return what it did."""
    calls = {"magics": [], "widget_manager": 0}
    for name in ("FEDLAB_STATIC_PLOTS", "VSCODE_PID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)
    if colab:
        output = types.SimpleNamespace(
            enable_custom_widget_manager=lambda: calls.__setitem__("widget_manager",
                                                                   calls["widget_manager"] + 1))
        monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(output=output))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    if not installed:
        import importlib.util

        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name == "fedlab_core" else real(name, *a))
    shell = types.SimpleNamespace(run_line_magic=lambda magic, line: calls["magics"].append((magic, line)))
    exec(compile(launch.setup_cell_source(), "<setup cell>", "exec"), {"get_ipython": lambda: shell})
    calls["static"] = os.environ.get("FEDLAB_STATIC_PLOTS")
    return calls


def test_setup_cell_does_nothing_in_jupyter(monkeypatch, capsys):
    calls = _run_setup_cell(monkeypatch, colab=False)
    assert calls == {"magics": [], "widget_manager": 0, "static": None}
    assert capsys.readouterr().out == ""


def test_setup_cell_picks_static_figures_in_vscode_unless_told_otherwise(monkeypatch):
    assert _run_setup_cell(monkeypatch, colab=False, environ={"VSCODE_PID": "1"})["static"] == "1"
    told = _run_setup_cell(monkeypatch, colab=False, environ={"VSCODE_PID": "1", "FEDLAB_STATIC_PLOTS": "0"})
    assert told["static"] == "0"


def test_setup_cell_on_colab_installs_the_kit_and_enables_widgets(monkeypatch, capsys):
    fresh = _run_setup_cell(monkeypatch, colab=True, installed=False)
    assert fresh["widget_manager"] == 1 and fresh["static"] == "1"
    ((magic, line),) = fresh["magics"]
    assert magic == "pip" and line.startswith("install")
    assert f"'{launch.pip_spec()}'" in line
    assert "Installing fedlab" in capsys.readouterr().out   # a slow step says so before it starts


def test_setup_cell_on_colab_run_again_does_not_reinstall(monkeypatch):
    again = _run_setup_cell(monkeypatch, colab=True, installed=True)
    assert again["magics"] == [] and again["widget_manager"] == 1 and again["static"] == "1"


# ---------------------------------------------------------------- links and the sync tool

def test_links_are_built_from_the_one_published_location(monkeypatch):
    monkeypatch.setattr(launch, "GITHUB_REPOSITORY", "someone/fork")
    monkeypatch.setattr(launch, "GITHUB_BRANCH", "dev")
    assert launch.colab_url("02-non-iid") == (
        "https://colab.research.google.com/github/someone/fork/blob/dev/notebooks/02-non-iid.ipynb")
    assert launch.binder_url("02-non-iid") == (
        "https://mybinder.org/v2/gh/someone/fork/dev?urlpath=lab/tree/notebooks/02-non-iid.ipynb")
    assert "git+https://github.com/someone/fork@dev" in launch.setup_cell_source()


@pytest.mark.parametrize("bad", ["", "../secrets", "a b", "notebooks/01-why-federated"])
def test_a_bad_notebook_name_is_refused(bad):
    with pytest.raises(ValueError, match="notebook = .* is not allowed"):
        launch.colab_url(bad)


def test_write_setup_cell_inserts_then_updates_in_place(tmp_path, monkeypatch):
    path = tmp_path / "99-demo.ipynb"
    cells = [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": ["# 99 · Demo"]},
             {"cell_type": "code", "execution_count": None, "id": "work", "metadata": {}, "outputs": [],
              "source": ["x = 1"]}]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    assert launch.write_setup_cell(path) is True
    got = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert [c["id"] for c in got] == ["title", launch.SETUP_CELL_ID, "work"]
    assert "".join(got[1]["source"]) == launch.setup_cell_source()
    assert launch.write_setup_cell(path) is False   # idempotent: nothing to write
    # a fork: the same cell is rewritten in place, not added again
    monkeypatch.setattr(launch, "GITHUB_REPOSITORY", "someone/fork")
    assert launch.write_setup_cell(path) is True
    got = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert len(got) == 3 and "someone/fork" in "".join(got[1]["source"])


def test_write_setup_cell_refuses_what_is_not_a_notebook(tmp_path):
    with pytest.raises(ValueError, match="path = .* is not allowed"):
        launch.write_setup_cell(tmp_path / "missing.ipynb")


# ---------------------------------------------------------------- README

def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


@pytest.mark.parametrize("path", NUMBERED, ids=[p.name for p in NUMBERED])
def test_readme_course_table_has_the_notebooks_badges(path: Path):
    rows = [line for line in _readme_section("The course").splitlines()
            if line.startswith("|") and f"(notebooks/{path.name})" in line]
    assert len(rows) == 1, f"README's course table needs one row linking notebooks/{path.name}"
    assert launch.badges(path.stem) in rows[0], (
        f"the row of {path.name} lacks its badges; `python -m fedlab_core.launch --badges` prints them")


def test_readme_quick_start_launches_binder_and_colab():
    quick = _readme_section("Quick start")
    assert launch.binder_home_url() in quick and launch.colab_url("00-start-here") in quick
    assert "fedlab_core/launch.py" in quick, "say where the published location is changed"
    everything = (ROOT / "README.md").read_text(encoding="utf-8")
    other = {m for m in re.findall(r"(?:mybinder\.org/v2/gh|colab\.research\.google\.com/github)/([^/]+/[^/]+)/",
                                   everything)}
    assert other <= {launch.GITHUB_REPOSITORY}, f"README links to another location: {other}"
