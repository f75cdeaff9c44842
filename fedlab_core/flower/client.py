"""fedlab's Flower ``ClientApp``: what runs on each hospital's node.

A node holds only its own partition (``node_data``): a ``.npz`` file that its
operator points it to (``data-path``), or, under Flower's simulation runtime,
its part of the config's federation (``partition-id``). It answers three
message types:

========== ============================================ =========================================
type       server -> node                               node -> server
========== ============================================ =========================================
query      (nothing)                                    ``info``: partition, name, n_train,
                                                        n_test, n_features
train      ``theta``; ``train``: round and this          ``theta``; ``train``: n_train, loss,
           hospital's part of the round's shuffle        steps, the local model's test metrics
evaluate   ``theta``                                    ``metrics``: accuracy, auc, loss, n_test
========== ============================================ =========================================

Nothing else leaves the node: no rows, no labels, no predictions.

Minibatch order is the one randomness a node uses. So that a deployment
equals the simulation number for number, the server hands each node its row
of the simulation's shuffle (``SharedShuffle``); with the run config
``fedlab-own-shuffle = true`` nodes shuffle with their own randomness, as a
production federation would, and the runs agree only in distribution.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedlab_core.client import SharedShuffle, local_train
from fedlab_core.config import ExperimentConfig
from fedlab_core.data import load_dataset
from fedlab_core.data.base import ClientData
from fedlab_core.metrics import client_metrics
from fedlab_core.models import make_model

client_app = ClientApp()

Tensor = torch.Tensor


# ---- a hospital's own data ------------------------------------------------
def save_partition(client: ClientData, path: str | Path) -> Path:
    """Write one hospital's split to ``path`` (``.npz``): what its node will load."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, name=np.array(client.name), X_train=client.X_train, y_train=client.y_train,
             X_test=client.X_test, y_test=client.y_test)
    return path


def load_partition(path: str | Path) -> ClientData:
    """Read a hospital's split written by ``save_partition``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data-path = {str(path)!r} is not allowed: there is no such file on this "
                         "node; give the path of this hospital's .npz (fedlab deploy writes one per hospital)")
    with np.load(path) as f:
        return ClientData(name=str(f["name"]), X_train=f["X_train"], y_train=f["y_train"],
                          X_test=f["X_test"], y_test=f["y_test"])


@functools.lru_cache(maxsize=2)
def _whole_dataset(config_json: str):
    from fedlab_core.simulation import seed_streams

    config = ExperimentConfig.from_dict(json.loads(config_json))
    return load_dataset(config.data, seed=int(seed_streams(config.seed)["data"].generate_state(1)[0]))


def node_data(node_config, config_json: str) -> tuple[int, ClientData]:
    """This node's hospital index and data: from ``data-path`` (a deployment, with
    ``partition-id`` its index), else partition ``partition-id`` of the config's
    federation (Flower's simulation runtime, where every node is on one machine)."""
    if "partition-id" not in node_config:
        raise ValueError("node config has no partition-id: start the SuperNode with "
                         "--node-config 'partition-id=K data-path=\"...\"'")
    k = int(node_config["partition-id"])
    if "data-path" in node_config:
        return k, load_partition(node_config["data-path"])
    dataset = _whole_dataset(config_json)
    if not 0 <= k < dataset.n_clients:
        raise ValueError(f"partition-id = {k} is not allowed: the config has "
                         f"{dataset.n_clients} hospitals (0..{dataset.n_clients - 1})")
    return k, dataset.clients[k]


class Node:
    """One hospital as its node sees it: its data as one client's tensors
    ``(1, n, d)``, the model, and the run's settings.

    Built from Flower's run config and node config (``Context.run_config``,
    ``Context.node_config``), for every message: a node keeps no state between
    rounds.
    """

    def __init__(self, run_config, node_config) -> None:
        config_json = str(run_config["fedlab-config"])
        self.config = config = ExperimentConfig.from_dict(json.loads(config_json))
        self.own_shuffle = bool(run_config.get("fedlab-own-shuffle", False))
        self.index, data = node_data(node_config, config_json)
        dtype = getattr(torch, config.dtype)
        self.X_train = torch.as_tensor(data.X_train, dtype=dtype).unsqueeze(0)
        self.y_train = torch.as_tensor(data.y_train, dtype=dtype).unsqueeze(0)
        self.X_test = torch.as_tensor(data.X_test, dtype=dtype).unsqueeze(0)
        self.y_test = torch.as_tensor(data.y_test, dtype=dtype).unsqueeze(0)
        self.n_train = torch.tensor([data.n_train])
        self.n_test = torch.tensor([data.n_test])
        self.name = data.name
        self.model = make_model(config.model.name, n_features=self.X_train.shape[-1],
                                hidden=config.model.hidden, channels=config.model.channels)

    def score(self, theta: Tensor) -> dict[str, float]:
        # NaN (e.g. the AUC of a one-class test set) travels as NaN
        scores = client_metrics(self.model.apply(theta, self.X_test), self.y_test, self.n_test)[0]
        return {k: float(v) for k, v in scores.items()}


def _theta(content: RecordDict) -> Tensor:
    return torch.from_numpy(content["theta"].to_numpy_ndarrays()[0].copy()).unsqueeze(0)


def describe(node: Node, content: RecordDict) -> RecordDict:
    """What the server may know about this hospital: its index, name and counts."""
    return RecordDict({"info": ConfigRecord({
        "partition-id": node.index, "name": node.name, "n-train": int(node.n_train),
        "n-test": int(node.n_test), "n-features": int(node.X_train.shape[-1])})})


def train(node: Node, content: RecordDict) -> RecordDict:
    """fedlab's local training on this hospital's rows, from the global model."""
    tc = node.config.train
    theta = _theta(content)
    plan = content["train"]
    if node.own_shuffle:
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence().generate_state(1)[0]))
    else:
        state = torch.frombuffer(bytearray(plan["shuffle"]), dtype=torch.uint8)
        generator = SharedShuffle(torch.Generator().set_state(state), int(plan["row"]),
                                  (int(plan["rows"]), int(plan["width"])))
    prox = {"prox_mu": tc.prox_mu, "anchor": theta} if tc.algorithm == "fedprox" else {}
    local = local_train(node.model, theta, node.X_train, node.y_train, node.n_train,
                        epochs=tc.local_epochs, lr=tc.lr, batch_size=tc.batch_size,
                        generator=generator, **prox)
    scores = node.score(local.thetas)
    return RecordDict({
        "theta": ArrayRecord([local.thetas[0].numpy()]),
        "train": MetricRecord({"n-train": int(node.n_train), "loss": float(local.loss[0]),
                               "steps": int(local.steps[0]),
                               **{f"local-{k}": v for k, v in scores.items()}}),
    })


def evaluate(node: Node, content: RecordDict) -> RecordDict:
    """The global model on this hospital's test set."""
    return RecordDict({"metrics": MetricRecord({**node.score(_theta(content)),
                                                "n-test": int(node.n_test)})})


# what a node does with each message type; the ClientApp below only unwraps Flower's
# message and context around these (so the tests can call them directly)
HANDLERS = {"query": describe, "train": train, "evaluate": evaluate}


def _reply(message: Message, context: Context) -> Message:
    node = Node(context.run_config, context.node_config)
    return Message(HANDLERS[message.metadata.message_type](node, message.content), reply_to=message)


client_app.query()(_reply)
client_app.train()(_reply)
client_app.evaluate()(_reply)
