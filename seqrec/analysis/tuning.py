"""A Table 2 cell trained again with the protocol's settings changed one at a time (the ablations grid's ``tuning``
runs), the setting to read chosen on validation as a tuner would, and what that choice does to the cell's gap."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import TrainConfig
from .nearness import _reaches, _same_seeds, _scoped_seeds, _seed_scope
from .verdicts import _noise_words

TUNED_FIELDS = {"dropout": "dropout", "weight_decay": "L2", "lr": "learning rate", "batch_size": "batch size"}
"""The settings a tuning run may change (TrainConfig fields) and their names in words."""
PROTOCOL_SETTING = "the protocol's settings"
TUNING_METRICS = ("full_HIT@10", "full_NDCG@10")
TUNING_COLUMNS = ["data", "paper_model", "paper_loss", "loss_kind", "seed", "role", "setting", "valid", "best_epoch",
                  "epochs_run", *TUNING_METRICS, "chosen"]
ROLES = {"tuning": "sweep", "tuned": "carried"}
"""The ablations that :func:`tuning_sweep` reads and their role: ``tuning``, the sweep (the protocol's settings changed
one at a time on one dataset and seed); ``tuned``, the setting it chose carried to other seeds and datasets as is."""


def _setting(row) -> str:
    """What run ``row`` (a tidy-frame row) changes from the protocol, in words (e.g. "dropout 0.75"), or
    :data:`PROTOCOL_SETTING` when it changes none of the :data:`TUNED_FIELDS`."""
    protocol = TrainConfig()
    changed = [f"{name} {float(row[field]):g}" for field, name in TUNED_FIELDS.items()
               if field in row and not pd.isna(row[field]) and float(row[field]) != float(getattr(protocol, field))]
    return ", ".join(changed) or PROTOCOL_SETTING


def tuning_sweep(runs: pd.DataFrame, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The tuning runs of ``runs`` (a tidy ablations frame: the :data:`ROLES` ablations), each beside the Table 2
    cell's own run with the same dataset and seed (from ``frame``, the tidy Table 2 frame; its protocol runs only),
    which comes first (rows by dataset, loss (the original first), seed, then role). One row per run (columns :data:`TUNING_COLUMNS`): its ``role`` ("protocol", "sweep" or
    "carried"), ``setting`` (:func:`_setting`), ``valid`` (the early-stopping monitor at its best epoch, the frame's
    ``best_valid``: what a tuner compares), best epoch, epochs run, the test :data:`TUNING_METRICS` and ``chosen``:
    True for the run with the highest ``valid`` among a sweep and its protocol run (same dataset, model, loss and
    seed), the setting a tuner would keep (none when a run has no validation value). Carried runs are never chosen:
    they only repeat a choice. Empty without tuning runs."""
    empty = pd.DataFrame(columns=TUNING_COLUMNS)
    if not len(runs) or "ablation" not in runs:
        return empty
    tuned = runs[runs["ablation"].fillna("").astype(str).isin(list(ROLES))]
    if not len(tuned):
        return empty
    parts = []
    if frame is not None and len(frame):
        protocol = frame[frame["ablation"].fillna("").astype(str).isin(["", "seeds"])] if "ablation" in frame else frame
        for (data, model, kind), g in tuned.groupby(["data", "paper_model", "loss_kind"], sort=False):
            parts.append(protocol[(protocol["data"] == data) & (protocol["paper_model"] == model)
                                  & (protocol["loss_kind"] == kind) & protocol["seed"].isin(g["seed"].unique())]
                         .assign(ablation=""))
    both = pd.concat([*parts, tuned], ignore_index=True)
    both = both[both["metric"].isin(TUNING_METRICS)].copy()
    both["role"] = both["ablation"].fillna("").astype(str).map(ROLES).fillna("protocol")
    both["setting"] = [_setting(row) for _, row in both.iterrows()]
    rows = []  # one per run: a cell's own run stored twice (Table 2 and its seeds ablation) counts once
    for _, g in both.groupby(["data", "paper_model", "loss_kind", "seed", "role", "setting"], sort=False):
        first = g.iloc[0]
        values = dict(zip(g["metric"], g["value"]))
        rows.append({"data": first["data"], "paper_model": first["paper_model"], "paper_loss": first["paper_loss"],
                     "loss_kind": first["loss_kind"], "seed": int(first["seed"]), "role": first["role"],
                     "setting": first["setting"],
                     "valid": float(first["best_valid"]) if not pd.isna(first.get("best_valid", np.nan)) else np.nan,
                     "best_epoch": first.get("best_epoch", np.nan), "epochs_run": first.get("epochs_run", np.nan),
                     **{m: values.get(m, np.nan) for m in TUNING_METRICS}, "chosen": False})
    out = pd.DataFrame(rows, columns=TUNING_COLUMNS)
    # each dataset (in the tuning runs' order), the original loss before CCE, each seed, its protocol run first,
    # then its sweep or carried runs
    order = {"data": {d: i for i, d in enumerate(tuned["data"].unique())},
             "loss_kind": {"original": 0, "improved": 1}, "role": {"protocol": 0, "sweep": 1, "carried": 2}}
    out = out.sort_values(["data", "loss_kind", "seed", "role"], kind="stable",
                          key=lambda col: col.map(order[col.name]).fillna(len(order[col.name])) if col.name in order
                          else col).reset_index(drop=True)
    for _, g in out.groupby(["data", "paper_model", "loss_kind", "seed"], sort=False):
        g = g[g["role"] != "carried"]
        if (g["role"] == "sweep").any() and g["valid"].notna().all():  # a tuner compares every setting, or cannot
            out.loc[g["valid"].idxmax(), "chosen"] = True
    return out


def _changes(swept: pd.DataFrame) -> str:
    """The settings of a sweep (rows of :func:`tuning_sweep`), the protocol's left out."""
    return ", ".join(s for s in swept["setting"].unique() if s != PROTOCOL_SETTING)


def _ceiling(swept: pd.DataFrame, metric: str, r) -> str:
    """The best test value of a sweep (rows of :func:`tuning_sweep`) on ``metric``, with its setting, against the
    reported value of cell ``r``: what no tuner could beat with these settings."""
    best = swept.loc[swept[metric].idxmax()]
    return (f"the best any of them reaches on test is {best[metric]:.4f} ({best['setting']}), "
            f"{best[metric] / r['reported'] - 1:+.0%} from the reported {r['reported']:.4f}")


def _tuning_check(r, sweep: pd.DataFrame | None, frame: pd.DataFrame | None = None) -> tuple[str, str] | None:
    """Compared Table 2 cell ``r`` against the tuning sweep of its (model, loss) (``sweep``: :func:`tuning_sweep`).
    The setting chosen on validation (on the sweep's dataset and seed) is read on the cell's dataset, over the
    runs with that setting there (the sweep's own and those carried to other seeds or datasets), against the cell's
    own runs with the same seeds (from ``frame``, the tidy Table 2 frame, as the patience check reads its reruns):
    ``("found" | "partly" | "ruled out", why)`` by :func:`~seqrec.analysis.nearness._reaches`, with whether the
    change is beyond seed noise when both sides have seeds. ``("ruled out", why)`` on the sweep's dataset when the
    protocol's own settings score best on validation (nothing a tuner would change; the best test value of the
    sweep is given as a ceiling); ``("untested", why)`` on a dataset the chosen setting was not carried to (what it
    did on the sweep's). None without a sweep."""
    if sweep is None or not len(sweep):
        return None
    metric = f"full_{r['metric']}"
    same = sweep[(sweep["paper_model"] == r["model"]) & (sweep["loss_kind"] == r["loss_kind"])]
    if not len(same) or not same["chosen"].any() or same[metric].isna().all():
        return None
    chosen = same[same["chosen"]].iloc[0]
    home, setting = chosen["data"], chosen["setting"]
    swept = same[(same["data"] == home) & (same["seed"] == chosen["seed"]) & (same["role"] != "carried")]
    n = int(swept["setting"].ne(PROTOCOL_SETTING).sum())
    what = (f"tuned on validation over {n} one-at-a-time change{'s' * (n > 1)} to the protocol's settings "
            f"({_changes(swept)}; {home}, seed {int(chosen['seed'])})")
    if setting == PROTOCOL_SETTING:
        if r["dataset"] != home:
            return "untested", f"hyperparameters, swept on {home} only ({what}): the protocol's own settings scored best"
        return "ruled out", (f"hyperparameters ({what}, the protocol's own settings score best on validation; "
                             f"{_ceiling(swept, metric, r)})")
    mine = same[(same["data"] == r["dataset"]) & (same["setting"] == setting) & (same["role"] != "protocol")]
    if not len(mine):
        protocol = swept[swept["role"] == "protocol"]
        moved = (f" moves {r['metric']} from {protocol[metric].iloc[0]:.4f} to {chosen[metric]:.4f} "
                 f"({chosen[metric] / protocol[metric].iloc[0] - 1:+.0%})" if len(protocol) else "")
        return "untested", (f"hyperparameters, swept on {home} only ({what}): there the setting chosen on validation "
                            f"({setting}){moved}; not carried to {r['dataset']}")
    value = float(mine[metric].mean())
    std = float(mine[metric].std(ddof=1)) if len(mine) > 1 else np.nan
    # fewer seeds than the cell: judged against the cell's runs with those seeds, their spread against the sweep's
    _, own = _scoped_seeds(mine, r, frame)
    base = _same_seeds(mine, r, frame)
    other_std = r["reproduced_std"] if not len(own) else float(own["value"].std(ddof=1)) if len(own) > 1 else np.nan
    seeds = mine["seed"].nunique()
    scope = _seed_scope(mine, r, frame) or (f" ({seeds} seeds)" if seeds > 1 else "")
    how = (f"{what}, with {setting} chosen," if r["dataset"] == home
           else f"with the setting chosen on {home} ({setting}, the best on validation of {n} one-at-a-time "
                f"change{'s' * (n > 1)} to the protocol's settings there, seed {int(chosen['seed'])}),")
    outcome, words = _reaches(value, base, "hyperparameters", how, "with the protocol's",
                              tail=scope + _noise_words(value - base["reproduced"], std, other_std))
    # a change that moves the cell away from the reported value, the way its gap already goes, explains nothing
    # (judged on the cell, not on the seeds' own runs, which may sit on the other side of the reported value)
    if (value - base["reproduced"]) * (r["reported"] - r["reproduced"]) <= 0:
        outcome = "ruled out"
    if outcome == "ruled out":
        ceiling = f"; {_ceiling(swept, metric, r)}" if r["dataset"] == home else ""
        words = f"hyperparameters ({how} the cell reaches {value:.4f}{scope}{ceiling})"
    return outcome, words
