"""Our aggregation rules against Flower's (flwr.server.strategy.aggregate), float64, within 1e-6.

Flower takes a list of ``(layers, num_examples)`` pairs; each random update here is
split into two layers (a 3x4 matrix and an 8-vector) so that the flattening order is
checked too. Where Flower departs from the paper, our rule follows the paper and a
test below pins down exactly how Flower differs:

- Multi-Krum: Flower averages the kept updates weighted by ``num_examples``; the paper
  (and ours) takes their plain mean. Flower's ``to_keep = 0`` means Krum; our
  ``multikrum_m = 0`` means m = K - f.
- Krum: Flower runs with K ≤ 2f + 2 (it floors the neighbour count at 1); ours raises.
- Bulyan: for f = 1, 2 the last Krum picks are scored on one neighbour and the closest
  pair ties; Flower takes the one listed first, so its result depends on the clients'
  order; ours takes the more central one. Given the clients sorted by centrality,
  Flower's rule and ours coincide. Flower's ``aggregate_bulyan`` also empties the
  caller's list down to the 2f unpicked results.
- FedAvg, median, trimmed mean: the same (trimmed mean cuts ``int(beta * K)`` per side
  in both, the paper's floor(beta K)).
"""

import numpy as np
import pytest
import torch

pytest.importorskip("flwr")
from flwr.server.strategy.aggregate import (  # noqa: E402
    aggregate, aggregate_bulyan, aggregate_krum, aggregate_median, aggregate_trimmed_avg)

from fedlab_core.aggregate import (  # noqa: E402
    bulyan, coordinate_median, fedavg, krum, multi_krum, trimmed_mean)

CASES = [(K, seed) for K in (5, 9, 12) for seed in range(4)]
TOL = dict(rtol=0, atol=1e-6)


def make(K, seed, P=20):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(K, P)), rng.integers(1, 200, size=K)


def to_flower(X, n, order=None):
    order = range(len(X)) if order is None else order
    return [([X[i, :12].reshape(3, 4).copy(), X[i, 12:].copy()], int(n[i])) for i in order]


def flat(layers):
    return np.concatenate([layer.ravel() for layer in layers])


def ours(rule, X, n, **knobs):
    return rule(torch.from_numpy(X), torch.from_numpy(n).to(torch.float64), **knobs).numpy()


def krum_fs(K):
    return range(0, (K - 3) // 2 + 1)  # K > 2f + 2


def centrality_order(X):
    return np.argsort(((X[:, None] - X[None]) ** 2).sum(-1).sum(1), kind="stable")


def brute_force_krum_scores(X, f):
    D = ((X[:, None] - X[None]) ** 2).sum(-1)
    return np.array([np.sort(np.delete(D[i], i))[:len(X) - f - 2].sum() for i in range(len(X))])


@pytest.mark.parametrize("K, seed", CASES)
def test_fedavg(K, seed):
    X, n = make(K, seed)
    np.testing.assert_allclose(ours(fedavg, X, n), flat(aggregate(to_flower(X, n))), **TOL)


@pytest.mark.parametrize("K, seed", CASES)
def test_median(K, seed):
    X, n = make(K, seed)
    np.testing.assert_allclose(ours(coordinate_median, X, n), flat(aggregate_median(to_flower(X, n))), **TOL)


@pytest.mark.parametrize("K, seed", CASES)
@pytest.mark.parametrize("beta", [0.0, 0.1, 0.2, 0.25, 0.3, 0.45])
def test_trimmed_mean(K, seed, beta):
    X, n = make(K, seed)
    np.testing.assert_allclose(ours(trimmed_mean, X, n, trim_beta=beta),
                               flat(aggregate_trimmed_avg(to_flower(X, n), proportiontocut=beta)), **TOL)


@pytest.mark.parametrize("K, seed", CASES)
def test_krum(K, seed):
    X, n = make(K, seed)
    for f in krum_fs(K):
        np.testing.assert_allclose(ours(krum, X, n, n_byzantine=f),
                                   flat(aggregate_krum(to_flower(X, n), num_malicious=f, to_keep=0)), **TOL)


@pytest.mark.parametrize("K, seed", CASES)
def test_multi_krum_with_equal_example_counts(K, seed):
    X, _ = make(K, seed)
    n = np.full(K, 50)
    for f in krum_fs(K):
        for m in range(1, K + 1):
            np.testing.assert_allclose(ours(multi_krum, X, n, n_byzantine=f, multikrum_m=m),
                                       flat(aggregate_krum(to_flower(X, n), num_malicious=f, to_keep=m)), **TOL)


@pytest.mark.parametrize("K, seed", CASES)
def test_multi_krum_default_m_is_K_minus_f_but_flowers_to_keep_0_is_krum(K, seed):
    X, n = make(K, seed)
    ones = np.ones(K, dtype=np.int64)
    for f in krum_fs(K):
        np.testing.assert_allclose(ours(multi_krum, X, n, n_byzantine=f, multikrum_m=0),
                                   flat(aggregate_krum(to_flower(X, ones), num_malicious=f, to_keep=K - f)), **TOL)
        np.testing.assert_allclose(flat(aggregate_krum(to_flower(X, n), num_malicious=f, to_keep=0)),
                                   ours(krum, X, n, n_byzantine=f), **TOL)


@pytest.mark.parametrize("K, seed", CASES)
def test_multi_krum_flower_weights_the_kept_updates_by_examples(K, seed):
    X, n = make(K, seed)
    f, m = 1, K - 1
    kept = np.sort(np.argsort(brute_force_krum_scores(X, f), kind="stable")[:m])
    flower = flat(aggregate_krum(to_flower(X, n), num_malicious=f, to_keep=m))
    mine = ours(multi_krum, X, n, n_byzantine=f, multikrum_m=m)
    np.testing.assert_allclose(mine, X[kept].mean(0), **TOL)                       # paper: plain mean
    np.testing.assert_allclose(flower, (n[kept] @ X[kept]) / n[kept].sum(), **TOL)  # Flower: weighted
    assert np.abs(mine - flower).max() > 1e-3


def test_krum_flower_runs_where_the_paper_forbids_it():
    X, n = make(4, 0)
    flat(aggregate_krum(to_flower(X, n), num_malicious=1, to_keep=0))  # K = 4 ≤ 2f + 2: Flower answers
    with pytest.raises(ValueError, match=r"federation\.n_byzantine = 1 is not allowed: Krum needs K > 2f \+ 2"):
        ours(krum, X, n, n_byzantine=1)


def flower_bulyan(X, n, f, order=None):
    return flat(aggregate_bulyan(to_flower(X, n, order), num_malicious=f,
                                 aggregation_rule=aggregate_krum, to_keep=0))


@pytest.mark.parametrize("K, seed", CASES)
def test_bulyan_equals_flower_given_clients_in_centrality_order(K, seed):
    X, n = make(K, seed)
    for f in range(0, (K - 3) // 4 + 1):  # K ≥ 4f + 3
        np.testing.assert_allclose(ours(bulyan, X, n, n_byzantine=f),
                                   flower_bulyan(X, n, f, centrality_order(X)), **TOL)


def test_flower_bulyan_depends_on_the_clients_order_ours_does_not():
    changed = 0
    for K, seed in CASES:
        X, n = make(K, seed)
        for f in range(1, (K - 3) // 4 + 1):
            order = centrality_order(X)
            flower_forward, flower_reversed = flower_bulyan(X, n, f, order), flower_bulyan(X, n, f, order[::-1])
            changed += np.abs(flower_forward - flower_reversed).max() > 1e-3
            np.testing.assert_allclose(ours(bulyan, X[order[::-1]], n[order[::-1]], n_byzantine=f),
                                       flower_forward, **TOL)
    assert changed >= 6  # of the 12 cases with f ≥ 1 (all 12 differ with these seeds)


def test_flower_bulyan_keeps_a_byzantine_update_listed_first():
    honest = [[0.0, 0.0], [1.0, 10.0], [2.0, -10.0], [3.0, 1.0], [4.0, 2.0]]
    byzantine = [[100.0, 100.0], [-100.0, 100.0]]
    X, n = np.array(byzantine + honest), np.ones(7, dtype=np.int64)
    np.testing.assert_allclose(ours(bulyan, X, n, n_byzantine=1), [2.0, 1.0], **TOL)
    # At the last pick (pool: one honest, two Byzantine; one neighbour) honest (2, -10) and
    # Byzantine (100, 100) tie; Flower keeps the Byzantine one, listed first:
    # x over {0, 1, 3, 4, 100}: median 3, closest three 3, 4, 1 -> 8/3.
    results = [([row], 1) for row in X]
    out = aggregate_bulyan(results, num_malicious=1, aggregation_rule=aggregate_krum, to_keep=0)[0]
    np.testing.assert_allclose(out, [8 / 3, 1.0], **TOL)
    assert len(results) == 2  # Flower also popped the five picked results out of the caller's list
