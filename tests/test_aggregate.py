"""Contract tests run over every registered aggregator, plus hand-computed cases."""

from types import SimpleNamespace

import pytest
import torch

from fedlab_core.aggregate import (
    AGGREGATORS, aggregator_knobs, aggregator_kwargs, bulyan, centered_clipping, coordinate_median,
    fedavg, geometric_median, get_aggregator, krum, krum_scores, multi_krum, pairwise_sq_distances,
    trimmed_mean, unweighted_mean)

NAMES = sorted(AGGREGATORS)
# Knob values the contract tests run every rule with (a new rule with knobs must add its own here).
KNOBS = {
    "trimmed_mean": {"trim_beta": 0.2},
    "krum": {"n_byzantine": 1},
    "multi_krum": {"n_byzantine": 1, "multikrum_m": 0},
    "bulyan": {"n_byzantine": 1},
    "geometric_median": {"gm_iters": 100, "gm_eps": 1e-8},
    "centered_clipping": {"cc_tau": 2.0, "cc_iters": 5},
}
# Smallest K each rule accepts with the knobs above: Krum K > 2f + 2, Bulyan K ≥ 4f + 3.
MIN_K = {"krum": 5, "multi_krum": 5, "bulyan": 7}
NOT_ROBUST = {"fedavg", "unweighted_mean"}
ROBUST = [n for n in NAMES if n not in NOT_ROBUST]


def run(name, deltas, weights):
    return AGGREGATORS[name](deltas, weights, **KNOBS.get(name, {}))


def random_updates(K=7, P=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(K, P, generator=g, dtype=torch.float64), torch.rand(K, generator=g, dtype=torch.float64) + 0.5


def test_test_knobs_cover_every_rule_exactly():
    for name in NAMES:
        assert set(aggregator_knobs(name)) == set(KNOBS.get(name, {})), name


@pytest.mark.parametrize("name", NAMES)
def test_shape_and_finite(name):
    deltas, weights = random_updates()
    out = run(name, deltas, weights)
    assert out.shape == (5,) and out.dtype == torch.float64
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    deltas, weights = random_updates()
    assert run(name, deltas.float(), weights.float()).dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", range(3))
def test_permutation_invariant(name, seed):
    for K in (7, 9, 12):  # K = 7, 9 (f = 1): Bulyan's last picks are scored on one neighbour
        deltas, weights = random_updates(K=K, seed=seed)
        perm = torch.randperm(K, generator=torch.Generator().manual_seed(seed + 1))
        torch.testing.assert_close(run(name, deltas, weights), run(name, deltas[perm], weights[perm]))


@pytest.mark.parametrize("name", NAMES)
def test_identical_updates_give_that_update(name):
    row = torch.tensor([1.0, -2.0, 3.5], dtype=torch.float64)
    deltas = row.expand(7, -1).clone()
    torch.testing.assert_close(run(name, deltas, torch.arange(1.0, 8.0, dtype=torch.float64)), row)


@pytest.mark.parametrize("name", NAMES)
def test_single_client(name):
    deltas, weights = random_updates(K=1)
    if MIN_K.get(name, 1) > 1:
        with pytest.raises(ValueError, match=r"federation\.n_byzantine = 1 is not allowed"):
            run(name, deltas, weights)
    else:
        torch.testing.assert_close(run(name, deltas, weights), deltas[0])


@pytest.mark.parametrize("name", NAMES)
def test_smallest_allowed_K(name):
    K = MIN_K.get(name, 1)
    for k in (K, K + 1):
        deltas, weights = random_updates(K=k)
        assert torch.isfinite(run(name, deltas, weights)).all()
    if K > 1:
        deltas, weights = random_updates(K=K - 1)
        with pytest.raises(ValueError, match=rf"federation\.n_byzantine = 1 is not allowed: .* \(K = {K - 1} here\)"):
            run(name, deltas, weights)


@pytest.mark.parametrize("name", ROBUST)
@pytest.mark.parametrize("seed", range(3))
def test_robust_rules_unmoved_by_one_huge_outlier(name, seed):
    honest, weights = random_updates(K=9, seed=seed)
    deltas = torch.cat([honest, torch.full((1, 5), 1e6, dtype=torch.float64)])
    weights = torch.cat([weights, weights[:1]])
    out = run(name, deltas, weights)
    lo, hi = honest.min(0).values, honest.max(0).values
    assert ((out >= lo - 1.0) & (out <= hi + 1.0)).all(), (name, out, lo, hi)


@pytest.mark.parametrize("name", sorted(NOT_ROBUST))
def test_means_are_moved_by_one_huge_outlier(name):
    honest, weights = random_updates(K=9)
    deltas = torch.cat([honest, torch.full((1, 5), 1e6, dtype=torch.float64)])
    assert (run(name, deltas, torch.cat([weights, weights[:1]])) > 1e4).all()


# ----- hand-computed cases -----

def test_fedavg_hand_computed():
    deltas = torch.tensor([[0.0, 10.0], [4.0, 2.0]])
    # weights 1 and 3: (1*[0,10] + 3*[4,2]) / 4 = [3, 4]
    torch.testing.assert_close(fedavg(deltas, torch.tensor([1.0, 3.0])), torch.tensor([3.0, 4.0]))
    torch.testing.assert_close(unweighted_mean(deltas, torch.tensor([1.0, 3.0])), torch.tensor([2.0, 6.0]))


def test_fedavg_with_equal_weights_is_the_mean():
    deltas, _ = random_updates()
    torch.testing.assert_close(fedavg(deltas, torch.ones(7, dtype=torch.float64)), deltas.mean(0))


def test_median_odd_and_even_K():
    odd = torch.tensor([[3.0, -1.0], [1.0, 5.0], [2.0, 0.0]])
    torch.testing.assert_close(coordinate_median(odd, torch.tensor([100.0, 1.0, 1.0])), torch.tensor([2.0, 0.0]))
    even = torch.tensor([[1.0, 0.0], [2.0, 9.0], [100.0, 1.0], [3.0, 2.0]])
    # sorted columns [1, 2, 3, 100] and [0, 1, 2, 9]: the two middle values averaged
    torch.testing.assert_close(coordinate_median(even, torch.ones(4)), torch.tensor([2.5, 1.5]))


def test_trimmed_mean_hand_computed():
    col = torch.tensor([[0.0, 4.0], [1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [100.0, -50.0]])
    w = torch.ones(5)
    # b = floor(0.2 * 5) = 1: drop one smallest and one largest per coordinate
    torch.testing.assert_close(trimmed_mean(col, w, trim_beta=0.2), torch.tensor([2.0, 2.0]))
    # b = floor(0.19 * 5) = 0: the plain mean
    torch.testing.assert_close(trimmed_mean(col, w, trim_beta=0.19), col.mean(0))
    torch.testing.assert_close(trimmed_mean(col, w, trim_beta=0.0), col.mean(0))
    # b = floor(0.4 * 5) = 2: only the median is left
    torch.testing.assert_close(trimmed_mean(col, w, trim_beta=0.4), torch.tensor([2.0, 2.0]))


KRUM_ROWS = torch.tensor([[0.0], [1.0], [3.0], [7.0], [20.0]], dtype=torch.float64)


def test_krum_scores_hand_computed():
    # K = 5, f = 1: each score sums the K - f - 2 = 2 smallest squared distances to the others
    #   0: 1 + 9;  1: 1 + 4;  3: 4 + 9;  7: 16 + 36;  20: 169 + 289
    scores = krum_scores(pairwise_sq_distances(KRUM_ROWS), 2)
    torch.testing.assert_close(scores, torch.tensor([10.0, 5.0, 13.0, 52.0, 458.0], dtype=torch.float64))


def test_krum_and_multi_krum_hand_computed():
    w = torch.tensor([1.0, 1.0, 1.0, 1.0, 1000.0], dtype=torch.float64)  # ignored
    torch.testing.assert_close(krum(KRUM_ROWS, w, n_byzantine=1), torch.tensor([1.0], dtype=torch.float64))
    # m = 0 means K - f = 4: the scores 5, 10, 13, 52 -> rows 1, 0, 3, 7, plain mean 2.75
    torch.testing.assert_close(multi_krum(KRUM_ROWS, w, n_byzantine=1), torch.tensor([2.75], dtype=torch.float64))
    torch.testing.assert_close(multi_krum(KRUM_ROWS, w, n_byzantine=1, multikrum_m=2),
                               torch.tensor([0.5], dtype=torch.float64))
    torch.testing.assert_close(multi_krum(KRUM_ROWS, w, n_byzantine=1, multikrum_m=1), krum(KRUM_ROWS, w, n_byzantine=1))


def test_krum_ties_go_to_the_more_central_update():
    # K = 3, f = 0: one neighbour, so 0 and 1 (the closest pair) both score 1; 1 is the more
    # central (squared distances summed: 1 + 16 = 17 against 1 + 25 = 26), whichever is listed first
    rows = torch.tensor([[0.0], [1.0], [5.0]])
    for perm in ([0, 1, 2], [1, 0, 2], [2, 1, 0], [2, 0, 1]):
        torch.testing.assert_close(krum(rows[perm], torch.ones(3), n_byzantine=0), torch.tensor([1.0]))


def test_bulyan_hand_computed():
    # K = 7, f = 1: theta = 5 picks by repeated Krum, then beta = 3 values per coordinate.
    # Repeated Krum picks the five honest rows; per coordinate:
    #   x: 0 1 2 3 4 -> median 2, closest three 1 2 3 -> 2
    #   y: 0 10 -10 1 2 -> median 1, closest three 0 1 2 -> 1
    honest = [[0.0, 0.0], [1.0, 10.0], [2.0, -10.0], [3.0, 1.0], [4.0, 2.0]]
    byzantine = [[100.0, 100.0], [-100.0, 100.0]]
    expected = torch.tensor([2.0, 1.0], dtype=torch.float64)
    for rows in (honest + byzantine, byzantine + honest):
        torch.testing.assert_close(bulyan(torch.tensor(rows, dtype=torch.float64), torch.ones(7), n_byzantine=1), expected)


def test_bulyan_with_no_byzantine_is_the_mean():
    deltas, weights = random_updates(K=6)
    torch.testing.assert_close(bulyan(deltas, weights, n_byzantine=0), deltas.mean(0))


def test_geometric_median_hand_computed():
    # a convex quadrilateral's geometric median is where its diagonals cross
    rows = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [100.0, 100.0]], dtype=torch.float64)
    torch.testing.assert_close(geometric_median(rows, torch.ones(4, dtype=torch.float64)),
                               torch.tensor([0.5, 0.5], dtype=torch.float64), atol=1e-6, rtol=0)
    # a client holding more than half the weight is the weighted geometric median
    w = torch.tensor([1.0, 1.0, 1.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(geometric_median(rows, w), rows[3], atol=1e-4, rtol=0)


def test_geometric_median_matches_scipy_minimiser():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    deltas, weights = random_updates(K=8, P=4, seed=3)
    X, w = deltas.numpy(), weights.numpy()

    def objective(z):
        return float((w * ((X - z) ** 2).sum(1) ** 0.5).sum())

    ref = scipy_optimize.minimize(objective, X.mean(0), method="Nelder-Mead",
                                  options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000}).x
    out = geometric_median(deltas, weights, gm_iters=500, gm_eps=1e-12).numpy()
    assert objective(out) <= objective(ref) + 1e-9
    assert abs(out - ref).max() < 1e-4


def test_centered_clipping_hand_computed():
    rows = torch.tensor([[1.0, 0.0], [0.0, 1.0], [100.0, 0.0]])
    # one step from v = 0: (e1 + e2 + clip(100 e1, 1)) / 3 = (2/3, 1/3)
    torch.testing.assert_close(centered_clipping(rows, torch.ones(3), cc_tau=1.0, cc_iters=1),
                               torch.tensor([2 / 3, 1 / 3]))
    # a radius larger than every distance leaves nothing clipped: the plain mean in one step
    torch.testing.assert_close(centered_clipping(rows, torch.ones(3), cc_tau=1e3, cc_iters=1), rows.mean(0))


def test_centered_clipping_moves_at_most_tau_per_iteration():
    deltas, weights = random_updates(K=10, P=5)
    deltas[0] = 1e6
    for iters in (1, 2, 5):
        assert centered_clipping(deltas, weights, cc_tau=0.3, cc_iters=iters).norm() <= 0.3 * iters + 1e-12


# ----- bad knobs -----

BAD_KNOBS = [
    (trimmed_mean, 6, {"trim_beta": 0.5}, "federation.trim_beta = 0.5 is not allowed: must be in [0, 0.5)"),
    (trimmed_mean, 6, {"trim_beta": -0.1}, "federation.trim_beta = -0.1 is not allowed: must be in [0, 0.5)"),
    (trimmed_mean, 6, {"trim_beta": "0.2"}, "federation.trim_beta = '0.2' is not allowed: must be in [0, 0.5)"),
    (krum, 6, {"n_byzantine": 3}, "federation.n_byzantine = 3 is not allowed: Krum needs K > 2f + 2 (K = 6 here)"),
    (krum, 6, {"n_byzantine": 2}, "federation.n_byzantine = 2 is not allowed: Krum needs K > 2f + 2 (K = 6 here)"),
    (krum, 6, {"n_byzantine": -1}, "federation.n_byzantine = -1 is not allowed: must be an integer ≥ 0"),
    (krum, 6, {"n_byzantine": 1.5}, "federation.n_byzantine = 1.5 is not allowed: must be an integer ≥ 0"),
    (krum, 6, {"n_byzantine": True}, "federation.n_byzantine = True is not allowed: must be an integer ≥ 0"),
    (multi_krum, 6, {"n_byzantine": 2},
     "federation.n_byzantine = 2 is not allowed: Multi-Krum needs K > 2f + 2 (K = 6 here)"),
    (multi_krum, 6, {"n_byzantine": 1, "multikrum_m": 7},
     "federation.multikrum_m = 7 is not allowed: must be in [0, K] (K = 6 here; 0 means K - f)"),
    (multi_krum, 6, {"n_byzantine": 1, "multikrum_m": -1},
     "federation.multikrum_m = -1 is not allowed: must be an integer ≥ 0"),
    (bulyan, 6, {"n_byzantine": 1}, "federation.n_byzantine = 1 is not allowed: Bulyan needs K ≥ 4f + 3 (K = 6 here)"),
    (geometric_median, 6, {"gm_iters": 0}, "federation.gm_iters = 0 is not allowed: must be an integer ≥ 1"),
    (geometric_median, 6, {"gm_eps": 0.0}, "federation.gm_eps = 0.0 is not allowed: must be a number > 0"),
    (centered_clipping, 6, {"cc_tau": 0.0}, "federation.cc_tau = 0.0 is not allowed: must be a number > 0"),
    (centered_clipping, 6, {"cc_tau": 1.0, "cc_iters": 0},
     "federation.cc_iters = 0 is not allowed: must be an integer ≥ 1"),
]


@pytest.mark.parametrize("rule, K, knobs, message", BAD_KNOBS)
def test_bad_knobs_name_the_config_field(rule, K, knobs, message):
    deltas, weights = random_updates(K=K)
    with pytest.raises(ValueError) as err:
        rule(deltas, weights, **knobs)
    assert str(err.value) == message


# ----- registry and config wiring -----

def test_unknown_aggregator():
    with pytest.raises(ValueError, match="federation.aggregator = 'krum2' is not allowed: choose one of"):
        get_aggregator("krum2")


def test_aggregator_kwargs_reads_the_knobs_by_name():
    federation = SimpleNamespace(aggregator="bulyan", n_byzantine=2, trim_beta=0.1, multikrum_m=0,
                                 gm_iters=100, gm_eps=1e-6, cc_tau=1.0, cc_iters=3)
    assert aggregator_kwargs("fedavg", federation) == {}
    assert aggregator_kwargs("trimmed_mean", federation) == {"trim_beta": 0.1}
    assert aggregator_kwargs("multi_krum", federation) == {"n_byzantine": 2, "multikrum_m": 0}
    assert aggregator_kwargs("centered_clipping", federation) == {"cc_tau": 1.0, "cc_iters": 3}
    deltas, weights = random_updates(K=11)
    for name in NAMES:
        out = get_aggregator(name)(deltas, weights, **aggregator_kwargs(name, federation))
        assert out.shape == (5,)


def test_aggregator_kwargs_names_a_missing_field():
    with pytest.raises(TypeError, match="aggregator 'geometric_median' needs federation field.s. gm_iters, gm_eps"):
        aggregator_kwargs("geometric_median", SimpleNamespace(n_byzantine=1))


def test_knob_names_are_few_and_shared():
    knobs = {k for name in NAMES for k in aggregator_knobs(name)}
    assert knobs == {"trim_beta", "n_byzantine", "multikrum_m", "gm_iters", "gm_eps", "cc_tau", "cc_iters"}
