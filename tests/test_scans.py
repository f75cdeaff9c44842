"""Synthetic scans: deterministic, fast, and every knob does what datasets/synthetic-scans.md says."""

import time

import numpy as np
import pytest

from fedlab_core.config import DataConfig
from fedlab_core.data import as_images, load_dataset
from fedlab_core.data.scans import (ARCHETYPES, NEUTRAL, ScannerProfile, apply_scanner,
                                    make_scan_hospitals, make_scans, pixel_names,
                                    scanner_profiles)

CLEAN = ScannerProfile(noise_sd=0.0)   # no noise: the scanner is a deterministic map


def scans(n=400, seed=0, **kw):
    return make_scans(n, rng=np.random.default_rng(seed), **kw)


def hf_energy(X):
    """Mean squared difference of horizontally adjacent pixels: the high-frequency energy."""
    return float(np.mean(np.diff(X, axis=2) ** 2))


# ---- determinism, shapes, range --------------------------------------------

def test_same_seed_same_images_other_seed_other_images():
    (a, ya), (b, yb), (c, yc) = scans(seed=3), scans(seed=3), scans(seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a, c)
    h1, h2 = (make_scan_hospitals(600, 3, rng=np.random.default_rng(5), scanner_shift=1.0)
              for _ in range(2))
    for x1, x2, y1, y2 in zip(h1.X, h2.X, h1.y, h2.y):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert h1.profiles == h2.profiles


@pytest.mark.parametrize("size", [8, 32, 64])
def test_shapes_dtypes_and_range(size):
    for profile in ARCHETYPES.values():
        X, y = scans(50, image_size=size, profile=profile)
        assert X.shape == (50, size, size) and X.dtype == np.float32
        assert y.shape == (50,) and y.dtype == np.int64 and set(np.unique(y)) <= {0, 1}
        assert X.min() >= 0 and X.max() <= 1
    X, y = scans(0)
    assert X.shape == (0, 32, 32) and y.shape == (0,)


def test_clean_images_look_like_a_body_with_an_organ():
    X, _ = scans(200, profile=CLEAN)
    # corners are air (0.05), the centre is organ tissue (≈ 0.5)
    assert abs(float(X[:, 0, 0].mean()) - 0.05) < 0.01
    assert 0.4 < float(X[:, 14:18, 14:18].mean()) < 0.65


# ---- the scanner knobs -------------------------------------------------------

def test_contrast_scales_the_deviation_from_mid_grey():
    X1, _ = scans(profile=CLEAN)
    for c in (0.5, 0.8):
        Xc, _ = scans(profile=ScannerProfile(contrast=c, noise_sd=0.0))   # same anatomy
        np.testing.assert_allclose(Xc - 0.5, c * (X1 - 0.5), atol=1e-6)
        assert Xc.std() == pytest.approx(c * X1.std(), rel=1e-4)


def test_brightness_shifts_the_mean():
    X0, _ = scans(profile=CLEAN)
    assert X0.max() + 0.08 <= 1   # no clipping, so the shift is exact
    Xb, _ = scans(profile=ScannerProfile(brightness=0.08, noise_sd=0.0))
    assert float(Xb.mean() - X0.mean()) == pytest.approx(0.08, abs=1e-5)
    Xd, _ = scans(profile=ScannerProfile(brightness=-0.02, noise_sd=0.0))
    assert float(Xd.mean() - X0.mean()) == pytest.approx(-0.02, abs=2e-3)   # a little clipping at 0


def test_noise_adds_its_variance_to_high_frequency_energy():
    base = dict(brightness=0.1)   # lift air to 0.15, so noise of sd 0.03 is almost never clipped
    X0, _ = scans(profile=ScannerProfile(noise_sd=0.0, **base))
    Xn, _ = scans(profile=ScannerProfile(noise_sd=0.03, **base))
    # independent noise on two neighbours adds 2·sd² to their squared difference
    assert hf_energy(Xn) - hf_energy(X0) == pytest.approx(2 * 0.03 ** 2, rel=0.05)
    np.testing.assert_allclose((Xn - X0).std(), 0.03, rtol=0.03)


def test_blur_lowers_high_frequency_energy():
    X0, _ = scans(profile=CLEAN)
    Xb, _ = scans(profile=ScannerProfile(noise_sd=0.0, blur_sigma=1.0))
    Xbb, _ = scans(profile=ScannerProfile(noise_sd=0.0, blur_sigma=2.0))
    assert hf_energy(Xbb) < hf_energy(Xb) < 0.75 * hf_energy(X0)
    assert float(Xb.mean()) == pytest.approx(float(X0.mean()), abs=2e-3)   # blur moves no intensity


def test_half_resolution_gives_equal_2x2_blocks_of_the_area_average():
    X0, _ = scans(profile=CLEAN)
    Xr, _ = scans(profile=ScannerProfile(noise_sd=0.0, resolution=0.5))
    for dr, dc in ((0, 1), (1, 0), (1, 1)):
        np.testing.assert_array_equal(Xr[:, dr::2, dc::2], Xr[:, ::2, ::2])
    block_mean = X0.reshape(-1, 16, 2, 16, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(Xr[:, ::2, ::2], block_mean, atol=1e-6)


@pytest.mark.parametrize("profile", list(ARCHETYPES.values()) + [
    ScannerProfile(resolution=0.3, blur_sigma=3.0), ScannerProfile(resolution=0.77)])
def test_a_flat_image_stays_flat_through_resolution_and_blur(profile):
    flat = np.full((2, 32, 32), 0.4, dtype=np.float32)
    p = ScannerProfile(resolution=profile.resolution, blur_sigma=profile.blur_sigma, noise_sd=0.0)
    np.testing.assert_allclose(apply_scanner(flat, p, rng=np.random.default_rng(0)), 0.4, atol=1e-6)


def test_the_scanner_leaves_anatomy_and_labels_alone():
    (Xa, ya), (Xb, yb) = scans(profile=NEUTRAL), scans(profile=ARCHETYPES["noisy"])
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(Xa, Xb)


# ---- the lesion and the labels ----------------------------------------------

def test_prevalence_is_the_fraction_of_images_with_a_lesion():
    _, y = scans(5000, prevalence=0.3)
    assert abs(y.mean() - 0.3) < 0.02          # binomial sd 0.0065
    assert scans(100, prevalence=0.0)[1].sum() == 0
    assert scans(100, prevalence=1.0)[1].sum() == 100


def test_lesions_are_brighter_by_lesion_contrast_only_where_y_is_1():
    X0, y = scans(500, profile=CLEAN, lesion_contrast=0.0)
    Xc, yc = scans(500, profile=CLEAN, lesion_contrast=0.2, lesion_texture=0.0)
    np.testing.assert_array_equal(y, yc)
    diff = Xc - X0
    assert np.array_equal(diff[y == 0], np.zeros_like(diff[y == 0]))
    peak = diff[y == 1].max(axis=(1, 2))
    # a soft edge half a pixel wide: a typical lesion's centre is fully in, and
    # even the smallest, most irregular one (3 px) reaches 85 %
    assert np.all(peak <= 0.2 + 1e-6) and np.median(peak) > 0.19 and peak.min() > 0.17
    # with texture, the mean over the lesion's core is still lesion_contrast
    Xt, _ = scans(500, profile=CLEAN, lesion_contrast=0.2, lesion_texture=0.2)
    core = diff > 0.9 * 0.2
    assert float((Xt - X0)[core].mean()) == pytest.approx(0.2, rel=0.05)


def test_lesion_size_is_the_diameter_in_pixels():
    X0, y = scans(400, profile=CLEAN, lesion_contrast=0.0, prevalence=1.0)
    for d in (4.0, 8.0):
        Xc, _ = scans(400, profile=CLEAN, lesion_contrast=0.2, lesion_texture=0.0,
                      prevalence=1.0, lesion_size=(d, d))
        area = ((Xc - X0) > 0.1).sum(axis=(1, 2))      # pixels more than half inside
        # irregular outlines (harmonics ≤ 0.2) make the area vary around π (d/2)²
        assert np.median(area) == pytest.approx(np.pi * (d / 2) ** 2, rel=0.2)


# ---- hospitals -----------------------------------------------------------------

def test_scanner_shift_zero_gives_identical_neutral_scanners():
    assert all(p == NEUTRAL for p in scanner_profiles(7, shift=0.0, rng=np.random.default_rng(1)))
    c = make_scan_hospitals(400, 4, rng=np.random.default_rng(0), scanner_shift=0.0)
    assert all(p == NEUTRAL for p in c.profiles)


def test_scanner_shift_one_gives_clearly_different_scanners():
    p = scanner_profiles(5, shift=1.0, rng=np.random.default_rng(2))
    assert min(q.contrast for q in p) < 0.6 and min(q.brightness for q in p) < -0.1   # dark
    assert max(q.noise_sd for q in p) > 0.08                                         # noisy
    assert min(q.resolution for q in p) == 0.5 and max(q.blur_sigma for q in p) > 0.7  # blurry
    assert max(q.contrast for q in p) > 1.35                                         # bright
    # half the shift, half the way from the reference scanner (jitter aside)
    half = scanner_profiles(5, shift=0.5, rng=np.random.default_rng(2))
    for q1, qh in zip(p, half):
        assert qh.resolution == pytest.approx(1 - (1 - q1.resolution) / 2)


def test_scanner_shift_changes_the_look_not_the_patients():
    a = make_scan_hospitals(600, 3, rng=np.random.default_rng(0), scanner_shift=0.0)
    b = make_scan_hospitals(600, 3, rng=np.random.default_rng(0), scanner_shift=1.0)
    for ya, yb in zip(a.y, b.y):
        np.testing.assert_array_equal(ya, yb)
    assert a.prevalence == b.prevalence
    assert not np.array_equal(a.X[0], b.X[0])


def test_label_shift_and_size_skew_mean_what_they_mean_for_the_cohort():
    flat = make_scan_hospitals(4000, 4, rng=np.random.default_rng(0), label_shift=0.0,
                               size_skew=0.0)
    assert flat.prevalence == (0.5,) * 4 and [len(y) for y in flat.y] == [1000] * 4
    c = make_scan_hospitals(8000, 4, rng=np.random.default_rng(0), label_shift=1.0, size_skew=1.0)
    lo, hi = 1 / (1 + np.exp(1.5)), 1 / (1 + np.exp(-1.5))     # logit ±1.5
    assert all(lo <= p <= hi for p in c.prevalence)
    assert max(c.prevalence) - min(c.prevalence) > 0.3
    for y, p in zip(c.y, c.prevalence):
        assert abs(y.mean() - p) < 4 * np.sqrt(p * (1 - p) / len(y)) + 1e-9
    sizes = [len(y) for y in c.y]
    assert sum(sizes) == 8000 and max(sizes) / min(sizes) > 3
    assert all(x.shape == (len(y), 1024) and x.dtype == np.float32 for x, y in zip(c.X, c.y))


# ---- bad input ----------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: scans(image_size=3), r"image_size = 3 .*\[8, 256\]"),
    (lambda: scans(image_size=32.0), r"image_size = 32.0 .*integer"),
    (lambda: scans(prevalence=1.5), r"prevalence = 1.5 .*\[0, 1\]"),
    (lambda: scans(n=-1), r"n = -1 .*≥ 0"),
    (lambda: scans(lesion_contrast=-0.1), r"lesion_contrast = -0.1"),
    (lambda: scans(lesion_size=(5, 2)), r"lesion_size = \(5, 2\)"),
    (lambda: scans(lesion_size=(1, 20)), r"lesion_size = .*image_size/2 = 16"),
    (lambda: scans(profile="ct"), r"profile = 'ct' .*ScannerProfile"),
    (lambda: scanner_profiles(3, shift=-1, rng=np.random.default_rng(0)), r"shift = -1 .*\[0, 1\]"),
    (lambda: scanner_profiles(0, shift=0.5, rng=np.random.default_rng(0)), r"n_clients = 0"),
    (lambda: ScannerProfile(contrast=-1), r"contrast = -1 .*\[0, 4\]"),
    (lambda: ScannerProfile(noise_sd=float("nan")), r"noise_sd = nan"),
    (lambda: ScannerProfile(resolution=1.5), r"resolution = 1.5 .*\(0, 1\]"),
    (lambda: make_scan_hospitals(2, 3, rng=np.random.default_rng(0)), r"n_samples = 2 .*≥ 3"),
    (lambda: make_scan_hospitals(30, 3, rng=np.random.default_rng(0), scanner_shift=2),
     r"scanner_shift = 2 .*\[0, 1\]"),
    (lambda: DataConfig(dataset="scans", image_size=4), r"data.image_size = 4 .*\[8, 64\]"),
    (lambda: DataConfig(dataset="scans", scanner_shift=-0.5), r"data.scanner_shift = -0.5"),
    (lambda: as_images(np.zeros((2, 10))), r"image_size = 3 .*row length 10"),
])
def test_bad_input_names_field_and_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- load_dataset ---------------------------------------------------------------

@pytest.mark.parametrize("partition", ["natural", "dirichlet", "iid"])
def test_load_dataset_scans(partition):
    cfg = DataConfig(dataset="scans", partition=partition, n_samples=800, n_clients=3,
                     image_size=16, alpha=1.0)
    ds = load_dataset(cfg, seed=0)
    assert ds.n_clients == 3 and ds.n_features == 256
    assert ds.feature_names[:2] == ("px_0_0", "px_0_1") and ds.feature_names == pixel_names(16)
    assert ds.client_names[0] == "Hospital A"
    assert sum(c.n_train + c.n_test for c in ds.clients) == 800
    for c in ds.clients:
        for X, y in ((c.X_train, c.y_train), (c.X_test, c.y_test)):
            assert X.dtype == np.float64 and y.dtype == np.int64 and X.shape == (len(y), 256)
            assert X.min() >= 0 and X.max() <= 1     # pixels, not standardised
    img = as_images(ds.clients[0].X_train, 16)
    assert img.shape == (ds.clients[0].n_train, 16, 16)
    assert img[0, 2, 5] == ds.clients[0].X_train[0, 2 * 16 + 5]   # row-major
    assert "scanner" in ds.description


def test_load_dataset_scans_natural_hospitals_follow_the_knobs():
    cfg = DataConfig(dataset="scans", n_samples=800, n_clients=4, label_shift=0.0,
                     size_skew=0.0, scanner_shift=0.0)
    ds = load_dataset(cfg, seed=1)
    assert [c.n_train + c.n_test for c in ds.clients] == [200] * 4
    a = load_dataset(cfg, seed=1)
    np.testing.assert_array_equal(a.clients[2].X_test, ds.clients[2].X_test)


# ---- speed -------------------------------------------------------------------------

def test_thousands_of_images_per_second():
    make_scans(10, rng=np.random.default_rng(0))     # warm up
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        make_scans(2000, rng=np.random.default_rng(0))
        best = min(best, time.perf_counter() - t)
    assert 2000 / best >= 1000, f"{2000 / best:.0f} images/s"
