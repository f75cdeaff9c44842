"""Aggregation rules: ``(deltas (K, P), weights (K,), *, knobs) -> (P,)``.

Each rule is a short pure function over the clients' updates
``delta_k = theta_k^local - theta^global`` and their weights (the number of
training rows by default). ``AGGREGATORS`` maps the names used in configs to
the functions; one contract test runs over every entry (tests/test_aggregate.py)
and tests/test_aggregate_flower.py checks the rules Flower also has against it.

The robust rules take their knobs as keyword-only arguments whose names are
fields of the federation config (``n_byzantine``, ``trim_beta``, ...);
:func:`aggregator_kwargs` reads them from a config by name. A bad knob raises
``ValueError`` naming the config field.

Robust rules ignore ``weights`` unless their docstring says otherwise: a
client that lies about its updates can lie about its row count too.

>>> import torch
>>> deltas = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
>>> fedavg(deltas, torch.tensor([1.0, 3.0]))
tensor([2.5000, 3.0000])
>>> unweighted_mean(deltas, torch.tensor([1.0, 3.0]))
tensor([2., 2.])
"""

from __future__ import annotations

import inspect
import operator
from typing import Any, Callable

import torch

Tensor = torch.Tensor
Aggregator = Callable[..., Tensor]


def _reject(field: str, value: Any, why: str) -> ValueError:
    return ValueError(f"federation.{field} = {value!r} is not allowed: {why}")


def _int_knob(field: str, value: Any, low: int) -> int:
    if isinstance(value, bool):
        raise _reject(field, value, f"must be an integer ≥ {low}")
    try:
        number = operator.index(value)
    except TypeError:
        raise _reject(field, value, f"must be an integer ≥ {low}") from None
    if number < low:
        raise _reject(field, value, f"must be an integer ≥ {low}")
    return number


def _byzantine(value: Any, K: int, rule: str, need: str, ok: Callable[[int], bool]) -> int:
    f = _int_knob("n_byzantine", value, 0)
    if not ok(f):
        raise _reject("n_byzantine", value, f"{rule} needs {need} (K = {K} here)")
    return f


def fedavg(deltas: Tensor, weights: Tensor) -> Tensor:
    """Sample-weighted mean, FedAvg (McMahan et al., AISTATS 2017).

    ``sum_k n_k delta_k / sum_k n_k``: every patient counts the same, so a large
    hospital pulls the model harder than a small one. Tolerates no malicious
    client: one update of size ``x`` moves the result by ``n_k x / sum n``.
    """
    w = weights.to(deltas.dtype)
    return (w / w.sum()) @ deltas


def unweighted_mean(deltas: Tensor, weights: Tensor) -> Tensor:
    """Plain mean ``(1/K) sum_k delta_k``: every hospital counts the same, whatever its size."""
    return deltas.mean(dim=0)


def coordinate_median(deltas: Tensor, weights: Tensor) -> Tensor:
    """Coordinate-wise median, ``fedmedian`` (Yin et al., ICML 2018).

    ``out_j = median_k delta_kj``; for even K the mean of the two middle values
    (as ``numpy.median`` and Flower's ``aggregate_median``), not torch.median's
    lower one. Weights are ignored.

    Tolerates up to ``ceil(K/2) - 1`` malicious clients (breakdown point 1/2):
    each coordinate stays inside the range of the honest values.

    >>> coordinate_median(torch.tensor([[1.0, 0.0], [2.0, 9.0], [100.0, 1.0], [3.0, 2.0]]), torch.ones(4))
    tensor([2.5000, 1.5000])
    """
    s = deltas.sort(dim=0).values
    K = s.shape[0]
    return (s[(K - 1) // 2] + s[K // 2]) / 2


def trimmed_mean(deltas: Tensor, weights: Tensor, *, trim_beta: float) -> Tensor:
    """Coordinate-wise trimmed mean (Yin et al., ICML 2018).

    ``out_j = mean of delta_kj over k after dropping the b = floor(beta K)
    largest and b smallest``; the same rule as Flower's ``aggregate_trimmed_avg``
    and ``scipy.stats.trim_mean`` (b computed as ``int(beta * K)``). Weights are
    ignored.

    Tolerates up to ``floor(beta K)`` malicious clients (Yin et al. need
    beta ≥ the malicious fraction); ``trim_beta`` must be in [0, 0.5).

    >>> trimmed_mean(torch.tensor([[0.0], [1.0], [2.0], [3.0], [100.0]]), torch.ones(5), trim_beta=0.2)
    tensor([2.])
    """
    if not isinstance(trim_beta, (int, float)) or isinstance(trim_beta, bool) or not 0.0 <= trim_beta < 0.5:
        raise _reject("trim_beta", trim_beta, "must be in [0, 0.5)")
    K = deltas.shape[0]
    b = int(trim_beta * K)
    return deltas.sort(dim=0).values[b:K - b].mean(dim=0)


def pairwise_sq_distances(deltas: Tensor) -> Tensor:
    """``D_ij = ||delta_i - delta_j||^2`` as a (K, K) matrix (exact, not via the Gram trick)."""
    return torch.cdist(deltas, deltas, compute_mode="donot_use_mm_for_euclid_dist") ** 2


def krum_scores(sq_dist: Tensor, n_neighbours: int) -> Tensor:
    """Krum score of each client: the sum of its ``n_neighbours`` smallest squared distances to the others."""
    others = sq_dist + torch.diag(torch.full_like(sq_dist.diagonal(), float("inf")))
    return others.sort(dim=1).values[:, :n_neighbours].sum(dim=1)


def _krum_ranking(sq_dist: Tensor, n_neighbours: int, centrality: Tensor) -> Tensor:
    # Scored on one neighbour, the two ends of the closest pair tie exactly; breaking
    # ties by index would make the rule depend on the clients' order, so ties go to
    # the smaller centrality (sum of squared distances to all K updates), then index.
    by_centrality = centrality.argsort(stable=True)
    return by_centrality[krum_scores(sq_dist, n_neighbours)[by_centrality].argsort(stable=True)]


def krum(deltas: Tensor, weights: Tensor, *, n_byzantine: int) -> Tensor:
    """Krum (Blanchard et al., NeurIPS 2017): the single update closest to its neighbours.

    ``out = delta_k*`` with ``k* = argmin_k sum_{j in N_k} ||delta_k - delta_j||^2``,
    N_k the K - f - 2 nearest other updates, f = ``n_byzantine``. Exact score
    ties go to the more central update (smaller sum of squared distances to
    all K), not to the first listed. Weights are ignored.

    Tolerates f = ``n_byzantine`` malicious clients provided K > 2f + 2.

    >>> deltas = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])
    >>> krum(deltas, torch.ones(4), n_byzantine=0)
    tensor([0., 0.])
    """
    K = deltas.shape[0]
    f = _byzantine(n_byzantine, K, "Krum", "K > 2f + 2", lambda f: K > 2 * f + 2)
    sq_dist = pairwise_sq_distances(deltas)
    return deltas[_krum_ranking(sq_dist, K - f - 2, sq_dist.sum(dim=1))[0]].clone()


def multi_krum(deltas: Tensor, weights: Tensor, *, n_byzantine: int, multikrum_m: int = 0) -> Tensor:
    """Multi-Krum (Blanchard et al., NeurIPS 2017): the plain mean of the m best Krum scores.

    ``out = (1/m) sum_{k in S_m} delta_k``, S_m the m updates with the lowest
    Krum score (scores computed once, as in the paper). ``multikrum_m = 0``
    means m = K - f, the paper's choice in its experiments; m = 1 is Krum.
    Unweighted as in the paper (Flower's ``aggregate_krum`` weights the kept
    updates by their example counts, and its ``to_keep = 0`` means Krum).

    Tolerates f = ``n_byzantine`` malicious clients provided K > 2f + 2.

    >>> deltas = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [9.0, 9.0]])
    >>> multi_krum(deltas, torch.ones(4), n_byzantine=0, multikrum_m=3)
    tensor([0.6667, 0.6667])
    """
    K = deltas.shape[0]
    f = _byzantine(n_byzantine, K, "Multi-Krum", "K > 2f + 2", lambda f: K > 2 * f + 2)
    m = _int_knob("multikrum_m", multikrum_m, 0)
    if m > K:
        raise _reject("multikrum_m", multikrum_m, f"must be in [0, K] (K = {K} here; 0 means K - f)")
    m = m or K - f
    sq_dist = pairwise_sq_distances(deltas)
    return deltas[_krum_ranking(sq_dist, K - f - 2, sq_dist.sum(dim=1))[:m]].mean(dim=0)


def bulyan(deltas: Tensor, weights: Tensor, *, n_byzantine: int) -> Tensor:
    """Bulyan over Krum (El Mhamdi, Guerraoui, Rouault, ICML 2018).

    Pick theta = K - 2f updates by repeated Krum (each pick leaves the pool),
    then per coordinate average the beta = theta - 2f picked values closest to
    their median. Krum on a pool of r updates scores on ``max(1, r - f - 2)``
    neighbours, as Flower's ``aggregate_bulyan`` does. For f = 1, 2 the last
    picks are scored on one neighbour, where the closest pair ties: Flower takes
    the one listed first, we take the more central one (smaller sum of squared
    distances to all K), so the result does not depend on the clients' order.
    Weights are ignored.

    Tolerates f = ``n_byzantine`` malicious clients provided K ≥ 4f + 3.

    >>> deltas = torch.tensor([[0.0], [1.0], [2.0], [3.0], [50.0], [4.0], [-40.0]])
    >>> bulyan(deltas, torch.ones(7), n_byzantine=1)
    tensor([2.])
    """
    K = deltas.shape[0]
    f = _byzantine(n_byzantine, K, "Bulyan", "K ≥ 4f + 3", lambda f: K >= 4 * f + 3)
    theta, beta = K - 2 * f, K - 4 * f
    sq_dist = pairwise_sq_distances(deltas)
    centrality = sq_dist.sum(dim=1)
    pool, picked = list(range(K)), []
    for _ in range(theta):
        r = len(pool)
        ranking = _krum_ranking(sq_dist[pool][:, pool], min(max(1, r - f - 2), r - 1), centrality[pool])
        picked.append(pool.pop(int(ranking[0])))
    chosen = deltas[picked]
    median = coordinate_median(chosen, weights)
    closest = (chosen - median).abs().argsort(dim=0, stable=True)[:beta]
    return chosen.gather(0, closest).mean(dim=0)


def geometric_median(deltas: Tensor, weights: Tensor, *, gm_iters: int = 100, gm_eps: float = 1e-6) -> Tensor:
    """Weighted geometric median by smoothed Weiszfeld, RFA (Pillutla, Kakade, Harchaoui, IEEE TSP 2022).

    ``z <- sum_k b_k delta_k / sum_k b_k`` with ``b_k = n_k / max(gm_eps, ||z - delta_k||)``,
    ``gm_iters`` times from the weighted mean; it approaches
    ``argmin_z sum_k n_k ||z - delta_k||``. Weighted by ``weights``.

    Tolerates malicious clients holding less than half of the total weight
    (breakdown point 1/2; with equal weights up to ``ceil(K/2) - 1`` clients).

    >>> deltas = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [100.0, 100.0]], dtype=torch.float64)
    >>> geometric_median(deltas, torch.ones(4, dtype=torch.float64)).round(decimals=3)
    tensor([0.5000, 0.5000], dtype=torch.float64)
    """
    iters = _int_knob("gm_iters", gm_iters, 1)
    if not isinstance(gm_eps, (int, float)) or isinstance(gm_eps, bool) or not gm_eps > 0:
        raise _reject("gm_eps", gm_eps, "must be a number > 0")
    w = weights.to(deltas.dtype)
    z = (w / w.sum()) @ deltas
    for _ in range(iters):
        b = w / (deltas - z).norm(dim=1).clamp_min(gm_eps)
        z = (b / b.sum()) @ deltas
    return z


def centered_clipping(deltas: Tensor, weights: Tensor, *, cc_tau: float, cc_iters: int = 3) -> Tensor:
    """Centered clipping (Karimireddy, He, Jaggi, ICML 2021), stateless.

    ``v <- v + (1/K) sum_k (delta_k - v) min(1, tau / ||delta_k - v||)``,
    ``cc_iters`` times from v = 0 ("no change"); the paper starts from the
    previous round's server momentum, which a pure rule cannot keep. Each
    iteration moves v by at most ``cc_tau``, so ``||out|| ≤ cc_tau * cc_iters``:
    choose tau on the scale of honest updates. Unweighted, as in the paper.

    A malicious client shifts v by at most tau / K per iteration; the paper's
    guarantee covers a small Byzantine fraction (well below 1/2) with a tuned tau.

    >>> centered_clipping(torch.tensor([[1.0, 0.0], [0.0, 1.0], [100.0, 0.0]]), torch.ones(3), cc_tau=1.0, cc_iters=1)
    tensor([0.6667, 0.3333])
    """
    if not isinstance(cc_tau, (int, float)) or isinstance(cc_tau, bool) or not cc_tau > 0:
        raise _reject("cc_tau", cc_tau, "must be a number > 0")
    iters = _int_knob("cc_iters", cc_iters, 1)
    v = torch.zeros_like(deltas[0])
    for _ in range(iters):
        diff = deltas - v
        scale = (cc_tau / diff.norm(dim=1)).clamp(max=1.0)
        v = v + (scale[:, None] * diff).mean(dim=0)
    return v


AGGREGATORS: dict[str, Aggregator] = {
    "fedavg": fedavg,
    "unweighted_mean": unweighted_mean,
    "fedmedian": coordinate_median,
    "trimmed_mean": trimmed_mean,
    "krum": krum,
    "multi_krum": multi_krum,
    "bulyan": bulyan,
    "geometric_median": geometric_median,
    "centered_clipping": centered_clipping,
}


def get_aggregator(name: str) -> Aggregator:
    try:
        return AGGREGATORS[name]
    except KeyError:
        raise ValueError(f"federation.aggregator = {name!r} is not allowed: "
                         f"choose one of {', '.join(AGGREGATORS)}") from None


def aggregator_knobs(name: str) -> tuple[str, ...]:
    """Names of the rule's keyword-only knobs, which are also federation config fields.

    >>> aggregator_knobs("multi_krum")
    ('n_byzantine', 'multikrum_m')
    """
    return tuple(p.name for p in inspect.signature(get_aggregator(name)).parameters.values()
                 if p.kind is inspect.Parameter.KEYWORD_ONLY)


def aggregator_kwargs(name: str, source: Any) -> dict[str, Any]:
    """``{knob: getattr(source, knob)}`` for the rule's knobs; ``source`` is a FederationConfig-like object.

    >>> from types import SimpleNamespace
    >>> aggregator_kwargs("krum", SimpleNamespace(n_byzantine=2, trim_beta=0.1))
    {'n_byzantine': 2}
    """
    missing = [k for k in aggregator_knobs(name) if not hasattr(source, k)]
    if missing:
        raise TypeError(f"aggregator {name!r} needs federation field(s) {', '.join(missing)}, "
                        f"which {type(source).__name__} does not have")
    return {k: getattr(source, k) for k in aggregator_knobs(name)}
