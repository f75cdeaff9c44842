"""Workshop presets: every file in presets/ loads, validates, runs, and says what it is for."""

import json
import math

import pytest

from fedlab_core.cli import main
from fedlab_core.config import ExperimentConfig
from fedlab_core.presets import PRESETS_DIR, available_presets, load_preset
from fedlab_core.simulation import Simulation

PRESETS = sorted(available_presets())


def test_the_three_workshop_plans_each_have_a_preset():
    assert PRESETS == ["workshop-90min", "workshop-full-day", "workshop-half-day"]
    assert all(path.parent == PRESETS_DIR for path in available_presets().values())


@pytest.mark.parametrize("name", PRESETS)
def test_a_preset_is_a_valid_config_file_the_cli_reads_too(name):
    path = PRESETS_DIR / f"{name}.toml"
    config = load_preset(name)
    # the same file, read the way `fedlab run --config` reads it, and by path
    assert ExperimentConfig.from_toml(path.read_text()) == config == load_preset(path)
    assert config != ExperimentConfig()   # a preset that changes nothing is not a preset
    header = path.read_text().splitlines()[0]
    assert header.startswith("# fedlab preset: the ") and "docs/instructor-guide.md" in header


@pytest.mark.parametrize("name", PRESETS)
def test_a_preset_runs_two_rounds(name):
    config = load_preset(name).with_overrides({"federation.rounds": 2})
    history = Simulation(config).run()
    assert len(history) == 2
    assert all(math.isfinite(r.global_pooled["accuracy"]) for r in history.records)


def test_fedlab_run_takes_a_preset_as_its_config(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--config", str(PRESETS_DIR / "workshop-90min.toml"),
                 "--set", "federation.rounds=2", "--quiet", "--out", str(out)])
    assert code == 0
    assert "round limit 2 reached" in capsys.readouterr().out
    saved = json.loads((out / "history.json").read_text())
    assert saved["config"]["data"]["n_clients"] == 5 and len(saved["records"]) == 2


def test_the_half_day_budget_stops_the_run_before_its_round_limit():
    # the guide promises learners see the budget stop the run (notebook 05 says around round 16)
    config = load_preset("workshop-half-day")
    history = Simulation(config).run()
    assert "privacy budget" in history.stop_reason
    assert 10 <= len(history) < config.federation.rounds
    assert history.records[-1].epsilon <= config.stop.max_epsilon


def test_an_unknown_preset_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"preset = 'workshop-2h' is not allowed: choose one of "
                                         r"workshop-90min, workshop-full-day, workshop-half-day"):
        load_preset("workshop-2h")
    with pytest.raises(ValueError, match="preset = 'nowhere.toml' is not allowed: no such file"):
        load_preset("nowhere.toml")


def test_a_bad_value_in_a_preset_names_the_file_and_the_field(tmp_path):
    (tmp_path / "broken.toml").write_text("[train]\nlr = 0\n")
    with pytest.raises(ValueError, match=r"broken\.toml: train\.lr = 0 is not allowed: must be > 0"):
        load_preset("broken", directory=tmp_path)
    assert available_presets(tmp_path / "missing") == {}
    with pytest.raises(ValueError, match="has no .toml files"):
        load_preset("anything", directory=tmp_path / "missing")
