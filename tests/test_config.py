"""Every config field rejects bad values with a message naming field, value and range."""

import pytest

from fedlab_core.config import ExperimentConfig, parse_value

BAD = [
    ("data.n_clients", 0, "at least 1|integer in \\[1"),
    ("data.n_clients", 2.5, "integer"),
    ("data.dataset", "mnist", "synthetic, breast_cancer, heart"),
    ("data.partition", "random", "natural, iid"),
    ("data.alpha", 0, "> 0"),
    ("data.alpha", -1.0, "> 0"),
    ("data.test_fraction", 0, "\\(0, 1\\)"),
    ("data.test_fraction", 1.0, "\\(0, 1\\)"),
    ("data.test_fraction", 1.5, "\\(0, 1\\)"),
    ("data.quantity_sigma", -0.1, "\\[0, 5\\]"),
    ("data.labels_per_client", 0, "≥ 1"),
    ("data.n_samples", 0, "integer in"),
    ("data.covariate_shift", 1.5, "\\[0, 1\\]"),
    ("data.label_shift", -0.5, "\\[0, 1\\]"),
    ("data.size_skew", 2, "\\[0, 1\\]"),
    ("data.measurement_bias", float("nan"), "finite"),
    ("data.label_noise", 0.6, "\\[0, 0.5\\]"),
    ("data.missing_rate", 0.95, "\\[0, 0.9\\]"),
    ("data.heart_preprocessing", "raw", "flamby"),
    ("model.name", "resnet", "logreg, mlp, cnn"),
    ("model.hidden", 0, "integer in"),
    ("model.channels", 0, "integer in"),
    ("data.scanner_shift", 1.5, "\\[0, 1\\]"),
    ("data.image_size", 4, "integer in \\[8, 64\\]"),
    ("personal.method", "maml", "finetune, fedper, fedbn, ditto"),
    ("personal.finetune_epochs", 0, "integer in"),
    ("personal.ditto_lambda", -1.0, "≥ 0"),
    ("train.local_epochs", 0, "integer in"),
    ("train.lr", 0, "> 0"),
    ("train.lr", -0.1, "> 0"),
    ("train.batch_size", -1, "≥ 0"),
    ("federation.rounds", 0, "integer in"),
    ("federation.aggregator", "fedmagic", "fedavg"),
    ("federation.client_fraction", 0.0, "\\(0, 1\\]"),
    ("federation.client_fraction", 1.2, "\\(0, 1\\]"),
    ("federation.server_lr", 0, "> 0"),
    ("federation.server_optimizer", "lamb", "sgd, momentum, adam, yogi, adagrad"),
    ("federation.server_momentum", 1.0, "\\[0, 1\\)"),
    ("federation.server_beta1", -0.1, "\\[0, 1\\)"),
    ("federation.server_beta2", 1.5, "\\[0, 1\\)"),
    ("federation.server_tau", 0, "> 0"),
    ("federation.n_byzantine", -1, "≥ 0"),
    ("federation.trim_beta", 0.5, "\\[0, 0.5\\)"),
    ("federation.multikrum_m", -2, "≥ 0"),
    ("federation.gm_iters", 0, "integer in"),
    ("federation.gm_eps", 0, "> 0"),
    ("federation.cc_tau", -1.0, "> 0"),
    ("federation.cc_iters", 0, "integer in"),
    ("federation.sampling", "random", "fixed, poisson"),
    ("federation.dropout_rate", 1.0, "\\[0, 1\\)"),
    ("federation.straggler_rate", 1.5, "\\[0, 1\\]"),
    ("federation.straggler_work", 0.0, "\\(0, 1\\]"),
    ("federation.n_regions", 9, "at most data.n_clients"),
    ("federation.compression", "zip", "none, topk, qsgd8"),
    ("federation.topk_fraction", 0.0, "\\(0, 1\\]"),
    ("federation.error_feedback", "yes", "true or false"),
    ("train.algorithm", "fedsgd", "fedavg, fedprox, scaffold, fednova"),
    ("train.prox_mu", -0.1, "≥ 0"),
    ("attack.name", "backdoor", "none, label_flip"),
    ("attack.n_malicious", 5, "at most data.n_clients"),
    ("attack.scale", 0, "> 0"),
    ("attack.noise_std", -1.0, "> 0"),
    ("stop.target_accuracy", 1.5, "\\(0, 1\\]"),
    ("stop.patience", 0, "≥ 1"),
    ("stop.min_delta", -1, "≥ 0"),
    ("stop.max_epsilon", 0, "> 0"),
    ("privacy.mechanism", "homomorphic", "none, central, local, dpsgd"),
    ("privacy.noise_multiplier", -1.0, "≥ 0"),
    ("privacy.clip", 0, "> 0"),
    ("privacy.clip", -1.0, "> 0"),
    ("privacy.target_epsilon", 0, "> 0"),
    ("privacy.target_epsilon", -2.0, "> 0"),
    ("privacy.delta", 1.0, "\\(0, 1\\)"),
    ("privacy.delta", 0, "\\(0, 1\\)"),
    ("privacy.adaptive_clip", "yes", "true or false"),
    ("privacy.target_quantile", 1.0, "\\(0, 1\\)"),
    ("privacy.clip_lr", 0, "> 0"),
    ("privacy.count_noise", 0, "> 0"),
    ("secure.protocol", "tls", "none, masking, paillier"),
    ("secure.clip", 0, "> 0"),
    ("secure.bits", 8, "16 or 32"),
    ("secure.threshold", 1, "at least 2"),
    ("secure.threshold", 9, "at most data.n_clients"),
    ("secure.graph", "ring", "complete, harary"),
    ("secure.degree", -1, "≥ 0"),
    ("secure.key_bits", 1000, "512, 1024"),
    ("secure.packed", "yes", "true or false"),
    ("seed", -1, "integer in"),
    ("baselines", "yes", "true or false"),
    ("dtype", "float16", "float32, float64"),
]


@pytest.mark.parametrize("key,value,allowed", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_value_names_field_value_and_range(key, value, allowed):
    with pytest.raises(ValueError, match=allowed) as err:
        ExperimentConfig().with_overrides({key: value})
    message = str(err.value)
    assert message.startswith(f"{key} = {value!r}")


def test_every_field_is_covered_by_a_bad_value_case():
    import dataclasses

    from fedlab_core.config import _SECTIONS

    fields = {f"{s}.{f.name}" for s, cls in _SECTIONS.items() for f in dataclasses.fields(cls)}
    fields |= {f.name for f in dataclasses.fields(ExperimentConfig) if f.name not in _SECTIONS}
    covered = {k for k, _, _ in BAD}
    # fields whose every value is legal or checked elsewhere
    free = {"data.heart_dir", "device"}
    assert fields - covered - free == set()


PRIVACY_CONFLICTS = [
    ({"stop.max_epsilon": 2.0}, "stop.max_epsilon = 2.0 .*needs a privacy mechanism"),
    ({"privacy.adaptive_clip": True, "privacy.mechanism": "dpsgd"},
     "privacy.adaptive_clip = True .*needs privacy.mechanism = 'central'"),
    ({"privacy.mechanism": "central", "federation.aggregator": "krum"},
     "federation.aggregator = 'krum' .*DP mean"),
    ({"privacy.mechanism": "central", "federation.client_fraction": 0.5},
     "federation.sampling = 'fixed' .*Poisson"),
    ({"privacy.mechanism": "local", "train.algorithm": "scaffold"},
     "train.algorithm = 'scaffold' .*control variates"),
    ({"privacy.mechanism": "central", "train.algorithm": "fednova"}, "train.algorithm = 'fednova'"),
    ({"privacy.mechanism": "central", "federation.n_regions": 2}, "federation.n_regions = 2"),
    ({"secure.protocol": "masking", "federation.aggregator": "fedmedian"},
     "federation.aggregator = 'fedmedian' .*compare individual updates"),
    ({"secure.protocol": "paillier", "federation.compression": "topk"},
     "federation.compression = 'topk' .*dense"),
    ({"secure.protocol": "masking", "train.algorithm": "scaffold"}, "train.algorithm = 'scaffold'"),
    ({"secure.protocol": "masking", "federation.n_regions": 2}, "federation.n_regions = 2"),
]


@pytest.mark.parametrize("overrides,message", PRIVACY_CONFLICTS)
def test_privacy_settings_that_would_void_the_guarantee_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig().with_overrides(overrides)


def test_central_dp_with_poisson_sampling_is_allowed():
    cfg = ExperimentConfig().with_overrides({"privacy.mechanism": "central", "federation.sampling": "poisson",
                                             "federation.client_fraction": 0.5})
    assert ExperimentConfig.from_toml(cfg.to_toml()) == cfg


def test_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match="train.momentum = 0.9 is not allowed: unknown setting"):
        ExperimentConfig().with_overrides({"train.momentum": 0.9})
    with pytest.raises(ValueError, match="unknown setting"):
        ExperimentConfig.from_dict({"trian": {}})


def test_heart_natural_needs_four_hospitals():
    with pytest.raises(ValueError, match="data.n_clients = 5 .*exactly 4"):
        ExperimentConfig().with_overrides({"data.dataset": "heart", "data.n_clients": 5})


def test_toml_round_trip():
    cfg = ExperimentConfig().with_overrides({"train.lr": 0.05, "stop.patience": 3,
                                             "data.dataset": "breast_cancer", "data.partition": "iid"})
    assert ExperimentConfig.from_toml(cfg.to_toml()) == cfg


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5
    assert parse_value("false") is False and parse_value("mlp") == "mlp"
    assert parse_value('"a b"') == "a b"


@pytest.mark.parametrize("overrides,key,reason", [
    ({"model.name": "cnn"}, "model.name", "reads images"),
    ({"data.dataset": "scans", "model.name": "cnn", "privacy.mechanism": "dpsgd"},
     "privacy.mechanism", "batch norm mixes"),
    ({"personal.method": "fedper"}, "personal.method", "all head"),
    ({"personal.method": "fedbn", "model.name": "mlp"}, "personal.method", "has none"),
    ({"personal.method": "fedper", "model.name": "mlp", "train.algorithm": "scaffold"},
     "train.algorithm", "stays at home"),
])
def test_model_and_personalisation_mismatches_are_refused_with_the_reason(overrides, key, reason):
    with pytest.raises(ValueError, match=reason) as err:
        ExperimentConfig().with_overrides(overrides)
    assert str(err.value).startswith(f"{key} = ")
