"""Heterogeneity summaries on hand-computed cases."""

import math

import numpy as np
import pytest

from fedlab_core.data.base import ClientData, FederatedDataset
from fedlab_core.heterogeneity import (feature_shift, hellinger, js_distance,
                                       label_distribution, summarize)


def client(name, X, y):
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    y = np.asarray(y, dtype=np.int64)
    return ClientData(name, X, y, X[:1], y[:1])


def test_distances_hand_computed():
    # P = (1/2, 1/2), Q = (1, 0): M = (3/4, 1/4)
    # KL(P||M) = ½log2(2/3) + ½log2(2) ; KL(Q||M) = log2(4/3)
    js = math.sqrt(0.5 * (0.5 * math.log2(2 / 3) + 0.5) + 0.5 * math.log2(4 / 3))
    assert js_distance([0.5, 0.5], [1, 0]) == pytest.approx(js)
    h = math.sqrt(0.5 * ((math.sqrt(0.5) - 1) ** 2 + 0.5))
    assert hellinger([0.5, 0.5], [1, 0]) == pytest.approx(h)
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert hellinger([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_distance([0.3, 0.7], [0.3, 0.7]) == 0.0 and hellinger([0.3, 0.7], [0.3, 0.7]) == 0.0


def test_label_distribution():
    np.testing.assert_allclose(label_distribution([1, 1, 0, 1], 2), [0.25, 0.75])
    np.testing.assert_allclose(label_distribution([0, 0], 2), [1.0, 0.0])


def test_feature_shift_hand_computed():
    pool = np.array([[0.0, 5.0], [2.0, 5.0], [0.0, 5.0], [2.0, 5.0]])
    # feature 0: pooled mean 1, sd 1; feature 1 constant → skipped
    assert feature_shift(pool[[1, 3]], pool) == pytest.approx(1.0)
    assert feature_shift(pool[[0, 1]], pool) == pytest.approx(0.0)


def test_summarize_hand_computed_table():
    a = client("A", [0, 0, 0, 0], [0, 0, 0, 1])          # 1/4 positive
    b = client("B", [2, 2, 2, 2], [0, 1, 1, 1])          # 3/4 positive
    df = summarize(FederatedDataset("toy", ("x",), (a, b)))
    assert list(df.columns) == ["hospital", "n_train", "n_test", "positive_rate",
                                "label_distribution", "js_distance", "hellinger", "feature_shift"]
    assert df["hospital"].tolist() == ["A", "B"]
    assert df["n_train"].tolist() == [4, 4] and df["n_test"].tolist() == [1, 1]
    assert df["positive_rate"].tolist() == [0.25, 0.75]
    assert df["label_distribution"].tolist() == [(0.75, 0.25), (0.25, 0.75)]
    # pooled (1/2, 1/2)
    h = math.sqrt(0.5 * ((math.sqrt(0.75) - math.sqrt(0.5)) ** 2
                         + (math.sqrt(0.25) - math.sqrt(0.5)) ** 2))
    np.testing.assert_allclose(df["hellinger"], [h, h])
    np.testing.assert_allclose(df["js_distance"],
                               [js_distance([0.75, 0.25], [0.5, 0.5])] * 2)
    np.testing.assert_allclose(df["feature_shift"], [1.0, 1.0])   # pooled mean 1, sd 1


def test_identical_hospitals_have_zero_distances():
    a = client("A", [1, 2, 3, 4], [0, 1, 0, 1])
    df = summarize(FederatedDataset("toy", ("x",), (a, a)))
    np.testing.assert_allclose(df[["js_distance", "hellinger", "feature_shift"]].to_numpy(), 0.0)


def test_synthetic_label_shift_shows_up():
    from fedlab_core.config import DataConfig
    from fedlab_core.data import load_dataset

    flat = summarize(load_dataset(DataConfig(n_samples=20_000, label_shift=0.0,
                                             covariate_shift=0.0), seed=0))
    shifted = summarize(load_dataset(DataConfig(n_samples=20_000, label_shift=1.0,
                                                covariate_shift=0.0), seed=0))
    assert shifted["hellinger"].mean() > 3 * flat["hellinger"].mean()
