"""Server optimisers: an ``init``/``step`` pair applied to the aggregate update.

The server treats the aggregated client update ``Delta`` (new minus old) as a
negative pseudo-gradient and feeds it to an optimiser (Reddi et al.,
"Adaptive Federated Optimization", ICLR 2021). FedAvg is server SGD with
learning rate 1; FedAvgM adds momentum (Hsu et al. 2019); FedAdam, FedYogi
and FedAdagrad keep per-coordinate second moments (Reddi et al., Algorithm 2).
Only the server changes: local training and aggregation stay as they are.

``init(theta) -> state`` and ``step(theta, delta, state) -> (theta, state)``
are pure: the state is returned, never mutated.

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
    """``theta <- theta + lr * Delta``; ``lr = 1`` is FedAvg (McMahan et al. 2017)."""
    def init(theta: Tensor) -> None:
        return None

    def step(theta: Tensor, delta: Tensor, state: None) -> tuple[Tensor, None]:
        return theta + lr * delta, state

    return ServerOptimizer(init, step)


def server_momentum(*, lr: float = 1.0, momentum: float = 0.9) -> ServerOptimizer:
    """FedAvgM (Hsu, Qi, Brown 2019): ``v <- momentum * v + Delta``; ``theta <- theta + lr * v``.

    >>> opt = server_momentum(lr=1.0, momentum=0.5)
    >>> theta, v = opt.step(torch.zeros(1), torch.ones(1), opt.init(torch.zeros(1)))
    >>> theta, v = opt.step(theta, torch.ones(1), v)
    >>> theta  # 1 + (0.5 * 1 + 1)
    tensor([2.5000])
    """
    def init(theta: Tensor) -> Tensor:
        return torch.zeros_like(theta)

    def step(theta: Tensor, delta: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        v = momentum * v + delta
        return theta + lr * v, v

    return ServerOptimizer(init, step)


class AdaptiveState(NamedTuple):
    m: Tensor   # first moment of Delta
    v: Tensor   # second-moment estimate


def _adaptive(second_moment: Callable[[Tensor, Tensor, float], Tensor], *, lr: float,
              beta1: float, beta2: float, tau: float, v0: float | None) -> ServerOptimizer:
    """Reddi et al. 2021, Algorithm 2: the three adaptive servers differ only in ``v``.

    ``m <- beta1 m + (1 - beta1) Delta``; ``v <- second_moment(v, Delta, beta2)``;
    ``theta <- theta + lr * m / (sqrt(v) + tau)``. The paper starts from
    ``m = 0, v >= tau^2``: ``v0 = None`` means ``tau ** 2``.
    """
    start = tau ** 2 if v0 is None else v0

    def init(theta: Tensor) -> AdaptiveState:
        return AdaptiveState(torch.zeros_like(theta), torch.full_like(theta, start))

    def step(theta: Tensor, delta: Tensor, state: AdaptiveState) -> tuple[Tensor, AdaptiveState]:
        m = beta1 * state.m + (1 - beta1) * delta
        v = second_moment(state.v, delta, beta2)
        return theta + lr * m / (v.sqrt() + tau), AdaptiveState(m, v)

    return ServerOptimizer(init, step)


def server_adam(*, lr: float = 0.1, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3,
                v0: float | None = None) -> ServerOptimizer:
    """FedAdam: ``v <- beta2 v + (1 - beta2) Delta^2`` (Reddi et al. 2021).

    Like the paper, no bias correction. Flower 1.42's ``FedAdam`` differs in two
    ways (tests/test_server_opt_flower.py pins both): it starts from ``v = 0``
    and multiplies ``lr`` in round t by ``sqrt(1 - beta2^(t+1)) / (1 - beta1^(t+1))``.
    """
    return _adaptive(lambda v, d, b2: b2 * v + (1 - b2) * d * d,
                     lr=lr, beta1=beta1, beta2=beta2, tau=tau, v0=v0)


def server_yogi(*, lr: float = 0.1, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3,
                v0: float | None = None) -> ServerOptimizer:
    """FedYogi: ``v <- v - (1 - beta2) Delta^2 sign(v - Delta^2)`` (Reddi et al. 2021;
    Zaheer et al. 2018): ``v`` moves towards ``Delta^2`` by an additive step, so
    one large update cannot blow it up as Adam's multiplicative average can."""
    return _adaptive(lambda v, d, b2: v - (1 - b2) * d * d * torch.sign(v - d * d),
                     lr=lr, beta1=beta1, beta2=beta2, tau=tau, v0=v0)


def server_adagrad(*, lr: float = 0.1, beta1: float = 0.9, tau: float = 1e-3,
                   v0: float | None = None) -> ServerOptimizer:
    """FedAdagrad: ``v <- v + Delta^2`` (Reddi et al. 2021): steps shrink as squared updates add up.

    The paper keeps the first moment ``m`` (``beta1``) here too; Flower 1.42's
    ``FedAdagrad`` fixes ``beta_1 = 0``. ``beta1=0`` reproduces Flower.
    """
    return _adaptive(lambda v, d, b2: v + d * d, lr=lr, beta1=beta1, beta2=0.0, tau=tau, v0=v0)


# name -> (builder, learning rate when the config leaves it unset)
SERVER_OPTIMIZERS: dict[str, tuple[Callable[..., ServerOptimizer], float]] = {
    "sgd": (server_sgd, 1.0),
    "momentum": (server_momentum, 1.0),
    "adam": (server_adam, 0.1),
    "yogi": (server_yogi, 0.1),
    "adagrad": (server_adagrad, 0.1),
}


def make_server_optimizer(federation) -> ServerOptimizer:
    """The server optimiser a ``FederationConfig`` asks for, with its knobs."""
    name = federation.server_optimizer
    if name not in SERVER_OPTIMIZERS:
        raise ValueError(f"federation.server_optimizer = {name!r} is not allowed: "
                         f"choose one of {', '.join(SERVER_OPTIMIZERS)}")
    build, default_lr = SERVER_OPTIMIZERS[name]
    lr = default_lr if federation.server_lr is None else federation.server_lr
    if name == "sgd":
        return build(lr=lr)
    if name == "momentum":
        return build(lr=lr, momentum=federation.server_momentum)
    if name == "adagrad":
        return build(lr=lr, beta1=federation.server_beta1, tau=federation.server_tau)
    return build(lr=lr, beta1=federation.server_beta1, beta2=federation.server_beta2,
                 tau=federation.server_tau)
