"""``fedlab``: run an experiment headless.

    fedlab config > my.toml                   # the default config, every knob
    fedlab run --config my.toml --set federation.rounds=50 --out runs/demo
    fedlab benchmark heart --seeds 5 --out results/heart   # FLamby Fed-Heart-Disease
    fedlab deploy --hospitals 4 --tls --set federation.rounds=5   # on Flower, real processes

``run`` prints a per-round table (with a progress bar on a terminal) and, with
``--out``, writes ``history.json`` (which carries the config), ``config.toml``
and ``curves.html`` (an interactive plotly figure, when plotly is installed).
Ctrl-C stops after the current round and still writes what was done.

``deploy`` runs the experiment on Flower's Deployment Engine on this machine
(``fedlab_core.flower.deployment``): one SuperLink and one SuperNode per
hospital as separate processes, each node reading only its hospital's data;
it prints the same per-round table and stops every process it started.

``benchmark heart`` reproduces FLamby's Fed-Heart-Disease benchmark
(``fedlab_core.flamby_heart``), prints its Markdown table and writes
``heart_benchmark.csv`` and ``heart_benchmark.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from fedlab_core.config import ExperimentConfig, parse_value


def _parse_sets(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {pair!r} is not allowed: write key=value, e.g. train.lr=0.1")
        overrides[key.strip()] = parse_value(value.strip())
    return overrides


def load_config(path: str | None, sets: list[str]) -> ExperimentConfig:
    config = ExperimentConfig()
    if path:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"--config {path!r} is not allowed: no such file")
        config = ExperimentConfig.from_toml(p.read_text())
    return config.with_overrides(_parse_sets(sets)) if sets else config


def _fmt(x: float) -> str:
    return "   -  " if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:6.3f}"


def _row(record) -> str:
    g = record.global_pooled
    central = record.central_pooled["accuracy"] if record.central_pooled else math.nan
    if record.local_only_pooled:
        lo = [m["accuracy"] for m in record.local_only_pooled]
        local_only = sum(lo) / len(lo)
    else:
        local_only = math.nan
    worst = min(m["accuracy"] for m in record.global_clients)
    epsilon = "" if record.epsilon is None else f"  {record.epsilon:7.3g}"
    return (f"{record.round:5d}  {_fmt(g['accuracy'])}  {_fmt(g['auc'])}  {_fmt(g['loss'])}  "
            f"{_fmt(worst)}  {_fmt(central)}  {_fmt(local_only)}  {record.seconds * 1e3:7.1f}{epsilon}")


HEADER = ("round     acc     auc    loss   worst  central  loc-only      ms")


def _privacy_lines(sim) -> list[str]:
    """What the run's guarantee is, and the ε it spent by both accountants."""
    plan = sim.privacy
    if plan is None:
        return []
    return [f"privacy: {plan.mechanism}, protects one {plan.unit}; noise multiplier "
            f"{plan.noise_multiplier:.4g}, clip {sim.config.privacy.clip:g}, δ = {plan.delta:g}",
            f"ε spent: {plan.epsilon():.4g} (RDP, as the live meter) · "
            f"{plan.epsilon(accountant='pld'):.4g} (PLD, tight)"]


def cmd_run(args: argparse.Namespace) -> int:
    from fedlab_core.simulation import Simulation

    config = load_config(args.config, args.set)
    sim = Simulation(config)
    out = Path(args.out) if args.out else None
    print(f"fedlab: {config.data.dataset} data, {sim.federation.n_clients} hospitals "
          f"({', '.join(sim.federation.client_names[:6])}{' …' if sim.federation.n_clients > 6 else ''}), "
          f"{config.model.name}, {config.federation.aggregator}, up to {config.federation.rounds} rounds")
    print("columns: global model on the pooled test set (acc, auc, loss); worst = its accuracy on "
          "the worst hospital;\n         central = pooled-data baseline; loc-only = mean accuracy of "
          "local-only models on the pooled test set")
    for line in _privacy_lines(sim)[:1]:
        print(line)
    print(HEADER + ("        ε" if sim.privacy is not None else ""))

    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=config.federation.rounds, unit="round", leave=False)

    def report(record, sim):
        line = _row(record) + (f"   ({record.note})" if record.note else "")
        if bar is not None:
            bar.update(1)
            bar.write(line)
        elif not args.quiet:
            print(line, flush=True)

    history = sim.run(callbacks=[report])
    if bar is not None:
        bar.close()
    print(f"stopped: {history.stop_reason}")
    for line in _privacy_lines(sim)[1:]:
        print(line)
    if config.baselines and len(history):
        from fedlab_core.personalise import hospital_verdicts

        last = min(5, len(history))
        print(f"did each hospital gain from joining? (accuracy on its own test set, "
              f"mean of the last {last} round{'s' if last > 1 else ''})")
        for verdict in hospital_verdicts(history, last=last):
            print(f"  {verdict}")
    if history.malicious:
        names = ", ".join(sim.federation.client_names[k] for k in history.malicious)
        print(f"malicious hospitals ({config.attack.name}): {names}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        history.save(out / "history.json")
        (out / "config.toml").write_text(config.to_toml())
        written = ["history.json", "config.toml"]
        try:
            from fedlab_core.viz import learning_curves
        except ImportError:
            print("(plotly is not installed: no curves.html; pip install 'fedlab-core[notebooks]')")
        else:
            # plotly.js beside the pages, not from a CDN: the figures must open offline
            # (a workshop room without internet), and one copy serves both pages
            learning_curves(history).write_html(out / "curves.html", include_plotlyjs="directory")
            written.append("curves.html")
            if sim.privacy is not None:
                from fedlab_core.viz_privacy import privacy_meter

                privacy_meter(history).write_html(out / "privacy.html", include_plotlyjs="directory")
                written.append("privacy.html")
            written.append("plotly.min.js")
        print(f"wrote {', '.join(written)} to {out}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from fedlab_core.flower.deployment import Deployment

    config = load_config(args.config, args.set)
    out = Path(args.out) if args.out else None
    dep = Deployment(config, hospitals=args.hospitals, folder=out, port=args.port, tls=args.tls,
                     round_timeout=args.round_timeout, save_models=args.save_models)
    n = dep.config.data.n_clients
    print(f"fedlab deploy: {n} hospitals as Flower SuperNodes and one SuperLink on this machine"
          f"{' (TLS)' if args.tls else ''}; run folder {dep.folder}")
    print("columns as in `fedlab run`; a deployment has no baselines, and no pooled AUC (it would "
          "need every hospital's test labels at the server)")
    print(HEADER)

    def report(record):
        if not args.quiet:
            print(_row(record) + (f"   ({record.note})" if record.note else ""), flush=True)

    history = dep.run(timeout=args.timeout, on_round=report)
    left = dep.leftover_processes()
    print(f"stopped: {None if history is None else history.stop_reason}")
    print(f"processes: {len(dep.processes)} started, "
          f"{'none left running' if not left else f'{len(left)} still running: {left}'}")
    if history is not None:
        history.save(dep.folder / "history.json")
        print(f"wrote history.json to {dep.folder}; logs in {dep.folder / 'logs'}")
    return 0 if not left else 1


def cmd_config(args: argparse.Namespace) -> int:
    print(load_config(args.config, args.set).to_toml(), end="")
    return 0


def _check_option(option: str, value, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"{option} {value} is not allowed: must be an integer in [{lo}, {hi}]")


def cmd_benchmark(args: argparse.Namespace) -> int:
    import time

    from fedlab_core.data.heart import FILES
    from fedlab_core.flamby_heart import MAX_SEEDS, heart_benchmark

    _check_option("--seeds", args.seeds, 1, MAX_SEEDS)
    if args.rounds is not None:
        _check_option("--rounds", args.rounds, 1, 10_000)
    if args.heart_dir is not None:
        folder = Path(args.heart_dir).expanduser()
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise ValueError(f"--heart-dir {args.heart_dir!r} is not allowed: "
                             f"the folder lacks {', '.join(missing)}")
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=args.seeds, unit="seed", leave=False)

    def progress(done: int, total: int, label: str) -> None:
        if bar is not None:
            bar.total = total
            bar.set_description(label)
            bar.update(1)

    start = time.perf_counter()
    table = heart_benchmark(seeds=args.seeds, heart_dir=args.heart_dir, rounds=args.rounds,
                            progress=progress)
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "heart_benchmark.csv")
    markdown = table.to_markdown()
    (out / "heart_benchmark.md").write_text(markdown + "\n")
    print(markdown)
    n = len(table.seeds)
    print(f"\n{n} seed{'' if n == 1 else 's'} in {seconds:.1f} s; "
          f"wrote heart_benchmark.csv and heart_benchmark.md to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedlab", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text, fn in (("run", "run an experiment headless", cmd_run),
                                ("config", "print a config as TOML (the default, or with overrides)",
                                 cmd_config)):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", "-c", help="a TOML config file (see `fedlab config`)")
        p.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set train.lr=0.1 (repeatable)")
        p.set_defaults(fn=fn)
    run = sub.choices["run"]
    run.add_argument("--out", "-o", help="folder for history.json, config.toml and curves.html")
    run.add_argument("--quiet", "-q", action="store_true", help="no per-round table")

    deploy = sub.add_parser("deploy", help="run an experiment on Flower's Deployment Engine on "
                            "this machine: one SuperLink, one SuperNode per hospital")
    deploy.add_argument("--config", "-c", help="a TOML config file (see `fedlab config`)")
    deploy.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set train.lr=0.1 (repeatable)")
    deploy.add_argument("--hospitals", "-n", type=int, default=None,
                        help="number of hospitals, one SuperNode each (default: data.n_clients)")
    deploy.add_argument("--tls", action="store_true",
                        help="encrypt traffic with certificates made for this run")
    deploy.add_argument("--port", type=int, default=None,
                        help="the SuperLink's port; SuperNodes take the next ones "
                             "(default: free ports the system picks)")
    deploy.add_argument("--round-timeout", type=float, default=120.0,
                        help="seconds the server waits for a round's replies (default 120); "
                             "later hospitals are dropped from that round")
    deploy.add_argument("--timeout", type=float, default=None,
                        help="stop everything if the run takes longer (seconds)")
    deploy.add_argument("--save-models", action="store_true",
                        help="write the global model after every round (server/global_round_NNNN.npy)")
    deploy.add_argument("--out", "-o", default=None,
                        help="the run folder: partitions, app, certificates, logs, history "
                             "(default runs/deploy-<time>)")
    deploy.add_argument("--quiet", "-q", action="store_true", help="no per-round table")
    deploy.set_defaults(fn=cmd_deploy)

    bench = sub.add_parser("benchmark", help="reproduce a published benchmark (heart: FLamby "
                           "Fed-Heart-Disease) and write its table as CSV and Markdown")
    bench.add_argument("name", choices=("heart",), help="which benchmark")
    bench.add_argument("--seeds", type=int, default=5, help="run seeds 0..N-1 (default 5)")
    bench.add_argument("--rounds", type=int, default=None,
                       help="federated rounds (default: FLamby's 15)")
    bench.add_argument("--heart-dir", default=None,
                       help="folder with the 4 UCI files (default: FEDLAB_HEART_DIR, the cache, "
                            "or a download)")
    bench.add_argument("--out", "-o", default="runs/heart-benchmark",
                       help="folder for heart_benchmark.csv and heart_benchmark.md "
                            "(default runs/heart-benchmark)")
    bench.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    bench.set_defaults(fn=cmd_benchmark)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, OSError, ImportError, RuntimeError) as err:
        # bad settings; data that cannot be found or read; a missing extra; a failed deployment
        print(f"fedlab: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
