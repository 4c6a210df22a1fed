"""The paper's reported numbers and their comparison with a hand-made reproduced frame."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from seqrec import paper
from seqrec.errors import SeqrecError


def row(data, model, kind, loss, metric, value, seed=42, variant="", negatives="", key=None, train_seconds=1.0):
    return {"data": data, "paper_model": model, "loss_kind": kind, "paper_loss": loss, "metric": metric,
            "value": value, "seed": seed, "variant": variant, "negatives": negatives, "ablation": "",
            "key": key or f"{data}-{model}-{kind}-{variant}-{negatives}-{seed}", "train_seconds": train_seconds}


def test_reported_tables():
    t2 = paper.reported("table2")
    assert list(t2.columns) == ["dataset", "metric", "model", "loss_kind", "loss", "value"] and len(t2) == 80
    beauty = t2[(t2.dataset == "Beauty") & (t2.model == "SASRec") & (t2.loss_kind == "improved") & (t2.metric == "HIT@10")]
    assert beauty["value"].tolist() == [0.0932]
    f1 = paper.reported("figure1")
    assert f1.loc[f1.loss == "CCE", "full_HIT@10"].item() == 0.0936 and f1["negatives"].tolist()[:2] == ["1", "10"]
    assert len(paper.reported("table3")) == 46
    with pytest.raises(SeqrecError, match="unknown reported table 'table9'; allowed: table2, table3, figure1"):
        paper.reported("table9")


def test_compare_table2_verdicts_not_run_and_seeds():
    rows = [
        # SASRec CCE on Beauty, reported HIT@10 0.0932: three seeds, mean 0.0900 (-3.4 %) -> reproduced
        row("Beauty", "SASRec", "improved", "CCE", "full_HIT@10", 0.0880, seed=42),
        row("Beauty", "SASRec", "improved", "CCE", "full_HIT@10", 0.0900, seed=43),
        row("Beauty", "SASRec", "improved", "CCE", "full_HIT@10", 0.0920, seed=44),
        # SASRec BCE on Beauty, reported HIT@10 0.0573: 0.0700 (+22 %) -> better; NDCG@10 0.0305: 0.0200 -> worse
        row("Beauty", "SASRec", "original", "BCE", "full_HIT@10", 0.0700),
        row("Beauty", "SASRec", "original", "BCE", "full_NDCG@10", 0.0200),
        # edge of the tolerance: reported GRU4Rec CE HIT@10 0.0343; 0.0343 * 1.10 -> reproduced; * 1.11 -> better
        row("Beauty", "GRU4Rec", "original", "CE", "full_HIT@10", 0.0343 * 1.0999),
        row("Beauty", "GRU4Rec", "original", "CE", "full_NDCG@10", 0.0185 * 1.11),
        # SR-GNN CCE: only the authors' variant is compared with the paper
        row("Beauty", "SR-GNN", "improved", "CCE", "full_HIT@10", 0.0652, variant="authors"),
        row("Beauty", "SR-GNN", "improved", "CCE", "full_HIT@10", 0.5, variant="causal"),
        # a metric the paper does not report is ignored
        row("Beauty", "SASRec", "improved", "CCE", "full_HIT@20", 0.2),
    ]
    out = paper.compare(pd.DataFrame(rows), "table2")
    assert len(out) == 80
    assert {"dataset", "model", "loss_kind", "metric", "reported", "reproduced", "reproduced_std", "n_seeds",
            "rel_diff", "verdict"} <= set(out.columns)

    def cell(model, kind, metric):
        return out[(out.dataset == "Beauty") & (out.model == model) & (out.loss_kind == kind) & (out.metric == metric)].iloc[0]

    c = cell("SASRec", "improved", "HIT@10")
    assert c.reproduced == pytest.approx(0.09) and c.reproduced_std == pytest.approx(0.002) and c.n_seeds == 3
    assert c.rel_diff == pytest.approx((0.09 - 0.0932) / 0.0932) and c.verdict == "reproduced"
    assert cell("SASRec", "original", "HIT@10").verdict == "better"
    assert cell("SASRec", "original", "NDCG@10").verdict == "worse"
    assert cell("SASRec", "original", "NDCG@10").rel_diff == pytest.approx(0.02 / 0.0305 - 1)
    assert cell("GRU4Rec", "original", "HIT@10").verdict == "reproduced"
    assert cell("GRU4Rec", "original", "NDCG@10").verdict == "better"
    sr = cell("SR-GNN", "improved", "HIT@10")
    assert sr.reproduced == pytest.approx(0.0652) and sr.n_seeds == 1 and math.isnan(sr.reproduced_std)
    assert sr.verdict == "reproduced"
    missing = cell("S3Rec", "improved", "HIT@10")
    assert missing.verdict == "not run" and math.isnan(missing.reproduced) and missing.n_seeds == 0
    assert (out.verdict == "not run").sum() == 80 - 6  # six reported cells have runs


def test_compare_counts_a_run_shared_by_two_cells_once():
    rows = [row("LastFM", "SASRec", "improved", "CCE", "full_HIT@10", 0.05, key="k1"),
            row("LastFM", "SASRec", "improved", "CCE", "full_HIT@10", 0.05, key="k1"),
            row("LastFM", "SASRec", "improved", "CCE", "full_HIT@10", 0.07, key="k2", seed=43)]
    out = paper.compare(pd.DataFrame(rows), "table2")
    c = out[(out.dataset == "LastFM") & (out.model == "SASRec") & (out.loss_kind == "improved") & (out.metric == "HIT@10")].iloc[0]
    assert c.n_seeds == 2 and c.reproduced == pytest.approx(0.06) and c.reproduced_std == pytest.approx(np.std([0.05, 0.07], ddof=1))


def test_compare_empty_frame_is_all_not_run():
    for name, n in (("table2", 80), ("table3", 46)):
        out = paper.compare(pd.DataFrame(), name)
        assert len(out) == n and set(out.verdict) == {"not run"} and out.reproduced.isna().all()


def test_compare_table3_and_figure1():
    rows = [row("Beauty", "SASRec", "improved", "CCE", "full_HIT@10", 0.0879),
            row("Beauty", "SASRec", "improved", "CCE", "sampled_HIT@10", 0.30),
            row("Beauty", "BERT4Rec", "original", "MLM (mask 0.2)", "full_HIT@10", 0.0344)]
    t3 = paper.compare(pd.DataFrame(rows), "table3")
    got = t3[t3.verdict != "not run"].set_index(["model", "metric"])["verdict"].to_dict()
    assert got[("SASRec (CCE)", "HIT@10")] == "reproduced"
    assert got[("SASRec (CCE)", "sampled HIT@10")] == "worse"  # 0.30 vs 0.3810
    assert got[("BERT4Rec (HuggingFace-based)", "HIT@10")] == "reproduced"
    assert got[("BERT4Rec-VAE", "HIT@10")] == "worse"  # 0.0344 vs 0.0612
    assert len(got) == 4 and (t3[t3.dataset == "ML-1M"].verdict == "not run").all()

    f1rows = [row("Beauty", "SASRec", "original", "BCE", "full_HIT@10", 0.0585, negatives="1", train_seconds=100.0),
              row("Beauty", "SASRec", "original", "BPR-max", "sampled_HIT@10", 0.01, negatives="10"),
              row("Beauty", "SASRec", "improved", "CCE", "full_HIT@10", 0.0936, negatives="all", train_seconds=1000.0)]
    f1 = paper.compare(pd.DataFrame(f1rows), "figure1")
    bce = f1[(f1.loss == "BCE") & (f1.negatives == "1")].set_index("metric")
    assert bce.loc["full_HIT@10", "verdict"] == "reproduced"
    assert bce.loc["train_seconds", "verdict"] == "better"  # 100 s vs 483.4 s: faster is better
    assert f1[(f1.loss == "CCE")].set_index("metric").loc["train_seconds", "verdict"] == "worse"
    zero = f1[(f1.loss == "BPR-max") & (f1.negatives == "10") & (f1.metric == "sampled_HIT@10")].iloc[0]
    assert zero.reported == 0.0 and zero.rel_diff == np.inf and zero.verdict == "better"
    assert (f1[(f1.loss == "BCE") & (f1.negatives == "10")].verdict == "not run").all()
    mlm = f1[f1.loss == "MLM (mask 0.2)"]
    assert set(mlm.metric) == {"full_HIT@10", "train_seconds"}


def test_format_comparison_prints_every_cell():
    out = paper.compare(pd.DataFrame([row("Beauty", "SASRec", "improved", "CCE", "full_HIT@10", v, seed=s)
                                      for s, v in ((42, 0.09), (43, 0.1))]), "table2")
    text = paper.format_comparison(out)  # side by side: one line per (dataset, model, loss) and both metrics
    lines = text.splitlines()
    assert len(lines) == 1 + 40 and "HIT@10 paper" in lines[0] and "NDCG@10 diff" in lines[0]
    beauty = [l for l in lines if "Beauty" in l and "SASRec" in l and "CCE" in l]
    assert len(beauty) == 1 and "0.0932" in beauty[0] and "0.0950 ± 0.0071" in beauty[0] and "+1.9% reproduced" in beauty[0]
    long = paper.format_comparison(paper.compare(pd.DataFrame(), "figure1")).splitlines()
    assert len(long) == 1 + len(paper.compare(pd.DataFrame(), "figure1")) and long[1].endswith("not run")
