"""UCI heart disease: finding, verifying, preprocessing the real files — offline.

The files are read from the workspace's shared copy (never from the repo,
never downloaded): ``<workspace>/shared/datasets/uci-heart-disease``.
"""

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from fedlab_core.config import DataConfig
from fedlab_core.data import heart, load_dataset

HEART_DIR = Path(__file__).resolve().parents[2] / "shared/datasets/uci-heart-disease"
needs_data = pytest.mark.skipif(
    not all((HEART_DIR / f).is_file() for f in heart.FILES),
    reason=f"the UCI heart files are not at {HEART_DIR} (a workspace copy used for offline tests)")

# Published by FLamby (Fed-Heart-Disease README): train/test per centre.
FLAMBY_SIZES = {"Cleveland": (199, 104), "Hungary": (172, 89), "Switzerland": (30, 16),
                "Long Beach VA": (85, 45)}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test in this file may touch the network or the user's real cache."""
    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("FEDLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FEDLAB_HEART_DIR", raising=False)
    return calls


def copy_files(dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in heart.FILES:
        shutil.copyfile(HEART_DIR / f, dst / f)
    return dst


def test_package_checksums_match_the_human_readable_copy():
    card = Path(__file__).resolve().parents[1] / "datasets/uci-heart-disease.sha256"
    listed = dict(reversed(line.split()) for line in card.read_text().splitlines() if line.strip())
    assert listed == heart.SHA256


@needs_data
def test_checksums_of_the_real_files_pass():
    heart.verify_checksums(HEART_DIR)
    assert heart.resolve_heart_dir(HEART_DIR) == HEART_DIR


@needs_data
def test_corrupted_copy_fails_naming_the_file(tmp_path):
    folder = copy_files(tmp_path / "bad")
    with open(folder / "processed.va.data", "a") as f:
        f.write("1,1,1,1,1,1,1,1,1,1,1,1,1,1\n")
    with pytest.raises(heart.ChecksumError) as err:
        heart.resolve_heart_dir(folder)
    msg = str(err.value)
    assert "processed.va.data" in msg and heart.SHA256["processed.va.data"] in msg
    assert "got " in msg


@needs_data
def test_env_var_route(monkeypatch, tmp_path):
    folder = copy_files(tmp_path / "via-env")
    monkeypatch.setenv("FEDLAB_HEART_DIR", str(folder))
    assert heart.resolve_heart_dir() == folder
    sites, names, _ = heart.load_heart_sites()
    assert names == heart.SITE_NAMES and len(sites) == 4


@needs_data
def test_argument_wins_over_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("FEDLAB_HEART_DIR", str(tmp_path / "nowhere"))
    assert heart.resolve_heart_dir(HEART_DIR) == HEART_DIR


@needs_data
def test_cache_route_needs_no_download(offline):
    copy_files(heart.cache_dir())
    assert heart.resolve_heart_dir() == heart.cache_dir()
    assert offline == []


def test_offline_gives_helpful_error_and_writes_nothing(offline):
    with pytest.raises(heart.HeartDataNotFound) as err:
        heart.resolve_heart_dir()
    msg = str(err.value)
    assert "offline" in msg and "FEDLAB_HEART_DIR" in msg and "heart_dir" in msg
    assert heart.URL_TEMPLATE.format(site="cleveland") in msg
    assert len(offline) == 1                      # it tried once, through the patched urllib
    assert not heart.cache_dir().exists()


def test_offline_through_load_dataset(offline):
    with pytest.raises(FileNotFoundError, match="FEDLAB_HEART_DIR"):
        load_dataset(DataConfig(dataset="heart"), seed=0)


def test_named_folder_missing_files_is_an_error(tmp_path):
    with pytest.raises(heart.HeartDataNotFound, match="data.heart_dir") as err:
        heart.resolve_heart_dir(tmp_path)
    assert "processed.cleveland.data" in str(err.value)


class FakeResponse:
    """What urlopen returns, serving fixed bytes: no network in tests."""

    def __init__(self, payload: bytes):
        self.payload = payload

    def read(self):
        return self.payload

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_verifies_before_writing(monkeypatch, tmp_path):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FakeResponse(b"not the data"))
    with pytest.raises(heart.ChecksumError, match="Nothing was saved"):
        heart.download(tmp_path / "dl")
    assert not (tmp_path / "dl").exists()


@needs_data
def test_download_route_with_a_fake_server(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FakeResponse(
        (HEART_DIR / url.rsplit("/", 1)[1]).read_bytes()))
    folder = heart.resolve_heart_dir()
    assert folder == heart.cache_dir() and sorted(os.listdir(folder)) == sorted(heart.FILES)


@needs_data
def test_flamby_row_counts_and_columns():
    sites, names, features = heart.load_heart_sites(HEART_DIR)
    counts = {n: len(y) for (X, y), n in zip(sites, names)}
    assert counts == {"Cleveland": 303, "Hungary": 261, "Switzerland": 46, "Long Beach VA": 130}
    assert sum(counts.values()) == 740
    assert len(features) == 13 and features[-5:] == ("cp_2", "cp_3", "cp_4", "restecg_1",
                                                     "restecg_2")
    for X, y in sites:
        assert X.shape[1] == 13 and not np.isnan(X).any()
        assert set(np.unique(y)) <= {0, 1}
        onehot = X[:, -5:]
        assert set(np.unique(onehot)) <= {0.0, 1.0}
        assert (onehot[:, :3].sum(1) <= 1).all() and (onehot[:, 3:].sum(1) <= 1).all()
    # raw cp = 1 (typical angina) is the dropped level: all three cp dummies 0
    raw = heart.read_site(HEART_DIR / "processed.cleveland.data")
    X0, _ = sites[0]
    np.testing.assert_array_equal(X0[:, -5:-2].sum(1) == 0, raw[:, 2] == 1)
    np.testing.assert_array_equal(sites[0][1], (raw[:, 13] > 0).astype(int))


@needs_data
def test_natural_split_matches_flamby_sizes_and_is_standardised():
    ds = load_dataset(DataConfig(dataset="heart", heart_dir=str(HEART_DIR)), seed=0)
    assert ds.client_names == heart.SITE_NAMES
    assert {c.name: (c.n_train, c.n_test) for c in ds.clients} == FLAMBY_SIZES
    for c in ds.clients:
        sd = c.X_train.std(0)
        np.testing.assert_allclose(c.X_train.mean(0), 0, atol=1e-10)
        # constant training columns (e.g. Switzerland's cholesterol, all 0) stay 0
        np.testing.assert_allclose(sd[sd > 1e-12], 1.0)
        assert c.y_train.dtype == np.int64 and c.X_train.dtype == np.float64
    # stratified: each site's train prevalence close to its test prevalence
    cle = ds.clients[0]
    assert abs(cle.y_train.mean() - cle.y_test.mean()) < 0.02


@needs_data
def test_heart_deterministic_and_seed_dependent():
    cfg = DataConfig(dataset="heart", heart_dir=str(HEART_DIR))
    a, b, c = (load_dataset(cfg, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.clients[1].X_train, b.clients[1].X_train)
    assert not np.array_equal(a.clients[1].X_train, c.clients[1].X_train)


def test_bad_preprocessing_names_the_field():
    with pytest.raises(ValueError, match="data.heart_preprocessing = 'raw'"):
        heart.load_heart_sites(HEART_DIR, preprocessing="raw")
