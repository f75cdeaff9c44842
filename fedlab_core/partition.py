"""Partitioners: split the rows of a pooled dataset across clients.

Each function is pure: it takes labels (or just a row count), the number of
clients and an ``rng: np.random.Generator``, and returns a list of
``n_clients`` index arrays (int64, each sorted) that are disjoint and together
cover every row exactly once. The data layer turns those indices into
hospitals; the functions themselves know nothing about medicine.

>>> rng = np.random.default_rng(0)
>>> parts = iid(10, 3, rng=rng)
>>> [len(p) for p in parts]
[4, 3, 3]
>>> sorted(np.concatenate(parts).tolist()) == list(range(10))
True
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["iid", "dirichlet_label_skew", "quantity_skew", "pathological", "by_site",
           "split_counts"]

# Redraws allowed before a Dirichlet split that keeps leaving a client empty is
# declared impossible (NIID-Bench, Li et al. 2022, redraws the same way).
_MAX_DIRICHLET_TRIES = 100


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"{name} = {value!r} is not allowed: {allowed}")


def _check_clients(n_clients: Any, n_samples: int) -> None:
    if isinstance(n_clients, bool) or not isinstance(n_clients, (int, np.integer)) or n_clients < 1:
        _fail("n_clients", n_clients, "must be an integer ≥ 1")
    if n_clients > n_samples:
        _fail("n_clients", int(n_clients),
              f"more clients than samples ({n_samples}); every client needs at least one row")


def _as_labels(y: Any) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        _fail("y", f"array of shape {y.shape}", "must be a 1-D array of labels")
    return y


def _finish(parts: Sequence[np.ndarray]) -> list[np.ndarray]:
    # Sorted indices keep each client's rows in their original order, which
    # makes results easy to read and independent of how the split was built.
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def split_counts(n: int, weights: np.ndarray, *, minimum: int = 0) -> np.ndarray:
    """Integer counts summing to ``n``, proportional to ``weights`` (largest remainder).

    ``count_k = minimum + floor(w_k (n - K·minimum) / Σw) (+1 for the largest remainders)``
    — Hamilton's apportionment method, so the counts sum to ``n`` exactly.

    >>> split_counts(10, np.array([1.0, 1.0, 2.0])).tolist()
    [3, 2, 5]
    >>> split_counts(5, np.array([100.0, 1.0, 1.0]), minimum=1).tolist()
    [3, 1, 1]
    """
    weights = np.asarray(weights, dtype=np.float64)
    k = weights.shape[0]
    rest = n - minimum * k
    if rest < 0:
        _fail("n", n, f"too small to give each of {k} parts at least {minimum}")
    share = weights / weights.sum() * rest
    counts = np.floor(share).astype(np.int64)
    short = rest - int(counts.sum())
    if short:
        # ties broken by position (stable sort), so the result is deterministic
        order = np.argsort(-(share - counts), kind="stable")
        counts[order[:short]] += 1
    return counts + minimum


def iid(n_samples: int, n_clients: int, *, rng: np.random.Generator) -> list[np.ndarray]:
    """Uniformly random split into near-equal parts (sizes differ by at most one).

    ``perm = shuffle(0..n-1)``; client ``k`` gets the ``k``-th of ``n_clients``
    consecutive chunks — the IID baseline of McMahan et al. (2017),
    "Communication-efficient learning of deep networks from decentralized data".

    >>> [p.tolist() for p in iid(5, 2, rng=np.random.default_rng(1))]
    [[0, 1, 4], [2, 3]]
    """
    n_samples = int(n_samples)
    _check_clients(n_clients, n_samples)
    return _finish(np.array_split(rng.permutation(n_samples), n_clients))


def dirichlet_label_skew(y: Any, n_clients: int, *, alpha: float,
                         rng: np.random.Generator) -> list[np.ndarray]:
    """Label-skewed split: for every class ``c``, ``p_c ~ Dir(alpha · 1_K)`` shares its rows.

    Class ``c``'s shuffled rows are cut at the cumulative proportions ``p_c``.
    Small ``alpha`` (0.1) gives each client mostly one class; large ``alpha``
    (100) approaches an IID split. Hsu, Qi & Brown (2019), "Measuring the
    effects of non-identical data distribution for federated visual
    classification". A draw that leaves some client with no rows is redrawn
    (up to 100 times, as NIID-Bench does); if it still does, ``ValueError``.

    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> parts = dirichlet_label_skew(y, 2, alpha=0.5, rng=np.random.default_rng(0))
    >>> sum(len(p) for p in parts), all(len(p) > 0 for p in parts)
    (8, True)
    """
    y = _as_labels(y)
    _check_clients(n_clients, y.shape[0])
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) \
            or not np.isfinite(alpha) or alpha <= 0:
        _fail("alpha", alpha, "must be > 0")
    classes = np.unique(y)
    by_class = [np.flatnonzero(y == c) for c in classes]
    for _ in range(_MAX_DIRICHLET_TRIES):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for rows in by_class:
            rows = rng.permutation(rows)
            p = rng.dirichlet(np.full(n_clients, float(alpha)))
            cuts = (np.cumsum(p)[:-1] * len(rows)).astype(np.int64)
            for k, chunk in enumerate(np.split(rows, cuts)):
                parts[k].append(chunk)
        merged = [np.concatenate(p) for p in parts]
        if all(len(m) > 0 for m in merged):
            return _finish(merged)
    empty = [k for k, m in enumerate(merged) if len(m) == 0]
    raise ValueError(
        f"alpha = {alpha!r} with n_clients = {n_clients} left client(s) {empty} with no rows "
        f"in {_MAX_DIRICHLET_TRIES} draws: raise alpha (less skew) or use fewer clients")


def quantity_skew(n_samples: int, n_clients: int, *, sigma: float,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """Size-skewed split: client sizes ``∝ exp(sigma · z_k)``, ``z_k ~ N(0, 1)``, each ≥ 1.

    Labels are untouched (each client is a random sample), only the amounts
    differ: the log-normal "quantity skew" of Li et al. (2022), "Federated
    learning on non-IID data silos: an experimental study" (NIID-Bench).
    ``sigma = 0`` gives equal sizes.

    >>> [len(p) for p in quantity_skew(10, 2, sigma=0.0, rng=np.random.default_rng(0))]
    [5, 5]
    >>> sizes = [len(p) for p in quantity_skew(100, 4, sigma=2.0, rng=np.random.default_rng(0))]
    >>> sum(sizes), min(sizes) >= 1
    (100, True)
    """
    n_samples = int(n_samples)
    _check_clients(n_clients, n_samples)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.floating)) \
            or not np.isfinite(sigma) or sigma < 0:
        _fail("sigma", sigma, "must be ≥ 0")
    weights = np.exp(sigma * rng.standard_normal(n_clients))
    counts = split_counts(n_samples, weights, minimum=1)
    return _finish(np.split(rng.permutation(n_samples), np.cumsum(counts)[:-1]))


def pathological(y: Any, n_clients: int, *, labels_per_client: int,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Pathological non-IID split: every client holds exactly ``labels_per_client`` classes.

    Client ``k`` is given classes ``order[(k·L + j) mod C]`` for ``j < L``
    (``order`` a random permutation of the ``C`` classes), so the classes are
    dealt round-robin and all are covered once ``K·L ≥ C``; each class's rows
    are then shared evenly among the clients that hold it. This is the
    sort-and-shard split of McMahan et al. (2017) in the "#C = k" form of
    Li et al. (2022), which guarantees exactly k labels per client.

    >>> y = np.array([0, 0, 1, 1, 0, 1])
    >>> parts = pathological(y, 2, labels_per_client=1, rng=np.random.default_rng(0))
    >>> sorted(np.unique(y[p]).tolist() for p in parts)
    [[0], [1]]
    """
    y = _as_labels(y)
    _check_clients(n_clients, y.shape[0])
    classes = np.unique(y)
    n_classes = len(classes)
    if isinstance(labels_per_client, bool) or not isinstance(labels_per_client, (int, np.integer)) \
            or labels_per_client < 1:
        _fail("labels_per_client", labels_per_client, "must be an integer ≥ 1")
    if labels_per_client > n_classes:
        _fail("labels_per_client", int(labels_per_client),
              f"must be at most the number of classes ({n_classes})")
    if n_clients * labels_per_client < n_classes:
        _fail("labels_per_client", int(labels_per_client),
              f"n_clients × labels_per_client must be ≥ the number of classes ({n_classes}) "
              "so that every row has a client; raise labels_per_client or n_clients")
    order = rng.permutation(n_classes)
    holders: list[list[int]] = [[] for _ in range(n_classes)]
    for k in range(n_clients):
        for j in range(labels_per_client):
            holders[order[(k * labels_per_client + j) % n_classes]].append(k)
    parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
    for c, who in enumerate(holders):
        rows = rng.permutation(np.flatnonzero(y == classes[c]))
        for k, chunk in zip(who, np.array_split(rows, len(who))):
            parts[k].append(chunk)
    merged = [np.concatenate(p) for p in parts]
    empty = [k for k, m in enumerate(merged) if len(m) == 0]
    if empty:
        raise ValueError(
            f"labels_per_client = {labels_per_client} with n_clients = {n_clients} left client(s) "
            f"{empty} with no rows (a class has fewer rows than clients holding it): "
            "use fewer clients or more labels per client")
    return _finish(merged)


def by_site(site: Any) -> list[np.ndarray]:
    """One part per distinct value of ``site``, in order of first appearance.

    The "natural" partition: rows stay with the hospital that recorded them.

    >>> [p.tolist() for p in by_site(["b", "a", "b", "c"])]
    [[0, 2], [1], [3]]
    """
    site = np.asarray(site)
    if site.ndim != 1 or site.shape[0] == 0:
        _fail("site", f"array of shape {site.shape}", "must be a non-empty 1-D array")
    values, first, inverse = np.unique(site, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))  # unique-sorted position -> appearance order
    order = rank[inverse.ravel()]
    return _finish([np.flatnonzero(order == r) for r in range(len(values))])
