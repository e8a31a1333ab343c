"""Tests of lib/ode.py: closed forms, orders of convergence, the adjoint against backprop and
finite differences, memory, torchdiffeq as an optional reference, and every error path."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import numerics, ode

D = torch.float64
ROT = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=D)  # y'' = -y as a first-order system


def decay(t, y):
    return -0.5 * y


def oscillator(t, y):
    return y @ ROT.T


def oscillator_exact(t):  # y(0) = (1, 0)
    return torch.stack([torch.cos(t), -torch.sin(t)], dim=-1)


class MLPField(torch.nn.Module):
    """A small neural vector field f(t, y) = W2 tanh(W1 [y, t] + b1) + b2 on a batch of 2-D states."""

    def __init__(self, width=16, seed=0, dtype=D):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Tanh(),
                                       torch.nn.Linear(width, 2)).to(dtype)

    def forward(self, t, y):
        return self.net(torch.cat([y, t.expand(*y.shape[:-1], 1)], dim=-1))


def _y0(n=5, dtype=D, seed=1):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


# ------------------------------------------------------------------ closed forms and shapes

@pytest.mark.parametrize("method,kw,tol", [("euler", dict(step_size=1e-3), 2e-4),
                                           ("rk4", dict(step_size=1e-2), 1e-9),
                                           ("dopri5", dict(rtol=1e-9, atol=1e-12), 1e-8)])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 2)])
def test_exponential_decay(method, kw, tol, shape):
    y0 = torch.linspace(-1, 2, math.prod(shape), dtype=D).reshape(shape)
    t = torch.tensor([0.0, 0.3, 1.0, 2.0], dtype=D)
    out = ode.odeint(decay, y0, t, method=method, **kw)
    assert out.shape == (4, *shape) and out.dtype == D
    assert torch.equal(out[0], y0)
    exact = torch.exp(-0.5 * t).reshape(-1, *[1] * len(shape)) * y0
    torch.testing.assert_close(out, exact, atol=tol, rtol=0)


def test_harmonic_oscillator_dopri5_error_follows_tolerance():
    t = torch.linspace(0, 10, 21, dtype=D)
    errs = []
    for rtol in (1e-4, 1e-7, 1e-10):
        out = ode.odeint(oscillator, torch.tensor([1.0, 0.0], dtype=D), t, rtol=rtol, atol=rtol)
        errs.append((out - oscillator_exact(t)).abs().max().item())
        assert errs[-1] < 100 * rtol  # global error within a small multiple of the local tolerance
    assert errs[0] > errs[1] > errs[2]


def test_decreasing_times_and_single_time():
    t = torch.tensor([2.0, 1.5, 0.0], dtype=D)
    y0 = torch.tensor([1.0, -2.0], dtype=D)
    for method in ("euler", "rk4", "dopri5"):
        out = ode.odeint(decay, y0, t, method=method, step_size=None if method == "dopri5" else 1e-3)
        torch.testing.assert_close(out, torch.exp(-0.5 * (t - 2.0))[:, None] * y0, atol=0, rtol=1e-3)
    single = ode.odeint(decay, y0, torch.tensor([0.5]))
    assert single.shape == (1, 2) and torch.equal(single[0], y0)


def test_float32_state_and_dense_output_between_steps():
    t = torch.linspace(0, 6, 61)  # many output times inside each dopri5 step
    stats = ode.ODEStats()
    out = ode.odeint(oscillator_float32, torch.tensor([1.0, 0.0]), t, rtol=1e-6, atol=1e-8, stats=stats)
    assert out.dtype == torch.float32 and stats.n_steps < 60
    torch.testing.assert_close(out, oscillator_exact(t), atol=1e-4, rtol=0)


def oscillator_float32(t, y):
    assert t.dtype == torch.float32 and t.shape == ()
    return torch.stack([y[1], -y[0]])


def test_step_size_lands_on_every_output_time():
    seen = []
    f = lambda t, y: seen.append(float(t)) or torch.ones_like(y)  # noqa: E731
    stats = ode.ODEStats()
    out = ode.odeint(f, torch.zeros(()), torch.tensor([0.0, 0.25, 1.0]), method="euler", step_size=0.3,
                     stats=stats)
    assert stats.t_steps == [0.25, 0.5, 0.75, 1.0] and stats.n_steps == stats.nfe == 4
    assert seen == [0.0, 0.25, 0.5, 0.75]
    torch.testing.assert_close(out, torch.tensor([0.0, 0.25, 1.0]))
    # without step_size: one step per output interval
    stats = ode.ODEStats()
    ode.odeint(decay, torch.ones(()), torch.linspace(0, 1, 5), method="rk4", stats=stats)
    assert stats.n_steps == 4 and stats.nfe == 16


def test_dopri5_never_evaluates_outside_the_interval():
    calls = []

    def f(t, y):
        calls.append(float(t))
        return -5.0 * torch.sqrt(t) * y  # undefined for t < 0

    for t in (torch.tensor([0.0, 1.0], dtype=D), torch.tensor([1.0, 0.2, 0.0], dtype=D)):
        calls.clear()
        stats = ode.ODEStats()
        out = ode.odeint(f, torch.ones(3, dtype=D), t, rtol=1e-8, atol=1e-10, stats=stats)
        assert min(calls) >= 0.0 and max(calls) <= 1.0 and len(calls) == stats.nfe
        exact = torch.exp(-10 / 3 * (t ** 1.5 - t[0] ** 1.5))
        torch.testing.assert_close(out[:, 0], exact, atol=0, rtol=1e-6)


def test_nfe_counts():
    stats = ode.ODEStats()
    ode.odeint(oscillator, torch.tensor([1.0, 0.0], dtype=D), torch.tensor([0.0, 5.0], dtype=D), stats=stats)
    assert stats.nfe == 2 + 6 * (stats.n_steps + stats.n_rejected)  # f(t0, y0), the initial-step probe
    assert stats.t_steps[-1] == 5.0 and len(stats.t_steps) == stats.n_steps
    assert "nfe=" in repr(stats)


# ------------------------------------------------------------------ orders of convergence

def _slope(xs, ys):
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


@pytest.mark.parametrize("method,ns,order", [("euler", [256, 512, 1024, 2048], 1), ("rk4", [16, 32, 64, 128], 4)])
def test_fixed_step_order(method, ns, order):
    T = 2 * math.pi
    t = torch.tensor([0.0, T], dtype=D)
    errs = [(ode.odeint(oscillator, torch.tensor([1.0, 0.0], dtype=D), t, method=method,
                        step_size=T / n)[-1] - torch.tensor([1.0, 0.0], dtype=D)).norm().item() for n in ns]
    assert abs(_slope(ns, errs) + order) < 0.1


def test_dopri5_order_from_steps_and_error():
    t = torch.tensor([0.0, 2 * math.pi], dtype=D)
    steps, errs = [], []
    for tol in (1e-5, 1e-6, 1e-7, 1e-8, 1e-9):
        stats = ode.ODEStats()
        out = ode.odeint(oscillator, torch.tensor([1.0, 0.0], dtype=D), t, rtol=tol, atol=tol, stats=stats)
        steps.append(stats.n_steps)
        errs.append((out[-1] - torch.tensor([1.0, 0.0], dtype=D)).norm().item())
    assert -6.5 < _slope(steps, errs) < -4.5


def test_dormand_prince_order_conditions():
    """Both weight vectors meet the eight conditions of order 4; b also one of order 5 (sum b c^4 = 1/5)."""
    A = [[Fraction(0)] * 7 for _ in range(7)]
    fr = lambda x: Fraction(x).limit_denominator(10**13)  # noqa: E731
    for i, row in enumerate(ode._A, start=1):
        A[i][:len(row)] = [fr(a) for a in row]
    A[6][:6] = [fr(b) for b in ode._B]
    c = [sum(row) for row in A]
    assert [float(x) for x in c[1:6]] == pytest.approx(list(ode._C))
    b = [fr(x) for x in ode._B] + [Fraction(0)]
    b_hat = [bi - fr(e) for bi, e in zip(b, ode._E)]

    def residuals(w):
        Ac = [sum(A[i][j] * c[j] for j in range(7)) for i in range(7)]
        return [sum(w) - 1, sum(wi * ci for wi, ci in zip(w, c)) - Fraction(1, 2),
                sum(wi * ci**2 for wi, ci in zip(w, c)) - Fraction(1, 3),
                sum(wi * a for wi, a in zip(w, Ac)) - Fraction(1, 6),
                sum(wi * ci**3 for wi, ci in zip(w, c)) - Fraction(1, 4),
                sum(wi * ci * a for wi, ci, a in zip(w, c, Ac)) - Fraction(1, 8),
                sum(w[i] * sum(A[i][j] * c[j] ** 2 for j in range(7)) for i in range(7)) - Fraction(1, 12),
                sum(w[i] * sum(A[i][j] * Ac[j] for j in range(7)) for i in range(7)) - Fraction(1, 24)]

    assert max(abs(float(r)) for r in residuals(b)) < 1e-12
    assert max(abs(float(r)) for r in residuals(b_hat)) < 1e-12
    assert abs(float(sum(b[i] * c[i] ** 4 for i in range(7)) - Fraction(1, 5))) < 1e-12  # one of order 5


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([(2,), (3,), (2, 2)]))
def test_linear_ode_matches_matrix_exponential(seed, shape):
    n = math.prod(shape)
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=D) / math.sqrt(n)
    y0 = torch.randn(shape, generator=g, dtype=D)
    t = torch.tensor([0.0, 0.7, 1.5], dtype=D)
    f = lambda t, y: (A @ y.reshape(-1)).reshape(shape)  # noqa: E731
    out = ode.odeint(f, y0, t, rtol=1e-10, atol=1e-12)
    exact = torch.stack([(torch.linalg.matrix_exp(A * s) @ y0.reshape(-1)).reshape(shape) for s in t])
    torch.testing.assert_close(out, exact, atol=1e-7, rtol=1e-7)
    back = ode.odeint(f, out[-1], t.flip(0), rtol=1e-10, atol=1e-12)  # and back again
    torch.testing.assert_close(back[-1], y0, atol=1e-6, rtol=1e-6)


# ------------------------------------------------------------------ gradients

def _loss(out):
    return (out[1:] ** 2).sum() + out[-1, :, 0].sum()


@pytest.mark.parametrize("method,kw", [("dopri5", dict(rtol=1e-10, atol=1e-12)), ("rk4", dict(step_size=0.01))])
def test_adjoint_matches_backprop_through_the_solver(method, kw):
    field = MLPField()
    t = torch.tensor([0.0, 0.4, 1.0], dtype=D)
    grads = []
    for solver in (ode.odeint, ode.odeint_adjoint):
        field.zero_grad()
        y0 = _y0().requires_grad_(True)
        out = solver(field, y0, t, method=method, **kw)
        _loss(out).backward()
        grads.append(_flat([y0.grad] + [p.grad for p in field.parameters()]))
    rel = ((grads[0] - grads[1]).norm() / grads[0].norm()).item()
    assert rel < (1e-8 if method == "dopri5" else 1e-7), rel


def test_adjoint_matches_finite_differences_including_t():
    field = MLPField(width=8, seed=3)
    y0 = _y0(3)
    t = torch.tensor([0.0, 0.5, 1.2], dtype=D)
    kw = dict(rtol=1e-11, atol=1e-13)

    def loss(y0_, t_):
        return _loss(ode.odeint(field, y0_, t_, **kw))

    y0r, tr = y0.clone().requires_grad_(True), t.clone().requires_grad_(True)
    _loss(ode.odeint_adjoint(field, y0r, tr, **kw)).backward()
    h = 1e-5
    with torch.no_grad():
        for i in range(3):
            e = torch.zeros(3, dtype=D)
            e[i] = h
            fd = (loss(y0, t + e) - loss(y0, t - e)) / (2 * h)
            assert tr.grad[i].item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-7)
        e = torch.zeros_like(y0)
        e[1, 0] = h
        fd = (loss(y0 + e, t) - loss(y0 - e, t)) / (2 * h)
        assert y0r.grad[1, 0].item() == pytest.approx(fd.item(), rel=1e-5)
        w = field.net[0].weight
        w0 = w[2, 1].item()
        w[2, 1] = w0 + h
        up = loss(y0, t)
        w[2, 1] = w0 - h
        down = loss(y0, t)
        w[2, 1] = w0
    assert w.grad[2, 1].item() == pytest.approx(((up - down) / (2 * h)).item(), rel=1e-5)


def test_adjoint_with_decreasing_t_and_explicit_params():
    A = torch.tensor([[-0.3, 1.0], [-1.0, -0.2]], dtype=D, requires_grad=True)
    f = lambda t, y: y @ A.T  # noqa: E731
    y0 = torch.tensor([1.0, 0.5], dtype=D, requires_grad=True)
    t = torch.tensor([1.0, 0.0], dtype=D)
    out = ode.odeint_adjoint(f, y0, t, adjoint_params=[A], rtol=1e-10, atol=1e-12)
    out[-1].sum().backward()
    # y(0) = expm(-A) y0: compare with autograd through the matrix exponential
    A2 = A.detach().clone().requires_grad_(True)
    y02 = y0.detach().clone().requires_grad_(True)
    (torch.linalg.matrix_exp(-A2) @ y02).sum().backward()
    torch.testing.assert_close(A.grad, A2.grad, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(y0.grad, y02.grad, atol=1e-8, rtol=1e-8)


def test_adjoint_stats_and_unused_parameters():
    field = MLPField()
    field.unused = torch.nn.Parameter(torch.ones(3, dtype=D))
    stats = ode.ODEStats()
    y0 = _y0().requires_grad_(True)
    ode.odeint_adjoint(field, y0, torch.tensor([0.0, 1.0], dtype=D), method="rk4", step_size=0.1,
                       stats=stats).sum().backward()
    assert stats.nfe == 40 and stats.nfe_adjoint == 40 and stats.n_steps_adjoint == 10
    assert torch.equal(field.unused.grad, torch.zeros(3, dtype=D))
    # a field that ignores y and has no parameters: zero gradient, no crash
    y1 = _y0().requires_grad_(True)
    ode.odeint_adjoint(lambda t, y: torch.ones_like(y), y1, torch.tensor([0.0, 1.0], dtype=D),
                       adjoint_params=()).sum().backward()
    torch.testing.assert_close(y1.grad, 2 * torch.ones_like(y1))  # y(0) = y0 and y(1) = y0 + 1


def test_adjoint_memory_is_flat_in_the_number_of_steps():
    field = MLPField(dtype=torch.float32)
    y0 = _y0(64, torch.float32).requires_grad_(True)
    t = torch.tensor([0.0, 1.0])
    peaks = {}
    for name, solver in (("direct", ode.odeint), ("adjoint", ode.odeint_adjoint)):
        for n in (5, 50):
            with numerics.SavedTensorTracker() as tracker:
                solver(field, y0, t, method="rk4", step_size=1 / n)[-1].square().sum().backward()
            peaks[name, n] = tracker.peak_bytes
    assert peaks["direct", 50] > 8 * peaks["direct", 5]
    assert peaks["adjoint", 50] == peaks["adjoint", 5]


# ------------------------------------------------------------------ torchdiffeq as a reference

def test_against_torchdiffeq():
    torchdiffeq = pytest.importorskip("torchdiffeq")
    field = MLPField()
    y0 = _y0(8)
    t = torch.linspace(0, 1.5, 7, dtype=D)
    counter = {"n": 0}

    def counted(t_, y):
        counter["n"] += 1
        return field(t_, y)

    with torch.no_grad():
        stats = ode.ODEStats()
        ours = ode.odeint(field, y0, t, rtol=1e-8, atol=1e-10, stats=stats)
        theirs = torchdiffeq.odeint(counted, y0, t, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(ours, theirs, atol=1e-7, rtol=0)
    assert stats.nfe <= counter["n"]
    for solver, peer in ((ode.odeint_adjoint, torchdiffeq.odeint_adjoint),):
        grads = []
        for fn in (solver, peer):
            field.zero_grad()
            y = y0.clone().requires_grad_(True)
            _loss(fn(field, y, t, rtol=1e-9, atol=1e-11)).backward()
            grads.append(_flat([y.grad] + [p.grad for p in field.parameters()]))
        assert ((grads[0] - grads[1]).norm() / grads[1].norm()).item() < 1e-6


# ------------------------------------------------------------------ bad input

T2 = torch.tensor([0.0, 1.0], dtype=D)
Y2 = torch.ones(2, dtype=D)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(func="f"), TypeError, "func must be callable"),
    (dict(y0=[1.0, 2.0]), TypeError, "y0 must be a torch.Tensor"),
    (dict(y0=torch.ones(2, dtype=torch.int64)), TypeError, "y0 must be float32 or float64"),
    (dict(y0=torch.ones(2, dtype=torch.float16)), TypeError, "y0 must be float32 or float64"),
    (dict(y0=torch.ones(0, dtype=D)), ValueError, "y0 must have at least one element"),
    (dict(y0=torch.tensor([1.0, math.nan], dtype=D)), ValueError, "y0 must be finite"),
    (dict(t=[0.0, 1.0]), TypeError, "t must be a 1-D torch.Tensor"),
    (dict(t=torch.tensor([0, 1])), TypeError, "t must have a real floating dtype"),
    (dict(t=torch.zeros(2, 2, dtype=D)), ValueError, "t must be 1-D"),
    (dict(t=torch.tensor(1.0, dtype=D)), ValueError, "t must be 1-D"),
    (dict(t=torch.tensor([0.0, math.inf], dtype=D)), ValueError, "t must be finite"),
    (dict(t=torch.tensor([0.0, 1.0, 1.0], dtype=D)), ValueError, "strictly increasing or strictly decreasing"),
    (dict(t=torch.tensor([0.0, 1.0, 0.5], dtype=D)), ValueError, "strictly increasing or strictly decreasing"),
    (dict(method="rk45"), ValueError, "method must be one of"),
    (dict(method=None), ValueError, "method must be one of"),
    (dict(rtol=-1e-3), ValueError, "rtol must be >= 0"),
    (dict(rtol=1.5), ValueError, "rtol must be < 1"),
    (dict(atol=math.nan), ValueError, "atol must be a finite number"),
    (dict(atol="1e-9"), TypeError, "atol must be a number"),
    (dict(atol=0.0), ValueError, "atol must be > 0"),
    (dict(step_size=0.1), ValueError, "step_size applies to the fixed-step methods"),
    (dict(method="rk4", step_size=0.0), ValueError, "step_size must be > 0"),
    (dict(method="rk4", step_size=True), TypeError, "step_size must be a number"),
    (dict(method="euler", step_size=1e-300), ValueError, "max_steps"),
    (dict(max_steps=0), ValueError, "max_steps must be >= 1"),
    (dict(max_steps=10.0), TypeError, "max_steps must be an int"),
    (dict(stats={}), TypeError, "stats must be None or an ODEStats"),
])
@pytest.mark.parametrize("solver", ["odeint", "odeint_adjoint"])
def test_bad_arguments(kwargs, error, match, solver):
    args = dict(func=torch.nn.Identity() if solver == "odeint_adjoint" else decay, y0=Y2, t=T2)
    args.update(kwargs)
    if solver == "odeint_adjoint" and args["func"] is decay:
        args["adjoint_params"] = ()
    with pytest.raises(error, match=match):
        getattr(ode, solver)(args.pop("func"), args.pop("y0"), args.pop("t"), **args)


@pytest.mark.parametrize("method", ["euler", "rk4", "dopri5"])
@pytest.mark.parametrize("f,error,match", [
    (lambda t, y: y[:1], ValueError, "func must return a tensor of the state's shape"),
    (lambda t, y: y.float(), TypeError, "func must return the state's dtype"),
    (lambda t, y: 1.0, TypeError, "func must return a torch.Tensor"),
    (lambda t, y: y * math.nan, ValueError, "func returned non-finite values"),
    (lambda t, y: y + math.inf * (t > 0.5), ValueError, "non-finite"),
])
def test_bad_func(method, f, error, match):
    with pytest.raises(error, match=match):
        ode.odeint(f, Y2, torch.linspace(0, 1, 5, dtype=D), method=method)


def test_solver_failures_are_reported():
    with pytest.raises(ValueError, match="step size underflow|non-finite"):  # y' = y^2 blows up at t = 1/3
        ode.odeint(lambda t, y: y * y, torch.full((2,), 3.0, dtype=D), torch.tensor([0.0, 1.0], dtype=D))
    with pytest.raises(ValueError, match="max_steps=20"):  # stiff: dopri5 needs many steps
        ode.odeint(lambda t, y: -1e4 * y, Y2, T2, max_steps=20)

    class Boom(Exception):
        pass

    def boom(t, y):
        raise Boom()

    with pytest.raises(Boom):  # the user's exception reaches the caller unchanged
        ode.odeint(boom, Y2, T2)


def test_odeint_refuses_t_with_grad_and_adjoint_checks_params():
    with pytest.raises(ValueError, match="t requires grad"):
        ode.odeint(decay, Y2, T2.clone().requires_grad_(True))
    with pytest.raises(TypeError, match="func must be an nn.Module"):
        ode.odeint_adjoint(decay, Y2, T2)
    with pytest.raises(TypeError, match="adjoint_params must be a list or tuple"):
        ode.odeint_adjoint(decay, Y2, T2, adjoint_params=torch.ones(2))
    with pytest.raises(TypeError, match="adjoint_params must hold tensors of y0's dtype"):
        ode.odeint_adjoint(decay, Y2, T2, adjoint_params=[torch.ones(2, requires_grad=True)])
    with pytest.raises(ValueError, match="adjoint_rtol"):
        ode.odeint_adjoint(decay, Y2, T2, adjoint_params=(), adjoint_rtol=2.0)
    with pytest.raises(ValueError, match="func \\(adjoint\\) returned non-finite"):
        y0 = Y2.clone().requires_grad_(True)
        p = torch.ones((), dtype=D, requires_grad=True)
        out = ode.odeint_adjoint(lambda t, y: -p * y + 0 * torch.log(1 - t), y0, torch.tensor([0.0, 1.0], dtype=D),
                                 adjoint_params=[p], method="euler")
        out.sum().backward()
