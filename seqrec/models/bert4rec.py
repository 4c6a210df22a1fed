"""BERT4Rec (Sun et al. 2019): a bidirectional transformer trained with a cloze (masked-item) task.

The encoder is SASRec's (item + learned position embeddings, post-LN blocks, GELU, shared item embeddings)
with attention over every real position in both directions, and one extra embedding row, the [MASK] token,
with id N+1 (never a candidate: ``item_embeddings()`` returns rows 0..N only). Sizes, dropout and
initialisation come from the config, i.e. the same as SASRec (64, 2 layers, 2 heads, dropout 0.5, N(0, 0.02))
since the protocol states nothing else for BERT4Rec.

Training (loss ``mlm``, see :meth:`BERT4Rec.prepare_mlm`): the trainer's batch is ``inputs = items[:-3]``,
``targets = items[1:-2]``; the cloze works on the *full* training sequence ``items[:-2]`` (its last L items),
rebuilt as ``inputs[:, 1:]`` followed by the last target. Each real position is replaced by [MASK] with
probability ``mask_prob`` (independently; always [MASK], no 80/10/10 random/keep replacement); the target at a
masked position is the original item there, every other target is 0. So the validation item ``items[-2]`` and
the test item are never seen in training. (A user with only 3 items has an empty training row, so its first item,
part of ``items[:-2]``, is not rebuilt: the trainer's batch does not carry it.)

Prediction (``next_item_hidden``): append [MASK] to the input, dropping the oldest position to keep length L,
and read the hidden state at the [MASK].

Trained with a next-item loss (``cce``, ``bce``...) instead, the bidirectional encoder would see each target
as the next input: BERT4Rec is meant for ``mlm``.
"""
from __future__ import annotations

import torch

from ..losses import LossOptions
from .sasrec import SASRec


class BERT4Rec(SASRec):
    def __init__(self, num_items: int, max_len: int = 50, hidden_size: int = 64, num_layers: int = 2,
                 num_heads: int = 2, dropout: float = 0.5):
        super().__init__(num_items, max_len, hidden_size, num_layers, num_heads, dropout, causal=False, extra_tokens=1)
        self.mask_id = num_items + 1

    def prepare_mlm(self, inputs: torch.Tensor, targets: torch.Tensor, opts: LossOptions) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) trainer inputs and next-item targets → (B, L) cloze inputs with [MASK]s, (B, L) cloze targets."""
        full = torch.cat([inputs[:, 1:], targets[:, -1:]], 1)
        draw = torch.rand(full.shape, generator=opts.generator).to(full.device)
        chosen = (draw < opts.mask_prob) & (full > 0)
        return full.masked_fill(chosen, self.mask_id), full.masked_fill(~chosen, 0)

    def append_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) → (B, L): drop the oldest position, append [MASK]."""
        mask = torch.full_like(input_ids[:, :1], self.mask_id)
        return torch.cat([input_ids[:, 1:], mask], 1)

    def next_item_hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self(self.append_mask(input_ids))[:, -1]
