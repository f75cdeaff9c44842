"""The synthetic cohort: deterministic, plausible, and every knob does what the card says."""

import time

import numpy as np
import pytest

from fedlab_core.data.synthetic import (COEFFICIENTS, FEATURES, INTERCEPT, LAB_FEATURES,
                                        REFERENCE_MEAN, REFERENCE_SD, hospital_names,
                                        make_cohort, standardize)

F = {f: i for i, f in enumerate(FEATURES)}
NO_SHIFT = dict(covariate_shift=0.0, label_shift=0.0, size_skew=0.0)


def cohort(n=20_000, k=4, seed=0, **knobs):
    return make_cohort(n, k, rng=np.random.default_rng(seed), **knobs)


def test_deterministic_given_rng():
    a = cohort(seed=3, measurement_bias=0.5, label_noise=0.1, missing_rate=0.2)
    b = cohort(seed=3, measurement_bias=0.5, label_noise=0.1, missing_rate=0.2)
    for xa, xb, ya, yb in zip(a.X, b.X, a.y, b.y):
        np.testing.assert_array_equal(xa, xb)   # NaNs in the same places too
        np.testing.assert_array_equal(ya, yb)
    c = cohort(seed=4)
    assert not np.array_equal(a.X_true[0], c.X_true[0])


def test_shapes_names_and_plausible_ranges():
    c = cohort()
    assert c.names == ("Hospital A", "Hospital B", "Hospital C", "Hospital D")
    X = np.concatenate(c.X_true)
    assert X.shape == (20_000, 9)
    assert 30 <= X[:, F["age"]].min() and X[:, F["age"]].max() <= 90
    assert set(np.unique(X[:, F["sex"]])) == {0.0, 1.0}
    assert 16 <= X[:, F["bmi"]].min() and X[:, F["bmi"]].max() <= 55
    assert 85 <= X[:, F["sbp"]].min() and X[:, F["sbp"]].max() <= 230
    assert abs(X[:, F["sbp"]].mean() - 130) < 5
    # the correlations the card promises: SBP and HbA1c rise with age and BMI
    corr = np.corrcoef(X.T)
    for a, b in [("sbp", "age"), ("sbp", "bmi"), ("hba1c", "age"), ("hba1c", "bmi")]:
        assert corr[F[a], F[b]] > 0.05, (a, b)
    assert corr[F["hdl_chol"], F["bmi"]] < 0
    np.testing.assert_array_equal(X[:, F["diabetes"]], X[:, F["hba1c"]] >= 6.5)


def test_baseline_prevalence_about_16_percent():
    c = cohort(n=200_000, k=1, **NO_SHIFT)
    assert 0.14 < c.y[0].mean() < 0.18


def test_risk_model_is_the_documented_logistic_formula():
    c = cohort(n=2000, k=3, label_shift=0.7)
    beta = np.array([COEFFICIENTS[f] for f in FEATURES])
    for x, r, p in zip(c.X_true, c.risk, c.profiles):
        eta = INTERCEPT + p.logit_shift + (x - REFERENCE_MEAN) @ beta
        np.testing.assert_allclose(r, 1 / (1 + np.exp(-eta)))


def test_sizes_sum_and_size_skew():
    equal = cohort(n=1000, k=4, size_skew=0.0)
    assert [len(y) for y in equal.y] == [250] * 4
    skewed = cohort(n=100_000, k=4, size_skew=1.0)
    sizes = [len(y) for y in skewed.y]
    assert sum(sizes) == 100_000 and max(sizes) / min(sizes) > 5
    tiny = cohort(n=5, k=5, size_skew=1.0)
    assert [len(y) for y in tiny.y] == [1] * 5


def test_covariate_shift_moves_demographics():
    same = cohort(n=40_000, k=4, covariate_shift=0.0)
    shifted = cohort(n=40_000, k=4, covariate_shift=1.0)
    ages0 = [x[:, F["age"]].mean() for x in same.X]
    ages1 = [x[:, F["age"]].mean() for x in shifted.X]
    smoke1 = [x[:, F["smoker"]].mean() for x in shifted.X]
    assert np.ptp(ages0) < 1.0
    assert np.ptp(ages1) > 8.0
    assert np.ptp(smoke1) > 0.1
    assert np.ptp([x[:, F["bmi"]].mean() for x in shifted.X]) > 2.0


def test_label_shift_spreads_prevalence():
    flat = cohort(n=80_000, k=4, covariate_shift=0.0, label_shift=0.0)
    spread = cohort(n=80_000, k=4, covariate_shift=0.0, label_shift=1.0)
    prev0 = [y.mean() for y in flat.y]
    prev1 = [y.mean() for y in spread.y]
    assert np.ptp(prev0) < 0.02
    assert min(prev1) < 0.10 and max(prev1) > 0.25


def test_measurement_bias_shifts_recorded_not_true_values():
    clean = cohort(n=40_000, k=4, measurement_bias=0.0)
    biased = cohort(n=40_000, k=4, measurement_bias=1.0)
    # same patients, same events: the outcome depends on the true values
    for a, b in zip(clean.X_true, biased.X_true):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(clean.y, biased.y):
        np.testing.assert_array_equal(a, b)
    diffs = [x[:, F["sbp"]].mean() - t[:, F["sbp"]].mean() for x, t in zip(biased.X, biased.X_true)]
    np.testing.assert_allclose([x[:, F["sbp"]] for x in clean.X][0], clean.X_true[0][:, F["sbp"]])
    assert np.ptp(diffs) > 10          # recorded SBP means differ by >10 mmHg across devices
    for x, t, p in zip(biased.X, biased.X_true, biased.profiles):
        ref = REFERENCE_MEAN[F["sbp"]]
        np.testing.assert_allclose(x[:, F["sbp"]],
                                   ref + p.sbp_gain * (t[:, F["sbp"]] - ref) + p.sbp_offset)
        np.testing.assert_array_equal(x[:, F["age"]], t[:, F["age"]])


def test_label_noise_flips_that_fraction_in_every_hospital():
    c = cohort(n=10_000, k=4, label_noise=0.2)
    for y, yt in zip(c.y, c.y_true):
        assert abs((y != yt).mean() - 0.2) < 0.001
    c0 = cohort(n=10_000, k=4, label_noise=0.0)
    assert all(np.array_equal(y, yt) for y, yt in zip(c0.y, c0.y_true))


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9])
def test_missing_rate_only_lab_values_imputed_as_zero(rate):
    c = cohort(n=20_000, k=2, missing_rate=rate)
    X = np.concatenate(c.X)
    labs = [F[f] for f in LAB_FEATURES]
    others = [j for j in range(len(FEATURES)) if j not in labs]
    assert not np.isnan(X[:, others]).any()
    assert abs(np.isnan(X[:, labs]).mean() - rate) < 0.01
    Z = standardize(X)
    assert not np.isnan(Z).any()
    assert abs((Z[:, labs] == 0.0).mean() - rate) < 0.01


def test_standardize_uses_the_fixed_reference():
    x = REFERENCE_MEAN + REFERENCE_SD
    np.testing.assert_allclose(standardize(x[None, :]), np.ones((1, 9)))


def test_knobs_keep_other_draws_fixed():
    a, b = cohort(label_noise=0.0), cohort(label_noise=0.3, missing_rate=0.5)
    for x, y in zip(a.X_true, b.X_true):
        np.testing.assert_array_equal(x, y)


def test_hospital_names_beyond_z():
    names = hospital_names(30)
    assert names[25] == "Hospital Z" and names[26] == "Hospital AA" and len(set(names)) == 30


def test_fast_100k():
    make_cohort(1000, 4, rng=np.random.default_rng(0))   # warm-up
    t = time.perf_counter()
    make_cohort(100_000, 8, rng=np.random.default_rng(0), measurement_bias=1.0,
                label_noise=0.1, missing_rate=0.2)
    assert time.perf_counter() - t < 1.0


@pytest.mark.parametrize("kwargs, field", [
    (dict(covariate_shift=1.5), "covariate_shift = 1.5"),
    (dict(label_shift=-0.1), "label_shift = -0.1"),
    (dict(size_skew=2), "size_skew = 2"),
    (dict(measurement_bias=float("nan")), "measurement_bias = nan"),
    (dict(label_noise=0.6), "label_noise = 0.6"),
    (dict(missing_rate=0.95), "missing_rate = 0.95"),
])
def test_bad_knobs_raise_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        cohort(n=100, **kwargs)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="n_samples = 3"):
        make_cohort(3, 4, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_clients = 0"):
        make_cohort(3, 0, rng=np.random.default_rng(0))
