"""S3-Rec pretraining recipes compared: per-seed finetuning results, the CCE-vs-BCE claim under each
recipe, and the pretraining samples per dataset."""
from __future__ import annotations

import pandas as pd

from .. import data as data_mod
from .nearness import _cell_rows, _moved, _reaches
from .verdicts import _beyond_seed_noise


def _pretraining_check(r, runs: pd.DataFrame, compared: pd.DataFrame | None = None) -> list[tuple[str, str]]:
    """An S3-Rec cell: the same cell pretrained with the S3-Rec authors' recipe (the ``pretraining`` ablation in
    ``runs``), one check per pretraining length run. ``("found", why)`` when its mean over the seeds run lands within
    the tolerance of the reported value, ``("partly", why)`` when outside but nearer than the cell or past the
    reported value from the cell's side (:func:`_nearness`), ``("ruled out", why)`` otherwise. With no such run on
    the cell's dataset, one ``("untested", why)``: what the recipe did to the same (model, loss, metric) on the
    datasets where it ran (``compared``: every Table 2 cell); no check for another model or when it ran nowhere."""
    own = _recipe_runs(r, runs)
    if own:
        return [_reaches(value, r, "pretraining", _authors_recipe(level, seeds), "with ours")
                for level, value, seeds in own]
    if r["model"] != "S3Rec" or compared is None:
        return []
    same = compared[(compared["model"] == r["model"]) & (compared["loss_kind"] == r["loss_kind"])
                    & (compared["metric"] == r["metric"]) & (compared["dataset"] != r["dataset"])
                    & (compared["verdict"] != "not run")]
    seen = [f"on {o['dataset']}, {_authors_recipe(level, seeds)} the same cell reaches {_moved(value, o, 'with ours')}"
            for _, o in same.iterrows() for level, value, seeds in _recipe_runs(o, runs)]
    if not seen:
        return []
    return [("untested", f"pretraining, run on {r['dataset']} with our recipe only: " + "; ".join(seen)
             + f"; the authors' recipe on {r['dataset']} is not run")]


_GAIN_COLUMNS = ["SASRec", "S3-Rec", "gain", "reported SASRec", "reported S3-Rec", "reported gain",
                "S3-Rec at the reported gain", "SASRec seeds", "S3-Rec seeds"]


def pretraining_gain(compared: pd.DataFrame) -> pd.DataFrame:
    """What S3-Rec's pretraining adds, ours against the paper's. S3-Rec finetunes SASRec's encoder under the same
    protocol and loss, so SASRec's cell is the same model without pretraining. Per (dataset, loss, metric) of Table 2
    (``compared``: :func:`seqrec.paper.compare`) with both cells run: our values (means over seeds) and the reported
    ones, ``gain`` = S3-Rec / SASRec − 1 and ``reported gain`` the same of the paper's, ``S3-Rec at the reported
    gain`` = our SASRec × (1 + reported gain), what our S3-Rec would reach if our pretraining added what the paper's
    does, and the seeds behind each (``SASRec seeds``, ``S3-Rec seeds``). Index ``dataset, loss, metric``."""
    key = ["dataset", "loss", "metric"]
    run = compared[compared["verdict"] != "not run"]
    sasrec = run[run["model"] == "SASRec"].set_index(key)
    s3rec = run[run["model"] == "S3Rec"].set_index(key)
    both = [k for k in s3rec.index if k in sasrec.index and sasrec.loc[k, "reproduced"] > 0]
    if not both:
        return pd.DataFrame(columns=_GAIN_COLUMNS)
    sasrec, s3rec = sasrec.loc[both], s3rec.loc[both]
    out = pd.DataFrame({"SASRec": sasrec["reproduced"], "S3-Rec": s3rec["reproduced"],
                        "reported SASRec": sasrec["reported"], "reported S3-Rec": s3rec["reported"]})
    out["gain"] = out["S3-Rec"] / out["SASRec"] - 1
    out["reported gain"] = out["reported S3-Rec"] / out["reported SASRec"] - 1
    out["S3-Rec at the reported gain"] = out["SASRec"] * (1 + out["reported gain"])
    out["SASRec seeds"], out["S3-Rec seeds"] = sasrec["n_seeds"].astype(int), s3rec["n_seeds"].astype(int)
    return out[_GAIN_COLUMNS]


def _pretraining_gain_check(r, compared: pd.DataFrame | None) -> tuple[str, str] | None:
    """An S3-Rec cell beside SASRec's with the same dataset, loss and metric (:func:`pretraining_gain`): had our
    pretraining added to our SASRec what the paper's adds to its SASRec, would the cell land near the reported
    value? ``("found" | "partly" | "ruled out", why)`` by :func:`seqrec.analysis.nearness._reaches`, so the gap is
    placed in the pretraining stage (found), partly there, or in the finetuning (ruled out, SASRec's own gap);
    None for another model or when SASRec's cell is not run."""
    if r["model"] != "S3Rec" or compared is None:
        return None
    same = compared[(compared["dataset"] == r["dataset"]) & (compared["loss"] == r["loss"])
                    & (compared["metric"] == r["metric"])]
    gain = pretraining_gain(same)
    if not len(gain):
        return None
    g = gain.iloc[0]
    seeds = int(g["SASRec seeds"])
    what = (f"with our pretraining adding to SASRec (the same encoder finetuned the same way without pretraining: "
            f"{g['SASRec']:.4f} over {seeds} seed{'s' * (seeds > 1)}, {g['SASRec'] / g['reported SASRec'] - 1:+.0%} "
            f"from its reported {g['reported SASRec']:.4f}) what the paper's adds, {g['reported gain']:+.0%} "
            f"instead of our {g['gain']:+.0%},")
    return _reaches(g["S3-Rec at the reported gain"], r, "pretraining stage", what, "with ours",
                    ruled="the pretraining stage")


def _recipe_runs(r, runs: pd.DataFrame) -> list[tuple[str, float, int]]:
    """``(pretraining, mean over seeds, seeds)`` per pretraining length of the ``pretraining`` ablation's runs of
    the compared S3-Rec cell ``r`` in ``runs``; empty for another model or when none is stored."""
    if r["model"] != "S3Rec" or not len(runs) or "pretraining" not in runs or "ablation" not in runs:
        return []
    p = _cell_rows(r, runs)
    p = p[p["ablation"] == "pretraining"]
    return [(str(level), g.groupby("seed")["value"].mean().mean(), g["seed"].nunique())
            for level, g in p.groupby("pretraining")]


def _authors_recipe(level: str, seeds: int) -> str:
    """The words for the S3-Rec authors' recipe at ``level`` (``"<recipe>, <epochs> epochs"``) over ``seeds`` seeds."""
    recipe, epochs = level.split(", ", 1)
    return (f"pretrained with the S3-Rec authors' recipe ({recipe}: every prefix a sample, pairwise MIP and SP, "
            f"summed losses; {epochs}; {seeds} seed{'s' * (seeds > 1)})")


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
    from .. import paper

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
    from .. import pretrain

    rows = []
    for name in datasets:
        windows = pretrain.training_windows(data_mod.load(name), max_len)
        ours, prefixes = len(windows), sum(len(w) for w in windows)  # one sample per window, or one per prefix
        rows.append({"data": name, "seqrec": ours, "s3rec": prefixes, "ratio": prefixes / ours})
    return pd.DataFrame(rows, columns=["data", "seqrec", "s3rec", "ratio"]).set_index("data")


_FINETUNING_COLUMNS = ["data", "paper_loss", "paper_model", "seed", "epoch", "value"]


def finetuning_curves(runs: pd.DataFrame, monitor: str = "valid_NDCG@20") -> pd.DataFrame:
    """S3-Rec's finetuning against SASRec's training, epoch by epoch: the stored ``monitor`` curves of the Table 2
    protocol's runs (Table 2 cells and their ``seeds`` reruns in ``runs``, a tidy frame such as
    :func:`seqrec.analysis.table2_frame`) of both models, on each (data, loss) where S3-Rec has a run. Tidy:
    ``data, paper_loss, paper_model, seed, epoch, value``; a run stored by two grids counts once."""
    from .. import results

    if not len(runs):
        return pd.DataFrame(columns=_FINETUNING_COLUMNS)
    sel = runs[runs["model"].isin(["s3rec", "sasrec"]) & runs["ablation"].fillna("").isin(["", "seeds"])]
    pairs = set(map(tuple, sel.loc[sel["model"] == "s3rec", ["data", "paper_loss"]].drop_duplicates().values))
    sel = sel[[(d, l) in pairs for d, l in zip(sel["data"], sel["paper_loss"])]].drop_duplicates("path")
    rows, seen = [], set()
    for path, data, loss, model in zip(sel["path"], sel["data"], sel["paper_loss"], sel["paper_model"]):
        for run in results.load_runs([path]):
            if run["key"] in seen:
                continue
            seen.add(run["key"])
            rows += [{"data": data, "paper_loss": loss, "paper_model": model, "seed": run["config"]["seed"],
                      "epoch": point["epoch"], "value": point[monitor]}
                     for point in run.get("curve", []) if monitor in point]
    return pd.DataFrame(rows, columns=_FINETUNING_COLUMNS)


def head_start(curves: pd.DataFrame, early: int = 10) -> pd.DataFrame:
    """Per (data, paper_loss, paper_model) of :func:`finetuning_curves`: the monitor after epoch 1 and after epoch
    ``early`` (``epoch 1``, ``epoch <early>``; NaN for a run stopped before), its ``best``, ``best epoch`` and
    ``epochs run``, each the mean over the ``seeds`` run."""
    columns = ["seeds", "epoch 1", f"epoch {early}", "best", "best epoch", "epochs run"]
    if not len(curves):
        return pd.DataFrame(columns=columns)
    rows = []
    for (data, loss, model, seed), c in curves.groupby(["data", "paper_loss", "paper_model", "seed"]):
        at = c.set_index("epoch")["value"]
        rows.append({"data": data, "paper_loss": loss, "paper_model": model, "epoch 1": at.get(1),
                     f"epoch {early}": at.get(early), "best": at.max(), "best epoch": at.idxmax(),
                     "epochs run": at.index.max()})
    per_seed = pd.DataFrame(rows).astype({"epoch 1": float, f"epoch {early}": float})
    out = per_seed.groupby(["data", "paper_loss", "paper_model"]).mean()
    out.insert(0, "seeds", per_seed.groupby(["data", "paper_loss", "paper_model"]).size())
    return out[columns]


def head_start_in_words(table: pd.DataFrame, monitor: str = "validation NDCG@20") -> str:
    """One paragraph on :func:`head_start`: on how many (data, loss) pairs S3-Rec starts ahead of SASRec (epoch 1)
    and on how many SASRec's best passes S3-Rec's (the head start does not last) or not (it lasts), with the values;
    "" without a pair that has both models."""
    pairs = []
    for (data, loss), g in table.groupby(level=["data", "paper_loss"]):
        models = g.droplevel(["data", "paper_loss"])
        if {"S3Rec", "SASRec"} <= set(models.index):
            pairs.append((f"{data} {loss}", models.loc["S3Rec"], models.loc["SASRec"]))
    if not pairs:
        return ""
    ahead = [f"{name} {s['epoch 1']:.4f} against {b['epoch 1']:.4f}" for name, s, b in pairs
             if s["epoch 1"] > b["epoch 1"]]
    def best(name, first, second):
        return (f"{name} {first['best']:.4f} (epoch {first['best epoch']:.0f}) against {second['best']:.4f} "
                f"(epoch {second['best epoch']:.0f})")
    passed = [best(name, b, s) for name, s, b in pairs if b["best"] > s["best"]]   # SASRec's first
    held = [best(name, s, b) for name, s, b in pairs if not b["best"] > s["best"]]  # S3-Rec's first
    words = (f"After one epoch, S3-Rec's {monitor} is ahead of SASRec's on {len(ahead)} of the {len(pairs)} "
             f"(dataset, loss) pairs with both run" + (f" ({'; '.join(ahead)})" if ahead else "") + ". ")
    words += f"SASRec's best passes S3-Rec's on {len(passed)} of them" + (f" ({'; '.join(passed)})" if passed else "")
    if not held:
        return words + ": the pretraining's head start does not last."
    if not passed:
        return words + ": the head start lasts."
    return (words + f"; S3-Rec's best stays ahead on {len(held)} ({'; '.join(held)}): the head start lasts on "
            f"{len(held)} of the {len(pairs)} pairs.")
