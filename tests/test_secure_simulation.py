"""Secure aggregation inside a run: the same model as plain aggregation, within the quantisation bound."""

import pytest
import torch

from fedlab_core.config import ExperimentConfig
from fedlab_core.simulation import Simulation

BASE = {"data.n_samples": 1200, "data.n_clients": 6, "federation.rounds": 3, "baselines": False,
        "dtype": "float64"}


def run(**overrides):
    sim = Simulation(ExperimentConfig().with_overrides({**BASE, **overrides}))
    sim.run()
    return sim


@pytest.mark.parametrize("aggregator", ["fedavg", "unweighted_mean"])
@pytest.mark.parametrize("protocol,extra", [("masking", {}), ("masking", {"secure.graph": "harary"}),
                                            ("paillier", {"secure.key_bits": 512})])
def test_secure_aggregate_equals_plain_within_the_quantisation_bound(protocol, extra, aggregator):
    plain = run(**{"federation.aggregator": aggregator})
    secure = run(**{"federation.aggregator": aggregator, "secure.protocol": protocol, **extra})
    # three rounds, each within m / (2 scale) / sum(scales) per coordinate
    assert float((plain.theta - secure.theta).abs().max()) < 1e-5
    assert all(r.secure_seconds > 0 for r in secure.history.records)
    up_plain, up_secure = plain.history.records[0].bytes_up, secure.history.records[0].bytes_up
    assert all(s > p for s, p in zip(up_secure, up_plain))   # protection costs bytes


def test_masking_survives_dropouts_and_equals_plain_fedavg_on_the_survivors():
    overrides = {"data.n_clients": 10, "federation.dropout_rate": 0.3, "federation.rounds": 4}
    plain = run(**overrides)
    secure = run(**overrides, **{"secure.protocol": "masking"})
    assert any(r.dropped for r in secure.history.records)
    assert [r.dropped for r in plain.history.records] == [r.dropped for r in secure.history.records]
    assert float((plain.theta - secure.theta).abs().max()) < 1e-5
    # a dropped hospital sent its keys and shares, not its update
    r = next(r for r in secure.history.records if r.dropped)
    assert all(0 < r.bytes_up[k] < r.bytes_up[r.participants[0]] for k in r.dropped)


def test_secure_aggregation_composes_with_central_dp():
    dp = {"privacy.mechanism": "central", "privacy.noise_multiplier": 1.0, "privacy.clip": 0.5}
    plain = run(**dp)
    secure = run(**dp, **{"secure.protocol": "masking"})
    # the same noise, added by the server to a sum it never saw the parts of
    assert float((plain.theta - secure.theta).abs().max()) < 1e-5
    assert secure.history.records[-1].epsilon == plain.history.records[-1].epsilon


def test_values_outside_the_encoding_range_are_clipped_and_said():
    secure = run(**{"secure.protocol": "masking", "secure.clip": 1e-4})
    assert "clipped into the encoding range" in secure.history.records[0].note


def test_same_seed_same_secure_run():
    a = run(**{"secure.protocol": "masking"})
    b = run(**{"secure.protocol": "masking"})
    assert torch.equal(a.theta, b.theta)


def test_a_missing_crypto_library_names_the_extra(monkeypatch):
    import sys

    from fedlab_core.config import SecureConfig
    from fedlab_core.secure.rounds import secure_weighted_sum

    monkeypatch.setitem(sys.modules, "fedlab_core.secure.paillier", None)   # as if phe were missing
    with pytest.raises(ImportError, match="needs the 'secure' extra .*pip install 'fedlab-core\\[secure\\]'"):
        secure_weighted_sum(torch.zeros(2, 3), torch.ones(2), arrived=torch.tensor([True, True]),
                            config=SecureConfig(protocol="paillier"))


@pytest.mark.parametrize("sampling", ["fixed", "poisson"])
def test_secure_aggregation_with_client_sampling(sampling):
    overrides = {"data.n_clients": 8, "federation.client_fraction": 0.5, "federation.sampling": sampling,
                 "secure.threshold": 2}
    plain = run(**overrides)
    secure = run(**overrides, **{"secure.protocol": "masking"})
    assert [r.participants for r in plain.history.records] == [r.participants for r in secure.history.records]
    assert float((plain.theta - secure.theta).abs().max()) < 1e-5


def test_a_round_with_too_few_survivors_is_refused_and_still_costs_its_messages():
    secure = run(**{"data.n_clients": 10, "federation.dropout_rate": 0.3, "federation.rounds": 10,
                    "secure.protocol": "masking"})   # default t = 7 of 10
    refused = [r for r in secure.history.records if r.note and "kept the model unchanged" in r.note]
    assert refused, "expected a round where more than 3 of 10 hospitals dropped"
    r = refused[0]
    assert "threshold t = 7" in r.note
    assert all(r.bytes_up[k] > 200 for k in r.participants + r.dropped)   # keys and shares were sent
