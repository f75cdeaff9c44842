"""Gradient inversion: rebuilding a patient's record from the gradient a hospital shares.

In FedSGD a hospital sends ``g = ∇_θ bce(f(θ, x), y)``. With one record in
the batch, that gradient pins the record down:

- **Logistic regression, analytically**: ``g = (σ(z) − y)·[x, 1]``, so
  ``x = g_w / g_b`` (:func:`analytic_logreg_inversion`).
- **Any differentiable model, by optimisation** — Deep Leakage from
  Gradients (DLG, Zhu, Liu & Han, NeurIPS 2019): find a dummy x̂ whose
  gradient matches, ``min_x̂ ‖∇_θ bce(f(θ, x̂), ŷ) − g‖²``, with L-BFGS
  (:func:`dlg`).
- **The label, exactly** — iDLG (Zhao, Mopuri & Bilen, 2020): the output
  bias's gradient is ``σ(z) − y``, negative iff ``y = 1``
  (:func:`infer_label`); DLG then only has x̂ to find.

The defence is DP-SGD's: clip the gradient and add Gaussian noise
(:func:`clip_and_noise`). Clipping alone only rescales the gradient, and the
ratio ``g_w / g_b`` survives any rescaling (so does an attack that matches
directions, Geiping et al. 2020); the noise is what protects.
:func:`inversion_experiment` runs the whole story on one record.

Everything is computed in float64: the matching loss falls to ~1e-15 at the
answer, below float32's resolution, and L-BFGS's line search needs the digits.

>>> import torch
>>> from fedlab_core.models import make_model
>>> m = make_model("logreg", n_features=3)
>>> x, y = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64), 1.0
>>> g = record_gradient(m, torch.zeros(4, dtype=torch.float64), x, y)
>>> analytic_logreg_inversion(g).tolist(), infer_label(g)
([0.5, -1.0, 2.0], 1)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fedlab_core.models import Model

Tensor = torch.Tensor

__all__ = ["record_gradient", "infer_label", "analytic_logreg_inversion", "clip_and_noise",
           "Reconstruction", "dlg", "InversionResult", "inversion_experiment"]


def _fail(name: str, value, allowed: str) -> None:
    raise ValueError(f"{name} = {value!r} is not allowed: {allowed}")


def _gradient(model: Model, theta: Tensor, x: Tensor, y: Tensor, *, create_graph: bool) -> Tensor:
    logit = model.apply(theta.unsqueeze(0), x.view(1, 1, -1)).view(())
    loss = F.binary_cross_entropy_with_logits(logit, y)
    (grad,) = torch.autograd.grad(loss, theta, create_graph=create_graph)
    return grad


def record_gradient(model: Model, theta: Tensor, x: Tensor, y: float) -> Tensor:
    """The gradient a hospital shares for one record: ``∇_θ bce(f(θ, x), y)``, shape ``(P,)``.

    It is one full-batch FedSGD step's gradient on a one-patient batch (and
    what ``model.loss_and_grad`` returns for it), in float64.
    """
    theta = theta.detach().to(torch.float64).requires_grad_(True)
    with torch.enable_grad():
        grad = _gradient(model, theta, x.detach().to(theta),
                         torch.tensor(float(y), dtype=torch.float64, device=theta.device),
                         create_graph=False)
    return grad.detach()


def infer_label(grad: Tensor) -> int:
    """iDLG's label from a one-record gradient: ``y = 1`` iff ``∂L/∂b_out < 0``.

    The output bias is the last parameter of both models; with BCE on a
    logit, ``∂L/∂b_out = σ(z) − y`` lies in (−1, 0) when y = 1 and in (0, 1)
    when y = 0 (Zhao et al., "iDLG: Improved deep leakage from gradients", 2020).

    >>> infer_label(torch.tensor([0.3, -0.2])), infer_label(torch.tensor([0.3, 0.2]))
    (1, 0)
    """
    return int(grad[-1] < 0)


def analytic_logreg_inversion(grad: Tensor) -> Tensor:
    """A logistic regression's record from its one-record gradient: ``x = g_w / g_b``.

    ``g = (σ(w·x + b) − y)·[x, 1]``: the weight gradient is the record
    scaled by the bias gradient. (The same holds for any first layer with a
    bias: hidden unit j's weight gradient over its bias gradient is x for
    every active unit, Phong et al. 2017; DLG below needs no such structure.)

    >>> analytic_logreg_inversion(torch.tensor([-0.25, 0.5, -0.5])).tolist()
    [0.5, -1.0]
    """
    if grad[-1] == 0:
        raise ValueError("grad's bias entry is 0 (the model fits this record exactly): the record "
                         "cannot be read from it")
    return grad[:-1] / grad[-1]


def clip_and_noise(grad: Tensor, *, clip: float, noise_std: float,
                   generator: torch.Generator) -> Tensor:
    """DP-SGD's defence on one gradient: ``g · min(1, C / ‖g‖) + N(0, noise_std² I)``.

    In DP-SGD's terms ``noise_std = σ·C`` with σ the noise multiplier
    (Abadi et al., CCS 2016). ``clip = math.inf`` leaves the norm alone.

    >>> g = clip_and_noise(torch.tensor([3.0, 4.0]), clip=1.0, noise_std=0.0,
    ...                    generator=torch.Generator())
    >>> g.tolist()
    [0.6000000238418579, 0.800000011920929]
    """
    if isinstance(clip, bool) or not isinstance(clip, numbers.Real) or math.isnan(clip) \
            or clip <= 0:
        _fail("clip", clip, "must be a number > 0 (math.inf for no clipping)")
    if isinstance(noise_std, bool) or not isinstance(noise_std, numbers.Real) \
            or not math.isfinite(noise_std) or noise_std < 0:
        _fail("noise_std", noise_std, "must be a finite number ≥ 0")
    norm = float(grad.norm())
    scaled = grad * min(1.0, clip / norm) if norm > 0 else grad.clone()
    noise = torch.randn(grad.shape, generator=generator, dtype=grad.dtype) * noise_std
    return scaled + noise.to(grad.device)


@dataclass(frozen=True)
class Reconstruction:
    """What DLG recovered from a gradient."""

    x: Tensor            # (d,) the best dummy record found
    label: int           # the label used (iDLG's unless given)
    match_loss: float    # ‖∇(x̂, ŷ) − g‖² / ‖g‖² at x̂ (≈ 1e-15 when it found the record)
    restarts: int        # how many random dummies it tried


def dlg(model: Model, theta: Tensor, grad: Tensor, *, generator: torch.Generator,
        label: int | None = None, n_restarts: int = 16, n_iter: int = 100,
        tol: float = 1e-10) -> Reconstruction:
    """Deep Leakage from Gradients: the record whose gradient matches ``grad``.

    ``x̂ = argmin_x̂ ‖∇_θ bce(f(θ, x̂), ŷ) − g‖² / ‖g‖²`` (Zhu et al., NeurIPS
    2019), by L-BFGS from a dummy drawn from N(0, I) (the features are
    standardised). The label is iDLG's (:func:`infer_label`) unless given;
    the original DLG optimised a soft dummy label alongside, which iDLG
    showed often converges to the wrong label. Dividing by ‖g‖² makes ``tol``
    independent of the gradient's scale.

    Why restarts: DLG assumes a twice-differentiable model, and the MLP's
    ReLU is not. A hidden unit that is off at x̂ has zero derivative, so its
    part of the mismatch gives x̂ no direction, and L-BFGS can stall in a
    wrong on/off pattern (measured on 200 synthetic-cohort records, a
    9-16-1 MLP at its initialisation: 12 needed more than one start).
    Restarting from fresh dummies until the match falls below ``tol`` found
    all 200 to a relative error below 1e-7, within 14 restarts; a defended
    gradient matches nothing, so it uses all of them.

    Parameters
    ----------
    model, theta : the model the gradient was computed at, ``(P,)``.
    grad : ``(P,)`` the shared gradient of one record.
    generator : the torch RNG for the dummies.
    label : 0 or 1 if known; ``None`` infers it (iDLG).
    n_restarts, n_iter : at most this many dummies, L-BFGS iterations each.
    tol : stop restarting once the relative matching loss is below it.
    """
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, int) or n_restarts < 1:
        _fail("n_restarts", n_restarts, "must be an integer ≥ 1")
    if label not in (None, 0, 1):
        _fail("label", label, "must be 0, 1 or None (infer it from the gradient, iDLG)")
    grad = grad.detach().to(torch.float64)
    scale = float(grad.square().sum())
    if scale == 0:
        raise ValueError("grad is all zeros: the model fits this record exactly and the "
                         "gradient carries nothing to invert")
    label = infer_label(grad) if label is None else label
    theta = theta.detach().to(torch.float64).requires_grad_(True)
    y_hat = torch.tensor(float(label), dtype=torch.float64, device=theta.device)

    best: tuple[float, Tensor] | None = None
    restarts = 0
    for restarts in range(1, n_restarts + 1):
        x_hat = torch.randn(model.n_features, generator=generator, dtype=torch.float64)
        x_hat = x_hat.to(theta.device).requires_grad_(True)
        opt = torch.optim.LBFGS([x_hat], lr=1.0, max_iter=n_iter, history_size=20,
                                tolerance_grad=1e-14, tolerance_change=1e-16,
                                line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            opt.zero_grad()
            with torch.enable_grad():
                mismatch = _gradient(model, theta, x_hat, y_hat, create_graph=True) - grad
                loss = mismatch.square().sum() / scale
                loss.backward()
            return loss.detach()

        opt.step(closure)
        loss = float(closure())
        if math.isfinite(loss) and (best is None or loss < best[0]):
            best = (loss, x_hat.detach().clone())
        if best is not None and best[0] < tol:
            break
    if best is None:
        raise ValueError("dlg: every restart diverged (non-finite matching loss)")
    return Reconstruction(x=best[1], label=label, match_loss=best[0], restarts=restarts)


@dataclass(frozen=True)
class InversionResult:
    """One record, what the attacker rebuilt from its (maybe defended) gradient, and how close."""

    original: np.ndarray         # (d,) the true record, feature by feature
    reconstruction: np.ndarray   # (d,) the attacker's record, feature by feature
    relative_error: float        # ‖x̂ − x‖ / ‖x‖
    match_loss: float            # DLG's final ‖∇(x̂, ŷ) − g‖² / ‖g‖²
    true_label: int
    inferred_label: int          # iDLG's label from the shared gradient


def inversion_experiment(model: Model, theta: Tensor, x: Tensor, y: float, *,
                         generator: torch.Generator, clip: float | None = None,
                         noise_std: float = 0.0, n_restarts: int = 16,
                         n_iter: int = 100) -> InversionResult:
    """A hospital shares one record's gradient (defended if asked); DLG + iDLG invert it.

    ``clip``/``noise_std`` apply :func:`clip_and_noise` before sharing
    (``clip=None``: no clipping). The attacker sees only the shared gradient
    and θ; the true record is used to score the result.

    >>> from fedlab_core.models import make_model
    >>> m = make_model("mlp", n_features=3, hidden=4)
    >>> g = torch.Generator().manual_seed(0)
    >>> r = inversion_experiment(m, m.init(g, torch.float64), torch.tensor([1.0, -0.5, 2.0]), 1,
    ...                          generator=g)
    >>> r.relative_error < 1e-4, r.inferred_label
    (True, 1)
    """
    x = x.detach().to(device=theta.device, dtype=torch.float64)
    shared = record_gradient(model, theta, x, y)
    if clip is not None or noise_std > 0:
        shared = clip_and_noise(shared, clip=math.inf if clip is None else clip,
                                noise_std=noise_std, generator=generator)
    rec = dlg(model, theta, shared, generator=generator, n_restarts=n_restarts, n_iter=n_iter)
    error = float((rec.x - x).norm() / x.norm())
    return InversionResult(original=x.cpu().numpy().copy(), reconstruction=rec.x.cpu().numpy(),
                           relative_error=error, match_loss=rec.match_loss,
                           true_label=int(y), inferred_label=rec.label)
