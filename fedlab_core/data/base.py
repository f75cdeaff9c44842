"""The shape every dataset loader returns: one train/test split per hospital.

Loaders stay in NumPy (no torch): the engine pads these arrays into a
``Federation`` of tensors (see ``fedlab_core.federation``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClientData:
    """One hospital's data, already preprocessed (numeric, no missing values).

    ``X_*`` are float64 arrays of shape ``(n, n_features)``; ``y_*`` are int64
    arrays of shape ``(n,)`` with labels in ``{0, 1}``.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_train(self) -> int:
        return int(self.y_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.y_test.shape[0])


@dataclass(frozen=True)
class FederatedDataset:
    """Every hospital's split, the feature names, and where the data came from."""

    name: str
    feature_names: tuple[str, ...]
    clients: tuple[ClientData, ...]
    description: str = ""

    @property
    def n_clients(self) -> int:
        return len(self.clients)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def client_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.clients)
