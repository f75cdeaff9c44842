"""What the server sees: one round of secure aggregation opened up, and what each protocol costs.

``server_view`` runs one round on given updates and keeps, for one hospital,
the update it computed, the numbers the server received from it, and the sum
the server recovered, next to the plain sum: the server's whole view, with a
test that what it received from the hospital looks like uniform noise.
``protocol_costs`` measures time and bytes of plain, masking (complete and
SecAgg+ graphs) and Paillier (one value per ciphertext, and packed).

>>> import numpy as np
>>> updates = np.random.default_rng(0).normal(0, 0.1, size=(5, 200))
>>> view = server_view(updates, hospital=0, drop_before_masking=[4], seed=0)
>>> view.max_error <= view.error_bound, view.uniformity_p > 0.01
(True, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from fedlab_core.progress import track
from fedlab_core.secure.quantize import Encoding


@dataclass
class ServerView:
    """One round through the server's eyes (masking), for one hospital."""

    names: list[str]
    hospital: int
    update: np.ndarray          # (P,) the hospital's real (clipped) update
    encoded: np.ndarray         # (P,) the same in fixed point, in Z_R
    received: np.ndarray        # (P,) what the server received from it: y = x + masks (mod R)
    recovered: np.ndarray       # (P,) the sum the server decoded, over the survivors
    plain: np.ndarray           # (P,) the plain sum over the survivors, for comparison
    survivors: list[int]
    dropped: list[int]
    max_error: float            # |recovered − plain|, largest coordinate
    error_bound: float          # the encoding's guarantee on that error
    uniformity_p: float         # KS test of received / R against Uniform(0, 1)
    correlation: float          # Pearson r between the update and what the server received
    modulus: int
    log: list[str] = field(default_factory=list)


def server_view(updates: np.ndarray, *, hospital: int = 0, clip: float = 1.0, threshold: int = 0,
                drop_before_masking: Iterable[int] = (), drop_before_unmasking: Iterable[int] = (),
                graph: str = "complete", names: Sequence[str] | None = None,
                seed: int | None = 0) -> ServerView:
    """Run one masking round on ``updates (n, P)`` and return the server's view of ``hospital``."""
    from fedlab_core.secure.masking import secure_sum

    x = np.clip(np.asarray(updates, dtype=np.float64), -clip, clip)
    n = x.shape[0]
    names = list(names) if names is not None else [f"Hospital {chr(65 + i)}" for i in range(n)]
    encoding = Encoding(clip=clip, n_clients=n)
    encoded = encoding.encode(x)
    result = secure_sum(encoded, encoding=encoding, threshold=threshold,
                        drop_before_masking=list(drop_before_masking),
                        drop_before_unmasking=list(drop_before_unmasking), graph=graph,
                        rng=None if seed is None else np.random.default_rng(seed), names=names)
    survivors = sorted(result.survivors)
    if hospital not in result.masked:
        raise ValueError(f"hospital = {hospital} is not allowed: it dropped out before sending its "
                         "masked input; inspect one that sent it")
    received = np.asarray(result.masked[hospital], dtype=np.uint64)
    recovered = encoding.decode(result.total)
    plain = x[survivors].sum(0)
    uniform = received.astype(np.float64) / encoding.modulus
    return ServerView(
        names=names, hospital=hospital, update=x[hospital], encoded=encoded[hospital],
        received=received, recovered=recovered, plain=plain, survivors=survivors,
        dropped=sorted(set(range(n)) - set(survivors)),
        max_error=float(np.abs(recovered - plain).max()), error_bound=encoding.error_bound,
        uniformity_p=float(stats.kstest(uniform, "uniform").pvalue),
        correlation=float(np.corrcoef(x[hospital], uniform)[0, 1]) if x[hospital].std() > 0 else 0.0,
        modulus=encoding.modulus, log=list(result.log))


def protocol_costs(updates: np.ndarray, *, clip: float = 1.0, dropped: Sequence[int] = (),
                   threshold: int = 0, key_bits: int = 2048, degree: int | None = None,
                   protocols: Sequence[str] = ("plain", "masking", "masking, SecAgg+ graph",
                                               "Paillier, one value per ciphertext",
                                               "Paillier, packed"),
                   seed: int | None = 0) -> pd.DataFrame:
    """Seconds per round, bytes sent per hospital and the error against the plain sum, per protocol.

    Plain sends each update as float32 (4 bytes a value). Seconds are the
    wall time of every party's work in this one process; bytes are the mean
    over the hospitals whose update arrived (for masking, everything a
    hospital sends in all four stages).
    """
    from fedlab_core.secure.masking import secure_sum
    from fedlab_core.secure.paillier import KeyAuthority, paillier_sum

    x = np.clip(np.asarray(updates, dtype=np.float64), -clip, clip)
    n, P = x.shape
    dropped = sorted(set(dropped))
    survivors = [i for i in range(n) if i not in dropped]
    plain = x[survivors].sum(0)
    encoding = Encoding(clip=clip, n_clients=n)
    authority = None
    rows = []
    for name in track(protocols, label="protocols measured"):   # a notebook shows how far
        start = time.perf_counter()
        if name == "plain":
            total = x[survivors].astype(np.float32).astype(np.float64).sum(0)
            sent = 4 * P
        elif name.startswith("masking"):
            graph = "harary" if "SecAgg+" in name else "complete"
            result = secure_sum(encoding.encode(x), encoding=encoding,
                                threshold=threshold, drop_before_masking=dropped,
                                graph=graph, degree=degree,
                                rng=None if seed is None else np.random.default_rng(seed))
            total = encoding.decode(result.total)
            sent = float(np.mean([result.bytes_sent[i] for i in survivors]))
        elif name.startswith("Paillier"):
            if authority is None:
                authority = KeyAuthority(key_bits=key_bits)
                start = time.perf_counter()   # the key pair is made once per federation, not per round
            result = paillier_sum(x, encoding=encoding, packed="packed" in name, dropped=dropped,
                                  authority=authority)
            total = np.asarray(result.total, dtype=np.float64)
            sent = float(result.bytes_per_client)
        else:
            raise ValueError(f"protocols: {name!r} is not allowed: choose from plain, masking, "
                             "'masking, SecAgg+ graph', 'Paillier, one value per ciphertext', "
                             "'Paillier, packed'")
        seconds = time.perf_counter() - start
        rows.append({"protocol": name, "seconds per round": seconds, "bytes per hospital": sent,
                     "bytes vs plain": sent / (4 * P),
                     "max error vs plain sum": float(np.abs(total - plain).max())})
    return pd.DataFrame(rows)
