"""Per-negative gradient signal: each loss's gradient on the sampled negatives, and the share above a
threshold while a model trains."""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from .. import data as data_mod
from .. import losses
from ..config import TrainConfig
from .cache import _fit, cached
from .labels import NEGATIVE_LOSSES, loss_label


def score_loss(name: str, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """The sampled losses of :mod:`seqrec.losses` written on scores: ``pos`` (P,) target scores, ``neg`` (P, k)
    negative scores. Equal to the registered losses for the same negatives."""
    d = neg - pos[:, None]
    if name == "bce":
        return (-F.logsigmoid(pos) - F.logsigmoid(-neg).mean(-1)).mean()
    if name == "bpr":
        return -F.logsigmoid(-d).mean()
    if name == "bpr_max":
        return -torch.log((torch.softmax(neg, -1) * torch.sigmoid(-d)).sum(-1) + 1e-24).mean()
    if name == "top1":
        return (torch.sigmoid(d) + torch.sigmoid(neg ** 2)).mean()
    if name == "top1_max":
        return (torch.softmax(neg, -1) * (torch.sigmoid(d) + torch.sigmoid(neg ** 2))).sum(-1).mean()
    raise ValueError(f"no score form for loss {name!r}; allowed: {', '.join(NEGATIVE_LOSSES)}")


def negative_gradients(name: str, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """(P, k) ``abs(∂ℓ/∂s_j)`` per sampled negative, where ℓ is the loss *of its position* (the loss above times P,
    so the value does not shrink with the batch size). By autograd."""
    neg = neg.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(score_loss(name, pos.detach(), neg) * pos.shape[0], neg)
    return grad.abs()


def gradient_share(name: str, pos: torch.Tensor, neg: torch.Tensor, threshold: float = 1e-3) -> float:
    """Share of sampled negatives whose per-position gradient magnitude exceeds ``threshold``."""
    return float((negative_gradients(name, pos, neg) > threshold).float().mean())


def gradient_signal(config: TrainConfig, epochs: int, *, dataset=None, threshold: float = 1e-3,
                    max_rows: int = 512, cache_dir=None) -> pd.DataFrame:
    """Train ``config`` (a sampled loss) for ``epochs`` and, after each epoch, measure on up to ``max_rows``
    training sequences the share of sampled negatives whose gradient exceeds ``threshold`` and the mean
    gradient magnitude. Columns: ``loss, epoch, share, mean_grad``. Cached in ``cache_dir`` (see :func:`cached`)."""
    if cache_dir is not None:
        return cached("gradient_signal", config, epochs, lambda: gradient_signal(
            config, epochs, dataset=dataset, threshold=threshold, max_rows=max_rows), cache_dir)
    dataset = dataset or data_mod.load(config.data, max_users=config.max_users, seed=config.seed)
    probe_gen = torch.Generator().manual_seed(config.seed + 1)
    rows = []

    def measure(epoch, model, split, opts):
        model.eval()
        with torch.no_grad():
            device = next(model.parameters()).device
            inputs, targets = split.train_inputs[:max_rows].to(device), split.train_targets[:max_rows].to(device)
            hidden, emb = model(inputs), model.item_embeddings()
            mask = targets > 0
            h, t = hidden[mask], targets[mask]
            neg = losses.sample_negatives(t, emb.shape[0] - 1, config.num_negatives, probe_gen)
            pos_s, neg_s = (h * emb[t]).sum(-1).cpu(), torch.einsum("pd,pkd->pk", h, emb[neg]).cpu()
        g = negative_gradients(config.loss, pos_s, neg_s)
        rows.append({"loss": loss_label(config.loss, config.num_negatives), "epoch": epoch,
                     "share": float((g > threshold).float().mean()), "mean_grad": float(g.mean())})
        model.train()

    _fit(config, dataset, epochs, measure)
    return pd.DataFrame(rows)


def gradient_signal_in_words(signal: pd.DataFrame, threshold: float = 1e-3) -> str:
    """What :func:`gradient_signal`'s rows show, in sentences: per loss, the share of sampled negatives above
    ``threshold`` and the change of their mean gradient from epoch 0 (untrained) to the last epoch; then whether
    most negatives still pass the threshold there (the share of every loss at least 1/2) or most fall below it for
    some loss. Empty for an empty frame."""
    if signal.empty:
        return ""
    last = int(signal["epoch"].max())
    parts, shares = [], {}
    for loss, g in signal.sort_values("epoch").groupby("loss", sort=False):
        first, end = g.iloc[0], g.iloc[-1]
        shares[loss] = float(end["share"])
        change = end["mean_grad"] / first["mean_grad"] - 1 if first["mean_grad"] > 0 else float("nan")
        parts.append(f"{loss}: {end['share']:.1%} of its negatives above {threshold:g} (epoch {int(first['epoch'])}: "
                     f"{first['share']:.1%}), mean |gradient| {change:+.0%}")
    quiet = [loss for loss, share in shares.items() if share < 0.5]
    verdict = (f"Most sampled negatives of {', '.join(quiet)} fall below the threshold: they stop teaching."
               if quiet else
               f"On these runs sampled negatives do not go silent: at least {min(shares.values()):.0%} of them, for "
               "every loss, still pass the threshold; what shrinks as the model learns is the size of each one's "
               "gradient.")
    return f"After {last} epochs: " + "; ".join(parts) + ". " + verdict
