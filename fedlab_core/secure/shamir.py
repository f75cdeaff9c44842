"""Shamir t-of-n secret sharing of 16- and 32-byte secrets (pycryptodome, GF(2^128)).

A secret ``z`` becomes the constant term of a random polynomial ``p`` of
degree ``t − 1`` over GF(2^128); share ``i`` is ``(i, p(i))``. Any ``t``
shares rebuild ``z = p(0)`` by Lagrange interpolation; ``t − 1`` of them say
nothing about it (Shamir 1979).

pycryptodome's ``Shamir`` splits exactly 16-byte secrets, so a 32-byte secret
(an X25519 private key) is shared as its two 16-byte halves, each with its own
polynomial, and a share carries both halves' values at the same index.

The polynomial coefficients come from pycryptodome's own OS randomness, not
from a demo seed: replaying a seeded round gives the same secrets, keys and
masked inputs, but different (equally valid) share bytes.

>>> shares = split_secret(b"0123456789abcdef" * 2, threshold=3, n_shares=5)
>>> [s.index for s in shares], len(shares[0].value)
([1, 2, 3, 4, 5], 32)
>>> combine_shares(shares[2:], threshold=3)
b'0123456789abcdef0123456789abcdef'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from Crypto.Protocol.SecretSharing import Shamir

HALF = 16


@dataclass(frozen=True)
class Share:
    """One holder's share: its index ``i ≥ 1`` and ``p(i)`` (16 bytes per 16-byte half of the secret)."""

    index: int
    value: bytes


def split_secret(secret: bytes, *, threshold: int, n_shares: int) -> list[Share]:
    """Split a 16- or 32-byte secret into ``n_shares`` shares, any ``threshold`` of which rebuild it."""
    if len(secret) not in (HALF, 2 * HALF):
        raise ValueError(f"a secret of {len(secret)} bytes is not allowed: Shamir sharing here takes "
                         f"{HALF} or {2 * HALF} bytes")
    if not 2 <= threshold <= n_shares:
        raise ValueError(f"threshold = {threshold!r} is not allowed: must be in [2, n_shares = {n_shares}]")
    halves = [Shamir.split(threshold, n_shares, secret[i:i + HALF])
              for i in range(0, len(secret), HALF)]
    return [Share(index=parts[0][0], value=b"".join(p[1] for p in parts)) for parts in zip(*halves)]


def combine_shares(shares: Sequence[Share], *, threshold: int) -> bytes:
    """Rebuild the secret from at least ``threshold`` shares with distinct indices (the first ``threshold`` are used)."""
    if len(shares) < threshold:
        raise ValueError(f"only {len(shares)} shares were given; threshold t = {threshold}: "
                         "the secret cannot be rebuilt")
    if len({s.index for s in shares}) != len(shares):
        raise ValueError("two shares carry the same index: each holder's share must be given once")
    use = shares[:threshold]   # pycryptodome interpolates through every share it is given
    size = len(use[0].value)
    if size not in (HALF, 2 * HALF) or any(len(s.value) != size for s in use):
        raise ValueError("shares must all be 16 or all be 32 bytes long")
    return b"".join(Shamir.combine([(s.index, s.value[i:i + HALF]) for s in use])
                    for i in range(0, size, HALF))
