"""A run's privacy plan: the noise it uses, who it protects, and the ε it has spent.

``plan_privacy`` turns the config into the numbers a run needs before round
one: the δ (a default well below 1/N), the noise multiplier (as given, or
calibrated so that the planned rounds spend ``privacy.target_epsilon``), and
a ``PrivacyLedger`` with one unit per protected party and the sampling rate
that the simulation really uses for it:

| mechanism | unit | sampling rate | steps per round |
|---|---|---|---|
| ``dpsgd`` | a record of hospital k | ``q_k = B / n_k`` | hospital k's local steps |
| ``central`` | a hospital | ``client_fraction`` (Poisson) | 1, every round |
| ``local`` | hospital k | 1 | 1 if k's update was sent |

Hospital sizes ``n_k`` are treated as public (they set ``q_k`` and the
FedAvg weights), as Opacus treats a dataset's size. A hospital that dropped
out published nothing and is charged nothing; central DP charges every
round, even one where nobody was sampled (the server still publishes noise).

>>> from fedlab_core.config import ExperimentConfig
>>> cfg = ExperimentConfig().with_overrides({"privacy.mechanism": "central", "data.n_clients": 5,
...                                          "privacy.noise_multiplier": 1.0})
>>> plan = plan_privacy(cfg, n_train=[600] * 5)
>>> plan.unit, plan.delta, plan.expected_clients
('hospital', 1e-05, 5.0)
>>> plan.ledger.spend([50])
>>> round(plan.epsilon(), 1)   # 5 hospitals, z = 1, 50 rounds: client-level DP over few hospitals
54.4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from fedlab_core.config import ExperimentConfig
from fedlab_core.privacy.accounting import (PrivacyLedger, calibrate_noise_multiplier,
                                            default_delta, warn_if_delta_too_large)
from fedlab_core.privacy.dpsgd import dp_steps, sampling_rates
from fedlab_core.privacy.mechanisms import update_noise_multiplier

UNITS = {"dpsgd": "patient record", "central": "hospital", "local": "hospital"}


@dataclass
class PrivacyPlan:
    """What a private run needs each round. ``clip`` changes under adaptive clipping."""

    mechanism: str
    unit: str                      # what one guarantee protects
    noise_multiplier: float        # z (or σ): the one the accountant sees
    update_noise_multiplier: float  # the share left for the update (adaptive clipping spends some)
    clip: float
    delta: float
    expected_clients: float        # m = qN, the DP-FedAvg denominator
    count_noise: float             # σ_b of the adaptive-clipping count (0 if unused)
    steps_per_round: np.ndarray    # (units,) steps a unit's data goes through when it takes part
    ledger: PrivacyLedger

    def epsilon(self, *, accountant: str = "rdp") -> float:
        """The largest ε over the protected units: the run's headline guarantee."""
        return float(self.ledger.epsilons(accountant=accountant).max())

    def epsilon_next_round(self) -> float:
        """The headline ε if the next round had every unit take its full steps."""
        return float(self.ledger.epsilons(extra_steps=self.steps_per_round).max())

    def summary(self) -> dict:
        """Plain numbers for the History (so a saved run says how private it was)."""
        return {"mechanism": self.mechanism, "unit": self.unit,
                "noise_multiplier": self.noise_multiplier, "delta": self.delta,
                "sampling_rates": self.ledger.sampling_rates.tolist(),
                "steps_per_round": self.steps_per_round.tolist()}


def plan_privacy(config: ExperimentConfig, *, n_train: Sequence[int] | torch.Tensor) -> PrivacyPlan:
    """Build the privacy plan of ``config`` for clients with ``n_train`` training rows each."""
    p, fc, tc = config.privacy, config.federation, config.train
    if p.mechanism == "none":
        raise ValueError("privacy.mechanism = 'none' has no privacy plan")
    n = torch.as_tensor(n_train)
    K = len(n)
    if p.mechanism == "dpsgd":
        rates = sampling_rates(n, batch_size=tc.batch_size).double().numpy()
        steps = dp_steps(n, epochs=tc.local_epochs, batch_size=tc.batch_size).numpy()
        population = int(n.max())   # δ < 1/n_k for every hospital
    elif p.mechanism == "central":
        rates, steps, population = np.array([fc.client_fraction]), np.array([1]), K
    else:
        rates, steps, population = np.ones(K), np.ones(K, dtype=np.int64), K
    if p.delta is None:
        delta = default_delta(population)
    else:
        delta = p.delta
        warn_if_delta_too_large(delta, population)

    z = p.noise_multiplier
    if p.target_epsilon is not None:
        z = _calibrate(rates, steps * fc.rounds, target_epsilon=p.target_epsilon, delta=delta)
    expected = fc.client_fraction * K
    count_noise = 0.0
    z_update = z
    if p.adaptive_clip:
        count_noise = p.count_noise if p.count_noise is not None else expected / 20
        z_update = update_noise_multiplier(z, count_noise=count_noise)
    return PrivacyPlan(mechanism=p.mechanism, unit=UNITS[p.mechanism], noise_multiplier=z,
                       update_noise_multiplier=z_update, clip=p.clip, delta=delta,
                       expected_clients=expected, count_noise=count_noise,
                       steps_per_round=np.asarray(steps, dtype=np.int64),
                       ledger=PrivacyLedger(noise_multiplier=z, sampling_rates=rates, delta=delta))


def _calibrate(rates: np.ndarray, total_steps: np.ndarray, *, target_epsilon: float,
               delta: float) -> float:
    """The noise that keeps every unit within ``target_epsilon`` after its planned steps.

    Calibrate for the unit that spends the most at σ = 1 (the smallest
    hospital, under DP-SGD), then check the others; recalibrate for any that
    still exceeds. Usually one calibration.
    """
    units = {(float(q), int(t)) for q, t in zip(rates, total_steps)}
    rates_u = np.array([q for q, _ in units])
    steps_u = np.array([t for _, t in units])

    def worst(sigma: float) -> tuple[float, int]:
        ledger = PrivacyLedger(noise_multiplier=sigma, sampling_rates=rates_u, delta=delta)
        ledger.spend(steps_u)
        eps = ledger.epsilons()
        return float(eps.max()), int(eps.argmax())

    _, i = worst(1.0)
    sigma = 0.0
    for _ in range(len(units)):
        sigma = max(sigma, calibrate_noise_multiplier(target_epsilon=target_epsilon, delta=delta,
                                                      sampling_rate=float(rates_u[i]),
                                                      steps=int(steps_u[i])))
        eps, i = worst(sigma)
        if eps <= target_epsilon * (1 + 1e-3):
            break
    return sigma
