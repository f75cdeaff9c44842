"""The accountant against dp-accounting's own reference answers (shared/notes/privacy-reference.md)."""

import math
import warnings

import numpy as np
import pytest

from fedlab_core.privacy.accounting import (PrivacyLedger, PrivacyWarning, calibrate_noise_multiplier,
                                            default_delta, epsilon, gaussian_sigma,
                                            warn_if_delta_too_large)

# (q, σ, T, RDP ε, PLD ε) at δ = 1e-5, measured with dp-accounting 0.6.0
REFERENCE = [
    (1.0, 1.0, 50, 57.30, 54.377),
    (0.01, 1.1, 10_000, 5.632, 5.193),
    (0.01, 4.0, 10_000, 1.0355, 0.947),
    (0.1, 1.0, 100, 7.904, 7.047),   # client-level: N = 1000, m = 100, z = 1, 100 rounds
]


@pytest.mark.parametrize("q,sigma,T,rdp_eps,pld_eps", REFERENCE)
def test_reference_epsilons(q, sigma, T, rdp_eps, pld_eps):
    assert epsilon(noise_multiplier=sigma, sampling_rate=q, steps=T, delta=1e-5) == pytest.approx(rdp_eps, abs=6e-3)
    assert epsilon(noise_multiplier=sigma, sampling_rate=q, steps=T, delta=1e-5,
                   accountant="pld") == pytest.approx(pld_eps, abs=6e-3)


def test_single_gaussian_is_exact():
    # the analytic answer for one Gaussian with σ = 1 at δ = 1e-5 is 4.3772
    ledger = PrivacyLedger(noise_multiplier=1.0, sampling_rates=[1.0], delta=1e-5)
    ledger.spend([1])
    assert ledger.epsilons()[0] == pytest.approx(4.3772, abs=1e-3)
    # and T Gaussians with σ compose to one Gaussian with σ/√T: 54.3766 for T = 50
    ledger.spend([49])
    assert ledger.epsilons()[0] == pytest.approx(54.3766, abs=1e-3)
    assert ledger.epsilons(accountant="pld")[0] == pytest.approx(54.3766, abs=1e-3)


def test_ledger_rdp_equals_the_library_call():
    ledger = PrivacyLedger(noise_multiplier=1.3, sampling_rates=[0.02, 0.05], delta=1e-6)
    ledger.spend([300, 120])
    ledger.spend([200, 0])
    expected = [epsilon(noise_multiplier=1.3, sampling_rate=q, steps=t, delta=1e-6)
                for q, t in [(0.02, 500), (0.05, 120)]]
    np.testing.assert_allclose(ledger.epsilons(), expected, rtol=1e-9)


def test_composition_is_additive_in_steps():
    a = PrivacyLedger(noise_multiplier=1.0, sampling_rates=[0.05], delta=1e-5)
    a.spend([70])
    a.spend([30])
    b = PrivacyLedger(noise_multiplier=1.0, sampling_rates=[0.05], delta=1e-5)
    b.spend([100])
    assert a.epsilons()[0] == b.epsilons()[0]
    # looking one round ahead gives the same number as spending it
    c = PrivacyLedger(noise_multiplier=1.0, sampling_rates=[0.05], delta=1e-5)
    c.spend([70])
    assert c.epsilons(extra_steps=[30])[0] == b.epsilons()[0]


def test_invariants():
    def eps(sigma=1.0, q=0.05, T=200, delta=1e-5, accountant="rdp"):
        return epsilon(noise_multiplier=sigma, sampling_rate=q, steps=T, delta=delta, accountant=accountant)

    assert eps(accountant="pld") <= eps()                  # PLD is tighter than RDP
    assert eps(sigma=2.0) < eps(sigma=1.0) < eps(sigma=0.8)  # more noise, less ε
    assert eps(q=0.01) < eps(q=0.05) < eps(q=0.2)          # more sampling, more ε
    assert eps(T=100) < eps(T=200) < eps(T=400)            # more steps, more ε
    assert eps(delta=1e-3) < eps(delta=1e-5) < eps(delta=1e-7)
    assert epsilon(noise_multiplier=0.0, steps=1, delta=1e-5) == math.inf
    assert epsilon(noise_multiplier=1.0, steps=0, delta=1e-5) == 0.0


def test_calibration_matches_the_reference_and_round_trips():
    sigma = calibrate_noise_multiplier(target_epsilon=1.0, delta=1e-5, sampling_rate=0.01, steps=10_000)
    assert sigma == pytest.approx(4.13, abs=0.01)
    for q, T, target in [(0.01, 10_000, 1.0), (0.2, 50, 4.0), (1.0, 30, 8.0), (1.0, 1, 1.0)]:
        sigma = calibrate_noise_multiplier(target_epsilon=target, delta=1e-5, sampling_rate=q, steps=T)
        spent = epsilon(noise_multiplier=sigma, sampling_rate=q, steps=T, delta=1e-5,
                        accountant="rdp" if q < 1 else "pld")
        assert spent == pytest.approx(target, rel=2e-3), (q, T, target, sigma, spent)


def test_analytic_gaussian():
    assert gaussian_sigma(epsilon=1.0, delta=1e-5) == pytest.approx(3.731, abs=1e-3)
    # it needs less noise than the classic sqrt(2 ln(1.25/δ))/ε bound
    assert gaussian_sigma(epsilon=0.5, delta=1e-5) < math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    assert gaussian_sigma(epsilon=1.0, delta=1e-5, sensitivity=2.0) == pytest.approx(2 * 3.731, abs=2e-3)


def test_default_delta_is_well_below_one_over_n():
    for n in [1, 4, 46, 740, 10_000, 99_999, 1_000_000]:
        assert default_delta(n) < 1 / n / 5
    assert default_delta(1000) == 1e-5


def test_a_large_delta_warns():
    with pytest.warns(PrivacyWarning, match="privacy.delta = 0.01 is at least 1/N = 1/400"):
        warn_if_delta_too_large(0.01, 400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_delta_too_large(1e-5, 400)


@pytest.mark.parametrize("kwargs,message", [
    ({"noise_multiplier": -1.0}, "noise_multiplier = -1.0 is not allowed: must be ≥ 0"),
    ({"delta": 1.0}, "delta = 1.0 is not allowed: must be in \\(0, 1\\)"),
    ({"delta": 0.0}, "delta = 0.0 is not allowed"),
    ({"sampling_rate": 1.5}, "sampling_rate = 1.5 is not allowed: must be in \\(0, 1\\]"),
    ({"accountant": "gdp"}, "accountant = 'gdp' is not allowed: choose one of rdp, pld"),
])
def test_bad_accounting_input(kwargs, message):
    args = {"noise_multiplier": 1.0, "sampling_rate": 0.1, "steps": 10, "delta": 1e-5, **kwargs}
    with pytest.raises(ValueError, match=message):
        epsilon(**args)


def test_bad_calibration_input():
    with pytest.raises(ValueError, match="target_epsilon = 0 is not allowed: must be > 0"):
        calibrate_noise_multiplier(target_epsilon=0, delta=1e-5, steps=10)
    with pytest.raises(ValueError, match="target_epsilon = -1.0 is not allowed"):
        calibrate_noise_multiplier(target_epsilon=-1.0, delta=1e-5, steps=10)
    with pytest.raises(ValueError, match="delta = 2 is not allowed"):
        calibrate_noise_multiplier(target_epsilon=1.0, delta=2, steps=10)
    with pytest.raises(ValueError, match="steps = \\[-1\\] is not allowed"):
        PrivacyLedger(noise_multiplier=1.0, sampling_rates=[0.1], delta=1e-5).spend([-1])
