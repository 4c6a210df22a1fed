"""S3-Rec (Zhou et al. 2020): SASRec's encoder, pretrained with four self-supervised tasks, then finetuned.

:class:`S3RecPretrainer` holds the encoder (a :class:`SASRec` with bidirectional attention during pretraining
and one extra embedding row, the [MASK] token, id N+1), attribute embeddings (A+1, D) and one D×D matrix per
task. On a batch of sequences x (B, L) (each user's ``items[:-2]``, so validation and test items are unseen):

- the *masked-item sequence* x̃: each real position is replaced by [MASK] with probability p = 0.2;
  F = encoder(x̃) (B, L, D); e_i item, e_a attribute embeddings; A_i the attributes of item i;
- **AAP** (associated attribute prediction, weight 0.2): at the unmasked real positions t,
  ``BCE(σ(F_tᵀ W_AAP e_a), [a ∈ A_{x_t}])`` averaged over all attributes a;
- **MIP** (masked item prediction, weight 1.0): at the masked positions,
  ``-log σ(F_tᵀ W_MIP e_{x_t}) - log(1 - σ(F_tᵀ W_MIP e_j))`` with one item j ≠ x_t drawn uniformly;
- **MAP** (masked attribute prediction, weight 1.0): at the masked positions, AAP's formula with W_MAP;
- **SP** (segment prediction, weight 0.5): per sequence of n ≥ 2 items, a segment of length ℓ ~ U{1..⌊n/2⌋}
  at a uniform start is replaced by [MASK]s; s = encoder(that)[last], s⁺ = encoder(the segment alone)[last],
  s⁻ = the same for the segment of another sequence in the batch;
  ``-log σ(sᵀ W_SP s⁺) - log(1 - σ(sᵀ W_SP s⁻))``.

Loss = 0.2·AAP + MIP + MAP + 0.5·SP, each averaged over the positions (sequences) it uses.

That is the ``"seqrec"`` recipe, the default. The ``"s3rec"`` recipe (``model_options["pretrain_recipe"]``) follows
the S3-Rec authors' public code instead, on which the paper's S3-Rec numbers rest: every prefix of a user's
training items is a sample (:func:`seqrec.pretrain.pretraining_sequences`), the last item of a sample is always
masked, MIP draws its negative among the items not in the sample, MIP and SP are pairwise on sigmoid scores
(``-log σ(σ(s⁺) - σ(s⁻))``), SP's segments stay in place with the rest masked and the negative segment is cut from
all users' items, and each loss is a sum, not a mean (so AAP and MAP, summed over attributes, weigh most).

Finetuning: :class:`S3Rec` is a causal SASRec with the same parameter shapes (the [MASK] row included, never a
candidate); the ``s3rec`` factory loads the encoder weights from the checkpoint of
:func:`seqrec.pretrain.ensure_pretrained` and refuses to start without it (see ``seqrec.pretrain``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SeqrecError
from ..losses import sample_unseen_negatives
from .base import init_normal
from .sasrec import SASRec

WEIGHTS = {"aap": 0.2, "mip": 1.0, "map": 1.0, "sp": 0.5}
MASK_PROB = 0.2
RECIPES = ("seqrec", "s3rec")  # how pretraining samples and reduces: ours (default) or the S3-Rec authors' code


class S3Rec(SASRec):
    """The finetuned model: causal SASRec with the pretrained encoder's parameters (incl. the [MASK] row)."""

    def __init__(self, num_items: int, max_len: int = 50, hidden_size: int = 64, num_layers: int = 2,
                 num_heads: int = 2, dropout: float = 0.5):
        super().__init__(num_items, max_len, hidden_size, num_layers, num_heads, dropout, causal=True, extra_tokens=1)


def right_align(seqs: torch.Tensor, keep: torch.Tensor, ends: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, L) → (B, L): the ``lengths[b]`` items of row b ending at position ``ends[b]``, left-padded with 0."""
    L = seqs.shape[1]
    src = torch.arange(L, device=seqs.device)[None, :] - (L - 1 - ends)[:, None]
    out = seqs.gather(1, src.clamp(min=0))
    valid = (src >= 0) & (torch.arange(L, device=seqs.device)[None, :] >= (L - lengths)[:, None]) & keep[:, None]
    return out.masked_fill(~valid, 0)


class S3RecPretrainer(nn.Module):
    def __init__(self, num_items: int, num_attributes: int, max_len: int = 50, hidden_size: int = 64,
                 num_layers: int = 2, num_heads: int = 2, dropout: float = 0.5):
        super().__init__()
        self.num_items, self.num_attributes = num_items, num_attributes
        self.mask_id = num_items + 1
        self.encoder = SASRec(num_items, max_len, hidden_size, num_layers, num_heads, dropout, causal=False, extra_tokens=1)
        D = hidden_size
        self.attr_emb = nn.Embedding(num_attributes + 1, D, padding_idx=0)
        self.w = nn.ModuleDict({name: nn.Linear(D, D) for name in WEIGHTS})
        self.attr_emb.apply(init_normal)
        self.w.apply(init_normal)

    def _attr_bce(self, states: torch.Tensor, task: str, items: torch.Tensor, attributes: torch.Tensor,
                  reduction: str = "mean") -> torch.Tensor:
        """(P, D) states, (P,) items, (N+1, A+1) multi-hot → BCE over positions and attributes 1..A (mean or sum)."""
        if states.shape[0] == 0:
            return states.sum() * 0.0
        logits = self.w[task](states) @ self.attr_emb.weight[1:].T  # (P, A)
        return F.binary_cross_entropy_with_logits(logits, attributes[items][:, 1:].float(), reduction=reduction)

    def losses(self, seqs: torch.Tensor, attributes: torch.Tensor, generator: torch.Generator | None = None,
               mask_prob: float = MASK_PROB, recipe: str = "seqrec",
               long_sequence: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """(B, L) left-padded sequences, (N+1, A+1) bool attributes → the four task losses (scalars).

        ``recipe`` (see :data:`RECIPES`): ``"seqrec"`` as in the module docstring; ``"s3rec"`` as in the S3-Rec
        authors' public code: the last item of every sequence is always masked; MIP's negative is drawn among the
        items not in the sequence; MIP and SP are pairwise on the sigmoid scores, ``-log σ(σ(s⁺) - σ(s⁻))``; SP's
        positive is the sequence with everything but the segment masked (the segment in place), its negative the
        same with a segment of the same length cut at a uniform place of ``long_sequence`` (T,) (every user's
        training items, concatenated); each loss is summed, not averaged.
        """
        if recipe not in RECIPES:
            raise SeqrecError(f"unknown pretrain_recipe {recipe!r}; allowed: {', '.join(RECIPES)}")
        authors = recipe == "s3rec"
        reduction = "sum" if authors else "mean"
        reduce = torch.sum if authors else torch.mean
        B, L = seqs.shape
        dev = seqs.device
        real = seqs > 0

        def rand(*shape):
            return torch.rand(shape, generator=generator).to(dev)

        # masked items: AAP on unmasked positions, MIP and MAP on masked ones
        chosen = (rand(B, L) < mask_prob) & real
        if authors:
            chosen[:, -1] = real[:, -1]
        hidden = self.encoder.encode(seqs.masked_fill(chosen, self.mask_id))
        out = {"aap": self._attr_bce(hidden[real & ~chosen], "aap", seqs[real & ~chosen], attributes, reduction)}
        h, pos = hidden[chosen], seqs[chosen]
        if h.shape[0]:
            if authors:  # among the items 1..N not in the sequence
                neg = sample_unseen_negatives(seqs, seqs.sort(dim=1).values, self.num_items, 1, generator)[chosen][:, 0]
            else:
                neg = torch.randint(1, self.num_items, pos.shape, generator=generator).to(dev)
                neg = neg + (neg >= pos).long()  # uniform over the other N-1 items
            q = self.w["mip"](h)
            emb = self.encoder.item_emb.weight
            s_pos, s_neg = (q * emb[pos]).sum(-1), (q * emb[neg]).sum(-1)
            if authors:
                mip = -F.logsigmoid(torch.sigmoid(s_pos) - torch.sigmoid(s_neg))
            else:
                mip = -F.logsigmoid(s_pos) - F.logsigmoid(-s_neg)
            out["mip"] = reduce(mip)
        else:
            out["mip"] = hidden.sum() * 0.0
        out["map"] = self._attr_bce(h, "map", pos, attributes, reduction)

        # segments
        n = real.sum(1)
        keep = n >= 2
        seg_len = 1 + (rand(B) * (n // 2).clamp(min=1)).long()
        start = (L - n) + (rand(B) * (n - seg_len + 1).clamp(min=1)).long()  # first position of the segment
        cols = torch.arange(L, device=dev)[None, :]
        in_seg = (cols >= start[:, None]) & (cols < (start + seg_len)[:, None]) & keep[:, None]
        if authors:
            if long_sequence is None:
                raise SeqrecError("pretrain_recipe 's3rec' needs long_sequence (every user's training items)")
            T = long_sequence.numel()
            cut = (rand(B) * (T - seg_len + 1).clamp(min=1)).long()  # where the negative segment starts in it
            source = long_sequence.to(dev)[(cut[:, None] + cols - start[:, None]).clamp(0, T - 1)]
            segment = torch.where(in_seg, seqs, self.mask_id).masked_fill(~real, 0)
            other_segment = torch.where(in_seg, source, self.mask_id).masked_fill(~real, 0)
            keep_sp = keep
        else:
            segment = right_align(seqs, keep, start + seg_len - 1, seg_len)
            other = torch.roll(torch.arange(B, device=dev), 1)
            other_segment = segment[other]
            keep_sp = keep & keep[other] & (B > 1)
        s = self.w["sp"](self.encoder.encode(seqs.masked_fill(in_seg, self.mask_id))[:, -1])
        d_pos = (s * self.encoder.encode(segment)[:, -1]).sum(-1)
        d_neg = (s * self.encoder.encode(other_segment)[:, -1]).sum(-1)
        if authors:
            sp = -F.logsigmoid(torch.sigmoid(d_pos) - torch.sigmoid(d_neg))
        else:
            sp = -F.logsigmoid(d_pos) - F.logsigmoid(-d_neg)
        out["sp"] = reduce(sp[keep_sp]) if keep_sp.any() else sp.sum() * 0.0
        return out

    def loss(self, seqs, attributes, generator=None, mask_prob: float = MASK_PROB, recipe: str = "seqrec",
             long_sequence: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        parts = self.losses(seqs, attributes, generator, mask_prob, recipe, long_sequence)
        total = sum(WEIGHTS[k] * v for k, v in parts.items())
        return total, {k: v.item() for k, v in parts.items()}
