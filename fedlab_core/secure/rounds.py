"""One round's secure sum, as the simulation runs it.

Every sampled hospital takes part in the protocol from its first stage; the
ones whose update never arrives (``federation.dropout_rate``) drop out after
the keys were shared and before their masked input was sent, the case
Bonawitz et al.'s secret sharing exists for. The server learns

    Σ_{k arrived} s_k · x_k

for public per-hospital scales ``s_k`` (FedAvg: ``n_k / N``, hospital sizes
being public; DP-FedAvg: 1), and nothing about any single ``x_k`` beyond
what that sum reveals. Each ``x_k`` is clipped per coordinate to
``[-secure.clip, secure.clip]`` and encoded in fixed point
(``fedlab_core.secure.quantize``), so the sum is exact up to
``Encoding.error_bound``.

>>> import torch
>>> from fedlab_core.config import SecureConfig
>>> x = torch.tensor([[0.1, -0.2], [0.3, 0.4], [9.0, 9.0]])
>>> out = secure_weighted_sum(x, torch.ones(3), arrived=torch.tensor([True, True, False]),
...                           config=SecureConfig(protocol="masking", threshold=2), seed=0)
>>> [round(v, 6) for v in out.total.tolist()]
[0.4, 0.2]
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from fedlab_core.config import SecureConfig
from fedlab_core.secure.quantize import Encoding

Tensor = torch.Tensor


@contextlib.contextmanager
def _needs_extra(protocol: str):
    """Turn a missing crypto library into an error that says what to install."""
    try:
        yield
    except ImportError as err:
        raise ImportError(f"secure.protocol = {protocol!r} needs the 'secure' extra ({err.name} is "
                          "missing): pip install 'fedlab-core[secure]'") from err


@dataclass
class SecureRound:
    """What one secure round produced, and what it cost."""

    total: Tensor            # (P,) the decoded sum of the arrived hospitals' scaled, clipped inputs
    bytes_up: list[int]      # per sampled hospital, every message it sent (0 for none)
    seconds: float           # wall time of the whole protocol (all parties, one process)
    error_bound: float       # largest quantisation error of ``total``, per coordinate
    clipped: int             # coordinates that had to be clipped into the encoding range
    log: list[str] = field(default_factory=list)   # the protocol's stages, in words


def secure_weighted_sum(updates: Tensor, scales: Tensor, *, arrived: Tensor, config: SecureConfig,
                        seed: int | None = None, authority=None,
                        names: list[str] | None = None) -> SecureRound:
    """``Σ_{k arrived} scales_k · clip(updates_k)`` by ``config.protocol``, over the sampled hospitals.

    Parameters
    ----------
    updates : ``(s, P)`` one row per sampled hospital (rows of hospitals that
        dropped out are ignored: they never send an input).
    scales : ``(s,)`` public factors each hospital applies before encoding (≤ 1).
    arrived : ``(s,)`` bool, whose input arrives.
    seed : seeds the masking protocol's keys and masks for a reproducible demo;
        ``None`` uses the operating system's randomness, as real deployments must.
    authority : Paillier's ``KeyAuthority`` (the key holder, kept for a whole run);
        ``None`` makes a new one.
    names : the sampled hospitals' names, for the protocol's log.
    """
    if config.protocol == "none":
        raise ValueError("secure.protocol = 'none' is not a secure protocol")
    x = updates.detach().cpu().double().numpy()
    clipped = int((np.abs(x[arrived.cpu().numpy()]) > config.clip).sum())
    x = np.clip(x, -config.clip, config.clip) * scales.detach().cpu().double().numpy()[:, None]
    s = x.shape[0]
    arrived_np = arrived.cpu().numpy().astype(bool)
    dropped = [i for i in range(s) if not arrived_np[i]]
    encoding = Encoding(clip=config.clip, n_clients=max(1, s), bits=config.bits)
    start = time.perf_counter()
    if config.protocol == "masking":
        with _needs_extra("masking"):
            from fedlab_core.secure.masking import RoundRefused, secure_sum

        rng = None if seed is None else np.random.default_rng(seed)
        # threshold 0: two thirds of each hospital's share holders (masking.resolve_threshold)
        try:
            result = secure_sum(encoding.encode(x), encoding=encoding,
                                threshold=min(config.threshold, s), drop_before_masking=dropped,
                                graph=config.graph, degree=config.degree or None, rng=rng, names=names)
        except RoundRefused as err:
            err.bytes_up = [int(err.bytes_sent.get(i, 0)) for i in range(s)]
            raise
        total = encoding.decode(result.total)
        bytes_up = [int(result.bytes_sent.get(i, 0)) for i in range(s)]
        log = list(result.log)
    else:
        with _needs_extra("paillier"):
            from fedlab_core.secure.paillier import paillier_sum

        result = paillier_sum(x, encoding=encoding, packed=config.packed, dropped=dropped,
                              **({"authority": authority} if authority is not None
                                 else {"key_bits": config.key_bits}))
        total = np.asarray(result.total, dtype=np.float64)
        bytes_up = [0 if i in dropped else int(result.bytes_per_client) for i in range(s)]
        log = []
    seconds = time.perf_counter() - start
    return SecureRound(total=torch.as_tensor(total, dtype=updates.dtype, device=updates.device),
                       bytes_up=bytes_up, seconds=seconds, error_bound=encoding.error_bound,
                       clipped=clipped, log=log)
