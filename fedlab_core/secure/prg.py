"""The pseudorandom generator that expands a 128-bit seed into a mask over Z_(2^bits).

Secure aggregation hides each input behind ``PRG(seed)``; the mask is only as
strong as the seed that actually reaches the generator. Here the whole
128-bit seed is the AES-128 key and the mask is the AES-CTR keystream read as
little-endian ``uint32`` words:

    PRG(seed)_i = AES_seed(ctr = i // 4) word (i mod 4)  mod 2^bits

Flower's SecAgg+ feeds its seeds to a 32-bit-seeded NumPy generator, so
2^32 guesses recover any mask; an AES-CTR keystream has no such shortcut, and
seeds that differ anywhere, even beyond their first 32 bits, give unrelated
masks.

>>> a = prg_words(bytes(16), 4)
>>> b = prg_words(bytes(15) + b"\\x01", 4)   # differs only in the last byte
>>> a.dtype, a.shape, bool((a != b).all())
(dtype('uint64'), (4,), True)
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SEED_BYTES = 16


def prg_words(seed: bytes, n_words: int, *, bits: int = 32) -> np.ndarray:
    """Expand a 16-byte seed into ``n_words`` uniform elements of Z_(2^bits) (``uint64``).

    Parameters
    ----------
    seed : bytes
        Exactly 16 bytes (128 bits), used as the AES-128 key.
    n_words : int
        How many ring elements to produce.
    bits : {16, 32}
        The ring Z_(2^bits); 16-bit words are the low halves of the 32-bit
        ones (2^16 divides 2^32, so they stay uniform).
    """
    if not isinstance(seed, (bytes, bytearray)) or len(seed) != SEED_BYTES:
        raise ValueError(f"seed of {len(seed) if isinstance(seed, (bytes, bytearray)) else type(seed).__name__} "
                         f"is not allowed: a mask seed must be exactly {SEED_BYTES} bytes (128 bits)")
    if bits not in (16, 32):
        raise ValueError(f"bits = {bits!r} is not allowed: choose 16 or 32")
    # the counter block starts at zero: each seed is used as a key for one mask only
    stream = Cipher(algorithms.AES(bytes(seed)), modes.CTR(bytes(16))).encryptor().update(bytes(4 * n_words))
    words = np.frombuffer(stream, dtype="<u4").astype(np.uint64)
    return words & np.uint64((1 << bits) - 1)
