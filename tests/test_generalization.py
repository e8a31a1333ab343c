"""Tests of lib/generalization.py against brute-force loops, torch.optim and the FFT."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import data
from lib import generalization as gen

D = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).to(D)


def _loop_gradients(model, x, y, loss_fn):
    """Reference: one autograd backward pass per example."""
    rows = []
    for xi, yi in zip(x, y):
        model.zero_grad()
        loss_fn(model(xi[None]), yi[None]).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    model.zero_grad()
    return torch.stack(rows)


# ------------------------------------------------------------------ per_example_gradients

def test_per_example_gradients_match_loop_cross_entropy():
    model = _net()
    x = torch.randn(7, 4, generator=_gen(1), dtype=D)
    y = torch.randint(0, 3, (7,), generator=_gen(2))
    G = gen.per_example_gradients(model, x, y)
    assert G.shape == (7, sum(p.numel() for p in model.parameters()))
    torch.testing.assert_close(G, _loop_gradients(model, x, y, F.cross_entropy), atol=1e-12, rtol=0)
    torch.testing.assert_close(gen.per_example_gradients(model, x, y, chunk_size=3), G, atol=1e-12, rtol=0)
    # the mean of the rows is the gradient of the mean loss
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    full = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(G.mean(0), full, atol=1e-12, rtol=0)


def test_per_example_gradients_mse_and_frozen_parameters():
    model = _net(1)
    model[0].weight.requires_grad_(False)
    x = torch.randn(4, 4, generator=_gen(3), dtype=D)
    y = torch.randn(4, 3, generator=_gen(4), dtype=D)
    G = gen.per_example_gradients(model, x, y, loss_fn=F.mse_loss)
    ref = []
    for xi, yi in zip(x, y):
        grads = torch.autograd.grad(F.mse_loss(model(xi[None]), yi[None]),
                                    [p for p in model.parameters() if p.requires_grad])
        ref.append(torch.cat([g.reshape(-1) for g in grads]))
    assert G.shape == (4, 5 + 15 + 3)
    torch.testing.assert_close(G, torch.stack(ref), atol=1e-12, rtol=0)


# ------------------------------------------------------------------ coherence

def _coherence_brute_force(G):
    m = G.shape[0]
    num = sum(G[i] @ G[j] for i in range(m) for j in range(m)) / m**2
    den = sum(G[i] @ G[i] for i in range(m)) / m
    return num / den


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 8), P=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_coherence_matches_double_loop(m, P, seed):
    G = torch.randn(m, P, generator=_gen(seed), dtype=D)
    a = gen.coherence(G)
    torch.testing.assert_close(a, _coherence_brute_force(G), atol=1e-12, rtol=1e-12)
    assert 0 <= a.item() <= 1 + 1e-12
    # invariant under reordering the examples and rescaling all gradients
    perm = torch.randperm(m, generator=_gen(seed + 1))
    torch.testing.assert_close(gen.coherence(3.0 * G[perm]), a, atol=1e-12, rtol=1e-10)


def test_coherence_limits():
    g = torch.randn(1, 5, generator=_gen(0), dtype=D)
    torch.testing.assert_close(gen.coherence(g.repeat(6, 1)), torch.tensor(1.0, dtype=D))
    eye = torch.eye(4, dtype=D) * torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=D)[:, None]
    torch.testing.assert_close(gen.coherence(eye), torch.tensor(1.0 / 4, dtype=D))  # orthogonal limit 1/m
    torch.testing.assert_close(gen.coherence(torch.cat([g, -g])), torch.tensor(0.0, dtype=D))


def test_coherence_of_real_gradients_matches_loop():
    model = _net(2)
    x = torch.randn(6, 4, generator=_gen(5), dtype=D)
    y = torch.randint(0, 3, (6,), generator=_gen(6))
    G = _loop_gradients(model, x, y, F.cross_entropy)
    torch.testing.assert_close(gen.coherence(gen.per_example_gradients(model, x, y)),
                               _coherence_brute_force(G), atol=1e-12, rtol=0)


# ------------------------------------------------------------------ modular_mlp / train_modular

def test_modular_mlp_shape_seed_and_init_bounds():
    net = gen.modular_mlp(7, hidden=16, generator=_gen(0))
    assert net(torch.zeros(3, 14)).shape == (3, 7)
    again = gen.modular_mlp(7, hidden=16, generator=_gen(0))
    for p, q in zip(net.parameters(), again.parameters()):
        assert torch.equal(p, q)
    assert net[0].weight.abs().max() <= 1 / math.sqrt(14) and net[2].weight.abs().max() <= 1 / 4
    assert net[0].weight.std() > 0.5 / math.sqrt(3 * 14)  # really drawn, U(-b, b) has std b / sqrt(3)
    other = gen.modular_mlp(7, hidden=16, generator=_gen(1))
    assert not torch.equal(net[0].weight, other[0].weight)


def test_train_modular_matches_manual_adamw_loop():
    p = 5
    split = data.modular_table(p, train_fraction=0.6, seed=0)
    net = gen.modular_mlp(p, hidden=8, generator=_gen(0))
    ref = gen.modular_mlp(p, hidden=8, generator=_gen(0))
    rec = gen.train_modular(net, split, p, steps=7, lr=1e-2, weight_decay=0.5, eval_every=3,
                            probe=lambda m: m[0].weight.clone())
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, betas=(0.9, 0.98), weight_decay=0.5)
    x = data.one_hot_pairs(split.x_train, p)
    for _ in range(7):
        opt.zero_grad()
        F.cross_entropy(ref(x), split.y_train).backward()
        opt.step()
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b)
    assert rec["step"].tolist() == [0, 3, 6]
    assert rec["probe"].shape == (3, 8, 2 * p)
    for key in ("train_loss", "train_acc", "test_acc"):
        assert rec[key].shape == (3,)
    # accuracy recorded at step 6 equals a fresh evaluation would at step 6: check step 0 instead
    fresh = gen.modular_mlp(p, hidden=8, generator=_gen(0))
    with torch.no_grad():
        acc0 = (fresh(x).argmax(1) == split.y_train).float().mean().item()
        loss0 = F.cross_entropy(fresh(x), split.y_train).item()
    assert rec["train_acc"][0].item() == acc0 and abs(rec["train_loss"][0].item() - loss0) < 1e-6


def test_train_modular_learns_a_small_table():
    p = 5
    split = data.modular_table(p, train_fraction=0.8, seed=1)
    net = gen.modular_mlp(p, hidden=64, generator=_gen(2))
    rec = gen.train_modular(net, split, p, steps=200, weight_decay=0.0, eval_every=50)
    assert rec["train_acc"][-1].item() == 1.0
    assert rec["train_loss"][-1] < rec["train_loss"][0]
    assert "probe" not in rec
    assert gen.train_modular(net, split, p, steps=0)["step"].tolist() == [0]


# ------------------------------------------------------------------ Fourier

@pytest.mark.parametrize("p", [7, 8, 31])
def test_fourier_spectrum_of_sinusoids(p):
    a = torch.arange(p, dtype=D)
    rows, freqs = [], []
    for k in range(p // 2 + 1):
        rows.append(torch.cos(2 * math.pi * k * a / p + 0.3 * k) + (0 if k else 1.0))
        freqs.append(k)
    S = gen.fourier_spectrum(torch.stack(rows), p)
    assert S.shape == (p // 2 + 1, p // 2 + 1)
    torch.testing.assert_close(S, torch.eye(p // 2 + 1, dtype=D), atol=1e-12, rtol=0)
    torch.testing.assert_close(gen.fourier_concentration(torch.stack(rows), p), torch.tensor(1.0, dtype=D))


def test_fourier_spectrum_matches_numpy_and_sums_to_one():
    p = 11
    W = torch.randn(6, p, generator=_gen(0), dtype=D)
    S = gen.fourier_spectrum(W, p)
    power = np.abs(np.fft.fft(W.numpy(), axis=1)) ** 2
    ref = np.stack([power[:, 0]] + [power[:, k] + power[:, p - k] for k in range(1, p // 2 + 1)], 1)
    np.testing.assert_allclose(S.numpy(), ref / ref.sum(1, keepdims=True), atol=1e-12)
    torch.testing.assert_close(S.sum(1), torch.ones(6, dtype=D))
    W[2] = 0
    assert torch.equal(gen.fourier_spectrum(W, p)[2], torch.zeros(p // 2 + 1, dtype=D))


def test_fourier_concentration_weights_rows_by_norm():
    p = 9
    a = torch.arange(p, dtype=D)
    pure = torch.cos(2 * math.pi * 2 * a / p)                 # share 1 at k = 2
    mixed = torch.cos(2 * math.pi * a / p) + torch.cos(2 * math.pi * 3 * a / p)  # share 1/2 at its top
    W = torch.stack([pure, mixed])
    w = torch.tensor([pure @ pure, mixed @ mixed])
    expect = (w[0] * 1.0 + w[1] * 0.5) / w.sum()
    torch.testing.assert_close(gen.fourier_concentration(W, p), expect.to(D))
    rand = gen.fourier_concentration(torch.randn(200, p, generator=_gen(1), dtype=D), p)
    assert 1 / (p // 2 + 1) <= rand.item() < 0.7


# ------------------------------------------------------------------ errors

def test_errors_per_example_gradients_and_coherence():
    model, x, y = _net(), torch.randn(3, 4, dtype=D), torch.tensor([0, 1, 2])
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        gen.per_example_gradients(lambda t: t, x, y)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        gen.per_example_gradients(model, x, y, loss_fn=3)
    with pytest.raises(ValueError, match="same number of examples"):
        gen.per_example_gradients(model, x, y[:2])
    with pytest.raises(ValueError, match="x must be finite"):
        gen.per_example_gradients(model, x * float("nan"), y)
    with pytest.raises(TypeError, match="x must have a real floating dtype"):
        gen.per_example_gradients(model, y[:, None], y)
    with pytest.raises(TypeError, match="y must be a torch.Tensor"):
        gen.per_example_gradients(model, x, [0, 1, 2])
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        gen.per_example_gradients(model, x, y, loss_fn=lambda o, t: o)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        gen.per_example_gradients(model, x, y, chunk_size=0)
    with pytest.raises(ValueError, match="per-example gradients are not finite"):
        gen.per_example_gradients(model, x, y, loss_fn=lambda o, t: (o.sum() * 0).sqrt() + o.sum().clamp(max=-1).sqrt())
    with pytest.raises(ValueError, match="no trainable parameters"):
        gen.per_example_gradients(_net().requires_grad_(False), x, y)
    with pytest.raises(ValueError, match=r"G must be an \(m, P\) matrix"):
        gen.coherence(torch.ones(3, dtype=D))
    with pytest.raises(ValueError, match="only zero rows"):
        gen.coherence(torch.zeros(3, 2, dtype=D))
    with pytest.raises(ValueError, match="G must be finite"):
        gen.coherence(torch.full((2, 2), float("inf")))
    with pytest.raises(TypeError, match="G must have a real floating dtype"):
        gen.coherence(torch.ones(2, 2, dtype=torch.long))


def test_errors_grokking_pieces():
    with pytest.raises(ValueError, match="p must be >= 2"):
        gen.modular_mlp(1)
    with pytest.raises(TypeError, match="hidden must be an int"):
        gen.modular_mlp(5, hidden=2.0)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        gen.modular_mlp(5, generator=1)
    split = data.modular_table(5, seed=0)
    net = gen.modular_mlp(5, hidden=4)
    with pytest.raises(TypeError, match="split must be a lib.data.Split"):
        gen.train_modular(net, (1, 2, 3, 4), 5, 1)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        gen.train_modular(net, split, 5, 1, lr=0.0)
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        gen.train_modular(net, split, 5, 1, weight_decay=-1.0)
    with pytest.raises(ValueError, match="betas must be two numbers"):
        gen.train_modular(net, split, 5, 1, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="steps must be >= 0"):
        gen.train_modular(net, split, 5, -1)
    with pytest.raises(ValueError, match="eval_every must be >= 1"):
        gen.train_modular(net, split, 5, 1, eval_every=0)
    with pytest.raises(TypeError, match="probe must be callable"):
        gen.train_modular(net, split, 5, 1, probe=3)
    with pytest.raises(ValueError, match="training diverged"):
        gen.train_modular(net, split, 5, 3, lr=1e30)
    with pytest.raises(ValueError, match="must fit the parameters' dtype"):
        gen.train_modular(net, split, 5, 3, lr=1e300)
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        gen.train_modular(net, split, 3, 1)
    with pytest.raises(ValueError, match=r"W must have shape \(d, p\)"):
        gen.fourier_spectrum(torch.ones(3, 4), 5)
    with pytest.raises(ValueError, match="W must be finite"):
        gen.fourier_concentration(torch.full((2, 5), float("nan")), 5)
    with pytest.raises(ValueError, match="W is all zeros"):
        gen.fourier_concentration(torch.zeros(2, 5), 5)
