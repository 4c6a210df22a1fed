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

Finetuning: :class:`S3Rec` is a causal SASRec with the same parameter shapes (the [MASK] row included, never a
candidate); the ``s3rec`` factory loads the encoder weights from the checkpoint of
:func:`seqrec.pretrain.ensure_pretrained` and refuses to start without it (see ``seqrec.pretrain``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import init_normal
from .sasrec import SASRec

WEIGHTS = {"aap": 0.2, "mip": 1.0, "map": 1.0, "sp": 0.5}
MASK_PROB = 0.2


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

    def _attr_bce(self, states: torch.Tensor, task: str, items: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """(P, D) states, (P,) items, (N+1, A+1) multi-hot → mean BCE over positions and attributes 1..A."""
        if states.shape[0] == 0:
            return states.sum() * 0.0
        logits = self.w[task](states) @ self.attr_emb.weight[1:].T  # (P, A)
        return F.binary_cross_entropy_with_logits(logits, attributes[items][:, 1:].float())

    def losses(self, seqs: torch.Tensor, attributes: torch.Tensor, generator: torch.Generator | None = None,
               mask_prob: float = MASK_PROB) -> dict[str, torch.Tensor]:
        """(B, L) left-padded sequences, (N+1, A+1) bool attributes → the four task losses (scalars)."""
        B, L = seqs.shape
        dev = seqs.device
        real = seqs > 0

        def rand(*shape):
            return torch.rand(shape, generator=generator).to(dev)

        # masked items: AAP on unmasked positions, MIP and MAP on masked ones
        chosen = (rand(B, L) < mask_prob) & real
        hidden = self.encoder.encode(seqs.masked_fill(chosen, self.mask_id))
        out = {"aap": self._attr_bce(hidden[real & ~chosen], "aap", seqs[real & ~chosen], attributes)}
        h, pos = hidden[chosen], seqs[chosen]
        if h.shape[0]:
            neg = torch.randint(1, self.num_items, pos.shape, generator=generator).to(dev)
            neg = neg + (neg >= pos).long()  # uniform over the other N-1 items
            q = self.w["mip"](h)
            emb = self.encoder.item_emb.weight
            out["mip"] = (-F.logsigmoid((q * emb[pos]).sum(-1)) - F.logsigmoid(-(q * emb[neg]).sum(-1))).mean()
        else:
            out["mip"] = hidden.sum() * 0.0
        out["map"] = self._attr_bce(h, "map", pos, attributes)

        # segments
        n = real.sum(1)
        keep = n >= 2
        seg_len = 1 + (rand(B) * (n // 2).clamp(min=1)).long()
        start = (L - n) + (rand(B) * (n - seg_len + 1).clamp(min=1)).long()  # first position of the segment
        cols = torch.arange(L, device=dev)[None, :]
        in_seg = (cols >= start[:, None]) & (cols < (start + seg_len)[:, None]) & keep[:, None]
        segment = right_align(seqs, keep, start + seg_len - 1, seg_len)
        other = torch.roll(torch.arange(B, device=dev), 1)
        keep_sp = keep & keep[other] & (B > 1)
        s = self.w["sp"](self.encoder.encode(seqs.masked_fill(in_seg, self.mask_id))[:, -1])
        s_pos = self.encoder.encode(segment)[:, -1]
        s_neg = self.encoder.encode(segment[other])[:, -1]
        sp = -F.logsigmoid((s * s_pos).sum(-1)) - F.logsigmoid(-(s * s_neg).sum(-1))
        out["sp"] = sp[keep_sp].mean() if keep_sp.any() else sp.sum() * 0.0
        return out

    def loss(self, seqs, attributes, generator=None, mask_prob: float = MASK_PROB) -> tuple[torch.Tensor, dict[str, float]]:
        parts = self.losses(seqs, attributes, generator, mask_prob)
        total = sum(WEIGHTS[k] * v for k, v in parts.items())
        return total, {k: v.item() for k, v in parts.items()}
