"""Fixed-point encoding of real updates into the ring Z_R, R = 2^bits, for secure sums.

Masks and ciphertexts add integers, not floats. Each client clips its update
to ``[-clip, clip]`` per coordinate and rounds it to the grid of step
``1/scale``; negative values wrap around the ring (two's complement), so the
ring sum of the encodings is the encoding of the real sum:

    encode(x) = round(clip_c(x) · scale) mod R
    decode(s) = (s if s < R/2 else s − R) / scale

The sum of ``n_clients`` encodings decodes without wrapping as long as
``n_clients · clip · scale < R/2``; ``scale_for`` picks the largest such
power of two. Rounding to nearest moves each coordinate of each input by at
most ``1/(2·scale)``, so the decoded sum is within
``n_clients / (2·scale)`` of the clipped real sum (``error_bound``): with
R = 2^32, clip 1 and 100 clients, scale 2^24 and the bound 3e-6.

>>> enc = Encoding(clip=1.0, n_clients=4, bits=32)
>>> enc.scale == 2 ** 28
True
>>> x = np.array([[0.5, -0.25], [-1.0, 0.125], [0.3, 0.3], [2.0, -0.7]])
>>> total = enc.decode(enc.sum(enc.encode(x)))
>>> bool(np.abs(total - np.clip(x, -1, 1).sum(0)).max() <= enc.error_bound)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Encoding:
    """How ``n_clients`` real vectors in ``[-clip, clip]`` map into Z_(2^bits) and back."""

    clip: float
    n_clients: int
    bits: int = 32

    def __post_init__(self) -> None:
        if not (isinstance(self.clip, (int, float)) and math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"secure.clip = {self.clip!r} is not allowed: must be > 0")
        if not (isinstance(self.n_clients, int) and self.n_clients >= 1):
            raise ValueError(f"n_clients = {self.n_clients!r} is not allowed: must be at least 1")
        if self.bits not in (16, 32):
            raise ValueError(f"secure.bits = {self.bits!r} is not allowed: choose 16 or 32")
        if self.scale < 1:
            raise ValueError(f"secure.bits = {self.bits} is too small for {self.n_clients} clients "
                             f"with clip {self.clip:g}: the sum would wrap around the ring")

    @property
    def modulus(self) -> int:
        return 1 << self.bits

    @property
    def scale(self) -> int:
        """The largest power of two with ``n_clients · clip · scale < R/2`` (no wrap-around)."""
        room = (self.modulus // 2 - 1) / (self.n_clients * self.clip)
        return 1 << max(0, math.floor(math.log2(room))) if room >= 1 else 0

    @property
    def error_bound(self) -> float:
        """Largest error of a decoded sum against the clipped real sum: ``n / (2·scale)``."""
        return self.n_clients / (2 * self.scale)

    def encode(self, x: np.ndarray, *, check: bool = False) -> np.ndarray:
        """Clip, scale, round and wrap into the ring: ``uint64`` values below ``R``.

        ``check=True`` refuses values outside ``[-clip, clip]`` instead of clipping them.
        """
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():
            raise ValueError("an update is not allowed to hold NaN or infinity: it cannot be encoded")
        if check and np.abs(x).max(initial=0.0) > self.clip:
            raise ValueError(f"an update value {float(np.abs(x).max()):.4g} is not allowed: outside the "
                             f"clipping range [-{self.clip:g}, {self.clip:g}]")
        q = np.rint(np.clip(x, -self.clip, self.clip) * self.scale).astype(np.int64)
        return np.mod(q, self.modulus).astype(np.uint64)

    def sum(self, encoded: np.ndarray) -> np.ndarray:
        """The ring sum over the first axis (``uint64`` cannot overflow: R ≤ 2^32)."""
        return np.asarray(encoded, dtype=np.uint64).sum(0, dtype=np.uint64) % np.uint64(self.modulus)

    def decode(self, s: np.ndarray) -> np.ndarray:
        """Ring elements back to reals: the upper half of the ring is negative."""
        signed = np.asarray(s, dtype=np.uint64).astype(np.int64)
        signed = np.where(signed >= self.modulus // 2, signed - self.modulus, signed)
        return signed.astype(np.float64) / self.scale
