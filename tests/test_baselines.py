"""seqrec.baselines (the popularity ranking) on a four-user dataset ranked by hand."""
import math

import pytest
import torch

from seqrec import baselines, data

# Each user's last item is the test target; the items before it are what the popularity counts may see.
TOY = """\
1 1 2 3 4
2 1 2 4 5
3 2 3 6 1
4 1 3 4 6
"""
# Counts over the items before each test target: item 1 in users 1, 2, 4; item 2 in 1, 2, 3; item 3 in 1, 3, 4;
# item 4 in 2, 4 (not user 1's, its target); item 5 never (only user 2's target); item 6 in user 3.
COUNTS = [0, 3, 3, 3, 2, 0, 1]


@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "toy.txt"
    path.write_text(TOY)
    return data.read_sequences(path)


def test_popularity_scores_count_only_what_precedes_each_test_target(toy):
    assert baselines.popularity_scores(toy).tolist() == COUNTS


def test_popularity_metrics_rank_by_hand(toy):
    # Seen items excluded. User 1: {4: 2, 5: 0, 6: 1}, target 4 first (rank 0). User 2: {3: 3, 5: 0, 6: 1}, target
    # 5 third (rank 2). User 3: {1: 3, 4: 2, 5: 0}, target 1 first (0). User 4: {2: 3, 5: 0, 6: 1}, target 6 second (1).
    ranks = [0, 2, 0, 1]
    m = baselines.popularity_metrics(toy, max_len=5)
    assert m["full_HIT@1"] == pytest.approx(0.5)
    assert m["full_HIT@5"] == pytest.approx(1.0)
    assert m["full_MRR"] == pytest.approx(sum(1 / (r + 1) for r in ranks) / 4)
    assert m["full_NDCG@5"] == pytest.approx(sum(1 / math.log2(r + 2) for r in ranks) / 4)
    # sampled candidates are a subset of all items holding the target: never ranked lower than in the full ranking
    for prefix in ("sampled_", "pop_sampled_"):
        assert m[f"{prefix}MRR"] >= m["full_MRR"]


def test_popularity_metrics_follow_the_tie_rule(toy):
    # Seen items scored 0 instead of excluded: user 2's target 5 (count 0) ties with its seen items 1, 2 and 4.
    # Pessimistic: behind items 3 and 6 and the three tied, rank 5; optimistic: rank 2. The other targets score
    # above 0, so their ranks stay 0, 0 and 1.
    pessimistic = baselines.popularity_metrics(toy, max_len=5, exclude="zero")
    optimistic = baselines.popularity_metrics(toy, max_len=5, exclude="zero", ties="optimistic")
    assert pessimistic["full_MRR"] == pytest.approx((1 + 1 / 6 + 1 + 1 / 2) / 4)
    assert optimistic["full_MRR"] == pytest.approx((1 + 1 / 3 + 1 + 1 / 2) / 4)


def test_popularity_ranker_gives_every_user_the_same_row():
    ranker = baselines.PopularityRanker(torch.tensor([0.0, 5.0, 1.0]))
    scores = ranker.score_all(torch.zeros(4, 7, dtype=torch.long))
    assert scores.shape == (4, 3)
    assert (scores == torch.tensor([0.0, 5.0, 1.0])).all()
