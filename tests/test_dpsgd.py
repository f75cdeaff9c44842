"""Sample-level DP-SGD: per-example gradients, clipping, noise, Poisson batches, steps.

Checks against trusted answers: autograd on one example at a time, a
per-client reference loop that replays the same Poisson batches, plain SGD
(which DP-SGD without noise or clipping is), and the binomial and Gaussian
distributions the mechanism promises. Opacus is in test_dpsgd_opacus.py.
"""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from fedlab_core.client import local_train
from fedlab_core.models import make_model
from fedlab_core.privacy import dpsgd
from fedlab_core.privacy.dpsgd import (clip_factors, clipped_grad_sum, dp_local_train, dp_steps,
                                       poisson_batches, sampling_rates, steps_per_epoch)
from tensorkit import make_padded

SIZES = [40, 7, 25, 1, 60]   # uneven, including a client smaller than a batch
MODELS = ["logreg", "mlp"]


def setup(name, *, sizes=SIZES, d=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    X, y, n = make_padded(sizes, d, gen)
    model = make_model(name, n_features=d, hidden=5)
    theta0 = model.init(torch.Generator().manual_seed(seed + 1), torch.float64) + 0.3
    return model, theta0.expand(len(sizes), -1).clone(), X, y, n


def example_grad(model, theta, x, y):
    """The textbook way: autograd on one example's loss."""
    t = theta.clone().requires_grad_(True)
    loss = F.binary_cross_entropy_with_logits(model.apply(t.unsqueeze(0), x.view(1, 1, -1)).view(()), y)
    (g,) = torch.autograd.grad(loss, t)
    return g


# ---- per-example gradients -------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_per_example_grads_equal_autograd_one_example_at_a_time(name):
    model, thetas, X, y, _ = setup(name)
    thetas = thetas + torch.randn(thetas.shape, generator=torch.Generator().manual_seed(5),
                                  dtype=thetas.dtype) * 0.1   # a different model per client
    grads = model.per_example_grads(thetas, X, y)
    assert grads.shape == (*y.shape, model.n_params)
    for k in range(X.shape[0]):
        for i in range(X.shape[1]):
            torch.testing.assert_close(grads[k, i], example_grad(model, thetas[k], X[k, i], y[k, i]),
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_mean_of_per_example_grads_is_the_batch_gradient(name):
    model, thetas, X, y, _ = setup(name)
    uniform = torch.full(y.shape, 1.0 / y.shape[1], dtype=y.dtype)
    _, grad = model.loss_and_grad(thetas, X, y, uniform)
    torch.testing.assert_close(model.per_example_grads(thetas, X, y).mean(1), grad,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_closed_form_norms_equal_norms_of_per_example_grads(name):
    model, thetas, X, y, _ = setup(name)
    torch.testing.assert_close(model.per_example_grad_norms(thetas, X, y),
                               model.per_example_grads(thetas, X, y).norm(dim=-1),
                               rtol=1e-12, atol=1e-12)


# ---- clipping --------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_clipped_examples_have_norm_at_most_clip(name):
    model, thetas, X, y, _ = setup(name)
    grads = model.per_example_grads(thetas, X, y)
    norms = grads.norm(dim=-1)
    clip = float(norms.median())   # half the examples get clipped
    clipped = grads * clip_factors(norms, clip=clip).unsqueeze(-1)
    assert (clipped.norm(dim=-1) <= clip * (1 + 1e-12)).all()
    small = norms <= clip
    torch.testing.assert_close(clipped[small], grads[small])        # the small ones untouched
    torch.testing.assert_close(clipped.norm(dim=-1)[~small], torch.full_like(norms[~small], clip))


@pytest.mark.parametrize("name", MODELS)
def test_ghost_clipping_equals_clipping_the_per_example_grads(name):
    model, thetas, X, y, n = setup(name)
    valid = (torch.arange(X.shape[1]) < n.unsqueeze(1)).double()
    for clip in (0.05, 0.3, 1e6):
        torch.testing.assert_close(
            clipped_grad_sum(model, thetas, X, y, valid, clip=clip),
            clipped_grad_sum(model, thetas, X, y, valid, clip=clip, per_example=True),
            rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_dp_local_train_is_the_same_without_closed_form_norms(name):
    model, thetas, X, y, n = setup(name)
    kwargs = dict(epochs=2, lr=0.2, batch_size=8, clip=0.3, noise_multiplier=0.7)
    fast = dp_local_train(model, thetas, X, y, n, generator=torch.Generator().manual_seed(4), **kwargs)
    reference = dp_local_train(dataclasses.replace(model, per_example_grad_norms=None), thetas, X, y, n,
                               generator=torch.Generator().manual_seed(4), **kwargs)
    torch.testing.assert_close(fast.thetas, reference.thetas, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fast.loss, reference.loss)


# ---- one step against a per-client reference loop --------------------------
def replay_one_step(n, q, seed):
    """The first step's batches, drawn as dp_local_train draws them (sampling comes first)."""
    return poisson_batches(n, q, n_steps=1, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", MODELS)
def test_one_step_equals_a_per_client_loop_on_the_same_batch(name):
    model, thetas, X, y, n = setup(name)
    lr, clip, batch_size = 0.5, 0.2, 8
    out = dp_local_train(model, thetas, X, y, n, epochs=1, lr=lr, batch_size=batch_size, clip=clip,
                         noise_multiplier=0.0, generator=torch.Generator().manual_seed(9),
                         max_steps=torch.ones(len(SIZES), dtype=torch.long))
    q = sampling_rates(n, batch_size=batch_size)
    batch = replay_one_step(n, q, 9)
    for k, nk in enumerate(SIZES):
        total = torch.zeros(model.n_params, dtype=torch.float64)
        for i in batch.rows[0, k, :batch.sizes[0, k]].tolist():
            g = example_grad(model, thetas[k], X[k, i], y[k, i])
            total += g * min(1.0, clip / float(g.norm()))
        expected_batch = float(q[k]) * nk
        torch.testing.assert_close(out.thetas[k], thetas[k] - lr * total / expected_batch,
                                   rtol=1e-12, atol=1e-12)
        # the clipping bound: one step moves at most lr * C * b / (q n)
        moved = float((out.thetas[k] - thetas[k]).norm())
        assert moved <= lr * clip * int(batch.sizes[0, k]) / expected_batch * (1 + 1e-12)


def test_loss_is_the_mean_unclipped_loss_of_the_sampled_rows():
    model, thetas, X, y, n = setup("logreg")
    out = dp_local_train(model, thetas, X, y, n, epochs=1, lr=0.1, batch_size=8, clip=0.01,
                         noise_multiplier=3.0, generator=torch.Generator().manual_seed(2),
                         max_steps=torch.ones(len(SIZES), dtype=torch.long))
    batch = replay_one_step(n, sampling_rates(n, batch_size=8), 2)
    for k in range(len(SIZES)):
        rows = batch.rows[0, k, :batch.sizes[0, k]]
        if len(rows) == 0:
            assert out.loss[k] == 0
            continue
        logits = model.apply(thetas[k:k + 1], X[k:k + 1, rows])
        torch.testing.assert_close(out.loss[k], F.binary_cross_entropy_with_logits(logits[0], y[k, rows]))


# ---- DP-SGD without noise or clipping is SGD -------------------------------
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("batch_size", [0, 100])   # 100 > every client: q = 1, full batch too
def test_no_noise_no_clipping_full_batch_equals_local_train(name, batch_size):
    model, thetas, X, y, n = setup(name)
    gen = torch.Generator().manual_seed(0)
    anchor = thetas[0] - 0.05
    correction = torch.randn(thetas.shape, generator=gen, dtype=thetas.dtype) * 0.01
    kwargs = dict(epochs=3, lr=0.3, prox_mu=0.1, anchor=anchor, correction=correction,
                  max_steps=torch.tensor([3, 1, 2, 0, 3]))
    private = dp_local_train(model, thetas, X, y, n, batch_size=batch_size, clip=1e9,
                             noise_multiplier=0.0, generator=torch.Generator().manual_seed(1), **kwargs)
    plain = local_train(model, thetas, X, y, n, batch_size=0, **kwargs)
    torch.testing.assert_close(private.thetas, plain.thetas, rtol=1e-6, atol=1e-6)
    assert private.steps.tolist() == plain.steps.tolist() == [3, 1, 2, 0, 3]
    # the first epoch's loss is the starting model's training loss, as local_train reports it
    started = private.steps > 0
    torch.testing.assert_close(private.loss[started], plain.loss[started])


# ---- noise -----------------------------------------------------------------
def test_noise_std_on_the_averaged_gradient_is_sigma_c_over_expected_batch():
    # X = 0, y = 1/2, theta = 0: every example's gradient is exactly zero, so a
    # step is pure noise: theta_new = -lr * N(0, (sigma C)^2) / (q n)
    K, n_rows, d, batch_size, sigma, clip, lr = 400, 400, 24, 100, 2.0, 1.5, 1.0
    model = make_model("logreg", n_features=d)
    X = torch.zeros(K, n_rows, d, dtype=torch.float64)
    y = torch.full((K, n_rows), 0.5, dtype=torch.float64)
    out = dp_local_train(model, torch.zeros(K, d + 1, dtype=torch.float64), X, y,
                         torch.full((K,), n_rows), epochs=1, lr=lr, batch_size=batch_size, clip=clip,
                         noise_multiplier=sigma, generator=torch.Generator().manual_seed(3),
                         max_steps=torch.ones(K, dtype=torch.long))
    noise = -out.thetas / lr                      # 10 000 draws
    expected = sigma * clip / batch_size          # 0.030, as the reference note says
    assert abs(float(noise.mean())) < 4 * expected / math.sqrt(noise.numel())
    assert float(noise.std()) == pytest.approx(expected, rel=0.04)


def test_noise_is_added_even_to_an_empty_batch_and_nothing_is_nan():
    # q = 1/300: most batches are empty; the step still adds noise (the accountant counts it)
    model = make_model("mlp", n_features=3, hidden=4)
    gen = torch.Generator().manual_seed(0)
    X, y, n = make_padded([300, 1, 3], 3, gen)
    thetas = model.init(gen, torch.float64).expand(3, -1)
    out = dp_local_train(model, thetas, X, y, n, epochs=1, lr=0.1, batch_size=1, clip=1.0,
                         noise_multiplier=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(out.thetas).all() and torch.isfinite(out.loss).all()
    assert out.steps.tolist() == [300, 1, 3]
    assert ((out.thetas - thetas).abs().sum(1) > 0).all()


# ---- Poisson sampling ------------------------------------------------------
@pytest.mark.parametrize("spare_stds", [6.0, -1e9])   # -1e9: too few gaps drawn at first, so more are drawn
def test_poisson_batch_sizes_are_binomial_and_every_row_is_equally_likely(monkeypatch, spare_stds):
    monkeypatch.setattr(dpsgd, "_SPARE_STDS", spare_stds)
    n = torch.tensor([200, 37, 5])
    q = sampling_rates(n, batch_size=20)          # 0.1, 0.54, 1
    T = 4000
    batches = poisson_batches(n, q, n_steps=T, generator=torch.Generator().manual_seed(0))
    sizes = batches.sizes.double()
    mean, var = n * q, n * q * (1 - q)
    assert (sizes.mean(0) - mean).abs().max() <= 5 * (var / T).sqrt().max()
    torch.testing.assert_close(sizes.var(0)[:2], var[:2], rtol=0.1, atol=0)
    assert (batches.sizes[:, 2] == 5).all()       # q = 1: every row, every step
    for k, nk in enumerate(n.tolist()):
        counts = torch.zeros(nk)
        together = 0
        for t in range(T):
            rows = batches.rows[t, k, :batches.sizes[t, k]]
            assert (rows.diff() > 0).all() and (rows < nk).all()   # distinct real rows
            counts[rows] += 1
            together += int(rows.numel() >= 2 and rows[0] == 0 and rows[1] == 1)
        qk = float(q[k])
        se = math.sqrt(qk * (1 - qk) / T) + 1e-12
        assert (counts / T - qk).abs().max() <= 6 * se     # the first and last rows too
        # rows join independently: P(row 0 and row 1) = q^2
        assert together / T == pytest.approx(qk ** 2, abs=6 * math.sqrt(qk ** 2 / T) + 1e-12)


def test_poisson_filler_entries_are_real_rows_of_their_client():
    n = torch.tensor([50, 2])
    batches = poisson_batches(n, torch.tensor([0.2, 0.5]), n_steps=100,
                              generator=torch.Generator().manual_seed(1))
    assert (batches.rows < n.view(1, 2, 1)).all() and (batches.rows >= 0).all()


# ---- steps, stragglers, determinism ----------------------------------------
def test_steps_per_epoch_round_n_over_b():
    n = torch.tensor([100, 50, 30, 10, 9, 1])
    assert steps_per_epoch(n, batch_size=20).tolist() == [5, 3, 2, 1, 1, 1]   # 2.5 -> 3, 1.5 -> 2
    assert dp_steps(n, epochs=3, batch_size=20).tolist() == [15, 9, 6, 3, 3, 3]
    assert dp_steps(n, epochs=3, batch_size=0).tolist() == [3] * 6
    assert sampling_rates(n, batch_size=20).tolist() == [0.2, 0.4, 2 / 3, 1.0, 1.0, 1.0]


def test_clients_of_different_sizes_take_different_numbers_of_steps_and_stragglers_stop():
    model, thetas, X, y, n = setup("logreg")
    kwargs = dict(epochs=2, lr=0.1, batch_size=8, clip=1.0, noise_multiplier=1.0)
    out = dp_local_train(model, thetas, X, y, n, generator=torch.Generator().manual_seed(0), **kwargs)
    assert out.steps.tolist() == dp_steps(n, epochs=2, batch_size=8).tolist() == [10, 2, 6, 2, 16]
    # client 1 stops after 1 step and client 3 never starts; the longest client (4)
    # draws the same batches and noise as before, so it ends where it did
    budget = torch.tensor([100, 1, 100, 0, 100])
    capped = dp_local_train(model, thetas, X, y, n, generator=torch.Generator().manual_seed(0),
                            max_steps=budget, **kwargs)
    assert capped.steps.tolist() == [10, 1, 6, 0, 16]
    torch.testing.assert_close(capped.thetas[3], thetas[3], rtol=0, atol=0)
    torch.testing.assert_close(capped.thetas[[0, 2, 4]], out.thetas[[0, 2, 4]], rtol=1e-12, atol=1e-12)
    assert not torch.equal(capped.thetas[1], out.thetas[1])


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_numbers(name):
    model, thetas, X, y, n = setup(name)
    kwargs = dict(epochs=2, lr=0.1, batch_size=8, clip=0.5, noise_multiplier=1.1)
    a = dp_local_train(model, thetas, X, y, n, generator=torch.Generator().manual_seed(7), **kwargs)
    b = dp_local_train(model, thetas, X, y, n, generator=torch.Generator().manual_seed(7), **kwargs)
    c = dp_local_train(model, thetas, X, y, n, generator=torch.Generator().manual_seed(8), **kwargs)
    assert torch.equal(a.thetas, b.thetas) and torch.equal(a.loss, b.loss)
    assert not torch.equal(a.thetas, c.thetas)


# ---- bad input -------------------------------------------------------------
@pytest.mark.parametrize("field, value, message", [
    ("clip", -1.0, "privacy.clip = -1.0 is not allowed: must be > 0"),
    ("clip", 0.0, "privacy.clip = 0.0 is not allowed: must be > 0"),
    ("clip", math.inf, "privacy.clip = inf is not allowed: must be > 0"),
    ("noise_multiplier", -0.5, "privacy.noise_multiplier = -0.5 is not allowed: must be ≥ 0"),
    ("batch_size", -1, "train.batch_size = -1 is not allowed: must be an integer ≥ 0"),
    ("batch_size", 2.5, "train.batch_size = 2.5 is not allowed: must be an integer ≥ 0"),
])
def test_bad_input_names_the_field_the_value_and_what_is_allowed(field, value, message):
    model, thetas, X, y, n = setup("logreg")
    kwargs = dict(epochs=1, lr=0.1, batch_size=8, clip=1.0, noise_multiplier=1.0)
    kwargs[field] = value
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        dp_local_train(model, thetas, X, y, n, generator=torch.Generator(), **kwargs)
