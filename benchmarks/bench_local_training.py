"""How fast is a federated round? The vectorised engine against a naive per-client loop.

Workload (issue #2): N = 100 000 patients with d = 30 features split evenly
(IID) over K ∈ {10, 100, 1000} hospitals, logistic regression, 5 local epochs
per round, full batch and minibatch 32. One round = every hospital's local
training + FedAvg + the server update (no evaluation, which is the same work
for both).

- *vectorised*: ``fedlab_core.client.local_train`` on the padded ``(K, n, d)``
  batch, then ``fedavg``.
- *naive*: what textbook FL code does: for each hospital a fresh
  ``nn.Linear`` loaded with the global weights, a fresh ``torch.optim.SGD``,
  and a loop over epochs and batches (batches by slicing a ``randperm``,
  which is cheaper than a ``DataLoader``, so the naive loop is not
  handicapped), then a weighted average of the state dicts.

Both start from the same global model; with full batch they must end at the
same model (checked, float32 tolerance). The FLOP rate compares the
vectorised round to the machine's float32 matrix-multiply rate, measured here
(a 2048 x 2048 matmul); a round costs about 6·N·d FLOPs per local epoch
(forward 2Nd, gradient 2Nd, plus the update), so ~9e7 per round.

Logistic regression is a matrix-*vector* workload: each epoch reads every
feature value twice (forward and gradient) and does ~3 FLOPs per value read,
so memory bandwidth, not the matmul units, sets its ceiling. The benchmark
therefore also prints the rate that the measured read bandwidth allows
(the roofline, Williams et al., CACM 2009) and the fraction of it reached.

    python benchmarks/bench_local_training.py            # ~1-2 minutes
    python benchmarks/bench_local_training.py --quick    # fewer rounds

The last line is the naive/vectorised speed ratio at K = 1000, full batch.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from fedlab_core.aggregate import fedavg
from fedlab_core.client import local_train
from fedlab_core.models import make_model

N_PATIENTS, N_FEATURES, LOCAL_EPOCHS, LR = 100_000, 30, 5, 0.1


def make_data(K: int, gen: torch.Generator):
    n = N_PATIENTS // K
    X = torch.randn(K, n, N_FEATURES, generator=gen)
    w_true = torch.randn(N_FEATURES, generator=gen) / N_FEATURES ** 0.5
    y = (torch.rand(K, n, generator=gen) < torch.sigmoid(X @ w_true)).float()
    return X, y, torch.full((K,), n)


def vectorised_round(model, theta, X, y, n, batch_size, gen):
    local = local_train(model, theta.expand(X.shape[0], -1), X, y, n, epochs=LOCAL_EPOCHS, lr=LR,
                        batch_size=batch_size, generator=gen).thetas
    return theta + fedavg(local - theta, n.float())


def naive_round(theta, X, y, n, batch_size, gen):
    """A fresh module and optimiser per hospital, a Python loop over everything."""
    K, d = X.shape[0], X.shape[2]
    states, sizes = [], []
    for k in range(K):
        model = torch.nn.Linear(d, 1)
        with torch.no_grad():
            model.weight.copy_(theta[:d].unsqueeze(0))
            model.bias.copy_(theta[d:])
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        Xk, yk, nk = X[k, : n[k]], y[k, : n[k]], int(n[k])
        step = batch_size or nk
        for _ in range(LOCAL_EPOCHS):
            order = torch.randperm(nk, generator=gen) if batch_size else torch.arange(nk)
            for s in range(0, nk, step):
                idx = order[s:s + step]
                opt.zero_grad()
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    model(Xk[idx]).squeeze(-1), yk[idx])
                loss.backward()
                opt.step()
        states.append(torch.cat([model.weight.detach().view(-1), model.bias.detach()]))
        sizes.append(nk)
    w = torch.tensor(sizes, dtype=theta.dtype)
    return (w / w.sum()) @ torch.stack(states)


def seconds_per_round(fn, rounds: int) -> tuple[float, torch.Tensor]:
    theta = fn(None)  # warm-up round (allocations, MKL start-up), not timed
    start = time.perf_counter()
    for _ in range(rounds):
        theta = fn(theta)
    return (time.perf_counter() - start) / rounds, theta


def matmul_flops() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 2048 ** 3 / best


def read_bandwidth(X: torch.Tensor) -> float:
    """Bytes per second of one pass over ``X`` (a sum, the cheapest full read)."""
    X.sum()
    best = float("inf")
    for _ in range(10):
        start = time.perf_counter()
        X.sum()
        best = min(best, time.perf_counter() - start)
    return X.numel() * X.element_size() / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds, vectorised engine")
    parser.add_argument("--naive-rounds", type=int, default=None,
                        help="timed rounds of the naive loop (default: 20 for K ≤ 100, 3 for K = 1000, "
                             "since each of its rounds takes seconds)")
    parser.add_argument("--quick", action="store_true", help="3 rounds each, for a smoke test")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds

    peak = matmul_flops()
    flops_per_round = 6 * N_PATIENTS * N_FEATURES * LOCAL_EPOCHS
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; float32 matmul {peak / 1e9:.0f} GFLOP/s")
    print(f"workload: {N_PATIENTS} patients, {N_FEATURES} features, logistic regression, "
          f"{LOCAL_EPOCHS} local epochs, IID split, seconds per round (lower is better)")
    print(f"{'K':>5} {'batch':>6} {'vectorised':>12} {'naive':>10} {'naive/vec':>10} {'FLOP rate':>11} "
          f"{'of matmul':>10} {'of roofline':>12} {'same model':>11}")

    model = make_model("logreg", n_features=N_FEATURES)
    ratios = {}
    for K in (10, 100, 1000):
        X, y, n = make_data(K, torch.Generator().manual_seed(K))
        theta0 = torch.zeros(N_FEATURES + 1)
        for batch_size in (0, 32):
            naive_rounds = args.naive_rounds or (rounds if K <= 100 else min(rounds, 3))
            gen_v, gen_n = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
            t_vec, theta_vec = seconds_per_round(
                lambda th: vectorised_round(model, theta0 if th is None else th, X, y, n, batch_size, gen_v),
                rounds)
            t_naive, theta_naive = seconds_per_round(
                lambda th: naive_round(theta0 if th is None else th, X, y, n, batch_size, gen_n),
                naive_rounds)
            if batch_size == 0:
                # one round of each from the same start must give the same model
                a = vectorised_round(model, theta0, X, y, n, 0, None)
                b = naive_round(theta0, X, y, n, 0, None)
                same = "yes" if torch.allclose(a, b, atol=1e-5) else "NO"
            else:
                same = "-"  # different shuffles by design
            rate = flops_per_round / t_vec if batch_size == 0 else float("nan")
            ratios[(K, batch_size)] = t_naive / t_vec
            label = "full" if batch_size == 0 else str(batch_size)
            frac = f"{rate / peak:9.1%}" if batch_size == 0 else f"{'-':>9}"
            # two reads of X per epoch bound the full-batch rate from above
            roofline = flops_per_round / (2 * LOCAL_EPOCHS * X.numel() * X.element_size() / read_bandwidth(X))
            roof = f"{min(rate / roofline, 9.99):11.0%}" if batch_size == 0 else f"{'-':>11}"
            rate_s = f"{rate / 1e9:7.1f} GF/s" if batch_size == 0 else f"{'-':>11}"
            print(f"{K:>5} {label:>6} {t_vec * 1e3:9.2f} ms {t_naive:8.3f} s {t_naive / t_vec:9.0f}x "
                  f"{rate_s} {frac} {roof} {same:>11}", flush=True)
    print(f"(naive timed over {args.naive_rounds or min(rounds, 3)} rounds at K = 1000, "
          f"{args.naive_rounds or rounds} below; vectorised over {rounds}; 'same model': one "
          "full-batch round of each from the same start agrees within 1e-5)")
    print(f"minibatch 32, K = 1000: naive/vectorised = {ratios[(1000, 32)]:.0f}x")
    print(f"full batch, K = 1000: naive/vectorised = {ratios[(1000, 0)]:.0f}x")


if __name__ == "__main__":
    main()
