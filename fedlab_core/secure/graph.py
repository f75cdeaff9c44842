"""Who masks with whom: the complete graph of SecAgg, or the sparse Harary graph of SecAgg+.

Bonawitz et al. (2017) mask every pair of clients: each client does n − 1 key
agreements and PRG expansions and sends n − 1 encrypted shares. Bell et al.
(CCS 2020, "Secure Single-Server Aggregation with (Poly)Logarithmic
Overhead") keep the masks cancelling with only ``k = O(log n)`` neighbours
per client, on a graph the server draws at random each round. Here that
graph is the Harary graph ``H_{k,n}``: the clients sit on a ring in a random
order and each is joined to its ``k/2`` nearest on either side.

    N(u) = { π⁻¹((π(u) ± j) mod n) : j = 1 … k/2 }

>>> nb = neighbour_graph(range(6), graph="harary", degree=2, order=[0, 1, 2, 3, 4, 5])
>>> nb[0], nb[3]
((1, 5), (2, 4))
>>> neighbour_graph(range(3), graph="complete")[1]
(0, 2)
>>> default_degree(20), default_degree(50), default_degree(4)
(10, 12, 3)
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

GRAPHS = ("complete", "harary")


def default_degree(n_clients: int) -> int:
    """``2⌈log2 n⌉`` (even), capped at ``n − 1`` (every other client)."""
    return min(n_clients - 1, 2 * math.ceil(math.log2(max(n_clients, 2))))


def check_degree(degree: int | None, n_clients: int, *, graph: str = "harary") -> int:
    """The neighbour count each client will have, or a ``ValueError`` naming what is allowed."""
    if graph not in GRAPHS:
        raise ValueError(f"secure.graph = {graph!r} is not allowed: choose one of {', '.join(GRAPHS)}")
    if graph == "complete":
        if degree not in (None, 0, n_clients - 1):
            raise ValueError(f"secure.degree = {degree!r} is not allowed with secure.graph = 'complete' "
                             f"(every client masks with all {n_clients - 1} others): leave it unset or "
                             "use secure.graph = 'harary'")
        return n_clients - 1
    if degree in (None, 0):
        return default_degree(n_clients)
    hi = n_clients - 1
    if (isinstance(degree, bool) or not isinstance(degree, int) or not 2 <= degree <= hi
            or (degree % 2 and degree != hi)):
        raise ValueError(f"secure.degree = {degree!r} is not allowed: a Harary graph over {n_clients} clients "
                         f"needs an even degree in [2, {hi}] or {hi} (every other client); unset or 0 picks "
                         f"2·⌈log2 n⌉ = {default_degree(n_clients)}")
    return degree


def neighbour_graph(clients: Iterable[int], *, graph: str = "complete", degree: int | None = None,
                    order: Sequence[int] | None = None) -> dict[int, tuple[int, ...]]:
    """Each client's neighbours (sorted), a symmetric relation without self-loops.

    Parameters
    ----------
    clients : iterable of int
        The client ids in the round.
    graph : {"complete", "harary"}
    degree : int, optional
        Neighbours per client for ``"harary"``; ``None`` or 0: ``default_degree(n)``.
    order : sequence of int, optional
        Positions on the ring: ``order[p]`` is the index (into the sorted ids)
        of the client placed at position ``p``. The server draws it at random
        (``ByteSource.permutation``); ``None`` keeps the sorted order.
    """
    ids = sorted(set(clients))
    n = len(ids)
    k = check_degree(degree, n, graph=graph)
    if k == n - 1:
        return {u: tuple(v for v in ids if v != u) for u in ids}
    ring = [ids[i] for i in (order if order is not None else range(n))]
    if sorted(ring) != ids:
        raise ValueError("order must be a permutation of the clients' positions 0 … n − 1")
    nb: dict[int, set[int]] = {u: set() for u in ids}
    for p, u in enumerate(ring):
        for j in range(1, k // 2 + 1):
            v = ring[(p + j) % n]
            nb[u].add(v)
            nb[v].add(u)
    return {u: tuple(sorted(vs)) for u, vs in nb.items()}
