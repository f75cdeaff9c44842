"""Experiment configuration: frozen dataclasses, validated where they are built.

Every knob of an experiment lives here, with its default and its allowed
range. A bad value raises ``ValueError`` naming the field, the value and what
is allowed, so the same message reaches a notebook, the CLI and a test.

>>> cfg = ExperimentConfig()
>>> cfg.data.n_clients, cfg.federation.aggregator
(4, 'fedavg')
>>> cfg2 = cfg.with_overrides({"train.lr": 0.05, "data.n_clients": 6})
>>> cfg2.train.lr, cfg2.data.n_clients
(0.05, 6)
>>> ExperimentConfig.from_dict(cfg2.to_dict()) == cfg2
True
>>> TrainConfig(lr=0)
Traceback (most recent call last):
...
ValueError: train.lr = 0 is not allowed: must be > 0
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

DATASETS = ("synthetic", "breast_cancer", "heart", "scans")
PARTITIONS = ("natural", "iid", "dirichlet", "quantity", "pathological")
MODELS = ("logreg", "mlp", "cnn")
# fedlab_core.personalise: what each hospital keeps for itself
PERSONALISATION = ("none", "finetune", "fedper", "fedbn", "ditto")
HEART_PREPROCESSING = ("flamby",)
# fedlab_core.server_opt.SERVER_OPTIMIZERS holds the functions (a test keeps the two in step)
SERVER_OPTIMIZERS = ("sgd", "momentum", "adam", "yogi", "adagrad")
# client-side algorithms (fedlab_core.client): the local loss or the aggregation weights change
ALGORITHMS = ("fedavg", "fedprox", "scaffold", "fednova")
SAMPLING = ("fixed", "poisson")
ATTACKS = ("none", "label_flip", "sign_flip", "scale", "gaussian", "alie")
COMPRESSIONS = ("none", "topk", "qsgd8")
# fedlab_core.privacy: who is protected, and by whom (see PrivacyConfig)
PRIVACY_MECHANISMS = ("none", "central", "local", "dpsgd")
# fedlab_core.secure: how the server gets the sum without seeing any one update
SECURE_PROTOCOLS = ("none", "masking", "paillier")
SECURE_GRAPHS = ("complete", "harary")


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"{name} = {value!r} is not allowed: {allowed}")


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(name, value, "must be an integer")
    if value < lo or (hi is not None and value > hi):
        _fail(name, value, f"must be an integer ≥ {lo}" if hi is None
              else f"must be an integer in [{lo}, {hi}]")


def _check_real(name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(name, value, "must be a finite number")
    if lo is not None and (value <= lo if lo_open else value < lo):
        if hi is None:
            _fail(name, value, f"must be {'>' if lo_open else '≥'} {lo:g}")
        _fail(name, value, _interval(lo, hi, lo_open, hi_open))
    if hi is not None and (value >= hi if hi_open else value > hi):
        _fail(name, value, _interval(lo, hi, lo_open, hi_open))


def _interval(lo, hi, lo_open, hi_open) -> str:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    lo_s = "-∞" if lo is None else f"{lo:g}"
    return f"must be in {left}{lo_s}, {hi:g}{right}"


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(name, value, f"choose one of {', '.join(choices)}")


@dataclass(frozen=True)
class DataConfig:
    """Which patients, and how they are split across hospitals.

    ``partition='natural'`` keeps the dataset's own hospitals (the synthetic
    cohort's hospital profiles, the four real heart-disease sites, the scan
    hospitals' scanners); the other partitions pool the rows and re-split them.
    The ``scans`` dataset reads ``n_samples``, ``label_shift``, ``size_skew``,
    ``scanner_shift`` and ``image_size`` (``datasets/synthetic-scans.md``).
    """

    dataset: str = "synthetic"
    n_clients: int = 4
    partition: str = "natural"
    test_fraction: float = 0.25
    # partitioner knobs
    alpha: float = 0.5                 # dirichlet: label concentration, small = skewed
    quantity_sigma: float = 1.0        # quantity: log-normal sigma of hospital sizes
    labels_per_client: int = 1         # pathological: distinct labels per hospital
    # synthetic cohort knobs (see datasets/synthetic-cardiovascular.md)
    n_samples: int = 4000
    covariate_shift: float = 0.5
    label_shift: float = 0.5
    size_skew: float = 0.5
    measurement_bias: float = 0.0
    label_noise: float = 0.0
    missing_rate: float = 0.0
    # synthetic scans knobs (see datasets/synthetic-scans.md)
    scanner_shift: float = 0.5         # 0 = identical scanners, 1 = strongly different
    image_size: int = 32               # pixels a side; features = image_size²
    # real heart data
    heart_dir: str | None = None
    heart_preprocessing: str = "flamby"

    def __post_init__(self) -> None:
        _check_choice("data.dataset", self.dataset, DATASETS)
        _check_int("data.n_clients", self.n_clients, 1, 10_000)
        _check_choice("data.partition", self.partition, PARTITIONS)
        _check_real("data.test_fraction", self.test_fraction, lo=0, hi=1, lo_open=True, hi_open=True)
        _check_real("data.alpha", self.alpha, lo=0, lo_open=True)
        _check_real("data.quantity_sigma", self.quantity_sigma, lo=0, hi=5)
        _check_int("data.labels_per_client", self.labels_per_client, 1)
        _check_int("data.n_samples", self.n_samples, 1, 10_000_000)
        for knob in ("covariate_shift", "label_shift", "size_skew", "measurement_bias"):
            _check_real(f"data.{knob}", getattr(self, knob), lo=0, hi=1)
        _check_real("data.label_noise", self.label_noise, lo=0, hi=0.5)
        _check_real("data.missing_rate", self.missing_rate, lo=0, hi=0.9)
        _check_real("data.scanner_shift", self.scanner_shift, lo=0, hi=1)
        # 64² = 4096 features is as far as a classroom laptop stays interactive
        _check_int("data.image_size", self.image_size, 8, 64)
        if self.heart_dir is not None and not isinstance(self.heart_dir, str):
            _fail("data.heart_dir", self.heart_dir, "must be a folder path or empty")
        _check_choice("data.heart_preprocessing", self.heart_preprocessing, HEART_PREPROCESSING)
        if self.dataset == "heart" and self.partition == "natural" and self.n_clients != 4:
            _fail("data.n_clients", self.n_clients,
                  "the heart data has exactly 4 natural hospitals; use 4, or another partition")
        if self.n_samples < self.n_clients and self.dataset in ("synthetic", "scans"):
            _fail("data.n_samples", self.n_samples,
                  f"must be at least data.n_clients = {self.n_clients} (one patient per hospital)")


@dataclass(frozen=True)
class ModelConfig:
    """The model every hospital trains: logistic regression, a one-hidden-layer MLP
    (``hidden`` units), or a small CNN with batch norm for images (``channels``
    filters in its first layer, ``fedlab_core.cnn``)."""

    name: str = "logreg"
    hidden: int = 16
    channels: int = 8

    def __post_init__(self) -> None:
        _check_choice("model.name", self.name, MODELS)
        _check_int("model.hidden", self.hidden, 1, 4096)
        _check_int("model.channels", self.channels, 1, 256)


@dataclass(frozen=True)
class TrainConfig:
    """Local training at each hospital (plain SGD).

    ``batch_size = 0`` means full batch: one gradient step per local epoch.
    """

    local_epochs: int = 1
    lr: float = 0.5
    batch_size: int = 0
    algorithm: str = "fedavg"      # fedprox: + mu/2 ||theta - theta_global||^2; scaffold; fednova
    prox_mu: float = 0.01

    def __post_init__(self) -> None:
        _check_int("train.local_epochs", self.local_epochs, 1, 1000)
        _check_real("train.lr", self.lr, lo=0, lo_open=True)
        _check_int("train.batch_size", self.batch_size, 0)
        _check_choice("train.algorithm", self.algorithm, ALGORITHMS)
        _check_real("train.prox_mu", self.prox_mu, lo=0)
        if self.algorithm == "fedprox" and self.lr * self.prox_mu >= 2:
            # the proximal pull alone multiplies theta - anchor by (1 - lr * mu) each step
            _fail("train.prox_mu", self.prox_mu,
                  f"with train.lr = {self.lr:g}, FedProx diverges unless lr * mu < 2 "
                  f"(mu < {2 / self.lr:g})")


@dataclass(frozen=True)
class PersonalConfig:
    """What each hospital keeps for itself (``fedlab_core.personalise``).

    ``finetune``: the global model, fine-tuned on the hospital's own rows for
    ``finetune_epochs``; ``fedper``: a personal output layer (Arivazhagan et
    al. 2019); ``fedbn``: personal batch-norm layers (Li et al., ICLR 2021);
    ``ditto``: a personal model pulled towards the global one with strength
    ``ditto_lambda`` (Li et al., ICML 2021; 0 = purely local, large = global).
    """

    method: str = "none"
    finetune_epochs: int = 1
    ditto_lambda: float = 0.1

    def __post_init__(self) -> None:
        _check_choice("personal.method", self.method, PERSONALISATION)
        _check_int("personal.finetune_epochs", self.finetune_epochs, 1, 1000)
        _check_real("personal.ditto_lambda", self.ditto_lambda, lo=0)


@dataclass(frozen=True)
class FederationConfig:
    """The server: how many rounds, who takes part, how updates are combined.

    ``server_optimizer`` turns the aggregate into a step: ``sgd`` (FedAvg),
    ``momentum`` (FedAvgM), ``adam``, ``yogi``, ``adagrad`` (Reddi et al. 2021).
    ``server_lr = None`` takes the optimiser's usual rate: 1 for sgd and
    momentum, 0.1 for the adaptive ones.

    The robust aggregators read their knobs from here by name (see
    ``fedlab_core.aggregate``): ``n_byzantine`` (f, for krum, multi_krum,
    bulyan), ``trim_beta`` (trimmed_mean), ``multikrum_m`` (0 = K − f),
    ``gm_iters``/``gm_eps`` (geometric_median), ``cc_tau``/``cc_iters``
    (centered_clipping). Whether f fits the number of participating clients
    is checked when the simulation is built.
    """

    rounds: int = 30
    aggregator: str = "fedavg"
    client_fraction: float = 1.0
    server_optimizer: str = "sgd"
    server_lr: float | None = None
    server_momentum: float = 0.9
    server_beta1: float = 0.9
    server_beta2: float = 0.99
    server_tau: float = 1e-3
    n_byzantine: int = 1
    trim_beta: float = 0.1
    multikrum_m: int = 0
    gm_iters: int = 100
    gm_eps: float = 1e-6
    cc_tau: float = 1.0
    cc_iters: int = 3
    # participation: who takes part, who fails, who is slow
    sampling: str = "fixed"        # fixed: round(fraction * K) clients; poisson: each with prob. fraction
    dropout_rate: float = 0.0      # share of sampled clients whose update never arrives
    straggler_rate: float = 0.0    # share of sampled clients that do only part of their local work
    straggler_work: float = 0.5    # the part of their local steps that stragglers finish
    n_regions: int = 0             # 0: flat; else hospital -> region -> national server
    # what travels up: compression of the clients' updates
    compression: str = "none"
    topk_fraction: float = 0.1
    error_feedback: bool = True

    def __post_init__(self) -> None:
        _check_int("federation.rounds", self.rounds, 1, 100_000)
        # imported here: the registry imports torch, the config must stay light
        from fedlab_core.aggregate import AGGREGATORS

        _check_choice("federation.aggregator", self.aggregator, tuple(AGGREGATORS))
        _check_real("federation.client_fraction", self.client_fraction, lo=0, hi=1, lo_open=True)
        _check_choice("federation.server_optimizer", self.server_optimizer, SERVER_OPTIMIZERS)
        if self.server_lr is not None:
            _check_real("federation.server_lr", self.server_lr, lo=0, lo_open=True)
        _check_real("federation.server_momentum", self.server_momentum, lo=0, hi=1, hi_open=True)
        _check_real("federation.server_beta1", self.server_beta1, lo=0, hi=1, hi_open=True)
        _check_real("federation.server_beta2", self.server_beta2, lo=0, hi=1, hi_open=True)
        _check_real("federation.server_tau", self.server_tau, lo=0, lo_open=True)
        _check_int("federation.n_byzantine", self.n_byzantine, 0)
        _check_real("federation.trim_beta", self.trim_beta, lo=0, hi=0.5, hi_open=True)
        _check_int("federation.multikrum_m", self.multikrum_m, 0)
        _check_int("federation.gm_iters", self.gm_iters, 1, 10_000)
        _check_real("federation.gm_eps", self.gm_eps, lo=0, lo_open=True)
        _check_real("federation.cc_tau", self.cc_tau, lo=0, lo_open=True)
        _check_int("federation.cc_iters", self.cc_iters, 1, 1000)
        _check_choice("federation.sampling", self.sampling, SAMPLING)
        _check_real("federation.dropout_rate", self.dropout_rate, lo=0, hi=1, hi_open=True)
        _check_real("federation.straggler_rate", self.straggler_rate, lo=0, hi=1)
        _check_real("federation.straggler_work", self.straggler_work, lo=0, hi=1, lo_open=True)
        _check_int("federation.n_regions", self.n_regions, 0)
        _check_choice("federation.compression", self.compression, COMPRESSIONS)
        _check_real("federation.topk_fraction", self.topk_fraction, lo=0, hi=1, lo_open=True)
        if not isinstance(self.error_feedback, bool):
            _fail("federation.error_feedback", self.error_feedback, "must be true or false")


@dataclass(frozen=True)
class AttackConfig:
    """Malicious hospitals (``fedlab_core.attacks``): ``n_malicious`` of them, drawn
    with the run's seed, attack every round they take part in.

    ``label_flip`` poisons their training labels; the others replace their
    update: ``sign_flip`` sends ``-scale * delta``, ``scale`` sends
    ``scale * delta`` (model replacement), ``gaussian`` sends noise of sd
    ``noise_std``, ``alie`` sends "a little is enough" (Baruch et al. 2019).
    """

    name: str = "none"
    n_malicious: int = 0
    scale: float = 10.0
    noise_std: float = 1.0

    def __post_init__(self) -> None:
        _check_choice("attack.name", self.name, ATTACKS)
        _check_int("attack.n_malicious", self.n_malicious, 0)
        _check_real("attack.scale", self.scale, lo=0, lo_open=True)
        _check_real("attack.noise_std", self.noise_std, lo=0, lo_open=True)


@dataclass(frozen=True)
class PrivacyConfig:
    """Differential privacy: which mechanism, how much noise, how much clipping.

    ``mechanism``:

    - ``none``: no protection (the updates themselves can leak patients).
    - ``dpsgd``: sample-level DP-SGD inside every hospital (Abadi et al. 2016):
      per-patient gradients clipped to ``clip``, Gaussian noise
      ``noise_multiplier · clip``, Poisson batches of expected size
      ``train.batch_size`` (0: the whole hospital). Protects one patient record.
    - ``central``: client-level DP-FedAvg (McMahan et al. 2018): the server clips
      each hospital's update to ``clip``, adds noise to the sum and divides by the
      expected number of hospitals. Protects a whole hospital; the server is
      trusted. ``adaptive_clip`` lets ``clip`` track the ``target_quantile`` of
      update norms (Andrew et al. 2021, rate ``clip_lr``, count noise
      ``count_noise``, default expected hospitals / 20).
    - ``local``: each hospital clips and noises its own update before sending
      (noise ``noise_multiplier · 2 · clip``). Protects a hospital from everyone.

    ``target_epsilon`` calibrates ``noise_multiplier`` so that
    ``federation.rounds`` rounds spend exactly that ε (replacing the value
    given). ``delta = None`` picks a δ well below 1/N (``default_delta``).
    """

    mechanism: str = "none"
    noise_multiplier: float = 1.0
    clip: float = 1.0
    target_epsilon: float | None = None
    delta: float | None = None
    adaptive_clip: bool = False
    target_quantile: float = 0.5
    clip_lr: float = 0.2
    count_noise: float | None = None

    def __post_init__(self) -> None:
        _check_choice("privacy.mechanism", self.mechanism, PRIVACY_MECHANISMS)
        _check_real("privacy.noise_multiplier", self.noise_multiplier, lo=0)
        _check_real("privacy.clip", self.clip, lo=0, lo_open=True)
        if self.target_epsilon is not None:
            _check_real("privacy.target_epsilon", self.target_epsilon, lo=0, lo_open=True)
        if self.delta is not None:
            _check_real("privacy.delta", self.delta, lo=0, hi=1, lo_open=True, hi_open=True)
        if not isinstance(self.adaptive_clip, bool):
            _fail("privacy.adaptive_clip", self.adaptive_clip, "must be true or false")
        _check_real("privacy.target_quantile", self.target_quantile, lo=0, hi=1, lo_open=True,
                    hi_open=True)
        _check_real("privacy.clip_lr", self.clip_lr, lo=0, lo_open=True)
        if self.count_noise is not None:
            _check_real("privacy.count_noise", self.count_noise, lo=0, lo_open=True)
        if self.adaptive_clip and self.mechanism != "central":
            _fail("privacy.adaptive_clip", True, "needs privacy.mechanism = 'central' "
                  f"(it tracks the norms of whole updates at the server), not {self.mechanism!r}")


@dataclass(frozen=True)
class SecureConfig:
    """Secure aggregation: the server learns the sum of the updates, not any one of them.

    ``protocol``:

    - ``none``: the server sees every hospital's update.
    - ``masking``: pairwise masks that cancel in the sum (Bonawitz et al. 2017),
      with Shamir shares so the sum survives dropouts: at least ``threshold``
      of the round's hospitals must stay (0: two thirds of them, rounded up).
      ``graph = "harary"`` masks only with ``degree`` neighbours (SecAgg+,
      Bell et al. 2020; 0: about 2·log2 n).
    - ``paillier``: each hospital encrypts its update under a key held by a
      third party that is not the server (Paillier 1999); ``packed`` puts
      several values in one ciphertext; ``key_bits`` the modulus size.

    Updates are clipped to ``[-clip, clip]`` per coordinate and encoded in
    fixed point in Z_(2^bits) (``fedlab_core.secure.quantize``).
    """

    protocol: str = "none"
    clip: float = 1.0
    bits: int = 32
    threshold: int = 0
    graph: str = "complete"
    degree: int = 0
    key_bits: int = 2048
    packed: bool = True

    def __post_init__(self) -> None:
        _check_choice("secure.protocol", self.protocol, SECURE_PROTOCOLS)
        _check_real("secure.clip", self.clip, lo=0, lo_open=True)
        if self.bits not in (16, 32):
            _fail("secure.bits", self.bits, "choose 16 or 32")
        _check_int("secure.threshold", self.threshold, 0)
        if self.threshold == 1:
            _fail("secure.threshold", 1, "must be at least 2 (0 = two thirds of the round's hospitals): "
                  "with 1 share a single hospital could rebuild another's secret")
        _check_choice("secure.graph", self.graph, SECURE_GRAPHS)
        _check_int("secure.degree", self.degree, 0)
        if self.key_bits not in (512, 1024, 2048, 3072):
            _fail("secure.key_bits", self.key_bits, "choose 512, 1024 (demos only), 2048 or 3072")
        if not isinstance(self.packed, bool):
            _fail("secure.packed", self.packed, "must be true or false")


@dataclass(frozen=True)
class StopConfig:
    """Stopping rules besides the round limit.

    ``target_accuracy``: stop once the global model's pooled test accuracy
    reaches it. ``max_epsilon``: stop before the round that would take the
    privacy meter past this ε (needs a privacy mechanism). ``patience``: stop when the pooled test loss has not improved
    by more than ``min_delta`` for that many rounds (a plateau).
    """

    target_accuracy: float | None = None
    patience: int | None = None
    min_delta: float = 1e-3
    max_epsilon: float | None = None   # privacy budget: stop before a round would spend more

    def __post_init__(self) -> None:
        if self.max_epsilon is not None:
            _check_real("stop.max_epsilon", self.max_epsilon, lo=0, lo_open=True)
        if self.target_accuracy is not None:
            _check_real("stop.target_accuracy", self.target_accuracy, lo=0, hi=1, lo_open=True)
        if self.patience is not None:
            _check_int("stop.patience", self.patience, 1)
        _check_real("stop.min_delta", self.min_delta, lo=0)


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment. Round-trips through ``to_dict``/``from_dict`` and TOML."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    stop: StopConfig = field(default_factory=StopConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    secure: SecureConfig = field(default_factory=SecureConfig)
    personal: PersonalConfig = field(default_factory=PersonalConfig)
    seed: int = 0
    baselines: bool = True
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0, 2**63 - 1)
        if not isinstance(self.baselines, bool):
            _fail("baselines", self.baselines, "must be true or false")
        _check_choice("dtype", self.dtype, ("float32", "float64"))
        if not isinstance(self.device, str) or not self.device:
            _fail("device", self.device, "must be a torch device name such as 'cpu' or 'cuda'")
        if self.attack.n_malicious > self.data.n_clients:
            _fail("attack.n_malicious", self.attack.n_malicious,
                  f"must be at most data.n_clients = {self.data.n_clients}")
        if self.attack.name != "none" and self.attack.n_malicious == 0:
            _fail("attack.n_malicious", 0, f"attack.name = {self.attack.name!r} needs at least 1 "
                  "malicious hospital (or set attack.name = 'none')")
        if self.federation.n_regions > self.data.n_clients:
            _fail("federation.n_regions", self.federation.n_regions,
                  f"must be at most data.n_clients = {self.data.n_clients} (0 = no regions)")
        self._check_privacy()
        self._check_secure()
        self._check_model()

    def _check_model(self) -> None:
        """The model must fit the data, and the personalisation the model."""
        name, method = self.model.name, self.personal.method
        if name == "cnn" and self.data.dataset != "scans":
            _fail("model.name", name, f"reads images, and data.dataset = {self.data.dataset!r} is a "
                  "table of features: use data.dataset = 'scans', or logreg / mlp")
        if name == "cnn" and self.privacy.mechanism == "dpsgd":
            _fail("privacy.mechanism", "dpsgd", "cannot train the CNN: batch norm mixes the patients of "
                  "a batch, so one patient's gradient cannot be clipped on its own (Opacus refuses "
                  "batch norm too); use central or local DP, or model.name = 'mlp'")
        if method == "fedper" and name == "logreg":
            _fail("personal.method", method, "needs a model with a body and a head: logistic "
                  "regression is all head (FedPer would be local-only training); use mlp or cnn")
        if method == "fedbn" and name != "cnn":
            _fail("personal.method", method, f"keeps batch-norm layers local, and model.name = {name!r} "
                  "has none: use model.name = 'cnn'")
        if method in ("fedper", "fedbn") and self.train.algorithm in ("scaffold", "fednova"):
            _fail("train.algorithm", self.train.algorithm, f"cannot run with personal.method = "
                  f"{method!r}: it corrects or rescales the whole model, part of which stays at home")

    def _check_secure(self) -> None:
        """Secure aggregation hides single updates: rules that need to see them are refused."""
        sc, fc, protocol = self.secure, self.federation, self.secure.protocol
        if sc.threshold > self.data.n_clients:
            _fail("secure.threshold", sc.threshold,
                  f"must be at most data.n_clients = {self.data.n_clients} (0 = two thirds of the round)")
        if protocol == "none":
            return
        if fc.aggregator not in ("fedavg", "unweighted_mean"):
            _fail("federation.aggregator", fc.aggregator,
                  f"with secure.protocol = {protocol!r} the server only ever learns a sum: use fedavg or "
                  "unweighted_mean (median, Krum and the other robust rules compare individual updates, "
                  "which is exactly what secure aggregation hides)")
        if fc.compression != "none":
            _fail("federation.compression", fc.compression,
                  f"must be 'none' with secure.protocol = {protocol!r}: masked or encrypted updates "
                  "are dense, there is nothing left to sparsify or round")
        if fc.n_regions:
            _fail("federation.n_regions", fc.n_regions,
                  f"must be 0 with secure.protocol = {protocol!r} (one secure sum over all hospitals)")
        if self.train.algorithm in ("scaffold", "fednova"):
            _fail("train.algorithm", self.train.algorithm,
                  f"cannot run with secure.protocol = {protocol!r}: it sends per-hospital extras "
                  "(control variates, step counts) outside the secure sum")
        if self.privacy.adaptive_clip:
            _fail("privacy.adaptive_clip", True,
                  f"is not available with secure.protocol = {protocol!r}: the server would need each "
                  "update's norm, which secure aggregation hides (use a fixed privacy.clip)")

    def _check_privacy(self) -> None:
        """Combinations whose privacy guarantee would not hold are refused, saying why."""
        p, fc, mech = self.privacy, self.federation, self.privacy.mechanism
        if self.stop.max_epsilon is not None and mech == "none":
            _fail("stop.max_epsilon", self.stop.max_epsilon,
                  "needs a privacy mechanism (privacy.mechanism = 'none' spends no budget)")
        if mech in ("central", "local") and self.train.algorithm == "scaffold":
            _fail("train.algorithm", "scaffold", f"cannot run with privacy.mechanism = {mech!r}: "
                  "its control variates would travel without noise")
        if mech != "central":
            return
        if fc.aggregator not in ("fedavg", "unweighted_mean"):
            _fail("federation.aggregator", fc.aggregator,
                  "with privacy.mechanism = 'central' the server computes the DP mean "
                  "(fedavg or unweighted_mean); robust rules need a different noise calibration")
        if fc.n_regions:
            _fail("federation.n_regions", fc.n_regions,
                  "must be 0 with privacy.mechanism = 'central' (the noise is added once, at the top)")
        if self.train.algorithm == "fednova":
            _fail("train.algorithm", "fednova", "cannot run with privacy.mechanism = 'central': "
                  "its normalised updates have a different sensitivity")
        if fc.client_fraction < 1 and fc.sampling != "poisson":
            _fail("federation.sampling", fc.sampling,
                  "with privacy.mechanism = 'central' and client_fraction < 1 the accountant "
                  "assumes Poisson sampling of hospitals: set federation.sampling = 'poisson', "
                  "so the sampling simulated is the sampling accounted for")

    # ---- conversion -----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExperimentConfig":
        d = dict(d)
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in sections:
                _fail(key, value, f"unknown setting; known: {', '.join(sections)}")
            sub = _SECTIONS.get(key)
            if sub is None:
                kwargs[key] = value
            else:
                if not isinstance(value, Mapping):
                    _fail(key, value, "must be a table of settings")
                kwargs[key] = _build(sub, key, value)
        return cls(**kwargs)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "ExperimentConfig":
        """Return a copy with dotted keys replaced: ``{"train.lr": 0.1}``."""
        d = self.to_dict()
        for dotted, value in overrides.items():
            head, _, tail = dotted.partition(".")
            if head not in d:
                _fail(dotted, value, f"unknown setting; sections are {', '.join(d)}")
            if tail:
                if not isinstance(d[head], dict) or tail not in d[head]:
                    known = ", ".join(f"{head}.{k}" for k in d[head]) if isinstance(d[head], dict) else head
                    _fail(dotted, value, f"unknown setting; known: {known}")
                d[head][tail] = value
            else:
                d[head] = value
        return ExperimentConfig.from_dict(d)

    def to_toml(self) -> str:
        import tomli_w

        def drop_none(x):
            if isinstance(x, dict):
                return {k: drop_none(v) for k, v in x.items() if v is not None}
            return x

        return tomli_w.dumps(drop_none(self.to_dict()))

    @classmethod
    def from_toml(cls, text: str) -> "ExperimentConfig":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        return cls.from_dict(tomllib.loads(text))


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "federation": FederationConfig,
    "stop": StopConfig,
    "attack": AttackConfig,
    "privacy": PrivacyConfig,
    "secure": SecureConfig,
    "personal": PersonalConfig,
}


def _build(cls, section: str, values: Mapping[str, Any]):
    known = {f.name for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in known:
            _fail(f"{section}.{key}", value, f"unknown setting; known: {', '.join(sorted(known))}")
    return cls(**values)


def parse_value(text: str) -> Any:
    """Parse a ``--set key=value`` right-hand side as a TOML value, else a string.

    >>> parse_value("0.1"), parse_value("true"), parse_value("fedavg"), parse_value("none")
    (0.1, True, 'fedavg', None)
    """
    if text.strip().lower() in ("none", "null", ""):
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except Exception:
        return text
