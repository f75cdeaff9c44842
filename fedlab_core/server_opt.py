"""Server optimisers: an ``init``/``step`` pair applied to the aggregate update.

The server treats the aggregated client update as a pseudo-gradient
``-Delta`` (Reddi et al., "Adaptive Federated Optimization", ICLR 2021). Plain
FedAvg is server SGD with learning rate 1: ``theta <- theta + eta_s * Delta``.
Later labs add momentum and Adam-style servers as further pairs.

>>> import torch
>>> opt = server_sgd(lr=0.5)
>>> state = opt.init(torch.zeros(2))
>>> theta, state = opt.step(torch.zeros(2), torch.tensor([2.0, -2.0]), state)
>>> theta
tensor([ 1., -1.])
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch

Tensor = torch.Tensor


class ServerOptimizer(NamedTuple):
    init: Callable[[Tensor], Any]
    step: Callable[[Tensor, Tensor, Any], tuple[Tensor, Any]]


def server_sgd(*, lr: float = 1.0) -> ServerOptimizer:
    """``theta <- theta + lr * Delta``; ``lr = 1`` is FedAvg."""
    def init(theta: Tensor) -> None:
        return None

    def step(theta: Tensor, delta: Tensor, state: None) -> tuple[Tensor, None]:
        return theta + lr * delta, state

    return ServerOptimizer(init, step)
