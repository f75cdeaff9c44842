"""Membership inference: was this patient in the training set?

An attacker holds a trained model and a population of candidate records and
scores each record; higher means "more likely a member". How well the
scores separate members from non-members is the model's privacy leak,
reported as the ROC curve, its AUC, the TPR at a low FPR (0.1 %, 1 %: an
attack that confidently identifies a few patients is what matters, Carlini
et al. 2022) and the membership advantage max(TPR − FPR) (Yeom et al. 2018).

- :func:`loss_threshold_scores` — the baseline: members have lower loss
  (Yeom et al., "Privacy risk in machine learning", CSF 2018).
- :func:`lira_scores` — the likelihood-ratio attack with shadow models
  (Carlini et al., "Membership inference attacks from first principles",
  IEEE S&P 2022). The S shadow models are a batch of S "clients", trained at
  once by the caller's ``train`` function (:func:`train_shadows`), so the
  attacker imitates the target's training, private or not.
- :func:`attack_roc` — ROC, AUC, TPR at low FPR, advantage.
- :func:`dp_roc_bound`, :func:`dp_advantage_bound` — the region an
  (ε, δ)-DP training confines every attack to (Kairouz et al. 2015).
- :func:`membership_experiment` — target, shadows and both attacks in one call.

A ``train`` function has the signature of a batch of clients:
``train(X (S, n, d), y (S, n), n (S,), generator) -> thetas (S, P)``, row s
trained on the first ``n[s]`` rows of ``X[s]``; :func:`sgd_trainer` builds one
from :func:`fedlab_core.client.local_train`.

>>> import torch
>>> from fedlab_core.models import make_model
>>> m = make_model("logreg", n_features=1)
>>> X = torch.tensor([[2.0], [-1.0]]); y = torch.tensor([1.0, 1.0])
>>> loss_threshold_scores(m, torch.tensor([1.0, 0.0]), X, y)  # −log σ(z)
tensor([-0.1269, -1.3133])
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from fedlab_core.client import local_train
from fedlab_core.models import Model

Tensor = torch.Tensor
TrainFn = Callable[[Tensor, Tensor, Tensor, torch.Generator], Tensor]

__all__ = ["AttackResult", "ShadowModels", "MembershipExperiment", "loss_threshold_scores",
           "logit_confidence", "train_shadows", "lira_scores", "tpr_at_fpr", "attack_roc",
           "dp_roc_bound", "dp_advantage_bound", "sgd_trainer", "dp_trainer",
           "membership_experiment"]


def _fail(name: str, value, allowed: str) -> None:
    raise ValueError(f"{name} = {value!r} is not allowed: {allowed}")


# ---- scores -----------------------------------------------------------------
def loss_threshold_scores(model: Model, theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
    """Loss-threshold attack: ``score_i = −bce(f(θ, x_i), y_i)``, shape ``(n,)``.

    Members were fitted, so their loss is lower; thresholding the loss is
    the attack of Yeom et al. (CSF 2018). It ranks records by how easy they
    are, not by how much training changed them, so it fails at low FPR:
    easy non-members look like members.

    Parameters
    ----------
    model : the model family; theta : ``(P,)`` the target's parameters.
    X, y : ``(n, d)`` and ``(n,)`` the candidate records.
    """
    logits = model.apply(theta.unsqueeze(0), X.unsqueeze(0)).squeeze(0)
    return -F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none").detach()


def logit_confidence(model: Model, thetas: Tensor, X: Tensor, y: Tensor) -> Tensor:
    """Logit-scaled confidence in the true label, ``φ = log(p_y / (1 − p_y))``: ``(K, n)``.

    Carlini et al. (2022, Sec. IV-C) use φ because, unlike ``p_y``, it is close
    to Gaussian across shadow models. For a sigmoid output ``p_1 = σ(z)``, φ
    is exactly the logit signed by the label, ``φ = (2y − 1) z``, with no
    rounding from computing p first.

    >>> from fedlab_core.models import make_model
    >>> m = make_model("logreg", n_features=1)
    >>> logit_confidence(m, torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0], [1.0]]),
    ...                  torch.tensor([1.0, 0.0]))
    tensor([[ 2., -2.]])
    """
    z = model.apply(thetas, X.unsqueeze(0).expand(thetas.shape[0], -1, -1))
    return ((2 * y.to(z.dtype) - 1) * z).detach()


class ShadowModels(NamedTuple):
    """S shadow models and which records each was trained on (unpacks as a pair)."""

    thetas: Tensor   # (S, P)
    is_in: Tensor    # (S, n) bool: record i was in shadow s's training set


def train_shadows(train: TrainFn, X: Tensor, y: Tensor, *, n_shadow: int,
                  generator: torch.Generator) -> ShadowModels:
    """Train ``n_shadow`` shadow models at once, each on a random half of the population.

    Every record is IN for exactly ``⌊S/2⌋`` shadows, chosen at random (the
    balanced split of Carlini et al.'s code), so both of its Gaussians get
    about S/2 samples. Shadow s trains on its IN rows, packed first and
    padded, as one batch of S clients.

    Parameters
    ----------
    train : ``train(X (S, n, d), y (S, n), n (S,), generator) -> thetas (S, P)``.
    X, y : ``(n, d)``, ``(n,)`` the attacker's population.
    n_shadow : S ≥ 2.
    generator : the torch RNG for the splits (and passed on to ``train``).

    >>> def train(X, y, n, g):     # a stand-in "model": the mean of its real rows
    ...     return torch.stack([X[s, :k].mean(0) for s, k in enumerate(n.tolist())])
    >>> s = train_shadows(train, torch.eye(6), torch.zeros(6), n_shadow=4,
    ...                   generator=torch.Generator().manual_seed(0))
    >>> s.is_in.sum(0).tolist()      # every record IN for S/2 shadows
    [2, 2, 2, 2, 2, 2]
    >>> torch.equal(s.thetas > 0, s.is_in)   # and each shadow saw exactly its IN rows
    True
    """
    if isinstance(n_shadow, bool) or not isinstance(n_shadow, int) or n_shadow < 2:
        _fail("n_shadow", n_shadow, "must be an integer of at least 2 (one IN and one OUT model "
              "per record)")
    n = X.shape[0]
    # a uniformly random permutation of 0..S-1 per record; shadow s takes the
    # record when perm[s] < S/2, which picks S/2 of the S shadows uniformly
    perm = torch.rand(n, n_shadow, generator=generator).argsort(dim=1)
    is_in = (perm < n_shadow // 2).T.contiguous().to(X.device)
    counts = is_in.sum(dim=1)
    # a stable sort of "not IN" moves each shadow's IN rows first, in order
    rows = torch.argsort((~is_in).to(torch.int8), dim=1, stable=True)[:, :int(counts.max())]
    thetas = train(X[rows], y[rows], counts, generator)
    return ShadowModels(thetas.detach(), is_in)


def _gaussian_logpdf(x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    return -0.5 * ((x - mean) ** 2 / var + torch.log(2 * math.pi * var))


def lira_scores(model: Model, target_theta: Tensor, X: Tensor, y: Tensor, *,
                shadow_thetas: Tensor, shadow_in: Tensor, online: bool = True,
                global_variance: bool = False) -> Tensor:
    """Likelihood-ratio attack (LiRA, Carlini et al., IEEE S&P 2022): ``(n,)`` scores.

    With φ the target's logit-scaled confidence in record i
    (:func:`logit_confidence`) and Gaussians fitted per record to the
    shadows' φ when i was IN and when it was OUT of their training set:

    - online:  ``score_i = log N(φ; μ_in,i, σ²_in,i) − log N(φ; μ_out,i, σ²_out,i)``
    - offline (``online=False``, needs only OUT shadows, so they can be
      trained before the candidates are known): ``score_i = (φ − μ_out,i) / σ_out,i``,
      which ranks as the one-sided test ``Pr[Z < φ]``, Z ~ N(μ_out, σ²_out).

    Unlike the loss, this asks "is φ higher than *this* record's φ usually
    is without it?", so records that are easy anyway stop looking like members.
    ``global_variance=True`` shares one σ² per side over all records,
    which the paper recommends with few (< 64) shadows.

    Parameters
    ----------
    model, target_theta : the target model ``(P,)``.
    X, y : ``(n, d)``, ``(n,)`` the candidate records.
    shadow_thetas : ``(S, P)``; shadow_in : ``(S, n)`` bool, from :func:`train_shadows`.

    >>> from fedlab_core.models import make_model
    >>> m = make_model("logreg", n_features=1)
    >>> X, y = torch.ones(2, 1), torch.ones(2)
    >>> shadows = torch.tensor([[1.0, 0.0], [3.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])  # φ = 1, 3, −1, 1
    >>> is_in = torch.tensor([[True, False], [True, False], [False, True], [False, True]])
    >>> # record 0: IN ~ N(2, 1), OUT ~ N(0, 1), target φ = 2: log N(2; 2, 1) − log N(2; 0, 1) = 2
    >>> lira_scores(m, torch.tensor([2.0, 0.0]), X, y, shadow_thetas=shadows, shadow_in=is_in)
    tensor([ 2., -2.])
    """
    S, n = shadow_in.shape
    if shadow_thetas.shape[0] != S or X.shape[0] != n:
        raise ValueError(f"shadow_in has shape {tuple(shadow_in.shape)}: must be (S, n) = "
                         f"({shadow_thetas.shape[0]}, {X.shape[0]}) for these shadows and records")
    phi = logit_confidence(model, target_theta.unsqueeze(0), X, y).squeeze(0)
    shadow_phi = logit_confidence(model, shadow_thetas, X, y)

    def fit(side: Tensor) -> tuple[Tensor, Tensor]:
        count = side.sum(dim=0)
        if int(count.min()) < 1:
            raise ValueError(f"shadow_in: record {int(count.argmin())} has no "
                             f"{'IN' if side is shadow_in else 'OUT'} shadow model; every record "
                             "needs at least one of each (use train_shadows)")
        w = side.to(shadow_phi)
        mean = (w * shadow_phi).sum(0) / count
        var = (w * (shadow_phi - mean) ** 2).sum(0) / count
        if global_variance:
            var = var.mean().expand_as(var)
        # identical shadows (e.g. never trained, or one per side) have zero
        # spread; a floor keeps the likelihoods finite
        return mean, var.clamp_min(1e-12)

    mu_out, var_out = fit(~shadow_in)
    if not online:
        return (phi - mu_out) / var_out.sqrt()
    mu_in, var_in = fit(shadow_in)
    return _gaussian_logpdf(phi, mu_in, var_in) - _gaussian_logpdf(phi, mu_out, var_out)


# ---- evaluation -------------------------------------------------------------
def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """TPR of a ROC curve at FPR ``target``, by linear interpolation between its points.

    The ROC's points are joined by straight lines (mixing two thresholds at
    random achieves every point between them). Where the curve rises
    vertically at ``target`` the highest TPR there counts, since the attacker
    can pick that threshold; ``np.interp`` on the raw curve would be
    ambiguous there, so each side of ``target`` is located by search.

    >>> tpr_at_fpr(np.array([0.0, 0.0, 0.5, 1.0]), np.array([0.0, 0.2, 0.6, 1.0]), 0.25)
    0.4
    >>> tpr_at_fpr(np.array([0.0, 0.0, 0.5, 1.0]), np.array([0.0, 0.2, 0.6, 1.0]), 0.0)
    0.2
    """
    fpr, tpr = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    if not 0 <= target <= 1:
        _fail("fpr", target, "must be in [0, 1]")
    below = max(np.searchsorted(fpr, target, side="right") - 1, 0)   # last point with FPR ≤ target
    if fpr[below] == target or below == len(fpr) - 1:
        return float(tpr[below])
    above = below + 1                                         # first point with FPR > target
    return float(np.interp(target, fpr[below:above + 1], tpr[below:above + 1]))


@dataclass(frozen=True)
class AttackResult:
    """How well an attack's scores separate members from non-members."""

    fpr: np.ndarray                 # ROC curve (sklearn.metrics.roc_curve)
    tpr: np.ndarray
    auc: float                      # ROC AUC (0.5 = guessing)
    tpr_at_fpr: dict[float, float]  # {0.001: TPR at 0.1 % FPR, 0.01: TPR at 1 % FPR}
    advantage: float                # max(TPR − FPR), Yeom et al.'s membership advantage


def attack_roc(scores, is_member, *, fpr_targets: Sequence[float] = (0.001, 0.01)) -> AttackResult:
    """ROC, AUC, TPR at low FPR and membership advantage of an attack's scores.

    ``advantage = max_t (TPR(t) − FPR(t))`` (Yeom et al. 2018): the best
    balanced accuracy minus a half, doubled; 0 for guessing, 1 for perfect.
    A linear function peaks at a vertex of the piecewise-linear ROC, so the
    maximum over the returned points is exact.

    >>> r = attack_roc(np.array([0.9, 0.8, 0.3, 0.1]), np.array([True, False, True, False]))
    >>> r.auc, r.advantage, r.tpr_at_fpr[0.01]
    (0.75, 0.5, 0.5)
    """
    # imported on use: scikit-learn adds ~0.3 s to importing this module, which
    # the privacy package may re-export to every simulation, auditing or not
    from sklearn.metrics import roc_auc_score, roc_curve

    scores = np.asarray(torch.as_tensor(scores).detach().cpu(), dtype=np.float64)
    is_member = np.asarray(torch.as_tensor(is_member).cpu(), dtype=bool)
    if scores.shape != is_member.shape or scores.ndim != 1:
        raise ValueError(f"scores have shape {scores.shape} and is_member {is_member.shape}: "
                         "both must be the same 1-d shape (one entry per record)")
    if is_member.all() or not is_member.any():
        raise ValueError("is_member must hold both members and non-members to draw a ROC curve")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (a NaN or infinite score has no rank)")
    fpr, tpr, _ = roc_curve(is_member, scores)
    return AttackResult(fpr=fpr, tpr=tpr, auc=float(roc_auc_score(is_member, scores)),
                        tpr_at_fpr={float(t): tpr_at_fpr(fpr, tpr, t) for t in fpr_targets},
                        advantage=float(np.max(tpr - fpr)))


# ---- what differential privacy allows -----------------------------------------
def _check_dp(epsilon: float, delta: float) -> None:
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) \
            or not math.isfinite(epsilon) or epsilon < 0:
        _fail("epsilon", epsilon, "must be a finite number ≥ 0")
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not 0 <= delta < 1:
        _fail("delta", delta, "must be in [0, 1)")


def dp_roc_bound(fpr, *, epsilon: float, delta: float):
    """The highest TPR any membership attack can reach at ``fpr`` against (ε, δ)-DP training.

    ``TPR ≤ min(e^ε·FPR + δ, 1 − e^(−ε)·(1 − δ − FPR))``, clipped to [0, 1]:
    a mechanism is (ε, δ)-DP if and only if every test between two
    neighbouring datasets ("member" vs "non-member") has its (FPR, TPR) in
    this region (Kairouz, Oh & Viswanath, "The composition theorem for
    differential privacy", ICML 2015). The second term is the first applied
    to the complementary test. Real attacks usually sit far below it: the
    bound is for the worst-case record and neighbour.

    >>> dp_roc_bound(np.array([0.0, 0.01, 1.0]), epsilon=1.0, delta=0.0).round(4).tolist()
    [0.0, 0.0272, 1.0]
    """
    _check_dp(epsilon, delta)
    x = np.asarray(fpr, dtype=np.float64)
    if not np.all((x >= 0) & (x <= 1)):
        bad = x[~((x >= 0) & (x <= 1))].flat[0]
        _fail("fpr", float(bad), "must be in [0, 1]")
    # e^ε overflows past ε ≈ 709; from ε = 700 on the bound is 1 above FPR = 1e-304 anyway
    bound = np.minimum(math.exp(min(epsilon, 700.0)) * x + delta,
                       1 - math.exp(-epsilon) * (1 - delta - x))
    bound = np.clip(bound, 0.0, 1.0)
    return float(bound) if bound.ndim == 0 else bound


def dp_advantage_bound(epsilon: float, delta: float) -> float:
    """The largest membership advantage (ε, δ)-DP allows: ``(e^ε − 1 + 2δ) / (e^ε + 1)``.

    The maximum of ``dp_roc_bound(x) − x``, reached where its two lines
    cross, at ``x = (1 − δ) / (e^ε + 1)``; with δ = 0 it is ``tanh(ε/2)``.

    >>> round(dp_advantage_bound(1.0, 0.0), 4), round(math.tanh(0.5), 4)
    (0.4621, 0.4621)
    """
    _check_dp(epsilon, delta)
    shrink = math.exp(-epsilon)   # the same ratio divided through by e^ε: no overflow at large ε
    return (1 - (1 - 2 * delta) * shrink) / (1 + shrink)


# ---- the experiment a notebook runs ---------------------------------------------
def sgd_trainer(model: Model, *, epochs: int, lr: float, batch_size: int = 0) -> TrainFn:
    """A ``train`` function: S models from fresh random inits, then :func:`local_train`.

    ``epochs=0`` gives untrained models (a control: every attack is then a
    coin flip).

    >>> from fedlab_core.models import make_model
    >>> train = sgd_trainer(make_model("logreg", n_features=2), epochs=1, lr=1.0)
    >>> train(torch.ones(3, 4, 2), torch.ones(3, 4), torch.tensor([4, 4, 2]),
    ...       torch.Generator().manual_seed(0)).shape
    torch.Size([3, 3])
    """
    return _from_fresh_inits(model, lambda thetas, X, y, n, generator: local_train(
        model, thetas, X, y, n, epochs=epochs, lr=lr, batch_size=batch_size, generator=generator))


def dp_trainer(model: Model, *, epochs: int, lr: float, batch_size: int, clip: float,
               noise_multiplier: float) -> TrainFn:
    """A ``train`` function that trains S models with sample-level DP-SGD (``dp_local_train``).

    The attacker knows the training algorithm, privacy included, so a LiRA
    audit of a DP model trains its shadows with the same DP-SGD.

    >>> from fedlab_core.models import make_model
    >>> train = dp_trainer(make_model("logreg", n_features=2), epochs=1, lr=1.0, batch_size=2,
    ...                    clip=1.0, noise_multiplier=1.0)
    >>> train(torch.ones(3, 4, 2), torch.ones(3, 4), torch.tensor([4, 4, 2]),
    ...       torch.Generator().manual_seed(0)).shape
    torch.Size([3, 3])
    """
    from fedlab_core.privacy.dpsgd import dp_local_train

    return _from_fresh_inits(model, lambda thetas, X, y, n, generator: dp_local_train(
        model, thetas, X, y, n, epochs=epochs, lr=lr, batch_size=batch_size, clip=clip,
        noise_multiplier=noise_multiplier, generator=generator))


def _from_fresh_inits(model: Model, fit) -> TrainFn:
    """A ``train`` function: S fresh random inits, then ``fit(thetas, X, y, n, generator)``."""
    def train(X: Tensor, y: Tensor, n: Tensor, generator: torch.Generator) -> Tensor:
        thetas = torch.stack([model.init(generator, X.dtype) for _ in range(X.shape[0])])
        return fit(thetas, X, y.to(X.dtype), n, generator).thetas
    return train


@dataclass(frozen=True)
class MembershipExperiment:
    """A target model, the truth about its members, and both attacks' scores and results."""

    target_theta: Tensor     # (P,)
    is_member: Tensor        # (n,) bool
    loss_scores: Tensor      # (n,)
    lira_scores: Tensor      # (n,)
    loss: AttackResult
    lira: AttackResult


def membership_experiment(model: Model, train: TrainFn, X: Tensor, y: Tensor, *,
                          generator: torch.Generator, n_shadow: int = 16, online: bool = True,
                          global_variance: bool = False) -> MembershipExperiment:
    """Train a target on a random half of ``X``, then attack it with the loss and with LiRA.

    The other half are the non-members. The attacker knows the population
    (all of ``X``) and the training procedure (``train``), not the split: its
    ``n_shadow`` shadows train on their own random halves of the population
    (:func:`train_shadows`), as in Carlini et al. (2022).

    >>> from fedlab_core.models import make_model
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(40, 3, generator=g, dtype=torch.float64)
    >>> y = (torch.rand(40, generator=g) < 0.5).double()
    >>> m = make_model("logreg", n_features=3)
    >>> train = sgd_trainer(m, epochs=5, lr=0.5)
    >>> out = membership_experiment(m, train, X, y, n_shadow=4, generator=g)
    >>> int(out.is_member.sum()), 0 <= out.lira.auc <= 1
    (20, True)
    """
    n = X.shape[0]
    if n < 2 or y.shape != (n,):
        raise ValueError(f"X has {n} rows and y shape {tuple(y.shape)}: need at least 2 records "
                         "and one label per record")
    members = torch.randperm(n, generator=generator)[:n // 2]
    is_member = torch.zeros(n, dtype=torch.bool)
    is_member[members] = True
    members = members.to(X.device)
    target = train(X[members].unsqueeze(0), y[members].unsqueeze(0),
                   torch.tensor([n // 2], device=X.device), generator).detach().squeeze(0)
    shadows = train_shadows(train, X, y, n_shadow=n_shadow, generator=generator)
    loss_scores = loss_threshold_scores(model, target, X, y)
    lira = lira_scores(model, target, X, y, shadow_thetas=shadows.thetas, shadow_in=shadows.is_in,
                       online=online, global_variance=global_variance)
    return MembershipExperiment(target, is_member, loss_scores, lira,
                                attack_roc(loss_scores, is_member), attack_roc(lira, is_member))
