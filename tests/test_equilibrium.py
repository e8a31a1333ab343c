"""Tests of lib/equilibrium.py: the energy against its defining property (dE/ds = logit(s) - pre),
fixed points against autograd of the energy, the implicit reference gradient against finite
differences and backpropagation through the unrolled relaxation, and the EP estimates against the
reference (error O(beta) one-sided, O(beta^2) centred)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import equilibrium as eq

D = torch.float64
TOL = 1e-13


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(sizes, n=8, seed=0):
    g = _gen(100 + seed)
    x = torch.rand(n, sizes[0], generator=g, dtype=D)
    y = torch.nn.functional.one_hot(torch.randint(0, sizes[-1], (n,), generator=g), sizes[-1]).to(D)
    return x, y


def _pre(net, x, s, k):
    """Input of layer k written out independently of the module."""
    below = x if k == 0 else s[k - 1]
    pre = below @ net.weights[k].T + net.biases[k]
    if k + 1 < len(s):
        back = net.weights[k + 1].T if net.feedback is None else net.feedback[k]
        pre = pre + s[k + 1] @ back.T
    return pre


def _with_biases(net, seed=7):
    g = _gen(seed)
    for b in net.biases:
        b.copy_(0.3 * torch.randn(b.shape, generator=g, dtype=D))
    return net


# ------------------------------------------------------------------ energy and fixed points

def test_energy_gradient_is_logit_minus_input():
    net = _with_biases(eq.random_network([5, 4, 3, 2], generator=_gen(0)))
    x, y = _batch(net.sizes)
    g = _gen(1)
    s = [torch.rand(len(x), n, generator=g, dtype=D).clamp(0.05, 0.95).requires_grad_(True) for n in net.sizes[1:]]
    (grads) = torch.autograd.grad(net.energy(x, s).sum(), s)
    for k, gk in enumerate(grads):
        expected = torch.logit(s[k]) - _pre(net, x, [t.detach() for t in s], k)
        torch.testing.assert_close(gk, expected.detach(), atol=1e-12, rtol=0)
    # the nudge adds beta (s_L - y) to the output's gradient
    (gL,) = torch.autograd.grad(net.energy(x, s, y, beta=0.7).sum(), s[-1])
    torch.testing.assert_close(gL, grads[-1] + 0.7 * (s[-1] - y).detach(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("beta", [0.0, 0.5, -0.5])
def test_fixed_point_is_a_stationary_point_of_the_energy(beta):
    net = _with_biases(eq.random_network([6, 5, 4, 3], scale=1.5, generator=_gen(2)))
    x, y = _batch(net.sizes)
    s = net.relax(x, y, beta, tol=TOL)
    for k in range(len(s)):  # the fixed-point equations
        out = _pre(net, x, s, k) + (beta * (y - s[k]) if k == len(s) - 1 else 0)
        torch.testing.assert_close(s[k], torch.sigmoid(out), atol=1e-12, rtol=0)
    s_req = [t.clone().requires_grad_(True) for t in s]
    grads = torch.autograd.grad(net.energy(x, s_req, y, beta).sum(), s_req)
    assert max(float(g.abs().max()) for g in grads) < 1e-10


def test_free_fixed_point_is_a_local_minimum_and_relaxation_descends():
    net = _with_biases(eq.random_network([6, 8, 3], scale=2.0, generator=_gen(3)))
    x, _ = _batch(net.sizes)
    s = net.relax(x, s0=None, tol=0.0, max_iter=1)
    energies = [net.energy(x, s)]
    for _ in range(60):
        s = net.relax(x, s0=s, tol=0.0, max_iter=1)  # one sweep = one block-coordinate descent pass
        energies.append(net.energy(x, s))
    E = torch.stack(energies)
    assert bool((E[1:] <= E[:-1] + 1e-12).all())
    s_star = net.relax(x, tol=TOL)
    E_star = net.energy(x, s_star)
    g = _gen(4)
    for _ in range(20):
        moved = [(t + 1e-3 * torch.randn(t.shape, generator=g, dtype=D)).clamp(1e-6, 1 - 1e-6) for t in s_star]
        assert bool((net.energy(x, moved) >= E_star - 1e-14).all())


def test_relax_warm_start_same_fixed_point_and_float32():
    net = eq.random_network([5, 6, 4], generator=_gen(5))
    x, y = _batch(net.sizes)
    s_free = net.relax(x, tol=TOL)
    cold = net.relax(x, y, 0.4, tol=TOL)
    warm = net.relax(x, y, 0.4, s0=s_free, tol=TOL)
    for a, b in zip(cold, warm):
        torch.testing.assert_close(a, b, atol=1e-11, rtol=0)
    net32 = eq.EnergyNetwork([w.float() for w in net.weights], [b.float() for b in net.biases])
    s32 = net32.relax(x.float())
    assert s32[-1].dtype == torch.float32
    torch.testing.assert_close(s32[-1].double(), s_free[-1], atol=1e-5, rtol=0)


def test_relax_raises_when_not_converged_and_tol_zero_runs_exactly():
    net = eq.random_network([5, 6, 4], generator=_gen(6))
    x, _ = _batch(net.sizes)
    with pytest.raises(ValueError, match="did not reach a fixed point"):
        net.relax(x, tol=1e-15, max_iter=2)
    s1 = net.relax(x, tol=0.0, max_iter=1)
    s2 = net.relax(x, s0=s1, tol=0.0, max_iter=1)
    s_two = net.relax(x, tol=0.0, max_iter=2)
    for a, b in zip(s2, s_two):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


# ------------------------------------------------------------------ the reference gradient

def _fd_gradient(net, x, y, index, h=1e-6):
    p = net.parameters()[index[0]]
    old = float(p[index[1:]])
    p[index[1:]] = old + h
    up = net.loss(x, y, tol=TOL)
    p[index[1:]] = old - h
    down = net.loss(x, y, tol=TOL)
    p[index[1:]] = old
    return float(up - down) / (2 * h)


@pytest.mark.parametrize("asymmetry", [None, 0.6])
def test_reference_gradient_matches_finite_differences(asymmetry):
    net = _with_biases(eq.random_network([5, 4, 3, 2], asymmetry=asymmetry, scale=1.5, generator=_gen(8)))
    x, y = _batch(net.sizes)
    ref = net.reference_gradient(x, y, tol=TOL)
    assert [r.shape for r in ref] == [p.shape for p in net.parameters()]
    g = _gen(9)
    for i, p in enumerate(net.parameters()):
        idx = tuple(int(torch.randint(0, n, (1,), generator=g)) for n in p.shape)
        fd = _fd_gradient(net, x, y, (i, *idx))
        assert abs(fd - float(ref[i][idx])) < 1e-8, (i, idx, fd, float(ref[i][idx]))


def test_reference_gradient_matches_backprop_through_the_unrolled_relaxation():
    net = _with_biases(eq.random_network([5, 4, 3], asymmetry=0.8, generator=_gen(10)))
    x, y = _batch(net.sizes)
    params = [p.clone().requires_grad_(True) for p in net.parameters()]
    W, b, B = params[:2], params[2:4], params[4:]
    h = torch.sigmoid(x @ W[0].T + b[0])
    o = torch.sigmoid(h @ W[1].T + b[1])
    for _ in range(300):  # the same sweeps, recorded by autograd (BPTT)
        h = torch.sigmoid(x @ W[0].T + b[0] + o @ B[0].T)
        o = torch.sigmoid(h @ W[1].T + b[1])
    loss = 0.5 * (o - y).square().sum(1).mean()
    bptt = torch.autograd.grad(loss, params)
    for r, u in zip(net.reference_gradient(x, y, tol=TOL), bptt):
        torch.testing.assert_close(r, u, atol=1e-12, rtol=0)


def test_tied_gradient_is_the_sum_of_forward_and_feedback_roles():
    tied = _with_biases(eq.random_network([5, 4, 3, 2], generator=_gen(11)))
    untied = eq.EnergyNetwork(tied.weights, tied.biases, [w.T.clone() for w in tied.weights[1:]])
    x, y = _batch(tied.sizes)
    g_tied = tied.reference_gradient(x, y, tol=TOL)
    g_untied = untied.reference_gradient(x, y, tol=TOL)
    L = len(tied.weights)
    torch.testing.assert_close(g_tied[0], g_untied[0], atol=1e-13, rtol=0)
    for k in range(1, L):
        torch.testing.assert_close(g_tied[k], g_untied[k] + g_untied[2 * L + k - 1].T, atol=1e-13, rtol=0)


# ------------------------------------------------------------------ the EP estimates

def test_ep_estimate_error_is_order_beta_one_sided_and_beta_squared_centred():
    net = _with_biases(eq.random_network([6, 5, 4, 3], scale=1.5, generator=_gen(12)))
    x, y = _batch(net.sizes, n=16)
    ref = net.reference_gradient(x, y, tol=TOL)
    errors = {}
    for centred in (False, True):
        errors[centred] = [eq.gradient_alignment(net.ep_gradient(x, y, beta, centred, tol=TOL), ref)[1]
                           for beta in (1e-1, 1e-2)]
    assert 7 < errors[False][0] / errors[False][1] < 13  # O(beta)
    assert 70 < errors[True][0] / errors[True][1] < 130  # O(beta^2)
    cos, err = eq.gradient_alignment(net.ep_gradient(x, y, 1e-3, tol=TOL), ref)
    assert cos > 1 - 1e-10 and err < 1e-5


def test_ep_one_sided_limit_matches_hebbian_and_vector_field_forms():
    """At zero asymmetry the generalised (untied) estimate of W_k and the tied one agree to O(beta)."""
    tied = eq.random_network([5, 4, 3], generator=_gen(13))
    untied = eq.EnergyNetwork(tied.weights, tied.biases, [tied.weights[1].T.clone()])
    x, y = _batch(tied.sizes)
    ref = untied.reference_gradient(x, y, tol=TOL)
    est = untied.ep_gradient(x, y, 1e-3, tol=TOL)
    assert len(est) == 5 and est[4].shape == (4, 3)
    cos, err = eq.gradient_alignment(est, ref)
    assert cos > 1 - 1e-10 and err < 1e-5


def test_weight_asymmetry_biases_the_estimate():
    x, y = _batch([6, 8, 3], n=32)
    cosines = []
    for a in (0.0, 0.5, 1.0):
        net = eq.random_network([6, 8, 3], asymmetry=a, generator=_gen(14))
        ref = net.reference_gradient(x, y, tol=TOL)
        est = net.ep_gradient(x, y, 1e-3, tol=TOL)
        cosines.append(eq.gradient_alignment(est[:1], ref[:1])[0])  # the hidden layer's weights
    assert cosines[0] > 0.9999 and cosines[0] > cosines[1] > cosines[2] and cosines[2] < 0.9


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=4), st.integers(0, 10**6))
def test_centred_ep_matches_reference_on_random_tied_networks(sizes, seed):
    net = _with_biases(eq.random_network(sizes, generator=_gen(seed)), seed=seed + 1)
    x, y = _batch(sizes, n=3, seed=seed)
    ref = net.reference_gradient(x, y, tol=TOL)
    if sum(float(r.square().sum()) for r in ref) < 1e-20:
        return
    est = net.ep_gradient(x, y, 1e-3, tol=TOL)
    assert eq.gradient_alignment(est, ref)[1] < 1e-4


# ------------------------------------------------------------------ predictive coding

def test_predictive_coding_tends_to_the_feedforward_backprop_gradient():
    net = _with_biases(eq.random_network([6, 5, 4, 3], generator=_gen(15)))
    x, y = _batch(net.sizes, n=10)
    params = [p.clone().requires_grad_(True) for p in net.weights + net.biases]
    a = x
    for k in range(3):
        a = torch.sigmoid(a @ params[k].T + params[3 + k])
    ref = torch.autograd.grad(0.5 * (a - y).square().sum(1).mean(), params)
    errs = [eq.gradient_alignment(eq.predictive_coding_gradient(net, x, y, beta, tol=TOL), ref)[1]
            for beta in (1e-1, 1e-2, 1e-3)]
    assert 7 < errs[0] / errs[1] < 13 and 7 < errs[1] / errs[2] < 13 and errs[2] < 1e-3


def test_predictive_coding_errors():
    net = eq.random_network([3, 2], generator=_gen(16))
    x, y = _batch(net.sizes)
    with pytest.raises(TypeError, match="EnergyNetwork"):
        eq.predictive_coding_gradient("net", x, y, 0.1)
    with pytest.raises(ValueError, match="step"):
        eq.predictive_coding_gradient(net, x, y, 0.1, step=0.0)
    with pytest.raises(ValueError, match="beta"):
        eq.predictive_coding_gradient(net, x, y, -0.1)
    with pytest.raises(ValueError, match="did not converge"):
        eq.predictive_coding_gradient(net, x, y, 0.5, tol=1e-15, max_iter=2)


# ------------------------------------------------------------------ helpers and construction

def test_gradient_alignment_closed_forms():
    a = [torch.tensor([1.0, 0.0], dtype=D), torch.tensor([[2.0]], dtype=D)]
    assert eq.gradient_alignment(a, a) == (pytest.approx(1.0), pytest.approx(0.0))
    assert eq.gradient_alignment([-t for t in a], a) == (pytest.approx(-1.0), pytest.approx(2.0))
    b = [torch.tensor([0.0, 3.0], dtype=D), torch.tensor([[0.0]], dtype=D)]
    cos, err = eq.gradient_alignment(b, a)
    assert cos == pytest.approx(0.0) and err == pytest.approx(math.sqrt(9 + 5) / math.sqrt(5))
    with pytest.raises(ValueError, match="zero"):
        eq.gradient_alignment(a, [torch.zeros(2, dtype=D), torch.zeros(1, 1, dtype=D)])
    with pytest.raises(ValueError, match="shape"):
        eq.gradient_alignment(a, [torch.zeros(3, dtype=D), torch.zeros(1, 1, dtype=D)])
    with pytest.raises(ValueError, match="2 tensors"):
        eq.gradient_alignment(a, a[:1])


def test_random_network_is_seeded_and_asymmetry_is_measured():
    a = eq.random_network([40, 60, 50], asymmetry=0.5, generator=_gen(17))
    b = eq.random_network([40, 60, 50], asymmetry=1.0, generator=_gen(17))
    tied = eq.random_network([40, 60, 50], generator=_gen(17))
    torch.testing.assert_close(a.weights[1], b.weights[1])
    torch.testing.assert_close(a.weights[0], tied.weights[0])
    assert tied.symmetric and not a.symmetric and tied.asymmetry() == 0.0
    assert a.asymmetry() == pytest.approx(2 * math.sin(math.pi / 8), rel=0.1)
    assert b.asymmetry() == pytest.approx(math.sqrt(2), rel=0.1)
    assert eq.random_network([3, 4, 2], asymmetry=0.0, generator=_gen(0)).asymmetry() == pytest.approx(0.0, abs=1e-15)
    assert [p.shape for p in a.parameters()] == [(60, 40), (50, 60), (60,), (50,), (60, 50)]
    assert float(tied.weights[0].std()) == pytest.approx(1 / math.sqrt(40), rel=0.1)


def test_bad_input():
    net = eq.random_network([3, 4, 2], generator=_gen(18))
    asym = eq.random_network([3, 4, 2], asymmetry=0.3, generator=_gen(18))
    x, y = _batch(net.sizes)
    with pytest.raises(ValueError, match="shape"):
        net.relax(x[:, :2])
    with pytest.raises(TypeError, match="dtype"):
        net.relax(x.float())
    with pytest.raises(ValueError, match="finite"):
        net.relax(x * math.nan)
    with pytest.raises(TypeError, match="torch.Tensor"):
        net.relax([[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="y must have shape"):
        net.relax(x, y[:, :1], 0.1)
    with pytest.raises(ValueError, match="needs targets"):
        net.relax(x, None, 0.1)
    with pytest.raises(ValueError, match="beta"):
        net.relax(x, y, 5.0)
    with pytest.raises(ValueError, match="beta"):
        net.ep_gradient(x, y, 0.0)
    with pytest.raises(TypeError, match="centred"):
        net.ep_gradient(x, y, 0.1, centred="yes")
    with pytest.raises(ValueError, match="no energy"):
        asym.energy(x, asym.relax(x))
    with pytest.raises(ValueError, match=r"s\[0\] must lie in"):
        net.energy(x, [torch.full((8, 4), 2.0, dtype=D), torch.full((8, 2), 0.5, dtype=D)])
    with pytest.raises(ValueError, match="s0"):
        net.relax(x, s0=[torch.zeros(8, 5, dtype=D), torch.zeros(8, 2, dtype=D)])
    with pytest.raises(ValueError, match="non-finite state"):
        huge = torch.tensor([[1e308, -1e308, 0.0]] * 4, dtype=D)  # 2e308 - 2e308 = inf - inf = NaN
        eq.EnergyNetwork([huge, torch.ones(2, 4, dtype=D)],
                         [torch.zeros(4, dtype=D), torch.zeros(2, dtype=D)]).relax(torch.full_like(x, 2.0))
    with pytest.raises(ValueError, match=r"weights\[1\] must be a matrix of shape"):
        eq.EnergyNetwork([torch.zeros(4, 3, dtype=D), torch.zeros(2, 5, dtype=D)],
                         [torch.zeros(4, dtype=D), torch.zeros(2, dtype=D)])
    with pytest.raises(ValueError, match=r"biases\[0\]"):
        eq.EnergyNetwork([torch.zeros(4, 3, dtype=D)], [torch.zeros(3, dtype=D)])
    with pytest.raises(ValueError, match="biases must hold 1"):
        eq.EnergyNetwork([torch.zeros(4, 3, dtype=D)], [torch.zeros(4, dtype=D)] * 2)
    with pytest.raises(TypeError, match=r"biases\[0\] must have the network's dtype"):
        eq.EnergyNetwork([torch.zeros(4, 3, dtype=D)], [torch.zeros(4)])
    with pytest.raises(ValueError, match="feedback must be None"):
        eq.EnergyNetwork([torch.zeros(4, 3, dtype=D)], [torch.zeros(4, dtype=D)], [torch.zeros(4, 4, dtype=D)])
    with pytest.raises(ValueError, match=r"feedback\[0\] must have shape"):
        eq.EnergyNetwork(net.weights, net.biases, [torch.zeros(2, 4, dtype=D)])
    with pytest.raises(TypeError, match="float32 or float64"):
        eq.EnergyNetwork([torch.zeros(4, 3, dtype=torch.int64)], [torch.zeros(4, dtype=D)])
    with pytest.raises(TypeError, match="sizes"):
        eq.random_network([3])
    with pytest.raises(ValueError, match="asymmetry"):
        eq.random_network([3, 4, 2], asymmetry=1.5)
    with pytest.raises(ValueError, match="asymmetry needs"):
        eq.random_network([3, 2], asymmetry=0.5)
    with pytest.raises(ValueError, match="scale"):
        eq.random_network([3, 2], scale=-1.0)
    with pytest.raises(TypeError, match="dtype"):
        eq.random_network([3, 2], dtype=torch.float16)
    with pytest.raises(TypeError, match="generator"):
        eq.random_network([3, 2], generator=0)
    with pytest.raises(ValueError, match="sizes"):
        eq.random_network([3, 0])
