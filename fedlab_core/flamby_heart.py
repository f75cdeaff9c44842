"""FLamby's Fed-Heart-Disease benchmark, reproduced with fedlab's engine.

FLamby (du Terrail et al., "FLamby: Datasets and Benchmarks for Cross-Silo
Federated Learning in Realistic Healthcare Settings", NeurIPS 2022 Datasets &
Benchmarks) trains a logistic regression on the four natural hospitals of the
UCI heart data and compares single-centre training with federated strategies,
by test accuracy. :func:`heart_benchmark` runs the same comparison over
several seeds and returns a :class:`BenchmarkTable` (``to_csv``,
``to_markdown``); ``fedlab benchmark heart`` is the headless face.

Rows: the centralised model (pooled training rows), one local-only model per
hospital, FedAvg, FedProx, SCAFFOLD, FedAdam, and FedAvg + fine-tuning. Columns:
accuracy (threshold: logit 0) on the pooled test set, the unweighted mean of
the four hospitals' test accuracies (FLamby's average over local test sets),
and each hospital's test accuracy, as mean ± sd over seeds.

The protocol (FLamby ``flamby/datasets/fed_heart_disease/common.py``,
``flamby/benchmarks/fed_benchmark.py``, ``flamby/config_heart_disease.json``)
and how fedlab follows it (:class:`HeartProtocol` holds every number):

- data: the four hospitals, FLamby preprocessing, 66 % / 34 % stratified
  split per hospital, each hospital standardised with its own training
  statistics (``data.dataset = "heart"``, ``partition = "natural"``);
- model: logistic regression; loss: binary cross-entropy; batch size 4;
- centralised and local-only: 50 epochs (FLamby ``NUM_EPOCHS_POOLED``);
- federated: 15 rounds (FLamby ``get_nb_max_rounds(100)`` =
  ``(486 // 4 // 4) * 50 // 100``), client SGD with FLamby's tuned rates:
  FedAvg 1e-3; FedProx 1e-3, mu 0.01; SCAFFOLD 1e-3, server lr 1;
  FedAdam client 1e-2, server lr 1e-2, beta1 0.9, beta2 0.999, tau 1e-8.
  Updates are averaged with weights n_k (patients), as FLamby does.

Where fedlab differs, and why:

1. **Optimiser of the centralised and local-only models.** FLamby uses Adam
   (lr 1e-3); fedlab's ``local_train`` is plain SGD. We use SGD with lr 1e-2,
   chosen because it reaches the training loss Adam(1e-3) reaches in 50 epochs
   (measured on the pooled rows, seed 0: 0.476 vs 0.477; SGD at 1e-3 stops at
   0.485, under-trained). Both are trained by ``local_train`` directly, for
   ``pooled_epochs``, not by ``Simulation``'s baselines, which would train them
   for ``rounds × local_epochs`` epochs at the federated learning rate.
2. **Local work per round.** FLamby gives every client the same 100 batch
   updates per round (Switzerland's 30 training rows are then cycled 12.5 times).
   fedlab's clients run whole local epochs: 3 epochs per round, i.e.
   150 / 129 / 24 / 66 updates for Cleveland / Hungary / Switzerland / Long
   Beach (mean 92 ≈ 100). Small hospitals therefore do less local work than in
   FLamby; 15 rounds × 3 epochs = 45 epochs per client (FLamby: 1500 updates,
   50 epochs of a mean-sized client).
3. **Train/test split.** FLamby's split is fixed (``random_state=43``); here
   the seed draws the split (same sizes: 199/104, 172/89, 30/16, 85/45). Within
   a seed every strategy sees the same split, batches aside; the sd over seeds
   therefore includes split-to-split variation, which FLamby's does not (its
   seeds change only the initialisation and the batch order).
4. **Standardisation of the centralised model.** FLamby standardises the
   pooled data set with pooled training statistics; fedlab's centralised model
   trains on the per-hospital-standardised rows (``Federation.pooled()``), the
   very inputs the federated models see, so the comparison is about training,
   not preprocessing. (Per-hospital standardisation divides by the sd with
   ddof 0 in fedlab, ddof 1 plus 1e-9 in FLamby.)
5. **Initialisation.** FLamby's ``nn.Linear`` starts from a seeded uniform
   draw shared by all strategies; fedlab's logistic regression starts at 0 for
   every strategy (a convex model).
6. **SCAFFOLD.** fedlab's control variates are option II of Karimireddy et
   al. (2020), weighted by patients (``Simulation._update_controls``); FLamby
   derives the correction from each client's previous model and
   ``num_updates``. Both assume full participation.
7. **FedAdam.** Same update without bias correction; fedlab starts the second
   moment at tau² instead of 0 (no difference at tau = 1e-8).
8. **FedAvg + fine-tuning.** FLamby's ``FedAvgFineTuning`` takes a fixed
   number of SGD steps per client and its benchmark scores the first client's
   model only. Here each hospital fine-tunes the final FedAvg model (the FedAvg
   row's run) for ``finetune_epochs`` (3, one round's local work) at the FedAvg
   rate, and is scored on its own test set; the pooled column scores every
   test row with its own hospital's model.
9. **Reporting.** sd is the sample sd (ddof 1) over seeds 0..4; FLamby's
   scripts print ``np.std`` (ddof 0) over their seeds. FLamby's Cyclic,
   FedYogi and FedAdagrad rows are not reproduced.

>>> HeartProtocol().rounds, HeartProtocol().batch_size, HeartProtocol().pooled_epochs
(15, 4, 50)
>>> [round(x, 12) for x in mean_sd([0.7, 0.8, 0.9])]
[0.8, 0.1]
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

__all__ = ["HeartProtocol", "BenchmarkRow", "BenchmarkTable", "mean_sd", "heart_benchmark",
           "STRATEGIES", "MAX_SEEDS"]

# the federated rows and their labels; the single-centre rows come first in a table
STRATEGIES = {"fedavg": "FedAvg", "fedprox": "FedProx", "scaffold": "SCAFFOLD",
              "fedadam": "FedAdam"}
CENTRALISED = "Centralised (pooled data)"
FINE_TUNED = "FedAvg + fine-tuning"
MAX_SEEDS = 1000
# mixed into every seed, so the benchmark's own streams (centralised, local-only,
# fine-tuning batches) never coincide with a Simulation's streams of the same seed
_STREAM_TAG = 0xF1A3B


def _fail(name: str, value, allowed: str) -> None:
    raise ValueError(f"{name} = {value!r} is not allowed: {allowed}")


def _check_int(name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        _fail(name, value, f"must be an integer in [{lo}, {hi}]")


def _check_rate(name: str, value, *, hi: float | None = None) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and value > 0 and (hi is None or value < hi))
    if not ok:
        _fail(name, value, "must be a number > 0" if hi is None else f"must be in (0, {hi:g})")


@dataclass(frozen=True)
class HeartProtocol:
    """Every number of the benchmark; the defaults are FLamby's (see the module docstring).

    ``lr`` is the client rate of FedAvg, FedProx and SCAFFOLD (and of the
    fine-tuning); ``pooled_lr`` the SGD rate of the centralised and local-only
    models, which FLamby trains with Adam(1e-3) (difference 1).

    >>> HeartProtocol(rounds=0)
    Traceback (most recent call last):
    ...
    ValueError: rounds = 0 is not allowed: must be an integer in [1, 10000]
    """

    rounds: int = 15
    local_epochs: int = 3
    batch_size: int = 4
    lr: float = 1e-3
    prox_mu: float = 0.01
    scaffold_server_lr: float = 1.0
    fedadam_lr: float = 1e-2
    fedadam_server_lr: float = 1e-2
    fedadam_beta1: float = 0.9
    fedadam_beta2: float = 0.999
    fedadam_tau: float = 1e-8
    pooled_epochs: int = 50
    pooled_lr: float = 1e-2
    finetune_epochs: int = 3

    def __post_init__(self) -> None:
        _check_int("rounds", self.rounds, 1, 10_000)
        for name in ("local_epochs", "pooled_epochs", "finetune_epochs"):
            _check_int(name, getattr(self, name), 1, 1000)
        _check_int("batch_size", self.batch_size, 0, 1_000_000)
        for name in ("lr", "scaffold_server_lr", "fedadam_lr", "fedadam_server_lr",
                     "fedadam_tau", "pooled_lr"):
            _check_rate(name, getattr(self, name))
        _check_rate("fedadam_beta1", self.fedadam_beta1, hi=1)
        _check_rate("fedadam_beta2", self.fedadam_beta2, hi=1)
        if not (isinstance(self.prox_mu, (int, float)) and math.isfinite(self.prox_mu)
                and self.prox_mu >= 0):
            _fail("prox_mu", self.prox_mu, "must be a number ≥ 0")

    def overrides(self, strategy: str) -> dict:
        """``ExperimentConfig`` overrides of one federated strategy (a key of ``STRATEGIES``)."""
        train = {"train.lr": self.lr, "train.algorithm": "fedavg"}
        if strategy == "fedprox":
            train.update({"train.algorithm": "fedprox", "train.prox_mu": self.prox_mu})
        elif strategy == "scaffold":
            train.update({"train.algorithm": "scaffold",
                          "federation.server_lr": self.scaffold_server_lr})
        elif strategy == "fedadam":
            train.update({"train.lr": self.fedadam_lr, "federation.server_optimizer": "adam",
                          "federation.server_lr": self.fedadam_server_lr,
                          "federation.server_beta1": self.fedadam_beta1,
                          "federation.server_beta2": self.fedadam_beta2,
                          "federation.server_tau": self.fedadam_tau})
        elif strategy != "fedavg":
            _fail("strategy", strategy, f"choose one of {', '.join(STRATEGIES)}")
        return train


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample sd (ddof 1) of per-seed values; the sd of one value is ``nan``.

    >>> mean_sd([0.5, 1.0])   # sd = sqrt(((0.5 - 0.75)^2 + (1 - 0.75)^2) / (2 - 1))
    (0.75, 0.3535533905932738)
    >>> mean_sd([0.8])
    (0.8, nan)
    """
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        raise ValueError("mean_sd: no values")
    return float(a.mean()), (float(a.std(ddof=1)) if a.size > 1 else math.nan)


@dataclass(frozen=True)
class BenchmarkRow:
    """One strategy's accuracies: ``pooled[s]`` and ``hospitals[s][k]`` for seed s, hospital k."""

    strategy: str
    pooled: tuple[float, ...]
    hospitals: tuple[tuple[float, ...], ...]

    def hospital_average(self) -> tuple[float, ...]:
        """Per seed, the unweighted mean of the hospitals' accuracies (FLamby's average)."""
        return tuple(float(np.mean(h)) for h in self.hospitals)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass(frozen=True)
class BenchmarkTable:
    """The benchmark's result: rows of per-seed accuracies, summarised as mean ± sd.

    >>> t = BenchmarkTable(rows=(BenchmarkRow("FedAvg", (0.8, 0.7), ((1.0, 0.5), (0.9, 0.6))),),
    ...                    hospitals=("A", "B"), seeds=(0, 1), protocol=HeartProtocol())
    >>> t.columns()[2:6], t.columns()[6:]
    (['pooled_mean', 'pooled_sd', 'hospitals_mean', 'hospitals_sd'], ['a_mean', 'a_sd', 'b_mean', 'b_sd'])
    >>> print(t.to_markdown().splitlines()[-1])
    | FedAvg | 0.750 ± 0.071 | 0.750 ± 0.000 | 0.950 ± 0.071 | 0.550 ± 0.071 |
    """

    rows: tuple[BenchmarkRow, ...]
    hospitals: tuple[str, ...]
    seeds: tuple[int, ...]
    protocol: HeartProtocol

    def columns(self) -> list[str]:
        names = ["pooled", "hospitals"] + [_slug(h) for h in self.hospitals]
        return ["strategy", "n_seeds"] + [f"{n}_{s}" for n in names for s in ("mean", "sd")]

    def records(self) -> list[dict]:
        """One dict per row, keyed by :meth:`columns`: the CSV's content."""
        out = []
        for row in self.rows:
            series = [row.pooled, row.hospital_average()] + [
                tuple(h[k] for h in row.hospitals) for k in range(len(self.hospitals))]
            values = [x for s in series for x in mean_sd(s)]
            out.append(dict(zip(self.columns(), [row.strategy, len(row.pooled)] + values)))
        return out

    def to_csv(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns())
            writer.writeheader()
            writer.writerows(self.records())
        return path

    def to_markdown(self) -> str:
        """A caption line and the table, accuracies as ``mean ± sd`` (3 decimals)."""
        def cell(mean: float, sd: float) -> str:
            return f"{mean:.3f}" + ("" if math.isnan(sd) else f" ± {sd:.3f}")

        p = self.protocol
        seeds = (f"seeds {self.seeds[0]}..{self.seeds[-1]}"
                 if list(self.seeds) == list(range(self.seeds[0], self.seeds[-1] + 1))
                 else "seeds " + ", ".join(map(str, self.seeds)))
        caption = (f"FLamby Fed-Heart-Disease with fedlab: test accuracy, mean ± sd over "
                   f"{len(self.seeds)} {seeds}; {p.rounds} rounds × {p.local_epochs} local epochs, "
                   f"batch {p.batch_size}; single-centre models {p.pooled_epochs} epochs.")
        header = ["strategy", "pooled test", "mean over hospitals"] + list(self.hospitals)
        lines = [caption, "", "| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] + [":---:"] * (len(header) - 1)) + "|"]
        for rec in self.records():
            keys = ["pooled", "hospitals"] + [_slug(h) for h in self.hospitals]
            cells = [rec["strategy"]] + [cell(rec[f"{k}_mean"], rec[f"{k}_sd"]) for k in keys]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _accuracies(model, thetas, fed) -> tuple[float, tuple[float, ...]]:
    """Pooled-test and per-hospital accuracy; row k of ``thetas`` scores hospital k's rows."""
    from fedlab_core.metrics import client_metrics, pooled_metrics

    logits = model.apply(thetas, fed.X_test)
    pooled = pooled_metrics(logits, fed.y_test, fed.n_test)["accuracy"]
    return pooled, tuple(m["accuracy"] for m in client_metrics(logits, fed.y_test, fed.n_test))


def _generators(seed: int, n: int):
    import torch

    streams = np.random.SeedSequence([_STREAM_TAG, seed]).spawn(n)
    return [torch.Generator().manual_seed(int(s.generate_state(1, dtype=np.uint64)[0] >> 1))
            for s in streams]


def _one_seed(seed: int, *, protocol: HeartProtocol, heart_dir: str | None,
              step: Callable[[str], None]
              ) -> tuple[tuple[str, ...], dict[str, tuple[float, tuple[float, ...]]]]:
    """The hospitals' names, and every row's ``(pooled, per-hospital)`` accuracy for one seed."""
    from fedlab_core.client import local_train
    from fedlab_core.config import ExperimentConfig
    from fedlab_core.personalise import fine_tune
    from fedlab_core.simulation import Simulation

    p = protocol
    base = ExperimentConfig().with_overrides({
        "data.dataset": "heart", "data.partition": "natural", "data.n_clients": 4,
        "data.heart_dir": heart_dir, "model.name": "logreg", "train.batch_size": p.batch_size,
        "train.local_epochs": p.local_epochs, "federation.rounds": p.rounds,
        "baselines": False, "seed": seed})
    central_gen, local_gen, finetune_gen = _generators(seed, 3)
    results: dict[str, tuple[float, tuple[float, ...]]] = {}

    # the FedAvg run loads (and splits) the data; every other row reuses that split
    fedavg = Simulation(base.with_overrides(p.overrides("fedavg")))
    fed, model, theta0 = fedavg.federation, fedavg.model, fedavg.theta.clone()
    K = fed.n_clients

    pooled = fed.pooled()
    central = local_train(model, theta0.unsqueeze(0), pooled.X_train, pooled.y_train,
                          pooled.n_train, epochs=p.pooled_epochs, lr=p.pooled_lr,
                          batch_size=p.batch_size, generator=central_gen).thetas
    results[CENTRALISED] = _accuracies(model, central.expand(K, -1), fed)
    step(CENTRALISED)

    local = local_train(model, theta0.expand(K, -1), fed.X_train, fed.y_train, fed.n_train,
                        epochs=p.pooled_epochs, lr=p.pooled_lr, batch_size=p.batch_size,
                        generator=local_gen).thetas
    for k, name in enumerate(fed.client_names):
        results[f"Local: {name}"] = _accuracies(model, local[k].expand(K, -1), fed)
    step("local-only")

    for key, label in STRATEGIES.items():
        sim = fedavg if key == "fedavg" else Simulation(
            base.with_overrides(p.overrides(key)), dataset=fedavg.dataset)
        sim.run()
        results[label] = _accuracies(model, sim.theta.expand(K, -1), fed)
        step(label)

    tuned = fine_tune(model, fedavg.theta, fed.X_train, fed.y_train, fed.n_train,
                      epochs=p.finetune_epochs, lr=p.lr, batch_size=p.batch_size,
                      generator=finetune_gen)
    results[FINE_TUNED] = _accuracies(model, tuned, fed)
    step(FINE_TUNED)
    return tuple(fed.client_names), results


@contextlib.contextmanager
def _one_thread():
    """Run on one CPU thread: every tensor here is tiny (at most 486 × 13), and a
    second OpenMP thread only adds synchronisation. Measured on 2 cores: the
    centralised model's 6100 steps took 0.3-0.5 s on 2 threads, 0.22 s on one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _seed_list(seeds) -> tuple[int, ...]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        _check_int("seeds", seeds, 1, MAX_SEEDS)
        return tuple(range(int(seeds)))
    try:
        listed = tuple(seeds)
    except TypeError:
        listed = None
    if (not listed or len(set(listed)) != len(listed) or len(listed) > MAX_SEEDS
            or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
                   for s in listed)):
        _fail("seeds", seeds, f"give a count in [1, {MAX_SEEDS}] or distinct integers ≥ 0")
    return tuple(int(s) for s in listed)


def heart_benchmark(*, seeds: int | Sequence[int] = 5, heart_dir: str | os.PathLike | None = None,
                    rounds: int | None = None, protocol: HeartProtocol | None = None,
                    progress: Callable[[int, int, str], None] | None = None) -> BenchmarkTable:
    """Run the FLamby Fed-Heart-Disease benchmark once per seed; mean ± sd over seeds.

    Parameters
    ----------
    seeds : a count N (seeds 0..N-1) or the seeds themselves. A seed fixes the
        train/test split (shared by every row), and the batch order.
    heart_dir : the folder with the four UCI files; ``None`` resolves them as
        the heart loader does (``FEDLAB_HEART_DIR``, the cache, a download).
    rounds : federated rounds, replacing ``protocol.rounds`` (FLamby: 15).
    protocol : every other number (:class:`HeartProtocol`, FLamby's by default).
    progress : called as ``progress(done, total, label)`` after each row group.

    Returns
    -------
    :class:`BenchmarkTable` with rows: centralised, one local-only model per
    hospital, FedAvg, FedProx, SCAFFOLD, FedAdam, FedAvg + fine-tuning.
    """
    seed_list = _seed_list(seeds)
    protocol = protocol or HeartProtocol()
    if rounds is not None:
        protocol = dataclasses.replace(protocol, rounds=rounds)
    heart_dir = None if heart_dir is None else str(heart_dir)
    steps_per_seed = 3 + len(STRATEGIES)
    total, done = len(seed_list) * steps_per_seed, 0
    per_seed = []
    for seed in seed_list:
        def step(label: str, seed=seed) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, f"seed {seed}: {label}")

        with _one_thread():
            hospitals, results = _one_seed(seed, protocol=protocol, heart_dir=heart_dir, step=step)
        per_seed.append(results)

    rows = tuple(BenchmarkRow(strategy=name,
                              pooled=tuple(r[name][0] for r in per_seed),
                              hospitals=tuple(r[name][1] for r in per_seed))
                 for name in per_seed[0])
    return BenchmarkTable(rows=rows, hospitals=hospitals, seeds=seed_list, protocol=protocol)
