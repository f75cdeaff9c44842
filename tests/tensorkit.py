"""Padded test data shared by the client and DP-SGD tests: K clients of uneven sizes."""

import torch


def make_padded(sizes, d, gen):
    """``X (K, n_max, d)``, ``y (K, n_max)`` float64 (zeros past each client's rows), and ``n``."""
    K, n_max = len(sizes), max(sizes)
    X = torch.zeros(K, n_max, d, dtype=torch.float64)
    y = torch.zeros(K, n_max, dtype=torch.float64)
    for k, n in enumerate(sizes):
        X[k, :n] = torch.randn(n, d, generator=gen, dtype=torch.float64)
        y[k, :n] = (torch.rand(n, generator=gen, dtype=torch.float64) < 0.4).double()
    return X, y, torch.tensor(sizes)
