"""Update compression: hand-computed top-k, error feedback, unbiased qsgd8, byte counts."""

import math

import pytest
import torch

from fedlab_core.compression import (
    QSGD8_LEVELS, compress, compress_with_feedback, dense_bytes, download_bytes, qsgd8, qsgd8_bytes,
    topk, topk_bytes, topk_count, upload_bytes)
from fedlab_core.config import COMPRESSIONS, FederationConfig


def updates(m=5, P=40, seed=0, dtype=torch.float64):
    return torch.randn(m, P, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def top(fraction):
    return lambda d: topk(d, fraction=fraction)[0]


# --- top-k ------------------------------------------------------------------


def test_topk_by_hand():
    deltas = torch.tensor([[0.1, -5.0, 3.0, 0.0, -2.0],
                           [1.0, 1.0, -1.0, 0.5, 0.0]])
    sent, kept = topk(deltas, fraction=0.4)          # k = ceil(0.4 * 5) = 2
    assert sent.tolist() == [[0.0, -5.0, 3.0, 0.0, 0.0],
                             [1.0, 1.0, 0.0, 0.0, 0.0]]   # magnitude ties: lower index first
    assert kept.tolist() == [[False, True, True, False, False],
                             [True, True, False, False, False]]


def test_topk_keeps_exactly_k_even_zeros():
    sent, kept = topk(torch.zeros(3, 10), fraction=0.25)
    assert kept.sum(dim=1).tolist() == [3, 3, 3] and not sent.any()


@pytest.mark.parametrize("P, fraction, k", [
    (1000, 0.1, 100), (31, 0.1, 4), (100, 0.07, 7), (10, 1.0, 10), (5, 1e-9, 1), (1, 0.5, 1), (3, 0.34, 2)])
def test_topk_count(P, fraction, k):
    assert topk_count(P, fraction) == k


@pytest.mark.parametrize("P", [1, 2, 7, 31, 1000])
@pytest.mark.parametrize("fraction", [1e-6, 0.01, 0.1, 0.5, 1.0])
def test_topk_k_at_least_one_and_largest(P, fraction):
    deltas = updates(m=3, P=P)
    sent, kept = topk(deltas, fraction=fraction)
    k = kept.sum(dim=1)
    assert (k == max(1, min(P, math.ceil(fraction * P - 1e-9)))).all() and (k >= 1).all()
    # every kept magnitude ≥ every dropped magnitude, in each row
    mag = deltas.abs()
    for row in range(3):
        if (~kept[row]).any():
            assert mag[row][kept[row]].min() >= mag[row][~kept[row]].max()
    torch.testing.assert_close(sent, torch.where(kept, deltas, 0.0), rtol=0, atol=0)


def test_topk_full_fraction_is_identity():
    deltas = updates()
    assert torch.equal(topk(deltas, fraction=1.0)[0], deltas)


# --- error feedback ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_error_feedback_conserves_mass_exactly(dtype):
    deltas, residual = updates(dtype=dtype), updates(seed=1, dtype=dtype)
    sent, new_residual = compress_with_feedback(deltas, residual, top(0.1))
    assert torch.equal(sent + new_residual, deltas + residual)
    # over rounds: sum of sent + final residual == sum of updates + initial residual
    r, total_sent, total_delta = torch.zeros_like(deltas), torch.zeros_like(deltas), torch.zeros_like(deltas)
    for t in range(20):
        d = updates(seed=10 + t, dtype=dtype)
        s, r = compress_with_feedback(d, r, top(0.2))
        total_sent += s
        total_delta += d
    torch.testing.assert_close(total_sent + r, total_delta)


def test_error_feedback_first_round_residual_none_is_zeros():
    deltas = updates()
    a = compress_with_feedback(deltas, None, top(0.3))
    b = compress_with_feedback(deltas, torch.zeros_like(deltas), top(0.3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_error_feedback_catches_up_with_a_constant_update():
    delta = updates(m=3, P=100)
    errors, r, total = [], None, torch.zeros_like(delta)
    without_ef = top(0.05)(delta)
    for t in range(1, 2001):
        sent, r = compress_with_feedback(delta, r, top(0.05))
        total += sent
        if t in (10, 100, 2000):
            errors.append(((total - t * delta).norm() / (t * delta).norm()).item())
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.01
    # without error feedback the same coordinates are dropped forever: the error stays put
    stuck = ((delta - without_ef).norm() / delta.norm()).item()
    assert stuck > 0.5 and errors[2] < stuck / 50


def test_error_feedback_residual_shape_checked():
    with pytest.raises(ValueError, match="residual has shape"):
        compress_with_feedback(updates(m=3), updates(m=4), top(0.1))


# --- qsgd8 ------------------------------------------------------------------


def test_qsgd8_unbiased_within_clt_bound():
    x = updates(m=1, P=50, seed=3)
    n = 20_000
    q = qsgd8(x.expand(n, -1), generator=torch.Generator().manual_seed(0))
    step = x.abs().max() / QSGD8_LEVELS
    p = (x / step) - (x / step).floor()
    sd = step * (p * (1 - p)).sqrt()                # exact std of one draw
    err = (q.mean(dim=0) - x[0]).abs()
    assert (err <= 5 * sd[0] / math.sqrt(n) + 1e-12).all()
    # the bound is not vacuous: the error is of the CLT size, not zero
    assert err.max() > 0.1 * sd.max() / math.sqrt(n)


def test_qsgd8_values_on_grid_and_error_within_one_step():
    x = updates(m=200, P=64, seed=4)
    q = qsgd8(x, generator=torch.Generator().manual_seed(1))
    scale = x.abs().amax(dim=1, keepdim=True)
    codes = q / scale * QSGD8_LEVELS
    torch.testing.assert_close(codes, codes.round(), rtol=0, atol=1e-9)
    assert codes.abs().max() <= QSGD8_LEVELS                 # 255 levels: one signed byte
    err = (q - x).abs()
    assert (err < scale / QSGD8_LEVELS).all()                # stochastic rounding: < one step
    # it is one step, not half: s/255 (nearest rounding's bound) is exceeded by some draws
    assert (err > scale / 255).any()
    # each coordinate lands on one of its two neighbouring grid points
    y = x / scale * QSGD8_LEVELS
    assert ((codes.round() == y.floor()) | (codes.round() == y.ceil())).all()


def test_qsgd8_exact_cases():
    g = torch.Generator().manual_seed(0)
    assert torch.equal(qsgd8(torch.zeros(2, 5), generator=g), torch.zeros(2, 5))
    row = torch.tensor([[-2.0, 2.0, 0.0]])                    # on the grid: unchanged
    assert torch.equal(qsgd8(row, generator=g), row)
    assert qsgd8(torch.tensor([[5.0, 1e-3]]), generator=g)[0, 0] == 5.0   # the max is always exact


def test_qsgd8_keeps_dtype():
    g = torch.Generator().manual_seed(0)
    assert qsgd8(updates(dtype=torch.float32), generator=g).dtype == torch.float32
    assert qsgd8(updates(dtype=torch.float64), generator=g).dtype == torch.float64


def test_qsgd8_deterministic_with_seed():
    x = updates()
    a = qsgd8(x, generator=torch.Generator().manual_seed(7))
    b = qsgd8(x, generator=torch.Generator().manual_seed(7))
    c = qsgd8(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- bytes ------------------------------------------------------------------


def test_bytes_by_hand():
    assert dense_bytes(1000) == 4000
    assert download_bytes(1000) == 4000
    assert topk_bytes(100, 1000) == 400 + 125          # 10 %: values + bitmap (125 < 400 index bytes)
    assert topk_bytes(10, 1000) == 40 + 40             # 1 %: values + int32 indices (40 < 125)
    assert topk_bytes(31, 1000) == 124 + 124           # 31 indices = 124 B < 125 B bitmap
    assert topk_bytes(32, 1000) == 128 + 125           # from k > P/32 the bitmap wins
    assert topk_bytes(1000, 1000) == 4000              # never more than dense
    assert topk_bytes(950, 1000) == 3800 + 125 and topk_bytes(970, 1000) == 4000   # 3880 + 125 > 4000
    assert qsgd8_bytes(1000) == 1004                   # 1 byte a value + one float32 scale
    assert topk_bytes(4, 31) == 16 + 4                 # P = 31: 4 values + 4-byte bitmap
    assert qsgd8_bytes(31) == 35
    assert dense_bytes(0) == 0 and dense_bytes(10, dtype_bytes=2) == 20


def test_upload_bytes_and_ratios():
    assert [upload_bytes(n, 1000, topk_fraction=0.1) for n in COMPRESSIONS] == [4000, 525, 1004]
    assert dense_bytes(31) / upload_bytes("topk", 31, topk_fraction=0.1) == pytest.approx(6.2)
    assert dense_bytes(10_000) / upload_bytes("topk", 10_000, topk_fraction=0.1) == pytest.approx(40000 / 5250)
    assert dense_bytes(10_000) / upload_bytes("qsgd8", 10_000) == pytest.approx(40000 / 10004)


# --- the entry point --------------------------------------------------------


def test_compress_none_passes_through():
    deltas = updates()
    sent, residual, up = compress("none", deltas, residual=None, config=FederationConfig(), generator=None)
    assert sent is deltas and residual is None
    assert up.dtype == torch.int64 and up.tolist() == [160] * 5


def test_compress_topk_with_and_without_feedback():
    deltas, old = updates(m=4, P=1000), updates(m=4, P=1000, seed=9)
    cfg = FederationConfig(compression="topk", topk_fraction=0.1)
    sent, residual, up = compress("topk", deltas, residual=old, config=cfg, generator=None)
    assert up.tolist() == [525] * 4
    assert torch.equal(sent + residual, deltas + old)
    assert ((sent != 0).sum(dim=1) == 100).all()
    cfg = FederationConfig(compression="topk", topk_fraction=0.1, error_feedback=False)
    sent, residual, _ = compress("topk", deltas, residual=old, config=cfg, generator=None)
    assert residual is None and torch.equal(sent, topk(deltas, fraction=0.1)[0])


def test_compress_qsgd8():
    deltas = updates(m=3, P=31)
    cfg = FederationConfig(compression="qsgd8", error_feedback=False)
    sent, residual, up = compress("qsgd8", deltas, residual=None, config=cfg,
                                  generator=torch.Generator().manual_seed(0))
    assert residual is None and up.tolist() == [35] * 3
    assert torch.equal(sent, qsgd8(deltas, generator=torch.Generator().manual_seed(0)))
    cfg = FederationConfig(compression="qsgd8")
    sent, residual, _ = compress("qsgd8", deltas, residual=None, config=cfg,
                                 generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sent + residual, deltas)


def test_compress_deterministic_with_seed():
    deltas = updates()
    cfg = FederationConfig(compression="qsgd8")
    runs = [compress("qsgd8", deltas, residual=None, config=cfg, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*runs))


# --- bad knobs --------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0, 0.0, -0.1, 1.5, float("nan"), float("inf"), True, "0.1", None])
def test_bad_topk_fraction(fraction):
    with pytest.raises(ValueError, match=r"federation\.topk_fraction = .* is not allowed: must be in \(0, 1\]"):
        topk(updates(), fraction=fraction)
    with pytest.raises(ValueError, match=r"federation\.topk_fraction"):
        upload_bytes("topk", 100, topk_fraction=fraction)


def test_bad_knobs_in_entry_point():
    from types import SimpleNamespace
    deltas = updates()
    with pytest.raises(ValueError,
                       match=r"federation\.compression = 'zip' is not allowed: choose one of none, topk, qsgd8"):
        compress("zip", deltas, residual=None, config=FederationConfig(), generator=None)
    with pytest.raises(ValueError, match=r"federation\.topk_fraction = 2 is not allowed"):
        compress("topk", deltas, residual=None, config=SimpleNamespace(topk_fraction=2, error_feedback=True),
                 generator=None)
    with pytest.raises(ValueError, match=r"federation\.error_feedback = 'yes' is not allowed"):
        compress("topk", deltas, residual=None, config=SimpleNamespace(topk_fraction=0.1, error_feedback="yes"),
                 generator=None)
    with pytest.raises(ValueError, match=r"qsgd8.*torch\.Generator"):
        compress("qsgd8", deltas, residual=None, config=FederationConfig(), generator=None)
    with pytest.raises(ValueError, match=r"torch\.Generator"):
        qsgd8(deltas, generator=0)
    with pytest.raises(ValueError, match=r"\(m, P\) tensor"):
        topk(torch.ones(5), fraction=0.1)
    with pytest.raises(ValueError, match="need k ≤ P"):
        topk_bytes(11, 10)
    with pytest.raises(ValueError, match="P = -1"):
        dense_bytes(-1)
