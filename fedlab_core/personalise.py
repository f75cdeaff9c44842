"""Personalisation: what each hospital keeps for itself, and whether joining helped it.

One global model serves the average hospital. When hospitals differ (their
patients, their scanners), each may do better with a model of its own that
still learns from the federation. Four ways, each a small change to FedAvg
(``personal.method``):

- ``finetune``: train the global model a few more local epochs on the
  hospital's own rows (the simplest baseline, and a strong one).
- ``fedper`` (Arivazhagan et al., "Federated learning with personalization
  layers", 2019): the output layer (``model.head``) stays at home; only the
  body is averaged. A hospital's model is the global body with its own head.
- ``fedbn`` (Li et al., "FedBN", ICLR 2021): batch norm's gamma, beta and
  running statistics (``model.norm``) stay at home, which undoes a
  scanner's shift of intensities before the shared filters see it.
- ``ditto`` (Li et al., "Ditto", ICML 2021): FedAvg trains the global model
  w as usual; each hospital also trains a personal model v_k on
  ``f_k(v) + lambda/2 ||v - w||^2``. lambda = 0 is local training; lambda ->
  infinity is the global model.

Then the question a hospital asks: did joining help *us*?
:func:`hospital_verdicts` compares, on each hospital's own test set, its
local-only model with the global and the personalised ones, and says
"gained", "lost" or "too close to call" against the test set's own sampling
noise.

>>> import torch
>>> from fedlab_core.models import make_model
>>> m = make_model("mlp", n_features=2, hidden=3)
>>> kept_at_home(m, "fedper").nonzero().flatten().tolist()   # w2 and b2: the head
[9, 10, 11, 12]
>>> kept_at_home(m, "ditto") is None   # Ditto keeps a whole model, not a part
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fedlab_core.client import local_train
from fedlab_core.models import Model

Tensor = torch.Tensor


def kept_at_home(model: Model, method: str) -> Tensor | None:
    """The entries of theta a hospital keeps for itself under ``method``: bool ``(P,)``,
    or ``None`` where it shares the whole model (``finetune``, ``ditto``, ``none``)."""
    if method == "fedper":
        if model.head is None:
            raise ValueError(f"personal.method = 'fedper' is not allowed for model.name = "
                             f"{model.name!r}: it has no separate head")
        return model.head
    if method == "fedbn":
        if model.norm is None:
            raise ValueError(f"personal.method = 'fedbn' is not allowed for model.name = "
                             f"{model.name!r}: it has no batch norm")
        return model.norm
    return None


def combine(theta: Tensor, personal: Tensor, keep: Tensor) -> Tensor:
    """Each hospital's model under FedPer/FedBN: its own kept entries, the global rest.

    >>> combine(torch.zeros(3), torch.ones(2, 3), torch.tensor([False, True, False]))
    tensor([[0., 1., 0.],
            [0., 1., 0.]])
    """
    return torch.where(keep.to(theta.device), personal, theta)


def newcomer(theta: Tensor, personal: Tensor, keep: Tensor, weights: Tensor) -> Tensor:
    """The model a new hospital would start from under FedPer/FedBN: the global body
    with the patient-weighted mean of the hospitals' kept entries.

    The server never receives those entries, so this is an observer's view (the
    "global" curve of a FedPer/FedBN run); the personalised models are the ones
    the hospitals use.
    """
    p = (weights / weights.sum()).to(personal.dtype)
    return torch.where(keep.to(theta.device), p @ personal, theta)


def fine_tune(model: Model, theta: Tensor, X: Tensor, y: Tensor, n: Tensor, *, epochs: int,
              lr: float, batch_size: int = 0, generator: torch.Generator | None = None) -> Tensor:
    """Every hospital's copy of the global model ``theta`` after ``epochs`` of local SGD: ``(K, P)``.

    >>> from fedlab_core.models import make_model
    >>> m = make_model("logreg", n_features=1)
    >>> X = torch.tensor([[[1.0], [-1.0]]]); y = torch.tensor([[1.0, 0.0]])
    >>> fine_tune(m, torch.zeros(2), X, y, torch.tensor([2]), epochs=1, lr=1.0)
    tensor([[0.5000, 0.0000]])
    """
    K = X.shape[0]
    return local_train(model, theta.expand(K, -1), X, y, n, epochs=epochs, lr=lr,
                       batch_size=batch_size, generator=generator).thetas


def ditto(model: Model, personal: Tensor, theta: Tensor, X: Tensor, y: Tensor, n: Tensor, *,
          lam: float, epochs: int, lr: float, batch_size: int = 0,
          generator: torch.Generator | None = None) -> Tensor:
    """Ditto's personal update (Li et al. 2021, Algorithm 1): local SGD on
    ``f_k(v) + lam/2 ||v - theta||^2`` from each hospital's ``personal`` model ``(K, P)``.

    The pull towards the round's global model ``theta`` is taken as an exact
    proximal step (``local_train(implicit_prox=True)``), so any ``lam`` is
    stable: ``lam = 0`` is plain local training, a huge ``lam`` returns ``theta``.

    >>> from fedlab_core.models import make_model
    >>> m = make_model("logreg", n_features=1)
    >>> X = torch.tensor([[[1.0], [-1.0]]]); y = torch.tensor([[1.0, 0.0]])
    >>> v = ditto(m, torch.zeros(1, 2), torch.tensor([3.0, 3.0]), X, y, torch.tensor([2]),
    ...           lam=1e12, epochs=1, lr=0.1)
    >>> v
    tensor([[3., 3.]])
    """
    return local_train(model, personal, X, y, n, epochs=epochs, lr=lr, batch_size=batch_size,
                       generator=generator, prox_mu=lam, anchor=theta, implicit_prox=True).thetas


# ---- did joining help? ------------------------------------------------------
@dataclass(frozen=True)
class HospitalVerdict:
    """One hospital's accuracies on its own test set, and what they say."""

    hospital: str
    n_test: int
    local_only: float
    global_model: float
    personalised: float | None
    gain: float           # (personalised, else global) minus local-only
    margin: float         # two standard errors of the local-only accuracy
    verdict: str          # "gained", "lost" or "too close to call"

    def __str__(self) -> str:
        model = "global" if self.personalised is None else "personalised"
        return (f"{self.hospital}: {self.verdict} ({model} {self.gain:+.3f} vs local-only "
                f"{self.local_only:.3f}; ±{self.margin:.3f} is noise on {self.n_test} test patients)")


def hospital_verdicts(history, *, last: int = 1) -> list[HospitalVerdict]:
    """Did each hospital gain from joining? Accuracy on its own test set, averaged over the
    ``last`` rounds: local-only vs global vs personalised (when the run personalised).

    The verdict compares the model the hospital would use (the personalised
    one when there is one, else the global one) with its local-only model. A
    difference within two binomial standard errors of the local-only
    accuracy, ``2 sqrt(p (1 - p) / n_test)``, is "too close to call": on 40
    test patients one patient is 2.5 points. (Both models are scored on the
    same patients, so this is a conservative yardstick, not a test.)
    """
    if not isinstance(last, int) or isinstance(last, bool) or last < 1:
        raise ValueError(f"last = {last!r} is not allowed: must be an integer ≥ 1")
    records = history.records[-last:]
    if not records or records[-1].local_only_clients is None:
        raise ValueError("hospital_verdicts needs a run with baselines = true (the local-only "
                         "models) and at least one round")

    def mean(values):
        values = [v for v in values if v is not None and not math.isnan(v)]
        return sum(values) / len(values) if values else math.nan

    verdicts = []
    for k, name in enumerate(history.client_names):
        local_only = mean(r.local_only_clients[k]["accuracy"] for r in records)
        global_model = mean(r.global_clients[k]["accuracy"] for r in records)
        personalised = (mean(r.personal_clients[k]["accuracy"] for r in records)
                        if records[-1].personal_clients is not None else None)
        used = global_model if personalised is None else personalised
        n = history.client_test_sizes[k] if history.client_test_sizes else 0
        p = min(max(local_only, 0.0), 1.0)
        margin = 2 * math.sqrt(p * (1 - p) / n) if n else math.inf
        # at p = 0 or 1 the binomial error vanishes: one patient is then the yardstick
        margin = max(margin, 1 / n) if n else margin
        gain = used - local_only
        verdict = ("gained" if gain > margin else "lost" if gain < -margin else "too close to call")
        verdicts.append(HospitalVerdict(name, n, local_only, global_model, personalised, gain,
                                        margin, verdict))
    return verdicts
