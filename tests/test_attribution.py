"""Tests of lib/attribution.py against closed forms, torch.func, scipy and brute force."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from lib import attribution as at

D = torch.float64
RULES = ["trapezoid", "left", "right", "midpoint"]


def _linear(d: int = 6, c: int = 3, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(d, c).to(D).eval()


def _powers(x: torch.Tensor) -> torch.Tensor:
    """Logits (sum x_i^2, sum x_i^3) per example: closed-form gradients 2x and 3x^2."""
    flat = x.reshape(x.shape[0], -1)
    return torch.stack([(flat**2).sum(1), (flat**3).sum(1)], 1)


def _mlp(seed: int = 0, act=torch.nn.Tanh, d: int = 5) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, 16), act(), torch.nn.Linear(16, 16), act(),
                               torch.nn.Linear(16, 4)).to(D).eval()


def _x(shape, seed=1):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=D)


# ------------------------------------------------------------------ linear model: exact answers

@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("steps", [1, 3, 50])
def test_ig_of_linear_model_is_exact(rule, steps):
    net = _linear()
    x, base = _x((4, 6)), _x((4, 6), seed=2)
    w = net.weight.detach()
    for target in (0, 2, torch.tensor([0, 1, 2, 1])):
        c = torch.full((4,), target) if isinstance(target, int) else target
        ig = at.integrated_gradients(net, x, base, target, steps, rule=rule)
        torch.testing.assert_close(ig, (x - base) * w[c], atol=1e-12, rtol=0)
        comp = at.completeness(net, x, base, target, ig)
        torch.testing.assert_close(comp.error, torch.zeros(4, dtype=D), atol=1e-12, rtol=0)


def test_gradients_of_linear_model():
    net = _linear()
    x = _x((4, 6))
    w = net.weight.detach()
    torch.testing.assert_close(at.input_gradient(net, x, 1), w[1].expand(4, 6), atol=1e-14, rtol=0)
    torch.testing.assert_close(at.gradient_x_input(net, x, 2), x * w[2], atol=1e-14, rtol=0)
    # SmoothGrad of a linear model: the gradient is constant, so any noise gives w exactly
    sg = at.smoothgrad(net, x, 0, sigma=0.7, n_samples=5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sg, w[0].expand(4, 6), atol=1e-14, rtol=0)
    # gradient x input is IG with a zero baseline for a linear score: complete
    comp = at.completeness(net, x, None, 2, at.gradient_x_input(net, x, 2))
    torch.testing.assert_close(comp.attribution_sum, x @ w[2], atol=1e-12, rtol=0)
    torch.testing.assert_close(comp.output_difference, x @ w[2], atol=1e-12, rtol=0)


# ------------------------------------------------------------------ f = sum x_i^2 and sum x_i^3

def test_gradients_of_powers():
    x = _x((3, 2, 4))
    torch.testing.assert_close(at.input_gradient(_powers, x, 0), 2 * x, atol=1e-14, rtol=0)
    torch.testing.assert_close(at.input_gradient(_powers, x, 1), 3 * x**2, atol=1e-14, rtol=0)
    torch.testing.assert_close(at.gradient_x_input(_powers, x, 0), 2 * x**2, atol=1e-14, rtol=0)


@pytest.mark.parametrize("steps", [1, 2, 7, 40])
def test_ig_of_powers_closed_forms(steps):
    # zero baseline: grad of sum x^2 at a x is 2 a x, so IG_i = x_i^2 * (2 * rule applied to a on [0, 1]);
    # grad of sum x^3 is 3 a^2 x^2: IG_i = x_i^3 * (rule applied to 3 a^2).
    x = _x((3, 5))
    m = steps
    square = {"trapezoid": 1.0, "midpoint": 1.0, "left": 1 - 1 / m, "right": 1 + 1 / m}
    cube = {"trapezoid": 1 + 1 / (2 * m**2), "midpoint": 1 - 1 / (4 * m**2),
            "left": (m - 1) * (2 * m - 1) / (2 * m**2), "right": (m + 1) * (2 * m + 1) / (2 * m**2)}
    for rule in RULES:
        ig2 = at.integrated_gradients(_powers, x, None, 0, steps, rule=rule)
        torch.testing.assert_close(ig2, x**2 * square[rule], atol=1e-12, rtol=0)
        ig3 = at.integrated_gradients(_powers, x, None, 1, steps, rule=rule)
        torch.testing.assert_close(ig3, x**3 * cube[rule], atol=1e-12, rtol=0)
    # with a nonzero baseline b, IG of sum x^2 (exact rules) is (x - b) * (x + b)
    b = _x((5,), seed=3)
    torch.testing.assert_close(at.integrated_gradients(_powers, x, b, 0, steps), (x - b) * (x + b),
                               atol=1e-12, rtol=0)


def test_smoothgrad_of_cube_matches_expectation():
    # E[3 (x + eps)^2] = 3 x^2 + 3 sigma^2
    x = _x((2, 3))
    sigma = 0.5
    sg = at.smoothgrad(_powers, x, 1, sigma, n_samples=4000, generator=torch.Generator().manual_seed(0),
                       batch_size=1000)
    torch.testing.assert_close(sg, 3 * x**2 + 3 * sigma**2, atol=0.1, rtol=0)


def test_smoothgrad_with_zero_sigma_is_the_input_gradient():
    net = _mlp()
    x = _x((4, 5))
    ref = at.input_gradient(net, x, 3)
    assert torch.equal(at.smoothgrad(net, x, 3, 0.0, n_samples=7), ref)
    assert torch.equal(at.smoothgrad(net, x, 3, 0, n_samples=1, generator=torch.Generator()), ref)


def test_smoothgrad_is_reproducible_and_chunking_does_not_change_it():
    net = _mlp()
    x = _x((3, 5))
    a = at.smoothgrad(net, x, 1, 0.3, 12, generator=torch.Generator().manual_seed(5))
    b = at.smoothgrad(net, x, 1, 0.3, 12, generator=torch.Generator().manual_seed(5), batch_size=7)
    torch.testing.assert_close(a, b, atol=1e-14, rtol=0)
    c = at.smoothgrad(net, x, 1, 0.3, 12, generator=torch.Generator().manual_seed(6))
    assert not torch.allclose(a, c)
    # brute force: the same draws, one noisy copy at a time
    g = torch.Generator().manual_seed(5)
    eps = torch.randn((12, 3, 5), generator=g, dtype=D)
    ref = torch.stack([at.input_gradient(net, x + 0.3 * e, 1) for e in eps]).mean(0)
    torch.testing.assert_close(a, ref, atol=1e-12, rtol=0)


# ------------------------------------------------------------------ against torch.func and brute force

def test_input_gradient_matches_torch_func():
    net = _mlp(act=torch.nn.ReLU)
    x = _x((6, 5))
    target = torch.tensor([0, 1, 2, 3, 0, 1])
    ref = torch.stack([torch.func.grad(lambda v, c=c: net(v[None])[0, c])(x[i]) for i, c in enumerate(target)])
    torch.testing.assert_close(at.input_gradient(net, x, target), ref, atol=1e-12, rtol=0)


def test_ig_matches_a_per_point_loop_and_chunks():
    net = _mlp()
    x, base = _x((3, 5)), _x((3, 5), seed=4)
    steps = 9
    ref = torch.zeros_like(x)
    for k in range(steps + 1):
        w = (0.5 if k in (0, steps) else 1.0) / steps
        point = base + (k / steps) * (x - base)
        ref += w * torch.stack([torch.func.grad(lambda v: net(v[None])[0, 2])(p) for p in point])
    ref = (x - base) * ref
    for batch_size in (None, 1, 4, 10, 1000):
        ig = at.integrated_gradients(net, x, base, 2, steps, batch_size=batch_size)
        torch.testing.assert_close(ig, ref, atol=1e-12, rtol=0)


def test_completeness_error_falls_with_steps():
    # smooth model: trapezoid and midpoint errors fall like steps^-2, left/right sums like steps^-1
    net = _mlp(act=torch.nn.Tanh)
    x = 2 * _x((8, 5))
    errors = {rule: [] for rule in RULES}
    for steps in (8, 16, 32, 64):
        for rule in RULES:
            ig = at.integrated_gradients(net, x, None, 1, steps, rule=rule)
            errors[rule].append(at.completeness(net, x, None, 1, ig).error.sum().item())
    for rule, order in (("trapezoid", 2), ("midpoint", 2), ("left", 1), ("right", 1)):
        e = errors[rule]
        assert all(a > b for a, b in zip(e, e[1:])), (rule, e)
        slope = math.log2(e[-2] / e[-1])
        assert abs(slope - order) < 0.25, (rule, slope, e)


def test_batch_rows_are_independent_and_target_forms_agree():
    net = _mlp()
    x = _x((4, 5))
    ig_batch = at.integrated_gradients(net, x, None, torch.tensor([1, 1, 1, 1]), 16)
    ig_int = at.integrated_gradients(net, x, None, 1, 16)
    ig_single = torch.cat([at.integrated_gradients(net, x[i:i + 1], None, 1, 16) for i in range(4)])
    torch.testing.assert_close(ig_batch, ig_int, atol=0, rtol=0)
    torch.testing.assert_close(ig_batch, ig_single, atol=1e-12, rtol=0)
    # a baseline of one example's shape is shared by the batch
    b = _x((5,), seed=7)
    torch.testing.assert_close(at.integrated_gradients(net, x, b, 1, 16),
                               at.integrated_gradients(net, x, b.expand(4, 5).clone(), 1, 16), atol=0, rtol=0)


def test_methods_leave_parameters_and_grad_mode_alone():
    net = _mlp()
    x = _x((2, 5))
    with torch.no_grad():  # the methods switch gradients on themselves
        g = at.input_gradient(net, x, 0)
        ig = at.integrated_gradients(net, x, None, 0, 4)
    assert g.abs().sum() > 0 and ig.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())
    assert not g.requires_grad and not ig.requires_grad
    x.requires_grad_(True)
    at.integrated_gradients(net, x, None, 0, 4)
    assert x.grad is None


def test_constant_and_float32_models():
    const = lambda x: torch.ones(x.shape[0], 3, dtype=x.dtype)  # noqa: E731
    x = _x((2, 4))
    assert torch.equal(at.input_gradient(const, x, 1), torch.zeros_like(x))
    assert torch.equal(at.integrated_gradients(const, x, None, 1, 5), torch.zeros_like(x))
    net = _mlp().float()
    xf = x[:, :4].float().repeat(1, 2)[:, :5]
    out = at.integrated_gradients(net, xf, None, 0, 8)
    assert out.dtype == torch.float32 and out.shape == xf.shape


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 20), st.sampled_from(RULES), st.integers(0, 2**20))
def test_property_ig_linear_any_shape(batch, d, steps, rule, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(2, d, generator=g, dtype=D)
    model = lambda x: x.reshape(x.shape[0], -1) @ w.T  # noqa: E731
    x, b = torch.randn(batch, d, generator=g, dtype=D), torch.randn(batch, d, generator=g, dtype=D)
    ig = at.integrated_gradients(model, x, b, 1, steps, rule=rule)
    torch.testing.assert_close(ig, (x - b) * w[1], atol=1e-11, rtol=0)


# ------------------------------------------------------------------ comparing maps

def test_attribution_mass():
    a = torch.tensor([[[1.0, -3.0], [0.0, 4.0]], [[2.0, 2.0], [2.0, 2.0]]])
    mask = torch.tensor([[True, False], [False, True]])
    torch.testing.assert_close(at.attribution_mass(a, mask), torch.tensor([5 / 8, 0.5]))
    full = mask.expand(2, 2, 2).clone()
    torch.testing.assert_close(at.attribution_mass(a, full), at.attribution_mass(a, mask))
    assert at.attribution_mass(a.half(), mask).dtype == torch.float32
    torch.testing.assert_close(at.attribution_mass(a.double(), ~mask), torch.tensor([3 / 8, 0.5], dtype=D))


def test_rank_correlation_matches_scipy():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 3, 4, generator=g, dtype=D)
    b = a + 0.5 * torch.randn(5, 3, 4, generator=g, dtype=D)
    b[0] = torch.round(b[0])  # ties
    a[1, 0] = 0.0  # ties in a
    ours = at.rank_correlation(a, b)
    ref = [stats.spearmanr(a[i].flatten().numpy(), b[i].flatten().numpy())[0] for i in range(5)]
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12)
    torch.testing.assert_close(at.rank_correlation(a, a.exp()), torch.ones(5, dtype=D))
    torch.testing.assert_close(at.rank_correlation(a, -a), -torch.ones(5, dtype=D))


# ------------------------------------------------------------------ bad input

def test_bad_model_and_outputs():
    x = _x((2, 3))
    with pytest.raises(TypeError, match="model must be callable"):
        at.input_gradient("net", x, 0)
    with pytest.raises(ValueError, match=r"model must return logits of shape \(N, C\)"):
        at.input_gradient(lambda v: v.sum(1), x, 0)
    with pytest.raises(ValueError, match=r"model must return logits of shape \(N, C\) for N = 2"):
        at.input_gradient(lambda v: v[:1], x, 0)
    with pytest.raises(TypeError, match="model must return a floating tensor"):
        at.input_gradient(lambda v: [1.0], x, 0)
    with pytest.raises(TypeError, match="model must return a floating tensor"):
        at.input_gradient(lambda v: (v > 0).long(), x, 0)
    with pytest.raises(ValueError, match="model returned a non-finite logit"):
        at.integrated_gradients(lambda v: v * math.nan, x, None, 0, 3)
    with pytest.raises(ValueError, match="gradient of the model's target logit is not finite"):
        at.input_gradient(lambda v: v.abs().sqrt(), torch.zeros(2, 3, dtype=D), 0)
    with pytest.raises(ValueError, match="target must be a class index below C = 3"):
        at.integrated_gradients(lambda v: v, x, None, 3, 3)


def test_bad_x_target_baseline():
    net = _linear(3)
    x = _x((2, 3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        at.input_gradient(net, [[1.0, 2.0, 3.0]], 0)
    with pytest.raises(TypeError, match="x must have a real floating dtype"):
        at.input_gradient(net, torch.ones(2, 3, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="x must be finite"):
        at.input_gradient(net, torch.tensor([[1.0, math.nan, 0.0]], dtype=D), 0)
    with pytest.raises(ValueError, match="x must be a batch"):
        at.input_gradient(net, torch.tensor(1.0, dtype=D), 0)
    with pytest.raises(ValueError, match="x must have at least one element"):
        at.input_gradient(net, torch.zeros(0, 3, dtype=D), 0)
    with pytest.raises(TypeError, match="target must be an int"):
        at.input_gradient(net, x, 1.0)
    with pytest.raises(TypeError, match="target must be an int or an integer tensor"):
        at.input_gradient(net, x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target must be an int or have shape \(B,\) = \(2,\)"):
        at.input_gradient(net, x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="target must be >= 0"):
        at.input_gradient(net, x, -1)
    with pytest.raises(ValueError, match="target must hold class indices >= 0"):
        at.input_gradient(net, x, torch.tensor([0, -1]))
    with pytest.raises(ValueError, match=r"baseline must have the shape of x \(2, 3\) or of one example \(3,\)"):
        at.integrated_gradients(net, x, torch.zeros(2, dtype=D), 0, 4)
    with pytest.raises(TypeError, match="baseline must be None or a floating torch.Tensor"):
        at.integrated_gradients(net, x, 0.0, 0, 4)
    with pytest.raises(ValueError, match="baseline must be finite"):
        at.integrated_gradients(net, x, torch.full((3,), math.inf, dtype=D), 0, 4)
    with pytest.raises(ValueError, match="x - baseline overflows"):
        at.integrated_gradients(net, torch.full((1, 3), 3e38), torch.full((3,), -3e38), 0, 4)


def test_bad_numbers():
    net = _linear(3)
    x = _x((2, 3))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        at.integrated_gradients(net, x, None, 0, 0)
    with pytest.raises(TypeError, match="steps must be an int"):
        at.integrated_gradients(net, x, None, 0, 10.0)
    with pytest.raises(ValueError, match="rule must be one of"):
        at.integrated_gradients(net, x, None, 0, 10, rule="simpson")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        at.integrated_gradients(net, x, None, 0, 10, batch_size=0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        at.smoothgrad(net, x, 0, -0.1)
    with pytest.raises(ValueError, match="sigma must be a finite number"):
        at.smoothgrad(net, x, 0, math.nan)
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        at.smoothgrad(net, x, 0, 0.1, 0)
    with pytest.raises(TypeError, match="generator must be None or a torch.Generator"):
        at.smoothgrad(net, x, 0, 0.1, 3, generator=0)
    with pytest.raises(ValueError, match="overflows"):
        at.smoothgrad(_powers, torch.ones(1, 3), 0, 1e39, 3, generator=torch.Generator().manual_seed(0))


def test_bad_completeness_and_maps():
    net = _linear(3)
    x = _x((2, 3))
    with pytest.raises(ValueError, match=r"attributions must have the shape of x \(2, 3\)"):
        at.completeness(net, x, None, 0, torch.zeros(3, dtype=D))
    with pytest.raises(TypeError, match="attributions must be a floating torch.Tensor"):
        at.completeness(net, x, None, 0, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="attributions must be finite"):
        at.completeness(net, x, None, 0, torch.full((2, 3), math.nan, dtype=D))
    a = torch.ones(2, 2, 2)
    with pytest.raises(TypeError, match="mask must be a boolean torch.Tensor"):
        at.attribution_mass(a, torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"mask must have the shape of attributions \(2, 2, 2\)"):
        at.attribution_mass(a, torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"attributions must not be zero everywhere in a map.*\[1\]"):
        at.attribution_mass(torch.stack([torch.ones(2, 2), torch.zeros(2, 2)]), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="attributions must be a batch of maps"):
        at.attribution_mass(torch.ones(3), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="attributions must be finite"):
        at.attribution_mass(torch.full((1, 2), math.inf), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        at.rank_correlation(torch.ones(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="b has a constant map"):
        at.rank_correlation(torch.randn(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="at least two features"):
        at.rank_correlation(torch.ones(2, 1), torch.ones(2, 1))
    with pytest.raises(TypeError, match="b must have a real floating dtype"):
        at.rank_correlation(torch.ones(2, 3), torch.ones(2, 3, dtype=torch.long))
