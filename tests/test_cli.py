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
    (["train", "--data", "missing.txt"], "unknown dataset 'missing.txt'"),
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
