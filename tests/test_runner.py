"""Grids, profiles, the results store, the executors (local subprocesses, in-process, Dask) and fault tolerance.

Training uses a tiny synthetic dataset in the S3-Rec format and a test grid registered for the duration of a test.
"""
from __future__ import annotations

import dataclasses
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from seqrec import cli, experiments, runner
from seqrec.errors import SeqrecError
from seqrec.experiments import GRIDS, PROFILES, Grid, Profile

ROOT = Path(__file__).resolve().parent.parent


def write_dataset(path: Path, users: int = 30, items: int = 130) -> Path:
    """Users walk through items in steps of 1 or 2 from a user-dependent start (lengths 6 to 11)."""
    lines = []
    for u in range(1, users + 1):
        n = 6 + u % 6
        seq = [((u * 7 + k * (1 + u % 2)) % items) + 1 for k in range(n)]
        lines.append(" ".join(map(str, [u, *seq])))
    path.write_text("\n".join(lines) + "\n")
    return path


TINY = {"max_len": 8, "hidden_size": 8, "num_layers": 1, "num_heads": 1, "batch_size": 16, "epochs": 2,
        "patience": 2, "device": "cpu"}


def tiny_grid(data: Path, name: str = "tinygrid") -> Grid:
    base = {"data": str(data), "model": "sasrec", **TINY}
    lab = lambda loss, kind, **k: {"grid": name, "paper_model": "SASRec", "loss_kind": kind, "paper_loss": loss,  # noqa: E731
                                   "variant": "", "ablation": k.get("ablation", ""), "negatives": ""}
    return Grid(name, "test grid", [
        ({**base, "loss": "bce"}, lab("BCE", "original")),
        ({**base, "loss": "cce"}, lab("CCE", "improved")),
        ({**base, "loss": "ce"}, lab("CE", "original")),
        ({**base, "loss": "cce"}, lab("CCE", "improved", ablation="again")),  # same config as the second cell
        ({**base, "model": "nosuchmodel", "loss": "cce"}, lab("CCE", "improved")),
    ])


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    data = write_dataset(tmp_path / "tiny.txt")
    monkeypatch.setitem(GRIDS, "tinygrid", tiny_grid(data))
    monkeypatch.setitem(PROFILES, "tinyprof", Profile("tinyprof", "test profile"))
    return tmp_path


# --------------------------------------------------------------------------- grid definitions
def test_every_grid_builds_valid_configs_under_every_profile():
    for grid in GRIDS:
        for profile in PROFILES:
            cs = experiments.cells(grid, profile)
            assert cs, (grid, profile)
            for c in cs:
                assert set(experiments.LABELS) <= set(c.labels) and c.labels["grid"] == grid
                assert c.labels["loss_kind"] in ("original", "improved")
                assert len(c.config.key()) == 16


def test_grid_contents_match_the_paper():
    t2 = experiments.cells("table2", "paper")
    assert len(t2) == 5 * 9
    assert {c.config.data for c in t2} == set(experiments.DATASETS)
    from seqrec import data  # imports torch, which experiments does not
    assert experiments.DATASETS == data.DATASETS
    srgnn_cce = [c for c in t2 if c.config.model == "srgnn" and c.config.loss == "cce"]
    assert sorted({c.config.model_options["variant"] for c in srgnn_cce}) == ["authors", "causal"]
    assert all(c.config.monitor == "valid_NDCG@20" and c.config.patience == 10 and c.config.epochs == 200 for c in t2)
    pre = {c.config.data: c.config.model_options["pretrain_epochs"] for c in t2 if c.config.model == "s3rec"}
    assert pre == {"Beauty": 150, "Toys_and_Games": 150, "LastFM": 150, "Sports_and_Outdoors": 100, "Yelp": 100}
    originals = {(c.config.model, c.config.loss) for c in t2 if c.labels["loss_kind"] == "original"}
    assert originals == {("gru4rec", "ce"), ("srgnn", "ce"), ("sasrec", "bce"), ("s3rec", "bce")}
    f1 = experiments.cells("figure1", "paper")
    assert all(c.config.monitor == "train_loss" and c.config.patience == 20 and c.config.data == "Beauty" for c in f1)
    assert sorted(c.config.num_negatives for c in f1 if c.config.loss == "bce") == [1, 10, 100, 500, 1000]
    assert sorted(c.config.mask_prob for c in f1 if c.config.loss == "mlm") == [0.2, 0.5]
    assert len(f1) == 5 + 8 + 2 + 2
    t3 = experiments.cells("table3", "paper")
    assert [(c.config.model, c.config.loss) for c in t3] == [("sasrec", "bce"), ("bert4rec", "mlm"), ("sasrec", "cce")]
    seeds = experiments.cells("ablations", "paper", {"ablation": "seeds"})
    # SASRec, SR-GNN, GRU4Rec and S3-Rec: 2 losses x 5 datasets x 3 seeds each; Table 3's BERT4Rec: 3 seeds
    assert len(seeds) == 4 * 2 * 5 * 3 + 3 and {c.config.seed for c in seeds} == {42, 43, 44}
    bert4rec = [c for c in seeds if c.config.model == "bert4rec"]
    t3_bert4rec = next(c for c in t3 if c.config.model == "bert4rec")
    assert sorted(c.config.seed for c in bert4rec) == [42, 43, 44]
    # the same configuration as Table 3's cell but the seed, labelled as it is there (the Table 3 frame reads them)
    assert all(dataclasses.replace(c.config, seed=42) == t3_bert4rec.config for c in bert4rec)
    assert all({**c.labels, "grid": "table3", "ablation": ""} == t3_bert4rec.labels for c in bert4rec)
    seeds = [c for c in seeds if c not in bert4rec]
    # the tuning sweep: Table 2's GRU4Rec CE cell on Beauty with exactly one setting changed, a different one each
    t2_gru4rec_ce, = experiments.cells("table2", "paper", {"data": "Beauty", "model": "gru4rec", "loss": "ce"})
    tuning = experiments.cells("ablations", "paper", {"ablation": "tuning"})
    changed = [{f.name for f in dataclasses.fields(c.config)
                if getattr(c.config, f.name) != getattr(t2_gru4rec_ce.config, f.name)} for c in tuning]
    assert len(tuning) == 7 and all(len(fields) == 1 for fields in changed)
    assert sorted(f for fields in changed for f in fields) == ["batch_size", "dropout", "dropout", "lr", "lr", "lr",
                                                               "weight_decay"]
    assert all({**c.labels, "grid": "table2", "ablation": ""} == t2_gru4rec_ce.labels for c in tuning)
    # the chosen change, carried to Beauty's other seeds and to the other datasets' GRU4Rec CE cells, as is
    assert experiments.TUNED_SETTING in experiments.TUNING_CHANGES
    tuned = experiments.cells("ablations", "paper", {"ablation": "tuned"})
    assert {(c.config.loss, c.config.data, c.config.seed) for c in tuned if c.config.loss == "cce"} == {
        ("cce", "Beauty", 42), ("cce", "Beauty", 43)}
    for c in [c for c in tuned if c.config.loss == "cce"]:
        cell, = experiments.cells("table2", "paper", {"data": "Beauty", "model": "gru4rec", "loss": "cce"})
        assert dataclasses.replace(c.config, seed=42) == dataclasses.replace(cell.config, **experiments.TUNED_SETTING)
    tuned = [c for c in tuned if c.config.loss == "ce"]
    assert {(c.config.data, c.config.seed) for c in tuned} == {("Beauty", 43), ("Beauty", 44), *(
        (d, 42) for d in experiments.DATASETS if d != "Beauty"), *(
        (d, s) for d in ("Yelp", "Sports_and_Outdoors") for s in (43, 44))}
    for c in tuned:
        cell, = experiments.cells("table2", "paper", {"data": c.config.data, "model": "gru4rec", "loss": "ce"})
        assert dataclasses.replace(c.config, seed=42) == dataclasses.replace(cell.config, **experiments.TUNED_SETTING)
    gru4rec = {(c.config.data, c.config.loss, c.config.seed) for c in seeds if c.config.model == "gru4rec"}
    assert gru4rec == {(d, loss, s) for d in experiments.DATASETS for loss in ("ce", "cce") for s in (42, 43, 44)}
    assert {c.config.data for c in seeds if c.config.model == "srgnn"} == {"LastFM", "Toys_and_Games", "Beauty",
                                                                             "Sports_and_Outdoors", "Yelp"}
    s3rec = {(c.config.data, c.config.loss, c.config.seed) for c in seeds if c.config.model == "s3rec"}
    assert s3rec == {(d, loss, s) for d in experiments.DATASETS for loss in ("bce", "cce") for s in (42, 43, 44)}
    # each S3-Rec seed finetunes from its dataset's protocol pretraining
    assert all(c.config.model_options == {"pretrain_epochs": experiments.PRETRAIN_EPOCHS[c.config.data]}
               for c in seeds if c.config.model == "s3rec")
    srgnn_more = {(c.config.data, c.config.loss, (c.config.model_options or {}).get("variant"), c.config.seed)
                  for c in seeds if c.config.model == "srgnn" and c.config.data != "LastFM"}
    assert srgnn_more == {(d, loss, v, s) for d in ("Toys_and_Games", "Beauty", "Sports_and_Outdoors", "Yelp")
                          for loss, v in (("ce", None), ("cce", "authors")) for s in (42, 43, 44)}
    sasrec = [c for c in seeds if c.config.model == "sasrec"]
    assert len(sasrec) == 5 * 2 * 3 and {c.config.data for c in sasrec} == set(experiments.DATASETS)
    others = {(c.config.model, c.config.loss, (c.config.model_options or {}).get("variant")) for c in seeds if c not in sasrec}
    assert others == {("gru4rec", "ce", None), ("gru4rec", "cce", None), ("srgnn", "ce", None), ("srgnn", "cce", "authors"),
                      ("s3rec", "bce", None), ("s3rec", "cce", None)}
    # every seed-42 cell is the Table 2 run of the same cell (shared, not rerun)
    t2_keys = {c.config.key() for c in t2}
    assert all(c.config.key() in t2_keys for c in seeds if c.config.seed == 42)
    zero = experiments.cells("ablations", "paper", {"ablation": "exclude_seen", "exclude_seen": "zero"})
    assert len(zero) == 2


def test_profiles_are_values_applied_to_the_same_cells():
    paper = experiments.cells("table2", "paper")
    for name in ("smoke", "quick"):
        other = experiments.cells("table2", name)
        assert [(c.config.data, c.config.model, c.config.loss, c.labels["variant"]) for c in other] == \
               [(c.config.data, c.config.model, c.config.loss, c.labels["variant"]) for c in paper]
        assert all(c.config.epochs < 200 for c in other)
    quick = {c.config.data: c.config.max_users for c in experiments.cells("table2", "quick")}
    assert quick["LastFM"] is None and quick["Beauty"] == 800
    assert all(c.config.max_users is None for c in paper) and all(c.config.device == "cuda" for c in paper)
    assert all(c.config.device == "cpu" for c in experiments.cells("table2", "paper", device="cpu"))


def test_local_executor_follows_the_profile(tiny, monkeypatch):
    seen = []
    monkeypatch.setattr(runner, "execute", lambda cells, store, **kw: seen.append(kw["executor"]))
    monkeypatch.setitem(PROFILES, "inproc", Profile("inproc", "test", isolate=False))
    for profile in ("tinyprof", "inproc"):
        experiments.run_grid("tinygrid", profile, results_dir=tiny / "res", progress=False)
    experiments.run_grid("tinygrid", "inproc", results_dir=tiny / "res", executor="subprocess", progress=False)
    assert seen == ["subprocess", "inprocess", "subprocess"]
    assert not PROFILES["smoke"].isolate and PROFILES["quick"].isolate and PROFILES["paper"].isolate


def test_only_filters_and_bad_names():
    cs = experiments.cells("table2", "smoke", {"model": "sasrec", "dataset": "LastFM,Beauty"})
    assert sorted((c.config.data, c.config.loss) for c in cs) == [("Beauty", "bce"), ("Beauty", "cce"),
                                                                  ("LastFM", "bce"), ("LastFM", "cce")]
    assert len(experiments.cells("table2", "smoke", {"variant": "causal"})) == 5
    with pytest.raises(SeqrecError, match="unknown grid 'nope'; allowed: figure1, table2, table3, ablations"):
        experiments.cells("nope", "smoke")
    with pytest.raises(SeqrecError, match="unknown profile 'fast'; allowed: smoke, quick, paper"):
        experiments.cells("table2", "fast")
    with pytest.raises(SeqrecError, match="unknown filter key 'colour'"):
        experiments.cells("table2", "smoke", {"colour": "red"})
    with pytest.raises(SeqrecError, match="no cell of table2 has data=Lastfm; values there: Beauty"):
        experiments.cells("table2", "smoke", {"data": "Lastfm"})
    with pytest.raises(SeqrecError, match="expected key=value"):
        experiments.parse_only(["model"])


# --------------------------------------------------------------------------- store and executors
def test_inprocess_run_stores_once_records_errors_and_resumes(tiny):
    frame = experiments.run_grid("tinygrid", "tinyprof", results_dir=tiny / "res", executor="inprocess", progress=False)
    store = runner.Store(tiny / "res", "tinyprof", "tinygrid")
    files = sorted(store.root.glob("*.json"))
    assert len(files) == 4  # 3 distinct trainable configs + 1 error record (duplicate config trained once)
    records = [json.loads(f.read_text()) for f in files]
    errors = [r for r in records if r["status"] == "error"]
    assert len(errors) == 1 and errors[0]["error"].startswith("SeqrecError: unknown model 'nosuchmodel'")
    assert "\n" not in errors[0]["error"] and errors[0]["metrics"] == {}
    for r in records:
        assert r["grid"] == "tinygrid" and r["profile"] == "tinyprof" and r["results_version"] == runner.RESULTS_VERSION
        assert set(r["labels"]) >= {"paper_model", "loss_kind", "paper_loss", "variant", "ablation"}
    ok = [r for r in records if r["status"] == "ok"]
    assert all(r["provenance"]["peak_memory_mb"] > 0 and r["curve"] for r in ok)
    # frame: 4 trainable cells (two share a run) x metrics; no error rows; label columns present
    assert set(frame["ablation"]) == {"", "again"} and "nosuchmodel" not in set(frame["model"])
    assert frame.groupby(["key", "ablation"]).ngroups == 4 and frame["key"].nunique() == 3
    metrics_per_run = frame.groupby(["key", "ablation"])["metric"].nunique().unique()
    assert len(metrics_per_run) == 1 and metrics_per_run[0] >= 10
    # resume: nothing trained again (files untouched), the error record is retried (rewritten)
    before = {f.name: f.stat().st_mtime_ns for f in files}
    time.sleep(0.01)
    counts = runner.execute(experiments.cells("tinygrid", "tinyprof"), store, grid="tinygrid", profile="tinyprof",
                            executor="inprocess", progress=False)
    assert counts == {"total": 4, "stored": 3, "ran": 1, "errors": 1, "busy": 0}
    after = {f.name: f.stat().st_mtime_ns for f in store.root.glob("*.json")}
    assert after.keys() == before.keys()
    changed = {n for n in after if after[n] != before[n]}
    assert changed == {store.path(experiments.cells("tinygrid", "tinyprof", {"model": "nosuchmodel"})[0].config).name}
    # train=False: the same frame, nothing run
    again = experiments.run_grid("tinygrid", "tinyprof", results_dir=tiny / "res", train=False, progress=False)
    assert len(again) == len(frame)


def test_missing_cells_are_absent_without_training(tiny):
    frame = experiments.run_grid("tinygrid", "tinyprof", results_dir=tiny / "res", train=False, progress=False)
    assert len(frame) == 0 and {"metric", "value", "paper_model", "key"} <= set(frame.columns)
    assert not (tiny / "res").exists()


def test_corrupt_and_foreign_files_are_reported_by_name_and_skipped(tiny):
    store = runner.Store(tiny / "res", "tinyprof", "tinygrid")
    cell = experiments.cells("tinygrid", "tinyprof", {"loss": "bce"})[0]
    store.root.mkdir(parents=True)
    store.path(cell.config).write_text('{"config": {"trunc')  # corrupt file under the cell's own name
    (store.root / "notes.json").write_text('{"hello": "world"}')  # foreign JSON
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = experiments.run_grid("tinygrid", "tinyprof", only={"loss": "bce"}, results_dir=tiny / "res",
                                     executor="inprocess", progress=False)
    messages = " ".join(str(w.message) for w in caught)
    assert "notes.json" in messages and store.path(cell.config).name in messages
    assert frame["key"].unique().tolist() == [cell.config.key()]  # the corrupt cell was rerun and replaced
    json.loads(store.path(cell.config).read_text())


def test_version_bump_reruns(tiny, monkeypatch):
    experiments.run_grid("tinygrid", "tinyprof", only={"loss": "ce"}, results_dir=tiny / "res", executor="inprocess",
                         progress=False)
    monkeypatch.setattr(runner, "RESULTS_VERSION", runner.RESULTS_VERSION + 1)
    assert len(experiments.run_grid("tinygrid", "tinyprof", only={"loss": "ce"}, results_dir=tiny / "res",
                                    train=False, progress=False)) == 0
    store = runner.Store(tiny / "res", "tinyprof", "tinygrid")
    counts = runner.execute(experiments.cells("tinygrid", "tinyprof", {"loss": "ce"}), store, grid="tinygrid",
                            profile="tinyprof", executor="inprocess", progress=False)
    assert counts["ran"] == 1 and len(list(store.root.glob("*.json"))) == 2


def test_crash_in_a_cell_does_not_stop_the_others(tiny, monkeypatch):
    from seqrec import trainer

    real = trainer.train

    def flaky(config, **kw):
        if config.loss == "ce":
            raise RuntimeError("boom\nsecond line")
        return real(config, **kw)

    monkeypatch.setattr(trainer, "train", flaky)
    frame = experiments.run_grid("tinygrid", "tinyprof", only={"model": "sasrec"}, results_dir=tiny / "res",
                                 executor="inprocess", progress=False)
    assert sorted(frame["loss"].unique()) == ["bce", "cce"]
    store = runner.Store(tiny / "res", "tinyprof", "tinygrid")
    errs = [r for r in store.records().values() if r["status"] == "error"]
    assert [e["error"] for e in errs] == ["RuntimeError: boom"] and "second line" in errs[0]["traceback"]


# --------------------------------------------------------------------------- subprocess isolation and SIGTERM
SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_runner import tiny_grid
    from seqrec import experiments
    from seqrec.experiments import GRIDS, PROFILES, Profile
    GRIDS["tinygrid"] = tiny_grid(Path({data!r}))
    PROFILES["tinyprof"] = Profile("tinyprof", "test", max_epochs={epochs}, overrides={overrides})
    experiments.run_grid("tinygrid", "tinyprof", only={{"model": "sasrec"}}, results_dir={res!r}, executor={executor!r},
                         jobs={jobs})
""")


def run_script(tmp_path, epochs, executor="local", jobs=1, overrides=None):
    script = tmp_path / f"run{epochs}.py"
    script.write_text(SCRIPT.format(tests=str(ROOT / "tests"), data=str(tmp_path / "tiny.txt"), epochs=epochs,
                                    res=str(tmp_path / "res"), executor=executor, jobs=jobs, overrides=overrides or {}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)


def test_sigterm_mid_grid_then_resume(tmp_path):
    """Kill the local runner (one subprocess per cell) after its first cell, rerun: each finished cell is stored
    exactly once, no temporary file is left, and the rest completes."""
    write_dataset(tmp_path / "tiny.txt", users=60)
    root = tmp_path / "res" / "tinyprof" / "tinygrid"
    proc = run_script(tmp_path, epochs=15)
    deadline = time.time() + 120
    while time.time() < deadline and not list(root.glob("*.json")):
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    first = {f.name: f.read_text() for f in root.glob("*.json")}
    assert len(first) == 1
    time.sleep(1.0)  # the second cell's child is training now
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "terminated" in out
    files = sorted(p.name for p in root.iterdir())
    assert [f for f in files if not f.endswith(".json")] == []  # no partial or temporary file
    assert set(first) <= set(files) and len(files) < 3
    proc = run_script(tmp_path, epochs=15, executor="inprocess")  # the same store, faster to finish
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert f"{len(files)} already stored" in out
    final = sorted(p.name for p in root.iterdir())
    assert len(final) == 3 and all(f.endswith(".json") for f in final)
    for name, text in first.items():  # the finished cell was not rerun
        assert (root / name).read_text() == text
    records = [json.loads((root / f).read_text()) for f in final]
    assert all(r["status"] == "ok" for r in records) and len({r["key"] for r in records}) == 3
    left = list((root.parent / ".partial").rglob("*.pt"))
    assert left == [], left  # per-epoch checkpoints removed once stored


def test_a_run_stored_by_another_grid_of_the_profile_is_reused(tiny, monkeypatch):
    """Table 3's SASRec cells are Table 2's Beauty runs: a grid finds a config already run by a sibling grid of the
    same profile, does not train it again, and shows it with its own labels; other profiles are not consulted."""
    data = tiny / "tiny.txt"
    other = tiny_grid(data, "othergrid")
    other.specs = [(cfg, {**lab, "grid": "othergrid", "ablation": "mine"}) for cfg, lab in other.specs[:2]]
    monkeypatch.setitem(GRIDS, "othergrid", other)
    experiments.run_grid("tinygrid", "tinyprof", results_dir=tiny / "res", executor="inprocess", progress=False,
                         only={"loss": "bce"})
    store = runner.Store(tiny / "res", "tinyprof", "othergrid")
    counts = runner.execute(experiments.cells("othergrid", "tinyprof"), store, grid="othergrid", profile="tinyprof",
                            executor="inprocess", progress=False)
    assert counts == {"total": 2, "stored": 1, "ran": 1, "errors": 0, "busy": 0}  # BCE reused, CCE trained
    assert [p.name for p in store.root.glob("*_bce_*.json")] == []  # not copied either
    frame = experiments.run_grid("othergrid", "tinyprof", results_dir=tiny / "res", train=False, progress=False)
    assert set(frame["loss"]) == {"bce", "cce"} and set(frame["ablation"]) == {"mine"}
    monkeypatch.setitem(PROFILES, "otherprof", Profile("otherprof", "test profile"))
    elsewhere = runner.Store(tiny / "res", "otherprof", "othergrid")
    assert elsewhere.records() == {}


def test_interrupted_cells_are_resumed_first_most_epochs_first(tiny):
    """Cells with a per-epoch checkpoint go to the front (most epochs done first); the rest keep the grid order;
    an unreadable checkpoint still counts as started."""
    import torch

    store = runner.Store(tiny / "res", "tinyprof", "tinygrid")
    cs = runner._unique_missing(experiments.cells("tinygrid", "tinyprof"), store)  # one cell per config
    assert len(cs) == 4
    for cell, epoch in ((cs[1], 2), (cs[3], 7)):
        store.partial(cell.config).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state": {"epoch": epoch}}, store.partial(cell.config))
    store.partial(cs[2].config).write_bytes(b"not a checkpoint")
    order = runner.resume_first(cs, store)
    assert [cs.index(c) for c in order] == [3, 1, 2, 0]
    assert runner.resume_first(cs, runner.Store(tiny / "empty", "tinyprof", "tinygrid")) == cs  # nothing to resume


def five_epoch_cell_and_reference(tiny):
    """The tiny grid's BCE cell at 5 epochs (patience 5), and its record from an uninterrupted run."""
    one = experiments.cells("tinygrid", "tinyprof", {"loss": "bce"})
    one[0].config.epochs, one[0].config.patience = 5, 5
    clean = runner.Store(tiny / "clean", "tinyprof", "tinygrid")
    runner.execute(one, clean, grid="tinygrid", profile="tinyprof", executor="inprocess", progress=False)
    return one, next(iter(clean.records().values()))


def interrupt_after_two_epochs(cells, store, monkeypatch) -> list:
    """Run ``cells`` into ``store`` and kill the run once its second per-epoch checkpoint is written (a
    KeyboardInterrupt, not an Exception: it ends the grid like a kill, no error record); return the paths saved."""
    import seqrec.trainer as t

    real_save, saved = t.save_checkpoint, []

    def save_then_die(path, state):
        real_save(path, state)
        saved.append(path)
        if len(saved) == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(t, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        runner.execute(cells, store, grid="tinygrid", profile="tinyprof", executor="inprocess", progress=False)
    monkeypatch.setattr(t, "save_checkpoint", real_save)
    return saved


def test_interrupted_cell_resumes_from_its_partial_checkpoint(tiny, monkeypatch, capsys):
    """A cell killed after 2 of its epochs resumes there on the next run (2 sessions in its provenance) and
    stores the same metrics and curve as an uninterrupted run; its checkpoint is removed once the record lands."""
    one, reference = five_epoch_cell_and_reference(tiny)
    twin = experiments.Cell(one[0].config, {**one[0].labels, "ablation": "twin"})  # the same run, shown twice
    store = runner.Store(tiny / "res", "tinyprof", "tinygrid")
    saved = interrupt_after_two_epochs(one, store, monkeypatch)
    partial = store.partial(one[0].config)
    assert saved[-1] == partial and partial.exists() and store.records() == {}
    progress = runner.partial_progress(tiny / "res", "tinyprof")
    assert [(p["grid"], p["run"], p["epoch"], p["epochs"], p["patience"], p["monitor"], p["training"]) for p in progress] == [
        ("tinygrid", partial.stem, 2, 5, 5, one[0].config.monitor, False)]
    per_epoch = (progress[0]["train_seconds"] + progress[0]["eval_seconds"]) / 2
    assert progress[0]["seconds_left"] == pytest.approx(3 * per_epoch)  # 3 epochs left at the mean so far
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["progress", "--profile", "tinyprof", "--results-dir", str(tiny / "res")]) == 0
    assert out.getvalue().startswith(f"tinygrid/{partial.stem}: epoch 2 of 5, best {one[0].config.monitor} ")
    assert "since, patience 5)" in out.getvalue() and " h left, " in out.getvalue()
    assert out.getvalue().strip().endswith("interrupted (the next run resumes it)")
    from seqrec.locking import file_lock

    with file_lock(partial.with_suffix(".lock")):  # a runner training it now holds its lock
        assert [p["training"] for p in runner.partial_progress(tiny / "res", "tinyprof")] == [True]
    capsys.readouterr()
    counts = runner.execute(one + [twin], store, grid="tinygrid", profile="tinyprof", executor="inprocess", progress=True)
    assert "1 to run, 1 of them interrupted and resumed first (inprocess)" in capsys.readouterr().out
    assert counts["ran"] == 1 and not partial.exists() and runner.partial_progress(tiny / "res", "tinyprof") == []
    assert store.model(one[0].config).exists()  # the best weights are kept for evaluation-only checks
    assert store.model(one[0].config).parent == tiny / "res" / "tinyprof" / ".models" / "tinygrid"
    record = next(iter(store.records().values()))
    assert record["metrics"] == reference["metrics"]
    assert [p["train_loss"] for p in record["curve"]] == [p["train_loss"] for p in reference["curve"]]
    sessions = record["provenance"]["sessions"]
    assert [s["from_epoch"] for s in sessions] == [0, 2] and len(reference["provenance"]["sessions"]) == 1
    assert record["provenance"]["wall_seconds"] == pytest.approx(sum(s["wall_seconds"] for s in sessions))


def test_a_parked_checkpoint_resumes_the_run_on_a_fresh_clone(tiny, monkeypatch, capsys):
    """A cell interrupted after 2 epochs is parked (``seqrec park``); a fresh results folder holding only the
    parked folder (what a new clone gets from git) resumes it at epoch 3 and stores what an uninterrupted run
    stores; parking again drops the stored run's parked copy and keeps a parked copy further along."""
    import shutil

    import torch

    from seqrec import parking

    one, reference = five_epoch_cell_and_reference(tiny)
    old = runner.Store(tiny / "old", "tinyprof", "tinygrid")
    interrupt_after_two_epochs(one, old, monkeypatch)
    capsys.readouterr()
    assert cli.main(["park", "--profile", "tinyprof", "--results-dir", str(tiny / "old")]) == 0
    name = old.partial(one[0].config).name
    assert capsys.readouterr().out.startswith(f"parked   run tinygrid/{name} (epoch 2)\n")
    parked = tiny / "old" / "tinyprof" / "parked" / "tinygrid" / name
    assert runner.Store.key_of(parked) == runner.Store.key_of(old.path(one[0].config)) == one[0].config.key()
    assert parked.read_bytes() == old.partial(one[0].config).read_bytes()

    # a failed attempt's error record (e.g. run on a device the machine lacks) is not a stored run: the copy stays
    old.write({"config": one[0].config.to_dict(), "status": "error", "error": "SeqrecError: no CUDA", "metrics": {},
               "provenance": {}})
    assert parking.park(tiny / "old", "tinyprof") == [
        {"kind": "run", "name": f"tinygrid/{name}", "epoch": 2, "action": "kept"}] and parked.exists()
    old.path(one[0].config).unlink()
    assert parking.cell_progress(tiny / "old", "tinyprof", "tinygrid", one[0].config) == "2 of 5 epochs done (local checkpoint)"
    shutil.copytree(tiny / "old" / "tinyprof" / "parked", tiny / "new" / "tinyprof" / "parked")
    assert parking.cell_progress(tiny / "new", "tinyprof", "tinygrid", one[0].config) == "2 of 5 epochs done (parked checkpoint)"
    assert parking.cell_progress(tiny / "clean", "tinyprof", "tinygrid", one[0].config) == ""  # stored: no checkpoint
    new = runner.Store(tiny / "new", "tinyprof", "tinygrid")
    assert cli.main(["progress", "--profile", "tinyprof", "--results-dir", str(tiny / "new")]) == 0
    assert capsys.readouterr().out.startswith(f"parked tinygrid/{name}: epoch 2 (the next run takes it back ")
    counts = runner.execute(one, new, grid="tinygrid", profile="tinyprof", executor="inprocess", progress=True)
    assert "1 of them interrupted and resumed first (1 checkpoints taken back from " in capsys.readouterr().out
    record = next(iter(new.records().values()))
    assert counts["ran"] == 1 and record["metrics"] == reference["metrics"]
    assert [s["from_epoch"] for s in record["provenance"]["sessions"]] == [0, 2]
    assert parking.park(tiny / "new", "tinyprof") == [
        {"kind": "run", "name": f"tinygrid/{name}", "epoch": None, "action": "removed"}]
    assert not (tiny / "new" / "tinyprof" / "parked" / "tinygrid" / name).exists()

    state = torch.load(parked, weights_only=False)  # a local checkpoint behind the parked copy: both stay as they are
    state["state"]["epoch"] = 1
    torch.save(state, old.partial(one[0].config))
    assert parking.park(tiny / "old", "tinyprof") == [
        {"kind": "run", "name": f"tinygrid/{name}", "epoch": 2, "action": "kept"}]
    assert parking.unpark_run(old, one[0].config) == 2  # taken back: the parked copy is further along
    assert parking.epochs_done(old.partial(one[0].config)) == 2


def test_a_pretraining_is_parked_until_every_cell_finetuned_from_it_is_stored(tmp_path):
    """The paper profile's 20-epoch Beauty pretraining (the authors' recipe) is parked, finished or not, while one
    of its two cells (BCE, CCE) is unstored; once both are stored, parking removes the parked copy and does not
    copy the local checkpoint again. A pretraining no cell of the profile uses is parked as before."""
    import torch

    from seqrec import experiments, parking, pretrain

    probe = experiments.cells("ablations", "paper", {"ablation": "pretraining", "data": "Beauty"})
    assert sorted(c.config.loss for c in probe) == ["bce", "cce"]
    local = pretrain.checkpoint_path(probe[0].config)
    name = local.name
    assert pretrain.checkpoint_path(probe[1].config).name == name
    local.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epochs_done": 20}, local)  # finished: 20 of 20 epochs
    own = local.with_name("Mine-uall-s42-L50-D64-l2-h2-d0.5-e3.pt")  # no cell of the profile is finetuned from it
    torch.save({"epochs_done": 3}, own)
    res = tmp_path / "res"
    mine = {"kind": "pretraining", "name": f"pretrain/{own.name}", "epoch": 3}
    assert parking.park(res, "paper") == [{"kind": "pretraining", "name": f"pretrain/{name}", "epoch": 20, "action": "parked"},
                                          {**mine, "action": "parked"}]
    store = runner.Store(res, "paper", "ablations")

    def store_ok(cell):
        store.write({"config": cell.config.to_dict(), "key": cell.config.key(), "status": "ok",
                     "results_version": runner.RESULTS_VERSION, "metrics": {}, "provenance": {}})
    store_ok(probe[0])  # CCE or BCE still needs it
    assert name not in parking.pretrainings_served(res, "paper")
    assert parking.park(res, "paper") == [{"kind": "pretraining", "name": f"pretrain/{name}", "epoch": 20, "action": "kept"},
                                          {**mine, "action": "kept"}]
    store_ok(probe[1])
    assert name in parking.pretrainings_served(res, "paper") and own.name not in parking.pretrainings_served(res, "paper")
    assert parking.park(res, "paper") == [{**mine, "action": "kept"},
                                          {"kind": "pretraining", "name": f"pretrain/{name}", "epoch": None, "action": "removed"}]
    assert not (parking.parked_root(res, "paper") / "pretrain" / name).exists() and local.exists()
    assert parking.park(res, "paper") == [{**mine, "action": "kept"}]


# --------------------------------------------------------------------------- jobs side by side, and locks
def test_jobs_run_cells_side_by_side(tiny, monkeypatch):
    """With jobs=2 two cells are in flight at once (both reach a barrier that needs two parties), each child is
    given half the cores as its thread count, and every record is written by the calling thread."""
    import threading

    barrier, envs, writers = threading.Barrier(2, timeout=60), [], []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def fake_subprocess(payload, out, env=None, live=None):
        envs.append(env)
        barrier.wait()  # BrokenBarrierError (so the test fails) unless a second cell runs meanwhile
        return runner._error_record(payload, "fake: not trained")

    real_write = runner.Store.write
    monkeypatch.setattr(runner, "_run_subprocess", fake_subprocess)
    monkeypatch.setattr(runner.Store, "write", lambda self, r: writers.append(threading.current_thread()) or real_write(self, r))
    cells = experiments.cells("tinygrid", "tinyprof", {"loss": "bce,ce"})
    store = runner.Store(tiny / "res", "tinyprof", "tinygrid")
    counts = runner.execute(cells, store, grid="tinygrid", profile="tinyprof", executor="subprocess", jobs=2, progress=False)
    assert counts == {"total": 2, "stored": 0, "ran": 2, "errors": 2, "busy": 0}
    assert [e["OMP_NUM_THREADS"] for e in envs] == [str(max(1, (os.cpu_count() or 1) // 2))] * 2
    assert writers == [threading.main_thread()] * 2 and len(store.records()) == 2


def test_jobs_give_the_same_records_as_one_at_a_time(tiny, monkeypatch):
    """Real subprocesses, 2 at once vs one after the other (the same thread count in both): identical metrics and
    curves; a thread count the caller set is kept."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert runner.child_env(jobs=2)["OMP_NUM_THREADS"] == "1"
    cells = experiments.cells("tinygrid", "tinyprof", {"loss": "bce,cce", "model": "sasrec"})
    stored = {}
    for jobs in (1, 2):
        store = runner.Store(tiny / f"res{jobs}", "tinyprof", "tinygrid")
        counts = runner.execute(cells, store, grid="tinygrid", profile="tinyprof", executor="subprocess", jobs=jobs,
                                progress=False)
        assert counts["ran"] == 2 and counts["errors"] == 0
        stored[jobs] = {k: (r["metrics"], [p["train_loss"] for p in r["curve"]]) for k, r in store.records().items()}
    assert stored[1] == stored[2] and len(stored[1]) == 2


def test_a_cell_another_runner_is_training_is_skipped(tiny, capsys):
    """A cell whose lock is held elsewhere is skipped ("busy"), not trained twice; the next run trains it."""
    from seqrec.locking import file_lock

    cells = experiments.cells("tinygrid", "tinyprof", {"loss": "bce,ce"})
    store = runner.Store(tiny / "res", "tinyprof", "tinygrid")
    held = cells[0].config
    with file_lock(store.partial(held).with_suffix(".lock")):
        counts = runner.execute(cells, store, grid="tinygrid", profile="tinyprof", executor="inprocess")
    assert counts["busy"] == 1 and counts["ran"] == 1
    assert held.key() not in store.done() and cells[1].config.key() in store.done()
    assert "skipped, another runner is training it" in capsys.readouterr().out
    counts = runner.execute(cells, store, grid="tinygrid", profile="tinyprof", executor="inprocess", progress=False)
    assert counts["ran"] == 1 and counts["busy"] == 0 and held.key() in store.done()


def test_bad_jobs_are_one_line_errors(tiny, capsys):
    with pytest.raises(SeqrecError, match="jobs must be a whole number >= 1, got 0"):
        experiments.run_grid("tinygrid", "tinyprof", results_dir=tiny / "res", jobs=0, progress=False)
    with pytest.raises(SeqrecError, match="jobs=2 needs the subprocess executor .*not 'inprocess'"):
        experiments.run_grid("tinygrid", "tinyprof", results_dir=tiny / "res", executor="inprocess", jobs=2,
                             progress=False)
    assert cli.main(["run", "tinygrid", "--profile", "tinyprof", "--jobs", "0", "--results-dir", str(tiny / "res")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "seqrec: error: jobs must be a whole number >= 1, got 0"


def _children_of(tmp_path) -> list[str]:
    """Cell subprocesses still alive whose command line names a file under ``tmp_path``."""
    alive = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"seqrec.runner" in args and any(str(tmp_path).encode() in a for a in args):
            alive.append(cmdline.parent.name)
    return alive


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc to list processes")
def test_sigterm_with_jobs_stops_every_child(tmp_path):
    """SIGTERM of a runner with 2 long cells in flight: both children end with it (none left running, none goes on to
    store its record), no temporary file stays, and each keeps its per-epoch checkpoint to resume from."""
    write_dataset(tmp_path / "tiny.txt", users=60)
    root = tmp_path / "res" / "tinyprof" / "tinygrid"
    long = {"epochs": 5000, "patience": 5000}  # minutes per cell: only a kill ends them
    proc = run_script(tmp_path, epochs=5000, jobs=2, overrides=long)
    partial = tmp_path / "res" / "tinyprof" / ".partial" / "tinygrid"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(partial.glob("*.pt"))) < 2:  # both are past their first epoch
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    assert len(_children_of(tmp_path)) == 2
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "terminated" in out, out
    assert _children_of(tmp_path) == []
    assert list(root.glob("*")) == []  # no record (none finished), no temporary file
    assert len(list(partial.glob("*.pt"))) == 2


# --------------------------------------------------------------------------- Dask
def test_dask_executor_fills_the_same_store(tiny):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        frame = experiments.run_grid("tinygrid", "tinyprof", results_dir=tiny / "res", executor="dask",
                                     scheduler=client, progress=False)
    store = runner.Store(tiny / "res", "tinyprof", "tinygrid")
    records = store.records()
    assert len(records) == 4 and sum(r["status"] == "error" for r in records.values()) == 1
    assert frame["key"].nunique() == 3
    # the local executor finds everything already stored
    counts = runner.execute(experiments.cells("tinygrid", "tinyprof", {"model": "sasrec"}), store, grid="tinygrid",
                            profile="tinyprof", executor="inprocess", progress=False)
    assert counts["ran"] == 0 and counts["stored"] == 3


def test_gpu_cells_ask_for_a_gpu_resource():
    paper = experiments.cells("table3", "paper")
    assert all(runner.task_resources(c.config) == {"GPU": 1} for c in paper)
    assert all(runner.task_resources(c.config) is None for c in experiments.cells("table3", "smoke"))


def test_unknown_executor(tiny):
    with pytest.raises(SeqrecError, match="unknown executor 'spark'; allowed: local, subprocess, inprocess, dask"):
        experiments.run_grid("tinygrid", "tinyprof", results_dir=tiny / "res", executor="spark", progress=False)


def test_cli_run_and_report(tiny, capsys):
    from seqrec import cli

    assert cli.main(["run", "tinygrid", "--profile", "tinyprof", "--only", "loss=bce", "--executor", "inprocess",
                     "--results-dir", str(tiny / "res")]) == 0
    out = capsys.readouterr().out
    assert "1 to run" in out and "full_HIT@10" in out
    assert cli.main(["run", "table2", "--profile", "smoke", "--only", "colour=red"]) == 2
    assert "seqrec: error: unknown filter key 'colour'" in capsys.readouterr().err
    assert cli.main(["report", "table2", "--profile", "smoke", "--results-dir", str(tiny / "empty")]) == 0
    out = capsys.readouterr().out
    assert "not run: 80" in out


def test_table2_frame_adds_the_seed_runs_of_the_same_cells(tiny, monkeypatch):
    """analysis.table2_frame: Table 2's runs plus the ``seeds`` ablation's runs, one row per run x metric (the
    seed-42 run that both grids hold counts once), labelled as Table 2 cells; other ablations are left out."""
    from seqrec import analysis, paper

    data = tiny / "tiny.txt"
    base = {"data": str(data), "model": "sasrec", "loss": "cce", **TINY}
    lab = {"paper_model": "SASRec", "loss_kind": "improved", "paper_loss": "CCE", "variant": "", "negatives": ""}
    monkeypatch.setitem(GRIDS, "table2", Grid("table2", "t", [(base, {**lab, "grid": "table2", "ablation": ""})]))
    monkeypatch.setitem(GRIDS, "ablations", Grid("ablations", "a", [
        ({**base, "seed": s}, {**lab, "grid": "ablations", "ablation": "seeds"}) for s in (42, 43)] + [
        ({**base, "patience": 1}, {**lab, "grid": "ablations", "ablation": "patience"})]))
    for g in ("table2", "ablations"):
        experiments.run_grid(g, "tinyprof", results_dir=tiny / "res", executor="inprocess", progress=False)
    f = analysis.table2_frame("tinyprof", train="none", results_dir=tiny / "res")
    ndcg = f[f.metric == "full_NDCG@10"]
    assert sorted(ndcg.seed) == [42, 43] and set(ndcg.ablation) == {""}
    assert f.groupby("key").metric.count().nunique() == 1  # each run once
    one = analysis.grid_frame("table2", "tinyprof", train="none", results_dir=tiny / "res")
    assert len(f) == 2 * len(one)
    # through compare: the cell is the mean over both seeds
    frame = f.assign(data="LastFM")
    c = paper.compare(frame, "table2")
    cell = c[(c.dataset == "LastFM") & (c.model == "SASRec") & (c.loss_kind == "improved") & (c.metric == "NDCG@10")].iloc[0]
    assert cell.n_seeds == 2 and cell.reproduced == pytest.approx(ndcg.value.mean())


def test_table3_frame_adds_the_seed_runs_on_its_own_dataset_only(tiny, monkeypatch):
    """analysis.table3_frame: Table 3's runs plus the ``seeds`` ablation's runs of Table 3's cells (another
    dataset's seed runs, and another cell's on the same dataset, stay out), so a SASRec cell of Table 3 averages
    over the same seeds as Table 2's."""
    from seqrec import analysis

    data, other = tiny / "tiny.txt", write_dataset(tiny / "other.txt")
    base = {"data": str(data), "model": "sasrec", "loss": "cce", **TINY}
    lab = {"paper_model": "SASRec", "loss_kind": "improved", "paper_loss": "CCE", "variant": "", "negatives": ""}
    monkeypatch.setitem(GRIDS, "table3", Grid("table3", "t", [(base, {**lab, "grid": "table3", "ablation": ""})]))
    monkeypatch.setitem(GRIDS, "ablations", Grid("ablations", "a", [
        ({**base, "seed": s}, {**lab, "grid": "ablations", "ablation": "seeds"}) for s in (42, 43)] + [
        ({**base, "data": str(other), "seed": 44}, {**lab, "grid": "ablations", "ablation": "seeds"}),
        ({**base, "loss": "bce", "seed": 45}, {**lab, "paper_loss": "BCE", "loss_kind": "original", "grid": "ablations",
                                                "ablation": "seeds"})]))
    for g in ("table3", "ablations"):
        experiments.run_grid(g, "tinyprof", results_dir=tiny / "res", executor="inprocess", progress=False)
    f = analysis.table3_frame("tinyprof", train="none", results_dir=tiny / "res")
    ndcg = f[f.metric == "full_NDCG@10"]
    # seed 44 is on the other dataset, seed 45 another cell (BCE: not one of this Table 3's)
    assert sorted(ndcg.seed) == [42, 43] and set(ndcg.ablation) == {""} and set(ndcg.loss) == {"cce"}
    assert len(analysis.grid_frame("ablations", "tinyprof", train="none", results_dir=tiny / "res")
               .query("metric == 'full_NDCG@10'")) == 4
