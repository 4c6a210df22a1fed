import json
import os
import subprocess
import sys

import pytest
import torch

from seqrec import TrainConfig, data, trainer
from seqrec.errors import SeqrecError


def rule_dataset(num_users=120, num_items=40, length=12, seed=0):
    """Each user walks i, i+1, i+2, ... (mod num_items): the next item is always the successor."""
    g = torch.Generator().manual_seed(seed)
    seqs = []
    for _ in range(num_users):
        start = int(torch.randint(0, num_items, (1,), generator=g))
        seqs.append([(start + k) % num_items + 1 for k in range(length)])
    return data.SequenceData("rule", list(range(1, num_users + 1)), seqs, num_items)


def small_config(**kw):
    base = dict(data="rule", model="sasrec", loss="cce", hidden_size=16, num_heads=1, num_layers=1, dropout=0.1,
                max_len=10, lr=5e-3, batch_size=32, epochs=25, patience=25, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def test_sasrec_with_cce_learns_a_sequential_rule():
    result = trainer.train(small_config(), dataset=rule_dataset(), progress=False)
    assert result["metrics"]["full_HIT@1"] > 0.9
    assert result["metrics"]["sampled_HIT@1"] > 0.9


def test_evaluate_one_metric_group_per_negative_set():
    ds = rule_dataset(num_users=30)
    s = data.split(ds, 10)
    model = trainer.models.build(small_config(), ds.num_items)
    uniform = data.evaluation_negatives(ds, 0)
    pop = data.evaluation_popularity_negatives(ds, 0)
    one = trainer.evaluate(model, s.test_inputs, s.test_targets, s.test_seen, uniform)
    both = trainer.evaluate(model, s.test_inputs, s.test_targets, s.test_seen, {"sampled_": uniform, "pop_sampled_": pop},
                            batch_size=7)
    assert {k: v for k, v in both.items() if not k.startswith("pop_")} == pytest.approx(one)
    # reference: rank of the target among itself and its popularity negatives, from the model's scores directly
    with torch.no_grad():
        scores = model.eval().score_all(s.test_inputs)
    candidates = torch.cat([s.test_targets[:, None], pop], 1)
    picked = scores.gather(1, candidates)
    rank = (picked[:, 1:] >= picked[:, :1]).sum(1) + 1  # pessimistic ties
    assert both["pop_sampled_HIT@10"] == pytest.approx((rank <= 10).float().mean().item())
    assert both["pop_sampled_NDCG@10"] == pytest.approx(torch.where(rank <= 10, 1 / torch.log2(rank + 1.0), 0.0).mean().item())
    assert trainer.train(small_config(epochs=1), dataset=ds, progress=False)["metrics"].keys() == both.keys()


def test_same_seed_same_metrics_and_other_seed_differs():
    ds = rule_dataset()
    a = trainer.train(small_config(epochs=3, loss="bce"), dataset=ds, progress=False)
    b = trainer.train(small_config(epochs=3, loss="bce"), dataset=ds, progress=False)
    c = trainer.train(small_config(epochs=3, loss="bce", seed=7), dataset=ds, progress=False)
    assert a["metrics"] == b["metrics"]
    assert [p["train_loss"] for p in a["curve"]] == [p["train_loss"] for p in b["curve"]]
    assert a["metrics"] != c["metrics"]


def test_early_stopping_restores_the_best_epoch():
    ds = rule_dataset()
    result = trainer.train(small_config(epochs=30, patience=2, lr=0.5, monitor="valid_NDCG@20"), dataset=ds, progress=False)
    curve = result["curve"]
    best = max(curve, key=lambda p: p["valid_NDCG@20"])
    assert result["best_epoch"] == best["epoch"]
    if result["stopped_early"]:
        assert result["epochs_run"] == result["best_epoch"] + 2
    # the restored model is the best epoch's: re-evaluating validation reproduces its value
    assert result["valid_metrics"]["valid_NDCG@20"] == best["valid_NDCG@20"]


def test_train_loss_monitor_without_validation():
    result = trainer.train(small_config(epochs=4, monitor="train_loss", patience=20, eval_every=0), dataset=rule_dataset(),
                           progress=False)
    assert all("valid_NDCG@20" not in p for p in result["curve"])
    losses = [p["train_loss"] for p in result["curve"]]
    assert result["best_epoch"] == 1 + losses.index(min(losses))


def train_until_killed(config, dataset, checkpoint, epochs: int) -> None:
    """Train ``config`` with per-epoch checkpoints and "kill" it once ``epochs`` checkpoints are written. (A run
    with fewer epochs has another key, as epochs is in it, so the stop is raised from inside the loop.)"""
    import seqrec.trainer as t

    real_save, calls = t.save_checkpoint, []

    def save_then_die(path, state):
        real_save(path, state)
        calls.append(1)
        if len(calls) == epochs:
            raise KeyboardInterrupt
    t.save_checkpoint = save_then_die
    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.train(config, dataset=dataset, checkpoint=checkpoint, progress=False)
    finally:
        t.save_checkpoint = real_save


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    ds = rule_dataset()
    full = trainer.train(small_config(epochs=6, loss="bce"), dataset=ds, progress=False)
    ckpt = tmp_path / "run.pt"
    train_until_killed(small_config(epochs=6, loss="bce"), ds, ckpt, epochs=3)
    resumed = trainer.train(small_config(epochs=6, loss="bce"), dataset=ds, checkpoint=ckpt, progress=False)
    assert resumed["metrics"] == full["metrics"]
    assert [p["train_loss"] for p in resumed["curve"]] == [p["train_loss"] for p in full["curve"]]
    with pytest.raises(SeqrecError, match="belongs to another configuration"):
        trainer.train(small_config(epochs=7, loss="bce"), dataset=ds, checkpoint=ckpt, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_run_started_on_cpu_resumes_on_cuda_and_back(tmp_path):
    """A checkpoint carries CPU random states whichever device wrote it: a CPU run's checkpoint resumes on CUDA (a
    parked CPU cell finished on a lent GPU) and a CUDA run's on CPU; the epochs done before keep their curve."""
    ds = rule_dataset()
    cpu_run = trainer.train(small_config(epochs=4, loss="bce"), dataset=ds, progress=False)
    for first, then in (("cpu", "cuda"), ("cuda", "cpu")):
        ckpt = tmp_path / f"{first}.pt"
        train_until_killed(small_config(epochs=4, loss="bce", device=first), ds, ckpt, epochs=2)
        resumed = trainer.train(small_config(epochs=4, loss="bce", device=then), dataset=ds, checkpoint=ckpt,
                                progress=False)
        assert resumed["epochs_run"] == 4 and len(resumed["curve"]) == 4
        assert [s["from_epoch"] for s in resumed["provenance"]["sessions"]] == [0, 2]
        assert resumed["provenance"]["device_type"] == then
        if first == "cpu":  # the two CPU epochs are the CPU run's, to the bit
            assert [p["train_loss"] for p in resumed["curve"][:2]] == [p["train_loss"] for p in cpu_run["curve"][:2]]


def test_result_and_checkpoint_record_the_data_file_and_a_changed_file_is_not_resumed(tmp_path):
    """A run on a .txt file records the file's SHA-256 (hashlib of its bytes) and size; its checkpoint does too, and
    resuming it after the file changed (the same configuration, the same path) is a one-line error."""
    import hashlib

    path = tmp_path / "mine.txt"
    seqs = rule_dataset(num_users=40).sequences
    path.write_text("".join(" ".join(map(str, [u + 1, *s])) + "\n" for u, s in enumerate(seqs)))
    config = small_config(data=str(path), epochs=3, loss="bce")
    train_until_killed(config, None, tmp_path / "run.pt", epochs=1)
    assert torch.load(tmp_path / "run.pt", weights_only=False)["data_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

    path.write_text(path.read_text().replace("\n2 ", "\n2 1 ", 1))  # user 2 gains an item: another file
    with pytest.raises(SeqrecError, match=r"checkpoint .*run.pt was written for another version of mine's data file "
                                          r"\(sha256 [0-9a-f]{12}…, now [0-9a-f]{12}…\)"):
        trainer.train(config, checkpoint=tmp_path / "run.pt", progress=False)
    result = trainer.train(config, progress=False)
    assert result["dataset"] == {"name": "mine", "users": 40, "items": 40, "interactions": 40 * 12 + 1,
                                 "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert trainer.train(config, dataset=rule_dataset(num_users=40), progress=False)["dataset"]["sha256"] is None


def test_step_decay_and_weight_decay_follow_the_config_and_survive_a_resume(tmp_path):
    """lr_step=2, lr_gamma=0.5: epochs 1-2 train at lr, 3-4 at lr/2, 5 at lr/4 (recorded per epoch in the curve);
    weight decay changes the result; a run interrupted after 3 epochs resumes to the uninterrupted result, its
    schedule included."""
    ds = rule_dataset(num_users=40)
    cfg = dict(epochs=5, patience=5, loss="bce", lr_step=2, lr_gamma=0.5, weight_decay=1e-3)
    full = trainer.train(small_config(**cfg), dataset=ds, progress=False)
    lr = small_config().lr
    assert [p["lr"] for p in full["curve"]] == pytest.approx([lr, lr, lr / 2, lr / 2, lr / 4])
    no_decay = trainer.train(small_config(**{**cfg, "weight_decay": 0.0}), dataset=ds, progress=False)
    assert [p["train_loss"] for p in no_decay["curve"]] != [p["train_loss"] for p in full["curve"]]
    assert "lr" not in trainer.train(small_config(epochs=1), dataset=ds, progress=False)["curve"][0]  # constant lr

    train_until_killed(small_config(**cfg), ds, tmp_path / "run.pt", epochs=3)
    resumed = trainer.train(small_config(**cfg), dataset=ds, checkpoint=tmp_path / "run.pt", progress=False)
    assert [p["lr"] for p in resumed["curve"]] == [p["lr"] for p in full["curve"]]
    assert resumed["metrics"] == full["metrics"]


def test_saved_model_reproduces_the_test_metrics(tmp_path):
    ds = rule_dataset(num_users=40)
    result = trainer.train(small_config(epochs=2, loss="bce"), dataset=ds, model_out=tmp_path / "m" / "best.pt", progress=False)
    model, config = trainer.load_model(tmp_path / "m" / "best.pt")
    assert config.key() == result["key"]
    s = data.split(ds, config.max_len)
    again = trainer.evaluate(model, s.test_inputs, s.test_targets, s.test_seen,
                             {"sampled_": data.evaluation_negatives(ds, config.seed),
                              "pop_sampled_": data.evaluation_popularity_negatives(ds, config.seed)})
    assert again == pytest.approx(result["metrics"])
    with pytest.raises(SeqrecError, match="missing model file"):
        trainer.load_model(tmp_path / "nope.pt")


def test_result_carries_provenance():
    result = trainer.train(small_config(epochs=1), dataset=rule_dataset(), progress=False)
    prov = result["provenance"]
    for key in ("commit", "clean", "versions", "device", "kernels", "peak_memory_mb", "wall_seconds", "seed"):
        assert key in prov
    # the kernels' instruction set, in the record and in its session: ATen's names for x86 or ARM hosts
    assert prov["kernels"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "SVE256", "NEON")
    assert [s["kernels"] for s in prov["sessions"]] == [prov["kernels"]]
    assert prov["peak_memory_mb"] > 0 and prov["versions"]["torch"] == torch.__version__
    n = torch.get_num_threads()
    assert prov["device"].endswith(f"({n} thread{'s' if n > 1 else ''})")  # "(1 thread)", "(2 threads)"
    json.dumps(result)  # serialisable


def test_tidy_frame_has_a_column_per_setting_so_a_pivot_does_not_merge_runs():
    from seqrec.results import to_frame

    runs = [trainer.train(small_config(epochs=1, hidden_size=h), dataset=rule_dataset(), progress=False)
            for h in (8, 16)]
    frame = to_frame(runs)
    assert set(frame["hidden_size"]) == {8, 16} and frame["key"].nunique() == 2
    for setting in ("max_len", "num_layers", "num_heads", "dropout", "lr", "monitor", "model_options"):
        assert frame[setting].nunique() == 1, setting
    ndcg = frame[frame.metric == "full_NDCG@10"].pivot_table(index="hidden_size", values="value")
    assert list(ndcg.index) == [8, 16]  # one value per run, not their mean
    # each run's early-stopping monitor at its best epoch, what a tuner compares (analysis.tuning_sweep)
    for run in runs:
        rows = frame[frame["key"] == run["key"]]
        assert set(rows["best_valid"]) == {run["valid_metrics"][run["config"]["monitor"]]}


@pytest.mark.parametrize("kw, message", [
    (dict(model="nope"), "unknown model 'nope'; allowed: sasrec"),
    (dict(loss="nope"), "unknown loss 'nope'"),
    (dict(num_negatives=0), "num_negatives must be >= 1"),
    (dict(lr=0.0), "lr must be > 0"),
    (dict(max_len=1), "max_len must be >= 2"),
    (dict(monitor="x"), "unknown monitor 'x'"),
    (dict(loss="bce", negative_pool="mine"), "unknown negative_pool 'mine'; allowed: others, unseen"),
    (dict(loss="cce", negative_pool="unseen"), "negative_pool 'unseen' needs a loss that samples negatives, got loss 'cce'"),
    (dict(weight_decay=-1e-5), "weight_decay must be >= 0, got -1e-05"),
    (dict(lr_step=-1), "lr_step must be >= 0"),
    (dict(lr_step=3, lr_gamma=0.0), r"lr_gamma must be in \(0, 1\], got 0.0"),
    (dict(epochs=2, eval_every=5), "eval_every 5 > epochs 2: no epoch would be validated for valid_NDCG@20"),
    (dict(model="srgnn", model_options={"variant": "causal", "layers": 2}),
     "unknown model_options key 'layers' for model 'srgnn'; allowed: variant"),
])
def test_impossible_configs_are_rejected(kw, message):
    with pytest.raises(SeqrecError, match=message):
        small_config(**kw)


def test_user_histories_hold_every_item_of_each_user_sorted():
    ds = data.SequenceData("t", [1, 2], [[4, 2, 7, 2, 5], [3, 1, 6]], 8)
    h = trainer.user_histories(data.split(ds, 3))
    assert h.tolist() == [[0, 2, 2, 4, 5, 7], [0, 0, 0, 1, 3, 6]]  # 0 = padding, first


def test_unseen_negative_pool_never_draws_an_item_of_the_user(monkeypatch):
    ds = rule_dataset(num_users=40, num_items=30, length=12)
    drawn = []
    real = trainer.losses.sample_unseen_negatives

    def spy(targets, history, num_items, k, generator=None):
        neg = real(targets, history, num_items, k, generator)
        drawn.append((history.clone(), neg.clone(), targets.clone()))
        return neg

    monkeypatch.setattr(trainer.losses, "sample_unseen_negatives", spy)
    result = trainer.train(small_config(loss="bce", negative_pool="unseen", epochs=2, patience=2), dataset=ds,
                           progress=False)
    assert len(drawn) == 2 * 2  # 40 users in batches of 32: two batches an epoch
    users = [set(s) for s in ds.sequences]  # the whole sequence, valid and test items included
    for history, neg, targets in drawn:
        for row in range(neg.shape[0]):
            user = next(u for u in users if u == set(history[row].tolist()) - {0})
            assert not (set(neg[row][targets[row] > 0].flatten().tolist()) & user)
    assert result["config"]["negative_pool"] == "unseen"


def test_the_default_negative_pool_keeps_the_keys_of_stored_records(real_data_dir):
    # records stored before the option existed must still be found under their key
    from pathlib import Path
    from seqrec import results
    stored = results.load_runs(Path(__file__).resolve().parents[1] / "results" / "paper" / "table2")
    assert stored
    for run in stored:
        assert "negative_pool" not in run["config"] or run["config"]["negative_pool"] == "others"
        assert TrainConfig.from_dict(run["config"]).key() == run["key"]
    assert small_config(negative_pool="unseen", loss="bce").key() != small_config(loss="bce").key()
    for changed in (dict(weight_decay=1e-5), dict(lr_step=3), dict(lr_step=3, lr_gamma=0.5)):  # added later too
        assert small_config(**changed).key() != small_config().key()


def test_git_state_is_the_commit_given_else_git_else_none(tmp_path, monkeypatch):
    """SEQREC_GIT_COMMIT names the commit the code is (a lent GPU machine's copy carries a stale .git) and wins over
    git; without it, git's answer; outside a repository, None."""
    from seqrec import provenance

    monkeypatch.delenv("SEQREC_GIT_COMMIT", raising=False)
    here = provenance.git_state()
    assert here["commit"] is None or len(here["commit"]) == 40
    monkeypatch.setenv("SEQREC_GIT_COMMIT", "f" * 40)
    monkeypatch.setenv("SEQREC_GIT_CLEAN", "1")
    assert provenance.git_state() == {"commit": "f" * 40, "clean": True}
    monkeypatch.setenv("SEQREC_GIT_CLEAN", "0")
    assert provenance.git_state() == {"commit": "f" * 40, "clean": False}
    monkeypatch.delenv("SEQREC_GIT_COMMIT")
    assert provenance.git_state() == here
    monkeypatch.setattr(provenance, "REPO", tmp_path)  # no repository here
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert provenance.git_state() == {"commit": None, "clean": None}


def test_kernels_name_the_instruction_set_a_process_was_held_to():
    """ATEN_CPU_CAPABILITY=default holds ATen to its scalar kernels, MKL_ENABLE_INSTRUCTIONS holds MKL: the record
    must say so, not the host's best."""
    code = "import torch; from seqrec import provenance; print(provenance.kernels(torch.device('cpu')))"
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")}
    held = subprocess.run([sys.executable, "-c", code], env={**env, "ATEN_CPU_CAPABILITY": "default"},
                          capture_output=True, text=True, check=True)
    assert held.stdout.strip() == "DEFAULT"
    held = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**env, "ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "AVX2"})
    assert held.stdout.strip() == "DEFAULT (MKL_ENABLE_INSTRUCTIONS=AVX2)"


def test_cpu_gradients_of_embedding_lookups_do_not_depend_on_threads():
    """The backward of ``table[indices]`` adds repeated rows; PyTorch's default CPU kernel adds them in thread order
    (one thread vs two: different last bits, most tries), so a seed would not fix a run on a multi-core machine.
    Under ``trainer.deterministic`` the sum is the same on 1 and 2 threads, every time."""
    g = torch.Generator().manual_seed(0)
    table = torch.randn(50, 16, generator=g, requires_grad=True)
    indices = torch.randint(0, 50, (4096, 8), generator=g)  # ~650 lookups of each row
    weights = torch.randn(4096, 8, 16, generator=g)
    threads = torch.get_num_threads()

    def gradient(n):
        torch.set_num_threads(n)
        table.grad = None
        with trainer.deterministic(torch.device("cpu")):
            (table[indices] * weights).sum().backward()
        return table.grad.clone()

    try:
        one = gradient(1)
        assert all(torch.equal(one, gradient(2)) for _ in range(3))
    finally:
        torch.set_num_threads(threads)


def test_deterministic_is_on_for_cpu_blocks_only_and_restores_the_setting():
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    with trainer.deterministic(torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) == before
    with trainer.deterministic(torch.device("meta")):  # any non-CPU device (CUDA): left as it was
        assert torch.are_deterministic_algorithms_enabled() == before[0]
    torch.use_deterministic_algorithms(True)  # a caller's own strict setting survives the block
    try:
        with pytest.raises(RuntimeError, match="boom"), trainer.deterministic(torch.device("cpu")):
            raise RuntimeError("boom")
        assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(*before[:1], warn_only=before[1])
