"""How much does sample-level DP-SGD cost? Private against non-private local training.

Acceptance criterion: a round of local training with DP-SGD
(``fedlab_core.privacy.dpsgd.dp_local_train``) takes at most 5x the
non-private round (``fedlab_core.client.local_train``) with the same
``batch_size``, epochs and data.

Workload: the synthetic cardiovascular cohort (4000 patients, natural
hospitals, the default DataConfig) split over 5 and 10 hospitals,
logistic regression and the MLP, minibatch 32 and 64, 1 local epoch. A round
here is every hospital's local training from the same global model (the
rest of a round, aggregation and evaluation, is the same work with or
without DP, so the ratio of whole rounds is smaller). Times are medians over
the timed rounds, after a warm-up round. Torch runs on 1 thread by default,
as ``Simulation`` does for federations this small (``_threads_for``).

DP-SGD rows: ``clip=1.0, noise_multiplier=1.0``. The "per-example" column
is the reference path that materialises every per-example gradient
(``torch.func`` for the MLP), which ``dp_local_train`` takes for a model
without closed-form per-example norms; by default it uses those norms.

    python benchmarks/bench_dpsgd.py            # ~1 minute
    python benchmarks/bench_dpsgd.py --quick    # fewer rounds
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time

import torch

from fedlab_core.client import local_train
from fedlab_core.config import DataConfig
from fedlab_core.data import load_dataset
from fedlab_core.federation import Federation
from fedlab_core.models import make_model
from fedlab_core.privacy.dpsgd import dp_local_train

LR, CLIP, NOISE_MULTIPLIER, EPOCHS = 0.1, 1.0, 1.0, 1


def ms_per_round(train, rounds: int) -> float:
    train()  # warm-up: allocations, first-call dispatch
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        train()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per cell")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (Simulation uses 1 here)")
    parser.add_argument("--quick", action="store_true", help="5 rounds per cell, for a smoke test")
    args = parser.parse_args()
    rounds = 5 if args.quick else args.rounds
    torch.set_num_threads(args.threads)

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s); DP-SGD clip {CLIP}, noise multiplier {NOISE_MULTIPLIER}; "
          f"{EPOCHS} local epoch; ms per round (median of {rounds})")
    print(f"{'K':>3} {'model':>6} {'batch':>5} {'non-private':>12} {'DP-SGD':>9} {'ratio':>6} "
          f"{'per-example':>12} {'ratio':>6}")
    worst = 0.0
    for n_clients in (5, 10):
        ds = load_dataset(DataConfig(n_clients=n_clients, n_samples=4000), seed=0)
        fed = Federation.from_dataset(ds, dtype=torch.float32)
        X, y, n = fed.X_train, fed.y_train, fed.n_train
        for name in ("logreg", "mlp"):
            model = make_model(name, n_features=fed.n_features)
            thetas = model.init(torch.Generator().manual_seed(0), torch.float32).expand(n_clients, -1)
            for batch_size in (32, 64):
                gen = torch.Generator().manual_seed(1)

                def plain():
                    return local_train(model, thetas, X, y, n, epochs=EPOCHS, lr=LR,
                                       batch_size=batch_size, generator=gen)

                def private(model=model):
                    return dp_local_train(model, thetas, X, y, n, epochs=EPOCHS, lr=LR,
                                          batch_size=batch_size, clip=CLIP,
                                          noise_multiplier=NOISE_MULTIPLIER, generator=gen)

                t_plain = ms_per_round(plain, rounds)
                t_private = ms_per_round(private, rounds)
                # without closed-form norms DP-SGD clips the materialised per-example gradients
                per_example_only = dataclasses.replace(model, per_example_grad_norms=None)
                t_reference = ms_per_round(lambda: private(per_example_only), max(3, rounds // 3))
                worst = max(worst, t_private / t_plain)
                print(f"{n_clients:>3} {name:>6} {batch_size:>5} {t_plain:>9.2f} ms {t_private:>6.2f} ms "
                      f"{t_private / t_plain:>5.1f}x {t_reference:>9.2f} ms {t_reference / t_plain:>5.1f}x",
                      flush=True)
    print(f"worst DP-SGD / non-private ratio: {worst:.1f}x (criterion: ≤ 5x)")


if __name__ == "__main__":
    main()
