"""Client-level differential privacy on updates: DP-FedAvg and local DP.

Both protect a *whole hospital*: whether or not hospital k took part (central)
or what its update was (local), the published numbers barely change.

- **Central DP-FedAvg** (McMahan et al., ICLR 2018): a trusted server clips
  each update to norm C, sums, adds ``N(0, z²C²)`` and divides by the
  *expected* number of participants ``m = qN``:
  ``Δ̄ = (Σ_k clip(Δ_k, C) + N(0, z²C² I)) / m``. The denominator is fixed (and
  every hospital weighs the same) so that one hospital moves the sum by at
  most C, whatever the others do.
- **Adaptive clipping** (Andrew et al., NeurIPS 2021): C follows the γ-quantile
  of the update norms, privately. ``b_k = 1`` when ``‖Δ_k‖ ≤ C`` (NOT
  clipped), ``b̄ = (Σ b_k + N(0, σ_b²)) / m``, ``C ← C · exp(−η (b̄ − γ))``:
  too many unclipped updates shrink C, too few grow it.
- **Local DP** (no one is trusted): each hospital clips its own update and
  adds ``N(0, (z·2C)²)`` before sending. Any two updates in the ball of
  radius C differ by at most 2C, the sensitivity; averaging m such updates
  leaves √m times more noise in the mean than central DP.

>>> g = torch.Generator().manual_seed(0)
>>> updates = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
>>> clipped, norms = clip_to_norm(updates, clip=1.0)
>>> clipped.tolist(), norms.tolist()
([[0.6000000238418579, 0.800000011920929], [0.30000001192092896, 0.4000000059604645]], [5.0, 0.5])
>>> dp_fedavg(updates, clip=1.0, noise_multiplier=0.0, expected_clients=2, generator=g).tolist()
[0.45000001788139343, 0.6000000238418579]
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def clip_to_norm(updates: Tensor, *, clip: float) -> tuple[Tensor, Tensor]:
    """Scale each row to L2 norm at most ``clip``: ``Δ · min(1, C/‖Δ‖)``. Returns (clipped, norms)."""
    if not clip > 0:
        raise ValueError(f"privacy.clip = {clip!r} is not allowed: must be > 0")
    norms = torch.linalg.vector_norm(updates, dim=1)
    factor = (clip / norms.clamp(min=1e-12)).clamp(max=1.0)
    return updates * factor.unsqueeze(1), norms


def gaussian_noise(shape, *, std: float, like: Tensor, generator: torch.Generator) -> Tensor:
    """``N(0, std²)`` noise drawn on the CPU from ``generator`` (same numbers on every device)."""
    noise = torch.randn(shape, generator=generator, dtype=like.dtype)
    return (noise * std).to(like.device)


def dp_fedavg(updates: Tensor, *, clip: float, noise_multiplier: float, expected_clients: float,
              generator: torch.Generator) -> Tensor:
    """The DP-FedAvg aggregate ``(Σ_k clip(Δ_k, C) + N(0, z²C²)) / m`` (McMahan et al. 2018).

    ``updates`` may have zero rows (nobody was sampled): the server still
    publishes noise, so that an empty round looks like any other.
    """
    clipped, _ = clip_to_norm(updates, clip=clip)
    return noisy_mean(clipped.sum(0), clip=clip, noise_multiplier=noise_multiplier,
                      expected_clients=expected_clients, generator=generator)


def noisy_mean(clipped_sum: Tensor, *, clip: float, noise_multiplier: float, expected_clients: float,
               generator: torch.Generator) -> Tensor:
    """The server's half of DP-FedAvg: ``(Σ + N(0, z²C²)) / m`` on a sum of clipped updates.

    On its own when the sum arrives from secure aggregation: the server adds
    the noise to a sum it never saw the parts of.
    """
    if not expected_clients > 0:
        raise ValueError(f"expected_clients = {expected_clients!r} is not allowed: must be > 0")
    if noise_multiplier > 0:
        clipped_sum = clipped_sum + gaussian_noise(clipped_sum.shape, std=noise_multiplier * clip,
                                                   like=clipped_sum, generator=generator)
    return clipped_sum / expected_clients


def local_dp(updates: Tensor, *, clip: float, noise_multiplier: float,
             generator: torch.Generator) -> Tensor:
    """Each row clipped to C, plus its own ``N(0, (z·2C)²)`` noise (sensitivity 2C)."""
    clipped, _ = clip_to_norm(updates, clip=clip)
    if noise_multiplier == 0:
        return clipped
    return clipped + gaussian_noise(clipped.shape, std=noise_multiplier * 2 * clip, like=clipped,
                                    generator=generator)


def update_noise_multiplier(noise_multiplier: float, *, count_noise: float) -> float:
    """The noise left for the update when adaptive clipping also releases a count.

    Releasing the noisy update (noise ``z_Δ``) and the noisy unclipped count
    (noise ``σ_b``, sensitivity 1/2 after centring) together is as private as
    one Gaussian with ``z``: ``z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2)`` (Andrew et al. 2021, Thm 1).

    >>> round(update_noise_multiplier(1.0, count_noise=100 / 20), 7)
    1.0050378
    """
    if noise_multiplier == 0:
        return 0.0
    rest = noise_multiplier ** -2 - (2 * count_noise) ** -2
    if rest <= 0:
        raise ValueError(
            f"privacy.count_noise = {count_noise:g} is not allowed with privacy.noise_multiplier = "
            f"{noise_multiplier:g}: adaptive clipping needs 2·count_noise > noise_multiplier, "
            "or the count alone spends the whole budget (raise count_noise, or use fixed clipping)")
    return rest ** -0.5


def adaptive_clip(clip: float, *, norms: Tensor, expected_clients: float, target_quantile: float,
                  lr: float, count_noise: float, generator: torch.Generator) -> float:
    """One step of private quantile tracking: ``C · exp(−η (b̄ − γ))`` (Andrew et al. 2021).

    ``b̄`` is the noisy share of updates that were *not* clipped. When more
    than γ of them fit under C, C shrinks; when fewer fit, it grows: so C
    converges to the γ-quantile of the norms from above and from below.
    """
    unclipped = float((norms <= clip).sum())
    if count_noise > 0:
        unclipped += float(torch.randn((), generator=generator, dtype=torch.float64)) * count_noise
    share = unclipped / expected_clients
    return clip * math.exp(-lr * (share - target_quantile))
