"""A ``Federation``: every client's data as one padded batch of tensors.

Client k's training rows sit in ``X_train[k, :n_train[k]]``; the rows after
that are zero padding, switched off by ``mask_train``. Padding costs memory
when client sizes differ a lot, but it turns K small computations into one
big one, which is what makes simulating 1000 clients fast (DESIGN.md,
"clients are a batch").

>>> import numpy as np
>>> from fedlab_core.data.base import ClientData, FederatedDataset
>>> def client(name, n):
...     X = np.arange(2 * n, dtype=float).reshape(n, 2)
...     y = np.arange(n) % 2
...     return ClientData(name, X, y, X[:1], y[:1])
>>> ds = FederatedDataset("toy", ("a", "b"), (client("A", 3), client("B", 1)))
>>> fed = Federation.from_dataset(ds)
>>> tuple(fed.X_train.shape), fed.n_train.tolist()
((2, 3, 2), [3, 1])
>>> fed.mask_train.tolist()
[[True, True, True], [True, False, False]]
>>> fed.pooled().n_train.tolist()
[4]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedlab_core.data.base import FederatedDataset

Tensor = torch.Tensor


def _pad(arrays: list[np.ndarray], n_max: int, dtype, device) -> Tensor:
    shape = (len(arrays), n_max, *arrays[0].shape[1:])
    out = np.zeros(shape, dtype=np.float64)
    for k, a in enumerate(arrays):
        out[k, : len(a)] = a
    return torch.as_tensor(out, dtype=dtype, device=device)


def _mask(counts: Tensor, n_max: int) -> Tensor:
    return torch.arange(n_max, device=counts.device).unsqueeze(0) < counts.unsqueeze(1)


@dataclass(frozen=True)
class Federation:
    """Padded per-client train and test tensors, plus counts and names.

    Shapes: ``X_*: (K, n_max, d)``, ``y_*: (K, n_max)`` (float 0/1, for the
    loss), ``mask_*: (K, n_max)`` bool, ``n_*: (K,)`` int64.
    """

    client_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    X_train: Tensor
    y_train: Tensor
    mask_train: Tensor
    n_train: Tensor
    X_test: Tensor
    y_test: Tensor
    mask_test: Tensor
    n_test: Tensor

    @classmethod
    def from_dataset(cls, ds: FederatedDataset, *, dtype: torch.dtype = torch.float32,
                     device: str | torch.device = "cpu") -> "Federation":
        if ds.n_clients == 0:
            raise ValueError("data.n_clients = 0 is not allowed: a federation needs at least 1 client")
        for c in ds.clients:
            if c.n_train == 0:
                raise ValueError(f"client {c.name!r} has no training rows: choose a partition "
                                 "or fewer clients so that every client keeps data")
        n_train = torch.tensor([c.n_train for c in ds.clients], device=device)
        n_test = torch.tensor([c.n_test for c in ds.clients], device=device)
        nmax_tr, nmax_te = int(n_train.max()), max(int(n_test.max()), 1)
        return cls(
            client_names=ds.client_names,
            feature_names=ds.feature_names,
            X_train=_pad([c.X_train for c in ds.clients], nmax_tr, dtype, device),
            y_train=_pad([c.y_train for c in ds.clients], nmax_tr, dtype, device),
            mask_train=_mask(n_train, nmax_tr),
            n_train=n_train,
            X_test=_pad([c.X_test for c in ds.clients], nmax_te, dtype, device),
            y_test=_pad([c.y_test for c in ds.clients], nmax_te, dtype, device),
            mask_test=_mask(n_test, nmax_te),
            n_test=n_test,
        )

    @property
    def n_clients(self) -> int:
        return len(self.client_names)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[-1])

    def subset(self, clients: Tensor) -> "Federation":
        """The federation of the given client indices (for client sampling)."""
        idx = clients.tolist()
        return Federation(
            client_names=tuple(self.client_names[i] for i in idx),
            feature_names=self.feature_names,
            X_train=self.X_train[clients], y_train=self.y_train[clients],
            mask_train=self.mask_train[clients], n_train=self.n_train[clients],
            X_test=self.X_test[clients], y_test=self.y_test[clients],
            mask_test=self.mask_test[clients], n_test=self.n_test[clients],
        )

    def pooled(self) -> "Federation":
        """All clients' rows as one client: the centralised baseline's data."""
        def stack(X, mask):
            rows = X[mask]
            return rows.unsqueeze(0)

        n_tr, n_te = self.n_train.sum().reshape(1), self.n_test.sum().reshape(1)
        return Federation(
            client_names=("pooled",),
            feature_names=self.feature_names,
            X_train=stack(self.X_train, self.mask_train),
            y_train=stack(self.y_train, self.mask_train),
            mask_train=torch.ones(1, int(n_tr), dtype=torch.bool, device=n_tr.device),
            n_train=n_tr,
            X_test=stack(self.X_test, self.mask_test),
            y_test=stack(self.y_test, self.mask_test),
            mask_test=torch.ones(1, int(n_te), dtype=torch.bool, device=n_te.device),
            n_test=n_te,
        )
