"""Models as functions of a flat parameter vector, batched over clients.

A model here is not an ``nn.Module`` but a pair of pure functions over a flat
parameter vector ``theta: (P,)``. The K clients' models are one tensor
``thetas: (K, P)`` and their data one padded tensor ``X: (K, n, d)``, so a
single batched matrix product evaluates every client at once ("clients are a
batch", DESIGN.md).

- ``apply(thetas, X) -> logits``: ``(K, P), (K, n, d) -> (K, n)``.
- ``loss_and_grad(thetas, X, y, weight, with_loss=True) -> (loss (K,), grad (K, P))``:
  the weighted mean binary cross-entropy of each client and its gradient
  (``loss`` is ``None`` when ``with_loss=False``, which saves a pass).
  ``weight: (K, n)`` is 1/n_k on a client's real rows and 0 on padding, so
  padded rows add nothing.
- ``per_example_grads(thetas, X, y) -> (K, n, P)``: the gradient of each
  example's own (unweighted) binary cross-entropy, for DP-SGD's per-example
  clipping (``fedlab_core.privacy.dpsgd``). Padded rows get a gradient too;
  the caller masks them.
- ``per_example_grad_norms(thetas, X, y) -> (K, n)``: the L2 norms of those
  gradients, in closed form without building the ``(K, n, P)`` tensor (how
  DP-SGD clips fast, and what a learner plots to choose the clip norm C).

Logistic regression has a closed-form gradient (two batched products per
step, the fastest thing possible); the MLP's gradient comes from autograd,
one backward pass for all clients: since client k's loss depends only on
``thetas[k]``, the gradient of the *sum* of the client losses is every
client's own gradient, row by row. Per-example gradients are closed form for
logistic regression, ``(sigmoid(z_i) - y_i) [x_i, 1]``; for the MLP they come
from ``torch.func``: ``grad`` of one example's loss as a function of the flat
``theta``, ``vmap``-ed over the examples and then over the clients. Their
norms need no per-example gradient at all: a layer's weight gradient for one
example is an outer product ``a_i ⊗ delta_i``, whose norm is
``||a_i|| ||delta_i||`` (Goodfellow, "Efficient per-example gradient
computations", 2015), so both models get their norms from one forward pass.

>>> import torch
>>> m = make_model("logreg", n_features=3)
>>> m.n_params
4
>>> thetas = torch.zeros(2, m.n_params)
>>> m.apply(thetas, torch.ones(2, 5, 3)).shape
torch.Size([2, 5])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def weighted_bce(logits: Tensor, y: Tensor, weight: Tensor) -> Tensor:
    """Per-client weighted binary cross-entropy: ``sum_i w_ki * bce(z_ki, y_ki)``, shape (K,)."""
    return (F.binary_cross_entropy_with_logits(logits, y, reduction="none") * weight).sum(-1)


@dataclass(frozen=True)
class Model:
    """A model family: how to initialise, apply and differentiate flat parameters."""

    name: str
    n_features: int
    n_params: int
    apply: Callable[[Tensor, Tensor], Tensor]
    init: Callable[[torch.Generator, torch.dtype], Tensor]
    loss_and_grad: Callable[..., tuple[Tensor | None, Tensor]]
    per_example_grads: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None
    per_example_grad_norms: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None
    # which entries of theta are what, for personalisation (``fedlab_core.personalise``):
    # ``head`` the output layer (FedPer keeps it at home), ``norm`` batch norm's
    # gamma, beta and running statistics (FedBN keeps them at home); bool (P,)
    head: Tensor | None = None
    norm: Tensor | None = None
    # entries moved by local training without a gradient (batch norm's running
    # statistics): ``loss_and_grad(..., state_out=)`` writes the batch's values
    state: slice | None = None


def _per_example_grads_by_vmap(apply: Callable[[Tensor, Tensor], Tensor]):
    """``(thetas (K, P), X (K, n, d), y (K, n)) -> (K, n, P)`` for any ``apply``, via ``torch.func``.

    One example's loss is written as a function of one flat ``theta``, so
    ``grad`` differentiates exactly what ``apply`` computes; the inner
    ``vmap`` runs it over a client's examples (sharing that client's theta),
    the outer over the clients.
    """
    def example_loss(theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        logit = apply(theta.unsqueeze(0), x.view(1, 1, -1)).view(())
        return F.binary_cross_entropy_with_logits(logit, y)

    over_examples = torch.func.vmap(torch.func.grad(example_loss), in_dims=(None, 0, 0))
    over_clients = torch.func.vmap(over_examples, in_dims=(0, 0, 0))

    def per_example_grads(thetas: Tensor, X: Tensor, y: Tensor) -> Tensor:
        return over_clients(thetas, X, y)

    return per_example_grads


# ---- logistic regression --------------------------------------------------
def _logreg(n_features: int) -> Model:
    d = n_features

    def apply(thetas: Tensor, X: Tensor) -> Tensor:
        # z_kn = w_k · x_kn + b_k, as one batched product. Written as w^T X^T:
        # MKL's batched kernel runs this form ~1.4x faster than X w (measured).
        return torch.bmm(thetas[:, :d].unsqueeze(1), X.transpose(1, 2)).squeeze(1) + thetas[:, d:]

    def loss_and_grad(thetas, X, y, weight, with_loss=True):
        z = apply(thetas, X)
        # d/dz of BCE-with-logits is sigmoid(z) - y; weights average over real rows
        r = (torch.sigmoid(z) - y) * weight
        grad_w = torch.bmm(r.unsqueeze(1), X).squeeze(1)
        grad = torch.cat([grad_w, r.sum(-1, keepdim=True)], dim=1)
        return (weighted_bce(z, y, weight) if with_loss else None), grad

    def per_example_grads(thetas, X, y):
        r = (torch.sigmoid(apply(thetas, X)) - y).unsqueeze(-1)
        return torch.cat([r * X, r], dim=-1)

    def per_example_grad_norms(thetas, X, y):
        # ||r_i [x_i, 1]|| = |r_i| sqrt(||x_i||^2 + 1)
        r = torch.sigmoid(apply(thetas, X)) - y
        return r.abs() * (X.square().sum(-1) + 1).sqrt()

    def init(gen: torch.Generator, dtype: torch.dtype) -> Tensor:
        # a convex model: start every run from zero (predicts 50 %)
        return torch.zeros(d + 1, dtype=dtype)

    return Model("logreg", d, d + 1, apply, init, loss_and_grad, per_example_grads,
                 per_example_grad_norms)


# ---- one-hidden-layer MLP -------------------------------------------------
def _mlp(n_features: int, hidden: int) -> Model:
    d, h = n_features, hidden
    sizes = (d * h, h, h, 1)  # W1, b1, w2, b2
    offsets = [0]
    for s in sizes:
        offsets.append(offsets[-1] + s)

    def unpack(thetas: Tensor):
        K = thetas.shape[0]
        W1 = thetas[:, offsets[0]:offsets[1]].view(K, d, h)
        b1 = thetas[:, offsets[1]:offsets[2]].unsqueeze(1)
        w2 = thetas[:, offsets[2]:offsets[3]].unsqueeze(-1)
        b2 = thetas[:, offsets[3]:offsets[4]]
        return W1, b1, w2, b2

    def apply(thetas: Tensor, X: Tensor) -> Tensor:
        W1, b1, w2, b2 = unpack(thetas)
        hidden_act = torch.relu(torch.baddbmm(b1, X, W1))
        return torch.bmm(hidden_act, w2).squeeze(-1) + b2

    def loss_and_grad(thetas, X, y, weight, with_loss=True):
        with torch.enable_grad():
            t = thetas.detach().requires_grad_(True)
            loss = weighted_bce(apply(t, X), y, weight)
            (grad,) = torch.autograd.grad(loss.sum(), t)
        return loss.detach(), grad

    def per_example_grad_norms(thetas, X, y):
        W1, b1, w2, b2 = unpack(thetas)
        pre = torch.baddbmm(b1, X, W1)
        hidden_act = torch.relu(pre)
        r = torch.sigmoid(torch.bmm(hidden_act, w2).squeeze(-1) + b2) - y
        # backprop by hand: the output layer sees [a_i, 1] times r_i, the hidden
        # layer [x_i, 1] times delta_i = r_i w2 * relu'(pre_i) (relu'(0) = 0, as autograd)
        delta = r.unsqueeze(-1) * w2.transpose(1, 2) * (pre > 0)
        sq = (r.square() * (hidden_act.square().sum(-1) + 1)
              + delta.square().sum(-1) * (X.square().sum(-1) + 1))
        return sq.sqrt()

    def init(gen: torch.Generator, dtype: torch.dtype) -> Tensor:
        # PyTorch's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        def uniform(n, fan_in):
            bound = 1.0 / math.sqrt(fan_in)
            return (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * bound

        theta = torch.cat([uniform(d * h, d), uniform(h, d), uniform(h, h), uniform(1, h)])
        return theta.to(dtype)

    head = torch.zeros(sum(sizes), dtype=torch.bool)
    head[offsets[2]:] = True
    return Model("mlp", d, sum(sizes), apply, init, loss_and_grad, _per_example_grads_by_vmap(apply),
                 per_example_grad_norms, head=head)


def make_model(name: str, *, n_features: int, hidden: int = 16, channels: int = 8) -> Model:
    """Build a model family by name: ``logreg``, ``mlp`` or ``cnn`` (square greyscale
    images flattened to ``n_features`` pixels; ``fedlab_core.cnn``)."""
    if name == "logreg":
        return _logreg(n_features)
    if name == "mlp":
        return _mlp(n_features, hidden)
    if name == "cnn":
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(f"model.name = 'cnn' is not allowed for {n_features} features: the CNN "
                             "reads square images (e.g. data.dataset = 'scans'); use logreg or mlp")
        from fedlab_core.cnn import cnn

        return cnn(image_size=side, channels=channels)
    raise ValueError(f"model.name = {name!r} is not allowed: choose one of logreg, mlp, cnn")
