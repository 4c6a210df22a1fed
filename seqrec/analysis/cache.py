"""Small trainings the book's diagnostics run themselves (a minimal loop) and their on-disk cache."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from .. import data as data_mod
from .. import losses, models
from ..config import TrainConfig


def _fit(config: TrainConfig, dataset, epochs: int, on_epoch):
    """A minimal training loop (Adam, the loss registry) calling ``on_epoch(epoch, model, split, opts)`` after
    each epoch (and epoch 0, before training). For analyses that need the model itself."""
    from ..trainer import resolve_device, train_epoch

    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    split = data_mod.split(dataset, config.max_len)
    model = models.build(config, dataset.num_items).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    spec = losses.get(config.loss)
    opts = losses.LossOptions(config.num_negatives, gen, config.mask_prob)
    on_epoch(0, model, split, opts)
    for epoch in range(1, epochs + 1):
        train_epoch(model, split, opt, spec, opts, batch_size=config.batch_size, generator=gen, device=device,
                    precision=config.precision, epoch=epoch)
        on_epoch(epoch, model, split, opts)
    return model, split


def cache_path(kind: str, config: TrainConfig, epochs: int, cache_dir) -> Path:
    """Where :func:`cached` keeps the frame of ``(kind, config, epochs)``."""
    return Path(cache_dir) / f"{kind}_{config.data}_{config.loss}_{config.key()}_e{epochs}.json"


def cached(kind: str, config: TrainConfig, epochs: int, compute, cache_dir=None) -> pd.DataFrame:
    """The frame ``compute()`` returns for ``(kind, config, epochs)``, read from ``cache_dir`` when it was computed
    before, else computed and stored there (atomically, as JSON rows with the config and provenance) so that a
    book rebuild does not retrain. ``cache_dir=None``: always compute."""
    import json
    import time

    from .. import provenance, results
    from ..trainer import resolve_device

    if cache_dir is None:
        return compute()
    path = cache_path(kind, config, epochs, cache_dir)
    if path.exists():
        return pd.DataFrame(json.loads(path.read_text())["rows"])
    t0 = time.perf_counter()
    frame = compute()
    device = resolve_device(config.device)
    results.save({"kind": kind, "config": config.to_dict(), "epochs": epochs, "rows": frame.to_dict("records"),
                  "provenance": {**provenance.git_state(), "versions": provenance.versions(),
                                 "device": provenance.device_name(device), "kernels": provenance.kernels(device),
                                 "wall_seconds": time.perf_counter() - t0,
                                 "peak_memory_mb": provenance.peak_memory_mb(device), "seed": config.seed}}, path)
    return frame
