"""GRU4Rec, SR-GNN (both CCE variants), BERT4Rec and S3-Rec (with its pretraining) behind the model interface."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from seqrec import data as data_mod
from seqrec import losses, models, pretrain, trainer
from seqrec.config import TrainConfig
from seqrec.errors import SeqrecError
from seqrec.models import BERT4Rec, GRU4Rec, S3Rec, SASRec, SRGNN
from seqrec.models.s3rec import S3RecPretrainer
from seqrec.models.srgnn import session_graph

N = 30  # items in the synthetic data
NR = 120  # items in the rule data (the trainer samples 99 unseen negatives per user for its sampled metrics)
SMALL = dict(max_len=10, hidden_size=16, num_layers=1, num_heads=1, dropout=0.0)


def make_models(num_items: int = N, max_len: int = 12) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    kw = dict(max_len=max_len, hidden_size=16, num_layers=2, num_heads=2, dropout=0.3)
    return {
        "sasrec": SASRec(num_items, **kw),
        "gru4rec": GRU4Rec(num_items, 16, dropout=0.3),
        "srgnn-causal": SRGNN(num_items, 16, variant="causal"),
        "srgnn-authors": SRGNN(num_items, 16, variant="authors"),
        "bert4rec": BERT4Rec(num_items, **kw),
        "s3rec": S3Rec(num_items, **kw),
    }


def left_padded(seqs: list[list[int]], length: int) -> torch.Tensor:
    return data_mod.left_pad(seqs, length)


SEQS = [[3, 4, 5, 3, 7], [1, 2], [9, 8, 7, 6, 5, 4, 3, 2], [11, 11, 12]]


# --------------------------------------------------------------------------- shapes and padding
@pytest.mark.parametrize("name", list(make_models()))
def test_shapes_and_padding_never_changes_outputs(name):
    model = make_models()[name].eval()
    short, long = left_padded(SEQS, 9), left_padded(SEQS, 12)  # the same sequences, 3 more padding positions
    with torch.no_grad():
        h_short, h_long = model(short), model(long)
        assert h_short.shape == (4, 9, model.hidden_size) and h_long.shape == (4, 12, model.hidden_size)
        assert model.item_embeddings().shape == (N + 1, model.hidden_size)
        assert model.score_all(short).shape == (4, N + 1)
        real = short > 0
        torch.testing.assert_close(h_short[real], h_long[:, 3:][real], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.next_item_hidden(short), model.next_item_hidden(long), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "srgnn-causal", "s3rec"])
def test_causal_models_ignore_later_items(name):
    model = make_models()[name].eval()
    x = left_padded(SEQS, 8)
    t = 5  # every row has a real item at position 5 or padding there
    y = x.clone()
    y[:, t + 1:] = torch.randint(1, N + 1, y[:, t + 1:].shape, generator=torch.Generator().manual_seed(1))
    y[x == 0] = 0
    assert (y != x).any()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:, :t + 1], model(y)[:, :t + 1], atol=1e-5, rtol=1e-5)


def test_srgnn_authors_variant_sees_later_items():
    """The authors' CCE variant: changing the items after t changes the output at t (documented leak)."""
    model = make_models()["srgnn-authors"].eval()
    x = left_padded([[1, 2, 3, 4, 5, 6]], 6)
    y = x.clone()
    y[0, 4:] = torch.tensor([20, 21])
    with torch.no_grad():
        diff = (model(x) - model(y)).abs().amax(-1)[0]
    assert (diff[:4] > 1e-4).all()  # every earlier position sees the changed last item's state
    # position 2 (item 3) additionally sees its successor through the graph: change only position 3
    z = x.clone()
    z[0, 3] = 25
    with torch.no_grad():
        assert (model(x)[0, 2] - model(z)[0, 2]).abs().max() > 1e-4


def test_srgnn_graph_of_the_papers_repeated_item_session():
    """SR-GNN paper, Fig. 2: session v1, v2, v3, v2, v4 (here items 1, 2, 3, 2, 4 after two padding slots)."""
    x = torch.tensor([[0, 0, 1, 2, 3, 2, 4]])
    alias, is_node, a_in, a_out = session_graph(x)
    assert alias.tolist() == [[0, 1, 2, 3, 4, 3, 6]]
    assert is_node.tolist() == [[False, False, True, True, True, False, True]]
    slot = {1: 2, 2: 3, 3: 4, 4: 6}  # item → node slot
    expected_out = {(1, 2): 1.0, (2, 3): 0.5, (2, 4): 0.5, (3, 2): 1.0}  # row-normalised by out-degree
    expected_in = {(2, 1): 0.5, (2, 3): 0.5, (3, 2): 1.0, (4, 2): 1.0}  # a_in[i, j]: edge j → i, by in-degree
    for matrix, expected in ((a_out, expected_out), (a_in, expected_in)):
        want = torch.zeros(7, 7)
        for (i, j), w in expected.items():
            want[slot[i], slot[j]] = w
        torch.testing.assert_close(matrix[0], want)


def test_srgnn_causal_equals_srgnn_on_each_prefix():
    """Causal output at t = the original SR-GNN readout of the prefix up to t (reference: a Python loop)."""
    model = make_models()["srgnn-causal"].eval()
    seqs = SEQS + [[2, 5, 2, 6, 7, 2, 8, 9, 10, 5, 11, 12]]  # prefixes of lengths 1..12 span two width buckets
    x = left_padded(seqs, 12)
    with torch.no_grad():
        out = model(x)
        for b, seq in enumerate(seqs):
            for k in range(1, len(seq) + 1):
                ref = model.readout(left_padded([seq[:k]], 12))[0]
                torch.testing.assert_close(out[b, 12 - len(seq) + k - 1], ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.next_item_hidden(x), out[:, -1], atol=1e-5, rtol=1e-5)


def test_srgnn_unknown_variant_is_an_error():
    config = TrainConfig(model="srgnn", model_options={"variant": "bidirectional"})
    with pytest.raises(SeqrecError, match="variant"):
        models.build(config, N)


@pytest.mark.parametrize("loss", list(losses.REGISTRY))
def test_every_loss_trains_every_model(loss):
    spec = losses.get(loss)
    x = left_padded([s[:-1] for s in SEQS], 12)
    t = left_padded([s[1:] for s in SEQS], 12)
    for name, model in make_models().items():
        model.train()
        opts = losses.LossOptions(2, torch.Generator().manual_seed(0), 0.5)
        inputs, targets = spec.prepare(model, x, t, opts) if spec.prepare else (x, t)
        value = spec.fn(model(inputs), model.item_embeddings(), targets, opts)
        value.backward()
        assert torch.isfinite(value), (name, loss)
        assert model.item_embeddings().requires_grad


# --------------------------------------------------------------------------- BERT4Rec
def test_bert4rec_cloze_masking():
    model = BERT4Rec(N, max_len=12)
    seqs = [list(range(1 + i % 5, 1 + i % 5 + 4 + i % 22)) for i in range(400)]  # 4..25 items, some longer than L
    sp = data_mod.split(data_mod.SequenceData("s", list(range(400)), seqs, N), 12)
    opts = losses.LossOptions(generator=torch.Generator().manual_seed(0), mask_prob=0.2)
    inputs, targets = model.prepare_mlm(sp.train_inputs, sp.train_targets, opts)
    full = sp.valid_inputs  # items[:-2]: the rebuilt cloze sequence
    masked = inputs == model.mask_id
    assert torch.equal(inputs[~masked], full[~masked])  # unmasked positions keep their items, padding stays 0
    assert not (masked & (full == 0)).any()  # padding is never masked
    assert torch.equal(targets[masked], full[masked])  # a masked position's target is its original item
    assert (targets[~masked] == 0).all()
    assert not (targets == model.mask_id).any()
    rate = masked.sum().item() / (full > 0).sum().item()
    assert abs(rate - 0.2) < 0.02, rate


def test_bert4rec_evaluation_appends_mask():
    model = BERT4Rec(N, max_len=6).eval()
    x = left_padded([[1, 2, 3, 4, 5, 6], [7, 8]], 6)
    with torch.no_grad():
        ref = model(torch.tensor([[2, 3, 4, 5, 6, N + 1], [0, 0, 0, 7, 8, N + 1]]))[:, -1]
        torch.testing.assert_close(model.next_item_hidden(x), ref)
        y = x.clone()
        y[0, 0] = 9  # the oldest item is dropped to make room for [MASK]
        torch.testing.assert_close(model.next_item_hidden(y), model.next_item_hidden(x))
        assert model.score_all(x).shape == (2, N + 1)  # [MASK] (id N+1) is never a candidate


# --------------------------------------------------------------------------- S3-Rec
def rule_sequences(users: int, seed: int = 0, low: int = 5, high: int = 10) -> list[list[int]]:
    """Item i is followed by i+1 (wrapping after N); random starts and lengths, no repeated item."""
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(1, NR + 1, (users,), generator=g).tolist()
    lengths = torch.randint(low, high + 1, (users,), generator=g).tolist()
    return [[(s + j - 1) % NR + 1 for j in range(k)] for s, k in zip(starts, lengths)]


@pytest.fixture
def rule_dataset(tmp_path):
    """The rule data as a .txt file with attributes (item parity and item mod 3); its checkpoint root is the
    private one every test gets (conftest)."""
    seqs = rule_sequences(300)
    path = tmp_path / "Rule.txt"
    path.write_text("".join(" ".join(map(str, [u + 1, *s])) + "\n" for u, s in enumerate(seqs)))
    attrs = {str(i): [1 + i % 2, 3 + i % 3] for i in range(1, NR + 1)}
    (tmp_path / "Rule_item2attributes.json").write_text(json.dumps(attrs))
    return str(path)


def test_s3rec_each_pretraining_loss_decreases(rule_dataset):
    seqs = pretrain.pretraining_sequences(data_mod.load(rule_dataset), 10)[:100]
    attributes = pretrain.read_attributes(rule_dataset.replace(".txt", "_item2attributes.json"), NR)
    assert attributes.shape == (NR + 1, 6) and attributes[4, 1] and attributes[4, 4] and not attributes[4, 2]
    torch.manual_seed(0)
    model = S3RecPretrainer(NR, 5, max_len=10, hidden_size=16, num_layers=1, num_heads=1, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)

    def measure():
        with torch.no_grad():
            return {k: v.item() for k, v in model.losses(seqs, attributes, torch.Generator().manual_seed(7)).items()}

    before = measure()
    g = torch.Generator().manual_seed(1)
    for _ in range(60):
        total, _ = model.loss(seqs, attributes, g)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    after = measure()
    assert set(before) == {"aap", "mip", "map", "sp"}
    for k in before:
        assert after[k] < before[k] - 0.02, (k, before[k], after[k])


def test_s3rec_pretraining_needed_twice_at_once_runs_once(rule_dataset, monkeypatch):
    """S3-Rec's BCE and CCE cells side by side (``seqrec run --jobs 2``) need the same pretraining: the second
    waits on the checkpoint's lock and then finds it finished, so pretraining runs once, not twice at once."""
    import threading

    config = TrainConfig(data=rule_dataset, model="s3rec", loss="cce", model_options={"pretrain_epochs": 2}, **SMALL)
    saves, real_save, both_in = [], pretrain.save_checkpoint, threading.Barrier(2, timeout=30)

    real_path = pretrain.checkpoint_path

    def counting_save(path, state):
        saves.append(state["epochs_done"])
        real_save(path, state)

    def path_once_both_arrived(c):  # both callers are inside ensure_pretrained before either takes the lock
        both_in.wait()
        return real_path(c)
    monkeypatch.setattr(pretrain, "save_checkpoint", counting_save)
    monkeypatch.setattr(pretrain, "checkpoint_path", path_once_both_arrived)
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(pretrain.ensure_pretrained(config, progress=False)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(paths) == 2 and paths[0] == paths[1] and saves == [1, 2]
    assert torch.load(paths[0], weights_only=False)["epochs_done"] == 2


def test_s3rec_pretraining_parked_then_taken_back_on_a_fresh_clone_resumes_it(rule_dataset, tmp_path):
    """A pretraining stopped after 1 of 2 epochs is parked with the results; on a clone without the local
    checkpoint the runner's store takes it back and pretraining ends as an uninterrupted one does."""
    from seqrec import parking, runner

    config = TrainConfig(data=rule_dataset, model="s3rec", loss="cce", model_options={"pretrain_epochs": 2}, **SMALL)
    path = pretrain.ensure_pretrained(config, progress=False, stop_after=1)
    rows = parking.park(tmp_path / "res", "paper")
    assert rows == [{"kind": "pretraining", "name": f"pretrain/{path.name}", "epoch": 1, "action": "parked"}]
    assert parking.cell_progress(tmp_path / "res", "paper", "table2", config) == "pretraining 1 of 2 epochs done (local checkpoint)"
    path.unlink()  # the fresh clone: no local checkpoint
    assert parking.cell_progress(tmp_path / "res", "paper", "table2", config) == "pretraining 1 of 2 epochs done (parked checkpoint)"
    store = runner.Store(tmp_path / "res", "paper", "table2")
    assert parking.unpark_pretraining(store, config) == 1 and parking.epochs_done(path) == 1
    assert parking.unpark_pretraining(store, config) is None  # the local copy is as far along now
    resumed = torch.load(pretrain.ensure_pretrained(config, progress=False), weights_only=False)
    assert parking.cell_progress(tmp_path / "res", "paper", "table2", config) == "pretraining 2 of 2 epochs done"
    path.unlink()
    straight = torch.load(pretrain.ensure_pretrained(config, progress=False), weights_only=False)
    assert resumed["epochs_done"] == straight["epochs_done"] == 2
    for k, v in straight["model"].items():
        torch.testing.assert_close(resumed["model"][k], v, msg=k)


def test_s3rec_checkpoint_resume_and_finetuning_start(rule_dataset):
    config = TrainConfig(data=rule_dataset, model="s3rec", loss="cce", model_options={"pretrain_epochs": 2}, **SMALL)
    with pytest.raises(SeqrecError, match="seqrec pretrain --data"):
        models.build(config, NR)  # no checkpoint yet: an error, never a random initialisation
    path = pretrain.ensure_pretrained(config, progress=False, stop_after=1)
    with pytest.raises(SeqrecError, match="unfinished"):
        models.build(config, NR)
    assert pretrain.ensure_pretrained(config, progress=False) == path  # resumes epoch 2
    resumed = torch.load(path, weights_only=False)
    assert resumed["epochs_done"] == 2 and len(resumed["curve"]) == 2

    mtime = path.stat().st_mtime_ns
    assert pretrain.ensure_pretrained(config, progress=False) == path and path.stat().st_mtime_ns == mtime  # found
    path.rename(path.with_name("resumed.pt"))
    assert pretrain.ensure_pretrained(config, progress=False) == path  # uninterrupted run
    straight = torch.load(path, weights_only=False)
    for k, v in straight["model"].items():
        torch.testing.assert_close(resumed["model"][k], v, msg=k)

    model = models.build(config, NR)  # finetuning starts from the pretrained encoder
    assert isinstance(model, S3Rec) and model.causal
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, straight["encoder"][k], msg=k)
    fresh = S3Rec(NR, **{k: SMALL[k] for k in ("max_len", "hidden_size", "num_layers", "num_heads", "dropout")})
    assert not torch.allclose(fresh.item_emb.weight, model.item_emb.weight)
    with pytest.raises(SeqrecError, match="does not match"):
        models.build(config, NR + 5)  # another item count: the checkpoint belongs to other data


def test_s3rec_pretraining_of_a_changed_data_file_is_neither_resumed_nor_finetuned(rule_dataset):
    """The pretraining checkpoint records its data file's SHA-256 (and the finetuned run's record repeats it): after
    the file changes under the same path and item count, resuming the pretraining or finetuning from it is a
    one-line error, not a model pretrained on other data."""
    import hashlib

    config = TrainConfig(data=rule_dataset, model="s3rec", loss="cce", model_options={"pretrain_epochs": 2}, **SMALL)
    original = Path(rule_dataset).read_text()
    path = pretrain.ensure_pretrained(config, progress=False, stop_after=1)
    assert torch.load(path, weights_only=False)["data_sha256"] == hashlib.sha256(original.encode()).hexdigest()
    changed = original.replace("\n2 ", "\n2 1 ", 1)  # user 2 gains item 1: the same items, another file
    Path(rule_dataset).write_text(changed)
    with pytest.raises(SeqrecError, match=r"checkpoint .*-e2.pt was written for another version of Rule's data file"):
        pretrain.ensure_pretrained(config, progress=False)
    Path(rule_dataset).write_text(original)
    pretrain.ensure_pretrained(config, progress=False)
    assert pretrain.summary(path)["data_sha256"] == hashlib.sha256(original.encode()).hexdigest()
    models.build(config, NR)
    Path(rule_dataset).write_text(changed)
    with pytest.raises(SeqrecError, match="was written for another version of .*Rule.txt's data file"):
        models.build(config, NR)


def test_s3rec_cell_records_its_pretraining(rule_dataset):
    """A runner cell of S3-Rec pretrains (or finds the checkpoint), finetunes, and keeps in its record the
    pretraining's epochs, summed seconds and last losses (read back from the checkpoint)."""
    from seqrec import runner

    config = TrainConfig(data=rule_dataset, model="s3rec", loss="cce", model_options={"pretrain_epochs": 2},
                         **{**SMALL, "epochs": 1})
    payload = {"config": config.to_dict(), "labels": {}, "grid": "g", "profile": "p"}
    record = runner.execute_cell(payload)
    assert record["status"] == "ok", record.get("error")
    saved = torch.load(pretrain.checkpoint_path(config), weights_only=False)
    pre = record["pretraining"]
    assert pre["epochs"] == 2 and pre["checkpoint"] == pretrain.checkpoint_path(config).name
    assert pre["seconds"] == pytest.approx(saved["curve"][-1]["elapsed"]) and pre["seconds"] > 0
    assert set(pre["final_losses"]) == {"aap", "mip", "map", "sp"}
    assert pre["final_losses"]["sp"] == pytest.approx(saved["curve"][1]["sp"])
    sasrec = {**payload["config"], "model": "sasrec", "model_options": {}}  # S3-Rec's options are not SASRec's
    assert "pretraining" not in runner.execute_cell({**payload, "config": sasrec})


def test_cli_pretrain_then_train_finds_the_checkpoint(rule_dataset, capsys):
    from seqrec import cli

    opts = ["--data", rule_dataset, "--max-len", "10", "--hidden-size", "16", "--num-layers", "1", "--num-heads", "1"]
    train = ["train", *opts, "--model", "s3rec", "--model-options", '{"pretrain_epochs": 1}', "--epochs", "1", "--quiet",
             "--out", rule_dataset + ".json"]
    assert cli.main(train) == 2
    assert "seqrec pretrain --data" in capsys.readouterr().err
    assert cli.main(["pretrain", *opts, "--epochs", "1", "--quiet"]) == 0
    assert "-e1.pt" in capsys.readouterr().out
    assert cli.main(train) == 0


# --------------------------------------------------------------------------- smoke: the rule is learned
SMOKE = [("sasrec", "cce", {}), ("gru4rec", "ce", {}), ("gru4rec", "cce", {}), ("srgnn", "ce", {"variant": "causal"}),
         ("srgnn", "cce", {"variant": "causal"}), ("srgnn", "cce", {"variant": "authors"}), ("bert4rec", "mlm", {}),
         ("s3rec", "cce", {"pretrain_epochs": 2})]


@pytest.mark.parametrize("model,loss,options", SMOKE, ids=[f"{m}-{l}-{o.get('variant', '')}" for m, l, o in SMOKE])
def test_every_model_learns_the_successor_rule(model, loss, options, rule_dataset):
    """Item i is followed by i+1: every model must rank the test item first for (nearly) every user.

    With ``ce`` only the last training position has a target, so an item that is never the last training
    target of any user cannot be learned: the bar is 90 % of the users whose test item is such a target.
    BERT4Rec's cloze learns the left-to-right rule more slowly (80 % of its training positions are unmasked,
    and [MASK] at the end sees only its left context), so it gets more epochs at a lower learning rate.
    """
    slow = model == "bert4rec"
    config = TrainConfig(data=rule_dataset, model=model, loss=loss, model_options=options, lr=1e-2 if slow else 3e-2,
                         batch_size=64, epochs=80 if slow else 20, patience=80, monitor="valid_MRR", seed=0, **SMALL)
    dataset = data_mod.load(rule_dataset)
    if model == "s3rec":
        pretrain.ensure_pretrained(config, dataset=dataset, progress=False)
    result = trainer.train(config, dataset=dataset, progress=False)
    learnable = {s[-3] for s in dataset.sequences} if loss == "ce" else {i for s in dataset.sequences for i in s[1:-2]}
    reachable = sum(s[-1] in learnable for s in dataset.sequences) / dataset.num_users
    assert reachable > 0.85
    assert result["metrics"]["full_HIT@1"] >= 0.9 * reachable, (result["metrics"]["full_HIT@1"], reachable)


# --------------------------------------------------------------------------- S3-Rec: the authors' pretraining recipe
def test_s3rec_recipe_samples_every_prefix_of_the_training_window():
    ds = data_mod.SequenceData("hand", [1, 2], [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11]], num_items=11)
    ours = pretrain.pretraining_sequences(ds, 3)
    assert ours.tolist() == [[2, 3, 4], [7, 8, 9]]  # one sample per user: items[:-2], its last 3
    prefixes = pretrain.pretraining_sequences(ds, 3, "s3rec")
    assert prefixes.tolist() == [[0, 0, 2], [0, 2, 3], [2, 3, 4], [0, 0, 7], [0, 7, 8], [7, 8, 9]]
    assert pretrain.long_sequence(ds).tolist() == [1, 2, 3, 4, 7, 8, 9]  # held-out items stay out


def _stub_pretrainer(monkeypatch, num_items: int, num_attributes: int, dim: int = 4):
    """A pretrainer whose encoder is a token lookup (no attention, no dropout) and whose task matrices are the
    identity, so every score is a dot product of known vectors; ``calls`` records the encoder's inputs."""
    torch.manual_seed(0)
    model = S3RecPretrainer(num_items, num_attributes, max_len=5, hidden_size=dim, num_layers=1, num_heads=1,
                            dropout=0.0)
    table = torch.randn(num_items + 2, dim)  # a vector per token: padding, items 1..N, [MASK]
    calls = []

    def encode(x):
        calls.append(x.clone())
        return table[x]
    monkeypatch.setattr(model.encoder, "encode", encode)
    with torch.no_grad():
        for layer in model.w.values():
            layer.weight.copy_(torch.eye(dim))
            layer.bias.zero_()
    return model, table, calls


def _log_sigmoid(x: float) -> float:
    import math

    return -math.log1p(math.exp(-x))


def _bce(logit: float, target: bool) -> float:
    return -_log_sigmoid(logit) if target else -_log_sigmoid(-logit)


def test_s3rec_recipe_losses_match_a_hand_computation(monkeypatch):
    import math

    from seqrec.models import s3rec as s3rec_mod

    N, A = 12, 3
    model, table, calls = _stub_pretrainer(monkeypatch, N, A)
    drawn = []
    real_sampler = s3rec_mod.sample_unseen_negatives

    def spy(*args, **kwargs):
        drawn.append(real_sampler(*args, **kwargs))
        return drawn[-1]
    monkeypatch.setattr(s3rec_mod, "sample_unseen_negatives", spy)
    g = torch.Generator().manual_seed(0)
    attributes = torch.rand(N + 1, A + 1, generator=g) < 0.5
    attributes[:, 0] = False
    seqs = torch.tensor([[0, 0, 1, 2, 3], [0, 0, 0, 4, 5], [6, 7, 8, 9, 10]])
    long = torch.tensor([7, 3, 9, 1, 12, 5, 8, 11])  # distinct, so a cut segment shows where it was cut
    with torch.no_grad():
        parts = model.losses(seqs, attributes, torch.Generator().manual_seed(3), mask_prob=0.0, recipe="s3rec",
                             long_sequence=long)
    mask = N + 1
    assert calls[0].tolist() == [[0, 0, 1, 2, mask], [0, 0, 0, 4, mask], [6, 7, 8, 9, mask]]  # only the last masked

    att_emb, item_emb = model.attr_emb.weight.detach(), model.encoder.item_emb.weight.detach()

    def attribute_bce(state, item):  # summed over attributes 1..A
        return sum(_bce(float(state @ att_emb[a]), bool(attributes[item, a])) for a in range(1, A + 1))

    aap = sum(attribute_bce(table[i], i) for row in seqs.tolist() for i in row[:-1] if i > 0)
    mip = map_ = 0.0
    for b, row in enumerate(seqs.tolist()):
        neg = int(drawn[0][b, -1, 0])
        assert 1 <= neg <= N and neg not in row  # drawn among the items not in the sample
        s_pos, s_neg = float(table[mask] @ item_emb[row[-1]]), float(table[mask] @ item_emb[neg])
        sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
        mip += -_log_sigmoid(sig(s_pos) - sig(s_neg))
        map_ += attribute_bce(table[mask], row[-1])
    sp = 0.0
    masked, positive, negative = calls[1], calls[2], calls[3]
    for b, row in enumerate(seqs.tolist()):
        seg = [t for t in range(5) if masked[b, t] == mask]
        real = [t for t in range(5) if row[t] > 0]
        assert seg and seg == list(range(seg[0], seg[-1] + 1)) and len(seg) <= len(real) // 2
        for t in range(5):
            assert masked[b, t] == (mask if t in seg else row[t])
            assert positive[b, t] == (row[t] if t in seg else mask if t in real else 0)  # the segment in place
            assert negative[b, t] == (0 if t not in real else mask if t not in seg else negative[b, t])
        cut = [int(negative[b, t]) for t in seg]
        start = long.tolist().index(cut[0])
        assert long.tolist()[start:start + len(seg)] == cut  # a contiguous piece of all users' items
        s = table[masked[b, -1]]
        d_pos, d_neg = float(s @ table[positive[b, -1]]), float(s @ table[negative[b, -1]])
        sp += -_log_sigmoid(sig(d_pos) - sig(d_neg))
    expected = {"aap": aap, "mip": mip, "map": map_, "sp": sp}
    for k, v in expected.items():
        assert parts[k].item() == pytest.approx(v, rel=1e-5), k


def test_s3rec_recipe_sums_where_ours_averages(monkeypatch):
    """With every position masked, both recipes see the same positions; the authors' recipe sums what ours
    averages: AAP over nothing, MAP over positions × attributes."""
    N, A = 12, 3
    model, _, _ = _stub_pretrainer(monkeypatch, N, A)
    attributes = torch.rand(N + 1, A + 1, generator=torch.Generator().manual_seed(0)) < 0.5
    seqs = torch.tensor([[0, 0, 1, 2, 3], [6, 7, 8, 9, 10]])
    kw = dict(mask_prob=1.0, long_sequence=torch.arange(1, N + 1))
    with torch.no_grad():
        ours = model.losses(seqs, attributes, torch.Generator().manual_seed(3), recipe="seqrec", **kw)
        theirs = model.losses(seqs, attributes, torch.Generator().manual_seed(3), recipe="s3rec", **kw)
    positions = int((seqs > 0).sum())
    assert ours["aap"].item() == theirs["aap"].item() == 0.0
    assert theirs["map"].item() == pytest.approx(ours["map"].item() * positions * A, rel=1e-5)


def test_s3rec_recipe_bad_names_and_checkpoint_names(rule_dataset):
    with pytest.raises(SeqrecError, match="unknown pretrain_recipe 'bert'"):
        S3RecPretrainer(5, 2).losses(torch.tensor([[1, 2]]), torch.zeros(6, 3, dtype=torch.bool), recipe="bert")
    with pytest.raises(SeqrecError, match="needs long_sequence"):
        S3RecPretrainer(5, 2).losses(torch.tensor([[1, 2, 3]]), torch.zeros(6, 3, dtype=torch.bool), recipe="s3rec")
    config = TrainConfig(data=rule_dataset, model="s3rec", loss="cce", model_options={"pretrain_epochs": 1}, **SMALL)
    authors = TrainConfig(data=rule_dataset, model="s3rec", loss="cce",
                          model_options={"pretrain_epochs": 1, "pretrain_recipe": "s3rec"}, **SMALL)
    wrong = TrainConfig(data=rule_dataset, model="s3rec", loss="cce", model_options={"pretrain_recipe": "x"}, **SMALL)
    assert pretrain.checkpoint_path(config).name.endswith("-e1.pt")  # the default's names are unchanged
    assert pretrain.checkpoint_path(authors).name.endswith("-e1-rs3rec.pt")
    with pytest.raises(SeqrecError, match="unknown model_options pretrain_recipe 'x'"):
        pretrain.checkpoint_path(wrong)
    with pytest.raises(SeqrecError, match="seqrec pretrain .*pretrain_recipe.*s3rec"):
        models.build(authors, NR)  # the hint names the recipe
    path = pretrain.ensure_pretrained(authors, progress=False)
    saved = torch.load(path, weights_only=False)
    assert saved["meta"]["recipe"] == "s3rec" and saved["epochs_done"] == 1
    assert isinstance(models.build(authors, NR), S3Rec)
    path.rename(pretrain.checkpoint_path(config))  # the authors' encoder under our recipe's name: refused
    with pytest.raises(SeqrecError, match="does not match this run \\(recipe: 's3rec' vs 'seqrec'\\)"):
        models.build(config, NR)


def test_unfinished_pretrainings_are_listed_until_they_finish(rule_dataset, tmp_path, capsys):
    config = TrainConfig(data=rule_dataset, model="s3rec", loss="cce", model_options={"pretrain_epochs": 2}, **SMALL)
    assert pretrain.unfinished() == []
    path = pretrain.ensure_pretrained(config, progress=False, stop_after=1)
    rows = pretrain.unfinished()
    assert [(r["checkpoint"], r["epoch"], r["epochs"], r["training"]) for r in rows] == [(path.name, 1, 2, False)]
    # one epoch left at the pace of the one done
    assert rows[0]["seconds"] > 0 and rows[0]["seconds_left"] == pytest.approx(rows[0]["seconds"])
    from seqrec import cli

    assert cli.main(["progress", "--profile", "smoke", "--results-dir", str(tmp_path)]) == 0
    line = f"pretraining {path.name}: epoch 1 of 2, {rows[0]['seconds'] / 60:.1f} min, " \
           f"about {rows[0]['seconds'] / 3600:.1f} h left at that pace, interrupted (the next run resumes it)"
    assert line in capsys.readouterr().out.splitlines()
    from seqrec.locking import file_lock

    with file_lock(path.with_name(path.name + ".lock")):  # what a pretraining process holds meanwhile
        assert pretrain.unfinished()[0]["training"] is True
    pretrain.ensure_pretrained(config, progress=False)
    assert pretrain.unfinished() == []


def test_pretraining_records_each_session_that_ran_it(rule_dataset):
    """Pretraining and finetuning can run from different commits (a long pretraining, then a finetuning started
    later): each process that pretrains leaves its own provenance, and the finetuned record carries it."""
    from seqrec import provenance

    config = TrainConfig(data=rule_dataset, model="s3rec", loss="cce", model_options={"pretrain_epochs": 2}, **SMALL)
    path = pretrain.ensure_pretrained(config, progress=False, stop_after=1)
    pretrain.ensure_pretrained(config, progress=False)  # resumed by a second process
    sessions = pretrain.summary(path)["sessions"]
    assert [s["from_epoch"] for s in sessions] == [0, 1]
    assert all(s["commit"] == provenance.git_state()["commit"] and re.search(r"\(\d+ threads?\)$", s["device"])
               and s["kernels"] == torch.backends.cpu.get_cpu_capability() for s in sessions)
    saved = torch.load(path, map_location="cpu", weights_only=False)
    elapsed = [p["elapsed"] for p in saved["curve"]]  # cumulative: epoch 1's, then epochs 1 and 2
    assert [s["seconds"] for s in sessions] == pytest.approx([elapsed[0], elapsed[1] - elapsed[0]])
    assert sum(s["seconds"] for s in sessions) == pytest.approx(pretrain.summary(path)["seconds"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_s3rec_recipes_on_cuda_match_cpu(monkeypatch):
    """The pretraining losses, both recipes, on CUDA equal those on CPU: same weights, same CPU generator draws."""
    torch.manual_seed(0)
    model = S3RecPretrainer(NR, 5, max_len=10, hidden_size=16, num_layers=1, num_heads=1, dropout=0.0)
    attributes = torch.rand(NR + 1, 6, generator=torch.Generator().manual_seed(0)) < 0.3
    seqs = left_padded([[1 + (7 * u + t) % NR for t in range(2 + u % 8)] for u in range(32)], 10)
    long = torch.arange(1, NR + 1)
    for recipe in ("seqrec", "s3rec"):
        out = {}
        for dev in ("cpu", "cuda"):
            m = model.to(dev)
            with torch.no_grad():
                out[dev] = m.losses(seqs.to(dev), attributes.to(dev), torch.Generator().manual_seed(5),
                                    recipe=recipe, long_sequence=long.to(dev))
        for k in out["cpu"]:
            torch.testing.assert_close(out["cuda"][k].cpu(), out["cpu"][k], rtol=1e-4, atol=1e-5, msg=f"{recipe} {k}")
