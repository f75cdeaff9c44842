"""load_dataset: every dataset × partition, splits, standardisation, errors."""

from pathlib import Path

import numpy as np
import pytest

from fedlab_core.config import DataConfig
from fedlab_core.data import (DATASET_INFO, ClientData, FederatedDataset, load_dataset,
                              stratified_split)
from fedlab_core.data.synthetic import REFERENCE_MEAN, REFERENCE_SD

HEART_DIR = Path(__file__).resolve().parents[2] / "shared/datasets/uci-heart-disease"
HAVE_HEART = (HEART_DIR / "processed.va.data").is_file()
PARTITIONS = ["iid", "dirichlet", "quantity", "pathological"]


def check_contract(ds: FederatedDataset, n_total: int | None = None):
    assert isinstance(ds, FederatedDataset)
    for c in ds.clients:
        assert isinstance(c, ClientData)
        assert c.n_train >= 1 and c.n_test >= 1
        for X, y in ((c.X_train, c.y_train), (c.X_test, c.y_test)):
            assert X.dtype == np.float64 and y.dtype == np.int64
            assert X.shape == (len(y), ds.n_features)
            assert np.isfinite(X).all() and set(np.unique(y)) <= {0, 1}
    assert len(set(ds.client_names)) == ds.n_clients
    if n_total is not None:
        assert sum(c.n_train + c.n_test for c in ds.clients) == n_total


def test_dataset_info_covers_every_dataset():
    assert set(DATASET_INFO) == {"synthetic", "breast_cancer", "heart", "scans"}


@pytest.mark.parametrize("partition", ["natural"] + PARTITIONS)
def test_synthetic_every_partition(partition):
    cfg = DataConfig(n_samples=2000, n_clients=5, partition=partition, alpha=1.0)
    ds = load_dataset(cfg, seed=0)
    check_contract(ds, 2000)
    assert ds.n_clients == 5
    assert ds.client_names[0] == "Hospital A"
    assert ds.feature_names[:4] == ("age", "sex", "bmi", "sbp")


@pytest.mark.parametrize("partition", PARTITIONS)
def test_breast_cancer_every_partition(partition):
    ds = load_dataset(DataConfig(dataset="breast_cancer", partition=partition, n_clients=4), seed=0)
    check_contract(ds, 569)
    assert ds.n_features == 30
    assert sum(int(c.y_train.sum() + c.y_test.sum()) for c in ds.clients) == 212   # malignant = 1
    # standardised with the pooled training statistics
    Xtr = np.concatenate([c.X_train for c in ds.clients])
    np.testing.assert_allclose(Xtr.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(Xtr.std(0), 1, atol=1e-10)


def test_breast_cancer_natural_is_a_clear_error():
    with pytest.raises(ValueError, match="data.partition = 'natural'.*iid"):
        load_dataset(DataConfig(dataset="breast_cancer"), seed=0)


@pytest.mark.skipif(not HAVE_HEART, reason=f"UCI heart files not at {HEART_DIR}")
@pytest.mark.parametrize("partition", PARTITIONS)
def test_heart_every_partition(partition):
    cfg = DataConfig(dataset="heart", partition=partition, n_clients=3, heart_dir=str(HEART_DIR))
    ds = load_dataset(cfg, seed=0)
    check_contract(ds, 740)
    assert ds.n_features == 13
    # re-split rows: pooled training statistics (per-hospital ones would leak the label)
    pooled = np.concatenate([c.X_train for c in ds.clients])
    np.testing.assert_allclose(pooled.mean(0), 0, atol=1e-10)


def test_same_seed_same_arrays_other_seed_other_arrays():
    cfg = DataConfig(n_samples=1000, partition="dirichlet", measurement_bias=0.5,
                     label_noise=0.1, missing_rate=0.2)
    a, b, c = (load_dataset(cfg, seed=s) for s in (7, 7, 8))
    for x, y in zip(a.clients, b.clients):
        for f in ("X_train", "y_train", "X_test", "y_test"):
            np.testing.assert_array_equal(getattr(x, f), getattr(y, f))
    assert not all(np.array_equal(x.X_train, y.X_train) if x.X_train.shape == y.X_train.shape
                   else False for x, y in zip(a.clients, c.clients))


def test_synthetic_reference_standardisation_keeps_device_offsets_visible():
    ds = load_dataset(DataConfig(n_samples=40_000, measurement_bias=1.0, covariate_shift=0.0),
                      seed=0)
    sbp = ds.feature_names.index("sbp")
    means = [c.X_train[:, sbp].mean() for c in ds.clients]
    assert np.ptp(means) * REFERENCE_SD[3] > 10   # > 10 mmHg spread survives standardisation
    assert REFERENCE_MEAN[3] == 130.0


def test_missing_values_imputed_as_zero():
    ds = load_dataset(DataConfig(n_samples=20_000, missing_rate=0.4), seed=0)
    X = np.concatenate([c.X_train for c in ds.clients])
    hba1c = ds.feature_names.index("hba1c")
    assert abs((X[:, hba1c] == 0).mean() - 0.4) < 0.02
    assert (X[:, ds.feature_names.index("age")] == 0).mean() < 0.01


def test_test_fraction_and_stratification():
    ds = load_dataset(DataConfig(n_samples=4000, size_skew=0.0, test_fraction=0.25), seed=0)
    for c in ds.clients:
        assert c.n_test == 250 and c.n_train == 750
        assert abs(c.y_train.mean() - c.y_test.mean()) < 0.01


def test_stratified_split_hand_computed():
    y = np.array([0] * 6 + [1] * 4)
    tr, te = stratified_split(y, 0.3, rng=np.random.default_rng(0))
    assert len(te) == 3 and len(tr) == 7 and y[te].sum() == 1      # 3·0.4 = 1.2 → 1 positive
    assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(10))
    # a class with one row: plain random split, still disjoint and covering
    y1 = np.array([0, 0, 0, 0, 1])
    tr, te = stratified_split(y1, 0.4, rng=np.random.default_rng(0))
    assert len(te) == 2 and len(tr) == 3
    # 0.34·50 = 17.000000000000004 in floating point; must still be 17
    tr, te = stratified_split(np.zeros(50), 0.34, rng=np.random.default_rng(0))
    assert len(te) == 17


def test_hospital_too_small_for_a_split_names_it():
    with pytest.raises(ValueError, match="Hospital [A-Z] has 1 row.*data.n_clients"):
        load_dataset(DataConfig(n_samples=5, n_clients=5), seed=0)


def test_more_hospitals_than_patients():
    cfg = DataConfig(dataset="breast_cancer", partition="iid", n_clients=600)
    with pytest.raises(ValueError, match="data.n_clients = 600.*569"):
        load_dataset(cfg, seed=0)


def test_partition_leaving_a_hospital_empty_names_the_knob():
    cfg = DataConfig(n_samples=200, n_clients=50, partition="dirichlet", alpha=0.001)
    with pytest.raises(ValueError, match="data.partition = 'dirichlet'.*data.alpha"):
        load_dataset(cfg, seed=0)
    cfg = DataConfig(dataset="breast_cancer", partition="pathological", n_clients=4,
                     labels_per_client=3)
    with pytest.raises(ValueError, match="data.labels_per_client"):
        load_dataset(cfg, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed = "):
        load_dataset(DataConfig(n_samples=100), seed=seed)


@pytest.mark.skipif(not HAVE_HEART, reason=f"UCI heart files not at {HEART_DIR}")
def test_heart_resplit_uses_pooled_standardisation_and_does_not_leak_labels():
    cfg = DataConfig(dataset="heart", partition="pathological", n_clients=4, labels_per_client=1,
                     heart_dir=str(HEART_DIR))
    ds = load_dataset(cfg, seed=0)
    pooled = np.concatenate([c.X_train for c in ds.clients])
    np.testing.assert_allclose(pooled.mean(0), 0, atol=1e-9)
    # per-hospital statistics would centre every hospital at 0: pooled ones do not
    assert max(abs(c.X_train.mean(0)).max() for c in ds.clients) > 0.1
