"""Stopping rules: when to end a run before its round limit.

Each rule looks at the history so far and returns a sentence saying why it
fired (shown in the dashboard and the CLI), or ``None``.

>>> from fedlab_core.config import StopConfig
>>> target_reached([0.7, 0.86], target=0.85)
'target accuracy 0.85 reached at round 2'
>>> plateau([0.50, 0.40, 0.40, 0.40], patience=2, min_delta=1e-3)
'plateau: pooled test loss has not improved by more than 0.001 for 2 rounds'
>>> check_stop([0.7], [0.5], StopConfig(), round=30, max_rounds=30)
'round limit 30 reached'
>>> privacy_budget(2.1, budget=2.0, epsilon_now=1.9)
'privacy budget: one more round would spend ε = 2.1 > 2 (spent ε = 1.9)'
"""

from __future__ import annotations

from fedlab_core.config import StopConfig


def target_reached(accuracies: list[float], *, target: float) -> str | None:
    """Fires when the latest pooled test accuracy is at least ``target``."""
    if accuracies and accuracies[-1] >= target:
        return f"target accuracy {target:g} reached at round {len(accuracies)}"
    return None


def plateau(losses: list[float], *, patience: int, min_delta: float) -> str | None:
    """Fires when the best loss of the last ``patience`` rounds is no better than
    the best before them by more than ``min_delta`` (early stopping)."""
    if len(losses) <= patience:
        return None
    best_before = min(losses[:-patience])
    if min(losses[-patience:]) > best_before - min_delta:
        return (f"plateau: pooled test loss has not improved by more than {min_delta:g} "
                f"for {patience} rounds")
    return None


def privacy_budget(epsilon_next: float, *, budget: float, epsilon_now: float | None = None
                   ) -> str | None:
    """Fires when one more round would take the privacy meter past ``budget``.

    It looks ahead, so the budget is never overspent: the run stops *before*
    the round that would cross it.
    """
    if epsilon_next > budget:
        now = "" if epsilon_now is None else f" (spent ε = {epsilon_now:.3g})"
        return (f"privacy budget: one more round would spend ε = {epsilon_next:.3g} "
                f"> {budget:g}{now}")
    return None


def check_stop(accuracies: list[float], losses: list[float], stop: StopConfig, *,
               round: int, max_rounds: int, epsilon_next: float | None = None,
               epsilon_now: float | None = None) -> str | None:
    """The first rule that fires, in order: target, plateau, privacy budget, round limit."""
    if stop.target_accuracy is not None:
        reason = target_reached(accuracies, target=stop.target_accuracy)
        if reason:
            return reason
    if stop.patience is not None:
        reason = plateau(losses, patience=stop.patience, min_delta=stop.min_delta)
        if reason:
            return reason
    if stop.max_epsilon is not None and epsilon_next is not None:
        reason = privacy_budget(epsilon_next, budget=stop.max_epsilon, epsilon_now=epsilon_now)
        if reason:
            return reason
    if round >= max_rounds:
        return f"round limit {max_rounds} reached"
    return None
