"""Sample-level DP-SGD inside every client, all clients at once.

Each client k runs DP-SGD (Abadi et al., "Deep Learning with Differential
Privacy", CCS 2016) on its own rows, protecting each of its patient records.
One step of client k is

    g_k = ( sum_{i in B_k} min(1, C / ||g_i||) g_i  +  N(0, sigma^2 C^2 I) ) / (q_k n_k)
    theta_k <- theta_k - lr * (g_k + prox_mu (theta_k - anchor) + c_k)

with ``g_i`` the gradient of example i's own loss, ``C`` the clip norm,
``sigma`` the noise multiplier and ``B_k`` a Poisson sample: every real row of
client k joins the batch independently with probability
``q_k = min(1, batch_size / n_k)``, afresh every step. Poisson sampling is
what the privacy analysis assumes (Mironov, Talwar & Zhang, "Rényi
Differential Privacy of the Sampled Gaussian Mechanism", 2019) and what
Opacus does; so the sum is divided by the *expected* batch size ``q_k n_k``,
never the realised one (which would depend on the data). The FedProx and
SCAFFOLD terms never touch data, so adding them is post-processing.

Steps: a local epoch is ``max(1, round(n_k / batch_size))`` steps (halves
round up), so an epoch visits ``n_k`` rows in expectation, as near as a whole
number of steps allows; full batch (``batch_size=0``) is ``q_k = 1`` and one
step per epoch. (Opacus' ``DPDataLoader`` instead takes ``ceil(n/B)`` steps
at ``q = 1 / ceil(n/B)``; we keep ``q_k = B / n_k`` exactly, which is what
the accountant is told.) The accountant (``fedlab_core.privacy.accounting``)
needs, per client, ``q_k``, ``sigma`` and every step it took.

Speed: the K clients step together (the "clients are a batch" design); a
client whose steps are done, or a straggler past ``max_steps``, takes masked
no-op steps. Each step computes only on the rows sampled in that step, padded
to the step's largest batch; the row indices of many steps are drawn at once
(:func:`poisson_batches`, O(batch) work per step, not O(n)). Clipping needs
only each example's gradient *norm*: where the model has them in closed form
(``Model.per_example_grad_norms``) the clipped sum is the gradient of the
loss reweighted by the clip factors, one ordinary backward pass ("ghost
clipping", Lee & Kifer 2021; Li et al. 2022); otherwise the per-example
gradients themselves (``Model.per_example_grads``, ``torch.func``) are
clipped and summed. Both give the same numbers (tests/test_dpsgd.py), and
the per-example gradients agree with Opacus (tests/test_dpsgd_opacus.py).

>>> import torch
>>> from fedlab_core.models import make_model
>>> m = make_model("logreg", n_features=2)
>>> X = torch.randn(3, 50, 2, generator=torch.Generator().manual_seed(0))
>>> y = (X[..., 0] > 0).float(); n = torch.tensor([50, 20, 35])
>>> out = dp_local_train(m, torch.zeros(3, 3), X, y, n, epochs=2, lr=0.5, batch_size=10,
...                      clip=1.0, noise_multiplier=1.1, generator=torch.Generator().manual_seed(1))
>>> out.steps.tolist()   # 2 epochs of round(n_k / 10) steps
[10, 4, 8]
>>> sampling_rates(n, batch_size=10).tolist()
[0.2, 0.5, 0.2857142857142857]
"""

from __future__ import annotations

import math
from typing import Iterator, NamedTuple

import torch
import torch.nn.functional as F

from fedlab_core.client import LocalResult
from fedlab_core.models import Model

Tensor = torch.Tensor

# How many sampled row indices (steps x clients x batch) to draw and gather at
# once: large enough that drawing costs a handful of tensor ops per epoch,
# small enough that the gathered rows stay near the size of the data itself.
_GATHER_BUDGET = 1 << 21
# standard deviations of batch size beyond the mean that poisson_batches draws gaps for at once
_SPARE_STDS = 6.0


def _fail(name: str, value, allowed: str) -> None:
    raise ValueError(f"{name} = {value!r} is not allowed: {allowed}")


def _check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        _fail("train.batch_size", batch_size, "must be an integer ≥ 0 (0 = full batch)")


def _check_privacy(*, clip, noise_multiplier) -> None:
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not math.isfinite(clip) or clip <= 0:
        _fail("privacy.clip", clip, "must be > 0 (a finite clip norm)")
    if (isinstance(noise_multiplier, bool) or not isinstance(noise_multiplier, (int, float))
            or not math.isfinite(noise_multiplier) or noise_multiplier < 0):
        _fail("privacy.noise_multiplier", noise_multiplier, "must be ≥ 0 (a finite number)")


def sampling_rates(n: Tensor, *, batch_size: int) -> Tensor:
    """Each client's Poisson sampling rate ``q_k = min(1, batch_size / n_k)`` (1 for full batch), float64.

    >>> sampling_rates(torch.tensor([100, 40, 10]), batch_size=20).tolist()
    [0.2, 0.5, 1.0]
    >>> sampling_rates(torch.tensor([100]), batch_size=0).tolist()
    [1.0]
    """
    _check_batch_size(batch_size)
    n = n.to(torch.float64)
    if batch_size == 0:
        return torch.ones_like(n)
    return (batch_size / n.clamp(min=1)).clamp(max=1.0)


def steps_per_epoch(n: Tensor, *, batch_size: int) -> Tensor:
    """``max(1, round(n_k / batch_size))``, halves rounding up; 1 for full batch.

    >>> steps_per_epoch(torch.tensor([100, 50, 30, 5]), batch_size=20).tolist()
    [5, 3, 2, 1]
    """
    _check_batch_size(batch_size)
    if batch_size == 0:
        return torch.ones_like(n)
    return ((2 * n + batch_size) // (2 * batch_size)).clamp(min=1)


def dp_steps(n: Tensor, *, epochs: int, batch_size: int) -> Tensor:
    """Local DP-SGD steps each client takes when nothing stops it early: ``epochs * steps_per_epoch``.

    >>> dp_steps(torch.tensor([100, 50, 5]), epochs=2, batch_size=20).tolist()
    [10, 6, 2]
    """
    return epochs * steps_per_epoch(n, batch_size=batch_size)


class PoissonBatches(NamedTuple):
    """Row indices of Poisson-sampled batches for ``T`` steps of ``K`` clients."""

    rows: Tensor    # (T, K, width) long: client k's sampled rows first, increasing; the rest is filler
    sizes: Tensor   # (T, K) long: how many of a row's leading entries were sampled


def poisson_batches(n: Tensor, q: Tensor, *, n_steps: int, generator: torch.Generator) -> PoissonBatches:
    """Sample ``n_steps`` batches per client: each of client k's rows ``0..n_k-1`` in with probability ``q_k``.

    Drawing a coin for every row every step would cost O(n) per step. The
    gaps between successive successes of independent Bernoulli(q) trials are
    instead i.i.d. geometric, ``P(gap = g) = (1-q)^g q``, so the sampled rows
    are the partial sums of geometric gaps (inverse CDF:
    ``floor(log(1-U) / log(1-q))``) that fall below ``n_k``: O(batch) work,
    exactly the same distribution. Enough gaps are drawn to pass ``n_k`` with
    near certainty; where they do not, more are drawn.

    Filler entries (position ``>= sizes``) hold a real row index of that
    client, so gathering them is harmless; mask them out.

    >>> g = torch.Generator().manual_seed(0)
    >>> b = poisson_batches(torch.tensor([1000, 3]), torch.tensor([0.05, 1.0]), n_steps=2, generator=g)
    >>> b.rows.shape[:2], b.sizes[:, 1].tolist()       # q = 1: every row, every step
    (torch.Size([2, 2]), [3, 3])
    >>> b.rows[0, 1, :3].tolist()
    [0, 1, 2]
    """
    K = n.shape[0]
    n_cpu, q = n.cpu(), q.cpu().to(torch.float64)
    expected = q * n_cpu
    # mean + 6 standard deviations + a margin: more gaps are needed about once in 1e9 batches
    width = max(1, int((expected + _SPARE_STDS * (expected * (1 - q)).sqrt()).max()) + 8)
    # log(1 - q) is -inf at q = 1, which makes every gap 0: every row is taken
    log_miss = torch.log1p(-q).view(1, K, 1)

    def gaps(columns: int) -> Tensor:
        u = torch.rand(n_steps, K, columns, generator=generator, dtype=torch.float64)
        return torch.floor(torch.log1p(-u) / log_miss).to(torch.long) + 1

    position = gaps(width).cumsum(-1) - 1
    end = n_cpu.view(1, K)
    while bool((position[..., -1] < end - 1).any()):   # some batch may go on past the drawn gaps
        position = torch.cat([position, position[..., -1:] + gaps(width).cumsum(-1)], dim=-1)
    sizes = (position < end.unsqueeze(-1)).sum(-1)
    used = max(int(sizes.max()), 1) if n_steps else 1
    rows = torch.minimum(position[..., :used], (end - 1).clamp(min=0).unsqueeze(-1))
    return PoissonBatches(rows.to(n.device), sizes.to(n.device))


def clip_factors(norms: Tensor, *, clip: float) -> Tensor:
    """``min(1, C / ||g_i||)``: scales each example's gradient to norm at most ``C`` (1 for a zero gradient).

    >>> clip_factors(torch.tensor([0.0, 0.5, 4.0]), clip=2.0).tolist()
    [1.0, 1.0, 0.5]
    """
    # C / 0 = inf, clamped to 1: a zero gradient stays zero
    return (clip / norms).clamp(max=1.0)


def clipped_grad_sum(model: Model, thetas: Tensor, X: Tensor, y: Tensor, valid: Tensor, *,
                     clip: float, per_example: bool = False) -> Tensor:
    """``sum_i valid_i min(1, C / ||g_i||) g_i`` for each client: ``(K, P)``.

    With closed-form norms (``model.per_example_grad_norms``) it is the
    gradient of ``sum_i w_i loss_i`` with ``w_i`` the clip factors, one
    ordinary backward pass. ``per_example=True`` (or a model without those
    norms) builds the ``(K, b, P)`` per-example gradients with
    ``model.per_example_grads`` and sums them, the reference way.

    >>> from fedlab_core.models import make_model
    >>> m = make_model("logreg", n_features=1)
    >>> X = torch.tensor([[[3.0], [0.0]]]); y = torch.tensor([[0.0, 0.0]])
    >>> valid = torch.tensor([[1.0, 1.0]])  # gradients 0.5*[3, 1] (norm 1.58) and 0.5*[0, 1]
    >>> clipped_grad_sum(m, torch.zeros(1, 2), X, y, valid, clip=1.0)
    tensor([[0.9487, 0.8162]])
    """
    if per_example or model.per_example_grad_norms is None:
        grads = model.per_example_grads(thetas, X, y)
        weight = clip_factors(grads.norm(dim=-1), clip=clip) * valid
        return torch.bmm(weight.unsqueeze(1), grads).squeeze(1)
    weight = clip_factors(model.per_example_grad_norms(thetas, X, y), clip=clip) * valid
    return model.loss_and_grad(thetas, X, y, weight, with_loss=False)[1]


class _Step(NamedTuple):
    X: Tensor        # (K, b, d) this step's sampled rows, padded to its largest batch
    y: Tensor        # (K, b)
    valid: Tensor    # (K, b) 1 on sampled rows, 0 on filler
    sizes: Tensor    # (K,) realised batch sizes
    noise: Tensor | None   # (K, P) N(0, sigma^2 C^2) draws, None when sigma = 0


def _steps(X: Tensor, y: Tensor, n: Tensor, q: Tensor, taken_steps: Tensor, *, n_params: int,
           noise_std: float, generator: torch.Generator) -> Iterator[_Step]:
    """Every step's batches and noise, drawn a chunk of steps at a time (few, large tensor ops)."""
    K, n_max, d = X.shape
    total = int(taken_steps.max()) if K else 0
    full_batch = bool((q == 1).all())
    per_step = K * (n_max if full_batch else min(n_max, int((q * n).max()) * 2 + 16))
    chunk = max(1, _GATHER_BUDGET // max(per_step * (d + 1) + K * n_params, 1))
    offsets = (torch.arange(K, device=X.device) * n_max).view(1, K, 1)
    X_rows, y_rows = X.reshape(K * n_max, d), y.reshape(K * n_max)
    for start in range(0, total, chunk):
        n_steps = min(chunk, total - start)
        # a client past its own number of steps samples nothing
        active = (torch.arange(start, start + n_steps, device=X.device).unsqueeze(1)
                  < taken_steps.unsqueeze(0))
        if full_batch:
            # q = 1: the batch is all of a client's rows, no need to draw or gather
            rows, sizes = None, n.unsqueeze(0).expand(n_steps, K)
        else:
            rows, sizes = poisson_batches(n, q, n_steps=n_steps, generator=generator)
        sizes = sizes * active
        noise = (torch.randn(n_steps, K, n_params, generator=generator, dtype=X.dtype).to(X.device)
                 .mul_(noise_std) if noise_std > 0 else None)
        if rows is None:
            X_batches, y_batches = X.expand(n_steps, -1, -1, -1), y.expand(n_steps, -1, -1)
        else:
            flat = (rows + offsets).view(-1)
            X_batches = X_rows.index_select(0, flat).view(*rows.shape, d)
            y_batches = y_rows.index_select(0, flat).view(rows.shape)
        width = y_batches.shape[-1]
        valid = (torch.arange(width, device=X.device) < sizes.unsqueeze(-1)).to(X.dtype)
        # each step computes on its own largest batch only, not on the chunk's
        for t, b in enumerate(sizes.max(dim=1).values.tolist()):
            yield _Step(X_batches[t, :, :b], y_batches[t, :, :b], valid[t, :, :b], sizes[t],
                        None if noise is None else noise[t])


def dp_local_train(model: Model, thetas: Tensor, X: Tensor, y: Tensor, n: Tensor, *,
                   epochs: int, lr: float, batch_size: int, clip: float, noise_multiplier: float,
                   generator: torch.Generator, prox_mu: float = 0.0, anchor: Tensor | None = None,
                   correction: Tensor | None = None, max_steps: Tensor | None = None) -> LocalResult:
    """Run ``epochs`` of DP-SGD on every client (Abadi et al. 2016, Poisson sampling).

    Each step of client k: sample a Poisson batch (rate ``q_k``), clip every
    example's gradient to norm ``C``, sum, add ``N(0, (sigma C)^2)`` to each
    coordinate, divide by the expected batch size ``q_k n_k``, add the
    FedProx and SCAFFOLD terms, and step:

        theta_k <- theta_k - lr * ((sum_i clip_C(g_i) + N(0, sigma^2 C^2 I)) / (q_k n_k)
                                   + prox_mu (theta_k - anchor) + c_k)

    Parameters
    ----------
    model : the model family (``fedlab_core.models``).
    thetas : ``(K, P)`` each client's starting parameters.
    X, y : ``(K, n_max, d)`` and ``(K, n_max)`` padded training data.
    n : ``(K,)`` number of real rows per client (rows ``n[k]:`` are padding).
    epochs : local epochs of ``max(1, round(n_k / batch_size))`` steps each.
    lr : the learning rate.
    batch_size : the expected batch size B (``q_k = min(1, B / n_k)``); 0 for full batch.
    clip : the per-example clip norm C (> 0).
    noise_multiplier : sigma (≥ 0); the noise std on the summed gradient is ``sigma * C``.
    generator : the only source of randomness (batch sampling and noise).
    prox_mu, anchor : the FedProx term and its centre (the round's global model).
    correction : ``(K, P)`` added to every step's gradient (SCAFFOLD).
    max_steps : ``(K,)`` the most steps each client takes (a straggler budget).

    Returns
    -------
    ``LocalResult(thetas, loss, steps)``: the new parameters; each client's
    mean (unclipped, noise-free) training loss over the sampled batches of its
    first local epoch, for display only (it is not privatised); and the
    ``(K,)`` steps each client took, which the privacy accountant needs.

    Raises
    ------
    ValueError : ``clip <= 0``, ``noise_multiplier < 0`` or ``batch_size < 0``.

    Examples
    --------
    Without noise and clipping, and with full batches, DP-SGD is plain gradient descent:

    >>> from fedlab_core.models import make_model
    >>> m = make_model("logreg", n_features=1)
    >>> X = torch.tensor([[[1.0], [-1.0]]]); y = torch.tensor([[1.0, 0.0]])
    >>> out = dp_local_train(m, torch.zeros(1, 2), X, y, torch.tensor([2]), epochs=1, lr=1.0,
    ...                      batch_size=0, clip=1e6, noise_multiplier=0.0,
    ...                      generator=torch.Generator().manual_seed(0))
    >>> out.thetas
    tensor([[0.5000, 0.0000]])
    >>> dp_local_train(m, torch.zeros(1, 2), X, y, torch.tensor([2]), epochs=1, lr=1.0,
    ...                batch_size=0, clip=-1.0, noise_multiplier=1.0, generator=torch.Generator())
    Traceback (most recent call last):
    ...
    ValueError: privacy.clip = -1.0 is not allowed: must be > 0 (a finite clip norm)
    """
    _check_batch_size(batch_size)
    _check_privacy(clip=clip, noise_multiplier=noise_multiplier)
    if prox_mu > 0 and anchor is None:
        raise ValueError("dp_local_train: prox_mu > 0 needs the anchor (the round's global model)")
    if generator is None:
        raise ValueError("dp_local_train: DP-SGD needs a generator (randomness is passed in)")
    n = n.to(X.device)
    q = sampling_rates(n, batch_size=batch_size).to(X.device)
    first_epoch = steps_per_epoch(n, batch_size=batch_size)
    steps = first_epoch * epochs
    if max_steps is not None:
        steps = torch.minimum(steps, max_steps.to(device=steps.device, dtype=steps.dtype))
    # the divisor is the expected batch size, so the realised size (data-dependent) never leaks
    inv_expected = (1.0 / (q * n.clamp(min=1))).to(X.dtype).unsqueeze(1)
    thetas = thetas.clone()
    K = thetas.shape[0]
    loss_sum = torch.zeros(K, dtype=X.dtype, device=X.device)
    loss_steps = torch.zeros_like(loss_sum)
    first_epoch_ends = int(torch.minimum(first_epoch, steps).max()) if K else 0

    batches = _steps(X, y, n, q, steps, n_params=thetas.shape[1],
                     noise_std=noise_multiplier * clip, generator=generator)
    for s, batch in enumerate(batches):
        if s < first_epoch_ends:
            # display only: the mean loss of this step's sampled rows, before clipping
            losses = F.binary_cross_entropy_with_logits(model.apply(thetas, batch.X), batch.y,
                                                        reduction="none")
            counted = ((s < first_epoch) & (batch.sizes > 0)).to(X.dtype)
            loss_sum += (losses * batch.valid).sum(1) / batch.sizes.clamp(min=1) * counted
            loss_steps += counted
        grad = clipped_grad_sum(model, thetas, batch.X, batch.y, batch.valid, clip=clip)
        if batch.noise is not None:
            grad += batch.noise
        grad *= inv_expected
        if prox_mu > 0:
            grad += prox_mu * (thetas - anchor)
        if correction is not None:
            grad += correction
        active = (s < steps).to(X.dtype).unsqueeze(1)
        thetas.addcmul_(grad, active, value=-lr)
    return LocalResult(thetas, loss_sum / loss_steps.clamp(min=1), steps)
