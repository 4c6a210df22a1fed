"""Ranking metrics: HIT@k, NDCG@k and MRR, for full ranking over all items and for sampled candidates.

The rank of the target is 0-based: the number of candidates placed ahead of it.

Ties (``ties=``):
- ``"pessimistic"`` (default): every other candidate with the *same* score as the target counts as ahead.
  A model whose scores collapsed to a constant therefore scores 0, as it should.
- ``"optimistic"``: only strictly higher scores count. This is what ``argsort``-style code that keeps the
  target first does by accident, and it is how a collapsed model scores HIT@10 = 1 on sampled metrics
  (see the BPR/TOP1 rows of the paper's Figure 1 log). Offered to measure that effect, not to report.

Seen items (``exclude=``) in full ranking:
- ``"-inf"`` (default): removed from the ranking (score −inf; a −inf target is a miss).
- ``"zero"``: their score is set to 0, as the authors' code does; they can then outrank the target.

With HIT@k = [rank < k], NDCG@k = [rank < k] / log2(rank + 2), MRR = 1 / (rank + 1), averaged over users.
"""
from __future__ import annotations

import math

import torch

KS = (1, 5, 10, 20)
TIES = ("pessimistic", "optimistic")
EXCLUDE = ("-inf", "zero")


def target_rank(scores: torch.Tensor, target_index: torch.Tensor, ties: str = "pessimistic") -> torch.Tensor:
    """Rank of the target among the candidates.

    scores: (B, C) float; target_index: (B,) long column of the target. Returns (B,) long ranks.
    """
    if ties not in TIES:
        raise ValueError(f"unknown ties {ties!r}; allowed: {', '.join(TIES)}")
    target_score = scores.gather(1, target_index[:, None])
    ahead = (scores > target_score).sum(1)
    if ties == "pessimistic":
        ahead = ahead + (scores == target_score).sum(1) - 1  # the target ties with itself
    return ahead


def metrics_from_ranks(ranks: torch.Tensor, ks=KS, prefix: str = "") -> dict[str, float]:
    """Mean HIT@k, NDCG@k and MRR over users, from (B,) 0-based ranks."""
    ranks = ranks.double()
    out = {}
    for k in ks:
        hit = ranks < k
        out[f"{prefix}HIT@{k}"] = hit.double().mean().item()
        out[f"{prefix}NDCG@{k}"] = torch.where(hit, 1.0 / torch.log2(ranks + 2), 0.0).mean().item()
    out[f"{prefix}MRR"] = (1.0 / (ranks + 1)).mean().item()
    return out


def mask_seen(scores: torch.Tensor, seen: torch.Tensor, exclude: str = "-inf") -> torch.Tensor:
    """Full-ranking scores with padding and seen items excluded.

    scores: (B, N+1) over item ids 0..N (column 0 is padding); seen: (B, S) item ids, 0-padded.
    Returns a new (B, N+1) tensor: column 0 is −inf; seen items are −inf or 0 as ``exclude`` says.
    """
    if exclude not in EXCLUDE:
        raise ValueError(f"unknown exclude {exclude!r}; allowed: {', '.join(EXCLUDE)}")
    fill = -math.inf if exclude == "-inf" else 0.0
    scores = scores.clone()
    scores.scatter_(1, seen, fill)  # seen is 0-padded: column 0 gets `fill` too, overwritten next
    scores[:, 0] = -math.inf
    return scores


def full_ranks(scores: torch.Tensor, targets: torch.Tensor, seen: torch.Tensor, *, exclude: str = "-inf",
               ties: str = "pessimistic") -> torch.Tensor:
    """(B,) ranks of targets (B,) among all items, from scores (B, N+1) and seen items (B, S)."""
    return target_rank(mask_seen(scores, seen, exclude)[:, 1:], targets - 1, ties)  # column 0 is not an item


def sampled_ranks(scores: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor, *,
                  ties: str = "pessimistic") -> torch.Tensor:
    """(B,) ranks of targets (B,) among themselves and their negatives (B, 99), from full scores (B, N+1)."""
    candidates = torch.cat([targets[:, None], negatives], 1)
    picked = scores.gather(1, candidates)
    return target_rank(picked, torch.zeros_like(targets), ties)
