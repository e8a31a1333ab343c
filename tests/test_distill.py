"""Tests of lib/distill.py against hand-computed values, torch's cosine similarity,
finite differences (lib.calculus), closed-form maximisers and scikit-learn's k-means."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import calculus
from lib import distill as ds

D = torch.float64


def _toy(seed: int = 0, n_per_class: int = 12, d: int = 3, classes: int = 2, dtype=D):
    """Gaussian blobs, one per class, and a small tanh network (float64 by default)."""
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(classes, d, generator=g, dtype=dtype)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = centres[y] + torch.randn(len(y), d, generator=g, dtype=dtype)
    return x, y


def _make(d: int = 3, classes: int = 2, hidden: int = 5, dtype=D):
    def make():
        return nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, classes)).to(dtype)
    return make


# ---------------------------------------------------------------- gradient_match_distance

def test_distance_hand_computed():
    a = [torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=D), torch.tensor([3.0, 4.0], dtype=D)]
    b = [torch.tensor([[1.0, 1.0], [0.0, 2.0]], dtype=D), torch.tensor([4.0, 3.0], dtype=D)]
    # rows: cos = 1/sqrt(2) and 1; the bias is one vector: cos = 24/25
    expected = (1 - 1 / math.sqrt(2)) + 0.0 + (1 - 24 / 25)
    assert ds.gradient_match_distance(a, b).item() == pytest.approx(expected, abs=1e-15)
    # whole layers: cos = 3 / (sqrt(2) sqrt(6)) for the matrix
    expected_layer = (1 - 3 / (math.sqrt(2) * math.sqrt(6))) + (1 - 24 / 25)
    assert ds.gradient_match_distance(a, b, rowwise=False).item() == pytest.approx(expected_layer, abs=1e-15)


def test_distance_against_torch_cosine_similarity():
    g = torch.Generator().manual_seed(1)
    A = [torch.randn(4, 3, 2, generator=g, dtype=D), torch.randn(5, generator=g, dtype=D)]
    B = [torch.randn(4, 3, 2, generator=g, dtype=D), torch.randn(5, generator=g, dtype=D)]
    ref = (1 - F.cosine_similarity(A[0].reshape(4, -1), B[0].reshape(4, -1), dim=1)).sum() \
        + (1 - F.cosine_similarity(A[1], B[1], dim=0))
    assert torch.allclose(ds.gradient_match_distance(A, B), ref, atol=1e-14)
    ref_layer = sum(1 - F.cosine_similarity(a.flatten(), b.flatten(), dim=0) for a, b in zip(A, B))
    assert torch.allclose(ds.gradient_match_distance(A, B, rowwise=False), ref_layer, atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(1e-3, 1e3), st.booleans())
def test_distance_zero_for_identical_and_scale_invariant(seed, scale, rowwise):
    g = torch.Generator().manual_seed(seed)
    A = [torch.randn(3, 4, generator=g, dtype=D), torch.randn(3, generator=g, dtype=D)]
    B = [torch.randn(3, 4, generator=g, dtype=D), torch.randn(3, generator=g, dtype=D)]
    assert ds.gradient_match_distance(A, A, rowwise=rowwise).item() == pytest.approx(0.0, abs=1e-14)
    d = ds.gradient_match_distance(A, B, rowwise=rowwise)
    scaled = ds.gradient_match_distance([scale * t for t in A], B, rowwise=rowwise)
    assert scaled.item() == pytest.approx(d.item(), rel=1e-12, abs=1e-14)
    if rowwise:  # each row may have its own positive scale
        row_scales = torch.rand(3, 1, generator=g, dtype=D) + 0.1
        assert ds.gradient_match_distance([A[0] * row_scales, A[1]], B).item() == pytest.approx(d.item(), rel=1e-12)
    # symmetric, bounded by 2 per row, and a sign flip gives the maximum
    assert ds.gradient_match_distance(B, A, rowwise=rowwise).item() == pytest.approx(d.item(), rel=1e-12)
    rows = 4 if rowwise else 2
    assert 0.0 <= d.item() <= 2.0 * rows
    assert ds.gradient_match_distance(A, [-t for t in A], rowwise=rowwise).item() == pytest.approx(2.0 * rows)


def test_distance_zero_rows_and_extreme_scales():
    z = torch.zeros(2, 3, dtype=D)
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=D)
    assert ds.gradient_match_distance([z], [z]).item() == 0.0
    assert ds.gradient_match_distance([a], [a]).item() == pytest.approx(0.0, abs=1e-15)
    assert ds.gradient_match_distance([a], [z]).item() == 1.0  # nonzero row vs zero: 1; zero vs zero: 0
    for s in (1e-300, 1e300):  # no underflow or overflow in the norms
        assert ds.gradient_match_distance([s * a], [a]).item() == pytest.approx(0.0, abs=1e-14)
    small = torch.tensor([1e-30, 2e-30], dtype=torch.float32)
    assert ds.gradient_match_distance(small, small.flip(0)).item() == pytest.approx(1 - 4 / 5, abs=1e-6)


def test_distance_is_differentiable():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 4, generator=g, dtype=D, requires_grad=True)
    b = torch.randn(3, 4, generator=g, dtype=D)
    (grad,) = torch.autograd.grad(ds.gradient_match_distance([a], [b]), a)
    fd = calculus.finite_difference(lambda t: ds.gradient_match_distance([t], [b]), a.detach())
    assert torch.allclose(grad, fd, atol=1e-8)


# ---------------------------------------------------------------- gradient_matching_loss

def test_matching_loss_equals_per_class_sum():
    x, y = _toy()
    torch.manual_seed(0)
    model = _make()()
    xs, ys = x[[0, 1, 12, 13]] + 0.3, y[[0, 1, 12, 13]]
    params = list(model.parameters())
    ref = 0.0
    for c in (0, 1):
        gs = torch.autograd.grad(F.cross_entropy(model(xs[ys == c]), ys[ys == c]), params)
        gr = torch.autograd.grad(F.cross_entropy(model(x[y == c]), y[y == c]), params)
        ref += ds.gradient_match_distance(gs, gr).item()
    assert ds.gradient_matching_loss(model, xs, ys, x, y).item() == pytest.approx(ref, rel=1e-12)
    # a synthetic set equal to the real one matches exactly
    assert ds.gradient_matching_loss(model, x, y, x, y).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("rowwise", [True, False])
def test_matching_loss_gradient_matches_finite_differences(rowwise):
    """d D / d x_syn goes through the parameter gradient: a second derivative by double backward."""
    x, y = _toy(seed=3)
    torch.manual_seed(1)
    model = _make()()
    g = torch.Generator().manual_seed(4)
    xs = torch.randn(4, 3, generator=g, dtype=D)
    ys = torch.tensor([0, 0, 1, 1])

    def loss(z):
        return ds.gradient_matching_loss(model, z, ys, x, y, rowwise=rowwise)

    z = xs.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(z), z)
    fd = calculus.finite_difference(loss, xs)
    assert torch.allclose(grad, fd, atol=1e-7, rtol=1e-6), (grad - fd).abs().max()
    assert grad.abs().max() > 1e-3  # not trivially zero


def test_one_gradient_step_on_the_images_reduces_the_loss():
    x, y = _toy(seed=5)
    torch.manual_seed(2)
    model = _make()()
    xs, ys = x[[0, 1, 12, 13]].clone(), y[[0, 1, 12, 13]]
    z = xs.clone().requires_grad_(True)
    d0 = ds.gradient_matching_loss(model, z, ys, x, y)
    (grad,) = torch.autograd.grad(d0, z)
    d1 = ds.gradient_matching_loss(model, xs - 1e-2 * grad, ys, x, y)
    assert d1 < d0
    # first-order prediction of the decrease
    assert (d0 - d1).item() == pytest.approx(1e-2 * grad.pow(2).sum().item(), rel=0.1)


def test_matching_loss_ignores_unused_parameters():
    x, y = _toy()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(3, 2).double(), nn.Linear(3, 2).double()

        def forward(self, z):
            return self.used(z)

    torch.manual_seed(0)
    net = Net()
    assert math.isfinite(ds.gradient_matching_loss(net, x[:4], y[:4], x, y).item())


# ---------------------------------------------------------------- random_subset, condense, evaluate

def test_random_subset():
    x, y = _toy(classes=3, n_per_class=7)
    xs, ys = ds.random_subset(x, y, 4, generator=torch.Generator().manual_seed(0))
    assert xs.shape == (12, 3) and ys.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    for row, label in zip(xs, ys):  # each row is a real example of its class
        match = (x == row).all(dim=1)
        assert match.sum() == 1 and y[match].item() == label
    assert len({tuple(r.tolist()) for r in xs}) == 12  # no repeats
    again = ds.random_subset(x, y, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], xs)


def _mean_distance_on_fresh_nets(make, xs, ys, x, y, seeds=range(100, 105)):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(ds.gradient_matching_loss(make(), xs, ys, x, y).item())
    return sum(out) / len(out)


def test_condense_reduces_matching_distance_on_unseen_networks():
    x, y = _toy(seed=6, n_per_class=20)
    make = _make()
    res = ds.condense(make, x, y, 2, outer_steps=8, inner_steps=5, lr_images=0.05, lr_model=0.05,
                      generator=torch.Generator().manual_seed(0))
    assert res.x.shape == (4, 3) and res.y.tolist() == [0, 0, 1, 1]
    assert res.distances.shape == (8, 5) and torch.isfinite(res.distances).all()
    assert res.snapshots.shape == (9, 4, 3) and res.snapshot_steps.tolist() == list(range(9))
    assert torch.equal(res.snapshots[-1], res.x)
    # the start is the random subset drawn first from the same generator
    start = ds.random_subset(x, y, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(res.snapshots[0], start[0])
    before = _mean_distance_on_fresh_nets(make, start[0], start[1], x, y)
    after = _mean_distance_on_fresh_nets(make, res.x, res.y, x, y)
    assert after < 0.7 * before, (before, after)


def test_condense_first_step_lowers_the_distance_of_that_network():
    """With outer_steps = 1 and inner_steps = 2, the network is the same at both inner steps
    when lr_model is tiny: the second distance is below the first."""
    x, y = _toy(seed=7)
    res = ds.condense(_make(), x, y, 3, outer_steps=1, inner_steps=2, lr_images=0.02, lr_model=1e-12,
                      momentum=0.0, generator=torch.Generator().manual_seed(1))
    assert res.distances[0, 1] < res.distances[0, 0]


def test_condense_is_reproducible_and_leaves_global_rng_alone():
    x, y = _toy(seed=8)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    kw = dict(outer_steps=2, inner_steps=2, generator=None)
    a = ds.condense(_make(), x, y, 2, **{**kw, "generator": torch.Generator().manual_seed(5)})
    assert torch.equal(torch.get_rng_state(), state)
    b = ds.condense(_make(), x, y, 2, **{**kw, "generator": torch.Generator().manual_seed(5)})
    assert torch.equal(a.x, b.x) and torch.equal(a.distances, b.distances)
    c = ds.condense(_make(), x, y, 2, **{**kw, "generator": torch.Generator().manual_seed(6)})
    assert not torch.equal(a.x, c.x)


def test_condense_options():
    x, y = _toy(seed=9, classes=3)
    res = ds.condense(_make(classes=3), x, y, 2, outer_steps=5, inner_steps=2, init="noise", batch_real=4,
                      model_steps=2, rowwise=False, snapshot_every=2, generator=torch.Generator().manual_seed(0))
    assert res.snapshot_steps.tolist() == [0, 2, 4, 5] and res.snapshots.shape == (4, 6, 3)
    assert res.y.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.isfinite(res.x).all()
    # float32 and image-shaped inputs work too
    x32 = x.float().reshape(-1, 1, 3, 1)
    make = lambda: nn.Sequential(nn.Flatten(), nn.Linear(3, 3))  # noqa: E731
    out = ds.condense(make, x32, y, 1, outer_steps=1, inner_steps=1, generator=torch.Generator().manual_seed(0))
    assert out.x.shape == (3, 1, 3, 1) and out.x.dtype == torch.float32


def test_train_and_evaluate():
    x, y = _toy(seed=10, n_per_class=30)
    acc = ds.train_and_evaluate(_make(), x, y, x, y, seeds=(0, 1), steps=100, lr=0.1)
    assert acc.shape == (2,) and acc.dtype == D and ((acc >= 0) & (acc <= 1)).all()
    assert acc.min() > 0.9  # well separated blobs
    assert torch.equal(acc, ds.train_and_evaluate(_make(), x, y, x, y, seeds=(0, 1), steps=100, lr=0.1))
    # reference: the same training written out with torch.optim
    torch.manual_seed(0)
    model = _make()()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    ref = (model(x).argmax(1) == y).double().mean().item()
    assert acc[0].item() == ref


# ---------------------------------------------------------------- feature visualisation

def test_total_variation_hand_computed_and_zero_for_constants():
    x = torch.tensor([[[0.0, 1.0], [1.0, 3.0]]], dtype=D)  # (1, 2, 2)
    assert ds.total_variation(x).tolist() == [(1 + 4) + (1 + 4)]
    assert ds.total_variation(torch.full((3, 1, 4, 5), 2.5)).abs().max() == 0
    z = torch.randn(2, 1, 3, 3, dtype=D, requires_grad=True)
    (g,) = torch.autograd.grad(ds.total_variation(z).sum(), z)
    fd = calculus.finite_difference(lambda t: ds.total_variation(t).sum(), z.detach())
    assert torch.allclose(g, fd, atol=1e-8)


def _linear_unit(d: int = 9, seed: int = 0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, 3)).double()


def test_visualize_linear_unit_with_l2_reaches_the_closed_form():
    """max_x w.x + b - l2 |x|^2 is attained at x = w / (2 l2)."""
    model = _linear_unit()
    x = ds.visualize_feature(model, 1, (2, 1, 3, 3), steps=400, lr=0.05, l2=0.5,
                             generator=torch.Generator().manual_seed(0))
    w = model[1].weight[1].detach()
    assert torch.allclose(x.reshape(2, 9), (w / (2 * 0.5)).expand(2, 9), atol=1e-5)


def test_visualize_linear_unit_in_a_box_reaches_the_corner():
    model = _linear_unit(seed=1)
    x = ds.visualize_feature(model, 2, (1, 3, 3), steps=200, lr=0.05, bounds=(0.0, 1.0))
    w = model[1].weight[2].detach()
    assert torch.equal(x.reshape(9), (w > 0).double())


def test_visualize_raises_the_objective_and_respects_constraints():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 4)).double()
    g = torch.Generator().manual_seed(0)
    init = torch.rand(3, 1, 4, 4, generator=g, dtype=D)
    before = model(init)[:, 0]
    x = ds.visualize_feature(model, 0, (3, 1, 4, 4), steps=50, lr=0.05, l2=0.01, tv=0.01, jitter=1,
                             bounds=(0.0, 1.0), init=init, generator=g)
    assert (model(x)[:, 0] > before).all()
    assert x.min() >= 0.0 and x.max() <= 1.0
    # stronger penalties give smaller / smoother images
    plain = ds.visualize_feature(model, 0, (3, 1, 4, 4), steps=100, lr=0.05, init=init)
    smooth = ds.visualize_feature(model, 0, (3, 1, 4, 4), steps=100, lr=0.05, tv=1.0, init=init)
    small = ds.visualize_feature(model, 0, (3, 1, 4, 4), steps=100, lr=0.05, l2=1.0, init=init)
    assert ds.total_variation(smooth).sum() < ds.total_variation(plain).sum()
    assert small.norm() < plain.norm()
    # a callable objective: the same as the unit index
    same = ds.visualize_feature(model, lambda out: out[:, 0], (3, 1, 4, 4), steps=100, lr=0.05, init=init)
    assert torch.allclose(same, plain)


def test_visualize_default_start_and_dtype():
    model = _linear_unit().float()
    x = ds.visualize_feature(model, 0, (2, 1, 3, 3), steps=1, lr=1e-6, bounds=(0.0, 2.0),
                             generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and (x - 1.0).abs().max() < 0.1  # noise around the box centre
    f = lambda z: z.reshape(len(z), -1)  # noqa: E731  (a plain function, no parameters)
    y = ds.visualize_feature(f, 4, (1, 3, 3), steps=20, lr=0.1)
    assert y.dtype == torch.float32 and y.reshape(-1)[4] > 1.0


def test_multifaceted_init_finds_cluster_means():
    """Three blobs of 'images'; the objective (pixel sum) ranks the two far blobs on top."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([0.0, 5.0, 10.0], dtype=D)
    x = torch.cat([c + 0.1 * torch.randn(20 + 5 * i, 1, 2, 2, generator=g, dtype=D) for i, c in enumerate(centres)])
    score = lambda z: z.reshape(len(z), -1)  # noqa: E731: output unit 0 is the first pixel
    facets = ds.multifaceted_init(score, lambda out: out.sum(1), x, 2, top=25 + 30, generator=g)
    top = x[x.reshape(len(x), -1).sum(1).argsort(descending=True)[:55]]
    big, small = top[top.mean((1, 2, 3)) > 7.5], top[top.mean((1, 2, 3)) < 7.5]
    assert facets.shape == (2, 1, 2, 2)
    assert torch.allclose(facets[0], big.mean(0)) and torch.allclose(facets[1], small.mean(0))  # largest first


def test_multifaceted_init_agrees_with_sklearn_kmeans():
    from sklearn.cluster import KMeans

    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], dtype=D)
    pts = torch.cat([c + 0.3 * torch.randn(15, 2, generator=g, dtype=D) for c in centres])
    ident = lambda z: z  # noqa: E731
    ours = ds.multifaceted_init(ident, lambda out: torch.zeros(len(out), dtype=D), pts, 3, top=45,
                                features=ident, generator=g)
    km = KMeans(3, n_init=5, random_state=0).fit(pts.numpy())
    theirs = torch.tensor(km.cluster_centers_, dtype=D)
    dist = torch.cdist(ours, theirs)
    assert dist.min(dim=1).values.max() < 1e-10


# ---------------------------------------------------------------- bad input

def test_errors():
    x, y = _toy()
    make = _make()
    model = make()
    g = [torch.ones(2, 2, dtype=D)]
    with pytest.raises(TypeError, match="grads_a must be a non-empty list"):
        ds.gradient_match_distance([], g)
    with pytest.raises(ValueError, match="as many layers"):
        ds.gradient_match_distance(g, g + g)
    with pytest.raises(ValueError, match=r"grads_b\[0\] must have the shape"):
        ds.gradient_match_distance(g, [torch.ones(2, 3, dtype=D)])
    with pytest.raises(TypeError, match=r"grads_b\[0\] must have grads_a\[0\]'s dtype"):
        ds.gradient_match_distance(g, [torch.ones(2, 2)])
    with pytest.raises(ValueError, match=r"grads_a\[0\] must be finite"):
        ds.gradient_match_distance([torch.tensor([math.nan])], [torch.tensor([1.0])])
    with pytest.raises(TypeError, match="rowwise must be a bool"):
        ds.gradient_match_distance(g, g, rowwise=1)
    with pytest.raises(TypeError, match="y_syn must hold int64"):
        ds.gradient_matching_loss(model, x, y.float(), x, y)
    with pytest.raises(ValueError, match="y_real has no example of class 1"):
        ds.gradient_matching_loss(model, x, y, x[y == 0], y[y == 0])
    with pytest.raises(ValueError, match="x_real must hold images of x_syn's shape"):
        ds.gradient_matching_loss(model, x, y, x[:, :2], y)
    with pytest.raises(ValueError, match="model's parameters must be"):
        ds.gradient_matching_loss(model.float(), x, y, x, y)
    with pytest.raises(ValueError, match="x_syn must be finite"):
        ds.gradient_matching_loss(make(), x * math.inf, y, x, y)
    with pytest.raises(ValueError, match="model must return logits of shape"):
        ds.gradient_matching_loss(make(), x, y + 5, x, y + 5)
    with pytest.raises(ValueError, match="images_per_class=13 but class 0 has only 12"):
        ds.random_subset(x, y, 13)
    with pytest.raises(TypeError, match="make_model must return a torch.nn.Module"):
        ds.condense(lambda: "net", x, y, 1, generator=torch.Generator())
    with pytest.raises(TypeError, match="make_model must be callable"):
        ds.condense(model, x, y, 1) if not callable(model) else ds.condense("net", x, y, 1)
    with pytest.raises(ValueError, match="init must be one of"):
        ds.condense(make, x, y, 1, init="zeros")
    with pytest.raises(ValueError, match="momentum must be in"):
        ds.condense(make, x, y, 1, momentum=1.0)
    with pytest.raises(ValueError, match="outer_steps must be >= 1"):
        ds.condense(make, x, y, 1, outer_steps=0)
    with pytest.raises(ValueError, match="lr_images must be a positive"):
        ds.condense(make, x, y, 1, lr_images=-0.1)
    with pytest.raises(ValueError, match="diverged|non-finite|not finite"):
        ds.condense(lambda: nn.Linear(3, 2).double(), x, y, 1, outer_steps=2, inner_steps=3, lr_images=1e308,
                    momentum=0.0, generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="seeds must be a non-empty sequence"):
        ds.train_and_evaluate(make, x, y, x, y, seeds=())
    with pytest.raises(TypeError, match="x_test must have x's dtype"):
        ds.train_and_evaluate(make, x, y, x.float(), y)
    with pytest.raises(ValueError, match="diverged|non-finite"):
        ds.train_and_evaluate(lambda: nn.Linear(3, 2).double(), x * 1e150, y, x, y, seeds=(0,), steps=20, lr=1e150)
    with pytest.raises(ValueError, match="x must be a non-empty tensor with at least 3"):
        ds.total_variation(torch.ones(2, 3))
    with pytest.raises(ValueError, match="shape must be a tuple of at least 3"):
        ds.visualize_feature(model, 0, (2, 3))
    with pytest.raises(ValueError, match="objective=7 but the model has 2 output units"):
        ds.visualize_feature(lambda z: z.reshape(len(z), -1)[:, :2], 7, (1, 2, 2))
    with pytest.raises(TypeError, match="objective must be an output-unit index"):
        ds.visualize_feature(model, True, (1, 2, 2))
    with pytest.raises(ValueError, match="objective must return shape"):
        ds.visualize_feature(lambda z: z, lambda out: out.sum(), (1, 2, 2))
    with pytest.raises(ValueError, match="objective is not finite"):
        ds.visualize_feature(lambda z: z.reshape(1, -1) * math.nan, 0, (1, 2, 2))
    with pytest.raises(ValueError, match="bounds must have low < high"):
        ds.visualize_feature(lambda z: z.reshape(1, -1), 0, (1, 2, 2), bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="l2 and tv must be >= 0"):
        ds.visualize_feature(lambda z: z.reshape(1, -1), 0, (1, 2, 2), tv=-1.0)
    with pytest.raises(ValueError, match="init must have shape"):
        ds.visualize_feature(lambda z: z.reshape(1, -1), 0, (1, 2, 2), init=torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="k=5 facets need at least k top images"):
        ds.multifaceted_init(lambda z: z, lambda out: out.sum(1), x, 5, top=4)
    with pytest.raises(ValueError, match="features must return a floating"):
        ds.multifaceted_init(lambda z: z, lambda out: out.sum(1), x, 2, features=lambda z: z.sum(1))
