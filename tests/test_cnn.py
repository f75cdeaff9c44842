"""The vectorised CNN trains every client exactly as a per-client ``nn.Module`` loop would."""

import pytest
import torch
from torch import nn

from fedlab_core.client import epoch_order, local_train
from fedlab_core.models import make_model

SIDE, CHANNELS = 8, 2
SIZES = [1, 5, 9, 3]   # uneven: padding rows, batches of one image, a smaller last batch


def reference_net(theta: torch.Tensor) -> nn.Sequential:
    """PyTorch's own layers, loaded with the flat parameters of one client."""
    c = CHANNELS
    net = nn.Sequential(
        nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c, 2 * c, 3, padding=1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU(),
        nn.MaxPool2d(2), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(2 * c, 1),
    ).double()
    conv1, bn1, conv2, bn2, fc = net[0], net[1], net[4], net[5], net[10]
    pieces = [conv1.weight, bn1.weight, bn1.bias, conv2.weight, bn2.weight, bn2.bias,
              fc.weight, fc.bias, bn1.running_mean, bn1.running_var, bn2.running_mean,
              bn2.running_var]
    start = 0
    with torch.no_grad():
        for p in pieces:
            p.copy_(theta[start:start + p.numel()].view_as(p))
            start += p.numel()
    assert start == theta.numel()
    return net


def flat(net: nn.Sequential) -> torch.Tensor:
    conv1, bn1, conv2, bn2, fc = net[0], net[1], net[4], net[5], net[10]
    return torch.cat([p.detach().flatten() for p in (
        conv1.weight, bn1.weight, bn1.bias, conv2.weight, bn2.weight, bn2.bias, fc.weight, fc.bias,
        bn1.running_mean, bn1.running_var, bn2.running_mean, bn2.running_var)])


def train_reference(theta, X, y, *, epochs, lr, batch_size, orders, prox_mu=0.0):
    net = reference_net(theta)
    anchor = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    n = len(y)
    for e in range(epochs):
        order = orders[e] if batch_size else torch.arange(n)
        step = batch_size or n
        for s in range(0, n, step):
            idx = order[s:s + step]
            net.train()
            logits = net(X[idx].view(-1, 1, SIDE, SIDE)).squeeze(1)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y[idx])
            if prox_mu:
                loss = loss + prox_mu / 2 * sum(((p - a) ** 2).sum()
                                                for p, a in zip(net.parameters(), anchor))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def data(gen):
    K, n_max = len(SIZES), max(SIZES)
    X = torch.rand(K, n_max, SIDE * SIDE, generator=gen, dtype=torch.float64)
    y = (torch.rand(K, n_max, generator=gen) < 0.5).double()
    n = torch.tensor(SIZES)
    pad = torch.arange(n_max).unsqueeze(0) >= n.unsqueeze(1)
    X[pad] = 7.0   # garbage in the padding: it must not reach any statistic
    y[pad] = 1.0
    return X, y, n


@pytest.mark.parametrize("batch_size", [0, 4])
@pytest.mark.parametrize("prox_mu", [0.0, 0.5])
def test_vectorised_cnn_equals_per_client_modules(batch_size, prox_mu):
    gen = torch.Generator().manual_seed(0)
    X, y, n = data(gen)
    model = make_model("cnn", n_features=SIDE * SIDE, channels=CHANNELS)
    theta0 = model.init(torch.Generator().manual_seed(1), torch.float64)
    epochs, lr = 3, 0.2
    extra = {"prox_mu": prox_mu, "anchor": theta0} if prox_mu else {}
    out = local_train(model, theta0.expand(len(SIZES), -1), X, y, n, epochs=epochs, lr=lr,
                      batch_size=batch_size, generator=torch.Generator().manual_seed(2), **extra)
    replay = torch.Generator().manual_seed(2)
    mask = torch.arange(X.shape[1]).unsqueeze(0) < n.unsqueeze(1)
    orders = [epoch_order(mask, generator=replay) for _ in range(epochs)] if batch_size else None
    for k, nk in enumerate(SIZES):
        net = train_reference(theta0, X[k, :nk], y[k, :nk], epochs=epochs, lr=lr,
                              batch_size=batch_size, prox_mu=prox_mu,
                              orders=[o[k, :nk] for o in orders] if orders else None)
        # parameters and running statistics after training
        torch.testing.assert_close(out.thetas[k], flat(net), rtol=1e-10, atol=1e-10)
        # and the test-time forward pass (running statistics, not the batch's)
        net.eval()
        ref_logits = net(X[k, :nk].view(-1, 1, SIDE, SIDE)).squeeze(1)
        logits = model.apply(out.thetas[k:k + 1], X[k:k + 1, :nk]).squeeze(0)
        torch.testing.assert_close(logits, ref_logits.detach(), rtol=1e-10, atol=1e-10)


def test_running_statistics_have_no_gradient_and_follow_the_batch():
    model = make_model("cnn", n_features=SIDE * SIDE, channels=CHANNELS)
    X, y, n = data(torch.Generator().manual_seed(3))
    K = len(SIZES)
    theta = model.init(torch.Generator().manual_seed(4), torch.float64).expand(K, -1)
    weight = (torch.arange(X.shape[1]).unsqueeze(0) < n.unsqueeze(1)).double() / n.unsqueeze(1)
    state = torch.empty(K, model.state.stop - model.state.start, dtype=torch.float64)
    _, grad = model.loss_and_grad(theta, X, y, weight, state_out=state)
    assert grad[:, model.state].abs().max() == 0
    # first layer: the batch mean of each channel is the mean of its conv output over real rows
    c = CHANNELS
    w = theta[0, :c * 9].view(c, 1, 3, 3)
    k, nk = 2, SIZES[2]
    conv = torch.nn.functional.conv2d(X[k, :nk].view(-1, 1, SIDE, SIDE), w, padding=1)
    torch.testing.assert_close(state[k, :c], conv.mean((0, 2, 3)))
    torch.testing.assert_close(state[k, c:2 * c], conv.var((0, 2, 3)))


def test_cnn_needs_square_images():
    with pytest.raises(ValueError, match="square images"):
        make_model("cnn", n_features=10)
