"""Seconds per round of one federation on three engines: fedlab's in-process
simulation, Flower's simulation runtime, and a Flower deployment on loopback.

Workload (the same on every engine): logistic regression on the synthetic
cohort, 10, 30 and 100 hospitals with 100 patients each
(``data.n_samples = 100 * hospitals``, a quarter held out for testing),
full-batch local training, 1 local epoch, FedAvg, every hospital in every
round, baselines off. A round is: send the global model, train locally,
aggregate, then evaluate the new global model on every hospital's test set.

Engines (rows):

- ``simulation``: fedlab's ``Simulation.step()``, all hospitals as one batch
  of tensors in this process;
- ``flower-sim``: Flower's simulation runtime: ``flower-superlink
  --simulation`` and ``flwr run ... --federation-config "num-supernodes=N"``;
  Flower's Ray backend runs fedlab's ``ClientApp`` in long-lived actors (needs
  ``flwr[simulation]``, i.e. Ray); each virtual node builds the federation from
  the config and keeps its own partition;
- ``deployment``: ``fedlab_core.flower.deployment.Deployment``: one
  ``flower-superlink`` and one ``flower-supernode`` process per hospital on
  loopback (each SuperNode starts a ``flower-superexec``), and every message
  to a node starts a fresh ``flwr-clientapp`` process.

Columns:

- ``start-up``: for the simulation, building ``Simulation(config)`` (data and
  tensors); for the Flower engines, from launching the processes until round 1
  begins (the first round's record arrives, minus that round's own seconds):
  partitions and the app written, processes started and connected, and the
  query round in which nodes report their counts;
- ``s / round``: the median of the server-side wall time of rounds 2.. (round
  1 left out as warm-up): ``RoundRecord.seconds``, which every engine measures
  the same way, around one whole round;
- ``peak memory``: the most memory in use on the whole machine while the row
  ran, minus what was in use before it (``MemTotal - MemAvailable``; other
  work on the machine shows up here too);
- ``max abs diff``: between the engine's final global model and the
  simulation's after as many rounds (the Flower app replays the simulation's
  random streams, so they agree to float32 rounding).

Everything runs on this machine's cores, so the Flower rows measure Flower's
per-message costs (processes, HTTP, serialisation), not a network. The
deployments of more than 10 hospitals run fewer rounds (``--big-rounds``):
each of their rounds starts two processes per hospital. A Flower run that
fails is reported as "did not run" with the reason; one that would leave less
than ``--min-available`` GiB of memory is stopped (a deployment holds about
0.2 GiB per hospital in SuperNode and SuperExec alone, plus its ClientApp
processes while a round runs).

    python benchmarks/flower_scale.py --out benchmarks/results/flower_scale.md   # ~20 min on 2 cores
    python benchmarks/flower_scale.py --hospitals 10 --rounds 3
    python benchmarks/flower_scale.py --engines simulation flower-sim
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from fedlab_core.config import ExperimentConfig
from fedlab_core.flower.deployment import Deployment, check_deployable
from fedlab_core.simulation import Simulation

PATIENTS = 100   # per hospital, before the test split


def config(hospitals: int, rounds: int) -> ExperimentConfig:
    return check_deployable(ExperimentConfig().with_overrides({
        "data.n_clients": hospitals, "data.n_samples": PATIENTS * hospitals,
        "model.name": "logreg", "train.local_epochs": 1, "federation.rounds": rounds,
        "baselines": False}))


def meminfo(key: str) -> int:
    """One line of /proc/meminfo, in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return 1024 * int(line.split()[1])
    raise KeyError(key)


def memory_in_use() -> int:
    """Bytes in use on the whole machine: the Flower engines are many processes."""
    return meminfo("MemTotal") - meminfo("MemAvailable")


# ---- engines ------------------------------------------------------------------
class FlowerSimulation(Deployment):
    """Flower's simulation runtime, driven like a ``Deployment``: one SuperLink
    started with ``--simulation`` (no SuperNode processes: it runs the ClientApp
    on Ray actors) and ``flwr run`` with ``num-supernodes``. The app, the metrics
    stream, ``wait`` and ``stop`` are the deployment's own."""

    def _write_partitions(self) -> list[Path]:
        # no files: with a partition-id and no data-path, each virtual node builds
        # the federation from the config and keeps its own partition
        self.n_hospitals = self.config.data.n_clients
        return []

    def start(self) -> "FlowerSimulation":
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_partitions()
        app = self._write_app()
        self.link_port, self.node_ports = self._ports()[0], []
        bindir = Path(sys.executable).parent
        self._write_flwr_home("insecure = true")
        env = self._environment()
        try:
            self._spawn("superlink", [str(bindir / "flower-superlink"), "--simulation", "--insecure",
                                      "--host", "127.0.0.1", "--port", str(self.link_port),
                                      "--disable-runtime-dependency-installation"], env)
            self._wait_listening("superlink", self.link_port)
            self._spawn("flwr-run", [str(bindir / "flwr"), "run", str(app), "fedlab", "--stream",
                                     "--federation-config", f"num-supernodes={self.n_hospitals}"], env)
        except BaseException:
            self.stop()
            raise
        return self


# ---- running one engine ---------------------------------------------------------
class Watch:
    """A thread that follows one Flower run every 0.2 s: the peak memory in use
    (above the start) and two reasons to stop it early, kept in ``problem``: a
    SuperNode that exited (the server would otherwise wait for it until its
    node timeout; on 2 cores, 100 SuperNodes started at once can time out
    registering) and less than ``floor`` bytes of memory left available
    (better than letting the kernel's OOM killer pick a process)."""

    def __init__(self, run: Deployment, floor: int) -> None:
        self.run, self.floor, self.problem = run, floor, None

    def __enter__(self) -> "Watch":
        self.base = self.top = memory_in_use()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()
        return self

    def _follow(self) -> None:
        while not self._stop.wait(0.2) and self.problem is None:
            self.top = max(self.top, memory_in_use())
            available = meminfo("MemAvailable")
            if available < self.floor:
                self.problem = (f"only {available / 2**30:.1f} GiB of {meminfo('MemTotal') / 2**30:.0f} "
                                "GiB memory left available")
            for name, proc in list(self.run.processes.items()):
                if name.startswith("hospital-") and proc.poll() is not None:
                    reason = [line for line in self.run.log(name).read_text(errors="replace").splitlines()
                              if line.startswith("[code:")]
                    self.problem = (f"{name}'s SuperNode exited with code {proc.returncode}"
                                    + (f" ({reason[-1]})" if reason else ""))
                    break
            if self.problem is not None:
                self._stop_run()

    def _stop_run(self) -> None:
        for _ in range(20):   # the main thread may be adding processes while we stop them
            try:
                return self.run.stop()
            except RuntimeError:
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = self.top - self.base


def run_simulation(cfg: ExperimentConfig) -> dict:
    base = memory_in_use()
    start = time.perf_counter()
    sim = Simulation(cfg)
    startup = time.perf_counter() - start
    seconds, thetas = [], []
    for _ in range(cfg.federation.rounds):
        seconds.append(sim.step().seconds)
        thetas.append(sim.theta.clone().numpy())   # to compare the Flower runs with
    return {"startup": startup, "seconds": seconds, "thetas": thetas,
            "memory": max(memory_in_use() - base, 0)}


def run_flower(engine: type[Deployment], cfg: ExperimentConfig, folder: Path, timeout: float,
               floor: int) -> dict:
    arrivals = {}
    run = engine(cfg, folder=folder, round_timeout=timeout, startup_timeout=timeout)
    # on a shared machine, if memory runs out anyway, the kernel should kill this
    # benchmark's processes (they inherit the score) rather than someone else's
    Path("/proc/self/oom_score_adj").write_text("1000")
    with Watch(run, floor) as watch:
        start = time.perf_counter()
        try:
            history = run.run(timeout=timeout * (cfg.federation.rounds + 2),
                              on_round=lambda r: arrivals.setdefault(r.round, time.perf_counter()))
        except Exception as err:
            if watch.problem is None:
                raise
            raise RuntimeError(f"stopped after {time.perf_counter() - start:.0f} s and "
                               f"{len(arrivals)} round(s): {watch.problem}") from err
        finally:
            if run.leftover_processes():   # a stop that raced with start-up: once more
                run.stop()
    leftover = run.leftover_processes()
    if leftover:
        raise RuntimeError(f"processes left behind: {leftover}")
    if history is None or len(history.records) < cfg.federation.rounds:
        raise RuntimeError(f"the run ended after {0 if history is None else len(history.records)} rounds")
    seconds = [r.seconds for r in history.records]
    theta = np.load(folder / "server" / "global_model.npy")
    return {"startup": arrivals[1] - start - seconds[0], "seconds": seconds, "theta": theta,
            "memory": watch.peak}


# ---- main ---------------------------------------------------------------------
ENGINES = {"simulation": "fedlab simulation (in-process)",
           "flower-sim": "Flower simulation runtime (Ray)",
           "deployment": "Flower deployment (loopback processes)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hospitals", type=int, nargs="+", default=[10, 30, 100],
                        help="federation sizes (default 10 30 100)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per run (default 3)")
    parser.add_argument("--big-rounds", type=int, default=2,
                        help="rounds of the deployments of more than 10 hospitals (default 2)")
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES))
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds a Flower round (and start-up) may take (default 1800)")
    parser.add_argument("--min-available", type=float, default=3.0,
                        help="GiB of memory to keep available: a Flower run that leaves less is "
                             "stopped and reported as not run (default 3)")
    parser.add_argument("--folder", default="runs/flower_scale", help="where the Flower runs live")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    args = parser.parse_args()

    import flwr

    try:
        import ray
        ray_version = f"ray {ray.__version__}"
    except ImportError:
        ray_version = "no ray"
    # the Flower adapter is young: say which version of it was measured
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip() or "unknown"
    header = (f"{datetime.date.today()}, fedlab {commit}, {platform.machine()} CPU with {os.cpu_count()} cores and "
              f"{meminfo('MemTotal') / 2**30:.0f} GiB memory, torch {torch.__version__}, "
              f"flwr {flwr.__version__}, {ray_version}, Python {platform.python_version()}")
    print(header, flush=True)
    started_all = time.perf_counter()
    rows = []
    for K in args.hospitals:
        sim = run_simulation(config(K, args.rounds))
        for name in args.engines:
            label = ENGINES[name]
            started, load = time.perf_counter(), os.getloadavg()[0]
            if name == "simulation":
                result, diff = sim, 0.0
            else:
                big = name == "deployment" and K > 10
                rounds = min(args.rounds, args.big_rounds) if big else args.rounds
                engine = FlowerSimulation if name == "flower-sim" else Deployment
                try:
                    result = run_flower(engine, config(K, rounds), Path(args.folder) / f"{name}-{K}",
                                        args.timeout, int(args.min_available * 2**30))
                except Exception as err:   # one engine failing should not lose the others' rows
                    message = str(err).strip().splitlines()[0][:300]
                    rows.append((label, K, f"did not run: {type(err).__name__}: {message}",
                                 time.perf_counter() - started, load))
                    print(rows[-1], flush=True)
                    continue
                diff = float(np.abs(result["theta"] - sim["thetas"][len(result["seconds"]) - 1]).max())
            timed = result["seconds"][1:] or result["seconds"]
            rows.append((label, K, len(result["seconds"]), result["startup"], statistics.median(timed),
                         result["memory"] / 2**30, diff, time.perf_counter() - started, load))
            print(rows[-1], flush=True)

    lines = [f"Machine and versions: {header}. Whole benchmark: "
             f"{(time.perf_counter() - started_all) / 60:.0f} minutes.", "",
             "| engine | hospitals | rounds | start-up (s) | s / round (median of rounds 2..) "
             "| peak memory (GiB) | max abs diff vs simulation | wall (s) | load avg before |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if len(row) == 5:
            name, K, why, wall, load = row
            lines.append(f"| {name} | {K} | {why} | | | | | {wall:.0f} | {load:.1f} |")
        else:
            name, K, n, startup, per_round, memory, diff, wall, load = row
            lines.append(f"| {name} | {K} | {n} | {startup:.2f} | {per_round:.3g} | {memory:.2f} "
                         f"| {diff:.1e} | {wall:.0f} | {load:.1f} |")
    table = "\n".join(lines)
    print()
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
