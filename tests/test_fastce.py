"""The chunked cross-entropy equals the materialised one (F.cross_entropy of H Eᵀ) in value and gradients."""
import pytest
import torch
import torch.nn.functional as F

from seqrec import losses
from seqrec.errors import SeqrecError
from seqrec.fastce import chunked_cross_entropy


def naive(h, e, t):
    return F.cross_entropy(h @ e.T, t)


def value_and_grads(fn, h, e, t, **kw):
    h = h.detach().clone().requires_grad_()
    e = e.detach().clone().requires_grad_()
    loss = fn(h, e, t, **kw)
    loss.backward()
    return loss.detach(), h.grad, e.grad


def assert_rel(a, b, tol):
    err = ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
    assert err <= tol, f"relative error {err:.3g} > {tol}"


def inputs(P, N, D, scale=1.0, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(P, D, generator=g, dtype=dtype) * scale, torch.randn(N, D, generator=g, dtype=dtype) * scale,
            torch.randint(0, N, (P,), generator=g))


@pytest.mark.parametrize("P,N,D,chunk,block", [
    (50, 300, 16, 64, 16),      # neither size divides
    (33, 257, 8, 257, 33),      # one chunk, one block
    (40, 1000, 32, 7, 1000),    # many tiny chunks
    (1, 5, 3, 2, 1),            # one position
    (64, 129, 16, 128, 64),     # last chunk of a single item
])
@pytest.mark.parametrize("scale", [0.3, 2.0])  # logits' std up to ~25, the loss up to ~50 per position
def test_float32_values_and_gradients_match_naive(P, N, D, chunk, block, scale):
    h, e, t = inputs(P, N, D, scale)
    ours = value_and_grads(chunked_cross_entropy, h, e, t, chunk_size=chunk, block_size=block)
    ref = value_and_grads(naive, h.double(), e.double(), t)  # float64 reference
    for a, b in zip(ours, ref):
        assert a.dtype == torch.float32
        assert_rel(a.double(), b, 1e-5)
    ref32 = value_and_grads(naive, h, e, t)
    for a, b in zip(ours, ref32):
        assert_rel(a, b, 1e-5)


def test_gradcheck_float64_including_the_overflow_path():
    h, e, t = inputs(6, 23, 4, dtype=torch.float64, seed=1)
    e[15:] *= 60  # logits far above the first chunk's maximum: the optimistic shift overflows, the exact step runs
    h.requires_grad_()
    e.requires_grad_()
    assert torch.autograd.gradcheck(lambda h, e: chunked_cross_entropy(h, e, t, chunk_size=5, block_size=4), (h, e))
    loss = chunked_cross_entropy(h, e, t, chunk_size=5, block_size=4)
    assert torch.isfinite(loss)
    assert torch.allclose(loss, naive(h, e, t), rtol=1e-12)


def test_large_logits_stay_finite_and_accurate_in_float32():
    """Logits of a few hundred, far above the shift: the overflow path. Rounding a logit L to float32 moves its
    softmax probability by ~eps·L relative, so any float32 method (the naive one too) errs by that much."""
    h, e, t = inputs(20, 90, 8, scale=1.0, seed=2)
    e[70:] *= 40  # later chunks exceed the target logit by far more than exp's float32 range
    tol = torch.finfo(torch.float32).eps * (h @ e.T).abs().max().item()
    ours = value_and_grads(chunked_cross_entropy, h, e, t, chunk_size=16, block_size=8)
    ref = value_and_grads(naive, h.double(), e.double(), t)
    for a, b in zip(ours, ref):
        assert torch.isfinite(a).all()
        assert_rel(a.double(), b, max(tol, 1e-5))
    assert_rel(ours[0].double(), ref[0], 1e-6)  # the loss itself stays exact


def test_ignore_index_drops_positions_from_the_mean():
    h, e, t = inputs(30, 50, 8, seed=3)
    t[::3] = -100
    ours = value_and_grads(chunked_cross_entropy, h, e, t, chunk_size=16, block_size=7, ignore_index=-100)
    ref = value_and_grads(lambda h, e, t: F.cross_entropy(h @ e.T, t, ignore_index=-100), h, e, t)
    for a, b in zip(ours, ref):
        assert_rel(a, b, 1e-5)
    assert (ours[1][::3] == 0).all()


def test_only_the_needed_gradient_is_computed():
    h, e, t = inputs(10, 40, 4, seed=4)
    h.requires_grad_()
    chunked_cross_entropy(h, e, t, chunk_size=9).backward()
    ref = h.detach().clone().requires_grad_()
    naive(ref, e, t).backward()
    assert e.grad is None
    assert_rel(h.grad, ref.grad, 1e-5)


def test_bad_shapes_raise():
    h, e, t = inputs(4, 10, 3)
    with pytest.raises(ValueError):
        chunked_cross_entropy(h, e[:, :2], t)
    with pytest.raises(ValueError):
        chunked_cross_entropy(h, e, t[:3])


# --------------------------------------------------------------------------- through the loss registry
def registry_case(seed=5, B=4, L=7, N=61, D=8):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, L, D, generator=g)
    item_emb = torch.randn(N + 1, D, generator=g)
    targets = torch.randint(1, N + 1, (B, L), generator=g)
    targets[0, :3] = 0  # left padding
    targets[2, :6] = 0
    return hidden, item_emb, targets


def materialised(hidden, item_emb, targets):
    """Independent reference: logits over items 1..N at non-padded positions, F.cross_entropy."""
    mask = targets > 0
    return F.cross_entropy(hidden[mask] @ item_emb[1:].T, targets[mask] - 1)


@pytest.mark.parametrize("name", ["cce", "cce_naive", "mlm"])
def test_registry_losses_match_the_materialised_formula_with_padding(name):
    hidden, item_emb, targets = registry_case()
    ours = value_and_grads(lambda h, e, t: losses.get(name).fn(h, e, t, losses.LossOptions()), hidden, item_emb, targets)
    ref = value_and_grads(materialised, hidden, item_emb, targets)
    for a, b in zip(ours, ref):
        assert_rel(a, b, 1e-5)
    assert (ours[2][0] == 0).all()  # the padding row is never a candidate
    assert (ours[1][0, :3] == 0).all()  # padded positions get no gradient


def test_ce_uses_the_last_position_only():
    hidden, item_emb, targets = registry_case(seed=6)
    ours = value_and_grads(lambda h, e, t: losses.get("ce").fn(h, e, t, losses.LossOptions()), hidden, item_emb, targets)
    ref = value_and_grads(lambda h, e, t: F.cross_entropy(h[:, -1] @ e[1:].T, t[:, -1] - 1), hidden, item_emb, targets)
    for a, b in zip(ours, ref):
        assert_rel(a, b, 1e-5)


def test_all_padding_gives_zero_loss_and_zero_gradients():
    hidden, item_emb, targets = registry_case()
    loss, gh, ge = value_and_grads(lambda h, e, t: losses.get("cce").fn(h, e, t, losses.LossOptions()), hidden, item_emb,
                                   torch.zeros_like(targets))
    assert loss.item() == 0.0 and bool((gh == 0).all()) and (ge is None or bool((ge == 0).all()))


# --------------------------------------------------------------------------- mixed precision
def test_bf16_autocast_keeps_the_reduction_in_float32():
    """Under autocast (bf16 on CPU here, as on GPU) products are bf16, the loss float32, close to the naive one."""
    h, e, t = inputs(40, 300, 16, seed=7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = value_and_grads(chunked_cross_entropy, h, e, t, chunk_size=64, block_size=16)
        ref = value_and_grads(lambda h, e, t: F.cross_entropy((h @ e.T).float(), t), h, e, t)
    assert ours[0].dtype == torch.float32 and ours[1].dtype == torch.float32 and ours[2].dtype == torch.float32
    exact = value_and_grads(naive, h.double(), e.double(), t)
    for a, b, x in zip(ours, ref, exact):
        assert_rel(a.double(), x, 3e-2)  # bf16 rounding of the inputs, not an error of the method
        assert_rel(a, b, 3e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    h, e, t = inputs(64, 500, 16, seed=8)
    cpu = value_and_grads(chunked_cross_entropy, h, e, t, chunk_size=128, block_size=32)
    gpu = value_and_grads(chunked_cross_entropy, h.cuda(), e.cuda(), t.cuda(), chunk_size=128, block_size=32)
    for a, b in zip(gpu, cpu):
        assert_rel(a.cpu(), b, 1e-5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        bf = value_and_grads(chunked_cross_entropy, h.cuda(), e.cuda(), t.cuda(), chunk_size=128, block_size=32)
    for a, b in zip(bf, cpu):
        assert a.dtype == torch.float32
        assert_rel(a.cpu(), b, 3e-2)


def test_precision_option_validated():
    from seqrec.config import TrainConfig

    with pytest.raises(SeqrecError, match="precision"):
        TrainConfig(precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(SeqrecError, match="bf16"):
            TrainConfig(precision="bf16")
    with pytest.raises(SeqrecError, match="bf16"):
        TrainConfig(precision="bf16", device="cpu")
    assert TrainConfig().key() == TrainConfig(precision="fp32").key()
