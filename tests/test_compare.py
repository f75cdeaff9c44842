"""Per-hospital comparison tables read the right numbers from a history."""

import pytest

from fedlab_core.compare import final_comparison, over_seeds
from fedlab_core.config import ExperimentConfig
from fedlab_core.simulation import Simulation

CFG = ExperimentConfig().with_overrides({"data.n_samples": 500, "federation.rounds": 3})


def test_final_comparison_reads_the_last_round():
    history = Simulation(CFG).run()
    table = final_comparison(history)
    last = history.last()
    assert list(table["hospital"]) == history.client_names
    for k, row in table.iterrows():
        assert row["federated"] == last.global_clients[k]["accuracy"]
        assert row["local_only"] == last.local_only_clients[k]["accuracy"]
        assert row["gain"] == pytest.approx(row["federated"] - row["local_only"])
    assert table.attrs["centralised_on_pooled"] == last.central_pooled["accuracy"]


def test_final_comparison_needs_rounds_and_baselines():
    sim = Simulation(CFG.with_overrides({"baselines": False}))
    with pytest.raises(ValueError, match="no rounds yet"):
        final_comparison(sim.history)
    sim.step()
    with pytest.raises(ValueError, match="baselines = false"):
        final_comparison(sim.history)


def test_over_seeds_means_and_sds():
    table = over_seeds(CFG, seeds=[0, 1, 2])
    runs = [Simulation(CFG.with_overrides({"seed": s})).run().last().global_pooled["accuracy"]
            for s in [0, 1, 2]]
    fed = table.set_index("model").loc["federated"]
    assert fed["accuracy_mean"] == pytest.approx(sum(runs) / 3)
    assert fed["n_seeds"] == 3 and fed["accuracy_sd"] >= 0
    assert {"centralised", "federated"} <= set(table["model"])
    assert sum(m.startswith("local-only: ") for m in table["model"]) == 4
