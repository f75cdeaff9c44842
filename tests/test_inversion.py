"""Gradient inversion: the analytic logistic-regression case exactly, iDLG's label rule on
both labels, DLG rebuilding synthetic-cohort records from an MLP's gradient almost
exactly, and failing once the gradient is clipped and noised."""

import math

import numpy as np
import pytest
import torch

from fedlab_core.config import DataConfig
from fedlab_core.data import load_dataset
from fedlab_core.models import make_model
from fedlab_core.privacy.inversion import (
    analytic_logreg_inversion, clip_and_noise, dlg, infer_label, inversion_experiment,
    record_gradient)


@pytest.fixture(scope="module")
def records():
    """Standardised synthetic-cohort patients with both labels: (X (n, 9), y (n,))."""
    c = load_dataset(DataConfig(n_samples=200, n_clients=1), seed=0).clients[0]
    return torch.tensor(c.X_train), torch.tensor(c.y_train)


def first_of_each_label(y, k):
    return [int(i) for i in (y == 0).nonzero()[:k]] + [int(i) for i in (y == 1).nonzero()[:k]]


def mlp_at_init(seed, hidden=16):
    m = make_model("mlp", n_features=9, hidden=hidden)
    return m, m.init(torch.Generator().manual_seed(seed), torch.float64)


# ---- the shared gradient and the analytic attacks -------------------------------------
def test_record_gradient_is_the_models_own_gradient_on_a_one_record_batch(records):
    X, y = records
    m, theta = mlp_at_init(0)
    _, expected = m.loss_and_grad(theta[None], X[None, :1], y[None, :1].double(), torch.ones(1, 1))
    torch.testing.assert_close(record_gradient(m, theta, X[0], y[0]), expected[0])


def test_analytic_logreg_inversion_is_exact(records):
    X, y = records
    m = make_model("logreg", n_features=9)
    theta = torch.randn(10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for i in first_of_each_label(y, 3):
        x_hat = analytic_logreg_inversion(record_gradient(m, theta, X[i], y[i]))
        torch.testing.assert_close(x_hat, X[i], atol=1e-6, rtol=0)


def test_clipping_alone_does_not_protect_the_ratio(records):
    X, y = records
    m = make_model("logreg", n_features=9)
    g = record_gradient(m, torch.zeros(10, dtype=torch.float64), X[0], y[0])
    clipped = clip_and_noise(g, clip=0.01, noise_std=0.0, generator=torch.Generator())
    assert clipped.norm() == pytest.approx(0.01)
    torch.testing.assert_close(analytic_logreg_inversion(clipped), X[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("model_name", ["logreg", "mlp"])
def test_idlg_infers_both_labels(records, model_name):
    X, y = records
    m = make_model(model_name, n_features=9, hidden=16)
    for seed in range(3):
        theta = m.init(torch.Generator().manual_seed(seed), torch.float64)
        if model_name == "logreg":   # its init is 0; move it so z ≠ 0
            theta = torch.randn(10, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        for i in first_of_each_label(y, 5):
            assert infer_label(record_gradient(m, theta, X[i], y[i])) == int(y[i])
            # the same record with the other label flips the sign
            assert infer_label(record_gradient(m, theta, X[i], 1 - y[i])) == 1 - int(y[i])


# ---- DLG --------------------------------------------------------------------------
def test_dlg_rebuilds_mlp_records_almost_exactly(records):
    X, y = records
    for seed, i in enumerate(first_of_each_label(y, 2)):
        m, theta = mlp_at_init(seed)
        r = inversion_experiment(m, theta, X[i], y[i], generator=torch.Generator().manual_seed(seed))
        assert r.relative_error < 1e-5, (i, r)
        assert r.match_loss < 1e-10 and r.inferred_label == r.true_label == int(y[i])
        assert r.original.shape == r.reconstruction.shape == (9,)
        np.testing.assert_allclose(r.original, X[i].numpy())


def test_dlg_on_logistic_regression_matches_the_analytic_answer(records):
    X, y = records
    m = make_model("logreg", n_features=9)
    theta = torch.randn(10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g = record_gradient(m, theta, X[3], y[3])
    rec = dlg(m, theta, g, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(rec.x, analytic_logreg_inversion(g), atol=1e-6, rtol=0)


def test_dlg_same_seed_same_reconstruction(records):
    X, y = records
    m, theta = mlp_at_init(2)
    g = clip_and_noise(record_gradient(m, theta, X[0], y[0]), clip=1.0, noise_std=1.0,
                       generator=torch.Generator().manual_seed(0))
    a, b = (dlg(m, theta, g, generator=torch.Generator().manual_seed(5), n_restarts=2) for _ in range(2))
    assert torch.equal(a.x, b.x) and a.match_loss == b.match_loss


def test_dlg_fails_on_a_clipped_and_noised_gradient(records):
    X, y = records
    for seed, i in enumerate(first_of_each_label(y, 1)):
        m, theta = mlp_at_init(seed)
        r = inversion_experiment(m, theta, X[i], y[i], generator=torch.Generator().manual_seed(seed),
                                 clip=1.0, noise_std=1.0)
        assert r.relative_error > 0.5, (i, r)
        assert r.match_loss > 0.5   # nothing explains the noise


# ---- the defence ----------------------------------------------------------------------
def test_clip_and_noise_clips_then_adds_gaussian_noise():
    g = torch.tensor([3.0, 4.0], dtype=torch.float64)
    same = clip_and_noise(g, clip=math.inf, noise_std=0.0, generator=torch.Generator())
    assert torch.equal(same, g)
    small = torch.tensor([0.3, 0.4], dtype=torch.float64)
    assert torch.equal(clip_and_noise(small, clip=1.0, noise_std=0.0, generator=torch.Generator()), small)
    zeros = torch.zeros(20_000, dtype=torch.float64)
    noisy = clip_and_noise(zeros, clip=1.0, noise_std=2.0, generator=torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(2.0, rel=0.03)
    again = clip_and_noise(zeros, clip=1.0, noise_std=2.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)


# ---- bad input ------------------------------------------------------------------------
def test_bad_arguments_name_the_argument_value_and_what_is_allowed():
    g = torch.ones(3, dtype=torch.float64)
    gen = torch.Generator()
    with pytest.raises(ValueError, match=r"clip = 0 is not allowed: must be a number > 0"):
        clip_and_noise(g, clip=0, noise_std=1.0, generator=gen)
    with pytest.raises(ValueError, match=r"noise_std = -1.0 is not allowed: must be a finite number ≥ 0"):
        clip_and_noise(g, clip=1.0, noise_std=-1.0, generator=gen)
    m = make_model("logreg", n_features=2)
    with pytest.raises(ValueError, match=r"n_restarts = 0 is not allowed: must be an integer ≥ 1"):
        dlg(m, torch.zeros(3), g, generator=gen, n_restarts=0)
    with pytest.raises(ValueError, match=r"label = 2 is not allowed: must be 0, 1 or None"):
        dlg(m, torch.zeros(3), g, generator=gen, label=2)
    with pytest.raises(ValueError, match="grad is all zeros"):
        dlg(m, torch.zeros(3), torch.zeros(3), generator=gen)
    with pytest.raises(ValueError, match="bias entry is 0"):
        analytic_logreg_inversion(torch.tensor([1.0, 0.0]))
