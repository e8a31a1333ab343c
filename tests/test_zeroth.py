"""Tests of lib/zeroth.py against closed forms, exact variances and chapter 3's forward gradient."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from lib import forward
from lib import zeroth as zo

D = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _quadratic(d: int, seed: int = 0):
    """f(x) = 0.5 x^T A x + b^T x (batched), its gradient A x + b."""
    g = _gen(seed)
    m = torch.randn(d, d, generator=g, dtype=D)
    a = m @ m.T / d + torch.eye(d, dtype=D)
    b = torch.randn(d, generator=g, dtype=D)
    f = lambda X: 0.5 * ((X @ a) * X).sum(-1) + X @ b
    return f, (lambda x: a @ x + b)


def _sines(X):
    return torch.sin(X).sum(-1)


def _mean_and_se(samples: torch.Tensor):
    return samples.mean(0), samples.std(0) / math.sqrt(samples.shape[0])


# ---------------------------------------------------------------- SPSA

def test_spsa_unbiased_on_a_quadratic():
    f, grad = _quadratic(6)
    x = torch.randn(6, generator=_gen(1), dtype=D)
    est = torch.stack([zo.spsa_gradient(f, x, 0.1, generator=_gen(s), batched=True) for s in range(4000)])
    mean, se = _mean_and_se(est)
    assert ((mean - grad(x)).abs() < 5 * se).all(), (mean, grad(x), se)


def test_spsa_does_not_depend_on_c_for_a_quadratic():
    # the central difference along Delta is exact on a quadratic: no O(c^2) bias at all
    f, _ = _quadratic(5, seed=2)
    x = torch.randn(5, generator=_gen(3), dtype=D)
    small = zo.spsa_gradient(f, x, 1e-3, n_samples=7, generator=_gen(4), batched=True)
    large = zo.spsa_gradient(f, x, 10.0, n_samples=7, generator=_gen(4), batched=True)
    assert torch.allclose(small, large, rtol=1e-6, atol=1e-8)


def test_spsa_exact_on_a_linear_function_of_one_variable():
    # n = 1: Delta^2 = 1, so every single sample is the exact slope
    for x0 in (-2.0, 0.0, 3.5):
        x = torch.tensor([x0], dtype=D)
        g = zo.spsa_gradient(lambda z: 3.0 * z.sum() - 1.0, x, 0.7, generator=_gen(0))
        assert torch.allclose(g, torch.tensor([3.0], dtype=D), rtol=1e-14)


def test_spsa_linear_function_is_delta_delta_transpose_a():
    # for f = a.x every sample is Delta (Delta . a): its mean over all 2^d sign vectors is a
    a = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    est = zo.spsa_gradient(lambda X: X @ a, torch.zeros(3, dtype=D), 0.3, n_samples=1,
                           generator=_gen(5), batched=True)
    # each entry of one sample is +-(Delta . a), and Delta . a takes one of the 2^d values
    signs = torch.tensor([[s0, s1, s2] for s0 in (-1, 1) for s1 in (-1, 1) for s2 in (-1, 1)], dtype=D)
    assert any(torch.allclose(est, s * (s @ a)) for s in signs)
    assert torch.allclose((signs * (signs @ a)[:, None]).mean(0), a)


def test_spsa_mean_on_sines_is_the_sinc_damped_gradient():
    # E over Delta of the central difference of sum sin(x_j) along Delta, times Delta_i:
    # cos(x_i) sin(c) / c. Distinguishable from cos(x_i) for c = 1.
    x = torch.randn(4, generator=_gen(6), dtype=D)
    c = 1.0
    est = torch.stack([zo.spsa_gradient(_sines, x, c, n_samples=50, generator=_gen(100 + s), batched=True)
                       for s in range(200)])
    mean, se = _mean_and_se(est)
    expected = torch.cos(x) * math.sin(c) / c
    assert ((mean - expected).abs() < 5 * se).all()
    assert ((mean - torch.cos(x)).abs() > 5 * se).any()


@pytest.mark.parametrize("n", [1, 4])
def test_spsa_variance_matches_the_closed_form(n):
    # a linear f: per sample, Var_i = ||a||^2 - a_i^2, total (d - 1) ||a||^2, divided by n
    d = 8
    a = torch.randn(d, generator=_gen(7), dtype=D)
    x = torch.randn(d, generator=_gen(8), dtype=D)
    g = _gen(9)
    est = torch.stack([zo.spsa_gradient(lambda X: X @ a + 2.0, x, 0.5, n_samples=n, generator=g, batched=True)
                       for _ in range(3000)])
    total_var = est.var(0).sum().item()
    assert total_var == pytest.approx((d - 1) * (a @ a).item() / n, rel=0.1)


def test_spsa_batched_and_unbatched_agree():
    x = torch.randn(2, 3, generator=_gen(10), dtype=D)
    f_one = lambda z: (z**3).sum() + z[0, 1]
    f_batch = lambda Z: (Z**3).sum((1, 2)) + Z[:, 0, 1]
    g1 = zo.spsa_gradient(f_one, x, 1e-2, n_samples=5, generator=_gen(11))
    g2 = zo.spsa_gradient(f_batch, x, 1e-2, n_samples=5, generator=_gen(11), batched=True)
    assert g1.shape == x.shape and torch.allclose(g1, g2, rtol=1e-12, atol=1e-12)


def test_spsa_float32_and_shapes():
    x = torch.randn(3, 2, generator=_gen(12))
    g = zo.spsa_gradient(lambda z: (z * z).sum(), x, 1e-2, n_samples=3, generator=_gen(0))
    assert g.shape == x.shape and g.dtype == torch.float32
    x0 = torch.tensor(1.5, dtype=D)  # a 0-dim point
    assert torch.allclose(zo.spsa_gradient(lambda z: z**2, x0, 1e-3, generator=_gen(0)), 2 * x0)


# ---------------------------------------------------------------- ES

@pytest.mark.parametrize("antithetic", [True, False])
def test_es_unbiased_for_the_gradient_of_a_quadratic(antithetic):
    # for a quadratic, f_sigma = f + sigma^2 tr(A) / 2: the smoothed gradient is the gradient
    f, grad = _quadratic(5, seed=13)
    x = torch.randn(5, generator=_gen(14), dtype=D)
    est = torch.stack([zo.es_gradient(f, x, 0.7, 20, antithetic=antithetic, generator=_gen(200 + s),
                                      batched=True) for s in range(1000)])
    mean, se = _mean_and_se(est)
    assert ((mean - grad(x)).abs() < 5 * se).all(), (mean, grad(x), se)


@pytest.mark.parametrize("antithetic", [True, False])
def test_es_unbiased_for_the_smoothed_gradient_of_sines(antithetic):
    # f = sum sin x_i: f_sigma = exp(-sigma^2/2) f, so the target is exp(-sigma^2/2) cos(x), not cos(x)
    sigma = 1.0
    x = torch.randn(4, generator=_gen(15), dtype=D)
    est = torch.stack([zo.es_gradient(_sines, x, sigma, 50, antithetic=antithetic, generator=_gen(300 + s),
                                      batched=True) for s in range(400)])
    mean, se = _mean_and_se(est)
    smoothed = math.exp(-sigma**2 / 2) * torch.cos(x)
    assert ((mean - smoothed).abs() < 5 * se).all()
    assert ((mean - torch.cos(x)).abs() > 5 * se).any()


def test_es_variance_closed_forms_and_the_benefit_of_mirroring():
    # linear f = a.x + b0. Antithetic: each pair gives (a . eps) eps, total variance (d + 1)||a||^2.
    # Single points: (f(x) + sigma a.eps) eps / sigma adds d f(x)^2 / sigma^2.
    d, n, sigma = 6, 3, 0.5
    a = torch.randn(d, generator=_gen(16), dtype=D)
    x = torch.randn(d, generator=_gen(17), dtype=D)
    f = lambda X: X @ a + 4.0
    fx = (x @ a + 4.0).item()
    g = _gen(18)
    mirrored = torch.stack([zo.es_gradient(f, x, sigma, n, generator=g, batched=True) for _ in range(4000)])
    single = torch.stack([zo.es_gradient(f, x, sigma, n, antithetic=False, generator=g, batched=True)
                          for _ in range(4000)])
    norm2 = (a @ a).item()
    assert mirrored.var(0).sum().item() == pytest.approx((d + 1) * norm2 / n, rel=0.1)
    assert single.var(0).sum().item() == pytest.approx((d * fx**2 / sigma**2 + (d + 1) * norm2) / n, rel=0.1)


def test_es_tends_to_the_forward_gradient_as_sigma_vanishes():
    # chapter 3: forward_gradient = (grad f . v) v with v ~ N(0, I), the sigma -> 0 limit of a mirrored pair
    f = lambda z: (torch.sin(z) * z**2).sum()
    x = torch.randn(7, generator=_gen(19), dtype=D)
    es = zo.es_gradient(f, x, 1e-6, 1, generator=_gen(20))
    fg = forward.forward_gradient(f, x, 1, generator=_gen(20))
    assert torch.allclose(es, fg, rtol=1e-6, atol=1e-8)


def test_es_error_halves_when_samples_quadruple():
    f, grad = _quadratic(4, seed=21)
    x = torch.randn(4, generator=_gen(22), dtype=D)
    g = _gen(23)
    rms = []
    for n in (16, 64):
        est = torch.stack([zo.es_gradient(f, x, 0.3, n, generator=g, batched=True) for _ in range(1500)])
        rms.append(((est - grad(x)) ** 2).sum(1).mean().sqrt().item())
    assert rms[1] / rms[0] == pytest.approx(0.5, rel=0.1)


def test_es_batched_and_unbatched_agree():
    x = torch.randn(3, generator=_gen(24), dtype=D)
    for antithetic in (True, False):
        g1 = zo.es_gradient(lambda z: _sines(z), x, 0.2, 6, antithetic, generator=_gen(25))
        g2 = zo.es_gradient(_sines, x, 0.2, 6, antithetic, generator=_gen(25), batched=True)
        assert torch.allclose(g1, g2, rtol=1e-12, atol=1e-12)


def test_es_gradient_of_a_non_differentiable_function_exists():
    # f = |x| in 1-D: f_sigma'(0) = 0 and f_sigma'(x) = 2 Phi(x / sigma) - 1
    sigma, x0 = 0.5, 0.3
    est = zo.es_gradient(lambda X: X.abs().sum(-1), torch.tensor([x0], dtype=D), sigma, 200000,
                         generator=_gen(26), batched=True)
    expected = math.erf(x0 / (sigma * math.sqrt(2)))
    assert est.item() == pytest.approx(expected, abs=0.01)


# ---------------------------------------------------------------- centered ranks

def test_centered_ranks_match_scipy_with_ties():
    v = torch.tensor([3.0, 1.0, 1.0, 2.0, 5.0, 5.0, 5.0, -1.0], dtype=D)
    ref = (rankdata(v.numpy(), method="average") - 1) / (len(v) - 1) - 0.5
    assert np.allclose(zo.centered_ranks(v).numpy(), ref)
    assert zo.centered_ranks(torch.tensor([2.0])).item() == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30))
def test_centered_ranks_properties(vals):
    v = torch.tensor(vals, dtype=D)
    r = zo.centered_ranks(v)
    assert r.shape == v.shape and r.min() >= -0.5 and r.max() <= 0.5
    assert abs(r.sum().item()) < 1e-9                      # centred
    assert torch.equal(zo.centered_ranks(torch.where(v > 0, 4 * v, 2 * v)), r)  # an exact increasing map
    order = v.argsort()
    assert (r[order].diff() >= 0).all()                    # order preserved


# ---------------------------------------------------------------- ES loop

def test_es_minimize_is_the_loop_of_es_gradient_steps():
    f, _ = _quadratic(3, seed=27)
    x0 = torch.ones(3, dtype=D)
    x, hist = zo.es_minimize(f, x0, 0.1, 0.05, 20, 4, generator=_gen(28), batched=True)
    g = _gen(28)
    y = x0.clone()
    for _ in range(20):
        y = y - 0.05 * zo.es_gradient(f, y, 0.1, 4, generator=g, batched=True)
    assert torch.allclose(x, y, rtol=1e-12, atol=1e-12)
    assert hist.shape == (20,) and torch.equal(x0, torch.ones(3, dtype=D))  # x0 untouched


def test_es_minimize_converges_on_a_quadratic():
    f, grad = _quadratic(4, seed=29)
    x, hist = zo.es_minimize(f, torch.full((4,), 3.0, dtype=D), 0.05, 0.1, 400, 8, generator=_gen(30),
                             batched=True)
    assert grad(x).norm() < 0.05 * grad(torch.full((4,), 3.0, dtype=D)).norm()
    assert hist[-1] < hist[0]


def test_es_minimize_with_ranks_ignores_monotone_transformations():
    f, _ = _quadratic(3, seed=31)
    x0 = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    a, _ = zo.es_minimize(f, x0, 0.2, 0.1, 30, 6, shaping=True, generator=_gen(32), batched=True)
    b, _ = zo.es_minimize(lambda X: torch.exp(f(X) / 10), x0, 0.2, 0.1, 30, 6, shaping=True,
                          generator=_gen(32), batched=True)
    assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_es_minimize_zero_steps_and_overflow():
    x, hist = zo.es_minimize(_sines, torch.zeros(2, dtype=D), 0.1, 0.1, 0, 2, batched=True)
    assert torch.equal(x, torch.zeros(2, dtype=D)) and hist.shape == (0,)
    with pytest.raises(ValueError, match="lr"):
        zo.es_minimize(lambda X: 1e300 * X.sum(-1), torch.zeros(2, dtype=D), 1.0, 1e10, 3, 2, batched=True,
                       generator=_gen(0))


# ---------------------------------------------------------------- genetic algorithm

def _sphere(X):
    return -(X**2).sum(-1)


def test_ga_elitism_never_loses_the_best():
    for seed in range(5):
        pop = 2 * torch.randn(12, 4, generator=_gen(seed), dtype=D)
        pop_out, fit, hist = zo.genetic_algorithm(_sphere, pop, 40, 4, 0.3, n_elite=1, generator=_gen(seed),
                                                  batched=True)
        assert (hist.diff() >= 0).all()
        assert hist[-1] > hist[0]
        assert torch.allclose(fit, _sphere(pop_out))          # fitness belongs to the individuals
        assert (fit.diff() <= 0).all() and fit[0] == hist[-1]  # sorted best first


def test_ga_without_elitism_can_lose_the_best():
    # a large mutation without elites: the best of a generation is a fresh mutant, often worse
    pop = torch.zeros(6, 2, dtype=D)
    _, _, hist = zo.genetic_algorithm(_sphere, pop, 20, 2, 1.0, n_elite=0, generator=_gen(33), batched=True)
    assert (hist.diff() < 0).any()


def test_ga_counts_evaluations_and_batches():
    calls = []

    def fitness(X):
        calls.append(X.shape[0])
        return _sphere(X)

    pop = torch.randn(10, 3, generator=_gen(34), dtype=D)
    zo.genetic_algorithm(fitness, pop, 7, 3, 0.1, n_elite=2, generator=_gen(35), batched=True)
    assert calls == [10] + [8] * 7  # N + G (N - n_elite), one call per generation
    count = [0]

    def one(z):
        count[0] += 1
        return -(z**2).sum()

    a = zo.genetic_algorithm(one, pop, 7, 3, 0.1, n_elite=2, generator=_gen(35))
    b = zo.genetic_algorithm(_sphere, pop, 7, 3, 0.1, n_elite=2, generator=_gen(35), batched=True)
    assert count[0] == 10 + 7 * 8
    assert all(torch.allclose(u, v) for u, v in zip(a, b))


def test_ga_truncation_selection_uses_only_the_best_parents():
    # one parent and a tiny mutation: after one generation everyone sits at the initial best
    pop = torch.randn(15, 3, generator=_gen(36), dtype=D)
    best = pop[_sphere(pop).argmax()]
    out, _, _ = zo.genetic_algorithm(_sphere, pop, 1, 1, 1e-9, generator=_gen(37), batched=True)
    assert (out - best).abs().max() < 1e-7


def test_ga_all_elites_and_zero_generations():
    pop = torch.randn(5, 2, generator=_gen(38), dtype=D)
    order = _sphere(pop).argsort(descending=True)
    out, fit, hist = zo.genetic_algorithm(_sphere, pop, 3, 2, 0.5, n_elite=5, batched=True)
    assert torch.equal(out, pop[order]) and hist.shape == (4,) and (hist == hist[0]).all()
    out, fit, hist = zo.genetic_algorithm(_sphere, pop, 0, 2, 0.5, batched=True)
    assert torch.equal(out, pop[order]) and hist.shape == (1,)


def test_ga_on_a_non_differentiable_fitness():
    # the number of coordinates above 1: piecewise constant, gradient zero almost everywhere
    fitness = lambda X: (X > 1.0).to(X.dtype).sum(-1)
    pop = torch.zeros(20, 6, dtype=D)
    _, fit, hist = zo.genetic_algorithm(fitness, pop, 60, 5, 0.3, generator=_gen(39), batched=True)
    assert hist[0] == 0 and hist[-1] == 6


# ---------------------------------------------------------------- bad input

def test_bad_input():
    x = torch.zeros(3, dtype=D)
    ok = lambda z: z.sum()
    with pytest.raises(TypeError, match="f must be callable"):
        zo.spsa_gradient("f", x, 0.1)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        zo.es_gradient(ok, [0.0, 1.0], 0.1, 2)
    with pytest.raises(TypeError, match="x must have a real floating dtype"):
        zo.es_gradient(ok, torch.zeros(3, dtype=torch.long), 0.1, 2)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        zo.es_gradient(ok, torch.zeros(3, dtype=torch.float16), 0.1, 2)
    with pytest.raises(ValueError, match="x must be finite"):
        zo.spsa_gradient(ok, torch.tensor([0.0, math.nan]), 0.1)
    with pytest.raises(ValueError, match="x must have at least one element"):
        zo.spsa_gradient(ok, torch.zeros(0), 0.1)
    with pytest.raises(ValueError, match="c must be a positive"):
        zo.spsa_gradient(ok, x, 0.0)
    with pytest.raises(ValueError, match="c must be a finite"):
        zo.spsa_gradient(ok, x, math.inf)
    with pytest.raises(TypeError, match="sigma must be a number"):
        zo.es_gradient(ok, x, "0.1", 2)
    with pytest.raises(ValueError, match="sigma=1e-300 is not representable"):
        zo.es_gradient(ok, x.float(), 1e-300, 2)
    with pytest.raises(ValueError, match="c=1e-20 is lost to rounding"):
        zo.spsa_gradient(ok, torch.ones(3, dtype=D), 1e-20)
    with pytest.raises(ValueError, match="sigma=1e-20 is lost to rounding"):
        zo.es_gradient(ok, torch.ones(3, dtype=D), 1e-20, 2)
    with pytest.raises(ValueError, match="overflowed"):
        zo.es_gradient(ok, x.float(), 1e38, 2, generator=_gen(0))
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        zo.es_gradient(ok, x, 0.1, 0)
    with pytest.raises(TypeError, match="n_samples must be an int"):
        zo.spsa_gradient(ok, x, 0.1, n_samples=2.0)
    with pytest.raises(TypeError, match="antithetic must be a bool"):
        zo.es_gradient(ok, x, 0.1, 2, antithetic=1)
    with pytest.raises(TypeError, match="batched must be a bool"):
        zo.es_gradient(ok, x, 0.1, 2, batched="yes")
    with pytest.raises(TypeError, match="generator must be None or a torch.Generator"):
        zo.es_gradient(ok, x, 0.1, 2, generator=0)


def test_bad_user_functions():
    x = torch.zeros(3, dtype=D)
    with pytest.raises(ValueError, match="f must return a scalar"):
        zo.es_gradient(lambda z: z, x, 0.1, 2)
    with pytest.raises(TypeError, match="f must return a torch.Tensor"):
        zo.spsa_gradient(lambda z: 1.0, x, 0.1)
    with pytest.raises(ValueError, match="f returned a non-finite value"):
        zo.es_gradient(lambda z: z.sum() * math.nan, x, 0.1, 2)
    with pytest.raises(ValueError, match=r"batched f must map a batch of 4 points to shape \(4,\)"):
        zo.es_gradient(lambda Z: Z.sum(), x, 0.1, 2, batched=True)
    with pytest.raises(ValueError, match="f returned a non-finite value"):
        zo.spsa_gradient(lambda Z: Z.sum(-1) + math.inf, x, 0.1, batched=True)
    with pytest.raises(TypeError, match="f must return a torch.Tensor"):
        zo.spsa_gradient(lambda Z: Z.sum(-1).tolist(), x, 0.1, batched=True)
    with pytest.raises(ValueError, match="too large for torch.float32"):
        zo.es_gradient(lambda Z: Z.double().sum(-1) + 1e300, x.float(), 0.1, 2, batched=True)
    with pytest.raises(ValueError, match="ES estimate overflowed"):
        zo.es_gradient(lambda Z: Z.sum(-1) + 3e38, x.float(), 1e-30, 2, antithetic=False, batched=True)
    with pytest.raises(ZeroDivisionError):  # the user's own error reaches the caller unchanged
        zo.es_gradient(lambda z: 1 / 0, x, 0.1, 2)


def test_bad_ga_and_ranks_input():
    pop = torch.zeros(4, 2, dtype=D)
    with pytest.raises(ValueError, match="population must have shape"):
        zo.genetic_algorithm(_sphere, torch.zeros(1, 2, dtype=D), 2, 1, 0.1)
    with pytest.raises(ValueError, match="population must have shape"):
        zo.genetic_algorithm(_sphere, torch.tensor(1.0, dtype=D), 2, 1, 0.1)
    with pytest.raises(ValueError, match=r"n_parents must be in \[1, 4\]"):
        zo.genetic_algorithm(_sphere, pop, 2, 5, 0.1)
    with pytest.raises(ValueError, match=r"n_elite must be in \[0, 4\]"):
        zo.genetic_algorithm(_sphere, pop, 2, 2, 0.1, n_elite=-1)
    with pytest.raises(ValueError, match="n_generations must be >= 0"):
        zo.genetic_algorithm(_sphere, pop, -1, 2, 0.1)
    with pytest.raises(TypeError, match="fitness must be callable"):
        zo.genetic_algorithm(None, pop, 2, 2, 0.1)
    with pytest.raises(ValueError, match="fitness returned a non-finite value"):
        zo.genetic_algorithm(lambda X: _sphere(X) / 0, pop, 2, 2, 0.1, batched=True)
    with pytest.raises(ValueError, match="batched fitness must map"):
        zo.genetic_algorithm(lambda X: X, pop, 2, 2, 0.1, batched=True)
    with pytest.raises(TypeError, match="values must be a torch.Tensor"):
        zo.centered_ranks([1.0, 2.0])
    with pytest.raises(ValueError, match="values must be 1-D"):
        zo.centered_ranks(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="values must be finite"):
        zo.centered_ranks(torch.tensor([1.0, math.inf]))
    with pytest.raises(TypeError, match="values must have a real floating dtype"):
        zo.centered_ranks(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="lr must be a positive"):
        zo.es_minimize(_sines, torch.zeros(2, dtype=D), 0.1, -1.0, 3, 2)
    with pytest.raises(TypeError, match="shaping must be a bool"):
        zo.es_minimize(_sines, torch.zeros(2, dtype=D), 0.1, 0.1, 3, 2, shaping=None)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="generator must live on x's device"):
            zo.es_gradient(_sines, torch.zeros(2, dtype=D, device="cuda"), 0.1, 2,
                           generator=torch.Generator())
