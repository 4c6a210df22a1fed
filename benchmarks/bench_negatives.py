"""Benchmark of scoring k sampled negatives: gathering their embeddings vs scoring every item and picking k columns.

:func:`seqrec.losses.negative_scores` takes the second way when k·D ≥ N+1 (the gathered (P, k, D) tensor would
hold at least as many numbers as the (P, N+1) scores). This prints, for Beauty's shapes (P positions of a batch,
N = 12,101 items, D = 64) and a sweep of k, the median time of a BCE loss step (forward and both gradients) each
way and which one the rule picks. Not a test: nothing is asserted.

    python benchmarks/bench_negatives.py                  # k in 1 10 100 200 300 500 1000, 1 thread
    python benchmarks/bench_negatives.py --threads 2 --reps 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from seqrec import losses  # noqa: E402


def gathered(h, emb, neg):
    return torch.einsum("pd,pkd->pk", h, emb[neg])


def every_item(h, emb, neg):
    return (h @ emb.T).gather(1, neg)


def step_seconds(score, h0, emb0, neg, reps: int) -> float:
    times = []
    for _ in range(reps):
        h, emb = h0.clone().requires_grad_(), emb0.clone().requires_grad_()
        start = time.perf_counter()
        F.logsigmoid(-score(h, emb, neg)).mean().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=1800, help="P, non-padded positions per batch (Beauty, batch 256: about 1,800)")
    parser.add_argument("--items", type=int, default=12101)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 10, 100, 200, 300, 500, 1000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    h0 = torch.randn(args.positions, args.dim, generator=g) * 0.5
    emb0 = torch.randn(args.items + 1, args.dim, generator=g) * 0.5
    rows = []
    for k in args.ks:
        neg = torch.randint(1, args.items + 1, (args.positions, k), generator=g)
        picked = "every item" if k * args.dim >= args.items + 1 else "gathered"
        gather_s = step_seconds(gathered, h0, emb0, neg, args.reps)
        full_s = step_seconds(every_item, h0, emb0, neg, args.reps)
        rule_s = step_seconds(lambda h, e, n: losses.negative_scores(h, e, n), h0, emb0, neg, args.reps)
        rows.append({"k": k, "gathered_ms": 1000 * gather_s, "every_item_ms": 1000 * full_s, "rule_picks": picked,
                     "rule_ms": 1000 * rule_s, "gathered_numbers": args.positions * k * args.dim,
                     "every_item_numbers": args.positions * (args.items + 1)})
    print(f"P={args.positions} N={args.items} D={args.dim} threads={args.threads} torch {torch.__version__}")
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.1f"))


if __name__ == "__main__":
    main()
