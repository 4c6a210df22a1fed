"""The paper's loss family, one function each, one signature, registered by name.

Every loss is ``loss(hidden, item_emb, targets, opts) -> scalar`` with

- ``hidden``: (B, L, D) the model's hidden states,
- ``item_emb``: (N+1, D) the item embeddings, row 0 = padding (never a candidate),
- ``targets``: (B, L) the next item at each position, 0 where the position is padding,
- ``opts``: :class:`LossOptions` (number of negatives, random generator, mask probability, and the items each
  row's negatives must avoid).

Notation: h = hidden state at a position, s_i = h·e_i the score of item i, t = the target, j = a sampled
negative (uniform over the N−1 items other than t, or with ``opts.history`` over the items the user never
interacted with, as the authors' code draws them), σ = the logistic function. Losses are averaged over
the non-padded positions they use. ``get(name)`` returns a :class:`LossSpec`; a loss may carry a
``prepare`` hook that changes the batch before the forward pass (``mlm`` masks inputs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .errors import SeqrecError
from .fastce import chunked_cross_entropy


@dataclass
class LossOptions:
    """``history``: None (negatives: any item but the position's target), or (B, S) the items of each row's
    user, sorted ascending per row (0 = padding), none of which may be drawn as that row's negative
    (``negative_pool="unseen"``; the trainer sets it batch by batch)."""

    num_negatives: int = 1
    generator: torch.Generator | None = None
    mask_prob: float = 0.2
    history: torch.Tensor | None = None


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, LossOptions], torch.Tensor]
PrepareFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass
class LossSpec:
    name: str
    fn: LossFn
    uses_negatives: bool = False
    prepare: PrepareFn | None = None


REGISTRY: dict[str, LossSpec] = {}


def register(name: str, uses_negatives: bool = False, prepare: PrepareFn | None = None):
    def wrap(fn: LossFn) -> LossFn:
        REGISTRY[name] = LossSpec(name, fn, uses_negatives, prepare)
        return fn
    return wrap


def get(name: str) -> LossSpec:
    if name not in REGISTRY:
        raise SeqrecError(f"unknown loss {name!r}; allowed: {', '.join(REGISTRY)}")
    return REGISTRY[name]


# --------------------------------------------------------------------------- helpers
def sample_negatives(targets: torch.Tensor, num_items: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, L, k) items drawn uniformly from 1..N without the target (exact: draw from N−1, skip over t)."""
    draw = torch.randint(1, num_items, (*targets.shape, k), generator=generator, device="cpu").to(targets.device)
    return draw + (draw >= targets[..., None]).long()


# A draw rejected this often in a row means the user has interacted with (nearly) every item.
MAX_REDRAWS = 1000


def sample_unseen_negatives(targets: torch.Tensor, history: torch.Tensor, num_items: int, k: int,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, L, k) items drawn uniformly from the items of 1..N that are not in the row's ``history`` (B, S),
    sorted ascending per row (0 = padding): rejection sampling, each rejected draw drawn again. The targets are
    the user's own items, so ``history`` holds them: they are never drawn either."""
    rows, length = targets.shape
    history = history.cpu()

    def seen(draw):  # (B, M) -> (B, M) bool: is the draw in its row's history?
        at = torch.searchsorted(history, draw).clamp(max=history.shape[1] - 1)
        return history.gather(1, at) == draw

    draw = torch.randint(1, num_items + 1, (rows, length * k), generator=generator)
    bad = seen(draw)
    for _ in range(MAX_REDRAWS):
        if not bad.any():
            return draw.view(rows, length, k).to(targets.device)
        draw[bad] = torch.randint(1, num_items + 1, (int(bad.sum()),), generator=generator)
        bad = seen(draw)
    raise SeqrecError(f"negative_pool 'unseen': no unseen negative found in {MAX_REDRAWS} draws; a user has "
                      f"interacted with (nearly) every one of the {num_items} items; use negative_pool 'others'")


def _pos_neg_scores(hidden, item_emb, targets, opts):
    """Scores of the targets (P,) and of k sampled negatives (P, k) at the P non-padded positions."""
    mask = targets > 0
    h, t = hidden[mask], targets[mask]
    if opts.history is None:
        neg = sample_negatives(t, item_emb.shape[0] - 1, opts.num_negatives, opts.generator)
    else:
        neg = sample_unseen_negatives(targets, opts.history, item_emb.shape[0] - 1, opts.num_negatives,
                                      opts.generator)[mask]
    pos_score = (h * item_emb[t]).sum(-1)
    return pos_score, negative_scores(h, item_emb, neg)


def negative_scores(h: torch.Tensor, item_emb: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Scores (P, k) of the sampled items ``neg`` (P, k) for the hidden states ``h`` (P, D): the same values two
    ways, whichever holds fewer numbers. Gathering the negatives' embeddings holds P·k·D; scoring every item and
    picking the k columns holds P·(N+1). With k·D ≥ N+1 (BCE-1000 on Beauty: 64,000 vs 12,102) the second is
    also several times faster on a CPU (``benchmarks/bench_negatives.py``)."""
    if neg.shape[-1] * h.shape[-1] >= item_emb.shape[0]:
        return (h @ item_emb.T).gather(1, neg)
    return torch.einsum("pd,pkd->pk", h, item_emb[neg])


def full_cross_entropy(hidden: torch.Tensor, item_emb: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy over items 1..N at the positions where ``targets > 0``, exact, computed chunk by
    chunk over the items without holding the (positions × N) logits (:mod:`seqrec.fastce`)."""
    mask = targets > 0
    if not mask.any():  # e.g. an MLM batch where no position was drawn: no signal, no NaN
        return hidden.sum() * 0.0
    return chunked_cross_entropy(hidden[mask], item_emb[1:], targets[mask] - 1)


def materialised_cross_entropy(hidden: torch.Tensor, item_emb: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The same as :func:`full_cross_entropy` with the (positions × N) logits materialised (the baseline)."""
    mask = targets > 0
    if not mask.any():
        return hidden.sum() * 0.0
    logits = hidden[mask] @ item_emb[1:].T  # (P, N)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # the reduction in float32 at least
    return F.cross_entropy(logits, targets[mask] - 1)


# --------------------------------------------------------------------------- the losses
@register("bce", uses_negatives=True)
def bce(hidden, item_emb, targets, opts: LossOptions) -> torch.Tensor:
    """Binary cross-entropy with k sampled negatives (SASRec's loss; k = 1 in the paper):
    ``-log σ(s_t) - (1/k) Σ_j log(1 - σ(s_j))`` at every non-padded position."""
    pos, neg = _pos_neg_scores(hidden, item_emb, targets, opts)
    return (-F.logsigmoid(pos) - F.logsigmoid(-neg).mean(-1)).mean()


@register("bpr", uses_negatives=True)
def bpr(hidden, item_emb, targets, opts: LossOptions) -> torch.Tensor:
    """Bayesian personalised ranking: ``-(1/k) Σ_j log σ(s_t - s_j)``."""
    pos, neg = _pos_neg_scores(hidden, item_emb, targets, opts)
    return -F.logsigmoid(pos[:, None] - neg).mean()


@register("bpr_max", uses_negatives=True)
def bpr_max(hidden, item_emb, targets, opts: LossOptions) -> torch.Tensor:
    """BPR-max (GRU4Rec, without its score regulariser): ``-log Σ_j softmax(s_neg)_j σ(s_t - s_j)``."""
    pos, neg = _pos_neg_scores(hidden, item_emb, targets, opts)
    weights = torch.softmax(neg, -1)
    return -torch.log((weights * torch.sigmoid(pos[:, None] - neg)).sum(-1) + 1e-24).mean()


@register("top1", uses_negatives=True)
def top1(hidden, item_emb, targets, opts: LossOptions) -> torch.Tensor:
    """TOP1 (GRU4Rec): ``(1/k) Σ_j σ(s_j - s_t) + σ(s_j²)``."""
    pos, neg = _pos_neg_scores(hidden, item_emb, targets, opts)
    return (torch.sigmoid(neg - pos[:, None]) + torch.sigmoid(neg**2)).mean()


@register("top1_max", uses_negatives=True)
def top1_max(hidden, item_emb, targets, opts: LossOptions) -> torch.Tensor:
    """TOP1-max (GRU4Rec): ``Σ_j softmax(s_neg)_j (σ(s_j - s_t) + σ(s_j²))``."""
    pos, neg = _pos_neg_scores(hidden, item_emb, targets, opts)
    weights = torch.softmax(neg, -1)
    return (weights * (torch.sigmoid(neg - pos[:, None]) + torch.sigmoid(neg**2))).sum(-1).mean()


@register("ce")
def ce(hidden, item_emb, targets, opts: LossOptions) -> torch.Tensor:
    """Cross-entropy at the last position only, softmax over all N items:
    ``-s_t + log Σ_{i=1..N} exp(s_i)`` with h the last hidden state (inputs are left-padded, so the
    last position is always a real one)."""
    last = torch.zeros_like(targets)
    last[:, -1] = targets[:, -1]
    return full_cross_entropy(hidden, item_emb, last)


@register("cce_naive")
def cce_naive(hidden, item_emb, targets, opts: LossOptions) -> torch.Tensor:
    """Cumulative cross-entropy, the paper's loss: the cross-entropy above at *every* non-padded position,
    averaged over positions. This version materialises the (positions × N) logits (the baseline of ``cce``)."""
    return materialised_cross_entropy(hidden, item_emb, targets)


@register("cce")
def cce(hidden, item_emb, targets, opts: LossOptions) -> torch.Tensor:
    """Cumulative cross-entropy (the paper's loss): ``mean over positions p with t_p > 0 of
    -s_{t_p} + log Σ_{i=1..N} exp(s_i)``, by the chunked kernel of :mod:`seqrec.fastce`."""
    return full_cross_entropy(hidden, item_emb, targets)


def prepare_mlm(model, inputs: torch.Tensor, targets: torch.Tensor, opts: LossOptions):
    """Choose a random fraction ``mask_prob`` of the non-padded positions (Bernoulli per position).

    A model with its own masked-item task (``model.prepare_mlm``, e.g. BERT4Rec's cloze with a [MASK]
    token) does it its own way. Otherwise, as the authors ran it for SASRec in Figure 1: the inputs at the
    chosen positions are dropped (set to 0, i.e. padding) and only those positions keep their next-item
    target. Returns the new ``(inputs, targets)``.
    """
    if hasattr(model, "prepare_mlm"):
        return model.prepare_mlm(inputs, targets, opts)
    chosen = (torch.rand(inputs.shape, generator=opts.generator).to(inputs.device) < opts.mask_prob) & (inputs > 0)
    return inputs.masked_fill(chosen, 0), targets.masked_fill(~chosen, 0)


@register("mlm", prepare=prepare_mlm)
def mlm(hidden, item_emb, targets, opts: LossOptions) -> torch.Tensor:
    """Masked-item loss: softmax cross-entropy over all items at the positions ``prepare_mlm`` chose
    (the other positions' targets were set to 0)."""
    return cce(hidden, item_emb, targets, opts)
