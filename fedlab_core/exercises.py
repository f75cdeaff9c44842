"""Automatic checks for the notebooks' exercises.

Each check prints a short verdict a learner can act on, and returns a
``Verdict``: true or false, so a test can assert on it, but shown as nothing
in a notebook (the printed line already said it; a bare ``False`` under an
unanswered exercise reads like an error).

>>> import torch
>>> check_fedavg(lambda deltas, weights: (weights / weights.sum()) @ deltas)
✅ Your FedAvg matches the engine's on 20 random federations.
True
"""

from __future__ import annotations

import math
from typing import Callable

import torch


class Verdict:
    """A check's result: ``bool(verdict)`` is whether the answer was right."""

    __slots__ = ("ok",)

    def __init__(self, ok: bool) -> None:
        self.ok = bool(ok)

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return repr(self.ok)

    def _ipython_display_(self) -> None:
        """Show nothing as a cell's result: the check has printed its verdict."""


def check_fedavg(my_fedavg: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                 trials: int = 20, seed: int = 0) -> Verdict:
    """Compare a learner's ``my_fedavg(deltas (K, P), weights (K,)) -> (P,)`` with ``fedavg``."""
    from fedlab_core.aggregate import fedavg

    gen = torch.Generator().manual_seed(seed)
    for trial in range(trials):
        K = int(torch.randint(1, 8, (1,), generator=gen))
        deltas = torch.randn(K, 5, generator=gen, dtype=torch.float64)
        weights = torch.randint(1, 500, (K,), generator=gen).to(torch.float64)
        try:
            got = torch.as_tensor(my_fedavg(deltas, weights), dtype=torch.float64)
        except Exception as err:  # show the learner's error as feedback, not a traceback
            print(f"❌ Your function raised {type(err).__name__}: {err}")
            return Verdict(False)
        want = fedavg(deltas, weights)
        if got.shape != want.shape:
            print(f"❌ Shape {tuple(got.shape)}, expected {tuple(want.shape)}: one number per parameter.")
            return Verdict(False)
        if not torch.allclose(got, want, atol=1e-9):
            hint = ("Hint: did you weight by the number of patients?"
                    if torch.allclose(got, deltas.mean(0)) else
                    "Hint: divide by the total weight, sum_k n_k.")
            show = lambda t: "[" + ", ".join(f"{v:.3f}" for v in t.tolist()) + "]"  # noqa: E731
            print(f"❌ Trial {trial + 1}: got {show(got)}, expected {show(want)}. {hint}")
            return Verdict(False)
    print(f"✅ Your FedAvg matches the engine's on {trials} random federations.")
    return Verdict(True)


def check_number(answer: float | None, expected: float, *, tolerance: float, what: str) -> Verdict:
    """Check a numeric answer read off a figure or table, within ``tolerance``."""
    if answer is None or (isinstance(answer, float) and math.isnan(answer)):
        print(f"✏️  Fill in your answer for {what}.")
        return Verdict(False)
    if abs(answer - expected) <= tolerance:
        print(f"✅ Right: {what} is {expected:.3g} (you said {answer:.3g}).")
        return Verdict(True)
    within = "it must be exact" if tolerance == 0 else f"within ±{tolerance:g}"
    print(f"❌ Not quite: you said {answer:.3g} for {what}; look again ({within}).")
    return Verdict(False)


def check_choice(answer: str | None, expected: str, *, what: str, why: str = "") -> Verdict:
    """Check a named answer (a hospital, a partition) case-insensitively."""
    if not answer:
        print(f"✏️  Fill in your answer for {what}.")
        return Verdict(False)
    if answer.strip().lower() == expected.strip().lower():
        print(f"✅ Right: {what} is {expected}. {why}".rstrip())
        return Verdict(True)
    print(f"❌ Not {answer}: look again at {what}.")
    return Verdict(False)
