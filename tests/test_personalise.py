"""Personalisation: FedPer and FedBN keep their part at home, Ditto's lambda limits, verdicts."""

import math

import numpy as np
import pytest
import torch

from fedlab_core.config import ExperimentConfig
from fedlab_core.data.base import ClientData, FederatedDataset
from fedlab_core.history import History, RoundRecord
from fedlab_core.personalise import HospitalVerdict, fine_tune, hospital_verdicts, newcomer
from fedlab_core.simulation import Simulation

SMALL = {"data.n_samples": 400, "federation.rounds": 3, "data.label_shift": 1.0}


def image_dataset(sizes=(12, 20, 8), side=8, seed=0):
    """Tiny random "scans", each hospital with its own brightness (a scanner shift)."""
    rng = np.random.default_rng(seed)
    clients = []
    for k, n in enumerate(sizes):
        X = rng.random((n + 4, side * side)) * 0.5 + 0.2 * k
        y = rng.integers(0, 2, n + 4)
        clients.append(ClientData(f"H{k}", X[:n], y[:n], X[n:], y[n:]))
    names = tuple(f"px{i}" for i in range(side * side))
    return FederatedDataset("scans", names, tuple(clients))


def image_config(method, **more):
    overrides = {"data.dataset": "scans", "model.name": "cnn", "model.channels": 2,
                 "personal.method": method, "federation.rounds": 3, "train.lr": 0.1,
                 "data.n_clients": 3, "dtype": "float64", **more}
    return ExperimentConfig().with_overrides(overrides)


@pytest.mark.parametrize("method,part", [("fedbn", "norm"), ("fedper", "head")])
def test_the_kept_part_never_leaves_the_hospital(method, part):
    sim = Simulation(image_config(method), dataset=image_dataset())
    init = sim.theta.clone()
    sent = []
    sim.run(callbacks=[lambda r, s: sent.append(s.theta.clone())])
    kept = getattr(sim.model, part)
    # the server's copy of the kept entries is still the initial one: nothing arrived
    for theta in sent:
        torch.testing.assert_close(theta[kept], init[kept], rtol=0, atol=0)
        assert not torch.equal(theta[~kept], init[~kept])   # the shared part did learn
    # every hospital has its own kept part
    personal = sim.personal[:, kept]
    assert not torch.allclose(personal[0], personal[1])
    # and the personalised model is the global shared part with that kept part
    models = sim.personal_models()
    torch.testing.assert_close(models[:, ~kept], sim.theta[~kept].expand(3, -1))


def test_fedbn_first_round_statistics_are_each_hospitals_own():
    """Round 1 starts everyone from the same model, so after it each hospital's batch-norm
    entries are exactly those of its local-only model (full batch, same epochs): its
    statistics came from its own images alone."""
    sim = Simulation(image_config("fedbn"), dataset=image_dataset())
    sim.step()
    norm = sim.model.norm
    torch.testing.assert_close(sim.personal[:, norm], sim.local_only_thetas[:, norm])
    # under plain FedAvg the server averages them instead, weighted by patients
    avg = Simulation(image_config("none"), dataset=image_dataset())
    avg.step()
    n = avg.federation.n_train.double()
    state = avg.model.state
    expected = (n / n.sum()) @ sim.local_only_thetas[:, state]
    torch.testing.assert_close(avg.theta[state], expected)


def test_ditto_lambda_zero_is_local_training():
    sim = Simulation(ExperimentConfig().with_overrides(
        {**SMALL, "personal.method": "ditto", "personal.ditto_lambda": 0.0, "dtype": "float64"}))
    sim.run()
    torch.testing.assert_close(sim.personal, sim.local_only_thetas, rtol=1e-12, atol=1e-12)


def test_ditto_huge_lambda_is_the_global_model():
    sim = Simulation(ExperimentConfig().with_overrides(
        {**SMALL, "personal.method": "ditto", "personal.ditto_lambda": 1e12, "dtype": "float64"}))
    before = []
    sim.run(callbacks=[lambda r, s: before.append(s.personal.clone())])
    thetas = [Simulation(sim.config).theta]   # the initial global model
    replay = Simulation(sim.config)
    replay.run(callbacks=[lambda r, s: thetas.append(s.theta.clone())])
    # after round t every personal model is the global model the round started from
    for t, personal in enumerate(before):
        torch.testing.assert_close(personal, thetas[t].expand_as(personal), rtol=1e-9, atol=1e-9)


def test_ditto_lambda_moves_the_personal_model_between_local_and_global():
    dist = []
    for lam in (0.0, 0.1, 1.0, 100.0):
        sim = Simulation(ExperimentConfig().with_overrides(
            {**SMALL, "personal.method": "ditto", "personal.ditto_lambda": lam}))
        sim.run()
        dist.append(float(torch.linalg.vector_norm(sim.personal - sim.theta, dim=1).mean()))
    assert dist == sorted(dist, reverse=True)


def test_finetune_is_the_global_model_trained_on_each_hospitals_rows():
    sim = Simulation(ExperimentConfig().with_overrides(
        {**SMALL, "personal.method": "finetune", "personal.finetune_epochs": 3}))
    record = sim.step()
    fed = sim.federation
    expected = fine_tune(sim.model, sim.theta, fed.X_train, fed.y_train, fed.n_train, epochs=3,
                         lr=sim.config.train.lr)
    torch.testing.assert_close(sim.personal_models(), expected)
    assert record.personal_clients is not None and len(record.personal_clients) == fed.n_clients


def test_newcomer_averages_the_kept_entries_by_patients():
    keep = torch.tensor([False, True])
    out = newcomer(torch.tensor([5.0, 0.0]), torch.tensor([[0.0, 1.0], [0.0, 4.0]]), keep,
                   torch.tensor([3.0, 1.0]))
    torch.testing.assert_close(out, torch.tensor([5.0, 1.75]))


def test_personal_curves_round_trip_through_history_json(tmp_path):
    sim = Simulation(ExperimentConfig().with_overrides({**SMALL, "personal.method": "finetune"}))
    history = sim.run()
    back = History.load(history.save(tmp_path / "h.json"))
    assert back.series("personal", client=1) == history.series("personal", client=1)
    assert back.client_test_sizes == sim.federation.n_test.tolist()


def _history(local_only, global_, personal=None, n_test=(100, 100, 100)):
    def m(a):
        return {"accuracy": a, "auc": math.nan, "loss": math.nan}

    r = RoundRecord(round=1, participants=[0, 1, 2], global_pooled=m(0.5),
                    global_clients=[m(a) for a in global_], local_clients=[None] * 3,
                    local_only_clients=[m(a) for a in local_only],
                    personal_clients=None if personal is None else [m(a) for a in personal])
    return History(config={}, client_names=["A", "B", "C"], records=[r],
                   client_test_sizes=list(n_test))


def test_verdicts_weigh_the_gain_against_the_test_sets_noise():
    # 2 sqrt(0.8 * 0.2 / 100) = 0.08
    h = _history(local_only=[0.8, 0.8, 0.8], global_=[0.9, 0.7, 0.85])
    verdicts = hospital_verdicts(h)
    assert [v.verdict for v in verdicts] == ["gained", "lost", "too close to call"]
    assert verdicts[0].margin == pytest.approx(0.08)
    assert verdicts[0].gain == pytest.approx(0.1)
    # with personal models, those are what the hospital would use
    h = _history(local_only=[0.8, 0.8, 0.8], global_=[0.5, 0.5, 0.5], personal=[0.9, 0.8, 0.95])
    assert [v.verdict for v in hospital_verdicts(h)] == ["gained", "too close to call", "gained"]
    assert "personalised +0.100" in str(hospital_verdicts(h)[0])
    assert isinstance(hospital_verdicts(h)[0], HospitalVerdict)


def test_verdicts_need_baselines_and_a_sane_window():
    h = _history([0.8] * 3, [0.8] * 3)
    with pytest.raises(ValueError, match="last = 0"):
        hospital_verdicts(h, last=0)
    h.records[0].local_only_clients = None
    with pytest.raises(ValueError, match="baselines = true"):
        hospital_verdicts(h)


def test_personal_rows_are_in_the_tidy_table():
    sim = Simulation(ExperimentConfig().with_overrides({**SMALL, "personal.method": "finetune"}))
    history = sim.run()
    table = history.to_frame()
    personal = table[table.model == "personal"]
    assert len(personal) == len(history) * sim.federation.n_clients
    last = personal[personal["round"] == len(history)]
    assert list(last.accuracy) == pytest.approx(
        [m["accuracy"] for m in history.records[-1].personal_clients])
