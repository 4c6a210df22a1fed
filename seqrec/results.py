"""Result files: one JSON per run, written atomically; loaded into tidy pandas DataFrames."""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import MISSING, fields
from pathlib import Path

from .config import TrainConfig
from .data import write_atomic
from .provenance import device_label

REQUIRED = ("config", "metrics", "provenance")


def save(result: dict, path: str | os.PathLike) -> Path:
    """Write one run's result as JSON through a temporary file and a rename (never a partial file)."""
    write_atomic(path, json.dumps(result, indent=1, sort_keys=True) + "\n")
    return Path(path)


def load_runs(paths) -> list[dict]:
    """Read result files (a folder is searched recursively for ``*.json``). A corrupt or foreign file is
    reported by name with a warning and skipped."""
    files: list[Path] = []
    for p in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        p = Path(p)
        files.extend(sorted(p.rglob("*.json")) if p.is_dir() else [p])
    runs = []
    for f in files:
        try:
            run = json.loads(f.read_text(encoding="utf-8"))
            if not isinstance(run, dict) or any(k not in run for k in REQUIRED):
                raise ValueError(f"not a seqrec result (needs keys {', '.join(REQUIRED)})")
        except (OSError, ValueError) as exc:
            warnings.warn(f"skipping {f}: {str(exc).splitlines()[0]}", stacklevel=2)
            continue
        run["path"] = str(f)
        runs.append(run)
    return runs


RUN_COLUMNS = ("data", "model", "loss", "seed", "num_negatives", "negative_pool", "mask_prob", "max_users", "exclude_seen",
               "ties", "epochs", "patience", "batch_size", "weight_decay", "lr_step", "lr_gamma", "max_len",
               "hidden_size", "num_layers", "num_heads", "dropout", "lr", "monitor", "eval_every", "precision")

# A record written before a config field existed ran with that field's default (what TrainConfig.from_dict assumes).
_CONFIG_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


def pretraining_label(cfg: dict) -> str | None:
    """S3-Rec's pretraining in words, ``"<recipe>, <epochs> epochs"`` (e.g. ``"seqrec, 150 epochs"``); None for
    the other models."""
    if cfg.get("model") != "s3rec":
        return None
    from .pretrain import options_epochs, options_recipe

    options = cfg.get("model_options") or {}
    epochs = options_epochs(cfg.get("data"), options)
    return f"{options_recipe(options)}, {epochs} epoch{'s' * (epochs != 1)}"


def session_seconds(sessions: list[dict], curve: list[dict], epochs_done: int) -> list[dict]:
    """``sessions`` (each with ``from_epoch``), each given ``epochs`` (how many it trained: up to the next session's
    ``from_epoch``, or ``epochs_done``) and ``seconds``: the curve's cumulative ``elapsed`` at the session's last epoch
    minus that at its ``from_epoch``.
    A training run's sessions and curve, or an S3-Rec pretraining's; sessions are returned unchanged where the
    curve lacks ``elapsed``."""
    elapsed = {p["epoch"]: p["elapsed"] for p in curve if "epoch" in p and "elapsed" in p}
    elapsed[0] = 0.0
    ends = [s.get("from_epoch") for s in sessions[1:]] + [epochs_done]
    out = []
    for session, end in zip(sessions, ends):
        start = session.get("from_epoch")
        if start in elapsed and end in elapsed:
            session = {**session, "epochs": end - start, "seconds": max(0.0, elapsed[end] - elapsed[start])}
        out.append(session)
    return out


def median_epoch_seconds(run: dict) -> float | None:
    """The median training seconds of one epoch of ``run``: the median step of its curve's cumulative
    ``elapsed`` (training time, evaluation excluded). Unlike the total it barely moves when some epochs ran
    while other work shared the machine. None for a run without a curve."""
    import statistics

    elapsed = [point["elapsed"] for point in run.get("curve", []) if "elapsed" in point]
    if not elapsed:
        return None
    return statistics.median(b - a for a, b in zip([0.0, *elapsed[:-1]], elapsed))


def _run_row(run: dict) -> dict:
    cfg = run["config"]
    row = {k: cfg.get(k, _CONFIG_DEFAULTS.get(k)) for k in RUN_COLUMNS}  # a field added later: its default then
    options = cfg.get("model_options") or {}
    row["variant"] = options.get("variant")
    row["model_options"] = json.dumps(options, sort_keys=True)  # a string: hashable, so pandas can group by it
    row["pretraining"] = pretraining_label(cfg)
    prov = run["provenance"]
    row.update(profile=run.get("profile"), grid=run.get("grid"), key=run.get("key"),
               epochs_run=run.get("epochs_run"), best_epoch=run.get("best_epoch"),
               train_seconds=run.get("train_seconds"), seconds_per_epoch=run.get("seconds_per_epoch"),
               median_epoch_seconds=median_epoch_seconds(run),
               peak_memory_mb=prov.get("peak_memory_mb"), device=device_label(prov.get("device")),
               commit=prov.get("commit"), path=run.get("path"),
               # the early-stopping monitor at the best epoch (what a tuner compares; None for a train_loss monitor)
               best_valid=(run.get("valid_metrics") or {}).get(cfg.get("monitor")))
    return row


def to_frame(runs):
    """Tidy table: one row per run × metric (columns: every setting of the run's config, ``key`` (one per
    configuration), its cost and provenance, ``metric``, ``value``). Runs that differ in a setting a pivot does not
    name are averaged together by it: pivot on ``key`` or on every setting varied."""
    import pandas as pd

    if isinstance(runs, (str, os.PathLike)):
        runs = load_runs(runs)
    rows = []
    for run in runs:
        base = _run_row(run)
        for metric, value in run["metrics"].items():
            rows.append({**base, "metric": metric, "value": value})
    return pd.DataFrame(rows)


def curves(runs):
    """Tidy learning curves: one row per run × epoch × quantity (train_loss, elapsed, valid metrics)."""
    import pandas as pd

    if isinstance(runs, (str, os.PathLike)):
        runs = load_runs(runs)
    rows = []
    for run in runs:
        base = _run_row(run)
        for point in run.get("curve", []):
            for quantity, value in point.items():
                if quantity != "epoch":
                    rows.append({**base, "epoch": point["epoch"], "quantity": quantity, "value": value})
    return pd.DataFrame(rows)
