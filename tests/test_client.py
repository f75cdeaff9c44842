"""Vectorised local training equals a per-client reference loop (float64)."""

import pytest
import torch

from fedlab_core.client import epoch_order, full_steps, local_train
from fedlab_core.models import make_model
from tensorkit import make_padded

SIZES = [1, 3, 7, 40, 2]   # very uneven, including clients smaller than one batch


def reference_client(model, theta, X, y, *, epochs, lr, batch_size, orders,
                     prox_mu=0.0, anchor=None, correction=None, max_steps=None):
    """Textbook SGD on one client with autograd: loop over epochs and batches.

    The FedProx term is written as a loss, mu/2 ||theta - anchor||^2, so autograd
    (not our closed form) gives its gradient."""
    theta = theta.clone()
    n = len(y)
    taken = 0
    for e in range(epochs):
        order = orders[e] if batch_size else torch.arange(n)
        step = batch_size or n
        for s in range(0, n, step):
            if max_steps is not None and taken >= max_steps:
                return theta, taken
            idx = order[s:s + step]
            t = theta.clone().requires_grad_(True)
            logits = model.apply(t.unsqueeze(0), X[idx].unsqueeze(0)).squeeze(0)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx])
            if prox_mu:
                loss = loss + prox_mu / 2 * ((t - anchor) ** 2).sum()
            (g,) = torch.autograd.grad(loss, t)
            if correction is not None:
                g = g + correction
            theta = theta - lr * g
            taken += 1
    return theta, taken


@pytest.mark.parametrize("name", ["logreg", "mlp"])
@pytest.mark.parametrize("batch_size", [0, 4])
def test_vectorised_equals_per_client_loop(name, batch_size):
    gen = torch.Generator().manual_seed(1)
    d, epochs, lr = 3, 3, 0.3
    X, y, n = make_padded(SIZES, d, gen)
    model = make_model(name, n_features=d, hidden=5)
    theta0 = model.init(torch.Generator().manual_seed(2), torch.float64)
    if name == "logreg":
        theta0 = theta0 + 0.1  # away from zero so every coordinate matters
    thetas = theta0.expand(len(SIZES), -1)

    out, loss, _ = local_train(model, thetas, X, y, n, epochs=epochs, lr=lr, batch_size=batch_size,
                            generator=torch.Generator().manual_seed(3))
    # replay the very same shuffles for the reference loop
    replay = torch.Generator().manual_seed(3)
    mask = torch.arange(X.shape[1]).unsqueeze(0) < n.unsqueeze(1)
    orders = [epoch_order(mask, generator=replay) for _ in range(epochs)] if batch_size else None
    for k, nk in enumerate(SIZES):
        per_client_orders = [o[k, :nk] for o in orders] if orders else None
        ref, _ = reference_client(model, theta0, X[k, :nk], y[k, :nk], epochs=epochs, lr=lr,
                                  batch_size=batch_size, orders=per_client_orders)
        torch.testing.assert_close(out[k], ref, rtol=1e-12, atol=1e-12)
    assert torch.isfinite(loss).all()
    if batch_size == 0:  # full batch: the loss reported is the starting model's training loss
        for k, nk in enumerate(SIZES):
            start = torch.nn.functional.binary_cross_entropy_with_logits(
                model.apply(theta0.unsqueeze(0), X[k:k + 1, :nk]).squeeze(0), y[k, :nk])
            torch.testing.assert_close(loss[k], start)


def test_padding_does_not_leak():
    """Garbage in padded rows must not change any client's result."""
    gen = torch.Generator().manual_seed(0)
    X, y, n = make_padded(SIZES, 2, gen)
    model = make_model("logreg", n_features=2)
    thetas = torch.zeros(len(SIZES), 3, dtype=torch.float64)
    a, _, _ = local_train(model, thetas, X, y, n, epochs=2, lr=0.1, batch_size=3,
                       generator=torch.Generator().manual_seed(5))
    mask = torch.arange(X.shape[1]).unsqueeze(0) < n.unsqueeze(1)
    X2 = X.masked_fill(~mask.unsqueeze(-1), 1e6)
    y2 = y.masked_fill(~mask, 1.0)
    b, _, _ = local_train(model, thetas, X2, y2, n, epochs=2, lr=0.1, batch_size=3,
                       generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_logreg_gradient_matches_autograd():
    gen = torch.Generator().manual_seed(4)
    X, y, n = make_padded([5, 2], 3, gen)
    model = make_model("logreg", n_features=3)
    thetas = torch.randn(2, 4, generator=gen, dtype=torch.float64)
    weight = (torch.arange(5).unsqueeze(0) < n.unsqueeze(1)).double() / n.unsqueeze(1)
    loss, grad = model.loss_and_grad(thetas, X, y, weight)
    t = thetas.clone().requires_grad_(True)
    ref_loss = (torch.nn.functional.binary_cross_entropy_with_logits(
        model.apply(t, X), y, reduction="none") * weight).sum(-1)
    (ref_grad,) = torch.autograd.grad(ref_loss.sum(), t)
    torch.testing.assert_close(loss, ref_loss.detach())
    torch.testing.assert_close(grad, ref_grad)


def test_minibatch_needs_generator():
    model = make_model("logreg", n_features=1)
    with pytest.raises(ValueError, match="generator"):
        local_train(model, torch.zeros(1, 2), torch.zeros(1, 4, 1), torch.zeros(1, 4),
                    torch.tensor([4]), epochs=1, lr=0.1, batch_size=2)


@pytest.mark.parametrize("batch_size", [0, 4])
def test_fedprox_scaffold_and_stragglers_equal_the_reference_loop(batch_size):
    """The proximal term, a control-variate correction and step budgets, all at once."""
    gen = torch.Generator().manual_seed(7)
    d, epochs, lr, mu = 3, 3, 0.3, 0.5
    X, y, n = make_padded(SIZES, d, gen)
    K = len(SIZES)
    model = make_model("logreg", n_features=d)
    theta0 = torch.randn(d + 1, generator=gen, dtype=torch.float64)
    anchor = torch.randn(d + 1, generator=gen, dtype=torch.float64)
    correction = torch.randn(K, d + 1, generator=gen, dtype=torch.float64) * 0.1
    max_steps = torch.tensor([1, 2, 100, 5, 3])
    out = local_train(model, theta0.expand(K, -1), X, y, n, epochs=epochs, lr=lr,
                      batch_size=batch_size, generator=torch.Generator().manual_seed(3),
                      prox_mu=mu, anchor=anchor, correction=correction, max_steps=max_steps)
    replay = torch.Generator().manual_seed(3)
    mask = torch.arange(X.shape[1]).unsqueeze(0) < n.unsqueeze(1)
    orders = [epoch_order(mask, generator=replay) for _ in range(epochs)] if batch_size else None
    for k, nk in enumerate(SIZES):
        ref, taken = reference_client(
            model, theta0, X[k, :nk], y[k, :nk], epochs=epochs, lr=lr, batch_size=batch_size,
            orders=[o[k, :nk] for o in orders] if orders else None, prox_mu=mu, anchor=anchor,
            correction=correction[k], max_steps=int(max_steps[k]))
        torch.testing.assert_close(out.thetas[k], ref, rtol=1e-12, atol=1e-12)
        assert int(out.steps[k]) == taken


def test_steps_count_every_local_step():
    model = make_model("logreg", n_features=2)
    X, y, n = make_padded(SIZES, 2, torch.Generator().manual_seed(0))
    out = local_train(model, torch.zeros(len(SIZES), 3, dtype=torch.float64), X, y, n, epochs=2,
                      lr=0.1, batch_size=3, generator=torch.Generator().manual_seed(1))
    # 2 epochs of ceil(n_k / 3) batches
    assert out.steps.tolist() == [2 * -(-s // 3) for s in SIZES]
    assert full_steps(n, epochs=2, batch_size=3).tolist() == out.steps.tolist()


def test_fedprox_needs_its_anchor():
    model = make_model("logreg", n_features=1)
    with pytest.raises(ValueError, match="anchor"):
        local_train(model, torch.zeros(1, 2), torch.zeros(1, 2, 1), torch.zeros(1, 2),
                    torch.tensor([2]), epochs=1, lr=0.1, prox_mu=0.1)
