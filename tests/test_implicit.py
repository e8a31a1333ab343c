"""Tests of lib/implicit.py against closed forms, torch.linalg.solve, finite differences
(torch.autograd.gradcheck) and autograd through unrolled solvers."""

import math

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import implicit as im
from lib import numerics

D = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spd(n: int, lams, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=_gen(seed), dtype=D))
    a = (q * torch.as_tensor(lams, dtype=D)) @ q.T
    return 0.5 * (a + a.T)


def _contraction(n: int, rho: float, seed: int = 0) -> torch.Tensor:
    m = torch.randn(n, n, generator=_gen(seed), dtype=D)
    return rho * m / torch.linalg.matrix_norm(m, 2)


# ------------------------------------------------------------------ conjugate gradients

@pytest.mark.parametrize("shape", [(7,), (3, 4)])
def test_cg_matches_linalg_solve(shape):
    n = math.prod(shape)
    A = _spd(n, torch.linspace(0.5, 50.0, n))
    b = torch.randn(shape, generator=_gen(1), dtype=D)
    x, res = im.conjugate_gradient(lambda u: (A @ u.reshape(-1)).reshape(shape), b)
    assert x.shape == shape and res.ndim == 1 and float(res[0]) == 1.0
    torch.testing.assert_close(x.reshape(-1), torch.linalg.solve(A, b.reshape(-1)), atol=1e-9, rtol=0)
    assert float(res[-1]) <= 1e-10 and len(res) - 1 <= 2 * n + 10


def test_cg_error_in_a_norm_decreases_and_finishes_in_distinct_eigenvalue_steps():
    # three distinct eigenvalues: the Krylov space holds the solution after three steps
    A = _spd(12, [1.0] * 4 + [5.0] * 4 + [20.0] * 4, seed=2)
    b = torch.randn(12, generator=_gen(3), dtype=D)
    x_star = torch.linalg.solve(A, b)
    _, res = im.conjugate_gradient(lambda u: A @ u, b, tol=1e-12)
    assert len(res) - 1 == 3
    errors = [float((im.conjugate_gradient(lambda u: A @ u, b, tol=0.0, max_iter=k)[0] - x_star)
                    @ A @ (im.conjugate_gradient(lambda u: A @ u, b, tol=0.0, max_iter=k)[0] - x_star))
              for k in (1, 2)]
    assert errors[0] > errors[1] > 0


def test_cg_rate_respects_the_chebyshev_bound():
    kappa, n, tol = 400.0, 300, 1e-8
    lams = torch.linspace(1.0, kappa, n, dtype=D)
    b = torch.randn(n, generator=_gen(4), dtype=D)
    _, res = im.conjugate_gradient(lambda u: lams * u, b, tol=tol)
    bound = math.sqrt(kappa) / 2 * math.log(2 * math.sqrt(kappa) / tol)
    assert len(res) - 1 <= bound


def test_cg_warm_start_and_zero_rhs():
    A = _spd(5, [1, 2, 3, 4, 5])
    b = torch.randn(5, generator=_gen(5), dtype=D)
    x_star = torch.linalg.solve(A, b)
    x, res = im.conjugate_gradient(lambda u: A @ u, b, x0=x_star.clone())
    assert len(res) == 1 and float(res[0]) < 1e-12
    torch.testing.assert_close(x, x_star)
    x, res = im.conjugate_gradient(lambda u: A @ u, torch.zeros(5, dtype=D))
    assert torch.equal(x, torch.zeros(5, dtype=D)) and res.tolist() == [0.0]


def test_cg_float32():
    A = _spd(6, [1, 2, 3, 4, 5, 6]).float()
    b = torch.ones(6)
    x, res = im.conjugate_gradient(lambda u: A @ u, b)
    assert x.dtype == torch.float32 and res.dtype == torch.float32
    torch.testing.assert_close(x, torch.linalg.solve(A, b), atol=1e-5, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), log_kappa=st.floats(0.0, 3.0), seed=st.integers(0, 10**6))
def test_cg_property_random_spd(n, log_kappa, seed):
    lams = torch.logspace(0.0, log_kappa, n, dtype=D)
    A = _spd(n, lams, seed)
    b = torch.randn(n, generator=_gen(seed + 1), dtype=D)
    x, _ = im.conjugate_gradient(lambda u: A @ u, b, tol=1e-12, max_iter=10 * n + 10)
    ref = torch.linalg.solve(A, b)
    assert float((x - ref).norm()) <= 1e-7 * (1 + float(ref.norm()))


# ------------------------------------------------------------------ Neumann series

def test_neumann_matches_linalg_solve_and_residuals_are_the_terms():
    n = 8
    M = _contraction(n, 0.8, seed=6)
    b = torch.randn(n, generator=_gen(7), dtype=D)
    x, res = im.neumann_series(lambda u: M @ u, b, tol=1e-12)
    torch.testing.assert_close(x, torch.linalg.solve(torch.eye(n, dtype=D) - M, b), atol=1e-10, rtol=0)
    k = len(res) - 1
    assert float(res[0]) == 1.0 and float(res[-1]) <= 1e-12
    # residuals[k] = ||M^k b|| / ||b||, the residual of the partial sum
    Mk_b = torch.linalg.matrix_power(M, k) @ b
    assert abs(float(res[-1]) - float(Mk_b.norm() / b.norm())) < 1e-15
    x3, res3 = im.neumann_series(lambda u: M @ u, b, tol=0.0, max_iter=3)
    torch.testing.assert_close(x3, b + M @ b + M @ M @ b)
    torch.testing.assert_close(res3[-1], (M @ M @ M @ b).norm() / b.norm())


def test_neumann_rate_is_the_spectral_radius():
    lams = torch.tensor([0.9, 0.5, -0.3, 0.1], dtype=D)
    b = torch.ones(4, dtype=D)
    _, res = im.neumann_series(lambda u: lams * u, b, tol=1e-10)
    ratios = res[1:] / res[:-1]
    assert abs(float(ratios[-1]) - 0.9) < 1e-3


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 10), rho=st.floats(0.0, 0.95), seed=st.integers(0, 10**6))
def test_neumann_property_random_contraction(n, rho, seed):
    M = _contraction(n, rho, seed)
    b = torch.randn(n, generator=_gen(seed + 1), dtype=D)
    x, _ = im.neumann_series(lambda u: M @ u, b, tol=1e-13, max_iter=2000)
    ref = torch.linalg.solve(torch.eye(n, dtype=D) - M, b)
    assert float((x - ref).norm()) <= 1e-9 * (1 + float(ref.norm()))


def test_neumann_diverges_loudly():
    with pytest.raises(ValueError, match="diverges"):
        im.neumann_series(lambda u: 1.5 * u, torch.ones(3, dtype=D), max_iter=1000)


# ------------------------------------------------------------------ root_solve: closed forms

def _cubic(x, th):  # x^3 + x = theta: dx/dtheta = 1 / (3 x^2 + 1)
    return x**3 + x - th


def _newton(x, th):
    for _ in range(60):
        x = x - _cubic(x, th) / (3 * x**2 + 1)
    return x


@pytest.mark.parametrize("linear_solver", ["cg", "dense", lambda matvec, v: v / (matvec(torch.ones_like(v)))])
def test_scalar_root_derivative(linear_solver):
    theta = torch.tensor([2.0, 10.0, -0.5], dtype=D, requires_grad=True)
    x = im.root_solve(_cubic, torch.zeros(3, dtype=D), theta, _newton, linear_solver=linear_solver)
    torch.testing.assert_close(_cubic(x.detach(), theta.detach()), torch.zeros(3, dtype=D), atol=1e-12, rtol=0)
    (g,) = torch.autograd.grad(x.sum(), theta)
    torch.testing.assert_close(g, 1 / (3 * x.detach() ** 2 + 1), atol=1e-12, rtol=0)


def _ridge_problem(seed=0, n=30, d=6):
    g = _gen(seed)
    X = torch.randn(n, d, generator=g, dtype=D)
    y = torch.randn(n, generator=g, dtype=D)
    return X, y


def _ridge_solver(X):
    def solver(w0, theta):
        lam, y = theta
        return im.conjugate_gradient(lambda u: X.T @ (X @ u) + lam * u, X.T @ y, tol=1e-14)[0]
    return solver


def test_ridge_gradients_match_closed_form():
    X, y = _ridge_problem()
    d = X.shape[1]
    lam = torch.tensor(0.7, dtype=D, requires_grad=True)
    yy = y.clone().requires_grad_(True)

    def F(w, theta):  # the gradient of 0.5 ||X w - y||^2 + 0.5 lam ||w||^2
        lam_, y_ = theta
        return X.T @ (X @ w - y_) + lam_ * w

    w = im.root_solve(F, torch.zeros(d, dtype=D), (lam, yy), _ridge_solver(X))
    H = X.T @ X + 0.7 * torch.eye(d, dtype=D)
    w_ref = torch.linalg.solve(H, X.T @ y)
    torch.testing.assert_close(w.detach(), w_ref, atol=1e-11, rtol=0)
    c = torch.randn(d, generator=_gen(9), dtype=D)
    g_lam, g_y = torch.autograd.grad(w @ c, (lam, yy))
    # dw/dlam = -H^{-1} w*;  dw/dy = H^{-1} X^T
    torch.testing.assert_close(g_lam, -(c @ torch.linalg.solve(H, w_ref)), atol=1e-11, rtol=0)
    torch.testing.assert_close(g_y, X @ torch.linalg.solve(H, c), atol=1e-11, rtol=0)


def test_argmin_solve_ridge_and_gradcheck():
    X, y = _ridge_problem(seed=1)
    d = X.shape[1]

    def g(w, theta):
        lam, y_ = theta
        return 0.5 * ((X @ w - y_) ** 2).sum() + 0.5 * lam * (w @ w)

    lam = torch.tensor(0.3, dtype=D, requires_grad=True)
    yy = y.clone().requires_grad_(True)
    w = im.argmin_solve(g, torch.zeros(d, dtype=D), (lam, yy), _ridge_solver(X))
    H = X.T @ X + 0.3 * torch.eye(d, dtype=D)
    torch.testing.assert_close(w.detach(), torch.linalg.solve(H, X.T @ y), atol=1e-11, rtol=0)
    (g_lam,) = torch.autograd.grad(w.sum(), lam)
    torch.testing.assert_close(g_lam, -torch.linalg.solve(H, w.detach()).sum(), atol=1e-11, rtol=0)
    # finite differences through the whole solve, both arguments
    f = lambda lam_, y_: im.argmin_solve(g, torch.zeros(d, dtype=D), (lam_, y_), _ridge_solver(X),
                                         solve_tol=1e-13)
    assert torch.autograd.gradcheck(f, (lam, yy))


def test_root_solve_with_tensor_theta_and_gradcheck():
    A = _spd(4, [1, 2, 3, 4], seed=10)
    F = lambda x, th: A @ x + torch.sin(x) * 0.1 - th  # noqa: E731  (dF/dx = A + 0.1 diag(cos x), SPD)

    def solver(x, th):
        for _ in range(100):
            J = A + 0.1 * torch.diag(torch.cos(x))
            x = x - torch.linalg.solve(J, F(x, th))
        return x

    theta = torch.randn(4, generator=_gen(11), dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: im.root_solve(F, torch.zeros(4, dtype=D), t, solver,
                                                            solve_tol=1e-13), (theta,))
    assert torch.autograd.gradcheck(lambda t: im.root_solve(F, torch.zeros(4, dtype=D), t, solver,
                                                            linear_solver="dense"), (theta,))


def test_no_grad_and_unused_theta():
    theta = torch.tensor([3.0], dtype=D, requires_grad=True)
    with torch.no_grad():
        x = im.root_solve(_cubic, torch.zeros(1, dtype=D), theta, _newton)
    assert x.grad_fn is None
    other = torch.ones(2, dtype=D, requires_grad=True)  # F ignores it: zero gradient, not None
    x = im.root_solve(lambda x, th: _cubic(x, th[0]), torch.zeros(1, dtype=D), (theta, other),
                      lambda x, th: _newton(x, th[0]))
    g_theta, g_other = torch.autograd.grad(x.sum(), (theta, other))
    assert torch.equal(g_other, torch.zeros(2, dtype=D))
    assert abs(float(g_theta) - float(1 / (3 * x.detach() ** 2 + 1))) < 1e-12


# ------------------------------------------------------------------ fixed points: implicit vs unrolled

class _Cell(nn.Module):
    def __init__(self, hidden=6, inputs=3, rho=0.8, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.W = nn.Linear(hidden, hidden, bias=False)
        self.U = nn.Linear(inputs, hidden)
        with torch.no_grad():
            self.W.weight.mul_(rho / torch.linalg.matrix_norm(self.W.weight, 2))

    def forward(self, z, x):
        return torch.tanh(self.W(z) + self.U(x))


def _param_grads(module):
    return torch.cat([p.grad.flatten() for p in module.parameters()])


@pytest.mark.parametrize("linear_solver", ["neumann", "dense"])
def test_fixed_point_layer_matches_unrolled_autograd(linear_solver):
    cell = _Cell().double()
    x = torch.randn(5, 3, generator=_gen(12), dtype=D, requires_grad=True)
    z0 = torch.zeros(5, 6, dtype=D)
    target = torch.randn(5, 6, generator=_gen(13), dtype=D)

    z_unrolled = im.fixed_point_iteration(cell, z0, x, max_iter=300)
    ((z_unrolled - target) ** 2).sum().backward()
    g_unrolled, gx_unrolled = _param_grads(cell), x.grad.clone()
    cell.zero_grad()
    x.grad = None

    layer = im.FixedPointLayer(cell, max_iter=300, tol=0.0, linear_solver=linear_solver, solve_tol=1e-12)
    z = layer(x, z0)
    torch.testing.assert_close(z.detach(), cell(z.detach(), x.detach()), atol=1e-12, rtol=0)
    ((z - target) ** 2).sum().backward()
    torch.testing.assert_close(_param_grads(cell), g_unrolled, atol=1e-10, rtol=0)
    torch.testing.assert_close(x.grad, gx_unrolled, atol=1e-10, rtol=0)


def test_fixed_point_solve_gradcheck_and_default_state():
    M = _contraction(3, 0.6, seed=14)
    f = lambda z, th: torch.tanh(M @ z + th)  # noqa: E731
    theta = torch.randn(3, generator=_gen(15), dtype=D, requires_grad=True)
    z = im.fixed_point_solve(f, torch.zeros(3, dtype=D), theta, max_iter=500, tol=0.0)
    torch.testing.assert_close(z.detach(), f(z.detach(), theta.detach()), atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(lambda t: im.fixed_point_solve(f, torch.zeros(3, dtype=D), t,
                                                                   max_iter=500, tol=0.0, solve_tol=1e-13),
                                 (theta,))
    # z0 defaults to zeros shaped like x when the state has x's shape
    cell = _Cell(hidden=3, inputs=3).double()
    x = torch.randn(2, 3, generator=_gen(16), dtype=D)
    torch.testing.assert_close(im.FixedPointLayer(cell)(x), im.FixedPointLayer(cell)(x, torch.zeros(2, 3, dtype=D)))


def test_unrolled_iteration_stops_at_tolerance():
    calls = []

    def f(z, th):
        calls.append(1)
        return 0.5 * z + th

    z = im.fixed_point_iteration(f, torch.zeros(1, dtype=D), torch.ones(1, dtype=D), max_iter=1000, tol=1e-8)
    assert abs(float(z) - 2.0) < 1e-7 and len(calls) < 40
    calls.clear()
    im.fixed_point_iteration(f, torch.zeros(1, dtype=D), torch.ones(1, dtype=D), max_iter=17)
    assert len(calls) == 17


def test_implicit_memory_is_flat_and_unrolled_grows():
    cell = _Cell(hidden=16, inputs=4).double()
    x = torch.randn(32, 4, generator=_gen(17), dtype=D)
    z0 = torch.zeros(32, 16, dtype=D)
    peaks = {}
    for mode in ("unrolled", "implicit"):
        for K in (5, 40):
            with numerics.SavedTensorTracker() as tracker:
                if mode == "unrolled":
                    z = im.fixed_point_iteration(cell, z0, x, max_iter=K)
                else:
                    z = im.FixedPointLayer(cell, max_iter=K, tol=0.0)(x, z0)
                z.square().sum().backward()
            peaks[mode, K] = tracker.peak_bytes
    assert peaks["unrolled", 40] > 6 * peaks["unrolled", 5]
    assert peaks["implicit", 40] == peaks["implicit", 5] > 0


# ------------------------------------------------------------------ bad input

def _ok_solver(x, th):
    return _newton(x, th)


def test_linear_solver_errors():
    A = _spd(3, [1, 2, 3])
    b = torch.ones(3, dtype=D)
    with pytest.raises(TypeError, match="matvec must be callable"):
        im.conjugate_gradient("A", b)
    with pytest.raises(TypeError, match="b must be a torch.Tensor"):
        im.conjugate_gradient(lambda u: u, [1.0, 2.0])
    with pytest.raises(TypeError, match="b must be float32 or float64"):
        im.neumann_series(lambda u: u, torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="b must be finite"):
        im.conjugate_gradient(lambda u: u, torch.tensor([1.0, math.nan], dtype=D))
    with pytest.raises(ValueError, match="b must have at least one element"):
        im.neumann_series(lambda u: u, torch.ones(0, dtype=D))
    with pytest.raises(ValueError, match="matvec must return a tensor of shape"):
        im.conjugate_gradient(lambda u: u[:-1], b)
    with pytest.raises(TypeError, match="matvec must return a torch.Tensor"):
        im.neumann_series(lambda u: [0.0], b)
    with pytest.raises(ValueError, match="matvec returned a non-finite"):
        im.conjugate_gradient(lambda u: u * math.nan, b)
    with pytest.raises(ValueError, match="not positive definite"):
        im.conjugate_gradient(lambda u: -(A @ u), b)
    with pytest.raises(ValueError, match="tol must be non-negative"):
        im.conjugate_gradient(lambda u: A @ u, b, tol=-1.0)
    with pytest.raises(ValueError, match="tol must be a finite number"):
        im.neumann_series(lambda u: 0.5 * u, b, tol=math.nan)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        im.conjugate_gradient(lambda u: A @ u, b, max_iter=0)
    with pytest.raises(TypeError, match="max_iter must be an int"):
        im.neumann_series(lambda u: 0.5 * u, b, max_iter=2.5)
    with pytest.raises(ValueError, match="x0 must match b"):
        im.conjugate_gradient(lambda u: A @ u, b, x0=torch.zeros(4, dtype=D))


def test_root_solve_refuses_bad_input_at_once():
    x0, th = torch.zeros(2, dtype=D), torch.ones(2, dtype=D, requires_grad=True)
    with pytest.raises(TypeError, match="F must be callable"):
        im.root_solve(None, x0, th, _ok_solver)
    with pytest.raises(TypeError, match="solver must be callable"):
        im.root_solve(_cubic, x0, th, "newton")
    with pytest.raises(TypeError, match="x0 must be float32 or float64"):
        im.root_solve(_cubic, torch.zeros(2, dtype=torch.int64), th, _ok_solver)
    with pytest.raises(ValueError, match="x0 must be finite"):
        im.root_solve(_cubic, torch.tensor([0.0, math.inf], dtype=D), th, _ok_solver)
    with pytest.raises(TypeError, match="theta must be a tensor or a non-empty"):
        im.root_solve(_cubic, x0, (), _ok_solver)
    with pytest.raises(TypeError, match=r"theta\[1\] must be a torch.Tensor"):
        im.root_solve(_cubic, x0, (th, 3.0), _ok_solver)
    with pytest.raises(TypeError, match="theta must have x0.s dtype"):
        im.root_solve(_cubic, x0, torch.ones(2, dtype=torch.int64), _ok_solver)
    with pytest.raises(ValueError, match="theta must be finite"):
        im.root_solve(_cubic, x0, torch.tensor([1.0, math.nan], dtype=D), _ok_solver)
    with pytest.raises(ValueError, match="linear_solver must be one of"):
        im.root_solve(_cubic, x0, th, _ok_solver, linear_solver="gmres")
    with pytest.raises(ValueError, match="solve_tol must be positive"):
        im.root_solve(_cubic, x0, th, _ok_solver, solve_tol=0.0)
    with pytest.raises(ValueError, match="solver must return a tensor of shape"):
        im.root_solve(_cubic, x0, th, lambda x, t: x[:1])
    with pytest.raises(TypeError, match="solver must return torch.float64"):
        im.root_solve(_cubic, x0, th, lambda x, t: x.float())
    with pytest.raises(ValueError, match="solver returned a non-finite"):
        im.root_solve(_cubic, x0, th, lambda x, t: x * math.nan)
    with pytest.raises(ValueError, match="F must return a tensor of shape"):
        im.root_solve(lambda x, t: x.sum(), x0, th, _ok_solver)
    with pytest.raises(ValueError, match="F returned a non-finite"):
        im.root_solve(lambda x, t: x / 0.0, x0, th, _ok_solver)
    with pytest.raises(ZeroDivisionError):  # the user's own exception reaches the caller unchanged
        im.root_solve(_cubic, x0, th, lambda x, t: 1 / 0)
    with pytest.raises(TypeError, match="g must be callable"):
        im.argmin_solve(3, x0, th, _ok_solver)
    with pytest.raises(ValueError, match="g must return a scalar"):
        im.argmin_solve(lambda x, t: x * t, x0, th, _ok_solver)


def test_backward_failures_are_clear():
    th = torch.tensor([2.0], dtype=D, requires_grad=True)
    x0 = torch.zeros(1, dtype=D)
    # Neumann needs spectral radius of I + dF/dx < 1; here it is 1 + 3x^2 + 1 = 5
    x = im.root_solve(_cubic, x0, th, _ok_solver, linear_solver="neumann")
    with pytest.raises(ValueError, match="neumann.*spectral radius"):
        x.sum().backward()
    # CG needs dF/dx positive definite
    x = im.root_solve(lambda x, t: -_cubic(x, t), x0, th, _ok_solver, linear_solver="cg")
    with pytest.raises(ValueError, match="cg.*positive definite"):
        x.sum().backward()
    # a singular Jacobian: F does not depend on x
    x = im.root_solve(lambda x, t: t - 2.0 + 0 * x, x0, th, lambda x, t: x, linear_solver="dense")
    with pytest.raises(ValueError, match="singular"):
        x.sum().backward()
    # too few linear-solver iterations
    M = _contraction(6, 0.95, seed=18)
    x = im.fixed_point_solve(lambda z, t: M @ z + t, torch.zeros(6, dtype=D),
                             torch.ones(6, dtype=D, requires_grad=True), solve_max_iter=3)
    with pytest.raises(ValueError, match="did not converge"):
        x.sum().backward()
    # a user linear solver that returns garbage
    x = im.root_solve(_cubic, x0, th, _ok_solver, linear_solver=lambda mv, v: v[:0])
    with pytest.raises(ValueError, match="linear_solver must return a tensor of shape"):
        x.sum().backward()


def test_fixed_point_errors():
    cell = _Cell().double()
    with pytest.raises(TypeError, match="f must be a torch.nn.Module"):
        im.FixedPointLayer(lambda z, x: z)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        im.FixedPointLayer(cell, max_iter=0)
    with pytest.raises(ValueError, match="linear_solver must be one of"):
        im.FixedPointLayer(cell, linear_solver="lu")
    layer = im.FixedPointLayer(cell)
    with pytest.raises(TypeError, match="x must have the dtype and device of f's parameters"):
        layer(torch.zeros(2, 3), torch.zeros(2, 6))
    with pytest.raises(ValueError, match="x must be finite"):
        layer(torch.full((2, 3), math.nan, dtype=D), torch.zeros(2, 6, dtype=D))
    with pytest.raises(ValueError, match="z0 must have x's dtype"):
        layer(torch.zeros(2, 3, dtype=D), torch.zeros(2, 6))
    with pytest.raises(ValueError, match="f must return a tensor of shape"):
        im.fixed_point_iteration(lambda z, t: z[:1], torch.zeros(2, dtype=D), None)
    with pytest.raises(ValueError, match="f returned a non-finite"):
        im.fixed_point_solve(lambda z, t: z * t * math.inf, torch.ones(2, dtype=D), torch.ones(2, dtype=D))
    with pytest.raises(TypeError, match="z0 must be a torch.Tensor"):
        im.fixed_point_solve(lambda z, t: z, None, torch.ones(2, dtype=D))
