"""Tests of lib/chaos.py against closed forms, hand-unrolled recurrences, torch.func and known exponents."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import chaos

D = torch.float64
LORENZ = torch.tensor([10.0, 28.0, 8.0 / 3.0], dtype=D)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _lorenz_step(x, theta):
    return chaos.rk4_step(chaos.lorenz, x, theta, 0.01)


def _linear_step(A):
    return lambda x, theta: x @ A.T


def _on_attractor(n=16, seed=0):
    x0 = torch.randn(n, 3, generator=_gen(seed), dtype=D) + torch.tensor([0.0, 0.0, 25.0], dtype=D)
    return chaos.rollout(_lorenz_step, x0, LORENZ, 300)[-1]


# ---------------------------------------------------------------- systems

def test_logistic_map_closed_form_and_broadcasting():
    x = torch.tensor([[0.1], [0.5], [0.9]], dtype=D)
    torch.testing.assert_close(chaos.logistic_map(x, 4.0), 4 * x * (1 - x))
    r = torch.tensor([[3.0], [3.5], [4.0]], dtype=D)  # one r per trajectory
    torch.testing.assert_close(chaos.logistic_map(x, r), r * x * (1 - x))
    assert chaos.logistic_map(torch.tensor(0.5, dtype=torch.float32), 4.0).item() == 1.0


def test_lorenz_field_by_hand_and_defaults():
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 20.0]], dtype=D)
    s, r, b = 10.0, 28.0, 8.0 / 3.0
    ref = torch.stack([s * (x[:, 1] - x[:, 0]), x[:, 0] * (r - x[:, 2]) - x[:, 1], x[:, 0] * x[:, 1] - b * x[:, 2]], 1)
    torch.testing.assert_close(chaos.lorenz(x), ref)
    torch.testing.assert_close(chaos.lorenz(x, LORENZ), ref)
    per_row = torch.stack([LORENZ, torch.tensor([1.0, 2.0, 3.0], dtype=D)])
    torch.testing.assert_close(chaos.lorenz(x, per_row)[1], chaos.lorenz(x[1], per_row[1]))


def test_damped_pendulum_by_hand():
    x = torch.tensor([[0.3, -0.2], [2.0, 1.0]], dtype=D)
    theta = torch.tensor([0.5, 2.0], dtype=D)
    ref = torch.stack([x[:, 1], -0.5 * x[:, 1] - 4.0 * torch.sin(x[:, 0])], 1)
    torch.testing.assert_close(chaos.damped_pendulum(x, theta), ref)
    torch.testing.assert_close(chaos.damped_pendulum(x), torch.stack([x[:, 1], -0.5 * x[:, 1] - torch.sin(x[:, 0])], 1))


@given(st.floats(-2.0, 2.0), st.floats(0.01, 0.5))
@settings(max_examples=25, deadline=None)
def test_rk4_is_the_fourth_order_taylor_polynomial_on_linear_fields(a, dt):
    x = torch.tensor([1.0, -2.0], dtype=D)
    out = chaos.rk4_step(lambda z, th: th * z, x, a, dt)
    ha = a * dt
    torch.testing.assert_close(out, x * (1 + ha + ha**2 / 2 + ha**3 / 6 + ha**4 / 24), rtol=1e-13, atol=1e-13)


def test_rk4_global_error_falls_like_h4():
    errors = []
    for n in (10, 20, 40):
        x = torch.tensor([1.0], dtype=D)
        for _ in range(n):
            x = chaos.rk4_step(lambda z, th: -z**2, x, None, 1.0 / n)  # x' = -x^2, x(1) = 1/2
        errors.append(abs(x.item() - 0.5))
    assert 14 < errors[0] / errors[1] < 18 and 14 < errors[1] / errors[2] < 18, errors


def test_rollout_shapes_and_gradient_is_the_product_of_derivatives():
    x0 = torch.tensor([[0.2], [0.7]], dtype=D, requires_grad=True)
    path = chaos.rollout(chaos.logistic_map, x0, 3.9, 12)
    assert path.shape == (13, 2, 1)
    assert torch.equal(path[0], x0)
    manual = x0.detach()
    for _ in range(12):
        manual = 3.9 * manual * (1 - manual)
    torch.testing.assert_close(path[-1], manual)
    (g,) = torch.autograd.grad(path[-1].sum(), x0)
    product = (3.9 * (1 - 2 * path[:-1].detach())).prod(0)  # chain rule: prod_t f'(x_t)
    torch.testing.assert_close(g, product)


def test_rollout_of_zero_steps_and_theta_gradient():
    x0 = torch.tensor([0.3], dtype=D)
    assert torch.equal(chaos.rollout(chaos.logistic_map, x0, 3.0, 0), x0[None])
    r = torch.tensor([3.7], dtype=D, requires_grad=True)
    path = chaos.rollout(chaos.logistic_map, x0, r, 5)
    (g,) = torch.autograd.grad(path[-1].sum(), r)
    ref = torch.func.grad(lambda rr: chaos.rollout(chaos.logistic_map, x0, rr, 5)[-1].sum())(r.detach())
    h = 1e-6  # and a central difference
    fd = (chaos.rollout(chaos.logistic_map, x0, 3.7 + h, 5)[-1] - chaos.rollout(chaos.logistic_map, x0, 3.7 - h, 5)[-1]) / (2 * h)
    torch.testing.assert_close(g, ref)
    torch.testing.assert_close(g, fd, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- Lyapunov exponents

def test_tangent_growth_of_a_linear_map_is_exact():
    A = torch.tensor([[2.0, 1.0], [0.0, 0.5]], dtype=D)
    v0 = torch.tensor([0.3, -1.0], dtype=D)
    logs = chaos.tangent_log_growth(_linear_step(A), torch.zeros(2, dtype=D), None, 15, v0=v0)
    assert logs.shape == (15,)
    # the sum of the logs is log ||A^15 v0 / ||v0|| ||: renormalising never changes the direction
    ref = torch.linalg.matrix_power(A, 15) @ (v0 / v0.norm())
    torch.testing.assert_close(logs.sum(), ref.norm().log())


def test_tangent_growth_matches_jacobians_from_torch_func():
    x0 = _on_attractor(2)
    v0 = torch.randn(2, 3, generator=_gen(1), dtype=D)
    logs = chaos.tangent_log_growth(_lorenz_step, x0, LORENZ, 5, v0=v0)
    for b in range(2):
        x, v = x0[b], v0[b] / v0[b].norm()
        for t in range(5):
            J = torch.func.jacfwd(lambda z: _lorenz_step(z, LORENZ))(x)
            x, v = _lorenz_step(x, LORENZ), J @ v
            torch.testing.assert_close(logs[t, b], v.norm().log())
            v = v / v.norm()


def test_lyapunov_exponent_of_the_logistic_map():
    x0 = 0.1 + 0.8 * torch.rand(100, 1, generator=_gen(0), dtype=D)
    lam4 = chaos.lyapunov_exponent(chaos.logistic_map, x0, 4.0, 2000, burn_in=50, generator=_gen(1))
    assert lam4.shape == (100,)
    assert abs(lam4.mean().item() - math.log(2)) < 0.01  # exactly ln 2 in the limit
    lam28 = chaos.lyapunov_exponent(chaos.logistic_map, x0, 2.8, 300, burn_in=200, generator=_gen(1))
    torch.testing.assert_close(lam28, torch.full((100,), math.log(0.8), dtype=D))  # |f'(x*)| = |2 - r|


def test_lyapunov_exponent_of_lorenz():
    lam = chaos.lyapunov_exponent(_lorenz_step, _on_attractor(64), LORENZ, 2000, dt=0.01, burn_in=100,
                                  generator=_gen(2))
    assert abs(lam.mean().item() - 0.9056) < 0.05, lam.mean()


def test_lyapunov_exponent_of_the_damped_pendulum_is_minus_half_the_damping():
    step = lambda x, th: chaos.rk4_step(chaos.damped_pendulum, x, th, 0.05)
    x0 = 0.1 * torch.randn(4, 2, generator=_gen(3), dtype=D)
    lam = chaos.lyapunov_exponent(step, x0, torch.tensor([0.5, 1.0], dtype=D), 2000, dt=0.05, generator=_gen(4))
    assert (lam + 0.25).abs().max() < 0.01, lam


@given(st.lists(st.floats(0.2, 3.0), min_size=3, max_size=3, unique=True), st.integers(0, 10**6))
@settings(max_examples=20, deadline=None)
def test_lyapunov_exponent_of_a_triangular_linear_map_is_its_log_spectral_radius(diag, seed):
    diag = sorted(diag, reverse=True)
    if diag[0] < 1.3 * diag[1]:
        diag[0] = 1.3 * diag[1]  # a gap, so that 400 steps settle
    A = torch.diag(torch.tensor(diag, dtype=D)) + torch.triu(torch.randn(3, 3, generator=_gen(seed), dtype=D), 1)
    lam = chaos.lyapunov_exponent(_linear_step(A), torch.zeros(3, dtype=D), None, 400, generator=_gen(seed))
    assert lam.shape == ()
    assert abs(lam.item() - math.log(diag[0])) < 0.03, (lam, diag)


# ---------------------------------------------------------------- gradient norms

def test_gradient_norms_wrt_x0_is_the_product_of_derivatives():
    x0 = torch.tensor([[0.2], [0.45], [0.8]], dtype=D)
    norms = chaos.gradient_norms(chaos.logistic_map, x0, 3.9, [1, 4, 9])
    path = chaos.rollout(chaos.logistic_map, x0, 3.9, 9)
    for i, T in enumerate([1, 4, 9]):
        ref = (3.9 * (1 - 2 * path[:T])).prod(0).abs().squeeze(-1)
        torch.testing.assert_close(norms[i], ref)


def test_gradient_norms_against_torch_func_for_lorenz():
    x0 = _on_attractor(3)
    loss = lambda xT: (xT**2).sum(-1)
    for wrt in ("x0", "theta"):
        norms = chaos.gradient_norms(_lorenz_step, x0, LORENZ, [7, 30], wrt=wrt, loss=loss)
        assert norms.shape == (2, 3)
        for i, T in enumerate([7, 30]):
            for b in range(3):
                def f(x, th):
                    return loss(chaos.rollout(_lorenz_step, x, th, T)[-1])
                g = torch.func.grad(f, argnums=0 if wrt == "x0" else 1)(x0[b], LORENZ)
                torch.testing.assert_close(norms[i, b], g.norm())


def test_gradient_norms_wrt_theta_per_trajectory_and_bounded_for_a_stable_map():
    x0 = torch.tensor([[0.3], [0.6]], dtype=D)
    r = torch.tensor([2.8], dtype=D)
    norms = chaos.gradient_norms(chaos.logistic_map, x0, r, [1, 50, 200], wrt="theta")
    # each trajectory separately gives the same numbers
    for b in range(2):
        torch.testing.assert_close(norms[:, b], chaos.gradient_norms(chaos.logistic_map, x0[b], r, [1, 50, 200],
                                                                     wrt="theta"))
    # at the fixed point x* = 1 - 1/r the sensitivity is dx*/dr = 1/r^2
    torch.testing.assert_close(norms[-1], torch.full((2,), 1 / 2.8**2, dtype=D))


def test_gradient_norms_of_a_loss_that_ignores_the_state_are_zero():
    norms = chaos.gradient_norms(chaos.logistic_map, torch.tensor([[0.3]], dtype=D), 3.9, [2],
                                 loss=lambda xT: torch.zeros(xT.shape[:-1], dtype=D))
    assert torch.equal(norms, torch.zeros(1, 1, dtype=D))


def test_gradient_norms_overflow_is_refused():
    with pytest.raises(ValueError, match="overflow"):
        chaos.gradient_norms(chaos.logistic_map, torch.tensor([[0.3]], dtype=D), 3.9, [2500])


# ---------------------------------------------------------------- remedies

def test_teacher_forcing_limits_and_its_damped_jacobian():
    x0 = torch.tensor([[0.3], [0.55]], dtype=D)
    data = chaos.rollout(chaos.logistic_map, torch.tensor([[0.31], [0.5]], dtype=D), 3.9, 8)[1:]
    free = chaos.teacher_forced_rollout(chaos.logistic_map, x0, 3.8, data, 0.0)
    torch.testing.assert_close(free, chaos.rollout(chaos.logistic_map, x0, 3.8, 8)[1:])
    forced = chaos.teacher_forced_rollout(chaos.logistic_map, x0, 3.8, data, 1.0)
    starts = torch.cat([x0[None], data[:-1]])
    torch.testing.assert_close(forced, 3.8 * starts * (1 - starts))  # one-step predictions from the data
    # d z_T / d x0 = prod_t (1 - alpha) f'(z_t): the forcing damps every factor
    alpha = 0.3
    x = x0.clone().requires_grad_(True)
    y = chaos.teacher_forced_rollout(chaos.logistic_map, x, 3.8, data, alpha)
    (g,) = torch.autograd.grad(y[-1].sum(), x)
    z = x0
    ref = torch.ones_like(x0)
    for t in range(8):
        ref = ref * 3.8 * (1 - 2 * z)
        if t < 7:
            ref = ref * (1 - alpha)
        z = (1 - alpha) * 3.8 * z * (1 - z) + alpha * data[t]
    torch.testing.assert_close(g, ref)


def test_smoothed_gradients_of_a_linear_and_a_quadratic_loss():
    a = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    theta = torch.tensor([0.3, 0.1, -0.4], dtype=D)
    linear = lambda th: th @ a
    pw = chaos.smoothed_gradient_samples(linear, theta, 0.1, 50, "pathwise", _gen(0))
    torch.testing.assert_close(pw, a.expand(50, 3))  # the pathwise estimate of a linear loss has no noise
    es = chaos.smoothed_gradient_samples(linear, theta, 0.1, 20000, "es", _gen(0))
    eps = torch.randn(20000, 3, generator=_gen(0), dtype=D)
    torch.testing.assert_close(es, (eps @ a)[:, None] * eps)  # (a . eps) eps, exactly
    assert (es.mean(0) - a).abs().max() < 0.06
    quad = lambda th: (th**2).sum(-1)  # smoothed gradient 2 theta
    for est in ("es", "pathwise"):
        g = chaos.smoothed_gradient_samples(quad, theta, 0.5, 20000, est, _gen(1))
        assert g.shape == (20000, 3) and (g.mean(0) - 2 * theta).abs().max() < 0.05


def test_smoothed_gradient_of_a_constant_is_zero_and_generator_is_reproducible():
    theta = torch.tensor([0.3, 0.1], dtype=D)
    const = lambda th: torch.zeros(th.shape[0], dtype=D)
    assert torch.equal(chaos.smoothed_gradient_samples(const, theta, 0.1, 4, "pathwise"), torch.zeros(4, 2, dtype=D))
    f = lambda th: th.sin().sum(-1)
    a = chaos.smoothed_gradient_samples(f, theta, 0.1, 5, "es", _gen(7))
    b = chaos.smoothed_gradient_samples(f, theta, 0.1, 5, "es", _gen(7))
    assert torch.equal(a, b)


# ---------------------------------------------------------------- errors

X1 = torch.tensor([[0.3]], dtype=D)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: chaos.logistic_map([0.3], 3.9), TypeError, "x must be a torch.Tensor"),
    (lambda: chaos.logistic_map(torch.tensor([1]), 3.9), TypeError, "float32 or float64"),
    (lambda: chaos.logistic_map(torch.tensor([0.3], dtype=torch.float16), 3.9), TypeError, "float32 or float64"),
    (lambda: chaos.logistic_map(torch.tensor([math.nan], dtype=D), 3.9), ValueError, "x must be finite"),
    (lambda: chaos.logistic_map(torch.zeros(0, dtype=D), 3.9), ValueError, "at least one element"),
    (lambda: chaos.logistic_map(X1, None), TypeError, "r must be"),
    (lambda: chaos.logistic_map(X1, True), TypeError, "r must be"),
    (lambda: chaos.logistic_map(X1, math.inf), ValueError, "r must be a finite"),
    (lambda: chaos.logistic_map(X1, 10**400), ValueError, "r must be a finite"),
    (lambda: chaos.logistic_map(X1, torch.ones(3, dtype=D)), ValueError, "r of shape"),
    (lambda: chaos.logistic_map(torch.tensor([1e200], dtype=D), 3.9), ValueError, "overflow"),
    (lambda: chaos.lorenz(torch.zeros(2, dtype=D)), ValueError, r"\(\.\.\., 3\)"),
    (lambda: chaos.lorenz(torch.zeros(3, dtype=D), torch.ones(2, dtype=D)), ValueError, "theta must be a tensor of shape"),
    (lambda: chaos.lorenz(torch.zeros(3, dtype=D), 10.0), ValueError, "theta must be a tensor of shape"),
    (lambda: chaos.lorenz(torch.zeros(2, 3, dtype=D), torch.ones(5, 3, dtype=D)), ValueError, "does not broadcast"),
    (lambda: chaos.lorenz(torch.zeros(3, dtype=D), torch.tensor([1.0, math.nan, 1.0], dtype=D)), ValueError,
     "theta must be finite"),
    (lambda: chaos.lorenz(torch.zeros(3, dtype=D), "abc"), TypeError, "theta must be None"),
    (lambda: chaos.damped_pendulum(torch.zeros(3, dtype=D)), ValueError, r"\(\.\.\., 2\)"),
    (lambda: chaos.damped_pendulum(torch.zeros(2, dtype=D), torch.ones(2, dtype=torch.int64)), TypeError, "theta"),
    (lambda: chaos.rk4_step("lorenz", torch.zeros(3, dtype=D), None, 0.1), TypeError, "field must be callable"),
    (lambda: chaos.rk4_step(chaos.lorenz, torch.zeros(3, dtype=D), None, 0.0), ValueError, "dt must be > 0"),
    (lambda: chaos.rk4_step(chaos.lorenz, torch.zeros(3, dtype=D), None, math.nan), ValueError, "dt must be a finite"),
    (lambda: chaos.rk4_step(chaos.lorenz, torch.zeros(3, dtype=D), None, "0.1"), TypeError, "dt must be a real"),
    (lambda: chaos.rk4_step(lambda x, th: x.sum(), torch.zeros(3, dtype=D), None, 0.1), ValueError,
     "field must return a tensor of the state's shape"),
    (lambda: chaos.rk4_step(lambda x, th: 1.0, torch.zeros(3, dtype=D), None, 0.1), TypeError,
     "field must return a torch.Tensor"),
    (lambda: chaos.rk4_step(lambda x, th: x * math.nan, torch.zeros(3, dtype=D), None, 0.1), ValueError,
     "field returned a non-finite"),
    (lambda: chaos.rk4_step(lambda x, th: x.long(), torch.zeros(3, dtype=D), None, 0.1), TypeError, "floating"),
    (lambda: chaos.rollout(chaos.logistic_map, X1, 3.9, -1), ValueError, "steps must be an int >= 0"),
    (lambda: chaos.rollout(chaos.logistic_map, X1, 3.9, 2.0), TypeError, "steps must be an int"),
    (lambda: chaos.rollout(chaos.logistic_map, X1, 3.9, True), TypeError, "steps must be an int"),
    (lambda: chaos.rollout(None, X1, 3.9, 3), TypeError, "step must be callable"),
    (lambda: chaos.rollout(chaos.logistic_map, X1 * 10, 3.9, 500), ValueError, "overflow"),
    (lambda: chaos.rollout(lambda x, th: x[:0], X1, None, 3), ValueError, "step must return a tensor of the state's shape"),
    (lambda: chaos.rollout(chaos.logistic_map, X1, torch.ones(1, dtype=D, device="meta"), 3), ValueError, "device"),
    (lambda: chaos.tangent_log_growth(chaos.logistic_map, X1, 3.9, 0), ValueError, "steps must be an int >= 1"),
    (lambda: chaos.tangent_log_growth(chaos.logistic_map, X1, 3.9, 5, burn_in=-1), ValueError, "burn_in"),
    (lambda: chaos.tangent_log_growth(chaos.logistic_map, torch.tensor(0.3, dtype=D), 3.9, 5), ValueError,
     "at least 1 dimension"),
    (lambda: chaos.tangent_log_growth(chaos.logistic_map, X1, 3.9, 5, v0=torch.zeros(1, 1, dtype=D)), ValueError,
     "non-zero"),
    (lambda: chaos.tangent_log_growth(chaos.logistic_map, X1, 3.9, 5, v0=torch.ones(2, dtype=D)), ValueError,
     "v0 must have x0's shape"),
    (lambda: chaos.tangent_log_growth(chaos.logistic_map, X1, 3.9, 5, generator=0), TypeError, "generator"),
    (lambda: chaos.tangent_log_growth(lambda x, th: x * 0, X1, None, 5), ValueError, "vanished"),
    (lambda: chaos.tangent_log_growth(lambda x, th: torch.ones_like(x), X1, None, 5), ValueError, "vanished"),
    (lambda: chaos.lyapunov_exponent(chaos.logistic_map, X1, 3.9, 5, dt=0), ValueError, "dt must be > 0"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, 3.9, []), TypeError, "horizons"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, 3.9, 5), TypeError, "horizons"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, 3.9, [0]), ValueError, "horizons"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, 3.9, [1.5]), TypeError, "horizons"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, 3.9, [2], wrt="r"), ValueError, "wrt"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, 3.9, [2], wrt="theta"), ValueError, "theta must be a tensor"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, torch.ones(3, 1, dtype=D), [2], wrt="theta"), ValueError,
     "theta of shape"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, 3.9, [2], loss=lambda x: x.sum()), ValueError,
     "one value per trajectory"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, 3.9, [2], loss=lambda x: 1.0), TypeError,
     "loss must return"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, 3.9, [2], loss=lambda x: x.sum(-1) * math.inf), ValueError,
     "non-finite"),
    (lambda: chaos.gradient_norms(chaos.logistic_map, X1, 3.9, [2], loss=3), TypeError, "loss must be callable"),
    (lambda: chaos.teacher_forced_rollout(chaos.logistic_map, X1, 3.9, torch.ones(4, 2, 1, dtype=D), 0.5), ValueError,
     "data must have shape"),
    (lambda: chaos.teacher_forced_rollout(chaos.logistic_map, X1, 3.9, torch.ones(4, 1, 1, dtype=D), 1.5), ValueError,
     "alpha"),
    (lambda: chaos.teacher_forced_rollout(chaos.logistic_map, X1, 3.9, torch.ones(4, 1, 1, dtype=D), math.nan),
     ValueError, "alpha must be a finite"),
    (lambda: chaos.teacher_forced_rollout(chaos.logistic_map, X1, 3.9, torch.full((4, 1, 1), math.inf, dtype=D), 0.5),
     ValueError, "data must be finite"),
    (lambda: chaos.smoothed_gradient_samples(lambda t: t.sum(-1), torch.ones(2, 2, dtype=D), 0.1, 4), ValueError,
     r"theta must have shape \(p,\)"),
    (lambda: chaos.smoothed_gradient_samples(lambda t: t.sum(-1), torch.ones(2, dtype=D), 0.0, 4), ValueError, "sigma"),
    (lambda: chaos.smoothed_gradient_samples(lambda t: t.sum(-1), torch.ones(2, dtype=D), 0.1, 0), ValueError,
     "n_samples"),
    (lambda: chaos.smoothed_gradient_samples(lambda t: t.sum(-1), torch.ones(2, dtype=D), 0.1, 4, "fd"), ValueError,
     "estimator"),
    (lambda: chaos.smoothed_gradient_samples(lambda t: t.sum(), torch.ones(2, dtype=D), 0.1, 4), ValueError,
     r"losses of shape \(n,\)"),
    (lambda: chaos.smoothed_gradient_samples(lambda t: t.sum(-1) * math.nan, torch.ones(2, dtype=D), 0.1, 4),
     ValueError, "non-finite loss"),
    (lambda: chaos.smoothed_gradient_samples(lambda t: "x", torch.ones(2, dtype=D), 0.1, 4), TypeError,
     "f must return a torch.Tensor"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_a_user_step_that_raises_reaches_the_caller():
    def boom(x, th):
        raise RuntimeError("the user's step failed")

    with pytest.raises(RuntimeError, match="user's step"):
        chaos.rollout(boom, X1, None, 2)
