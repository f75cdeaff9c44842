"""Breast Cancer Wisconsin (Diagnostic): 569 patients, 30 features, bundled with scikit-learn.

No download: the data ship inside scikit-learn. The dataset has no hospitals
of its own, so it is always split with a partitioner (iid, dirichlet,
quantity, pathological). See ``datasets/breast-cancer-wisconsin.md``.

>>> X, y, names = load_breast_cancer_arrays()
>>> X.shape, int(y.sum()), names[0]
((569, 30), 212, 'mean radius')
"""

from __future__ import annotations

import numpy as np

__all__ = ["load_breast_cancer_arrays", "N_PATIENTS"]

N_PATIENTS = 569


def load_breast_cancer_arrays() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Raw (unstandardised) features, labels with ``1 = malignant``, feature names.

    scikit-learn's ``target`` codes 0 = malignant, 1 = benign; we flip it
    (``y = 1 − target``) so that, as everywhere in fedlab, 1 is the condition
    we look for and the positive class of AUC and recall. Source: Street,
    Wolberg & Mangasarian (1993), via ``sklearn.datasets.load_breast_cancer``.

    >>> X, y, _ = load_breast_cancer_arrays()
    >>> y.dtype, sorted(set(y.tolist()))
    (dtype('int64'), [0, 1])
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = (1 - np.asarray(bunch.target)).astype(np.int64)
    return X, y, tuple(str(f) for f in bunch.feature_names)
