"""The paper's reported numbers, and their comparison with reproduced ones.

``reported(name)`` reads ``seqrec/paper/{name}_reported.csv`` (Table 2, Table 3, Figure 1). ``compare(frame,
name)`` joins a tidy reproduced frame (as returned by :func:`seqrec.experiments.run_grid`) with them: one row per
reported cell, with the mean and standard deviation over the seeds of the matching runs, the relative difference
``rel_diff = (reproduced - reported) / reported`` and a verdict: ``reproduced`` when ``|rel_diff| <= 10 %``,
else ``better`` or ``worse`` (for ``train_seconds`` lower is better), and ``not run`` when no run matches (the
reproduced value stays NaN; it is never filled from the paper).

Matching: Table 2 by dataset, model (the ``paper_model`` label), ``loss_kind`` and metric (``HIT@10`` ->
``full_HIT@10``); the SR-GNN CCE cell is matched with the ``authors`` variant (the paper's implementation; the
``causal`` variant is a departure reported separately by the book). Table 3: only its ``Beauty`` rows can be
rerun; the systems map to SASRec (BCE), SASRec (CCE) and our BERT4Rec (compared with each BERT4Rec row).
Figure 1: by loss label and number of negatives, metrics ``full_*``, ``sampled_*`` and ``train_seconds``.
"""
from __future__ import annotations

from importlib import resources as ir

import numpy as np
import pandas as pd

from .errors import SeqrecError

NAMES = ("table2", "table3", "figure1")
TOLERANCE = 0.10
SRGNN_CCE_VARIANT = "authors"  # the SR-GNN variant a Table 2 CCE cell is matched with (the paper's implementation)
LOWER_IS_BETTER = {"train_seconds"}


def reported(name: str) -> pd.DataFrame:
    """The paper's numbers for ``name`` (table2, table3, figure1), columns as in the CSV."""
    if name not in NAMES:
        raise SeqrecError(f"unknown reported table {name!r}; allowed: {', '.join(NAMES)}")
    with ir.files("seqrec").joinpath("paper", f"{name}_reported.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, keep_default_na=False, na_values=[""], dtype={"negatives": str})


def _verdict(rel: float, reproduced: float, metric: str) -> str:
    if np.isnan(reproduced):
        return "not run"
    if np.isnan(rel) or abs(rel) <= TOLERANCE:
        return "reproduced"
    higher = rel > 0
    return "better" if higher != (metric in LOWER_IS_BETTER) else "worse"


def _rel(reproduced: float, value: float) -> float:
    if np.isnan(reproduced):
        return np.nan
    if value == 0:
        return 0.0 if reproduced == 0 else np.inf * np.sign(reproduced)
    return (reproduced - value) / value


def _long_reproduced(frame: pd.DataFrame) -> pd.DataFrame:
    """The reproduced frame, with ``train_seconds`` added as a metric, one row per distinct run x metric."""
    if frame is None or len(frame) == 0:
        return pd.DataFrame(columns=["key", "seed", "metric", "value", "data", "paper_model", "loss_kind",
                                     "paper_loss", "variant", "negatives"])
    f = frame.copy()
    for col in ("variant", "negatives", "paper_loss", "paper_model", "loss_kind"):
        if col not in f.columns:
            f[col] = ""
        f[col] = f[col].fillna("").astype(str)
    if "key" not in f.columns:
        f["key"] = f.index.astype(str)
    if "train_seconds" in f.columns:
        runs = f.drop_duplicates("key").copy()
        runs["metric"], runs["value"] = "train_seconds", runs["train_seconds"]
        f = pd.concat([f, runs], ignore_index=True)
    return f.drop_duplicates(["key", "metric"])


def _stats(rows: pd.DataFrame) -> tuple[float, float, int]:
    values = rows["value"].astype(float).to_numpy()
    if len(values) == 0:
        return np.nan, np.nan, 0
    std = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
    return float(np.mean(values)), std, int(rows["seed"].nunique() if "seed" in rows else len(values))


def _finish(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    out["rel_diff"] = [_rel(r, v) for r, v in zip(out["reproduced"], out["reported"])]
    out["verdict"] = [_verdict(rel, r, m) for rel, r, m in zip(out["rel_diff"], out["reproduced"], out["metric"])]
    return out


def compare(reproduced: pd.DataFrame, name: str) -> pd.DataFrame:
    """One row per reported cell of ``name``: ``dataset, model, loss_kind, loss, metric, reported, reproduced,
    reproduced_std, n_seeds, rel_diff, verdict`` (figure1 adds ``negatives``)."""
    rep = reported(name)
    f = _long_reproduced(reproduced)
    rows = []
    if name == "table2":
        for r in rep.itertuples(index=False):
            m = f[(f["data"] == r.dataset) & (f["paper_model"] == r.model) & (f["loss_kind"] == r.loss_kind)
                  & (f["metric"] == f"full_{r.metric}")]
            if r.model == "SR-GNN" and r.loss_kind == "improved":
                m = m[m["variant"] == SRGNN_CCE_VARIANT]
            mean, std, n = _stats(m)
            rows.append({"dataset": r.dataset, "model": r.model, "loss_kind": r.loss_kind, "loss": r.loss,
                         "metric": r.metric, "reported": float(r.value), "reproduced": mean, "reproduced_std": std,
                         "n_seeds": n})
    elif name == "table3":
        systems = {"SASRec (BCE)": ("SASRec", "BCE", "original"), "SASRec (CCE)": ("SASRec", "CCE", "improved")}
        for r in rep.itertuples(index=False):
            model, loss, kind = systems.get(r.system, ("BERT4Rec", "MLM", "original"))
            metric = r.metric.replace("sampled ", "sampled_") if r.metric.startswith("sampled") else f"full_{r.metric}"
            m = f[(f["data"] == r.dataset) & (f["paper_model"] == model) & (f["metric"] == metric)]
            if model == "SASRec":
                m = m[m["paper_loss"] == loss]
            mean, std, n = _stats(m)
            rows.append({"dataset": r.dataset, "model": r.system, "loss_kind": kind, "loss": loss, "metric": r.metric,
                         "reported": float(r.value), "reproduced": mean, "reproduced_std": std, "n_seeds": n})
    elif name == "figure1":
        metrics = [c for c in rep.columns if c.startswith(("full_", "sampled_"))] + ["train_seconds"]
        for r in rep.to_dict("records"):
            kind = "improved" if r["loss"] == "CCE" else "original"
            for metric in metrics:
                if pd.isna(r[metric]):
                    continue
                m = f[(f["paper_loss"] == r["loss"]) & (f["negatives"] == str(r["negatives"])) & (f["metric"] == metric)
                      & (f["data"] == "Beauty") & (f["paper_model"] == "SASRec")]
                mean, std, n = _stats(m)
                rows.append({"dataset": "Beauty", "model": "SASRec", "loss_kind": kind, "loss": r["loss"],
                             "negatives": str(r["negatives"]), "metric": metric, "reported": float(r[metric]),
                             "reproduced": mean, "reproduced_std": std, "n_seeds": n})
    return _finish(rows)


def format_comparison(table: pd.DataFrame) -> str:
    """A printable table: reported, reproduced (mean ± std over seeds), relative difference and verdict per cell;
    side by side per metric (``<metric> paper``, ``<metric> ours``, ``<metric> diff``) when there are at most two
    metrics, else one line per cell."""
    def fmt(r):
        if np.isnan(r.reproduced):
            return "-"
        s = f"{r.reproduced:.4f}" if r.metric != "train_seconds" else f"{r.reproduced:.1f}"
        return s + (f" ± {r.reproduced_std:.4f}" if r.n_seeds > 1 and not np.isnan(r.reproduced_std) else "")

    show = table.copy()
    show["reproduced"] = [fmt(r) for r in table.itertuples(index=False)]
    show["rel_diff"] = [("-" if np.isnan(v) else f"{v:+.1%}") for v in table["rel_diff"]]
    show = show.drop(columns=["reproduced_std"])
    metrics = list(dict.fromkeys(show["metric"]))
    if len(metrics) > 2:
        return show.to_string(index=False)
    ids = [c for c in ("dataset", "model", "loss_kind", "loss", "negatives") if c in show.columns]
    show["diff"] = [d if v == "not run" else f"{d} {v}" for d, v in zip(show["rel_diff"], show["verdict"])]
    wide = show.pivot_table(index=ids, columns="metric", values=["reported", "reproduced", "diff"], aggfunc="first", sort=False)
    columns = [(q, m) for m in metrics for q in ("reported", "reproduced", "diff")]
    wide = wide.reindex(columns=columns)
    wide.columns = [f"{m} {dict(reported='paper', reproduced='ours', diff='diff')[q]}" for q, m in columns]
    return wide.reset_index().to_string(index=False, float_format=lambda v: f"{v:.4f}")
