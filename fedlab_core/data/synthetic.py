"""A synthetic cardiovascular cohort spread over hospitals that differ on purpose.

Every patient has nine interpretable features (age, sex, BMI, systolic blood
pressure, total and HDL cholesterol, HbA1c, smoking, diabetes) drawn with
plausible correlations, and a binary outcome — a cardiovascular event within
10 years — drawn from a logistic risk model whose coefficients are in the
spirit of Framingham (D'Agostino et al. 2008) and SCORE (Conroy et al. 2003).
It is an illustrative teaching model, **not a clinical tool**.

Six knobs in ``[0, 1]`` (``0`` = identical hospitals) make the hospitals
differ, one kind of heterogeneity each; see ``datasets/synthetic-cardiovascular.md``
for the full card (feature table, formula, coefficients, how profiles are drawn).

>>> cohort = make_cohort(1000, 3, rng=np.random.default_rng(0))
>>> cohort.names
('Hospital A', 'Hospital B', 'Hospital C')
>>> sum(len(y) for y in cohort.y), cohort.X[0].shape[1]
(1000, 9)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fedlab_core.partition import split_counts

__all__ = ["FEATURES", "UNITS", "LAB_FEATURES", "REFERENCE_MEAN", "REFERENCE_SD",
           "COEFFICIENTS", "INTERCEPT", "HospitalProfile", "Cohort", "make_cohort",
           "standardize", "hospital_names"]

FEATURES = ("age", "sex", "bmi", "sbp", "total_chol", "hdl_chol", "hba1c", "smoker", "diabetes")
UNITS = {
    "age": "years", "sex": "1 = male, 0 = female", "bmi": "kg/m²", "sbp": "mmHg",
    "total_chol": "mmol/L", "hdl_chol": "mmol/L", "hba1c": "% (NGSP)",
    "smoker": "1 = current smoker", "diabetes": "1 = HbA1c ≥ 6.5 %",
}
# Laboratory values: the only entries that can be missing (missing_rate).
LAB_FEATURES = ("total_chol", "hdl_chol", "hba1c")
_I = {f: i for i, f in enumerate(FEATURES)}

# The agreed standardisation protocol: fixed clinical reference values, not
# statistics of anybody's data. Because nothing is learnt from the data, a
# miscalibrated device's offset stays visible as a feature shift after
# standardisation, and every hospital can standardise alone.
REFERENCE_MEAN = np.array([55.0, 0.5, 27.0, 130.0, 5.4, 1.35, 5.7, 0.2, 0.1])
REFERENCE_SD = np.array([10.0, 0.5, 4.5, 18.0, 1.05, 0.4, 0.7, 0.4, 0.3])

# log-odds per unit of (x - REFERENCE_MEAN); see the card for the sources.
COEFFICIENTS = {
    "age": 0.065, "sex": 0.5, "bmi": 0.02, "sbp": 0.018, "total_chol": 0.2,
    "hdl_chol": -0.6, "hba1c": 0.15, "smoker": 0.6, "diabetes": 0.5,
}
# Calibrated (by simulation, 10^6 patients) so that with every knob at 0 the
# cohort's prevalence is about 16 %.
INTERCEPT = -2.02
_BETA = np.array([COEFFICIENTS[f] for f in FEATURES])

# How far a knob at 1 moves a hospital at the edge of the spread (u = ±1).
_AGE_SHIFT = 10.0          # years of mean age
_BMI_SHIFT = 3.0           # kg/m² of mean BMI
_SMOKING_BASE, _SMOKING_SHIFT = 0.20, 0.15   # smoking rate 5 % … 35 %
# ±1.5 on the logit scale: prevalence from about 5 % to about 39 % at the extremes (u = ±1).
_LOGIT_SHIFT = 1.5
_SIZE_SHIFT = 2.0          # log-size: largest/smallest up to e^4 ≈ 55
# At 1, a badly broken device: up to ±40 mmHg and ±2 mmol/L off, ±30 % gain.
# Milder values (±15 mmHg) moved the logit by < 0.3 and changed no metric
# visibly, which taught nothing.
_SBP_OFFSET, _CHOL_OFFSET, _GAIN = 40.0, 2.0, 0.30   # mmHg, mmol/L, gain


def hospital_names(n: int) -> tuple[str, ...]:
    """Readable names: Hospital A … Hospital Z, then Hospital AA, AB, … (spreadsheet style).

    >>> hospital_names(3), hospital_names(28)[-2:]
    (('Hospital A', 'Hospital B', 'Hospital C'), ('Hospital AA', 'Hospital AB'))
    """
    names = []
    for k in range(n):
        label, k1 = "", k + 1
        while k1:
            k1, r = divmod(k1 - 1, 26)
            label = chr(ord("A") + r) + label
        names.append(f"Hospital {label}")
    return tuple(names)


@dataclass(frozen=True)
class HospitalProfile:
    """How one hospital differs from the reference population (all 0/1 at knob 0)."""

    name: str
    n_patients: int
    age_shift: float          # years added to mean age              (covariate_shift)
    bmi_shift: float          # kg/m² added to mean BMI             (covariate_shift)
    smoking_rate: float       # probability of being a smoker        (covariate_shift)
    logit_shift: float        # added to the risk model's intercept  (label_shift)
    sbp_offset: float         # mmHg, device offset                  (measurement_bias)
    sbp_gain: float           # device gain around the reference     (measurement_bias)
    chol_offset: float        # mmol/L, device offset                (measurement_bias)
    chol_gain: float          # device gain around the reference     (measurement_bias)


@dataclass(frozen=True)
class Cohort:
    """Per-hospital raw (unstandardised) arrays of a synthetic cohort.

    ``X`` holds what the hospital *recorded* (device bias applied, ``NaN`` for
    missing lab values); ``X_true`` the true values; ``y`` the recorded labels
    (after label noise), ``y_true`` the events that happened, ``risk`` each
    patient's true 10-year event probability.
    """

    names: tuple[str, ...]
    feature_names: tuple[str, ...]
    X: tuple[np.ndarray, ...]
    y: tuple[np.ndarray, ...]
    X_true: tuple[np.ndarray, ...]
    y_true: tuple[np.ndarray, ...]
    risk: tuple[np.ndarray, ...]
    profiles: tuple[HospitalProfile, ...]
    reference_mean: np.ndarray
    reference_sd: np.ndarray


def _check_knob(name: str, value: Any, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not np.isfinite(value) or not 0 <= value <= hi:
        raise ValueError(f"{name} = {value!r} is not allowed: must be in [0, {hi:g}]")
    return float(value)


def _spread(rng: np.random.Generator, k: int) -> np.ndarray:
    """``k`` positions in [-1, 1], one in each of ``k`` equal strata, in random order.

    Stratified (Latin-hypercube) rather than plain uniform, so that even with
    two or three hospitals a knob at 1 really does spread them apart.
    """
    return (rng.permutation(k) + rng.random(k)) / k * 2.0 - 1.0


def make_cohort(n_samples: int, n_clients: int, *, rng: np.random.Generator,
                covariate_shift: float = 0.5, label_shift: float = 0.5, size_skew: float = 0.5,
                measurement_bias: float = 0.0, label_noise: float = 0.0,
                missing_rate: float = 0.0) -> Cohort:
    """Draw ``n_samples`` patients over ``n_clients`` hospitals with differing profiles.

    Outcome model (true values ``x``, hospital ``h``):
    ``logit P(event) = INTERCEPT + logit_shift_h + Σ_j COEFFICIENTS_j (x_j − REFERENCE_MEAN_j)``.
    Coefficients are inspired by Framingham (D'Agostino et al. 2008,
    Circulation 117:743) and SCORE (Conroy et al. 2003, Eur Heart J 24:987);
    illustrative only, not a clinical tool.

    Each hospital's profile is drawn from ``rng``: for every knob an
    independent stratified position ``u_h ∈ [-1, 1]``, scaled by the knob, so
    knob = 0 gives identical hospitals. Random streams are split per aspect
    (profiles, patients, outcomes, label noise, missingness), so turning one
    knob leaves the other draws as they were.

    Parameters
    ----------
    n_samples, n_clients : int
        Patients in total (≥ ``n_clients``) and hospitals (≥ 1).
    rng : numpy.random.Generator
        The only source of randomness.
    covariate_shift : float in [0, 1]
        Demographics: mean age ±10 y, mean BMI ±3 kg/m², smoking rate 20 ± 15 %.
    label_shift : float in [0, 1]
        Prevalence: intercept ±1.5 on the logit scale (prevalence ≈ 5 % … 39 % at u = ±1).
    size_skew : float in [0, 1]
        Hospital sizes ``∝ exp(2 · size_skew · u_h)``; 0 = equal sizes.
    measurement_bias : float in [0, 1]
        Miscalibrated devices: recorded = ref + gain·(true − ref) + offset on SBP
        (±15 mmHg, gain ±8 %) and total cholesterol (±0.8 mmol/L, gain ±8 %).
        The outcome depends on the true values.
    label_noise : float in [0, 0.5]
        Fraction of recorded labels flipped in every hospital.
    missing_rate : float in [0, 0.9]
        Probability that each lab value (total/HDL cholesterol, HbA1c) is missing (``NaN``).

    Returns
    -------
    Cohort

    Examples
    --------
    >>> c = make_cohort(2000, 2, rng=np.random.default_rng(1), size_skew=0.0, missing_rate=0.5)
    >>> [len(y) for y in c.y]
    [1000, 1000]
    >>> round(float(np.isnan(c.X[0][:, 4]).mean()), 1)   # total_chol missing
    0.5
    """
    if isinstance(n_clients, bool) or not isinstance(n_clients, (int, np.integer)) or n_clients < 1:
        raise ValueError(f"n_clients = {n_clients!r} is not allowed: must be an integer ≥ 1")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) \
            or n_samples < n_clients:
        raise ValueError(f"n_samples = {n_samples!r} is not allowed: must be an integer ≥ "
                         f"n_clients = {n_clients} (one patient per hospital)")
    covariate_shift = _check_knob("covariate_shift", covariate_shift, 1)
    label_shift = _check_knob("label_shift", label_shift, 1)
    size_skew = _check_knob("size_skew", size_skew, 1)
    measurement_bias = _check_knob("measurement_bias", measurement_bias, 1)
    label_noise = _check_knob("label_noise", label_noise, 0.5)
    missing_rate = _check_knob("missing_rate", missing_rate, 0.9)

    s_prof, s_pat, s_out, s_noise, s_miss = (
        np.random.default_rng(s) for s in rng.integers(0, 2**63, size=5))
    K, n = int(n_clients), int(n_samples)

    # --- hospital profiles (all positions drawn whatever the knobs) ---------
    u = np.stack([_spread(s_prof, K) for _ in range(9)])
    counts = split_counts(n, np.exp(_SIZE_SHIFT * size_skew * u[4]), minimum=1)
    names = hospital_names(K)
    prof = dict(
        age_shift=covariate_shift * _AGE_SHIFT * u[0],
        bmi_shift=covariate_shift * _BMI_SHIFT * u[1],
        smoking_rate=_SMOKING_BASE + covariate_shift * _SMOKING_SHIFT * u[2],
        logit_shift=label_shift * _LOGIT_SHIFT * u[3],
        sbp_offset=measurement_bias * _SBP_OFFSET * u[5],
        sbp_gain=1.0 + measurement_bias * _GAIN * u[6],
        chol_offset=measurement_bias * _CHOL_OFFSET * u[7],
        chol_gain=1.0 + measurement_bias * _GAIN * u[8],
    )
    profiles = tuple(HospitalProfile(name=names[k], n_patients=int(counts[k]),
                                     **{key: float(v[k]) for key, v in prof.items()})
                     for k in range(K))

    # --- patients (true values) -------------------------------------------
    h = np.repeat(np.arange(K), counts)
    z = s_pat.standard_normal((n, 6))
    unif = s_pat.random((n, 2))
    age = np.clip(55.0 + prof["age_shift"][h] + 10.0 * z[:, 0], 30.0, 90.0)
    sex = (unif[:, 0] < 0.5).astype(np.float64)
    bmi = np.clip(27.0 + prof["bmi_shift"][h] + 0.04 * (age - 55) + 4.5 * z[:, 1], 16.0, 55.0)
    sbp = np.clip(128.0 + 0.55 * (age - 55) + 0.8 * (bmi - 27) + 4.0 * sex + 15.0 * z[:, 2],
                  85.0, 230.0)
    chol = np.clip(5.4 + 0.012 * (age - 55) + 0.04 * (bmi - 27) - 0.15 * sex + 1.0 * z[:, 3],
                   2.5, 10.0)
    hdl = np.clip(1.45 - 0.025 * (bmi - 27) - 0.25 * sex + 0.35 * z[:, 4], 0.5, 3.0)
    hba1c = np.clip(5.6 + 0.012 * (age - 55) + 0.06 * (bmi - 27) + 0.6 * z[:, 5], 4.0, 14.0)
    smoker = (unif[:, 1] < prof["smoking_rate"][h]).astype(np.float64)
    diabetes = (hba1c >= 6.5).astype(np.float64)   # the ADA diagnostic threshold
    X_true = np.column_stack([age, sex, bmi, sbp, chol, hdl, hba1c, smoker, diabetes])

    # --- outcome from the TRUE values --------------------------------------
    eta = INTERCEPT + prof["logit_shift"][h] + (X_true - REFERENCE_MEAN) @ _BETA
    risk = 1.0 / (1.0 + np.exp(-eta))
    y_true = (s_out.random(n) < risk).astype(np.int64)

    # --- what the hospital records -----------------------------------------
    X = X_true.copy()
    for j, off, gain in ((_I["sbp"], prof["sbp_offset"], prof["sbp_gain"]),
                         (_I["total_chol"], prof["chol_offset"], prof["chol_gain"])):
        ref = REFERENCE_MEAN[j]
        X[:, j] = ref + gain[h] * (X_true[:, j] - ref) + off[h]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    y = y_true.copy()
    if label_noise > 0:
        # exactly round(label_noise · n_h) flips per hospital, so the card's
        # "fraction of labels flipped" holds in every hospital, not on average
        for k in range(K):
            m = int(round(label_noise * counts[k]))
            flip = bounds[k] + s_noise.choice(counts[k], size=m, replace=False)
            y[flip] = 1 - y[flip]
    if missing_rate > 0:
        labs = [_I[f] for f in LAB_FEATURES]
        sub = X[:, labs]
        sub[s_miss.random((n, len(labs))) < missing_rate] = np.nan
        X[:, labs] = sub

    def per_hospital(a: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.split(a, bounds[1:-1]))

    return Cohort(names=names, feature_names=FEATURES, X=per_hospital(X), y=per_hospital(y),
                  X_true=per_hospital(X_true), y_true=per_hospital(y_true),
                  risk=per_hospital(risk), profiles=profiles,
                  reference_mean=REFERENCE_MEAN.copy(), reference_sd=REFERENCE_SD.copy())


def standardize(X: np.ndarray, *, mean: np.ndarray = REFERENCE_MEAN,
                sd: np.ndarray = REFERENCE_SD) -> np.ndarray:
    """Impute missing values with the reference mean, then ``z = (x − mean) / sd``.

    Imputation by the reference mean means a missing value becomes exactly 0
    after standardisation: "no information, assume an average patient".

    >>> standardize(np.array([[65.0, 1, 27, 130, np.nan, 1.35, 5.7, 0, 0]]))[0, [0, 1, 4]].tolist()
    [1.0, 1.0, 0.0]
    """
    X = np.asarray(X, dtype=np.float64)
    X = np.where(np.isnan(X), mean, X)
    return (X - mean) / sd
