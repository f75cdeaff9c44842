"""Secure aggregation by additively homomorphic encryption: Paillier (1999), with packing.

Paillier's cryptosystem (P. Paillier, "Public-key cryptosystems based on
composite degree residuosity classes", EUROCRYPT 1999, LNCS 1592) encrypts
an integer ``m < n`` (``n = p·q``, two secret primes) as

    E(m) = (1 + n)^m · r^n  mod n²          (r random, fresh for every encryption)

and multiplying ciphertexts adds plaintexts: ``E(a) · E(b) mod n² = E(a + b mod n)``.
So an aggregator that only holds the public key ``n`` can sum encrypted
updates, and learns nothing from them (semantic security under the
decisional composite residuosity assumption). The ``phe`` library does the
arithmetic (``pip install phe gmpy2``: without gmpy2 it is ~10x slower).

**Who holds the key.** Three roles, and the separation between them *is*
the protection:

- a **key authority** (:class:`KeyAuthority`) that is *not* the aggregator,
  e.g. an independent ethics board or trusted third party, generates the key
  pair, publishes the public key and decrypts only sums: it refuses an
  aggregate of fewer than ``min_clients`` updates;
- each **client** (hospital) quantises its update with
  :class:`~fedlab_core.secure.quantize.Encoding` and encrypts it
  (:func:`encrypt_update`);
- the **aggregator** multiplies ciphertexts (:func:`aggregate`) and cannot
  decrypt anything.

Whoever holds the private key can decrypt any single hospital's ciphertext
it gets hold of. If the aggregator and the key authority collude (or are
the same party) there is no protection at all. The ``min_clients`` check
models an honest key authority facing an honest-but-curious aggregator.
It cannot see who made a ciphertext, so a malicious aggregator could fool
it, for instance by adding a fresh ``E(0)`` to one hospital's ciphertext
and calling that a sum of two. Real deployments authenticate each
contribution (signatures) or use *threshold* decryption, where the private
key is split among the hospitals and no single party can decrypt
(Damgård & Jurik, PKC 2001). ``phe`` does not do threshold decryption. The
authority should also decrypt one aggregate per round: two sums whose
contributor sets differ by one hospital reveal that hospital's update.

**Fixed point.** Each value is clipped to ``[-clip, clip]``, scaled and
rounded by the shared ``Encoding``: ``q = round(clip_c(x) · scale)``, a
signed integer with ``|q| ≤ q_max = round(clip · scale)``.

- *Unpacked*: one ciphertext per value, plaintext ``q mod n``: a negative
  ``q`` becomes ``n − |q|``, and a decrypted sum ``s > n/2`` reads as
  ``s − n``.
- *Packed* (as in BatchCrypt, Zhang et al., USENIX ATC 2020): several values
  share one plaintext. Each slot holds the offset value ``v = q + q_max`` in
  ``[0, 2·q_max]`` (``value_bits`` bits). It also gets headroom for a sum
  of ``n_clients`` such values, so slots add without carries:

      slot_bits = value_bits + ceil(log2 n_clients) + 1
      n_slots = floor((key_bits − 2) / slot_bits)
      m = Σ_i v_i · 2^(i · slot_bits)

  A sum of ``c ≤ n_clients`` slots stays below ``c · 2^value_bits ≤
  2^(slot_bits − 1)``, and the whole plaintext stays below ``2^(key_bits − 2)
  < n``, so neither a slot nor the plaintext ever wraps. The key authority
  decrypts, cuts the slots, and subtracts ``c · q_max``. One 2048-bit
  ciphertext holds 60 values of a 10-client, 32-bit encoding with clip 1.

**Error bound.** Encryption, packing and the homomorphic sum are exact
integer arithmetic. The only error is the rounding in ``Encoding``, at most
``1/(2·scale)`` per value, so the decoded sum of ``c`` clients is within
``c/(2·scale) ≤ Encoding.error_bound`` of their clipped real sum.

**Dropouts.** A hospital that drops out sends no ciphertext, and the sum
runs over the others with no recovery step. Compare pairwise masking
(``fedlab_core.secure.masking``), where the survivors must reveal Shamir
shares so the dropped hospital's masks can be removed. The price here is
the trusted key authority and much heavier arithmetic. A 2048-bit
ciphertext is 512 bytes (``n²`` has 4096 bits) against 4 bytes for a
masked 32-bit value, and an encryption costs about 10 ms.

**Keys and randomness.** 2048 bits is the minimum for real use (NIST
SP 800-57). Smaller keys (512, 1024) are for tests, doctests and quick
demos only. Keys and the encryption randomness ``r`` come from the
operating system's generator (``random.SystemRandom`` inside ``phe``), not
from a seeded ``rng``, because a reproducible key is a known key. So
ciphertexts differ from run to run. Decoded sums do not: they depend only
on the inputs.

>>> enc = Encoding(clip=1.0, n_clients=3)
>>> X = np.array([[0.5, -0.25, 1.0], [-1.0, 0.125, 0.5], [0.25, 0.25, -0.75]])
>>> res = paillier_sum(X, encoding=enc, key_bits=512, packed=True, dropped=[2])
>>> res.total                          # rows 0 and 1; dyadic values decode exactly
array([-0.5  , -0.125,  1.5  ])
>>> res.n_ciphertexts_per_client, res.bytes_per_client    # three values, one ciphertext
(1, 128)
"""

from __future__ import annotations

import functools
import operator
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from fedlab_core.secure.quantize import Encoding

MIN_KEY_BITS = 512


def _phe():
    """``phe.paillier``, imported on first use (an optional dependency)."""
    try:
        from phe import paillier
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("secure.protocol = 'paillier' needs the 'phe' package "
                          "(and gmpy2 for speed): pip install phe gmpy2") from err
    return paillier


def _check_key_bits(name: str, key_bits: Any) -> int:
    if not (isinstance(key_bits, (int, np.integer)) and not isinstance(key_bits, bool)
            and key_bits >= MIN_KEY_BITS and key_bits % 256 == 0):
        raise ValueError(f"{name} = {key_bits!r} is not allowed: must be a multiple of 256 and at "
                         f"least {MIN_KEY_BITS} (2048 or more for real use; 512 and 1024 only for "
                         "tests and demos)")
    return int(key_bits)


def _signed_ints(encoding: Encoding, x: np.ndarray, *, check: bool) -> np.ndarray:
    """``round(clip_c(x) · scale)`` as signed ``int64``: ``Encoding.encode`` with the ring wrap undone."""
    ring = encoding.encode(x, check=check).astype(np.int64)
    return np.where(ring >= encoding.modulus // 2, ring - encoding.modulus, ring)


def ciphertext_bytes(ciphertext: int, *, public_key: Any) -> bytes:
    """A ciphertext as it goes on the wire: fixed-width big-endian bytes of an integer mod ``n²``.

    The width is that of ``n²``: ``2 · key_bits / 8`` bytes (512 at 2048 bits).
    ``phe``'s JSON form (decimal digits) would be about 2.4 times longer.

    >>> pk = _phe().PaillierPublicKey(n=(1 << 511) + 187)   # any 512-bit n will do for sizes
    >>> len(ciphertext_bytes(12345, public_key=pk))
    128
    """
    return int(ciphertext).to_bytes((public_key.nsquare.bit_length() + 7) // 8, "big")


@dataclass(frozen=True)
class PackingLayout:
    """Where the quantised values sit inside one Paillier plaintext (see the module docstring).

    Slot ``i`` holds ``v_i = q_i + offset`` in bits ``[i·slot_bits, (i+1)·slot_bits)``:
    ``m = Σ_i v_i · 2^(i·slot_bits)``. ``n_clients`` is the most contributions
    a sum may hold without a carry from one slot into the next.

    >>> layout = PackingLayout.plan(Encoding(clip=1.0, n_clients=10, bits=32), key_bits=2048)
    >>> layout.value_bits, layout.slot_bits, layout.n_slots
    (29, 34, 60)
    >>> layout.unpack(layout.pack([3, -5]) + layout.pack([-1, 2]), count=2)[:2]
    [2, -3]
    """

    value_bits: int
    slot_bits: int
    n_slots: int
    offset: int
    n_clients: int

    def __post_init__(self) -> None:
        if self.n_slots < 1:
            raise ValueError(f"n_slots = {self.n_slots} is not allowed: a packed plaintext must hold at "
                             "least one slot")
        if self.slot_bits < self.value_bits + (self.n_clients - 1).bit_length():
            raise ValueError(f"slot_bits = {self.slot_bits} is not allowed: a sum of {self.n_clients} "
                             f"values of {self.value_bits} bits needs at least "
                             f"{self.value_bits + (self.n_clients - 1).bit_length()} bits")

    @classmethod
    def plan(cls, encoding: Encoding, *, key_bits: int) -> PackingLayout:
        """The widest layout for ``encoding`` in a plaintext of a ``key_bits``-bit key.

        ``slot_bits = value_bits + ceil(log2 n_clients) + 1``,
        ``n_slots = floor((key_bits − 2) / slot_bits)``. Raises ``ValueError`` when
        not even one slot fits.
        """
        offset = int(_signed_ints(encoding, np.array([encoding.clip]), check=False)[0])  # q_max
        value_bits = (2 * offset).bit_length()
        slot_bits = value_bits + (encoding.n_clients - 1).bit_length() + 1
        n_slots = (int(key_bits) - 2) // slot_bits
        if n_slots < 1:
            raise ValueError(f"key_bits = {key_bits} is too small for packing: a plaintext of "
                             f"key_bits − 2 = {int(key_bits) - 2} bits cannot hold even one slot of "
                             f"{slot_bits} bits ({encoding.n_clients} clients, {encoding.bits}-bit "
                             "encoding); use a larger key or packed=False")
        return cls(value_bits=value_bits, slot_bits=slot_bits, n_slots=n_slots, offset=offset,
                   n_clients=encoding.n_clients)

    def pack(self, values: Sequence[int] | np.ndarray) -> int:
        """Up to ``n_slots`` signed integers in ``[-offset, offset]`` into one plaintext."""
        v = np.asarray(values, dtype=np.int64).reshape(-1)
        if v.size > self.n_slots:
            raise ValueError(f"values holds {v.size} integers, more than n_slots = {self.n_slots}")
        if v.size and np.abs(v).max() > self.offset:
            raise ValueError(f"a packed value {int(np.abs(v).max())} is not allowed: outside "
                             f"[-{self.offset}, {self.offset}]")
        m = 0
        for i, q in enumerate(v.tolist()):
            m |= (q + self.offset) << (i * self.slot_bits)
        return m

    def unpack(self, plaintext: int, *, count: int) -> list[int]:
        """The ``n_slots`` signed sums in a decrypted sum of ``count`` packed plaintexts."""
        if not 1 <= count <= self.n_clients:
            raise ValueError(f"count = {count} is not allowed: a packed sum holds 1 to "
                             f"{self.n_clients} contributions")
        if not 0 <= plaintext < 1 << (self.n_slots * self.slot_bits):
            raise ValueError("plaintext is not a packed sum: it does not fit in "
                             f"{self.n_slots} slots of {self.slot_bits} bits")
        mask = (1 << self.slot_bits) - 1
        return [((plaintext >> (i * self.slot_bits)) & mask) - count * self.offset
                for i in range(self.n_slots)]


@dataclass(frozen=True)
class EncryptedUpdate:
    """One client's encrypted update: what it sends to the aggregator.

    ``ciphertexts`` are ``phe.paillier.EncryptedNumber`` (raw integers,
    exponent 0); ``layout`` is ``None`` when unpacked; ``n_bytes`` is their
    serialised size (:func:`ciphertext_bytes`). The rest is public metadata.
    """

    ciphertexts: tuple
    n_values: int
    encoding: Encoding
    layout: PackingLayout | None
    public_key: Any
    n_bytes: int
    client: Any = None


@dataclass(frozen=True)
class EncryptedAggregate:
    """The aggregator's ciphertext-wise sum of ``n_contributors`` encrypted updates."""

    ciphertexts: tuple
    n_values: int
    encoding: Encoding
    layout: PackingLayout | None
    public_key: Any
    n_contributors: int
    contributors: tuple = ()


class KeyAuthority:
    """The party that holds the Paillier private key and decrypts only sums.

    It is deliberately *not* the aggregator (see the module docstring).
    ``min_clients`` is the fewest contributions an aggregate must hold before it
    is decrypted. With 1 the authority decrypts a single hospital's update,
    which shows what any key holder could do.

    Parameters
    ----------
    key_bits : int
        Size of the modulus ``n``: a multiple of 256, at least 512. 2048 or more for
        real use. Key generation takes 30 to 80 ms at 2048 bits with gmpy2.
    min_clients : int
        Smallest ``n_contributors`` that :meth:`decrypt_sum` accepts.

    >>> authority = KeyAuthority(key_bits=512, min_clients=2)
    >>> enc = Encoding(clip=1.0, n_clients=3)
    >>> u = encrypt_update(np.array([0.5]), public_key=authority.public_key, encoding=enc,
    ...                    packed=False)
    >>> authority.decrypt_sum(aggregate([u]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: n_contributors = 1 is not allowed: ... at least min_clients = 2 clients' updates ...
    """

    def __init__(self, *, key_bits: int = 2048, min_clients: int = 2) -> None:
        self.key_bits = _check_key_bits("key_bits", key_bits)
        if not (isinstance(min_clients, (int, np.integer)) and not isinstance(min_clients, bool)
                and min_clients >= 1):
            raise ValueError(f"min_clients = {min_clients!r} is not allowed: must be an integer ≥ 1")
        self.min_clients = int(min_clients)
        start = time.perf_counter()
        # phe draws the primes from random.SystemRandom: a key must not come from a seeded rng
        self.public_key, self.__private_key = _phe().generate_paillier_keypair(n_length=self.key_bits)
        self.seconds_keygen = time.perf_counter() - start

    def __repr__(self) -> str:
        return f"KeyAuthority(key_bits={self.key_bits}, min_clients={self.min_clients})"

    def decrypt_sum(self, aggregate: EncryptedAggregate) -> np.ndarray:
        """Decrypt an aggregate into the signed integer sums ``Σ_c q_c`` (``int64``, shape ``(P,)``).

        ``encoding.decode`` of these sums taken mod ``2^bits`` (or dividing them by
        ``encoding.scale``) gives the real sum. An :class:`EncryptedUpdate` counts
        as an aggregate of one contribution. Raises ``ValueError`` when the
        aggregate holds fewer than ``min_clients`` contributions or was made
        under another key.
        """
        if isinstance(aggregate, EncryptedUpdate):
            n_contributors = 1
        elif isinstance(aggregate, EncryptedAggregate):
            n_contributors = aggregate.n_contributors
        else:
            raise TypeError(f"aggregate must be an EncryptedAggregate, not {type(aggregate).__name__}")
        if aggregate.public_key != self.public_key:
            raise ValueError("aggregate.public_key is not allowed: it was encrypted under another "
                             "key than this authority's")
        if n_contributors < self.min_clients:
            raise ValueError(f"n_contributors = {n_contributors} is not allowed: the key authority "
                             f"decrypts only sums of at least min_clients = {self.min_clients} "
                             "clients' updates (one client's ciphertext would reveal its update)")
        n = self.public_key.n
        plain = [self.__private_key.raw_decrypt(c.ciphertext(be_secure=False))
                 for c in aggregate.ciphertexts]
        if aggregate.layout is None:
            sums = [m - n if m > n // 2 else m for m in plain]
        else:
            sums = [s for m in plain for s in aggregate.layout.unpack(m, count=n_contributors)]
        return np.array(sums[:aggregate.n_values], dtype=np.int64)


def encrypt_update(x_real: np.ndarray, *, public_key: Any, encoding: Encoding, packed: bool,
                   client: Any = None, check: bool = True) -> EncryptedUpdate:
    """Quantise one client's update and encrypt it under the key authority's public key.

    ``q = round(clip_c(x) · scale)``. Unpacked: ``E(q_j mod n)``, one ciphertext
    per value. Packed: ``E(Σ_i (q_i + q_max) · 2^(i·slot_bits))``, one per
    ``n_slots`` values (:class:`PackingLayout`).

    Parameters
    ----------
    x_real : ndarray, shape (P,)
        The update.
    public_key : phe.paillier.PaillierPublicKey
        ``KeyAuthority.public_key``.
    encoding : Encoding
        Clip, scale and the most clients a sum may hold; shared by every client.
    packed : bool
        Pack several values per ciphertext.
    client : optional
        An identifier; :func:`aggregate` refuses the same client twice.
    check : bool
        Refuse values outside ``[-clip, clip]`` (default) instead of clipping them.
    """
    paillier = _phe()
    if not isinstance(public_key, paillier.PaillierPublicKey):
        raise TypeError(f"public_key must be a phe PaillierPublicKey, not {type(public_key).__name__}")
    key_bits = _check_key_bits("public_key size (bits of n)", public_key.n.bit_length())
    if not isinstance(encoding, Encoding):
        raise TypeError(f"encoding must be an Encoding, not {type(encoding).__name__}")
    x = np.asarray(x_real, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x_real of shape {x.shape} is not allowed: must be one update, shape (P,)")
    q = _signed_ints(encoding, x, check=check)
    if packed:
        layout = PackingLayout.plan(encoding, key_bits=key_bits)
        plaintexts = [layout.pack(q[i:i + layout.n_slots]) for i in range(0, q.size, layout.n_slots)]
    else:
        layout = None
        plaintexts = [int(v) % public_key.n for v in q.tolist()]
    # raw_encrypt multiplies by a fresh r^n mod n²: the ciphertext is already randomised
    ciphertexts = tuple(paillier.EncryptedNumber(public_key, public_key.raw_encrypt(m))
                        for m in plaintexts)
    n_bytes = sum(len(ciphertext_bytes(c.ciphertext(be_secure=False), public_key=public_key))
                  for c in ciphertexts)
    return EncryptedUpdate(ciphertexts=ciphertexts, n_values=int(x.size), encoding=encoding,
                           layout=layout, public_key=public_key, n_bytes=n_bytes, client=client)


def aggregate(updates: Sequence[EncryptedUpdate]) -> EncryptedAggregate:
    """The aggregator's step: ``E(Σ_c m_c) = Π_c E(m_c) mod n²``, ciphertext by ciphertext.

    It needs only public information, and all updates must share it: the key,
    the encoding, the layout and P. The same client or the same ciphertext
    twice is refused, because doubling one update is an easy way to smuggle it
    past the key authority's ``min_clients`` check.
    """
    updates = list(updates)
    if not updates:
        raise ValueError("updates is empty: an aggregate needs at least one encrypted update")
    first = updates[0]
    for name in ("public_key", "encoding", "layout", "n_values"):
        values = {repr(getattr(u, name)) if name != "public_key" else u.public_key.n for u in updates}
        if len(values) > 1:
            raise ValueError(f"updates disagree on {name}: every client must encrypt under the same "
                             "key, encoding, packing and number of values")
    clients = [u.client for u in updates if u.client is not None]
    if len(set(clients)) < len(clients):
        raise ValueError(f"updates hold client {_first_repeat(clients)!r} more than once: each client "
                         "contributes once")
    seen = [c.ciphertext(be_secure=False) for u in updates for c in u.ciphertexts]
    if len(set(seen)) < len(seen):
        raise ValueError("updates hold the same ciphertext twice: each client contributes once")
    if len(updates) > first.encoding.n_clients:
        raise ValueError(f"{len(updates)} updates is not allowed: encoding.n_clients = "
                         f"{first.encoding.n_clients} is the most a sum may hold without overflow")
    # EncryptedNumber + EncryptedNumber is the product of the ciphertexts mod n²
    ciphertexts = tuple(functools.reduce(operator.add, column)
                        for column in zip(*(u.ciphertexts for u in updates)))
    return EncryptedAggregate(ciphertexts=ciphertexts, n_values=first.n_values, encoding=first.encoding,
                              layout=first.layout, public_key=first.public_key,
                              n_contributors=len(updates), contributors=tuple(clients))


def _first_repeat(items: Iterable) -> Any:
    seen = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


@dataclass(frozen=True)
class PaillierResult:
    """What :func:`paillier_sum` measured.

    ``total`` is the decoded sum of the surviving clients' (clipped) inputs.
    The times are wall-clock seconds: the mean over survivors of quantising and
    encrypting one update, then the aggregator's sum, then the authority's
    decryption. ``ciphertexts`` holds a few of the first survivor's ciphertexts
    as integers, for display.
    """

    total: np.ndarray
    bytes_per_client: int
    seconds_encrypt_per_client: float
    seconds_aggregate: float
    seconds_decrypt: float
    n_ciphertexts_per_client: int
    ciphertexts: tuple
    packed: bool
    n_slots: int
    key_bits: int
    n_contributors: int
    seconds_keygen: float


def paillier_sum(X: np.ndarray, *, encoding: Encoding, key_bits: int | None = None, packed: bool = True,
                 dropped: Iterable[int] = (), authority: KeyAuthority | None = None,
                 check: bool = True, n_examples: int = 3) -> PaillierResult:
    """Sum the rows of ``X`` under Paillier encryption, end to end, and time each role.

    ``total = decode(D(Π_{c ∉ dropped} E(q_c)))``, within ``Encoding.error_bound`` of
    ``Σ_{c ∉ dropped} clip_c(X_c)``.

    Parameters
    ----------
    X : ndarray, shape (n, P)
        One update per client, ``n ≤ encoding.n_clients``.
    encoding : Encoding
        The shared fixed-point encoding.
    key_bits : int, optional
        Key size for a new :class:`KeyAuthority`; 2048 when omitted. When
        ``authority`` is given, it must be omitted or match it.
    packed : bool
        Pack several values per ciphertext.
    dropped : iterable of int
        Rows of clients that drop out and send nothing.
    authority : KeyAuthority, optional
        Reuse a key (key generation is then not timed).
    check : bool
        Refuse values outside ``[-clip, clip]`` (default) instead of clipping them.
    n_examples : int
        How many ciphertexts to keep, as integers, for display.
    """
    if not isinstance(encoding, Encoding):
        raise TypeError(f"encoding must be an Encoding, not {type(encoding).__name__}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X of shape {X.shape} is not allowed: must be (n_clients, P)")
    if X.shape[0] > encoding.n_clients:
        raise ValueError(f"X holds {X.shape[0]} clients, more than encoding.n_clients = "
                         f"{encoding.n_clients}: the sum could overflow")
    dropped = [int(d) for d in dropped]
    bad = [d for d in dropped if not 0 <= d < X.shape[0]]
    if bad or len(set(dropped)) < len(dropped):
        raise ValueError(f"dropped = {dropped} is not allowed: must be distinct row indices in "
                         f"[0, {X.shape[0]})")
    if authority is None:
        authority = KeyAuthority(key_bits=2048 if key_bits is None else key_bits)
        seconds_keygen = authority.seconds_keygen
    else:
        if key_bits is not None and key_bits != authority.key_bits:
            raise ValueError(f"key_bits = {key_bits!r} is not allowed: the authority's key has "
                             f"{authority.key_bits} bits (omit key_bits when passing authority)")
        seconds_keygen = 0.0
    survivors = [c for c in range(X.shape[0]) if c not in set(dropped)]
    if not survivors:
        raise ValueError(f"dropped = {dropped} is not allowed: it leaves no client to sum")
    updates, seconds = [], []
    for c in survivors:
        start = time.perf_counter()
        updates.append(encrypt_update(X[c], public_key=authority.public_key, encoding=encoding,
                                      packed=packed, client=c, check=check))
        seconds.append(time.perf_counter() - start)
    start = time.perf_counter()
    agg = aggregate(updates)
    seconds_aggregate = time.perf_counter() - start
    start = time.perf_counter()
    sums = authority.decrypt_sum(agg)
    seconds_decrypt = time.perf_counter() - start
    total = encoding.decode(np.mod(sums, encoding.modulus).astype(np.uint64))
    first = updates[0]
    return PaillierResult(
        total=total, bytes_per_client=first.n_bytes,
        seconds_encrypt_per_client=float(np.mean(seconds)), seconds_aggregate=seconds_aggregate,
        seconds_decrypt=seconds_decrypt, n_ciphertexts_per_client=len(first.ciphertexts),
        ciphertexts=tuple(c.ciphertext(be_secure=False) for c in first.ciphertexts[:n_examples]),
        packed=bool(packed), n_slots=first.layout.n_slots if first.layout else 1,
        key_bits=authority.key_bits, n_contributors=agg.n_contributors, seconds_keygen=seconds_keygen)
