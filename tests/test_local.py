"""Tests of lib/local.py against torch.autograd, hand-written references and hand counts."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import data, local
from lib.numerics import SavedTensorTracker

D = torch.float64


def _setup(sizes=(7, 6, 5, 3), act="tanh", batch=9, seed=0, dtype=D):
    g = torch.Generator().manual_seed(seed)
    net = local.MLP(sizes, act, generator=g, dtype=dtype)
    x = torch.randn(batch, sizes[0], generator=g, dtype=dtype)
    y = torch.randint(0, sizes[-1], (batch,), generator=g)
    return net, x, y, g


def _close(a, b, tol=1e-12):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=tol, atol=tol)


def _autograd(net, x, y):
    """Backprop's gradients by an independent route: an nn.Sequential copy and loss.backward()."""
    mods = []
    for i, layer in enumerate(net.layers):
        lin = torch.nn.Linear(layer.in_features, layer.out_features, dtype=layer.weight.dtype)
        lin.load_state_dict(layer.state_dict())
        mods.append(lin)
        if i < len(net.layers) - 1:
            mods.append(torch.nn.Tanh() if net.activation == "tanh" else torch.nn.ReLU())
    seq = torch.nn.Sequential(*mods)
    F.cross_entropy(seq(x), y).backward()
    return [p.grad for p in seq.parameters()]


def _f(net, a):
    return torch.tanh(a) if net.activation == "tanh" else torch.relu(a)


# ---------------------------------------------------------------- the network

def test_mlp_shapes_init_and_forward():
    net, x, y, _ = _setup((5, 4, 3), batch=6)
    assert [tuple(p.shape) for p in net.parameters()] == [(4, 5), (4,), (3, 4), (3,)]
    for layer in net.layers:
        assert layer.weight.abs().max() <= 1 / math.sqrt(layer.in_features)
    hs, logits = net.trace(x)
    assert [tuple(h.shape) for h in hs] == [(6, 5), (6, 4)] and logits.shape == (6, 3)
    ref = net.layers[1](torch.tanh(net.layers[0](x)))
    torch.testing.assert_close(net(x), ref)
    torch.testing.assert_close(hs[1], torch.tanh(net.layers[0](x)))
    a = local.MLP((5, 4, 3), generator=torch.Generator().manual_seed(3), dtype=D)
    b = local.MLP((5, 4, 3), generator=torch.Generator().manual_seed(3), dtype=D)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert net.dtype == D and net.device == torch.device("cpu")


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(sizes=[5]), ValueError, "at least two"),
    (dict(sizes="54"), TypeError, "sequence of ints"),
    (dict(sizes=[5, 0]), ValueError, r"sizes\[1\]"),
    (dict(sizes=[5, 2.5]), TypeError, r"sizes\[1\]"),
    (dict(sizes=[5, 3], activation="sigmoid"), ValueError, "activation"),
    (dict(sizes=[5, 3], dtype=torch.float16), TypeError, "dtype"),
    (dict(sizes=[5, 3], generator=0), TypeError, "generator"),
    (dict(sizes=[5, 3], device="tpu"), ValueError, "device"),
    (dict(sizes=[2**17, 3]), ValueError, "at most"),
    (dict(sizes=[60000, 60000, 60000]), ValueError, "parameters"),
])
def test_mlp_bad_input(kwargs, err, match):
    with pytest.raises(err, match=match):
        local.MLP(**kwargs)


# ---------------------------------------------------------------- backprop, FA, DFA

def test_output_error_is_the_autograd_gradient_of_cross_entropy():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(8, 5, generator=g, dtype=D, requires_grad=True)
    y = torch.randint(0, 5, (8,), generator=g)
    (ref,) = torch.autograd.grad(F.cross_entropy(z, y), z)
    torch.testing.assert_close(local.output_error(z, y), ref, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_backprop_grads_match_an_independent_autograd_run(act):
    net, x, y, _ = _setup((7, 6, 5, 3), act)
    _close(local.backprop_grads(net, x, y), _autograd(net, x, y), 1e-14)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=2, max_size=5), st.sampled_from(["tanh", "relu"]),
       st.integers(1, 7), st.integers(0, 10**6))
def test_fa_with_transposed_weights_is_backprop(sizes, act, batch, seed):
    net, x, y, _ = _setup(sizes, act, batch, seed)
    fa = local.fa_grads(net, x, y, [layer.weight.T for layer in net.layers[1:]])
    _close(fa, _autograd(net, x, y), 1e-12)


class _FeedbackLinear(torch.autograd.Function):
    """y = x W^T + b whose backward sends the error down through B instead of W^T (a reference)."""

    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        return x @ weight.T + bias

    @staticmethod
    def backward(ctx, grad):
        x, feedback = ctx.saved_tensors
        return grad @ feedback.T, grad.T @ x, grad.sum(0), None


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_fa_with_random_feedback_matches_a_custom_backward(act):
    net, x, y, g = _setup((7, 6, 5, 4, 3), act)
    fb = local.feedback_matrices(net.sizes, generator=g, dtype=D)
    params = list(net.parameters())
    h = x
    for i, layer in enumerate(net.layers):
        # the first layer's input needs no error; its B would be W_1^T, never used
        back = fb[i - 1] if i > 0 else layer.weight.detach().T
        h = _FeedbackLinear.apply(h, layer.weight, layer.bias, back)
        if i < len(net.layers) - 1:
            h = _f(net, h)
    ref = torch.autograd.grad(F.cross_entropy(h, y), params)
    _close(local.fa_grads(net, x, y, fb), ref)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.sampled_from(["tanh", "relu"]),
       st.integers(0, 10**6))
def test_dfa_with_one_hidden_layer_and_w_out_transposed_is_backprop(d0, d1, d2, act, seed):
    net, x, y, _ = _setup((d0, d1, d2), act, 5, seed)
    _close(local.dfa_grads(net, x, y, [net.layers[1].weight.T]), _autograd(net, x, y))


def _surrogate_grads(net, x, y, signal):
    """Autograd of sum_l <sg(signal_l), h_l> with stop-gradients between layers, plus the output loss."""
    grads, h = [], x
    for i, layer in enumerate(net.layers[:-1]):
        h = _f(net, layer(h.detach()))
        grads += torch.autograd.grad((signal(i) * h).sum(), [layer.weight, layer.bias])
    last = net.layers[-1]
    grads += torch.autograd.grad(F.cross_entropy(last(h.detach()), y), [last.weight, last.bias])
    return grads


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_dfa_is_the_gradient_of_local_linear_losses(act):
    net, x, y, g = _setup((7, 6, 5, 4, 3), act)
    fb = local.feedback_matrices(net.sizes, direct=True, generator=g, dtype=D)
    e = local.output_error(net(x), y)
    _close(local.dfa_grads(net, x, y, fb), _surrogate_grads(net, x, y, lambda i: e @ fb[i].T))


def test_dfa_and_fa_coincide_with_one_hidden_layer():
    net, x, y, g = _setup((7, 6, 3))
    fb = local.feedback_matrices(net.sizes, direct=True, generator=g, dtype=D)
    _close(local.dfa_grads(net, x, y, fb), local.fa_grads(net, x, y, fb), 0)


def test_output_layer_always_gets_its_true_gradient():
    net, x, y, g = _setup((7, 6, 5, 3))
    bp = local.backprop_grads(net, x, y)
    fb = local.feedback_matrices(net.sizes, direct=True, generator=g, dtype=D)
    for grads in (local.dfa_grads(net, x, y, fb), local.drtp_grads(net, x, y, fb),
                  local.fa_grads(net, x, y, local.feedback_matrices(net.sizes, generator=g, dtype=D))):
        _close(grads[-2:], bp[-2:])


def test_drtp_is_the_gradient_of_projected_targets_and_ignores_the_layers_above():
    net, x, y, g = _setup((7, 6, 5, 4, 3))
    fb = local.feedback_matrices(net.sizes, direct=True, generator=g, dtype=D)
    target = -F.one_hot(y, 3).to(D) / len(y)
    grads = local.drtp_grads(net, x, y, fb)
    _close(grads, _surrogate_grads(net, x, y, lambda i: target @ fb[i].T))
    with torch.no_grad():  # change every layer above the first: its update stays the same
        for layer in net.layers[1:]:
            layer.weight.mul_(-2.0)
    _close(local.drtp_grads(net, x, y, fb)[:2], grads[:2], 0)


def test_feedback_matrices_shapes_scale_and_seed():
    sizes = (10, 200, 300, 40)
    fa = local.feedback_matrices(sizes, generator=torch.Generator().manual_seed(0), dtype=D)
    dfa = local.feedback_matrices(sizes, direct=True, scale=2.0, generator=torch.Generator().manual_seed(0))
    assert [tuple(b.shape) for b in fa] == [(200, 300), (300, 40)]
    assert [tuple(b.shape) for b in dfa] == [(200, 40), (300, 40)] and dfa[0].dtype == torch.float32
    assert abs(fa[0].std().item() * math.sqrt(300) - 1) < 0.02
    assert abs(dfa[1].std().item() * math.sqrt(40) - 2) < 0.05
    again = local.feedback_matrices(sizes, generator=torch.Generator().manual_seed(0), dtype=D)
    assert all(torch.equal(a, b) for a, b in zip(fa, again))
    assert local.feedback_matrices((3, 2)) == []


# ---------------------------------------------------------------- local losses

def test_local_loss_grads_match_the_summed_objective_with_stop_gradients():
    net, x, y, g = _setup((7, 6, 5, 4, 3), "relu")
    heads = local.aux_heads(net, generator=g)
    assert [(h.in_features, h.out_features) for h in heads] == [(6, 3), (5, 3), (4, 3)]
    total, h = 0.0, x
    for layer, head in zip(net.layers[:-1], heads):
        h = torch.relu(layer(h.detach()))
        total = total + F.cross_entropy(head(h), y)
    total = total + F.cross_entropy(net.layers[-1](h.detach()), y)
    ref = torch.autograd.grad(total, list(net.parameters()) + list(heads.parameters()))
    net_g, head_g = local.local_loss_grads(net, heads, x, y)
    _close(net_g + head_g, ref)


def test_local_loss_of_a_layer_ignores_the_layers_above():
    net, x, y, g = _setup((7, 6, 5, 3))
    heads = local.aux_heads(net, generator=g)
    before = local.local_loss_grads(net, heads, x, y)[0][:2]
    with torch.no_grad():
        net.layers[1].weight.add_(1.0)
        heads[1].weight.mul_(3.0)
    _close(local.local_loss_grads(net, heads, x, y)[0][:2], before, 0)


# ---------------------------------------------------------------- forward-forward

def test_ff_input_appends_a_scaled_one_hot_label():
    x = torch.rand(4, 3, dtype=D)
    out = local.ff_input(x, torch.tensor([0, 2, 1, 2]), 3, label_scale=2.0)
    torch.testing.assert_close(out[:, :3], x)
    torch.testing.assert_close(out[:, 3:], 2.0 * torch.tensor([[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]], dtype=D))
    assert torch.equal(local.ff_input(x, 1, 3)[:, 3:], torch.tensor([[0.0, 1, 0]] * 4, dtype=D))


def _ff_reference(net, x):
    outs, h = [], x
    for i, layer in enumerate(net.layers):
        if i:
            h = h.detach()
            h = h / (h.norm(dim=1, keepdim=True) + 1e-4)
        h = torch.relu(layer(h))
        outs.append(h)
    return outs


def test_ff_goodness_and_grads_match_a_reference():
    g = torch.Generator().manual_seed(0)
    net = local.MLP((8, 6, 5, 4), "relu", generator=g, dtype=D)
    x_pos, x_neg = torch.randn(5, 8, generator=g, dtype=D), torch.randn(5, 8, generator=g, dtype=D)
    good = torch.stack([o.square().mean(1) for o in _ff_reference(net, x_pos)], 1)
    torch.testing.assert_close(local.ff_goodness(net, x_pos), good.detach())
    total = 0.0
    for gp, gn in zip(_ff_reference(net, x_pos), _ff_reference(net, x_neg)):
        gp, gn = gp.square().mean(1), gn.square().mean(1)
        total = total + torch.cat([F.softplus(0.5 - gp), F.softplus(gn - 0.5)]).mean()
    _close(local.ff_grads(net, x_pos, x_neg, threshold=0.5), torch.autograd.grad(total, list(net.parameters())))


def test_ff_predict_takes_the_label_of_largest_total_goodness():
    g = torch.Generator().manual_seed(2)
    net = local.MLP((9, 8, 7), "relu", generator=g, dtype=D)
    x = torch.rand(6, 5, generator=g, dtype=D)
    scores = torch.stack([local.ff_goodness(net, local.ff_input(x, c, 4, 3.0)).sum(1) for c in range(4)], 1)
    assert torch.equal(local.ff_predict(net, x, 4, label_scale=3.0), scores.argmax(1))


# ---------------------------------------------------------------- every method learns the digits

@pytest.fixture(scope="module")
def digits():
    return data.digits(seed=0)


def _train(method, digits, steps=250, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_tr, y_tr, x_te, y_te = digits
    if method == "ff":
        net = local.MLP((74, 128, 128), "relu", generator=g)
        before = (local.ff_predict(net, x_te, 10) == y_te).float().mean().item()
    else:
        net = local.MLP((64, 64, 64, 10), generator=g)
        before = (net(x_te).argmax(1) == y_te).float().mean().item()
    params = list(net.parameters())
    fb = local.feedback_matrices(net.sizes, direct=method in ("dfa", "drtp"), generator=g)
    heads = local.aux_heads(net, generator=g)
    if method == "local":
        params += list(heads.parameters())
    opt = torch.optim.Adam(params, lr=0.03 if method == "ff" else 3e-3)
    for _ in range(steps):
        idx = torch.randint(0, len(y_tr), (64,), generator=g)
        x, y = x_tr[idx], y_tr[idx]
        if method == "ff":
            wrong = (y + torch.randint(1, 10, y.shape, generator=g)) % 10
            grads = local.ff_grads(net, local.ff_input(x, y, 10), local.ff_input(x, wrong, 10))
        elif method == "local":
            grads = sum(local.local_loss_grads(net, heads, x, y), [])
        elif method == "backprop":
            grads = local.backprop_grads(net, x, y)
        else:
            grads = getattr(local, f"{method}_grads")(net, x, y, fb)
        local.set_grads(params, grads)
        opt.step()
    if method == "ff":
        return before, (local.ff_predict(net, x_te, 10) == y_te).float().mean().item()
    return before, (net(x_te).argmax(1) == y_te).float().mean().item()


@pytest.mark.parametrize("method", ["backprop", "fa", "dfa", "drtp", "local", "ff"])
def test_every_method_learns_the_digits(method, digits):
    before, after = _train(method, digits)
    assert before < 0.3 and after > 0.8, (method, before, after)


# ---------------------------------------------------------------- memory accounting

def test_stored_activations_against_hand_counts():
    # sizes (4, 3, 2), batch 5, by hand:
    #   backprop / FA / DFA: h_0 (5x4) + h_1 (5x3) + probabilities (5x2) = 20 + 15 + 10 = 45
    #   DRTP: the larger of layer 1 (4 + 3) and layer 2 (3 + 2), times 5 = 35
    #   local: block 1 (4 + 3 + head 2) = 9, block 2 (3 + 2) = 5 -> 45
    #   FF: 10 rows, layer 1: 4 + 3 + 1 goodness = 8, layer 2: 3 + 2 + 1 = 6 -> 80
    hand = {"backprop": 45, "fa": 45, "dfa": 45, "drtp": 35, "local": 45, "ff": 80}
    assert {m: local.stored_activations(m, (4, 3, 2), 5) for m in local.METHODS} == hand
    # 8 hidden layers of 256, batch 128: backprop grows with depth, local methods do not
    deep = (64,) + (256,) * 8 + (10,)
    assert local.stored_activations("backprop", deep, 128) == 128 * (64 + 8 * 256 + 10)
    assert local.stored_activations("local", deep, 128) == 128 * (256 + 256 + 10)
    assert local.stored_activations("drtp", deep, 128) == 128 * 512


@pytest.mark.parametrize("sizes", [(64, 50, 40, 10), (64, 200, 10), (64, 10, 300, 20, 10), (5, 3)])
def test_stored_activations_match_what_autograd_saves(sizes):
    """The saved-tensor hooks measure autograd's peak; cross-entropy also saves its int64
    targets (8 bytes each) and one float32 scalar (the total weight)."""
    net, x, y, g = _setup(sizes, batch=16, dtype=torch.float32)
    heads = local.aux_heads(net, generator=g)
    extra = 8 * 16 + 4
    with SavedTensorTracker() as t:
        local.backprop_grads(net, x, y)
    assert t.peak_bytes == 4 * local.stored_activations("backprop", sizes, 16) + extra
    if len(sizes) > 2:
        with SavedTensorTracker() as t:
            local.local_loss_grads(net, heads, x, y)
        assert t.peak_bytes == 4 * local.stored_activations("local", sizes, 16) + extra
    ff = local.MLP(sizes, "relu", generator=g)
    with SavedTensorTracker() as t:
        local.ff_grads(ff, x, x.flip(0))
    assert t.peak_bytes == 4 * local.stored_activations("ff", sizes, 16)


def test_extra_weights_count_the_feedback_matrices_and_heads():
    sizes = (9, 7, 6, 5, 4)
    net = local.MLP(sizes)
    count = lambda ts: sum(t.numel() for t in ts)  # noqa: E731
    assert local.extra_weights("fa", sizes) == count(local.feedback_matrices(sizes)) == 7 * 6 + 6 * 5 + 5 * 4
    assert local.extra_weights("dfa", sizes) == count(local.feedback_matrices(sizes, direct=True)) == 18 * 4
    assert local.extra_weights("drtp", sizes) == local.extra_weights("dfa", sizes)
    assert local.extra_weights("local", sizes) == count(local.aux_heads(net).parameters()) == (8 + 7 + 6) * 4
    assert local.extra_weights("backprop", sizes) == local.extra_weights("ff", sizes) == 0


# ---------------------------------------------------------------- tools

def test_set_grads_copies_into_grad():
    net, x, y, _ = _setup((4, 3, 2))
    grads = local.backprop_grads(net, x, y)
    local.set_grads(net, grads)
    for p, gr in zip(net.parameters(), grads):
        assert torch.equal(p.grad, gr) and p.grad is not gr
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    w = net.layers[0].weight.detach().clone()
    opt.step()
    torch.testing.assert_close(net.layers[0].weight.detach(), w - 0.5 * grads[0])


def test_cosine():
    u = torch.tensor([1.0, 0.0, 1.0], dtype=D)
    assert local.cosine(u, 3 * u) == pytest.approx(1.0)
    assert local.cosine(u, -u) == pytest.approx(-1.0)
    assert local.cosine([u, u[:2]], [torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 5.0])]) == pytest.approx(0.0)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    ref = F.cosine_similarity(a.reshape(1, -1).double(), b.reshape(1, -1).double()).item()
    assert local.cosine(a, b) == pytest.approx(ref, abs=1e-12)


# ---------------------------------------------------------------- bad input

def test_bad_batches_are_refused():
    net, x, y, g = _setup((4, 3, 2))
    fb = local.feedback_matrices(net.sizes, direct=True, generator=g, dtype=D)
    with pytest.raises(TypeError, match="lib.local.MLP"):
        local.backprop_grads(torch.nn.Linear(4, 2), x, y)
    with pytest.raises(TypeError, match="dtype"):
        local.backprop_grads(net, x.float(), y)
    with pytest.raises(ValueError, match=r"shape \(B, 4\)"):
        local.dfa_grads(net, x[:, :3], y, fb)
    with pytest.raises(ValueError, match="x must be finite"):
        local.fa_grads(net, x.clone().fill_(math.nan), y, fb)
    with pytest.raises(TypeError, match="int64"):
        local.drtp_grads(net, x, y.float(), fb)
    with pytest.raises(ValueError, match=r"y must have shape \(9,\)"):
        local.backprop_grads(net, x, y[:3])
    with pytest.raises(ValueError, match=r"labels in \[0, 2\)"):
        local.backprop_grads(net, x, y + 5)
    with torch.no_grad():
        net.layers[0].weight[0, 0] = math.inf
    with pytest.raises(ValueError, match="parameters must be finite"):
        local.backprop_grads(net, x, y)


def test_bad_feedback_is_refused():
    net, x, y, g = _setup((4, 3, 3, 2))
    fa = local.feedback_matrices(net.sizes, generator=g, dtype=D)
    with pytest.raises(TypeError, match="list of tensors"):
        local.fa_grads(net, x, y, fa[0])
    with pytest.raises(ValueError, match="2 matrices"):
        local.fa_grads(net, x, y, fa[:1])
    with pytest.raises(ValueError, match=r"feedback\[1\] must have shape \(3, 2\)"):
        local.fa_grads(net, x, y, [fa[0], fa[1].T])
    with pytest.raises(ValueError, match=r"feedback\[1\] must have shape \(3, 2\)"):
        local.dfa_grads(net, x, y, [torch.zeros(3, 2, dtype=D), torch.zeros(2, 3, dtype=D)])
    with pytest.raises(TypeError, match=r"feedback\[0\]"):
        local.dfa_grads(net, x, y, [fa[0].float(), fa[1]])
    with pytest.raises(ValueError, match=r"feedback\[0\] must be finite"):
        local.fa_grads(net, x, y, [fa[0] * math.nan, fa[1]])
    for kw, err, match in [(dict(sizes=(3,)), ValueError, "at least two"),
                           (dict(sizes=(3, 2), scale=0.0), ValueError, "scale"),
                           (dict(sizes=(3, 2), direct=1), TypeError, "direct"),
                           (dict(sizes=(3, 2), dtype=torch.int64), TypeError, "dtype")]:
        with pytest.raises(err, match=match):
            local.feedback_matrices(**kw)


def test_bad_heads_and_ff_input_are_refused():
    net, x, y, g = _setup((4, 3, 2))
    heads = local.aux_heads(net, generator=g)
    with pytest.raises(ValueError, match="one head per hidden layer"):
        local.local_loss_grads(net, heads[:0], x, y)
    with pytest.raises(ValueError, match=r"heads\[0\] must map 3 -> 2"):
        local.local_loss_grads(net, [torch.nn.Linear(2, 2, dtype=D)], x, y)
    with pytest.raises(TypeError, match=r"heads\[0\]"):
        local.local_loss_grads(net, [torch.nn.Linear(3, 2)], x, y)
    with pytest.raises(TypeError, match="heads must be"):
        local.local_loss_grads(net, heads[0], x, y)
    tanh_net = local.MLP((6, 4), dtype=D)
    with pytest.raises(ValueError, match="relu"):
        local.ff_grads(tanh_net, torch.zeros(2, 6, dtype=D), torch.zeros(2, 6, dtype=D))
    relu_net = local.MLP((6, 4), "relu", dtype=D)
    with pytest.raises(ValueError, match="same shape"):
        local.ff_grads(relu_net, torch.zeros(2, 6, dtype=D), torch.zeros(3, 6, dtype=D))
    with pytest.raises(ValueError, match="threshold"):
        local.ff_grads(relu_net, torch.zeros(2, 6, dtype=D), torch.zeros(2, 6, dtype=D), threshold=math.inf)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        local.ff_input(torch.zeros(2, 3), 3, 3)
    with pytest.raises(ValueError, match="label_scale"):
        local.ff_input(torch.zeros(2, 3), 1, 3, label_scale=-1.0)
    with pytest.raises(ValueError, match="below the network's input width"):
        local.ff_predict(relu_net, torch.zeros(2, 1, dtype=D), 6)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        local.ff_predict(relu_net, torch.zeros(2, 3, dtype=D), 4)


def test_bad_tools_input_is_refused():
    net, x, y, _ = _setup((4, 3, 2))
    grads = local.backprop_grads(net, x, y)
    with pytest.raises(ValueError, match="one tensor per parameter"):
        local.set_grads(net, grads[:-1])
    with pytest.raises(ValueError, match=r"grads\[0\] must match"):
        local.set_grads(net, [grads[0].T] + grads[1:])
    with pytest.raises(ValueError, match=r"grads\[1\] must be finite"):
        local.set_grads(net, [grads[0], grads[1] * math.inf] + grads[2:])
    with pytest.raises(TypeError, match="params must be"):
        local.set_grads("net", grads)
    with pytest.raises(ValueError, match="same shapes"):
        local.cosine(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="non-zero"):
        local.cosine(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="at least one"):
        local.cosine([], [])
    with pytest.raises(ValueError, match="method must be one of"):
        local.stored_activations("bp", (3, 2), 4)
    with pytest.raises(ValueError, match="batch"):
        local.stored_activations("backprop", (3, 2), 0)
    with pytest.raises(TypeError, match=r"sizes\[0\]"):
        local.extra_weights("fa", (3.0, 2))
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        local.output_error(torch.zeros(2, 3), torch.tensor([0, 3]))
