"""The round loop: sample clients, train locally, aggregate, evaluate, record.

``Simulation.step()`` runs one round and returns its ``RoundRecord``;
``Simulation.run()`` loops until a stopping rule fires. A run that is stopped
(``request_stop()``, a callback, Ctrl-C) keeps its history and can go on with
another ``run()``.

>>> from fedlab_core.config import ExperimentConfig
>>> cfg = ExperimentConfig().with_overrides({"data.n_samples": 400, "federation.rounds": 3})
>>> sim = Simulation(cfg)
>>> history = sim.run()
>>> len(history), history.stop_reason
(3, 'round limit 3 reached')
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from typing import Callable, Iterable

import numpy as np
import torch

from fedlab_core.aggregate import aggregator_kwargs, get_aggregator
from fedlab_core.client import full_steps, local_train
from fedlab_core.compression import compress, download_bytes
from fedlab_core.config import ExperimentConfig
from fedlab_core.data import load_dataset
from fedlab_core.data.base import FederatedDataset
from fedlab_core.federation import Federation
from fedlab_core.hierarchy import assign_regions, hierarchical
from fedlab_core.history import History, RoundRecord
from fedlab_core.metrics import client_metrics, pooled_metrics
from fedlab_core.models import make_model
from fedlab_core import personalise
from fedlab_core.participation import drop_out, sample_fixed, sample_poisson, straggler_budget
from fedlab_core.privacy.dpsgd import dp_local_train, dp_steps
from fedlab_core.privacy.mechanisms import adaptive_clip, dp_fedavg, local_dp
from fedlab_core.server_opt import make_server_optimizer
from fedlab_core.stopping import check_stop

Tensor = torch.Tensor
Callback = Callable[[RoundRecord, "Simulation"], "bool | None"]


SEED_STREAMS = ("data", "init", "sample", "batch", "baselines", "failures", "attack",
                "compression", "privacy", "secure", "personal")


def seed_streams(seed: int) -> dict[str, np.random.SeedSequence]:
    """The run's independent random streams, by name, from its one seed.

    Independent so that e.g. switching baselines off leaves the federated run's
    randomness (and so its numbers) unchanged. ``spawn(n)`` keeps the first
    children the same as ``n`` grows, so a new stream goes at the end and earlier
    runs keep their numbers. A Flower deployment's server draws from the same
    streams, which is what makes it equal the simulation.
    """
    return dict(zip(SEED_STREAMS, np.random.SeedSequence(seed).spawn(len(SEED_STREAMS))))


def torch_generator(seed_seq: np.random.SeedSequence) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed_seq.generate_state(1, dtype=np.uint64)[0] >> 1))


# Below this many training numbers a round is a few milliseconds of tiny
# tensor ops, where a second OpenMP thread only adds synchronisation: on a
# busy 2-core machine (a classroom laptop, Binder, a notebook beside a
# browser) it turned 3 ms rounds into 230 ms spikes (measured). Such
# federations compute on one thread.
SMALL_FEDERATION = 1_000_000


@contextlib.contextmanager
def _threads_for(federation: Federation, model_name: str = "logreg"):
    # a convolution does hundreds of operations per number: images are never "small"
    small = (federation.X_train.numel() < SMALL_FEDERATION and model_name != "cnn"
             and federation.X_train.device.type == "cpu")
    before = torch.get_num_threads()
    if not small or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device = {name!r} is not allowed: use a torch device such as 'cpu' or 'cuda'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device = {name!r} is not allowed: this machine has no CUDA GPU; use 'cpu'")
    return device


class Simulation:
    """One federated experiment, advanced a round at a time.

    Parameters
    ----------
    config : the experiment (defaults to ``ExperimentConfig()``).
    dataset : an already-built ``FederatedDataset`` to use instead of loading
        ``config.data`` (for notebooks that edit the data by hand).
    """

    def __init__(self, config: ExperimentConfig | None = None, *,
                 dataset: FederatedDataset | None = None) -> None:
        self.config = config = config or ExperimentConfig()
        (data_ss, init_ss, sample_ss, batch_ss, base_ss, fail_ss, attack_ss,
         compress_ss, privacy_ss, secure_ss, personal_ss) = seed_streams(config.seed).values()
        self.dataset = dataset if dataset is not None else load_dataset(
            config.data, seed=int(data_ss.generate_state(1)[0]))
        dtype = getattr(torch, config.dtype)
        self.federation = Federation.from_dataset(self.dataset, dtype=dtype, device=_device(config.device))
        self.model = make_model(config.model.name, n_features=self.federation.n_features,
                                hidden=config.model.hidden, channels=config.model.channels)
        self.aggregator = get_aggregator(config.federation.aggregator)
        self.aggregator_kwargs = aggregator_kwargs(config.federation.aggregator, config.federation)
        self.server_opt = make_server_optimizer(config.federation)

        self.theta = self.model.init(torch_generator(init_ss), dtype).to(self.federation.X_train.device)
        self.server_state = self.server_opt.init(self.theta)
        self._sample_rng = np.random.default_rng(sample_ss)
        self._fail_rng = np.random.default_rng(fail_ss)
        self._batch_gen = torch_generator(batch_ss)
        self._attack_gen = torch_generator(attack_ss)
        self._compress_gen = torch_generator(compress_ss)
        self._privacy_gen = torch_generator(privacy_ss)
        # keys and masks of secure aggregation, seeded from the run's seed so that a
        # teaching run is reproducible (the protocol functions alone default to the
        # operating system's randomness, as real use must)
        self._secure_rng = np.random.default_rng(secure_ss) if config.secure.protocol != "none" else None
        self._key_authority = None   # Paillier's key holder, made at the first secure round

        K, fc = self.federation.n_clients, config.federation
        # a robust rule's knobs must fit the number of clients in a round (Krum
        # needs K > 2f + 2): ask the rule itself now, not in round 1
        m = self._n_participants()
        self.aggregator(torch.zeros(m, 1), torch.ones(m), **self.aggregator_kwargs)
        self.regions = assign_regions(K, fc.n_regions) if fc.n_regions else None
        if config.train.algorithm == "scaffold":
            # control variates: the server's c and each client's c_k (Karimireddy et al. 2020)
            self.control = torch.zeros_like(self.theta)
            self.client_controls = torch.zeros(K, self.theta.numel(), dtype=dtype,
                                               device=self.theta.device)
            n = self.federation.n_train.to(dtype)
            self._control_weights = (n / n.sum() if fc.aggregator == "fedavg"
                                     else torch.full_like(n, 1.0 / K))
        self.residuals = (torch.zeros(K, self.theta.numel(), dtype=dtype, device=self.theta.device)
                          if fc.compression != "none" and fc.error_feedback else None)
        self.malicious = torch.zeros(K, dtype=torch.bool)
        self._train_federation = self.federation
        if config.attack.name != "none":
            from fedlab_core import attacks

            self.malicious = attacks.choose_malicious(K, config.attack.n_malicious,
                                                      generator=self._attack_gen)
            if config.attack.name == "label_flip":
                # poisoned training labels for the whole run; test sets stay honest
                self._train_federation = dataclasses.replace(
                    self.federation,
                    y_train=attacks.flip_labels(self.federation.y_train, self.malicious))
        self._pooled = self.federation.pooled()
        if config.baselines:
            self._baseline_gen = torch_generator(base_ss)
            self.local_only_thetas = self.theta.expand(K, -1).clone()
            self.central_theta = self.theta.unsqueeze(0).clone()

        # personalisation: the hospitals' own models (FedPer/FedBN: only their kept
        # entries matter; Ditto: whole models), fedlab_core.personalise
        self.keep = personalise.kept_at_home(self.model, config.personal.method)
        self.personal = (self.theta.expand(K, -1).clone()
                         if config.personal.method in ("fedper", "fedbn", "ditto") else None)
        self._personal_gen = torch_generator(personal_ss)

        self.privacy = None
        if config.privacy.mechanism != "none":
            from fedlab_core.privacy.budget import plan_privacy

            self.privacy = plan_privacy(config, n_train=self.federation.n_train.cpu())

        self.history = History(config=config.to_dict(), client_names=list(self.federation.client_names),
                               malicious=torch.nonzero(self.malicious).flatten().tolist(),
                               privacy=None if self.privacy is None else self.privacy.summary(),
                               client_test_sizes=self.federation.n_test.tolist())
        self.done = False
        self._stop_requested = threading.Event()

    @property
    def round(self) -> int:
        """Rounds completed so far."""
        return len(self.history)

    # ---- one round ------------------------------------------------------
    def _n_participants(self) -> int:
        """Clients expected in a round (the exact count under fixed sampling)."""
        K = self.federation.n_clients
        return min(K, max(1, int(round(self.config.federation.client_fraction * K))))

    def sample_clients(self) -> np.ndarray:
        """This round's sampled clients: fixed-size or Poisson (``federation.sampling``)."""
        fc, K = self.config.federation, self.federation.n_clients
        if fc.sampling == "poisson":
            return sample_poisson(K, fraction=fc.client_fraction, rng=self._sample_rng)
        return sample_fixed(K, fraction=fc.client_fraction, rng=self._sample_rng)

    def _train(self, thetas, fed: Federation, generator, **extra):
        t = self.config.train
        return local_train(self.model, thetas, fed.X_train, fed.y_train, fed.n_train,
                           epochs=t.local_epochs, lr=t.lr, batch_size=t.batch_size,
                           generator=generator, **extra)

    def step(self) -> RoundRecord:
        """Run one round and return its record."""
        with _threads_for(self.federation, self.model.name):
            return self._step()

    def _step(self) -> RoundRecord:
        if self.done:
            raise RuntimeError(f"this run has ended ({self.history.stop_reason}); "
                               "start a new Simulation, or raise federation.rounds")
        start = time.perf_counter()
        fed, model, K = self.federation, self.model, self.federation.n_clients
        fc, tc = self.config.federation, self.config.train

        # 1. who takes part: sampled, minus the ones whose update never arrives
        sampled = self.sample_clients()
        arrived, dropped = drop_out(sampled, rate=fc.dropout_rate, rng=self._fail_rng)
        record = RoundRecord(round=self.round + 1, participants=arrived.tolist(),
                             global_pooled={}, global_clients=[], local_clients=[None] * K,
                             dropped=dropped.tolist(), bytes_up=[0] * K, bytes_down=[0] * K)
        # every sampled client downloads the global model (and SCAFFOLD's c with it)
        vectors = 2 if tc.algorithm == "scaffold" else 1
        for k in sampled.tolist():
            record.bytes_down[k] = vectors * download_bytes(self.theta.numel())
        if len(arrived):
            self._federated_round(arrived, record)
        elif self.privacy is not None and self.privacy.mechanism == "central":
            # the server publishes its noisy sum even when it is empty, so that a
            # round without hospitals looks like any other
            self._central_dp_step(torch.zeros(0, self.theta.numel(), dtype=self.theta.dtype,
                                              device=self.theta.device), record)
        else:
            record.note = "no update arrived this round: the global model is unchanged"
        if self.privacy is not None:
            self._account(arrived, record)

        # 2. evaluate the new global model on every client's test set
        global_logits = model.apply(self.global_model().expand(K, -1), fed.X_test)
        record.global_pooled = pooled_metrics(global_logits, fed.y_test, fed.n_test)
        record.global_clients = client_metrics(global_logits, fed.y_test, fed.n_test)
        if self.config.personal.method != "none":
            record.personal_clients = client_metrics(model.apply(self.personal_models(), fed.X_test),
                                                     fed.y_test, fed.n_test)
        if self.config.baselines:
            self._baselines_step(record)
        record.seconds = time.perf_counter() - start
        self.history.append(record)

        losses = self.history.series("global", "loss")
        epsilon_next = (self.privacy.epsilon_next_round()
                        if self.privacy is not None and self.config.stop.max_epsilon is not None else None)
        reason = check_stop(self.history.series("global", "accuracy"), losses, self.config.stop,
                            round=self.round, max_rounds=fc.rounds, epsilon_next=epsilon_next,
                            epsilon_now=record.epsilon)
        if reason:
            record.stop_reason = reason
            self.history.stop_reason = reason
            self.done = True
        return record

    def _federated_round(self, arrived: np.ndarray, record: RoundRecord) -> None:
        """Local training, attacks, compression, aggregation and the server step, for the
        clients whose update arrives; fills ``record``'s local metrics and bytes."""
        fc, tc, cfg = self.config.federation, self.config.train, self.config
        K, m = self.federation.n_clients, len(arrived)
        index = torch.as_tensor(arrived)
        train_fed = self._train_federation if m == K else self._train_federation.subset(index)

        # stragglers finish only part of their local steps
        dpsgd = self.privacy is not None and self.privacy.mechanism == "dpsgd"
        steps = (dp_steps if dpsgd else full_steps)(train_fed.n_train, epochs=tc.local_epochs,
                                                    batch_size=tc.batch_size)
        budget, slow = straggler_budget(steps.cpu().numpy(), rate=fc.straggler_rate,
                                        work=fc.straggler_work, rng=self._fail_rng)
        record.stragglers = arrived[slow].tolist()
        extra = {"max_steps": torch.as_tensor(budget, device=steps.device)} if slow.any() else {}
        # FedPer/FedBN: each hospital starts from the global model with its own kept entries
        start = (self.theta.expand(m, -1) if self.keep is None
                 else personalise.combine(self.theta, self.personal[index], self.keep))
        if tc.algorithm == "fedprox":
            extra.update(prox_mu=tc.prox_mu, anchor=start)
        if tc.algorithm == "scaffold":
            extra["correction"] = self.control - self.client_controls[index]
        if dpsgd:
            local = dp_local_train(self.model, start, train_fed.X_train,
                                   train_fed.y_train, train_fed.n_train, epochs=tc.local_epochs,
                                   lr=tc.lr, batch_size=tc.batch_size, clip=self.privacy.clip,
                                   noise_multiplier=self.privacy.noise_multiplier,
                                   generator=self._privacy_gen, **extra)
            self._dp_steps_taken = local.steps.cpu().numpy()
        else:
            local = self._train(start, train_fed, self._batch_gen, **extra)
        if self.config.personal.method == "ditto":
            # Ditto's personal models: the same local epochs on f_k(v) + λ/2 ||v - w||²
            self.personal[index] = personalise.ditto(
                self.model, self.personal[index], self.theta, train_fed.X_train, train_fed.y_train,
                train_fed.n_train, lam=self.config.personal.ditto_lambda, epochs=tc.local_epochs,
                lr=tc.lr, batch_size=tc.batch_size, generator=self._personal_gen)
        elif self.keep is not None:
            self.personal[index] = local.thetas

        # what each client's own model scores on its own (honest) test set
        test_fed = self.federation if m == K else self.federation.subset(index)
        scores = client_metrics(self.model.apply(local.thetas, test_fed.X_test),
                                test_fed.y_test, test_fed.n_test)
        for i, k in enumerate(arrived.tolist()):
            record.local_clients[k] = scores[i]
        weights = train_fed.n_train.to(local.thetas.dtype)
        record.train_loss = float((local.loss * weights).sum() / weights.sum())

        if tc.algorithm == "scaffold":
            self._update_controls(index, local)

        deltas = local.thetas - start
        if self.keep is not None:   # the kept entries never leave the hospital
            deltas = deltas.masked_fill(self.keep.to(deltas.device), 0.0)
        malicious = self.malicious[index]
        if cfg.attack.name not in ("none", "label_flip") and malicious.any():
            from fedlab_core import attacks

            deltas = attacks.apply_update_attack(cfg.attack.name, deltas, malicious,
                                                 config=cfg.attack, generator=self._attack_gen)
        if self.privacy is not None and self.privacy.mechanism == "local":
            # each hospital protects its own update before it leaves (then compresses
            # it: compression after noise is post-processing and costs no privacy)
            deltas = local_dp(deltas, clip=self.privacy.clip,
                              noise_multiplier=self.privacy.noise_multiplier,
                              generator=self._privacy_gen)
        deltas, up = self._compress(index, deltas)
        if tc.algorithm == "scaffold":   # each client also sends its change of c_k, dense
            up = up + download_bytes(self.theta.numel())
        for i, k in enumerate(arrived.tolist()):
            record.bytes_up[k] = int(up[i])

        if tc.algorithm == "fednova":
            # FedNova (Wang et al., NeurIPS 2020): average the per-step directions
            # Delta_k / tau_k, then take tau_eff = sum_k p_k tau_k steps of it
            tau = local.steps.to(deltas.dtype)
            p = weights / weights.sum()
            deltas = deltas / tau.unsqueeze(1)
            scale = float(p @ tau)
        else:
            scale = 1.0
        if cfg.secure.protocol != "none":
            self._secure_step(arrived, deltas, weights, record)
            return
        if self.privacy is not None and self.privacy.mechanism == "central":
            self._central_dp_step(deltas, record)
            return
        try:
            if self.regions is None:
                aggregate = self.aggregator(deltas, weights, **self.aggregator_kwargs)
            else:
                aggregate = hierarchical(deltas, weights, self.regions[index], self.aggregator,
                                         **self.aggregator_kwargs)
        except ValueError as err:
            # e.g. dropouts left fewer updates than Krum needs: keep the model, say why
            record.note = f"the server kept the model unchanged: {err}"
            return
        self.theta, self.server_state = self.server_opt.step(self.theta, scale * aggregate,
                                                             self.server_state)

    def global_model(self) -> Tensor:
        """The model evaluated as "global": the server's, or under FedPer/FedBN the one a
        new hospital would start from (``personalise.newcomer``)."""
        if self.keep is None:
            return self.theta
        return personalise.newcomer(self.theta, self.personal, self.keep,
                                    self.federation.n_train.to(self.theta.dtype))

    def personal_models(self) -> Tensor:
        """Each hospital's own model ``(K, P)`` under ``personal.method``."""
        method, tc = self.config.personal.method, self.config.train
        if method == "finetune":
            fed = self._train_federation
            return personalise.fine_tune(self.model, self.theta, fed.X_train, fed.y_train,
                                         fed.n_train, epochs=self.config.personal.finetune_epochs,
                                         lr=tc.lr, batch_size=tc.batch_size,
                                         generator=self._personal_gen)
        if method == "ditto":
            return self.personal
        if method in ("fedper", "fedbn"):
            return personalise.combine(self.theta, self.personal, self.keep)
        raise ValueError("personal.method = 'none': this run keeps no personal models")

    def _central_dp_step(self, deltas: Tensor, record: RoundRecord) -> None:
        """DP-FedAvg at the server: the clipped, noised mean, then (adaptive) a new clip norm."""
        plan = self.privacy
        record.clip = plan.clip
        aggregate = dp_fedavg(deltas, clip=plan.clip, noise_multiplier=plan.update_noise_multiplier,
                              expected_clients=plan.expected_clients, generator=self._privacy_gen)
        if self.config.privacy.adaptive_clip:
            p = self.config.privacy
            plan.clip = adaptive_clip(plan.clip, norms=torch.linalg.vector_norm(deltas, dim=1),
                                      expected_clients=plan.expected_clients,
                                      target_quantile=p.target_quantile, lr=p.clip_lr,
                                      count_noise=plan.count_noise, generator=self._privacy_gen)
        self.theta, self.server_state = self.server_opt.step(self.theta, aggregate, self.server_state)

    def _secure_step(self, arrived: np.ndarray, deltas: Tensor, weights: Tensor,
                     record: RoundRecord) -> None:
        """The server learns only the (weighted) sum, through ``secure.protocol``.

        Every sampled hospital starts the protocol; the dropped ones leave after
        sharing their keys. Under central DP each hospital clips its own update
        (the server cannot) and the server noises the sum it recovers.
        """
        from fedlab_core.privacy.mechanisms import clip_to_norm, noisy_mean
        from fedlab_core.secure.rounds import secure_weighted_sum

        cfg, fed = self.config, self.federation
        sampled = np.sort(np.concatenate([arrived, np.asarray(record.dropped, dtype=arrived.dtype)]))
        rows = torch.zeros(len(sampled), deltas.shape[1], dtype=deltas.dtype, device=deltas.device)
        is_arrived = torch.as_tensor(np.isin(sampled, arrived))
        central = self.privacy is not None and self.privacy.mechanism == "central"
        if central:
            deltas, _ = clip_to_norm(deltas, clip=self.privacy.clip)
            scales = torch.ones(len(sampled), dtype=deltas.dtype)
        elif cfg.federation.aggregator == "fedavg":
            # public weights n_k / N, so that every scaled update stays within the clip range
            n = fed.n_train.to(deltas.dtype).cpu()
            scales = n[torch.as_tensor(sampled)] / n.sum()
        else:
            scales = torch.full((len(sampled),), 1.0 / fed.n_clients, dtype=deltas.dtype)
        rows[is_arrived.to(rows.device)] = deltas
        seed = int(self._secure_rng.integers(2**63))
        if cfg.secure.protocol == "paillier" and self._key_authority is None:
            from fedlab_core.secure.paillier import KeyAuthority

            # one key pair for the run, held by a party that is not the server
            self._key_authority = KeyAuthority(key_bits=cfg.secure.key_bits,
                                               min_clients=min(2, fed.n_clients))
        try:
            result = secure_weighted_sum(rows, scales, arrived=is_arrived, config=cfg.secure,
                                         seed=seed, authority=self._key_authority,
                                         names=[fed.client_names[k] for k in sampled.tolist()])
        except ValueError as err:
            # e.g. fewer survivors than the threshold: the sum cannot be recovered this round,
            # but what the hospitals sent before that still counts
            sent = getattr(err, "bytes_up", None)
            for i, k in enumerate(sampled.tolist() if sent is not None else []):
                record.bytes_up[k] = sent[i]
            record.note = f"the server kept the model unchanged: {err}"
            return
        record.secure_seconds = result.seconds
        for i, k in enumerate(sampled.tolist()):
            record.bytes_up[k] = result.bytes_up[i]
        if result.clipped:
            record.note = (f"{result.clipped} update values were clipped into the encoding range "
                           f"±{cfg.secure.clip:g} (raise secure.clip)")
        if central:
            record.clip = self.privacy.clip
            aggregate = noisy_mean(result.total, clip=self.privacy.clip,
                                   noise_multiplier=self.privacy.noise_multiplier,
                                   expected_clients=self.privacy.expected_clients,
                                   generator=self._privacy_gen)
        else:
            aggregate = result.total / scales[is_arrived].sum().to(result.total.device)
        self.theta, self.server_state = self.server_opt.step(self.theta, aggregate, self.server_state)

    def _account(self, arrived: np.ndarray, record: RoundRecord) -> None:
        """Charge this round to the ledger and write the ε meter into the record."""
        plan = self.privacy
        if plan.mechanism == "central":
            spent = np.ones(1, dtype=np.int64)   # every round, whoever was sampled
        else:
            spent = np.zeros(self.federation.n_clients, dtype=np.int64)
            if len(arrived):
                # dropped hospitals trained but published nothing: nothing to charge
                spent[arrived] = (self._dp_steps_taken if plan.mechanism == "dpsgd" else 1)
        plan.ledger.spend(spent)
        eps = plan.ledger.epsilons()
        record.epsilon = float(eps.max())
        if plan.mechanism != "central":
            record.epsilon_clients = eps.tolist()

    def _update_controls(self, index: Tensor, local) -> None:
        """SCAFFOLD, option II (Karimireddy et al. 2020):
        ``c_k+ = c_k - c + (theta - theta_k) / (steps_k * lr)``, and the server adds
        ``sum_{k in S} p_k (c_k+ - c_k)`` to ``c``.

        The paper weighs every client the same (``p_k = 1/N``). Its ``c`` then
        estimates the *unweighted* average gradient, and the corrections steer
        every client towards the optimum of the unweighted objective, even when
        the server averages updates by patients: measured on very unequal
        hospitals, SCAFFOLD then landed where FedAvg with ``unweighted_mean``
        lands. So ``p_k`` follows the aggregator: patients' share of all training
        rows for ``fedavg``, ``1/N`` otherwise.
        """
        lr = self.config.train.lr
        old = self.client_controls[index]
        steps = local.steps.clamp(min=1).to(old.dtype).unsqueeze(1)
        new = old - self.control + (self.theta - local.thetas) / (steps * lr)
        self.client_controls[index] = new
        self.control = self.control + self._control_weights[index] @ (new - old)

    def _compress(self, index: Tensor, deltas: Tensor) -> tuple[Tensor, Tensor]:
        """What the clients send: their (possibly compressed) updates and its size in bytes."""
        fc = self.config.federation
        residual = None if self.residuals is None else self.residuals[index]
        sent, new_residual, up = compress(fc.compression, deltas, residual=residual, config=fc,
                                          generator=self._compress_gen)
        if self.residuals is not None and new_residual is not None:
            self.residuals[index] = new_residual
        return sent, up

    def _baselines_step(self, record: RoundRecord) -> None:
        """Advance the local-only and centralised models by the same epochs, and score them."""
        fed, pooled, model, K = self.federation, self._pooled, self.model, self.federation.n_clients
        self.local_only_thetas = self._train(self.local_only_thetas, fed, self._baseline_gen).thetas
        self.central_theta = self._train(self.central_theta, pooled, self._baseline_gen).thetas
        record.local_only_clients = client_metrics(
            model.apply(self.local_only_thetas, fed.X_test), fed.y_test, fed.n_test)
        pooled_X = pooled.X_test.expand(K, -1, -1)
        record.local_only_pooled = client_metrics(
            model.apply(self.local_only_thetas, pooled_X), pooled.y_test.expand(K, -1),
            pooled.n_test.expand(K))
        record.central_pooled = client_metrics(
            model.apply(self.central_theta, pooled.X_test), pooled.y_test, pooled.n_test)[0]

    # ---- the loop -------------------------------------------------------
    def request_stop(self) -> None:
        """Ask a running ``run()`` (possibly in another thread) to return after this round."""
        self._stop_requested.set()

    def run(self, *, callbacks: Iterable[Callback] = (), max_rounds: int | None = None,
            progress: str | None = None) -> History:
        """Run rounds until a stopping rule fires, ``max_rounds`` more rounds are done,
        a callback returns ``True``, ``request_stop()`` is called, or Ctrl-C.

        Whatever stops the run, the rounds done so far stay in ``history``.
        ``progress``: a label; in a notebook, a line under the cell counts the rounds
        (``fedlab_core.progress``; nothing elsewhere).
        """
        self._stop_requested.clear()
        callbacks = list(callbacks)
        done_here = 0
        line = None
        if progress is not None:
            from fedlab_core.progress import ProgressLine

            left = self.config.federation.rounds - self.round
            line = ProgressLine(f"{progress}: rounds", total=left if max_rounds is None
                                else min(left, max_rounds))
        try:
            while not self.done and (max_rounds is None or done_here < max_rounds):
                if self._stop_requested.is_set():
                    self.history.stop_reason = f"stopped by user after round {self.round}"
                    break
                record = self.step()
                done_here += 1
                if line is not None:
                    line.advance()
                if any([cb(record, self) is True for cb in callbacks]):
                    self.history.stop_reason = f"stopped by a callback after round {self.round}"
                    break
        except KeyboardInterrupt:
            self.history.stop_reason = f"interrupted after round {self.round}"
        finally:
            if line is not None:
                # a stopping rule may end the run before the round limit: the line says why
                early = line.done < (line.total or 0)
                line.close(note=(self.history.stop_reason or "stopped") if early else None)
        return self.history
