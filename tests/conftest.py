import os
from pathlib import Path

# The tests train tiny models: one thread is as fast as two and avoids oversubscribing CI's two cores when a
# test starts subprocesses (which inherit the variable).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "s3rec"


@pytest.fixture(autouse=True)
def private_checkpoint_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own S3-Rec checkpoint root: none reads or writes the checkout's checkpoints/ (where a
    real pretraining may be running; ``seqrec progress`` would list it)."""
    monkeypatch.setenv("SEQREC_CHECKPOINT_DIR", str(tmp_path_factory.mktemp("checkpoints")))


@pytest.fixture
def real_data_dir(monkeypatch):
    """The paper's data folder (SEQREC_DATA_DIR, else ../shared/data/s3rec); skips when neither exists."""
    path = Path(os.environ.get("SEQREC_DATA_DIR") or SHARED)
    if not (path / "LastFM.txt").is_file():
        pytest.skip(f"the paper's data are not at {path}")
    monkeypatch.setenv("SEQREC_DATA_DIR", str(path))
    return path


@pytest.fixture
def tiny_file(tmp_path):
    """Write a small S3-Rec file and return its path."""
    def make(lines, name="Tiny.txt"):
        path = tmp_path / name
        path.write_text("".join(line + "\n" for line in lines))
        return path
    return make
