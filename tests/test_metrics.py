"""Vectorised metrics against scikit-learn, the trusted reference."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from fedlab_core.metrics import binary_metrics, client_metrics, metrics_rows, pooled_metrics


@pytest.mark.parametrize("seed", range(5))
def test_rows_match_sklearn_with_ties_and_padding(seed):
    rng = np.random.default_rng(seed)
    K, width = 6, 40
    n = rng.integers(2, width + 1, size=K)
    # rounded scores create many ties, which AUC must average
    logits = np.round(rng.normal(size=(K, width)), 1)
    y = (rng.random((K, width)) < 0.4).astype(float)
    y[:, 0], y[:, 1] = 0, 1  # both classes in every row
    logits_padded = logits.copy()
    for k in range(K):
        logits_padded[k, n[k]:] = rng.normal(size=width - n[k]) * 100  # garbage in padding
    rows = metrics_rows(logits_padded, y, n)
    for k in range(K):
        z, t = logits[k, :n[k]], y[k, :n[k]]
        p = 1 / (1 + np.exp(-z))
        assert rows["auc"][k] == pytest.approx(roc_auc_score(t, z), abs=1e-12)
        assert rows["accuracy"][k] == pytest.approx(accuracy_score(t, z > 0))
        assert rows["loss"][k] == pytest.approx(log_loss(t, p, labels=[0, 1]), rel=1e-9)


def test_one_class_gives_nan_auc():
    m = binary_metrics(np.array([0.3, -0.2]), np.array([1, 1]))
    assert math.isnan(m["auc"]) and m["accuracy"] == 0.5


def test_empty_row_is_nan():
    rows = metrics_rows(np.zeros((2, 3)), np.zeros((2, 3)), np.array([0, 3]))
    assert math.isnan(rows["accuracy"][0]) and rows["accuracy"][1] == 1.0


def test_client_and_pooled_metrics_on_tensors():
    logits = torch.tensor([[2.0, -1.0, 9.0], [0.5, -3.0, 1.0]])
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    n = torch.tensor([2, 3])
    per_client = client_metrics(logits, y, n)
    assert per_client[0]["accuracy"] == 1.0 and per_client[1]["accuracy"] == pytest.approx(2 / 3)
    pooled = pooled_metrics(logits, y, n)
    z = np.array([2.0, -1.0, 0.5, -3.0, 1.0]); t = np.array([1, 0, 0, 0, 1])
    assert pooled["auc"] == pytest.approx(roc_auc_score(t, z))
    assert pooled["accuracy"] == pytest.approx(0.8)


@pytest.mark.parametrize("seed", range(5))
def test_average_ranks_equal_scipy_rankdata(seed):
    from scipy.stats import rankdata

    from fedlab_core.metrics import average_ranks

    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=(7, 50)), 1)   # many ties
    scores[0, :] = 0.3                                # a row that is one tie
    scores[1, -10:] = np.inf                          # padding, as metrics_rows adds it
    np.testing.assert_array_equal(average_ranks(scores), rankdata(scores, axis=1))
