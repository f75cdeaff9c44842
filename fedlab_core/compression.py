"""Compression of the clients' updates: what travels up, and how many bytes it costs.

Every function is batched over the m participating clients: updates are
``(m, P)`` tensors, one row per client. Three choices, named by
``federation.compression``:

- ``none``: the dense update, P float32 values.
- ``topk``: each client sends its k largest-magnitude coordinates
  (Aji & Heafield, EMNLP 2017), k = max(1, ceil(topk_fraction * P)).
- ``qsgd8``: each client sends 8-bit codes of a stochastic, unbiased uniform
  quantiser plus one float32 scale (Alistarh et al., NeurIPS 2017).

With ``federation.error_feedback`` each client adds back what compression
dropped in earlier rounds (Seide et al. 2014; Stich et al. 2018; Karimireddy
et al. 2019): ``sent = C(delta + r)``, ``r' = delta + r - sent``. The residual r
is per client and persists across rounds; the simulation keeps a ``(K, P)``
residual and indexes it by the participants.

Bytes are counted for a float32 wire format from what is actually sent
(the values themselves are not rounded to float32: that error, ~1e-7
relative, is tiny next to the compression's own). The server receives the
dequantised / densified update, so :func:`compress` returns values the
aggregators can use unchanged.

>>> import torch
>>> deltas = torch.tensor([[0.5, -3.0, 1.0, 0.0]])
>>> topk(deltas, fraction=0.25)[0]
tensor([[ 0., -3.,  0.,  0.]])
>>> dense_bytes(1000), topk_bytes(100, 1000), qsgd8_bytes(1000)
(4000, 525, 1004)
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from fedlab_core.config import COMPRESSIONS

Tensor = torch.Tensor
Compressor = Callable[[Tensor], Tensor]

FLOAT32_BYTES = 4
INDEX_BYTES = 4          # int32 coordinate index
QSGD8_LEVELS = 127       # codes -127..127: 255 levels, zero exactly representable


def _reject(field: str, value: Any, why: str) -> ValueError:
    return ValueError(f"federation.{field} = {value!r} is not allowed: {why}")


def _check_fraction(fraction: Any) -> float:
    if (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
            or not math.isfinite(fraction) or not 0 < fraction <= 1):
        raise _reject("topk_fraction", fraction, "must be in (0, 1]")
    return float(fraction)


def _check_updates(deltas: Tensor) -> None:
    if not isinstance(deltas, Tensor) or deltas.dim() != 2:
        shape = tuple(deltas.shape) if isinstance(deltas, Tensor) else type(deltas).__name__
        raise ValueError(f"compression: updates must be an (m, P) tensor, got {shape}")


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"compression: {name} = {value!r} must be an integer ≥ 0")
    return value


# --- what travels ----------------------------------------------------------


def topk_count(P: int, fraction: float) -> int:
    """Coordinates each client keeps: ``k = min(P, max(1, ceil(fraction * P)))``.

    ``fraction * P`` is rounded to 9 decimals first so that 0.07 × 100 gives 7,
    not 8 (0.07 * 100 = 7.000000000000001 in floating point). k ≥ 1 always:
    a client never sends nothing.

    >>> topk_count(1000, 0.1), topk_count(31, 0.1), topk_count(100, 0.07), topk_count(5, 1e-6)
    (100, 4, 7, 1)
    """
    fraction = _check_fraction(fraction)
    P = _check_count("P", P)
    return min(P, max(1, math.ceil(round(fraction * P, 9))))


def topk(deltas: Tensor, *, fraction: float) -> tuple[Tensor, Tensor]:
    """Top-k sparsification, row by row (Aji & Heafield, EMNLP 2017).

    ``C(x)_j = x_j if |x_j| is among the k largest |x| of its row, else 0``,
    with k = :func:`topk_count` ``(P, fraction)``. Exactly k coordinates are
    kept per row, even when some of them are zero; ties in magnitude go to
    the lower index (a stable sort), so the result is deterministic.
    Biased (it drops the small coordinates every time): pair it with error
    feedback (Stich, Cordonnier, Jaggi, NeurIPS 2018).

    Returns ``(sparse_dense, kept_mask)``, both ``(m, P)``: the kept values
    with zeros elsewhere, and a boolean mask of the kept coordinates.

    >>> sent, kept = topk(torch.tensor([[1.0, -4.0, 2.0], [0.0, 0.5, -0.1]]), fraction=0.5)
    >>> sent
    tensor([[ 0.0000, -4.0000,  2.0000],
            [ 0.0000,  0.5000, -0.1000]])
    >>> kept.sum(dim=1).tolist()
    [2, 2]
    """
    _check_updates(deltas)
    k = topk_count(deltas.shape[1], fraction)
    order = deltas.abs().argsort(dim=1, descending=True, stable=True)
    kept = torch.zeros(deltas.shape, dtype=torch.bool, device=deltas.device)
    kept.scatter_(1, order[:, :k], True)
    return torch.where(kept, deltas, torch.zeros_like(deltas)), kept


def qsgd8(deltas: Tensor, *, generator: torch.Generator) -> Tensor:
    """8-bit stochastic uniform quantisation per row, unbiased (after QSGD, Alistarh et al., NeurIPS 2017).

    ``Q(x)_j = s * c_j / 127`` with ``s = max_j |x_j|`` and
    ``c_j = floor(y_j) + Bernoulli(y_j - floor(y_j))``, ``y_j = 127 x_j / s``,
    so ``E[Q(x)] = x`` and ``|Q(x)_j - x_j| < s / 127`` (one grid step).

    Design choices. The row is scaled by its max-abs value, not by its norm
    as QSGD does: at 8 bits the norm only coarsens the grid (``||x||_2 ≥
    max|x|``), QSGD's norm scaling pays off with few levels and Elias coding.
    The grid has 255 levels, codes -127..127 in one signed byte, so zero
    (and the sign) is represented exactly: a coordinate that did not move
    stays unmoved. The per-coordinate variance is at most ``(s/127)^2 / 4``.
    A row of zeros stays zeros. Uniform draws come from ``generator`` on
    the CPU (then move to the updates' device), so a seed gives the same
    codes on every device.

    Returns the dequantised values ``(m, P)``, what the server reconstructs.

    >>> g = torch.Generator().manual_seed(0)
    >>> qsgd8(torch.tensor([[127.0, -3.0, 0.0]]), generator=g)   # on the grid: exact
    tensor([[127.,  -3.,   0.]])
    >>> x = torch.tensor([[1.0, 0.3]]).expand(10_000, 2)
    >>> qsgd8(x, generator=g).mean(dim=0).round(decimals=2)          # unbiased
    tensor([1.0000, 0.3000])
    """
    _check_updates(deltas)
    if not isinstance(generator, torch.Generator):
        raise ValueError("qsgd8: stochastic rounding needs a torch.Generator (randomness is passed in)")
    scale = deltas.abs().amax(dim=1, keepdim=True)
    y = deltas / torch.where(scale > 0, scale, torch.ones_like(scale)) * QSGD8_LEVELS
    low = y.floor()
    u = torch.rand(deltas.shape, generator=generator, dtype=deltas.dtype).to(deltas.device)
    codes = low + (u < y - low).to(deltas.dtype)
    return codes * scale / QSGD8_LEVELS


def compress_with_feedback(deltas: Tensor, residual: Tensor | None,
                           compress_fn: Compressor) -> tuple[Tensor, Tensor]:
    """Error feedback, EF-SGD (Seide et al., Interspeech 2014; Karimireddy et al., ICML 2019).

    ``sent = C(delta + r)``, ``r' = delta + r - sent``: what compression drops
    this round is added back next round, so nothing is lost, only delayed,
    and ``sum_t sent_t = sum_t delta_t - r_T``. ``residual`` is the ``(m, P)``
    residual of these clients (None: zeros, the first round); ``compress_fn``
    maps ``(m, P)`` to ``(m, P)``.

    Returns ``(sent, new_residual)``; ``sent + new_residual == delta + r``
    (exactly for top-k, whose kept values are copied).

    >>> sent, r = compress_with_feedback(torch.tensor([[3.0, 2.0]]), torch.tensor([[0.0, 2.0]]),
    ...                                  lambda d: topk(d, fraction=0.5)[0])
    >>> sent, r
    (tensor([[0., 4.]]), tensor([[3., 0.]]))
    """
    _check_updates(deltas)
    if residual is None:
        corrected = deltas
    elif residual.shape != deltas.shape:
        raise ValueError(f"error feedback: residual has shape {tuple(residual.shape)}, "
                         f"the updates {tuple(deltas.shape)}")
    else:
        corrected = deltas + residual
    sent = compress_fn(corrected)
    return sent, corrected - sent


# --- how many bytes --------------------------------------------------------


def dense_bytes(P: int, dtype_bytes: int = FLOAT32_BYTES) -> int:
    """Bytes of a dense update: ``P * dtype_bytes`` (float32: 4 bytes a value).

    >>> dense_bytes(31), dense_bytes(10, dtype_bytes=8)
    (124, 80)
    """
    return _check_count("P", P) * _check_count("dtype_bytes", dtype_bytes)


def topk_bytes(k: int, P: int) -> int:
    """Bytes of one top-k update: ``min(4P, 4k + min(4k, ceil(P/8)))``.

    The k values travel as float32 (4k bytes). Their positions travel as
    int32 indices (4k bytes) or as a bitmap of P bits (ceil(P/8) bytes),
    whichever is smaller: the bitmap wins once k > P/32. If the sparse form
    is no smaller than the dense update (k close to P) the client sends the
    dense update instead (a real protocol would spend one flag byte; left
    out, as no other format here counts headers).

    >>> topk_bytes(100, 1000)      # 400 values + 125-byte bitmap
    525
    >>> topk_bytes(1, 1000)        # 4 value + 4 index
    8
    >>> topk_bytes(31, 31)         # everything kept: dense
    124
    """
    k, P = _check_count("k", k), _check_count("P", P)
    if k > P:
        raise ValueError(f"compression: top-k keeps k = {k} of P = {P} coordinates; need k ≤ P")
    positions = min(INDEX_BYTES * k, math.ceil(P / 8))
    return min(dense_bytes(P), FLOAT32_BYTES * k + positions)


def qsgd8_bytes(P: int) -> int:
    """Bytes of one qsgd8 update: ``P + 4``, one signed byte a code and one float32 scale.

    >>> qsgd8_bytes(31), qsgd8_bytes(10_000)
    (35, 10004)
    """
    return _check_count("P", P) + FLOAT32_BYTES


def upload_bytes(name: str, P: int, *, topk_fraction: float = 0.1) -> int:
    """Bytes one client sends up in a round under compression ``name``.

    >>> [upload_bytes(n, 10_000) for n in COMPRESSIONS]
    [40000, 5250, 10004]
    """
    if name == "none":
        return dense_bytes(P)
    if name == "topk":
        return topk_bytes(topk_count(P, topk_fraction), P)
    if name == "qsgd8":
        return qsgd8_bytes(P)
    raise _reject("compression", name, f"choose one of {', '.join(COMPRESSIONS)}")


def download_bytes(P: int) -> int:
    """Bytes of the global model one client downloads: dense float32, ``4P``.

    >>> download_bytes(31)
    124
    """
    return dense_bytes(P)


# --- the entry point the simulation calls ----------------------------------


def compress(name: str, deltas: Tensor, *, residual: Tensor | None, config: Any,
             generator: torch.Generator | None) -> tuple[Tensor, Tensor | None, Tensor]:
    """Compress the participants' updates once per round.

    ``name`` is ``federation.compression``; ``config`` a FederationConfig (or
    anything with ``topk_fraction`` and ``error_feedback``); ``residual`` the
    participants' ``(m, P)`` error-feedback residual or None (zeros);
    ``generator`` the RNG for qsgd8 (unused otherwise). Error feedback, when
    on, wraps either compressor: top-k needs it to converge; for the unbiased
    qsgd8 it is optional and keeps the quantisation error from accumulating.

    Returns ``(sent, new_residual, bytes_up)``: the ``(m, P)`` values the
    server receives, the ``(m, P)`` new residual (None for ``none`` or when
    ``error_feedback`` is off), and the ``(m,)`` int64 bytes each client sent.

    >>> from fedlab_core.config import FederationConfig
    >>> cfg = FederationConfig(compression="topk", topk_fraction=0.5)
    >>> sent, r, up = compress(cfg.compression, torch.tensor([[1.0, -2.0, 3.0, 0.5]]), residual=None,
    ...                        config=cfg, generator=None)
    >>> sent, r, up      # 2 float32 values + a 1-byte bitmap of the 4 positions
    (tensor([[ 0., -2.,  3.,  0.]]), tensor([[1.0000, 0.0000, 0.0000, 0.5000]]), tensor([9]))
    """
    if name not in COMPRESSIONS:
        raise _reject("compression", name, f"choose one of {', '.join(COMPRESSIONS)}")
    _check_updates(deltas)
    m, P = deltas.shape
    feedback = getattr(config, "error_feedback")
    if not isinstance(feedback, bool):
        raise _reject("error_feedback", feedback, "must be true or false")
    fraction = getattr(config, "topk_fraction")
    if name == "topk":
        _check_fraction(fraction)
    bytes_up = torch.full((m,), upload_bytes(name, P, topk_fraction=fraction if name == "topk" else 0.1),
                          dtype=torch.int64)
    if name == "none":
        return deltas, None, bytes_up
    if name == "topk":
        def compress_fn(d: Tensor) -> Tensor:
            return topk(d, fraction=fraction)[0]
    else:
        if not isinstance(generator, torch.Generator):
            raise ValueError("federation.compression = 'qsgd8' needs a torch.Generator "
                             "(randomness is passed in)")

        def compress_fn(d: Tensor) -> Tensor:
            return qsgd8(d, generator=generator)
    if not feedback:
        return compress_fn(deltas), None, bytes_up
    sent, new_residual = compress_with_feedback(deltas, residual, compress_fn)
    return sent, new_residual, bytes_up
