"""SASRec (Kang & McAuley 2018) as the paper's protocol runs it (the S3-Rec code base's encoder).

Item + learned position embeddings → LayerNorm → dropout → ``num_layers`` post-LN transformer blocks
(causal multi-head self-attention, GELU feed-forward of width 4·D), item embeddings shared with the output.
Padding keys are masked out, so padding never changes a real position's output.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import SequentialRecommender, init_normal


class Block(nn.Module):
    """One post-LN transformer block. (B, L, D) → (B, L, D)."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.num_heads, self.dropout = num_heads, dropout
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.attn_out = nn.Linear(hidden_size, hidden_size)
        self.ln1 = nn.LayerNorm(hidden_size, eps=1e-12)
        self.ff1 = nn.Linear(hidden_size, 4 * hidden_size)
        self.ff2 = nn.Linear(4 * hidden_size, hidden_size)
        self.ln2 = nn.LayerNorm(hidden_size, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """x: (B, L, D); allowed: (B, 1, L, L) bool, True where query i may attend to key j."""
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                              dropout_p=self.dropout if self.training else 0.0)
        x = self.ln1(x + self.drop(self.attn_out(attn.transpose(1, 2).reshape(B, L, D))))
        return self.ln2(x + self.drop(self.ff2(F.gelu(self.ff1(x)))))


def attention_mask(input_ids: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, L) ids → (B, 1, L, L) bool: keys must be real items (and not in the future when causal).

    Each position may always attend to itself, so a padding query never sees an empty row (no NaN); its
    output is ignored by every loss and metric.
    """
    L = input_ids.shape[1]
    allowed = (input_ids > 0)[:, None, None, :].expand(-1, 1, L, L)
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=input_ids.device).tril()
    return allowed | torch.eye(L, dtype=torch.bool, device=input_ids.device)


class SASRec(SequentialRecommender):
    def __init__(self, num_items: int, max_len: int = 50, hidden_size: int = 64, num_layers: int = 2,
                 num_heads: int = 2, dropout: float = 0.5, causal: bool = True, extra_tokens: int = 0):
        super().__init__()
        self.num_items, self.hidden_size, self.max_len, self.causal = num_items, hidden_size, max_len, causal
        self.item_emb = nn.Embedding(num_items + 1 + extra_tokens, hidden_size, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, hidden_size)
        self.ln = nn.LayerNorm(hidden_size, eps=1e-12)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(hidden_size, num_heads, dropout) for _ in range(num_layers))
        self.apply(init_normal)

    def encode(self, input_ids: torch.Tensor, embedded: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) ids (and optionally their (B, L, D) embeddings) → (B, L, D) hidden states."""
        L = input_ids.shape[1]
        if L > self.max_len:
            raise ValueError(f"sequence length {L} exceeds max_len {self.max_len}")
        x = self.item_emb(input_ids) if embedded is None else embedded
        x = self.drop(self.ln(x + self.pos_emb.weight[-L:]))  # positions aligned to the right (left padding)
        allowed = attention_mask(input_ids, self.causal)
        for block in self.blocks:
            x = block(x, allowed)
        return x

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) item ids, left-padded with 0 → (B, L, D) hidden states (see :meth:`encode`)."""
        return self.encode(input_ids)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_emb.weight[: self.num_items + 1]
