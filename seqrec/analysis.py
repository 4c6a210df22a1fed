"""What the book's notebooks compute that the experiment runner does not: paper-layout tables, verdict
counts, paired ablation differences, seed statistics, per-negative gradient signal and accuracy by sequence
length. Frames in, frames out; the notebooks only call these and show the result.

Conventions: a *tidy* frame has one row per run × metric (``seqrec.results.to_frame`` plus the grid's label
columns: ``paper_model``, ``loss_kind``, ``paper_loss``, ``variant``, ``ablation``). Relative difference
``rel = (reproduced − reported) / reported``.
"""
from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import data as data_mod
from . import losses, metrics, models
from .config import TrainConfig
from .errors import SeqrecError

PAPER_LOSS = {"bce": "BCE", "bpr": "BPR", "bpr_max": "BPR-max", "top1": "TOP1", "top1_max": "TOP1-max",
              "ce": "CE", "cce": "CCE", "cce_naive": "CCE", "mlm": "MLM"}
NEGATIVE_LOSSES = ("bce", "bpr", "bpr_max", "top1", "top1_max")
VERDICTS = ("reproduced", "better", "worse", "not run")
NOT_REPORTED = "not reported"


# --------------------------------------------------------------------------- labelling
def profile_banner(profile: str, data_only: bool = False) -> str:
    """HTML shown at the top of every notebook: which profile produced the numbers; loud for ``smoke``.
    ``data_only``: the page shows dataset statistics, which no profile changes."""
    p = html.escape(profile)
    if data_only:
        return ('<div class="admonition note"><p class="admonition-title">Data statistics: independent of the profile</p>'
                f'<p>This copy was executed with the <code>{p}</code> profile, but every number on this page is computed '
                'from the complete data files, not from training runs.</p></div>')
    if profile == "smoke":
        return ('<div class="admonition danger"><p class="admonition-title">Smoke profile: these numbers are NOT results</p>'
                f'<p>This chapter was executed with the <code>{p}</code> profile: tiny data subsets and a few epochs, only to '
                'check that the pipeline runs end to end. Every number and figure below is meaningless as a reproduction; '
                'rebuild with <code>make book PROFILE=paper</code> for the real ones.</p></div>')
    return (f'<div class="admonition note"><p class="admonition-title">Profile: {p}</p>'
            f'<p>Every number on this page was produced by the <code>{p}</code> profile of <code>seqrec.experiments</code>; '
            'the paper\'s numbers are labelled "reported".</p></div>')


def loss_label(loss: str, num_negatives=None, mask_prob=None) -> str:
    """The paper's name of a loss configuration: ``("bce", 10) -> "BCE-10"``, ``("mlm", mask_prob=0.2) ->
    "MLM (mask 0.2)"``, ``("cce",) -> "CCE"``."""
    name = PAPER_LOSS.get(loss, loss)
    if loss in NEGATIVE_LOSSES and num_negatives is not None and not pd.isna(num_negatives):
        return f"{name}-{int(num_negatives)}"
    if loss == "mlm" and mask_prob is not None and not pd.isna(mask_prob):
        return f"{name} (mask {float(mask_prob):g})"
    return name


def _reported_label(row) -> str:
    loss, neg = str(row["loss"]), str(row["negatives"])
    return f"{loss}-{neg}" if neg.isdigit() else loss


# --------------------------------------------------------------------------- loading
TIDY_COLUMNS = ("data", "model", "loss", "seed", "num_negatives", "negative_pool", "mask_prob", "max_users",
                "exclude_seen", "ties", "variant", "pretraining", "profile", "grid", "train_seconds", "peak_memory_mb", "path", "metric", "value",
                "paper_model", "loss_kind", "paper_loss", "ablation")

# Sizes of the small experiments this module runs itself (gradient signal, accuracy by length), per profile.
ANALYSIS_RUNS = {
    "smoke": {"data": "LastFM", "max_users": 200, "epochs": 2},
    "quick": {"data": "LastFM", "max_users": None, "epochs": 10},
    "paper": {"data": "LastFM", "max_users": None, "epochs": 30},
}


def grid_frame(grid: str, profile: str, *, train: str = "missing", datasets=None, seeds=None,
               results_dir: str = "results") -> pd.DataFrame:
    """The tidy frame of ``seqrec.experiments.run_grid(grid, profile)``, training missing cells unless
    ``train == "none"``, restricted to ``datasets`` and ``seeds`` when given (None: all). Always has the
    :data:`TIDY_COLUMNS`, even when nothing is stored yet."""
    from . import experiments

    if train not in ("missing", "all", "none"):
        raise ValueError(f"unknown train {train!r}; allowed: missing, all, none")
    kw = dict(train=train != "none", results_dir=results_dir, progress=False)
    if datasets is None:
        frames = [experiments.run_grid(grid, profile, **kw)]
    else:
        planned = {c.config.data for c in experiments.cells(grid, profile)}
        frames = [experiments.run_grid(grid, profile, only={"data": d}, **kw) for d in datasets if d in planned]
    frames = [f for f in frames if len(f)]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(TIDY_COLUMNS))
    for col in TIDY_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    if seeds is not None:
        frame = frame[frame["seed"].isin(list(seeds))]
    return frame.reset_index(drop=True)


def table2_frame(profile: str, *, train: str = "missing", datasets=None, seeds=None,
                 results_dir: str = "results") -> pd.DataFrame:
    """Table 2's runs plus the ``seeds`` ablation's runs of the same cells (SASRec BCE and CCE under the Table 2
    protocol with other seeds), labelled as Table 2 cells: a cell then shows mean ± std over every seed run.
    Only Table 2 is trained (``train``); the ablation runs are read as stored. A run in both (seed 42) counts once."""
    t2 = grid_frame("table2", profile, train=train, datasets=datasets, seeds=seeds, results_dir=results_dir)
    ab = grid_frame("ablations", profile, train="none", datasets=datasets, seeds=seeds, results_dir=results_dir)
    extra = ab[ab["ablation"] == "seeds"].copy()
    extra["ablation"] = ""
    frames = [f for f in (t2, extra) if len(f)]
    if not frames:
        return t2
    both = pd.concat(frames, ignore_index=True)
    return both.drop_duplicates(["key", "metric"]).reset_index(drop=True)


def _stored_runs(profile: str, results_dir: str = "results"):
    """``(grid, record)`` for every successful record stored for ``profile``, grid by grid (error records and
    unreadable files left out)."""
    from . import experiments, results

    for grid in experiments.GRIDS:
        folder = Path(results_dir) / profile / grid
        if folder.is_dir():
            for run in results.load_runs(folder):
                if run.get("status", "ok") == "ok":
                    yield grid, run


def compute_spent(profile: str, results_dir: str = "results") -> pd.DataFrame:
    """Compute behind the stored runs of ``profile``, per device and grid: ``runs``, ``wall hours`` (provenance wall
    time, summed over resumed sessions; each stored file counts, a configuration that was run twice counts twice),
    ``train hours`` (training epochs only) and ``pretraining hours`` (S3-Rec, once per checkpoint). Error records
    are left out."""
    rows, pretrain_seen = [], set()
    for grid, run in _stored_runs(profile, results_dir):
        prov = run.get("provenance", {})
        pre = run.get("pretraining") or {}
        pre_seconds = 0.0
        if pre and pre.get("checkpoint") not in pretrain_seen:
            pretrain_seen.add(pre.get("checkpoint"))
            pre_seconds = float(pre.get("seconds") or 0.0)
        rows.append({"device": prov.get("device") or "unknown", "grid": grid, "wall": float(prov.get("wall_seconds") or 0.0),
                     "train": float(run.get("train_seconds") or 0.0), "pretraining": pre_seconds})
    if not rows:
        return pd.DataFrame(columns=["runs", "wall hours", "train hours", "pretraining hours"])
    f = pd.DataFrame(rows)
    g = f.groupby(["device", "grid"])
    out = pd.DataFrame({"runs": g.size(), "wall hours": g.wall.sum() / 3600, "train hours": g.train.sum() / 3600,
                        "pretraining hours": g.pretraining.sum() / 3600})
    return out


def repeated_runs(profile: str, results_dir: str = "results") -> pd.DataFrame:
    """Configurations of ``profile`` trained more than once (the same key stored by two grids, e.g. a cell rerun
    to record metrics added later): the determinism check "same seed, same machine, same metrics" on real runs.
    One row per key: ``run`` (data, model, loss), ``grids``, ``commits`` (short), ``devices``, ``metrics``
    (how many both records have), ``max |difference|`` over them, ``metrics identical`` and ``curve max |difference|``
    (training loss and validation metrics, epoch by epoch; NaN without stored curves). Error records are left
    out."""
    by_key: dict[str, list[tuple[str, dict]]] = {}
    for grid, run in _stored_runs(profile, results_dir):
        if isinstance(run.get("key"), str):
            by_key.setdefault(run["key"], []).append((grid, run))
    rows = []
    for key, found in sorted(by_key.items()):
        if len(found) < 2:
            continue
        metrics = [run["metrics"] for _, run in found]
        shared = sorted(set.intersection(*(set(m) for m in metrics)))
        diff = max((abs(m[name] - metrics[0][name]) for m in metrics[1:] for name in shared), default=np.nan)
        curve_diffs = [d for _, run in found[1:] for d in _curve_differences(found[0][1].get("curve") or [],
                                                                             run.get("curve") or [])[1]]
        cfg = found[0][1]["config"]
        prov = [run.get("provenance", {}) for _, run in found]
        rows.append({"run": f"{cfg.get('data')} {cfg.get('model')} {cfg.get('loss')}", "key": key,
                     "grids": ", ".join(g for g, _ in found),
                     "commits": ", ".join(str(p.get("commit") or "?")[:7] for p in prov),
                     "devices": ", ".join(sorted({str(p.get("device") or "unknown") for p in prov})),
                     "metrics": len(shared), "max |difference|": diff, "metrics identical": bool(shared) and diff == 0,
                     "curve max |difference|": max(curve_diffs, default=np.nan)})
    return pd.DataFrame(rows, columns=["run", "key", "grids", "commits", "devices", "metrics", "max |difference|",
                                       "metrics identical", "curve max |difference|"])


def _curve_differences(curve_a: list[dict], curve_b: list[dict]) -> tuple[int, list[float]]:
    """``(epochs both curves have, |a − b| of every value both have at those epochs)``; wall-clock fields left out."""
    by_epoch = {p["epoch"]: p for p in curve_a}
    pairs = [(by_epoch[p["epoch"]], p) for p in curve_b if p.get("epoch") in by_epoch]
    return len(pairs), [abs(float(a[k]) - float(b[k])) for a, b in pairs for k in a
                        if k not in ("epoch", "elapsed") and k in b and a[k] is not None and b[k] is not None]


def replayed_curves(profile: str, results_dir: str = "results") -> pd.DataFrame:
    """Stored runs whose configurations differ only in ``patience`` (a Table 2 cell and its patience-40 ablation):
    up to the last epoch of the shorter run the longer one must replay its curve exactly, training loss and every
    validation metric, even where it was interrupted and resumed from its checkpoint in a later session. The
    determinism and resume check on real runs. One row per (shorter, longer) pair: ``run``, ``grids``,
    ``patience`` ("10 → 40"), ``devices`` (as provenance names them, with the thread count), ``shared epochs``,
    ``resumed at epoch`` (the longer run's resume points, "–" if it ran in one go), ``values`` compared,
    ``max |difference|`` and ``identical``. Error records are left out."""
    groups: dict[str, list[tuple[str, dict]]] = {}
    for grid, run in _stored_runs(profile, results_dir):
        cfg = run.get("config") or {}
        if "patience" not in cfg or not run.get("curve"):
            continue
        try:  # the key of the configuration with its patience set aside (old records lack newer fields' defaults)
            rest = TrainConfig.from_dict({**cfg, "patience": 1}).key()
        except SeqrecError:
            continue
        groups.setdefault(rest, []).append((grid, run))
    rows = []
    for found in groups.values():
        found.sort(key=lambda gr: (gr[1]["config"]["patience"], len(gr[1]["curve"])))
        short_grid, short = found[0]
        for grid, long in found[1:]:
            if long["config"]["patience"] == short["config"]["patience"]:
                continue  # the same configuration stored twice: repeated_runs compares those
            epochs, diffs = _curve_differences(short["curve"], long["curve"])
            sessions = (long.get("provenance") or {}).get("sessions") or []
            resumed = ", ".join(str(s["from_epoch"]) for s in sessions if s.get("from_epoch"))
            cfg = short["config"]
            rows.append({"run": f"{cfg.get('data')} {cfg.get('model')} {cfg.get('loss')}",
                         "grids": f"{short_grid}, {grid}",
                         "patience": f"{cfg['patience']} → {long['config']['patience']}",
                         "devices": ", ".join(sorted({str((r.get("provenance") or {}).get("device") or "unknown")
                                                      for r in (short, long)})),
                         "shared epochs": epochs,
                         "resumed at epoch": resumed or "–",
                         "values": len(diffs), "max |difference|": max(diffs, default=np.nan),
                         "identical": bool(diffs) and max(diffs) == 0})
    return pd.DataFrame(rows, columns=["run", "grids", "patience", "devices", "shared epochs", "resumed at epoch",
                                       "values", "max |difference|", "identical"])


def planned_cells(grid: str, profile: str) -> pd.DataFrame:
    """The grid's cells for ``profile`` as a frame: config fields ``data, model, loss, seed``, ``pretraining``
    (S3-Rec's, in words: :func:`seqrec.results.pretraining_label`) and the labels."""
    from . import experiments
    from .results import pretraining_label

    return pd.DataFrame([{"data": c.config.data, "model": c.config.model, "loss": c.config.loss,
                          "seed": c.config.seed, "pretraining": pretraining_label(vars(c.config)), **c.labels}
                         for c in experiments.cells(grid, profile)])


# --------------------------------------------------------------------------- Figure 1
def figure1_points(frame: pd.DataFrame, reported: pd.DataFrame, metric: str = "full_HIT@10") -> pd.DataFrame:
    """One row per loss configuration and source ("reproduced" / "reported") with columns
    ``label, source, hit, train_seconds, memory_mb``. Reproduced points average over seeds."""
    rows = []
    if len(frame):
        sel = frame[frame.metric == metric].copy()
        sel["label"] = [loss_label(l, k, m) for l, k, m in zip(sel["loss"], sel["num_negatives"], sel["mask_prob"])]
        for label, g in sel.groupby("label", sort=False):
            rows.append({"label": label, "source": "reproduced", "hit": g.value.mean(),
                         "train_seconds": g.train_seconds.mean(), "memory_mb": g.peak_memory_mb.mean(), "n_runs": len(g)})
    for _, r in reported.iterrows():
        rows.append({"label": _reported_label(r), "source": "reported", "hit": r.get(metric, np.nan),
                     "train_seconds": r["train_seconds"], "memory_mb": r["peak_gpu_mem_mb"], "n_runs": np.nan})
    return pd.DataFrame(rows, columns=["label", "source", "hit", "train_seconds", "memory_mb", "n_runs"])


def side_by_side(points: pd.DataFrame, value: str = "hit") -> pd.DataFrame:
    """Pivot :func:`figure1_points` to one row per loss label, one column per source. A missing reproduced value
    stays NaN (shown as "not run"); a missing reported one is the text "not reported"."""
    wide = points.pivot_table(index="label", columns="source", values=value, aggfunc="first", sort=False)
    wide = wide.reindex(columns=["reproduced", "reported"])
    wide["reported"] = wide["reported"].astype(object).where(wide["reported"].notna(), NOT_REPORTED)
    return wide


FIGURE1_METRICS = {"full_HIT@10": "HIT@10", "full_NDCG@10": "NDCG@10"}
FIGURE1_CELL_METRIC = "full_HIT@10"  # a Figure 1 point's verdict: its y axis, test HIT@10 with full ranking


def _figure1_labelled(compared: pd.DataFrame) -> pd.DataFrame:
    out = compared.copy()
    out["label"] = [_reported_label(r) for _, r in out.iterrows()]
    return out


def figure1_cells(compared: pd.DataFrame) -> pd.DataFrame:
    """Figure 1's points as cells: the rows of ``seqrec.paper.compare(..., "figure1")`` on
    :data:`FIGURE1_CELL_METRIC`, one per loss configuration, with a ``label`` column ("BCE-10", "CCE")."""
    return _figure1_labelled(compared[compared["metric"] == FIGURE1_CELL_METRIC])


def figure1_verdicts(compared: pd.DataFrame, reasons: pd.Series | None = None) -> pd.DataFrame:
    """One row per Figure 1 loss configuration (index: the paper's label), from ``seqrec.paper.compare(...,
    "figure1")``: for each metric of :data:`FIGURE1_METRICS` the reported value, ours (mean ± std over seeds, or
    "not run"), the relative difference and the verdict; a metric the paper does not report (the MLM points' NDCG,
    read off a figure that shows only HIT@10) reads "not reported". ``reasons`` (aligned with ``compared``'s
    index, e.g. :func:`not_run_reasons`) fills a ``why not run`` column."""
    labelled = _figure1_labelled(compared)
    rows = []
    for label, g in labelled.groupby("label", sort=False):
        row = {"label": label}
        for metric, name in FIGURE1_METRICS.items():
            cell = g[g["metric"] == metric]
            if cell.empty:
                row.update({f"{name} reported": NOT_REPORTED, f"{name} ours": NOT_REPORTED,
                            f"{name} vs paper": np.nan, f"{name} verdict": NOT_REPORTED})
                continue
            c = cell.iloc[0]
            row.update({f"{name} reported": c["reported"], f"{name} ours": _mean_std(c),
                        f"{name} vs paper": c["rel_diff"], f"{name} verdict": c["verdict"]})
        if reasons is not None:  # a configuration's reason is its cell's, the HIT@10 row
            cell = g.index[g["metric"] == FIGURE1_CELL_METRIC]
            row["why not run"] = reasons.get(cell[0], "") if len(cell) else ""
        rows.append(row)
    return pd.DataFrame(rows).set_index("label")


def figure1_claim(compared: pd.DataFrame) -> pd.DataFrame:
    """The paper's Figure 1 claim, "CCE is the most accurate loss of the family", tested on our runs: one row per
    other loss configuration and metric of :data:`FIGURE1_METRICS` the paper reports, with the reported values of
    CCE and that loss, ours (means over seeds), ``difference`` = our CCE − our other, and ``verdict``: *holds*
    (difference > 0), *does not hold* (≤ 0) or *not run* (either run missing). ``compared``:
    ``seqrec.paper.compare(..., "figure1")``."""
    labelled = _figure1_labelled(compared)
    rows = []
    for metric, name in FIGURE1_METRICS.items():
        sel = labelled[labelled["metric"] == metric]
        cce = sel[sel["label"] == "CCE"]
        if cce.empty:
            continue
        c = cce.iloc[0]
        for _, o in sel[sel["label"] != "CCE"].iterrows():
            ran = not (pd.isna(c["reproduced"]) or pd.isna(o["reproduced"]))
            diff = c["reproduced"] - o["reproduced"] if ran else np.nan
            rows.append({"other loss": o["label"], "metric": name, "reported CCE": c["reported"],
                         "reported other": o["reported"], "paper: CCE better": bool(c["reported"] > o["reported"]),
                         "ours CCE": c["reproduced"], "ours other": o["reproduced"], "difference": diff,
                         "verdict": ("holds" if diff > 0 else "does not hold") if ran else "not run"})
    return pd.DataFrame(rows, columns=["other loss", "metric", "reported CCE", "reported other", "paper: CCE better",
                                       "ours CCE", "ours other", "difference", "verdict"])


def figure1_claim_in_words(claim: pd.DataFrame) -> str:
    """One sentence from :func:`figure1_claim`: against how many of the other loss configurations run CCE is
    more accurate, per metric, naming those it does not beat; says so when CCE or every other loss is not run."""
    ran = claim[claim["verdict"] != "not run"]
    if ran.empty:
        return ("Figure 1's claim (CCE is the most accurate loss) is not tested yet: CCE and at least one other loss "
                "must both be run.")
    parts = []
    for name, g in ran.groupby("metric", sort=False):
        beaten = int((g["verdict"] == "holds").sum())
        lost = list(g.loc[g["verdict"] == "does not hold", "other loss"])
        parts.append(f"on {name} it beats {beaten} of the {len(g)} other losses run"
                     + (f" (not {', '.join(lost)})" if lost else ""))
    untested = int((claim.loc[claim["metric"] == claim["metric"].iloc[0], "verdict"] == "not run").sum())
    return (f"Figure 1's claim, CCE is the most accurate loss: {'; '.join(parts)}."
            + (f" {untested} other loss configurations are not run yet." if untested else ""))


def verdict_overview(compared: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Cells per verdict for each reported table: ``compared`` maps a name ("Table 2", ...) to its cells (a
    ``seqrec.paper.compare`` frame; for Figure 1, :func:`figure1_cells`). Columns: the four :data:`VERDICTS`,
    ``run`` and ``cells`` (all reported cells)."""
    rows = {}
    for name, table in compared.items():
        counts = verdict_counts(table)["cells"].astype(int)
        rows[name] = {**counts.to_dict(), "run": int(counts.sum() - counts["not run"]), "cells": int(counts.sum())}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[*VERDICTS, "run", "cells"])


# --------------------------------------------------------------------------- Table 2
def table2_layout(compared: pd.DataFrame, value: str = "reproduced") -> pd.DataFrame:
    """The paper's Table 2 layout from ``seqrec.paper.compare(..., "table2")``: rows (dataset, metric), columns
    (model, original / improved / improv. %). ``improv. % = 100 (improved − original) / original``."""
    wide = compared.pivot_table(index=["dataset", "metric"], columns=["model", "loss_kind"], values=value,
                                aggfunc="first", dropna=False, sort=False)
    out = {}
    for model in dict.fromkeys(compared["model"]):
        o = wide.get((model, "original"), pd.Series(np.nan, index=wide.index))
        i = wide.get((model, "improved"), pd.Series(np.nan, index=wide.index))
        out[(model, "original")] = o
        out[(model, "improved")] = i
        out[(model, "improv. %")] = 100 * (i - o) / o
    return pd.DataFrame(out, index=wide.index)


def verdict_counts(compared: pd.DataFrame) -> pd.DataFrame:
    """Number and share of reported cells per verdict (all four verdicts listed, zeros included)."""
    counts = compared["verdict"].value_counts().reindex(VERDICTS, fill_value=0)
    total = int(counts.sum())
    run = total - int(counts["not run"])
    return pd.DataFrame({"cells": counts, "share of all cells": counts / max(total, 1),
                         "share of cells run": [c / run if run and v != "not run" else np.nan
                                                for v, c in counts.items()]})


# Why planned cells of a profile may be missing from the committed store (shown by the book; a fact about compute,
# not a result).
PENDING = {
    "paper": "compute — on the 2-core CPU that produced the stored paper runs, a full-protocol cell on one of the four "
             "large datasets takes hours (up to 200 epochs of 1-3 min each) and no GPU was lent yet; "
             "`seqrec run table2 --profile paper` (or figure1, table3, ablations) trains it, resuming an interrupted cell at its last epoch",
}


def not_run_reasons(compared: pd.DataFrame, planned: pd.DataFrame, profile: str, train: str) -> pd.Series:
    """Why each "not run" row of ``compared`` is empty, never blank: the cell is not in ``profile``'s grid
    (``planned`` = the grid's cells' labels: ``data``/``dataset``, ``paper_model``, ``loss_kind``) or it is
    planned but absent from the store (training was ``train``). Rows that did run get ""."""
    key = set()
    if len(planned):
        dcol = "dataset" if "dataset" in planned else "data"
        key = set(zip(planned[dcol], planned["paper_model"], planned["loss_kind"]))
    reasons = []
    for _, r in compared.iterrows():
        if r["verdict"] != "not run":
            reasons.append("")
        elif (r["dataset"], r["model"], r["loss_kind"]) in key:
            why = PENDING.get(profile, f"book built with train={train}")
            reasons.append(f"in the {profile} grid, not in the results store yet: {why}")
        else:
            reasons.append(f"not part of the {profile} profile's grid")
    return pd.Series(reasons, index=compared.index, name="reason")


CLAIM_VERDICTS = ("holds", "does not hold", "not run")


def _mean_std(row) -> str:
    if row is None or pd.isna(row["reproduced"]):
        return "not run"
    n = int(row["n_seeds"])
    std = row["reproduced_std"]
    return f"{row['reproduced']:.4f}" + (f" ± {std:.4f} ({n} seeds)" if n > 1 and not pd.isna(std) else "")


def _beyond_seed_noise(difference: float, std_a: float, std_b: float) -> str:
    """``"yes"`` when ``|difference| > 2 ×`` the larger of two seed stds, ``"no"`` when not, ``"one seed"`` when
    either std is missing (NaN: a single seed)."""
    if pd.isna(std_a) or pd.isna(std_b):
        return "one seed"
    return "yes" if abs(difference) > 2 * max(std_a, std_b) else "no"


def claims(compared: pd.DataFrame) -> pd.DataFrame:
    """The paper's claim per Table 2 pair, "CCE beats the model's original loss on this dataset", tested on our
    runs: one row per (dataset, model, metric) with the reported and our values of both losses (mean ± std over
    seeds), ``difference`` = our CCE mean − our original mean, and ``verdict``: *holds* (difference > 0), *does not
    hold* (≤ 0) or *not run* (either cell missing). ``beyond seed noise``: ``|difference| > 2 ×`` the larger std
    when both cells have ≥ 2 seeds, else "one seed". ``compared``: :func:`seqrec.paper.compare` of Table 2."""
    rows = []
    for (d, m, metric), g in compared.groupby(["dataset", "model", "metric"], sort=False):
        o = g[g.loss_kind == "original"]
        c = g[g.loss_kind == "improved"]
        if o.empty or c.empty:
            continue
        o, c = o.iloc[0], c.iloc[0]
        row = {"dataset": d, "model": m, "metric": metric, "original loss": o["loss"],
               "reported original": o["reported"], "reported CCE": c["reported"],
               "paper: CCE better": bool(c["reported"] > o["reported"]),
               "ours original": _mean_std(o), "ours CCE": _mean_std(c), "difference": np.nan,
               "beyond seed noise": "", "verdict": "not run"}
        if not (pd.isna(o["reproduced"]) or pd.isna(c["reproduced"])):
            diff = c["reproduced"] - o["reproduced"]
            row["difference"] = diff
            row["beyond seed noise"] = _beyond_seed_noise(diff, *(x["reproduced_std"] if x["n_seeds"] > 1 else np.nan
                                                                   for x in (o, c)))
            row["verdict"] = "holds" if diff > 0 else "does not hold"
        rows.append(row)
    return pd.DataFrame(rows)


def claims_in_words(claims_table: pd.DataFrame) -> str:
    """One plain sentence per verdict from :func:`claims`: which (dataset, model) pairs hold or do not, with the
    metrics and, where there are seeds, whether the difference exceeds the seed noise. Empty when nothing ran."""
    ran = claims_table[claims_table["verdict"] != "not run"]
    lines = []
    for verdict in ("holds", "does not hold"):
        part = ran[ran["verdict"] == verdict]
        if part.empty:
            continue
        items = []
        for (d, m), g in part.groupby(["dataset", "model"], sort=False):
            noise = set(g["beyond seed noise"])
            note = "" if noise <= {"one seed"} else (", beyond seed noise" if noise == {"yes"} else
                                                       ", within seed noise" if noise == {"no"} else ", partly within seed noise")
            items.append(f"{m} on {d} ({', '.join(g['metric'])}{note})")
        lead = "CCE beats the original loss for" if verdict == "holds" else "CCE does not beat the original loss for"
        lines.append(f"{lead} {'; '.join(items)}.")
    return " ".join(lines)


def claim_counts(claims_table: pd.DataFrame) -> pd.DataFrame:
    """Number of (dataset, model, metric) pairs per claim verdict, in :data:`CLAIM_VERDICTS` order."""
    counts = claims_table["verdict"].value_counts().reindex(list(CLAIM_VERDICTS), fill_value=0)
    return counts.rename("pairs").to_frame()


def srgnn_variants(compared: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """SR-GNN's CCE in both variants beside its CE, per (dataset, metric) with at least one SR-GNN run: the
    reported CE and CCE, ours with CE (as compared), ours with CCE in the ``authors`` variant (the one Table 2's
    verdicts read) and the ``causal`` one (means over the seeds in ``frame``, the tidy Table 2 frame), and each
    variant's gain over our CE. ``compared``: :func:`seqrec.paper.compare` of Table 2."""
    rows = []
    for (dataset, metric), g in compared[compared["model"] == "SR-GNN"].groupby(["dataset", "metric"], sort=False):
        by_kind = g.set_index("loss_kind")
        ours_ce = by_kind["reproduced"].get("original", np.nan)
        row = {"dataset": dataset, "metric": metric, "reported CE": by_kind["reported"].get("original", np.nan),
               "reported CCE": by_kind["reported"].get("improved", np.nan), "ours CE": ours_ce}
        cell = {"dataset": dataset, "model": "SR-GNN", "loss_kind": "improved", "metric": metric}
        causal = _cell_rows(cell, frame, "causal") if len(frame) else frame
        values = {"authors": by_kind["reproduced"].get("improved", np.nan),  # the variant compare() matched
                  "causal": causal["value"].mean() if len(causal) else np.nan}
        for variant, value in values.items():
            row[f"ours CCE ({variant})"] = value
            row[f"{variant} vs CE %"] = 100 * (value - ours_ce) / ours_ce if ours_ce else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    ours = ["ours CE", "ours CCE (authors)", "ours CCE (causal)"]
    return out[out[ours].notna().any(axis=1)].set_index(["dataset", "metric"])


def srgnn_variants_in_words(variants: pd.DataFrame) -> str:
    """One sentence per SR-GNN CCE variant from :func:`srgnn_variants`: where its CCE beats our CE and where not,
    with the relative gain. Empty when no (dataset, metric) has both CE and that variant run."""
    lines = []
    for variant, role in (("authors", "authors' variant (the one the verdicts read)"),
                          ("causal", "causal variant (no look-ahead)")):
        gain = variants[f"{variant} vs CE %"].dropna() if len(variants) else pd.Series(dtype=float)
        if gain.empty:
            continue
        parts = []
        for verdict, sel in (("beats", gain[gain > 0]), ("does not beat", gain[gain <= 0])):
            if len(sel):
                where = "; ".join(f"{d} ({', '.join(f'{m} {v:+.0f}%' for (_, m), v in g.items())})"
                                  for d, g in sel.groupby(level=0, sort=False))
                parts.append(f"{verdict} our CE on {where}")
        lines.append(f"SR-GNN with CCE, {role}, {' and '.join(parts)}.")
    return " ".join(lines)


def after_best(curve: list[dict], monitor: str) -> dict | None:
    """From a stored training ``curve`` (per-epoch dicts with ``epoch``, ``train_loss`` and the ``monitor`` metric),
    what happened after the best epoch: ``{"best_epoch", "last_epoch", "drop", "train_drop"}``, the relative drops
    of the monitor and of the training loss from the best epoch to the last (positive: lower at the end). None when
    fewer than two points have both quantities, or the best value or its training loss is not usable (≤ 0, 0)."""
    points = [c for c in curve if monitor in c and "train_loss" in c]
    if len(points) < 2:
        return None
    best = max(points, key=lambda c: c[monitor])  # the first of equal maxima, as early stopping keeps it
    last = points[-1]
    if best[monitor] <= 0 or best["train_loss"] == 0:
        return None
    return {"best_epoch": best["epoch"], "last_epoch": last["epoch"],
            "drop": (best[monitor] - last[monitor]) / best[monitor],
            "train_drop": (best["train_loss"] - last["train_loss"]) / abs(best["train_loss"])}


def overfit_after_best(curve: list[dict], monitor: str, min_drop: float = 0.05) -> dict | None:
    """:func:`after_best` when the curve shows overfitting after its best epoch (the monitor ends at least
    ``min_drop``, relative, below its best while the training loss ends below its value at the best epoch),
    else None (no overfitting, the best epoch last, or the curve lacks the quantities)."""
    o = after_best(curve, monitor)
    return o if _overfit(o, min_drop) else None


def _overfit(o: dict | None, min_drop: float = 0.05) -> bool:
    return o is not None and o["best_epoch"] != o["last_epoch"] and o["drop"] >= min_drop and o["train_drop"] > 0


def _within_tolerance(value: float, r) -> bool:
    """Is ``value`` within the verdicts' tolerance (:data:`seqrec.paper.TOLERANCE`) of the cell's reported value?"""
    from .paper import TOLERANCE

    return abs(value - r["reported"]) <= TOLERANCE * r["reported"]


def _nearness(value: float, r) -> str:
    """``"found"`` when ``value`` is within the tolerance of the cell's reported value, ``"partly"`` when outside
    but nearer to it than the cell's own value, ``"past"`` when no nearer but on the other side of it (the change
    moves the cell the gap's way and further: it matters, yet does not by itself give the paper's number),
    ``"ruled out"`` otherwise."""
    if _within_tolerance(value, r):
        return "found"
    if abs(value - r["reported"]) < abs(r["reproduced"] - r["reported"]):
        return "partly"
    return "past" if (value - r["reported"]) * (r["reproduced"] - r["reported"]) < 0 else "ruled out"


def _moved(value: float, r, before: str) -> str:
    """Where a change takes cell ``r`` (``value``) against where it was (``before``: whose the cell's own value is,
    e.g. "with ours"), both relative to the reported value."""
    return (f"{value:.4f}, {value / r['reported'] - 1:+.0%} from the reported {r['reported']:.4f} against "
            f"{r['reproduced'] / r['reported'] - 1:+.0%} {before}")


def _partly(nearness: str, factor: str, reaches: str, value: float, r, before: str) -> str:
    """The words for a ``"partly"`` or ``"past"`` :func:`_nearness` of ``factor``: ``reaches`` (what reaches
    ``value``) and :func:`_moved`."""
    lead = f"partly the {factor}" if nearness == "partly" else f"overshot by the {factor}"
    tail = ", past the paper's number in the gap's direction" if nearness == "past" else ""
    return f"{lead}: {reaches} {_moved(value, r, before)}{tail}"


def _cell_rows(r, frame: pd.DataFrame, variant: str | None = None) -> pd.DataFrame:
    """The rows of the tidy Table 2 ``frame`` behind the compared cell ``r``: as :func:`seqrec.paper.compare`
    reads them (SR-GNN with CCE: the ``authors`` variant), or the given SR-GNN ``variant``."""
    sel = frame[(frame["data"] == r["dataset"]) & (frame["paper_model"] == r["model"])
                & (frame["loss_kind"] == r["loss_kind"]) & (frame["metric"] == f"full_{r['metric']}")]
    if r["model"] == "SR-GNN" and r["loss_kind"] == "improved" and "variant" in sel:
        from .paper import SRGNN_CCE_VARIANT

        sel = sel[sel["variant"].fillna("").astype(str) == (variant or SRGNN_CCE_VARIANT)]
    return sel


def _variant_check(r, frame: pd.DataFrame) -> tuple[str, str] | None:
    """SR-GNN with CCE: the cell reads the ``authors`` variant (positions see later items while training);
    ``("found", why)`` when the ``causal`` variant of the same cell lands within the tolerance of the reported
    value, ``("partly", why)`` when it lands outside but nearer than the cell or past the reported value from the
    cell's side (:func:`_nearness`), ``("ruled out", why)`` when it is stored and neither, None otherwise."""
    if r["model"] != "SR-GNN" or r["loss_kind"] != "improved":
        return None
    causal = _cell_rows(r, frame, "causal")
    if not len(causal):
        return None
    value = causal["value"].mean()
    nearness = _nearness(value, r)
    if nearness == "found":
        return ("found", f"variant: our causal SR-GNN (each position sees only the items before it) reaches "
                         f"{value:.4f} against the reported {r['reported']:.4f}, so the paper's number matches a "
                         f"model without the authors' variant's look-ahead, not the look-ahead variant this cell reads")
    if nearness in ("partly", "past"):
        return ("partly", _partly(nearness, "variant", "our causal SR-GNN (each position sees only the items before it) "
                                  "reaches", value, r, "for the authors' variant this cell reads"))
    return ("ruled out", f"the variant (our causal SR-GNN reaches {value:.4f})")


def _overfitting_check(r, frame: pd.DataFrame) -> tuple[str, str] | None:
    """Early stopping judged from the stored curves of the cell's runs: ``("ruled out", why)`` when every run
    overfit after its best epoch (:func:`overfit_after_best`: a longer patience would only have kept the same
    peak), ``("open", why)`` when some run did not (a longer patience might have gone further), None when no
    usable curve is stored."""
    from . import results

    sel = _cell_rows(r, frame)
    paths = [p for p in sel["path"].dropna().unique()] if "path" in sel else []
    runs = [run for run in (results.load_runs(paths) if paths else []) if run.get("curve")]
    if not runs:
        return None
    stats = [after_best(run["curve"], run["config"].get("monitor", "")) for run in runs]
    if None in stats:
        return None
    name = runs[0]["config"]["monitor"].replace("_", " ", 1)
    for o in stats:
        if not _overfit(o):
            return ("open", f"early stopping ({name} at epoch {o['last_epoch']}, where training stopped, was "
                            f"{o['drop']:.0%} below its peak at epoch {o['best_epoch']}, without the signature of "
                            f"overfitting; a run with a longer patience would settle it)")
    o = stats[0]
    more = f" (and in the other {len(runs) - 1} seeds)" if len(runs) > 1 else ""
    return ("ruled out", f"early stopping (the run overfit: {name} peaked at epoch {o['best_epoch']} and was "
                         f"{o['drop']:.0%} lower at epoch {o['last_epoch']} while the training loss fell another "
                         f"{o['train_drop']:.0%}{more})")


def _same_direction(r, compared: pd.DataFrame, min_datasets: int = 3, share: float = 0.75) -> str | None:
    """A sentence when this (model, loss, metric) has the cell's verdict on at least ``min_datasets`` datasets
    run and on at least ``share`` of them: a gap in one direction across datasets, which seed noise (either
    sign) does not produce."""
    same = compared[(compared["model"] == r["model"]) & (compared["loss"] == r["loss"])
                    & (compared["metric"] == r["metric"]) & (compared["verdict"] != "not run")]
    hits = same[same["verdict"] == r["verdict"]]
    if len(hits) < min_datasets or len(hits) < share * len(same):
        return None
    diffs = hits["rel_diff"].dropna() if "rel_diff" in hits else pd.Series(dtype=float)
    span = f", {diffs.min():+.0%} to {diffs.max():+.0%}" if len(diffs) else ""
    return (f"systematic: {r['model']} with {r['loss']} is {r['verdict']} on {len(hits)} of the {len(same)} "
            f"datasets run ({r['metric']}{span}); a gap in one direction points to a difference in the model's "
            f"variant or hyperparameters (not tuned here) rather than chance")


def _negative_pool_check(r, runs: pd.DataFrame) -> tuple[str, str] | None:
    """A cell with sampled negatives: the same cell with its negatives drawn only among the items the user never
    interacted with, as the authors' code draws them (the ``negative_pool`` ablation in ``runs``, seen items removed
    at test as in the cell). ``("found", why)`` when its mean over the seeds run lands within the tolerance of the
    reported value, ``("ruled out", why)`` when it does not, None when no such run is stored."""
    if not len(runs) or "negative_pool" not in runs or "ablation" not in runs:
        return None
    p = _cell_rows(r, runs)
    p = p[(p["ablation"] == "negative_pool") & (p["negative_pool"] == "unseen") & (p["exclude_seen"] == "-inf")]
    if not len(p):
        return None
    value, seeds = p["value"].mean(), p["seed"].nunique()
    what = f"negatives drawn among the user's unseen items, as the authors' code does ({seeds} seed{'s' * (seeds > 1)})"
    if _within_tolerance(value, r):
        return "found", f"negative pool: with {what} the same cell reaches {value:.4f} (reported {r['reported']:.4f})"
    return "ruled out", f"negative pool (with {what} the cell reaches {value:.4f})"


def _pretraining_check(r, runs: pd.DataFrame) -> list[tuple[str, str]]:
    """An S3-Rec cell: the same cell pretrained with the S3-Rec authors' recipe (the ``pretraining`` ablation in
    ``runs``), one check per pretraining length run. ``("found", why)`` when its mean over the seeds run lands within
    the tolerance of the reported value, ``("partly", why)`` when outside but nearer than the cell or past the
    reported value from the cell's side (:func:`_nearness`), ``("ruled out", why)`` otherwise; no check when no such
    run is stored."""
    if r["model"] != "S3Rec" or not len(runs) or "pretraining" not in runs or "ablation" not in runs:
        return []
    p = _cell_rows(r, runs)
    p = p[p["ablation"] == "pretraining"]
    out = []
    for level, g in p.groupby("pretraining"):
        value, seeds = g.groupby("seed")["value"].mean().mean(), g["seed"].nunique()
        recipe, epochs = str(level).split(", ", 1)
        what = (f"pretrained with the S3-Rec authors' recipe ({recipe}: every prefix a sample, pairwise MIP and SP, "
                f"summed losses; {epochs}; {seeds} seed{'s' * (seeds > 1)})")
        nearness = _nearness(value, r)
        if nearness == "found":
            out.append(("found", f"pretraining: {what} the same cell reaches {value:.4f} (reported {r['reported']:.4f})"))
        elif nearness in ("partly", "past"):
            out.append(("partly", _partly(nearness, "pretraining", f"{what} the same cell reaches", value, r, "with ours")))
        else:
            out.append(("ruled out", f"pretraining ({what} the cell reaches {value:.4f}, "
                                     f"{value / r['reported'] - 1:+.0%} from the reported {r['reported']:.4f})"))
    return out


def _s3rec_per_seed(runs: pd.DataFrame, metrics) -> pd.Series:
    """S3-Rec runs of the Table 2 protocol (Table 2 cells, ``seeds``) and of the ``pretraining`` ablation: one value
    per (data, paper_loss, metric, pretraining, seed); a run stored by two grids counts once. Empty when none."""
    if not len(runs) or "pretraining" not in runs:
        return pd.Series(dtype=float)
    sel = runs[(runs["model"] == "s3rec") & runs["metric"].isin(metrics)
               & runs["ablation"].fillna("").isin(["", "seeds", "pretraining"])]
    return sel.groupby(["data", "paper_loss", "metric", "pretraining", "seed"])["value"].mean()


def _s3rec_reported() -> pd.Series:
    """The paper's S3-Rec values of Table 2, indexed by (data, paper_loss, metric) with ``full_`` metric names."""
    from . import paper

    rep = paper.reported("table2")
    rep = rep[rep["model"] == "S3Rec"].assign(metric=lambda d: "full_" + d["metric"])
    return rep.rename(columns={"dataset": "data", "loss": "paper_loss"}).set_index(
        ["data", "paper_loss", "metric"])["value"]


def pretraining_comparison(runs: pd.DataFrame, metrics=("full_HIT@10", "full_NDCG@10")) -> pd.DataFrame:
    """S3-Rec runs of the Table 2 protocol (Table 2 cells, ``seeds``) and of the ``pretraining`` ablation: the mean
    over seeds per (data, loss, metric) and pretraining (``"<recipe>, <epochs> epochs"``), one column each, the
    number of seeds behind each (``seeds: <pretraining>``) and the paper's reported value (``paper``)."""
    per_seed = _s3rec_per_seed(runs, metrics)
    if not len(per_seed):
        return pd.DataFrame()
    grouped = per_seed.groupby(level=["data", "paper_loss", "metric", "pretraining"])
    wide = grouped.mean().unstack("pretraining")
    seeds = grouped.size().unstack("pretraining").add_prefix("seeds: ")
    return wide.join(seeds).join(_s3rec_reported().rename("paper"))


def pretraining_claim(runs: pd.DataFrame, metrics=("full_HIT@10", "full_NDCG@10")) -> pd.DataFrame:
    """The paper's claim for S3-Rec, "CCE beats BCE", under each pretraining (runs as :func:`pretraining_comparison`
    reads them): per (data, metric, pretraining) the seed means of ``BCE`` and ``CCE``, ``difference`` = CCE − BCE,
    ``max std`` (the larger seed std, ddof=1), ``seeds`` (the fewer of the two), ``beyond seed noise`` (``"yes"`` when
    ``|difference| > 2 × max std``, ``"no"``, or ``"one seed"``) and the paper's ``reported difference``. Rows
    where only one loss is run are left out."""
    per_seed = _s3rec_per_seed(runs, metrics)
    if not len(per_seed):
        return pd.DataFrame()
    stats = per_seed.groupby(level=["data", "metric", "pretraining", "paper_loss"]).agg(["mean", "std", "size"])
    wide = stats.unstack("paper_loss")
    if not {("mean", "BCE"), ("mean", "CCE")} <= set(wide.columns):
        return pd.DataFrame()
    wide = wide[wide[("mean", "BCE")].notna() & wide[("mean", "CCE")].notna()]
    out = pd.DataFrame({"BCE": wide[("mean", "BCE")], "CCE": wide[("mean", "CCE")]})
    out["difference"] = out["CCE"] - out["BCE"]
    out["max std"] = wide[[("std", "BCE"), ("std", "CCE")]].max(axis=1, skipna=False)
    out["seeds"] = wide[[("size", "BCE"), ("size", "CCE")]].min(axis=1).astype(int)
    out["beyond seed noise"] = [_beyond_seed_noise(d, a, b) for d, a, b in
                                zip(out["difference"], wide[("std", "BCE")], wide[("std", "CCE")])]
    rep = _s3rec_reported().unstack("paper_loss")
    rep = (rep["CCE"] - rep["BCE"]).rename("reported difference")
    return out.join(rep, on=["data", "metric"])


def pretraining_samples(datasets, max_len: int = 50) -> pd.DataFrame:
    """Per dataset: S3-Rec pretraining samples per epoch with our recipe (one per user) and with the authors'
    (every prefix of each user's training window), and their ratio. Index ``data``."""
    from . import pretrain

    rows = []
    for name in datasets:
        windows = pretrain.training_windows(data_mod.load(name), max_len)
        ours, prefixes = len(windows), sum(len(w) for w in windows)  # one sample per window, or one per prefix
        rows.append({"data": name, "seqrec": ours, "s3rec": prefixes, "ratio": prefixes / ours})
    return pd.DataFrame(rows, columns=["data", "seqrec", "s3rec", "ratio"]).set_index("data")


def discrepancy_reasons(compared: pd.DataFrame, runs: pd.DataFrame, frame: pd.DataFrame | None = None,
                        seen_scoring: pd.DataFrame | None = None) -> pd.Series:
    """For each run cell of ``compared`` (Table 2) off by more than the tolerance, what our stored runs say about
    the cause; "" for the other cells. Checked, in order:

    - *seed variance*: with ≥ 2 seeds, is the reported value within our mean ± 2 std?
    - *early stopping*: does a run of the same cell with a longer patience (the ``patience`` ablation in ``runs``)
      land within the tolerance of the reported value? Without such a run, for a *worse* cell, with ``frame`` = the
      tidy Table 2 frame whose ``path`` column leads to the stored curves: did every run of the cell overfit after
      its best epoch (:func:`overfit_after_best`: a longer patience could only have kept the same peak; ruled
      out), or did one end on a plateau near its peak (not ruled out)?
    - *variant* (SR-GNN with CCE, which reads the authors' variant): does the ``causal`` variant of the same cell,
      stored in ``frame``, land within the tolerance of the reported value (or at least nearer than the cell, or past
      the reported value from the cell's side: partly)?
    - *seen-item scoring*: with ``seen_scoring`` (:func:`seen_scoring_checks`), does the cell's value, shifted by the
      effect of scoring seen items 0 as the authors' code does (measured on the cell's stored models), land within
      the tolerance of the reported value?
    - *negative pool*: does the same cell with its negatives drawn only among the user's unseen items (the
      ``negative_pool`` ablation in ``runs``, as the authors' code draws them) land within the tolerance?
    - *pretraining* (S3-Rec): does the same cell pretrained with the S3-Rec authors' recipe (the ``pretraining``
      ablation in ``runs``) land within the tolerance of the reported value (or at least nearer, or past it: partly)?
    - *systematic*: is the same (model, loss, metric) off in the same direction on most datasets run (at least 3)?

    A check that passes is given as the likely reason; checks that fail are listed as "not explained by ...: ...";
    with no check possible, "not investigated: ...".
    """
    reasons = []
    for _, r in compared.iterrows():
        if r["verdict"] not in ("better", "worse"):
            reasons.append("")
            continue
        found, ruled_out, still_open, patience_run = [], [], [], False
        if r["n_seeds"] > 1 and not pd.isna(r["reproduced_std"]):
            lo, hi = r["reproduced"] - 2 * r["reproduced_std"], r["reproduced"] + 2 * r["reproduced_std"]
            if lo <= r["reported"] <= hi:
                found.append(f"seed variance: the reported value lies within our mean ± 2 std over {int(r['n_seeds'])} seeds")
            else:
                ruled_out.append(f"seed variance (mean ± 2 std over {int(r['n_seeds'])} seeds is {lo:.4f}–{hi:.4f})")
        if len(runs) and "patience" in runs:
            p = _cell_rows(r, runs)
            p = p[p["ablation"] == "patience"]
            for patience, g in p.groupby("patience"):
                patience_run = True
                value = g["value"].mean()
                if _within_tolerance(value, r):
                    found.append(f"early stopping: with patience {int(patience)} instead of 10 the same cell reaches "
                                 f"{value:.4f} (reported {r['reported']:.4f})")
                else:
                    ruled_out.append(f"early stopping (with patience {int(patience)} the cell reaches {value:.4f})")
        if frame is not None and len(frame) and r["verdict"] == "worse" and not patience_run:
            checked = _overfitting_check(r, frame)
            if checked:
                (ruled_out if checked[0] == "ruled out" else still_open).append(checked[1])
        checked = _variant_check(r, frame) if frame is not None and len(frame) else None
        if checked:
            (ruled_out if checked[0] == "ruled out" else found).append(checked[1])
        checked = _seen_scoring_check(r, seen_scoring)
        if checked:
            (ruled_out if checked[0] == "ruled out" else found).append(checked[1])
        checked = _negative_pool_check(r, runs)
        if checked:
            (ruled_out if checked[0] == "ruled out" else found).append(checked[1])
        for checked in _pretraining_check(r, runs):
            (ruled_out if checked[0] == "ruled out" else found).append(checked[1])
        systematic = _same_direction(r, compared)
        if systematic:
            found.append(systematic)
        parts = ["; ".join(found)] if found else []
        if ruled_out:
            parts.append("not explained by " + "; nor by ".join(ruled_out))
        if still_open:
            parts.append("not ruled out: " + "; ".join(still_open))
        reasons.append("; ".join(parts) if parts else
                       "not investigated: no stored run isolates a cause (seeds, patience) for this cell")
    return pd.Series(reasons, index=compared.index, name="likely reason")


def discrepancies(compared: pd.DataFrame, runs: pd.DataFrame, frame: pd.DataFrame | None = None,
                  seen_scoring: pd.DataFrame | None = None) -> pd.DataFrame:
    """The cells of ``compared`` (Table 2) outside the tolerance (verdict better or worse), with the
    :func:`discrepancy_reasons` column ``likely reason`` (``frame``: the tidy Table 2 frame, for the curve
    checks; ``seen_scoring``: :func:`seen_scoring_checks`), indexed by ``dataset, model, loss, metric``."""
    off = compared[compared["verdict"].isin(["better", "worse"])].copy()
    reasons = discrepancy_reasons(compared, runs, frame, seen_scoring)
    off["likely reason"] = reasons[off.index]
    return off.set_index(["dataset", "model", "loss", "metric"])[
        ["reported", "reproduced", "reproduced_std", "n_seeds", "rel_diff", "verdict", "likely reason"]]


def table3_against_table2(table2_reported: pd.DataFrame, table3_reported: pd.DataFrame, frame: pd.DataFrame,
                          dataset: str = "Beauty") -> pd.DataFrame:
    """The paper reports SASRec on Beauty twice (Table 2 and Table 3, full ranking); where the two disagree, a
    Table 3 verdict measures the disagreement as much as our run. One row per (system, metric): the Table 2 value,
    the Table 3 value, their relative difference, and our value (mean over seeds of ``frame``, e.g. the table3 runs)."""
    rows = []
    for loss, kind in (("BCE", "original"), ("CCE", "improved")):
        for metric in ("HIT@10", "NDCG@10"):
            t2 = table2_reported[(table2_reported.dataset == dataset) & (table2_reported.model == "SASRec")
                                 & (table2_reported.loss_kind == kind) & (table2_reported.metric == metric)]["value"]
            t3 = table3_reported[(table3_reported.dataset == dataset) & (table3_reported.system == f"SASRec ({loss})")
                                 & (table3_reported.metric == metric)]["value"]
            ours = frame[(frame["data"] == dataset) & (frame["paper_model"] == "SASRec") & (frame["loss"] == loss.lower())
                         & (frame["metric"] == f"full_{metric}")]["value"] if len(frame) else []
            a = float(t2.iloc[0]) if len(t2) else np.nan
            b = float(t3.iloc[0]) if len(t3) else np.nan
            rows.append({"system": f"SASRec ({loss})", "metric": metric, "paper Table 2": a, "paper Table 3": b,
                         "Table 3 vs Table 2": (b - a) / a if a else np.nan,
                         "ours": float(np.mean(ours)) if len(ours) else np.nan})
    return pd.DataFrame(rows).set_index(["system", "metric"])


CLAIM3_METRICS = {"full_HIT@10": "HIT@10", "full_NDCG@10": "NDCG@10",
                  "sampled_HIT@10": "sampled HIT@10, uniform negatives",
                  "sampled_NDCG@10": "sampled NDCG@10, uniform negatives",
                  "pop_sampled_HIT@10": "sampled HIT@10, popularity negatives",
                  "pop_sampled_NDCG@10": "sampled NDCG@10, popularity negatives"}


def table3_claim(frame: pd.DataFrame, dataset: str = "Beauty") -> pd.DataFrame:
    """The paper's claim "SASRec with CCE beats BERT4Rec" on our ``table3`` runs: one row per metric of
    :data:`CLAIM3_METRICS` (full ranking; sampled with our uniform negatives and with BERT4Rec's popularity
    negatives) with both values (means over seeds) and whether it holds; "not run" if either is missing (a run
    stored before the popularity-sampled metrics existed has none)."""
    rows = []
    sel = frame[(frame["data"] == dataset)] if len(frame) else frame
    for metric, name in CLAIM3_METRICS.items():
        cce = sel[(sel["paper_model"] == "SASRec") & (sel["loss"] == "cce") & (sel["metric"] == metric)]["value"] if len(sel) else []
        bert = sel[(sel["paper_model"] == "BERT4Rec") & (sel["metric"] == metric)]["value"] if len(sel) else []
        a = float(np.mean(cce)) if len(cce) else np.nan
        b = float(np.mean(bert)) if len(bert) else np.nan
        verdict = "not run" if np.isnan(a) or np.isnan(b) else ("holds" if a > b else "does not hold")
        rows.append({"metric": name, "SASRec (CCE)": a, "BERT4Rec": b, "verdict": verdict})
    return pd.DataFrame(rows).set_index("metric")


# --------------------------------------------------------------------------- Table 3
TABLE3_METRICS = {"full_HIT@10": "HIT@10", "full_NDCG@10": "NDCG@10",
                  "sampled_HIT@10": "sampled HIT@10", "sampled_NDCG@10": "sampled NDCG@10"}


def table3_side_by_side(frame: pd.DataFrame, reported: pd.DataFrame, dataset: str = "Beauty") -> pd.DataFrame:
    """Rows = systems (ours: "<model> (<loss>) [seqrec]"; the paper's: as reported), columns = the four
    Table 3 metrics, with a ``source`` column. Our runs average over seeds; a metric the paper does not report
    is the text "not reported"."""
    rows = []
    if len(frame):
        sel = frame[(frame.data == dataset) & frame.metric.isin(list(TABLE3_METRICS))].copy()
        sel["system"] = [f"{m} ({PAPER_LOSS.get(l, l)}) [seqrec]" for m, l in zip(sel["paper_model"], sel["loss"])]
        for system, g in sel.groupby("system", sort=False):
            row = {"system": system, "source": "reproduced"}
            row.update({TABLE3_METRICS[m]: v for m, v in g.groupby("metric").value.mean().items()})
            rows.append(row)
    rep = reported[reported.dataset == dataset]
    for system, g in rep.groupby("system", sort=False):
        row = {"system": system, "source": "reported", **{m: NOT_REPORTED for m in TABLE3_METRICS.values()}}
        row.update(dict(zip(g.metric, g.value)))
        rows.append(row)
    return pd.DataFrame(rows, columns=["system", "source", *TABLE3_METRICS.values()]).set_index("system")


SAMPLER_SYSTEMS = {("SASRec", "bce"): "SASRec (BCE)", ("SASRec", "cce"): "SASRec (CCE)",
                   ("BERT4Rec", "mlm"): "BERT4Rec (HuggingFace-based)"}


def sampler_check(frame: pd.DataFrame, reported: pd.DataFrame, dataset: str = "Beauty") -> pd.DataFrame:
    """Which of our two sampled protocols (99 negatives drawn uniformly, ``sampled_*``, or by popularity,
    BERT4Rec's protocol, ``pop_sampled_*``) lands nearer the paper's sampled Table 3 values? One row per (system,
    metric) with the reported value, our two values (means over seeds; NaN for a run stored before the popularity
    metrics existed), each one's relative difference and ``nearer``: "popularity", "uniform" or "not run"."""
    rows = []
    for (model, loss), system in SAMPLER_SYSTEMS.items():
        for metric in ("HIT@10", "NDCG@10"):
            rep = reported[(reported.dataset == dataset) & (reported.system == system) & (reported.metric == f"sampled {metric}")]
            value = float(rep.value.iloc[0]) if len(rep) else np.nan
            ours = {}
            for prefix in ("sampled_", "pop_sampled_"):
                sel = frame[(frame["data"] == dataset) & (frame["paper_model"] == model) & (frame["loss"] == loss)
                            & (frame["metric"] == prefix + metric)]["value"] if len(frame) else []
                ours[prefix] = float(np.mean(sel)) if len(sel) else np.nan
            uni, pop = ours["sampled_"], ours["pop_sampled_"]
            nearer = ("not run" if np.isnan(uni) or np.isnan(pop) or np.isnan(value)
                      else "popularity" if abs(pop - value) < abs(uni - value) else "uniform")
            rows.append({"system": system, "metric": f"sampled {metric}", "reported": value, "uniform (ours)": uni,
                         "uniform vs reported": (uni - value) / value, "popularity (ours)": pop,
                         "popularity vs reported": (pop - value) / value, "nearer": nearer})
    return pd.DataFrame(rows).set_index(["system", "metric"])


# --------------------------------------------------------------------------- ablations and seeds
DESCRIPTORS = ("data", "model", "loss", "num_negatives", "negative_pool", "mask_prob", "max_users", "exclude_seen", "ties",
               "variant", "pretraining", "seed", "epochs", "patience", "batch_size")


def paired(frame: pd.DataFrame, factor: str, metric: str, compact: bool = True) -> pd.DataFrame:
    """Runs that differ only in ``factor`` (a descriptor column), side by side: one row per combination of the
    other descriptors, one column per level of ``factor``. Rows with a single level are dropped; ``compact``
    drops the descriptors that are equal on every remaining row (``data``, ``model``, ``loss`` always stay)."""
    sel = frame[frame.metric == metric].copy()
    others = [c for c in DESCRIPTORS if c != factor and c in sel]
    sel[[*others, factor]] = sel[[*others, factor]].astype(object).where(sel[[*others, factor]].notna(), "–").astype(str)
    wide = sel.groupby([*others, factor], dropna=False).value.mean().unstack(factor)
    wide = wide[wide.notna().sum(axis=1) >= 2]
    if compact and len(wide):  # drop descriptors that are the same on every row (keep data, model, loss)
        constant = [n for n in wide.index.names if n not in ("data", "model", "loss")
                    and wide.index.get_level_values(n).nunique() == 1]
        wide = wide.droplevel(constant) if len(constant) < wide.index.nlevels else wide
    return wide


def negative_pool_overlap(datasets, profile: str) -> pd.DataFrame:
    """Per dataset of the ``negative_pool`` ablation (among ``datasets``): the share of uniform negative draws
    (over the N−1 items other than a training position's target) that land on another item of the same user,
    averaged over the training positions: the only draws in which ``others`` and ``unseen`` differ. A position of
    a user with d distinct items contributes (d − 1) / (N − 1). Column ``share of draws affected``, index ``data``."""
    from . import experiments

    rows, done, wanted = [], set(), set(datasets)
    for cell in experiments.cells("ablations", profile, only={"ablation": "negative_pool"}):
        cfg = cell.config
        if cfg.data in done or cfg.data not in wanted:
            continue
        done.add(cfg.data)
        ds = data_mod.load(cfg.data, max_users=cfg.max_users, seed=cfg.seed)
        positions = (data_mod.split(ds, cfg.max_len).train_targets > 0).sum(1).double()
        distinct = torch.tensor([len(set(s)) for s in ds.sequences], dtype=torch.float64)
        share = float((positions * (distinct - 1)).sum() / positions.sum() / (ds.num_items - 1))
        rows.append({"data": cfg.data, "share of draws affected": share})
    return pd.DataFrame(rows, columns=["data", "share of draws affected"]).set_index("data")


def seed_summary(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, std (ddof=1) and number of seeds per (data, model, loss, variant) for ``metric``. A run that appears
    more than once (one configuration shown by two grids: same ``key``) counts once."""
    sel = frame[frame.metric == metric].copy()
    if "key" in sel:
        sel = sel.drop_duplicates(["key", "metric"])
    sel["variant"] = sel["variant"].fillna("").astype(str)
    g = sel.groupby(["data", "model", "loss", "variant"], dropna=False)
    return pd.DataFrame({"mean": g.value.mean(), "std": g.value.std(ddof=1), "seeds": g.seed.nunique()})


def improvement_vs_noise(summary: pd.DataFrame) -> pd.DataFrame:
    """From :func:`seed_summary`: per (data, model) the CCE − original difference, the larger std, and
    ``exceeds 2 std`` = ``abs(difference) > 2 * std`` (NaN std, i.e. one seed: ``exceeds`` is NA)."""
    rows = []
    s = summary.reset_index()
    for (d, m), g in s.groupby(["data", "model"]):
        cce = g[g.loss == "cce"]
        orig = g[g.loss != "cce"]
        if cce.empty or orig.empty:
            continue
        c, o = cce.iloc[0], orig.iloc[0]
        diff = c["mean"] - o["mean"]
        noise = np.nanmax([c["std"], o["std"]]) if not (pd.isna(c["std"]) and pd.isna(o["std"])) else np.nan
        rows.append({"data": d, "model": m, "original loss": o["loss"], "difference": diff, "max std": noise,
                     "min seeds": int(min(c["seeds"], o["seeds"])),
                     "exceeds 2 std": (pd.NA if pd.isna(noise) else bool(abs(diff) > 2 * noise))})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- curves
def time_curves(frame: pd.DataFrame, quantity: str = "valid_NDCG@10", with_model: bool = False) -> pd.DataFrame:
    """Per-epoch ``quantity`` against cumulative training time from the stored curves of the runs in a tidy
    ``frame`` (its ``path`` column). Columns: ``label, seed, epoch, elapsed, value``; the label names the loss
    (and the model and dataset, with ``with_model``)."""
    from . import results

    paths = [p for p in frame["path"].dropna().unique()] if len(frame) else []
    runs = results.load_runs(paths) if paths else []
    rows = []
    for run in runs:
        cfg = run["config"]
        label = loss_label(cfg["loss"], cfg.get("num_negatives"), cfg.get("mask_prob"))
        if with_model:
            label = f"{cfg['model']} {label} on {cfg['data']}"
        for point in run.get("curve", []):
            if quantity in point and "elapsed" in point:
                rows.append({"label": label, "seed": cfg.get("seed"), "epoch": point["epoch"],
                             "elapsed": point["elapsed"], "value": point[quantity]})
    return pd.DataFrame(rows, columns=["label", "seed", "epoch", "elapsed", "value"])


# --------------------------------------------------------------------------- styling
def styled(df: pd.DataFrame, caption: str, fmt: str = "{:.4f}", na: str = "not run"):
    """A pandas Styler: numbers (in any column, object columns included) formatted with ``fmt``, other values as
    text, missing values written as ``na`` (never blank)."""
    def number(v):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            return str(v)
        return fmt.format(v)

    return df.style.format(number, na_rep=na).set_caption(caption)


def table_or_reason(df: pd.DataFrame, caption: str, reason: str, fmt: str = "{:.4f}", formats: dict | None = None,
                    verdicts: tuple = ()):
    """``styled(df)`` when ``df`` has rows, else an HTML note saying the table was not run and why. ``formats``:
    column -> format string for those columns; ``verdicts``: columns coloured by :func:`color_verdict`."""
    from IPython.display import HTML

    if len(df):
        out = styled(df, caption, fmt)
        for column, spec in (formats or {}).items():
            out = out.format(spec, subset=[column], na_rep="–")
        return out.map(color_verdict, subset=list(verdicts)) if verdicts else out
    return HTML(f'<div class="admonition warning"><p class="admonition-title">Not run: {html.escape(caption)}</p>'
                f'<p>{html.escape(reason)}</p></div>')


def color_verdict(value) -> str:
    return {"reproduced": "background-color: #c7e9c0", "better": "background-color: #c6dbef",
            "worse": "background-color: #fcbba1", "not run": "background-color: #eeeeee",
            "holds": "background-color: #c7e9c0", "does not hold": "background-color: #fcbba1"}.get(value, "")


# --------------------------------------------------------------------------- gradient signal
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


def _fit(config: TrainConfig, dataset, epochs: int, on_epoch):
    """A minimal training loop (Adam, the loss registry) calling ``on_epoch(epoch, model, split, opts)`` after
    each epoch (and epoch 0, before training). For analyses that need the model itself."""
    from .trainer import resolve_device, train_epoch

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
    from pathlib import Path

    from . import provenance, results
    from .trainer import resolve_device

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
                                 "device": provenance.device_name(device), "wall_seconds": time.perf_counter() - t0,
                                 "peak_memory_mb": provenance.peak_memory_mb(device), "seed": config.seed}}, path)
    return frame


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


# --------------------------------------------------------------------------- seen-item scoring, on stored models
SEEN_SCORING_METRICS = ("full_HIT@10", "full_NDCG@10")


def seen_scoring(record: dict, model_path, cache_dir=None) -> pd.DataFrame:
    """The stored best model of one run (``model_path``, written by the runner under ``.models/``) tested again
    with seen items removed (``-inf``, ours) and scored 0 (``zero``, the authors' code), on the run's own test
    split. Evaluation only: the same weights, so the difference is the protocol detail alone (early stopping would
    have used the same rule; that part is not redone). Columns ``exclude, metric, value``: the
    :data:`SEEN_SCORING_METRICS` under each rule and, under ``zero``, ``moved_share`` (share of test users whose
    target rank changes) and ``first_moved_position`` (the best 1-based position, with removal, of a target that
    scoring 0 pushes down; NaN when none moves). Cached in ``cache_dir`` (see :func:`cached`, ``_e0``: no
    training)."""
    from .trainer import load_model

    config = TrainConfig.from_dict({**record["config"], "device": "cpu"})  # evaluation only: on the CPU anywhere

    def compute() -> pd.DataFrame:
        model, _ = load_model(model_path)
        dataset = data_mod.load(config.data, max_users=config.max_users, seed=config.seed)
        split = data_mod.split(dataset, config.max_len)
        ranks = {exclude: [] for exclude in metrics.EXCLUDE}
        with torch.no_grad():
            for start in range(0, split.test_inputs.shape[0], config.eval_batch_size):
                rows = slice(start, start + config.eval_batch_size)
                scores = model.score_all(split.test_inputs[rows]).float()
                for exclude in metrics.EXCLUDE:
                    ranks[exclude].append(metrics.full_ranks(scores, split.test_targets[rows], split.test_seen[rows],
                                                             exclude=exclude, ties=config.ties))
        ranks = {k: torch.cat(v) for k, v in ranks.items()}
        out = []
        for exclude, r in ranks.items():
            got = metrics.metrics_from_ranks(r, prefix="full_")
            out += [{"exclude": exclude, "metric": m, "value": got[m]} for m in SEEN_SCORING_METRICS]
        moved = ranks["zero"] != ranks["-inf"]
        first = float(ranks["-inf"][moved].min()) + 1 if moved.any() else math.nan
        out += [{"exclude": "zero", "metric": "moved_share", "value": float(moved.double().mean())},
                {"exclude": "zero", "metric": "first_moved_position", "value": first}]
        return pd.DataFrame(out)
    return cached("seen_scoring", config, 0, compute, cache_dir)


def seen_scoring_checks(profile: str, results_dir: str = "results", compute: bool = False) -> pd.DataFrame:
    """:func:`seen_scoring` for the stored runs of ``profile`` trained under the Table 2 protocol (a Table 2 cell or
    its ``seeds`` ablation: seen items removed, no other setting changed) whose result is cached in
    ``<results_dir>/<profile>/analysis/`` or, with ``compute``, whose best model is still under ``.models/`` (it
    is not committed; the cached result is). One row per run × exclusion × metric, with the run's ``data,
    paper_model, paper_loss, loss_kind, seed, key``; empty when none. Runs of the other ablations (another
    negative pool, patience, number of negatives) are left out: the check measures the rule on the cell's own runs."""
    columns = ["data", "paper_model", "paper_loss", "loss_kind", "seed", "key", "exclude", "metric", "value"]
    cache = Path(results_dir) / profile / "analysis"
    frames, seen = [], set()
    for grid, run in _stored_runs(profile, results_dir):
        config = TrainConfig.from_dict(run["config"])
        protocol = run.get("labels", {}).get("ablation", "") in ("", "seeds")
        if not protocol or config.exclude_seen != "-inf" or run["key"] in seen:
            continue
        model_path = Path(results_dir) / profile / ".models" / grid / Path(run["path"]).with_suffix(".pt").name
        if not (cache_path("seen_scoring", config, 0, cache).exists() or (compute and model_path.exists())):
            continue
        f = seen_scoring(run, model_path, cache)  # read from the cache when it is there
        seen.add(run["key"])
        labels = run.get("labels", {})
        frames.append(f.assign(data=config.data, paper_model=labels.get("paper_model", config.model),
                               paper_loss=labels.get("paper_loss", PAPER_LOSS.get(config.loss, config.loss)),
                               loss_kind=labels.get("loss_kind", ""), seed=config.seed, key=run["key"]))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _seen_scoring_check(r, checks: pd.DataFrame) -> tuple[str, str] | None:
    """Cell ``r`` against its stored models tested both ways. The rule's *effect* is the mean over those models with
    seen items scored 0 (the authors' code) minus the mean with them removed (ours): the same weights, so nothing
    else differs. ``("found", why)`` when the cell's value shifted by that effect lands within the tolerance of the
    reported value, ``("ruled out", why)`` otherwise (an effect of zero never explains a gap, whatever the models'
    own mean); None without such models."""
    if checks is None or not len(checks):
        return None
    sel = checks[(checks["data"] == r["dataset"]) & (checks["paper_model"] == r["model"])
                 & (checks["loss_kind"] == r["loss_kind"]) & (checks["metric"] == f"full_{r['metric']}")]
    if sel.empty:
        return None
    by = sel.groupby("exclude")["value"].mean()
    if "zero" not in by or "-inf" not in by:
        return None
    n = sel["key"].nunique()
    models_ = f"{n} stored model{'s' if n > 1 else ''} (seeds {', '.join(map(str, sorted(sel['seed'].unique())))})"
    effect = by["zero"] - by["-inf"]
    shifted = r["reproduced"] + effect
    measured = f"{effect:+.4f} on {models_}: {by['-inf']:.4f} removed, {by['zero']:.4f} scored 0"
    if effect != 0 and _within_tolerance(shifted, r):
        return "found", (f"seen-item scoring: scoring seen items 0 as the authors' code does, instead of removing "
                         f"them, changes the value by {measured}; the cell's {r['reproduced']:.4f} so shifted is "
                         f"{shifted:.4f} (reported {r['reported']:.4f})")
    moved = checks[checks["key"].isin(sel["key"])]
    share = moved.loc[moved["metric"] == "moved_share", "value"].mean()
    first = moved.loc[moved["metric"] == "first_moved_position", "value"].min()
    how = ""
    if not pd.isna(share):
        how = (f"; it moves the target of {share:.0%} of the users, all from position {first:.0f} or below"
               if not pd.isna(first) else "; it moves no user's target")
    return "ruled out", f"the authors' seen-item scoring (scoring seen items 0 changes the value by {measured}{how})"


# --------------------------------------------------------------------------- accuracy by sequence length
def length_bins(lengths, edges=(0, 5, 10, 20, 50, math.inf)) -> pd.Categorical:
    """Bin sequence lengths into right-closed intervals labelled like ``"6–10"`` and ``">50"``."""
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        labels.append(f">{lo}" if math.isinf(hi) else f"{lo + 1}–{hi}")
    return pd.cut(pd.Series(lengths), bins=list(edges), labels=labels, right=True)


def metric_by_length(ranks, lengths, k: int = 10, edges=(0, 5, 10, 20, 50, math.inf)) -> pd.DataFrame:
    """HIT@k and NDCG@k of users grouped by sequence length. ``ranks``: (U,) 1-based test ranks;
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
