"""Tests of lib/bilevel.py against closed forms, finite differences and dense linear algebra."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import bilevel as bl

D = torch.float64


def _ridge(seed: int = 0, n: int = 30, m: int = 25, d: int = 6):
    """Ridge regression with one penalty per feature: L_in = mse + sum exp(lam_i) w_i^2.

    Closed forms: w* = A^{-1} X^T y / n with A = X^T X / n + diag(exp(lam)), and
    dw*/dlam_i = -A^{-1} e_i exp(lam_i) w*_i, so the hypergradient is
    -exp(lam) * w* * (A^{-1} grad_w L_out).
    """
    g = torch.Generator().manual_seed(seed)
    X, Xv = torch.randn(n, d, generator=g, dtype=D), torch.randn(m, d, generator=g, dtype=D)
    w_true = torch.randn(d, generator=g, dtype=D)
    y = X @ w_true + 0.5 * torch.randn(n, generator=g, dtype=D)
    yv = Xv @ w_true + 0.5 * torch.randn(m, generator=g, dtype=D)
    lam = torch.randn(d, generator=g, dtype=D) - 1.0

    def inner(w, lam):
        return 0.5 * ((X @ w - y) ** 2).mean() + 0.5 * (lam.exp() * w * w).sum()

    def outer(w, lam):
        return 0.5 * ((Xv @ w - yv) ** 2).mean()

    def w_star(lam):
        A = X.T @ X / n + torch.diag(lam.exp())
        return torch.linalg.solve(A, X.T @ y / n)

    def closed_form(lam):
        A = X.T @ X / n + torch.diag(lam.exp())
        ws = w_star(lam)
        return -lam.exp() * ws * torch.linalg.solve(A, Xv.T @ (Xv @ ws - yv) / m)

    return inner, outer, lam, w_star, closed_form


def _logistic(seed: int = 0, n: int = 40, m: int = 30, d: int = 5):
    """Logistic regression with per-feature penalties; the validation loss also
    depends on lam directly (a small penalty term), so the direct term is tested too."""
    g = torch.Generator().manual_seed(seed)
    X, Xv = torch.randn(n, d, generator=g, dtype=D), torch.randn(m, d, generator=g, dtype=D)
    w_true = torch.randn(d, generator=g, dtype=D)
    y = (X @ w_true + torch.randn(n, generator=g, dtype=D) > 0).to(D)
    yv = (Xv @ w_true + torch.randn(m, generator=g, dtype=D) > 0).to(D)
    lam = torch.randn(d, generator=g, dtype=D) - 2.0

    def inner(w, lam):
        return F.binary_cross_entropy_with_logits(X @ w, y) + 0.5 * (lam.exp() * w * w).sum()

    def outer(w, lam):
        return F.binary_cross_entropy_with_logits(Xv @ w, yv) + 0.01 * (lam**2).sum()

    return inner, outer, lam


def _fd_hypergradient(outer, inner, lam, w0, eps=1e-5):
    """Central differences of lam -> outer(w*(lam), lam), re-solving the inner problem each time."""
    out = torch.empty_like(lam)
    for i in range(lam.numel()):
        e = torch.zeros_like(lam)
        e.view(-1)[i] = eps
        plus = outer(bl.solve_inner(inner, w0, lam + e), lam + e)
        minus = outer(bl.solve_inner(inner, w0, lam - e), lam - e)
        out.view(-1)[i] = (plus - minus) / (2 * eps)
    return out


def _rel(a, b):
    return float((a - b).norm() / b.norm())


# ------------------------------------------------------------------ solve_inner

def test_solve_inner_reaches_closed_form_ridge():
    inner, _, lam, w_star, _ = _ridge()
    w = bl.solve_inner(inner, torch.zeros(6, dtype=D), lam)
    torch.testing.assert_close(w, w_star(lam), atol=1e-12, rtol=0)


def test_solve_inner_logistic_is_stationary_and_matches_lbfgs():
    inner, _, lam = _logistic()
    w = bl.solve_inner(inner, torch.zeros(5, dtype=D), lam)
    wr = w.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(inner(wr, lam), wr)
    assert float(g.norm()) < 1e-10
    ref = torch.zeros(5, dtype=D, requires_grad=True)
    opt = torch.optim.LBFGS([ref], lr=1, max_iter=500, tolerance_grad=1e-14, tolerance_change=0,
                            line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        loss = inner(ref, lam)
        loss.backward()
        return loss
    opt.step(closure)
    torch.testing.assert_close(w, ref.detach(), atol=1e-7, rtol=0)


def test_solve_inner_nonconvex_start_and_matrix_shapes():
    # A double well per entry: the Hessian is negative at 0.1, so Newton must shift it;
    # w has shape (2, 2) and lam is a scalar.
    lam = torch.tensor(0.5, dtype=D)
    inner = lambda w, lam: ((w**2 - 1) ** 2).sum() + lam.exp() * 0.1 * (w - 0.3).pow(2).sum()
    w = bl.solve_inner(inner, torch.full((2, 2), 0.1, dtype=D), lam)
    assert w.shape == (2, 2)
    wr = w.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(inner(wr, lam), wr)
    assert float(g.norm()) < 1e-9
    assert torch.all(torch.linalg.eigvalsh(torch.func.hessian(lambda v: inner(v, lam))(w).reshape(4, 4)) > 0)


def test_solve_inner_zero_steps_returns_start():
    inner, _, lam, _, _ = _ridge()
    w0 = torch.ones(6, dtype=D)
    assert torch.equal(bl.solve_inner(inner, w0, lam, steps=0), w0)


# ------------------------------------------------------------------ implicit hypergradients

@pytest.mark.parametrize("inverse", ["exact", "cg", "neumann"])
def test_implicit_matches_closed_form_ridge(inverse):
    inner, outer, lam, w_star, closed_form = _ridge()
    h = bl.hypergradient(outer, inner, w_star(lam), lam, inverse=inverse, iters=2000)
    assert h.shape == lam.shape and h.dtype == D
    tol = 1e-12 if inverse != "neumann" else 1e-9
    assert _rel(h, closed_form(lam)) < tol


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_implicit_matches_finite_differences_of_resolved_problem(seed):
    inner, outer, lam = _logistic(seed)
    w0 = torch.zeros(5, dtype=D)
    w = bl.solve_inner(inner, w0, lam)
    fd = _fd_hypergradient(outer, inner, lam, w0)
    for inverse in ("exact", "cg"):
        h = bl.hypergradient(outer, inner, w, lam, inverse=inverse, iters=50)
        assert _rel(h, fd) < 1e-7, (inverse, h, fd)


def test_direct_term_only_when_outer_ignores_w():
    inner, _, lam, w_star, _ = _ridge()
    outer = lambda w, lam: (lam**3).sum()
    h = bl.hypergradient(outer, inner, w_star(lam), lam)
    torch.testing.assert_close(h, 3 * lam**2)


def test_zero_when_inner_ignores_lam():
    inner, outer, lam, w_star, _ = _ridge()
    inner_fixed = lambda w, lam: inner(w, torch.zeros_like(lam))
    h = bl.hypergradient(outer, inner_fixed, w_star(torch.zeros_like(lam)), lam)
    assert torch.equal(h, torch.zeros_like(lam))


def test_identity_is_one_term_neumann_and_one_step_unroll_from_optimum():
    # Lorraine et al. (2020): unrolling K steps of GD with step alpha from w* gives the
    # K-term Neumann series; K = 1 is the identity approximation (T1-T2).
    inner, outer, lam, w_star, _ = _ridge()
    ws = w_star(lam)
    alpha = 0.3
    ident = bl.hypergradient(outer, inner, ws, lam, inverse="identity", alpha=alpha)
    one = bl.hypergradient(outer, inner, ws, lam, inverse="neumann", iters=1, alpha=alpha)
    assert torch.equal(ident, one)
    for K in (1, 5, 40):
        neumann = bl.hypergradient(outer, inner, ws, lam, inverse="neumann", iters=K, alpha=alpha)
        unrolled = bl.hypergradient(outer, inner, ws, lam, method="unrolled", steps=K, lr=alpha)
        torch.testing.assert_close(unrolled, neumann, atol=1e-12, rtol=1e-10)


def test_hypergradient_with_matrix_weights_and_float32():
    # w of shape (3, 2), lam of shape (3,): a penalty per row; float32 within float32 accuracy.
    g = torch.Generator().manual_seed(4)
    X, Xv = torch.randn(20, 3, generator=g, dtype=D), torch.randn(15, 3, generator=g, dtype=D)
    Y, Yv = torch.randn(20, 2, generator=g, dtype=D), torch.randn(15, 2, generator=g, dtype=D)
    inner = lambda W, lam: ((X @ W - Y) ** 2).mean() + (lam.exp()[:, None] * W**2).sum()
    outer = lambda W, lam: ((Xv @ W - Yv) ** 2).mean()
    lam = torch.tensor([-1.0, 0.0, -2.0], dtype=D)
    W = bl.solve_inner(inner, torch.zeros(3, 2, dtype=D), lam)
    fd = _fd_hypergradient(outer, inner, lam, torch.zeros(3, 2, dtype=D))
    h = bl.hypergradient(outer, inner, W, lam)
    assert h.shape == (3,)
    assert _rel(h, fd) < 1e-7
    h32 = bl.hypergradient(lambda W, l: outer(W.double(), l).float(), lambda W, l: inner(W.double(), l.double()).float(),
                           W.float(), lam.float())
    assert h32.dtype == torch.float32 and _rel(h32.double(), fd) < 1e-3


# ------------------------------------------------------------------ unrolled hypergradients

def test_unrolled_matches_autograd_through_explicit_loop():
    inner, outer, lam = _logistic()
    w0 = torch.zeros(5, dtype=D)
    lr, K = 0.5, 30
    lam_ = lam.clone().requires_grad_(True)
    w = w0.clone().requires_grad_(True)
    for _ in range(K):  # the same loop written out with torch.func.grad
        w = w - lr * torch.func.grad(inner)(w, lam_)
    (ref,) = torch.autograd.grad(outer(w, lam_), lam_)
    h = bl.hypergradient(outer, inner, w0, lam, method="unrolled", steps=K, lr=lr)
    torch.testing.assert_close(h, ref, atol=1e-12, rtol=1e-10)


def test_unrolled_converges_to_implicit_as_steps_grow():
    inner, outer, lam, w_star, closed_form = _ridge()
    ref = closed_form(lam)
    w0 = torch.zeros(6, dtype=D)
    errors = [_rel(bl.hypergradient(outer, inner, w0, lam, method="unrolled", steps=K), ref)
              for K in (0, 5, 20, 80, 320)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-8 and errors[0] > 0.5, errors


def test_unrolled_zero_steps_is_direct_term():
    inner, outer, lam, _, _ = _ridge()
    direct = lambda w, lam: outer(w, lam) + lam.sum()
    h = bl.hypergradient(direct, inner, torch.zeros(6, dtype=D), lam, method="unrolled", steps=0, lr=0.1)
    torch.testing.assert_close(h, torch.ones(6, dtype=D))


# ------------------------------------------------------------------ inverse_hvp

def _spd(n, cond, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=D))
    lams = torch.logspace(0, math.log10(cond), n, dtype=D)
    return (q * lams) @ q.T, lams


def test_inverse_hvp_methods_against_solve():
    A, lams = _spd(12, 50.0)
    v = torch.randn(12, generator=torch.Generator().manual_seed(1), dtype=D)
    ref = torch.linalg.solve(A, v)
    mv = lambda q: A @ q
    torch.testing.assert_close(bl.inverse_hvp(mv, v, "exact"), ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(bl.inverse_hvp(mv, v, "cg", iters=12), ref, atol=1e-9, rtol=0)
    torch.testing.assert_close(bl.inverse_hvp(mv, v, "neumann", iters=3000), ref, atol=1e-9, rtol=0)
    torch.testing.assert_close(bl.inverse_hvp(mv, v, "identity", alpha=0.5), 0.5 * v)


def test_neumann_error_follows_its_rate():
    # With alpha = 1/lambda_max, the error after K terms along the eigenvector of
    # lambda_min is exactly (1 - lambda_min/lambda_max)^K of H^{-1} v there.
    A, lams = _spd(8, 10.0, seed=2)
    q = torch.linalg.eigh(A).eigenvectors[:, 0]
    for K in (1, 10, 50):
        x = bl.inverse_hvp(lambda u: A @ u, q, "neumann", iters=K, alpha=1 / 10.0)
        err = float((x - q / lams[0]).norm() * lams[0])
        assert err == pytest.approx((1 - 0.1) ** K, rel=1e-8)


def test_neumann_default_alpha_converges_and_cg_beats_neumann():
    A, _ = _spd(30, 100.0, seed=3)
    v = torch.randn(30, generator=torch.Generator().manual_seed(4), dtype=D)
    ref = torch.linalg.solve(A, v)
    neumann = _rel(bl.inverse_hvp(lambda u: A @ u, v, "neumann", iters=30), ref)
    cg = _rel(bl.inverse_hvp(lambda u: A @ u, v, "cg", iters=30), ref)
    assert cg < 1e-3 < 0.5 < neumann < 1  # the same 30 products: CG close, Neumann still far off


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.floats(1.0, 1e3), st.integers(0, 10**6))
def test_cg_solves_random_spd_systems(n, cond, seed):
    A, _ = _spd(n, cond, seed)
    v = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=D)
    x = bl.inverse_hvp(lambda u: A @ u, v, "cg", iters=4 * n)
    assert float((A @ x - v).norm()) <= 1e-8 * max(1.0, float(v.norm())) * cond


def test_zero_right_hand_side_gives_zero():
    for inverse in bl.INVERSES:
        x = bl.inverse_hvp(lambda u: 0 * u, torch.zeros(3, dtype=D), inverse)
        assert torch.equal(x, torch.zeros(3, dtype=D))


# ------------------------------------------------------------------ bad input

def _ok():
    inner, outer, lam, w_star, _ = _ridge()
    return inner, outer, w_star(lam), lam


def test_bad_tensors():
    inner, outer, w, lam = _ok()
    with pytest.raises(TypeError, match="w must be a torch.Tensor"):
        bl.hypergradient(outer, inner, [1.0], lam)
    with pytest.raises(TypeError, match="w must be float32 or float64"):
        bl.hypergradient(outer, inner, w.half(), lam)
    with pytest.raises(TypeError, match="lam must be float32 or float64"):
        bl.hypergradient(outer, inner, w, lam.long())
    with pytest.raises(ValueError, match="w must be finite"):
        bl.hypergradient(outer, inner, w * math.nan, lam)
    with pytest.raises(ValueError, match="lam must be finite"):
        bl.hypergradient(outer, inner, w, lam + math.inf)
    with pytest.raises(ValueError, match="lam must have at least one element"):
        bl.hypergradient(outer, inner, w, lam[:0])
    with pytest.raises(TypeError, match="lam must have w's dtype"):
        bl.hypergradient(outer, inner, w, lam.float())
    with pytest.raises(TypeError, match="w0 must be float32"):
        bl.solve_inner(inner, w.to(torch.bfloat16), lam)
    with pytest.raises(ValueError, match="v must be 1-D"):
        bl.inverse_hvp(lambda q: q, torch.ones(2, 2, dtype=D))
    with pytest.raises(ValueError, match="v must be finite"):
        bl.inverse_hvp(lambda q: q, torch.tensor([1.0, math.nan], dtype=D))


def test_bad_options():
    inner, outer, w, lam = _ok()
    with pytest.raises(ValueError, match="method must be one of"):
        bl.hypergradient(outer, inner, w, lam, method="forward")
    with pytest.raises(ValueError, match="inverse must be one of"):
        bl.hypergradient(outer, inner, w, lam, inverse="lbfgs")
    with pytest.raises(ValueError, match="iters must be >= 1"):
        bl.hypergradient(outer, inner, w, lam, iters=0)
    with pytest.raises(TypeError, match="iters must be an int"):
        bl.inverse_hvp(lambda q: q, w, iters=2.0)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        bl.hypergradient(outer, inner, w, lam, method="unrolled", steps=-1)
    with pytest.raises(ValueError, match="alpha must be a positive"):
        bl.hypergradient(outer, inner, w, lam, inverse="neumann", alpha=-0.1)
    with pytest.raises(ValueError, match="lr must be a positive"):
        bl.hypergradient(outer, inner, w, lam, method="unrolled", lr=0.0)
    with pytest.raises(TypeError, match="tol must be a number"):
        bl.solve_inner(inner, w, lam, tol="1e-8")
    with pytest.raises(ValueError, match="tol must be a finite"):
        bl.inverse_hvp(lambda q: q, w, tol=math.nan)
    with pytest.raises(TypeError, match="outer_loss must be callable"):
        bl.hypergradient("val", inner, w, lam)
    with pytest.raises(TypeError, match="matvec must be callable"):
        bl.inverse_hvp(None, w)


def test_bad_user_functions():
    inner, outer, w, lam = _ok()
    with pytest.raises(TypeError, match="outer_loss must return a floating torch.Tensor"):
        bl.hypergradient(lambda w, l: 1.0, inner, w, lam)
    with pytest.raises(ValueError, match="inner_loss must return a scalar"):
        bl.hypergradient(outer, lambda w, l: w * l, w, lam)
    with pytest.raises(ValueError, match="inner_loss returned a non-finite value"):
        bl.hypergradient(outer, lambda w, l: inner(w, l) + math.nan, w, lam)
    with pytest.raises(ValueError, match="outer_loss returned a non-finite value"):
        bl.hypergradient(lambda w, l: outer(w, l) * math.inf, inner, w, lam, method="unrolled", lr=0.1)
    with pytest.raises(ValueError, match="gradient of inner_loss is not finite"):
        bl.hypergradient(outer, lambda w, l: (w.abs() ** 0.5).sum() + l.sum(), torch.zeros_like(w), lam)
    with pytest.raises(ValueError, match="matvec must return 6 entries"):
        bl.inverse_hvp(lambda q: q[:-1], w)
    with pytest.raises(TypeError, match="matvec must return a floating"):
        bl.inverse_hvp(lambda q: "Hq", w)
    with pytest.raises(ValueError, match="matvec's output must be finite"):
        bl.inverse_hvp(lambda q: q * math.nan, w)
    with pytest.raises(ZeroDivisionError):  # an exception of the user's function reaches the caller
        bl.hypergradient(lambda w, l: 1 / 0, inner, w, lam)


def test_solver_failures_are_named():
    inner, outer, w, lam = _ok()
    flat = lambda w, l: (w * l).sum()  # linear in w: H = 0
    with pytest.raises(ValueError, match="singular"):
        bl.hypergradient(outer, flat, w, lam)
    saddle = lambda w, l: 0.5 * (w[0] ** 2 - w[1] ** 2) + (l * w).sum()
    with pytest.raises(ValueError, match="cg needs a positive definite Hessian"):
        bl.hypergradient(outer, saddle, w, lam, inverse="cg")
    with pytest.raises(ValueError, match="neumann series diverges"):
        bl.hypergradient(outer, inner, w, lam, inverse="neumann", alpha=1e6, iters=200)
    with pytest.raises(ValueError, match="alpha: cannot choose a default step"):
        bl.hypergradient(outer, flat, w, lam, inverse="neumann")
    with pytest.raises(ValueError, match="unrolled gradient descent diverged"):
        bl.hypergradient(outer, inner, w, lam, method="unrolled", steps=2000, lr=1e3)
    with pytest.raises(ValueError, match="lr: cannot choose a default step"):
        bl.hypergradient(outer, flat, w, lam, method="unrolled")
