import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch

from seqrec import data
from seqrec.errors import SeqrecError


def test_split_follows_the_protocol(tiny_file):
    path = tiny_file(["1 1 2 3 4 5 6", "2 7 8 9"])
    ds = data.read_sequences(path)
    s = data.split(ds, max_len=4)
    # user 1: items 1..6 -> train input [1,2,3], targets [2,3,4]; valid input [1,2,3,4] -> 5; test [2,3,4,5] -> 6
    assert s.train_inputs[0].tolist() == [0, 1, 2, 3]
    assert s.train_targets[0].tolist() == [0, 2, 3, 4]
    assert s.valid_inputs[0].tolist() == [1, 2, 3, 4] and s.valid_targets[0].item() == 5
    assert s.test_inputs[0].tolist() == [2, 3, 4, 5] and s.test_targets[0].item() == 6
    assert sorted(set(s.test_seen[0].tolist()) - {0}) == [1, 2, 3, 4, 5]
    assert sorted(set(s.valid_seen[0].tolist()) - {0}) == [1, 2, 3, 4]
    # user 2 has 3 items: no training pair, valid 7 -> 8, test 7 8 -> 9
    assert s.train_targets[1].tolist() == [0, 0, 0, 0]
    assert s.valid_inputs[1].tolist() == [0, 0, 0, 7] and s.valid_targets[1].item() == 8
    assert s.test_inputs[1].tolist() == [0, 0, 7, 8] and s.test_targets[1].item() == 9
    assert s.num_items == 9


@pytest.mark.parametrize("line, message", [
    ("1 2 x 4", "non-integer id 'x'"),
    ("1 2 0 4", "item id 0 is not allowed"),
    ("1 2 3", "too few to split"),
    ("7", "malformed line"),
    ("1 5 6 7 8", r"user 1 again \(first on line 1\); one line per user"),
])
def test_bad_lines_are_named_with_file_and_line(tiny_file, line, message):
    path = tiny_file(["1 1 2 3 4", line])
    with pytest.raises(SeqrecError, match=message) as err:
        data.read_sequences(path)
    assert f"{path}:2" in str(err.value)
    assert "\n" not in str(err.value)


def test_empty_and_missing_files(tiny_file, tmp_path):
    with pytest.raises(SeqrecError, match="empty file"):
        data.read_sequences(tiny_file([]))
    with pytest.raises(SeqrecError, match="missing data file"):
        data.read_sequences(tmp_path / "nope.txt")


def test_sampled_negatives_are_unseen_distinct_and_seeded(tiny_file):
    lines = [f"{u} " + " ".join(str(i) for i in range(u, u + 10)) for u in range(1, 30)]
    ds = data.read_sequences(tiny_file(lines + ["99 " + " ".join(str(i) for i in range(100, 300))]))
    neg = data.sample_negatives(ds, seed=3)
    assert neg.shape == (ds.num_users, 99)
    for row, seq in zip(neg, ds.sequences):
        assert len(set(row)) == 99 and not set(row) & set(seq)
        assert row.min() >= 1 and row.max() <= ds.num_items
    assert np.array_equal(neg, data.sample_negatives(ds, seed=3))
    assert not np.array_equal(neg, data.sample_negatives(ds, seed=4))


def test_item_popularity_counts_interactions():
    ds = data.SequenceData("pop", [1, 2], [[1, 2, 2, 3], [3, 3, 1]], num_items=5)
    assert data.item_popularity(ds).tolist() == [0, 2, 2, 3, 0, 0]


def test_popularity_negatives_follow_item_counts():
    # 5000 users have seen items 1-3 only; one more user played item 4 100 times, 5 300 times and 6 600 times, so
    # a single draw excluding 1-3 picks 4, 5, 6 with probability 0.1, 0.3, 0.6; items 7-8 have no interaction and
    # are never drawn
    users = [[1, 2, 3]] * 5000
    ds = data.SequenceData("pop", list(range(5001)), users + [[4] * 100 + [5] * 300 + [6] * 600], num_items=8)
    assert data.item_popularity(ds)[4:].tolist() == [100, 300, 600, 0, 0]
    neg = data.popularity_negatives(ds, seed=0, n=1)
    assert neg[-1, 0] in (1, 2, 3)
    share = np.bincount(neg[:5000, 0], minlength=9)[4:] / 5000
    # binomial std for p = 0.3 over 5000 draws is 0.0065: 0.03 is 4.6 std
    assert np.allclose(share, [0.1, 0.3, 0.6, 0.0, 0.0], atol=0.03)
    assert np.array_equal(neg, data.popularity_negatives(ds, seed=0, n=1))


def test_popularity_negatives_are_unseen_distinct_seeded_and_bounded(tiny_file):
    lines = [f"{u} " + " ".join(str(i) for i in range(u, u + 10)) for u in range(1, 150)]
    ds = data.read_sequences(tiny_file(lines))
    neg = data.popularity_negatives(ds, seed=3, n=20)
    assert neg.shape == (ds.num_users, 20)
    for row, seq in zip(neg, ds.sequences):
        assert len(set(row)) == 20 and not set(row) & set(seq)
    assert not np.array_equal(neg, data.popularity_negatives(ds, seed=4, n=20))
    assert not np.array_equal(neg, data.sample_negatives(ds, seed=3, n=20))  # its own stream, not the uniform draws
    # 158 items have interactions; a user has seen 10: 148 is the most there is, 149 is an error
    assert data.popularity_negatives(ds, seed=3, n=148).shape == (ds.num_users, 148)
    with pytest.raises(SeqrecError, match="too many items to sample 149 popularity negatives"):
        data.popularity_negatives(ds, seed=3, n=149)


def test_real_lastfm_sample_file_is_used(real_data_dir):
    ds = data.load("LastFM")
    neg = data.evaluation_negatives(ds, seed=0)
    first = [int(x) for x in (real_data_dir / "LastFM_sample.txt").read_text().split("\n", 1)[0].split()]
    assert neg[0].tolist() == first[1:]
    assert data.stats(ds)["users"] == 1090 and ds.num_items == 3646


def test_max_users_is_a_seeded_subset(real_data_dir):
    a, b = data.load("LastFM", max_users=50, seed=1), data.load("LastFM", max_users=50, seed=1)
    assert a.user_ids == b.user_ids and len(a.user_ids) == 50
    assert a.user_ids != data.load("LastFM", max_users=50, seed=2).user_ids


def test_missing_file_in_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQREC_DATA_DIR", str(tmp_path))
    with pytest.raises(SeqrecError, match="missing data file .*Beauty.txt"):
        data.load("Beauty")
    with pytest.raises(SeqrecError, match="unknown dataset 'Nope'"):
        data.load("Nope")
    with pytest.raises(SeqrecError, match=r"missing data file nope/mine.txt \(a .txt path is read as it is"):
        data.load("nope/mine.txt")


def test_a_paper_file_found_is_checked_against_its_published_checksum(monkeypatch, tmp_path):
    """A paper dataset found through SEQREC_DATA_DIR (or the cache) must be the published file: a changed copy is a
    one-line error naming the file and both checksums (in the cache, it is downloaded again); the loaded data carry
    the file's SHA-256."""
    good = b"1 1 2 3\n2 2 3 4\n"
    monkeypatch.setitem(data.SHA256, "LastFM.txt", hashlib.sha256(good).hexdigest())
    monkeypatch.setenv("SEQREC_DATA_DIR", str(tmp_path))
    (tmp_path / "LastFM.txt").write_bytes(good)
    assert data.load("LastFM").sha256 == hashlib.sha256(good).hexdigest()
    changed = b"1 1 2 3\n2 2 3 5\n"  # one item changed, the same size
    (tmp_path / "LastFM.txt").write_bytes(changed)
    with pytest.raises(SeqrecError, match=rf"wrong checksum for {tmp_path / 'LastFM.txt'}: sha256 "
                                          rf"{hashlib.sha256(changed).hexdigest()}, published {data.SHA256['LastFM.txt']}"):
        data.load("LastFM")
    monkeypatch.delenv("SEQREC_DATA_DIR")
    monkeypatch.setenv("SEQREC_CACHE_DIR", str(tmp_path))  # the cache is checked too, and a damaged copy replaced
    with pytest.raises(SeqrecError, match=rf"cached data file {tmp_path / 'LastFM.txt'} differs from the published one"):
        data.locate("LastFM.txt", download=False)
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "LastFM.txt").write_bytes(good)
    monkeypatch.setenv("SEQREC_DATA_URL", (tmp_path / "source").as_uri())
    assert data.locate("LastFM.txt") == tmp_path / "LastFM.txt" and (tmp_path / "LastFM.txt").read_bytes() == good
    (tmp_path / "Other.txt").write_bytes(b"1 1 2 3\n")  # a file of one's own has no published checksum
    assert data.load(str(tmp_path / "Other.txt")).sha256 == hashlib.sha256(b"1 1 2 3\n").hexdigest()


def test_a_changed_sample_file_is_an_error_not_a_reason_to_sample_other_negatives(monkeypatch, tmp_path):
    """Without LastFM_sample.txt the negatives are sampled; with a copy whose checksum is not the published one,
    evaluation stops with the checksum error instead of silently ranking against other negatives."""
    lines = "".join(f"{u} {' '.join(str(i) for i in range(1, 7))}\n" for u in (1, 2))
    (tmp_path / "LastFM.txt").write_text(lines)
    monkeypatch.setitem(data.SHA256, "LastFM.txt", hashlib.sha256(lines.encode()).hexdigest())
    monkeypatch.setenv("SEQREC_DATA_DIR", str(tmp_path))
    ds = data.load("LastFM")
    assert data.evaluation_negatives(ds, seed=0).shape[0] == 2  # no sample file: sampled
    (tmp_path / "LastFM_sample.txt").write_text("".join(f"{u} " + " ".join(["1"] * 99) + "\n" for u in (1, 2)))
    with pytest.raises(SeqrecError, match="wrong checksum for .*LastFM_sample.txt"):
        data.evaluation_negatives(ds, seed=0)


def test_the_shipped_files_carry_their_published_checksums(real_data_dir):
    assert data.published_files("LastFM") == ["LastFM.txt", "LastFM_sample.txt", "LastFM_item2attributes.json"]
    assert data.published_files("Beauty") == ["Beauty.txt", "Beauty_item2attributes.json"]
    for name in data.DATASETS:
        for f in data.published_files(name):
            assert data.sha256_of(data.locate(f)) == data.SHA256[f]
    assert data.load("LastFM").sha256 == data.SHA256["LastFM.txt"]
    assert data.load("LastFM", max_users=20, seed=1).sha256 == data.SHA256["LastFM.txt"]  # the file, not the subset


def _serve(folder):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_fetch_verifies_checksum_over_http(tmp_path, monkeypatch):
    source, cache = tmp_path / "source", tmp_path / "cache"
    source.mkdir()
    payload = b"1 1 2 3 4 5\n"
    (source / "LastFM.txt").write_bytes(payload)
    monkeypatch.setitem(data.SHA256, "LastFM.txt", hashlib.sha256(payload).hexdigest())
    server = _serve(source)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        path = data.fetch("LastFM.txt", cache, base_url=url)
        assert path.read_bytes() == payload
        (source / "LastFM.txt").write_bytes(b"tampered\n")
        path.unlink()
        with pytest.raises(SeqrecError, match="wrong checksum"):
            data.fetch("LastFM.txt", cache, base_url=url)
        assert list(cache.iterdir()) == []  # no partial or bad file left behind
        with pytest.raises(SeqrecError, match="cannot download"):
            data.fetch("LastFM.txt", cache, base_url=url + "missing/")
    finally:
        server.shutdown()


def test_locate_downloads_into_the_cache_from_a_file_url(tmp_path, monkeypatch):
    payload = b"1 1 2 3\n"
    (tmp_path / "LastFM.txt").write_bytes(payload)
    monkeypatch.setitem(data.SHA256, "LastFM.txt", hashlib.sha256(payload).hexdigest())
    monkeypatch.delenv("SEQREC_DATA_DIR", raising=False)
    monkeypatch.setenv("SEQREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEQREC_DATA_URL", (tmp_path).as_uri())
    assert data.locate("LastFM.txt") == tmp_path / "cache" / "LastFM.txt"
    assert data.load("LastFM").num_items == 3


def test_import_log_applies_5_core_and_renumbers(tmp_path):
    rows = ["user,item,ts"]
    # users a..f each rate items 10..14 at increasing times (a 5-core); user z rates 10 and 99 only: dropped,
    # then item 99 (1 rating) is dropped
    for u in "abcdef":
        for t, item in enumerate([14, 13, 12, 11, 10]):
            rows.append(f"{u},{item},{t if u != 'b' else 10 - t}")
    rows += ["z,10,0", "z,99,1"]
    log = tmp_path / "log.csv"
    log.write_text("\n".join(rows) + "\n")
    info = data.import_log(log, tmp_path / "out.txt", user="user", item="item", time="ts")
    assert info["users"] == 6 and info["items"] == 5 and info["interactions"] == 30
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert lines[0] == "1 1 2 3 4 5"  # a: 14,13,12,11,10 renumbered in order of first appearance
    assert any(line.split()[1:] == ["5", "4", "3", "2", "1"] for line in lines)  # b: reversed times
    ds = data.read_sequences(tmp_path / "out.txt")
    assert ds.num_users == 6
    assert info["rows_dropped"] == 0
    items = (tmp_path / "out_items.csv").read_text().splitlines()
    assert items[:3] == ["item,item in log.csv", "1,14", "2,13"]  # new id, the log's own
    users = (tmp_path / "out_users.csv").read_text().splitlines()
    assert users[0] == "user,user in log.csv" and len(users) == 7


def test_import_log_orders_dates_and_reports_dropped_rows(tmp_path):
    # a byte-order mark (spreadsheet export), dates as text, one row without a time
    dates = {"i1": "12/01/2019", "i2": "1/15/2020", "i3": "2/01/2020", "i4": "10/01/2020", "i5": "11/01/2020"}
    rows = ["user,item,when"] + [f"{u},{item},{when}" for u in "abcde" for item, when in reversed(dates.items())]
    log = tmp_path / "log.csv"
    log.write_text("\ufeff" + "\n".join(rows + ["a,i1,"]) + "\n", encoding="utf-8")
    info = data.import_log(log, tmp_path / "out.txt", user="user", item="item", time="when")
    assert info["rows_dropped"] == 1
    # in date order i1..i5; sorted as text it would be i2, i4, i5, i1, i3
    mapping = (tmp_path / "out_items.csv").read_text().splitlines()[1:]
    assert [line.split(",")[1] for line in mapping] == ["i1", "i2", "i3", "i4", "i5"]
    assert data.read_sequences(tmp_path / "out.txt").sequences[0] == [1, 2, 3, 4, 5]
    numeric = tmp_path / "n.csv"  # numbers sort as numbers: 9 before 10 before 100
    numeric.write_text("u,i,t\n" + "".join(f"{u},{i},{t}\n" for u in "abcde" for i, t in ((1, 100), (2, 9), (3, 10),
                                                                                        (4, 200), (5, 300))))
    data.import_log(numeric, tmp_path / "n.txt", user="u", item="i", time="t")
    first = (tmp_path / "n_items.csv").read_text().splitlines()[1:]
    assert [line.split(",")[1] for line in first] == ["2", "3", "1", "4", "5"]  # times 9, 10, 100, 200, 300


def test_import_log_refuses_what_would_go_wrong(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("u\ti\tt\n1\t2\t3\n")
    with pytest.raises(SeqrecError, match="is the log itself"):
        data.import_log(log, log, user="u", item="i", time="t")
    assert log.read_text() == "u\ti\tt\n1\t2\t3\n"  # untouched
    with pytest.raises(SeqrecError, match="three different columns"):
        data.import_log(log, tmp_path / "o.txt", user="u", item="u", time="t")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SeqrecError, match="the log is empty"):
        data.import_log(empty, tmp_path / "o.txt", user="u", item="i", time="t")
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("u,i,t\n1,2,100\n1,3,x\n")
    with pytest.raises(SeqrecError, match="time column 't' has a value that is neither a number nor a date: 'x'"):
        data.import_log(mixed, tmp_path / "o.txt", user="u", item="i", time="t")


def test_import_log_errors(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("u,i,t\n1,2,3\n")
    with pytest.raises(SeqrecError, match="no column 'user'"):
        data.import_log(log, tmp_path / "o.txt", user="user", item="i", time="t")
    with pytest.raises(SeqrecError, match="no interactions left"):
        data.import_log(log, tmp_path / "o.txt", user="u", item="i", time="t")
    with pytest.raises(SeqrecError, match="missing interaction log"):
        data.import_log(tmp_path / "none.csv", tmp_path / "o.txt", user="u", item="i", time="t")


def test_left_pad_truncates_to_the_last_items():
    assert data.left_pad([[1, 2, 3, 4, 5], [7]], 3).tolist() == [[3, 4, 5], [0, 0, 7]]
    assert torch.equal(data.left_pad([[]], 2), torch.zeros(1, 2, dtype=torch.long))
