"""Pairwise-masking secure aggregation (SecAgg, Bonawitz et al. 2017) and its sparse graph (SecAgg+).

The server learns the ring sum of the clients' quantised updates and nothing
else, even when some clients drop out mid-round. This module runs the real
protocol between simulated ``Client`` objects and a ``Server`` that only
routes bytes, stage by stage, as in Bonawitz et al., "Practical Secure
Aggregation for Privacy-Preserving Machine Learning" (CCS 2017), with the
neighbour graph of Bell et al., "Secure Single-Server Aggregation with
(Poly)Logarithmic Overhead" (CCS 2020).

Stage 0, AdvertiseKeys. Each client ``u`` makes two X25519 key pairs,
``(c_u, c_u^PK)`` to encrypt its shares and ``(s_u, s_u^PK)`` to agree on
masks, and sends both public keys; the server broadcasts them (in SecAgg+
each client gets its neighbours' keys only).

Stage 1, ShareKeys. ``u`` draws a 128-bit self-mask seed ``b_u`` and makes
``t``-of-``m`` Shamir shares of ``b_u`` and of ``s_u`` (32 bytes, shared as two
16-byte halves) for the ``m`` holders: itself and its neighbours (every
client in SecAgg; ``k`` of them in SecAgg+, where ``t`` is a threshold within
the neighbourhood). The share for ``v`` is sealed with AES-GCM under
``HKDF(X25519(c_u, c_v^PK))``; the server forwards what it cannot read.

Stage 2, MaskedInputCollection. With ``s_uv = HKDF(X25519(s_u, s_v^PK))``
(128 bits, the same for ``u`` and ``v``) and ``PRG`` the AES-CTR keystream:

    y_u = x_u + PRG(b_u) + Σ_{v ∈ N(u), v > u} PRG(s_uv) − Σ_{v ∈ N(u), v < u} PRG(s_uv)   (mod R)

Stage 3, Unmasking. The server fixes the survivors ``S`` (their ``y_u``
arrived) and the dropped ``D`` (shared, never masked). Each answering
survivor returns, for every client it holds shares of, the share of ``b``
if that client is in ``S`` or the share of ``s`` if it is in ``D``, never
both (a client refuses a request that asks for both). The server rebuilds
``b_u`` for ``u ∈ S`` and ``s_v`` for ``v ∈ D`` from ``t`` shares each and
outputs

    Σ_{u ∈ S} x_u = Σ_{u ∈ S} y_u − Σ_{u ∈ S} PRG(b_u) − Σ_{v ∈ D} Σ_{u ∈ S ∩ N(v)} ±PRG(s_uv)   (mod R)

(+ for ``u < v``): the pairwise masks between survivors cancel on their own.

Threat model: an honest-but-curious server and semi-honest clients; the
public keys are assumed authenticated (a PKI or a trusted roster), so the
signatures and the consistency-check round that Bonawitz et al. add against
an active server are left out. Fewer than ``t`` colluding clients, with or
without the server, learn nothing about any other client's input beyond the
sum. ``R = 2^bits`` comes from ``fedlab_core.secure.quantize.Encoding``.

Randomness: keys and seeds come from ``os.urandom`` unless ``rng`` is given;
a seed, ``random.Random`` or NumPy generator makes a round replayable and is
for reproducible demos only (``fedlab_core.secure.randomness``).

>>> import numpy as np
>>> from fedlab_core.secure.quantize import Encoding
>>> enc = Encoding(clip=1.0, n_clients=4)
>>> x = enc.encode(np.array([[0.5, -0.25], [0.25, 0.5], [-1.0, 1.0], [0.125, 0.0]]))
>>> res = secure_sum(x, encoding=enc, threshold=3, drop_before_masking=[3], rng=b"demo")
>>> res.survivors, res.dropped
((0, 1, 2), (3,))
>>> res.decoded.tolist()
[-0.25, 1.25]
>>> bool((res.total == enc.sum(x[:3])).all()), bool((res.masked[0] != x[0]).all())
(True, True)
"""

from __future__ import annotations

import math
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from fedlab_core.secure.channel import KEY_BYTES, NONCE_BYTES, KeyPair, agree, seal, unseal
from fedlab_core.secure.graph import GRAPHS, check_degree, neighbour_graph
from fedlab_core.secure.prg import SEED_BYTES, prg_words
from fedlab_core.secure.quantize import Encoding
from fedlab_core.secure.randomness import byte_source
from fedlab_core.secure.shamir import Share, combine_shares, split_secret

STAGES = ("AdvertiseKeys", "ShareKeys", "MaskedInputCollection", "Unmasking")

_MASK_INFO = b"fedlab secagg v1: pairwise mask seed"
_SHARE_INFO = b"fedlab secagg v1: share encryption"
# a sealed share: sender, receiver, share index, share of b_u (16 bytes), share of s_u (two 16-byte halves)
_SHARE = struct.Struct("<III16s32s")
# an unmasking answer entry: owner, kind (0 = share of b, 1 = share of s), index, then the share itself
_ANSWER = struct.Struct("<IBI")
_KIND_BYTES = {0: SEED_BYTES, 1: KEY_BYTES}
_ROSTER_HEADER = 5      # threshold (4 bytes) and bits (1 byte)
_ROSTER_ENTRY = 4 + 2 * KEY_BYTES   # a neighbour's id and its two public keys


def _pair(sender: int, receiver: int) -> bytes:
    return struct.pack("<II", sender, receiver)


def _check_id(client: Any) -> None:
    if isinstance(client, bool) or not isinstance(client, (int, np.integer)) or not 0 <= client < 2 ** 32:
        raise ValueError(f"client id {client!r} is not allowed: must be an integer in [0, 2^32)")


def check_threshold(threshold: Any) -> None:
    """Refuse a threshold that is not an integer ≥ 2 (or 0, the default) before anything is known about ``n``."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or threshold < 0:
        raise ValueError(f"secure.threshold = {threshold!r} is not allowed: must be an integer ≥ 2 "
                         "(0 = two thirds of each client's share holders)")
    if threshold == 1:
        raise ValueError("secure.threshold = 1 is not allowed: must be at least 2 (0 = two thirds of each "
                         "client's share holders): with 1 share a single client could rebuild another's secret")


def resolve_threshold(threshold: int, n_holders: int, *, graph: str = "complete") -> int:
    """The Shamir threshold ``t`` for secrets held by ``n_holders`` clients; 0 means ``⌈2·n_holders/3⌉``.

    Raises ``ValueError`` for ``t < 2`` (one share would be the secret) or
    ``t > n_holders`` (the secret could never be rebuilt).
    """
    check_threshold(threshold)
    if threshold == 0:
        return max(2, math.ceil(2 * n_holders / 3))
    if threshold > n_holders:
        who = (f"all {n_holders} clients" if graph == "complete"
               else f"a client and its {n_holders - 1} neighbours, so at most degree + 1")
        raise ValueError(f"secure.threshold = {threshold} is not allowed: must be at most {n_holders}, the number "
                         f"of clients holding shares of each secret ({who})")
    return int(threshold)


@dataclass(frozen=True)
class Roster:
    """What the server broadcasts to one client after stage 0: its neighbours and their public keys.

    ``public_keys[v] = (c_v^PK, s_v^PK)`` for the client itself and each neighbour.
    """

    client: int
    threshold: int
    bits: int
    neighbours: tuple[int, ...]
    public_keys: Mapping[int, tuple[bytes, bytes]]

    @property
    def holders(self) -> tuple[int, ...]:
        """Who gets a share of this client's secrets: itself and its neighbours (Shamir index = position + 1)."""
        return tuple(sorted((self.client, *self.neighbours)))

    @property
    def nbytes(self) -> int:
        return _ROSTER_HEADER + _ROSTER_ENTRY * len(self.neighbours)


class _Clock:
    seconds: float

    @contextmanager
    def _clock(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start


class Client(_Clock):
    """One client's side of SecAgg: it keeps its secrets and sends only what the protocol allows.

    Call, in order: ``advertise_keys()`` → ``share_keys(roster)`` →
    ``masked_input(x_encoded, inbox)`` → ``unmask(survivors, dropped)``. A
    client that drops out simply stops being called. ``seconds`` and
    ``prg_words`` add up its own computation.

    Parameters
    ----------
    client_id : int
    rng : optional
        ``None`` (os.urandom) in real use; a seed or generator for
        reproducible demos only (see ``fedlab_core.secure.randomness``).
    name : str, optional
        How the log and errors call it (e.g. a hospital's name).
    """

    def __init__(self, client_id: int, *, rng: Any = None, name: str | None = None) -> None:
        _check_id(client_id)
        self.id = int(client_id)
        self.name = name or f"client {client_id}"
        self._source = byte_source(rng)
        self.seconds = 0.0
        self.prg_words = 0
        self._stage = 0
        self._held: dict[int, tuple[int, bytes, bytes]] = {}   # owner → (index, share of b, share of s)
        self._answered: tuple[frozenset[int], frozenset[int], bytes] | None = None

    def _expect(self, stage: int, method: str) -> None:
        if self._stage != stage:
            raise ValueError(f"{self.name}: {method}() belongs to stage {stage} ({STAGES[stage]}), but the "
                             f"client is at stage {self._stage}: call the stages in order")

    def advertise_keys(self) -> bytes:
        """Stage 0: two fresh X25519 key pairs; returns ``c^PK ‖ s^PK`` (64 bytes)."""
        self._expect(0, "advertise_keys")
        with self._clock():
            self._c = KeyPair.generate(self._source)
            self._s = KeyPair.generate(self._source)
            self._stage = 1
            return self._c.public + self._s.public

    def share_keys(self, roster: Roster) -> dict[int, bytes]:
        """Stage 1: Shamir shares of ``b_u`` and ``s_u`` for each holder, sealed for each neighbour.

        Returns ``{neighbour: AES-GCM ciphertext}``; the client keeps its own share.
        """
        self._expect(1, "share_keys")
        with self._clock():
            if roster.client != self.id or roster.public_keys.get(self.id) != (self._c.public, self._s.public):
                raise ValueError(f"{self.name}: the roster is not this client's (wrong id or public keys)")
            holders = roster.holders
            t = resolve_threshold(roster.threshold, len(holders))
            self._roster = roster
            self._b = self._source(SEED_BYTES)
            b_shares = split_secret(self._b, threshold=t, n_shares=len(holders))
            s_shares = split_secret(self._s.private_bytes(), threshold=t, n_shares=len(holders))
            out = {}
            for v, b, s in zip(holders, b_shares, s_shares):
                if v == self.id:
                    self._held[v] = (b.index, b.value, s.value)
                    continue
                key = agree(self._c.private, roster.public_keys[v][0], info=_SHARE_INFO + _pair(self.id, v))
                out[v] = seal(key, _SHARE.pack(self.id, v, b.index, b.value, s.value),
                              aad=_pair(self.id, v), nonce=self._source(NONCE_BYTES))
            self._stage = 2
            return out

    def masked_input(self, x_encoded: np.ndarray, inbox: Mapping[int, bytes]) -> bytes:
        """Stage 2: open the shares received, then send ``y_u`` (``bits/8`` bytes per value).

        Masks are agreed with the neighbours whose shares arrived (``inbox``):
        a neighbour that dropped before sharing is left out, as in the paper.
        """
        self._expect(2, "masked_input")
        with self._clock():
            roster = self._roster
            modulus = 1 << roster.bits
            x = np.asarray(x_encoded)
            if x.ndim != 1 or not np.issubdtype(x.dtype, np.integer):
                raise ValueError(f"{self.name}: x_encoded must be a 1-D array of ring elements "
                                 f"(Encoding.encode), not {x.dtype} of shape {x.shape}")
            if x.size and (x.min() < 0 or int(x.max()) >= modulus):
                raise ValueError(f"{self.name}: x_encoded holds values outside Z_(2^{roster.bits}): "
                                 "encode updates with Encoding.encode first")
            for w, message in inbox.items():
                if w not in roster.neighbours:
                    raise ValueError(f"{self.name}: a share from client {w}, who is not a neighbour, is not allowed")
                key = agree(self._c.private, roster.public_keys[w][0], info=_SHARE_INFO + _pair(w, self.id))
                sender, receiver, index, b, s = _SHARE.unpack(unseal(key, message, aad=_pair(w, self.id)))
                if (sender, receiver) != (w, self.id):
                    raise ValueError(f"{self.name}: a share claims to come from {sender} to {receiver}, "
                                     f"but was routed from {w}")
                self._held[w] = (index, b, s)
            n = x.size
            y = x.astype(np.uint64) + prg_words(self._b, n, bits=roster.bits)
            for v in sorted(inbox):
                p = prg_words(agree(self._s.private, roster.public_keys[v][1], info=_MASK_INFO), n,
                              bits=roster.bits)
                # uint64 arithmetic wraps mod 2^64, a multiple of R: the final "mod R" stays exact
                y = y + p if self.id < v else y - p
            self.prg_words += n * (1 + len(inbox))
            self._stage = 3
            return (y % np.uint64(modulus)).astype(f"<u{roster.bits // 8}").tobytes()

    def unmask(self, survivors: Iterable[int], dropped: Iterable[int]) -> bytes:
        """Stage 3: shares of ``b`` for survivors, of ``s`` for dropped clients, never both for one client.

        Raises ``ValueError`` if a client is in both lists, if this client is
        called dropped, or if the lists change after a first answer.
        """
        survivors, dropped = frozenset(int(u) for u in survivors), frozenset(int(u) for u in dropped)
        if self._answered is not None:
            if (survivors, dropped) == self._answered[:2]:
                return self._answered[2]
            raise ValueError(f"{self.name} refuses: unmasking already began with survivors "
                             f"{sorted(self._answered[0])} and dropped {sorted(self._answered[1])}; the survivor "
                             "set cannot change once stage 3 started (it would reveal both secrets of a client)")
        self._expect(3, "unmask")
        with self._clock():
            both = sorted(survivors & dropped)
            if both:
                raise ValueError(f"{self.name} refuses: the server asks for both the share of client {both[0]}'s "
                                 "self-mask seed b and the share of its mask key s; together they would unmask "
                                 "its input")
            if self.id in dropped:
                raise ValueError(f"{self.name} refuses: the server lists it as dropped although it sent its "
                                 "masked input (its mask key would unmask that input)")
            parts = []
            for owner in sorted(self._held):
                index, b, s = self._held[owner]
                if owner in survivors:
                    parts.append(_ANSWER.pack(owner, 0, index) + b)
                elif owner in dropped:
                    parts.append(_ANSWER.pack(owner, 1, index) + s)
            payload = b"".join(parts)
            self._answered = (survivors, dropped, payload)
            self._stage = 4
            return payload


class Server(_Clock):
    """The server's side of SecAgg: routes bytes, counts them, and rebuilds only the sum.

    Call, in order: ``receive_keys`` (per client) → ``broadcast_roster`` →
    ``receive_shares`` (per client) → ``forward_shares`` → ``receive_masked``
    (per client) → ``start_unmasking`` → ``receive_unmask`` (per client) →
    ``finish``. A client that never calls in has dropped out.

    After a round, ``bytes_sent[u]`` / ``bytes_received[u]`` hold each
    client's upload / download per stage, ``shares_received[u]`` the holders
    whose shares of ``u``'s ``"b"`` and ``"s"`` reached the server,
    ``self_mask_seeds`` the rebuilt ``b_u`` of the survivors, and ``log`` a
    transcript.

    Parameters
    ----------
    n_params : int
        Length ``P`` of every input vector.
    threshold : int
        Shamir threshold ``t`` within each client's share holders (≥ 2; 0 =
        two thirds of them).
    bits : {16, 32}
        The ring Z_(2^bits) (``Encoding.bits``).
    graph : {"complete", "harary"}
        SecAgg (every pair masks) or SecAgg+ (a random Harary graph).
    degree : int, optional
        Neighbours per client for ``"harary"`` (even; default ``2⌈log2 n⌉``).
    rng : optional
        Draws the Harary ring order; ``None`` → os.urandom.
    names : mapping or sequence of str, optional
        Names of the clients for the log and errors.
    """

    def __init__(self, *, n_params: int, threshold: int = 0, bits: int = 32, graph: str = "complete",
                 degree: int | None = None, rng: Any = None,
                 names: Mapping[int, str] | Sequence[str] | None = None) -> None:
        if isinstance(n_params, bool) or not isinstance(n_params, (int, np.integer)) or n_params < 1:
            raise ValueError(f"n_params = {n_params!r} is not allowed: must be an integer ≥ 1")
        if bits not in (16, 32):
            raise ValueError(f"secure.bits = {bits!r} is not allowed: choose 16 or 32")
        if graph not in GRAPHS:
            raise ValueError(f"secure.graph = {graph!r} is not allowed: choose one of {', '.join(GRAPHS)}")
        check_threshold(threshold)
        self.n_params, self.bits, self.graph, self.degree = int(n_params), bits, graph, degree
        self.requested_threshold = threshold
        self.threshold: int | None = None
        self._source = byte_source(rng)
        self._names = dict(enumerate(names)) if isinstance(names, Sequence) else dict(names or {})
        self.seconds = 0.0
        self.prg_words = 0
        self.stage = 0
        self.public_keys: dict[int, tuple[bytes, bytes]] = {}
        self.neighbours: dict[int, tuple[int, ...]] = {}
        self.bytes_sent: dict[int, list[int]] = {}
        self.bytes_received: dict[int, list[int]] = {}
        self.masked: dict[int, np.ndarray] = {}
        self.survivors: tuple[int, ...] = ()
        self.dropped: tuple[int, ...] = ()
        self.shares_received: dict[int, dict[str, dict[int, Share]]] = {}
        self.self_mask_seeds: dict[int, bytes] = {}
        self.log: list[str] = []
        self._outbox: dict[int, dict[int, bytes]] = {}
        self._requests: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._answered: set[int] = set()
        self._withdrawn: set[int] = set()

    # -- helpers ---------------------------------------------------------------------------------
    def label(self, client: int) -> str:
        return self._names.get(client, f"client {client}")

    def _labels(self, clients: Iterable[int]) -> str:
        return ", ".join(self.label(u) for u in clients) or "none"

    def _expect(self, stage: int, method: str) -> None:
        if self.stage != stage:
            raise ValueError(f"the server's {method}() belongs to stage {stage} ({STAGES[stage]}), but the "
                             f"round is at stage {self.stage}" + (f" ({STAGES[self.stage]})" if self.stage < 4
                                                                  else " (finished)"))

    def _known(self, client: int) -> None:
        if client not in self.public_keys:
            raise ValueError(f"{self.label(client)} did not advertise keys in stage 0: it is not in this round")

    def _refuse_withdrawn(self, client: int) -> None:
        if client in self._withdrawn:
            raise ValueError(f"{self.label(client)} withdrew from this round: its messages are not accepted")

    # -- stage 0 ---------------------------------------------------------------------------------
    def receive_keys(self, client: int, message: bytes) -> None:
        """Stage 0: a client's ``c^PK ‖ s^PK``."""
        self._expect(0, "receive_keys")
        with self._clock():
            _check_id(client)
            if len(message) != 2 * KEY_BYTES:
                raise ValueError(f"{self.label(client)}'s keys are {len(message)} bytes: expected {2 * KEY_BYTES}")
            if client in self.public_keys:
                raise ValueError(f"{self.label(client)} advertised keys twice")
            self.public_keys[client] = (bytes(message[:KEY_BYTES]), bytes(message[KEY_BYTES:]))
            self.bytes_sent[client] = [len(message), 0, 0, 0]
            self.bytes_received[client] = [0, 0, 0, 0]

    def broadcast_roster(self) -> dict[int, Roster]:
        """End of stage 0: draw the neighbour graph, fix ``t``, send each client its neighbours' keys."""
        self._expect(0, "broadcast_roster")
        with self._clock():
            ids = sorted(self.public_keys)
            n = len(ids)
            if n < 2:
                raise ValueError(f"n_clients = {n} is not allowed: secure aggregation needs at least 2 clients "
                                 "(the sum of one input is that input)")
            k = check_degree(self.degree, n, graph=self.graph)
            order = self._source.permutation(n) if k < n - 1 else None
            self.neighbours = neighbour_graph(ids, graph=self.graph, degree=k, order=order)
            self.threshold = t = resolve_threshold(self.requested_threshold, k + 1, graph=self.graph)
            rosters = {u: Roster(client=u, threshold=t, bits=self.bits, neighbours=self.neighbours[u],
                                 public_keys={v: self.public_keys[v] for v in (u, *self.neighbours[u])})
                       for u in ids}
            for u, r in rosters.items():
                self.bytes_received[u][0] += r.nbytes
            shape = ("complete graph: each client masks with all others" if k == n - 1 else
                     f"Harary graph H({k}, {n}) over a random ring order: each client masks with {k} neighbours")
            self.log.append(f"stage 0 (AdvertiseKeys): {n} clients sent 2 public keys each ({2 * KEY_BYTES} "
                            f"bytes); the server sends each its neighbours' keys ({shape}); threshold t = {t} "
                            f"of the {k + 1} holders of each client's secrets")
            self.stage = 1
            return rosters

    # -- stage 1 ---------------------------------------------------------------------------------
    def receive_shares(self, client: int, ciphertexts: Mapping[int, bytes]) -> None:
        """Stage 1: a client's sealed shares, ``{recipient: ciphertext}`` (the server cannot read them)."""
        self._expect(1, "receive_shares")
        with self._clock():
            self._known(client)
            self._refuse_withdrawn(client)
            stray = sorted(set(ciphertexts) - set(self.neighbours[client]))
            if stray:
                raise ValueError(f"{self.label(client)} sent shares to {self._labels(stray)}, who are not its "
                                 "neighbours")
            self._outbox[client] = {int(v): bytes(c) for v, c in ciphertexts.items()}
            size = sum(len(c) for c in ciphertexts.values())
            self.bytes_sent[client][1] += size
            per = f"{size // len(ciphertexts)} bytes each" if ciphertexts else "none"
            self.log.append(f"stage 1 (ShareKeys): {self.label(client)} split its self-mask seed b and its mask "
                            f"key s into {len(ciphertexts) + 1} Shamir shares (t = {self.threshold}), kept one "
                            f"and sent {len(ciphertexts)} encrypted shares ({per}) for the server to forward")

    def forward_shares(self) -> dict[int, dict[int, bytes]]:
        """End of stage 1: each client that shared gets ``{sender: ciphertext}``."""
        self._expect(1, "forward_shares")
        with self._clock():
            shared = sorted(self._outbox)
            for u in sorted(set(self.public_keys) - set(shared)):
                self.log.append(f"stage 1 (ShareKeys): {self.label(u)} dropped before sharing its keys: nobody "
                                "masks with it and its input is not in the sum")
            if len(shared) < self.threshold:
                raise ValueError(f"only {len(shared)} clients shared their keys; threshold t = {self.threshold}: "
                                 "the round stops (no secret could ever be rebuilt)")
            inbox: dict[int, dict[int, bytes]] = {v: {} for v in shared}
            for u in shared:
                for v, c in self._outbox[u].items():
                    if v in inbox:   # a client that never shared is gone: its mail is not delivered
                        inbox[v][u] = c
                        self.bytes_received[v][1] += len(c)
            self._inbox = inbox
            self.stage = 2
            return inbox

    # -- stage 2 ---------------------------------------------------------------------------------
    def receive_masked(self, client: int, payload: bytes) -> None:
        """Stage 2: a client's masked input ``y_u`` (``bits/8`` bytes per value)."""
        if self.stage >= 3:
            raise ValueError(f"{self.label(client)}'s masked input arrived after unmasking began: the survivor "
                             f"set is fixed ({self._labels(self.survivors)}); it is not in this round's sum")
        self._expect(2, "receive_masked")
        with self._clock():
            self._refuse_withdrawn(client)
            if client not in self._inbox:
                raise ValueError(f"{self.label(client)} sent a masked input without having shared its keys: "
                                 "nobody could unmask it")
            width = self.bits // 8
            if len(payload) != width * self.n_params:
                raise ValueError(f"{self.label(client)}'s masked input is {len(payload)} bytes: expected "
                                 f"{width} × n_params = {width * self.n_params}")
            self.masked[client] = np.frombuffer(payload, dtype=f"<u{width}").astype(np.uint64)
            self.bytes_sent[client][2] += len(payload)
            self.log.append(f"stage 2 (MaskedInputCollection): {self.label(client)} sent its masked input "
                            f"({len(payload)} bytes: {self.n_params} values of {width} bytes)")

    def mark_dropped(self, client: int) -> None:
        """A client withdraws before unmasking (its masked input, if any, is discarded).

        Once stage 3 started the survivor set is fixed: survivors may already
        have revealed shares of this client's ``b``, and treating it as
        dropped now would make them reveal shares of its ``s`` too.
        """
        if self.stage >= 3:
            raise ValueError(f"{self.label(client)} cannot drop out now: unmasking began with the survivors "
                             f"fixed as {self._labels(self.survivors)}; changing them would reveal both its "
                             "self-mask seed and its mask key, hence its input. The round must finish with "
                             "this survivor set (or be abandoned)")
        self._known(client)
        # its shares, if sent, stay with the others: they may be needed to remove its pairwise masks
        self.masked.pop(client, None)
        self._withdrawn.add(client)
        self.log.append(f"{self.label(client)} withdrew before unmasking: it is treated as dropped")

    # -- stage 3 ---------------------------------------------------------------------------------
    def start_unmasking(self) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
        """Fix survivors and dropped; ask each survivor about the clients whose shares it holds.

        Returns ``{survivor: (survivors it holds shares of, dropped it holds shares of)}``.
        """
        self._expect(2, "start_unmasking")
        with self._clock():
            self.survivors = tuple(sorted(self.masked))
            self.dropped = tuple(sorted(set(self._inbox) - set(self.survivors)))
            t = self.threshold
            for v in self.dropped:
                self.log.append(f"stage 2 (MaskedInputCollection): {self.label(v)} dropped after sharing its "
                                "keys: its masked input never came")
            if len(self.survivors) < t:
                raise ValueError(f"only {len(self.survivors)} masked inputs reached the server; threshold t = {t}: "
                                 "the round stops (a sum over fewer than t clients is not released)")
            s_set, d_set = set(self.survivors), set(self.dropped)
            # a dropped client's key is asked for only if some survivor masked with it
            needed = {v for v in d_set if any(u in s_set for u in self.neighbours[v])}
            for u in self.survivors:
                owners = {u} | {w for w, box in self._outbox.items() if u in box and w in self._inbox}
                self._requests[u] = (tuple(sorted(owners & s_set)), tuple(sorted(owners & needed)))
                self.bytes_received[u][3] += 8 + 4 * sum(map(len, self._requests[u]))
            self.shares_received = {u: {"b": {}, "s": {}} for u in self._inbox}
            self.log.append(f"stage 3 (Unmasking): the server announces {len(self.survivors)} survivors "
                            f"({self._labels(self.survivors)}) and {len(self.dropped)} dropped "
                            f"({self._labels(self.dropped)}); it asks each survivor for its shares of the "
                            "survivors' self-mask seeds b and of the dropped clients' mask keys s, never both "
                            "for one client")
            self.stage = 3
            return dict(self._requests)

    def receive_unmask(self, client: int, payload: bytes) -> None:
        """Stage 3: a survivor's shares, as asked for by ``start_unmasking``."""
        self._expect(3, "receive_unmask")
        with self._clock():
            if client not in self._requests:
                raise ValueError(f"{self.label(client)} is not a survivor: it was not asked to unmask")
            if client in self._answered:
                raise ValueError(f"{self.label(client)} answered the unmasking twice")
            asked_b, asked_s = map(set, self._requests[client])
            pos, n_b, n_s = 0, 0, 0
            while pos < len(payload):
                if pos + _ANSWER.size > len(payload):
                    raise ValueError(f"{self.label(client)}'s unmasking answer is truncated")
                owner, kind, index = _ANSWER.unpack_from(payload, pos)
                pos += _ANSWER.size
                value = bytes(payload[pos:pos + _KIND_BYTES.get(kind, 0)])
                pos += len(value)
                if owner not in (asked_b if kind == 0 else asked_s) or len(value) != _KIND_BYTES.get(kind):
                    raise ValueError(f"{self.label(client)} sent a share the server did not ask for "
                                     f"(client {owner}, kind {kind})")
                self.shares_received[owner]["bs"[kind]][client] = Share(index=index, value=value)
                n_b, n_s = n_b + (kind == 0), n_s + (kind == 1)
            self._answered.add(client)
            self.bytes_sent[client][3] += len(payload)
            self.log.append(f"stage 3 (Unmasking): {self.label(client)} returned {n_b} shares of self-mask seeds "
                            f"and {n_s} of mask keys ({len(payload)} bytes)")

    def finish(self) -> np.ndarray:
        """Rebuild the secrets, strip the masks, return ``Σ_{u ∈ S} x_u mod R`` (``uint64``, shape ``(P,)``)."""
        self._expect(3, "finish")
        with self._clock():
            t, modulus, P = self.threshold, 1 << self.bits, self.n_params
            for u in self.survivors:
                if u not in self._answered:
                    self.log.append(f"stage 3 (Unmasking): {self.label(u)} sent its masked input but did not "
                                    "answer the unmasking: its self-mask seed must come from the others' shares")
            needed = sorted({v for _, d in self._requests.values() for v in d})
            # check every count first: a round either yields the exact sum or a clear error, never half of one
            for v in needed:
                got = len(self.shares_received[v]["s"])
                if got < t:
                    raise ValueError(f"only {got} shares of {self.label(v)}'s key reached the server; threshold "
                                     f"t = {t}: the sum cannot be recovered ({self.label(v)} dropped, so its "
                                     "pairwise masks can only be removed with its mask key s)")
            for u in self.survivors:
                got = len(self.shares_received[u]["b"])
                if got < t:
                    raise ValueError(f"only {got} shares of {self.label(u)}'s self-mask seed reached the server; "
                                     f"threshold t = {t}: the sum cannot be recovered")
            total = np.zeros(P, dtype=np.uint64)
            for u in self.survivors:
                total += self.masked[u]
            s_set = set(self.survivors)
            for v in self.dropped:
                partners = [u for u in self.neighbours[v] if u in s_set]
                if not partners:
                    self.log.append(f"stage 3 (Unmasking): {self.label(v)} dropped and no survivor masked with "
                                    "it: nothing to remove, its mask key stays secret")
                    continue
                shares = self.shares_received[v]["s"]
                key = KeyPair.from_private(combine_shares(list(shares.values()), threshold=t))
                if key.public != self.public_keys[v][1]:
                    raise ValueError(f"the mask key rebuilt for {self.label(v)} does not match its public key: "
                                     "a share was corrupted")
                for u in partners:
                    p = prg_words(agree(key.private, self.public_keys[u][1], info=_MASK_INFO), P, bits=self.bits)
                    total = total - p if u < v else total + p
                self.prg_words += P * len(partners)
                self.log.append(f"stage 3 (Unmasking): {self.label(v)} dropped: the server asks survivors for "
                                f"shares of {self.label(v)}'s mask key; rebuilt from {t} of {len(shares)} shares "
                                f"and removed its pairwise masks with {len(partners)} survivors")
            for u in self.survivors:
                shares = self.shares_received[u]["b"]
                seed = combine_shares(list(shares.values()), threshold=t)
                self.self_mask_seeds[u] = seed
                total -= prg_words(seed, P, bits=self.bits)
                self.prg_words += P
                self.log.append(f"stage 3 (Unmasking): {self.label(u)} survived: its self-mask seed b was rebuilt "
                                f"from {t} of {len(shares)} shares and its self-mask removed")
            total %= np.uint64(modulus)
            self.log.append(f"stage 3 (Unmasking): the server recovered the sum of {len(self.survivors)} inputs "
                            f"and saw no single one ({len(self.dropped)} dropped)")
            self.stage = 4
            return total


@dataclass(frozen=True)
class SecAggResult:
    """What one secure-aggregation round produced and cost.

    ``total``: ``Σ_{u ∈ survivors} x_u mod R`` (``uint64``, shape ``(P,)``);
    ``decoded``: the same as reals. ``masked[u]``: the ``y_u`` the server
    received. ``bytes_sent[u]`` / ``bytes_received[u]``: client ``u``'s
    upload / download over the round (serialized sizes: 32-byte keys, sealed
    shares, ``bits/8`` bytes per masked value, share answers);
    ``bytes_sent_by_stage[u]``: its upload per stage 0–3.
    ``seconds_client[u]``, ``seconds_server``: wall time of each side's own
    computation. ``prg_words_*``: ring elements expanded by the PRG (the bulk
    of the work for large ``P``). ``revealed[u] = (shares of b_u, shares of
    s_u)`` that reached the server: at most one of the two is ``≥ threshold``.
    ``log``: a transcript of the stages.
    """

    total: np.ndarray
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    masked: dict[int, np.ndarray]
    bytes_sent: dict[int, int]
    bytes_sent_by_stage: dict[int, tuple[int, int, int, int]]
    bytes_received: dict[int, int]
    seconds_client: dict[int, float]
    seconds_server: float
    prg_words_client: dict[int, int]
    prg_words_server: int
    revealed: dict[int, tuple[int, int]]
    threshold: int
    neighbours: dict[int, tuple[int, ...]]
    encoding: Encoding
    log: list[str] = field(default_factory=list)

    @property
    def decoded(self) -> np.ndarray:
        """The real sum of the survivors' clipped updates (``Encoding.decode``)."""
        return self.encoding.decode(self.total)


def _check_inputs(inputs: Any, encoding: Encoding) -> np.ndarray:
    x = np.asarray(inputs)
    if x.ndim != 2:
        raise ValueError(f"inputs of shape {x.shape} are not allowed: expected (n_clients, n_params)")
    if x.shape[0] > encoding.n_clients:
        raise ValueError(f"encoding.n_clients = {encoding.n_clients} is not allowed for {x.shape[0]} clients: "
                         "it must be at least the number of inputs summed, or the sum may wrap around the ring")
    if np.issubdtype(x.dtype, np.floating):
        return encoding.encode(x, check=True)
    if not np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        raise ValueError(f"inputs of dtype {x.dtype} are not allowed: give ring elements (Encoding.encode) or reals")
    if x.size and (x.min() < 0 or int(x.max()) >= encoding.modulus):
        raise ValueError(f"inputs must be ring elements in [0, 2^{encoding.bits}): encode real updates with "
                         "Encoding.encode")
    x = x.astype(np.uint64)
    signed = np.abs(encoding.decode(x))
    if x.size and signed.max() > encoding.clip + 0.5 / encoding.scale:
        raise ValueError(f"an update value {float(signed.max()):.4g} is not allowed: outside the clipping range "
                         f"[-{encoding.clip:g}, {encoding.clip:g}]")
    return x


class RoundRefused(ValueError):
    """The server cannot recover the sum (too few inputs or shares); the round is void.

    ``bytes_sent`` and ``log`` keep what the clients had already sent, and why.
    """

    def __init__(self, message: str, *, bytes_sent: dict[int, int], log: list[str]) -> None:
        super().__init__(message)
        self.bytes_sent = bytes_sent
        self.log = log


def secure_sum(inputs: np.ndarray, *, encoding: Encoding, threshold: int = 0,
               drop_before_sharing: Iterable[int] = (), drop_before_masking: Iterable[int] = (),
               drop_before_unmasking: Iterable[int] = (), graph: str = "complete", degree: int | None = None,
               rng: Any = None, names: Sequence[str] | None = None) -> SecAggResult:
    """Run one SecAgg round between ``n`` simulated clients and a server; return the survivors' ring sum.

    ``Σ_{u ∈ S} x_u mod 2^bits`` with ``S`` the clients whose masked input
    arrived (Bonawitz et al. 2017; SecAgg+ graph of Bell et al. 2020). See
    the module docstring for the stages and formulas.

    Parameters
    ----------
    inputs : ndarray, shape (n_clients, n_params)
        Ring elements from ``encoding.encode`` (``uint64``), or reals, which
        are encoded with ``check=True``. Values outside ``[-clip, clip]`` are
        refused.
    encoding : Encoding
        Fixes the ring ``R = 2^bits`` and the clipping range.
    threshold : int
        Shamir threshold ``t`` (≥ 2, at most the holders of each secret:
        ``n`` for the complete graph, ``degree + 1`` for Harary); 0 = two
        thirds of the holders, rounded up.
    drop_before_sharing, drop_before_masking, drop_before_unmasking : iterable of int
        Clients that drop out after advertising keys (their shares never
        leave), after sharing (the masked input never comes), and after
        sending the masked input (they do not answer the unmasking; their
        input is still in the sum).
    graph : {"complete", "harary"}
    degree : int, optional
        Neighbours per client for ``"harary"`` (even, ≤ n − 1; default
        ``2⌈log2 n⌉``).
    rng : optional
        ``None`` (os.urandom) in real use; a seed or generator for
        reproducible demos only.
    names : sequence of str, optional
        Client names for the log (e.g. hospitals).
    """
    x = _check_inputs(inputs, encoding)
    n, P = x.shape
    if n < 2:
        raise ValueError(f"n_clients = {n} is not allowed: secure aggregation needs at least 2 clients "
                         "(the sum of one input is that input)")
    if names is not None and len(names) != n:
        raise ValueError(f"names has {len(names)} entries: expected one per client ({n})")
    drops: dict[int, str] = {}
    for arg, ids in (("drop_before_sharing", drop_before_sharing), ("drop_before_masking", drop_before_masking),
                     ("drop_before_unmasking", drop_before_unmasking)):
        for u in ids:
            if isinstance(u, bool) or not isinstance(u, (int, np.integer)) or not 0 <= u < n:
                raise ValueError(f"{arg} holds {u!r}, which is not allowed: client ids are 0 … {n - 1}")
            if int(u) in drops and drops[int(u)] != arg:
                raise ValueError(f"client {u} is in both {drops[int(u)]} and {arg}: a client drops out once")
            drops[int(u)] = arg
    master = byte_source(rng)
    server = Server(n_params=P, threshold=threshold, bits=encoding.bits, graph=graph, degree=degree,
                    rng=master.spawn(), names=names)
    clients = [Client(u, rng=master.spawn(), name=server.label(u)) for u in range(n)]
    for c in clients:
        server.receive_keys(c.id, c.advertise_keys())
    rosters = server.broadcast_roster()
    for c in clients:
        if drops.get(c.id) != "drop_before_sharing":
            server.receive_shares(c.id, c.share_keys(rosters[c.id]))
    inboxes = server.forward_shares()
    for c in clients:
        if c.id in inboxes and drops.get(c.id) != "drop_before_masking":
            server.receive_masked(c.id, c.masked_input(x[c.id], inboxes[c.id]))
    try:
        requests = server.start_unmasking()
        for u, (alive, gone) in requests.items():
            if drops.get(u) != "drop_before_unmasking":
                server.receive_unmask(u, clients[u].unmask(alive, gone))
        total = server.finish()
    except ValueError as err:
        # the round is refused, but its messages were sent: keep what they cost
        raise RoundRefused(str(err), bytes_sent={u: sum(b) for u, b in server.bytes_sent.items()},
                           log=list(server.log)) from err
    return SecAggResult(
        total=total, survivors=server.survivors,
        dropped=tuple(sorted(set(range(n)) - set(server.survivors))),
        masked=dict(server.masked),
        bytes_sent={u: sum(b) for u, b in server.bytes_sent.items()},
        bytes_sent_by_stage={u: tuple(b) for u, b in server.bytes_sent.items()},
        bytes_received={u: sum(b) for u, b in server.bytes_received.items()},
        seconds_client={c.id: c.seconds for c in clients}, seconds_server=server.seconds,
        prg_words_client={c.id: c.prg_words for c in clients}, prg_words_server=server.prg_words,
        revealed={u: (len(s["b"]), len(s["s"])) for u, s in server.shares_received.items()},
        threshold=server.threshold, neighbours=dict(server.neighbours), encoding=encoding, log=list(server.log))
