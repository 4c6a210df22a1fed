"""The ``seqrec`` command line. Bad input ends with one line ``seqrec: error: ...`` and exit status 2."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from . import data as data_mod
from .config import TrainConfig
from .errors import SeqrecError

PARSERS = {"int": int, "float": float, "str": str, "int | None": lambda v: None if v.lower() == "none" else int(v),
           "dict": json.loads}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One ``--option`` per :class:`TrainConfig` field, with its help text and default (the parser's
    ``ArgumentDefaultsHelpFormatter`` writes the default)."""
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else f.default_factory()
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=PARSERS[f.type], default=default,
                            metavar=f.type.split()[0].upper(), help=f.metadata["help"])


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def cmd_train(args) -> int:
    from . import results, trainer

    config = config_from_args(args)
    out = Path(args.out or f"results/adhoc/{Path(config.data).stem}-{config.model}-{config.loss}-{config.key()}.json")
    if out.is_dir():  # checked before training: a run that cannot be saved is lost
        raise SeqrecError(f"--out {out} is a folder; give a file path (e.g. {out / 'run.json'})")
    result = trainer.train(config, checkpoint=args.checkpoint, progress=not args.quiet)
    results.save(result, out)
    m = result["metrics"]
    print(f"test  HIT@10 {m['full_HIT@10']:.4f}  NDCG@10 {m['full_NDCG@10']:.4f}  HIT@20 {m['full_HIT@20']:.4f}  "
          f"NDCG@20 {m['full_NDCG@20']:.4f}  sampled HIT@10 {m['sampled_HIT@10']:.4f}")
    print(f"epochs {result['epochs_run']} (best {result['best_epoch']}), {result['seconds_per_epoch']:.2f} s/epoch, "
          f"peak memory {result['provenance']['peak_memory_mb']:.0f} MB on {result['provenance']['device']}")
    print(f"wrote {out}")
    return 0


def cmd_park(args) -> int:
    from .experiments import get_profile
    from .parking import park, parked_root

    get_profile(args.profile)
    rows = park(args.results_dir, args.profile)
    if not rows:
        print(f"nothing to park: no checkpoint in {Path(args.results_dir) / args.profile / '.partial'}, nor an S3-Rec "
              "pretraining that an unstored cell needs")
    for r in rows:
        epoch = "" if r["epoch"] is None else f" (epoch {r['epoch']})"
        print(f"{r['action']:8s} {r['kind']} {r['name']}{epoch}")
    if any(r["action"] == "parked" for r in rows):
        print(f"commit {parked_root(args.results_dir, args.profile)} to carry them to the next clone")
    return 0


def cmd_progress(args) -> int:
    from .experiments import get_profile
    from .parking import parked
    from .pretrain import unfinished
    from .runner import partial_progress

    get_profile(args.profile)
    rows = partial_progress(args.results_dir, args.profile)
    for r in parked(args.results_dir, args.profile):  # carried from another clone (seqrec park)
        print(f"parked {r['name']}: epoch {r['epoch']} (the next run takes it back where it is further along)")
    for r in unfinished():  # S3-Rec pretrainings (shared by profiles: their checkpoints are found by name)
        left = "" if r["seconds_left"] is None else f", about {r['seconds_left'] / 3600:.1f} h left at that pace"
        print(f"pretraining {r['checkpoint']}: epoch {r['epoch']} of {r['epochs']}, {r['seconds'] / 60:.1f} min{left}, "
              f"{'training now' if r['training'] else 'interrupted (the next run resumes it)'}")
    if not rows:
        print(f"no cell of the {args.profile} profile is training or interrupted (nothing in "
              f"{Path(args.results_dir) / args.profile / '.partial'})")
        return 0
    for r in rows:
        best = "-" if r["best"] is None else f"{r['best']:.4f}"
        best = best if r["monitor"] is None else f"{r['monitor']} {best}"
        of = "" if r["epochs"] is None else f" of {r['epochs']}"
        since = f"{r['bad']} since" + ("" if r["patience"] is None else f", patience {r['patience']}")
        left = "" if r["seconds_left"] is None else f", at most {r['seconds_left'] / 3600:.1f} h left"
        print(f"{r['grid']}/{r['run']}: epoch {r['epoch']}{of}, best {best} at epoch {r['best_epoch']} ({since}), "
              f"{r['train_seconds'] / 60:.1f} min of training + {r['eval_seconds'] / 60:.1f} of evaluation "
              f"({r['seconds_per_epoch'] or 0:.0f} s per epoch){left}, "
              f"{'training now' if r['training'] else 'interrupted (the next run resumes it)'}")
    return 0


def cmd_pretrain(args) -> int:
    import dataclasses

    from . import pretrain

    args.model = "s3rec"  # pretraining is S3-Rec's; its model_options (pretrain_recipe) are checked as S3-Rec's
    base = config_from_args(args)
    config = dataclasses.replace(base, model_options={**base.model_options, "pretrain_epochs": args.epochs})
    path = pretrain.ensure_pretrained(config, progress=not args.quiet)
    print(f"S3-Rec pretraining checkpoint ({args.epochs} epochs): {path}")
    return 0


def cmd_data_fetch(args) -> int:
    names = args.names or list(data_mod.SHA256)
    for name in names:
        filename = name if name in data_mod.SHA256 else f"{name}.txt"
        print(data_mod.fetch(filename, args.dest))
    return 0


def cmd_data_stats(args) -> int:
    import pandas as pd

    names = args.names or list(data_mod.DATASETS)
    table = pd.DataFrame([data_mod.stats(data_mod.load(n)) for n in names]).set_index("dataset")
    print(table.to_string(float_format=lambda v: f"{v:.5g}"))
    return 0


def cmd_data_popularity(args) -> int:
    import pandas as pd

    from . import baselines

    names = args.names or list(data_mod.DATASETS)
    rows = {}
    for name in names:
        loaded = data_mod.load(name)
        rows[loaded.name] = baselines.popularity_metrics(loaded, seed=args.seed, max_len=args.max_len)
    table = pd.DataFrame(rows).T[[f"{p}{m}@10" for p in ("full_", "sampled_") for m in ("HIT", "NDCG")]]
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    return 0


def cmd_data_import(args) -> int:
    out = args.out or str(Path(args.log).with_suffix(".txt").name)
    info = data_mod.import_log(args.log, out, user=args.user, item=args.item, time=args.time, sep=args.sep,
                               min_count=args.min_count)
    dropped = (f" ({info['rows_dropped']} rows with an empty user, item or time left out)" if info["rows_dropped"]
               else "")
    print(f"wrote {out}: {info['users']} users, {info['items']} items, {info['interactions']} interactions{dropped}")
    return 0


def cmd_run(args) -> int:
    import time
    import warnings

    from . import experiments

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        frame = experiments.run_grid(args.grid, args.profile, only=experiments.parse_only(args.only),
                                     results_dir=args.results_dir, executor=args.executor, scheduler=args.scheduler,
                                     progress=not args.quiet, device=args.device, jobs=args.jobs)
    for w in caught:
        print(f"seqrec: warning: {w.message}", file=sys.stderr)
    if len(frame):
        table = frame[frame["metric"].isin(["full_HIT@10", "full_NDCG@10"])].pivot_table(
            index=["data", "paper_model", "variant", "ablation", "negatives", "seed", "exclude_seen"],
            columns=["paper_loss", "metric"], values="value", aggfunc="mean")
        table = table.dropna(axis=1, how="all")
        print(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
    print(f"wall time {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_report(args) -> int:
    import warnings

    from . import experiments, paper

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        frame = experiments.run_grid(args.grid, args.profile, only=experiments.parse_only(args.only), train=False,
                                     results_dir=args.results_dir, progress=False)
    for w in caught:
        print(f"seqrec: warning: {w.message}", file=sys.stderr)
    name = {"ablations": None}.get(args.grid, args.grid)
    if name is None:
        raise SeqrecError("the ablations grid has no reported numbers; report one of: table2, table3, figure1")
    table = paper.compare(frame, name)
    print(f"{args.grid}, profile {args.profile}: reproduced ({args.results_dir}/{args.profile}/{args.grid}) vs the paper")
    print(paper.format_comparison(table))
    counts = table["verdict"].value_counts()
    print(", ".join(f"{v}: {counts.get(v, 0)}" for v in ("reproduced", "better", "worse", "not run")))
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="seqrec", description="Sequential recommendation with Cumulative Cross-Entropy.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one model with one loss, test it, write a JSON result",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_options(train)
    train.add_argument("--out", help="result file (default: results/adhoc/<dataset name or file stem>-<model>-<loss>-"
                       "<hash>.json)")
    train.add_argument("--checkpoint", help="save state every epoch here and resume from it if it exists")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    pre = sub.add_parser("pretrain", help="S3-Rec pretraining (checkpointed every epoch under $SEQREC_CHECKPOINT_DIR, "
                         "default ./checkpoints, and resumed if interrupted); --epochs is the number of pretraining "
                         "epochs; finetune with `train --model s3rec --model-options '{\"pretrain_epochs\": N}'`",
                         description="S3-Rec pretraining, checkpointed every epoch under $SEQREC_CHECKPOINT_DIR "
                         "(default ./checkpoints)/pretrain and resumed if interrupted. --epochs is the number of "
                         "pretraining epochs; finetune with `seqrec train --model s3rec --model-options "
                         "'{\"pretrain_epochs\": N}'` and the same data, seed and sizes.",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_options(pre)
    pre.set_defaults(epochs=150)
    pre.add_argument("--quiet", action="store_true", help="no progress bar")
    pre.set_defaults(func=cmd_pretrain)

    data = sub.add_parser("data", help="fetch, describe or import datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    fetch = dsub.add_parser("fetch", help="download datasets into the cache, verifying SHA-256")
    fetch.add_argument("names", nargs="*", help="dataset or file names (default: all files)")
    fetch.add_argument("--dest", help="folder to download into (default: the cache)")
    fetch.set_defaults(func=cmd_data_fetch)
    stats = dsub.add_parser("stats", help="users, items, interactions, mean length, density")
    stats.add_argument("names", nargs="*", help="dataset names or .txt paths (default: the paper's five)")
    stats.set_defaults(func=cmd_data_stats)
    pop = dsub.add_parser("popularity", help="test HIT@10 and NDCG@10 of ranking by item popularity, no model (the floor)")
    pop.add_argument("names", nargs="*", help="dataset names or .txt paths (default: the paper's five)")
    pop.add_argument("--seed", type=int, default=42, help="seed of the sampled negatives (default: 42)")
    pop.add_argument("--max-len", type=int, default=50, help="sequence length of the split (default: 50)")
    pop.set_defaults(func=cmd_data_popularity)
    imp = dsub.add_parser("import", help="turn an interaction log (CSV) into the S3-Rec format with 5-core filtering")
    imp.add_argument("log", help="the interaction log, a delimited text file with a header line")
    imp.add_argument("--user", required=True, help="user column")
    imp.add_argument("--item", required=True, help="item column")
    imp.add_argument("--time", required=True, help="timestamp column: numbers (e.g. Unix seconds) or dates pandas "
                     "can parse, one format for the column")
    imp.add_argument("--sep", default=None, help="field separator (default: sniffed)")
    imp.add_argument("--min-count", type=int, default=5, help="k of the k-core filtering (default: 5)")
    imp.add_argument("--out", help="output .txt (default: <log name>.txt in the current folder; never the log itself)")
    imp.set_defaults(func=cmd_data_import)

    from .experiments import GRIDS, PROFILES

    def grid_options(p):
        p.add_argument("grid", help=f"one of {', '.join(GRIDS)}")
        p.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)} (default: smoke)")
        p.add_argument("--only", nargs="+", action="extend", metavar="KEY=VALUE",
                       help="keep the cells whose config field, model option (pretrain_epochs, pretrain_recipe) "
                            "or label has this value (values comma-separated)")
        p.add_argument("--results-dir", default="results", help="the store's root folder (default: results)")

    run = sub.add_parser("run", help="run a grid's missing cells into results/<profile>/<grid>/, print the table")
    grid_options(run)
    run.add_argument("--executor", default="local", choices=["local", "subprocess", "inprocess", "dask"],
                     help="local (default): one subprocess per cell (in-process for the smoke profile unless "
                          "--jobs > 1); subprocess/inprocess force either; dask: one task per cell")
    run.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="train up to N cells at once, each in its own subprocess (default: 1); each gets "
                          "OMP_NUM_THREADS = cores // N unless set. On a GPU, N cells share the device")
    run.add_argument("--scheduler", help="dask scheduler address, e.g. tcp://host:8786")
    run.add_argument("--device", help="override the profile's device (auto, cpu, cuda); not part of the key")
    run.add_argument("--quiet", action="store_true", help="no per-cell lines")
    run.set_defaults(func=cmd_run)
    progress = sub.add_parser("progress", help="the cells of a profile that are training or were interrupted: "
                              "epochs done, best epoch, training time (from their per-epoch checkpoints); and unfinished "
                              "S3-Rec pretrainings")
    park = sub.add_parser("park", help="copy the checkpoints of interrupted or running cells and S3-Rec pretrainings "
                          "into <results-dir>/<profile>/parked/ (tracked: commit it, and a fresh clone's runner resumes "
                          "them)")
    for command, func in ((progress, cmd_progress), (park, cmd_park)):
        command.add_argument("--profile", default="paper", help=f"one of {', '.join(PROFILES)} (default: paper)")
        command.add_argument("--results-dir", default="results", help="the store's root folder (default: results)")
        command.set_defaults(func=func)
    report = sub.add_parser("report", help="print the stored results of a grid next to the paper's numbers")
    grid_options(report)
    report.set_defaults(func=cmd_report)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (SeqrecError, FileNotFoundError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else repr(exc)
        print(f"seqrec: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
