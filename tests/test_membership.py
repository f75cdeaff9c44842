"""Membership inference: hand-made ROC cases, scikit-learn as the reference for the ROC
and AUC, the DP region checked numerically, and two end-to-end audits of the synthetic
cohort: an untrained model leaks nothing (AUC ≈ 0.5), an overfit MLP leaks, and LiRA
finds more members at low FPR than the loss threshold does."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from fedlab_core.config import DataConfig
from fedlab_core.data import load_dataset
from fedlab_core.models import make_model
from fedlab_core.privacy.membership import (
    attack_roc, dp_advantage_bound, dp_roc_bound, logit_confidence, lira_scores,
    loss_threshold_scores, membership_experiment, sgd_trainer, tpr_at_fpr, train_shadows)


@pytest.fixture(scope="module")
def population():
    """400 patients of the synthetic cohort, pooled (one hospital's rows, train and test)."""
    c = load_dataset(DataConfig(n_samples=420, n_clients=1, test_fraction=0.05), seed=0).clients[0]
    X = torch.tensor(np.concatenate([c.X_train, c.X_test]))[:400]
    y = torch.tensor(np.concatenate([c.y_train, c.y_test]), dtype=torch.float64)[:400]
    return X, y


# An MLP that memorises: 200 patients, 9 features, 64 hidden units, 300 full-batch
# epochs at lr 1 — training accuracy 0.93-1.0, test accuracy ~0.78.
OVERFIT = dict(hidden=64, epochs=300, lr=1.0)


def overfit_model(n_features):
    return make_model("mlp", n_features=n_features, hidden=OVERFIT["hidden"])


# ---- scores --------------------------------------------------------------------
def test_loss_threshold_scores_are_minus_the_per_example_bce():
    g = torch.Generator().manual_seed(0)
    m = make_model("mlp", n_features=3, hidden=5)
    theta = m.init(g, torch.float64)
    X, y = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.tensor([0., 1, 1, 0, 1, 0, 0])
    z = m.apply(theta[None], X[None])[0]
    expected = -(y * -F.logsigmoid(z) + (1 - y) * -F.logsigmoid(-z))
    torch.testing.assert_close(loss_threshold_scores(m, theta, X, y), expected)


def test_logit_confidence_is_the_log_odds_of_the_true_label():
    g = torch.Generator().manual_seed(1)
    m = make_model("mlp", n_features=4, hidden=3)
    thetas = torch.stack([m.init(g, torch.float64) for _ in range(3)])
    X, y = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.tensor([0., 1, 1, 0, 1, 0])
    p1 = torch.sigmoid(m.apply(thetas, X.expand(3, -1, -1)))
    p_true = torch.where(y.bool(), p1, 1 - p1)
    torch.testing.assert_close(logit_confidence(m, thetas, X, y), torch.log(p_true / (1 - p_true)))


@pytest.mark.parametrize("n_shadow", [2, 5, 16])
def test_train_shadows_balances_records_and_trains_each_on_its_in_rows(n_shadow):
    X = torch.arange(30.0).view(10, 3)
    y = torch.arange(10.0)
    seen = {}

    def train(Xs, ys, n, generator):
        seen.update(X=Xs, y=ys, n=n)
        return torch.zeros(Xs.shape[0], 1)

    s = train_shadows(train, X, y, n_shadow=n_shadow, generator=torch.Generator().manual_seed(0))
    thetas, is_in = s
    assert thetas is s.thetas and is_in is s.is_in
    assert s.is_in.shape == (n_shadow, 10) and s.thetas.shape == (n_shadow, 1)
    assert (s.is_in.sum(0) == n_shadow // 2).all()
    assert torch.equal(seen["n"], s.is_in.sum(1))
    for k in range(n_shadow):
        rows = s.is_in[k].nonzero().squeeze(1)
        assert torch.equal(seen["X"][k, :len(rows)], X[rows])
        assert torch.equal(seen["y"][k, :len(rows)], y[rows])


def test_train_shadows_same_seed_same_split():
    def train(Xs, ys, n, g):
        return torch.rand(Xs.shape[0], 2, generator=g)
    a, b = (train_shadows(train, torch.ones(8, 1), torch.ones(8), n_shadow=4,
                          generator=torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(a.is_in, b.is_in) and torch.equal(a.thetas, b.thetas)


def hand_lira(**kwargs):
    # one feature x = 1, y = 1, logreg with zero bias: φ = w, so shadow rows are φ directly
    m = make_model("logreg", n_features=1)
    shadows = torch.tensor([[1.0, 0], [3.0, 0], [0.0, 0], [2.0, 0]])
    is_in = torch.tensor([[True], [True], [False], [False]])
    return lira_scores(m, torch.tensor([2.5, 0.0]), torch.ones(1, 1), torch.ones(1),
                       shadow_thetas=shadows, shadow_in=is_in, **kwargs)


def test_lira_online_is_the_gaussian_log_likelihood_ratio():
    # IN: φ = 1, 3 → N(2, 1); OUT: φ = 0, 2 → N(1, 1); target φ = 2.5
    expected = -0.5 * (2.5 - 2) ** 2 + 0.5 * (2.5 - 1) ** 2
    assert float(hand_lira()) == pytest.approx(expected)


def test_lira_offline_is_the_z_score_against_out_shadows():
    assert float(hand_lira(online=False)) == pytest.approx((2.5 - 1) / 1)


def test_lira_global_variance_pools_the_per_record_variances():
    m = make_model("logreg", n_features=1)
    X, y = torch.ones(2, 1), torch.tensor([1.0, 0.0])      # record 1: φ = −w
    shadows = torch.tensor([[0.0, 0], [2.0, 0], [0.0, 0], [4.0, 0]])
    is_in = torch.tensor([[True, False], [True, False], [False, True], [False, True]])
    # OUT φ: record 0 from shadows 2, 3 → {0, 4}: var 4; record 1 from 0, 1 → {0, −2}: var 1
    z = lira_scores(m, torch.tensor([1.0, 0.0]), X, y, shadow_thetas=shadows, shadow_in=is_in,
                    online=False, global_variance=True)
    torch.testing.assert_close(z, torch.tensor([(1 - 2) / math.sqrt(2.5), (-1 + 1) / math.sqrt(2.5)]))


def test_lira_identical_shadows_give_finite_tied_scores():
    m = make_model("logreg", n_features=2)
    X, y = torch.randn(6, 2, generator=torch.Generator().manual_seed(0)), torch.ones(6)
    is_in = torch.tensor([[True] * 6, [False] * 6])
    s = lira_scores(m, torch.zeros(3), X, y, shadow_thetas=torch.zeros(2, 3), shadow_in=is_in)
    assert torch.isfinite(s).all() and (s == s[0]).all()


def test_lira_needs_an_out_shadow_for_every_record():
    m = make_model("logreg", n_features=1)
    is_in = torch.tensor([[True, False], [True, True]])      # record 0 is IN for both
    with pytest.raises(ValueError, match="record 0 has no OUT shadow"):
        lira_scores(m, torch.zeros(2), torch.ones(2, 1), torch.ones(2),
                    shadow_thetas=torch.zeros(2, 2), shadow_in=is_in)
    with pytest.raises(ValueError, match=r"must be \(S, n\) = \(3, 2\)"):
        lira_scores(m, torch.zeros(2), torch.ones(2, 1), torch.ones(2),
                    shadow_thetas=torch.zeros(3, 2), shadow_in=is_in)


# ---- ROC, TPR at FPR, advantage ------------------------------------------------
def test_tpr_at_fpr_interpolates_between_roc_points():
    fpr, tpr = np.array([0.0, 0.1, 0.5, 1.0]), np.array([0.0, 0.5, 0.8, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.05) == pytest.approx(0.25)
    assert tpr_at_fpr(fpr, tpr, 0.3) == pytest.approx(0.65)
    assert tpr_at_fpr(fpr, tpr, 0.1) == pytest.approx(0.5)
    assert tpr_at_fpr(fpr, tpr, 1.0) == pytest.approx(1.0)


def test_tpr_at_fpr_takes_the_top_of_a_vertical_step():
    fpr = np.array([0.0, 0.0, 0.2, 0.2, 1.0])
    tpr = np.array([0.0, 0.3, 0.4, 0.9, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.0) == pytest.approx(0.3)
    assert tpr_at_fpr(fpr, tpr, 0.1) == pytest.approx(0.35)   # from (0, .3) to the foot (.2, .4)
    assert tpr_at_fpr(fpr, tpr, 0.2) == pytest.approx(0.9)
    assert tpr_at_fpr(fpr, tpr, 0.6) == pytest.approx(0.95)


def test_attack_roc_on_a_hand_case():
    # members 3, 2 and non-members 2.5, 1: ROC (0,0) (0,.5) (.5,.5) (.5,1) (1,1)
    r = attack_roc(np.array([3.0, 2.0, 2.5, 1.0]), np.array([True, True, False, False]))
    assert r.auc == pytest.approx(0.75)
    assert r.advantage == pytest.approx(0.5)
    assert r.tpr_at_fpr == {0.001: pytest.approx(0.5), 0.01: pytest.approx(0.5)}


def test_attack_roc_perfect_and_reversed_attacks():
    member = np.array([True] * 5 + [False] * 5)
    perfect = attack_roc(np.arange(10.0)[::-1].copy(), member)
    assert (perfect.auc, perfect.advantage, perfect.tpr_at_fpr[0.001]) == (1.0, 1.0, 1.0)
    reversed_ = attack_roc(np.arange(10.0), member)
    assert (reversed_.auc, reversed_.advantage, reversed_.tpr_at_fpr[0.01]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_attack_roc_matches_sklearn_and_brute_force_advantage(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=60), 1)     # rounding makes ties
    member = rng.random(60) < 0.4
    r = attack_roc(torch.tensor(scores), torch.tensor(member))
    assert r.auc == pytest.approx(roc_auc_score(member, scores), abs=1e-12)
    # advantage: the best threshold, tried one by one
    best = max(((scores >= t) & member).sum() / member.sum() - ((scores >= t) & ~member).sum()
               / (~member).sum() for t in np.append(scores, np.inf))
    assert r.advantage == pytest.approx(best, abs=1e-12)


def test_attack_roc_rejects_one_class_and_mismatched_shapes():
    with pytest.raises(ValueError, match="both members and non-members"):
        attack_roc(np.ones(3), np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="same 1-d shape"):
        attack_roc(np.ones(3), np.array([True, False]))


# ---- the DP region ---------------------------------------------------------------
@pytest.mark.parametrize("epsilon,delta", [(0.5, 0.0), (1.0, 1e-5), (3.0, 0.01), (8.0, 1e-3)])
def test_dp_roc_bound_shape(epsilon, delta):
    x = np.linspace(0, 1, 10_001)
    b = dp_roc_bound(x, epsilon=epsilon, delta=delta)
    assert (np.diff(b) >= 0).all()
    assert (b >= x - 1e-15).all() and (b <= 1).all()
    assert b[-1] == 1.0
    small = x[x <= 1e-4]
    np.testing.assert_allclose(dp_roc_bound(small, epsilon=epsilon, delta=delta),
                               np.minimum(math.exp(epsilon) * small + delta, 1.0))
    # the region maps into itself when "member" and "non-member" swap roles:
    # (FPR, TPR) -> (1 - TPR, 1 - FPR)
    assert (dp_roc_bound(1 - b, epsilon=epsilon, delta=delta) >= 1 - x - 1e-12).all()


def test_dp_bounds_survive_a_huge_epsilon():
    assert dp_advantage_bound(1000.0, 0.0) == 1.0
    np.testing.assert_array_equal(dp_roc_bound(np.array([0.0, 1e-9, 1.0]), epsilon=1000.0, delta=0.0),
                                  [0.0, 1.0, 1.0])


def test_dp_roc_bound_at_zero_epsilon_is_the_diagonal_plus_delta():
    x = np.array([0.0, 0.3, 0.9, 1.0])
    np.testing.assert_allclose(dp_roc_bound(x, epsilon=0.0, delta=0.05), [0.05, 0.35, 0.95, 1.0])
    assert dp_roc_bound(0.5, epsilon=1.0, delta=0.0) == pytest.approx(1 - math.exp(-1) * 0.5)


@pytest.mark.parametrize("epsilon,delta", [(0.0, 0.0), (0.1, 0.0), (1.0, 1e-5), (2.0, 0.1), (10.0, 0.0)])
def test_dp_advantage_bound_is_the_max_of_bound_minus_fpr(epsilon, delta):
    x = np.linspace(0, 1, 200_001)
    numeric = np.max(dp_roc_bound(x, epsilon=epsilon, delta=delta) - x)
    assert dp_advantage_bound(epsilon, delta) == pytest.approx(numeric, abs=1e-5)


# ---- bad input -------------------------------------------------------------------
def test_bad_arguments_name_the_argument_value_and_what_is_allowed():
    train = sgd_trainer(make_model("logreg", n_features=1), epochs=1, lr=0.1)
    g = torch.Generator()
    with pytest.raises(ValueError, match=r"n_shadow = 1 is not allowed: must be an integer of at least 2"):
        train_shadows(train, torch.ones(4, 1), torch.ones(4), n_shadow=1, generator=g)
    with pytest.raises(ValueError, match=r"n_shadow = 2.0 is not allowed"):
        train_shadows(train, torch.ones(4, 1), torch.ones(4), n_shadow=2.0, generator=g)
    with pytest.raises(ValueError, match=r"fpr = 1.5 is not allowed: must be in \[0, 1\]"):
        dp_roc_bound(np.array([0.2, 1.5]), epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match=r"fpr = -0.1 is not allowed: must be in \[0, 1\]"):
        tpr_at_fpr(np.array([0.0, 1.0]), np.array([0.0, 1.0]), -0.1)
    with pytest.raises(ValueError, match=r"epsilon = -1.0 is not allowed: must be a finite number ≥ 0"):
        dp_roc_bound(0.1, epsilon=-1.0, delta=0.0)
    with pytest.raises(ValueError, match=r"epsilon = nan is not allowed"):
        dp_advantage_bound(float("nan"), 0.0)
    for delta in (1.0, -0.01):
        with pytest.raises(ValueError, match=rf"delta = {delta} is not allowed: must be in \[0, 1\)"):
            dp_advantage_bound(1.0, delta)


# ---- end to end --------------------------------------------------------------------
def test_untrained_models_leak_nothing(population):
    """An untrained target (θ = its init) does not depend on who the members are: AUC ≈ 0.5."""
    X, y = population
    m = overfit_model(X.shape[1])
    aucs = {"loss": [], "lira": [], "lira (epochs=0 shadows)": []}
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        member = torch.zeros(len(y), dtype=torch.bool)
        member[torch.randperm(len(y), generator=g)[:len(y) // 2]] = True
        target = m.init(g, torch.float64)
        # the attacker's shadows are trained as if the target had been
        shadows = train_shadows(sgd_trainer(m, epochs=OVERFIT["epochs"], lr=OVERFIT["lr"]), X, y,
                                n_shadow=8, generator=g)
        lira = lira_scores(m, target, X, y, shadow_thetas=shadows.thetas, shadow_in=shadows.is_in)
        aucs["loss"].append(attack_roc(loss_threshold_scores(m, target, X, y), member).auc)
        aucs["lira"].append(attack_roc(lira, member).auc)
        out = membership_experiment(m, sgd_trainer(m, epochs=0, lr=1.0), X, y, n_shadow=8, generator=g)
        aucs["lira (epochs=0 shadows)"].append(out.lira.auc)
    for name, values in aucs.items():
        assert abs(np.mean(values) - 0.5) < 0.05, (name, values)


def test_an_overfit_model_leaks_and_lira_wins_at_low_fpr(population):
    X, y = population
    m = overfit_model(X.shape[1])
    train = sgd_trainer(m, epochs=OVERFIT["epochs"], lr=OVERFIT["lr"])
    runs = [membership_experiment(m, train, X, y, n_shadow=16, generator=torch.Generator().manual_seed(s))
            for s in range(2)]
    lira_auc = np.mean([r.lira.auc for r in runs])
    loss_auc = np.mean([r.loss.auc for r in runs])
    lira_tpr = np.mean([r.lira.tpr_at_fpr[0.01] for r in runs])
    loss_tpr = np.mean([r.loss.tpr_at_fpr[0.01] for r in runs])
    assert lira_auc > 0.6 and loss_auc > 0.55, (lira_auc, loss_auc)
    assert lira_tpr >= loss_tpr and lira_tpr > 0.03, (lira_tpr, loss_tpr)
    for r in runs:
        assert r.lira.advantage > 0.15 and int(r.is_member.sum()) == len(y) // 2
