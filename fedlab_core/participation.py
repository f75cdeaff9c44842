"""Who takes part in a round, who fails, who is slow.

Real federations rarely hear from every hospital every round: the server
samples some, a few of those fail before their update arrives (dropouts),
and some finish only part of their local work in time (stragglers). Each
function takes the round's NumPy ``rng`` and returns plain arrays.

>>> rng = np.random.default_rng(0)
>>> sample_fixed(10, fraction=0.3, rng=rng).tolist()
[5, 6, 9]
"""

from __future__ import annotations

import numpy as np


def sample_fixed(n_clients: int, *, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A uniform subset of exactly ``max(1, round(fraction * K))`` clients (McMahan et al. 2017)."""
    m = min(n_clients, max(1, int(round(fraction * n_clients))))
    if m == n_clients:
        return np.arange(n_clients)
    return np.sort(rng.choice(n_clients, size=m, replace=False))


def sample_poisson(n_clients: int, *, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Each client independently with probability ``fraction``; the count varies and can be 0.

    This is the sampling that privacy amplification by subsampling assumes
    (McMahan et al., ICLR 2018).
    """
    return np.flatnonzero(rng.random(n_clients) < fraction)


def drop_out(participants: np.ndarray, *, rate: float, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """Split the sampled clients into those whose update arrives and those that fail."""
    fails = rng.random(len(participants)) < rate
    return participants[~fails], participants[fails]


def straggler_budget(full_steps: np.ndarray, *, rate: float, work: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Step budgets: a straggler (probability ``rate``) does ``max(1, floor(work * steps))``.

    >>> budget, slow = straggler_budget(np.array([10, 10]), rate=1.0, work=0.35,
    ...                                 rng=np.random.default_rng(0))
    >>> budget.tolist(), slow.tolist()
    ([3, 3], [True, True])
    """
    slow = rng.random(len(full_steps)) < rate
    cut = np.maximum(1, np.floor(work * full_steps)).astype(full_steps.dtype)
    return np.where(slow, cut, full_steps), slow
