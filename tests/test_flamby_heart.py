"""FLamby's Fed-Heart-Disease benchmark: the table, its statistics, its files, its CLI.

The UCI files are read from the workspace's shared copy (never from the repo,
never downloaded): ``<workspace>/shared/datasets/uci-heart-disease``.
"""

import csv
import math
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from fedlab_core.cli import main
from fedlab_core.data import heart
from fedlab_core.flamby_heart import (BenchmarkRow, BenchmarkTable, HeartProtocol, heart_benchmark,
                                      mean_sd)

HEART_DIR = Path(__file__).resolve().parents[2] / "shared/datasets/uci-heart-disease"
needs_data = pytest.mark.skipif(
    not all((HEART_DIR / f).is_file() for f in heart.FILES),
    reason=f"the UCI heart files are not at {HEART_DIR} (a workspace copy used for offline tests)")

SEEDS, ROUNDS = 2, 3
ROWS = ["Centralised (pooled data)", "Local: Cleveland", "Local: Hungary", "Local: Switzerland",
        "Local: Long Beach VA", "FedAvg", "FedProx", "SCAFFOLD", "FedAdam", "FedAvg + fine-tuning"]
COLUMNS = ["strategy", "n_seeds", "pooled_mean", "pooled_sd", "hospitals_mean", "hospitals_sd",
           "cleveland_mean", "cleveland_sd", "hungary_mean", "hungary_sd", "switzerland_mean",
           "switzerland_sd", "long_beach_va_mean", "long_beach_va_sd"]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test in this file may touch the network or the user's real cache."""
    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("FEDLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FEDLAB_HEART_DIR", raising=False)


@pytest.fixture(scope="module")
def table():
    if not all((HEART_DIR / f).is_file() for f in heart.FILES):
        pytest.skip(f"the UCI heart files are not at {HEART_DIR}")
    return heart_benchmark(seeds=SEEDS, heart_dir=HEART_DIR, rounds=ROUNDS,
                           progress=lambda done, total, label: PROGRESS.append((done, total, label)))


PROGRESS = []   # what the module's table fixture reported


# ---- aggregation, on hand-made numbers ---------------------------------------
def test_mean_sd_by_hand():
    mean, sd = mean_sd([0.6, 0.8, 1.0])
    assert mean == pytest.approx(0.8) and sd == pytest.approx(0.2)   # sqrt((0.04 + 0 + 0.04) / 2)
    assert mean_sd([0.75]) == (0.75, pytest.approx(math.nan, nan_ok=True))
    with pytest.raises(ValueError):
        mean_sd([])


def test_table_summarises_hand_made_rows():
    row = BenchmarkRow("X", pooled=(0.5, 0.7, 0.9),
                       hospitals=((1.0, 0.0), (0.5, 0.5), (0.6, 0.2)))
    t = BenchmarkTable(rows=(row,), hospitals=("North", "South"), seeds=(0, 1, 2),
                       protocol=HeartProtocol())
    (rec,) = t.records()
    assert rec["n_seeds"] == 3
    assert rec["pooled_mean"] == pytest.approx(0.7) and rec["pooled_sd"] == pytest.approx(0.2)
    # the FLamby average: per seed the mean of the hospitals (0.5, 0.5, 0.4), then over seeds
    assert rec["hospitals_mean"] == pytest.approx(1.4 / 3)
    assert rec["hospitals_sd"] == pytest.approx(np.std([0.5, 0.5, 0.4], ddof=1))
    assert rec["north_mean"] == pytest.approx(0.7)
    assert rec["north_sd"] == pytest.approx(np.std([1, .5, .6], ddof=1))
    assert rec["south_mean"] == pytest.approx(0.7 / 3)
    assert "| X | 0.700 ± 0.200 | 0.467 ± 0.058 | 0.700 ± 0.265 | 0.233 ± 0.252 |" in t.to_markdown()


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="seeds = 0 is not allowed"):
        heart_benchmark(seeds=0)
    with pytest.raises(ValueError, match="seeds = \\[1, 1\\] is not allowed"):
        heart_benchmark(seeds=[1, 1])
    with pytest.raises(ValueError, match="rounds = 0 is not allowed"):
        heart_benchmark(seeds=1, rounds=0)
    with pytest.raises(ValueError, match="pooled_lr = -1 is not allowed"):
        HeartProtocol(pooled_lr=-1)


def test_protocol_maps_to_engine_settings():
    p = HeartProtocol()
    assert p.overrides("fedprox") == {"train.lr": 1e-3, "train.algorithm": "fedprox",
                                      "train.prox_mu": 0.01}
    adam = p.overrides("fedadam")
    assert adam["federation.server_optimizer"] == "adam" and adam["train.lr"] == 1e-2
    assert adam["federation.server_lr"] == 1e-2 and adam["federation.server_tau"] == 1e-8
    assert p.overrides("scaffold")["federation.server_lr"] == 1.0


# ---- the real benchmark ---------------------------------------------------------
@needs_data
def test_every_row_and_column(table):
    assert [r.strategy for r in table.rows] == ROWS
    assert table.hospitals == heart.SITE_NAMES and table.seeds == (0, 1)
    assert table.columns() == COLUMNS
    for row in table.rows:
        assert len(row.pooled) == SEEDS and all(len(h) == 4 for h in row.hospitals)
        assert all(0 <= a <= 1 for a in row.pooled + sum(row.hospitals, ()))
    for rec in table.records():
        assert list(rec) == COLUMNS and rec["n_seeds"] == SEEDS


@needs_data
def test_summary_is_computed_from_the_per_seed_numbers(table):
    for row, rec in zip(table.rows, table.records()):
        assert rec["pooled_mean"] == pytest.approx(np.mean(row.pooled))
        assert rec["pooled_sd"] == pytest.approx(np.std(row.pooled, ddof=1))
        per_seed_avg = [np.mean(h) for h in row.hospitals]
        assert rec["hospitals_mean"] == pytest.approx(np.mean(per_seed_avg))
        assert rec["switzerland_mean"] == pytest.approx(np.mean([h[2] for h in row.hospitals]))


@needs_data
def test_pooled_accuracy_is_the_test_rows_weighted_mean(table):
    # pooled accuracy = per-hospital accuracies weighted by the test sizes (104/89/16/45)
    n_test = np.array([104, 89, 16, 45])
    for row in table.rows:
        for pooled, hospitals in zip(row.pooled, row.hospitals):
            assert pooled == pytest.approx(np.dot(hospitals, n_test) / n_test.sum())


@needs_data
def test_centralised_model_is_sensible(table):
    central = table.records()[0]
    assert central["strategy"] == "Centralised (pooled data)"
    assert central["pooled_mean"] > 0.7
    fedavg = next(r for r in table.records() if r["strategy"] == "FedAvg")
    assert fedavg["pooled_mean"] > 0.7


@needs_data
def test_progress_reports_every_step(table):
    calls = PROGRESS
    assert [c[0] for c in calls] == list(range(1, len(calls) + 1))
    assert calls[-1][:2] == (2 * 7, 2 * 7) and calls[-1][2] == "seed 1: FedAvg + fine-tuning"


@needs_data
def test_same_seeds_same_table(table):
    again = heart_benchmark(seeds=[0, 1], heart_dir=HEART_DIR, rounds=ROUNDS)
    assert again == table
    other = heart_benchmark(seeds=[2], heart_dir=HEART_DIR, rounds=ROUNDS)   # another split
    assert [(r.pooled, r.hospitals) for r in other.rows] != [
        (r.pooled[:1], r.hospitals[:1]) for r in table.rows]


@needs_data
def test_csv_and_markdown_parse(table, tmp_path):
    path = table.to_csv(tmp_path / "t.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["strategy"] for r in rows] == ROWS and list(rows[0]) == COLUMNS
    for parsed, rec in zip(rows, table.records()):
        assert float(parsed["pooled_mean"]) == rec["pooled_mean"]
        assert float(parsed["long_beach_va_sd"]) == rec["long_beach_va_sd"]

    lines = [line for line in table.to_markdown().splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["strategy", "pooled test", "mean over hospitals", *heart.SITE_NAMES]
    assert all(set(c) <= set("-:") for c in cells[1])
    assert [c[0] for c in cells[2:]] == ROWS and all(len(c) == 7 for c in cells)
    for c, rec in zip(cells[2:], table.records()):
        mean, sd = (float(x) for x in c[1].split("±"))
        assert mean == pytest.approx(rec["pooled_mean"], abs=5e-4)
        assert sd == pytest.approx(rec["pooled_sd"], abs=5e-4)


# ---- the CLI --------------------------------------------------------------------
@needs_data
def test_cli_writes_both_files(tmp_path, capsys):
    out = tmp_path / "heart"
    code = main(["benchmark", "heart", "--seeds", "1", "--rounds", "2", "--heart-dir", str(HEART_DIR),
                 "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| FedAvg + fine-tuning |" in printed and "1 seed in" in printed
    with open(out / "heart_benchmark.csv", newline="") as f:
        assert [r["strategy"] for r in csv.DictReader(f)] == ROWS
    assert "| Centralised (pooled data) |" in (out / "heart_benchmark.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds 0 is not allowed: must be an integer in [1, 1000]"),
    (["--seeds", "1001"], "--seeds 1001 is not allowed"),
    (["--rounds", "0"], "--rounds 0 is not allowed: must be an integer in [1, 10000]"),
    (["--heart-dir", "{tmp}"],
     "--heart-dir '{tmp}' is not allowed: the folder lacks processed.cleveland.data"),
])
def test_cli_bad_arguments_exit_2(args, message, tmp_path, capsys):
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["benchmark", "heart", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_unparsable_arguments_exit_2(capsys):
    for args in (["heart", "--seeds", "many"], ["lung"]):
        with pytest.raises(SystemExit) as stop:
            main(["benchmark", *args])
        assert stop.value.code == 2
    assert "argument name: invalid choice: 'lung'" in capsys.readouterr().err
