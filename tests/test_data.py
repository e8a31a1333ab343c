"""Tests of lib/data.py: shapes, statistics against closed forms, determinism, bad input."""

import math

import numpy as np
import pytest
import torch

from lib import data


# ------------------------------------------------------------------ determinism

@pytest.mark.parametrize("make", [
    lambda s: data.gaussian_mixture(500, [[0, 0], [3, 3]], seed=s),
    lambda s: data.ring_of_gaussians(500, seed=s),
    lambda s: data.two_moons(500, seed=s),
    lambda s: data.rings(500, seed=s),
    lambda s: data.digits(seed=s),
    lambda s: data.modular_table(p=11, seed=s),
])
def test_same_seed_same_data_and_global_rng_untouched(make):
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = make(3)
    after = torch.rand(1)
    b = make(3)
    c = make(4)
    assert before == after, "a data function consumed the global torch RNG"
    for t, u in zip(a, b):
        assert torch.equal(t, u)
    assert any(not torch.equal(t, u) for t, u in zip(a, c))


# ------------------------------------------------------------------ mixtures

def test_gaussian_mixture_moments():
    means = torch.tensor([[0.0, 0.0], [4.0, -2.0]])
    x, c = data.gaussian_mixture(40000, means, std=[0.5, 1.0], weights=[1, 3], seed=0)
    assert x.shape == (40000, 2) and x.dtype == torch.float32 and c.dtype == torch.int64
    assert abs((c == 1).float().mean().item() - 0.75) < 0.01
    for k, s in enumerate([0.5, 1.0]):
        xs = x[c == k]
        assert torch.allclose(xs.mean(0), means[k], atol=0.03)
        assert torch.allclose(xs.std(0), torch.tensor([s, s]), atol=0.03)


def test_gaussian_mixture_bad_input():
    with pytest.raises(ValueError, match=r"\(k, d\)"):
        data.gaussian_mixture(10, [0.0, 1.0])
    with pytest.raises(ValueError, match="k=2"):
        data.gaussian_mixture(10, [[0, 0], [1, 1]], std=[1, 2, 3])
    with pytest.raises(ValueError, match="positive"):
        data.gaussian_mixture(10, [[0, 0]], std=0.0)
    with pytest.raises(ValueError, match="non-negative"):
        data.gaussian_mixture(10, [[0, 0], [1, 1]], weights=[1, -1])
    with pytest.raises(TypeError, match="n must be an int"):
        data.gaussian_mixture(10.0, [[0, 0]])
    with pytest.raises(ValueError, match="n must be"):
        data.gaussian_mixture(0, [[0, 0]])
    with pytest.raises(ValueError, match="seed"):
        data.gaussian_mixture(5, [[0, 0]], seed=-1)


def test_ring_of_gaussians_centres():
    x, c = data.ring_of_gaussians(16000, k=4, radius=3.0, std=0.1, seed=1)
    for k in range(4):
        centre = x[c == k].mean(0)
        expected = torch.tensor([3 * math.cos(k * math.pi / 2), 3 * math.sin(k * math.pi / 2)])
        assert torch.allclose(centre, expected, atol=0.02)
    with pytest.raises(ValueError, match="k must be"):
        data.ring_of_gaussians(10, k=0)


def test_two_moons_and_rings():
    x, y = data.two_moons(1000, noise=0.0, seed=0)
    assert x.shape == (1000, 2) and set(y.tolist()) == {0, 1}
    # noise-free upper moon lies on the unit circle around (-0.5, -0.25)
    r = (x[y == 0] + torch.tensor([0.5, 0.25])).norm(dim=1)
    assert torch.allclose(r, torch.ones_like(r), atol=1e-5)
    with pytest.raises(ValueError, match="even"):
        data.two_moons(5)
    with pytest.raises(ValueError, match="noise"):
        data.two_moons(4, noise=-0.1)

    x, y = data.rings(900, radii=(1.0, 2.0, 3.0), noise=0.0)
    assert torch.allclose(x.norm(dim=1), torch.tensor([1.0, 2.0, 3.0])[y], atol=1e-5)
    with pytest.raises(ValueError, match="radii"):
        data.rings(10, radii=(1.0, -2.0))


# ------------------------------------------------------------------ digits

def test_digits_split_matches_sklearn():
    from sklearn.datasets import load_digits

    ref = load_digits()
    d = data.digits(test_fraction=0.25, seed=0)
    assert d.x_train.shape[1] == 64 and d.x_train.dtype == torch.float32
    assert len(d.y_train) + len(d.y_test) == 1797
    # stratified: every class is about 25% test
    for label in range(10):
        n_all = int((ref.target == label).sum())
        assert abs(int((d.y_test == label).sum()) - 0.25 * n_all) <= 1
    # every image is a real digit with its own label, none in both splits
    ref_map = {tuple((ref.data[i] / 16).round(6)): ref.target[i] for i in range(len(ref.target))}
    seen = set()
    for xs, ys in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        for xi, yi in zip(xs.numpy(), ys.numpy()):
            key = tuple(np.round(xi, 6))
            assert ref_map[key] == yi
            seen.add((key, len(seen)))
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0


def test_digits_options():
    d = data.digits(pixel_range="symmetric", flatten=False)
    assert d.x_train.shape[1:] == (1, 8, 8)
    assert d.x_train.min() == -1.0 and d.x_train.max() == 1.0
    with pytest.raises(ValueError, match="pixel_range"):
        data.digits(pixel_range="0-255")
    with pytest.raises(ValueError, match="test_fraction"):
        data.digits(test_fraction=1.0)
    with pytest.raises(ValueError, match="test_fraction"):
        data.digits(test_fraction=0.0)


# ------------------------------------------------------------------ modular arithmetic

@pytest.mark.parametrize("op,fn", [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b),
                                   ("mul", lambda a, b: a * b)])
def test_modular_table_brute_force(op, fn):
    p = 13
    t = data.modular_table(p=p, op=op, train_fraction=0.5, seed=2)
    pairs = torch.cat([t.x_train, t.x_test])
    labels = torch.cat([t.y_train, t.y_test])
    assert len(pairs) == p * p
    assert len({tuple(pr) for pr in pairs.tolist()}) == p * p  # every pair exactly once
    for (a, b), y in zip(pairs.tolist(), labels.tolist()):
        assert y == fn(a, b) % p
    assert abs(len(t.y_train) - 0.5 * p * p) <= 1


def test_modular_table_bad_input():
    with pytest.raises(ValueError, match="op"):
        data.modular_table(op="div")
    with pytest.raises(ValueError, match="p must be"):
        data.modular_table(p=1)
    with pytest.raises(ValueError, match="train_fraction"):
        data.modular_table(train_fraction=1.5)


def test_one_hot_pairs():
    pairs = torch.tensor([[0, 2], [1, 1]])
    x = data.one_hot_pairs(pairs, 3)
    assert torch.equal(x, torch.tensor([[1.0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0]]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        data.one_hot_pairs(torch.tensor([[0, 3]]), 3)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        data.one_hot_pairs(torch.tensor([0, 1]), 3)
    with pytest.raises(TypeError, match="integer tensor"):
        data.one_hot_pairs(torch.tensor([[0.0, 1.0]]), 3)


# ------------------------------------------------------------------ found by tests/test_fuzz.py


def test_refuses_non_finite_parameters():
    with pytest.raises(ValueError, match="means must be finite"):
        data.gaussian_mixture(10, [[0.0, math.nan]])
    with pytest.raises(ValueError, match="std must be finite"):
        data.gaussian_mixture(10, [[0.0, 0.0]], std=math.inf)
    with pytest.raises(ValueError, match="weights must be finite"):
        data.gaussian_mixture(10, [[0.0], [1.0]], weights=[math.nan, 1.0])
    with pytest.raises(ValueError, match="radius must be finite"):
        data.ring_of_gaussians(10, radius=math.inf)
    with pytest.raises(ValueError, match="noise must be finite"):
        data.two_moons(10, noise=math.inf)
    with pytest.raises(ValueError, match="radii must be finite"):
        data.rings(10, radii=[1.0, math.nan])
    with pytest.raises(ValueError, match="noise must be finite"):
        data.rings(10, noise=10**400)


def test_refuses_malformed_arguments():
    with pytest.raises(TypeError, match="means must be a number, a \\(nested\\) list"):
        data.gaussian_mixture(10, None)
    with pytest.raises(TypeError, match="means must hold real numbers"):
        data.gaussian_mixture(10, [[0.0, 1.0], [2.0]])
    with pytest.raises(TypeError, match="radii must be a number"):
        data.rings(10, radii="12")
    with pytest.raises(ValueError, match="n must be >= 2, got 18446744073709551616"):
        data.two_moons(2**64)
    with pytest.raises(TypeError, match="flatten must be a bool, got str"):
        data.digits(flatten="no")
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'"):
        data.modular_table(7, device="gpu")
    with pytest.raises(TypeError, match="device must be None, a str or a torch.device, got int"):
        data.two_moons(10, device=1)
    with pytest.raises(ValueError, match=r"entries of pairs must lie in \[0, 3\)"):
        data.one_hot_pairs(torch.tensor([[0, 3]]), 3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_refuses_a_missing_device():
    with pytest.raises(ValueError, match="this machine has 0 visible CUDA device"):
        data.rings(10, device="cuda")


# ------------------------------------------------------------------ block_digits (chapter 19)


def test_block_digits_blocks_labels_and_mask():
    split = data.digits(seed=3, flatten=False)
    for name, (xd, yd) in (("train", (split.x_train, split.y_train)), ("test", (split.x_test, split.y_test))):
        x, y, mask = data.block_digits(name, classes=(3, 8), seed=3)
        keep = (yd == 3) | (yd == 8)
        assert x.shape == (int(keep.sum()), 1, 16, 8) and x.dtype == torch.float32
        assert mask.shape == x.shape and mask.dtype == torch.bool and y.dtype == torch.int64
        assert torch.equal(y, (yd[keep] == 8).long())  # label k means classes[k]
        top = mask[:, 0, 0, 0]
        assert torch.equal(mask, top[:, None, None, None].expand(-1, 1, 16, 8)
                           == (torch.arange(16) < 8)[None, None, :, None])  # one whole 8x8 block
        signal = torch.where(top[:, None, None, None], x[:, :, :8], x[:, :, 8:])
        null = torch.where(top[:, None, None, None], x[:, :, 8:], x[:, :, :8])
        assert torch.equal(signal, xd[keep])  # the digits, in the order of digits()
        assert torch.equal(null, null[:1].expand_as(null))  # one fixed pattern for every image
        assert null[0].sum() == 20 and set(null.unique().tolist()) == {0.0, 1.0}  # a 6x6 square outline
        assert 0.35 < top.float().mean() < 0.65  # the order is random


def test_block_digits_is_deterministic_and_flattens():
    a = data.block_digits("test", seed=1)
    b = data.block_digits("test", seed=1)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    c = data.block_digits("test", seed=2)
    assert not torch.equal(a[2], c[2]) or not torch.equal(a[0], c[0])
    x, y, mask = data.block_digits("test", seed=1, flatten=True)
    assert x.shape == (len(y), 128) and torch.equal(x, a[0].reshape(-1, 128))
    assert torch.equal(mask, a[2].reshape(-1, 128))
    x10, y10, _ = data.block_digits("train", classes=list(range(10)), device="cpu")
    assert len(x10) == len(data.digits().x_train) and set(y10.tolist()) == set(range(10))


def test_block_digits_refuses_bad_arguments():
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        data.block_digits("val")
    with pytest.raises(TypeError, match="classes must be a tuple or list"):
        data.block_digits(classes="01")
    with pytest.raises(ValueError, match="classes must hold at least two distinct digits"):
        data.block_digits(classes=(1, 1))
    with pytest.raises(ValueError, match="classes must hold at least two distinct digits"):
        data.block_digits(classes=[4])
    with pytest.raises(ValueError, match=r"classes entry must be in \[0, 9\], got 10"):
        data.block_digits(classes=(0, 10))
    with pytest.raises(TypeError, match="classes entry must be an int"):
        data.block_digits(classes=(0, 1.0))
    with pytest.raises(TypeError, match="flatten must be a bool"):
        data.block_digits(flatten=1)
    with pytest.raises(ValueError, match="test_fraction must be"):
        data.block_digits(test_fraction=1.0)
    with pytest.raises(ValueError, match="seed must be"):
        data.block_digits(seed=-1)
    with pytest.raises(ValueError, match="device must be 'cpu'"):
        data.block_digits(device="gpu")
