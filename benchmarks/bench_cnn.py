"""Seconds per round of the CNN: 10 hospitals x 500 synthetic scans (32 x 32), and
100 hospitals x 50.

Workload: ``data.dataset = "scans"`` with 10 hospitals of 500 training
images each, then 100 of 50 (equal sizes, ``size_skew = 0``), the default CNN
(8 and 16 filters, batch norm, ``fedlab_core.cnn``), minibatch 32, one local
epoch per round, FedAvg and FedBN. Rows:

- ``vectorised local training``: ``local_train`` for all 10 hospitals at once
  (one grouped convolution per layer);
- ``per-hospital nn.Module loop``: the textbook way, 10 ``nn.Sequential``
  models trained one after the other on the same batches' sizes;
- ``whole round``: ``Simulation.step()`` with baselines off (local training,
  aggregation, and the global model evaluated on every hospital's test set),
  for FedAvg and for FedBN.

Times are medians over the timed rounds after one warm-up round, on all the
machine's threads (federations of images are past ``SMALL_FEDERATION``).

    python benchmarks/bench_cnn.py            # ~1 minute on 2 cores
    python benchmarks/bench_cnn.py --rounds 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from fedlab_core.client import local_train
from fedlab_core.config import ExperimentConfig
from fedlab_core.simulation import Simulation

BATCH = 32


def config(method: str, K: int, per_hospital: int) -> ExperimentConfig:
    # per_hospital training images per hospital after the 25 % test split
    return ExperimentConfig().with_overrides({
        "data.dataset": "scans", "data.n_clients": K, "data.n_samples": K * per_hospital * 4 // 3,
        "data.size_skew": 0.0, "data.scanner_shift": 1.0, "model.name": "cnn",
        "train.batch_size": BATCH, "train.lr": 0.05, "baselines": False,
        "personal.method": method, "federation.rounds": 100})


def median_seconds(fn, rounds: int) -> float:
    fn()   # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def module_loop(sim: Simulation, gen: torch.Generator) -> None:
    fed, c = sim.federation, sim.config.model.channels
    for k in range(fed.n_clients):
        net = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.MaxPool2d(2), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(2 * c, 1))
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        n = int(fed.n_train[k])
        X = fed.X_train[k, :n].view(n, 1, 32, 32)
        y = fed.y_train[k, :n]
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, BATCH):
            idx = order[s:s + BATCH]
            loss = nn.functional.binary_cross_entropy_with_logits(net(X[idx]).squeeze(1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per row (default 5)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    for K, per_hospital in ((10, 500), (100, 50)):
        sim = Simulation(config("none", K, per_hospital))
        fed, model = sim.federation, sim.model
        print(f"{fed.n_clients} hospitals, training images per hospital "
              f"{sorted(set(fed.n_train.tolist()))}, CNN with {model.n_params} parameters")
        gen = torch.Generator().manual_seed(0)
        rows = {
            "vectorised local training": lambda: local_train(
                model, sim.theta.expand(K, -1), fed.X_train, fed.y_train, fed.n_train, epochs=1,
                lr=0.05, batch_size=BATCH, generator=gen),
            "per-hospital nn.Module loop": lambda: module_loop(sim, gen),
            "whole round, FedAvg": sim.step,
            "whole round, FedBN": Simulation(config("fedbn", K, per_hospital)).step,
        }
        for name, fn in rows.items():
            print(f"  {name:30s} {median_seconds(fn, args.rounds):6.2f} s / round")


if __name__ == "__main__":
    main()
