"""The round loop: determinism, identities, stopping rules, interruption, persistence."""

import math

import pytest
import torch

from fedlab_core.config import ExperimentConfig
from fedlab_core.history import History
from fedlab_core.simulation import Simulation

SMALL = {"data.n_samples": 600, "federation.rounds": 4}


def small(**overrides):
    return ExperimentConfig().with_overrides({**SMALL, **overrides})


def test_same_seed_same_history():
    cfg = small(**{"train.batch_size": 16, "federation.client_fraction": 0.5})
    a, b = Simulation(cfg).run(), Simulation(cfg).run()
    drop_time = lambda h: [{**r.to_dict(), "seconds": 0} for r in h.records]  # noqa: E731
    assert drop_time(a) == drop_time(b)


def test_different_seed_differs():
    a = Simulation(small(seed=1)).run()
    b = Simulation(small(seed=2)).run()
    assert a.series("global", "loss") != b.series("global", "loss")


def test_fedavg_one_full_batch_step_equals_centralised_gradient_descent():
    """With 1 local epoch of full-batch GD, n_k-weighted FedAvg is exactly one GD step
    on the pooled data: sum_k (n_k/N) grad_k = grad of the pooled mean loss."""
    cfg = small(dtype="float64", **{"train.local_epochs": 1, "train.batch_size": 0})
    sim = Simulation(cfg)
    for _ in range(3):
        sim.step()
        torch.testing.assert_close(sim.theta, sim.central_theta[0], rtol=1e-12, atol=1e-12)


def test_baselines_do_not_change_the_federated_run():
    with_b = Simulation(small(**{"train.batch_size": 8})).run()
    without = Simulation(small(baselines=False, **{"train.batch_size": 8})).run()
    assert with_b.series("global", "loss") == without.series("global", "loss")
    assert without.records[0].central_pooled is None


def test_client_sampling_fraction():
    sim = Simulation(small(**{"data.n_clients": 8, "federation.client_fraction": 0.25}))
    record = sim.step()
    assert len(record.participants) == 2
    assert sum(m is not None for m in record.local_clients) == 2


def test_target_accuracy_stops_early():
    sim = Simulation(small(**{"federation.rounds": 50, "stop.target_accuracy": 0.01}))
    history = sim.run()
    assert len(history) == 1
    assert history.stop_reason == "target accuracy 0.01 reached at round 1"
    with pytest.raises(RuntimeError, match="this run has ended"):
        sim.step()


def test_plateau_stops():
    # a tiny learning rate: the loss creeps down by far less than min_delta
    cfg = small(**{"federation.rounds": 50, "train.lr": 1e-6, "stop.patience": 3, "stop.min_delta": 0.01})
    history = Simulation(cfg).run()
    assert len(history) == 4
    assert history.stop_reason.startswith("plateau")


def test_request_stop_keeps_history_and_can_resume():
    sim = Simulation(small(**{"federation.rounds": 10}))

    def stop_after_two(record, s):
        if record.round == 2:
            s.request_stop()

    history = sim.run(callbacks=[stop_after_two])
    assert len(history) == 2 and history.stop_reason == "stopped by user after round 2"
    sim.run(max_rounds=3)
    assert len(sim.history) == 5


def test_ctrl_c_keeps_history():
    sim = Simulation(small(**{"federation.rounds": 10}))

    def interrupt(record, s):
        if record.round == 3:
            raise KeyboardInterrupt

    history = sim.run(callbacks=[interrupt])
    assert len(history) == 3 and history.stop_reason == "interrupted after round 3"


def test_callback_returning_true_stops():
    history = Simulation(small()).run(callbacks=[lambda r, s: r.round >= 2])
    assert len(history) == 2 and "callback" in history.stop_reason


def test_history_json_round_trip(tmp_path):
    cfg = small(**{"federation.client_fraction": 0.5})
    history = Simulation(cfg).run()
    path = history.save(tmp_path / "h.json")
    again = History.load(path)
    assert again.experiment_config() == cfg
    assert again.client_names == history.client_names
    pd_a, pd_b = history.to_frame(), again.to_frame()
    assert pd_a.shape == pd_b.shape
    assert pd_a.fillna(-1).equals(pd_b.fillna(-1))


def test_to_frame_is_tidy():
    history = Simulation(small(**{"federation.rounds": 2})).run()
    frame = history.to_frame()
    assert list(frame.columns) == ["round", "model", "client", "accuracy", "auc", "loss"]
    assert set(frame["model"]) == {"global", "local", "local_only", "central"}
    K = len(history.client_names)
    per_round = frame[frame["round"] == 1]
    # global: pooled + K; local: K; local-only: K own + K pooled; central: 1
    assert len(per_round) == 1 + K + K + 2 * K + 1


def test_metrics_are_sane():
    history = Simulation(small(**{"federation.rounds": 10})).run()
    last = history.last()
    for m in [last.global_pooled, last.central_pooled, *last.global_clients]:
        assert 0 <= m["accuracy"] <= 1 and m["loss"] > 0
        assert math.isnan(m["auc"]) or 0 <= m["auc"] <= 1
    # learning happens: the pooled loss goes down
    losses = history.series("global", "loss")
    assert losses[-1] < losses[0]


def test_mlp_runs():
    history = Simulation(small(**{"model.name": "mlp", "model.hidden": 8})).run()
    assert len(history) == 4


def test_more_hospitals_than_patients():
    with pytest.raises(ValueError, match="data.n_samples = 3"):
        Simulation(small(**{"data.n_samples": 3, "data.n_clients": 5}))


def test_partition_leaving_a_hospital_empty():
    cfg = small(**{"data.dataset": "breast_cancer", "data.partition": "pathological",
                   "data.n_clients": 3, "data.labels_per_client": 3})
    with pytest.raises(ValueError, match="labels_per_client"):
        Simulation(cfg)


def test_cuda_request_without_gpu_is_clear():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="device = 'cuda' is not allowed"):
        Simulation(small(device="cuda"))


@pytest.mark.parametrize("name", ["fedmedian", "trimmed_mean", "krum", "multi_krum", "bulyan",
                                  "geometric_median", "centered_clipping"])
def test_every_robust_aggregator_runs_in_a_simulation(name):
    cfg = small(**{"data.n_clients": 8, "federation.aggregator": name, "federation.rounds": 5})
    history = Simulation(cfg).run()
    losses = history.series("global", "loss")
    assert len(history) == 5 and losses[-1] < losses[0]


def test_byzantine_count_too_large_for_the_round_is_clear():
    # 8 hospitals, half take part: Krum with f = 2 needs more than 2f + 2 = 6 clients
    cfg = small(**{"data.n_clients": 8, "federation.client_fraction": 0.5,
                   "federation.aggregator": "krum", "federation.n_byzantine": 2})
    with pytest.raises(ValueError, match="federation.n_byzantine = 2 is not allowed: Krum needs K > 2f"):
        Simulation(cfg)
