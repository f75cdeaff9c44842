"""Client-level mechanisms: clipping bound, noise scale, sensitivity, adaptive clipping."""

import math

import pytest
import torch

from fedlab_core.privacy.mechanisms import (adaptive_clip, clip_to_norm, dp_fedavg, local_dp,
                                            update_noise_multiplier)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_clipping_bound():
    updates = torch.randn(50, 20, generator=gen()) * torch.logspace(-2, 2, 50).unsqueeze(1)
    clipped, norms = clip_to_norm(updates, clip=1.5)
    out = torch.linalg.vector_norm(clipped, dim=1)
    assert (out <= 1.5 + 1e-5).all()
    small = norms <= 1.5
    assert torch.equal(clipped[small], updates[small])            # small updates pass unchanged
    torch.testing.assert_close(out[~small], torch.full_like(out[~small], 1.5))
    # clipping keeps the direction
    cos = torch.nn.functional.cosine_similarity(clipped, updates, dim=1)
    torch.testing.assert_close(cos, torch.ones_like(cos))


def test_one_hospital_moves_the_noiseless_sum_by_at_most_clip():
    updates = torch.randn(8, 5, generator=gen(1)) * 10
    with_all = dp_fedavg(updates, clip=2.0, noise_multiplier=0.0, expected_clients=8, generator=gen())
    without = dp_fedavg(updates[1:], clip=2.0, noise_multiplier=0.0, expected_clients=8, generator=gen())
    assert float(torch.linalg.vector_norm((with_all - without) * 8)) <= 2.0 + 1e-5


def test_noise_std_on_the_average_is_z_clip_over_m():
    z, clip, m = 1.3, 0.7, 20.0
    draws = torch.stack([dp_fedavg(torch.zeros(0, 1000), clip=clip, noise_multiplier=z,
                                   expected_clients=m, generator=gen(s)) for s in range(20)])
    assert float(draws.std()) == pytest.approx(z * clip / m, rel=0.03)
    assert abs(float(draws.mean())) < 3 * z * clip / m / math.sqrt(draws.numel())


def test_local_dp_noise_is_calibrated_to_sensitivity_two_clip():
    noised = local_dp(torch.zeros(10, 5000), clip=0.5, noise_multiplier=2.0, generator=gen())
    assert float(noised.std()) == pytest.approx(2.0 * 2 * 0.5, rel=0.02)
    # no noise: just clipped
    big = torch.full((2, 4), 10.0)
    torch.testing.assert_close(torch.linalg.vector_norm(
        local_dp(big, clip=0.5, noise_multiplier=0.0, generator=gen()), dim=1), torch.full((2,), 0.5))


def test_update_noise_split_matches_andrew_et_al():
    assert update_noise_multiplier(1.0, count_noise=5.0) == pytest.approx(1.0050378, abs=1e-7)
    with pytest.raises(ValueError, match="privacy.count_noise = 0.25 is not allowed"):
        update_noise_multiplier(1.0, count_noise=0.25)


@pytest.mark.parametrize("start", [0.1, 10.0])
def test_adaptive_clipping_converges_to_the_median_from_both_sides(start):
    # 100 clients a round, update norms log-normal with median 1 (Andrew et al.'s setting);
    # Flower 1.42 counts clipped updates with this sign and runs away instead
    g = gen(3)
    clip = start
    for _ in range(120):
        norms = torch.exp(0.5 * torch.randn(100, generator=g))
        clip = adaptive_clip(clip, norms=norms, expected_clients=100, target_quantile=0.5, lr=0.2,
                             count_noise=5.0, generator=g)
    assert clip == pytest.approx(1.0, rel=0.25)


def test_adaptive_clipping_tracks_other_quantiles():
    g = gen(4)
    clip = 1.0
    for _ in range(300):
        norms = torch.rand(200, generator=g) * 4        # uniform on [0, 4]: 0.9-quantile 3.6
        clip = adaptive_clip(clip, norms=norms, expected_clients=200, target_quantile=0.9, lr=0.2,
                             count_noise=0.0, generator=g)
    assert clip == pytest.approx(3.6, rel=0.1)


def test_bad_clip_is_refused():
    with pytest.raises(ValueError, match="privacy.clip = 0 is not allowed: must be > 0"):
        clip_to_norm(torch.ones(2, 2), clip=0)
    with pytest.raises(ValueError, match="privacy.clip = -1.0 is not allowed"):
        dp_fedavg(torch.ones(2, 2), clip=-1.0, noise_multiplier=1.0, expected_clients=2, generator=gen())
