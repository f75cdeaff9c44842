"""Accuracy, ROC AUC and log-loss of binary classifiers, per client and pooled.

ROC AUC comes from scikit-learn; it is undefined when a test set holds only
one class, and is then reported as ``nan`` rather than a misleading number.

>>> import numpy as np
>>> m = binary_metrics(np.array([2.0, -1.0, 0.5]), np.array([1, 0, 0]))
>>> round(m["accuracy"], 4), m["auc"]
(0.6667, 1.0)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

Tensor = torch.Tensor


def binary_metrics(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``accuracy`` at threshold 0.5, ``auc``, and mean binary cross-entropy ``loss``."""
    if len(y) == 0:
        return {"accuracy": math.nan, "auc": math.nan, "loss": math.nan}
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y)
    accuracy = float(np.mean((logits > 0) == (y > 0.5)))
    # log(1 + e^z) - y z, written stably
    loss = float(np.mean(np.logaddexp(0.0, logits) - y * logits))
    auc = float(roc_auc_score(y, logits)) if 0 < y.sum() < len(y) else math.nan
    return {"accuracy": accuracy, "auc": auc, "loss": loss}


def client_metrics(logits: Tensor, y: Tensor, n: Tensor) -> list[dict[str, float]]:
    """Metrics of each row of padded ``(K, n_max)`` logits on its first ``n[k]`` entries."""
    z, t, counts = logits.detach().cpu().double().numpy(), y.cpu().numpy(), n.tolist()
    return [binary_metrics(z[k, :c], t[k, :c]) for k, c in enumerate(counts)]


def pooled_metrics(logits: Tensor, y: Tensor, n: Tensor) -> dict[str, float]:
    """Metrics over every client's real entries together (the pooled test set)."""
    z, t, counts = logits.detach().cpu().double().numpy(), y.cpu().numpy(), n.tolist()
    return binary_metrics(np.concatenate([z[k, :c] for k, c in enumerate(counts)]),
                          np.concatenate([t[k, :c] for k, c in enumerate(counts)]))
