"""Datasets in the S3-Rec format: finding, downloading, reading, splitting, sampling, importing.

Format of ``<NAME>.txt``: one line per user, ``user_id item_id item_id ...``, items numbered from 1, in
time order. The split is leave-one-out per user (the paper's protocol):

======== ====================== ==========================
split    input                  target(s)
======== ====================== ==========================
train    ``items[:-3]``         ``items[1:-2]`` (every position)
valid    ``items[:-2]``         ``items[-2]``
test     ``items[:-1]``         ``items[-1]``
======== ====================== ==========================

Inputs keep their last ``max_len`` items and are left-padded with 0.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import ChecksumError, SeqrecError

DATASETS = ("Beauty", "Sports_and_Outdoors", "Toys_and_Games", "Yelp", "LastFM")
BASE_URL = "https://raw.githubusercontent.com/Li-fAngyU/sequential_rec/master/data/"
SHA256 = {
    "Beauty.txt": "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
    "Sports_and_Outdoors.txt": "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2",
    "Toys_and_Games.txt": "176c680c688d497598c4a89a03b402c0fe78d795e5db335c2e78dd5f2d778a3f",
    "Yelp.txt": "724b219106b81dd2349027da997334ddb6da9fe2f152ad6e0d97a93170f7caed",
    "LastFM.txt": "9ded486adb5b0fe9dc761950afa0a9a05e93ff018992e0c52bf11afec529f802",
    "LastFM_sample.txt": "60194cc2e4fd1aa8b5dc8872e1f3af9c6abd09c39d478d3df9337cb97e6e2f0d",
    "Beauty_item2attributes.json": "129e40f67486f6877eff0f5318cfa8530ee8ac23d8b0d1de04e1bb7a2ba0b2d4",
    "LastFM_item2attributes.json": "a4ccd678dc9ff6d43fe5073f491db5c9b02eb98dfa4f8c0382913a784be217ef",
    "Sports_and_Outdoors_item2attributes.json": "7fb10733ac4f1811384a52144cdefa7fcc7536fa80a7232c5da9bd789155c34b",
    "Toys_and_Games_item2attributes.json": "d371acd25101eedac04afc727626464b7acec770c4eda708705d51eb76eb1ad0",
    "Yelp_item2attributes.json": "f25acd5e1e680e0b22fd4e3f4fb6be4b2a7461e9222610616e3e1ee6702dd58d",
}
MIN_ITEMS = 3  # a validation target, a test target and at least one item before them
NUM_SAMPLED_NEGATIVES = 99


# --------------------------------------------------------------------------- finding and fetching
def cache_dir() -> Path:
    """Where downloads go: ``$SEQREC_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqrec``, else ``~/.cache/seqrec``."""
    if os.environ.get("SEQREC_CACHE_DIR"):
        return Path(os.environ["SEQREC_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "seqrec"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(filename: str, dest_dir: str | os.PathLike | None = None, base_url: str | None = None) -> Path:
    """Download ``filename`` from the public source into ``dest_dir`` (default: the cache), verifying SHA-256.

    ``base_url`` (or ``$SEQREC_DATA_URL``) may be any URL urllib opens, ``file://`` included. The file is
    written to a temporary name and renamed only once its checksum matches, so a broken download never
    leaves a file that looks complete.
    """
    if filename not in SHA256:
        raise SeqrecError(f"unknown data file {filename!r}; known: {', '.join(sorted(SHA256))}")
    dest_dir = Path(dest_dir) if dest_dir is not None else cache_dir()
    dest = dest_dir / filename
    if dest.exists() and sha256_of(dest) == SHA256[filename]:
        return dest
    base_url = base_url or os.environ.get("SEQREC_DATA_URL") or BASE_URL
    url = base_url.rstrip("/") + "/" + filename
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{filename}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    shutil.copyfileobj(response, out)
            except OSError as exc:  # URLError and HTTPError are OSErrors
                raise SeqrecError(f"cannot download {url}: {exc}") from exc
        got = sha256_of(tmp)
        if got != SHA256[filename]:
            raise ChecksumError(f"wrong checksum for {url}: sha256 {got}, expected {SHA256[filename]}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def locate(filename: str, *, download: bool = True) -> Path:
    """Path of a data file: from ``$SEQREC_DATA_DIR`` when it is set, else the cache (downloading if missing).

    A file of :data:`SHA256` found there is checked against its published checksum (a few milliseconds: the files
    are small): in ``$SEQREC_DATA_DIR`` a changed copy of a paper dataset is an error, not a silent other
    experiment; in the cache it is downloaded again (:func:`fetch` keeps a cached copy only when it matches).
    """
    if os.environ.get("SEQREC_DATA_DIR"):
        path = Path(os.environ["SEQREC_DATA_DIR"]) / filename
        if not path.is_file():
            raise SeqrecError(f"missing data file {path} (SEQREC_DATA_DIR={os.environ['SEQREC_DATA_DIR']})")
        return verify(path)
    if download and filename in SHA256:
        return fetch(filename)
    path = cache_dir() / filename
    if not path.is_file():
        raise SeqrecError(f"missing data file {path}; run `seqrec data fetch` or set SEQREC_DATA_DIR")
    if _differs(path):
        raise ChecksumError(f"cached data file {path} differs from the published one (SHA-256); `seqrec data fetch` "
                            "downloads it again")
    return path


def published_files(name: str) -> list[str]:
    """The files of paper dataset ``name`` with a published checksum: ``<name>.txt``, then its negative sample file
    (LastFM only) and its item attributes."""
    return [f for f in (f"{name}.txt", f"{name}_sample.txt", f"{name}_item2attributes.json") if f in SHA256]


def _differs(path: Path) -> str | None:
    """The SHA-256 of a file of :data:`SHA256` when it is not the published one, else None."""
    expected = SHA256.get(path.name)
    got = sha256_of(path) if expected is not None else None
    return got if got != expected else None


def verify(path: str | os.PathLike) -> Path:
    """``path``, after checking a file of :data:`SHA256` against its published checksum (a one-line
    :class:`ChecksumError` if it differs)."""
    path = Path(path)
    if got := _differs(path):
        raise ChecksumError(f"wrong checksum for {path}: sha256 {got}, published {SHA256[path.name]}; a changed "
                            "copy of the paper's data goes under another name")
    return path


# --------------------------------------------------------------------------- reading
@dataclass
class SequenceData:
    """All users' item sequences. ``sequences[u]`` is user ``user_ids[u]``'s items, oldest first."""

    name: str
    user_ids: list[int]
    sequences: list[list[int]]
    num_items: int  # the largest item id; ids run 1..num_items
    sha256: str | None = None  # of the file read (None: built in code); results and checkpoints record it

    @property
    def num_users(self) -> int:
        return len(self.sequences)

    @property
    def num_interactions(self) -> int:
        return sum(len(s) for s in self.sequences)


def _integer_lines(path: Path, text: str | None = None):
    """Yield ``(line number, [int, ...])`` for each non-blank line of ``path`` (or of ``text``, its contents already
    read); a non-integer field is an error naming file and line."""
    if text is None:
        text = path.read_text(encoding="utf-8")
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            yield lineno, [int(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not f.lstrip("-").isdigit())
            raise SeqrecError(f"{path}:{lineno}: non-integer id {bad!r}") from None


def read_sequences(path: str | os.PathLike, name: str | None = None, min_items: int = MIN_ITEMS) -> SequenceData:
    """Read an S3-Rec ``.txt`` file, checking every line.

    Raises :class:`SeqrecError` naming the file and line for a malformed line, a non-integer id, an item id
    below 1, a user with fewer than ``min_items`` items, a user on a second line, and for a missing or empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise SeqrecError(f"missing data file {path}")
    raw = path.read_bytes()  # read once: parsed and hashed
    user_ids, sequences, max_item, first_line = [], [], 0, {}
    for lineno, ids in _integer_lines(path, raw.decode("utf-8")):
        if len(ids) < 2:
            raise SeqrecError(f"{path}:{lineno}: malformed line, expected 'user item item ...'")
        user, items = ids[0], ids[1:]
        if min(items) < 1:
            raise SeqrecError(f"{path}:{lineno}: item id {min(items)} is not allowed (items start at 1; 0 is padding)")
        if len(items) < min_items:
            raise SeqrecError(f"{path}:{lineno}: user {user} has {len(items)} items, too few to split (need {min_items})")
        if user in first_line:
            raise SeqrecError(f"{path}:{lineno}: user {user} again (first on line {first_line[user]}); "
                              "one line per user")
        first_line[user] = lineno
        user_ids.append(user)
        sequences.append(items)
        max_item = max(max_item, max(items))
    if not sequences:
        raise SeqrecError(f"{path}: empty file, no users")
    return SequenceData(name or path.stem, user_ids, sequences, max_item, hashlib.sha256(raw).hexdigest())


def read_negative_samples(path: str | os.PathLike, data: SequenceData) -> np.ndarray:
    """Read ``<NAME>_sample.txt`` (``user_id`` then 99 item ids per line) as an (U, 99) array in ``data``'s user order."""
    path = Path(path)
    by_user: dict[int, list[int]] = {}
    for lineno, ids in _integer_lines(path):
        if len(ids) != NUM_SAMPLED_NEGATIVES + 1:
            raise SeqrecError(f"{path}:{lineno}: expected a user and {NUM_SAMPLED_NEGATIVES} items, got {len(ids)} fields")
        by_user[ids[0]] = ids[1:]
    missing = [u for u in data.user_ids if u not in by_user]
    if missing:
        raise SeqrecError(f"{path}: no negative samples for user {missing[0]} ({len(missing)} users missing)")
    return np.asarray([by_user[u] for u in data.user_ids], dtype=np.int64)


def data_file(name: str) -> Path:
    """The file of dataset ``name``: a paper dataset's (:func:`locate`, checksum checked) or the ``.txt`` path itself."""
    if name in DATASETS:
        return locate(f"{name}.txt")
    if name.endswith(".txt") and Path(name).is_file():
        return Path(name)
    if name.endswith(".txt"):
        raise SeqrecError(f"missing data file {name} (a .txt path is read as it is; a shipped dataset is named "
                          f"without .txt: {', '.join(DATASETS)})")
    near = [d for d in DATASETS if d.lower() == name.lower()]
    raise SeqrecError(f"unknown dataset {name!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                      + f"; known: {', '.join(DATASETS)} or a path to a .txt file")


def load(name: str, *, max_users: int | None = None, seed: int = 0) -> SequenceData:
    """Load a dataset by name (one of :data:`DATASETS`) or by path to a ``.txt`` file in the S3-Rec format.

    ``max_users`` keeps a random subset of users (drawn with ``seed``), in their original order.
    """
    data = read_sequences(data_file(name), name=Path(name).stem if name not in DATASETS else name)
    if max_users is not None and max_users < data.num_users:
        if max_users < 1:
            raise SeqrecError(f"max_users must be >= 1, got {max_users}")
        keep = np.sort(np.random.default_rng(seed).choice(data.num_users, size=max_users, replace=False))
        data = SequenceData(data.name, [data.user_ids[i] for i in keep], [data.sequences[i] for i in keep], data.num_items,
                            data.sha256)
    return data


# --------------------------------------------------------------------------- splitting
def left_pad(seqs: list[list[int]], max_len: int) -> torch.Tensor:
    """(U, max_len) long tensor: each sequence's last ``max_len`` items, left-padded with 0."""
    out = torch.zeros(len(seqs), max_len, dtype=torch.long)
    for row, seq in enumerate(seqs):
        tail = seq[-max_len:]
        if tail:
            out[row, max_len - len(tail):] = torch.as_tensor(tail, dtype=torch.long)
    return out


@dataclass
class Split:
    """Leave-one-out tensors for all users.

    train_inputs, train_targets: (U, L); valid_inputs, test_inputs: (U, L); valid_targets, test_targets: (U,);
    valid_seen, test_seen: (U, S) items to exclude from ranking (padded with 0); negatives: (U, 99) or None.
    """

    train_inputs: torch.Tensor
    train_targets: torch.Tensor
    valid_inputs: torch.Tensor
    valid_targets: torch.Tensor
    test_inputs: torch.Tensor
    test_targets: torch.Tensor
    valid_seen: torch.Tensor
    test_seen: torch.Tensor
    num_items: int
    negatives: torch.Tensor | None = None


def split(data: SequenceData, max_len: int = 50) -> Split:
    """The leave-one-out split of the module docstring. Seen items: ``items[:-2]`` (valid), ``items[:-1]`` (test)."""
    if max_len < 2:
        raise SeqrecError(f"max_len must be >= 2, got {max_len}")
    seqs = data.sequences
    return Split(
        train_inputs=left_pad([s[:-3] for s in seqs], max_len),
        train_targets=left_pad([s[1:-2] for s in seqs], max_len),
        valid_inputs=left_pad([s[:-2] for s in seqs], max_len),
        valid_targets=torch.as_tensor([s[-2] for s in seqs], dtype=torch.long),
        test_inputs=left_pad([s[:-1] for s in seqs], max_len),
        test_targets=torch.as_tensor([s[-1] for s in seqs], dtype=torch.long),
        valid_seen=left_pad([s[:-2] for s in seqs], max(len(s) for s in seqs)),
        test_seen=left_pad([s[:-1] for s in seqs], max(len(s) for s in seqs)),
        num_items=data.num_items,
    )


def _draw_unseen(data: SequenceData, n: int, draw, drawable: int, what: str) -> np.ndarray:
    """(U, n): for each user in turn, the first ``n`` distinct items the user never interacted with among the
    batches ``draw(2 * n)`` (arrays of item ids); ``drawable``: how many items ``draw`` can return at all."""
    out = np.empty((data.num_users, n), dtype=np.int64)
    for row, seq in enumerate(data.sequences):
        taken = set(seq)
        if drawable - len(taken) < n:
            raise SeqrecError(f"user {data.user_ids[row]} has seen too many items to sample {n} {what}")
        chosen: list[int] = []
        while len(chosen) < n:
            for item in draw(2 * n):
                item = int(item)
                if item not in taken:
                    taken.add(item)
                    chosen.append(item)
                    if len(chosen) == n:
                        break
        out[row] = chosen
    return out


def sample_negatives(data: SequenceData, seed: int, n: int = NUM_SAMPLED_NEGATIVES) -> np.ndarray:
    """(U, n) items each user never interacted with, drawn uniformly without replacement, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    return _draw_unseen(data, n, lambda k: rng.integers(1, data.num_items + 1, size=k), data.num_items, "negatives")


def item_popularity(data: SequenceData, hold_out: int = 0) -> np.ndarray:
    """(N + 1,) interactions per item over every user's sequence without its last ``hold_out`` items (0: the whole
    sequence; 1: what precedes the test target); index 0, the padding, counts 0."""
    counts = np.zeros(data.num_items + 1, dtype=np.int64)
    for seq in data.sequences:
        np.add.at(counts, np.asarray(seq[:len(seq) - hold_out], dtype=np.int64), 1)
    return counts


def popularity_negatives(data: SequenceData, seed: int, n: int = NUM_SAMPLED_NEGATIVES) -> np.ndarray:
    """(U, n) items each user never interacted with, drawn without replacement with probability proportional to
    :func:`item_popularity` (BERT4Rec's sampled protocol), fixed by ``seed``. An item never interacted with is never
    drawn; a user with fewer than ``n`` unseen items of non-zero popularity is an error."""
    counts = item_popularity(data)
    cdf = np.cumsum(counts[1:]).astype(np.float64)
    cdf /= cdf[-1]
    rng = np.random.default_rng([seed, 1])  # a stream of its own: not the uniform negatives' draws
    # item i + 1 with probability count_i / total: the first cdf entry above a uniform draw
    return _draw_unseen(data, n, lambda k: np.searchsorted(cdf, rng.random(k), side="right") + 1,
                        int((counts[1:] > 0).sum()), "popularity negatives")


def evaluation_negatives(data: SequenceData, seed: int) -> torch.Tensor:
    """The 99 sampled-evaluation negatives per user: ``<NAME>_sample.txt`` when it exists, else sampled with ``seed``.

    In a catalog too small for 99 unseen items per user (toy data), every user gets as many as the most
    active user can (the result's ``sampled_candidates`` says how many candidates were ranked).
    """
    sample_file = f"{data.name}_sample.txt"
    if data.name in DATASETS and sample_file in SHA256:
        try:
            path = locate(sample_file)
        except ChecksumError:
            raise  # a changed sample file is an error, not a reason to sample other negatives
        except SeqrecError:  # missing and not downloadable
            path = None
        if path is not None:
            return torch.as_tensor(read_negative_samples(path, data))
    room = data.num_items - max(len(set(s)) for s in data.sequences)
    return torch.as_tensor(sample_negatives(data, seed, min(NUM_SAMPLED_NEGATIVES, room)))


def evaluation_popularity_negatives(data: SequenceData, seed: int) -> torch.Tensor:
    """The 99 popularity-sampled evaluation negatives per user (:func:`popularity_negatives`); in a catalog too
    small for 99 (toy data), as many as the most active user can have."""
    room = int((item_popularity(data)[1:] > 0).sum()) - max(len(set(s)) for s in data.sequences)
    return torch.as_tensor(popularity_negatives(data, seed, min(NUM_SAMPLED_NEGATIVES, room)))


# --------------------------------------------------------------------------- statistics and import
def stats(data: SequenceData) -> dict[str, float | int | str]:
    """Users, items, interactions, mean sequence length and density of a dataset."""
    items = {i for s in data.sequences for i in s}
    return {
        "dataset": data.name,
        "users": data.num_users,
        "items": len(items),
        "interactions": data.num_interactions,
        "mean_length": data.num_interactions / data.num_users,
        "density": data.num_interactions / (data.num_users * len(items)),
    }


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def import_log(path: str | os.PathLike, out: str | os.PathLike, *, user: str, item: str, time: str,
               sep: str | None = None, min_count: int = 5) -> dict[str, float | int | str]:
    """Turn an interaction log (CSV/TSV with a header) into the S3-Rec format.

    Applies ``min_count``-core filtering (repeated until every user and every item has at least
    ``min_count`` interactions), orders each user's items by time (stable for ties), renumbers users and
    items from 1 in order of first appearance, and writes ``out`` atomically, with ``<out stem>_items.csv`` and
    ``<out stem>_users.csv`` beside it (each new id and the log's own). Returns the statistics, with
    ``rows_dropped``: the rows left out for an empty user, item or time.
    """
    import pandas as pd

    import csv

    path = Path(path)
    if not path.is_file():
        raise SeqrecError(f"missing interaction log {path}")
    if Path(out).resolve() == path.resolve():
        raise SeqrecError(f"the output {out} is the log itself; give another output path (--out)")
    if min_count < 1:
        raise SeqrecError(f"min_count must be >= 1, got {min_count}")
    if len({user, item, time}) < 3:
        raise SeqrecError(f"the user, item and time columns must be three different columns, got {user!r}, {item!r}, "
                          f"{time!r}")
    if path.stat().st_size == 0:
        raise SeqrecError(f"{path}: the log is empty")
    try:  # utf-8-sig: a byte-order mark (spreadsheet exports) is not part of the first column's name
        log = pd.read_csv(path, sep=sep, engine="python", encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as exc:
        raise SeqrecError(f"{path}: cannot parse as a delimited table: {str(exc).splitlines()[0]}") from None
    for col in (user, item, time):
        if col not in log.columns:
            raise SeqrecError(f"{path}: no column {col!r}; columns are {', '.join(map(str, log.columns))}")
    rows = len(log)
    log = log[[user, item, time]].dropna()
    dropped = rows - len(log)
    log = log.assign(**{time: _time_order(log[time], path, time)})
    while True:
        user_ok = log.groupby(user)[item].transform("size") >= min_count
        item_ok = log.groupby(item)[user].transform("size") >= min_count
        keep = user_ok & item_ok
        if keep.all():
            break
        log = log[keep]
    if log.empty:
        raise SeqrecError(f"{path}: no interactions left after {min_count}-core filtering")
    log = log.sort_values([time], kind="stable")
    item_ids = {raw: new for new, raw in enumerate(pd.unique(log[item]), 1)}
    lines, sequences, user_ids = [], [], []
    for new_user, (raw_user, group) in enumerate(log.groupby(user, sort=False), 1):
        items = [item_ids[i] for i in group[item]]
        sequences.append(items)
        user_ids.append(raw_user)
        lines.append(" ".join(map(str, [new_user, *items])))
    write_atomic(out, "\n".join(lines) + "\n")
    stem = Path(out).with_suffix("")
    for kind, raw_ids in (("items", list(item_ids)), ("users", user_ids)):
        mapping = pd.DataFrame({kind[:-1]: range(1, len(raw_ids) + 1), f"{kind[:-1]} in {path.name}": raw_ids})
        write_atomic(f"{stem}_{kind}.csv", mapping.to_csv(index=False))
    info = stats(SequenceData(Path(out).stem, list(range(1, len(sequences) + 1)), sequences, len(item_ids)))
    return {**info, "rows_dropped": dropped}


def _time_order(values, path: Path, column: str):
    """The log's time column as something that sorts in time: numbers (e.g. Unix seconds) as they are, else dates
    that pandas parses (one format for the whole column); a value that is neither is an error naming it."""
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all():
        return numbers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it infers the date format
        dates = pd.to_datetime(values, errors="coerce")
    if dates.notna().all():
        return dates
    bad = values[numbers.isna() & dates.isna()] if numbers.notna().any() else values[dates.isna()]
    raise SeqrecError(f"{path}: time column {column!r} has a value that is neither a number nor a date: "
                      f"{bad.iloc[0]!r} (and {len(bad) - 1} more)")
