"""The environment check of notebook 00: what it reports, and that it tells the truth when pieces are missing."""

from __future__ import annotations

import sys
import tomllib
import types
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from fedlab_core import environment
from fedlab_core.environment import (Check, EnvironmentReport, check_environment, front_end,
                                     live_widgets_expected, speed_probe, usable_cpus)

ROOT = Path(__file__).resolve().parents[1]
SHARED_HEART = ROOT.parent / "shared" / "datasets" / "uci-heart-disease"
ROWS = ["Python", "PyTorch", "Core libraries", "plotly", "ipywidgets", "anywidget", "Live widgets",
        "Secure aggregation", "Flower", "UCI heart data", "CPU threads"]


@pytest.fixture
def no_heart(monkeypatch, tmp_path):
    """No heart data anywhere: no FEDLAB_HEART_DIR, an empty cache."""
    monkeypatch.delenv("FEDLAB_HEART_DIR", raising=False)
    monkeypatch.setenv("FEDLAB_CACHE", str(tmp_path / "cache"))


def _pretend_missing(monkeypatch, *names):
    real = environment.installed_version
    monkeypatch.setattr(environment, "installed_version",
                        lambda name: None if name in names else real(name))


def test_the_report_has_every_row_and_the_test_environment_is_ready(no_heart):
    report = check_environment(probe_seconds=0)
    assert [c.name for c in report] == ROWS   # no probe asked for: no Speed row
    assert report.ok, report.to_text()        # the test extra installs everything the course needs
    assert report["PyTorch"].status == "ok" and "CPU build" in report["PyTorch"].found
    assert report["UCI heart data"].status == "optional"
    assert "Notebooks 02 and 08" in report["UCI heart data"].advice
    assert not (Path(environment.os.environ["FEDLAB_CACHE"])).exists(), "the check must not download"


def test_the_speed_probe_measures_rounds(no_heart):
    report = check_environment(probe_seconds=0.2)
    speed = report["Speed"]
    assert speed.status in ("ok", "warn")
    m = report.measurements
    assert m["rounds"] >= 1 and m["round_ms"] > 0 and m["notebook01_s"] > m["setup_s"]
    assert f"{m['round_ms']:.1f} ms a round" in speed.found


def test_speed_probe_runs_for_about_the_time_asked():
    m = speed_probe(0.3)
    # one round at most past the time (a round is milliseconds here; generous for a busy machine)
    assert m["rounds"] * m["round_ms"] / 1000 == pytest.approx(0.3, abs=0.3)


@pytest.mark.parametrize("bad", [0, -1, 61, float("nan"), "1"])
def test_speed_probe_refuses_a_bad_duration(bad):
    with pytest.raises(ValueError, match="seconds = .* is not allowed"):
        speed_probe(bad)


@pytest.mark.parametrize("bad", [-0.5, 100, "fast"])
def test_check_environment_refuses_a_bad_probe_duration(bad):
    with pytest.raises(ValueError, match="probe_seconds = .* is not allowed"):
        check_environment(probe_seconds=bad)


def test_a_missing_required_library_makes_the_report_say_so(no_heart, monkeypatch):
    _pretend_missing(monkeypatch, "plotly", "pandas")
    report = check_environment(probe_seconds=0.2)
    assert not report.ok
    assert report["plotly"].status == "missing" and "pip install plotly" in report["plotly"].advice
    assert report["Core libraries"].status == "missing" and "pandas" in report["Core libraries"].advice
    assert "Speed" not in [c.name for c in report]   # no probe without the core libraries
    assert report.verdict().startswith("Something the course needs is missing here: Core libraries, plotly")


def test_missing_torch_is_reported_with_the_cpu_install(no_heart, monkeypatch):
    _pretend_missing(monkeypatch, "torch")
    report = check_environment(probe_seconds=0.2)
    assert report["PyTorch"].status == "missing"
    assert "download.pytorch.org/whl/cpu" in report["PyTorch"].advice
    assert "Speed" not in [c.name for c in report] and not report.ok


def test_optional_pieces_name_the_notebook_that_needs_them(no_heart, monkeypatch):
    _pretend_missing(monkeypatch, "phe", "flwr")
    report = check_environment(probe_seconds=0)
    assert report.ok   # optional pieces never stop the course
    assert report["Secure aggregation"].status == "optional"
    assert "Notebook 07 needs phe" in report["Secure aggregation"].advice
    assert report["Flower"].status == "optional" and "notebook 10" in report["Flower"].advice
    assert "only limit some notebooks" in report.verdict()


def test_an_old_library_is_as_good_as_missing(no_heart, monkeypatch):
    real = environment.installed_version
    monkeypatch.setattr(environment, "installed_version",
                        lambda name: "7.5.1" if name == "ipywidgets" else real(name))
    report = check_environment(probe_seconds=0)
    assert report["ipywidgets"].status == "missing" and "ipywidgets>=7.6" in report["ipywidgets"].advice


@pytest.mark.parametrize("plotly, live, status", [
    ("5.24.1", True, "optional"),    # plotly 5 draws its FigureWidget without anywidget
    ("7.1.0", False, "optional"),    # static figures need no widget at all
    ("7.1.0", True, "missing"),      # plotly 6+ live: anywidget carries the chart
])
def test_anywidget_is_needed_only_by_plotly_6_with_live_widgets(no_heart, monkeypatch, plotly, live, status):
    real = environment.installed_version
    fake = {"anywidget": None, "plotly": plotly}
    monkeypatch.setattr(environment, "installed_version",
                        lambda name: fake[name] if name in fake else real(name))
    monkeypatch.setattr(environment, "live_widgets_expected", lambda: (live, "told so"))
    assert check_environment(probe_seconds=0)["anywidget"].status == status


@pytest.mark.skipif(not SHARED_HEART.is_dir(), reason="no offline copy of the UCI heart data")
def test_heart_data_found_through_fedlab_heart_dir(monkeypatch):
    monkeypatch.setenv("FEDLAB_HEART_DIR", str(SHARED_HEART))
    row = check_environment(probe_seconds=0)["UCI heart data"]
    assert row.status == "ok" and row.found == str(SHARED_HEART)


def test_an_incomplete_fedlab_heart_dir_is_a_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("FEDLAB_HEART_DIR", str(tmp_path))
    row = check_environment(probe_seconds=0)["UCI heart data"]
    assert row.status == "warn" and "processed.cleveland.data" in row.advice


@pytest.mark.parametrize("environ, modules, where", [
    ({}, ["google.colab", "ipykernel"], "colab"),
    ({"VSCODE_PID": "12"}, ["ipykernel"], "vscode"),
    ({}, ["ipykernel"], "jupyter"),
    ({}, [], "terminal"),
])
def test_front_end(environ, modules, where):
    assert front_end(environ=environ, modules=modules) == where


@pytest.mark.parametrize("environ, modules, live", [
    ({}, ["ipykernel"], True),
    ({}, ["google.colab", "ipykernel"], False),
    ({"VSCODE_PID": "1"}, ["ipykernel"], False),
    ({"FEDLAB_STATIC_PLOTS": "1"}, ["ipykernel"], False),
    ({"FEDLAB_STATIC_PLOTS": "yes"}, ["ipykernel"], False),
    ({"FEDLAB_STATIC_PLOTS": "0", "VSCODE_PID": "1"}, ["ipykernel"], True),
    ({}, [], False),
])
def test_live_widgets_expected(environ, modules, live):
    got, why = live_widgets_expected(environ=environ, modules=modules)
    assert got is live and why


@pytest.mark.parametrize("environ, colab", [
    ({}, False), ({}, True), ({"VSCODE_PID": "1"}, False), ({"FEDLAB_STATIC_PLOTS": "1"}, False),
    ({"FEDLAB_STATIC_PLOTS": "off"}, True), ({"FEDLAB_STATIC_PLOTS": "0", "VSCODE_PID": "1"}, False),
])
def test_the_check_agrees_with_the_dashboards_choice(monkeypatch, environ, colab):
    # two copies of one rule until the dashboard asks fedlab_core.environment: they must not drift
    pytest.importorskip("ipywidgets")
    from fedlab_core.ui.dashboard import static_plots_wanted

    for name in ("FEDLAB_STATIC_PLOTS", "VSCODE_PID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    modules = set(sys.modules) | {"ipykernel"}   # as inside a notebook kernel
    live, _ = live_widgets_expected(modules=modules)
    assert live is not static_plots_wanted()


def test_usable_cpus():
    usable, machine = usable_cpus()
    assert 1 <= usable <= machine


def test_a_check_refuses_an_unknown_status():
    with pytest.raises(ValueError, match="status = 'fine' is not allowed"):
        Check("x", "fine", "", "")


def test_the_report_reads_as_text_and_as_html():
    report = EnvironmentReport([Check("Python", "ok", "3.11", "Recent enough."),
                                Check("Flower", "optional", "not installed", "Only notebook 10 <needs> it.")])
    text = report.to_text()
    assert "✅ Python" in text and "➖ Flower" in text and text.endswith(report.verdict())
    page = report._repr_html_()
    assert "&lt;needs&gt;" in page and "<needs>" not in page   # advice is escaped
    assert "✅ works" in page and "➖ optional" in page           # a word beside every symbol
    with pytest.raises(KeyError, match="no check named 'GPU'"):
        report["GPU"]


def test_minimum_versions_agree_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == ">=" + ".".join(map(str, environment.MIN_PYTHON))
    texts = project["dependencies"] + [t for group in project["optional-dependencies"].values() for t in group]
    floors = {}
    for text in texts:
        req = Requirement(text)
        for spec in req.specifier:
            if spec.operator == ">=":
                floors.setdefault(req.name, set()).add(spec.version)
    for name, least in environment.MIN_VERSIONS.items():
        if name == "ipywidgets":   # the kit's widgets run on 7.6+ (Colab ships 7); local installs get 8
            assert "ipywidgets" not in str(project["optional-dependencies"]["colab"])
            continue
        assert floors.get(name) == {least}, f"{name}: the check wants ≥ {least}, pyproject says {floors.get(name)}"


def test_command_line(capsys, no_heart):
    assert environment.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "PyTorch" in out and "Speed" not in out and out.rstrip().endswith(".")
