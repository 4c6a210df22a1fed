"""Table 2 verdicts: the paper's layout, verdict counts, reasons for cells not run, the CCE-beats-original
claims and the SR-GNN variants."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .labels import VERDICTS
from .nearness import _cell_rows


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
             "large datasets takes hours (up to 200 epochs of 15 s to 2.5 min each, the range of the stored runs' median "
             "epochs; every Figure 1 cell stored ran all 200; S3-Rec pretrains 100-150 epochs first) and no GPU was lent yet; "
             "`seqrec run table2 --profile paper` (or figure1, table3, ablations) trains it, resuming an interrupted cell at its last epoch",
}


def not_run_reasons(compared: pd.DataFrame, planned: pd.DataFrame, profile: str, train: str) -> pd.Series:
    """Why each "not run" row of ``compared`` is empty, never blank: the cell is not in ``profile``'s grid
    (``planned`` = the grid's cells' labels: ``data``/``dataset``, ``paper_model``, ``loss_kind``) or it is
    planned but absent from the store (training was ``train``), or its dataset is not one of the five this project
    has (Table 3's ML-1M, ML-20M, Steam and BERT4Rec's Beauty). Rows that did run get "". Where ``planned`` has a
    ``progress`` column (:func:`planned_cells` with ``results_dir``), how far the cell's training has got is added
    (matched on ``negatives`` too where both frames have it)."""
    key, progress = set(), {}
    by_negatives = "negatives" in compared and "negatives" in planned
    if len(planned):
        dcol = "dataset" if "dataset" in planned else "data"
        key = set(zip(planned[dcol], planned["paper_model"], planned["loss_kind"]))
        if "progress" in planned:
            for _, p in planned[planned["progress"] != ""].iterrows():
                cell = (p[dcol], p["paper_model"], p["loss_kind"], str(p["negatives"]) if by_negatives else "")
                progress.setdefault(cell, []).append(p["progress"])
    from ..experiments import DATASETS

    reasons = []
    for _, r in compared.iterrows():
        if r["verdict"] != "not run":
            reasons.append("")
        elif r["dataset"] not in DATASETS:
            reasons.append(f"the paper's {r['dataset']} data is not one of the five datasets this project has "
                           f"(the S3-Rec versions of {', '.join(DATASETS)})")
        elif (r["dataset"], r["model"], r["loss_kind"]) in key:
            why = PENDING.get(profile, f"book built with train={train}")
            negatives = str(r["negatives"]) if by_negatives else ""
            done = progress.get((r["dataset"], r["model"], r["loss_kind"], negatives), [])
            so_far = f"; so far {', '.join(dict.fromkeys(done))}, resumed there by the next run" if done else ""
            reasons.append(f"in the {profile} grid, not in the results store yet: {why}{so_far}")
        else:
            reasons.append(f"not part of the {profile} profile's grid")
    return pd.Series(reasons, index=compared.index, name="reason")


def not_run_by_display(displays: dict[str, tuple[pd.DataFrame, pd.DataFrame]], profile: str, train: str) -> pd.DataFrame:
    """How many reported cells are not run, and why, per display: ``displays`` maps a display's name (e.g.
    "Table 2") to its compared cells (``verdict`` column; Figure 1's as :func:`figure1_cells` counts them) and its
    planned cells (:func:`planned_cells`). Index (display, reason), column ``cells``; empty when every cell was run."""
    rows = []
    for name, (compared, planned) in displays.items():
        reasons = not_run_reasons(compared, planned, profile, train)
        for reason, n in reasons[compared["verdict"] == "not run"].value_counts(sort=False).items():
            rows.append({"display": name, "reason": reason, "cells": int(n)})
    return pd.DataFrame(rows, columns=["display", "reason", "cells"]).set_index(["display", "reason"])


def not_yet_stored(planned: pd.DataFrame) -> str:
    """The cells of ``planned`` (:func:`planned_cells` with ``results_dir``, any subset) that the store lacks, as
    Markdown: a "Not run yet:" line, then one list item per dataset, model, loss and variant with its seeds and how
    far each has got, e.g. ``- Yelp S3Rec BCE: seed 43, pretraining 12 of 100 epochs done (parked checkpoint); seed
    44, not started``, or ``- Yelp S3Rec CCE: seeds 43, 44`` where none of them has begun; "" when every cell is
    stored."""
    if not len(planned) or "stored" not in planned:
        return ""
    missing = planned[~planned["stored"].astype(bool)]
    items = []
    for (data, model, loss, variant), g in missing.groupby(
            ["data", "paper_model", "paper_loss", missing["variant"].fillna("")], sort=False):
        seeds = [(int(seed), p) for seed, p in sorted(set(zip(g["seed"], g["progress"].fillna(""))))]
        if any(p for _, p in seeds):
            what = "; ".join(f"seed {seed}, {p or 'not started'}" for seed, p in seeds)
        else:
            what = f"seed{'s' * (len(seeds) > 1)} {', '.join(str(seed) for seed, _ in seeds)}"
        items.append(f"- {data} {model} {loss}{f', {variant}' if variant else ''}: {what}")
    return "\n".join(["Not run yet:", *items]) if items else ""


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


def _noise_words(change: float, std_a: float, std_b: float) -> str:
    """Words to append to a check whose change (``change``, the changed runs' mean minus the cell's) has seed stds on
    both sides: "; its change, +0.0111, is beyond seed noise (2 × the larger std, 0.0039)" (or "but its …
    within"); "" when either side has one seed (:func:`_beyond_seed_noise`)."""
    noise = _beyond_seed_noise(change, std_a, std_b)
    if noise not in ("yes", "no"):
        return ""
    return (f"; {'its' if noise == 'yes' else 'but its'} change, {change:+.4f}, is "
            f"{'beyond' if noise == 'yes' else 'within'} seed noise (2 × the larger std, "
            f"{2 * np.nanmax([std_a, std_b]):.4f})")


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


_NOISE_WORDS = {"yes": "beyond seed noise", "no": "within seed noise", "one seed": "one seed, untested against seed noise"}


def claims_in_words(claims_table: pd.DataFrame) -> str:
    """One plain sentence per verdict from :func:`claims`: which (dataset, model) pairs hold or do not, with the
    metrics and whether the difference exceeds the seed noise (or, with one seed on a side, that this is untested),
    once for the pair when its metrics agree, else metric by metric. Empty when nothing ran."""
    ran = claims_table[claims_table["verdict"] != "not run"]
    lines = []
    for verdict in ("holds", "does not hold"):
        part = ran[ran["verdict"] == verdict]
        if part.empty:
            continue
        items = []
        for (d, m), g in part.groupby(["dataset", "model"], sort=False):
            noise = list(g["beyond seed noise"])
            if len(set(noise)) == 1:
                items.append(f"{m} on {d} ({', '.join(g['metric'])}, {_NOISE_WORDS[noise[0]]})")
            else:  # the metrics differ: each its own
                items.append(f"{m} on {d} ({', '.join(f'{x} {_NOISE_WORDS[n]}' for x, n in zip(g['metric'], noise))})")
        lead = "CCE beats the original loss for" if verdict == "holds" else "CCE does not beat the original loss for"
        lines.append(f"{lead} {'; '.join(items)}.")
    return " ".join(lines)


NOISE_COLUMNS = {"yes": "beyond seed noise", "no": "within seed noise", "one seed": "one seed on a side"}


def claim_counts(claims_table: pd.DataFrame) -> pd.DataFrame:
    """Number of (dataset, model, metric) pairs per claim verdict, in :data:`CLAIM_VERDICTS` order (``pairs``),
    and how many of them are beyond seed noise, within it, or have one seed on a side (the ``beyond seed noise``
    column of :func:`claims`; see :data:`NOISE_COLUMNS`)."""
    order = list(CLAIM_VERDICTS)
    out = claims_table["verdict"].value_counts().reindex(order, fill_value=0).rename("pairs").to_frame()
    for code, column in NOISE_COLUMNS.items():
        sel = claims_table[claims_table["beyond seed noise"] == code]
        out[column] = sel["verdict"].value_counts().reindex(order, fill_value=0)
    return out


def claims_headline(claims_table: pd.DataFrame) -> str:
    """The scoreboard's one-line answer from :func:`claims`: in how many of the pairs run CCE beats the original
    loss, how many of those are beyond seed noise, how many pairs Table 2 has and in how many the paper reports CCE
    better."""
    counts = claim_counts(claims_table)
    run = int(counts["pairs"].sum() - counts.loc["not run", "pairs"])
    held = counts.loc["holds"]
    return (f"**CCE beats the original loss in {int(held['pairs'])} of the {run} (dataset, model, metric) pairs run**, "
            f"{int(held['beyond seed noise'])} of them beyond seed noise ({int(held['within seed noise'])} within it, "
            f"{int(held['one seed on a side'])} with one seed on a side, untested); {int(counts['pairs'].sum())} pairs "
            f"in Table 2, the paper reports CCE better in {int(claims_table['paper: CCE better'].sum())}.")


def srgnn_variants(compared: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """SR-GNN's CCE in both variants beside its CE, per (dataset, metric) with at least one SR-GNN run: the
    reported CE and CCE, ours with CE (as compared), ours with CCE in the ``authors`` variant (the one Table 2's
    verdicts read) and the ``causal`` one (means over the seeds in ``frame``, the tidy Table 2 frame), each
    variant's gain over our CE, and ``seeds (CE / authors / causal)`` (seed counts: the means may be over
    different seeds). ``compared``: :func:`seqrec.paper.compare` of Table 2."""
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
        n_seeds = by_kind["n_seeds"] if "n_seeds" in by_kind else pd.Series(dtype=float)
        counts = [n_seeds.get("original", 0), n_seeds.get("improved", 0),
                  causal["seed"].nunique() if len(causal) and "seed" in causal else len(causal)]
        row["seeds (CE / authors / causal)"] = " / ".join(str(int(0 if pd.isna(n) else n)) for n in counts)
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
