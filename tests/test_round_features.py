"""The aggregation lab's round: participation, client algorithms, regions, compression, attacks."""

import pytest
import torch

from fedlab_core.config import ExperimentConfig
from fedlab_core.simulation import Simulation

BASE = {"data.n_samples": 800, "data.n_clients": 6, "federation.rounds": 4, "dtype": "float64"}


def cfg(**overrides):
    return ExperimentConfig().with_overrides({**BASE, **overrides})


def thetas_after(config, rounds=3):
    sim = Simulation(config)
    for _ in range(rounds):
        sim.step()
    return sim


def test_poisson_sampling_varies_the_count():
    sim = Simulation(cfg(**{"federation.sampling": "poisson", "federation.client_fraction": 0.5,
                            "federation.rounds": 30}))
    counts = {len(sim.step().participants) for _ in range(30)}
    assert len(counts) > 1 and max(counts) <= 6


def test_dropouts_keep_the_model_and_count_bytes():
    sim = Simulation(cfg(**{"federation.dropout_rate": 0.5, "federation.rounds": 20}))
    history = sim.run()
    dropped = [k for r in history.records for k in r.dropped]
    assert dropped, "with rate 0.5 over 20 rounds some client drops out"
    for r in history.records:
        for k in r.dropped:
            assert r.local_clients[k] is None and r.bytes_up[k] == 0 and r.bytes_down[k] > 0
        assert set(r.dropped).isdisjoint(r.participants)


def test_a_round_with_no_update_leaves_the_model_unchanged():
    sim = Simulation(cfg(**{"federation.dropout_rate": 0.999999}))
    before = sim.theta.clone()
    record = sim.step()
    assert record.participants == [] and "unchanged" in record.note
    torch.testing.assert_close(sim.theta, before)


def test_stragglers_are_recorded():
    record = Simulation(cfg(**{"federation.straggler_rate": 1.0, "federation.straggler_work": 0.5,
                               "train.local_epochs": 4})).step()
    assert record.stragglers == record.participants


def test_fedprox_with_mu_zero_is_fedavg():
    a = thetas_after(cfg(**{"train.algorithm": "fedprox", "train.prox_mu": 0.0})).theta
    b = thetas_after(cfg()).theta
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_fedprox_pulls_local_models_towards_the_global_one():
    far = thetas_after(cfg(**{"train.local_epochs": 20}), rounds=1)
    near = thetas_after(cfg(**{"train.local_epochs": 20, "train.algorithm": "fedprox",
                               "train.prox_mu": 1.0}), rounds=1)
    assert near.theta.norm() < far.theta.norm()


def test_scaffold_controls_after_one_round():
    """Full participation, one full-batch step: c_k = (theta - theta_k) / lr is client k's
    gradient at the starting model, and the server's c is their patient-weighted mean
    (the same weights FedAvg gives the updates)."""
    sim = Simulation(cfg(**{"train.algorithm": "scaffold", "train.local_epochs": 1}))
    start = sim.theta.clone()
    sim.step()
    fed = sim.federation
    weight = fed.mask_train.double() / fed.n_train.unsqueeze(1).double()
    _, grads = sim.model.loss_and_grad(start.expand(6, -1), fed.X_train, fed.y_train, weight)
    torch.testing.assert_close(sim.client_controls, grads)
    p = fed.n_train.double() / fed.n_train.sum()
    torch.testing.assert_close(sim.control, p @ grads)


def test_scaffold_with_an_unweighted_rule_averages_controls_uniformly():
    sim = Simulation(cfg(**{"train.algorithm": "scaffold", "federation.aggregator": "fedmedian"}))
    sim.step()
    torch.testing.assert_close(sim.control, sim.client_controls.mean(0))


def test_scaffold_optimises_fedavgs_objective_on_unequal_hospitals():
    """On very unequal, skewed hospitals SCAFFOLD must land near FedAvg, not near the
    unweighted objective (a regression test: equal-weight controls pulled it there)."""
    over = {"data.n_samples": 3000, "data.n_clients": 6, "data.size_skew": 1.0,
            "data.label_shift": 1.0, "data.covariate_shift": 1.0, "federation.rounds": 40,
            "train.local_epochs": 5}
    fedavg = Simulation(cfg(**over)).run().last().global_pooled["loss"]
    scaffold = Simulation(cfg(**over, **{"train.algorithm": "scaffold"})).run().last().global_pooled["loss"]
    unweighted = Simulation(cfg(**over, **{"federation.aggregator": "unweighted_mean"})).run().last().global_pooled["loss"]
    assert abs(scaffold - fedavg) < abs(scaffold - unweighted)


def test_scaffold_learns():
    history = Simulation(cfg(**{"train.algorithm": "scaffold", "federation.rounds": 8})).run()
    losses = history.series("global", "loss")
    assert losses[-1] < losses[0]


def test_fednova_equals_fedavg_when_every_client_takes_the_same_steps():
    a = thetas_after(cfg(**{"train.algorithm": "fednova", "train.local_epochs": 3})).theta
    b = thetas_after(cfg(**{"train.local_epochs": 3})).theta
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_fednova_differs_when_steps_differ():
    over = {"train.local_epochs": 2, "train.batch_size": 16}
    a = thetas_after(cfg(**over, **{"train.algorithm": "fednova"})).theta
    b = thetas_after(cfg(**over)).theta
    assert not torch.allclose(a, b)


def test_regions_with_fedavg_equal_flat_fedavg():
    a = thetas_after(cfg(**{"federation.n_regions": 3})).theta
    b = thetas_after(cfg()).theta
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_regions_with_a_robust_rule_differ_from_flat():
    a = thetas_after(cfg(**{"federation.n_regions": 2, "federation.aggregator": "fedmedian"})).theta
    b = thetas_after(cfg(**{"federation.aggregator": "fedmedian"})).theta
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("scheme", ["topk", "qsgd8"])
def test_compression_sends_fewer_bytes_and_still_learns(scheme):
    over = {"model.name": "mlp", "model.hidden": 32, "federation.rounds": 6}
    dense = Simulation(cfg(**over)).run()
    small = Simulation(cfg(**over, **{"federation.compression": scheme})).run()
    assert small.communication()["bytes_up"].sum() < dense.communication()["bytes_up"].sum() / 2
    losses = small.series("global", "loss")
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("attack", ["label_flip", "sign_flip", "scale", "gaussian", "alie"])
def test_every_attack_runs_and_is_recorded(attack):
    history = Simulation(cfg(**{"attack.name": attack, "attack.n_malicious": 2})).run()
    assert len(history.malicious) == 2 and len(history) == 4


def test_label_flip_poisons_training_labels_only():
    sim = Simulation(cfg(**{"attack.name": "label_flip", "attack.n_malicious": 1}))
    k = sim.history.malicious[0]
    n = int(sim.federation.n_train[k])
    torch.testing.assert_close(sim._train_federation.y_train[k, :n], 1 - sim.federation.y_train[k, :n])
    assert sim._train_federation.y_test is sim.federation.y_test


def test_fairness_and_communication_tables():
    history = Simulation(cfg()).run()
    fair = history.fairness()
    assert list(fair.columns) == ["round", "worst", "mean", "best", "spread"]
    assert (fair["worst"] <= fair["mean"]).all() and (fair["mean"] <= fair["best"]).all()
    comm = history.communication()
    P = 10  # 9 synthetic features + bias, float32 on the wire
    assert (comm["bytes_up"] == 6 * 4 * P).all() and (comm["bytes_down"] == 6 * 4 * P).all()


def test_fedprox_refuses_a_divergent_mu():
    with pytest.raises(ValueError, match="train.prox_mu = 10.0 is not allowed: with train.lr = 0.5"):
        cfg(**{"train.algorithm": "fedprox", "train.prox_mu": 10.0})


def test_scaffold_pays_a_second_vector_each_way():
    plain = Simulation(cfg()).run().communication()
    scaffold = Simulation(cfg(**{"train.algorithm": "scaffold"})).run().communication()
    assert (scaffold["bytes_up"] == 2 * plain["bytes_up"]).all()
    assert (scaffold["bytes_down"] == 2 * plain["bytes_down"]).all()
