import torch

from seqrec.models import SASRec
from seqrec.models.sasrec import attention_mask


def make(**kw):
    torch.manual_seed(0)
    model = SASRec(num_items=30, max_len=8, hidden_size=16, num_layers=2, num_heads=2, dropout=0.0, **kw)
    return model.eval()


def test_shapes_and_shared_embeddings():
    model = make()
    ids = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 8]])
    assert model(ids).shape == (2, 8, 16)
    assert model.item_embeddings().shape == (31, 16)
    assert model.item_embeddings().data_ptr() == model.item_emb.weight.data_ptr()
    assert model.score_all(ids).shape == (2, 31)


def test_padding_never_changes_real_positions():
    model = make()
    a = torch.tensor([[0, 0, 0, 5, 6, 7, 8, 9]])
    out = model(a)
    # the embedding of the padding id is irrelevant: perturb it
    with torch.no_grad():
        model.item_emb.weight[0] += 5.0
    torch.testing.assert_close(model(a)[:, 3:], out[:, 3:])


def test_causal_output_ignores_the_future():
    model = make()
    a = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7]])
    b = a.clone()
    b[0, 5:] = torch.tensor([20, 21, 22])
    oa, ob = model(a), model(b)
    torch.testing.assert_close(oa[:, :5], ob[:, :5])
    assert not torch.allclose(oa[:, 5:], ob[:, 5:])
    bidirectional = make(causal=False)
    assert not torch.allclose(bidirectional(a)[:, :5], bidirectional(b)[:, :5])


def test_attention_mask():
    allowed = attention_mask(torch.tensor([[0, 3, 4]]), causal=True)[0, 0]
    assert allowed.tolist() == [[True, False, False], [False, True, False], [False, True, True]]


def test_init_is_normal_002():
    model = SASRec(num_items=5000, max_len=50, hidden_size=64)
    assert abs(model.item_emb.weight.std().item() - 0.02) < 0.001
