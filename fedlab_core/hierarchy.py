"""Hierarchical aggregation: hospital -> region -> national server.

Each region aggregates its own hospitals' updates with the chosen rule; the
national server then averages the regions' results, each weighted by the
patients behind it. With FedAvg at both levels this equals flat FedAvg
exactly (the weights compose); with a robust rule it does not, which is the
point of comparing them: a region can, for instance, outvote a bad hospital
locally before the national average.

>>> import torch
>>> from fedlab_core.aggregate import fedavg
>>> deltas = torch.tensor([[1.0], [3.0], [10.0]]); weights = torch.tensor([1.0, 1.0, 2.0])
>>> hierarchical(deltas, weights, torch.tensor([0, 0, 1]), fedavg)
tensor([6.])
"""

from __future__ import annotations

from typing import Callable

import torch

Tensor = torch.Tensor


def assign_regions(n_clients: int, n_regions: int) -> Tensor:
    """Contiguous blocks of hospitals per region, sizes differing by at most one.

    >>> assign_regions(5, 2).tolist()
    [0, 0, 0, 1, 1]
    """
    if not 1 <= n_regions <= n_clients:
        raise ValueError(f"federation.n_regions = {n_regions} is not allowed: "
                         f"must be in [1, {n_clients}] (the number of hospitals)")
    return torch.arange(n_clients) * n_regions // n_clients


def hierarchical(deltas: Tensor, weights: Tensor, regions: Tensor,
                 aggregator: Callable[..., Tensor], **knobs) -> Tensor:
    """``sum_r W_r agg({delta_k : k in r}) / sum_r W_r`` with ``W_r = sum_{k in r} w_k``.

    ``regions[i]`` is the region of row ``i`` of ``deltas``; regions with no
    row this round are skipped.
    """
    results, totals = [], []
    for r in torch.unique(regions).tolist():
        rows = regions == r
        results.append(aggregator(deltas[rows], weights[rows], **knobs))
        totals.append(weights[rows].sum())
    totals = torch.stack(totals).to(deltas.dtype)
    return (totals / totals.sum()) @ torch.stack(results)
