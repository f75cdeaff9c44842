"""Aggregation rules: ``(deltas (K, P), weights (K,)) -> (P,)``.

Each rule is a short pure function over the clients' updates
``delta_k = theta_k^local - theta^global`` and their weights (the number of
training rows by default). ``AGGREGATORS`` maps the names used in configs to
the functions; later labs add robust rules to the same registry, and one
contract test runs over every entry (tests/test_aggregate.py).

>>> import torch
>>> deltas = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
>>> fedavg(deltas, torch.tensor([1.0, 3.0]))
tensor([2.5000, 3.0000])
>>> unweighted_mean(deltas, torch.tensor([1.0, 3.0]))
tensor([2., 2.])
"""

from __future__ import annotations

from typing import Callable

import torch

Tensor = torch.Tensor
Aggregator = Callable[..., Tensor]


def fedavg(deltas: Tensor, weights: Tensor) -> Tensor:
    """Sample-weighted mean, FedAvg (McMahan et al., AISTATS 2017).

    ``sum_k n_k delta_k / sum_k n_k``: every patient counts the same, so a large
    hospital pulls the model harder than a small one.
    """
    w = weights.to(deltas.dtype)
    return (w / w.sum()) @ deltas


def unweighted_mean(deltas: Tensor, weights: Tensor) -> Tensor:
    """Plain mean ``(1/K) sum_k delta_k``: every hospital counts the same, whatever its size."""
    return deltas.mean(dim=0)


AGGREGATORS: dict[str, Aggregator] = {
    "fedavg": fedavg,
    "unweighted_mean": unweighted_mean,
}


def get_aggregator(name: str) -> Aggregator:
    try:
        return AGGREGATORS[name]
    except KeyError:
        raise ValueError(f"federation.aggregator = {name!r} is not allowed: "
                         f"choose one of {', '.join(AGGREGATORS)}") from None
