"""The aggregation lab's acceptance figures, measured: client drift and communication.

Workload: the Breast Cancer Wisconsin data (569 patients, 30 features, bundled
with scikit-learn) dealt to 8 hospitals with Dirichlet label skew alpha = 0.1
(most hospitals hold almost only one label), a one-hidden-layer MLP (32 units,
P = 1 025 parameters), full-batch local SGD with lr 0.2 for many local epochs
(client drift needs many local steps), every hospital in every round.

(i) **Drift.** For each seed, FedAvg's *final accuracy* (global model, pooled
test set, mean of its last 3 rounds so that one lucky or unlucky round does
not set the bar) is the target; for every method the number of rounds until
its global model first reaches that target. FedProx changes the client's loss
(+ mu/2 ||theta - theta_global||^2), SCAFFOLD corrects each local gradient
with control variates, FedAdam / FedYogi keep local training and change only
the server's optimiser (Reddi et al. 2021). "missed" counts seeds where a
method never reached the target within the rounds run; mean ± sd are over
the seeds that reached it.

(ii) **Compression.** The same federation with fewer local epochs; bytes each
hospital sends up (``fedlab_core.compression``) and final accuracy (mean of
the last 3 rounds) per scheme, against the dense float32 update on the same
seed, and the rounds each scheme needs to reach the dense run's final
accuracy (a scheme can end as accurate but get there later).

Seeds: a Dirichlet draw that leaves a hospital with fewer than 2 patients
cannot be split into train and test (the loader refuses it); such seeds are
skipped and the first N seeds that split are used (printed).

    python benchmarks/aggregation_lab.py              # 5 seeds, ~1 minute on 2 cores
    python benchmarks/aggregation_lab.py --seeds 2    # quicker
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
import torch

from fedlab_core.compare import rounds_to_reach, usable_seeds
from fedlab_core.compression import upload_bytes
from fedlab_core.config import ExperimentConfig
from fedlab_core.simulation import Simulation

DRIFT = ExperimentConfig().with_overrides({
    "data.dataset": "breast_cancer", "data.partition": "dirichlet", "data.alpha": 0.1,
    "data.n_clients": 8, "model.name": "mlp", "model.hidden": 32,
    "train.local_epochs": 50, "train.lr": 0.2, "train.batch_size": 0,
    "federation.rounds": 30, "baselines": False,
})
METHODS = {
    "FedAvg": {},
    "FedProx mu=0.1": {"train.algorithm": "fedprox", "train.prox_mu": 0.1},
    "FedProx mu=1": {"train.algorithm": "fedprox", "train.prox_mu": 1.0},
    "SCAFFOLD": {"train.algorithm": "scaffold"},
    "FedAdam": {"federation.server_optimizer": "adam"},
    "FedYogi": {"federation.server_optimizer": "yogi"},
}
COMPRESSION = DRIFT.with_overrides({"train.local_epochs": 5, "federation.rounds": 40})
SCHEMES = {
    "dense float32": {"federation.compression": "none"},
    "top-k 10 % + error feedback": {"federation.compression": "topk", "federation.topk_fraction": 0.1,
                                    "federation.error_feedback": True},
    "top-k 10 %, no feedback": {"federation.compression": "topk", "federation.topk_fraction": 0.1,
                                "federation.error_feedback": False},
    "top-k 1 % + error feedback": {"federation.compression": "topk", "federation.topk_fraction": 0.01,
                                   "federation.error_feedback": True},
    "top-k 1 %, no feedback": {"federation.compression": "topk", "federation.topk_fraction": 0.01,
                               "federation.error_feedback": False},
    "qsgd8": {"federation.compression": "qsgd8"},
}
LAST = 3   # rounds averaged for a "final" accuracy


def drift_table(seeds: list[int]) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        curves = {name: Simulation(DRIFT.with_overrides({**o, "seed": seed})).run()
                  .series("global", "accuracy") for name, o in METHODS.items()}
        target = float(np.mean(curves["FedAvg"][-LAST:]))
        for name, curve in curves.items():
            rows.append({"method": name, "seed": seed, "target": target,
                         "rounds": rounds_to_reach(curve, target),
                         "final": float(np.mean(curve[-LAST:]))})
    runs = pd.DataFrame(rows)
    out = runs.groupby("method", sort=False).agg(
        rounds_mean=("rounds", "mean"), rounds_sd=("rounds", "std"),
        missed=("rounds", lambda r: int(r.isna().sum())),
        final_accuracy=("final", "mean"), target=("target", "mean"))
    return out


def compression_table(seeds: list[int]) -> pd.DataFrame:
    rows = []
    P = Simulation(COMPRESSION.with_overrides({"seed": seeds[0]})).theta.numel()
    for seed in seeds:
        for name, o in SCHEMES.items():
            h = Simulation(COMPRESSION.with_overrides({**o, "seed": seed})).run()
            comm = h.communication()
            curve = h.series("global", "accuracy")
            rows.append({"scheme": name, "seed": seed, "curve": curve,
                         "final": float(np.mean(curve[-LAST:])),
                         "bytes_up": int(comm["bytes_up"].sum()),
                         "per_hospital_round": int(h.records[0].bytes_up[0])})
    runs = pd.DataFrame(rows)
    dense = runs[runs.scheme == "dense float32"].set_index("seed")
    runs["saved"] = 1 - runs["bytes_up"] / runs["seed"].map(dense["bytes_up"])
    runs["lost"] = runs["seed"].map(dense["final"]) - runs["final"]
    runs["rounds"] = [rounds_to_reach(c, dense.loc[s, "final"]) for c, s in zip(runs.curve, runs.seed)]
    out = runs.groupby("scheme", sort=False).agg(
        bytes_per_hospital_round=("per_hospital_round", "first"),
        bytes_saved=("saved", "mean"), final_accuracy=("final", "mean"),
        accuracy_lost=("lost", "mean"), accuracy_lost_sd=("lost", "std"),
        rounds_mean=("rounds", "mean"), missed=("rounds", lambda r: int(r.isna().sum())))
    # the per-round number is fixed by P and the scheme: check it against the formula
    for name, o in SCHEMES.items():
        want = upload_bytes(o["federation.compression"], P,
                            topk_fraction=o.get("federation.topk_fraction", 0.1))
        assert out.loc[name, "bytes_per_hospital_round"] == want, (name, want)
    out.attrs["P"] = P
    return out


def _rounds_cell(mean: float, missed: int, n: int) -> str:
    if missed == n:
        return f"never ({n} of {n} seeds)"
    return f"{mean:.1f}" + (f" ({missed} of {n} seeds never)" if missed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds to average over (default 5)")
    args = parser.parse_args()
    torch.set_num_threads(1)   # tiny federations: one thread is fastest (see simulation.py)
    print(f"# aggregation lab · {platform.processor() or platform.machine()} · "
          f"torch {torch.__version__} · {args.seeds} seeds")
    t0 = time.perf_counter()
    seeds = usable_seeds(DRIFT, args.seeds)
    print(f"seeds used (every hospital splits into train and test): {seeds}\n")

    d = DRIFT
    print(f"(i) rounds to reach FedAvg's final accuracy · breast_cancer, {d.data.n_clients} hospitals, "
          f"Dirichlet alpha = {d.data.alpha:g}, MLP ({d.model.hidden} hidden), "
          f"{d.train.local_epochs} full-batch local epochs, lr {d.train.lr:g}, "
          f"{d.federation.rounds} rounds")
    table = drift_table(seeds)
    fmt = table.copy()
    fmt["rounds (mean ± sd)"] = [f"{m:5.1f} ± {s:4.1f}" for m, s in zip(table.rounds_mean, table.rounds_sd)]
    fmt = fmt[["rounds (mean ± sd)", "missed", "final_accuracy", "target"]]
    print(fmt.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"[{time.perf_counter() - t0:.0f} s]\n")

    c = COMPRESSION
    t1 = time.perf_counter()
    comp = compression_table(seeds)
    print(f"(ii) compression · same federation, {c.train.local_epochs} local epochs, "
          f"{c.federation.rounds} rounds, P = {comp.attrs['P']} parameters; "
          "saved and lost are against dense on the same seed")
    out = pd.DataFrame({
        "bytes/hospital/round": comp.bytes_per_hospital_round,
        "bytes saved": [f"{v:.1%}" for v in comp.bytes_saved],
        "final accuracy": comp.final_accuracy.round(3),
        "accuracy lost (mean ± sd)": [f"{m:+.3f} ± {s:.3f}" for m, s in
                                      zip(comp.accuracy_lost, comp.accuracy_lost_sd.fillna(0))],
        "rounds to dense's final": [_rounds_cell(m, k, len(seeds))
                                    for m, k in zip(comp.rounds_mean, comp.missed)],
    })
    print(out.to_string())
    print(f"[{time.perf_counter() - t1:.0f} s]")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
