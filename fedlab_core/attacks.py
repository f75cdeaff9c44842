"""Malicious clients: who they are, how they poison their data or their updates.

A scenario marks ``n_malicious`` clients as malicious for the whole run
(:func:`choose_malicious`). A *data* attack changes what they train on
(:func:`flip_labels`); an *update* attack changes what they send. Every update
attack is a short pure function over the round's participants,
``(deltas (m, P), malicious (m,) bool, *, knobs) -> deltas' (m, P)``,
that replaces the malicious rows and leaves the honest ones as they were;
with no malicious row it returns the same values. ``UPDATE_ATTACKS`` maps the
names used in configs to the functions, and :func:`apply_update_attack` is the
one call the round loop makes (knobs read from an ``AttackConfig`` by name).

The malicious clients first train honestly, so their rows of ``deltas`` hold
honest updates when an attack sees them: ``sign_flip`` and ``scale`` transform
them, ``alie`` uses them to estimate what honest updates look like.

Randomness is passed in as a ``torch.Generator``. A bad knob raises
``ValueError`` naming the config field (``attack.scale``, ...).

>>> import torch
>>> deltas = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
>>> sign_flip(deltas, torch.tensor([False, True]), scale=1.0)
tensor([[ 1.,  2.],
        [-3., -4.]])
"""

from __future__ import annotations

import inspect
import math
import operator
from statistics import NormalDist
from typing import Any, Callable

import torch

Tensor = torch.Tensor
UpdateAttack = Callable[..., Tensor]


def _reject(field: str, value: Any, why: str) -> ValueError:
    return ValueError(f"{field} = {value!r} is not allowed: {why}")


def _positive(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise _reject(field, value, "must be a finite number > 0")
    return float(value)


def _rows(deltas: Tensor, malicious: Tensor, what: str = "deltas") -> Tensor:
    """Check ``malicious`` is a bool vector with one entry per row of ``deltas``; return it on deltas' device."""
    if malicious.dtype != torch.bool or malicious.dim() != 1 or malicious.shape[0] != deltas.shape[0]:
        raise ValueError(f"malicious must be a bool tensor of shape ({deltas.shape[0]},), one entry per "
                         f"row of {what}; got dtype {malicious.dtype}, shape {tuple(malicious.shape)}")
    return malicious.to(deltas.device)


def choose_malicious(n_clients: int, n_malicious: int, *, generator: torch.Generator) -> Tensor:
    """Which clients are malicious for the whole run: ``n_malicious`` of ``n_clients``, uniformly.

    A uniform random subset drawn without replacement (the first ``n_malicious``
    entries of a random permutation), returned as a (K,) bool mask. The
    generator advances by one permutation whatever ``n_malicious`` is, so
    changing the count does not shift the stream for later draws.

    >>> mask = choose_malicious(5, 2, generator=torch.Generator().manual_seed(0))
    >>> mask.shape, int(mask.sum())
    (torch.Size([5]), 2)
    """
    for field, value, low in (("data.n_clients", n_clients, 1), ("attack.n_malicious", n_malicious, 0)):
        if isinstance(value, bool):
            raise _reject(field, value, f"must be an integer ≥ {low}")
        try:
            operator.index(value)
        except TypeError:
            raise _reject(field, value, f"must be an integer ≥ {low}") from None
        if value < low:
            raise _reject(field, value, f"must be an integer ≥ {low}")
    if n_malicious > n_clients:
        raise _reject("attack.n_malicious", n_malicious, f"must be at most data.n_clients = {n_clients}")
    mask = torch.zeros(n_clients, dtype=torch.bool)
    mask[torch.randperm(n_clients, generator=generator)[:n_malicious]] = True
    return mask


def flip_labels(y: Tensor, malicious: Tensor) -> Tensor:
    """Label flipping: malicious clients train on ``y' = 1 - y`` (binary 0/1 labels).

    A data-poisoning baseline (Biggio, Nelson, Laskov, ICML 2012; in FL, Tolpegin
    et al., ESORICS 2020): the client runs honest training on wrong labels, so
    its update points the wrong way but looks like a normal update. Rows of
    ``y`` (K, n) that belong to malicious clients are flipped whole, padding
    included (padding 0 becomes 1); the padding is masked out of every loss
    and metric, so this is harmless. Honest clients' rows are unchanged.

    >>> flip_labels(torch.tensor([[0.0, 1.0], [0.0, 1.0]]), torch.tensor([True, False]))
    tensor([[1., 0.],
            [0., 1.]])
    """
    malicious = _rows(y, malicious, "y")
    return torch.where(malicious[:, None], 1 - y, y)


def sign_flip(deltas: Tensor, malicious: Tensor, *, scale: float) -> Tensor:
    """Sign flipping: a malicious client sends ``-scale * delta_k`` instead of ``delta_k``.

    The reversed, boosted gradient is a standard baseline since Damaskinos et
    al. (ICML 2018) and Li et al. (RSA, AAAI 2019). Under FedAvg, f such
    clients out of K move the mean by ``-(1 + scale) f / K`` of their honest
    share, enough to reverse training once ``scale * f > K - f``.

    >>> sign_flip(torch.tensor([[1.0, -2.0], [1.0, 1.0]]), torch.tensor([True, False]), scale=3.0)
    tensor([[-3.,  6.],
            [ 1.,  1.]])
    """
    scale = _positive("attack.scale", scale)
    malicious = _rows(deltas, malicious)
    return torch.where(malicious[:, None], -scale * deltas, deltas)


def scaled_update(deltas: Tensor, malicious: Tensor, *, scale: float) -> Tensor:
    """Boosting / model replacement: a malicious client sends ``scale * delta_k``.

    Bagdasaryan et al. (AISTATS 2020) scale an update by about K / eta so it
    survives averaging and replaces the global model. Here the update is the
    client's honest one, so the attack shows how far one loud client pulls a
    mean (and how robust rules ignore it).

    >>> scaled_update(torch.tensor([[1.0, -2.0], [1.0, 1.0]]), torch.tensor([True, False]), scale=3.0)
    tensor([[ 3., -6.],
            [ 1.,  1.]])
    """
    scale = _positive("attack.scale", scale)
    malicious = _rows(deltas, malicious)
    return torch.where(malicious[:, None], scale * deltas, deltas)


def gaussian_update(deltas: Tensor, malicious: Tensor, *, noise_std: float,
                    generator: torch.Generator) -> Tensor:
    """Gaussian attack: a malicious client sends pure noise, ``delta'_kj ~ N(0, noise_std^2)``.

    The Gaussian Byzantine worker of Blanchard et al. (Krum, NeurIPS 2017).
    One draw of shape (number of malicious rows, P), in row order, from
    ``generator`` (on the generator's device, then moved to ``deltas``').

    >>> g = torch.Generator().manual_seed(0)
    >>> out = gaussian_update(torch.zeros(3, 2), torch.tensor([False, True, False]), noise_std=1.0, generator=g)
    >>> bool((out[[0, 2]] == 0).all()), bool((out[1] != 0).all())
    (True, True)
    """
    noise_std = _positive("attack.noise_std", noise_std)
    malicious = _rows(deltas, malicious)
    n_bad = int(malicious.sum())
    out = deltas.clone()
    if n_bad:
        noise = torch.randn((n_bad, deltas.shape[1]), generator=generator, dtype=deltas.dtype,
                            device=generator.device)
        out[malicious] = noise_std * noise.to(deltas.device)
    return out


def alie_z(n: int, f: int) -> float:
    """ALIE's ``z_max`` for n clients of which f are malicious (Baruch et al., NeurIPS 2019).

    ``s = floor(n/2 + 1) - f``, the honest "supporters" the attackers need for a
    majority, and ``z_max = Phi^{-1}((n - s) / n)``, Phi the standard normal CDF:
    the largest shift (in standard deviations) such that a point ``mu - z sigma``
    is still nearer the mean than about s of the honest updates, so median-,
    trimming- and distance-based rules keep it. Degenerate cases: with f = 0
    the formula would give z < 0 but there is nobody to attack, so z = 0; when
    the attackers already are a majority (s ≤ 0, the formula's z = inf) s is
    raised to 1; z is never below 0 (n ≤ 2).

    >>> round(alie_z(10, 2), 4)   # s = 6 - 2 = 4, Phi^-1(6/10)
    0.2533
    >>> alie_z(10, 0), alie_z(2, 1)
    (0.0, 0.0)
    """
    if f <= 0 or n <= 1:
        return 0.0
    s = max(1, math.floor(n / 2 + 1) - f)
    return max(0.0, NormalDist().inv_cdf((n - s) / n))


def alie(deltas: Tensor, malicious: Tensor, *, z: float | None = None) -> Tensor:
    """ALIE, "a little is enough" (Baruch, Baruch, Goldberg, NeurIPS 2019): malicious rows send ``mu - z sigma``.

    ``mu_j``, ``sigma_j`` are the per-coordinate mean and standard deviation of
    the round's updates and ``z`` defaults to :func:`alie_z` (n = m rows, f =
    malicious rows). The malicious clients all send the same small, consistent
    shift, just inside the spread of honest updates, which median-, trimming-
    and Krum-style rules fail to filter out.

    Convention: mu and sigma are taken over all m rows (every client's honest
    update; the malicious ones trained honestly first), as in the paper,
    where the attackers estimate the workers' mean and spread; sigma is the
    population standard deviation (divide by m, not m - 1), so one row gives
    sigma = 0. Some implementations (e.g. Karimireddy et al.'s "omniscient"
    ALIE) use the benign rows only, with ``(n - f - s) / (n - f)`` in Phi^-1.
    The sign (minus) follows the common implementations; the paper's
    argument is symmetric.

    >>> deltas = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])  # mu = (1, 2), sigma = (1, 2)
    >>> alie(deltas, torch.tensor([False, False, False, True]), z=0.5)
    tensor([[0.0000, 0.0000],
            [2.0000, 0.0000],
            [0.0000, 4.0000],
            [0.5000, 1.0000]])
    """
    malicious = _rows(deltas, malicious)
    n_bad = int(malicious.sum())
    if n_bad == 0:
        return deltas.clone()
    if z is None:
        z = alie_z(deltas.shape[0], n_bad)
    elif isinstance(z, bool) or not isinstance(z, (int, float)) or not math.isfinite(z):
        raise _reject("alie z", z, "must be a finite number (or None for the paper's z_max)")
    mu = deltas.mean(dim=0)
    sigma = deltas.std(dim=0, correction=0)
    return torch.where(malicious[:, None], mu - z * sigma, deltas)


UPDATE_ATTACKS: dict[str, UpdateAttack] = {
    "sign_flip": sign_flip,
    "scale": scaled_update,
    "gaussian": gaussian_update,
    "alie": alie,
}
# attacks that poison the data instead (fedlab_core.config.ATTACKS = these + UPDATE_ATTACKS + "none")
DATA_ATTACKS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"label_flip": flip_labels}


def _check_name(name: str) -> None:
    if name != "none" and name not in UPDATE_ATTACKS and name not in DATA_ATTACKS:
        known = ("none", *DATA_ATTACKS, *UPDATE_ATTACKS)
        raise ValueError(f"attack.name = {name!r} is not allowed: choose one of {', '.join(known)}")


def attack_kwargs(name: str, config: Any, generator: torch.Generator | None = None) -> dict[str, Any]:
    """The update attack's knobs: config fields read by name (``scale``, ``noise_std``), plus ``generator``.

    Knobs that are not config fields (ALIE's ``z``) keep their defaults.

    >>> from fedlab_core.config import AttackConfig
    >>> attack_kwargs("sign_flip", AttackConfig(scale=5.0))
    {'scale': 5.0}
    """
    _check_name(name)
    if name not in UPDATE_ATTACKS:
        return {}
    kwargs: dict[str, Any] = {}
    for p in inspect.signature(UPDATE_ATTACKS[name]).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if p.name == "generator":
            if generator is None:
                raise TypeError(f"attack {name!r} draws random numbers: pass a torch.Generator")
            kwargs["generator"] = generator
        elif hasattr(config, p.name):
            kwargs[p.name] = getattr(config, p.name)
        elif p.default is inspect.Parameter.empty:
            raise TypeError(f"attack {name!r} needs attack field {p.name!r}, "
                            f"which {type(config).__name__} does not have")
    return kwargs


def apply_update_attack(name: str, deltas: Tensor, malicious: Tensor, *, config: Any,
                        generator: torch.Generator | None = None) -> Tensor:
    """What the m participants send: ``UPDATE_ATTACKS[name]`` applied to their honest ``deltas`` (m, P).

    ``malicious`` (m,) marks the participants that are malicious. ``none`` and
    the data attacks (``label_flip``) leave the updates as they are, as does a
    round without a malicious participant (the generator is then not used).

    >>> from fedlab_core.config import AttackConfig
    >>> cfg = AttackConfig(name="scale", n_malicious=1, scale=2.0)
    >>> apply_update_attack(cfg.name, torch.ones(2, 2), torch.tensor([True, False]), config=cfg)
    tensor([[2., 2.],
            [1., 1.]])
    """
    _check_name(name)
    malicious = _rows(deltas, malicious)
    if name not in UPDATE_ATTACKS or not bool(malicious.any()):
        return deltas
    return UPDATE_ATTACKS[name](deltas, malicious, **attack_kwargs(name, config, generator))


def apply_data_attack(name: str, y: Tensor, malicious: Tensor) -> Tensor:
    """The training labels (K, n) the clients learn from: flipped on malicious rows for ``label_flip``.

    Every other attack leaves the data as it is.

    >>> apply_data_attack("label_flip", torch.zeros(2, 1), torch.tensor([False, True]))
    tensor([[0.],
            [1.]])
    """
    _check_name(name)
    if name not in DATA_ATTACKS:
        return y
    return DATA_ATTACKS[name](y, malicious)
