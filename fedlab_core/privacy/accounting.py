"""Privacy accounting: how much ε a run has spent, from the dp-accounting library.

Every DP mechanism in fedlab is the (subsampled) Gaussian mechanism repeated:
each step, a unit (a patient record, or a whole hospital) is included with
probability ``q``, its contribution is clipped to norm ``C``, and Gaussian
noise of standard deviation ``σ·C`` is added. ε after ``T`` steps at a given δ
is a question for an accountant, never a formula typed in by hand:

- **RDP** (Mironov 2017; Mironov, Talwar & Zhang 2019 for Poisson
  subsampling): fast (milliseconds), a slight over-estimate; the live meter.
- **PLD** (privacy loss distributions, Koskela et al. 2020; Doroshenko et al.
  2022): tight up to discretisation, 0.1–4 s; the final figure.
- With ``q = 1`` the T-fold Gaussian is itself one Gaussian mechanism with
  noise ``σ/√T`` (Dong, Roth & Su 2019), whose ε dp-accounting computes
  exactly (Balle & Wang 2018); the ledger uses that for such units.

>>> round(epsilon(noise_multiplier=1.1, sampling_rate=0.01, steps=10_000, delta=1e-5), 3)
5.632
>>> round(calibrate_noise_multiplier(target_epsilon=1.0, delta=1e-5, sampling_rate=0.01,
...                                  steps=10_000), 2)
4.13
>>> default_delta(740)
1e-05
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from functools import lru_cache
from typing import Sequence

import dp_accounting
import numpy as np
from dp_accounting import pld, rdp

ACCOUNTANTS = ("rdp", "pld")


class PrivacyWarning(UserWarning):
    """A privacy setting that is allowed but weaker than it looks (e.g. δ ≥ 1/N)."""


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
        raise ValueError(f"{name} = {value!r} is not allowed: must be {'≥' if allow_zero else '>'} 0")


def check_delta(delta: float, *, name: str = "delta") -> None:
    """δ must lie in (0, 1): δ is the probability that the guarantee fails outright."""
    if not (isinstance(delta, (int, float)) and 0 < delta < 1):
        raise ValueError(f"{name} = {delta!r} is not allowed: must be in (0, 1), "
                         "and well below 1/N for N protected units")


def _check_rate(q: float) -> None:
    if not (isinstance(q, (int, float)) and 0 < q <= 1):
        raise ValueError(f"sampling_rate = {q!r} is not allowed: must be in (0, 1]")


def default_delta(n_units: int) -> float:
    """A δ well below ``1/n_units``: 1e-5, or a smaller power of ten for ``n_units > 10⁴``.

    δ ≥ 1/N allows a mechanism that publishes one of the N records in the
    clear, so δ must be much smaller than 1/N (Dwork & Roth 2014, §2.3).

    >>> default_delta(4), default_delta(250_000)
    (1e-05, 1e-07)
    """
    return min(1e-5, 10.0 ** math.floor(math.log10(0.1 / max(1, n_units))))


def warn_if_delta_too_large(delta: float, n_units: int, *, name: str = "privacy.delta") -> None:
    """Warn (``PrivacyWarning``) when ``δ ≥ 1/n_units``: the guarantee then means little."""
    if delta >= 1.0 / n_units:
        warnings.warn(f"{name} = {delta:g} is at least 1/N = 1/{n_units}: a mechanism that leaks one "
                      f"unit's data outright can satisfy such a δ; use δ ≤ {default_delta(n_units):g}",
                      PrivacyWarning, stacklevel=3)


def gaussian_event(*, noise_multiplier: float, sampling_rate: float = 1.0,
                   steps: int = 1) -> dp_accounting.DpEvent:
    """The DpEvent of ``steps`` Poisson-subsampled Gaussian steps (no subsampling at q = 1)."""
    event: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sampling_rate < 1:
        event = dp_accounting.PoissonSampledDpEvent(sampling_rate, event)
    return dp_accounting.SelfComposedDpEvent(event, steps)


@contextlib.contextmanager
def _quiet_absl():
    # dp-accounting logs a warning whenever one fractional RDP order fails to
    # converge and is left out of the minimum: harmless, and noise to a learner
    logger = logging.getLogger("absl")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def _accountant(name: str) -> dp_accounting.PrivacyAccountant:
    if name == "rdp":
        return rdp.RdpAccountant()
    if name == "pld":
        return pld.PLDAccountant()
    raise ValueError(f"accountant = {name!r} is not allowed: choose one of {', '.join(ACCOUNTANTS)}")


def epsilon(*, noise_multiplier: float, sampling_rate: float = 1.0, steps: int, delta: float,
            accountant: str = "rdp") -> float:
    """ε after ``steps`` (Poisson-subsampled) Gaussian steps, at ``delta``.

    ``noise_multiplier`` σ is the noise standard deviation over the
    sensitivity (the clipping norm). σ = 0 means no noise: ε = ∞.

    >>> round(epsilon(noise_multiplier=1.0, steps=50, delta=1e-5, accountant="pld"), 3)
    54.377
    """
    _check_positive("noise_multiplier", noise_multiplier, allow_zero=True)
    _check_rate(sampling_rate)
    check_delta(delta)
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    acc = _accountant(accountant)
    with _quiet_absl():
        acc.compose(gaussian_event(noise_multiplier=noise_multiplier, sampling_rate=sampling_rate,
                                   steps=steps))
        return float(acc.get_epsilon(delta))


def calibrate_noise_multiplier(*, target_epsilon: float, delta: float, sampling_rate: float = 1.0,
                               steps: int, accountant: str = "rdp") -> float:
    """The smallest σ whose ``steps`` steps spend at most ``target_epsilon`` (to 1e-4).

    Uses ``dp_accounting.calibrate_dp_mechanism`` (Brent's method over σ).
    With ``sampling_rate = 1`` the answer is exact: the T-fold Gaussian is a
    single Gaussian with noise σ/√T, so ``σ = √T · σ₁(ε, δ)`` where σ₁ is the
    analytic Gaussian mechanism's noise (Balle & Wang 2018).
    """
    _check_positive("target_epsilon", target_epsilon)
    _check_rate(sampling_rate)
    check_delta(delta)
    if sampling_rate == 1:
        return math.sqrt(steps) * gaussian_sigma(epsilon=target_epsilon, delta=delta)
    with _quiet_absl():
        return float(dp_accounting.calibrate_dp_mechanism(
            lambda: _accountant(accountant),
            lambda sigma: gaussian_event(noise_multiplier=sigma, sampling_rate=sampling_rate,
                                         steps=steps),
            target_epsilon, delta, bracket_interval=dp_accounting.LowerEndpointAndGuess(1e-3, 1.0),
            tol=1e-4))


def gaussian_sigma(*, epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """Noise std of the analytic Gaussian mechanism (Balle & Wang, ICML 2018).

    The classic ``σ = Δ·√(2 ln(1.25/δ))/ε`` is only proven for ε < 1 and adds
    more noise than needed; this is the exact smallest σ.

    >>> round(gaussian_sigma(epsilon=1.0, delta=1e-5), 3)
    3.731
    """
    _check_positive("epsilon", epsilon)
    _check_positive("sensitivity", sensitivity)
    check_delta(delta)
    return sensitivity * float(dp_accounting.get_sigma_gaussian(epsilon, delta))


@lru_cache(maxsize=256)
def _rdp_curve(noise_multiplier: float, sampling_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(orders, RDP of one step): RDP composes by addition, so T steps cost T times this."""
    acc = rdp.RdpAccountant()
    with _quiet_absl():
        acc.compose(gaussian_event(noise_multiplier=noise_multiplier, sampling_rate=sampling_rate))
    return np.asarray(acc.orders), np.asarray(acc.rdp)


class PrivacyLedger:
    """ε spent so far by each protected unit, one Gaussian mechanism per unit.

    A unit is what the guarantee protects: one patient record of hospital k
    (sample-level DP-SGD: unit k, rate ``q_k``), or one hospital (client-level
    DP: one unit for the whole federation, rate = the client sampling rate;
    local DP: unit k, rate 1). ``spend(steps)`` adds the steps each unit's
    data went through this round; ``epsilons()`` is each unit's ε.

    The live accountant (``"rdp"``) answers in about a millisecond: the RDP of
    one step is computed once per rate and scaled by the step count. Units
    sampled with rate 1 get the exact Gaussian ε instead (see the module
    docstring). ``"pld"`` is the tight accountant for the final figure.

    >>> ledger = PrivacyLedger(noise_multiplier=1.1, sampling_rates=[0.01], delta=1e-5)
    >>> ledger.spend([10_000])
    >>> round(float(ledger.epsilons()[0]), 3)
    5.632
    """

    def __init__(self, *, noise_multiplier: float, sampling_rates: Sequence[float], delta: float) -> None:
        _check_positive("noise_multiplier", noise_multiplier, allow_zero=True)
        check_delta(delta)
        for q in sampling_rates:
            _check_rate(float(q))
        self.noise_multiplier = float(noise_multiplier)
        self.sampling_rates = np.asarray(sampling_rates, dtype=float)
        self.delta = float(delta)
        self.steps = np.zeros(len(self.sampling_rates), dtype=np.int64)

    def spend(self, steps: Sequence[int] | np.ndarray) -> None:
        """Add this round's steps, one count per unit (0 for units that sat it out)."""
        steps = np.asarray(steps, dtype=np.int64)
        if steps.shape != self.steps.shape or (steps < 0).any():
            raise ValueError(f"steps = {steps.tolist()} is not allowed: need {len(self.steps)} "
                             "non-negative counts, one per unit")
        self.steps = self.steps + steps

    def epsilons(self, *, accountant: str = "rdp", extra_steps: Sequence[int] | None = None
                 ) -> np.ndarray:
        """ε of every unit now (or after ``extra_steps`` more, to look one round ahead)."""
        steps = self.steps if extra_steps is None else self.steps + np.asarray(extra_steps)
        return np.array([self._epsilon(int(t), float(q), accountant)
                         for t, q in zip(steps, self.sampling_rates)])

    def _epsilon(self, steps: int, q: float, accountant: str) -> float:
        if steps == 0:
            return 0.0
        if self.noise_multiplier == 0:
            return math.inf
        if q == 1:
            return float(dp_accounting.get_epsilon_gaussian(
                self.noise_multiplier / math.sqrt(steps), self.delta))
        if accountant == "rdp":
            orders, curve = _rdp_curve(self.noise_multiplier, q)
            eps, _ = rdp.compute_epsilon(orders, steps * curve, self.delta)
            return float(eps)
        return epsilon(noise_multiplier=self.noise_multiplier, sampling_rate=q, steps=steps,
                       delta=self.delta, accountant=accountant)
