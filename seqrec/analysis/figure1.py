"""Figure 1: points for the plot, the side-by-side table, per-cell verdicts and the figure's claim."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..paper import _stats
from .labels import NOT_REPORTED, VERDICTS, _reported_label, loss_label, loss_labels
from .verdicts import _mean_std, verdict_counts


FIGURE1_POINT_COLUMNS = ["label", "source", "hit", "train_seconds", "paced_seconds", "memory_mb", "n_runs"]


def figure1_points(frame: pd.DataFrame, reported: pd.DataFrame, metric: str = "full_HIT@10") -> pd.DataFrame:
    """One row per loss configuration and source ("reproduced" / "reported") with columns :data:`FIGURE1_POINT_COLUMNS`.
    Reproduced points average over seeds. ``train_seconds`` is the measured total; ``paced_seconds`` the epochs
    run × the median training seconds of an epoch (``median_epoch_seconds``), the total the run would have taken
    at its typical pace: on a shared CPU a few epochs that ran beside other work can multiply the total (the
    x axis of the plot uses it). The paper's points have only their reported total (``paced_seconds`` NaN)."""
    rows = []
    if len(frame):
        sel = frame[frame.metric == metric].copy()
        sel["label"] = loss_labels(sel)
        paced = (sel["epochs_run"] * sel["median_epoch_seconds"] if {"epochs_run", "median_epoch_seconds"} <= set(sel)
                 else np.nan)  # a frame without curves: the measured total
        sel["paced_seconds"] = pd.Series(paced, index=sel.index, dtype=float).fillna(sel["train_seconds"])
        for label, g in sel.groupby("label", sort=False):
            rows.append({"label": label, "source": "reproduced", "hit": g.value.mean(),
                         "train_seconds": g.train_seconds.mean(), "paced_seconds": g.paced_seconds.mean(),
                         "memory_mb": g.peak_memory_mb.mean(), "n_runs": len(g)})
    for _, r in reported.iterrows():
        rows.append({"label": _reported_label(r), "source": "reported", "hit": r.get(metric, np.nan),
                     "train_seconds": r["train_seconds"], "paced_seconds": np.nan,
                     "memory_mb": r["peak_gpu_mem_mb"], "n_runs": np.nan})
    return pd.DataFrame(rows, columns=FIGURE1_POINT_COLUMNS)


GPU_TIMING_COLUMNS = ["label", "seed", "device", "GPU epochs", "GPU train s", "s per epoch", "epochs run",
                      "at that pace (s)", "peak memory (MB)", "paper total (s)", "paper peak memory (MB)"]


def is_cpu_device(name) -> bool:
    """A stored device name is a CPU's when it ends with its thread count (``"AMD EPYC (1 thread)"``), as
    :func:`seqrec.provenance.device_name` writes every CPU; a GPU's is its product name (``"NVIDIA H200"``)."""
    return bool(re.search(r"\(\d+ threads?\)$", str(name)))


def gpu_timings(frame: pd.DataFrame, reported: pd.DataFrame) -> pd.DataFrame:
    """The Figure 1 configurations trained (in part) on a GPU, beside the paper's GPU times: one row per run of
    ``frame`` (its ``path`` column) with a GPU session. ``GPU epochs`` and ``GPU train s`` are those sessions' (a run
    begun on CPU counts only its GPU epochs, read off the curve's cumulative ``elapsed``), ``s per epoch`` their
    ratio, ``at that pace (s)`` the whole run's epochs at it, ``peak memory (MB)`` the record's (the last session's
    device: a GPU here). The paper's total and peak memory are its training log's for the same loss label."""
    from .. import results

    paths = [p for p in frame["path"].dropna().unique()] if len(frame) and "path" in frame else []
    paper = {_reported_label(r): r for _, r in reported.iterrows()}
    rows = []
    for run in results.load_runs(paths) if paths else []:
        prov, cfg = run.get("provenance", {}), run["config"]
        sessions = results.session_seconds(prov.get("sessions") or [], run.get("curve") or [],
                                           int(run.get("epochs_run") or 0))
        gpu = [x for x in sessions if "seconds" in x and not is_cpu_device(x.get("device"))]
        if not gpu:
            continue
        epochs, seconds = sum(x["epochs"] for x in gpu), sum(x["seconds"] for x in gpu)
        label = loss_label(cfg["loss"], cfg.get("num_negatives"), cfg.get("mask_prob"))
        ref = paper.get(label)
        rows.append({"label": label, "seed": cfg.get("seed"), "device": gpu[-1]["device"], "GPU epochs": epochs,
                     "GPU train s": seconds, "s per epoch": seconds / max(epochs, 1),
                     "epochs run": run.get("epochs_run"),
                     "at that pace (s)": seconds / max(epochs, 1) * (run.get("epochs_run") or 0),
                     "peak memory (MB)": prov.get("peak_memory_mb"),
                     "paper total (s)": np.nan if ref is None else ref["train_seconds"],
                     "paper peak memory (MB)": np.nan if ref is None else ref["peak_gpu_mem_mb"]})
    return pd.DataFrame(rows, columns=GPU_TIMING_COLUMNS)


def gpu_timings_in_words(timings: pd.DataFrame) -> str:
    """One sentence per loss label of :func:`gpu_timings` (means over its runs), and CCE's cost per epoch relative to
    each other label's beside the same ratio of the paper's totals."""
    if timings.empty:
        return "No Figure 1 configuration has been trained on a GPU yet: every time in this chapter is a CPU's."
    means = timings.groupby("label", sort=False)[["s per epoch", "at that pace (s)", "paper total (s)"]].mean()
    runs = timings.groupby("label", sort=False).size()
    devices = ", ".join(sorted(timings["device"].unique()))
    parts = [f"{label}: {m['s per epoch']:.2f} s per epoch ({runs[label]} run{'s' if runs[label] > 1 else ''}), "
             f"{m['at that pace (s)']:,.0f} s for its epochs at that pace"
             + ("" if pd.isna(m["paper total (s)"]) else f" (the paper's run: {m['paper total (s)']:,.1f} s)")
             for label, m in means.iterrows()]
    text = f"On a GPU ({devices}): " + "; ".join(parts) + "."
    if "CCE" in means.index:
        for label, m in means.drop(index="CCE").iterrows():
            ours = means.loc["CCE", "s per epoch"] / m["s per epoch"]
            theirs = means.loc["CCE", "paper total (s)"] / m["paper total (s)"]
            text += (f" A CCE epoch costs {ours:.1f}× a {label} epoch here"
                     + ("" if pd.isna(theirs) else f"; the paper's CCE run took {theirs:.1f}× its {label} run") + ".")
    return text


def side_by_side(points: pd.DataFrame, value: str = "hit") -> pd.DataFrame:
    """Pivot :func:`figure1_points` to one row per loss label, one column per source. A missing reproduced value
    stays NaN (shown as "not run"); a missing reported one is the text "not reported"."""
    wide = points.pivot_table(index="label", columns="source", values=value, aggfunc="first", sort=False)
    wide = wide.reindex(index=points["label"].unique(), columns=["reproduced", "reported"])  # all-NaN rows kept
    wide["reported"] = wide["reported"].astype(object).where(wide["reported"].notna(), NOT_REPORTED)
    return wide


FIGURE1_METRICS = {"full_HIT@10": "HIT@10", "full_NDCG@10": "NDCG@10"}
FIGURE1_CELL_METRIC = "full_HIT@10"  # a Figure 1 point's verdict: its y axis, test HIT@10 with full ranking


def _figure1_labelled(compared: pd.DataFrame, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """``compared`` with a ``label`` column; with ``frame`` (the tidy Figure 1 runs), plus a row for every metric
    of :data:`FIGURE1_METRICS` that the paper does not report for a configuration (the MLM points' NDCG@10): our
    mean, std and seeds there, ``reported`` NaN and the verdict "not reported"."""
    out = compared.copy()
    out["label"] = [_reported_label(r) for _, r in out.iterrows()]
    if frame is None or not len(frame) or out.empty:
        return out
    runs = frame[frame["metric"].isin(list(FIGURE1_METRICS))].copy()
    runs["label"] = [_reported_label({"loss": loss, "negatives": negatives})
                     for loss, negatives in zip(runs["paper_loss"], runs["negatives"])]
    extra = []
    for label, g in out.groupby("label", sort=False):
        for metric in FIGURE1_METRICS:
            if (g["metric"] == metric).any():
                continue
            mean, std, n = _stats(runs[(runs["label"] == label) & (runs["metric"] == metric)].drop_duplicates("seed"))
            extra.append({**g.iloc[0].to_dict(), "metric": metric, "reported": np.nan, "reproduced": mean,
                          "reproduced_std": std, "n_seeds": n, "rel_diff": np.nan, "verdict": NOT_REPORTED})
    start = int(out.index.max()) + 1 if len(out) else 0
    return pd.concat([out, pd.DataFrame(extra, index=range(start, start + len(extra)))]) if extra else out


def figure1_cells(compared: pd.DataFrame) -> pd.DataFrame:
    """Figure 1's points as cells: the rows of ``seqrec.paper.compare(..., "figure1")`` on
    :data:`FIGURE1_CELL_METRIC`, one per loss configuration, with a ``label`` column ("BCE-10", "CCE")."""
    return _figure1_labelled(compared[compared["metric"] == FIGURE1_CELL_METRIC])


def figure1_verdicts(compared: pd.DataFrame, reasons: pd.Series | None = None,
                     frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per Figure 1 loss configuration (index: the paper's label), from ``seqrec.paper.compare(...,
    "figure1")``: for each metric of :data:`FIGURE1_METRICS` the reported value, ours (mean ± std over seeds, or
    "not run"), the relative difference and the verdict. A metric the paper does not report (the MLM points' NDCG,
    read off a figure that shows only HIT@10) has reported value and verdict "not reported", and ours from
    ``frame`` (the tidy Figure 1 runs; without it, "not reported" too). ``reasons`` (aligned with ``compared``'s
    index, e.g. :func:`not_run_reasons`) fills a ``why not run`` column."""
    labelled = _figure1_labelled(compared, frame)
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
            row.update({f"{name} reported": NOT_REPORTED if pd.isna(c["reported"]) else c["reported"],
                        f"{name} ours": _mean_std(c), f"{name} vs paper": c["rel_diff"],
                        f"{name} verdict": c["verdict"]})
        if reasons is not None:  # a configuration's reason is its cell's, the HIT@10 row
            cell = g.index[g["metric"] == FIGURE1_CELL_METRIC]
            row["why not run"] = reasons.get(cell[0], "") if len(cell) else ""
        rows.append(row)
    return pd.DataFrame(rows).set_index("label")


NEAR_POPULARITY = 1.5  # a point within this factor of the popularity ranking, on every metric, learned little more


def _popularity_finding(who: str, values: pd.Series, popularity: dict) -> str:
    """A sentence when ``values`` (metric -> value) is at most :data:`NEAR_POPULARITY` times the popularity
    ranking's value on every metric of :data:`FIGURE1_METRICS`, else ""."""
    pairs = [(name, values.get(metric, np.nan), popularity.get(metric, np.nan)) for metric, name in FIGURE1_METRICS.items()]
    if any(pd.isna(v) or pd.isna(p) or p <= 0 or v > NEAR_POPULARITY * p for _, v, p in pairs):
        return ""
    against = ", ".join(f"{name} {v:.4f} against {p:.4f}" for name, v, p in pairs)
    return (f"{who} is within {NEAR_POPULARITY:g}× of ranking every user's items by popularity with no model, on "
            f"the same split ({against}): that run learned little beyond item popularity")


def figure1_popularity(profile: str) -> dict[str, float]:
    """Test metrics of ranking by item popularity with no model (:func:`seqrec.baselines.popularity_metrics`) on the
    data of ``profile``'s Figure 1 grid: its first cell's dataset, user subset, seed, ``max_len``, seen-item
    exclusion and tie rule, the split and negatives its runs were tested on."""
    from .. import baselines, data, experiments

    config = experiments.cells("figure1", profile)[0].config
    loaded = data.load(config.data, max_users=config.max_users, seed=config.seed)
    return baselines.popularity_metrics(loaded, seed=config.seed, max_len=config.max_len, exclude=config.exclude_seen,
                                        ties=config.ties)


def _late_trends(frame: pd.DataFrame, metric: str = FIGURE1_CELL_METRIC) -> pd.DataFrame:
    """One row per stored run in ``frame`` (tidy Figure 1 runs with ``path``): its ``label``, ``seed``, epoch budget
    and stopping rule (``epochs``, ``epochs_run``, ``patience``, ``monitor``) and the :func:`late_trend` of its
    validation curve for ``metric`` (``trend``, ``from_epoch``, ``last_epoch``); runs without a usable curve are
    left out."""
    from .. import results
    from .reasons import late_trend

    columns = ["label", "seed", "epochs", "epochs_run", "patience", "monitor", "trend", "from_epoch", "last_epoch"]
    if frame is None or "path" not in frame or frame.empty:
        return pd.DataFrame(columns=columns)
    monitor = metric.replace("full_", "valid_")
    rows = []
    for run in results.load_runs(list(frame["path"].dropna().unique())):
        trend = late_trend(run.get("curve") or [], monitor)
        if trend is None:
            continue
        config = run["config"]
        rows.append({"label": loss_label(config["loss"], config.get("num_negatives"), config.get("mask_prob")),
                     "seed": config.get("seed"), "epochs": config.get("epochs"),
                     "epochs_run": run.get("epochs_run", trend["last_epoch"]), "patience": config.get("patience"),
                     "monitor": config.get("monitor"), **trend})
    return pd.DataFrame(rows, columns=columns)


def _monitor_words(monitor) -> str:
    return "training loss" if monitor == "train_loss" else str(monitor).replace("valid_", "validation ")


def _still_rising(label: str, cells: pd.DataFrame, trends: pd.DataFrame) -> str:
    """For a point below the paper's, words when every stored run of ``label`` was still rising on validation
    HIT@10 when training ended (:func:`late_trend` at least :data:`STILL_RISING`), with what ended it, how the other
    Figure 1 runs ended, and how many more epochs at that pace would reach the reported value; else ""."""
    from .reasons import STILL_RISING

    mine = trends[trends["label"] == label]
    if mine.empty or (mine["trend"] < STILL_RISING).any():
        return ""
    name = FIGURE1_METRICS[FIGURE1_CELL_METRIC]
    first = mine.iloc[0]
    who = "our run" if len(mine) == 1 else f"our {len(mine)} runs (seeds {', '.join(str(s) for s in mine['seed'])})"
    budget = (mine["epochs_run"] >= mine["epochs"]).all()
    ended = (f"trained {'its' if len(mine) == 1 else 'their'} whole {int(first['epochs'])}-epoch budget (the stopping "
             f"rule, patience {int(first['patience'])} on the {_monitor_words(first['monitor'])}, never fired)"
             if budget else f"stopped at epoch {', '.join(str(int(e)) for e in mine['epochs_run'])}")
    trend = mine["trend"]
    pace = f"{trend.iloc[0]:+.1%}" if len(mine) == 1 else f"{trend.min():+.1%} to {trend.max():+.1%}"
    their = "its" if len(mine) == 1 else "their"
    text = (f"{who} {ended}, and {their} validation {name} was still rising over epochs "
            f"{int(first['from_epoch'])}-{int(first['last_epoch'])} (a least-squares line through them gains {pace} "
            f"of its level per 100 epochs")
    others = trends[trends["label"] != label]
    if len(others):
        rising = others[others["trend"] >= STILL_RISING]
        rest = others[others["trend"] < STILL_RISING]
        runs = "other run" if len(others) == 1 else f"other {len(others)} runs"
        at_most = "" if len(rest) == 1 else "at most "
        if rising.empty:
            text += f"; Figure 1's {runs}: {at_most}{rest['trend'].max():+.1%}"
        else:
            listed = ", ".join(f"{r.label} {r.trend:+.1%}" for r in rising.itertuples())
            text += (f"; of Figure 1's {runs}, {len(rising)} rose as fast: {listed}"
                     + (f", the rest {at_most}{rest['trend'].max():+.1%}" if len(rest) else ""))
    text += ")"
    ours, reported = cells.loc[FIGURE1_CELL_METRIC, "reproduced"], cells.loc[FIGURE1_CELL_METRIC, "reported"]
    if not pd.isna(ours) and ours > 0 and not pd.isna(reported) and reported > ours:
        more = (reported / ours - 1) / trend.mean() * 100
        text += (f"; at that pace, with the test {name} rising in step, it would reach the reported value after about "
                 f"{more:,.0f} more epochs")
    return text


LONGER_BUDGET = "figure1_budget"  # the ablations grid's Figure 1 runs with a longer epoch budget


def _budget_rows(rows: pd.DataFrame | None, label: str) -> pd.DataFrame:
    """The rows of ``rows`` (tidy runs or :func:`planned_cells` of the ablations grid) of the :data:`LONGER_BUDGET`
    ablation whose configuration is Figure 1's ``label``."""
    if rows is None or not len(rows) or "ablation" not in rows:
        return pd.DataFrame()
    sel = rows[rows["ablation"] == LONGER_BUDGET]
    labels = [_reported_label({"loss": loss, "negatives": negatives})
              for loss, negatives in zip(sel["paper_loss"], sel["negatives"])]
    return sel[[lab == label for lab in labels]]


def _longer_budget(label: str, cells: pd.DataFrame, longer: pd.DataFrame | None,
                   planned: pd.DataFrame | None) -> tuple[str, str] | None:
    """The same Figure 1 configuration trained with a longer epoch budget (the ablations grid's
    :data:`LONGER_BUDGET` runs): ``(outcome, words)`` from :func:`seqrec.analysis.nearness._reaches` on its test
    HIT@10 (mean over the seeds stored in ``longer``, the tidy ablations runs), or ``("pending", words)`` when
    ``planned`` (:func:`planned_cells` of the ablations grid with ``results_dir``) holds such a run that the store
    lacks, with how far it has got; None when there is neither."""
    from .nearness import _reaches

    r = cells.loc[FIGURE1_CELL_METRIC]
    runs = _budget_rows(longer, label)
    runs = runs[runs["metric"] == FIGURE1_CELL_METRIC] if len(runs) else runs
    if len(runs):
        budget = int(runs["epochs"].max())
        value = runs["value"].mean()
        each = zip(runs["seed"], runs["epochs_run"], runs["epochs"], runs["best_epoch"])
        trained = "; ".join(
            f"{'seed ' + str(int(seed)) + ': ' if len(runs) > 1 else ''}{int(run_epochs)} epochs"
            f"{', the whole budget' if run_epochs >= epochs else ', then its stopping rule fired'}"
            f", best epoch {int(best)}" for seed, run_epochs, epochs, best in each)
        seeds = "" if len(runs) == 1 else f", {len(runs)} seeds"
        return _reaches(value, r, "epoch budget", f"with a {budget}-epoch budget ({trained}{seeds})",
                        "at the protocol's budget", ruled="the epoch budget")
    pending = _budget_rows(planned, label)
    pending = pending[~pending["stored"].astype(bool)] if len(pending) and "stored" in pending else pending.iloc[0:0]
    if not len(pending):
        return None
    from ..experiments import FIGURE1_LONGER_EPOCHS

    progress = "; ".join(f"seed {int(seed)}: {p.replace(' (', ', ', 1).rstrip(')') if p else 'not started'}"
                         for seed, p in sorted(zip(pending["seed"], pending["progress"].fillna(""))))
    return ("pending", f"a run with a {FIGURE1_LONGER_EPOCHS}-epoch budget (the ablations grid's {LONGER_BUDGET}; "
                       f"{progress}) is planned, not stored yet")


def figure1_reasons(compared: pd.DataFrame, popularity: dict | None = None, frame: pd.DataFrame | None = None,
                    longer: pd.DataFrame | None = None, planned: pd.DataFrame | None = None) -> pd.Series:
    """For each Figure 1 loss configuration (index: the paper's label) whose HIT@10 or NDCG@10 is off by more than
    the tolerance, what the paper's own numbers for that point say; "" for the others. ``compared``:
    ``seqrec.paper.compare(..., "figure1")``, which carries every metric the authors' log reports. Checked:

    - *inconsistent*: a reported sampled metric (the target among itself and 99 negatives) below the same
      reported full-ranking metric. One set of scores cannot give that: a target in the top k of all items is in
      the top k of any 100 that hold it, so per user the sampled rank is at most the full rank.
    - *below chance*: a reported sampled HIT@10 below that of random scores, 10 of the 100 candidates (0.10).
    - *near popularity* (with ``popularity``, the test metrics of :func:`seqrec.baselines.popularity_metrics` on
      Beauty): the reported point, or ours, within :data:`NEAR_POPULARITY` times the popularity ranking on both
      metrics, i.e. that run learned little beyond which items are popular.
    - *still rising* (with ``frame``, the tidy Figure 1 runs with their ``path``): for a point below the paper's,
      every stored run of it still rising on validation HIT@10 when training ended (:func:`_still_rising`), so more
      epochs might have closed the gap; stated as possible, not checked, until the same configuration with a longer
      epoch budget (``longer``: the tidy ablations runs, whose :data:`LONGER_BUDGET` rows are read) is stored; then
      :func:`_longer_budget` checks it: found, partly or ruled out, as Table 2's checks are
      (:func:`seqrec.analysis.nearness._reaches`). ``planned`` (:func:`planned_cells` of the ablations grid with
      ``results_dir``) names such a run not stored yet, with how far it has got.

    The first two say the reported point is not a consistent evaluation of one trained model, so its gap to ours
    is no evidence about the loss. With none of them, "not investigated", saying whether the paper's numbers
    could be checked (a point reported without sampled metrics, like the MLM points read off the figure, cannot).
    A value whose source in ``figure1_reported.csv`` says "approximate" is called so."""
    from ..data import NUM_SAMPLED_NEGATIVES

    from ..paper import reported as paper_reported

    sources = {_reported_label(r): r.get("source", "") for r in paper_reported("figure1").to_dict("records")}
    candidates = NUM_SAMPLED_NEGATIVES + 1  # the target and its sampled negatives
    chance = 10 / candidates
    labelled = _figure1_labelled(compared)
    trends = _late_trends(frame)
    out = {}
    for label, g in labelled.groupby("label", sort=False):
        cells = g.set_index("metric")
        off = [m for m in FIGURE1_METRICS if m in cells.index and cells.loc[m, "verdict"] in ("better", "worse")]
        if not off:
            out[label] = ""
            continue
        reported = cells["reported"]
        below = []
        for full, name in FIGURE1_METRICS.items():
            sampled = reported.get(full.replace("full_", "sampled_"), np.nan)
            if full in reported and not pd.isna(sampled) and sampled < reported[full]:
                below.append(f"sampled {name} {sampled:.4f} < full {reported[full]:.4f}")
        found = []
        if below:
            found.append(f"the paper's own numbers for this point are inconsistent ({'; '.join(below)}): one set of "
                         f"scores cannot rank a target lower among {candidates} candidates than among all items")
        reported_sampled_hit = reported.get("sampled_HIT@10", np.nan)
        if not pd.isna(reported_sampled_hit) and reported_sampled_hit < chance:
            found.append(f"its reported sampled HIT@10, {reported_sampled_hit:.4f}, is below what random scores give "
                         f"({chance:.2f}: 10 of the {candidates} candidates)")
        ours = cells["reproduced"].get("sampled_HIT@10", np.nan)
        if found and not pd.isna(ours):
            found.append(f"our run's sampled HIT@10 is {ours:.4f}")
        parts = []
        if found:
            parts.append("the reported point is not a consistent evaluation of one trained model: "
                         + "; ".join(found) + "; so the gap is no evidence about the loss")
        if popularity:
            for who, values in (("the reported point", reported), ("our run", cells["reproduced"])):
                sentence = _popularity_finding(who, values, popularity)
                if sentence:
                    parts.append(sentence)
        if all(cells.loc[m, "verdict"] == "worse" for m in off) and FIGURE1_CELL_METRIC in cells.index:
            rising = _still_rising(label, cells, trends)
            checked = _longer_budget(label, cells, longer, planned)
            if checked and checked[0] != "pending":
                outcome, words = checked
                parts.append(f"not explained by {words}" if outcome == "ruled out" else words)
                if rising:
                    parts.append(f"the run at the protocol's budget: {rising}")
            elif rising:
                parts.append(f"possibly too few epochs: {rising}; so a longer budget might close the gap or part of "
                             f"it ({checked[1] if checked else 'untested'})")
        read_off = "approximate" in str(sources.get(label, ""))
        approximate = "its reported value is read off the paper's figure, so it is approximate"
        if parts:
            out[label] = "; ".join(parts + ([approximate] if read_off else []))
        elif not any(m.startswith("sampled_") for m in cells.index):  # e.g. the MLM points, read off the figure
            out[label] = ("not investigated: the paper gives no sampled metric for this point to check its "
                          "full-ranking one against, and no stored run isolates a cause"
                          + (f"; {approximate}" if read_off else ""))
        else:
            out[label] = ("not investigated: the paper's numbers for this point are consistent and no stored run "
                          "isolates a cause")
    return pd.Series(out, name="likely reason", dtype=object)


def figure1_claim(compared: pd.DataFrame, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's Figure 1 claim, "CCE is the most accurate loss of the family", tested on our runs: one row per
    other loss configuration and metric of :data:`FIGURE1_METRICS` the paper reports, with the reported values of
    CCE and that loss, ours (means over seeds), ``difference`` = our CCE − our other, and ``verdict``: *holds*
    (difference > 0), *does not hold* (≤ 0) or *not run* (either run missing). ``compared``:
    ``seqrec.paper.compare(..., "figure1")``. With ``frame`` (the tidy Figure 1 runs), also the metrics the paper
    does not report for a configuration it does (the MLM points' NDCG@10): tested on our runs alike, with
    ``reported other`` NaN and ``paper: CCE better`` "not reported"."""
    labelled = _figure1_labelled(compared, frame)
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
                         "reported other": o["reported"],
                         "paper: CCE better": (NOT_REPORTED if pd.isna(c["reported"]) or pd.isna(o["reported"])
                                               else bool(c["reported"] > o["reported"])),
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
            + (f" {untested} other loss configuration{' is' if untested == 1 else 's are'} not run yet."
               if untested else ""))


def _small(value: float) -> str:
    """A std in words: 4 decimals, or 5 below 0.0001 so that a tiny spread does not read as none (0.00004)."""
    return f"{value:.5f}" if 0 < abs(value) < 0.0001 else f"{value:.4f}"


def _seed_values(seeds: pd.DataFrame | None, metric: str, label: str | None = None) -> pd.Series:
    """The values of ``metric`` in a tidy seeds frame, one per seed (a seed stored twice counts once), optionally
    only the rows of loss ``label``."""
    if seeds is None or seeds.empty:
        return pd.Series(dtype=float)
    sel = seeds[seeds["metric"] == metric]
    if label is not None:
        sel = sel[sel["label"] == label]
    return sel.drop_duplicates("seed")["value"].astype(float)


def figure1_closest(claim: pd.DataFrame, cce_seeds: pd.DataFrame | None = None,
                    other_seeds: pd.DataFrame | None = None, same_configuration: bool = True) -> pd.DataFrame:
    """Per metric, the other loss run that comes closest to our CCE (smallest ``difference`` of :func:`figure1_claim`),
    beside CCE's own seed spread. Figure 1 runs one seed per point, so the spread comes from ``cce_seeds``: a tidy
    frame (``metric``, ``value``, ``seed``; metric names as ``full_HIT@10``) of SASRec+CCE runs on Beauty with
    several seeds, or None. ``other_seeds`` (same columns plus ``label``, the loss's name as in the claim, e.g.
    "BPR-max-100"): the other losses' seeds in the same configuration as ``cce_seeds``; with at least 2 seeds on
    both sides the margin is tested as Table 2's claims are: means over the seeds, beyond seed noise when the mean
    difference exceeds twice the larger std. ``same_configuration=False`` (the two sets of seeds come from different
    configurations): the other loss's std is reported, the margin is not tested. Columns: ``metric``, ``closest
    loss``, ``difference``, ``CCE seed std`` (ddof=1; NaN under 2 seeds), ``seeds``, ``difference / std``, ``other
    seed std``, ``other seeds``, ``mean difference`` (CCE − other over the seeds; NaN untested) and ``beyond seed
    noise`` (True/False; None untested)."""
    columns = ["metric", "closest loss", "difference", "CCE seed std", "seeds", "difference / std",
               "other seed std", "other seeds", "mean difference", "beyond seed noise"]
    ran = claim[claim["verdict"] != "not run"]
    names = {name: metric for metric, name in FIGURE1_METRICS.items()}
    rows = []
    for name, g in ran.groupby("metric", sort=False):
        o = g.loc[g["difference"].idxmin()]
        mine = _seed_values(cce_seeds, names.get(name))
        theirs = _seed_values(other_seeds, names.get(name), o["other loss"])
        std = float(mine.std(ddof=1)) if len(mine) >= 2 else np.nan
        other_std = float(theirs.std(ddof=1)) if len(theirs) >= 2 else np.nan
        tested = same_configuration and len(mine) >= 2 and len(theirs) >= 2
        mean_diff = float(mine.mean() - theirs.mean()) if tested else np.nan
        rows.append({"metric": name, "closest loss": o["other loss"], "difference": float(o["difference"]),
                     "CCE seed std": std, "seeds": len(mine),
                     "difference / std": float(o["difference"]) / std if std > 0 else np.nan,
                     "other seed std": other_std, "other seeds": len(theirs), "mean difference": mean_diff,
                     "beyond seed noise": bool(abs(mean_diff) > 2 * max(std, other_std)) if tested else None})
    return pd.DataFrame(rows, columns=columns)


def figure1_closest_in_words(closest: pd.DataFrame, spread_from: str = "another configuration") -> str:
    """One sentence from :func:`figure1_closest`: which loss comes closest to CCE per metric, by how much, and
    how that margin compares with CCE's seed std measured under ``spread_from``, tested against seed noise where
    the other loss has seeds too; empty when nothing ran."""
    if closest.empty:
        return ""
    parts = []
    for _, r in closest.iterrows():
        part = (f"{r['closest loss']} on {r['metric']} ({abs(r['difference']):.4f} "
                f"{'below' if r['difference'] > 0 else 'above'} CCE")
        if r["beyond seed noise"] is not None and not pd.isna(r["beyond seed noise"]):
            part += (f"; over the seeds, CCE's mean is {abs(r['mean difference']):.4f} "
                     f"{'above' if r['mean difference'] > 0 else 'below'} its, "
                     f"{'beyond' if r['beyond seed noise'] else 'within'} seed noise: the stds are "
                     f"{_small(r['CCE seed std'])} (CCE, {r['seeds']} seeds) and {_small(r['other seed std'])} "
                     f"({r['other seeds']} seeds)")
        elif pd.notna(r["difference / std"]):
            part += f", {abs(r['difference / std']):.1f}× CCE's seed std of {_small(r['CCE seed std'])}"
        parts.append(part + ")")
    if closest["beyond seed noise"].notna().all():
        spread = f" Seeds are runs of {spread_from}."
    elif closest["CCE seed std"].notna().any():
        spread = f" CCE's std is over {int(closest['seeds'].max())} seeds of {spread_from}; "
        other = closest[closest["other seed std"].notna()]
        if len(other):
            spread += ("in Figure 1's configuration " + "; ".join(
                f"{r['closest loss']}'s {r['metric']} std is {r['other seed std']:.4f} over {int(r['other seeds'])} "
                "seeds" for _, r in other.iterrows()) + "; the two spreads come from different configurations, so this "
                "weighs the margin, it does not test it.")
        else:
            spread += ("every Figure 1 point has one seed and the other loss's own spread is not measured, so this "
                       "weighs the margin, it does not test it.")
    else:
        spread = " No seed spread of CCE is stored, so the margin cannot be weighed against seed noise."
    return "Closest to CCE: " + "; ".join(parts) + "." + spread


def verdict_overview(compared: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Cells per verdict for each reported table: ``compared`` maps a name ("Table 2", ...) to its cells (a
    ``seqrec.paper.compare`` frame; for Figure 1, :func:`figure1_cells`). Columns: the four :data:`VERDICTS`,
    ``run`` and ``cells`` (all reported cells)."""
    rows = {}
    for name, table in compared.items():
        counts = verdict_counts(table)["cells"].astype(int)
        rows[name] = {**counts.to_dict(), "run": int(counts.sum() - counts["not run"]), "cells": int(counts.sum())}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[*VERDICTS, "run", "cells"])
