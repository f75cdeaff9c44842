"""The privacy–utility frontier: what each level of ε costs in accuracy.

For every target ε the noise is calibrated so that the whole run spends
exactly that ε (``privacy.target_epsilon``), the run is repeated over seeds,
and the final global model is scored on the pooled test set. ε = ∞ is the
same run without DP: the ceiling.

>>> import math
>>> from fedlab_core.config import ExperimentConfig
>>> cfg = ExperimentConfig().with_overrides({"data.n_samples": 600, "federation.rounds": 2,
...     "privacy.mechanism": "central", "baselines": False})
>>> runs = privacy_frontier(cfg, epsilons=[1.0, math.inf], seeds=[0])
>>> runs[["epsilon", "seed"]].values.tolist()
[[1.0, 0.0], [inf, 0.0]]
>>> summarize(runs).columns.tolist()[:4]
['epsilon', 'noise_multiplier', 'accuracy_mean', 'accuracy_sd']
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable

import numpy as np
import pandas as pd

from fedlab_core.config import ExperimentConfig
from fedlab_core.progress import track

EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0, math.inf)


def privacy_frontier(config: ExperimentConfig, *, epsilons: Iterable[float] = EPSILONS,
                     seeds: Iterable[int] = (0, 1, 2),
                     metrics: tuple[str, ...] = ("accuracy", "auc")) -> pd.DataFrame:
    """One row per (ε, seed): the calibrated noise, the ε spent and the final pooled metrics.

    In a notebook a line under the cell counts the runs (``fedlab_core.progress``).
    """
    from fedlab_core.simulation import Simulation

    if config.privacy.mechanism == "none":
        raise ValueError("privacy.mechanism = 'none' is not allowed for a frontier: "
                         "choose dpsgd, central or local")
    epsilons, seeds = list(epsilons), list(seeds)
    for eps in epsilons:
        if not (eps > 0):
            raise ValueError(f"epsilons: {eps!r} is not allowed: every ε must be > 0 (math.inf: no DP)")
    rows = []
    runs = itertools.product(epsilons, seeds)
    for eps, seed in track(runs, label="privacy frontier: runs", total=len(epsilons) * len(seeds)):
        if math.isinf(eps):
            cfg = config.with_overrides({"privacy.mechanism": "none", "privacy.target_epsilon": None,
                                         "stop.max_epsilon": None})
        else:
            cfg = config.with_overrides({"privacy.target_epsilon": float(eps)})
        sim = Simulation(cfg.with_overrides({"seed": seed}))
        history = sim.run()
        last = history.last()
        row = {"epsilon": float(eps), "seed": seed,
               "noise_multiplier": 0.0 if sim.privacy is None else sim.privacy.noise_multiplier,
               "epsilon_spent": math.inf if sim.privacy is None else last.epsilon}
        row.update({m: last.global_pooled[m] for m in metrics})
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per ε: the mean noise multiplier and each metric's mean and sd over seeds."""
    metrics = [c for c in runs.columns if c not in ("epsilon", "seed", "noise_multiplier", "epsilon_spent")]
    out = []
    for eps, group in runs.groupby("epsilon", sort=True):
        row = {"epsilon": eps, "noise_multiplier": float(group["noise_multiplier"].mean())}
        for m in metrics:
            values = group[m].to_numpy(dtype=float)
            row[f"{m}_mean"] = float(np.mean(values))
            row[f"{m}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        row["seeds"] = len(group)
        out.append(row)
    return pd.DataFrame(out)
