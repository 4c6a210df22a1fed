"""Exact softmax cross-entropy over a large catalog without materialising the (positions × items) logits.

For P positions with hidden states H (P, D), a catalog E (N, D) and targets t (P,) in 0..N-1:

    loss = (1/P) Σ_p [ lse_p − h_p·e_{t_p} ],      lse_p = log Σ_i exp(h_p·e_i)
    ∂loss/∂H = (1/P) (S E − E[t]),                  ∂loss/∂E = (1/P) (Sᵀ H − onehot(t)ᵀ H)

with S = softmax(H Eᵀ) row-wise. :class:`ChunkedCrossEntropy` walks the catalog in chunks of ``chunk_size``
items (and the positions in blocks of ``block_size``): the forward pass keeps an online log-sum-exp per
position and saves only H, E, t and two (P,) vectors (shift m, lse); the backward pass recomputes each block's
logits, turns them into softmax probabilities in place and accumulates S E into dH and Sᵀ H into dE. The
one-hot part (−E[t], −onehot(t)ᵀ H) is a gather and an ``index_add`` done once, not a pass over the logits.
Peak extra memory is one (block_size × chunk_size) buffer plus O((P + N) · D), whatever N.

Two tricks keep the elementwise work to ``exp_`` (+ a row sum in forward) per logit block in float32/float64:

- the row shift is folded into the matrix product: [h, −m]·[e, 1] = h·e − m, so the product writes the
  shifted logits and ``exp_`` finishes them in place;
- the shift m is the target's logit, not a running maximum (no max pass; the sum is ≥ 1 and the loss is
  exactly log of it); only a chunk whose sum overflows (a logit ~88 above m) is redone with the usual online
  rescaling to a larger m. Backward repeats the forward's shifted products and applies the normalisation
  1/sum = exp(m − lse) to the rows of H and dH (P × D) instead of to each block (rows with lse − m > 30
  use m = lse instead).

Default sizes (measured on a 2-core CPU, see benchmarks/bench_loss.py): chunks of 2048 items and blocks of up to
16384 positions, i.e. one block for a training batch, a ≤ 128 MB buffer. Cache-sized blocks (≤ 2 MB) were at
best ~10-20 % faster single-threaded, but 2-10× slower with 2 OpenMP threads on a shared, oversubscribed CPU,
where every small op pays a busy-waiting barrier: fewer, larger products are the robust choice.

Under ``torch.autocast`` (bf16 on GPU) the products run in the autocast dtype, while the logits are upcast
and the log-sum-exp, the softmax and the loss stay in float32 (no shift folding there: the shift would be
rounded to bf16).
"""
from __future__ import annotations

import torch

DEFAULT_CHUNK_SIZE = 2048
DEFAULT_BLOCK_SIZE = 16384


def _compute_dtype(x: torch.Tensor) -> tuple[torch.dtype, torch.dtype]:
    """(matmul dtype, accumulation dtype) for inputs like ``x`` under the current autocast state."""
    if torch.is_autocast_enabled(x.device.type) and x.dtype in (torch.float32, torch.float16, torch.bfloat16):
        return torch.get_autocast_dtype(x.device.type), torch.float32
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    return (x.dtype if x.dtype in (torch.float32, torch.float64) else acc), acc


def _augment(x: torch.Tensor, last: float | torch.Tensor) -> torch.Tensor:
    """(R, D) -> (R, D+1) with ``last`` in the extra column."""
    out = torch.empty(x.shape[0], x.shape[1] + 1, dtype=x.dtype, device=x.device)
    out[:, :-1] = x
    out[:, -1] = last
    return out


def _blocks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


class ChunkedCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy ``(1/P) Σ_p lse_p − h_p·e_{t_p}``; see the module docstring. Inputs: h (P, D),
    e (N, D), t (P,) long in [0, N); returns a 0-d tensor in the accumulation dtype (float32, or float64)."""

    @staticmethod
    def forward(ctx, h, e, t, chunk_size: int, block_size: int):
        mm_dtype, acc = _compute_dtype(h)
        with torch.autocast(h.device.type, enabled=False):
            hm, em = h.detach().to(mm_dtype), e.detach().to(mm_dtype)
            target = (hm.to(acc) * em[t].to(acc)).sum(-1)  # (P,) target logits by a row dot product
            shift, total = _shifted_sumexp(hm, em, target, acc, chunk_size, block_size)
            per_position = (shift - target) + total.log()  # = lse − target; shift == target unless a sum overflowed
            loss = per_position.mean()
        ctx.save_for_backward(h, e, t, shift, shift + total.log())
        ctx.conf = (chunk_size, block_size, mm_dtype, acc)
        return loss

    @staticmethod
    def backward(ctx, grad):
        h, e, t, shift, lse = ctx.saved_tensors
        chunk_size, block_size, mm_dtype, acc = ctx.conf
        with torch.autocast(h.device.type, enabled=False):
            dh, de = _softmax_products(h.to(mm_dtype), e.to(mm_dtype), shift, lse, acc, chunk_size, block_size,
                                       ctx.needs_input_grad[0], ctx.needs_input_grad[1])
            scale = grad.to(acc) / h.shape[0]
            if dh is not None:
                dh = ((dh - e.to(acc)[t]) * scale).to(h.dtype)
            if de is not None:
                de.index_add_(0, t, h.to(acc), alpha=-1)
                de = (de * scale).to(e.dtype)
        return dh, de, None, None, None


def _shifted_sumexp(h, e, shift, acc, chunk_size, block_size):
    """Online Σ_i exp(h_p·e_i − m_p) over item chunks: returns (m, total) with lse = m + log(total).

    m starts at the given shift (the target logit, so total ≥ 1 and the loss is log(total) exactly); a chunk
    whose sum overflows (a logit ~88 above m) is redone with the usual online rescaling to a larger m.
    """
    P, N = h.shape[0], e.shape[0]
    fold = h.dtype == acc  # shift folded into the product (not in reduced precision: it would be rounded)
    shift = shift.clone()
    total = torch.zeros_like(shift)
    e_aug = _augment(e, 1.0) if fold else e
    buf = torch.empty(min(block_size, P) * min(chunk_size, N), dtype=h.dtype, device=h.device)
    for p0, p1 in _blocks(P, block_size):
        hb, m, tot = h[p0:p1], shift[p0:p1], total[p0:p1]
        h_aug = _augment(hb, -m) if fold else hb
        for c0, c1 in _blocks(N, chunk_size):
            x = buf[:(p1 - p0) * (c1 - c0)].view(p1 - p0, c1 - c0)
            if fold:
                torch.mm(h_aug, e_aug[c0:c1].T, out=x)  # h·e − m
            else:
                x = torch.mm(hb, e[c0:c1].T, out=x).to(acc).sub_(m[:, None])
            new = tot + x.exp_().sum(1, dtype=acc)
            if bool(torch.isfinite(new).all()):
                tot.copy_(new)
                continue
            logits = (hb @ e[c0:c1].T).to(acc)  # rare: rescale to a larger shift
            new_m = torch.maximum(m, logits.amax(1))
            tot.mul_(torch.exp(m - new_m)).add_(torch.exp(logits - new_m[:, None]).sum(1))
            m.copy_(new_m)
            if fold:
                h_aug[:, -1] = -m
    return shift, total


def _softmax_products(h, e, shift, lse, acc, chunk_size, block_size, need_dh=True, need_de=True):
    """S E (P, D) and Sᵀ H (N, D) with S = softmax(H Eᵀ) recomputed block by block (accumulation dtype).

    Folded (full precision): exp(h·e − m) / total with the forward's shift m, so that the products repeat the
    forward's exactly and the 1/total = exp(m − lse) row scaling goes on H's rows and dH's rows (cheap) instead
    of the block; rows whose total is huge (lse − m > 30) use m = lse.
    """
    P, N, D = h.shape[0], e.shape[0], h.shape[1]
    fold = h.dtype == acc
    dh = torch.zeros(P, D, dtype=acc, device=h.device) if need_dh else None
    de = torch.zeros(N, D, dtype=acc, device=h.device) if need_de else None
    if fold:
        e_aug = _augment(e, 1.0)
        shift = torch.where(lse - shift < 30, shift, lse)
        row_scale = torch.exp(shift - lse)  # (P,)
    buf = torch.empty(min(block_size, P) * min(chunk_size, N), dtype=h.dtype, device=h.device)
    for p0, p1 in _blocks(P, block_size):
        hb = h[p0:p1]
        if fold:
            h_aug = _augment(hb, -shift[p0:p1])
            h_scaled = hb * row_scale[p0:p1, None] if need_de else None
        for c0, c1 in _blocks(N, chunk_size):
            s = buf[:(p1 - p0) * (c1 - c0)].view(p1 - p0, c1 - c0)
            if fold:
                torch.mm(h_aug, e_aug[c0:c1].T, out=s).exp_()  # softmax × total, in place
                if need_dh:
                    dh[p0:p1].addmm_(s, e[c0:c1])
                if need_de:
                    de[c0:c1].addmm_(s.T, h_scaled)
            else:
                s = torch.mm(hb, e[c0:c1].T, out=s).to(acc).sub_(lse[p0:p1, None]).exp_().to(h.dtype)
                if need_dh:
                    dh[p0:p1] += (s @ e[c0:c1]).to(acc)
                if need_de:
                    de[c0:c1] += (s.T @ hb).to(acc)
        if fold and need_dh:
            dh[p0:p1] *= row_scale[p0:p1, None]
    return dh, de


def chunked_cross_entropy(hidden: torch.Tensor, items: torch.Tensor, targets: torch.Tensor, *,
                          chunk_size: int = DEFAULT_CHUNK_SIZE, block_size: int = DEFAULT_BLOCK_SIZE,
                          ignore_index: int | None = None) -> torch.Tensor:
    """Mean softmax cross-entropy of ``hidden`` (P, D) against all rows of ``items`` (N, D), exact.

    ``targets`` (P,) are row indices of ``items``; positions whose target equals ``ignore_index`` are left
    out of the mean. Equal to ``F.cross_entropy(hidden @ items.T, targets)`` in value and gradients, without
    holding the (P, N) logits. Returns 0 (connected to the graph, zero gradients) when no position is left.
    """
    if hidden.dim() != 2 or items.dim() != 2 or hidden.shape[1] != items.shape[1]:
        raise ValueError(f"expected hidden (P, D) and items (N, D), got {tuple(hidden.shape)} and {tuple(items.shape)}")
    if targets.shape != hidden.shape[:1]:
        raise ValueError(f"expected targets of shape ({hidden.shape[0]},), got {tuple(targets.shape)}")
    if chunk_size < 1 or block_size < 1:
        raise ValueError("chunk_size and block_size must be >= 1")
    if ignore_index is not None:
        keep = targets != ignore_index
        if not bool(keep.all()):
            hidden, targets = hidden[keep], targets[keep]
    if hidden.shape[0] == 0:
        return (hidden.sum() + items.sum()) * 0.0
    return ChunkedCrossEntropy.apply(hidden, items, targets.long(), chunk_size, block_size)


__all__ = ["ChunkedCrossEntropy", "chunked_cross_entropy", "DEFAULT_CHUNK_SIZE", "DEFAULT_BLOCK_SIZE"]
