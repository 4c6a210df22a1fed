"""The interface every model implements, so that any loss trains any model.

- ``model(input_ids)``: (B, L) item ids, 0 = padding, left-padded → (B, L, D) hidden states; the state at
  position t is the model's prediction of the item that follows ``input_ids[:, t]``.
- ``model.item_embeddings()``: (N+1, D) output embeddings; score of item i = hidden · row i (row 0 = padding).
- ``model.next_item_hidden(input_ids)``: (B, D) the state used to rank the next item at evaluation
  (default: the last position of ``model(input_ids)``; BERT4Rec appends its [MASK] instead).
"""
from __future__ import annotations

import torch
from torch import nn


class SequentialRecommender(nn.Module):
    num_items: int
    hidden_size: int

    def item_embeddings(self) -> torch.Tensor:
        raise NotImplementedError

    def next_item_hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) → (B, D)."""
        return self(input_ids)[:, -1]

    def score_all(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) → (B, N+1) scores of every item id (column 0 is padding and meaningless)."""
        return self.next_item_hidden(input_ids) @ self.item_embeddings().T


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """N(0, std) weights for linear and embedding layers, zero biases, unit LayerNorm (BERT-style)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
