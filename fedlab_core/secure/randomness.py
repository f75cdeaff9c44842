"""Where the secrets of a secure sum come from: the operating system, or a seeded stream for demos.

Keys and seeds of a secure-aggregation round must be unpredictable: in real
use they come from ``os.urandom`` (``rng=None``, the default). A teaching run
may want the same masked vectors every time it is replayed, so ``rng`` may
also be a seed (``bytes`` or ``int``), a ``random.Random`` or a NumPy
``Generator``: every 32-byte private key and 16-byte seed is then drawn from
it. Seeded mode is for reproducible demos only: anyone who knows the seed
knows every secret of the round (and ``random.Random`` / NumPy generators are
not cryptographic at all).

A ``bytes``/``int`` seed is expanded by AES-256 in counter mode under
``SHA-256(label ‖ seed)``, so a seed is only as strong as its own entropy.

>>> src = byte_source(b"demo")
>>> len(src(16)), src.seeded
(16, True)
>>> byte_source(b"demo")(16) == byte_source(b"demo")(16)
True
>>> byte_source(None).seeded
False
"""

from __future__ import annotations

import hashlib
import os
import random
from typing import Any, Callable

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_LABEL = b"fedlab.secure.randomness/v1"


def _aes_stream(key: bytes) -> Callable[[int], bytes]:
    """An AES-256-CTR keystream read in order: a deterministic byte generator."""
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    return lambda n: encryptor.update(bytes(n))


class ByteSource:
    """A callable ``source(n) -> n random bytes``; ``seeded`` says whether it is a replayable demo stream."""

    def __init__(self, draw: Callable[[int], bytes], *, seeded: bool) -> None:
        self._draw = draw
        self.seeded = seeded

    def __call__(self, n: int) -> bytes:
        out = bytes(self._draw(n))
        if len(out) != n:   # a generator that hands back fewer bytes would weaken every key silently
            raise RuntimeError(f"the random source returned {len(out)} bytes instead of {n}")
        return out

    def spawn(self) -> ByteSource:
        """An independent source for another party (a client keeps its own stream, as a real device would)."""
        if not self.seeded:
            return ByteSource(os.urandom, seeded=False)
        return ByteSource(_aes_stream(self(32)), seeded=True)

    def permutation(self, n: int) -> list[int]:
        """A uniformly random order of ``range(n)`` (64 random bits per item, ties broken by position)."""
        keys = np.frombuffer(self(8 * n), dtype="<u8")
        return [int(i) for i in np.argsort(keys, kind="stable")]


def byte_source(rng: Any = None) -> ByteSource:
    """Turn ``rng`` into a ``ByteSource``.

    Parameters
    ----------
    rng : None, bytes, int, random.Random, numpy.random.Generator or ByteSource
        ``None``: ``os.urandom`` (real use). Anything else: a replayable
        stream for reproducible demos only.
    """
    if rng is None:
        return ByteSource(os.urandom, seeded=False)
    if isinstance(rng, ByteSource):
        return rng
    if isinstance(rng, (bytes, bytearray)):
        return ByteSource(_aes_stream(hashlib.sha256(_LABEL + b"/bytes/" + bytes(rng)).digest()), seeded=True)
    if isinstance(rng, int) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng = {rng!r} is not allowed: an integer seed must be ≥ 0")
        raw = rng.to_bytes(max(1, (rng.bit_length() + 7) // 8), "little")
        return ByteSource(_aes_stream(hashlib.sha256(_LABEL + b"/int/" + raw).digest()), seeded=True)
    if isinstance(rng, random.Random):
        return ByteSource(rng.randbytes, seeded=True)
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return ByteSource(rng.bytes, seeded=True)
    raise ValueError(f"rng = {rng!r} is not allowed: use None (os.urandom, real use) or, for reproducible "
                     "demos only, a bytes or int seed, a random.Random or a numpy.random.Generator")
