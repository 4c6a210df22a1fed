"""Ablations, seeds and curves: paired differences between configurations, negative-pool overlap, seed
statistics against the improvement, and metric-over-time curves."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import data as data_mod
from .labels import loss_label

DESCRIPTORS = ("data", "model", "loss", "num_negatives", "negative_pool", "mask_prob", "max_users", "exclude_seen", "ties",
               "variant", "pretraining", "seed", "epochs", "patience", "batch_size", "weight_decay", "lr_step", "lr_gamma",
               "dropout", "lr")


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
    from .. import experiments

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
    ``exceeds 2 std`` = ``abs(difference) > 2 * std``. As for Table 2's claims, the test needs a std on both sides:
    when either loss has one seed, ``max std`` is NaN and ``exceeds`` NA."""
    rows = []
    s = summary.reset_index()
    for (d, m), g in s.groupby(["data", "model"]):
        cce = g[g.loss == "cce"]
        orig = g[g.loss != "cce"]
        if cce.empty or orig.empty:
            continue
        c, o = cce.iloc[0], orig.iloc[0]
        diff = c["mean"] - o["mean"]
        noise = np.nan if pd.isna(c["std"]) or pd.isna(o["std"]) else max(c["std"], o["std"])
        rows.append({"data": d, "model": m, "original loss": o["loss"], "difference": diff, "max std": noise,
                     "min seeds": int(min(c["seeds"], o["seeds"])),
                     "exceeds 2 std": (pd.NA if pd.isna(noise) else bool(abs(diff) > 2 * noise))})
    return pd.DataFrame(rows)


def time_curves(frame: pd.DataFrame, quantity: str = "valid_NDCG@10", with_model: bool = False) -> pd.DataFrame:
    """Per-epoch ``quantity`` against cumulative training time from the stored curves of the runs in a tidy
    ``frame`` (its ``path`` column). Columns: ``label, seed, epoch, elapsed, paced, value``: ``elapsed`` as
    measured, ``paced`` = epoch × the run's median epoch (:func:`seqrec.results.median_epoch_seconds`), the time
    axis without the epochs that ran beside other work on a shared machine; the label names the loss (and the
    model and dataset, with ``with_model``)."""
    from .. import results

    paths = [p for p in frame["path"].dropna().unique()] if len(frame) else []
    runs = results.load_runs(paths) if paths else []
    rows = []
    for run in runs:
        cfg = run["config"]
        label = loss_label(cfg["loss"], cfg.get("num_negatives"), cfg.get("mask_prob"))
        if with_model:
            label = f"{cfg['model']} {label} on {cfg['data']}"
        pace = results.median_epoch_seconds(run)
        for point in run.get("curve", []):
            if quantity in point and "elapsed" in point:
                rows.append({"label": label, "seed": cfg.get("seed"), "epoch": point["epoch"],
                             "elapsed": point["elapsed"], "paced": point["epoch"] * pace, "value": point[quantity]})
    return pd.DataFrame(rows, columns=["label", "seed", "epoch", "elapsed", "paced", "value"])


def reach_levels(curves: pd.DataFrame, focus: str = "CCE", baseline: str = "BCE-1") -> dict[str, float]:
    """The levels for :func:`time_to_reach`, named for the book: the best value of ``baseline`` (SASRec's original
    loss) when it has a curve, and the best of the strongest label other than ``focus``. Empty without a curve of
    ``focus`` and of at least one other label."""
    best = curves.groupby("label")["value"].max() if len(curves) else pd.Series(dtype=float)
    if focus not in best.index or len(best) < 2:
        return {}
    others = best.drop(index=focus)
    levels = {f"the best of {baseline}, SASRec's original loss": others[baseline]} if baseline in others.index else {}
    levels[f"the best of {others.idxmax()}, the strongest other loss"] = others.max()
    return levels


def time_to_reach(curves: pd.DataFrame, level: float) -> pd.DataFrame:
    """How soon each loss's curve reaches ``level``: from :func:`time_curves` (several seeds of a label are
    averaged epoch by epoch first), one row per label with ``best`` (its highest value), ``epoch`` (the first
    whose value is ≥ ``level``), ``paced`` and ``elapsed`` (the seconds of :func:`time_curves` at that epoch) and
    ``epochs_run``. A label that never reaches ``level`` has NaN ``epoch``/``paced``/``elapsed``. Rows sorted by
    ``paced``, the labels that never reach it last. Index: label."""
    columns = ["best", "epoch", "paced", "elapsed", "epochs_run"]
    if curves.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="label"))
    per_epoch = curves.groupby(["label", "epoch"], sort=False)[["value", "paced", "elapsed"]].mean().reset_index()
    rows = {}
    for label, g in per_epoch.groupby("label", sort=False):
        g = g.sort_values("epoch")
        reached = g.loc[g["value"] >= level, ["epoch", "paced", "elapsed"]]
        first = reached.iloc[0] if len(reached) else dict.fromkeys(reached.columns, np.nan)
        rows[label] = {"best": g["value"].max(), **first, "epochs_run": g["epoch"].max()}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("label")
    return out.sort_values(["paced", "epoch"], na_position="last", kind="stable")


def time_to_reach_in_words(reach: pd.DataFrame, level: float, level_name: str, focus: str = "CCE") -> str:
    """Sentences from :func:`time_to_reach`: when ``focus`` reaches ``level`` (named ``level_name``), in epochs
    and seconds, and which other labels get there sooner in time or in epochs, and which never do; then the verdict
    on "``focus`` rises fastest" at this level, in epochs (device-independent) and in seconds (this device only).
    "" when ``focus`` has no curve."""
    if focus not in reach.index:
        return ""
    others = reach.drop(index=focus)
    never = list(others.index[others["epoch"].isna()])
    got = others[others["epoch"].notna()]
    where = f"{level_name} ({level:.4f})"
    me = reach.loc[focus]
    if pd.isna(me["epoch"]):
        head = f"{focus} never reaches {where} in its {me['epochs_run']:.0f} epochs (best {me['best']:.4f})"
    else:
        head = f"{focus} reaches {where} after {me['epoch']:.0f} epochs, {me['paced']:,.0f} s at its median epoch"

    def listed(sel: pd.DataFrame) -> str:
        return ", ".join(f"{label} ({r['epoch']:.0f} epochs, {r['paced']:,.0f} s)" for label, r in sel.iterrows())

    parts = [f"{head}. Of the {len(others)} other losses"]
    if pd.notna(me["epoch"]):
        groups = [("sooner in time", got[got["paced"] < me["paced"]]),
                  ("in fewer epochs", got[got["epoch"] < me["epoch"]]),
                  ("later", got[(got["paced"] >= me["paced"]) & (got["epoch"] >= me["epoch"])])]
    else:
        groups = [("reaching it", got)]
    parts += [f"{name} ({len(sel)}): {listed(sel) if len(sel) else 'none'}" for name, sel in groups]
    if never:
        parts.append(f"never within their epochs ({len(never)}): {', '.join(never)}")
    if pd.isna(me["epoch"]):
        verdict = f"{focus} rises fastest to this level: does not hold, it never gets there."
    else:
        def count(n: int, how: str) -> str:
            return "holds" if n == 0 else f"does not hold ({n} other loss{'es' if n > 1 else ''} {how})"
        verdict = (f"{focus} rises fastest to this level: in epochs, "
                   f"{count(int((got['epoch'] < me['epoch']).sum()), 'in fewer epochs')}; in seconds on this device, "
                   f"{count(int((got['paced'] < me['paced']).sum()), 'sooner')}.")
    return parts[0] + ", " + "; ".join(parts[1:]) + ". " + verdict
