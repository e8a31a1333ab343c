"""Tests of lib/numerics.py: StableMax against its definition, softmax collapse
against float64 arithmetic, the saved-tensor tracker against hand counts, and
checkpointing against plain backprop."""

import pytest
import torch
import torch.nn.functional as F

from lib import numerics


def _s_reference(x):
    return [xi + 1 if xi >= 0 else 1 / (1 - xi) for xi in x]


def test_stablemax_definition_and_properties():
    x = torch.tensor([[-3.0, -0.5, 0.0, 2.0], [10.0, -10.0, 1.0, 1.0]], dtype=torch.float64)
    p = numerics.stablemax(x)
    for row, prow in zip(x.tolist(), p):
        s = _s_reference(row)
        assert torch.allclose(prow, torch.tensor(s, dtype=torch.float64) / sum(s), atol=1e-15)
    assert torch.allclose(p.sum(1), torch.ones(2, dtype=torch.float64))
    # order preserving, like softmax
    assert torch.equal(p.argsort(1), x.argsort(1)) or torch.equal(p[0].argsort(), x[0].argsort())
    assert torch.allclose(numerics.log_stablemax(x), p.log(), atol=1e-14)
    # dim argument
    assert torch.allclose(numerics.stablemax(x.T, dim=0), p.T)


def test_stablemax_is_continuously_differentiable_at_zero():
    x = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    # s'(0-) = 1/(1-0)^2 = 1 = s'(0+): compare one-sided finite differences
    h = 1e-7
    left = (numerics._s(torch.tensor(0.0, dtype=torch.float64)) -
            numerics._s(torch.tensor(-h, dtype=torch.float64))) / h
    assert left.item() == pytest.approx(1.0, rel=1e-6)
    numerics.stablemax(x)[0].backward()
    assert torch.isfinite(x.grad).all()


def test_stablemax_cross_entropy_matches_manual_and_gradcheck():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 4, generator=g, dtype=torch.float64) * 3
    y = torch.tensor([0, 3, 1, 1, 2])
    loss = numerics.stablemax_cross_entropy(z, y)
    manual = -torch.log(numerics.stablemax(z)[torch.arange(5), y]).mean()
    assert loss.item() == pytest.approx(manual.item(), rel=1e-14)
    zz = z.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: numerics.stablemax_cross_entropy(t, y), (zz,))


def _confident_logits(lead, dtype):
    z = torch.zeros(4, 10, dtype=dtype)
    z[:, 3] = lead
    return z, torch.full((4,), 3)


@pytest.mark.parametrize("lead", [5.0, 20.0, 60.0, 200.0])
def test_zero_gradient_fraction_matches_float64_reasoning(lead):
    z, y = _confident_logits(lead, torch.float32)
    frac = numerics.zero_gradient_fraction(z, y, "softmax")
    # the wrong-class gradient is exp(-lead)/(...) which underflows float32 below ~1e-45
    expected_zero = torch.tensor(-lead, dtype=torch.float32).exp().item() == 0.0
    assert frac == (1.0 if expected_zero else 0.0)
    # in float64 nothing collapses at these leads
    assert numerics.zero_gradient_fraction(z.double(), y, "softmax") == 0.0
    # StableMax keeps a gradient: the wrong-class probability is about 1/lead^2
    assert numerics.zero_gradient_fraction(z, y, "stablemax") == 0.0


def test_softmax_loss_is_exactly_zero_before_gradient_is():
    z, y = _confident_logits(20.0, torch.float32)
    assert (F.cross_entropy(z, y, reduction="none") == 0).all()  # p_correct rounds to 1
    assert numerics.zero_gradient_fraction(z, y) == 0.0  # but wrong classes still get exp(-20)


def test_numerics_errors():
    with pytest.raises(TypeError, match="floating"):
        numerics.stablemax(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"\(n, k\)"):
        numerics.stablemax_cross_entropy(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        numerics.stablemax_cross_entropy(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        numerics.stablemax_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="integer"):
        numerics.zero_gradient_fraction(torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="loss"):
        numerics.zero_gradient_fraction(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), "hinge")


# ------------------------------------------------------------------ memory

def test_tracker_counts_saved_activations():
    x = torch.randn(100, 50, requires_grad=True)
    with numerics.SavedTensorTracker() as t:
        y = torch.exp(x)  # saves its output (100*50 floats)
        z = (y * 3.0).sum()  # multiplying by a number saves nothing
    assert t.saved_bytes == 100 * 50 * 4
    assert t.live_bytes == t.saved_bytes == t.peak_bytes
    z.backward()
    assert t.live_bytes == 0  # freed by backward
    assert torch.allclose(x.grad, 3 * torch.exp(x))


def test_tracker_deduplicates_storages_and_skips_parameters():
    lin = torch.nn.Linear(20, 20)
    x = torch.randn(8, 20)
    with numerics.SavedTensorTracker() as t:
        h = torch.relu(lin(x))  # relu saves its output, which the next layer saves as input
        out = lin(h).sum()
    # x (input of first linear, needed for weight grad) + h (relu output, shared)
    assert t.saved_bytes == 2 * 8 * 20 * 4
    # the weight is saved only when the layer's input needs a gradient
    # (PyTorch saves what the requested gradients need), and then it is a parameter
    x_grad = x.clone().requires_grad_(True)
    with numerics.SavedTensorTracker() as t1:
        lin(x_grad).sum()
    with numerics.SavedTensorTracker(count_parameters=True) as t2:
        lin(x_grad).sum()
    assert t1.saved_bytes == 8 * 20 * 4
    assert t2.saved_bytes == 8 * 20 * 4 + 20 * 20 * 4
    out.backward()


def _mlp_blocks(n=8, width=64, seed=0):
    torch.manual_seed(seed)
    return [torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Tanh()) for _ in range(n)]


@pytest.mark.parametrize("segments", [1, 2, 3, 8])
def test_checkpoint_sequential_gives_the_same_gradients(segments):
    blocks = _mlp_blocks()
    x = torch.randn(16, 64, dtype=torch.float32, requires_grad=True)
    ref = x
    for b in blocks:
        ref = b(ref)
    ref.square().sum().backward()
    ref_grads = [p.grad.clone() for b in blocks for p in b.parameters()] + [x.grad.clone()]
    for b in blocks:
        b.zero_grad()
    x.grad = None
    out = numerics.checkpoint_sequential(blocks, x, segments)
    assert torch.allclose(out, ref, atol=1e-6)
    out.square().sum().backward()
    grads = [p.grad for b in blocks for p in b.parameters()] + [x.grad]
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-5)


def test_checkpoint_sequential_stores_less():
    blocks = _mlp_blocks(n=16)
    x = torch.randn(32, 64)
    with numerics.SavedTensorTracker() as full:
        y = x
        for b in blocks:
            y = b(y)
        y.sum().backward()
    with numerics.SavedTensorTracker() as ck:
        numerics.checkpoint_sequential(blocks, x, 4).sum().backward()
    act = 32 * 64 * 4
    # plain: each block saves its input (linear) and its output (tanh): ~2 per block
    assert full.peak_bytes >= 16 * act
    # checkpointed: 4 stored inputs + one recomputed segment (4 blocks) at a time
    assert ck.peak_bytes <= (4 + 2 * 4 + 1) * act
    assert ck.peak_bytes < full.peak_bytes / 2
    assert full.live_bytes == 0 and ck.live_bytes == 0


def test_checkpoint_errors():
    blocks = _mlp_blocks(n=3)
    with pytest.raises(ValueError, match=r"\[1, 3\]"):
        numerics.checkpoint_sequential(blocks, torch.randn(2, 64), 4)
    with pytest.raises(TypeError, match="nn.Module"):
        numerics.checkpoint_sequential([torch.tanh], torch.randn(2, 64), 1)
    with pytest.raises(TypeError, match="torch.Tensor"):
        numerics.checkpoint_sequential(blocks, [1.0], 1)


# ------------------------------------------------------------------ found by tests/test_fuzz.py

def test_refuses_non_finite_logits_and_bad_dims():
    with pytest.raises(ValueError, match="x must be finite, got a tensor with 1 NaN entries"):
        numerics.stablemax(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="x must be finite"):
        numerics.log_stablemax(torch.tensor([0.0, float("inf")]))
    with pytest.raises(ValueError, match="logits must be finite"):
        numerics.stablemax_cross_entropy(torch.tensor([[0.0, float("inf")]]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"dim must be in \[-1, 0\]"):
        numerics.stablemax(torch.ones(3), dim=1)
    with pytest.raises(TypeError, match="dim must be an int, got float"):
        numerics.log_stablemax(torch.ones(3), dim=0.0)
    assert numerics.stablemax(torch.tensor(2.0)).item() == 1.0  # 0-dim: dim 0 or -1, as in torch


def test_refuses_empty_batches():
    with pytest.raises(ValueError, match=r"with n, k >= 1, got \(0, 3\)"):
        numerics.stablemax_cross_entropy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"with n, k >= 1, got \(0, 3\)"):
        numerics.zero_gradient_fraction(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def test_tracker_and_checkpoint_check_their_arguments():
    with pytest.raises(TypeError, match="count_parameters must be a bool, got str"):
        numerics.SavedTensorTracker("yes")
    layer = torch.nn.Linear(3, 3)
    with pytest.raises(TypeError, match="blocks must be a non-empty sequence of torch.nn.Module, got Linear"):
        numerics.checkpoint_sequential(layer, torch.ones(2, 3), 1)
    with pytest.raises(TypeError, match="blocks must be a non-empty sequence of torch.nn.Module, got NoneType"):
        numerics.checkpoint_sequential(None, torch.ones(2, 3), 1)
    with pytest.raises(TypeError, match="x must have a floating dtype, got torch.int64"):
        numerics.checkpoint_sequential([layer], torch.ones(2, 3, dtype=torch.long), 1)
    with pytest.raises(TypeError, match=r"x must have the dtype of the blocks' parameters \['torch.float32'\]"):
        numerics.checkpoint_sequential([layer], torch.ones(2, 3, dtype=torch.float64), 1)
    with pytest.raises(ValueError, match="x must be finite"):
        numerics.checkpoint_sequential([layer], torch.full((2, 3), float("nan")), 1)
