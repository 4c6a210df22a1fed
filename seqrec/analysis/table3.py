"""Table 3: against Table 2's reported numbers, SASRec+CCE vs BERT4Rec, the side-by-side table and the
sampled-metric check."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .labels import NOT_REPORTED, PAPER_LOSS


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
    """The paper's claim "SASRec with CCE beats BERT4Rec" on our runs (e.g. :func:`table3_frame`): one row per
    metric of :data:`CLAIM3_METRICS` (full ranking; sampled with our uniform negatives and with BERT4Rec's
    popularity negatives) with both values (means over seeds), ``seeds (CCE / BERT4Rec)`` (counts), ``difference``
    (CCE − BERT4Rec), ``beyond seed noise`` (as for Table 2's claims: ``|difference| > 2 ×`` the larger std when
    both have ≥ 2 seeds, else "one seed") and ``verdict``: *holds*, *does not hold*, or "not run" if either is
    missing (a run stored before the popularity-sampled metrics existed has none)."""
    from ..paper import _stats
    from .verdicts import _beyond_seed_noise

    rows = []
    sel = frame[(frame["data"] == dataset)] if len(frame) else frame
    for metric, name in CLAIM3_METRICS.items():
        (a, std_a, n_a), (b, std_b, n_b) = (np.nan, np.nan, 0), (np.nan, np.nan, 0)
        if len(sel):
            m = sel[sel["metric"] == metric]
            (a, std_a, n_a), (b, std_b, n_b) = (_stats(m[side].drop_duplicates("seed")) for side in (
                (m["paper_model"] == "SASRec") & (m["loss"] == "cce"), m["paper_model"] == "BERT4Rec"))
        ran = not (np.isnan(a) or np.isnan(b))
        diff = a - b if ran else np.nan
        rows.append({"metric": name, "SASRec (CCE)": a, "BERT4Rec": b, "seeds (CCE / BERT4Rec)": f"{n_a} / {n_b}",
                     "difference": diff, "beyond seed noise": _beyond_seed_noise(diff, std_a, std_b) if ran else "",
                     "verdict": ("holds" if diff > 0 else "does not hold") if ran else "not run"})
    return pd.DataFrame(rows).set_index("metric")


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
