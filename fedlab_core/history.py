"""What a run remembers: one ``RoundRecord`` per round, kept in a ``History``.

A record holds plain Python numbers only (no tensors), so a History can be
saved as JSON, reloaded, and turned into a tidy ``pandas.DataFrame`` with one
row per (round, model, client):

- ``model = "global"``: the server's model after the round, on each client's
  test set and on the pooled test set (``client = "pooled"``);
- ``model = "local"``: each participating client's model right after its
  local training (before averaging), on that client's own test set;
- ``model = "local_only"``: a model each client trains alone, never sharing,
  with the same number of local epochs so far, on its own test set and on the
  pooled test set (``client = "<name> → pooled"``);
- ``model = "central"``: one model trained on all clients' pooled training
  data with the same epoch budget, on the pooled test set.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

METRICS = ("accuracy", "auc", "loss")
Metrics = dict[str, float]


@dataclass
class RoundRecord:
    """Everything measured in one round. Missing values are ``nan``."""

    round: int
    participants: list[int]
    global_pooled: Metrics
    global_clients: list[Metrics]
    local_clients: list[Metrics | None]
    local_only_clients: list[Metrics] | None = None
    # each hospital's personalised model on its own test set (personal.method != 'none')
    personal_clients: list[Metrics] | None = None
    local_only_pooled: list[Metrics] | None = None
    central_pooled: Metrics | None = None
    train_loss: float = math.nan
    seconds: float = 0.0
    stop_reason: str | None = None
    # participation: sampled clients whose update never arrived, and slow ones
    dropped: list[int] = field(default_factory=list)
    stragglers: list[int] = field(default_factory=list)
    # bytes each client sent up (its update) and received (the global model); 0 if not sampled
    bytes_up: list[int] = field(default_factory=list)
    bytes_down: list[int] = field(default_factory=list)
    note: str | None = None   # e.g. why the server kept the model unchanged this round
    # privacy: the ε meter after this round (the largest over protected units, live
    # accountant), each hospital's own ε where units are hospitals or their records,
    # and the clipping norm central DP used this round
    epsilon: float | None = None
    epsilon_clients: list[float] | None = None
    clip: float | None = None
    # secure aggregation: wall time of the protocol this round (all parties, one process)
    secure_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RoundRecord":
        """A record from ``to_dict()``'s output, with JSON's nulls in metrics back as nan."""
        return cls(**_none_to_nan(d))


@dataclass
class History:
    """The rounds of one run, with the config that produced them."""

    config: dict[str, Any]
    client_names: list[str]
    records: list[RoundRecord] = field(default_factory=list)
    stop_reason: str | None = None
    malicious: list[int] = field(default_factory=list)   # attacking clients, for the whole run
    privacy: dict[str, Any] | None = None   # the privacy plan: mechanism, unit, noise, δ, rates
    client_test_sizes: list[int] = field(default_factory=list)   # test patients per hospital

    def __len__(self) -> int:
        return len(self.records)

    def append(self, record: RoundRecord) -> None:
        self.records.append(record)

    def last(self) -> RoundRecord | None:
        return self.records[-1] if self.records else None

    def series(self, model: str = "global", metric: str = "accuracy",
               client: int | None = None) -> list[float]:
        """One learning curve as a list, one value per recorded round.

        ``client=None`` means the pooled test set (for ``global``/``central``).
        """
        out = []
        for r in self.records:
            m = _pick(r, model, client)
            out.append(math.nan if m is None else m.get(metric, math.nan))
        return out

    # ---- tables ---------------------------------------------------------
    def to_frame(self):
        """Tidy table: columns round, model, client, accuracy, auc, loss."""
        import pandas as pd

        rows = []
        names = self.client_names
        for r in self.records:
            rows.append(("global", "pooled", r.global_pooled, r))
            rows += [("global", names[k], m, r) for k, m in enumerate(r.global_clients)]
            rows += [("local", names[k], m, r) for k, m in enumerate(r.local_clients) if m is not None]
            if r.local_only_clients is not None:
                rows += [("local_only", names[k], m, r) for k, m in enumerate(r.local_only_clients)]
            if r.personal_clients is not None:
                rows += [("personal", names[k], m, r) for k, m in enumerate(r.personal_clients)]
            if r.local_only_pooled is not None:
                rows += [("local_only", f"{names[k]} → pooled", m, r)
                         for k, m in enumerate(r.local_only_pooled)]
            if r.central_pooled is not None:
                rows.append(("central", "pooled", r.central_pooled, r))
        table = [{"round": r.round, "model": model, "client": client,
                  **{k: m.get(k, math.nan) for k in METRICS}}
                 for model, client, m, r in rows]
        return pd.DataFrame(table, columns=["round", "model", "client", *METRICS])

    def fairness(self, metric: str = "accuracy"):
        """Per round, the global model across hospitals: worst, mean, best and spread (sd).

        The pooled number can hide a hospital the model serves badly; the worst
        hospital and the spread show it.
        """
        import numpy as np
        import pandas as pd

        rows = []
        for r in self.records:
            values = np.array([m.get(metric, math.nan) for m in r.global_clients], dtype=float)
            rows.append({"round": r.round, "worst": np.nanmin(values), "mean": np.nanmean(values),
                         "best": np.nanmax(values), "spread": np.nanstd(values)})
        return pd.DataFrame(rows, columns=["round", "worst", "mean", "best", "spread"])

    def communication(self):
        """Per round, bytes sent up (updates) and down (global model), in total and per client."""
        import pandas as pd

        rows = []
        for r in self.records:
            up, down = sum(r.bytes_up), sum(r.bytes_down)
            rows.append({"round": r.round, "bytes_up": up, "bytes_down": down,
                         "clients_reporting": len(r.participants)})
        return pd.DataFrame(rows, columns=["round", "bytes_up", "bytes_down", "clients_reporting"])

    def privacy_spent(self):
        """Per round, the ε meter: the headline ε and, where units are hospitals, each one's."""
        import pandas as pd

        rows = []
        for r in self.records:
            row = {"round": r.round, "epsilon": math.nan if r.epsilon is None else r.epsilon,
                   "clip": math.nan if r.clip is None else r.clip}
            for k, e in enumerate(r.epsilon_clients or []):
                row[self.client_names[k]] = e
            rows.append(row)
        return pd.DataFrame(rows, columns=["round", "epsilon", "clip"] + (
            list(self.client_names) if any(r.epsilon_clients for r in self.records) else []))

    # ---- persistence ----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": "fedlab-history/1", "config": self.config,
                "client_names": list(self.client_names),
                "stop_reason": self.stop_reason, "malicious": list(self.malicious),
                "privacy": self.privacy, "client_test_sizes": list(self.client_test_sizes),
                "records": [r.to_dict() for r in self.records]}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # NaN is not JSON: write null and read it back as nan
        path.write_text(json.dumps(json_safe(self.to_dict()), indent=1))
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        if d.get("format") != "fedlab-history/1":
            raise ValueError(f"format = {d.get('format')!r} is not allowed: "
                             "expected a fedlab history ('fedlab-history/1')")
        records = [RoundRecord.from_dict(r) for r in d["records"]]
        return cls(config=d["config"], client_names=list(d["client_names"]),
                   records=records, stop_reason=d.get("stop_reason"),
                   malicious=list(d.get("malicious", [])), privacy=d.get("privacy"),
                   client_test_sizes=list(d.get("client_test_sizes", [])))

    @classmethod
    def load(cls, path: str | Path) -> "History":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def experiment_config(self):
        from fedlab_core.config import ExperimentConfig

        return ExperimentConfig.from_dict(self.config)


def _pick(r: RoundRecord, model: str, client: int | None) -> Metrics | None:
    if model == "global":
        return r.global_pooled if client is None else r.global_clients[client]
    if model == "central":
        return r.central_pooled
    if model == "local":
        return None if client is None else r.local_clients[client]
    if model == "personal":
        if r.personal_clients is None:
            return None
        return r.personal_clients[client] if client is not None else None
    if model == "local_only":
        if r.local_only_clients is None:
            return None
        return r.local_only_clients[client] if client is not None else None
    raise ValueError(f"model = {model!r} is not allowed: choose global, local, local_only, personal or central")


def json_safe(x):
    """``x`` with every float nan (not JSON) replaced by None, recursively."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    return x


def _none_to_nan(r: dict[str, Any]) -> dict[str, Any]:
    """Turn the nulls inside metric dicts back into nan (not the record's own None fields)."""
    def metrics(m):
        return None if m is None else {k: (math.nan if v is None else v) for k, v in m.items()}

    r = dict(r)
    r["global_pooled"] = metrics(r["global_pooled"])
    r["global_clients"] = [metrics(m) for m in r["global_clients"]]
    r["local_clients"] = [metrics(m) for m in r["local_clients"]]
    for key in ("local_only_clients", "local_only_pooled", "personal_clients"):
        if r.get(key) is not None:
            r[key] = [metrics(m) for m in r[key]]
    r["central_pooled"] = metrics(r.get("central_pooled"))
    if r.get("train_loss") is None:
        r["train_loss"] = math.nan
    return r
