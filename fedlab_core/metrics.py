"""Accuracy, ROC AUC and log-loss of binary classifiers, for many clients at once.

Every round scores several models on every client's test set, so the metrics
work on padded ``(K, n)`` rows in one pass. ROC AUC uses the rank form of the
Mann–Whitney statistic (Hanley & McNeil 1982, Radiology 143:29):

    AUC = (sum of the ranks of the positives − P(P+1)/2) / (P · N)

with tied scores given their average rank, which is exactly what
scikit-learn's ``roc_auc_score`` computes (tests/test_metrics.py checks it on
random and tied scores). scikit-learn itself spends ~0.5 ms validating its
input on each call, which, called K × 4 times a round, made evaluation the
slowest part of a round. AUC is undefined when a test set holds only one
class; it is then ``nan``, not a misleading number.

>>> import numpy as np
>>> m = binary_metrics(np.array([2.0, -1.0, 0.5]), np.array([1, 0, 0]))
>>> round(m["accuracy"], 4), m["auc"]
(0.6667, 1.0)
"""

from __future__ import annotations

import numpy as np
import torch

Tensor = torch.Tensor


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks within each row of ``scores`` (K, n), ties given their average rank.

    What ``scipy.stats.rankdata(scores, axis=1)`` returns, in NumPy alone: importing
    ``scipy.stats`` costs about a second, which every Flower ClientApp process (one per
    message) would pay before it could score a model.

    >>> average_ranks(np.array([[0.5, 0.1, 0.5, 0.9]]))
    array([[2.5, 1. , 2.5, 4. ]])
    """
    order = np.argsort(scores, axis=1, kind="stable")
    ordered = np.take_along_axis(scores, order, axis=1)
    n = scores.shape[1]
    position = np.broadcast_to(np.arange(n), ordered.shape)
    # a tie is a run of equal values in the sorted row: find each position's run ends
    starts = np.ones(ordered.shape, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones(ordered.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, position, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(ordered.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=1)
    return ranks


def metrics_rows(logits: np.ndarray, y: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy (threshold 0.5), ROC AUC and mean BCE of each row's first ``n[k]`` entries.

    Returns arrays of shape ``(K,)``; rows with ``n[k] = 0`` give ``nan``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    K, width = logits.shape
    valid = np.arange(width)[None, :] < np.asarray(n)[:, None]
    count = valid.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        correct = ((logits > 0) == (y > 0.5)) & valid
        accuracy = correct.sum(1) / count
        # log(1 + e^z) − y z, written stably
        loss = np.where(valid, np.logaddexp(0.0, logits) - y * logits, 0.0).sum(1) / count
        # padding ranks after every real score, so real ranks are unchanged
        ranks = average_ranks(np.where(valid, logits, np.inf))
        positive = (y > 0.5) & valid
        n_pos = positive.sum(1)
        n_neg = count - n_pos
        auc = (np.where(positive, ranks, 0.0).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    auc = np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
    return {"accuracy": accuracy, "auc": auc, "loss": loss}


def binary_metrics(logits, y) -> dict[str, float]:
    """Metrics of one set of scores: ``accuracy``, ``auc``, ``loss``."""
    logits = np.asarray(logits, dtype=np.float64).reshape(1, -1)
    rows = metrics_rows(logits, np.asarray(y).reshape(1, -1), np.array([logits.shape[1]]))
    return {k: float(v[0]) for k, v in rows.items()}


def client_metrics(logits: Tensor, y: Tensor, n: Tensor) -> list[dict[str, float]]:
    """Metrics of each row of padded ``(K, n_max)`` logits on its first ``n[k]`` entries."""
    rows = metrics_rows(logits.detach().cpu().double().numpy(), y.cpu().numpy(), n.cpu().numpy())
    return [{k: float(v[i]) for k, v in rows.items()} for i in range(len(n))]


def pooled_metrics(logits: Tensor, y: Tensor, n: Tensor) -> dict[str, float]:
    """Metrics over every client's real entries together (the pooled test set)."""
    mask = (torch.arange(logits.shape[1], device=logits.device).unsqueeze(0)
            < n.unsqueeze(1))
    return binary_metrics(logits.detach()[mask].cpu().double().numpy(), y[mask].cpu().numpy())
