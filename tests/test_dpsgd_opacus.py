"""DP-SGD against Opacus, the reference implementation (Yousefpour et al. 2021).

The same weights in an ``nn.Module`` (``nn.Linear`` for logistic regression,
Linear-ReLU-Linear for the MLP): Opacus' per-sample gradients must equal
ours, its clipped sum ours, and the noise its ``DPOptimizer`` adds to the
averaged gradient must have the same standard deviation as ours, σC/B.

Pitfall (docs/privacy reference): ``GradSampleModule``'s ``loss_reduction``
must match the loss, else per-sample gradients come out scaled by the batch
size; here a summed loss with ``loss_reduction="sum"``.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

opacus = pytest.importorskip("opacus")
# Opacus' hooks warn that no *input* requires grad; only the weights need it here
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")
from opacus import GradSampleModule  # noqa: E402
from opacus.optimizers import DPOptimizer  # noqa: E402

from fedlab_core.models import make_model  # noqa: E402
from fedlab_core.privacy.dpsgd import clipped_grad_sum, dp_local_train  # noqa: E402

D, HIDDEN, BATCH = 4, 6, 12


def to_module(name: str, theta: torch.Tensor) -> nn.Module:
    """Our flat theta as an ``nn.Module`` (float64). nn.Linear stores weight as (out, in)."""
    if name == "logreg":
        module = nn.Linear(D, 1).double()
        with torch.no_grad():
            module.weight.copy_(theta[:D].view(1, D))
            module.bias.copy_(theta[D:])
        return module
    W1, b1, w2, b2 = torch.split(theta, [D * HIDDEN, HIDDEN, HIDDEN, 1])
    module = nn.Sequential(nn.Linear(D, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1)).double()
    with torch.no_grad():
        module[0].weight.copy_(W1.view(D, HIDDEN).T)   # ours: W1 (d, h), x @ W1
        module[0].bias.copy_(b1)
        module[2].weight.copy_(w2.view(1, HIDDEN))
        module[2].bias.copy_(b2)
    return module


def flat_grad_samples(name: str, module: nn.Module) -> torch.Tensor:
    """Opacus' per-sample gradients in our flat layout: ``(B, P)``."""
    if name == "logreg":
        return torch.cat([module.weight.grad_sample.flatten(1), module.bias.grad_sample], dim=1)
    first, last = module[0], module[2]
    return torch.cat([first.weight.grad_sample.transpose(1, 2).flatten(1),   # (B, h, d) -> (B, d*h)
                      first.bias.grad_sample,
                      last.weight.grad_sample.flatten(1),
                      last.bias.grad_sample], dim=1)


def one_hospital(name: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    model = make_model(name, n_features=D, hidden=HIDDEN)
    theta = model.init(gen, torch.float64) + 0.2 * torch.randn(model.n_params, generator=gen,
                                                               dtype=torch.float64)
    X = 2 * torch.randn(BATCH, D, generator=gen, dtype=torch.float64)
    y = (torch.rand(BATCH, generator=gen, dtype=torch.float64) < 0.5).double()
    return model, theta, X, y


def opacus_grad_samples(name, theta, X, y):
    module = GradSampleModule(to_module(name, theta), loss_reduction="sum")
    loss = F.binary_cross_entropy_with_logits(module(X).squeeze(-1), y, reduction="sum")
    loss.backward()
    return module, flat_grad_samples(name, module._module)


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_per_example_grads_equal_opacus_grad_samples(name):
    model, theta, X, y = one_hospital(name)
    _, theirs = opacus_grad_samples(name, theta, X, y)
    ours = model.per_example_grads(theta.unsqueeze(0), X.unsqueeze(0), y.unsqueeze(0))[0]
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model.per_example_grad_norms(theta.unsqueeze(0), X.unsqueeze(0),
                                                            y.unsqueeze(0))[0],
                               theirs.norm(dim=1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_clipped_sum_equals_opacus_dpoptimizer_without_noise(name):
    model, theta, X, y = one_hospital(name)
    module, per_sample = opacus_grad_samples(name, theta, X, y)
    clip = float(per_sample.norm(dim=1).median())   # about half the examples clipped
    optimizer = DPOptimizer(torch.optim.SGD(module.parameters(), lr=1.0), noise_multiplier=0.0,
                            max_grad_norm=clip, expected_batch_size=BATCH, loss_reduction="sum")
    optimizer.pre_step()   # clip, sum, (no) noise: the result lands in p.grad
    theirs = flat_grad_samples_from_grad(name, module._module)
    valid = torch.ones(1, BATCH, dtype=torch.float64)
    for per_example in (False, True):
        ours = clipped_grad_sum(model, theta.unsqueeze(0), X.unsqueeze(0), y.unsqueeze(0), valid,
                                clip=clip, per_example=per_example)[0]
        # Opacus divides by ||g|| + 1e-6, we by ||g||: a relative difference of ~1e-6
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def flat_grad_samples_from_grad(name: str, module: nn.Module) -> torch.Tensor:
    if name == "logreg":
        return torch.cat([module.weight.grad.flatten(), module.bias.grad])
    first, last = module[0], module[2]
    return torch.cat([first.weight.grad.T.flatten(), first.bias.grad, last.weight.grad.flatten(),
                      last.bias.grad])


# ---- noise -----------------------------------------------------------------
SIGMA, CLIP, EXPECTED_BATCH, N_FEATURES = 2.0, 1.5, 100, 49


def zero_gradient_data(rows: int):
    """X = 0, y = 1/2 at theta = 0: every example's gradient is exactly 0, so a step is pure noise."""
    return (torch.zeros(rows, N_FEATURES, dtype=torch.float64),
            torch.full((rows,), 0.5, dtype=torch.float64))


def opacus_noise_draws(draws: int) -> torch.Tensor:
    module = GradSampleModule(nn.Linear(N_FEATURES, 1).double(), loss_reduction="mean")
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()
    optimizer = DPOptimizer(torch.optim.SGD(module.parameters(), lr=1.0), noise_multiplier=SIGMA,
                            max_grad_norm=CLIP, expected_batch_size=EXPECTED_BATCH,
                            loss_reduction="mean", generator=torch.Generator().manual_seed(0))
    X, y = zero_gradient_data(EXPECTED_BATCH)
    out = []
    for _ in range(draws):
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(module(X).squeeze(-1), y).backward()
        optimizer.pre_step()   # clip, add noise, divide by the expected batch size
        out.append(torch.cat([p.grad.flatten() for p in module.parameters()]))
    return torch.stack(out)


def our_noise_draws(draws: int) -> torch.Tensor:
    # one step for each of `draws` clients with n = 4B rows: q = 1/4, expected batch B
    model = make_model("logreg", n_features=N_FEATURES)
    X, y = zero_gradient_data(4 * EXPECTED_BATCH)
    out = dp_local_train(model, torch.zeros(draws, model.n_params, dtype=torch.float64),
                         X.expand(draws, -1, -1), y.expand(draws, -1),
                         torch.full((draws,), 4 * EXPECTED_BATCH), epochs=1, lr=1.0,
                         batch_size=EXPECTED_BATCH, clip=CLIP, noise_multiplier=SIGMA,
                         generator=torch.Generator().manual_seed(1),
                         max_steps=torch.ones(draws, dtype=torch.long))
    return -out.thetas   # theta = 0 - lr * noisy gradient


def test_noise_std_on_the_averaged_gradient_matches_opacus():
    draws = 200                                   # x 50 coordinates = 10 000 samples each
    theirs = opacus_noise_draws(draws)   # measured 0.0302
    ours = our_noise_draws(draws)        # measured 0.0301
    expected = SIGMA * CLIP / EXPECTED_BATCH      # 0.030
    # the std estimate of 10 000 Gaussian samples has relative error ~0.7 %
    assert float(theirs.std()) == pytest.approx(expected, rel=0.04)
    assert float(ours.std()) == pytest.approx(expected, rel=0.04)
    assert float(ours.std()) / float(theirs.std()) == pytest.approx(1.0, rel=0.05)
    for noise in (ours, theirs):
        assert abs(float(noise.mean())) < 4 * expected / math.sqrt(noise.numel())
