"""Datasets split across hospitals: one entry point, :func:`load_dataset`.

Four datasets (``config.dataset``):

- ``synthetic`` — a generated cardiovascular cohort whose hospitals differ by
  six documented knobs (``datasets/synthetic-cardiovascular.md``);
- ``breast_cancer`` — Breast Cancer Wisconsin (Diagnostic), bundled with
  scikit-learn, no hospitals of its own (``datasets/breast-cancer-wisconsin.md``);
- ``heart`` — UCI Heart Disease, four real hospitals, downloaded on first use
  (``datasets/uci-heart-disease.md``);
- ``scans`` — generated greyscale scans (flattened pixels, label = a lesion is
  present) from hospitals whose scanners differ (``datasets/synthetic-scans.md``);
  :func:`as_images` turns rows back into images for plotting.

``partition = 'natural'`` keeps a dataset's own hospitals; ``iid``,
``dirichlet``, ``quantity`` and ``pathological`` pool the rows and re-split
them with :mod:`fedlab_core.partition`. Each hospital then gets its own
train/test split, and the features are standardised by the dataset's protocol
(see :data:`STANDARDISATION`).

>>> from fedlab_core.config import DataConfig
>>> ds = load_dataset(DataConfig(n_samples=400), seed=0)
>>> ds.client_names
('Hospital A', 'Hospital B', 'Hospital C', 'Hospital D')
>>> sum(c.n_train + c.n_test for c in ds.clients), ds.n_features
(400, 9)
"""

from __future__ import annotations

import math
import numpy as np

from fedlab_core import partition as _partition
from fedlab_core.config import DataConfig
from fedlab_core.data.base import ClientData, FederatedDataset
from fedlab_core.data.scans import as_images, make_scan_hospitals, pixel_names
from fedlab_core.data.synthetic import hospital_names, make_cohort, standardize

__all__ = ["load_dataset", "stratified_split", "DATASET_INFO", "STANDARDISATION",
           "ClientData", "FederatedDataset", "hospital_names", "as_images"]

DATASET_INFO = {
    "synthetic": ("Synthetic cardiovascular cohort: 9 clinical features (age, sex, BMI, blood "
                  "pressure, cholesterol, HDL, HbA1c, smoking, diabetes); label = a "
                  "cardiovascular event within 10 years from an illustrative logistic risk "
                  "model. Hospitals differ by documented knobs."),
    "breast_cancer": ("Breast Cancer Wisconsin (Diagnostic), 569 patients, 30 features of cell "
                      "nuclei from fine-needle aspirates; label 1 = malignant. No natural "
                      "hospitals."),
    "heart": ("UCI Heart Disease (Janosi et al. 1988), 4 real hospitals (Cleveland, Hungary, "
              "Switzerland, Long Beach VA), FLamby preprocessing: 13 features, 740 patients; "
              "label 1 = angiographic heart disease."),
    "scans": ("Synthetic greyscale scans: an organ with textured tissue and vessels, label 1 = "
              "a small bright lesion is present; features = the image's pixels, row by row "
              "(as_images gives the images back). Hospitals differ by their scanners "
              "(brightness, contrast, noise, blur, resolution)."),
}

STANDARDISATION = {
    "synthetic": "fixed clinical reference means/sds (learns nothing from the data)",
    "breast_cancer": "pooled training mean/sd over all hospitals",
    "heart": ("each hospital with its own training mean/sd (FLamby protocol) for the natural "
              "hospitals; pooled training mean/sd when the rows are re-split"),
    # a scanner's offset and gain are the heterogeneity being taught: rescaling
    # the pixels would hide part of it, and [0, 1] is already a sane scale
    "scans": "none: pixels stay in [0, 1], as each hospital's scanner recorded them",
}


def _n_test(n: int, test_fraction: float) -> int:
    # ceil as scikit-learn does, after rounding away float noise (0.34·50 is
    # 17.000000000000004 in binary), and kept within [1, n − 1]
    return min(max(math.ceil(round(test_fraction * n, 9)), 1), n - 1)


def stratified_split(y: np.ndarray, test_fraction: float, *, rng: np.random.Generator,
                     name: str = "client") -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices, stratified by label when every class has ≥ 2 rows.

    ``n_test = ceil(test_fraction · n)`` (kept within ``[1, n − 1]``), shared
    among classes in proportion to their sizes (largest remainder), so the
    test set has the hospital's prevalence. With a class of a single row the
    split is plain random. A hospital with fewer than 2 rows cannot have both
    a train and a test row: ``ValueError``.

    >>> tr, te = stratified_split(np.array([0] * 6 + [1] * 4), 0.5, rng=np.random.default_rng(0))
    >>> len(tr), len(te), int(np.array([0] * 6 + [1] * 4)[te].sum())
    (5, 5, 2)
    """
    y = np.asarray(y)
    n = y.shape[0]
    if n < 2:
        raise ValueError(
            f"{name} has {n} row(s): each hospital needs at least 1 training and 1 test row; "
            "use fewer hospitals (data.n_clients) or more data (data.n_samples), "
            "or a less skewed partition")
    n_test = _n_test(n, test_fraction)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) > 1 and counts.min() >= 2:
        per_class = _partition.split_counts(n_test, counts.astype(np.float64))
        test = [rng.permutation(np.flatnonzero(y == c))[:t] for c, t in zip(classes, per_class)]
        test_idx = np.sort(np.concatenate(test))
    else:
        test_idx = np.sort(rng.permutation(n)[:n_test])
    train_mask = np.ones(n, dtype=bool)
    train_mask[test_idx] = False
    return np.flatnonzero(train_mask), test_idx


def _mean_sd(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, sd = X.mean(axis=0), X.std(axis=0)
    # a constant column (e.g. Switzerland's cholesterol, recorded as 0 for
    # everybody) carries no information: centre it, do not divide by 0
    return mean, np.where(sd > 0, sd, 1.0)


def _partition_rows(config: DataConfig, y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    n, K = y.shape[0], config.n_clients
    if K > n:
        raise ValueError(f"data.n_clients = {K} is not allowed: the {config.dataset} data has "
                         f"only {n} patients; use at most {n} hospitals")
    knob = {"dirichlet": "data.alpha", "quantity": "data.quantity_sigma",
            "pathological": "data.labels_per_client"}.get(config.partition)
    try:
        if config.partition == "iid":
            return _partition.iid(n, K, rng=rng)
        if config.partition == "dirichlet":
            return _partition.dirichlet_label_skew(y, K, alpha=config.alpha, rng=rng)
        if config.partition == "quantity":
            return _partition.quantity_skew(n, K, sigma=config.quantity_sigma, rng=rng)
        return _partition.pathological(y, K, labels_per_client=config.labels_per_client, rng=rng)
    except ValueError as err:
        raise ValueError(f"data.partition = {config.partition!r} with data.n_clients = {K}"
                         f"{f', {knob}' if knob else ''} failed: {err}") from err


def load_dataset(config: DataConfig, *, seed: int) -> FederatedDataset:
    """Build every hospital's standardised train/test split for ``config``.

    Steps: load (or generate) the rows; keep the natural hospitals or pool and
    re-split with the chosen partitioner; per hospital a stratified split
    (:func:`stratified_split`, ``config.test_fraction``; the heart data's
    natural hospitals use FLamby's 0.34 instead); standardise (see
    :data:`STANDARDISATION`). Randomness comes from ``seed`` only, split into
    independent streams for generation, partition and train/test split, so
    changing the partition does not change the patients.

    >>> from fedlab_core.config import DataConfig
    >>> cfg = DataConfig(dataset="breast_cancer", partition="dirichlet", n_clients=3, alpha=1.0)
    >>> ds = load_dataset(cfg, seed=1)
    >>> ds.n_clients, ds.n_features, sum(c.n_train + c.n_test for c in ds.clients)
    (3, 30, 569)
    """
    if not isinstance(config, DataConfig):
        raise ValueError(f"config = {type(config).__name__} is not allowed: must be a DataConfig")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed = {seed!r} is not allowed: must be an integer ≥ 0")
    gen_rng, part_rng, split_rng = (np.random.default_rng(s)
                                    for s in np.random.SeedSequence(int(seed)).spawn(3))
    test_fraction = config.test_fraction

    # ---- rows, grouped by their natural hospital where there is one -------
    groups: list[tuple[np.ndarray, np.ndarray]] | None
    if config.dataset == "synthetic":
        cohort = make_cohort(config.n_samples, config.n_clients, rng=gen_rng,
                             covariate_shift=config.covariate_shift,
                             label_shift=config.label_shift, size_skew=config.size_skew,
                             measurement_bias=config.measurement_bias,
                             label_noise=config.label_noise, missing_rate=config.missing_rate)
        # reference standardisation learns nothing from the data, so it can
        # happen before the split; missing lab values become the reference mean (0)
        groups = [(standardize(X), y) for X, y in zip(cohort.X, cohort.y)]
        site_names, features = cohort.names, cohort.feature_names
    elif config.dataset == "scans":
        scans = make_scan_hospitals(config.n_samples, config.n_clients, rng=gen_rng,
                                    scanner_shift=config.scanner_shift,
                                    label_shift=config.label_shift, size_skew=config.size_skew,
                                    image_size=config.image_size)
        groups = list(zip(scans.X, scans.y))
        site_names, features = scans.names, pixel_names(config.image_size)
    elif config.dataset == "breast_cancer":
        from fedlab_core.data.breast_cancer import load_breast_cancer_arrays

        X, y, features = load_breast_cancer_arrays()
        groups, site_names = None, ()
        pooled = (X, y)
    else:  # heart
        from fedlab_core.data.heart import FLAMBY_TEST_FRACTION, load_heart_sites

        groups, site_names, features = load_heart_sites(
            config.heart_dir, preprocessing=config.heart_preprocessing)
        if config.partition == "natural":
            test_fraction = FLAMBY_TEST_FRACTION

    # ---- hospitals ---------------------------------------------------------
    if config.partition == "natural":
        if groups is None:
            raise ValueError(
                f"data.partition = 'natural' is not allowed for data.dataset = {config.dataset!r}: "
                "it has no hospitals of its own; choose iid, dirichlet, quantity or pathological")
        names = tuple(site_names)
    else:
        if groups is not None:
            pooled = (np.concatenate([g[0] for g in groups]), np.concatenate([g[1] for g in groups]))
        parts = _partition_rows(config, pooled[1], part_rng)
        groups = [(pooled[0][idx], pooled[1][idx]) for idx in parts]
        names = hospital_names(len(groups))

    # ---- per-hospital train/test split --------------------------------------
    splits = []
    for name, (X, y) in zip(names, groups):
        tr, te = stratified_split(y, test_fraction, rng=split_rng, name=name)
        splits.append((X[tr], y[tr], X[te], y[te]))

    # ---- standardisation -----------------------------------------------------
    if config.dataset == "breast_cancer" or (config.dataset == "heart"
                                             and config.partition != "natural"):
        # pooled training mean/sd: in a real federation one secure sum of
        # (n, Σx, Σx²) over hospitals gives exactly these, revealing no one's rows.
        # (Per-hospital statistics on re-split rows would leak the label: a
        # hospital holding one label gets its own tell-tale offsets, and a
        # column constant inside it is zeroed; the centralised model learnt to
        # read the hospital, hence the label, from that: 0.96 instead of ~0.8.)
        mean, sd = _mean_sd(np.concatenate([s[0] for s in splits]))
        splits = [((a - mean) / sd, b, (c - mean) / sd, d) for a, b, c, d in splits]
    elif config.dataset == "heart":
        scaled = []
        for a, b, c, d in splits:
            mean, sd = _mean_sd(a)   # FLamby: each hospital alone, its training rows only
            scaled.append(((a - mean) / sd, b, (c - mean) / sd, d))
        splits = scaled

    clients = tuple(
        ClientData(name=name, X_train=np.ascontiguousarray(a, dtype=np.float64),
                   y_train=np.asarray(b, dtype=np.int64),
                   X_test=np.ascontiguousarray(c, dtype=np.float64),
                   y_test=np.asarray(d, dtype=np.int64))
        for name, (a, b, c, d) in zip(names, splits))
    description = (f"{DATASET_INFO[config.dataset]} Partition: {config.partition}. "
                   f"Standardisation: {STANDARDISATION[config.dataset]}.")
    return FederatedDataset(name=config.dataset, feature_names=tuple(features), clients=clients,
                            description=description)

