"""GRU4Rec (Hidasi et al. 2016) as the paper runs it.

Item embedding (N+1, E) with E = ``hidden_size`` (64) → dropout 0.5 → one GRU layer of width
``2·hidden_size`` (128) **without bias** → linear projection back to E → score of item i = h_t · e_i
with the same item embeddings as the input (Xavier initialisation of every weight matrix).

Padding: inputs are left-padded with 0 and the padding row of the embedding is zero. A bias-free GRU fed
zeros from the zero state stays at zero (r = z = σ(0) = ½, candidate n = tanh(0) = 0, so
h' = ½·0 + ½·0 = 0), so any amount of leading padding leaves every real position's state unchanged,
exactly. The recurrence is causal: the state at t only depends on items up to t.

Shapes: ``forward``: (B, L) ids → (B, L, E).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import SequentialRecommender


class GRU4Rec(SequentialRecommender):
    def __init__(self, num_items: int, hidden_size: int = 64, gru_size: int | None = None, dropout: float = 0.5):
        super().__init__()
        self.num_items, self.hidden_size = num_items, hidden_size
        self.gru_size = gru_size or 2 * hidden_size
        self.item_emb = nn.Embedding(num_items + 1, hidden_size, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(hidden_size, self.gru_size, num_layers=1, bias=False, batch_first=True)
        self.proj = nn.Linear(self.gru_size, hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.item_emb.weight)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()  # padding stays the zero vector (padding_idx keeps it so)
        for name, weight in self.gru.named_parameters():
            for chunk in weight.chunk(3, 0):  # reset, update and candidate blocks, each (G, in)
                nn.init.xavier_uniform_(chunk)
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) → (B, L, E)."""
        x = self.drop(self.item_emb(input_ids))
        x = x * (input_ids > 0).unsqueeze(-1)  # dropout never makes padding non-zero, but be explicit
        out, _ = self.gru(x)
        return self.proj(out)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_emb.weight
