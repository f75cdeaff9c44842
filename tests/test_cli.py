"""The headless CLI: config printing, overrides, outputs, clear errors."""

import json

from fedlab_core.cli import main
from fedlab_core.config import ExperimentConfig


def test_config_prints_default_toml(capsys):
    assert main(["config"]) == 0
    assert ExperimentConfig.from_toml(capsys.readouterr().out) == ExperimentConfig()


def test_run_writes_history_config_and_figure(tmp_path, capsys):
    cfg_file = tmp_path / "exp.toml"
    cfg_file.write_text(ExperimentConfig().with_overrides({"data.n_samples": 500}).to_toml())
    code = main(["run", "--config", str(cfg_file), "--set", "federation.rounds=3",
                 "--set", "train.lr=0.2", "--out", str(tmp_path / "out")])
    assert code == 0
    out = capsys.readouterr().out
    assert "round limit 3 reached" in out
    table = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [int(line.split()[0]) for line in table] == [1, 2, 3]
    saved = json.loads((tmp_path / "out" / "history.json").read_text())
    assert saved["config"]["train"]["lr"] == 0.2 and len(saved["records"]) == 3
    assert ExperimentConfig.from_toml((tmp_path / "out" / "config.toml").read_text()).train.lr == 0.2
    assert "plotly" in (tmp_path / "out" / "curves.html").read_text()[:5000].lower()
    # the page loads plotly.js from beside it, not from the internet
    assert 'src="plotly.min.js"' in (tmp_path / "out" / "curves.html").read_text()
    assert (tmp_path / "out" / "plotly.min.js").stat().st_size > 1_000_000


def test_bad_override_is_a_clear_error(capsys):
    assert main(["run", "--set", "data.n_clients=0"]) == 2
    err = capsys.readouterr().err
    assert "data.n_clients = 0 is not allowed" in err


def test_malformed_set(capsys):
    assert main(["config", "--set", "train.lr"]) == 2
    assert "write key=value" in capsys.readouterr().err


def test_missing_config_file(capsys, tmp_path):
    assert main(["run", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_missing_heart_data_is_a_clear_error(capsys, tmp_path):
    code = main(["run", "--set", "data.dataset=heart", "--set", f"data.heart_dir={str(tmp_path)!r}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "processed.cleveland.data" in err and "Traceback" not in err


def test_private_run_reports_epsilon_each_round_and_both_accountants(tmp_path, capsys):
    code = main(["run", "--set", "data.n_samples=600", "--set", "federation.rounds=3",
                 "--set", "privacy.mechanism=central", "--set", "privacy.noise_multiplier=2",
                 "--out", str(tmp_path / "out")])
    assert code == 0
    out = capsys.readouterr().out
    assert "privacy: central, protects one hospital; noise multiplier 2, clip 1, δ = 1e-05" in out
    table = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    eps = [float(line.split()[-1]) for line in table]
    assert len(eps) == 3 and eps == sorted(eps)
    assert "(RDP, as the live meter)" in out and "(PLD, tight)" in out
    assert (tmp_path / "out" / "privacy.html").is_file()


def test_an_impossible_privacy_combination_is_a_clear_error(capsys):
    assert main(["run", "--set", "privacy.mechanism=central", "--set", "federation.aggregator=krum"]) == 2
    assert "federation.aggregator = 'krum' is not allowed" in capsys.readouterr().err


def test_run_says_whether_each_hospital_gained_from_joining(capsys):
    code = main(["run", "--quiet", "--set", "data.n_samples=400", "--set", "federation.rounds=3",
                 "--set", "personal.method=finetune"])
    out = capsys.readouterr().out
    assert code == 0
    assert "did each hospital gain from joining? (accuracy on its own test set, mean of the last 3 rounds)" in out
    verdicts = [line for line in out.splitlines() if line.startswith("  Hospital ")]
    assert len(verdicts) == 4
    assert all(any(v in line for v in ("gained", "lost", "too close to call")) for line in verdicts)
    assert all("personalised" in line for line in verdicts)
