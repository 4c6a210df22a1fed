"""Replay the first epochs of stored runs on this host, with the host's own kernels and held to AVX2 ones, and
compare each replayed curve with every stored one. Prints a table.

    SEQREC_DATA_DIR=../shared/data/s3rec python scripts/replay_kernels.py \
        results/paper/table2/Beauty_s3rec_cce_9651e628b1a414b9-r1.json \
        results/paper/ablations/Beauty_s3rec_cce_ff1157e20dc63df4-r1.json --epochs 2

The stored runs must share one configuration up to ``patience`` and ``epochs`` (a Table 2 cell and its patience-40
check), so their first epochs are the same computation. Why: a seed fixes every random draw, but not the rounding.
ATen, MKL and oneDNN pick vectorised kernels for the host's instruction set, and AVX2 and AVX-512 kernels sum in
different orders, so the same seed on two hosts gives curves that agree to about the seventh digit. A virtual
machine names its CPU "AMD EPYC" whatever its generation, so a record's ``device`` cannot tell them apart; records
now keep ``kernels`` (:func:`seqrec.provenance.kernels`). Holding all three libraries to AVX2 on an AVX-512 host
(``ATEN_CPU_CAPABILITY``, ``MKL_ENABLE_INSTRUCTIONS``, ``ONEDNN_MAX_CPU_ISA``) stands in for an AVX2 host: a
stored run that matches that replay exactly, and not the host's own, ran on an AVX2 host. The host's own kernels are
replayed twice, which checks the replay itself: the two agree bit for bit on any number of threads since training
turned on PyTorch's deterministic CPU kernels (:func:`seqrec.trainer.deterministic`); a run stored before that on
more than one thread (its ``device`` says how many) may differ from both in the last bits, whichever host it ran on.

Each replay runs in its own process (the libraries read those variables when they load) on as many threads as the
first stored run records; an S3-Rec run finetunes from the pretraining checkpoint under $SEQREC_CHECKPOINT_DIR
(or takes a parked copy back, as a runner does). ``seqrec park`` drops a pretraining once every cell finetuned from
it is stored, so on a fresh clone bring the one a replay needs back from git history first (the finished Table 2
pretrainings of Beauty, Toys_and_Games, Sports_and_Outdoors and Yelp are parked at commit 2935a9f:
``git checkout 2935a9f -- results/paper/parked/pretrain/<name>.pt``), or the replay pretrains it again.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HELD_TO_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def replay(config: dict, epochs: int) -> dict:
    """Train ``config`` for ``epochs`` epochs on the CPU in this process: ``{"kernels", "curve"}``."""
    from seqrec import TrainConfig, trainer

    result = trainer.train(TrainConfig.from_dict({**config, "epochs": epochs, "device": "cpu"}), progress=False)
    return {"kernels": result["provenance"]["kernels"], "curve": result["curve"]}


def max_difference(replayed: list[dict], stored: list[dict]) -> tuple[int, float]:
    """``(epochs compared, max |replayed − stored|)`` over the training loss and every validation metric."""
    from seqrec.analysis import curve_differences

    epochs, diffs = curve_differences(replayed, stored)
    if not diffs:
        raise SystemExit("error: the replay and the stored run share no epoch with values")
    return epochs, max(diffs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", type=Path, help="stored run records (JSON) of one configuration")
    parser.add_argument("--epochs", type=int, default=2, help="epochs to replay (default: 2)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 1:
        raise SystemExit(f"error: --epochs must be at least 1, got {args.epochs}")
    try:
        runs = [json.loads(path.read_text()) for path in args.records]
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"error: cannot read a stored run: {exc}")
    if args.worker:
        print(json.dumps(replay(runs[0]["config"], args.epochs)))
        return

    import pandas as pd

    from seqrec import TrainConfig

    keys = {TrainConfig.from_dict({**r["config"], "patience": 1, "epochs": 1}).key() for r in runs}
    if len(keys) > 1:
        raise SystemExit("error: the stored runs differ in more than patience and epochs; give runs of one configuration")
    threads = re.search(r"\((\d+) threads?\)", str(runs[0].get("provenance", {}).get("device")))
    env = {**os.environ, "OMP_NUM_THREADS": threads.group(1) if threads else "1"}
    rows, curves = [], {}
    for label, extra in (("host's own", {}), ("host's own, again", {}), ("held to AVX2", HELD_TO_AVX2)):
        done = subprocess.run([sys.executable, __file__, *map(str, args.records), "--epochs", str(args.epochs), "--worker"],
                              env={**env, **extra}, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"error: the replay ({label}) failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        replayed = json.loads(done.stdout.strip().splitlines()[-1])
        curves[label] = replayed["curve"]
        for path, run in zip(args.records, runs):
            epochs, diff = max_difference(replayed["curve"], run["curve"])
            rows.append({"replay": label, "kernels": replayed["kernels"], "stored run": path.name,
                         "stored at": (run.get("provenance") or {}).get("commit", "")[:7],
                         "epochs": epochs, "max |difference|": diff, "identical": diff == 0})
    print(pd.DataFrame(rows).to_string(index=False))
    epochs, diff = max_difference(curves["host's own"], curves["host's own, again"])
    print(f"two replays with the host's own kernels, {epochs} epochs: "
          + ("identical" if diff == 0 else f"max |difference| {diff:.3g}: training is not repeatable here"))


if __name__ == "__main__":
    main()
