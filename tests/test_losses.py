import math

import pytest
import torch

from seqrec import losses
from seqrec.losses import LossOptions


def sig(x):
    return 1 / (1 + math.exp(-x))


# items 1..3 with 2-d embeddings; one real position with h = (0.5, -1): s1 = 0.5, s2 = -1, s3 = -0.5
E = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
H = torch.tensor([[[9.0, 9.0], [0.5, -1.0]]])  # position 0 is padding: its (absurd) state must not matter
T = torch.tensor([[0, 1]])


@pytest.fixture
def fixed_negatives(monkeypatch):
    def use(negs):
        monkeypatch.setattr(losses, "sample_negatives", lambda t, n, k, g=None: torch.tensor(negs).expand(t.shape[0], -1))
    return use


def test_bce_hand_computed(fixed_negatives):
    fixed_negatives([2])
    want = -math.log(sig(0.5)) - math.log(1 - sig(-1.0))
    assert losses.bce(H, E, T, LossOptions(1)).item() == pytest.approx(want, rel=1e-6)


def test_pairwise_losses_hand_computed(fixed_negatives):
    fixed_negatives([2, 3])
    s_t, s = 0.5, [-1.0, -0.5]
    w = [math.exp(x) / sum(math.exp(y) for y in s) for x in s]
    opts = LossOptions(2)
    assert losses.bpr(H, E, T, opts).item() == pytest.approx(-sum(math.log(sig(s_t - x)) for x in s) / 2, rel=1e-6)
    assert losses.bpr_max(H, E, T, opts).item() == pytest.approx(-math.log(sum(wi * sig(s_t - x) for wi, x in zip(w, s))), rel=1e-6)
    assert losses.top1(H, E, T, opts).item() == pytest.approx(sum(sig(x - s_t) + sig(x * x) for x in s) / 2, rel=1e-6)
    assert losses.top1_max(H, E, T, opts).item() == pytest.approx(sum(wi * (sig(x - s_t) + sig(x * x)) for wi, x in zip(w, s)), rel=1e-6)
    want_bce2 = -math.log(sig(s_t)) - sum(math.log(1 - sig(x)) for x in s) / 2
    assert losses.bce(H, E, T, opts).item() == pytest.approx(want_bce2, rel=1e-6)


@pytest.mark.parametrize("name", ["ce", "cce", "cce_naive", "mlm"])
def test_full_softmax_hand_computed(name):
    want = -0.5 + math.log(math.exp(0.5) + math.exp(-1.0) + math.exp(-0.5))  # item 0 (padding) is no candidate
    assert losses.get(name).fn(H, E, T, LossOptions()).item() == pytest.approx(want, rel=1e-6)


def random_batch(seed=0, B=3, L=5, D=4, N=7):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, L, D, generator=g, dtype=torch.float64)
    emb = torch.randn(N + 1, D, generator=g, dtype=torch.float64)
    targets = torch.randint(1, N + 1, (B, L), generator=g)
    targets[0, :2] = 0  # left padding
    targets[2, :4] = 0
    return hidden, emb, targets


def naive_cce(hidden, emb, targets):
    """Loop-and-formula reference: mean over real positions of -s_t + log sum_{i>=1} exp(s_i)."""
    terms = []
    for b in range(targets.shape[0]):
        for p in range(targets.shape[1]):
            t = targets[b, p].item()
            if t:
                s = [hidden[b, p] @ emb[i] for i in range(1, emb.shape[0])]
                terms.append(-s[t - 1] + torch.log(sum(torch.exp(x) for x in s)))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("name", ["cce", "cce_naive"])
def test_cce_values_and_gradients_match_a_naive_formula(name):
    hidden, emb, targets = random_batch()
    h1, e1 = hidden.clone().requires_grad_(), emb.clone().requires_grad_()
    h2, e2 = hidden.clone().requires_grad_(), emb.clone().requires_grad_()
    ours = losses.get(name).fn(h1, e1, targets, LossOptions())
    ref = naive_cce(h2, e2, targets)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-10)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(h1.grad, h2.grad)
    torch.testing.assert_close(e1.grad, e2.grad)
    assert h1.grad[0, :2].abs().sum() == 0 and e1.grad[0].abs().sum() == 0  # padding gets no gradient


def test_cce_is_the_mean_of_per_position_ce():
    hidden, emb, targets = random_batch(1)
    per_position = []
    for b in range(targets.shape[0]):
        for p in range(targets.shape[1]):
            if targets[b, p]:
                t = torch.zeros(1, 1, dtype=torch.long)
                t[0, 0] = targets[b, p]
                per_position.append(losses.ce(hidden[b:b + 1, p:p + 1], emb, t, LossOptions()))
    assert losses.cce(hidden, emb, targets, LossOptions()).item() == pytest.approx(torch.stack(per_position).mean().item())


def test_ce_equals_cce_on_length_one_sequences():
    hidden, emb, targets = random_batch(2)
    targets[:, :-1] = 0
    assert losses.ce(hidden, emb, targets, LossOptions()).item() == pytest.approx(losses.cce(hidden, emb, targets, LossOptions()).item())
    # with longer sequences they differ: ce ignores every position but the last
    hidden, emb, targets = random_batch(2)
    assert losses.ce(hidden, emb, targets, LossOptions()).item() != pytest.approx(losses.cce(hidden, emb, targets, LossOptions()).item())


@pytest.mark.parametrize("name", ["bce", "bpr", "bpr_max", "top1", "top1_max", "ce", "cce", "cce_naive"])
def test_padding_contributes_nothing(name):
    hidden, emb, targets = random_batch(3)
    opts = lambda: LossOptions(3, torch.Generator().manual_seed(5))  # noqa: E731
    base = losses.get(name).fn(hidden, emb, targets, opts())
    changed = hidden.clone()
    changed[targets == 0] += 100.0
    h = changed.clone().requires_grad_()
    again = losses.get(name).fn(h, emb, targets, opts())
    assert again.item() == pytest.approx(base.item(), rel=1e-12)
    again.backward()
    assert h.grad[targets == 0].abs().sum() == 0


@pytest.mark.parametrize("name", ["bce", "bpr", "bpr_max", "top1", "top1_max"])
def test_sampled_loss_gradients_match_autograd_of_the_formula(name, fixed_negatives):
    """With negatives fixed, the registered loss and a direct formula give the same gradients (float64)."""
    fixed_negatives([2, 5, 7])
    hidden, emb, targets = random_batch(4)
    h1, e1 = hidden.clone().requires_grad_(), emb.clone().requires_grad_()
    losses.get(name).fn(h1, e1, targets, LossOptions(3)).backward()
    h2, e2 = hidden.clone().requires_grad_(), emb.clone().requires_grad_()
    mask = targets > 0
    hh, tt = h2[mask], targets[mask]
    st = (hh * e2[tt]).sum(-1, keepdim=True)
    sj = hh @ e2[[2, 5, 7]].T
    w = torch.softmax(sj, -1)
    formula = {
        "bce": lambda: (-torch.log(torch.sigmoid(st[:, 0])) - torch.log(1 - torch.sigmoid(sj)).mean(-1)).mean(),
        "bpr": lambda: -torch.log(torch.sigmoid(st - sj)).mean(),
        "bpr_max": lambda: -torch.log((w * torch.sigmoid(st - sj)).sum(-1)).mean(),
        "top1": lambda: (torch.sigmoid(sj - st) + torch.sigmoid(sj**2)).mean(),
        "top1_max": lambda: (w * (torch.sigmoid(sj - st) + torch.sigmoid(sj**2))).sum(-1).mean(),
    }[name]()
    formula.backward()
    torch.testing.assert_close(h1.grad, h2.grad)
    torch.testing.assert_close(e1.grad, e2.grad)


def test_negatives_are_uniform_and_never_the_target():
    targets = torch.full((2000, 5), 3)
    targets[:, 0] = 1
    targets[:, 1] = 10
    neg = losses.sample_negatives(targets, 10, 4, torch.Generator().manual_seed(0))
    assert neg.shape == (2000, 5, 4)
    assert not (neg == targets[..., None]).any()
    assert neg.min() >= 1 and neg.max() <= 10
    counts = torch.bincount(neg[:, 2].flatten(), minlength=11)[1:]  # target 3: nine other items equally likely
    assert counts[2] == 0
    others = counts[torch.arange(10) != 2].double()
    assert (others / others.mean() - 1).abs().max() < 0.1


def test_unseen_negatives_avoid_each_users_items_and_are_uniform_over_the_rest():
    # two users over items 1..8: user 0 saw {2, 3, 5} (padded with 0), user 1 saw {1, 8}
    history = torch.tensor([[0, 2, 3, 5], [0, 0, 1, 8]])
    targets = torch.tensor([[0, 2, 3], [1, 8, 1]]).repeat(1, 10000)  # (2, 30000); a 0 target is padding
    neg = losses.sample_unseen_negatives(targets, history, 8, 2, torch.Generator().manual_seed(0))
    assert neg.shape == (2, 30000, 2)
    for row, unseen in ((0, [1, 4, 6, 7, 8]), (1, [2, 3, 4, 5, 6, 7])):
        counts = torch.bincount(neg[row].flatten(), minlength=9)[1:].double()
        allowed = torch.tensor([i + 1 in unseen for i in range(8)])
        assert (counts[~allowed] == 0).all()  # never an item of the user's, so never the target either
        assert (counts[allowed] / counts[allowed].mean() - 1).abs().max() < 0.05
    again = losses.sample_unseen_negatives(targets, history, 8, 2, torch.Generator().manual_seed(0))
    assert torch.equal(neg, again)


def test_unseen_negatives_for_a_user_who_saw_every_item_is_a_clear_error():
    from seqrec.errors import SeqrecError
    with pytest.raises(SeqrecError, match="negative_pool 'unseen': no unseen negative .* every one of the 3 items"):
        losses.sample_unseen_negatives(torch.tensor([[1, 2]]), torch.tensor([[1, 2, 3]]), 3, 1)


def test_bce_with_a_history_draws_its_negative_among_the_unseen_items():
    # the only unseen item of 1..3 is 3 (user saw 1, 2): the loss must be the hand value with negative 3
    opts = LossOptions(1, torch.Generator().manual_seed(0), history=torch.tensor([[1, 2]]))
    want = -math.log(sig(0.5)) - math.log(1 - sig(-0.5))
    assert losses.bce(H, E, T, opts).item() == pytest.approx(want, rel=1e-6)


def test_mlm_prepare_drops_inputs_and_keeps_only_masked_targets():
    inputs = torch.tensor([[0, 0] + list(range(1, 99))] * 50)
    targets = torch.tensor([[0, 0] + list(range(2, 100))] * 50)
    opts = LossOptions(mask_prob=0.2, generator=torch.Generator().manual_seed(0))
    new_inputs, new_targets = losses.prepare_mlm(torch.nn.Identity(), inputs, targets, opts)
    chosen = new_inputs != inputs
    assert (new_inputs[chosen] == 0).all()
    assert not chosen[:, :2].any()  # padding is never chosen
    assert (new_targets[chosen] == targets[chosen]).all() and (new_targets[~chosen] == 0).all()
    assert chosen.double().sum().item() / (50 * 98) == pytest.approx(0.2, abs=0.02)


def test_unknown_loss_lists_the_allowed_names():
    from seqrec.errors import SeqrecError
    with pytest.raises(SeqrecError, match="unknown loss 'nope'; allowed: bce, bpr"):
        losses.get("nope")


@pytest.mark.parametrize("k", [3, 40])  # 3·4 < 21 rows: gathered embeddings; 40·4 ≥ 21: every item scored
def test_negative_scores_equal_the_dot_products_either_way(k):
    """Both ways of scoring sampled negatives give h·e_j and its gradients (float64), with repeated draws."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(6, 4, dtype=torch.float64, generator=g)
    emb = torch.randn(21, 4, dtype=torch.float64, generator=g)
    neg = torch.randint(1, 21, (6, k), generator=g)
    weights = torch.randn(6, k, dtype=torch.float64, generator=g)
    h1, e1 = h.clone().requires_grad_(), emb.clone().requires_grad_()
    got = losses.negative_scores(h1, e1, neg)
    (got * weights).sum().backward()
    h2, e2 = h.clone().requires_grad_(), emb.clone().requires_grad_()
    want = torch.stack([torch.stack([h2[p] @ e2[j] for j in neg[p]]) for p in range(6)])
    (want * weights).sum().backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(h1.grad, h2.grad)
    torch.testing.assert_close(e1.grad, e2.grad)
