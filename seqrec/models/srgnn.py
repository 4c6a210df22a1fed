"""SR-GNN (Wu et al. 2019): a gated graph neural network over each session's item graph.

Per sequence, the distinct items are the nodes; every consecutive pair (x_{t-1} → x_t) is a directed edge
(a repeated pair counts once). ``A_out`` is the adjacency normalised by each node's out-degree, ``A_in`` the
transposed adjacency normalised by in-degree (the SR-GNN paper's example v1,v2,v3,v2,v4 gives
A_out[v2] = (v3: ½, v4: ½), A_in[v2] = (v1: ½, v3: ½)). One gated propagation step with node embeddings v:

    a  = [A_in (v W_in + b_in), A_out (v W_out + b_out)]                    (nodes, 2D)
    z  = σ(W_z a + U_z v),  r = σ(W_r a + U_r v),  ṽ = tanh(W_h a + U_h (r ⊙ v)),  v' = (1 − z) v + z ṽ

Readout for a sequence whose last item is at position n, with s_t = v'(x_t) the state of position t's item:

    α_t = qᵀ σ(W_1 s_n + W_2 s_t + c),   s_g = Σ_t α_t s_t,   h = W_3 [s_g ; s_n]   → score_i = h · e_i

The original loss (``ce``) uses h at the last position only. The paper also trains SR-GNN with CCE, which
needs an output at *every* position; ``model_options["variant"]`` picks one of two:

- ``"authors"`` (as the authors ran it): one graph from the whole input; position t's output is
  ``W_3 [α_t s_t ; s_n]`` (its attention-weighted state next to the *last* item's state). Position t then
  sees later items, through its node's outgoing edges (the item that followed it) and through s_n, so the
  next-item targets leak into the inputs during training. Kept to reproduce the paper's numbers.
- ``"causal"`` (default): position t's output is SR-GNN applied to the prefix x_1..x_t alone (its own
  graph, readout with s_t as the last state), so it uses only items up to t, like SASRec's causal
  attention. At the last position this is exactly the original SR-GNN, so ``ce`` trains the original model.
  Cost: one graph per real position (up to B·L small graphs), built and propagated in a few batched calls
  (prefixes grouped by length, rounded up to a multiple of 8, since padding never changes a readout): still
  about 7× the authors' variant's time per batch on LastFM's 50-item sequences (one CPU thread), and the
  price is paid even with ``ce``, which only reads the last position.

Graph construction is batched tensor code: node slots are sequence positions, the first occurrence of an item
is its node (``alias``), edges are scattered into a (B, L, L) matrix. Padding (0) is never a node or an edge
endpoint and padding positions are excluded from the attention sum, so padding never changes an output.
Initialisation as in SR-GNN: every parameter U(−1/√D, 1/√D).

Evaluation (``next_item_hidden``) is the last position of ``forward`` for both variants: the standard
SR-GNN readout for ``causal``, ``W_3 [α_n s_n ; s_n]`` for ``authors`` (what that variant was trained to
produce at the last position).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import SeqrecError
from .base import SequentialRecommender

VARIANTS = ("causal", "authors")


def session_graph(input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched SR-GNN graphs. (B, L) ids, 0 = padding →

    - ``alias`` (B, L): node slot of each position (the position of the item's first occurrence),
    - ``is_node`` (B, L) bool: slot j holds a node (position j is a real item's first occurrence),
    - ``a_in`` (B, L, L): ``a_in[b, i, j]`` weight of the edge j → i, rows normalised by in-degree,
    - ``a_out`` (B, L, L): ``a_out[b, i, j]`` weight of the edge i → j, rows normalised by out-degree.
    """
    B, L = input_ids.shape
    real = input_ids > 0
    same = (input_ids[:, :, None] == input_ids[:, None, :]) & real[:, :, None] & real[:, None, :]
    positions = torch.arange(L, device=input_ids.device)
    # first occurrence: argmax returns the first maximal index; padding positions point at themselves
    alias = torch.where(real, same.to(torch.uint8).argmax(-1), positions.expand(B, L))
    is_node = real & (alias == positions)
    edge = real[:, :-1] & real[:, 1:]  # (B, L-1): consecutive real pair t-1 → t
    flat = alias[:, :-1] * L + alias[:, 1:]
    adj = torch.zeros(B, L * L, device=input_ids.device).scatter_add_(1, flat, edge.float()).view(B, L, L)
    adj = (adj > 0).float()  # a repeated transition counts once
    a_out = adj / adj.sum(-1, keepdim=True).clamp(min=1)
    adj_t = adj.transpose(1, 2)
    a_in = adj_t / adj_t.sum(-1, keepdim=True).clamp(min=1)
    return alias, is_node, a_in, a_out


def prefixes(input_ids: torch.Tensor, rows: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """(P, L) left-padded prefixes ``input_ids[rows[p], :ends[p] + 1]`` (right-aligned), built by a gather."""
    L = input_ids.shape[1]
    shift = (L - 1 - ends)[:, None]  # move position ends[p] to L-1
    src = torch.arange(L, device=input_ids.device)[None, :] - shift
    out = input_ids[rows].gather(1, src.clamp(min=0))
    return out.masked_fill(src < 0, 0)


class SRGNN(SequentialRecommender):
    def __init__(self, num_items: int, hidden_size: int = 64, variant: str = "causal", steps: int = 1):
        super().__init__()
        if variant not in VARIANTS:
            raise SeqrecError(f"unknown SR-GNN variant {variant!r}; allowed: {', '.join(VARIANTS)}")
        self.num_items, self.hidden_size, self.variant, self.steps = num_items, hidden_size, variant, steps
        D = hidden_size
        self.item_emb = nn.Embedding(num_items + 1, D, padding_idx=0)
        self.lin_in = nn.Linear(D, D)
        self.lin_out = nn.Linear(D, D)
        self.w_a = nn.Linear(2 * D, 3 * D)  # W_z, W_r, W_h applied to a
        self.u_v = nn.Linear(D, 2 * D)  # U_z, U_r applied to v
        self.u_h = nn.Linear(D, D, bias=False)  # U_h applied to r ⊙ v
        self.w1 = nn.Linear(D, D)
        self.w2 = nn.Linear(D, D, bias=False)
        self.q = nn.Linear(D, 1, bias=False)
        self.w3 = nn.Linear(2 * D, D)
        stdv = 1.0 / math.sqrt(D)
        for p in self.parameters():
            nn.init.uniform_(p, -stdv, stdv)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    # ------------------------------------------------------------------ pieces
    def propagate(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) → (B, L, D): s_t, the propagated state of position t's item node."""
        alias, _, a_in, a_out = session_graph(input_ids)
        v = self.item_emb(input_ids)  # slot j holds position j's item; only first occurrences are used
        for _ in range(self.steps):
            a = torch.cat([a_in @ self.lin_in(v), a_out @ self.lin_out(v)], -1)
            gz, gr, gh = self.w_a(a).chunk(3, -1)
            uz, ur = self.u_v(v).chunk(2, -1)
            z, r = torch.sigmoid(gz + uz), torch.sigmoid(gr + ur)
            v = (1 - z) * v + z * torch.tanh(gh + self.u_h(r * v))
        return v.gather(1, alias[..., None].expand(-1, -1, v.shape[-1]))

    def attention(self, states: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L, D), (B, L) → (B, L, 1) α_t, zero at padding; the last position is the sequence's last item."""
        alpha = self.q(torch.sigmoid(self.w1(states[:, -1:]) + self.w2(states)))
        return alpha * (input_ids > 0).unsqueeze(-1)

    def readout(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The original SR-GNN session representation of each (left-padded) sequence: (B, L) → (B, D)."""
        s = self.propagate(input_ids)
        s_g = (self.attention(s, input_ids) * s).sum(1)
        return self.w3(torch.cat([s_g, s[:, -1]], -1))

    # ------------------------------------------------------------------ the interface
    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) → (B, L, D) per the variant (see the module docstring); padding positions get zeros (causal)."""
        B, L = input_ids.shape
        if self.variant == "authors":
            s = self.propagate(input_ids)
            last = s[:, -1:].expand(-1, L, -1)
            return self.w3(torch.cat([self.attention(s, input_ids) * s, last], -1))
        rows, ends = (input_ids > 0).nonzero(as_tuple=True)
        out = torch.zeros(B, L, self.hidden_size, device=input_ids.device, dtype=self.item_emb.weight.dtype)
        pre = prefixes(input_ids, rows, ends)
        # Padding never changes a readout, so each prefix is cut to its length rounded up to a multiple of
        # BUCKET: a handful of batched calls instead of one call at full width L (cost ~ width²).
        width = ((pre > 0).sum(1) + self.BUCKET - 1) // self.BUCKET * self.BUCKET
        for w in width.unique().tolist():
            pick = (width == w).nonzero(as_tuple=True)[0]
            out[rows[pick], ends[pick]] = self.readout(pre[pick, L - min(w, L):])
        return out

    BUCKET = 8

    def next_item_hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.variant == "causal":
            return self.readout(input_ids)  # same as forward(...)[:, -1], without the B·L prefixes
        return self(input_ids)[:, -1]

    def item_embeddings(self) -> torch.Tensor:
        return self.item_emb.weight
