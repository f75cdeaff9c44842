"""Malicious clients: hand-computed cases for each attack, contract tests over the
registry, and one end-to-end run where sign flipping breaks FedAvg but not the robust rules."""

import math

import pytest
import torch
from scipy.stats import norm

from fedlab_core import config as config_module
from fedlab_core.attacks import (
    DATA_ATTACKS, UPDATE_ATTACKS, alie, alie_z, apply_data_attack, apply_update_attack, attack_kwargs,
    choose_malicious, flip_labels, gaussian_update, scaled_update, sign_flip)
from fedlab_core.config import AttackConfig, ExperimentConfig

NAMES = sorted(UPDATE_ATTACKS)
KNOBS = {"sign_flip": {"scale": 3.0}, "scale": {"scale": 3.0}, "gaussian": {"noise_std": 2.0}, "alie": {}}


def run(name, deltas, malicious, seed=0):
    kwargs = dict(KNOBS[name])
    if name == "gaussian":
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    return UPDATE_ATTACKS[name](deltas, malicious, **kwargs)


def random_deltas(m=7, P=5, seed=0, dtype=torch.float64):
    return torch.randn(m, P, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---- registry ------------------------------------------------------------
def test_registries_cover_the_config_names_exactly():
    assert {"none", *DATA_ATTACKS, *UPDATE_ATTACKS} == set(config_module.ATTACKS)
    assert not set(DATA_ATTACKS) & set(UPDATE_ATTACKS)
    assert set(KNOBS) == set(UPDATE_ATTACKS)


@pytest.mark.parametrize("name", NAMES)
def test_no_malicious_row_returns_the_same_values(name):
    deltas = random_deltas()
    out = run(name, deltas, torch.zeros(7, dtype=torch.bool))
    assert torch.equal(out, deltas)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", range(3))
def test_honest_rows_untouched_malicious_rows_replaced(name, seed):
    deltas = random_deltas(seed=seed)
    malicious = torch.tensor([False, True, False, False, True, False, True])
    before = deltas.clone()
    out = run(name, deltas, malicious, seed)
    assert out.shape == deltas.shape and out.dtype == deltas.dtype
    assert torch.equal(out[~malicious], deltas[~malicious])
    assert not torch.equal(out[malicious], deltas[malicious])
    assert torch.equal(deltas, before), "the input must not be modified in place"


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    out = run(name, random_deltas(dtype=torch.float32), torch.tensor([True] + [False] * 6))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_malicious_mask_must_match_the_rows():
    with pytest.raises(ValueError, match="malicious"):
        sign_flip(torch.ones(3, 2), torch.tensor([True, False]), scale=1.0)
    with pytest.raises(ValueError, match="bool"):
        sign_flip(torch.ones(2, 2), torch.tensor([1, 0]), scale=1.0)


# ---- choose_malicious ----------------------------------------------------
def test_choose_malicious_count_shape_and_determinism():
    for n, f in [(1, 0), (1, 1), (10, 0), (10, 3), (10, 10)]:
        mask = choose_malicious(n, f, generator=torch.Generator().manual_seed(4))
        assert mask.dtype == torch.bool and mask.shape == (n,) and int(mask.sum()) == f
    a = choose_malicious(20, 5, generator=torch.Generator().manual_seed(7))
    b = choose_malicious(20, 5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_choose_malicious_is_roughly_uniform():
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([choose_malicious(5, 2, generator=g) for _ in range(4000)]).double()
    # each client is malicious with probability 2/5; sd of the mean ≈ sqrt(.24/4000) ≈ 0.008
    assert torch.allclose(draws.mean(dim=0), torch.full((5,), 0.4, dtype=torch.float64), atol=0.04)
    # without replacement: every draw has exactly 2, and all 10 pairs occur about equally often
    pairs = {}
    for row in draws.bool():
        key = tuple(row.nonzero().flatten().tolist())
        pairs[key] = pairs.get(key, 0) + 1
    assert len(pairs) == 10 and all(300 < c < 500 for c in pairs.values())


@pytest.mark.parametrize("n_clients, n_malicious, field", [
    (4, 5, "attack.n_malicious"), (4, -1, "attack.n_malicious"), (4, 1.5, "attack.n_malicious"),
    (4, True, "attack.n_malicious"), (0, 0, "data.n_clients")])
def test_choose_malicious_rejects_bad_counts(n_clients, n_malicious, field):
    with pytest.raises(ValueError, match=field):
        choose_malicious(n_clients, n_malicious, generator=torch.Generator().manual_seed(0))


# ---- label flipping ------------------------------------------------------
def test_flip_labels_by_hand():
    y = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    out = flip_labels(y, torch.tensor([False, True, False]))
    assert torch.equal(out, torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))
    assert torch.equal(flip_labels(y, torch.zeros(3, dtype=torch.bool)), y)
    assert torch.equal(apply_data_attack("label_flip", y, torch.tensor([False, True, False])), out)
    for name in ("none", *UPDATE_ATTACKS):
        assert apply_data_attack(name, y, torch.ones(3, dtype=torch.bool)) is y


# ---- sign flipping and scaling -------------------------------------------
def test_sign_flip_and_scale_by_hand():
    deltas = torch.tensor([[1.0, -2.0], [0.5, 4.0], [3.0, 0.0]])
    malicious = torch.tensor([False, True, True])
    assert torch.equal(sign_flip(deltas, malicious, scale=10.0),
                       torch.tensor([[1.0, -2.0], [-5.0, -40.0], [-30.0, 0.0]]))
    assert torch.equal(scaled_update(deltas, malicious, scale=10.0),
                       torch.tensor([[1.0, -2.0], [5.0, 40.0], [30.0, 0.0]]))


@pytest.mark.parametrize("fn", [sign_flip, scaled_update])
@pytest.mark.parametrize("scale", [-1.0, 0.0, math.nan, math.inf, True, "2"])
def test_bad_scale_names_the_field(fn, scale):
    with pytest.raises(ValueError, match="attack.scale"):
        fn(torch.ones(2, 2), torch.tensor([True, False]), scale=scale)


# ---- gaussian -------------------------------------------------------------
def test_gaussian_is_seeded_and_has_the_right_spread():
    deltas = torch.zeros(4, 20_000, dtype=torch.float64)
    malicious = torch.tensor([False, True, True, False])
    a = gaussian_update(deltas, malicious, noise_std=3.0, generator=torch.Generator().manual_seed(1))
    b = gaussian_update(deltas, malicious, noise_std=3.0, generator=torch.Generator().manual_seed(1))
    c = gaussian_update(deltas, malicious, noise_std=3.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    noise = a[malicious]
    assert abs(float(noise.mean())) < 0.05 and abs(float(noise.std()) - 3.0) < 0.05
    assert not torch.equal(noise[0], noise[1])  # each malicious client draws its own noise
    # the noise replaces the update: it does not depend on the honest value
    shifted = gaussian_update(deltas + 100.0, malicious, noise_std=3.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(shifted[malicious], noise)


@pytest.mark.parametrize("noise_std", [0.0, -1.0, math.nan])
def test_bad_noise_std_names_the_field(noise_std):
    with pytest.raises(ValueError, match="attack.noise_std"):
        gaussian_update(torch.ones(2, 2), torch.tensor([True, False]), noise_std=noise_std,
                        generator=torch.Generator().manual_seed(0))


# ---- a little is enough ----------------------------------------------------
def test_alie_z_for_ten_clients_two_malicious():
    # Baruch et al. (NeurIPS 2019), Algorithm 1: s = floor(n/2 + 1) - f and
    # z_max = Phi^{-1}((n - s)/n). For n = 10, f = 2: s = 6 - 2 = 4, (10 - 4)/10 = 0.6,
    # Phi^{-1}(0.6) = 0.2533471 (normal tables).
    assert alie_z(10, 2) == pytest.approx(0.2533471, abs=1e-6)
    assert alie_z(10, 2) == pytest.approx(norm.ppf(0.6), rel=1e-12)
    # n = 50, f = 12 (24 %): s = 26 - 12 = 14, Phi^{-1}(36/50)
    assert alie_z(50, 12) == pytest.approx(norm.ppf(0.72), rel=1e-12)


def test_alie_z_degenerate_cases_are_clamped():
    assert alie_z(10, 0) == 0.0      # nobody to attack (the formula would give z < 0)
    assert alie_z(1, 1) == 0.0       # one client: no spread to hide in
    assert alie_z(2, 1) == 0.0       # s = 1, Phi^{-1}(1/2) = 0
    # attackers already a majority: s = 6 - 6 = 0 would give z = inf; s is raised to 1
    assert alie_z(10, 6) == pytest.approx(norm.ppf(0.9), rel=1e-12)
    zs = [alie_z(10, f) for f in range(11)]
    assert all(math.isfinite(z) and z >= 0 for z in zs)
    assert zs == sorted(zs)          # more attackers need fewer supporters: a larger z


def test_alie_by_hand():
    # mu = (1, 2), population sd = (1, 2) over all four rows; z = 0.5: (1 - 0.5, 2 - 1)
    deltas = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]], dtype=torch.float64)
    malicious = torch.tensor([False, True, False, True])
    out = alie(deltas, malicious, z=0.5)
    expected = deltas.clone()
    expected[1] = expected[3] = torch.tensor([0.5, 1.0], dtype=torch.float64)
    assert torch.equal(out, expected)
    # default z is the paper's z_max for n = 4 rows, f = 2: s = 3 - 2 = 1, Phi^{-1}(3/4)
    z = norm.ppf(0.75)
    auto = alie(deltas, malicious)
    assert torch.allclose(auto[malicious], torch.tensor([1 - z, 2 - 2 * z], dtype=torch.float64).expand(2, -1))


def test_alie_every_row_malicious_is_finite():
    deltas = random_deltas(m=3)
    out = alie(deltas, torch.ones(3, dtype=torch.bool))
    z = alie_z(3, 3)
    assert torch.allclose(out, (deltas.mean(0) - z * deltas.std(0, correction=0)).expand(3, -1))
    one = alie(deltas[:1], torch.tensor([True]))       # one row: sigma = 0, the mean itself
    assert torch.equal(one, deltas[:1])


def test_alie_rejects_a_bad_z():
    with pytest.raises(ValueError, match="z"):
        alie(torch.ones(3, 2), torch.tensor([True, False, False]), z=math.inf)


# ---- the call the round loop makes ----------------------------------------
def test_attack_kwargs_reads_config_fields_by_name():
    cfg = AttackConfig(name="gaussian", n_malicious=1, scale=4.0, noise_std=0.5)
    g = torch.Generator()
    assert attack_kwargs("sign_flip", cfg) == {"scale": 4.0}
    assert attack_kwargs("scale", cfg) == {"scale": 4.0}
    assert attack_kwargs("gaussian", cfg, g) == {"noise_std": 0.5, "generator": g}
    assert attack_kwargs("alie", cfg) == {}
    assert attack_kwargs("none", cfg) == attack_kwargs("label_flip", cfg) == {}
    with pytest.raises(TypeError, match="Generator"):
        attack_kwargs("gaussian", cfg)
    with pytest.raises(ValueError, match="attack.name"):
        attack_kwargs("backdoor", cfg)


def test_apply_update_attack():
    deltas = random_deltas(m=4)
    malicious = torch.tensor([True, False, False, False])
    for name in ("none", "label_flip"):
        cfg = AttackConfig(name=name, n_malicious=1)
        assert apply_update_attack(name, deltas, malicious, config=cfg) is deltas
    cfg = AttackConfig(name="sign_flip", n_malicious=1, scale=2.0)
    assert torch.equal(apply_update_attack("sign_flip", deltas, malicious, config=cfg),
                       sign_flip(deltas, malicious, scale=2.0))
    # a round without a malicious participant: nothing changes and no random number is drawn
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    cfg = AttackConfig(name="gaussian", n_malicious=1)
    assert apply_update_attack("gaussian", deltas, torch.zeros(4, dtype=torch.bool), config=cfg,
                               generator=g) is deltas
    assert torch.equal(g.get_state(), state)
    with pytest.raises(ValueError, match="attack.name"):
        apply_update_attack("backdoor", deltas, malicious, config=cfg)


# ---- end to end: the lesson the attacks exist to teach ---------------------
def test_sign_flip_breaks_fedavg_but_not_robust_rules():
    """10 iid hospitals, 2 send -10 x their update every round, 20 rounds.

    The synthetic cohort is ~15 % positive, so "always negative" already scores
    ~0.85 accuracy and the attack-free logistic model is barely above that
    (0.849 measured, seed 0): accuracy alone cannot tell a good model from a
    useless one, and "chance" is ambiguous. The ranking is what the model
    learns, so the test reads AUC too: attack-free ~0.76, attacked FedAvg
    ~0.26 (worse than chance, 0.5: the flipped updates reverse the model, which
    then calls almost everyone positive, accuracy ~0.20). Measured at seed 0
    (clean / attacked accuracy, AUC): fedavg 0.849 0.763 / 0.197 0.261;
    fedmedian 0.853 0.764; trimmed_mean 0.852 0.762; krum 0.851 0.751;
    geometric_median 0.851 0.763 (attacked). Seeds 1 and 2 agree to ±0.02.
    """
    base = {"data.n_clients": 10, "data.partition": "iid", "data.n_samples": 4000,
            "federation.rounds": 20, "baselines": False}
    attack = {"attack.name": "sign_flip", "attack.n_malicious": 2, "attack.scale": 10.0}

    def final(aggregator, knobs=None, attacked=True):
        overrides = {**base, "federation.aggregator": aggregator, **(knobs or {}), **(attack if attacked else {})}
        history = Simulation(ExperimentConfig().with_overrides(overrides)).run()
        return history.series("global", "accuracy")[-1], history.series("global", "auc")[-1]

    from fedlab_core.simulation import Simulation

    clean_acc, clean_auc = final("fedavg", attacked=False)
    assert clean_acc > 0.8 and clean_auc > 0.7
    acc, auc = final("fedavg")
    assert auc <= 0.6 and acc <= clean_acc - 0.3, (acc, auc)
    for rule, knobs in [("fedmedian", {}), ("trimmed_mean", {"federation.trim_beta": 0.2}),
                        ("krum", {"federation.n_byzantine": 2}), ("geometric_median", {})]:
        acc, auc = final(rule, knobs)
        assert abs(acc - clean_acc) <= 0.03 and abs(auc - clean_auc) <= 0.03, (rule, acc, auc)
