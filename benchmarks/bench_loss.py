"""Benchmark of the CCE loss step: naive (materialised logits) vs the chunked kernel vs the matmul floor.

The loss step goes from leaves H (P, D) and E (N, D) with ``requires_grad`` to the loss and both gradients.

    python benchmarks/bench_loss.py                 # Beauty's shapes + catalog sweep (10k, 100k, 1M items)
    python benchmarks/bench_loss.py --sweep 10000   # a shorter sweep
    python benchmarks/bench_loss.py --epoch         # + one SASRec training epoch on Beauty, cce vs cce_naive

Timing: medians over ``--reps`` rounds; the Beauty cases are interleaved round by round in one process so
that load from other processes hits them alike. Peak memory: every case is also run once in its own
subprocess; on CPU the figure is the resident high-water mark (VmHWM, reset just before the step) minus the
resident size just before it (the step's own peak above its inputs), on CUDA ``torch.cuda.max_memory_allocated`` above the inputs.
Not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from seqrec import fastce, provenance  # noqa: E402

NAIVE_LIMIT_GB = 8.0


# --------------------------------------------------------------------------- the cases
def make_inputs(P: int, N: int, D: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h = (torch.randn(P, D, generator=g) * 0.5).to(device).requires_grad_()
    e = (torch.randn(N, D, generator=g) * 0.5).to(device).requires_grad_()
    t = torch.randint(0, N, (P,), generator=g).to(device)
    return h, e, t


def step_naive(h, e, t):
    F.cross_entropy((h @ e.T).float(), t).backward()


def step_ours(h, e, t, chunk_size=fastce.DEFAULT_CHUNK_SIZE, block_size=fastce.DEFAULT_BLOCK_SIZE):
    fastce.chunked_cross_entropy(h, e, t, chunk_size=chunk_size, block_size=block_size).backward()


def step_floor(h, e, t):
    """The three products any exact implementation does: H Eᵀ, then G E and Gᵀ H (G of the logits' shape)."""
    with torch.no_grad():
        g = h @ e.T
        g @ e
        g.T @ h


def step_cut_ce(h, e, t):
    from cut_cross_entropy import linear_cross_entropy  # CUDA/Triton only

    linear_cross_entropy(h, e, t).backward()


STEPS = {"naive": step_naive, "ours": step_ours, "floor": step_floor, "cut-cross-entropy": step_cut_ce}


def naive_gb(P: int, N: int) -> float:
    """Rough peak of the naive step: logits, log-softmax and the logits' gradient, float32."""
    return 3 * P * N * 4 / 1e9


def sync(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> None:
    provenance.reset_peak_memory(torch.device("cpu"))


def peak_rss_bytes() -> int:
    """VmHWM, this process's own resident high-water mark (see :func:`seqrec.provenance.peak_memory_mb`)."""
    return int(provenance.peak_memory_mb(torch.device("cpu")) * 2**20)


def run_case(method: str, P: int, N: int, D: int, device: str, reps: int) -> dict:
    """Run ``method`` (warm-up + ``reps`` timed) in this process; the memory figure is the first step's peak."""
    h, e, t = make_inputs(P, N, D, device)
    step = STEPS[method]
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        reset_peak_rss()
        base = rss_bytes()
    t0 = time.perf_counter()
    step(h, e, t)
    sync(device)
    times = [time.perf_counter() - t0]
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = peak_rss_bytes() - base
    for _ in range(reps):
        h.grad = e.grad = None
        t0 = time.perf_counter()
        step(h, e, t)
        sync(device)
        times.append(time.perf_counter() - t0)
    return {"peak_mb": peak / 2**20, "times": times[1:] or times}


def in_subprocess(method: str, P: int, N: int, D: int, device: str, reps: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", method, str(P), str(N), str(D), device, str(reps)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def cut_ce_note(device: str) -> str | None:
    """Why cut-cross-entropy is not in the table, or None when it can run."""
    if not device.startswith("cuda"):
        return "cut-cross-entropy: not run, it needs CUDA + Triton and this device is CPU"
    try:
        import cut_cross_entropy  # noqa: F401
    except ImportError:
        return "cut-cross-entropy: not run, the package is not installed (pip install cut-cross-entropy)"
    return None


# --------------------------------------------------------------------------- the tables
def beauty_table(device: str, reps: int) -> pd.DataFrame:
    P, N, D = 256 * 50, 12_102, 64
    methods = ["floor", "naive", "ours"] + ([] if cut_ce_note(device) else ["cut-cross-entropy"])
    h, e, t = make_inputs(P, N, D, device)
    times = {m: [] for m in methods}
    for m in methods:  # warm-up
        STEPS[m](h, e, t)
    for _ in range(reps):  # interleaved rounds
        for m in methods:
            h.grad = e.grad = None
            sync(device)
            t0 = time.perf_counter()
            STEPS[m](h, e, t)
            sync(device)
            times[m].append(time.perf_counter() - t0)
    del h, e, t
    rows = []
    for m in methods:
        mem = in_subprocess(m, P, N, D, device, 0)
        rows.append({"method": m, "median_s": statistics.median(times[m]), "min_s": min(times[m]),
                     "peak_mb": mem.get("peak_mb", float("nan"))})
    table = pd.DataFrame(rows).set_index("method")
    ours = table.loc["ours", "median_s"]
    table["x_floor"] = table["median_s"] / table.loc["floor", "median_s"]
    table["x_ours"] = table["median_s"] / ours
    return table


def sweep_table(device: str, sizes: list[int], reps: int, P: int = 256 * 50, D: int = 64) -> tuple[pd.DataFrame, list[str]]:
    rows, notes = [], []
    for N in sizes:
        for m in ("naive", "ours"):
            if m == "naive" and naive_gb(P, N) > NAIVE_LIMIT_GB:
                notes.append(f"naive skipped at N={N}: its logits, log-softmax and gradient need ~{naive_gb(P, N):.0f} GB "
                             f"(> {NAIVE_LIMIT_GB:.0f} GB)")
                continue
            r = in_subprocess(m, P, N, D, device, reps if N <= 20_000 else 0)
            if "error" in r:
                notes.append(f"{m} at N={N} failed: {r['error']}")
                continue
            rows.append({"items": N, "method": m, "median_s": statistics.median(r["times"]), "runs": len(r["times"]),
                         "peak_mb": r["peak_mb"]})
    return pd.DataFrame(rows).set_index(["items", "method"]), notes


def epoch_table(device: str, batches: int | None) -> pd.DataFrame:
    """One SASRec training epoch on Beauty (the trainer's inner loop), loss cce vs cce_naive."""
    from seqrec import data as data_mod
    from seqrec import losses, models
    from seqrec.config import TrainConfig

    dataset = data_mod.load("Beauty")
    split = data_mod.split(dataset, 50)
    rows = []
    for loss in ("cce_naive", "cce"):
        config = TrainConfig(data="Beauty", loss=loss, device=device)
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        model = models.build(config, dataset.num_items).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        spec, opts = losses.get(loss), losses.LossOptions(generator=generator)
        order = torch.randperm(split.train_inputs.shape[0], generator=generator)
        starts = list(range(0, len(order), config.batch_size))[:batches]
        model.train()
        warm = split.train_inputs[:config.batch_size].to(device), split.train_targets[:config.batch_size].to(device)
        spec.fn(model(warm[0]), model.item_embeddings(), warm[1], opts).backward()  # warm-up, no step
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        t0 = time.perf_counter()
        total = 0.0
        for start in starts:
            rows_ = order[start:start + config.batch_size]
            inputs, targets = split.train_inputs[rows_].to(device), split.train_targets[rows_].to(device)
            loss_value = spec.fn(model(inputs), model.item_embeddings(), targets, opts)
            optimizer.zero_grad(set_to_none=True)
            loss_value.backward()
            optimizer.step()
            total += loss_value.item()
        sync(device)
        rows.append({"loss": loss, "batches": len(starts), "seconds": time.perf_counter() - t0,
                     "mean_train_loss": total / len(starts)})
    table = pd.DataFrame(rows).set_index("loss")
    table["x_cce"] = table["seconds"] / table.loc["cce", "seconds"]
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--reps", type=int, default=3, help="timed rounds per case (after one warm-up)")
    p.add_argument("--sweep", type=int, nargs="*", default=[10_000, 100_000, 1_000_000], help="catalog sizes")
    p.add_argument("--no-beauty", action="store_true", help="skip the table at Beauty's shapes")
    p.add_argument("--epoch", action="store_true", help="also time one SASRec training epoch on Beauty")
    p.add_argument("--epoch-batches", type=int, default=None, help="time only the first N batches of the epoch")
    p.add_argument("--case", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.case:
        method, P, N, D, device, reps = args.case
        print(json.dumps(run_case(method, int(P), int(N), int(D), device, int(reps))))
        return 0

    pd.set_option("display.width", 200)
    fmt = {"float_format": lambda v: f"{v:.3g}"}
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, chunk {fastce.DEFAULT_CHUNK_SIZE} items x "
          f"block {fastce.DEFAULT_BLOCK_SIZE} positions; peak_mb = the step's own peak "
          f"({'CUDA max_memory_allocated' if args.device.startswith('cuda') else 'VmHWM after - RSS before, own subprocess'})")
    note = cut_ce_note(args.device)
    if not args.no_beauty:
        print(f"\n== loss step at Beauty's shapes: P = 256 x 50 = 12800 positions, N = 12102 items, D = 64; "
              f"{args.reps} interleaved rounds ==")
        print(beauty_table(args.device, args.reps).to_string(**fmt))
    if args.sweep:
        print(f"\n== catalog sweep: P = 12800, D = 64 (time: median of {args.reps} runs for N <= 20000, else 1 run) ==")
        table, notes = sweep_table(args.device, args.sweep, args.reps)
        print(table.to_string(**fmt))
        for n in notes:
            print("note:", n)
    if note:
        print("note:", note)
    if args.epoch:
        which = f"first {args.epoch_batches} batches" if args.epoch_batches else "one full epoch"
        print(f"\n== SASRec training on Beauty ({which}, batch 256, max_len 50) ==")
        print(epoch_table(args.device, args.epoch_batches).to_string(**fmt))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
