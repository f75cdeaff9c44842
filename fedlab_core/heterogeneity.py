"""How different are the hospitals? One table, one row per hospital.

Label shift is measured by comparing each hospital's label distribution
``P_k`` (training rows) with the pooled one ``Q`` (all hospitals' training
rows) — Jensen–Shannon and Hellinger distances, both in ``[0, 1]``. Feature
shift is the mean absolute standardised difference of feature means.

>>> import numpy as np
>>> hellinger([0.5, 0.5], [0.5, 0.5]), round(hellinger([1, 0], [0, 1]), 6)
(0.0, 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from fedlab_core.data.base import FederatedDataset

__all__ = ["label_distribution", "hellinger", "js_distance", "feature_shift", "summarize"]


def label_distribution(y: Any, n_classes: int) -> np.ndarray:
    """Class proportions ``p_c = #{y = c} / n`` for ``c = 0 … n_classes − 1`` (zeros if empty).

    >>> label_distribution([0, 1, 1, 1], 2).tolist()
    [0.25, 0.75]
    """
    y = np.asarray(y, dtype=np.int64)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return counts / counts.sum() if counts.sum() > 0 else counts


def hellinger(p: Any, q: Any) -> float:
    """Hellinger distance ``H(P, Q) = ‖√P − √Q‖₂ / √2`` ∈ [0, 1] (Hellinger 1909).

    >>> round(hellinger([0.5, 0.5], [1.0, 0.0]), 4)
    0.5412
    """
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    return float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def js_distance(p: Any, q: Any) -> float:
    """Jensen–Shannon distance, base 2: ``√(½ KL(P‖M) + ½ KL(Q‖M))``, ``M = (P + Q)/2`` ∈ [0, 1].

    Lin (1991), "Divergence measures based on the Shannon entropy"; computed
    with ``scipy.spatial.distance.jensenshannon``.

    >>> round(js_distance([0.5, 0.5], [1.0, 0.0]), 4)
    0.5579
    """
    d = jensenshannon(np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64), base=2)
    # tiny negative round-off inside scipy's sqrt can give -0.0 or nan for P = Q
    return float(max(d, 0.0)) if np.isfinite(d) else 0.0


def feature_shift(X: np.ndarray, X_pooled: np.ndarray) -> float:
    """Mean over features of ``|mean_k,j − mean_pooled,j| / sd_pooled,j``.

    How many pooled standard deviations, on average, a hospital's feature
    means sit away from the federation's (a standardised mean difference,
    Cohen's d style). Features constant in the pool are skipped.

    >>> pool = np.array([[0.0], [2.0], [0.0], [2.0]])
    >>> feature_shift(pool[:2], pool), feature_shift(np.array([[2.0], [2.0]]), pool)
    (0.0, 1.0)
    """
    X, X_pooled = np.asarray(X, dtype=np.float64), np.asarray(X_pooled, dtype=np.float64)
    if X.shape[0] == 0:
        return float("nan")
    sd = X_pooled.std(axis=0)
    ok = sd > 0
    if not ok.any():
        return 0.0
    diff = np.abs(X.mean(axis=0) - X_pooled.mean(axis=0))[ok] / sd[ok]
    return float(diff.mean())


def summarize(dataset: FederatedDataset) -> pd.DataFrame:
    """One row per hospital: sizes, prevalence, label-shift and feature-shift measures.

    Columns: ``hospital``, ``n_train``, ``n_test``, ``positive_rate`` (train),
    ``label_distribution`` (train class proportions, a tuple), ``js_distance``
    and ``hellinger`` (label distribution vs the pooled training one), and
    ``feature_shift`` (:func:`feature_shift` of the training rows vs pooled).

    Measured on the features as delivered: where each hospital is standardised
    with its own statistics (the heart data, FLamby's protocol) every
    hospital's means are 0, so ``feature_shift`` is 0 by construction — that
    protocol hides mean shifts, it does not remove the heterogeneity.

    >>> from fedlab_core.data.base import ClientData, FederatedDataset
    >>> a = ClientData("A", np.array([[0.0], [0.0]]), np.array([0, 0]), np.zeros((1, 1)), np.array([0]))
    >>> b = ClientData("B", np.array([[2.0], [2.0]]), np.array([1, 1]), np.zeros((1, 1)), np.array([1]))
    >>> df = summarize(FederatedDataset("toy", ("x",), (a, b)))
    >>> df[["hospital", "positive_rate", "hellinger", "feature_shift"]].round(4).values.tolist()
    [['A', 0.0, 0.5412, 1.0], ['B', 1.0, 0.5412, 1.0]]
    """
    clients = dataset.clients
    if not clients:
        raise ValueError("dataset.clients = () is not allowed: needs at least one hospital")
    y_all = np.concatenate([c.y_train for c in clients])
    n_classes = max(2, int(y_all.max()) + 1 if y_all.size else 2)
    pooled = label_distribution(y_all, n_classes)
    X_pooled = np.concatenate([c.X_train for c in clients])
    rows = []
    for c in clients:
        p = label_distribution(c.y_train, n_classes)
        empty = c.n_train == 0
        rows.append({
            "hospital": c.name,
            "n_train": c.n_train,
            "n_test": c.n_test,
            "positive_rate": float(c.y_train.mean()) if c.n_train else float("nan"),
            "label_distribution": tuple(round(float(v), 6) for v in p),
            "js_distance": float("nan") if empty else js_distance(p, pooled),
            "hellinger": float("nan") if empty else hellinger(p, pooled),
            "feature_shift": feature_shift(c.X_train, X_pooled),
        })
    return pd.DataFrame(rows)
