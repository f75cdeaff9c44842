"""Per-hospital figures and scan galleries: the numbers drawn are the run's numbers."""

import math

import pytest

from fedlab_core.config import DataConfig, ExperimentConfig
from fedlab_core.data import load_dataset
from fedlab_core.history import History
from fedlab_core.personalise import hospital_verdicts
from fedlab_core.simulation import Simulation
from fedlab_core.viz_personal import (hospital_comparison, hospital_gains, intensity_histograms,
                                      scan_gallery, update_hospital_gains)

SMALL = {"data.n_samples": 400, "federation.rounds": 3}


@pytest.fixture(scope="module")
def runs():
    out = {}
    for method in ("none", "finetune"):
        cfg = ExperimentConfig().with_overrides({**SMALL, "personal.method": method})
        out[method] = Simulation(cfg).run()
    return out


def test_hospital_gains_draws_the_verdicts_numbers(runs):
    h = runs["finetune"]
    fig = hospital_gains(h, last=2)
    verdicts = hospital_verdicts(h, last=2)
    local_only, global_, personal, marks = fig.data
    assert list(local_only.y) == pytest.approx([v.local_only for v in verdicts])
    assert list(global_.y) == pytest.approx([v.global_model for v in verdicts])
    assert list(personal.y) == pytest.approx([v.personalised for v in verdicts])
    assert len(marks.text) == 4 and all(m.split()[-1] in ("gained", "lost", "close") for m in marks.text)


def test_live_update_equals_a_fresh_figure(runs):
    h = runs["finetune"]
    fig = hospital_gains(History(config={}, client_names=h.client_names))
    assert all(y is None for y in fig.data[0].y)
    update_hospital_gains(fig, h)
    fresh = hospital_gains(h)
    for a, b in zip(fig.data, fresh.data):
        assert a.y == b.y and a.text == b.text


def test_without_personal_models_the_personal_bars_are_empty(runs):
    fig = hospital_gains(runs["none"])
    assert all(y is None for y in fig.data[2].y)


def test_hospital_comparison_uses_each_runs_personal_models_when_it_has_them(runs):
    fig = hospital_comparison({"FedAvg": runs["none"], "fine-tuned": runs["finetune"]})
    names = [t.name for t in fig.data]
    assert names == ["local-only", "FedAvg", "fine-tuned"]
    last = runs["finetune"].records[-1]
    assert list(fig.data[2].y) == pytest.approx([m["accuracy"] for m in last.personal_clients])
    with pytest.raises(ValueError, match="no personalised models"):
        hospital_comparison({"FedAvg": runs["none"]}, model="personal")
    with pytest.raises(ValueError, match="at least one"):
        hospital_comparison({})
    with pytest.raises(ValueError, match="model = 'best'"):
        hospital_comparison({"FedAvg": runs["none"]}, model="best")


def test_scan_gallery_shows_per_class_images_of_every_hospital():
    ds = load_dataset(DataConfig(dataset="scans", n_clients=3, n_samples=300, image_size=16), seed=0)
    fig = scan_gallery(ds, per_class=2)
    assert len(fig.data) == 3 * 2 * 2
    assert all(len(t.z) == 16 and len(t.z[0]) == 16 for t in fig.data)
    assert all(t.zmin == 0 and t.zmax == 1 for t in fig.data)
    hist = intensity_histograms(ds)
    assert [t.name for t in hist.data] == list(ds.client_names)
    for t in hist.data:   # a density over (0.02, 1]: integrates to 1
        width = t.x[1] - t.x[0]
        assert math.isclose(sum(t.y) * width, 1.0, rel_tol=1e-6)


def test_scan_figures_refuse_tables_and_bad_knobs():
    ds = load_dataset(DataConfig(n_samples=200), seed=0)
    with pytest.raises(ValueError, match="not the pixels of a square image"):
        scan_gallery(ds)
    scans = load_dataset(DataConfig(dataset="scans", n_clients=2, n_samples=100, image_size=8), seed=0)
    with pytest.raises(ValueError, match="per_class = 0"):
        scan_gallery(scans, per_class=0)
    with pytest.raises(ValueError, match="split = 'val'"):
        scan_gallery(scans, split="val")
