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
import threading
import time
from typing import Callable, Iterable

import numpy as np
import torch

from fedlab_core.aggregate import aggregator_kwargs, get_aggregator
from fedlab_core.client import local_train
from fedlab_core.config import ExperimentConfig
from fedlab_core.data import load_dataset
from fedlab_core.data.base import FederatedDataset
from fedlab_core.federation import Federation
from fedlab_core.history import History, RoundRecord
from fedlab_core.metrics import client_metrics, pooled_metrics
from fedlab_core.models import make_model
from fedlab_core.server_opt import make_server_optimizer
from fedlab_core.stopping import check_stop

Callback = Callable[[RoundRecord, "Simulation"], "bool | None"]


def _torch_generator(seed_seq: np.random.SeedSequence) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed_seq.generate_state(1, dtype=np.uint64)[0] >> 1))


# Below this many training numbers a round is a few milliseconds of tiny
# tensor ops, where a second OpenMP thread only adds synchronisation: on a
# busy 2-core machine (a classroom laptop, Binder, a notebook beside a
# browser) it turned 3 ms rounds into 230 ms spikes (measured). Such
# federations compute on one thread.
SMALL_FEDERATION = 1_000_000


@contextlib.contextmanager
def _threads_for(federation: Federation):
    small = federation.X_train.numel() < SMALL_FEDERATION and federation.X_train.device.type == "cpu"
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
        # independent streams, so that e.g. switching baselines off leaves the
        # federated run's randomness (and so its numbers) unchanged
        data_ss, init_ss, sample_ss, batch_ss, base_ss = np.random.SeedSequence(config.seed).spawn(5)
        self.dataset = dataset if dataset is not None else load_dataset(
            config.data, seed=int(data_ss.generate_state(1)[0]))
        dtype = getattr(torch, config.dtype)
        self.federation = Federation.from_dataset(self.dataset, dtype=dtype, device=_device(config.device))
        self.model = make_model(config.model.name, n_features=self.federation.n_features,
                                hidden=config.model.hidden)
        self.aggregator = get_aggregator(config.federation.aggregator)
        self.aggregator_kwargs = aggregator_kwargs(config.federation.aggregator, config.federation)
        self.server_opt = make_server_optimizer(config.federation)

        self.theta = self.model.init(_torch_generator(init_ss), dtype).to(self.federation.X_train.device)
        self.server_state = self.server_opt.init(self.theta)
        self._sample_rng = np.random.default_rng(sample_ss)
        self._batch_gen = _torch_generator(batch_ss)

        K = self.federation.n_clients
        # a robust rule's knobs must fit the number of clients in a round (Krum
        # needs K > 2f + 2): ask the rule itself now, not in round 1
        m = self._n_participants()
        self.aggregator(torch.zeros(m, 1), torch.ones(m), **self.aggregator_kwargs)
        self._pooled = self.federation.pooled()
        if config.baselines:
            self._baseline_gen = _torch_generator(base_ss)
            self.local_only_thetas = self.theta.expand(K, -1).clone()
            self.central_theta = self.theta.unsqueeze(0).clone()

        self.history = History(config=config.to_dict(), client_names=list(self.federation.client_names))
        self.done = False
        self._stop_requested = threading.Event()

    @property
    def round(self) -> int:
        """Rounds completed so far."""
        return len(self.history)

    # ---- one round ------------------------------------------------------
    def _n_participants(self) -> int:
        K = self.federation.n_clients
        return min(K, max(1, int(round(self.config.federation.client_fraction * K))))

    def sample_clients(self) -> np.ndarray:
        """This round's participants: a uniform random subset of size ``round(fraction * K)`` (≥ 1)."""
        K, m = self.federation.n_clients, self._n_participants()
        if m >= K:
            return np.arange(K)
        return np.sort(self._sample_rng.choice(K, size=m, replace=False))

    def _train(self, thetas, fed: Federation, generator):
        t = self.config.train
        return local_train(self.model, thetas, fed.X_train, fed.y_train, fed.n_train,
                           epochs=t.local_epochs, lr=t.lr, batch_size=t.batch_size,
                           generator=generator)

    def step(self) -> RoundRecord:
        """Run one round and return its record."""
        with _threads_for(self.federation):
            return self._step()

    def _step(self) -> RoundRecord:
        if self.done:
            raise RuntimeError(f"this run has ended ({self.history.stop_reason}); "
                               "start a new Simulation, or raise federation.rounds")
        start = time.perf_counter()
        fed, model, K = self.federation, self.model, self.federation.n_clients
        participants = self.sample_clients()
        sampled = fed if len(participants) == K else fed.subset(torch.as_tensor(participants))

        local_thetas, local_loss, _ = self._train(self.theta.expand(len(participants), -1), sampled,
                                                  self._batch_gen)
        deltas = local_thetas - self.theta
        weights = sampled.n_train.to(deltas.dtype)
        self.theta, self.server_state = self.server_opt.step(
            self.theta, self.aggregator(deltas, weights, **self.aggregator_kwargs), self.server_state)
        train_loss = float((local_loss * weights).sum() / weights.sum())

        # evaluate: the new global model on every client's test set
        global_logits = model.apply(self.theta.expand(K, -1), fed.X_test)
        local_metrics = client_metrics(model.apply(local_thetas, sampled.X_test),
                                       sampled.y_test, sampled.n_test)
        local_clients = [None] * K
        for i, k in enumerate(participants.tolist()):
            local_clients[k] = local_metrics[i]
        record = RoundRecord(
            round=self.round + 1,
            participants=participants.tolist(),
            global_pooled=pooled_metrics(global_logits, fed.y_test, fed.n_test),
            global_clients=client_metrics(global_logits, fed.y_test, fed.n_test),
            local_clients=local_clients,
            train_loss=train_loss,
        )
        if self.config.baselines:
            self._baselines_step(record)
        record.seconds = time.perf_counter() - start
        self.history.append(record)

        losses = self.history.series("global", "loss")
        reason = check_stop(self.history.series("global", "accuracy"), losses, self.config.stop,
                            round=self.round, max_rounds=self.config.federation.rounds)
        if reason:
            record.stop_reason = reason
            self.history.stop_reason = reason
            self.done = True
        return record

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

    def run(self, *, callbacks: Iterable[Callback] = (), max_rounds: int | None = None) -> History:
        """Run rounds until a stopping rule fires, ``max_rounds`` more rounds are done,
        a callback returns ``True``, ``request_stop()`` is called, or Ctrl-C.

        Whatever stops the run, the rounds done so far stay in ``history``.
        """
        self._stop_requested.clear()
        callbacks = list(callbacks)
        done_here = 0
        try:
            while not self.done and (max_rounds is None or done_here < max_rounds):
                if self._stop_requested.is_set():
                    self.history.stop_reason = f"stopped by user after round {self.round}"
                    break
                record = self.step()
                done_here += 1
                if any([cb(record, self) is True for cb in callbacks]):
                    self.history.stop_reason = f"stopped by a callback after round {self.round}"
                    break
        except KeyboardInterrupt:
            self.history.stop_reason = f"interrupted after round {self.round}"
        return self.history
