import math
import random

import pytest
import torch

from seqrec import metrics


def brute_rank(scores, target, excluded, exclude_mode, ties):
    """Pure-Python reference: rank of `target` among items 1..N (list index = item id)."""
    def score(i):
        if i in excluded:
            return -math.inf if exclude_mode == "-inf" else 0.0
        return scores[i]
    st = score(target)
    ahead = 0
    for i in range(1, len(scores)):
        if i == target:
            continue
        si = score(i)
        if si > st or (ties == "pessimistic" and si == st):
            ahead += 1
    return ahead


def brute_metrics(ranks, k):
    hit = sum(r < k for r in ranks) / len(ranks)
    ndcg = sum(1 / math.log2(r + 2) for r in ranks if r < k) / len(ranks)
    return hit, ndcg


@pytest.mark.parametrize("exclude_mode", ["-inf", "zero"])
@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
def test_full_ranking_matches_brute_force(exclude_mode, ties):
    rng = random.Random(0)
    B, N = 40, 30
    # integer-valued scores in a small range make ties frequent; some negative so "zero" matters
    scores = torch.tensor([[float(rng.randint(-3, 3)) for _ in range(N + 1)] for _ in range(B)])
    targets = torch.tensor([rng.randint(1, N) for _ in range(B)])
    seen_lists = [rng.sample(range(1, N + 1), rng.randint(0, 6)) for _ in range(B)]
    seen = torch.zeros(B, 6, dtype=torch.long)
    for b, s in enumerate(seen_lists):
        seen[b, :len(s)] = torch.tensor(s, dtype=torch.long)
    got = metrics.full_ranks(scores, targets, seen, exclude=exclude_mode, ties=ties)
    want = [brute_rank(scores[b].tolist(), targets[b].item(), set(seen_lists[b]), exclude_mode, ties) for b in range(B)]
    assert got.tolist() == want
    m = metrics.metrics_from_ranks(got, prefix="full_")
    for k in metrics.KS:
        hit, ndcg = brute_metrics(want, k)
        assert m[f"full_HIT@{k}"] == pytest.approx(hit)
        assert m[f"full_NDCG@{k}"] == pytest.approx(ndcg)
    assert m["full_MRR"] == pytest.approx(sum(1 / (r + 1) for r in want) / B)


def test_hand_computed_example():
    # items 1..4 with scores 0.1, 0.9, 0.5, 0.7; target 3; item 2 seen
    scores = torch.tensor([[0.0, 0.1, 0.9, 0.5, 0.7]])
    seen = torch.tensor([[2]])
    rank = metrics.full_ranks(scores, torch.tensor([3]), seen)
    assert rank.item() == 1  # only item 4 ahead
    m = metrics.metrics_from_ranks(rank)
    assert m["HIT@1"] == 0 and m["HIT@5"] == 1
    assert m["NDCG@5"] == pytest.approx(1 / math.log2(3))
    assert m["MRR"] == pytest.approx(0.5)
    # with the authors' zero fill, item 2 scores 0 < 0.5: same rank here; with a negative target score it matters
    neg = torch.tensor([[0.0, -0.1, 0.9, -0.5, -0.7]])
    assert metrics.full_ranks(neg, torch.tensor([3]), seen, exclude="zero").item() == 2  # item 2 (0) and 1 (-0.1)
    assert metrics.full_ranks(neg, torch.tensor([3]), seen, exclude="-inf").item() == 1


def test_collapsed_scores_are_not_rewarded():
    """Constant scores: pessimistic ties give the worst rank, optimistic ties the best."""
    scores = torch.zeros(5, 201)
    targets = torch.arange(1, 6)
    negatives = torch.arange(100, 199).repeat(5, 1)
    pess = metrics.sampled_ranks(scores, targets, negatives)
    opt = metrics.sampled_ranks(scores, targets, negatives, ties="optimistic")
    assert pess.tolist() == [99] * 5 and opt.tolist() == [0] * 5
    assert metrics.metrics_from_ranks(pess)["HIT@10"] == 0.0


def test_sampled_ranking_matches_brute_force():
    rng = random.Random(1)
    B, N = 20, 300
    scores = torch.randn(B, N + 1, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([rng.randint(1, N) for _ in range(B)])
    negatives = torch.tensor([rng.sample([i for i in range(1, N + 1) if i != t], 99) for t in targets.tolist()])
    got = metrics.sampled_ranks(scores, targets, negatives)
    for b in range(B):
        st = scores[b, targets[b]].item()
        assert got[b].item() == sum(scores[b, j].item() >= st for j in negatives[b].tolist())


def test_padding_column_is_never_ranked():
    scores = torch.tensor([[100.0, 1.0, 2.0]])
    assert metrics.full_ranks(scores, torch.tensor([2]), torch.zeros(1, 1, dtype=torch.long)).item() == 0


def test_unknown_options_are_rejected():
    with pytest.raises(ValueError, match="allowed: pessimistic, optimistic"):
        metrics.target_rank(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), ties="expected")
    with pytest.raises(ValueError, match="allowed: -inf, zero"):
        metrics.mask_seen(torch.zeros(1, 2), torch.zeros(1, 1, dtype=torch.long), exclude="nan")
