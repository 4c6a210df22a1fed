"""Why a Table 2 cell is off by more than the tolerance: checks against the variant, overfitting, the
negative pool, pretraining and seen-item scoring, each giving a reason in words."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .nearness import (_cell_rows, _explains, _nearness, _partly, _reaches, _same_seeds, _scoped_seeds, _seed_scope,
                       _within_tolerance)
from .pretraining import _pretraining_check, _pretraining_gain_check
from .seen import _seen_scoring_check
from .tuning import _tuning_check, tuning_sweep
from .verdicts import _beyond_seed_noise, _noise_words


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


def levelled_off(curve: list[dict], monitor: str, max_epochs: int, patience: int = 10) -> dict | None:
    """How far a curve that ended on a plateau could still have climbed: the best ``monitor`` so far rose by
    ``rise`` (relative) over the run's second half, epochs ``from_epoch`` to ``last_epoch``; kept up at that pace
    until ``max_epochs`` (the epoch budget), the best would gain ``gain`` more (relative). For a curve that keeps
    flattening this is an upper bound. Returns ``{"from_epoch", "last_epoch", "best_epoch", "rise", "gain"}``, or
    None when the second half does not reach at least ``patience`` epochs before the best epoch (it would measure
    only the plateau after the peak, which early stopping guarantees, not the climb) or the curve lacks the
    monitor or a positive best."""
    points = [c for c in curve if monitor in c]
    if len(points) < 2:
        return None
    last = points[-1]["epoch"]
    from_epoch = min(c["epoch"] for c in points if c["epoch"] >= last / 2)
    best = max(points, key=lambda c: c[monitor])  # the first of equal maxima, as early stopping keeps it
    start = max(c[monitor] for c in points if c["epoch"] <= from_epoch)
    if best[monitor] <= 0 or start <= 0 or best["epoch"] - from_epoch < patience or last == from_epoch:
        return None
    pace = (best[monitor] - start) / (last - from_epoch)
    return {"from_epoch": from_epoch, "last_epoch": last, "best_epoch": best["epoch"],
            "rise": best[monitor] / start - 1, "gain": pace * max(0, max_epochs - last) / best[monitor]}


STILL_RISING = 0.02  # a late trend (:func:`late_trend`) of at least +2 % per 100 epochs: the curve was still rising


def late_trend(curve: list[dict], monitor: str, min_points: int = 10) -> dict | None:
    """Where a curve was heading when training ended: the least-squares line through ``monitor`` over the run's
    second half (epochs from half the last epoch on), its slope per 100 epochs relative to the half's mean
    (``trend``; +0.05: rising 5 % of its level per 100 epochs). Unlike :func:`levelled_off`, which follows the best
    value so far, it weighs every epoch, so a noisy plateau gives about 0 whichever epoch its maximum fell on.
    Returns ``{"from_epoch", "last_epoch", "trend"}``, or None with fewer than ``min_points`` evaluated epochs in
    the second half or a non-positive mean."""
    points = [(c["epoch"], c[monitor]) for c in curve if monitor in c and c[monitor] is not None]
    if not points:
        return None
    last = points[-1][0]
    half = [(e, v) for e, v in points if e >= last / 2]
    if len(half) < min_points:
        return None
    epochs, values = np.array(half, dtype=float).T
    mean = values.mean()
    if mean <= 0:
        return None
    slope = np.polyfit(epochs, values, 1)[0]
    return {"from_epoch": int(epochs[0]), "last_epoch": int(last), "trend": float(slope * 100 / mean)}


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


def _pending_patience(r, planned: pd.DataFrame | None) -> str:
    """The patience ablation's reruns of the compared cell ``r`` (:func:`_cell_rows`) that ``planned``
    (:func:`planned_cells` of the ablations grid, with ``results_dir``) holds but the store lacks, in words with how
    far each has got, e.g. "the patience ablation's rerun of seed 44 (pretraining 37 of 150 epochs done, local
    checkpoint) is planned, not stored yet"; "" for none."""
    if planned is None or not len(planned) or "stored" not in planned:
        return ""
    sel = _cell_rows(r, planned)
    sel = sel[(sel["ablation"] == "patience") & ~sel["stored"].astype(bool)]
    if not len(sel):
        return ""
    runs = [f"seed {int(seed)} ({p.replace(' (', ', ', 1).rstrip(')') if p else 'not started'})"
            for seed, p in sorted(zip(sel["seed"], sel["progress"].fillna("")))]
    return (f"the patience ablation's rerun{'s' * (len(runs) > 1)} of {' and '.join(runs)} "
            f"{'are' if len(runs) > 1 else 'is'} planned, not stored yet")


LONG_PATIENCE = 40
"""The patience of the patience ablation's reruns: a run that stopped without the signature of overfitting counts
as settled when another seed of its cell trained at least this many epochs past its best epoch."""


def _overfitting_check(r, frame: pd.DataFrame, pending: str = "") -> tuple[str, str] | None:
    """Early stopping judged from the stored curves of the cell's runs: ``("ruled out", why)`` when every run
    overfit after its best epoch (:func:`overfit_after_best`: a longer patience would only have kept the same
    peak) or had levelled off so far that, climbing on at its second half's pace until the epoch budget
    (:func:`levelled_off`), the cell would still stay outside the tolerance below the reported value, or, for a run
    that did neither, when the cell's other seeds trained at least :data:`LONG_PATIENCE` epochs past that run's best
    epoch and still land outside the tolerance on the cell's side (:func:`_longer_seeds`); ``("open", why)`` when
    some run did none of these (a longer patience might have gone further; ``pending``, from
    :func:`_pending_patience`, says where such a run is under way), None when no usable curve is stored."""
    from .. import results

    sel = _cell_rows(r, frame)
    paths = [p for p in sel["path"].dropna().unique()] if "path" in sel else []
    runs = [run for run in (results.load_runs(paths) if paths else []) if run.get("curve")]
    if not runs:
        return None
    stats = [after_best(run["curve"], run["config"].get("monitor", "")) for run in runs]
    if None in stats:
        return None
    name = runs[0]["config"]["monitor"].replace("_", " ", 1)
    plateaus, open_runs = [], []
    for i, (run, o) in enumerate(zip(runs, stats)):
        if _overfit(o):
            continue
        config = run["config"]
        level = levelled_off(run["curve"], config["monitor"], config["epochs"], config.get("patience", 10)) \
            if "epochs" in config else None
        ceiling = r["reproduced"] * (1 + level["gain"]) if level else None
        if ceiling is None or ceiling >= r["reported"] or _within_tolerance(ceiling, r):
            open_runs.append(i)
        else:
            plateaus.append((config, level, ceiling))
    if open_runs:
        o = stats[open_runs[0]]
        longer = _longer_seeds(r, runs, stats, open_runs)
        if longer is None:
            return ("open", f"early stopping ({name} at epoch {o['last_epoch']}, where training stopped, was "
                            f"{o['drop']:.0%} below its peak at epoch {o['best_epoch']}, without the signature of "
                            f"overfitting; a run with a longer patience would settle it{pending and ': '}{pending})")
        return ("ruled out", f"early stopping (the run with seed {runs[open_runs[0]]['config']['seed']} stopped at "
                             f"epoch {o['last_epoch']}, {o['drop']:.0%} below its {name} peak at epoch "
                             f"{o['best_epoch']}, without the signature of overfitting, but {longer})")
    if plateaus:
        config, level, ceiling = plateaus[0]
        more = f"; each of the other {len(runs) - 1} seeds overfit or fell short too" if len(runs) > 1 else ""
        return ("ruled out", f"early stopping (the run had levelled off: its best {name} rose "
                             f"{level['rise']:.0%} from epoch {level['from_epoch']} to {level['last_epoch']}, where "
                             f"training stopped; at that pace until the protocol's {config['epochs']} epochs it "
                             f"would gain {level['gain']:.0%} more, and the cell, rising in step, reach about "
                             f"{ceiling:.4f}, {ceiling / r['reported'] - 1:+.0%} from the reported "
                             f"{r['reported']:.4f}{more})")
    o = stats[0]
    more = f" (and in the other {len(runs) - 1} seeds)" if len(runs) > 1 else ""
    return ("ruled out", f"early stopping (the run overfit: {name} peaked at epoch {o['best_epoch']} and was "
                         f"{o['drop']:.0%} lower at epoch {o['last_epoch']} while the training loss fell another "
                         f"{o['train_drop']:.0%}{more})")


def _longer_seeds(r, runs: list[dict], stats: list[dict], open_runs: list[int]) -> str | None:
    """Words for :func:`_overfitting_check` when the cell's other seeds settle what the curves of the runs
    ``open_runs`` (indices into ``runs`` and their :func:`after_best` ``stats``) leave open: every run not open
    trained to at least :data:`LONG_PATIENCE` epochs past the latest best epoch of the open runs (as far as a rerun
    with that patience would certainly have gone), and their mean test value of the cell's metric is outside the
    tolerance on the cell's side of the reported value (training longer, as those seeds did, does not bring the cell
    near it). None when no such seeds are stored or they land within the tolerance or across the reported value."""
    reach = max(stats[i]["best_epoch"] for i in open_runs) + LONG_PATIENCE
    others = [i for i in range(len(runs)) if i not in open_runs]
    key = f"full_{r['metric']}"
    if not others or any(stats[i]["last_epoch"] < reach or key not in runs[i].get("metrics", {}) for i in others):
        return None
    value = sum(runs[i]["metrics"][key] for i in others) / len(others)
    if _within_tolerance(value, r) or (value - r["reported"]) * (r["reproduced"] - r["reported"]) <= 0:
        return None
    def listed(words: list[str]) -> str:
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]

    seeds = listed([str(runs[i]["config"]["seed"]) for i in others])
    ends = listed([f"{stats[i]['last_epoch']} (best {stats[i]['best_epoch']})" for i in others])
    many = len(others) > 1
    return (f"the cell's run{'s' if many else ''} with seed{'s' if many else ''} {seeds} trained to epoch"
            f"{'s' if many else ''} {ends}, past epoch {reach}, as far as a patience of {LONG_PATIENCE} would have "
            f"taken it, and reach{'' if many else 'es'} {value:.4f}{' on average' if many else ''}, "
            f"{value / r['reported'] - 1:+.0%} from the reported {r['reported']:.4f}")


def _same_direction(r, compared: pd.DataFrame, min_datasets: int = 3, share: float = 0.75,
                    swept: list[str] | None = None) -> str | None:
    """A sentence when this (model, loss, metric) has the cell's verdict on at least ``min_datasets`` datasets
    run and on at least ``share`` of them: a gap in one direction across datasets, which seed noise (either
    sign) does not produce. ``swept``: the datasets on which a tuning sweep of this (model, loss) ran (the
    hyperparameters check says what it found), else the hyperparameters are said not to be tuned."""
    same = compared[(compared["model"] == r["model"]) & (compared["loss"] == r["loss"])
                    & (compared["metric"] == r["metric"]) & (compared["verdict"] != "not run")]
    hits = same[same["verdict"] == r["verdict"]]
    if len(hits) < min_datasets or len(hits) < share * len(same):
        return None
    diffs = hits["rel_diff"].dropna() if "rel_diff" in hits else pd.Series(dtype=float)
    span = f", {diffs.min():+.0%} to {diffs.max():+.0%}" if len(diffs) else ""
    return (f"systematic: {r['model']} with {r['loss']} is {r['verdict']} on {len(hits)} of the {len(same)} "
            f"datasets run ({r['metric']}{span}); a gap in one direction points to a difference in the model's "
            f"variant or hyperparameters ({'swept on ' + ', '.join(swept) + ' only' if swept else 'not tuned here'}) "
            "rather than chance")


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
    if _explains(value, r):
        return "found", f"negative pool: with {what} the same cell reaches {value:.4f} (reported {r['reported']:.4f})"
    return "ruled out", f"negative pool (with {what} the cell reaches {value:.4f})"


def _recipe_rows(r, runs: pd.DataFrame) -> pd.DataFrame | None:
    """The rows of ``runs`` behind compared cell ``r`` from a ``<model>_recipe`` ablation (the model's own optimiser
    settings), or None when there are none."""
    if not len(runs) or "ablation" not in runs:
        return None
    p = _cell_rows(r, runs)
    p = p[p["ablation"].astype(str).str.endswith("_recipe")]
    return p if len(p) else None


def _recipe_stats(sel: pd.DataFrame, r) -> tuple[float, float, int, str]:
    """Mean, std (ddof 1; NaN with one seed) and seed count of the recipe runs ``sel`` of cell ``r``, and whether
    their difference from the cell's own mean is beyond seed noise (:func:`_beyond_seed_noise` of both stds)."""
    per_seed = sel.groupby("seed")["value"].mean()
    std = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else float("nan")
    noise = _beyond_seed_noise(per_seed.mean() - r["reproduced"], std, r["reproduced_std"])
    return float(per_seed.mean()), std, len(per_seed), noise


def recipe_comparison(compared: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per Table 2 cell (``compared``) that has a ``<model>_recipe`` run in ``runs``: the reported value, ours
    under the protocol (the cell: mean ± std over its seeds) and under the model's own recipe (mean ± std over its
    seeds), each relative to the reported one, and whether the recipe's change is beyond seed noise ("yes" / "no" /
    "one seed"). Index ``dataset, model, loss, metric``; empty when no recipe run is stored."""
    rows = []
    for _, r in compared[compared["verdict"] != "not run"].iterrows():
        sel = _recipe_rows(r, runs)
        if sel is None:
            continue
        value, std, seeds, noise = _recipe_stats(sel, r)
        rows.append({"dataset": r["dataset"], "model": r["model"], "loss": r["loss"], "metric": r["metric"],
                     "reported": r["reported"], "protocol": r["reproduced"], "protocol std": r["reproduced_std"],
                     "protocol seeds": r["n_seeds"], "own recipe": value, "own recipe std": std,
                     "own recipe seeds": seeds, "protocol vs reported": r["reproduced"] / r["reported"] - 1,
                     "own recipe vs reported": value / r["reported"] - 1, "change beyond seed noise": noise})
    columns = ["reported", "protocol", "protocol std", "protocol seeds", "own recipe", "own recipe std",
               "own recipe seeds", "protocol vs reported", "own recipe vs reported", "change beyond seed noise"]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows).set_index(["dataset", "model", "loss", "metric"])[columns]


def _recipe_check(r, runs: pd.DataFrame) -> tuple[str, str] | None:
    """A cell trained again with its model's own published recipe instead of the protocol's Adam at a constant rate
    without L2 (the ``<model>_recipe`` ablation in ``runs``, e.g. ``srgnn_recipe``: SR-GNN's L2 1e-5 and the rate
    divided by 10 every 3 epochs). ``("found", why)`` when its mean over the seeds run lands within the tolerance,
    ``("partly", why)`` when nearer than the cell or past the reported value from the cell's side
    (:func:`_nearness`), ``("ruled out", why)`` otherwise, None when no such run is stored."""
    p = _recipe_rows(r, runs)
    if p is None:
        return None
    value, std, seeds, _ = _recipe_stats(p, r)
    first = p.iloc[0]
    what = (f"{r['model']}'s own recipe (Adam with L2 {first['weight_decay']:g}, the learning rate times "
            f"{first['lr_gamma']:g} every {int(first['lr_step'])} epochs; {seeds} seed{'s' * (seeds > 1)})")
    weighed = _noise_words(value - r["reproduced"], std, r["reproduced_std"])
    return _reaches(value, r, "training recipe", f"with {what}", "with the protocol's", ruled="the training recipe",
                    tail=weighed)


def _cut_by_budget(changed: pd.DataFrame) -> str:
    """Words to append when the patience reruns ``changed`` (rows of stored runs, with ``epochs``, ``epochs_run``
    and ``best_epoch``) trained their whole epoch budget: the budget, not the patience, ended them, so a longer
    budget might have taken the cell further (e.g. ", its run cut at the 200-epoch budget (best epoch 189)");
    "" when every run stopped early or the rows do not say."""
    if not {"epochs", "epochs_run", "best_epoch"} <= set(changed.columns):
        return ""
    each = changed.dropna(subset=["epochs", "epochs_run"])  # one row per run: the rows of one metric
    cut = each[each["epochs_run"] >= each["epochs"]]
    if not len(cut):
        return ""
    budget = int(cut["epochs"].iloc[0])
    if len(each) == 1:
        best = cut["best_epoch"].iloc[0]
        return f", its run cut at the {budget}-epoch budget" + ("" if pd.isna(best) else f" (best epoch {int(best)})")
    return f", {len(cut)} of its {len(each)} runs cut at the {budget}-epoch budget"


def discrepancy_reasons(compared: pd.DataFrame, runs: pd.DataFrame, frame: pd.DataFrame | None = None,
                        seen_scoring: pd.DataFrame | None = None, planned: pd.DataFrame | None = None) -> pd.Series:
    """For each run cell of ``compared`` (Table 2) off by more than the tolerance, what our stored runs say about
    the cause; "" for the other cells. Checked, in order:

    - *seed variance*: with ≥ 2 seeds, is the reported value within our mean ± 2 std?
    - *early stopping*: does a run of the same cell with a longer patience (the ``patience`` ablation in ``runs``)
      land within the tolerance of the reported value (or at least nearer, or past it: partly), judged against the
      cell's runs with the rerun's seeds (:func:`_same_seeds`; a rerun that trained its whole epoch budget is said
      to have been cut there)? Without such a run, for a *worse* cell, with ``frame`` = the tidy Table 2 frame
      whose ``path`` column leads to the stored curves: did every run of the cell overfit after its best epoch
      (:func:`overfit_after_best`: a longer patience could only have kept the same peak; ruled out), or level
      off so far that its second half's pace, kept up until the epoch budget, would still leave
      the cell outside the tolerance (:func:`levelled_off`; ruled out), or did one end on a plateau near its peak
      that could still climb that far (not ruled out; with ``planned``, :func:`planned_cells` of the ablations
      grid with ``results_dir``, the cell's patience reruns not stored yet are named, with how far each has got)?
    - *variant* (SR-GNN with CCE, which reads the authors' variant): does the ``causal`` variant of the same cell,
      stored in ``frame``, land within the tolerance of the reported value (or at least nearer than the cell, or past
      the reported value from the cell's side: partly)?
    - *seen-item scoring*: with ``seen_scoring`` (:func:`seen_scoring_checks`), does the cell's value, shifted by the
      effect of scoring seen items 0 as the authors' code does (measured on the cell's stored models), land within
      the tolerance of the reported value?
    - *negative pool*: does the same cell with its negatives drawn only among the user's unseen items (the
      ``negative_pool`` ablation in ``runs``, as the authors' code draws them) land within the tolerance?
    - *training recipe*: does the same cell trained with its model's own published optimiser settings (a
      ``<model>_recipe`` ablation in ``runs``, e.g. SR-GNN's L2 and step decay) land within the tolerance (or nearer,
      or past it: partly)?
    - *pretraining* (S3-Rec): does the same cell pretrained with the S3-Rec authors' recipe (the ``pretraining``
      ablation in ``runs``) land within the tolerance of the reported value (or at least nearer, or past it: partly)?
      Without such a run on the cell's dataset, what it did to the same (model, loss, metric) on the datasets
      where it ran is given as a cause not checked on this dataset.
    - *pretraining stage* (S3-Rec): had our pretraining added to our SASRec cell (the same encoder, finetuned the
      same way without pretraining) what the paper's adds to its SASRec
      (:func:`~seqrec.analysis.pretraining.pretraining_gain`), would the cell land within the tolerance (or nearer,
      or past it: partly)? Ruled out, the gap is SASRec's own, the finetuning's.
    - *hyperparameters*: the ``tuning`` ablation in ``runs`` (:func:`~seqrec.analysis.tuning.tuning_sweep`: the
      protocol's settings changed one at a time): does the setting chosen on validation take the cell within the
      tolerance (or nearer: partly)? Ruled out when the protocol's own settings score best on validation; with a
      sweep on other datasets only, what it did there (not checked on this dataset).
    - *systematic*: is the same (model, loss, metric) off in the same direction on most datasets run (at least 3)?

    A check passes when the changed run lands within the tolerance and moves the cell by at least
    :data:`~seqrec.analysis.nearness.MIN_SHARE_OF_GAP` of its gap (a hair across the line explains nothing). A
    check that passes is given as the likely reason; checks that fail are listed as "not explained by ...: ...";
    a check run on other datasets only, as "not checked on this dataset: ..."; with no check possible, "not
    investigated: ...".
    """
    reasons = []
    sweep = tuning_sweep(runs, frame)
    for _, r in compared.iterrows():
        if r["verdict"] not in ("better", "worse"):
            reasons.append("")
            continue
        found, ruled_out, still_open, untested, patience_run = [], [], [], [], False
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
                value, scope, cut = g["value"].mean(), _seed_scope(g, r, frame), _cut_by_budget(g)
                base = _same_seeds(g, r, frame)  # a rerun goes on from its seed's run: judged against that run
                nearness = _nearness(value, base)
                if nearness == "found":
                    found.append(f"early stopping: with patience {int(patience)} instead of 10 the same cell reaches "
                                 f"{value:.4f}{scope} (reported {r['reported']:.4f}){cut}")
                elif nearness in ("partly", "past"):
                    found.append(_partly(nearness, "early stopping", f"with patience {int(patience)} instead of 10 "
                                         "the same cell reaches", value, base, "with patience 10") + scope + cut)
                else:
                    ruled_out.append(f"early stopping (with patience {int(patience)} the cell reaches "
                                     f"{value:.4f}{scope}{cut})")
        if frame is not None and len(frame) and r["verdict"] == "worse" and not patience_run:
            checked = _overfitting_check(r, frame, _pending_patience(r, planned))
            if checked:
                (ruled_out if checked[0] == "ruled out" else still_open).append(checked[1])
        checked = _variant_check(r, frame) if frame is not None and len(frame) else None
        if checked:
            scope = _seed_scope(_cell_rows(r, frame, "causal"), r, frame)
            (ruled_out if checked[0] == "ruled out" else found).append(checked[1] + scope)
        for checked in [_seen_scoring_check(r, seen_scoring), _negative_pool_check(r, runs), _recipe_check(r, runs),
                        *_pretraining_check(r, runs, compared), _pretraining_gain_check(r, compared),
                        _tuning_check(r, sweep, frame)]:
            if checked:
                {"ruled out": ruled_out, "untested": untested}.get(checked[0], found).append(checked[1])
        swept = sweep[(sweep["paper_model"] == r["model"]) & (sweep["loss_kind"] == r["loss_kind"])
                      & sweep["chosen"]]["data"].unique().tolist()
        systematic = _same_direction(r, compared, swept=swept)
        if systematic:
            found.append(systematic)
        parts = ["; ".join(found)] if found else []
        if ruled_out:
            parts.append("not explained by " + "; nor by ".join(ruled_out))
        if still_open:
            parts.append("not ruled out: " + "; ".join(still_open))
        if untested:
            parts.append("not checked on this dataset: " + "; ".join(untested))
        reasons.append("; ".join(parts) if parts else
                       "not investigated: no stored run isolates a cause (seeds, patience) for this cell")
    return pd.Series(reasons, index=compared.index, name="likely reason")


def discrepancies(compared: pd.DataFrame, runs: pd.DataFrame, frame: pd.DataFrame | None = None,
                  seen_scoring: pd.DataFrame | None = None, planned: pd.DataFrame | None = None) -> pd.DataFrame:
    """The cells of ``compared`` (Table 2) outside the tolerance (verdict better or worse), with the
    :func:`discrepancy_reasons` column ``likely reason`` (``frame``: the tidy Table 2 frame, for the curve
    checks; ``seen_scoring``: :func:`seen_scoring_checks`; ``planned``: :func:`planned_cells` of the ablations grid,
    for the patience reruns under way), indexed by ``dataset, model, loss, metric``."""
    off = compared[compared["verdict"].isin(["better", "worse"])].copy()
    reasons = discrepancy_reasons(compared, runs, frame, seen_scoring, planned)
    off["likely reason"] = reasons[off.index]
    return off.set_index(["dataset", "model", "loss", "metric"])[
        ["reported", "reproduced", "reproduced_std", "n_seeds", "rel_diff", "verdict", "likely reason"]]
