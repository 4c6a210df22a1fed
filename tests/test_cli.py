import json
import subprocess
import sys

import pytest

from seqrec.cli import main


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "seqrec.cli", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "nope"], "unknown model 'nope'; allowed: sasrec"),
    (["train", "--loss", "nope"], "unknown loss 'nope'; allowed: bce"),
    (["train", "--num-negatives", "0"], "num_negatives must be >= 1"),
    (["train", "--lr", "-1"], "lr must be > 0"),
    (["train", "--max-len", "1"], "max_len must be >= 2"),
    (["train", "--lr", "fast"], "invalid float value"),
    (["train", "--data", "missing.txt"], "missing data file missing.txt (a .txt path is read as it is"),
    (["train", "--data", "beauty"], "unknown dataset 'beauty' (did you mean 'Beauty'?)"),
    (["train", "--seed", "-1"], "seed must be >= 0, got -1"),
    (["train", "--model-options", "[1, 2]"], "model_options must be a JSON object"),
    (["train", "--model", "srgnn", "--model-options", '{"varaint": "causal"}'],
     "unknown model_options key 'varaint' for model 'srgnn'; allowed: variant"),
    (["train", "--model-options", '{"variant": "causal"}'], "unknown model_options key 'variant' for model 'sasrec'; "
                                                             "allowed: none"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_malformed_data_file_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 1 2 3 4\n2 5 six 7\n")
    assert main(["train", "--data", str(bad), "--epochs", "1"]) == 2
    assert f"{bad}:2: non-integer id 'six'" in capsys.readouterr().err


def _toy(tmp_path, items=150):
    txt = tmp_path / "toy.txt"
    txt.write_text("".join(f"{u} " + " ".join(str((u + k) % items + 1) for k in range(8)) + "\n" for u in range(1, 41)))
    return txt


TINY_ARGS = ["--epochs", "1", "--hidden-size", "8", "--num-heads", "1", "--max-len", "6", "--quiet", "--device", "cpu"]


def test_train_refuses_what_it_could_not_save_or_resume(tmp_path, capsys):
    txt = _toy(tmp_path, items=20)
    (tmp_path / "folder").mkdir()
    # --out a folder: refused before training, not after it
    assert main(["train", "--data", str(txt), *TINY_ARGS, "--out", str(tmp_path / "folder")]) == 2
    assert "--out " + str(tmp_path / "folder") + " is a folder" in capsys.readouterr().err
    assert main(["train", "--data", str(txt), *TINY_ARGS, "--checkpoint", str(tmp_path / "folder")]) == 2
    assert "is a folder; give a file path" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_text("garbage")
    assert main(["train", "--data", str(txt), *TINY_ARGS, "--checkpoint", str(junk)]) == 2
    assert f"cannot read checkpoint {junk}" in capsys.readouterr().err
    # more negatives than the 19 items a position's negative can be
    assert main(["train", "--data", str(txt), *TINY_ARGS, "--loss", "bce", "--num-negatives", "25"]) == 2
    assert "num_negatives 25 exceeds the 19 items a position's negative can be (20 items in toy)" in \
        capsys.readouterr().err
    # a checkpoint of another configuration names what differs
    ckpt = tmp_path / "run.pt"
    first = ["train", "--data", str(txt), *TINY_ARGS, "--checkpoint", str(ckpt), "--out", str(tmp_path / "a.json")]
    assert main(first) == 0
    capsys.readouterr()
    assert main(["train", "--data", str(txt), *TINY_ARGS, "--checkpoint", str(ckpt), "--lr", "0.01"]) == 2
    assert "belongs to another configuration (lr 0.001 there, 0.01 here)" in capsys.readouterr().err


def test_s3rec_on_own_data_says_what_pretraining_needs(tmp_path, capsys, monkeypatch):
    txt = _toy(tmp_path)
    monkeypatch.setenv("SEQREC_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    assert main(["train", "--data", str(txt), "--model", "s3rec", *TINY_ARGS]) == 2
    err = capsys.readouterr().err  # not "run seqrec pretrain" first: that would fail on the same missing file
    assert f"missing attribute file {tmp_path / 'toy_item2attributes.json'} (S3-Rec pretrains on item attributes" in err
    (tmp_path / "toy_item2attributes.json").write_text('{"1": [1], "2": [2]}')
    assert main(["train", "--data", str(txt), "--model", "s3rec", *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert "run `seqrec pretrain --data" in err and "--model-options '{\"pretrain_epochs\": N}'" in err
    # the documented way: pretrain (its model_options are S3-Rec's), then finetune that pretraining
    sizes = ["--hidden-size", "8", "--num-heads", "1", "--max-len", "6", "--quiet", "--device", "cpu"]
    recipe = {"pretrain_recipe": "s3rec"}
    assert main(["pretrain", "--data", str(txt), "--epochs", "1", "--model-options", json.dumps(recipe), *sizes]) == 0
    assert main(["train", "--data", str(txt), "--model", "s3rec", "--epochs", "1", "--out", str(tmp_path / "s3.json"),
                 "--model-options", json.dumps({**recipe, "pretrain_epochs": 1}), *sizes]) == 0
    assert json.loads((tmp_path / "s3.json").read_text())["pretraining"]["epochs"] == 1


def test_train_default_out_names_the_file_not_its_folders(tmp_path, capsys, monkeypatch):
    txt = _toy(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", str(txt), *TINY_ARGS]) == 0
    written = [p.relative_to(tmp_path).as_posix() for p in (tmp_path / "results").rglob("*.json")]
    assert len(written) == 1 and written[0].startswith("results/adhoc/toy-sasrec-cce-"), written


def test_train_writes_a_result_file(tmp_path, capsys):
    txt = tmp_path / "toy.txt"
    txt.write_text("".join(f"{u} " + " ".join(str((u + k) % 150 + 1) for k in range(8)) + "\n" for u in range(1, 41)))
    out = tmp_path / "r.json"
    code = main(["train", "--data", str(txt), "--epochs", "2", "--hidden-size", "8", "--num-heads", "1", "--max-len", "6",
                 "--loss", "bce", "--quiet", "--out", str(out), "--device", "cpu"])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["config"]["loss"] == "bce" and result["epochs_run"] == 2
    assert "test  HIT@10" in capsys.readouterr().out


def test_help_explains_every_option():
    proc = run("train", "--help")
    assert proc.returncode == 0
    for option in ("--num-negatives", "--monitor", "--exclude-seen", "--max-users", "--checkpoint", "--weight-decay"):
        assert option in proc.stdout
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    assert text.count("(default: 0.001)") == 1 and "(default: 42) (default" not in text  # each default said once


def test_data_popularity_prints_the_hand_ranked_floor(tmp_path, capsys):
    toy = tmp_path / "toy.txt"  # tests/test_baselines.py's four users: popularity ranks their targets 0, 2, 0, 1
    toy.write_text("1 1 2 3 4\n2 1 2 4 5\n3 2 3 6 1\n4 1 3 4 6\n")
    assert main(["data", "popularity", str(toy)]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("toy"))
    ndcg = (1 + 1 / 2 + 1 + 1 / 1.5849625007211562) / 4  # 1 / log2(rank + 2) for ranks 0, 2, 0, 1
    assert row[1:3] == ["1.0000", f"{ndcg:.4f}"]  # full HIT@10, full NDCG@10


def test_data_stats(real_data_dir, capsys):
    assert main(["data", "stats", "LastFM"]) == 0
    out = capsys.readouterr().out
    assert "1090" in out and "52551" in out
