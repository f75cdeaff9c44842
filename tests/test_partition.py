"""Partitioners: disjoint, covering, deterministic, and the skew they promise."""

import numpy as np
import pytest

from fedlab_core.partition import (by_site, dirichlet_label_skew, iid, pathological,
                                   quantity_skew, split_counts)


def rng(seed=0):
    return np.random.default_rng(seed)


def assert_partition(parts, n, k):
    assert len(parts) == k
    assert all(p.dtype == np.int64 for p in parts)
    assert all(len(p) > 0 for p in parts)
    allidx = np.concatenate(parts)
    assert len(allidx) == n
    assert np.array_equal(np.sort(allidx), np.arange(n))


Y = np.array([0] * 60 + [1] * 40)


def all_partitions(seed):
    return {
        "iid": iid(100, 4, rng=rng(seed)),
        "dirichlet": dirichlet_label_skew(Y, 4, alpha=0.5, rng=rng(seed)),
        "quantity": quantity_skew(100, 4, sigma=1.0, rng=rng(seed)),
        "pathological": pathological(Y, 4, labels_per_client=1, rng=rng(seed)),
    }


@pytest.mark.parametrize("name", ["iid", "dirichlet", "quantity", "pathological"])
def test_disjoint_covering_and_deterministic(name):
    a, b, c = all_partitions(0)[name], all_partitions(0)[name], all_partitions(1)[name]
    assert_partition(a, 100, 4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_split_counts_hand_computed():
    assert split_counts(10, np.array([1.0, 1.0, 2.0])).tolist() == [3, 2, 5]
    assert split_counts(7, np.array([1.0, 1.0, 1.0])).tolist() == [3, 2, 2]
    assert split_counts(5, np.array([1e6, 1.0, 1.0]), minimum=1).tolist() == [3, 1, 1]


def test_iid_sizes_differ_by_at_most_one():
    sizes = [len(p) for p in iid(103, 10, rng=rng())]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 103


def test_dirichlet_small_alpha_skews_labels_large_alpha_does_not():
    y = np.repeat([0, 1], 5000)
    skewed = dirichlet_label_skew(y, 5, alpha=0.05, rng=rng())
    flat = dirichlet_label_skew(y, 5, alpha=1000.0, rng=rng())
    rates_skewed = [y[p].mean() for p in skewed]
    rates_flat = [y[p].mean() for p in flat]
    assert np.std(rates_skewed) > 0.25
    assert np.std(rates_flat) < 0.02


def test_dirichlet_impossible_split_names_the_knob():
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="alpha") as err:
        dirichlet_label_skew(y, 4, alpha=0.001, rng=rng())
    assert "fewer clients" in str(err.value)


def test_quantity_sigma_zero_is_equal_and_large_sigma_uneven():
    assert [len(p) for p in quantity_skew(40, 4, sigma=0.0, rng=rng())] == [10] * 4
    sizes = [len(p) for p in quantity_skew(10_000, 10, sigma=2.0, rng=rng())]
    assert max(sizes) > 10 * min(sizes) and min(sizes) >= 1


def test_quantity_every_client_gets_a_row_even_when_tiny():
    parts = quantity_skew(5, 5, sigma=5.0, rng=rng())
    assert [len(p) for p in parts] == [1] * 5


def test_pathological_exact_labels_per_client():
    y = np.repeat(np.arange(5), 20)
    for k in (1, 2, 3):
        parts = pathological(y, 6, labels_per_client=k, rng=rng())
        assert_partition(parts, 100, 6)
        assert all(len(np.unique(y[p])) == k for p in parts)


def test_pathological_binary_one_label():
    parts = pathological(Y, 4, labels_per_client=1, rng=rng())
    assert sorted(int(Y[p][0]) for p in parts) == [0, 0, 1, 1]
    assert all(len(np.unique(Y[p])) == 1 for p in parts)


def test_by_site_hand_computed():
    parts = by_site(np.array([2, 2, 0, 1, 0]))
    assert [p.tolist() for p in parts] == [[0, 1], [2, 4], [3]]


@pytest.mark.parametrize("call, field", [
    (lambda: iid(10, 0, rng=rng()), "n_clients = 0"),
    (lambda: iid(3, 4, rng=rng()), "n_clients = 4"),
    (lambda: dirichlet_label_skew(Y, 4, alpha=0, rng=rng()), "alpha = 0"),
    (lambda: dirichlet_label_skew(Y, 4, alpha=-1.0, rng=rng()), "alpha = -1.0"),
    (lambda: quantity_skew(10, 2, sigma=-1.0, rng=rng()), "sigma = -1.0"),
    (lambda: pathological(Y, 4, labels_per_client=3, rng=rng()), "labels_per_client = 3"),
    (lambda: pathological(Y, 4, labels_per_client=0, rng=rng()), "labels_per_client = 0"),
    (lambda: pathological(np.repeat(np.arange(5), 2), 2, labels_per_client=2, rng=rng()),
     "labels_per_client = 2"),
    (lambda: pathological(np.array([0, 1, 1, 1]), 3, labels_per_client=1, rng=rng()),
     "no rows"),
])
def test_bad_inputs_name_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call()


def test_property_disjoint_and_covering():
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hyp.settings(max_examples=60, deadline=None)
    @hyp.given(n=st.integers(1, 200), k=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
               sigma=st.floats(0, 5), alpha=st.floats(0.5, 100), n_classes=st.integers(1, 4))
    def check(n, k, seed, sigma, alpha, n_classes):
        hyp.assume(k <= n)
        y = np.random.default_rng(seed).integers(0, n_classes, n)
        assert_partition(iid(n, k, rng=rng(seed)), n, k)
        assert_partition(quantity_skew(n, k, sigma=sigma, rng=rng(seed)), n, k)
        for fn in (lambda: dirichlet_label_skew(y, k, alpha=alpha, rng=rng(seed)),
                   lambda: pathological(y, k, labels_per_client=1, rng=rng(seed))):
            try:
                parts = fn()
            except ValueError as err:   # allowed only for the documented reasons
                assert "no rows" in str(err) or "labels_per_client" in str(err)
            else:
                assert_partition(parts, n, k)

    check()
