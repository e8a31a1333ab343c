"""Tests of lib/games.py against closed forms, hand-unrolled recurrences and scipy.optimize."""

import cmath
import math

import numpy as np
import pytest
import scipy.optimize as so
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import games as gm

D = torch.float64


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def _game_matrix(n=4, m=3, seed=0):
    A = _rand(n, m, seed=seed)
    M = torch.zeros(n + m, n + m, dtype=D)
    M[:n, n:], M[n:, :n] = A, -A.T
    return A, M


def _stack(xs, ys):
    return torch.cat([xs, ys], dim=1)


# ---------------------------------------------------------------- games: fields

def test_bilinear_losses_and_field_agree():
    A, M = _game_matrix()
    x, y = _rand(4, seed=1), _rand(3, seed=2)
    vx, vy = gm.vector_field(gm.bilinear_game(A))(x, y)
    wx, wy = gm.bilinear_field(A)(x, y)
    torch.testing.assert_close(vx, A @ y)
    torch.testing.assert_close(vy, -A.T @ x)
    torch.testing.assert_close(torch.cat([wx, wy]), M @ torch.cat([x, y]))


def test_vector_field_of_a_nonlinear_game_by_hand():
    f = lambda x, y: (x**2).sum() * y.sum() + torch.sin(x @ y)
    g = lambda x, y: -(x @ y) + (y**4).sum()
    x, y = _rand(3, seed=3), _rand(3, seed=4)
    vx, vy = gm.vector_field((f, g))(x, y)
    torch.testing.assert_close(vx, 2 * x * y.sum() + torch.cos(x @ y) * y)
    torch.testing.assert_close(vy, -x + 4 * y**3)


def test_field_of_a_loss_that_ignores_its_player_is_zero():
    vx, vy = gm.vector_field((lambda x, y: y.sum(), lambda x, y: torch.tensor(1.0, dtype=D)))(
        torch.ones(2, dtype=D), torch.ones(2, dtype=D))
    assert torch.equal(vx, torch.zeros(2, dtype=D)) and torch.equal(vy, torch.zeros(2, dtype=D))


# ---------------------------------------------------------------- games: methods vs closed forms

@pytest.mark.parametrize("as_field", [False, True])
def test_simultaneous_gd_closed_form_iterates(as_field):
    A, M = _game_matrix()
    x0, y0, lr, K = _rand(4, seed=1), _rand(3, seed=2), 0.3, 12
    game = gm.bilinear_field(A) if as_field else gm.bilinear_game(A)
    xs, ys = gm.simultaneous_gd(game, x0, y0, lr, K)
    assert xs.shape == (K + 1, 4) and ys.shape == (K + 1, 3)
    z0 = torch.cat([x0, y0])
    ref = torch.stack([torch.linalg.matrix_power(torch.eye(7, dtype=D) - lr * M, k) @ z0 for k in range(K + 1)])
    torch.testing.assert_close(_stack(xs, ys), ref)
    # the norm grows by exactly lr^2 ||M z||^2 each step (z^T M z = 0): an outward spiral
    z = _stack(xs, ys)
    torch.testing.assert_close(z[1:].pow(2).sum(1), z[:-1].pow(2).sum(1) + lr**2 * (z[:-1] @ M.T).pow(2).sum(1))


def test_simultaneous_gd_spectral_radius_is_sqrt_one_plus_eta_sigma_squared():
    A, _ = _game_matrix(5, 5, seed=7)
    for lr in (0.01, 0.2, 1.0):
        rho = gm.spectral_radius(gm.iteration_matrix(A, "simultaneous", lr))
        sigma_max = torch.linalg.svdvals(A).max().item()
        assert rho == pytest.approx(math.sqrt(1 + lr**2 * sigma_max**2), rel=1e-12)
        assert rho > 1


def test_extragradient_closed_form_iterates_and_contraction():
    A, M = _game_matrix(3, 3, seed=5)
    sigma = torch.linalg.svdvals(A)
    lr = 0.9 / sigma.max().item()
    x0, y0, K = _rand(3, seed=1), _rand(3, seed=2), 10
    xs, ys = gm.extragradient(gm.bilinear_game(A), x0, y0, lr, K)
    T = torch.eye(6, dtype=D) - lr * M + lr**2 * M @ M
    z0 = torch.cat([x0, y0])
    ref = torch.stack([torch.linalg.matrix_power(T, k) @ z0 for k in range(K + 1)])
    torch.testing.assert_close(_stack(xs, ys), ref)
    torch.testing.assert_close(gm.iteration_matrix(A, "extragradient", lr), T)
    t = (lr * sigma) ** 2
    rho_ref = torch.sqrt(1 - t + t**2).max().item()  # |1 - eta^2 s^2 - i eta s|
    assert gm.spectral_radius(T) == pytest.approx(rho_ref, rel=1e-12)
    assert rho_ref < 1
    norms = _stack(xs, ys).norm(dim=1)
    assert (norms[1:] <= rho_ref * norms[:-1] + 1e-12).all()  # T is normal: contraction every step
    assert gm.spectral_radius(gm.iteration_matrix(A, "extragradient", 1.5 / sigma.max().item())) > 1


def test_alternating_gd_closed_form_and_unit_determinant():
    A, _ = _game_matrix(2, 3, seed=8)
    x0, y0, lr, K = _rand(2, seed=1), _rand(3, seed=2), 0.4, 9
    xs, ys = gm.alternating_gd(gm.bilinear_game(A), x0, y0, lr, K)
    x, y = x0.clone(), y0.clone()
    for k in range(1, K + 1):  # x moves first, y answers to the new x
        x = x - lr * A @ y
        y = y + lr * A.T @ x
        torch.testing.assert_close(xs[k], x)
        torch.testing.assert_close(ys[k], y)
    T = gm.iteration_matrix(A, "alternating", lr)
    torch.testing.assert_close(torch.linalg.det(T), torch.tensor(1.0, dtype=D))
    torch.testing.assert_close(T @ torch.cat([x0, y0]), torch.cat([xs[1], ys[1]]))
    assert gm.spectral_radius(T) == pytest.approx(1.0, abs=1e-9)  # lr sigma_max < 2: on the circle


def _complex_momentum_by_hand(field, x0, y0, lr, beta, K):
    """The recurrence in complex arithmetic: mu <- beta mu - v(z); z <- z + lr Re(mu)."""
    z, n = torch.cat([x0, y0]), x0.numel()
    mu = torch.zeros(z.numel(), dtype=torch.complex128)
    out = [z.clone()]
    for _ in range(K):
        vx, vy = field(z[:n], z[n:])
        mu = beta * mu - torch.cat([vx, vy]).to(torch.complex128)
        z = z + lr * mu.real
        out.append(z.clone())
    return torch.stack(out)


@pytest.mark.parametrize("beta", [0.7 * cmath.exp(0.4j * math.pi), -0.3 + 0.2j, 0.5, 0.0])
def test_complex_momentum_against_hand_unrolled_recurrence(beta):
    f = lambda x, y: x @ y + 0.1 * (x**2).sum() * y.sum()
    g = lambda x, y: -(x @ y) + 0.05 * (y**2).sum()
    field = gm.vector_field((f, g))
    x0, y0 = _rand(3, seed=1), _rand(3, seed=2)
    xs, ys = gm.complex_momentum((f, g), x0, y0, 0.2, beta, 15)
    torch.testing.assert_close(_stack(xs, ys), _complex_momentum_by_hand(field, x0, y0, 0.2, beta, 15))


def test_complex_momentum_special_cases():
    A, _ = _game_matrix()
    x0, y0 = _rand(4, seed=1), _rand(3, seed=2)
    game = gm.bilinear_game(A)
    torch.testing.assert_close(_stack(*gm.complex_momentum(game, x0, y0, 0.1, 0.0, 8)),
                               _stack(*gm.simultaneous_gd(game, x0, y0, 0.1, 8)))
    # a real beta is heavy ball: z' = z - lr v + beta (z - z_prev)
    xs, ys = gm.complex_momentum(game, x0, y0, 0.1, 0.6, 8)
    z = _stack(xs, ys)
    field = gm.bilinear_field(A)
    for k in range(1, 8):
        v = torch.cat(field(z[k, :4], z[k, 4:]))
        torch.testing.assert_close(z[k + 1], z[k] - 0.1 * v + 0.6 * (z[k] - z[k - 1]))


def test_complex_momentum_iteration_matrix_and_characteristic_cubic():
    A, M = _game_matrix(3, 2, seed=4)
    lr, beta = 0.25, 0.7 * cmath.exp(0.4j * math.pi)
    T = gm.iteration_matrix(A, "complex_momentum", lr, beta)
    x0, y0 = _rand(3, seed=1), _rand(2, seed=2)
    xs, ys = gm.complex_momentum(gm.bilinear_game(A), x0, y0, lr, beta, 6)
    s = torch.cat([torch.zeros(10, dtype=D), x0, y0])
    for k in range(1, 7):
        s = T @ s
        torch.testing.assert_close(s[10:], torch.cat([xs[k], ys[k]]))
    # per singular value sigma: the eigenvalues are the roots of
    # (t - 1)(t - beta)(t - conj beta) + lr * lam * t (t - Re beta) with lam = +-i sigma
    A1 = torch.tensor([[1.3]], dtype=D)
    ev = np.sort_complex(torch.linalg.eigvals(gm.iteration_matrix(A1, "complex_momentum", lr, beta)).numpy())
    roots = []
    for lam in (1.3j, -1.3j):
        p = np.polymul(np.polymul([1, -1], [1, -beta]), [1, -np.conj(beta)])
        roots.extend(np.roots(np.polyadd(p, lr * lam * np.array([1, -beta.real, 0]))))
    np.testing.assert_allclose(ev, np.sort_complex(np.array(roots)), atol=1e-10)


def test_complex_phase_makes_momentum_converge_on_bilinear_game():
    A = torch.diag(torch.linspace(1, 2, 4, dtype=D))
    real = [gm.spectral_radius(gm.iteration_matrix(A, "complex_momentum", 0.1, b)) for b in (-0.5, 0.3, 0.7)]
    assert min(real) > 1  # real momentum spirals out too
    assert gm.spectral_radius(gm.iteration_matrix(A, "complex_momentum", 0.1, 0.7 * cmath.exp(0.4j * math.pi))) < 1


def test_trajectories_keep_dtype_and_start():
    A = _rand(2, 2).float()
    x0, y0 = torch.ones(2), torch.zeros(2)
    for method in (gm.simultaneous_gd, gm.alternating_gd, gm.extragradient):
        xs, ys = method(gm.bilinear_game(A), x0, y0, 0.1, 3)
        assert xs.dtype == torch.float32 and torch.equal(xs[0], x0) and torch.equal(ys[0], y0)
    xs, _ = gm.complex_momentum(gm.bilinear_field(A), x0, y0, 0.1, 0.5j, 0)
    assert xs.shape == (1, 2)


def test_spectral_radius_matches_numpy():
    for seed in range(3):
        T = _rand(6, 6, seed=seed)
        assert gm.spectral_radius(T) == pytest.approx(np.abs(np.linalg.eigvals(T.numpy())).max(), rel=1e-12)


# ---------------------------------------------------------------- many objectives

@pytest.mark.parametrize("seed", range(40))
def test_nnls_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    p, m = rng.integers(1, 9, size=2)
    A, b = rng.standard_normal((p, m)), rng.standard_normal(p)
    if seed % 5 == 0:  # rank deficient: a repeated column
        A[:, -1] = A[:, 0]
    x = gm.nnls(torch.tensor(A), torch.tensor(b)).numpy()
    x_ref, res_ref = so.nnls(A, b)
    assert (x >= 0).all()
    assert np.linalg.norm(A @ x - b) == pytest.approx(res_ref, abs=1e-10)
    if np.linalg.matrix_rank(A) == m:  # unique solution
        np.testing.assert_allclose(x, x_ref, atol=1e-8)


def _projection_by_slsqp(J, v):
    J, v = J.numpy(), v.numpy()
    res = so.minimize(lambda d: 0.5 * np.sum((d - v) ** 2), v.copy(), jac=lambda d: d - v,
                      constraints=[{"type": "ineq", "fun": lambda d: J @ d, "jac": lambda d: J}],
                      method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
    return res.x


@pytest.mark.parametrize("seed", range(12))
def test_project_dual_cone_matches_brute_force_qp(seed):
    rng = np.random.default_rng(seed)
    m, n = rng.integers(1, 6), rng.integers(2, 7)
    J, v = torch.tensor(rng.standard_normal((m, n))), torch.tensor(rng.standard_normal(n))
    d = gm.project_dual_cone(J, v)
    assert (J @ d).min() >= -1e-10
    np.testing.assert_allclose(d.numpy(), _projection_by_slsqp(J, v), atol=1e-6)
    torch.testing.assert_close(gm.project_dual_cone(J, d), d, atol=1e-10, rtol=0)  # idempotent


@pytest.mark.parametrize("seed", range(12))
def test_upgrad_matches_mean_of_brute_force_projections(seed):
    rng = np.random.default_rng(100 + seed)
    m, n = rng.integers(2, 6), rng.integers(2, 7)
    J = torch.tensor(rng.standard_normal((m, n)))
    ref = np.mean([_projection_by_slsqp(J, J[i]) for i in range(m)], axis=0)
    np.testing.assert_allclose(gm.upgrad(J).numpy(), ref, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(1, 10), st.integers(0, 2**31 - 1), st.floats(1e-3, 1e3))
def test_upgrad_never_conflicts(m, n, seed, scale):
    J = scale * _rand(m, n, seed=seed)
    d = gm.upgrad(J)
    norms = J.norm(dim=1)
    assert ((J @ d) >= -1e-10 * norms * norms.max()).all()


def test_upgrad_single_objective_is_the_gradient_and_aligned_rows_are_averaged():
    g = _rand(1, 7, seed=3)
    torch.testing.assert_close(gm.upgrad(g), g[0])
    J = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=D)  # g1 . g2 > 0: nothing to project
    torch.testing.assert_close(gm.upgrad(J), J.mean(0))


def test_upgrad_two_conflicting_rows_closed_form():
    # m = 2: the projection of g1 onto {g2 . d >= 0} already satisfies g1 . d >= 0
    g1, g2 = torch.tensor([1.0, 0.2], dtype=D), torch.tensor([-0.8, 1.0], dtype=D)
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2
    p2 = g2 - (g1 @ g2) / (g1 @ g1) * g1
    torch.testing.assert_close(gm.upgrad(torch.stack([g1, g2])), (p1 + p2) / 2)


def test_upgrad_scales_with_j_and_ignores_row_order():
    J = _rand(4, 6, seed=9)
    torch.testing.assert_close(gm.upgrad(3.0 * J), 3.0 * gm.upgrad(J))
    torch.testing.assert_close(gm.upgrad(J[[2, 0, 3, 1]]), gm.upgrad(J))
    assert torch.equal(gm.upgrad(torch.zeros(3, 4, dtype=D)), torch.zeros(4, dtype=D))


def test_mean_gradient_can_conflict():
    J = torch.tensor([[1.0, 0.0], [-3.0, 0.1]], dtype=D)
    torch.testing.assert_close(gm.mean_gradient(J), J.mean(0))
    assert (J @ gm.mean_gradient(J)).min() < 0
    assert (J @ gm.upgrad(J)).min() >= -1e-12


@pytest.mark.parametrize("seed", range(15))
def test_mgda_is_the_min_norm_point_of_the_hull(seed):
    rng = np.random.default_rng(200 + seed)
    m, n = rng.integers(1, 7), rng.integers(2, 8)
    J = torch.tensor(rng.standard_normal((m, n)))
    d = gm.mgda(J)
    G = (J @ J.T).numpy()
    res = so.minimize(lambda w: w @ G @ w, np.ones(m) / m, jac=lambda w: 2 * G @ w, bounds=[(0, None)] * m,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}], method="SLSQP",
                      options={"ftol": 1e-15, "maxiter": 1000})
    assert float(d @ d) == pytest.approx(res.fun, abs=1e-8)
    assert ((J @ d) >= (d @ d) - 1e-10).all()  # g_i . d >= ||d||^2: never conflicts


def test_mgda_two_rows_closed_form_and_pareto_stationary_point():
    g1, g2 = torch.tensor([2.0, 0.5], dtype=D), torch.tensor([-1.0, 1.0], dtype=D)
    w = ((g2 - g1) @ g2 / (g1 - g2).pow(2).sum()).clamp(0, 1)
    torch.testing.assert_close(gm.mgda(torch.stack([g1, g2])), w * g1 + (1 - w) * g2)
    torch.testing.assert_close(gm.mgda(torch.stack([g1, -2 * g1])), torch.zeros(2, dtype=D), atol=1e-12, rtol=0)


def test_aggregators_keep_dtype():
    J = _rand(3, 5).float()
    for agg in (gm.mean_gradient, gm.mgda, gm.upgrad):
        assert agg(J).dtype == torch.float32 and agg(J).shape == (5,)


def test_loss_jacobian_matches_jacrev():
    w = _rand(3, 2, seed=1).requires_grad_(True)
    b = _rand(2, seed=2).requires_grad_(True)
    x = _rand(5, 3, seed=3)

    def losses_of(w_, b_):
        out = x @ w_ + b_
        return torch.stack([out[:, 0].pow(2).mean(), torch.tanh(out).sum(), w_.sum() * 0 + 1.0])

    J = gm.loss_jacobian(losses_of(w, b), [w, b])
    jw, jb = torch.func.jacrev(losses_of, argnums=(0, 1))(w.detach(), b.detach())
    torch.testing.assert_close(J, torch.cat([jw.reshape(3, -1), jb.reshape(3, -1)], 1))


# ---------------------------------------------------------------- errors

def test_game_errors():
    A = _rand(2, 2)
    x0, y0 = torch.ones(2, dtype=D), torch.ones(2, dtype=D)
    with pytest.raises(TypeError, match="game"):
        gm.simultaneous_gd("not a game", x0, y0, 0.1, 2)
    with pytest.raises(TypeError, match="game"):
        gm.simultaneous_gd((lambda x, y: x.sum(),), x0, y0, 0.1, 2)
    with pytest.raises(TypeError, match="x0"):
        gm.simultaneous_gd(gm.bilinear_field(A), [1.0, 2.0], y0, 0.1, 2)
    with pytest.raises(TypeError, match="y0"):
        gm.extragradient(gm.bilinear_field(A), x0, torch.ones(2, dtype=torch.int64), 0.1, 2)
    with pytest.raises(ValueError, match="x0"):
        gm.alternating_gd(gm.bilinear_field(A), torch.tensor([math.nan, 0.0], dtype=D), y0, 0.1, 2)
    with pytest.raises(ValueError, match="x0 and y0"):
        gm.simultaneous_gd(gm.bilinear_field(A), x0, y0.float(), 0.1, 2)
    with pytest.raises(ValueError, match="x0"):
        gm.simultaneous_gd(gm.bilinear_field(A), torch.ones(0, dtype=D), y0, 0.1, 2)
    with pytest.raises(ValueError, match="lr"):
        gm.simultaneous_gd(gm.bilinear_field(A), x0, y0, -0.1, 2)
    with pytest.raises(TypeError, match="lr"):
        gm.simultaneous_gd(gm.bilinear_field(A), x0, y0, "0.1", 2)
    with pytest.raises(ValueError, match="steps"):
        gm.simultaneous_gd(gm.bilinear_field(A), x0, y0, 0.1, -1)
    with pytest.raises(TypeError, match="steps"):
        gm.simultaneous_gd(gm.bilinear_field(A), x0, y0, 0.1, 2.0)
    with pytest.raises(TypeError, match="beta"):
        gm.complex_momentum(gm.bilinear_field(A), x0, y0, 0.1, "0.5j", 2)
    with pytest.raises(ValueError, match="beta"):
        gm.complex_momentum(gm.bilinear_field(A), x0, y0, 0.1, complex(math.nan, 0), 2)
    with pytest.raises(ValueError, match="x"):
        gm.simultaneous_gd(gm.bilinear_field(A), torch.ones(3, dtype=D), y0, 0.1, 2)
    with pytest.raises(ValueError, match="y"):
        gm.simultaneous_gd(gm.bilinear_game(A), x0, torch.ones(3, dtype=D), 0.1, 2)


def test_user_function_errors():
    x0, y0 = torch.ones(2, dtype=D), torch.ones(2, dtype=D)
    with pytest.raises(TypeError, match="pair of tensors"):
        gm.simultaneous_gd(lambda x, y: x, x0, y0, 0.1, 2)
    with pytest.raises(ValueError, match="v_x"):
        gm.simultaneous_gd(lambda x, y: (x[:1], y), x0, y0, 0.1, 2)
    with pytest.raises(ValueError, match="scalar"):
        gm.simultaneous_gd((lambda x, y: x * y, lambda x, y: (x * y).sum()), x0, y0, 0.1, 2)
    with pytest.raises(TypeError, match="loss g"):
        gm.simultaneous_gd((lambda x, y: (x * y).sum(), lambda x, y: 1.0), x0, y0, 0.1, 2)
    with pytest.raises(ValueError, match="NaN or inf"):
        gm.simultaneous_gd(lambda x, y: (x * math.nan, y), x0, y0, 0.1, 2)
    with pytest.raises(ValueError, match="NaN or inf"):
        gm.extragradient((lambda x, y: (x * y).sum() * math.inf, lambda x, y: (x * y).sum()), x0, y0, 0.1, 2)
    with pytest.raises(TypeError, match="x"):
        gm.vector_field(gm.bilinear_field(torch.eye(2, dtype=D)))([1.0, 2.0], y0)
    with pytest.raises(ValueError, match="diverged"):  # overflow of an exploding method
        gm.simultaneous_gd(gm.bilinear_field(torch.eye(2, dtype=D)), x0, y0, 1e200, 3)


def test_matrix_errors():
    A = _rand(2, 3)
    with pytest.raises(ValueError, match="method"):
        gm.iteration_matrix(A, "newton", 0.1)
    with pytest.raises(ValueError, match="A"):
        gm.iteration_matrix(torch.ones(3, dtype=D), "simultaneous", 0.1)
    with pytest.raises(ValueError, match="lr"):
        gm.iteration_matrix(A, "simultaneous", math.inf)
    with pytest.raises(ValueError, match="overflows"):
        gm.iteration_matrix(A, "extragradient", 1e200)
    with pytest.raises(ValueError, match="square"):
        gm.spectral_radius(A)
    with pytest.raises(TypeError, match="T"):
        gm.spectral_radius(torch.eye(2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="A"):
        gm.bilinear_game(torch.full((2, 2), math.inf))


def test_aggregator_errors():
    J = _rand(2, 3)
    for agg in (gm.mean_gradient, gm.mgda, gm.upgrad):
        with pytest.raises(ValueError, match="J"):
            agg(torch.ones(3, dtype=D))
        with pytest.raises(TypeError, match="J"):
            agg(torch.ones(2, 3, dtype=torch.int64))
        with pytest.raises(ValueError, match="J"):
            agg(torch.tensor([[1.0, math.nan]], dtype=D))
        with pytest.raises(ValueError, match="J"):
            agg(torch.ones(0, 3, dtype=D))
    with pytest.raises(ValueError, match="v"):
        gm.project_dual_cone(J, torch.ones(2, dtype=D))
    with pytest.raises(ValueError, match="overflows"):  # finite input, result beyond float16's range
        gm.project_dual_cone(torch.tensor([[-3.0, 1.0, 0.0, 0.0]], dtype=torch.float16),
                             torch.full((4,), 6e4, dtype=torch.float16))
    with pytest.raises(ValueError, match="b"):
        gm.nnls(J, torch.ones(3, dtype=D))
    with pytest.raises(TypeError, match="b"):
        gm.nnls(J, np.ones(2))


def test_loss_jacobian_errors():
    w = torch.ones(2, dtype=D, requires_grad=True)
    with pytest.raises(TypeError, match="losses"):
        gm.loss_jacobian([], [w])
    with pytest.raises(TypeError, match="params"):
        gm.loss_jacobian([w.sum()], [torch.ones(2)])
    with pytest.raises(ValueError, match="scalar"):
        gm.loss_jacobian([w * 2], [w])
    with pytest.raises(ValueError, match="finite"):
        gm.loss_jacobian([w.sum() * math.inf], [w])
