"""Seconds per training epoch of SASRec on a dataset, per loss, on the current device. Prints a table.

    python benchmarks/bench_epoch.py [--data Beauty] [--losses bce cce] [--epochs 1] [--device auto]

One epoch = one pass over every user's training sequence (batch 256), forward + loss + backward + Adam
step, as in `seqrec.trainer.train`, without validation. Peak memory: CUDA max allocated, or on CPU the
growth of the process's peak RSS during the loss's epochs (each loss in a fresh subprocess).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def one(data: str, loss: str, epochs: int, device: str) -> dict:
    import torch

    from seqrec import TrainConfig, data as data_mod, losses, models, provenance, trainer

    config = TrainConfig(data=data, loss=loss, device=device)
    dev = trainer.resolve_device(device)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    split = data_mod.split(data_mod.load(data), config.max_len)
    model = models.build(config, split.num_items).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    spec, opts = losses.get(loss), losses.LossOptions(config.num_negatives, gen, config.mask_prob)
    rss0 = provenance.peak_memory_mb(dev)
    provenance.reset_peak_memory(dev)
    times = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        trainer.train_epoch(model, split, opt, spec, opts, batch_size=config.batch_size, generator=gen, device=dev,
                            epoch=epoch)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = provenance.peak_memory_mb(dev)
    return {"data": data, "loss": loss, "device": provenance.device_name(dev), "seconds_per_epoch": min(times),
            "epochs_timed": epochs, "peak_memory_mb": peak,
            "peak_rss_growth_mb": None if dev.type == "cuda" else peak - rss0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="Beauty")
    parser.add_argument("--losses", nargs="+", default=["bce", "cce"])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per loss; the fastest is reported")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args.data, args.losses[0], args.epochs, args.device)))
        return
    import pandas as pd

    rows = []
    for loss in args.losses:
        out = subprocess.run([sys.executable, __file__, "--child", "--data", args.data, "--losses", loss,
                              "--epochs", str(args.epochs), "--device", args.device], capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"bench_epoch: {loss} failed: {out.stderr.strip().splitlines()[-1]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
