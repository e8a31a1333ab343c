"""Tests of lib/estimators.py: exact enumeration, torch's own samplers and autograd, closed forms."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from lib import estimators as est

D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=_gen(seed), dtype=D)


def _quadratic(k, seed=0):
    """A quadratic f(y) = y^T A y + c^T y applied row-wise: (n, *batch, k) -> (n, *batch)."""
    A, c = _rand(k, k, seed=seed), _rand(k, seed=seed + 1)
    return lambda y: torch.einsum("...i,ij,...j->...", y, A.to(y), y) + y @ c.to(y)


def _linear(k, seed=0):
    c = _rand(k, seed=seed)
    return lambda y: y @ c.to(y)


def _exact_by_autograd(f, logits):
    """E[f] = sum_i softmax(logits)_i f(e_i), differentiated by autograd: the independent reference."""
    k = logits.shape[-1]
    theta = logits.clone().requires_grad_(True)
    F_ = torch.stack([f(torch.eye(k, dtype=D)[i].expand(logits.shape)) for i in range(k)], -1)
    value = (theta.softmax(-1) * F_).sum(-1)
    (grad,) = torch.autograd.grad(value.sum(), theta)
    return value.detach(), grad


def _chi2_pvalue(counts, probs):
    n = counts.sum()
    chi = (((counts - n * probs) ** 2) / (n * probs)).sum().item()
    return stats.chi2.sf(chi, len(probs) - 1)


# ---------------------------------------------------------------- sampling and the exact gradient

def test_sample_categorical_frequencies_match_softmax():
    logits = torch.tensor([1.0, 0.5, -0.5, 0.0, -2.0], dtype=D)
    y = est.sample_categorical(logits, 40000, generator=_gen(1))
    assert y.shape == (40000, 5) and y.dtype == D
    assert torch.equal(y.sum(-1), torch.ones(40000, dtype=D)) and set(y.unique().tolist()) == {0.0, 1.0}
    assert _chi2_pvalue(y.sum(0), logits.softmax(-1)) > 1e-3


def test_sample_categorical_batch_and_generator():
    logits = _rand(2, 3, 4)
    a = est.sample_categorical(logits, 5, generator=_gen(3))
    b = est.sample_categorical(logits, 5, generator=_gen(3))
    assert a.shape == (5, 2, 3, 4) and torch.equal(a, b)
    far = torch.tensor([[0.0, 50.0, 0.0], [60.0, 0.0, 0.0]], dtype=D)  # near-deterministic problems
    assert torch.equal(est.sample_categorical(far, 3)[:, :, :].argmax(-1), torch.tensor([[1, 0]] * 3))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2), st.integers(0, 10_000))
def test_exact_gradient_matches_autograd(k, nbatch, seed):
    logits = _rand(*([2] * nbatch), k, seed=seed) * 2
    f = _quadratic(k, seed)
    value, grad = est.exact_gradient(f, logits)
    ref_value, ref_grad = _exact_by_autograd(f, logits)
    torch.testing.assert_close(value, ref_value)
    torch.testing.assert_close(grad, ref_grad)
    assert grad.shape == logits.shape and value.shape == logits.shape[:-1]


# ---------------------------------------------------------------- REINFORCE: unbiased by enumeration

def _enumerate_reinforce(f, logits, n, baseline):
    """E over all k^n sample tuples of the n-sample REINFORCE estimate, weighted by their probability."""
    k = logits.shape[-1]
    pi = logits.softmax(-1)
    total = torch.zeros_like(logits)
    for combo in itertools.product(range(k), repeat=n):
        index = torch.tensor(combo)
        grad, values = est.reinforce(f, logits, n, baseline=baseline, index=index)
        assert torch.equal(values, f(torch.eye(k, dtype=D)[index]))
        total += pi[index].prod() * grad
    return total


@pytest.mark.parametrize("baseline", [None, 0.7, torch.tensor(-1.5, dtype=D), "loo"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_reinforce_is_unbiased_by_exhaustive_enumeration(baseline, n):
    if baseline == "loo" and n == 1:
        pytest.skip("leave-one-out needs two samples")
    logits = torch.tensor([0.3, -1.0, 0.8], dtype=D)
    f = _quadratic(3, seed=5)
    expectation = _enumerate_reinforce(f, logits, n, baseline)
    torch.testing.assert_close(expectation, est.exact_gradient(f, logits)[1], rtol=0, atol=1e-12)


def test_a_sample_dependent_baseline_would_be_biased():
    # Control: using the sample's own value as "baseline" gives zero, not the gradient.
    logits, f = torch.tensor([0.3, -1.0, 0.8], dtype=D), _quadratic(3, seed=5)
    k = 3
    own = sum(logits.softmax(-1)[i] * est.reinforce(f, logits, 1, baseline=float(f(torch.eye(k, dtype=D)[i])),
                                                     index=torch.tensor([i]))[0] for i in range(k))
    assert own.abs().max() < 1e-15 and est.exact_gradient(f, logits)[1].abs().max() > 0.05


def test_reinforce_monte_carlo_mean_and_shapes():
    logits = _rand(2, 4, seed=2)
    f = _quadratic(4, seed=3)
    grad, values = est.reinforce(f, logits, 20000, generator=_gen(4))
    assert grad.shape == (2, 4) and values.shape == (20000, 2)
    # a batch of single-sample estimates: R identical problems, one sample each
    R = 20000
    per, _ = est.reinforce(f, logits[0].expand(R, 4), 1, generator=_gen(5))
    z = (per.mean(0) - est.exact_gradient(f, logits[0])[1]) / (per.var(0) / R).sqrt()
    assert z.abs().max() < 4.5, z
    # with values far from 0, the leave-one-out baseline lowers the variance (per sample)
    shifted = lambda y: f(y) + 5.0
    plain, _ = est.reinforce(shifted, logits[0].expand(R, 4), 1, generator=_gen(6))
    loo, _ = est.reinforce(shifted, logits[0].expand(R // 4, 4), 4, baseline="loo", generator=_gen(6))
    assert loo.var(0).sum() * 4 < 0.5 * plain.var(0).sum()


def test_reinforce_with_a_baseline_tensor_per_problem():
    logits, f = _rand(3, 4, seed=7), _quadratic(4, seed=8)
    b = torch.tensor([0.1, -0.2, 0.3], dtype=D)
    idx = torch.tensor([[0, 1, 2], [3, 3, 0]])
    grad, values = est.reinforce(f, logits, 2, baseline=b, index=idx)
    y = torch.eye(4, dtype=D)[idx]
    ref = ((values - b)[..., None] * (y - logits.softmax(-1))).mean(0)
    torch.testing.assert_close(grad, ref)


def test_moving_average():
    values = torch.tensor([[1.0, 2.0], [3.0, 6.0]], dtype=D)
    torch.testing.assert_close(est.moving_average(None, values), torch.tensor([2.0, 4.0], dtype=D))
    torch.testing.assert_close(est.moving_average(1.0, values, beta=0.75),
                               0.75 * torch.ones(2, dtype=D) + 0.25 * torch.tensor([2.0, 4.0], dtype=D))
    b = torch.tensor([0.0, 8.0], dtype=D)
    torch.testing.assert_close(est.moving_average(b, values, beta=0.5), torch.tensor([1.0, 6.0], dtype=D))


# ---------------------------------------------------------------- Gaussian: reparameterisation and score

def test_gaussian_reparam_is_exact_for_linear_f():
    mu, sigma = _rand(3, seed=1), torch.tensor([0.5, 1.0, 2.0], dtype=D)
    a = _rand(3, seed=2)
    g_mu, g_sigma = est.gaussian_gradient(lambda x: x @ a, mu, sigma, 7, generator=_gen(3))
    eps = torch.randn((7, 3), generator=_gen(3), dtype=D)
    torch.testing.assert_close(g_mu, a)
    torch.testing.assert_close(g_sigma, a * eps.mean(0))


@pytest.mark.parametrize("method", ["reparam", "score"])
def test_gaussian_estimators_are_unbiased_on_a_quadratic(method):
    # E[sum x^2] = sum mu^2 + sigma^2: d/dmu = 2 mu, d/dsigma = 2 sigma
    mu, sigma = torch.tensor([0.5, -1.0], dtype=D), torch.tensor([0.3, 1.2], dtype=D)
    R = 4000
    runs = [est.gaussian_gradient(lambda x: (x**2).sum(-1), mu, sigma, 10, method=method,
                                  baseline="loo" if method == "score" else None, generator=_gen(s))
            for s in range(R // 10)]
    for i, ref in enumerate((2 * mu, 2 * sigma)):
        g = torch.stack([r[i] for r in runs])
        z = (g.mean(0) - ref) / (g.var(0) / len(runs)).sqrt()
        assert z.abs().max() < 4.5, (method, i, z)


def test_gaussian_score_matches_its_formula():
    mu, sigma = _rand(2, seed=4), torch.tensor([0.7, 1.3], dtype=D)
    f = lambda x: torch.sin(x).sum(-1)
    g_mu, g_sigma = est.gaussian_gradient(f, mu, sigma, 5, method="score", baseline=0.25, generator=_gen(9))
    x = mu + sigma * torch.randn((5, 2), generator=_gen(9), dtype=D)
    w = (f(x) - 0.25)[:, None]
    torch.testing.assert_close(g_mu, (w * (x - mu) / sigma**2).mean(0))
    torch.testing.assert_close(g_sigma, (w * ((x - mu) ** 2 - sigma**2) / sigma**3).mean(0))


# ---------------------------------------------------------------- Gumbel-softmax against torch's

def test_gumbel_softmax_argmax_is_distributed_as_softmax():
    logits = torch.tensor([1.5, 0.0, -1.0, 0.5], dtype=D)
    y = est.gumbel_softmax(logits.expand(30000, 4), tau=0.7, generator=_gen(1))
    counts = torch.bincount(y.argmax(-1), minlength=4).to(D)
    assert _chi2_pvalue(counts, logits.softmax(-1)) > 1e-3
    torch.manual_seed(1)
    ref = F.gumbel_softmax(logits.expand(30000, 4), tau=0.7)
    assert _chi2_pvalue(torch.bincount(ref.argmax(-1), minlength=4).to(D), logits.softmax(-1)) > 1e-3


@pytest.mark.parametrize("tau", [0.3, 1.0, 3.0])
def test_gumbel_softmax_mean_matches_torch(tau):
    logits, R = torch.tensor([1.0, -0.5, 0.2], dtype=D), 40000
    ours = est.gumbel_softmax(logits.expand(R, 3), tau=tau, generator=_gen(2))
    torch.manual_seed(2)
    theirs = F.gumbel_softmax(logits.expand(R, 3), tau=tau)
    assert torch.allclose(ours.sum(-1), torch.ones(R, dtype=D)) and bool((ours >= 0).all())
    se = (ours.var(0) / R + theirs.var(0) / R).sqrt()
    assert ((ours.mean(0) - theirs.mean(0)).abs() / se).max() < 4.5


def test_gumbel_softmax_temperature_limits():
    logits, R = torch.tensor([1.0, -0.5, 0.2, 0.0], dtype=D), 20000
    cold = est.gumbel_softmax(logits.expand(R, 4), tau=1e-3, generator=_gen(3))
    assert (cold.max(-1).values > 0.999).float().mean() > 0.99  # nearly one-hot
    z = (cold.mean(0) - logits.softmax(-1)) / (cold.var(0) / R).sqrt()
    assert z.abs().max() < 4.5  # and its mean is the categorical mean softmax(logits)
    hot = est.gumbel_softmax(logits.expand(R, 4), tau=1e3, generator=_gen(4))
    assert (hot - 0.25).abs().max() < 0.01  # nearly uniform
    tiny = est.gumbel_softmax(logits, tau=1e-300, generator=_gen(5))  # no NaN at extreme temperatures
    assert torch.equal(tiny.sort().values, torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=D))


def test_gumbel_softmax_hard_is_one_hot_with_the_soft_gradient():
    logits = _rand(5, 4, seed=6).requires_grad_(True)
    w = _rand(5, 4, seed=7)
    soft = est.gumbel_softmax(logits, 0.5, generator=_gen(8))
    hard = est.gumbel_softmax(logits, 0.5, hard=True, generator=_gen(8))
    assert torch.equal(hard.detach(), F.one_hot(soft.argmax(-1), 4).to(D))
    (g_soft,) = torch.autograd.grad((w * soft).sum(), logits)
    (g_hard,) = torch.autograd.grad((w * hard).sum(), logits)
    torch.testing.assert_close(g_hard, g_soft)
    assert g_soft.abs().max() > 0


def test_gumbel_softmax_gradient_by_hand():
    logits, tau = _rand(3, seed=9).requires_grad_(True), 0.4
    y = est.gumbel_softmax(logits, tau, generator=_gen(10))
    u = torch.rand(3, generator=_gen(10), dtype=D)
    ref = ((logits - torch.log(-torch.log(u))) / tau).softmax(-1)
    torch.testing.assert_close(y, ref)
    w = _rand(3, seed=11)
    (g,) = torch.autograd.grad((w * y).sum(), logits)
    p = ref.detach()
    torch.testing.assert_close(g, (p * w - p * (p @ w)) / tau)


# ---------------------------------------------------------------- straight-through and ReinMax

def _enumerate_surrogate(fn, f, logits, tau):
    """E_D of the surrogate gradient d f(fn(logits, D)) / d logits, enumerating D per problem."""
    k = logits.shape[-1]
    pi = logits.softmax(-1)
    total = torch.zeros_like(logits)
    for i in range(k):
        theta = logits.clone().requires_grad_(True)
        index = torch.full(logits.shape[:-1], i)
        y = fn(theta, tau, index=index)
        assert torch.equal(y.detach(), F.one_hot(index, k).to(D))
        (g,) = torch.autograd.grad(f(y).sum(), theta)
        total += pi[..., i : i + 1] * g
    return total


def _reinmax_by_the_algorithm(logits, D_, tau):
    """ReinMax as the paper writes it, with stop-gradients (an independent reference)."""
    pi0 = logits.softmax(-1)
    pi1 = (D_ + (logits / tau).softmax(-1)) / 2
    pi1 = ((pi1.log() - logits).detach() + logits).softmax(-1)
    pi2 = 2 * pi1 - 0.5 * pi0
    return pi2 - pi2.detach() + D_


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_reinmax_matches_the_papers_algorithm(tau):
    logits = _rand(3, 5, seed=12).requires_grad_(True)
    index = torch.tensor([0, 4, 2])
    w = _rand(3, 5, seed=13)
    (g,) = torch.autograd.grad((w * est.reinmax(logits, tau, index=index)).sum(), logits)
    (ref,) = torch.autograd.grad((w * _reinmax_by_the_algorithm(logits, F.one_hot(index, 5).to(D), tau)).sum(),
                                 logits)
    torch.testing.assert_close(g, ref)


def test_straight_through_gradient_is_the_softmax_jacobian():
    logits, tau = _rand(4, seed=14).requires_grad_(True), 0.7
    w = _rand(4, seed=15)
    y = est.straight_through(logits, tau, index=torch.tensor(2))
    (g,) = torch.autograd.grad((w * y).sum(), logits)
    (ref,) = torch.autograd.grad((w * (logits / tau).softmax(-1)).sum(), logits)
    torch.testing.assert_close(g, ref)


def test_straight_through_is_exact_for_linear_f_at_tau_one():
    logits = _rand(2, 4, seed=16)
    f = _linear(4, seed=17)
    exact = est.exact_gradient(f, logits)[1]
    torch.testing.assert_close(_enumerate_surrogate(est.straight_through, f, logits, 1.0), exact)
    q = _quadratic(4, seed=18)  # but biased for a quadratic f, where ReinMax is exact
    assert (_enumerate_surrogate(est.straight_through, q, logits, 1.0) - est.exact_gradient(q, logits)[1]
            ).abs().max() > 1e-2


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_reinmax_is_exact_for_quadratic_f_at_tau_one(k, seed):
    logits = _rand(3, k, seed=seed)
    f = _quadratic(k, seed=seed + 1)
    torch.testing.assert_close(_enumerate_surrogate(est.reinmax, f, logits, 1.0), est.exact_gradient(f, logits)[1])


def test_reinmax_is_not_exact_away_from_tau_one():
    logits, f = _rand(4, seed=19), _quadratic(4, seed=20)
    err = (_enumerate_surrogate(est.reinmax, f, logits, 2.0) - est.exact_gradient(f, logits)[1]).abs().max()
    assert err > 1e-2


def test_relaxed_gradient_matches_manual_autograd_and_is_unbiased_for_reinmax():
    logits, f = _rand(4, seed=21), _quadratic(4, seed=22)
    grad, values = est.relaxed_gradient(f, logits, "gumbel", tau=0.5, n_samples=3, generator=_gen(23))
    theta = logits.expand(3, 4).clone().requires_grad_(True)
    y = est.gumbel_softmax(theta, 0.5, generator=_gen(23))
    (ref,) = torch.autograd.grad(f(y).sum(), theta)
    torch.testing.assert_close(grad, ref.mean(0))
    torch.testing.assert_close(values, f(y).detach())
    R = 20000
    per, _ = est.relaxed_gradient(f, logits.expand(R, 4), "reinmax", 1.0, 1, generator=_gen(24))
    z = (per.mean(0) - est.exact_gradient(f, logits)[1]) / (per.var(0) / R).sqrt()
    assert z.abs().max() < 4.5
    assert est.relaxed_gradient(lambda y: y.sum(-1).detach(), logits, "straight_through")[0].abs().max() == 0


# ---------------------------------------------------------------- sorting networks

def _g(kind, u):
    """The monotonicity criterion f(u) + u f'(u), by autograd."""
    u = u.clone().requires_grad_(True)
    s = est.swap_sigmoid(u, kind)
    (ds,) = torch.autograd.grad(s.sum(), u)
    return s.detach() + u.detach() * ds


@pytest.mark.parametrize("kind", est.SIGMOIDS)
def test_swap_sigmoids_are_sigmoids_with_slope_one_quarter(kind):
    u = torch.linspace(-50, 50, 2001, dtype=D)
    s = est.swap_sigmoid(u, kind)
    torch.testing.assert_close(s + est.swap_sigmoid(-u, kind), torch.ones_like(u))
    assert bool((s[1:] >= s[:-1]).all()) and float(s[0]) < 0.05 and float(s[-1]) > 0.95
    zero = torch.zeros(1, dtype=D, requires_grad=True)
    (slope,) = torch.autograd.grad(est.swap_sigmoid(zero, kind).sum(), zero)
    assert abs(slope.item() - 0.25) < 1e-12
    assert est.swap_sigmoid(torch.tensor([-math.inf, math.inf], dtype=D).nan_to_num(), kind).isfinite().all()


def test_monotonicity_criterion_holds_exactly_for_the_monotonic_family():
    u = torch.linspace(-1e4, 1e4, 200001, dtype=D)
    for kind in ("cauchy", "reciprocal", "optimal"):
        assert float(_g(kind, u).min()) >= -1e-12, kind
    assert float(_g("logistic", u).min()) < -0.05  # about e^u (1 + u) < 0 for u < -1.28


def test_soft_sort_converges_to_the_hard_sort():
    x = _rand(3, 6, seed=25)
    ref = x.sort(-1)
    hard_P = F.one_hot(ref.indices, 6).to(D)
    errors = []
    for tau in (1e-1, 1e-4, 1e-8):
        values, P = est.soft_sort(x, tau, "cauchy")
        errors.append(((values - ref.values).abs().max().item(), (P - hard_P).abs().max().item()))
    assert errors[-1][0] < 1e-4 and errors[-1][1] < 1e-4
    assert errors[0] > errors[1] > errors[2]
    for kind in ("logistic", "optimal", "reciprocal"):
        values, P = est.soft_sort(x, 1e-6, kind)
        torch.testing.assert_close(values, ref.values, atol=1e-4, rtol=0)
        torch.testing.assert_close(P, hard_P, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", est.SIGMOIDS)
def test_soft_sort_permutation_matrix_is_doubly_stochastic(kind):
    x = _rand(2, 7, seed=26)
    values, P = est.soft_sort(x, 0.8, kind)
    assert P.shape == (2, 7, 7) and bool((P >= 0).all())
    torch.testing.assert_close(P.sum(-1), torch.ones(2, 7, dtype=D))
    torch.testing.assert_close(P.sum(-2), torch.ones(2, 7, dtype=D))
    torch.testing.assert_close(values, (P @ x[..., None])[..., 0])


def _sort_jacobian(x, tau, kind):
    """d values[b, r] / d x[b, i] for a batch of inputs, one backward pass per rank r."""
    x = x.clone().requires_grad_(True)
    values, _ = est.soft_sort(x, tau, kind)
    rows = [torch.autograd.grad(values[..., r].sum(), x, retain_graph=True)[0] for r in range(x.shape[-1])]
    return torch.stack(rows, -2)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 9), st.floats(0.01, 3.0), st.integers(0, 10_000))
def test_monotonic_sorting_networks_have_non_negative_jacobians(n, tau, seed):
    x = _rand(16, n, seed=seed) * 2
    for kind in ("cauchy", "reciprocal", "optimal"):
        J = _sort_jacobian(x, tau, kind)
        assert float(J.min()) >= -1e-12, (kind, float(J.min()))


def test_soft_sort_jacobian_matches_autograd_and_logistic_is_not_monotonic():
    x = torch.tensor([[2.0, 0.0, -1.0, 0.5]], dtype=D)
    for kind in est.SIGMOIDS:
        J = _sort_jacobian(x, 0.3, kind)[0]
        ref = torch.autograd.functional.jacobian(lambda z: est.soft_sort(z, 0.3, kind)[0], x[0])
        torch.testing.assert_close(J, ref)
    # two wires out of order by more than about 1.28 tau: d min / d a < 0 for the logistic
    assert float(_sort_jacobian(torch.tensor([[1.0, 0.0]], dtype=D), 0.3, "logistic").min()) < -0.05


def test_soft_sort_small_cases_and_dtypes():
    values, P = est.soft_sort(torch.tensor([3.0]), 1.0)
    assert torch.equal(values, torch.tensor([3.0])) and torch.equal(P, torch.ones(1, 1))
    a, b = torch.tensor(1.0, dtype=D), torch.tensor(-0.5, dtype=D)
    values, _ = est.soft_sort(torch.stack([a, b]), 0.5, "cauchy")
    alpha = est.swap_sigmoid((b - a) / 0.5, "cauchy")
    torch.testing.assert_close(values, torch.stack([alpha * a + (1 - alpha) * b, (1 - alpha) * a + alpha * b]))
    half, _ = est.soft_sort(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float16), 0.01)
    assert half.dtype == torch.float16 and torch.allclose(half.float(), torch.tensor([-1.0, 0.5, 2.0]), atol=0.05)


# ---------------------------------------------------------------- dtypes and devices

def test_float32_and_half_precision_inputs():
    logits = torch.tensor([0.5, -0.2, 0.1])
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        lg = logits.to(dtype)
        assert est.gumbel_softmax(lg, 0.5, generator=_gen()).dtype == dtype
        assert est.reinmax(lg, generator=_gen()).dtype == dtype
        assert est.straight_through(lg, generator=_gen()).dtype == dtype
        grad, values = est.reinforce(lambda y: y[..., 0], lg, 3, generator=_gen())
        assert grad.dtype == dtype and values.dtype == dtype and grad.isfinite().all()
        value, grad = est.exact_gradient(lambda y: y[..., 0], lg)
        torch.testing.assert_close(grad.double(), est.exact_gradient(lambda y: y[..., 0], logits.double())[1],
                                   atol=1e-2, rtol=0)


# ---------------------------------------------------------------- bad input

def _f(y):
    return y[..., 0]


@pytest.mark.parametrize("call, error, match", [
    (lambda: est.sample_categorical([1.0, 2.0]), TypeError, "logits must be a torch.Tensor"),
    (lambda: est.sample_categorical(torch.tensor([1, 2])), TypeError, "logits must have a real floating"),
    (lambda: est.sample_categorical(torch.tensor(1.0)), ValueError, "logits must have at least 1 dim"),
    (lambda: est.sample_categorical(torch.zeros(2, 0)), ValueError, "logits must have at least"),
    (lambda: est.sample_categorical(torch.tensor([0.0, math.nan])), ValueError, "logits must be finite"),
    (lambda: est.sample_categorical(torch.zeros(3), 0), ValueError, "n_samples must be >= 1"),
    (lambda: est.sample_categorical(torch.zeros(3), 2.0), TypeError, "n_samples must be an int"),
    (lambda: est.sample_categorical(torch.zeros(3), True), TypeError, "n_samples must be an int"),
    (lambda: est.sample_categorical(torch.zeros(3), generator=0), TypeError, "generator must be None"),
    (lambda: est.exact_gradient("f", torch.zeros(3)), TypeError, "f must be callable"),
    (lambda: est.exact_gradient(lambda y: y, torch.zeros(3)), ValueError, "f must return one value"),
    (lambda: est.exact_gradient(lambda y: y.sum(), torch.zeros(3)), ValueError, "f must return one value"),
    (lambda: est.exact_gradient(lambda y: "x", torch.zeros(3)), TypeError, "f must return a floating"),
    (lambda: est.exact_gradient(lambda y: y[..., 0] * math.nan, torch.zeros(3)), ValueError, "f returned NaN"),
    (lambda: est.exact_gradient(lambda y: y[..., 0].long(), torch.zeros(3)), TypeError, "f must return a floating"),
    (lambda: est.reinforce(_f, torch.zeros(3), 1, baseline="loo"), ValueError, "needs n_samples >= 2"),
    (lambda: est.reinforce(_f, torch.zeros(3), 2, baseline="mean"), ValueError, "baseline must be None"),
    (lambda: est.reinforce(_f, torch.zeros(3), 2, baseline=math.inf), ValueError, "baseline must be a finite"),
    (lambda: est.reinforce(_f, torch.zeros(3), 2, baseline=[1.0]), TypeError, "baseline must be a real"),
    (lambda: est.reinforce(_f, torch.zeros(2, 3), 2, baseline=torch.zeros(3)), ValueError, "baseline tensor must have"),
    (lambda: est.reinforce(_f, torch.zeros(3), 2, baseline=torch.tensor(math.nan)), ValueError,
     "baseline must be finite"),
    (lambda: est.reinforce(_f, torch.zeros(3), 2, index=torch.tensor([0, 3])), ValueError, "index must lie in"),
    (lambda: est.reinforce(_f, torch.zeros(3), 2, index=torch.tensor([0])), ValueError, "index must have shape"),
    (lambda: est.reinforce(_f, torch.zeros(3), 2, index=torch.tensor([0.0, 1.0])), TypeError,
     "index must be an integer"),
    (lambda: est.moving_average("b", torch.ones(2, 1)), TypeError, "b must be None"),
    (lambda: est.moving_average(None, torch.ones(2, 1), beta=1.0), ValueError, "beta must be a finite"),
    (lambda: est.moving_average(None, [1.0]), TypeError, "values must be a torch.Tensor"),
    (lambda: est.gaussian_gradient(_f, torch.zeros(2), torch.ones(3)), ValueError, "sigma must have mu's shape"),
    (lambda: est.gaussian_gradient(_f, torch.zeros(2), torch.zeros(2)), ValueError, "sigma must be positive"),
    (lambda: est.gaussian_gradient(_f, torch.zeros(2), torch.ones(2), method="pathwise"), ValueError, "method must be"),
    (lambda: est.gaussian_gradient(lambda x: x, torch.zeros(2), torch.ones(2)), ValueError, "f must return one value"),
    (lambda: est.gumbel_softmax(torch.zeros(3), 0.0), ValueError, "tau must be a finite number > 0"),
    (lambda: est.gumbel_softmax(torch.zeros(3), -1.0), ValueError, "tau must be"),
    (lambda: est.gumbel_softmax(torch.zeros(3), "1"), TypeError, "tau must be a real number"),
    (lambda: est.gumbel_softmax(torch.zeros(3), 10**400), ValueError, "tau must be a finite number"),
    (lambda: est.gumbel_softmax(torch.zeros(3), 1e-300), ValueError, "not representable in torch.float32"),
    (lambda: est.gumbel_softmax(torch.zeros(3), hard=1), TypeError, "hard must be a bool"),
    (lambda: est.straight_through(torch.zeros(2, 3), index=torch.tensor(1)), ValueError, "index must have shape"),
    (lambda: est.reinmax(torch.zeros(3), tau=math.nan), ValueError, "tau must be"),
    (lambda: est.reinmax(torch.zeros(3), generator="g"), TypeError, "generator must be None"),
    (lambda: est.relaxed_gradient(_f, torch.zeros(3), "rebar"), ValueError, "method must be one of"),
    (lambda: est.relaxed_gradient(lambda y: y, torch.zeros(3)), ValueError, "f must return one value"),
    (lambda: est.relaxed_gradient(_f, torch.zeros(3), n_samples=0), ValueError, "n_samples must be >= 1"),
    (lambda: est.swap_sigmoid(torch.zeros(2), "tanh"), ValueError, "kind must be one of"),
    (lambda: est.swap_sigmoid(torch.tensor([math.inf])), ValueError, "u must be finite"),
    (lambda: est.soft_sort(torch.zeros(3), sigmoid="relu"), ValueError, "sigmoid must be one of"),
    (lambda: est.soft_sort(torch.zeros(3), tau=0), ValueError, "tau must be"),
    (lambda: est.soft_sort(torch.tensor(1.0)), ValueError, "x must have at least 1 dim"),
    (lambda: est.soft_sort(torch.tensor([1, 2])), TypeError, "x must have a real floating"),
])
def test_bad_input_is_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_user_function_errors_reach_the_caller():
    class Boom(Exception):
        pass

    def boom(y):
        raise Boom()

    for call in (lambda: est.exact_gradient(boom, torch.zeros(3)), lambda: est.reinforce(boom, torch.zeros(3)),
                 lambda: est.relaxed_gradient(boom, torch.zeros(3)),
                 lambda: est.gaussian_gradient(boom, torch.zeros(2), torch.ones(2))):
        with pytest.raises(Boom):
            call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_generator_on_the_wrong_device():
    with pytest.raises(ValueError, match="generator must live on"):
        est.gumbel_softmax(torch.zeros(3, device="cuda"), generator=torch.Generator())
