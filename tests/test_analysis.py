"""seqrec.analysis against hand-computed values, closed-form gradients and the loss registry."""
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec import analysis, experiments, losses, pretrain, results
from seqrec.config import TrainConfig
from seqrec.data import SequenceData
from seqrec.errors import SeqrecError


# --------------------------------------------------------------------------- the package's layout
def test_every_public_name_of_a_submodule_is_exported_once():
    """Notebooks call ``analysis.<name>``: every public function or constant a ``seqrec.analysis`` submodule
    defines must be that very object there, listed in ``__all__``, and defined by one submodule only."""
    import ast
    import importlib
    import inspect
    import pkgutil

    owners: dict[str, str] = {}
    for info in pkgutil.iter_modules(analysis.__path__):
        module = importlib.import_module(f"seqrec.analysis.{info.name}")
        for node in ast.parse(inspect.getsource(module)).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            else:
                continue
            for name in (n for n in names if not n.startswith("_")):
                assert name not in owners, f"{name} defined in both {owners[name]} and {info.name}"
                owners[name] = info.name
                assert getattr(analysis, name, None) is getattr(module, name), f"analysis.{name} is not {info.name}'s"
    assert sorted(owners) == sorted(analysis.__all__)
    assert owners["claims"] == "verdicts" and owners["VERDICTS"] == "labels"


# --------------------------------------------------------------------------- labels and banners
def test_loss_label():
    assert analysis.loss_label("bce", 10) == "BCE-10"
    assert analysis.loss_label("top1_max", 100.0) == "TOP1-max-100"
    assert analysis.loss_label("cce", 1) == "CCE"
    assert analysis.loss_label("mlm", 1, 0.2) == "MLM (mask 0.2)"
    assert analysis.loss_label("ce") == "CE"
    frame = pd.DataFrame({"loss": ["bpr_max", "cce", "mlm"], "num_negatives": [100, 1, 1], "mask_prob": [0.2, 0.2, 0.5]},
                         index=[7, 3, 5])
    assert analysis.loss_labels(frame).to_dict() == {7: "BPR-max-100", 3: "CCE", 5: "MLM (mask 0.5)"}


def test_profile_banner_is_loud_only_for_smoke():
    assert "NOT results" in analysis.profile_banner("smoke")
    assert "NOT results" not in analysis.profile_banner("paper")
    assert "paper" in analysis.profile_banner("paper")
    assert "independent of the profile" in analysis.profile_banner("smoke", data_only=True)


# --------------------------------------------------------------------------- gradient signal
@pytest.mark.parametrize("name", analysis.NEGATIVE_LOSSES)
def test_score_loss_equals_registered_loss(name):
    torch.manual_seed(0)
    hidden, emb = torch.randn(3, 5, 4), torch.randn(12, 4)
    targets = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 7, 8, 9, 11]])
    opts = losses.LossOptions(num_negatives=6, generator=torch.Generator().manual_seed(3))
    expected = losses.get(name).fn(hidden, emb, targets, opts)
    # the same negatives, drawn independently with the same generator state
    mask = targets > 0
    h, t = hidden[mask], targets[mask]
    neg = losses.sample_negatives(t, 11, 6, torch.Generator().manual_seed(3))
    got = analysis.score_loss(name, (h * emb[t]).sum(-1), torch.einsum("pd,pkd->pk", h, emb[neg]))
    torch.testing.assert_close(got, expected)


def test_negative_gradients_closed_form():
    pos = torch.tensor([1.0, -0.5])
    neg = torch.tensor([[0.0, 2.0, -3.0], [1.0, -1.0, 0.5]])
    k = 3
    sig = torch.sigmoid
    # BPR: d/ds_j of -(1/k) Σ log σ(s_t - s_j) = σ(s_j - s_t) / k
    torch.testing.assert_close(analysis.negative_gradients("bpr", pos, neg), sig(neg - pos[:, None]) / k)
    # TOP1: d/ds_j of (1/k) Σ σ(s_j - s_t) + σ(s_j²) = (σ'(s_j - s_t) + 2 s_j σ'(s_j²)) / k
    d = sig(neg - pos[:, None])
    q = sig(neg ** 2)
    torch.testing.assert_close(analysis.negative_gradients("top1", pos, neg),
                               ((d * (1 - d) + 2 * neg * q * (1 - q)) / k).abs())


def test_gradient_share_counts_negatives_above_threshold():
    pos = torch.tensor([0.0])
    neg = torch.tensor([[-20.0, 0.0, 20.0, -1.0]])  # BPR gradients σ(s_j)/4: ~5e-10, 0.125, 0.25, 0.067
    assert analysis.gradient_share("bpr", pos, neg, threshold=1e-3) == pytest.approx(0.75)
    assert analysis.gradient_share("bpr", pos, neg, threshold=0.1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no score form"):
        analysis.score_loss("cce", pos, neg)


def _tiny_dataset(users=40, items=30, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [list(rng.integers(1, items + 1, size=int(rng.integers(4, 14)))) for _ in range(users)]
    return SequenceData("tiny", list(range(1, users + 1)), [[int(i) for i in s] for s in seqs], items)


def _tiny_config(loss, **kw):
    return TrainConfig(data="tiny.txt", model="sasrec", loss=loss, max_len=12, hidden_size=8, num_layers=1, num_heads=1,
                       batch_size=16, device="cpu", **kw)


def test_gradient_signal_runs_and_is_bounded():
    out = analysis.gradient_signal(_tiny_config("bpr", num_negatives=5), epochs=2, dataset=_tiny_dataset(), threshold=0.0)
    assert list(out.epoch) == [0, 1, 2]
    assert set(out.loss) == {"BPR-5"}
    assert (out.share == 1.0).all()  # every BPR gradient σ(·)/k is strictly positive
    out = analysis.gradient_signal(_tiny_config("top1", num_negatives=5), epochs=1, dataset=_tiny_dataset(), threshold=1e-3)
    assert ((out.share >= 0) & (out.share <= 1)).all() and (out.mean_grad > 0).all()


def test_gradient_signal_in_words_reads_the_rows():
    rows = pd.DataFrame({"loss": ["BPR-10"] * 3 + ["TOP1-10"] * 2, "epoch": [0, 1, 30, 0, 30],
                         "share": [1.0, 0.99, 0.94, 0.999, 0.2], "mean_grad": [0.05, 0.04, 0.02, 0.025, 0.02]})
    words = analysis.gradient_signal_in_words(rows)
    assert words == ("After 30 epochs: BPR-10: 94.0% of its negatives above 0.001 (epoch 0: 100.0%), mean |gradient| "
                     "-60%; TOP1-10: 20.0% of its negatives above 0.001 (epoch 0: 99.9%), mean |gradient| -20%. "
                     "Most sampled negatives of TOP1-10 fall below the threshold: they stop teaching.")
    alive = analysis.gradient_signal_in_words(rows[rows.loss == "BPR-10"])
    assert alive.endswith("at least 94% of them, for every loss, still pass the threshold; what shrinks as the model "
                          "learns is the size of each one's gradient.")
    assert analysis.gradient_signal_in_words(rows.iloc[:0]) == ""


# --------------------------------------------------------------------------- by sequence length
def test_metric_by_length_hand_computed():
    ranks = [0, 1, 10, 3]  # 0-based
    lengths = [3, 4, 8, 60]
    out = analysis.metric_by_length(ranks, lengths, k=10).set_index("length")
    assert list(out.index) == ["1–5", "6–10", "11–20", "21–50", ">50"]
    assert out.loc["1–5", "users"] == 2
    assert out.loc["1–5", "HIT@10"] == pytest.approx(1.0)
    assert out.loc["1–5", "NDCG@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert out.loc["6–10", "HIT@10"] == 0.0 and out.loc["6–10", "NDCG@10"] == 0.0
    assert out.loc[">50", "NDCG@10"] == pytest.approx(1 / math.log2(5))
    assert out.loc["11–20", "users"] == 0 and np.isnan(out.loc["11–20", "HIT@10"])


def test_ranks_by_length_covers_every_user():
    ds = _tiny_dataset()
    out = analysis.ranks_by_length(_tiny_config("cce"), epochs=1, dataset=ds)
    assert out.users.sum() == ds.num_users
    assert set(out.loss) == {"CCE"}
    assert ((out["HIT@10"].dropna() >= 0) & (out["HIT@10"].dropna() <= 1)).all()


# --------------------------------------------------------------------------- tables
def _compared():
    rows = []
    for model, o, i, ro, ri in [("SASRec", 0.02, 0.03, 0.02, 0.04), ("GRU4Rec", np.nan, np.nan, 0.01, 0.02)]:
        for kind, rep, val in (("original", ro, o), ("improved", ri, i)):
            rows.append({"dataset": "LastFM", "metric": "HIT@10", "model": model, "loss_kind": kind, "reported": rep,
                         "reproduced": val})
    c = pd.DataFrame(rows)
    c["rel_diff"] = (c.reproduced - c.reported) / c.reported
    c["verdict"] = ["reproduced", "worse", "not run", "not run"]
    return c


def test_table2_layout_improvement():
    t = analysis.table2_layout(_compared())
    assert t.loc[("LastFM", "HIT@10"), ("SASRec", "improv. %")] == pytest.approx(50.0)
    assert np.isnan(t.loc[("LastFM", "HIT@10"), ("GRU4Rec", "improv. %")])
    r = analysis.table2_layout(_compared(), "reported")
    assert r.loc[("LastFM", "HIT@10"), ("GRU4Rec", "improv. %")] == pytest.approx(100.0)


def test_verdict_counts_lists_every_verdict():
    v = analysis.verdict_counts(_compared())
    assert list(v.index) == list(analysis.VERDICTS)
    assert list(v.cells) == [1, 0, 1, 2]
    assert v.loc["reproduced", "share of cells run"] == pytest.approx(0.5)
    assert np.isnan(v.loc["not run", "share of cells run"])


def test_not_run_reasons():
    c = _compared()
    planned = pd.DataFrame({"data": ["LastFM"], "paper_model": ["GRU4Rec"], "loss_kind": ["original"]})
    r = analysis.not_run_reasons(c, planned, "smoke", "none")
    assert list(r[:2]) == ["", ""]
    assert "not in the results store" in r[2] and "train=none" in r[2]
    assert "compute" in analysis.not_run_reasons(c, planned, "paper", "none")[2]
    assert "not part of the smoke profile's grid" in r[3]


def test_not_run_by_display_counts_each_reason_and_names_missing_datasets():
    """Cells of a dataset the project does not have get that reason (not "not part of the grid"); each display's
    not-run cells are counted by reason, run cells are not counted, and a display with every cell run adds no row."""
    c = _compared()
    planned = pd.DataFrame({"data": ["LastFM"], "paper_model": ["GRU4Rec"], "loss_kind": ["original"]})
    t3 = pd.DataFrame({"dataset": ["ML-1M", "ML-1M", "Steam", "Beauty"], "model": ["SASRec (BCE)"] * 4,
                       "loss_kind": ["original"] * 4, "verdict": ["not run", "not run", "not run", "better"]})
    t3_planned = pd.DataFrame({"data": ["Beauty"], "paper_model": ["SASRec (BCE)"], "loss_kind": ["original"]})
    done = c[c.verdict != "not run"]
    table = analysis.not_run_by_display({"Table 2": (c, planned), "Table 3": (t3, t3_planned), "Figure 1": (done, planned)},
                                        "smoke", "none")
    assert list(table.index.get_level_values("display")) == ["Table 2", "Table 2", "Table 3", "Table 3"]
    assert list(table.cells) == [1, 1, 2, 1] and table.cells.sum() == 5
    reasons = list(table.index.get_level_values("reason"))
    assert "not in the results store" in reasons[0] and "not part of the smoke profile's grid" in reasons[1]
    assert reasons[2].startswith("the paper's ML-1M data is not one of the five datasets this project has")
    assert "LastFM" in reasons[3] and reasons[3].startswith("the paper's Steam data")
    empty = analysis.not_run_by_display({"Figure 1": (done, planned)}, "smoke", "none")
    assert empty.empty and list(empty.columns) == ["cells"]


def test_not_run_reasons_say_how_far_training_has_got():
    """A planned cell with a checkpoint gets its progress in the reason, matched on the number of negatives too."""
    compared = pd.DataFrame({"dataset": ["Beauty"] * 3, "model": ["SASRec"] * 3, "loss_kind": ["original"] * 3,
                             "negatives": ["1000", "100", "1"], "verdict": ["not run", "not run", "reproduced"]})
    planned = pd.DataFrame({"data": ["Beauty"] * 3, "paper_model": ["SASRec"] * 3, "loss_kind": ["original"] * 3,
                            "negatives": ["1000", "100", "1"], "progress": ["55 of 200 epochs done (parked checkpoint)", "", ""]})
    r = analysis.not_run_reasons(compared, planned, "paper", "none")
    assert r[0].endswith("; so far 55 of 200 epochs done (parked checkpoint), resumed there by the next run")
    assert r[0].startswith("in the paper grid, not in the results store yet: compute")
    assert "so far" not in r[1] and r[2] == ""


def _run(metric_value, **cfg):
    base = dict(data="LastFM", model="sasrec", loss="cce", seed=42, num_negatives=1, mask_prob=0.2, max_users=None,
                exclude_seen="-inf", ties="pessimistic", variant=None, train_seconds=10.0, peak_memory_mb=100.0,
                metric="full_NDCG@10", value=metric_value, paper_model="SASRec")
    base.update(cfg)
    return base


def test_paired_matches_runs_differing_in_one_setting():
    f = pd.DataFrame([_run(0.05), _run(0.04, exclude_seen="zero"), _run(0.03, loss="bce"),
                      _run(0.02, loss="bce", exclude_seen="zero", seed=43)])  # no partner: different seed
    p = analysis.paired(f, "exclude_seen", "full_NDCG@10")
    assert len(p) == 1
    assert p["-inf"].iloc[0] == 0.05 and p["zero"].iloc[0] == 0.04
    assert list(p.index.names) == ["data", "model", "loss"]  # constant descriptors dropped
    assert "seed" in analysis.paired(f, "exclude_seen", "full_NDCG@10", compact=False).index.names


def test_seed_summary_and_noise():
    f = pd.DataFrame([_run(v, seed=s, key=f"c{s}") for v, s in ((0.05, 1), (0.06, 2), (0.07, 3))]
                     + [_run(v, loss="bce", seed=s, key=f"b{s}") for v, s in ((0.02, 1), (0.03, 2), (0.025, 3))]
                     + [_run(0.07, seed=3, key="c3", ablation="seeds")])  # the same run shown by a second grid
    s = analysis.seed_summary(f, "full_NDCG@10")
    assert s.loc[("LastFM", "sasrec", "cce", ""), "mean"] == pytest.approx(0.06)
    assert s.loc[("LastFM", "sasrec", "cce", ""), "std"] == pytest.approx(0.01)
    assert s.loc[("LastFM", "sasrec", "bce", ""), "seeds"] == 3
    n = analysis.improvement_vs_noise(s).iloc[0]
    assert n["difference"] == pytest.approx(0.035) and n["max std"] == pytest.approx(0.01)
    assert bool(n["exceeds 2 std"])  # 0.035 > 2 × 0.01
    # one seed of BCE: no test, even though CCE's seeds have a std (as for Table 2's claims)
    one = analysis.improvement_vs_noise(analysis.seed_summary(f[(f.loss == "cce") | (f.seed == 1)], "full_NDCG@10"))
    assert one.iloc[0]["min seeds"] == 1 and pd.isna(one.iloc[0]["max std"]) and pd.isna(one.iloc[0]["exceeds 2 std"])


def test_figure1_points_labels_and_seed_average():
    f = pd.DataFrame([_run(0.1, metric="full_HIT@10", loss="bce", num_negatives=10, seed=1, train_seconds=4.0),
                      _run(0.2, metric="full_HIT@10", loss="bce", num_negatives=10, seed=2, train_seconds=6.0),
                      _run(0.3, metric="full_HIT@10", loss="cce")])
    reported = pd.DataFrame({"loss": ["BCE", "CE"], "negatives": ["10", "all"], "full_HIT@10": [0.07, 0.05],
                             "train_seconds": [500.0, 200.0], "peak_gpu_mem_mb": [300, 280]})
    pts = analysis.figure1_points(f, reported)
    wide = analysis.side_by_side(pts)
    assert wide.loc["BCE-10", "reproduced"] == pytest.approx(0.15)
    assert wide.loc["BCE-10", "reported"] == pytest.approx(0.07)
    assert np.isnan(wide.loc["CE", "reproduced"]) and wide.loc["CCE", "reported"] == "not reported"
    assert analysis.side_by_side(pts, "train_seconds").loc["BCE-10", "reproduced"] == pytest.approx(5.0)
    assert analysis.side_by_side(pts, "paced_seconds").loc["BCE-10", "reproduced"] == pytest.approx(5.0)  # no curves
    assert analysis.side_by_side(pts, "paced_seconds").loc["BCE-10", "reported"] == "not reported"  # a total only
    no_memory = pts.assign(memory_mb=np.where(pts["label"] == "CE", np.nan, pts["memory_mb"]))
    assert analysis.side_by_side(no_memory, "memory_mb").loc["CE", "reported"] == "not reported"  # not dropped


def test_figure1_paced_time_is_epochs_times_the_median_epoch():
    """A run whose third epoch shared the CPU (980 s instead of 10): its total is 1020 s, its pace 10 s an epoch,
    so the plotted time is 5 × 10 = 50 s; a record without a curve keeps its total."""
    from seqrec import results

    slow = {"curve": [{"epoch": e, "elapsed": t} for e, t in enumerate((10.0, 20.0, 1000.0, 1010.0, 1020.0), 1)]}
    assert results.median_epoch_seconds(slow) == pytest.approx(10.0)
    assert results.median_epoch_seconds({"curve": []}) is None
    f = pd.DataFrame([_run(0.1, metric="full_HIT@10", loss="ce", train_seconds=1020.0, epochs_run=5,
                           median_epoch_seconds=results.median_epoch_seconds(slow)),
                      _run(0.2, metric="full_HIT@10", loss="cce", train_seconds=70.0, epochs_run=7,
                           median_epoch_seconds=None)])
    pts = analysis.figure1_points(f, pd.DataFrame(columns=["loss", "negatives", "train_seconds", "peak_gpu_mem_mb"]))
    paced = pts.set_index("label")["paced_seconds"]
    assert paced["CE"] == pytest.approx(50.0) and paced["CCE"] == pytest.approx(70.0)
    assert pts.set_index("label").loc["CE", "train_seconds"] == pytest.approx(1020.0)


def test_table3_side_by_side():
    f = pd.DataFrame([_run(0.08, metric="full_HIT@10", data="Beauty"), _run(0.3, metric="sampled_HIT@10", data="Beauty"),
                      _run(0.9, metric="full_HIT@10", data="LastFM")])
    rep = pd.DataFrame({"dataset": ["Beauty", "Beauty", "ML-1M"], "metric": ["HIT@10", "sampled HIT@10", "HIT@10"],
                        "system": ["SASRec (CCE)", "SASRec (CCE)", "SASRec (CCE)"], "value": [0.0879, 0.381, 0.28]})
    t = analysis.table3_side_by_side(f, rep)
    assert t.loc["SASRec (CCE) [seqrec]", "HIT@10"] == pytest.approx(0.08)
    assert t.loc["SASRec (CCE) [seqrec]", "sampled HIT@10"] == pytest.approx(0.3)
    assert t.loc["SASRec (CCE)", "sampled HIT@10"] == pytest.approx(0.381)
    assert len(t) == 2 and t.loc["SASRec (CCE)", "NDCG@10"] == "not reported"
    assert np.isnan(t.loc["SASRec (CCE) [seqrec]", "NDCG@10"])  # ours, not run: NaN, shown as "not run"


def test_time_curves_from_stored_results(tmp_path):
    cfg = TrainConfig(loss="bce", num_negatives=10).to_dict()
    run = {"config": cfg, "metrics": {"full_HIT@10": 0.1}, "provenance": {},
           "curve": [{"epoch": 1, "train_loss": 1.0, "elapsed": 2.0, "valid_NDCG@10": 0.01},
                     {"epoch": 2, "train_loss": 0.9, "elapsed": 4.5, "valid_NDCG@10": 0.02},
                     {"epoch": 3, "train_loss": 0.8, "elapsed": 40.0, "valid_NDCG@10": 0.03}]}  # a shared epoch
    path = results.save(run, tmp_path / "r.json")
    out = analysis.time_curves(pd.DataFrame({"path": [str(path), str(path)]}))
    assert list(out.elapsed) == [2.0, 4.5, 40.0] and list(out.value) == [0.01, 0.02, 0.03]
    assert list(out.paced) == [2.5, 5.0, 7.5] and set(out.label) == {"BCE-10"}  # steps 2, 2.5, 35.5: median 2.5
    assert analysis.time_curves(pd.DataFrame(columns=["path"])).empty


def test_time_to_reach_finds_the_first_epoch_at_the_level_per_loss_averaging_seeds():
    def curve(label, seed, values, step):
        return [{"label": label, "seed": seed, "epoch": e, "elapsed": e * step + 1, "paced": e * step, "value": v}
                for e, v in enumerate(values, start=1)]
    curves = pd.DataFrame(curve("CCE", 1, [0.02, 0.05, 0.07], 10.0) + curve("CCE", 2, [0.02, 0.04, 0.07], 10.0)
                          + curve("BPR-10", 1, [0.03, 0.04, 0.05, 0.06], 4.0)  # fewer seconds, more epochs
                          + curve("BCE-1", 1, [0.01, 0.02, 0.03, 0.04], 5.0))
    reach = analysis.time_to_reach(curves, 0.04)
    # CCE's seeds average to 0.02, 0.045, 0.07: epoch 2 (20 s); BPR-10 epoch 2 (8 s); BCE-1 epoch 4 (20 s)
    assert list(reach.index) == ["BPR-10", "CCE", "BCE-1"]
    assert reach.loc["CCE", "epoch"] == 2 and reach.loc["CCE", "paced"] == 20.0 and reach.loc["CCE", "elapsed"] == 21.0
    # the mean over seeds decides, not any one seed (0.05) nor the worst (0.04)
    assert [analysis.time_to_reach(curves, lvl).loc["CCE", "epoch"] for lvl in (0.044, 0.046)] == [2, 3]
    assert reach.loc["BPR-10", "paced"] == 8.0 and reach.loc["BCE-1", "epoch"] == 4 and reach.loc["CCE", "best"] == 0.07
    words = analysis.time_to_reach_in_words(reach, 0.04, "the level")
    assert words.startswith("CCE reaches the level (0.0400) after 2 epochs, 20 s at its median epoch. Of the 2 other")
    assert "sooner in time (1): BPR-10 (2 epochs, 8 s)" in words and "in fewer epochs (0): none" in words
    assert "later (1): BCE-1 (4 epochs, 20 s)" in words and "never" not in words
    assert words.endswith(". CCE rises fastest to this level: in epochs, holds; in seconds on this device, does not "
                          "hold (1 other loss sooner).")
    high = analysis.time_to_reach(curves, 0.065)  # only CCE gets there
    assert high.index[0] == "CCE" and high.loc[["BPR-10", "BCE-1"], "epoch"].isna().all()
    assert high.loc["BCE-1", "epochs_run"] == 4 and "never within their epochs (2): BPR-10, BCE-1" in \
        analysis.time_to_reach_in_words(high, 0.065, "x")
    assert analysis.time_to_reach_in_words(high, 0.065, "x").endswith(
        "CCE rises fastest to this level: in epochs, holds; in seconds on this device, holds.")
    never = analysis.time_to_reach_in_words(analysis.time_to_reach(curves, 0.08), 0.08, "x")
    assert "CCE never reaches x (0.0800) in its 3 epochs (best 0.0700)" in never
    assert never.endswith("CCE rises fastest to this level: does not hold, it never gets there.")
    slow = analysis.time_to_reach(curves, 0.03)  # BPR-10 at epoch 1 (4 s), CCE at 2 (20 s), BCE-1 at 3 (15 s)
    assert analysis.time_to_reach_in_words(slow, 0.03, "x").endswith(
        "in epochs, does not hold (1 other loss in fewer epochs); in seconds on this device, does not hold (2 other "
        "losses sooner).")
    assert analysis.reach_levels(curves) == {"the best of BCE-1, SASRec's original loss": 0.04,
                                             "the best of BPR-10, the strongest other loss": 0.06}
    assert list(analysis.reach_levels(curves[curves.label != "BCE-1"]).values()) == [0.06]
    assert analysis.reach_levels(curves[curves.label == "CCE"]) == {} == analysis.reach_levels(curves.iloc[:0])
    assert analysis.time_to_reach(curves.iloc[:0], 0.1).empty
    assert analysis.time_to_reach_in_words(reach, 0.04, "x", focus="CE") == ""


def test_styled_writes_not_run_for_missing_values():
    html = analysis.styled(pd.DataFrame({"a": [0.5, np.nan], "b": pd.Series([0.016400, "x"], dtype=object)}), "cap").to_html()
    assert "not run" in html and "0.5000" in html and "0.0164<" in html and ">x<" in html and "cap" in html
    note = analysis.table_or_reason(pd.DataFrame(), "Ties", "no such runs")
    assert "Not run: Ties" in note.data and "no such runs" in note.data


def test_styled_column_formats_leave_the_other_columns_at_four_decimals():
    frame = pd.DataFrame({"hit": [0.0600551, np.nan], "rel": [0.0312, -0.1155], "users": [157.0, np.nan]})
    html = analysis.styled(frame, "cap", formats={"rel": "{:+.1%}", "users": "{:,.0f}"}).to_html()
    assert ">0.0601<" in html and "0.060055" not in html and "not run" in html  # hit: the default 4 decimals
    assert ">+3.1%<" in html and ">-11.6%<" in html and ">157<" in html and "–" in html
    # the pitfall the parameter exists for: a bare Styler.format(dict) resets the other columns
    assert "0.060055" in analysis.styled(frame, "cap").format({"rel": "{:+.1%}"}).to_html()


def test_styled_wraps_only_long_row_labels():
    reason = "in the paper grid, not in the results store yet: compute on a 2-core CPU"
    frame = pd.DataFrame({"configurations": ["BCE-500, BCE-1000", "CCE"]}, index=[reason, "BCE-1"])
    html = analysis.styled(frame, "cap").to_html()
    ids = re.findall(r'<th id="(T_\w+_level0_row(\d))"[^>]*>([^<]*)</th>', html)
    assert {row: text for _, row, text in ids} == {"0": reason, "1": "BCE-1"}
    styled_rows = {m.group(1) for m in re.finditer(r"#T_\w+_level0_row(\d) \{[^}]*white-space: normal", html)}
    assert styled_rows == {"0"}  # the 73-character reason wraps, the 5-character label keeps the CSS default


def test_styled_escapes_text_so_a_reason_with_a_less_than_sign_is_not_markup():
    reason = "inconsistent (sampled HIT@10 0.0105 < full 0.0160; <b>bold</b> & co)"
    frame = pd.DataFrame({"reason <why>": [reason], "rel": [0.5]}, index=["TOP1-100 <k>"])
    html = analysis.styled(frame, "a < b", formats={"rel": "{:+.1%}"}).to_html()
    assert "0.0105 &lt; full" in html and "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html and "<b>" not in html
    assert "TOP1-100 &lt;k&gt;" in html and "reason &lt;why&gt;" in html and "a &lt; b" in html
    assert ">+50.0%<" in html  # the escaped table keeps its number formats


# --------------------------------------------------------------------------- claims and discrepancies
def _cell(dataset, model, kind, loss, metric, reported, reproduced, std=np.nan, n=1):
    return {"dataset": dataset, "model": model, "loss_kind": kind, "loss": loss, "metric": metric, "reported": reported,
            "reproduced": reproduced, "reproduced_std": std, "n_seeds": n if not np.isnan(reproduced) else 0}


def _claim_cells():
    return pd.DataFrame([
        _cell("LastFM", "GRU4Rec", "original", "CE", "HIT@10", 0.03, 0.02),
        _cell("LastFM", "GRU4Rec", "improved", "CCE", "HIT@10", 0.05, 0.04),           # holds, one seed
        _cell("LastFM", "SASRec", "original", "BCE", "HIT@10", 0.04, 0.060, 0.010, 3),
        _cell("LastFM", "SASRec", "improved", "CCE", "HIT@10", 0.06, 0.055, 0.004, 3),  # CCE lower: does not hold
        _cell("Beauty", "SASRec", "original", "BCE", "HIT@10", 0.05, 0.05, 0.001, 3),
        _cell("Beauty", "SASRec", "improved", "CCE", "HIT@10", 0.09, 0.09, 0.002, 3),   # holds, beyond 2 std
        _cell("Yelp", "SASRec", "original", "BCE", "HIT@10", 0.02, np.nan),
        _cell("Yelp", "SASRec", "improved", "CCE", "HIT@10", 0.03, 0.03),               # one side missing
    ])


def test_claims_verdicts_and_noise():
    t = analysis.claims(_claim_cells()).set_index(["dataset", "model"])
    assert t.loc[("LastFM", "GRU4Rec"), "verdict"] == "holds"
    assert t.loc[("LastFM", "GRU4Rec"), "difference"] == pytest.approx(0.02)
    assert t.loc[("LastFM", "GRU4Rec"), "beyond seed noise"] == "one seed"
    assert t.loc[("LastFM", "SASRec"), "verdict"] == "does not hold"
    assert t.loc[("LastFM", "SASRec"), "beyond seed noise"] == "no"  # |−0.005| <= 2 × 0.010
    assert t.loc[("LastFM", "SASRec"), "ours original"] == "0.0600 ± 0.0100 (3 seeds)"
    assert t.loc[("Beauty", "SASRec"), "verdict"] == "holds" and t.loc[("Beauty", "SASRec"), "beyond seed noise"] == "yes"
    assert t.loc[("Yelp", "SASRec"), "verdict"] == "not run" and t.loc[("Yelp", "SASRec"), "ours original"] == "not run"
    assert bool(t["paper: CCE better"].all())
    counts = analysis.claim_counts(analysis.claims(_claim_cells()))
    assert list(counts.index) == list(analysis.CLAIM_VERDICTS) and list(counts.pairs) == [2, 1, 1]
    assert list(counts["beyond seed noise"]) == [1, 0, 0] and list(counts["within seed noise"]) == [0, 1, 0]
    assert list(counts["one seed on a side"]) == [1, 0, 0]
    assert analysis.claims_headline(analysis.claims(_claim_cells())) == (
        "**CCE beats the original loss in 2 of the 3 (dataset, model, metric) pairs run**, 1 of them beyond seed "
        "noise (0 within it, 1 with one seed on a side, untested); 4 pairs in Table 2, the paper reports CCE better "
        "in 4.")


def test_discrepancy_reasons_check_seeds_and_patience():
    c = pd.DataFrame([
        _cell("LastFM", "SASRec", "improved", "CCE", "NDCG@10", 0.0354, 0.0254),             # worse, one seed
        _cell("LastFM", "SASRec", "original", "BCE", "NDCG@10", 0.0223, 0.0342, 0.0075, 3),  # within mean ± 2 std
        _cell("LastFM", "GRU4Rec", "original", "CE", "NDCG@10", 0.0171, 0.0250),             # nothing explains it
        _cell("LastFM", "GRU4Rec", "improved", "CCE", "NDCG@10", 0.0262, 0.0272),            # reproduced
    ])
    c = pd.concat([c, pd.DataFrame([_cell("LastFM", "S3Rec", "original", "BCE", "NDCG@10", 0.0356, 0.0300, 0.0010, 2)])],
                  ignore_index=True)
    c["verdict"] = ["worse", "better", "better", "reproduced", "worse"]
    runs = pd.DataFrame([
        _run(0.0332, loss="cce", patience=40, ablation="patience", loss_kind="improved"),   # within 10 % of 0.0354
        _run(0.0399, loss="bce", patience=40, ablation="patience", loss_kind="original"),   # not within 10 % of 0.0223
        _run(0.0310, model="s3rec", paper_model="S3Rec", loss="bce", patience=40, ablation="patience", loss_kind="original"),
    ])
    r = analysis.discrepancy_reasons(c, runs)
    assert r[0].startswith("early stopping: with patience 40") and "0.0332" in r[0]
    # the check that explains it first, then the one that does not
    assert r[1] == ("seed variance: the reported value lies within our mean ± 2 std over 3 seeds; "
                    "not explained by early stopping (with patience 40 the cell reaches 0.0399 (seed 42 only))")
    assert r[2].startswith("not investigated")
    assert r[3] == ""
    # both checks possible, neither explains it: 0.0356 is outside 0.0300 ± 0.0020 and 0.0310 is not within 10 %
    # (after what SASRec's BCE cell says of S3-Rec's pretraining stage, the check of its own test below)
    assert r[4].endswith("; not explained by seed variance (mean ± 2 std over 2 seeds is 0.0280–0.0320); "
                         "nor by early stopping (with patience 40 the cell reaches 0.0310 (seed 42 only))")
    assert "(reported" in r[0] and "only" not in r[0]  # a one-seed cell and a one-seed rerun: nothing to add
    # with the Table 2 frame, the one-seed rerun is set beside the cell's own run with that seed
    frame = pd.DataFrame([_run(v, model="s3rec", paper_model="S3Rec", loss="bce", loss_kind="original", seed=s)
                          for v, s in ((0.0290, 42), (0.0310, 43))])
    with_frame = analysis.discrepancy_reasons(c, runs, frame)
    # ... and judged against it: seed 42 goes from 0.0290 to 0.0310, 30 % of that run's 0.0066 gap (>= 25 %), nearer
    # the reported 0.0356 but outside the tolerance: partly (0.0310 / 0.0356 - 1 = -13 %, 0.0290 / 0.0356 - 1 = -19 %)
    assert with_frame[4].startswith(
        "partly the early stopping: with patience 40 instead of 10 the same cell reaches 0.0310, -13% from the "
        "reported 0.0356 against -19% with patience 10 (seed 42 only; the cell's seed-42 run reaches 0.0290); ")
    assert "nor by early stopping" not in with_frame[4]
    near = pd.DataFrame([_run(v, model="s3rec", paper_model="S3Rec", loss="bce", loss_kind="original", seed=s)
                         for v, s in ((0.0300, 42), (0.0300, 43))])  # seed 42 moves 0.0010, 18 % of its 0.0056 gap
    assert analysis.discrepancy_reasons(c, runs, near)[4].endswith(
        "(with patience 40 the cell reaches 0.0310 (seed 42 only; the cell's seed-42 run reaches 0.0300))")
    # two of the cell's three seeds rerun: both named, against the cell's runs with those two seeds
    rerun = _run(0.0401, loss="bce", patience=40, ablation="patience", loss_kind="original", seed=43)
    two = pd.concat([runs, pd.DataFrame([rerun])], ignore_index=True)
    own = pd.DataFrame([_run(v, loss="bce", loss_kind="original", seed=s)
                        for v, s in ((0.03, 42), (0.04, 43), (0.05, 44))])
    assert analysis.discrepancy_reasons(c, two, own)[1].endswith(
        "(with patience 40 the cell reaches 0.0400 (seeds 42, 43 only; the cell's runs with those seeds reach on "
        "average 0.0350))")
    c["rel_diff"] = (c.reproduced - c.reported) / c.reported
    off = analysis.discrepancies(c, runs)  # the same reasons, for the off cells only
    assert list(off["likely reason"]) == [r[0], r[1], r[2], r[4]]
    assert off.index.names == ["dataset", "model", "loss", "metric"]


def test_patience_rerun_is_judged_against_its_own_seed_and_says_when_the_budget_cut_it():
    c = pd.DataFrame([_cell("Beauty", "S3Rec", "original", "BCE", "HIT@10", 0.0614, 0.0400, 0.0010, 3)])
    c["verdict"] = ["worse"]
    frame = pd.DataFrame([_run(v, data="Beauty", model="s3rec", paper_model="S3Rec", loss="bce", loss_kind="original",
                               metric="full_HIT@10", seed=s) for v, s in ((0.0390, 42), (0.0400, 43), (0.0410, 44))])

    def rerun(value, seed=44, **kw):
        return _run(value, data="Beauty", model="s3rec", paper_model="S3Rec", loss="bce", loss_kind="original",
                    metric="full_HIT@10", seed=seed, patience=40, ablation="patience", **kw)

    # seed 44: 0.0410 -> 0.0510, 49 % of its 0.0204 gap, nearer, outside ±10 %; the budget ended it, not the patience
    cut = pd.DataFrame([rerun(0.0510, epochs=200, epochs_run=200, best_epoch=189)])
    assert analysis.discrepancy_reasons(c, cut, frame)[0].startswith(
        "partly the early stopping: with patience 40 instead of 10 the same cell reaches 0.0510, -17% from the "
        "reported 0.0614 against -33% with patience 10 (seed 44 only; the cell's seed-44 run reaches 0.0410), its "
        "run cut at the 200-epoch budget (best epoch 189); ")
    # stopped by its patience: no budget words; within ±10 % and far enough: found
    stopped = pd.DataFrame([rerun(0.0600, epochs=200, epochs_run=120, best_epoch=80)])
    found = analysis.discrepancy_reasons(c, stopped, frame)[0]
    assert found.startswith("early stopping: with patience 40 instead of 10 the same cell reaches 0.0600 (seed 44 "
                            "only; the cell's seed-44 run reaches 0.0410) (reported 0.0614); ")
    assert "budget" not in found
    # against the mean over seeds (0.0400) 0.0460 would move the cell 28 % of its gap; against seed 44's own 0.0410,
    # 25 % of 0.0204 is 0.0051 and it moves 0.0050: ruled out, with the budget words inside the parentheses
    assert analysis.discrepancy_reasons(c, pd.DataFrame([rerun(0.0460, epochs=200, epochs_run=200, best_epoch=170)]),
                                        frame)[0].endswith(
        "not explained by seed variance (mean ± 2 std over 3 seeds is 0.0380–0.0420); nor by early stopping (with "
        "patience 40 the cell reaches 0.0460 (seed 44 only; the cell's seed-44 run reaches 0.0410), its run cut at "
        "the 200-epoch budget (best epoch 170))")
    # without the Table 2 frame the rerun can only be set against the cell: partly
    assert analysis.discrepancy_reasons(c, pd.DataFrame([rerun(0.0460)]))[0].startswith("partly the early stopping")
    # two seeds rerun, one cut by the budget
    two = pd.DataFrame([rerun(0.0600, epochs=200, epochs_run=200, best_epoch=190),
                        rerun(0.0600, seed=43, epochs=200, epochs_run=90, best_epoch=50)])
    assert analysis.discrepancy_reasons(c, two, frame)[0].startswith(
        "early stopping: with patience 40 instead of 10 the same cell reaches 0.0600 (seeds 43, 44 only; the cell's "
        "runs with those seeds reach on average 0.0405) (reported 0.0614), 1 of its 2 runs cut at the 200-epoch budget")


def _curve(valid, train):
    return [{"epoch": i + 1, "valid_NDCG@20": v, "train_loss": t} for i, (v, t) in enumerate(zip(valid, train))]


def test_overfit_after_best_by_hand():
    # peak 0.20 at epoch 2; last 0.17 is 15 % lower; train loss 8 -> 6 is 25 % lower: overfitting
    o = analysis.overfit_after_best(_curve([0.1, 0.2, 0.18, 0.17], [9, 8, 7, 6]), "valid_NDCG@20")
    assert o["best_epoch"] == 2 and o["last_epoch"] == 4
    assert o["drop"] == pytest.approx(0.15) and o["train_drop"] == pytest.approx(0.25)
    # a plateau (1 % below the peak) is not overfitting, nor a drop while the training loss rose too
    assert analysis.overfit_after_best(_curve([0.1, 0.2, 0.198], [9, 8, 7]), "valid_NDCG@20") is None
    assert analysis.overfit_after_best(_curve([0.1, 0.2, 0.1], [9, 8, 8.5]), "valid_NDCG@20") is None
    # the best epoch last, one point, or a monitor the curve lacks: nothing to say
    assert analysis.overfit_after_best(_curve([0.1, 0.2], [9, 8]), "valid_NDCG@20") is None
    assert analysis.overfit_after_best(_curve([0.1], [9]), "valid_NDCG@20") is None
    assert analysis.overfit_after_best(_curve([0.1, 0.2, 0.1], [9, 8, 7]), "valid_HIT@10") is None


def test_levelled_off_by_hand():
    # 12 epochs, best 0.30 at epoch 8, patience 2; the second half starts at epoch 6
    # (the first epoch >= 12 / 2), where the best so far was 0.28: a rise of 0.02 over epochs 6..12, 1/300 per
    # epoch; 8 more epochs to a budget of 20 gain 8/300 = 0.02667, 8.9 % of 0.30
    valid = [0.10, 0.20, 0.25, 0.27, 0.28, 0.275, 0.29, 0.30, 0.29, 0.295, 0.30, 0.299]
    o = analysis.levelled_off(_curve(valid, range(12, 0, -1)), "valid_NDCG@20", max_epochs=20, patience=2)
    assert (o["from_epoch"], o["last_epoch"], o["best_epoch"]) == (6, 12, 8)
    assert o["rise"] == pytest.approx(0.30 / 0.28 - 1)
    assert o["gain"] == pytest.approx(0.02 / 6 * 8 / 0.30)
    # at the epoch budget already: nothing left to gain
    assert analysis.levelled_off(_curve(valid, range(12, 0, -1)), "valid_NDCG@20", 12, patience=2)["gain"] == 0
    # the second half must reach `patience` epochs before the best: with patience 3 it measures only the plateau
    assert analysis.levelled_off(_curve(valid, range(12, 0, -1)), "valid_NDCG@20", 20, patience=3) is None
    assert analysis.levelled_off(_curve(valid, range(12, 0, -1)), "valid_HIT@10", 20, patience=2) is None


def test_late_trend_by_hand():
    # valid = 0.01 + 0.0001 e over epochs 1..200: the second half (epochs 100..200) has mean 0.01 + 0.0001 * 150 =
    # 0.025 and slope 0.0001 per epoch, 0.01 per 100 epochs: 40 % of its level
    rising = [{"epoch": e, "valid_HIT@10": 0.01 + 0.0001 * e} for e in range(1, 201)]
    assert analysis.late_trend(rising, "valid_HIT@10") == {"from_epoch": 100, "last_epoch": 200,
                                                          "trend": pytest.approx(0.4)}
    # a plateau that only its last epoch tops: the best so far rises 20 %, the line through every epoch far less:
    # slope = 0.01 * (200 - 150) / sum((e - 150)^2 for e in 100..200) = 0.5 / 85850 per epoch
    plateau = [{"epoch": e, "valid_HIT@10": 0.06 if e == 200 else 0.05} for e in range(1, 201)]
    o = analysis.late_trend(plateau, "valid_HIT@10")
    assert o["trend"] == pytest.approx(0.5 / 85850 * 100 / (0.05 + 0.01 / 101))  # about +1.2 %
    assert o["trend"] < analysis.STILL_RISING
    assert analysis.levelled_off(plateau, "valid_HIT@10", 200, patience=10)["rise"] == pytest.approx(0.2)
    # falling: the same line, negative
    assert analysis.late_trend([{"epoch": e, "valid_HIT@10": 0.05 - 0.0001 * e} for e in range(1, 201)],
                               "valid_HIT@10")["trend"] == pytest.approx(-0.01 / 0.035)
    # too few evaluated epochs in the second half, or no such monitor
    assert analysis.late_trend(rising[:17], "valid_HIT@10") is None  # epochs 9..17: 9 points
    assert analysis.late_trend(rising[:18], "valid_HIT@10")["from_epoch"] == 9  # epochs 9..18: 10 points
    assert analysis.late_trend(rising, "valid_NDCG@10") is None


def _stored_curve(tmp_path, name, valid, train, metrics=None, **config) -> str:
    path = tmp_path / f"{name}.json"
    results.save({"config": {"monitor": "valid_NDCG@20", **config}, "metrics": metrics or {}, "provenance": {},
                  "curve": _curve(valid, train)}, path)
    return str(path)


def test_early_stopping_settled_by_the_cells_seeds_that_trained_longer(tmp_path):
    # seed 43 stops on a plateau (epoch 3, 1 % below its peak at 2): its own curve leaves early stopping open
    short = _stored_curve(tmp_path, "short", [0.1, 0.2, 0.198], [9, 8, 7], {"full_HIT@10": 0.0180}, seed=43)
    # seeds 42 and 44 overfit after training to epochs 45 and 50, past epoch 2 + 40 = 42
    def long(name, epochs, value, seed):
        valid = [0.1 + 0.001 * e for e in range(epochs - 10)] + [0.05] * 10     # peak at epochs - 10, then a drop
        return _stored_curve(tmp_path, name, valid, range(epochs, 0, -1), {"full_HIT@10": value}, seed=seed)
    seed42, seed44 = long("s42", 45, 0.0160, 42), long("s44", 50, 0.0170, 44)
    cell = _cell("Toys", "SR-GNN", "improved", "CCE", "HIT@10", 0.0681, 0.0170, 0.0010, 3)
    c = pd.DataFrame([cell])
    c["verdict"] = ["worse"]
    srgnn = dict(data="Toys", model="srgnn", paper_model="SR-GNN", loss="cce", loss_kind="improved",
                 metric="full_HIT@10", variant="authors")

    def reason(*paths):
        frame = pd.DataFrame([_run(0.017, path=p, **srgnn) for p in paths])
        return analysis.discrepancy_reasons(c, pd.DataFrame(), frame)[0]

    # (0.0160 + 0.0170) / 2 = 0.0165, -76 % from 0.0681, on the cell's side: training longer does not close the gap
    assert ("nor by early stopping (the run with seed 43 stopped at epoch 3, 1% below its valid NDCG@20 peak at "
            "epoch 2, without the signature of overfitting, but the cell's runs with seeds 42 and 44 trained to "
            "epochs 45 (best 35) and 50 (best 40), past epoch 42, as far as a patience of 40 would have taken it, "
            "and reach 0.0165 on average, -76% from the reported 0.0681)") in reason(seed42, short, seed44)
    # one longer seed: singular words
    assert "but the cell's run with seed 42 trained to epoch 45 (best 35), past epoch 42" in reason(short, seed42)
    # a seed that stopped before epoch 42 settles nothing
    early = long("s45", 40, 0.0160, 45)
    assert "not ruled out: early stopping" in reason(short, seed42, early)
    # longer seeds landing within 10 % of the reported value (or past it) leave it open too
    near = long("near", 50, 0.0650, 46)
    assert "not ruled out: early stopping" in reason(short, near)
    past = long("past", 50, 0.0800, 47)
    assert "not ruled out: early stopping" in reason(short, past)
    # alone, the short run stays open
    assert "not ruled out: early stopping" in reason(short)


def test_open_early_stopping_names_the_patience_rerun_under_way(tmp_path):
    plateau = _stored_curve(tmp_path, "plateau", [0.1, 0.2, 0.198], [9, 8, 7], seed=44)   # 1 % below its peak: open
    c = pd.DataFrame([_cell("Beauty", "S3Rec", "original", "BCE", "NDCG@10", 0.0307, 0.0194),
                      _cell("Toys", "SR-GNN", "improved", "CCE", "NDCG@10", 0.0354, 0.0250)])
    c["verdict"] = ["worse", "worse"]
    frame = pd.DataFrame([
        _run(0.0194, data="Beauty", model="s3rec", paper_model="S3Rec", loss="bce", loss_kind="original", path=plateau),
        _run(0.0250, data="Toys", model="srgnn", paper_model="SR-GNN", loss="cce", loss_kind="improved",
             variant="authors", path=plateau)])

    def planned(*rows):
        base = dict(data="Beauty", paper_model="S3Rec", loss_kind="original", ablation="patience", variant="",
                    seed=44, stored=False, progress="pretraining 37 of 150 epochs done (local checkpoint)")
        return pd.DataFrame([{**base, **row} for row in rows])

    def reasons(p):
        return analysis.discrepancy_reasons(c, pd.DataFrame(), frame, planned=p)

    settle = "without the signature of overfitting; a run with a longer patience would settle it"
    # no plan: the sentence ends where it always did
    assert reasons(None)[0].endswith(settle + ")")
    # the cell's rerun, not stored: named, with how far it has got
    assert reasons(planned({}))[0].endswith(
        settle + ": the patience ablation's rerun of seed 44 (pretraining 37 of 150 epochs done, local checkpoint) "
        "is planned, not stored yet)")
    # two reruns, one not begun
    assert reasons(planned({}, {"seed": 43, "progress": ""}))[0].endswith(
        "reruns of seed 43 (not started) and seed 44 (pretraining 37 of 150 epochs done, local checkpoint) are "
        "planned, not stored yet)")
    # stored, of another ablation, dataset or loss: nothing under way for this cell
    for other in ({"stored": True}, {"ablation": "seeds"}, {"data": "Toys"}, {"loss_kind": "improved"}):
        assert reasons(planned(other))[0].endswith(settle + ")")
    # SR-GNN with CCE: only a rerun of the variant the cell reads counts
    srgnn = {"data": "Toys", "paper_model": "SR-GNN", "loss_kind": "improved", "progress": ""}
    assert reasons(planned({**srgnn, "variant": "causal"}))[1].endswith(settle + ")")
    assert reasons(planned({**srgnn, "variant": "authors"}))[1].endswith(
        settle + ": the patience ablation's rerun of seed 44 (not started) is planned, not stored yet)")


def test_early_stopping_ruled_out_when_a_plateau_could_not_close_the_gap(tmp_path):
    # the curve of test_levelled_off_by_hand: at its pace the best gains 8.9 % by epoch 20
    valid = [0.10, 0.20, 0.25, 0.27, 0.28, 0.275, 0.29, 0.30, 0.29, 0.295, 0.30, 0.299]
    level = _stored_curve(tmp_path, "level", valid, range(12, 0, -1), epochs=20, patience=2)
    c = pd.DataFrame([_cell("Toys", "GRU4Rec", "improved", "CCE", "NDCG@10", 0.0500, 0.0300),   # needs +67 %
                      _cell("Beauty", "GRU4Rec", "improved", "CCE", "NDCG@10", 0.0354, 0.0307)])  # needs +15 %
    c["verdict"] = ["worse", "worse"]
    c["rel_diff"] = (c.reproduced - c.reported) / c.reported
    frame = pd.DataFrame([
        _run(0.0300, data="Toys", model="gru4rec", paper_model="GRU4Rec", loss="cce", loss_kind="improved", path=level),
        _run(0.0307, data="Beauty", model="gru4rec", paper_model="GRU4Rec", loss="cce", loss_kind="improved", path=level),
    ])
    r = analysis.discrepancy_reasons(c, pd.DataFrame(), frame)
    # 0.0300 x 1.0889 = 0.0327, -35 % from 0.0500: a longer patience could not have closed it
    assert r[0] == ("not explained by early stopping (the run had levelled off: its best valid NDCG@20 rose 7% from "
                    "epoch 6 to 12, where training stopped; at that pace until the protocol's 20 epochs it would gain "
                    "9% more, and the cell, rising in step, reach about 0.0327, -35% from the reported 0.0500)")
    # 0.0307 x 1.0889 = 0.0334, within 10 % of 0.0354: still open
    assert r[1].startswith("not ruled out: early stopping (valid NDCG@20 at epoch 12, where training stopped, was 0% "
                           "below its peak at epoch 8")


def test_discrepancy_reasons_read_curves_and_directions(tmp_path):
    overfit = _stored_curve(tmp_path, "overfit", [0.1, 0.2, 0.15], [9, 8, 7])   # 25 % below the peak, train loss falls
    plateau = _stored_curve(tmp_path, "plateau", [0.1, 0.2, 0.198], [9, 8, 7])  # 1 % below the peak
    c = pd.DataFrame([
        _cell("Beauty", "GRU4Rec", "original", "CE", "NDCG@10", 0.0185, 0.0158),
        _cell("Sports", "GRU4Rec", "original", "CE", "NDCG@10", 0.0085, 0.0069),
        _cell("Yelp", "GRU4Rec", "original", "CE", "NDCG@10", 0.0078, 0.0065),
        _cell("Toys", "GRU4Rec", "original", "CE", "NDCG@10", 0.0083, 0.0082),
        _cell("Toys", "GRU4Rec", "improved", "CCE", "NDCG@10", 0.0354, 0.0307),
        _cell("Toys", "SASRec", "original", "BCE", "NDCG@10", 0.0347, 0.0388),
    ])
    c["verdict"] = ["worse", "worse", "worse", "reproduced", "worse", "better"]
    c["rel_diff"] = (c.reproduced - c.reported) / c.reported
    frame = pd.DataFrame([
        _run(0.0158, data="Beauty", model="gru4rec", paper_model="GRU4Rec", loss="ce", loss_kind="original", path=overfit),
        _run(0.0307, data="Toys", model="gru4rec", paper_model="GRU4Rec", loss="cce", loss_kind="improved", path=plateau),
        _run(0.0388, data="Toys", paper_model="SASRec", loss="bce", loss_kind="original", path=overfit),
    ])
    r = analysis.discrepancy_reasons(c, pd.DataFrame(), frame)
    # worse on 3 of the 4 datasets run (75 %): systematic, with the span of the three gaps
    assert r[0].startswith("systematic: GRU4Rec with CE is worse on 3 of the 4 datasets run (NDCG@10, -19% to -15%)")  # 0.0069/0.0085 - 1, 0.0158/0.0185 - 1
    assert "not explained by early stopping (the run overfit: valid NDCG@20 peaked at epoch 2 and was 25% lower at " \
           "epoch 3 while the training loss fell another 12%)" in r[0]
    assert r[1].startswith("systematic") and "early stopping" not in r[1]  # no stored curve for Sports
    assert r[3] == ""
    assert r[4] == ("not ruled out: early stopping (valid NDCG@20 at epoch 3, where training stopped, was 1% below its "
                    "peak at epoch 2, without the signature of overfitting; a run with a longer patience would settle it)")
    # a better cell: the curve says nothing about it, one dataset is no direction
    assert r[5].startswith("not investigated")
    # with only 2 datasets worse of 4 the gap is not called systematic
    c.loc[2, "verdict"] = "reproduced"
    assert not analysis.discrepancy_reasons(c, pd.DataFrame(), frame)[1].startswith("systematic")


def test_discrepancy_reasons_check_the_srgnn_variant(tmp_path):
    overfit = _stored_curve(tmp_path, "overfit", [0.1, 0.2, 0.15], [9, 8, 7])
    plateau = _stored_curve(tmp_path, "plateau", [0.1, 0.2, 0.198], [9, 8, 7])
    c = pd.DataFrame([
        _cell("Beauty", "SR-GNN", "improved", "CCE", "HIT@10", 0.0652, 0.0230),
        _cell("Toys", "SR-GNN", "improved", "CCE", "HIT@10", 0.0500, 0.0300),
        _cell("Yelp", "SR-GNN", "improved", "CCE", "HIT@10", 0.0200, 0.0300),
    ])
    c["verdict"] = ["worse", "worse", "better"]  # 2 of 3 one way: not systematic
    srgnn = dict(model="srgnn", paper_model="SR-GNN", loss="cce", loss_kind="improved", metric="full_HIT@10")
    frame = pd.DataFrame([
        _run(0.0230, data="Beauty", variant="authors", path=overfit, **srgnn),
        _run(0.0610, data="Beauty", variant="causal", path=plateau, **srgnn),   # 6.4 % below 0.0652: within 10 %
        _run(0.0300, data="Toys", variant="authors", path=overfit, **srgnn),
        _run(0.0200, data="Toys", variant="causal", path=plateau, **srgnn),     # farther from 0.0500 than 0.0300
        _run(0.0300, data="Yelp", variant="authors", path=overfit, **srgnn),    # no causal run stored
    ])
    r = analysis.discrepancy_reasons(c, pd.DataFrame(), frame)
    # the early-stopping check reads the authors' curve only (the causal one, a plateau, would leave it open)
    assert r[0] == ("variant: our causal SR-GNN (each position sees only the items before it) reaches 0.0610 against "
                    "the reported 0.0652, so the paper's number matches a model without the authors' variant's "
                    "look-ahead, not the look-ahead variant this cell reads; not explained by early stopping (the run "
                    "overfit: valid NDCG@20 peaked at epoch 2 and was 25% lower at epoch 3 while the training loss "
                    "fell another 12%)")
    assert r[1].endswith("nor by the variant (our causal SR-GNN reaches 0.0200)")
    # a longer-patience run counts for the variant the cell reads: the causal one's is not the cell's
    patience = pd.DataFrame([_run(0.0640, data="Beauty", variant="causal", ablation="patience", patience=40, **srgnn)])
    assert analysis.discrepancy_reasons(c, patience, frame)[0] == r[0]
    patience.loc[0, "variant"] = "authors"
    assert analysis.discrepancy_reasons(c, patience, frame)[0].startswith("early stopping: with patience 40")
    # outside the tolerance but nearer than the authors' variant: partly explained
    frame.loc[3, "value"] = 0.0400  # -20 % against -40 %
    r = analysis.discrepancy_reasons(c, pd.DataFrame(), frame)
    assert r[1].startswith("partly the variant: our causal SR-GNN (each position sees only the items before it) "
                           "reaches 0.0400, -20% from the reported 0.0500 against -40% for the authors' variant "
                           "this cell reads; not explained by early stopping")
    assert r[2].startswith("not investigated")
    # no nearer, but on the far side of the reported value (-40 % -> +60 %): it moves the cell the gap's way, too far
    frame.loc[3, "value"] = 0.0800
    r = analysis.discrepancy_reasons(c, pd.DataFrame(), frame)
    assert r[1].startswith("overshot by the variant: our causal SR-GNN (each position sees only the items before it) "
                           "reaches 0.0800, +60% from the reported 0.0500 against -40% for the authors' variant "
                           "this cell reads, past the paper's number in the gap's direction; not explained by early "
                           "stopping")
    frame.loc[3, "value"] = 0.0250  # -50 %, the same side and further: ruled out
    assert analysis.discrepancy_reasons(c, pd.DataFrame(), frame)[1].endswith(
        "nor by the variant (our causal SR-GNN reaches 0.0250)")
    # other models are never matched against an SR-GNN variant
    c.loc[0, "model"] = "GRU4Rec"
    assert "variant" not in analysis.discrepancy_reasons(c, pd.DataFrame(), frame)[0]


def test_srgnn_variants_sets_both_cce_variants_beside_ce():
    c = pd.DataFrame([
        _cell("Beauty", "SR-GNN", "original", "CE", "HIT@10", 0.0278, 0.0250),
        _cell("Beauty", "SR-GNN", "improved", "CCE", "HIT@10", 0.0652, 0.0230),
        _cell("Toys", "SR-GNN", "original", "CE", "HIT@10", 0.0200, np.nan),      # nothing run: no row
        _cell("Toys", "SR-GNN", "improved", "CCE", "HIT@10", 0.0500, np.nan),
        _cell("Beauty", "SASRec", "original", "BCE", "HIT@10", 0.0573, 0.0600),   # not SR-GNN: no row
    ])
    srgnn = dict(model="srgnn", paper_model="SR-GNN", loss="cce", loss_kind="improved", metric="full_HIT@10",
                 data="Beauty")
    frame = pd.DataFrame([_run(0.0230, variant="authors", **srgnn), _run(0.0500, variant="causal", **srgnn),
                          _run(0.0600, variant="causal", **{**srgnn, "seed": 43})])
    t = analysis.srgnn_variants(c, frame)
    assert list(t.index) == [("Beauty", "HIT@10")]
    row = t.loc[("Beauty", "HIT@10")]
    assert (row["reported CE"], row["reported CCE"], row["ours CE"]) == (0.0278, 0.0652, 0.0250)
    assert row["ours CCE (authors)"] == pytest.approx(0.0230) and row["ours CCE (causal)"] == pytest.approx(0.0550)
    assert row["authors vs CE %"] == pytest.approx(-8.0) and row["causal vs CE %"] == pytest.approx(120.0)
    assert row["seeds (CE / authors / causal)"] == "1 / 1 / 2"  # the causal variant over two seeds
    assert analysis.srgnn_variants_in_words(t) == (
        "SR-GNN with CCE, authors' variant (the one the verdicts read), does not beat our CE on Beauty (HIT@10 -8%). "
        "SR-GNN with CCE, causal variant (no look-ahead), beats our CE on Beauty (HIT@10 +120%).")
    assert analysis.srgnn_variants_in_words(t.iloc[:0]) == ""


def test_repeated_runs_compares_the_metrics_of_one_config_stored_twice(tmp_path):
    def store(grid, key, metrics, commit):
        results.save({"key": key, "config": {"data": "Beauty", "model": "sasrec", "loss": "cce"}, "metrics": metrics,
                      "provenance": {"commit": commit, "device": "cpu"}}, tmp_path / "paper" / grid / f"{key}.json")

    store("table2", "k1", {"full_HIT@10": 0.0919, "full_NDCG@10": 0.0561}, "aaaaaaa111")
    store("table3", "k1", {"full_HIT@10": 0.0919, "full_NDCG@10": 0.0561, "pop_sampled_HIT@10": 0.3}, "bbbbbbb222")
    store("table2", "k2", {"full_HIT@10": 0.05}, "c")
    store("ablations", "k2", {"full_HIT@10": 0.0525}, "d")
    store("table2", "k3", {"full_HIT@10": 0.01}, "e")  # stored once: not a repeat
    t = analysis.repeated_runs("paper", str(tmp_path)).set_index("key")
    assert list(t.index) == ["k1", "k2"]
    # only the metrics both records have are compared (the rerun's new metric is not)
    assert t.loc["k1", "metrics"] == 2 and t.loc["k1", "max |difference|"] == 0 and bool(t.loc["k1", "metrics identical"])
    assert t.loc["k1", "commits"] == "aaaaaaa, bbbbbbb" and t.loc["k1", "grids"] == "table2, table3"
    assert t.loc["k2", "max |difference|"] == pytest.approx(0.0025) and not t.loc["k2", "metrics identical"]
    assert analysis.repeated_runs("paper", str(tmp_path / "none")).empty
    assert np.isnan(t.loc["k1", "curve max |difference|"])  # no stored curves: nothing to compare
    assert t.loc["k1", "kernels"] == "unrecorded"  # stored before records kept their kernels


def test_repeated_runs_compares_curves_epoch_by_epoch(tmp_path):
    # the rerun on another kind of host (its session's kernels recorded; the first record has no sessions)
    for grid, curve, prov in (("table2", _curve([0.01, 0.02, 0.03], [2.0, 1.5, 1.2]), {"kernels": "AVX2"}),
                              ("table3", _curve([0.01, 0.02, 0.03], [2.0, 1.5 + 1e-7, 1.2]),
                               {"sessions": [{"from_epoch": 0, "kernels": "AVX512"}]})):
        results.save({"key": "k", "config": {"data": "Beauty", "model": "sasrec", "loss": "cce"}, "metrics": {"m": 0.1},
                      "curve": curve, "provenance": {"device": "cpu", **prov}}, tmp_path / "paper" / grid / "k.json")
    t = analysis.repeated_runs("paper", str(tmp_path)).set_index("key")
    assert bool(t.loc["k", "metrics identical"]) and t.loc["k", "curve max |difference|"] == pytest.approx(1e-7)
    assert t.loc["k", "kernels"] == "AVX2, AVX512"


def test_replayed_curves_pairs_runs_that_differ_only_in_patience(tmp_path):
    def store(grid, name, curve, sessions=None, **cfg):
        config = TrainConfig(**{"data": "Beauty", "model": "gru4rec", "loss": "cce", **cfg}).to_dict()
        results.save({"key": name, "config": config, "metrics": {"m": 0.1}, "curve": curve,
                      "provenance": {"device": "AMD (1 threads)", "sessions": sessions or []}},
                     tmp_path / "paper" / grid / f"{name}.json")

    base = ([0.01, 0.02, 0.025, 0.024], [3.0, 2.5, 2.2, 2.1])
    store("table2", "p10", [{**p, "elapsed": 5.0 * p["epoch"]} for p in _curve(*base)])
    # patience 40: the same four epochs (another wall clock), then two more; resumed from its checkpoint at epoch 3
    store("ablations", "p40", [{**p, "elapsed": 9.0 * p["epoch"]} for p in _curve(base[0] + [0.026, 0.027], base[1] + [2.0, 1.9])],
          sessions=[{"from_epoch": 0}, {"from_epoch": 3}], patience=40)
    # another seed with patience 40: not the same configuration, never paired
    store("ablations", "seed", _curve([0.5, 0.6], [9.0, 8.0]), patience=40, seed=7)
    # a different loss whose patience-40 run drifted at epoch 2
    store("table2", "ce10", _curve([0.01, 0.02], [3.0, 2.5]), loss="ce")
    t = analysis.replayed_curves("paper", str(tmp_path))
    assert len(t) == 1
    row = t.iloc[0]
    assert row["patience"] == "10 → 40" and row["grids"] == "table2, ablations"
    assert row["shared epochs"] == 4 and row["values"] == 8 and row["resumed at epoch"] == "3"
    assert row["max |difference|"] == 0 and bool(row["identical"]) and row["devices"] == "AMD (1 thread)"
    assert row["kernels"] == "unrecorded"  # neither record kept its kernels
    # the same pair where the patience-40 run's second session ran on an AVX2 host: both levels named
    store("ablations", "p40", [{**p, "elapsed": 9.0 * p["epoch"]} for p in _curve(base[0] + [0.026, 0.027], base[1] + [2.0, 1.9])],
          sessions=[{"from_epoch": 0, "kernels": "AVX512"}, {"from_epoch": 3, "kernels": "AVX2"}], patience=40)
    assert analysis.replayed_curves("paper", str(tmp_path)).iloc[0]["kernels"] == "AVX2, AVX512, unrecorded"
    store("ablations", "ce40", _curve([0.01, 0.02, 0.02], [3.0, 2.5003, 2.4]), loss="ce", patience=40)
    t = analysis.replayed_curves("paper", str(tmp_path)).set_index("run")
    assert t.loc["Beauty gru4rec ce", "max |difference|"] == pytest.approx(3e-4)
    assert not t.loc["Beauty gru4rec ce", "identical"] and t.loc["Beauty gru4rec ce", "shared epochs"] == 2
    assert t.loc["Beauty gru4rec ce", "resumed at epoch"] == "–"
    assert analysis.replayed_curves("paper", str(tmp_path / "none")).empty


def test_table3_claim():
    f = pd.DataFrame([_run(0.09, metric="full_HIT@10", data="Beauty"),
                      _run(0.07, metric="full_HIT@10", data="Beauty", model="bert4rec", loss="mlm", paper_model="BERT4Rec"),
                      _run(0.20, metric="sampled_HIT@10", data="Beauty", seed=1),
                      _run(0.40, metric="sampled_HIT@10", data="Beauty", seed=2),
                      _run(0.35, metric="sampled_HIT@10", data="Beauty", model="bert4rec", loss="mlm", paper_model="BERT4Rec")])
    f = pd.concat([f, pd.DataFrame([_run(0.28, metric="pop_sampled_HIT@10", data="Beauty", model="bert4rec", loss="mlm",
                                         paper_model="BERT4Rec")])], ignore_index=True)
    t = analysis.table3_claim(f)
    assert t.loc["HIT@10", "verdict"] == "holds" and t.loc["HIT@10", "beyond seed noise"] == "one seed"
    assert t.loc["HIT@10", "difference"] == pytest.approx(0.02)
    assert t.loc["HIT@10", "seeds (CCE / BERT4Rec)"] == "1 / 1"
    uniform = t.loc["sampled HIT@10, uniform negatives"]
    assert uniform["SASRec (CCE)"] == pytest.approx(0.30) and uniform["seeds (CCE / BERT4Rec)"] == "2 / 1"
    assert uniform["verdict"] == "does not hold"  # 0.30 (mean of two seeds) < 0.35
    assert uniform["beyond seed noise"] == "one seed"  # BERT4Rec has one seed: no std to weigh against
    two = pd.concat([f, pd.DataFrame([_run(v, metric="sampled_HIT@10", data="Beauty", model="bert4rec", loss="mlm",
                                           paper_model="BERT4Rec", seed=s) for v, s in ((0.36, 7), (0.34, 8))])],
                    ignore_index=True)  # BERT4Rec 0.35 ± 0.01 over three seeds; CCE 0.30 ± 0.1414 over two
    assert analysis.table3_claim(two).loc["sampled HIT@10, uniform negatives", "beyond seed noise"] == "no"
    assert t.loc["NDCG@10", "verdict"] == "not run"
    # BERT4Rec has popularity-sampled metrics, SASRec (stored before them) has none: not run, never a verdict
    assert t.loc["sampled HIT@10, popularity negatives", "verdict"] == "not run"
    assert t.loc["sampled HIT@10, popularity negatives", "BERT4Rec"] == pytest.approx(0.28)
    assert len(t) == 6


def test_sampler_check_names_the_nearer_protocol():
    f = pd.DataFrame([_run(0.40, metric="sampled_HIT@10", data="Beauty"),
                      _run(0.26, metric="pop_sampled_HIT@10", data="Beauty"),
                      _run(0.50, metric="sampled_HIT@10", data="Beauty", loss="bce"),  # stored before pop metrics
                      _run(0.33, metric="sampled_HIT@10", data="Beauty", model="bert4rec", loss="mlm", paper_model="BERT4Rec"),
                      _run(0.31, metric="pop_sampled_HIT@10", data="Beauty", model="bert4rec", loss="mlm", paper_model="BERT4Rec")])
    reported = pd.DataFrame({"dataset": "Beauty", "system": ["SASRec (CCE)", "SASRec (BCE)", "BERT4Rec (HuggingFace-based)"],
                             "metric": "sampled HIT@10", "value": [0.25, 0.20, 0.34]})
    t = analysis.sampler_check(f, reported)
    cce = t.loc[("SASRec (CCE)", "sampled HIT@10")]
    assert cce["nearer"] == "popularity"  # |0.26 - 0.25| < |0.40 - 0.25|
    assert cce["uniform vs reported"] == pytest.approx(0.6) and cce["popularity vs reported"] == pytest.approx(0.04)
    assert t.loc[("BERT4Rec (HuggingFace-based)", "sampled HIT@10"), "nearer"] == "uniform"  # 0.01 < 0.03
    assert t.loc[("SASRec (BCE)", "sampled HIT@10"), "nearer"] == "not run"
    assert t.loc[("SASRec (CCE)", "sampled NDCG@10"), "nearer"] == "not run" and len(t) == 6


def test_compute_spent_sums_by_device_and_grid(tmp_path):
    def record(device, wall, train, pre=None, status="ok"):
        r = {"config": {"data": "LastFM"}, "metrics": {"full_HIT@10": 0.1}, "status": status, "train_seconds": train,
             "provenance": {"device": device, "wall_seconds": wall}}
        return {**r, "pretraining": pre} if pre else r

    runs = {"table2": [record("cpu", 3600, 1800), record("gpu", 360, 300, {"checkpoint": "a.pt", "seconds": 720}),
                       record("gpu", 360, 300, {"checkpoint": "a.pt", "seconds": 720}),  # same pretraining: once
                       record("gpu", 9999, 9999, status="error")],
            "ablations": [record("cpu", 1800, 900)],
            # one thread named as runs stored before device_label say it, and as they say it now: one device
            "figure1": [record("AMD (1 threads)", 3600, 3600), record("AMD (1 thread)", 7200, 3600),
                        record("AMD (2 threads)", 360, 360)]}
    for grid, records in runs.items():
        (tmp_path / "p" / grid).mkdir(parents=True)
        for i, r in enumerate(records):
            results.save(r, tmp_path / "p" / grid / f"r{i}.json")
    t = analysis.compute_spent("p", results_dir=tmp_path)
    assert t.loc[("cpu", "table2"), "wall hours"] == pytest.approx(1.0)
    assert t.loc[("cpu", "ablations"), "train hours"] == pytest.approx(0.25)
    assert t.loc[("gpu", "table2"), "runs"] == 2 and t.loc[("gpu", "table2"), "wall hours"] == pytest.approx(0.2)
    assert t.loc[("gpu", "table2"), "pretraining hours"] == pytest.approx(0.2)
    assert t.loc[("AMD (1 thread)", "figure1"), "runs"] == 2 and t.loc[("AMD (1 thread)", "figure1"), "wall hours"] == 3
    assert t.loc[("AMD (2 threads)", "figure1"), "runs"] == 1
    assert analysis.compute_spent("nothing", results_dir=tmp_path).empty


def test_session_seconds_split_a_cumulative_curve_at_each_resume():
    curve = [{"epoch": e, "elapsed": 10.0 * e + (100.0 if e > 3 else 0.0)} for e in range(1, 7)]  # 10 s, epoch 4: 110
    sessions = [{"from_epoch": 0, "device": "cpu"}, {"from_epoch": 3, "device": "gpu"}, {"from_epoch": 3, "device": "x"}]
    out = results.session_seconds(sessions, curve, 6)
    assert [s["seconds"] for s in out] == [30.0, 0.0, 130.0]  # a session killed before its first epoch did none
    assert out[1]["device"] == "gpu" and "seconds" not in sessions[0]  # the input is left as it was
    assert results.session_seconds(sessions, [{"epoch": 1}], 1) == sessions  # no elapsed: unchanged


def test_compute_spent_splits_a_run_resumed_on_another_device(tmp_path):
    """A run begun on CPU and finished on a GPU: wall time by session, training time by the curve's cumulative
    elapsed at the resume, pretraining by its sessions' seconds; the run counts once, where it was stored."""
    curve = [{"epoch": e, "elapsed": 100.0 * e if e <= 2 else 200.0 + 10.0 * (e - 2)} for e in range(1, 6)]
    run = {"config": {"data": "Sports"}, "metrics": {"full_HIT@10": 0.1}, "train_seconds": 230.0, "curve": curve,
           "epochs_run": 5,
           "provenance": {"device": "gpu", "wall_seconds": 400.0,
                          "sessions": [{"from_epoch": 0, "device": "cpu", "wall_seconds": 360.0},
                                       {"from_epoch": 2, "device": "gpu", "wall_seconds": 40.0}]},
           "pretraining": {"checkpoint": "s.pt", "seconds": 3960.0,
                           "sessions": [{"from_epoch": 0, "device": "cpu", "seconds": 3600.0},
                                        {"from_epoch": 30, "device": "gpu", "seconds": 360.0}]}}
    (tmp_path / "p" / "table2").mkdir(parents=True)
    results.save(run, tmp_path / "p" / "table2" / "r.json")
    t = analysis.compute_spent("p", results_dir=tmp_path)
    assert t.loc[("gpu", "table2"), "runs"] == 1 and t.loc[("cpu", "table2"), "runs"] == 0
    assert t.loc[("cpu", "table2"), "wall hours"] == pytest.approx(0.1)
    assert t.loc[("gpu", "table2"), "wall hours"] == pytest.approx(40 / 3600)
    assert t.loc[("cpu", "table2"), "train hours"] == pytest.approx(200 / 3600)
    assert t.loc[("gpu", "table2"), "train hours"] == pytest.approx(30 / 3600)
    assert t.loc[("cpu", "table2"), "pretraining hours"] == pytest.approx(1.0)
    assert t.loc[("gpu", "table2"), "pretraining hours"] == pytest.approx(0.1)
    # a second cell finetuned from the same pretraining adds none; the same checkpoint name trained anew (its
    # sessions begun at another time, as when a rerun redoes a deleted pretraining) adds its own seconds
    for k, started in enumerate(("", "2026-12-07T11:55:44+00:00")):
        again = json.loads(json.dumps(run))
        if started:
            again["pretraining"]["sessions"] = [{"from_epoch": 0, "device": "cpu", "seconds": 1800.0,
                                                 "started_at": started}]
        results.save(again, tmp_path / "p" / "table2" / f"r{k}.json")
    t = analysis.compute_spent("p", results_dir=tmp_path)
    assert t.loc[("gpu", "table2"), "runs"] == 3
    assert t.loc[("cpu", "table2"), "pretraining hours"] == pytest.approx(1.5)  # 3600 s once, then 1800 s
    assert t.loc[("gpu", "table2"), "pretraining hours"] == pytest.approx(0.1)


def test_data_files_count_the_runs_that_record_the_published_file(tmp_path, monkeypatch):
    from seqrec import data as data_mod

    monkeypatch.setitem(data_mod.SHA256, "LastFM.txt", "a" * 64)

    def record(sha=None, name="LastFM", status="ok"):
        dataset = {"name": name, **({"sha256": sha} if sha else {})}
        return {"config": {"data": name}, "metrics": {}, "status": status, "dataset": dataset, "provenance": {}}

    runs = {"table2": [record("a" * 64), record("a" * 64), record("b" * 64), record(),  # stored before it was recorded
                       record("c" * 64, status="error"), record("d" * 64, name="mine")],
            "figure1": [record("a" * 64)]}
    for grid, records in runs.items():
        (tmp_path / "p" / grid).mkdir(parents=True)
        for i, r in enumerate(records):
            results.save(r, tmp_path / "p" / grid / f"r{i}.json")
    t = analysis.data_files("p", results_dir=tmp_path)
    assert t.loc["LastFM"].tolist() == [5, 4, 3, 1, "aaaaaaaaaaaa, bbbbbbbbbbbb"]
    assert t.loc["mine"].tolist() == [1, 1, 0, 1, "dddddddddddd"]  # no published checksum for a file of one's own
    assert analysis.data_files("nothing", results_dir=tmp_path).empty


def test_claims_in_words():
    text = analysis.claims_in_words(analysis.claims(_claim_cells()))
    assert text == ("CCE beats the original loss for GRU4Rec on LastFM (HIT@10, one seed, untested against seed noise); "
                    "SASRec on Beauty (HIT@10, beyond seed noise). "
                    "CCE does not beat the original loss for SASRec on LastFM (HIT@10, within seed noise).")
    mixed = analysis.claims(_claim_cells())
    both = pd.concat([mixed[mixed.model == "SASRec"].assign(dataset="Yelp", metric=m, **{"beyond seed noise": n})
                      .iloc[:1] for m, n in (("HIT@10", "yes"), ("NDCG@10", "no"))])
    assert analysis.claims_in_words(both.assign(verdict="holds")) == (
        "CCE beats the original loss for SASRec on Yelp (HIT@10 beyond seed noise, NDCG@10 within seed noise).")
    assert analysis.claims_in_words(analysis.claims(_claim_cells().iloc[6:])) == ""


def test_table3_against_table2():
    t2 = pd.DataFrame({"dataset": ["Beauty", "Beauty"], "metric": ["HIT@10", "HIT@10"], "model": ["SASRec", "SASRec"],
                       "loss_kind": ["original", "improved"], "loss": ["BCE", "CCE"], "value": [0.05, 0.09]})
    t3 = pd.DataFrame({"dataset": ["Beauty", "Beauty", "ML-1M"], "metric": ["HIT@10"] * 3,
                       "system": ["SASRec (BCE)", "SASRec (CCE)", "SASRec (BCE)"], "value": [0.025, 0.09, 0.2]})
    f = pd.DataFrame([_run(0.06, metric="full_HIT@10", data="Beauty", loss="bce"),
                      _run(0.04, metric="full_HIT@10", data="Beauty", loss="bce", seed=2)])
    t = analysis.table3_against_table2(t2, t3, f)
    assert t.loc[("SASRec (BCE)", "HIT@10"), "Table 3 vs Table 2"] == pytest.approx(-0.5)
    assert t.loc[("SASRec (BCE)", "HIT@10"), "ours"] == pytest.approx(0.05)
    assert t.loc[("SASRec (CCE)", "HIT@10"), "Table 3 vs Table 2"] == pytest.approx(0.0)
    assert np.isnan(t.loc[("SASRec (CCE)", "HIT@10"), "ours"]) and np.isnan(t.loc[("SASRec (CCE)", "NDCG@10"), "paper Table 2"])


# --------------------------------------------------------------------------- Figure 1 verdicts and claim
def _figure1_compared(with_mlm=False):
    """paper.compare of Figure 1 on hand-made runs: CCE at 0.09 / 0.052 (seeds 42, 43: 0.08 and 0.10 HIT@10),
    BCE-1 at 0.06 / 0.03, BPR-10 at 0.02 HIT@10 only, CE at 0.10 / 0.04, every other loss not run."""
    from seqrec import paper

    def run(loss, negatives, metric, value, seed=42):
        kind = "improved" if loss == "CCE" else "original"
        return {"data": "Beauty", "paper_model": "SASRec", "loss_kind": kind, "paper_loss": loss, "negatives": negatives,
                "metric": metric, "value": value, "seed": seed, "key": f"{loss}{negatives}-{seed}", "train_seconds": 100.0}

    rows = [run("CCE", "all", "full_HIT@10", 0.08), run("CCE", "all", "full_NDCG@10", 0.052),
            run("CCE", "all", "full_HIT@10", 0.10, seed=43), run("CCE", "all", "full_NDCG@10", 0.052, seed=43),
            run("BCE", "1", "full_HIT@10", 0.06), run("BCE", "1", "full_NDCG@10", 0.03),
            run("BPR", "10", "full_HIT@10", 0.02),
            run("CE", "all", "full_HIT@10", 0.10), run("CE", "all", "full_NDCG@10", 0.04)]
    if with_mlm:  # MLM (mask 0.2): HIT@10 0.05 (reported 0.060), NDCG@10 0.02 and 0.06 over two seeds (not reported)
        rows += [run("MLM (mask 0.2)", "all", "full_HIT@10", 0.05), run("MLM (mask 0.2)", "all", "full_NDCG@10", 0.02),
                 run("MLM (mask 0.2)", "all", "full_HIT@10", 0.05, seed=43),
                 run("MLM (mask 0.2)", "all", "full_NDCG@10", 0.06, seed=43)]
    frame = pd.DataFrame(rows)
    compared = paper.compare(frame, "figure1")
    return (compared, frame) if with_mlm else compared


def test_figure1_metrics_the_paper_does_not_report_are_still_ours():
    compared, frame = _figure1_compared(with_mlm=True)
    assert "full_NDCG@10" not in set(compared[compared.loss == "MLM (mask 0.2)"].metric)  # read off a HIT@10 figure
    v = analysis.figure1_verdicts(compared, frame=frame)
    mlm = v.loc["MLM (mask 0.2)"]
    assert mlm["NDCG@10 reported"] == analysis.NOT_REPORTED and mlm["NDCG@10 verdict"] == analysis.NOT_REPORTED
    assert mlm["NDCG@10 ours"] == "0.0400 ± 0.0283 (2 seeds)"  # mean of 0.02, 0.06; std sqrt(0.0008)
    assert mlm["HIT@10 ours"] == "0.0500 ± 0.0000 (2 seeds)" and mlm["HIT@10 verdict"] == "worse"  # -16.7 %
    assert analysis.figure1_verdicts(compared).loc["MLM (mask 0.2)", "NDCG@10 ours"] == analysis.NOT_REPORTED
    assert v.loc["BPR-10", "NDCG@10 ours"] == "not run"  # reported, not run: unchanged
    claim = analysis.figure1_claim(compared, frame)
    ndcg = claim[claim.metric == "NDCG@10"].set_index("other loss")
    assert ndcg.loc["MLM (mask 0.2)", "verdict"] == "holds"  # CCE 0.052 > 0.04
    assert ndcg.loc["MLM (mask 0.2)", "difference"] == pytest.approx(0.012)
    assert ndcg.loc["MLM (mask 0.2)", "paper: CCE better"] == analysis.NOT_REPORTED
    assert np.isnan(ndcg.loc["MLM (mask 0.2)", "reported other"])
    assert "on NDCG@10 it beats 3 of the 3 other losses run" in analysis.figure1_claim_in_words(claim)
    assert "on NDCG@10 it beats 2 of the 2" in analysis.figure1_claim_in_words(analysis.figure1_claim(compared))


def test_figure1_cells_and_verdicts():
    c = _figure1_compared()
    cells = analysis.figure1_cells(c)
    assert len(cells) == 17 and cells["label"].is_unique  # one per point of the figure
    assert cells.set_index("label").loc["BCE-1", "verdict"] == "reproduced"  # 0.06 vs 0.0585: +2.6 %
    reasons = pd.Series("", index=c.index)
    reasons[c[(c.loss == "BCE") & (c.negatives == "10")].index] = "compute"
    v = analysis.figure1_verdicts(c, reasons)
    assert list(v.index) == list(cells["label"])
    assert v.loc["CCE", "HIT@10 ours"] == "0.0900 ± 0.0141 (2 seeds)"
    assert v.loc["CCE", "HIT@10 verdict"] == "reproduced"  # 0.09 vs 0.0936: −3.8 %
    assert v.loc["CCE", "NDCG@10 verdict"] == "reproduced" and v.loc["CCE", "NDCG@10 vs paper"] == pytest.approx(0.052 / 0.0564 - 1)
    assert v.loc["CE", "HIT@10 verdict"] == "better" and v.loc["CE", "NDCG@10 verdict"] == "better"  # 0.04 vs 0.0306
    assert v.loc["BPR-10", "HIT@10 verdict"] == "better" and v.loc["BPR-10", "NDCG@10 verdict"] == "not run"
    assert v.loc["BCE-10", "HIT@10 ours"] == "not run" and v.loc["BCE-10", "why not run"] == "compute"
    assert v.loc["MLM (mask 0.2)", "NDCG@10 reported"] == analysis.NOT_REPORTED  # read off a HIT@10-only figure
    assert v.loc["MLM (mask 0.2)", "HIT@10 reported"] == pytest.approx(0.060)


def test_figure1_reasons_read_the_papers_own_numbers():
    c = _figure1_compared()
    r = analysis.figure1_reasons(c)
    assert r["BCE-1"] == "" and r["CCE"] == "" and r["BCE-10"] == ""  # reproduced, reproduced, not run
    # BPR-10: ours 0.02 against 0.0165 (+21 %); the paper's log has sampled HIT@10 0.0139 < full 0.0165 and sampled
    # NDCG@10 0.0043 < full 0.0075 (impossible for one set of scores), and 0.0139 < 0.10, random scores' HIT@10
    assert r["BPR-10"] == ("the reported point is not a consistent evaluation of one trained model: the paper's own "
                           "numbers for this point are inconsistent (sampled HIT@10 0.0139 < full 0.0165; sampled "
                           "NDCG@10 0.0043 < full 0.0075): one set of scores cannot rank a target lower among 100 "
                           "candidates than among all items; its reported sampled HIT@10, 0.0139, is below what random "
                           "scores give (0.10: 10 of the 100 candidates); so the gap is no evidence about the loss")
    # CE: better (0.10 vs 0.0516) but the paper's numbers are consistent (sampled 0.56) and above chance
    assert r["CE"].startswith("not investigated")
    # below chance alone (sampled 0.09 >= full 0.0516), and with our sampled HIT@10 stored
    sampled = c.index[(c.loss == "CE") & (c.metric == "sampled_HIT@10")]
    c.loc[sampled, "reported"], c.loc[sampled, "reproduced"] = 0.09, 0.3
    assert analysis.figure1_reasons(c)["CE"] == (
        "the reported point is not a consistent evaluation of one trained model: its reported sampled HIT@10, 0.0900, "
        "is below what random scores give (0.10: 10 of the 100 candidates); our run's sampled HIT@10 is 0.3000; so the "
        "gap is no evidence about the loss")
    # a point the paper reports without sampled metrics (the MLM points, read off the figure): nothing to check
    from seqrec import paper

    mlm = pd.DataFrame([{"data": "Beauty", "paper_model": "SASRec", "loss_kind": "original",
                         "paper_loss": "MLM (mask 0.5)", "negatives": "all", "metric": metric, "value": value,
                         "seed": 42, "key": "m", "train_seconds": 1.0}
                        for metric, value in (("full_HIT@10", 0.05), ("sampled_HIT@10", 0.4))])
    r = analysis.figure1_reasons(paper.compare(mlm, "figure1"))
    assert r["MLM (mask 0.5)"] == ("not investigated: the paper gives no sampled metric for this point to check its "
                                   "full-ranking one against, and no stored run isolates a cause; its reported value "
                                   "is read off the paper's figure, so it is approximate")  # 0.05 vs 0.065


def test_figure1_reasons_say_when_our_run_was_still_rising(tmp_path):
    """A point below the paper's whose run was still climbing on validation HIT@10 when its epoch budget ended it
    gets "possibly too few epochs", with the pace, the other runs' and the epochs that pace needs."""
    from seqrec import paper

    def stored(name, loss, mask, values, epochs_run=200, test=0.05):
        path = tmp_path / f"{name}.json"
        results.save({"config": {"loss": loss, "num_negatives": 1, "mask_prob": mask, "seed": 42, "epochs": 200,
                                 "patience": 20, "monitor": "train_loss"},
                      "curve": [{"epoch": e, "train_loss": 1.0, "valid_HIT@10": v} for e, v in values],
                      "epochs_run": epochs_run, "metrics": {"full_HIT@10": test}, "provenance": {}}, path)
        return str(path)

    def frame_of(paths_values):
        return pd.DataFrame([{"data": "Beauty", "paper_model": "SASRec", "loss_kind": kind, "paper_loss": loss,
                              "negatives": "all", "metric": "full_HIT@10", "value": value, "seed": 42, "key": loss,
                              "train_seconds": 1.0, "path": path}
                             for loss, kind, value, path in paths_values])

    # MLM (mask 0.5): 0.04 + 0.0001 e, +18.2 % of its second half's level (0.055) per 100 epochs; test 0.05 against
    # the reported 0.065 (-23 %): 30 % to go at 18.2 % per 100 epochs is 165 epochs.
    # CCE: 0.09 - 0.00001 e, -0.001 per 100 epochs against a level of 0.0885: -1.1 %
    mlm = stored("mlm", "mlm", 0.5, [(e, 0.04 + 0.0001 * e) for e in range(1, 201)])
    cce = stored("cce", "cce", 0.2, [(e, 0.09 - 0.00001 * e) for e in range(1, 201)], test=0.0936)
    frame = frame_of([("MLM (mask 0.5)", "original", 0.05, mlm), ("CCE", "improved", 0.0936, cce)])
    compared = paper.compare(frame, "figure1")
    r = analysis.figure1_reasons(compared, frame=frame)
    assert r["MLM (mask 0.5)"] == (
        "possibly too few epochs: our run trained its whole 200-epoch budget (the stopping rule, patience 20 on the "
        "training loss, never fired), and its validation HIT@10 was still rising over epochs 100-200 (a least-squares "
        "line through them gains +18.2% of its level per 100 epochs; Figure 1's other run: -1.1%); at that pace, "
        "with the test HIT@10 rising in step, it would reach the reported value after about 165 more epochs; so a "
        "longer budget might close the gap or part of it (untested); its reported value is read off the paper's "
        "figure, so it is approximate")
    assert r["CCE"] == ""  # reproduced
    # without the runs, as before
    assert analysis.figure1_reasons(compared)["MLM (mask 0.5)"].startswith("not investigated")
    # a run the stopping rule ended, and a second rising run among the others
    mlm2 = stored("mlm2", "mlm", 0.2, [(e, 0.03 + 0.0001 * e) for e in range(1, 151)], epochs_run=150)
    frame = frame_of([("MLM (mask 0.5)", "original", 0.05, mlm), ("CCE", "improved", 0.0936, cce),
                      ("MLM (mask 0.2)", "original", 0.059, mlm2)])
    r = analysis.figure1_reasons(paper.compare(frame, "figure1"), frame=frame)
    # MLM (mask 0.2): epochs 75..150, level 0.03 + 0.0001 * 112.5 = 0.04125, 0.01 per 100 epochs: +24.2 %
    assert "; of Figure 1's other 2 runs, 1 rose as fast: MLM (mask 0.2) +24.2%, the rest -1.1%)" in r["MLM (mask 0.5)"]
    assert r["MLM (mask 0.2)"] == ""  # 0.059 against 0.060: reproduced
    frame.loc[frame.paper_loss == "MLM (mask 0.2)", "value"] = 0.04  # now worse, its run stopped early at epoch 150
    r = analysis.figure1_reasons(paper.compare(frame, "figure1"), frame=frame)
    assert r["MLM (mask 0.2)"].startswith("possibly too few epochs: our run stopped at epoch 150, and its validation "
                                          "HIT@10 was still rising over epochs 75-150")
    # a flat curve, or a point above the paper's, gets no such reason
    flat = stored("flat", "mlm", 0.5, [(e, 0.06) for e in range(1, 201)])
    frame = frame_of([("MLM (mask 0.5)", "original", 0.05, flat), ("CCE", "improved", 0.0936, cce)])
    assert analysis.figure1_reasons(paper.compare(frame, "figure1"), frame=frame)["MLM (mask 0.5)"].startswith(
        "not investigated")
    frame = frame_of([("MLM (mask 0.5)", "original", 0.08, mlm), ("CCE", "improved", 0.0936, cce)])
    assert analysis.figure1_reasons(paper.compare(frame, "figure1"), frame=frame)["MLM (mask 0.5)"].startswith(
        "not investigated")  # 0.08 against 0.065: better, and more epochs would not explain that


def test_figure1_reasons_check_a_longer_budget(tmp_path):
    """Once the same configuration with a longer budget (the ablations grid's figure1_budget) is stored, it settles
    the "possibly too few epochs" of a point whose run was still rising: found, partly or ruled out; before, a run
    under way is named with how far it has got."""
    from seqrec import paper

    path = tmp_path / "mlm.json"
    results.save({"config": {"loss": "mlm", "num_negatives": 1, "mask_prob": 0.5, "seed": 42, "epochs": 200,
                             "patience": 20, "monitor": "train_loss"},
                  "curve": [{"epoch": e, "valid_HIT@10": 0.04 + 0.0001 * e} for e in range(1, 201)],
                  "epochs_run": 200, "metrics": {}, "provenance": {}}, path)
    labels = {"data": "Beauty", "paper_model": "SASRec", "loss_kind": "original", "paper_loss": "MLM (mask 0.5)",
              "negatives": "all", "metric": "full_HIT@10", "seed": 42, "train_seconds": 1.0}
    frame = pd.DataFrame([{**labels, "value": 0.05, "key": "m", "path": str(path)}])
    compared = paper.compare(frame, "figure1")  # 0.05 against the reported 0.065: -23 %, worse

    def longer(value, epochs_run=400, best=390, seeds=(42,)):
        return pd.DataFrame([{**labels, "value": value, "seed": seed, "key": f"l{seed}", "ablation": "figure1_budget",
                              "epochs": 400, "epochs_run": epochs_run, "best_epoch": best} for seed in seeds])

    def reason(longer_runs=None, planned=None):
        return analysis.figure1_reasons(compared, frame=frame, longer=longer_runs, planned=planned)["MLM (mask 0.5)"]

    rising = ("our run trained its whole 200-epoch budget (the stopping rule, patience 20 on the training loss, never "
              "fired), and its validation HIT@10 was still rising over epochs 100-200 (a least-squares line through "
              "them gains +18.2% of its level per 100 epochs); at that pace, with the test HIT@10 rising in step, it "
              "would reach the reported value after about 165 more epochs")
    approximate = "; its reported value is read off the paper's figure, so it is approximate"
    assert reason() == (f"possibly too few epochs: {rising}; so a longer budget might close the gap or part of it "
                        f"(untested){approximate}")
    # planned, part-way
    planned = pd.DataFrame([{**labels, "ablation": "figure1_budget", "stored": False,
                             "progress": "37 of 400 epochs done (parked checkpoint)"},
                            {**labels, "ablation": "figure1_seeds", "stored": False, "progress": ""}])
    assert reason(planned=planned) == (
        f"possibly too few epochs: {rising}; so a longer budget might close the gap or part of it (a run with a "
        f"400-epoch budget (the ablations grid's figure1_budget; seed 42: 37 of 400 epochs done, parked checkpoint) is "
        f"planned, not stored yet){approximate}")
    # stored: 0.060 is within 10 % of 0.065 and moves the point by 2/3 of its gap: found
    assert reason(longer(0.060), planned.assign(stored=True)) == (
        "epoch budget: with a 400-epoch budget (400 epochs, the whole budget, best epoch 390) the same cell reaches "
        f"0.0600 (reported 0.0650); the run at the protocol's budget: {rising}{approximate}")
    # 0.055: nearer, still outside the tolerance: partly
    assert reason(longer(0.055, epochs_run=260, best=240)).startswith(
        "partly the epoch budget: with a 400-epoch budget (260 epochs, then its stopping rule fired, best epoch 240) "
        "the same cell reaches 0.0550, -15% from the reported 0.0650 against -23% at the protocol's budget; the run at")
    # 0.051: a fifteenth of the gap, less than a quarter: ruled out; two seeds are averaged
    assert reason(longer(0.051, seeds=(42, 43))).startswith(
        "not explained by the epoch budget (with a 400-epoch budget (seed 42: 400 epochs, the whole budget, best epoch "
        "390; seed 43: 400 epochs, the whole budget, best epoch 390, 2 seeds) the cell reaches 0.0510, -22% from the "
        "reported 0.0650); the run at the protocol's budget: our run")


def test_figure1_reasons_near_the_popularity_ranking():
    c = _figure1_compared()
    popularity = {"full_HIT@10": 0.0130, "full_NDCG@10": 0.0059}
    r = analysis.figure1_reasons(c, popularity)
    # BPR-10 reported 0.0165 / 0.0075: 1.27x and 1.27x the popularity ranking, within 1.5x on both metrics
    assert r["BPR-10"].endswith("; the reported point is within 1.5× of ranking every user's items by popularity with "
                                "no model, on the same split (HIT@10 0.0165 against 0.0130, NDCG@10 0.0075 against "
                                "0.0059): that run learned little beyond item popularity")
    assert r["BPR-10"].startswith("the reported point is not a consistent evaluation")  # the other checks still run
    assert r["CE"].startswith("not investigated")  # reported 0.0516: 4x the popularity ranking
    assert r["BCE-1"] == ""  # reproduced: no reason asked for
    # our run near popularity (0.019 <= 1.5 x 0.013 and 0.008 <= 1.5 x 0.0059), the paper's CE not: a reason of its own
    ce = c.index[(c.loss == "CE") & c.metric.isin(["full_HIT@10", "full_NDCG@10"])]
    c.loc[ce, "reproduced"] = [0.019, 0.008] if c.loc[ce[0], "metric"] == "full_HIT@10" else [0.008, 0.019]
    c.loc[ce, "rel_diff"] = c.loc[ce, "reproduced"] / c.loc[ce, "reported"] - 1
    c.loc[ce, "verdict"] = "worse"
    assert analysis.figure1_reasons(c, popularity)["CE"] == (
        "our run is within 1.5× of ranking every user's items by popularity with no model, on the same split "
        "(HIT@10 0.0190 against 0.0130, NDCG@10 0.0080 against 0.0059): that run learned little beyond item popularity")
    # one metric beyond 1.5x (our NDCG@10 0.0080 > 1.5 x 0.0047 = 0.00705) is not near
    assert analysis.figure1_reasons(c, {"full_HIT@10": 0.0130, "full_NDCG@10": 0.0047})["CE"].startswith("not investigated")


def test_figure1_claim_and_words():
    claim = analysis.figure1_claim(_figure1_compared())
    hit = claim[claim.metric == "HIT@10"].set_index("other loss")
    assert len(hit) == 16 and len(claim) == 16 + 14  # the MLM points report HIT@10 only
    assert hit.loc["BCE-1", "verdict"] == "holds" and hit.loc["BCE-1", "difference"] == pytest.approx(0.03)
    assert hit.loc["CE", "verdict"] == "does not hold"  # 0.09 < 0.10
    assert bool(hit.loc["CE", "paper: CCE better"])
    assert hit.loc["BCE-10", "verdict"] == "not run" and np.isnan(hit.loc["BCE-10", "difference"])
    ndcg = claim[claim.metric == "NDCG@10"].set_index("other loss")
    assert ndcg.loc["CE", "verdict"] == "holds" and ndcg.loc["BPR-10", "verdict"] == "not run"
    words = analysis.figure1_claim_in_words(claim)
    assert words == ("Figure 1's claim, CCE is the most accurate loss: on HIT@10 it beats 2 of the 3 other losses run "
                     "(not CE); on NDCG@10 it beats 2 of the 2 other losses run. 13 other loss configurations are not run yet.")
    one_left = claim[(claim.verdict != "not run") | (claim["other loss"] == "BCE-10")]  # only BCE-10 not run
    assert analysis.figure1_claim_in_words(one_left).endswith(" 1 other loss configuration is not run yet.")
    none = analysis.figure1_claim(_figure1_compared().assign(reproduced=np.nan))
    assert set(none.verdict) == {"not run"} and "not tested yet" in analysis.figure1_claim_in_words(none)


def test_figure1_closest_weighs_the_margin_against_cce_seeds():
    claim = analysis.figure1_claim(_figure1_compared())
    seeds = pd.DataFrame({"metric": ["full_HIT@10"] * 4 + ["full_NDCG@10"], "seed": [42, 43, 44, 44, 42],
                          "value": [0.10, 0.11, 0.12, 0.12, 0.05]})  # seed 44 stored twice counts once
    c = analysis.figure1_closest(claim, seeds).set_index("metric")
    # HIT@10: CE is 0.01 above CCE (the smallest difference, -0.01); std of 0.10, 0.11, 0.12 (ddof=1) is 0.01
    assert c.loc["HIT@10", "closest loss"] == "CE" and c.loc["HIT@10", "difference"] == pytest.approx(-0.01)
    assert c.loc["HIT@10", "CCE seed std"] == pytest.approx(0.01) and c.loc["HIT@10", "seeds"] == 3
    assert c.loc["HIT@10", "difference / std"] == pytest.approx(-1.0)
    assert c.loc["NDCG@10", "seeds"] == 1 and np.isnan(c.loc["NDCG@10", "difference / std"])  # one seed: no std
    hit = claim[claim.metric == "HIT@10"]
    words = analysis.figure1_closest_in_words(analysis.figure1_closest(hit, seeds), "the Table 2 configuration")
    assert words == ("Closest to CCE: CE on HIT@10 (0.0100 above CCE, 1.0× CCE's seed std of 0.0100). CCE's std is "
                     "over 3 seeds of the Table 2 configuration; every Figure 1 point has one seed and the other "
                     "loss's own spread is not measured, so this weighs the margin, it does not test it.")
    # the other loss's seeds from Figure 1's configuration beside CCE's from another: reported, never tested
    theirs = pd.DataFrame({"metric": "full_HIT@10", "seed": [42, 43], "value": [0.12, 0.14], "label": "CE"})
    mixed = analysis.figure1_closest(hit, seeds, theirs, same_configuration=False)
    assert mixed.loc[0, "other seed std"] == pytest.approx(0.0141, abs=1e-4)
    assert mixed.loc[0, "beyond seed noise"] is None
    assert analysis.figure1_closest_in_words(mixed, "the Table 2 configuration").endswith(
        "CCE's std is over 3 seeds of the Table 2 configuration; in Figure 1's configuration CE's HIT@10 std is 0.0141 "
        "over 2 seeds; the two spreads come from different configurations, so this weighs the margin, it does not "
        "test it.")
    assert analysis.figure1_closest(hit, seeds, theirs).loc[0, "beyond seed noise"] is not None  # same: tested
    alone = analysis.figure1_closest(hit)
    assert alone["seeds"].tolist() == [0] and np.isnan(alone.loc[0, "CCE seed std"])
    assert analysis.figure1_closest_in_words(alone).endswith("cannot be weighed against seed noise.")
    none = analysis.figure1_claim(_figure1_compared().assign(reproduced=np.nan))
    assert analysis.figure1_closest(none).empty and analysis.figure1_closest_in_words(analysis.figure1_closest(none)) == ""


def test_figure1_closest_tests_the_margin_when_both_losses_have_seeds():
    hit = analysis.figure1_claim(_figure1_compared())
    hit = hit[hit.metric == "HIT@10"]  # closest: CE, 0.01 above our CCE
    cce = pd.DataFrame({"metric": "full_HIT@10", "seed": [42, 43, 44], "value": [0.10, 0.11, 0.12]})  # mean 0.11, std 0.01

    def other(values, label="CE"):
        return pd.DataFrame({"metric": "full_HIT@10", "seed": [42, 43, 44], "value": values, "label": label})
    far = analysis.figure1_closest(hit, cce, pd.concat([other([0.13, 0.15, 0.14]), other([0.5, 0.6, 0.7], "BCE-1")]))
    r = far.iloc[0]  # BCE-1's seeds belong to another loss and are ignored
    assert r["other seeds"] == 3 and r["other seed std"] == pytest.approx(0.01)
    assert r["mean difference"] == pytest.approx(-0.03) and bool(r["beyond seed noise"]) is True  # 0.03 > 2 × 0.01
    words = analysis.figure1_closest_in_words(far, "the Figure 1 configuration")
    assert words == ("Closest to CCE: CE on HIT@10 (0.0100 above CCE; over the seeds, CCE's mean is 0.0300 below its, "
                     "beyond seed noise: the stds are 0.0100 (CCE, 3 seeds) and 0.0100 (3 seeds)). Seeds are runs of "
                     "the Figure 1 configuration.")
    near = analysis.figure1_closest(hit, cce, other([0.11, 0.12, 0.13])).iloc[0]
    assert near["mean difference"] == pytest.approx(-0.01) and bool(near["beyond seed noise"]) is False
    tight = analysis.figure1_closest(hit, cce, other([0.14, 0.14004, 0.14008]))  # std 0.00004: not printed as 0.0000
    assert "the stds are 0.0100 (CCE, 3 seeds) and 0.00004 (3 seeds)" in analysis.figure1_closest_in_words(tight)
    one = analysis.figure1_closest(hit, cce, other([0.13, 0.15, 0.14]).iloc[:1]).iloc[0]  # one seed: untested
    assert one["beyond seed noise"] is None and np.isnan(one["mean difference"]) and np.isnan(one["other seed std"])


def test_verdict_overview_counts_each_table():
    c = _figure1_compared()
    o = analysis.verdict_overview({"Table 2": _compared(), "Figure 1": analysis.figure1_cells(c)})
    assert list(o.columns) == [*analysis.VERDICTS, "run", "cells"]
    assert o.loc["Table 2"].tolist() == [1, 0, 1, 2, 2, 4]
    assert o.loc["Figure 1"].tolist() == [2, 2, 0, 13, 4, 17]  # BCE-1, CCE reproduced; BPR-10, CE better


# --------------------------------------------------------------------------- seen-item scoring on stored models
def _scoring(data, model, kind, metric, values, seed=43):
    return [{"data": data, "paper_model": model, "paper_loss": "BCE", "loss_kind": kind, "seed": seed,
             "key": f"k{seed}", "exclude": exclude, "metric": f"full_{metric}", "value": v}
            for exclude, v in values.items()]


def test_discrepancy_reasons_check_the_seen_item_scoring():
    c = pd.DataFrame([_cell("Toys_and_Games", "SASRec", "original", "BCE", "HIT@10", 0.0613, 0.0683, 0.0016, 3),
                      _cell("Beauty", "SASRec", "original", "BCE", "HIT@10", 0.0500, 0.0600),
                      _cell("Yelp", "GRU4Rec", "original", "CE", "HIT@10", 0.0500, 0.0560)])
    c["verdict"] = ["better", "better", "better"]
    checks = pd.DataFrame(_scoring("Toys_and_Games", "SASRec", "original", "HIT@10", {"-inf": 0.0670, "zero": 0.0668})
                          + _scoring("Toys_and_Games", "SASRec", "original", "HIT@10", {"-inf": 0.0690, "zero": 0.0690}, 44)
                          + _scoring("Beauty", "SASRec", "original", "HIT@10", {"-inf": 0.0590, "zero": 0.0530})
                          + _scoring("Yelp", "GRU4Rec", "original", "HIT@10", {"-inf": 0.0540, "zero": 0.0540}))
    r = analysis.discrepancy_reasons(c, pd.DataFrame(), seen_scoring=checks)
    # Toys: effect (0.0668 + 0.0690)/2 − (0.0670 + 0.0690)/2 = −0.0001; 0.0683 − 0.0001 is still 11 % above 0.0613
    assert r[0] == ("not explained by seed variance (mean ± 2 std over 3 seeds is 0.0651–0.0715); nor by the authors' "
                    "seen-item scoring (scoring seen items 0 changes the value by -0.0001 on 2 stored models "
                    "(seeds 43, 44): 0.0680 removed, 0.0679 scored 0)")
    # Beauty: effect −0.0060 brings 0.0600 to 0.0540, within 10 % of 0.0500
    assert r[1] == ("seen-item scoring: scoring seen items 0 as the authors' code does, instead of removing them, "
                    "changes the value by -0.0060 on 1 stored model (seeds 43): 0.0590 removed, 0.0530 scored 0; "
                    "the cell's 0.0600 so shifted is 0.0540 (reported 0.0500)")
    # Yelp: the models' own mean (0.0540) is within 10 % of 0.0500, but the rule changes nothing: not the reason
    assert r[2].startswith("not explained by the authors' seen-item scoring (scoring seen items 0 changes the value "
                           "by +0.0000")
    assert analysis.discrepancy_reasons(c, pd.DataFrame())[1].startswith("not investigated")
    # with how many targets the rule moves (mean share over the models, the best position that moved)
    row = {"data": "Toys_and_Games", "paper_model": "SASRec", "paper_loss": "BCE", "loss_kind": "original", "exclude": "zero"}
    moved = pd.DataFrame([{**row, "seed": seed, "key": f"k{seed}", "metric": m, "value": v} for seed, m, v in (
        (43, "moved_share", 0.50), (43, "first_moved_position", 354.0),
        (44, "moved_share", 0.56), (44, "first_moved_position", 300.0))])
    r = analysis.discrepancy_reasons(c.iloc[:1], pd.DataFrame(), seen_scoring=pd.concat([checks.iloc[:4], moved]))
    assert r[0].endswith("0.0680 removed, 0.0679 scored 0; it moves the target of 53% of the users, "
                         "all from position 300 or below)")


def test_seen_scoring_on_a_stored_model_reproduces_its_metrics(tmp_path, monkeypatch):
    """A run stored by the runner keeps its best model; testing it again with seen items removed gives the record's
    own test metrics exactly, and scoring them 0 can only push the target down (never a higher HIT@10). The result
    is cached under analysis/ and read back without the model."""
    from seqrec import experiments, runner
    from seqrec.experiments import GRIDS, PROFILES, Profile

    from test_runner import tiny_grid, write_dataset  # pytest puts tests/ on the path

    data = write_dataset(tmp_path / "tiny.txt")
    monkeypatch.setitem(GRIDS, "tinygrid", tiny_grid(data))
    monkeypatch.setitem(PROFILES, "tinyprof", Profile("tinyprof", "test profile"))
    res = tmp_path / "res"
    experiments.run_grid("tinygrid", "tinyprof", only={"loss": "bce", "model": "sasrec"}, results_dir=res,
                         executor="inprocess", progress=False)
    assert analysis.seen_scoring_checks("tinyprof", str(res)).empty  # nothing cached, not asked to compute
    checks = analysis.seen_scoring_checks("tinyprof", str(res), compute=True)
    record = next(iter(runner.Store(res, "tinyprof", "tinygrid").records().values()))
    removed = checks[checks.exclude == "-inf"].set_index("metric")["value"]
    zero = checks[checks.exclude == "zero"].set_index("metric")["value"]
    for m in analysis.SEEN_SCORING_METRICS:
        assert removed[m] == record["metrics"][m]
    assert zero["full_HIT@10"] <= removed["full_HIT@10"] and 0 <= zero["moved_share"] <= 1
    assert removed.index.tolist() == list(analysis.SEEN_SCORING_METRICS)  # the moved_* rows are under "zero" only
    assert set(checks.paper_model) == {"SASRec"} and set(checks.loss_kind) == {"original"}
    for model in (res / "tinyprof" / ".models").rglob("*.pt"):
        model.unlink()
    again = analysis.seen_scoring_checks("tinyprof", str(res))
    pd.testing.assert_frame_equal(again, checks)


def test_discrepancy_reasons_check_the_negative_pool():
    c = pd.DataFrame([_cell("Toys_and_Games", "SASRec", "original", "BCE", "HIT@10", 0.0613, 0.0683, 0.0016, 3),
                      _cell("LastFM", "SASRec", "original", "BCE", "HIT@10", 0.0404, 0.0584, 0.0050, 3)])
    c["verdict"] = ["better", "better"]
    pool = dict(loss="bce", ablation="negative_pool", negative_pool="unseen", loss_kind="original", metric="full_HIT@10")
    runs = pd.DataFrame([
        _run(0.0610, data="Toys_and_Games", **pool),                      # within 10 % of 0.0613: the reason
        _run(0.0560, **pool), _run(0.0580, seed=43, **pool),             # LastFM: mean 0.0570, not within 10 % of 0.0404
        _run(0.0300, exclude_seen="zero", **pool),                        # scored 0 at test too: not this check's run
        _run(0.0400, loss="bce", negative_pool="others", ablation="bce_negatives", loss_kind="original",
             metric="full_HIT@10"),                                        # another ablation: ignored
    ])
    r = analysis.discrepancy_reasons(c, runs)
    assert r[0] == ("negative pool: with negatives drawn among the user's unseen items, as the authors' code does "
                    "(1 seed) the same cell reaches 0.0610 (reported 0.0613); not explained by seed variance "
                    "(mean ± 2 std over 3 seeds is 0.0651–0.0715)")
    assert r[1].endswith("nor by negative pool (with negatives drawn among the user's unseen items, as the authors' "
                         "code does (2 seeds) the cell reaches 0.0570)")
    # old frames without the column: no check, no error
    assert "negative pool" not in analysis.discrepancy_reasons(c, runs.drop(columns="negative_pool"))[0]


def test_discrepancy_reasons_check_the_training_recipe():
    """SR-GNN CE cells below the paper, each with a run under SR-GNN's own recipe: one lands within 10 % (found),
    one nearer but outside (partly), one further away (ruled out); a cell without such a run gets no recipe check.
    (Two cells per metric, so no "systematic" sentence.)"""
    c = pd.DataFrame([_cell(d, "SR-GNN", "original", "CE", m, 0.0160, 0.0110) for d, m in
                      (("Toys_and_Games", "HIT@10"), ("Beauty", "HIT@10"), ("Sports_and_Outdoors", "NDCG@10"),
                       ("Yelp", "NDCG@10"))])
    c["verdict"] = "worse"
    recipe = dict(model="srgnn", loss="ce", paper_model="SR-GNN", loss_kind="original", ablation="srgnn_recipe",
                  weight_decay=1e-5, lr_step=3, lr_gamma=0.1)
    runs = pd.DataFrame([_run(0.0150, data="Toys_and_Games", metric="full_HIT@10", **recipe),  # -6 %: within 10 %
                         _run(0.0130, data="Beauty", metric="full_HIT@10", **recipe),          # -19 %: nearer than -31 %
                         _run(0.0100, data="Sports_and_Outdoors", metric="full_NDCG@10", **recipe),  # -38 %: further
                         _run(0.0150, data="Yelp", metric="full_NDCG@10", **{**recipe, "ablation": "patience"})])
    r = analysis.discrepancy_reasons(c, runs)
    what = "SR-GNN's own recipe (Adam with L2 1e-05, the learning rate times 0.1 every 3 epochs; 1 seed)"
    assert r[0] == f"training recipe: with {what} the same cell reaches 0.0150 (reported 0.0160)"
    assert r[1] == (f"partly the training recipe: with {what} the same cell reaches 0.0130, -19% from the reported "
                    "0.0160 against -31% with the protocol's")
    assert r[2] == f"not explained by the training recipe (with {what} the cell reaches 0.0100, -38% from the reported 0.0160)"
    assert "recipe" not in r[3]
    table = analysis.recipe_comparison(c, runs)
    assert list(table.index.get_level_values("dataset")) == ["Toys_and_Games", "Beauty", "Sports_and_Outdoors"]
    assert table["own recipe"].tolist() == pytest.approx([0.0150, 0.0130, 0.0100])
    assert table["protocol vs reported"].tolist() == pytest.approx([0.0110 / 0.0160 - 1] * 3)
    assert table["own recipe vs reported"].tolist() == pytest.approx([0.0150 / 0.0160 - 1, 0.0130 / 0.0160 - 1, 0.0100 / 0.0160 - 1])
    assert analysis.recipe_comparison(c, runs[runs.ablation != "srgnn_recipe"]).empty


def test_the_recipe_check_weighs_the_change_against_seed_noise():
    """Toys_and_Games SR-GNN CE as stored: protocol 0.0114, 0.0107, 0.0157 (mean 0.0126, std 0.0027), recipe
    0.0152, 0.0140, 0.0157 (mean 0.0150, std 0.0009). The recipe lands within 10 % of 0.0163, but its change,
    +0.0024, is within 2 × 0.0027: the reason says so. With a tight protocol (std 0.0005) it is beyond."""
    c = pd.DataFrame([_cell("Toys_and_Games", "SR-GNN", "original", "CE", "HIT@10", 0.0163, 0.012600, 0.002706, 3)])
    c["verdict"] = "worse"
    recipe = dict(data="Toys_and_Games", model="srgnn", loss="ce", paper_model="SR-GNN", loss_kind="original",
                  metric="full_HIT@10", ablation="srgnn_recipe", weight_decay=1e-5, lr_step=3, lr_gamma=0.1)
    runs = pd.DataFrame([_run(v, seed=s, **recipe) for v, s in ((0.0152, 42), (0.0140, 43), (0.0157, 44))])
    r = analysis.discrepancy_reasons(c, runs)[0]
    assert ("the same cell reaches 0.0150 (reported 0.0163); but its change, +0.0024, is within seed noise "
            "(2 × the larger std, 0.0054)") in r
    table = analysis.recipe_comparison(c, runs)
    assert table["own recipe std"].iloc[0] == pytest.approx(np.std([0.0152, 0.0140, 0.0157], ddof=1))
    assert (table["own recipe seeds"].iloc[0], table["change beyond seed noise"].iloc[0]) == (3, "no")
    c["reproduced_std"] = 0.0005
    assert "is beyond seed noise (2 × the larger std, 0.0017)" in analysis.discrepancy_reasons(c, runs)[0]
    assert analysis.recipe_comparison(c, runs)["change beyond seed noise"].iloc[0] == "yes"


def test_a_change_that_barely_moves_a_cell_explains_none_of_its_gap():
    """A cell at -10.3 % that a change takes to -10.0 % is inside the tolerance by a hair, but the change moved it by
    3 % of its gap: ruled out, not found. Moving it a quarter of the gap or more counts."""
    from seqrec.analysis.nearness import _explains, _nearness

    r = {"reported": 0.0149, "reproduced": 0.013367}  # -10.3 %
    assert _nearness(0.01341, r) == "ruled out" and not _explains(0.01341, r)  # -10.0 %: moved 0.00004 of 0.00153
    assert _nearness(0.0139, r) == "found" and _explains(0.0139, r)           # -6.7 %: a third of the gap
    far = {"reported": 0.0160, "reproduced": 0.0110}                             # -31 %
    assert _nearness(0.0115, far) == "ruled out"                                 # nearer, but by a tenth of the gap
    assert _nearness(0.0130, far) == "partly" and _nearness(0.0220, far) == "past"


def test_the_srgnn_recipe_ablation_changes_only_the_optimiser_of_table2_cells():
    """Each recipe run has its protocol twin one setting group apart: the Table 2 cell (seed 42) or, for the other
    Toys_and_Games seeds, the ``seeds`` ablation's run of that cell."""
    ablations = experiments.cells("ablations", "paper")
    cells = [c for c in ablations if c.labels["ablation"] == "srgnn_recipe"]
    protocol_runs = {c.config.key(): c for c in experiments.cells("table2", "paper")}
    protocol_runs.update({c.config.key(): c for c in ablations if c.labels["ablation"] == "seeds"})
    assert sorted((c.config.data, c.config.loss, c.config.seed) for c in cells) == [
        ("Beauty", "ce", 42), ("Sports_and_Outdoors", "ce", 42), ("Toys_and_Games", "cce", 42),
        ("Toys_and_Games", "ce", 42), ("Toys_and_Games", "ce", 43), ("Toys_and_Games", "ce", 44)]
    for c in cells:
        assert (c.config.model, c.config.weight_decay, c.config.lr_step, c.config.lr_gamma) == ("srgnn", 1e-5, 3, 0.1)
        assert c.config.loss == "ce" or c.config.model_options == {"variant": "authors"}  # the variant CCE cells read
        protocol = TrainConfig.from_dict({**c.config.to_dict(), "weight_decay": 0.0, "lr_step": 0})
        assert protocol_runs[protocol.key()].labels["paper_model"] == "SR-GNN"


def test_the_figure1_budget_ablation_is_the_mlm_point_with_a_longer_budget_only():
    """The ablations grid's figure1_budget cell is Figure 1's MLM (mask 0.5) run with twice its epoch budget."""
    cells = [c for c in experiments.cells("ablations", "paper") if c.labels["ablation"] == "figure1_budget"]
    assert [(c.config.loss, c.config.mask_prob, c.config.seed, c.config.epochs) for c in cells] == [("mlm", 0.5, 42, 400)]
    figure1 = {c.config.key(): c for c in experiments.cells("figure1", "paper")}
    twin = figure1[TrainConfig.from_dict({**cells[0].config.to_dict(), "epochs": 200}).key()]
    assert twin.labels["paper_loss"] == cells[0].labels["paper_loss"] == "MLM (mask 0.5)"


def test_the_negative_pool_ablation_pairs_each_cell_with_its_protocol_run():
    cells = [c for c in experiments.cells("ablations", "paper") if c.labels["ablation"] == "negative_pool"]
    assert {(c.config.data, c.config.seed, c.config.exclude_seen) for c in cells} == {
        ("LastFM", 42, "-inf"), ("LastFM", 43, "-inf"), ("LastFM", 44, "-inf"), ("LastFM", 42, "zero"),
        ("Toys_and_Games", 42, "-inf")}
    table2 = {c.config.key(): c for c in experiments.cells("table2", "paper")}
    for c in cells:
        assert (c.config.loss, c.config.negative_pool) == ("bce", "unseen")
        protocol = TrainConfig.from_dict({**c.config.to_dict(), "negative_pool": "others", "exclude_seen": "-inf"})
        if c.config.seed == 42:  # the same cell with our pool is a Table 2 run: one setting apart
            assert protocol.key() in table2 and table2[protocol.key()].labels["paper_loss"] == "BCE"


def test_negative_pool_overlap_by_hand(monkeypatch):
    # N = 10; user 0: 5 distinct items, training targets s[1:-2] = [2, 3] (2 positions); user 1: 3 distinct, 1 position
    tiny = SequenceData("tiny", [1, 2], [[1, 2, 3, 4, 5], [1, 1, 2, 6]], 10)
    monkeypatch.setattr(analysis.data_mod, "load", lambda name, **kw: tiny)
    shares = analysis.negative_pool_overlap(["LastFM", "Beauty"], "paper")
    assert list(shares.index) == ["LastFM"]  # Beauty has no negative_pool cell
    assert shares.loc["LastFM", "share of draws affected"] == pytest.approx((2 * 4 + 1 * 2) / 3 / 9)


def test_seen_scoring_checks_only_the_protocol_runs(tmp_path, monkeypatch):
    """A stored model of another ablation (here: another negative pool) is not the cell's own run: the check on
    the cell must not read it, even though its model is there to test."""
    from seqrec import experiments, runner
    from seqrec.experiments import GRIDS, PROFILES, Grid, Profile

    from test_runner import TINY, write_dataset

    data = write_dataset(tmp_path / "tiny.txt")
    base = {"data": str(data), "model": "sasrec", "loss": "bce", **TINY}
    lab = lambda ablation: {"grid": "poolgrid", "paper_model": "SASRec", "loss_kind": "original",  # noqa: E731
                            "paper_loss": "BCE", "variant": "", "ablation": ablation, "negatives": "1"}
    monkeypatch.setitem(GRIDS, "poolgrid", Grid("poolgrid", "test grid", [
        (base, lab("")), ({**base, "negative_pool": "unseen"}, lab("negative_pool"))]))
    monkeypatch.setitem(PROFILES, "tinyprof", Profile("tinyprof", "test profile"))
    res = tmp_path / "res"
    experiments.run_grid("poolgrid", "tinyprof", results_dir=res, executor="inprocess", progress=False)
    records = runner.Store(res, "tinyprof", "poolgrid").records()
    assert len(records) == 2 and len(list((res / "tinyprof" / ".models").rglob("*.pt"))) == 2
    protocol = next(k for k, r in records.items() if r["labels"]["ablation"] == "")
    checks = analysis.seen_scoring_checks("tinyprof", str(res), compute=True)
    assert set(checks.key) == {protocol}


def test_discrepancy_reasons_check_the_pretraining_recipe():
    c = pd.DataFrame([_cell("LastFM", "S3Rec", "original", "BCE", "HIT@10", 0.0688, 0.0584, 0.0011, 3),
                      _cell("LastFM", "S3Rec", "improved", "CCE", "HIT@10", 0.0789, 0.0557, 0.0029, 3),
                      _cell("LastFM", "SASRec", "original", "BCE", "HIT@10", 0.0404, 0.0584, 0.0050, 3)])
    c["verdict"] = ["worse", "worse", "better"]
    s3 = dict(model="s3rec", paper_model="S3Rec", ablation="pretraining", metric="full_HIT@10")
    runs = pd.DataFrame([
        _run(0.0650, loss="bce", loss_kind="original", pretraining="s3rec, 150 epochs", **s3),  # within 10 %
        _run(0.0612, loss="bce", loss_kind="original", pretraining="s3rec, 20 epochs", **s3),   # nearer: partly
        _run(0.0500, loss="cce", loss_kind="improved", pretraining="s3rec, 20 epochs", **s3),   # further: ruled out
        _run(0.0540, loss="cce", loss_kind="improved", pretraining="s3rec, 20 epochs", seed=43, **s3),
        _run(0.0650, loss="bce", loss_kind="original", pretraining="seqrec, 150 epochs",
             **{**s3, "ablation": "patience"}),                                               # another ablation
    ])
    r = analysis.discrepancy_reasons(c, runs)
    what = "pretrained with the S3-Rec authors' recipe (s3rec: every prefix a sample, pairwise MIP and SP, summed losses; "
    assert r[0].startswith(f"pretraining: {what}150 epochs; 1 seed) the same cell reaches 0.0650 (reported 0.0688); "
                           f"partly the pretraining: {what}20 epochs; 1 seed) the same cell reaches 0.0612, -11% from "
                           f"the reported 0.0688 against -15% with ours; overshot by the pretraining stage: ")
    assert r[0].endswith("not explained by seed variance (mean ± 2 std over 3 seeds is 0.0562–0.0606)")
    assert r[1].endswith(f"nor by pretraining ({what}20 epochs; 2 seeds) the cell reaches 0.0520, -34% from the "
                         f"reported 0.0789)")
    assert "pretrain" not in r[2]  # SASRec: no such check
    # past the reported value from below, and no nearer (-29 % -> +34 %): overshot, not ruled out
    runs.loc[[2, 3], "value"] = [0.1050, 0.1060]
    assert analysis.discrepancy_reasons(c, runs)[1].startswith(
        f"overshot by the pretraining: {what}20 epochs; 2 seeds) the same cell reaches 0.1055, +34% from the reported "
        f"0.0789 against -29% with ours, past the paper's number in the gap's direction; not explained by seed variance")
    assert "authors' recipe" not in analysis.discrepancy_reasons(c, runs.drop(columns="pretraining"))[0]


def test_discrepancy_reasons_give_the_pretraining_recipe_run_elsewhere_as_unchecked_here():
    """An S3-Rec cell whose dataset has no run with the authors' pretraining recipe: what that recipe did to the same
    loss and metric on the dataset where it ran, marked as not checked here; the cell with its own run reads that."""
    c = pd.DataFrame([_cell("LastFM", "S3Rec", "original", "BCE", "HIT@10", 0.0688, 0.0584, 0.0011, 3),
                      _cell("Toys_and_Games", "S3Rec", "original", "BCE", "HIT@10", 0.0641, 0.0283),
                      _cell("Toys_and_Games", "S3Rec", "improved", "CCE", "HIT@10", 0.0600, 0.0300),
                      _cell("Toys_and_Games", "S3Rec", "original", "BCE", "NDCG@10", 0.0335, 0.0139)])
    c["verdict"] = "worse"
    s3 = dict(model="s3rec", paper_model="S3Rec", ablation="pretraining", metric="full_HIT@10",
              loss="bce", loss_kind="original")
    runs = pd.DataFrame([_run(0.0800, pretraining="s3rec, 20 epochs", **s3),
                         _run(0.0814, pretraining="s3rec, 20 epochs", seed=43, **s3)])
    r = analysis.discrepancy_reasons(c, runs)
    what = "pretrained with the S3-Rec authors' recipe (s3rec: every prefix a sample, pairwise MIP and SP, summed losses; "
    assert r[1] == (f"not checked on this dataset: pretraining, run on Toys_and_Games with our recipe only: on LastFM, "
                    f"{what}20 epochs; 2 seeds) the same cell reaches 0.0807, +17% from the reported 0.0688 against "
                    f"-15% with ours; the authors' recipe on Toys_and_Games is not run")
    assert "not checked" not in r[0] and r[0].startswith("overshot by the pretraining")  # its own run
    assert "not checked" not in r[2] and "not checked" not in r[3]  # CCE, NDCG@10: no such run on any dataset
    assert r[3].startswith("not investigated")


def test_pretraining_gain_sets_s3rec_against_sasrec_ours_and_reported():
    c = pd.DataFrame([_cell("Toys_and_Games", "SASRec", "original", "BCE", "HIT@10", 0.0600, 0.0660, 0.001, 3),
                      _cell("Toys_and_Games", "S3Rec", "original", "BCE", "HIT@10", 0.0640, 0.0330),
                      _cell("Toys_and_Games", "SASRec", "improved", "CCE", "HIT@10", 0.1000, 0.1000, 0.002, 3),
                      _cell("Toys_and_Games", "S3Rec", "improved", "CCE", "HIT@10", 0.1100, np.nan),   # not run
                      _cell("Beauty", "S3Rec", "original", "BCE", "HIT@10", 0.0614, 0.0500)])          # no SASRec
    c["verdict"] = ["better", "worse", "reproduced", "not run", "worse"]
    t = analysis.pretraining_gain(c)
    assert list(t.index) == [("Toys_and_Games", "BCE", "HIT@10")]
    row = t.iloc[0]
    assert row["gain"] == pytest.approx(0.0330 / 0.0660 - 1)                 # -50 %: ours
    assert row["reported gain"] == pytest.approx(0.0640 / 0.0600 - 1)        # +6.7 %: the paper's
    assert row["S3-Rec at the reported gain"] == pytest.approx(0.0660 * 0.0640 / 0.0600)  # 0.0704
    assert (row["SASRec seeds"], row["S3-Rec seeds"]) == (3, 1)
    assert analysis.pretraining_gain(c[c.model == "S3Rec"]).empty


def test_discrepancy_reasons_place_an_s3rec_gap_in_the_pretraining_or_the_finetuning():
    """An S3-Rec cell against SASRec's (the same encoder, finetuned the same way, no pretraining): with the paper's
    gain of S3-Rec over SASRec applied to our SASRec, the cell lands within 10 % (the gap is the pretraining's),
    nearer (partly) or no nearer (ruled out: SASRec has the same gap, the finetuning's)."""
    c = pd.DataFrame([_cell("Toys_and_Games", "SASRec", "improved", "CCE", "HIT@10", 0.0989, 0.0981, 0.002, 3),
                      _cell("Toys_and_Games", "S3Rec", "improved", "CCE", "HIT@10", 0.1096, 0.0970),
                      _cell("Toys_and_Games", "SASRec", "original", "BCE", "HIT@10", 0.0613, 0.0683, 0.002, 3),
                      _cell("Toys_and_Games", "S3Rec", "original", "BCE", "HIT@10", 0.0641, 0.0283),
                      _cell("LastFM", "SASRec", "improved", "CCE", "NDCG@10", 0.0354, 0.0312, 0.003, 3),
                      _cell("LastFM", "S3Rec", "improved", "CCE", "NDCG@10", 0.0381, 0.0338, 0.001, 3)])
    c["verdict"] = ["reproduced", "worse", "better", "worse", "worse", "worse"]
    r = analysis.discrepancy_reasons(c, pd.DataFrame())
    sasrec = "with our pretraining adding to SASRec (the same encoder finetuned the same way without pretraining: "
    # CCE: 0.0981 x 0.1096 / 0.0989 = 0.1087, within 10 % of 0.1096 and most of the gap: found
    assert r[1] == (f"pretraining stage: {sasrec}0.0981 over 3 seeds, -1% from its reported 0.0989) what the paper's "
                    f"adds, +11% instead of our -1%, the same cell reaches 0.1087 (reported 0.1096)")
    # BCE: 0.0683 x 0.0641 / 0.0613 = 0.0714, +11 % (SASRec's own +11 %): nearer than -56 %, so partly
    assert r[3] == (f"partly the pretraining stage: {sasrec}0.0683 over 3 seeds, +11% from its reported 0.0613) what "
                    f"the paper's adds, +5% instead of our -59%, the same cell reaches 0.0714, +11% from the reported "
                    f"0.0641 against -56% with ours")
    # LastFM CCE NDCG: ours adds +8 %, the paper's +8 %: 0.0312 x 0.0381 / 0.0354 = 0.0336, no move: ruled out
    assert r[5].endswith(f"nor by the pretraining stage ({sasrec}0.0312 over 3 seeds, -12% from its reported 0.0354) "
                         f"what the paper's adds, +8% instead of our +8%, the cell reaches 0.0336, -12% from the "
                         f"reported 0.0381)")
    assert r[0] == "" and not any("pretraining" in r[i] for i in (2, 4))  # SASRec cells: no such check


def test_pretraining_comparison_means_over_seeds_beside_the_paper():
    s3 = dict(model="s3rec", paper_model="S3Rec", loss="bce", paper_loss="BCE", metric="full_HIT@10")
    runs = pd.DataFrame([
        _run(0.0600, ablation="", pretraining="seqrec, 150 epochs", **s3),
        _run(0.0600, ablation="seeds", pretraining="seqrec, 150 epochs", **s3),  # the same run, in two grids
        _run(0.0570, ablation="seeds", seed=43, pretraining="seqrec, 150 epochs", **s3),
        _run(0.0700, ablation="pretraining", pretraining="s3rec, 20 epochs", **s3),
        _run(0.0900, ablation="patience", pretraining="seqrec, 150 epochs", **s3),  # not the protocol: left out
        _run(0.0500, ablation="", pretraining=None, **{**s3, "model": "sasrec", "paper_model": "SASRec"}),
    ])
    t = analysis.pretraining_comparison(runs)
    row = t.loc[("LastFM", "BCE", "full_HIT@10")]
    assert row["seqrec, 150 epochs"] == pytest.approx(0.0585) and row["seeds: seqrec, 150 epochs"] == 2
    assert row["s3rec, 20 epochs"] == pytest.approx(0.0700) and row["seeds: s3rec, 20 epochs"] == 1
    assert row["paper"] == 0.0688  # Table 2, S3-Rec BCE on LastFM
    assert analysis.pretraining_comparison(runs.drop(columns="pretraining")).empty


def test_pretraining_claim_sets_cce_against_bce_per_recipe_with_seed_noise():
    s3 = dict(model="s3rec", paper_model="S3Rec", metric="full_HIT@10")
    bce, cce = dict(loss="bce", paper_loss="BCE"), dict(loss="cce", paper_loss="CCE")
    ours, theirs = dict(pretraining="seqrec, 150 epochs"), dict(ablation="pretraining", pretraining="s3rec, 20 epochs")
    runs = pd.DataFrame([
        _run(0.0600, ablation="", **ours, **bce, **s3),
        _run(0.0600, ablation="seeds", **ours, **bce, **s3),           # the same run, in two grids: counts once
        _run(0.0580, ablation="seeds", seed=43, **ours, **bce, **s3),
        _run(0.0700, ablation="", **ours, **cce, **s3),
        _run(0.0720, ablation="seeds", seed=43, **ours, **cce, **s3),
        _run(0.0800, **theirs, **bce, **s3),                            # one seed each
        _run(0.0790, **theirs, **cce, **s3),
        _run(0.0900, ablation="patience", **ours, **cce, **s3),         # not the protocol: left out
        _run(0.0500, ablation="pretraining", pretraining="s3rec, 150 epochs", **bce, **s3),  # no CCE: no row
    ])
    t = analysis.pretraining_claim(runs)
    assert len(t) == 2
    row = t.loc[("LastFM", "full_HIT@10", "seqrec, 150 epochs")]
    assert (row["BCE"], row["CCE"]) == (pytest.approx(0.0590), pytest.approx(0.0710))
    assert row["difference"] == pytest.approx(0.0120)
    assert row["max std"] == pytest.approx(0.002 / 2 ** 0.5)  # both pairs of seeds differ by 0.002 (ddof=1)
    assert row["seeds"] == 2 and row["beyond seed noise"] == "yes"  # 0.0120 > 2 x 0.0014
    assert row["reported difference"] == pytest.approx(0.0789 - 0.0688)  # Table 2, S3-Rec on LastFM
    row = t.loc[("LastFM", "full_HIT@10", "s3rec, 20 epochs")]
    assert row["difference"] == pytest.approx(-0.0010) and row["seeds"] == 1 and row["beyond seed noise"] == "one seed"
    # within noise: the difference 0.015 is under 2 x 0.021
    runs.loc[2, "value"], runs.loc[4, "value"] = 0.0300, 0.0500  # BCE 0.045 ± 0.021, CCE 0.060 ± 0.014
    assert analysis.pretraining_claim(runs).loc[("LastFM", "full_HIT@10", "seqrec, 150 epochs"), "beyond seed noise"] == "no"
    assert analysis.pretraining_claim(runs[runs.loss == "bce"]).empty


def test_pretraining_samples_count_users_and_prefixes(monkeypatch):
    tiny = SequenceData("tiny", [1, 2], [[1, 2, 3, 4, 5], [1, 1, 2, 6]], 10)  # training windows [1, 2, 3], [1, 1]
    monkeypatch.setattr(analysis.data_mod, "load", lambda name, **kw: tiny)
    t = analysis.pretraining_samples(["LastFM"], max_len=2)  # windows cut to [2, 3], [1, 1]
    assert t.loc["LastFM"].tolist() == [2, 4, 2.0]


def test_the_pretraining_ablation_is_s3rec_with_the_authors_recipe_on_every_dataset():
    cells = experiments.cells("ablations", "paper", only={"ablation": "pretraining"})
    assert sorted((c.config.data, c.config.loss, c.config.model_options["pretrain_epochs"], c.config.seed)
                  for c in cells) == [
        ("Beauty", "bce", 20, 42), ("Beauty", "cce", 20, 42),
        ("LastFM", "bce", 20, 42), ("LastFM", "bce", 20, 43), ("LastFM", "bce", 20, 44), ("LastFM", "bce", 150, 42),
        ("LastFM", "cce", 20, 42), ("LastFM", "cce", 20, 43), ("LastFM", "cce", 20, 44), ("LastFM", "cce", 150, 42),
        ("Sports_and_Outdoors", "bce", 20, 42), ("Sports_and_Outdoors", "cce", 20, 42),
        ("Toys_and_Games", "bce", 20, 42), ("Toys_and_Games", "cce", 20, 42),
        ("Yelp", "bce", 20, 42), ("Yelp", "cce", 20, 42)]
    table2 = {c.config.key(): c for c in experiments.cells("table2", "paper")}
    for c in cells:
        assert (c.config.model, c.config.model_options["pretrain_recipe"]) == ("s3rec", "s3rec")
        # our recipe at the protocol's length, seed 42: the Table 2 cell of the same dataset and loss
        ours = TrainConfig.from_dict({**c.config.to_dict(),
                                      "model_options": {"pretrain_epochs": experiments.PRETRAIN_EPOCHS[c.config.data]}})
        assert ours.key() in table2 or c.config.seed != 42
    probe = experiments.cells("ablations", "paper", only={"ablation": "pretraining", "pretrain_epochs": "20"})
    assert len(probe) == 14 and all(c.config.model_options["pretrain_epochs"] == 20 for c in probe)
    for data in ("Beauty", "Toys_and_Games", "Sports_and_Outdoors", "Yelp"):
        pair = experiments.cells("ablations", "paper", only={"ablation": "pretraining", "data": data})
        assert len({results.pretraining_label(c.config.to_dict()) for c in pair}) == 1  # one pretraining, both losses
        assert len(pair) == 2 and len({pretrain.checkpoint_path(c.config) for c in pair}) == 1  # one checkpoint too
    assert len({pretrain.checkpoint_path(c.config) for c in probe}) == 7  # one per (dataset, seed), never shared
    assert {results.pretraining_label(c.config.to_dict()) for c in cells} == {"s3rec, 150 epochs", "s3rec, 20 epochs"}
    assert results.pretraining_label({"model": "s3rec", "data": "Yelp", "model_options": {}}) == "seqrec, 100 epochs"
    assert results.pretraining_label({"model": "sasrec", "data": "Yelp"}) is None
    with pytest.raises(SeqrecError, match="no cell of ablations has pretrain_epochs=7; values there: 100, 150, 20, None"):
        experiments.cells("ablations", "paper", only={"pretrain_epochs": "7"})


def test_figure1_popularity_is_tested_on_the_profiles_split(real_data_dir):
    from seqrec import baselines, data, experiments
    config = experiments.cells("figure1", "smoke")[0].config
    assert (config.data, config.max_users) == ("Beauty", 100)  # the smoke profile: 100 users of Beauty
    subset = baselines.popularity_metrics(data.load("Beauty", max_users=100, seed=config.seed), seed=config.seed)
    assert analysis.figure1_popularity("smoke") == subset
    other = baselines.popularity_metrics(data.load("Beauty", max_users=100, seed=config.seed + 1), seed=config.seed + 1)
    assert other != subset  # another subset ranks differently: the test above can tell them apart


def test_finetuning_curves_and_head_start_set_s3rec_beside_sasrec_epoch_by_epoch(tmp_path):
    """S3-Rec's finetuning against SASRec's training from the stored validation curves: only (data, loss) pairs
    where S3-Rec ran, SASRec's seeds averaged, a run stored by two grids once, values read by hand."""
    def stored(name, valid, **cfg):
        path = tmp_path / f"{name}.json"
        results.save({"config": {"monitor": "valid_NDCG@20", **cfg}, "metrics": {}, "provenance": {}, "key": name,
                      "curve": _curve(valid, range(len(valid), 0, -1))}, path)
        return str(path)

    s3 = stored("s3", [0.025, 0.027, 0.028], data="Beauty", model="s3rec", loss="bce", seed=42)
    sas42 = stored("sas42", [0.011, 0.030, 0.040, 0.050], data="Beauty", model="sasrec", loss="bce", seed=42)
    sas43 = stored("sas43", [0.013, 0.028, 0.044], data="Beauty", model="sasrec", loss="bce", seed=43)
    cce = stored("cce", [0.02, 0.05], data="Beauty", model="sasrec", loss="cce", seed=42)   # no S3-Rec CCE run
    pat = stored("pat", [0.025, 0.03], data="Beauty", model="s3rec", loss="bce", seed=42)   # an ablation
    bce = dict(data="Beauty", loss="bce", paper_loss="BCE", ablation="")
    frame = pd.DataFrame([
        _run(0.04, model="s3rec", paper_model="S3Rec", path=s3, **bce),
        _run(0.04, model="s3rec", paper_model="S3Rec", path=s3, metric="full_HIT@10", **bce),  # same run, 2nd metric
        _run(0.06, model="sasrec", path=sas42, **bce),
        _run(0.06, model="sasrec", path=sas42, **{**bce, "ablation": "seeds"}),  # the same run in the seeds grid
        _run(0.06, model="sasrec", path=sas43, seed=43, **{**bce, "ablation": "seeds"}),
        _run(0.09, model="sasrec", path=cce, data="Beauty", loss="cce", paper_loss="CCE", ablation=""),
        _run(0.05, model="s3rec", paper_model="S3Rec", path=pat, **{**bce, "ablation": "patience"}),
    ])
    curves = analysis.finetuning_curves(frame)
    assert len(curves) == 3 + 4 + 3 and set(curves.paper_loss) == {"BCE"}
    assert list(curves[curves.paper_model == "S3Rec"].value) == [0.025, 0.027, 0.028]
    t = analysis.head_start(curves, early=3)
    s, b = t.loc[("Beauty", "BCE", "S3Rec")], t.loc[("Beauty", "BCE", "SASRec")]
    assert (s["seeds"], s["epoch 1"], s["epoch 3"], s["best"], s["best epoch"], s["epochs run"]) == (1, 0.025, 0.028, 0.028, 3, 3)
    assert b["seeds"] == 2 and b["epoch 1"] == pytest.approx(0.012) and b["epoch 3"] == pytest.approx(0.042)
    assert b["best"] == pytest.approx(0.047) and b["best epoch"] == 3.5 and b["epochs run"] == 3.5
    words = analysis.head_start_in_words(t)
    assert words == ("After one epoch, S3-Rec's validation NDCG@20 is ahead of SASRec's on 1 of the 1 (dataset, loss) "
                     "pairs with both run (Beauty BCE 0.0250 against 0.0120). SASRec's best passes S3-Rec's on 1 of "
                     "them (Beauty BCE 0.0470 (epoch 4) against 0.0280 (epoch 3)): the pretraining's head start does "
                     "not last.")
    two = pd.concat([t, t.rename(index={"Beauty": "Yelp"}).assign(best=lambda d: d["best"][::-1].values)])
    assert analysis.head_start_in_words(two) == (  # Yelp: S3-Rec's best 0.047 stays ahead of SASRec's 0.028
        "After one epoch, S3-Rec's validation NDCG@20 is ahead of SASRec's on 2 of the 2 (dataset, loss) pairs with "
        "both run (Beauty BCE 0.0250 against 0.0120; Yelp BCE 0.0250 against 0.0120). SASRec's best passes S3-Rec's "
        "on 1 of them (Beauty BCE 0.0470 (epoch 4) against 0.0280 (epoch 3)); S3-Rec's best stays ahead on 1 (Yelp "
        "BCE 0.0470 (epoch 3) against 0.0280 (epoch 4)): the head start lasts on 1 of the 2 pairs.")
    assert analysis.head_start_in_words(two.loc[["Yelp"]]).endswith(": the head start lasts.")
    assert analysis.finetuning_curves(frame[frame.model == "sasrec"]).empty
    assert analysis.head_start_in_words(analysis.head_start(curves[curves.paper_model == "S3Rec"])) == ""


def test_gpu_timings_count_only_the_gpu_epochs_beside_the_papers_totals(tmp_path):
    """A run begun on CPU and finished on a GPU counts its GPU epochs only; a CPU-only run is left out; the paper's
    totals are its Figure 1 log's for the same label."""
    from seqrec import paper

    def record(loss, negatives, sessions, per_epoch, epochs=10):
        curve, t = [], 0.0
        for e in range(1, epochs + 1):
            t += per_epoch(e)
            curve.append({"epoch": e, "elapsed": t})
        return {"config": {"loss": loss, "num_negatives": negatives, "mask_prob": 0.2, "seed": 43}, "curve": curve,
                "epochs_run": epochs, "metrics": {},
                "provenance": {"peak_memory_mb": 300.0, "sessions": [{"from_epoch": f, "device": d, "wall_seconds": 1.0}
                                                                     for f, d in sessions]}}
    runs = {"cce": record("cce", 1, [(0, "NVIDIA H200")], lambda e: 2.0),
            "bpr": record("bpr_max", 100, [(0, "AMD EPYC (1 thread)"), (4, "NVIDIA H200")],
                          lambda e: 100.0 if e <= 4 else 1.0),
            "cpu": record("bce", 1, [(0, "AMD EPYC (2 threads)")], lambda e: 50.0)}
    for name, r in runs.items():
        results.save(r, tmp_path / f"{name}.json")
    frame = pd.DataFrame({"path": [str(tmp_path / f"{n}.json") for n in ("cce", "cce", "bpr", "cpu")]})
    t = analysis.gpu_timings(frame, paper.reported("figure1")).set_index("label")
    assert list(t.index) == ["CCE", "BPR-max-100"]
    assert t.loc["CCE", "GPU epochs"] == 10 and t.loc["CCE", "s per epoch"] == pytest.approx(2.0)
    assert t.loc["BPR-max-100", "GPU epochs"] == 6 and t.loc["BPR-max-100", "GPU train s"] == pytest.approx(6.0)
    assert t.loc["BPR-max-100", "at that pace (s)"] == pytest.approx(10.0)
    assert t.loc["CCE", "paper total (s)"] == 263.8 and t.loc["BPR-max-100", "paper peak memory (MB)"] == 285
    words = analysis.gpu_timings_in_words(t.reset_index())
    assert "CCE: 2.00 s per epoch (1 run), 20 s for its epochs at that pace (the paper's run: 263.8 s)" in words
    assert f"A CCE epoch costs 2.0× a BPR-max-100 epoch here; the paper's CCE run took {263.8 / 182.7:.1f}×" in words
    assert analysis.gpu_timings(frame.iloc[3:], paper.reported("figure1")).empty
    assert "every time in this chapter is a CPU's" in analysis.gpu_timings_in_words(
        analysis.gpu_timings(frame.iloc[3:], paper.reported("figure1")))
    assert analysis.is_cpu_device("AMD EPYC (1 thread)") and not analysis.is_cpu_device("NVIDIA H200")


def test_planned_cells_mark_stored_runs_and_not_yet_stored_names_the_rest(tmp_path):
    """``planned_cells(..., results_dir)`` marks a cell stored when its configuration's run is in the store, also
    when another grid ran it (Table 3's SASRec cells are Table 2's runs); ``not_yet_stored`` names the others."""
    from seqrec import experiments
    from seqrec.runner import RESULTS_VERSION, Store

    t3 = experiments.cells("table3", "smoke")
    shared = next(c for c in t3 if c.config.model == "sasrec" and c.config.loss == "bce")
    Store(tmp_path, "smoke", "table2").write({"config": shared.config.to_dict(), "key": shared.config.key(),
                                               "results_version": RESULTS_VERSION, "status": "ok", "metrics": {}, "provenance": {}})
    planned = analysis.planned_cells("table3", "smoke", results_dir=tmp_path)
    assert list(planned.stored) == [c is shared for c in t3] and set(planned.progress) == {""}
    line = analysis.not_yet_stored(planned)
    assert line == "Not run yet:\n- Beauty BERT4Rec MLM (mask 0.2): seed 42\n- Beauty SASRec CCE: seed 42"
    assert analysis.not_yet_stored(planned[planned.stored]) == "" and analysis.not_yet_stored(planned.iloc[:0]) == ""


def test_not_yet_stored_groups_seeds_and_says_how_far_each_has_got():
    planned = pd.DataFrame({
        "data": ["Yelp"] * 5 + ["LastFM"], "paper_model": ["S3Rec"] * 4 + ["SR-GNN"] * 2,
        "paper_loss": ["BCE", "BCE", "BCE", "CCE", "CCE", "CE"], "variant": ["", "", "", "", "authors", ""],
        "seed": [42, 43, 44, 43, 44, 44], "stored": [True, False, False, False, False, False],
        "progress": ["", "pretraining 30 of 100 epochs done (parked checkpoint)", "", "", "", ""]})
    assert analysis.not_yet_stored(planned).splitlines() == [
        "Not run yet:",
        "- Yelp S3Rec BCE: seed 43, pretraining 30 of 100 epochs done (parked checkpoint); seed 44, not started",
        "- Yelp S3Rec CCE: seed 43", "- Yelp SR-GNN CCE, authors: seed 44", "- LastFM SR-GNN CE: seed 44"]


def _sweep_run(value, valid, seed=42, data="Beauty", **change):
    settings = dict(dropout=0.5, weight_decay=0.0, lr=1e-3, batch_size=256)
    return _run(value, data=data, model="gru4rec", loss="ce", paper_model="GRU4Rec", paper_loss="CE",
                loss_kind="original", metric="full_HIT@10", seed=seed, best_valid=valid, best_epoch=20, epochs_run=30,
                **{**settings, **change})


def test_tuning_sweep_names_each_setting_and_chooses_on_validation():
    """The protocol's run of the swept seed comes first (its other seeds and other ablations' runs stay out); the
    run chosen is the one with the best validation value, not the best test value (lr 0.003 here); a run carrying
    a setting to another seed is listed with its own protocol run, and never chosen, whatever its validation."""
    frame = pd.DataFrame([_sweep_run(0.0283, 0.0200, ablation=""), _sweep_run(0.0290, 0.0210, seed=43, ablation="seeds"),
                          _sweep_run(0.0300, 0.0205, seed=44, ablation="seeds"),
                          _sweep_run(0.0400, 0.0300, ablation="patience", patience=40)])
    runs = pd.DataFrame([_sweep_run(0.0320, 0.0220, dropout=0.75, ablation="tuning"),
                         _sweep_run(0.0335, 0.0210, lr=3e-3, ablation="tuning"),
                         _sweep_run(0.0250, 0.0180, weight_decay=1e-5, ablation="tuning"),
                         _sweep_run(0.0500, 0.0900, dropout=0.75, ablation="patience"),
                         _sweep_run(0.0330, 0.0990, seed=43, dropout=0.75, ablation="tuned")])
    t = analysis.tuning_sweep(runs, frame)
    assert list(zip(t["seed"], t["role"], t["setting"])) == [
        (42, "protocol", "the protocol's settings"), (42, "sweep", "dropout 0.75"),
        (42, "sweep", "learning rate 0.003"), (42, "sweep", "L2 1e-05"),
        (43, "protocol", "the protocol's settings"), (43, "carried", "dropout 0.75")]
    assert t["full_HIT@10"].tolist() == pytest.approx([0.0283, 0.0320, 0.0335, 0.0250, 0.0290, 0.0330])
    assert t["valid"].tolist() == pytest.approx([0.0200, 0.0220, 0.0210, 0.0180, 0.0210, 0.0990])
    assert t["chosen"].tolist() == [False, True, False, False, False, False]
    # no validation values: nothing chosen; no tuning runs: empty, with the columns
    assert not analysis.tuning_sweep(runs.assign(best_valid=np.nan), frame)["chosen"].any()
    empty = analysis.tuning_sweep(runs[~runs.ablation.isin(["tuning", "tuned"])], frame)
    assert empty.empty and list(empty.columns) == analysis.TUNING_COLUMNS


def test_discrepancy_reasons_check_the_tuning_sweep():
    """GRU4Rec CE below the paper on three datasets (systematic), swept on Beauty (seed 42). Chosen on validation,
    dropout 0.75 takes Beauty's seed-42 run from 0.0283 to 0.0320, within 10 % of 0.0343 and 62 % of its gap:
    found. Yelp, where the choice is not carried, gets what it did on Beauty, as not checked there; Sports, where
    it is carried (seed 42), is judged on its own run; the systematic sentence says the sweep ran on Beauty only.
    When the protocol scores best on validation: ruled out, with the best test value of the sweep as a ceiling."""
    c = pd.DataFrame([_cell("Beauty", "GRU4Rec", "original", "CE", "HIT@10", 0.0343, 0.0290, 0.0007, 3),
                      _cell("Sports_and_Outdoors", "GRU4Rec", "original", "CE", "HIT@10", 0.0163, 0.0130, 0.0003, 3),
                      _cell("Yelp", "GRU4Rec", "original", "CE", "HIT@10", 0.0164, 0.0137, 0.0005, 3)])
    c["verdict"], c["rel_diff"] = "worse", c.reproduced / c.reported - 1
    frame = pd.DataFrame([_sweep_run(0.0283, 0.0200, ablation=""),
                          _sweep_run(0.0128, 0.0100, data="Sports_and_Outdoors", ablation="")])
    runs = pd.DataFrame([_sweep_run(0.0320, 0.0220, dropout=0.75, ablation="tuning"),
                         _sweep_run(0.0335, 0.0210, lr=3e-3, ablation="tuning"),
                         _sweep_run(0.0160, 0.0120, data="Sports_and_Outdoors", dropout=0.75, ablation="tuned")])
    r = analysis.discrepancy_reasons(c, runs, frame)
    what = ("tuned on validation over 2 one-at-a-time changes to the protocol's settings (dropout 0.75, learning "
            "rate 0.003; Beauty, seed 42)")
    assert r[0].startswith(f"hyperparameters: {what}, with dropout 0.75 chosen, the same cell reaches 0.0320 "
                           "(reported 0.0343) (seed 42 only; the cell's seed-42 run reaches 0.0283); systematic: ")
    assert "hyperparameters (swept on Beauty only) rather than chance" in r[0]
    assert r[1].startswith("hyperparameters: with the setting chosen on Beauty (dropout 0.75, the best on validation "
                           "of 2 one-at-a-time changes to the protocol's settings there, seed 42), the same cell "
                           "reaches 0.0160 (reported 0.0163) (seed 42 only; the cell's seed-42 run reaches 0.0128)")
    # a seed-42 run above the reported value, taken below it: "past" from that run, but away from the cell's own
    # gap (the cell is worse): ruled out, not "overshot"
    above = pd.concat([frame[frame.data == "Beauty"], pd.DataFrame([_sweep_run(
        0.0180, 0.0100, data="Sports_and_Outdoors", ablation="")])], ignore_index=True)
    moved_away = analysis.discrepancy_reasons(c, runs, above)[1]
    assert "nor by hyperparameters (with the setting chosen on Beauty" in moved_away and "overshot" not in moved_away
    assert r[2].endswith(f"not checked on this dataset: hyperparameters, swept on Beauty only ({what}): there the "
                         "setting chosen on validation (dropout 0.75) moves HIT@10 from 0.0283 to 0.0320 (+13%); "
                         "not carried to Yelp")
    # carried to Beauty's other seeds: the mean over all three against the cell, weighed against seed noise
    three = pd.concat([runs, pd.DataFrame([_sweep_run(v, 0.02, seed=s, dropout=0.75, ablation="tuned")
                                           for v, s in ((0.0330, 43), (0.0340, 44))])], ignore_index=True)
    assert analysis.discrepancy_reasons(c, three, frame)[0].startswith(
        f"hyperparameters: {what}, with dropout 0.75 chosen, the same cell reaches 0.0330 (reported 0.0343) "
        "(3 seeds); its change, +0.0040, is beyond seed noise (2 × the larger std, 0.0020)")
    # the protocol's own settings best on validation: nothing to tune
    best = pd.DataFrame([_sweep_run(0.0283, 0.0250, ablation="")])
    ruled = analysis.discrepancy_reasons(c, runs, best)[0]
    assert (f"not explained by seed variance (mean ± 2 std over 3 seeds is 0.0276–0.0304); nor by hyperparameters "
            f"({what}, the protocol's own settings score best on validation; the best any of them reaches on test "
            "is 0.0335 (learning rate 0.003), -2% from the reported 0.0343)") in ruled
    # chosen, but it moves the cell the wrong way: ruled out, with the ceiling
    worse = pd.DataFrame([_sweep_run(0.0270, 0.0300, dropout=0.25, ablation="tuning")])
    assert ("nor by hyperparameters (tuned on validation over 1 one-at-a-time change to the protocol's settings "
            "(dropout 0.25; Beauty, seed 42), with dropout 0.25 chosen, the cell reaches 0.0270 (seed 42 only; the "
            "cell's seed-42 run reaches 0.0283); the best any of them reaches on test is 0.0283 (the protocol's "
            "settings), -17% from the reported 0.0343)") in analysis.discrepancy_reasons(c, worse, frame)[0]
    # without a sweep, the systematic sentence says the hyperparameters were not tuned
    assert "(not tuned here)" in analysis.discrepancy_reasons(c, runs[runs.ablation != "tuning"], frame)[0]
    # the setting carried to the other loss (CCE) is listed with that loss's own protocol run, but never read as the
    # CE cell's, nor chosen: CE's reasons are unchanged
    cce = dict(loss="cce", paper_loss="CCE", loss_kind="improved")
    with_cce = pd.concat([runs, pd.DataFrame([{**_sweep_run(0.0700, 0.0500, dropout=0.75, ablation="tuned"), **cce}])],
                         ignore_index=True)
    frame_cce = pd.concat([frame, pd.DataFrame([{**_sweep_run(0.0650, 0.0450, ablation=""), **cce}])], ignore_index=True)
    assert analysis.discrepancy_reasons(c, with_cce, frame_cce).tolist() == r.tolist()
    t = analysis.tuning_sweep(with_cce, frame_cce)
    assert t[t.loss_kind == "improved"][["role", "full_HIT@10"]].values.tolist() == [["protocol", 0.0650], ["carried", 0.0700]]
    # Beauty's CE rows, then its CCE rows, then Sports_and_Outdoors
    assert list(zip(t["data"], t["loss_kind"])) == [("Beauty", "original")] * 3 + [("Beauty", "improved")] * 2 + [
        ("Sports_and_Outdoors", "original")] * 2
    assert not t[t.loss_kind == "improved"]["chosen"].any()
