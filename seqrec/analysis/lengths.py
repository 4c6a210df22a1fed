"""Accuracy by sequence length: length bins, metrics per bin, and ranks from a small training."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from .. import data as data_mod
from .. import metrics
from ..config import TrainConfig
from .cache import _fit, cached
from .labels import loss_label


def length_bins(lengths, edges=(0, 5, 10, 20, 50, math.inf)) -> pd.Categorical:
    """Bin sequence lengths into right-closed intervals labelled like ``"6–10"`` and ``">50"``."""
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        labels.append(f">{lo}" if math.isinf(hi) else f"{lo + 1}–{hi}")
    return pd.cut(pd.Series(lengths), bins=list(edges), labels=labels, right=True)


def metric_by_length(ranks, lengths, k: int = 10, edges=(0, 5, 10, 20, 50, math.inf)) -> pd.DataFrame:
    """HIT@k and NDCG@k of users grouped by sequence length. ``ranks``: (U,) 0-based test ranks (0: the top);
    ``lengths``: (U,) number of items in each user's history. Columns: ``length, users, HIT@k, NDCG@k``."""
    r = np.asarray(ranks, dtype=float)
    hit = (r < k).astype(float)
    ndcg = np.where(r < k, 1.0 / np.log2(r + 2), 0.0)
    df = pd.DataFrame({"length": length_bins(lengths, edges), "hit": hit, "ndcg": ndcg})
    g = df.groupby("length", observed=False)
    return pd.DataFrame({"users": g.size(), f"HIT@{k}": g.hit.mean(), f"NDCG@{k}": g.ndcg.mean()}).reset_index()


def ranks_by_length(config: TrainConfig, epochs: int, *, dataset=None, k: int = 10, cache_dir=None) -> pd.DataFrame:
    """Train ``config`` for ``epochs`` (see :func:`_fit`), rank every item for each user's test target (seen items
    excluded) and return :func:`metric_by_length` on the number of items before the test target, with a
    ``loss`` column. Cached in ``cache_dir`` (see :func:`cached`)."""
    if cache_dir is not None:
        return cached("ranks_by_length", config, epochs, lambda: ranks_by_length(config, epochs, dataset=dataset, k=k),
                      cache_dir)
    dataset = dataset or data_mod.load(config.data, max_users=config.max_users, seed=config.seed)
    model, split = _fit(config, dataset, epochs, lambda *a: None)
    model.eval()
    device = next(model.parameters()).device
    ranks = []
    with torch.no_grad():
        for start in range(0, split.test_inputs.shape[0], config.eval_batch_size):
            sl = slice(start, start + config.eval_batch_size)
            scores = model.score_all(split.test_inputs[sl].to(device)).cpu()
            ranks.append(metrics.full_ranks(scores, split.test_targets[sl], split.test_seen[sl],
                                            exclude=config.exclude_seen, ties=config.ties))
    lengths = [len(s) - 1 for s in dataset.sequences]
    out = metric_by_length(torch.cat(ranks).numpy(), lengths, k)
    out.insert(0, "loss", loss_label(config.loss))
    return out
