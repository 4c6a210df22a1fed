"""Seen-item scoring on stored models: metrics with and without the user's seen items excluded, and the
discrepancy check that uses them."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch

from .. import data as data_mod
from .. import metrics
from ..config import TrainConfig
from .cache import cache_path, cached
from .frames import _stored_runs
from .labels import PAPER_LOSS
from .nearness import _explains

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
    from ..trainer import load_model

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
    if effect != 0 and _explains(shifted, r):
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
