"""Side-by-side numbers after a run: who gained from joining the federation?

``final_comparison(history)`` is one row per hospital: its local-only model,
the federated (global) model and the centralised model, each on that
hospital's own test set (the centralised column is on the pooled test set,
the same for every row). ``over_seeds(config, seeds)`` repeats a run and
reports mean ± sd, so a difference can be told from noise.

>>> from fedlab_core.config import ExperimentConfig
>>> cfg = ExperimentConfig().with_overrides({"data.n_samples": 400, "federation.rounds": 2})
>>> table = over_seeds(cfg, seeds=[0, 1])
>>> list(table.columns)
['model', 'accuracy_mean', 'accuracy_sd', 'auc_mean', 'auc_sd', 'n_seeds']
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from fedlab_core.config import ExperimentConfig
from fedlab_core.history import History


def rounds_to_reach(curve, target: float) -> float:
    """The first round (1-based) whose value reaches ``target``; ``nan`` if none does.

    >>> rounds_to_reach([0.5, 0.7, 0.9, 0.8], 0.85), rounds_to_reach([0.5], 0.9)
    (3.0, nan)
    """
    hit = np.flatnonzero(np.asarray(curve, dtype=float) >= target - 1e-9)
    return float(hit[0] + 1) if len(hit) else float("nan")


def usable_seeds(config: ExperimentConfig, n: int, *, max_tries: int = 1000) -> list[int]:
    """The first ``n`` seeds for which ``config`` builds a simulation.

    A strongly skewed split (Dirichlet ``alpha = 0.1``) can leave a hospital
    with a single patient, which cannot be split into train and test; the
    loader refuses such a draw. Experiments over seeds skip those seeds and
    say so, rather than silently changing the data.
    """
    from fedlab_core.simulation import Simulation

    seeds, seed, last_error = [], 0, None
    while len(seeds) < n and seed < max_tries:
        try:
            Simulation(config.with_overrides({"seed": seed}))
            seeds.append(seed)
        except ValueError as err:
            last_error = err
        seed += 1
    if len(seeds) < n:
        raise ValueError(f"only {len(seeds)} of the first {max_tries} seeds build this experiment; "
                         f"the last error: {last_error}")
    return seeds


def final_comparison(history: History, *, metric: str = "accuracy") -> pd.DataFrame:
    """Per hospital, the last round's ``metric`` of local-only, federated and centralised models."""
    last = history.last()
    if last is None:
        raise ValueError("history has no rounds yet: run at least one round first")
    if last.local_only_clients is None:
        raise ValueError("baselines = false in this run's config: no local-only or centralised models "
                         "to compare; run with baselines = true")
    rows = []
    for k, name in enumerate(history.client_names):
        local_only = last.local_only_clients[k][metric]
        federated = last.global_clients[k][metric]
        rows.append({"hospital": name, "local_only": local_only, "federated": federated,
                     "gain": federated - local_only,
                     "local_only_on_pooled": last.local_only_pooled[k][metric]})
    table = pd.DataFrame(rows)
    table.attrs["centralised_on_pooled"] = last.central_pooled[metric]
    table.attrs["federated_on_pooled"] = last.global_pooled[metric]
    return table


def over_seeds(config: ExperimentConfig, seeds: Iterable[int], *,
               metrics: tuple[str, ...] = ("accuracy", "auc")) -> pd.DataFrame:
    """Run ``config`` once per seed; mean ± sd of the final pooled-test metrics per model.

    Models: ``centralised``, ``federated`` (the global model), and ``local-only: <hospital>``
    (each hospital's own model, scored on the pooled test set). The seed changes the
    data split, the initialisation and the batches.
    """
    from fedlab_core.simulation import Simulation

    scores: dict[str, dict[str, list[float]]] = {}

    def add(model: str, m: dict[str, float]) -> None:
        for key in metrics:
            scores.setdefault(model, {}).setdefault(key, []).append(m[key])

    seeds = list(seeds)
    config = config.with_overrides({"baselines": True})
    for seed in seeds:
        history = Simulation(config.with_overrides({"seed": seed})).run()
        last = history.last()
        add("centralised", last.central_pooled)
        add("federated", last.global_pooled)
        for k, name in enumerate(history.client_names):
            add(f"local-only: {name}", last.local_only_pooled[k])
    rows = []
    for model, by_metric in scores.items():
        row: dict[str, object] = {"model": model}
        for key in metrics:
            values = np.array(by_metric[key], dtype=float)
            row[f"{key}_mean"] = float(np.nanmean(values))
            row[f"{key}_sd"] = float(np.nanstd(values, ddof=1)) if len(values) > 1 else float("nan")
        row["n_seeds"] = len(seeds)
        rows.append(row)
    return pd.DataFrame(rows)
