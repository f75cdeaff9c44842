"""Private runs end to end: the meter, calibration, the budget rule, and what is accounted."""

import math

import numpy as np
import pytest
import torch

from fedlab_core.config import ExperimentConfig
from fedlab_core.history import History
from fedlab_core.privacy.accounting import PrivacyWarning, epsilon
from fedlab_core.simulation import Simulation

BASE = {"data.n_samples": 1200, "data.n_clients": 4, "federation.rounds": 6, "baselines": False}


def run(**overrides):
    cfg = ExperimentConfig().with_overrides({**BASE, **overrides})
    sim = Simulation(cfg)
    return sim, sim.run()


@pytest.mark.parametrize("mechanism", ["central", "local", "dpsgd"])
def test_every_mechanism_runs_and_the_meter_only_rises(mechanism):
    extra = {"train.batch_size": 32} if mechanism == "dpsgd" else {}
    sim, history = run(**{"privacy.mechanism": mechanism, **extra})
    eps = history.privacy_spent()["epsilon"].tolist()
    assert len(eps) == 6 and all(e > 0 for e in eps)
    assert eps == sorted(eps)
    assert history.privacy["mechanism"] == mechanism
    assert all(math.isfinite(r.global_pooled["accuracy"]) for r in history.records)


def test_no_mechanism_no_meter():
    _, history = run()
    assert history.privacy is None and all(r.epsilon is None for r in history.records)


def test_central_dp_without_noise_or_clipping_is_the_unweighted_mean():
    _, private = run(**{"privacy.mechanism": "central", "privacy.noise_multiplier": 0.0,
                        "privacy.clip": 1e9})
    _, plain = run(**{"federation.aggregator": "unweighted_mean"})
    np.testing.assert_allclose(private.series("global", "loss"), plain.series("global", "loss"), rtol=1e-5)
    assert private.records[-1].epsilon == math.inf


def test_central_dp_accounts_every_round_at_the_sampling_rate_it_simulates():
    sim, history = run(**{"privacy.mechanism": "central", "federation.sampling": "poisson",
                          "federation.client_fraction": 0.5, "federation.rounds": 40,
                          "data.n_clients": 4})
    # Poisson: each hospital takes part with probability 0.5, some rounds have nobody
    counts = [len(r.participants) for r in history.records]
    assert 0.3 < np.mean(counts) / 4 < 0.7
    assert sim.privacy.ledger.sampling_rates.tolist() == [0.5]
    expected = epsilon(noise_multiplier=1.0, sampling_rate=0.5, steps=40, delta=sim.privacy.delta)
    assert history.records[-1].epsilon == pytest.approx(expected, rel=1e-9)


def test_an_empty_round_under_central_dp_still_publishes_noise():
    sim, history = run(**{"privacy.mechanism": "central", "federation.sampling": "poisson",
                          "federation.client_fraction": 0.05, "federation.rounds": 3})
    assert any(not r.participants for r in history.records)
    thetas_moved = len({round(r.global_pooled["loss"], 9) for r in history.records})
    assert thetas_moved == 3                       # the noise moved the model every round


@pytest.mark.parametrize("mechanism,extra", [
    ("central", {}), ("local", {}), ("dpsgd", {"train.batch_size": 32})])
def test_target_epsilon_is_spent_exactly_by_the_planned_rounds(mechanism, extra):
    sim, history = run(**{"privacy.mechanism": mechanism, "privacy.target_epsilon": 3.0, **extra})
    final = history.records[-1].epsilon
    assert final == pytest.approx(3.0, rel=2e-3)
    assert final <= 3.0 * (1 + 1e-3)


def test_dpsgd_charges_each_hospital_its_own_steps():
    sim, history = run(**{"privacy.mechanism": "dpsgd", "train.batch_size": 16,
                          "data.size_skew": 1.0})
    n = sim.federation.n_train.numpy()
    eps = np.array(history.records[-1].epsilon_clients)
    assert history.records[-1].epsilon == eps.max()
    # the smallest hospital is sampled at the highest rate: it spends the most
    assert eps.argmax() == n.argmin()
    rates = sim.privacy.ledger.sampling_rates
    np.testing.assert_allclose(rates, np.minimum(1, 16 / n))


def test_the_budget_rule_stops_before_the_budget_is_exceeded():
    sim, history = run(**{"privacy.mechanism": "local", "privacy.noise_multiplier": 2.0,
                          "stop.max_epsilon": 2.0, "federation.rounds": 100})
    assert history.stop_reason.startswith("privacy budget: one more round would spend ε =")
    assert history.records[-1].epsilon <= 2.0
    assert sim.privacy.epsilon_next_round() > 2.0
    assert len(history) < 100


def test_dropped_hospitals_are_not_charged():
    sim, history = run(**{"privacy.mechanism": "local", "federation.dropout_rate": 0.5,
                          "federation.rounds": 10})
    sent = np.zeros(4)
    for r in history.records:
        sent[r.participants] += 1
    np.testing.assert_array_equal(sim.privacy.ledger.steps, sent)


def test_adaptive_clipping_moves_the_clip_and_records_it():
    _, history = run(**{"privacy.mechanism": "central", "privacy.adaptive_clip": True,
                        "privacy.noise_multiplier": 0.3, "privacy.count_noise": 0.5,
                        "privacy.clip": 50.0, "federation.rounds": 10})
    clips = history.privacy_spent()["clip"].tolist()
    assert clips[0] == 50.0 and clips[-1] < clips[0]


def test_a_large_delta_warns_and_the_default_does_not():
    with pytest.warns(PrivacyWarning, match="privacy.delta = 0.5"):
        run(**{"privacy.mechanism": "central", "privacy.delta": 0.5, "federation.rounds": 1})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(**{"privacy.mechanism": "central", "federation.rounds": 1})


def test_private_history_round_trips(tmp_path):
    _, history = run(**{"privacy.mechanism": "dpsgd", "train.batch_size": 32, "federation.rounds": 2})
    loaded = History.load(history.save(tmp_path / "h.json"))
    assert loaded.privacy == history.privacy
    assert loaded.records[-1].epsilon_clients == history.records[-1].epsilon_clients


def test_same_seed_same_private_run():
    a = run(**{"privacy.mechanism": "dpsgd", "train.batch_size": 32, "federation.rounds": 2})[1]
    b = run(**{"privacy.mechanism": "dpsgd", "train.batch_size": 32, "federation.rounds": 2})[1]
    assert a.series("global", "loss") == b.series("global", "loss")
