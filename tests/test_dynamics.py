"""Tests of lib/dynamics.py against closed forms, torch.optim, dense Hessians and planted structure."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import curvature as cv
from lib import dynamics as dyn

D = torch.float64


def _orthogonal(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=D))
    return q * torch.sign(torch.diagonal(r))


def _spd(lams, seed: int = 0):
    lams = torch.as_tensor(lams, dtype=D)
    q = _orthogonal(len(lams), seed)
    h = q @ torch.diag(lams) @ q.T
    return 0.5 * (h + h.T), lams, q


def _mlp_problem(seed: int = 0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).to(D)
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(12, 3, generator=g, dtype=D)
    Y = torch.randn(12, 2, generator=g, dtype=D)
    return net, X, Y


def _half_mse(out, Y):
    return 0.5 * ((out - Y) ** 2).sum(1).mean()


# ------------------------------------------------------------------ quadratics

@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 10.0), min_size=1, max_size=5), st.floats(0.01, 0.5),
       st.integers(0, 12), st.integers(0, 1000))
def test_gd_quadratic_matches_closed_form(lams, lr, steps, seed):
    H, lam, q = _spd(lams, seed)
    n = len(lams)
    g = torch.Generator().manual_seed(seed)
    x0, x_star = torch.randn(n, generator=g, dtype=D), torch.randn(n, generator=g, dtype=D)
    path = dyn.gd_quadratic(H, x0, lr, steps, x_star=x_star)
    assert path.shape == (steps + 1, n) and path.dtype == D
    for t in range(steps + 1):  # e_t = Q diag((1 - lr lambda)^t) Q^T e_0
        closed = x_star + q @ ((1 - lr * lam) ** t * (q.T @ (x0 - x_star)))
        torch.testing.assert_close(path[t], closed, atol=1e-9, rtol=1e-9)


def test_gd_quadratic_matches_torch_optim_sgd():
    H, _, _ = _spd([4.0, 1.0, 0.3], seed=1)
    x_star = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    x = torch.tensor([0.3, 0.1, -1.0], dtype=D, requires_grad=True)
    path = dyn.gd_quadratic(H, x.detach(), 0.3, 15, x_star=x_star)
    opt = torch.optim.SGD([x], lr=0.3)
    for t in range(15):
        torch.testing.assert_close(path[t], x.detach(), atol=1e-12, rtol=0)
        opt.zero_grad()
        (0.5 * (x - x_star) @ H @ (x - x_star)).backward()
        opt.step()
    torch.testing.assert_close(path[15], x.detach(), atol=1e-12, rtol=0)


def test_stability_threshold_separates_convergence_from_divergence():
    H, _, q = _spd([5.0, 2.0, 0.5, 0.1], seed=2)
    thr = dyn.stability_threshold(H)
    assert thr == pytest.approx(2 / 5.0, rel=1e-12)
    x0 = q[:, 0] + q[:, 3]  # has a component along the top eigenvector
    below = dyn.gd_quadratic(H, x0, 0.99 * thr, 3000)
    above = dyn.gd_quadratic(H, x0, 1.01 * thr, 300)
    assert below[-1].norm() < 1e-6 * x0.norm()
    assert above[-1].norm() > 10 * x0.norm()
    # the component along u_1 flips sign every step, growing by |1 - lr lambda_1| = 1.02
    along = above @ q[:, 0]
    assert torch.all(along[1:] * along[:-1] < 0)
    torch.testing.assert_close(along[1:] / along[:-1], torch.full((300,), -1.02, dtype=D))


def test_stability_threshold_without_positive_curvature():
    assert dyn.stability_threshold(torch.zeros(2, 2, dtype=D)) == math.inf
    assert dyn.stability_threshold(-torch.eye(3)) == math.inf
    H, _, _ = _spd([3.0, -7.0], seed=3)
    assert dyn.stability_threshold(H) == pytest.approx(2 / 3.0)


def test_gd_quadratic_overflow_is_refused():
    H = torch.diag(torch.tensor([1.0, 100.0]))
    with pytest.raises(ValueError, match="overflowed at step .* threshold 2 / lambda_max = 0.02"):
        dyn.gd_quadratic(H, torch.ones(2), 1.0, 10_000)


# ------------------------------------------------------------------ sharpness

def test_sharpness_of_known_spectrum_and_warm_start():
    H, lam, q = _spd([9.0, 8.5, 3.0, 0.0, -12.0, 1.0], seed=4)
    f = lambda x: 0.5 * x @ H @ x
    x = torch.zeros(6, dtype=D)
    val, vec = dyn.sharpness(f, x, iters=6, generator=torch.Generator().manual_seed(0))
    assert val.shape == () and vec.shape == (6,)
    assert float(val) == pytest.approx(9.0, rel=1e-10)  # algebraic top, not |-12|
    assert abs(float(vec @ q[:, 0])) == pytest.approx(1.0, abs=1e-8)
    # Started from the eigenvector itself, one product is exact.
    val1, vec1 = dyn.sharpness(f, x, v0=-3 * q[:, 0], iters=1)
    assert float(val1) == pytest.approx(9.0, rel=1e-12)
    torch.testing.assert_close(vec1.abs(), q[:, 0].abs(), atol=1e-12, rtol=0)


def test_warm_start_beats_cold_start_with_few_products():
    H, _, q = _spd([10.0, 9.9] + [1.0] * 30, seed=5)
    f = lambda x: 0.5 * x @ H @ x
    x = torch.zeros(32, dtype=D)
    near = q[:, 0] + 0.01 * q[:, 1] + 0.01 * q[:, 5]
    warm, _ = dyn.sharpness(f, x, v0=near, iters=2)
    cold, _ = dyn.sharpness(f, x, iters=2, generator=torch.Generator().manual_seed(0))
    assert abs(float(warm) - 10.0) < 1e-4 < abs(float(cold) - 10.0)


def test_sharpness_of_mlp_matches_dense_hessian():
    net, X, Y = _mlp_problem(seed=6)
    f, theta = cv.loss_as_function(net, _half_mse, X, Y)
    dense = torch.linalg.eigvalsh(torch.func.hessian(f)(theta))[-1]
    val, vec = dyn.sharpness(f, theta, iters=theta.numel(), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(val, dense, rtol=1e-8, atol=0)
    torch.testing.assert_close(cv.hvp(f, theta, vec), val * vec, atol=1e-7, rtol=0)


def test_sharpness_errors():
    f = lambda x: (x**2).sum()
    x = torch.ones(4, dtype=D)
    with pytest.raises(ValueError, match=r"v0 must have the shape of theta \(4,\), got \(3,\)"):
        dyn.sharpness(f, x, v0=torch.ones(3, dtype=D))
    with pytest.raises(ValueError, match="v0 must be non-zero"):
        dyn.sharpness(f, x, v0=torch.zeros(4, dtype=D))
    with pytest.raises(ValueError, match="theta must be finite"):
        dyn.sharpness(f, torch.tensor([1.0, float("nan")]))
    with pytest.raises(TypeError, match="theta must have a real floating dtype"):
        dyn.sharpness(f, torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="iters must be >= 1, got 0"):
        dyn.sharpness(f, x, iters=0)
    with pytest.raises(TypeError, match="f must be callable"):
        dyn.sharpness(3, x)
    with pytest.raises(ValueError, match="non-finite|not finite"):
        dyn.sharpness(lambda t: (t**2).sum() * float("nan"), x)


# ------------------------------------------------------------------ gd_with_sharpness

def test_gd_with_sharpness_follows_torch_optim_and_dense_hessians():
    net, X, Y = _mlp_problem(seed=7)
    f, theta0 = cv.loss_as_function(net, _half_mse, X, Y)
    per_ex, _ = cv.loss_as_function(net, lambda o, Y: 0.5 * ((o - Y) ** 2).sum(1), X, Y)
    lr, steps, every = 0.4, 9, 4
    run = dyn.gd_with_sharpness(f, theta0, lr, steps, every=every, iters=theta0.numel(),
                                per_example=per_ex, generator=torch.Generator().manual_seed(0))
    assert run.loss.shape == (steps + 1,) and run.per_example.shape == (steps + 1, 12)
    assert run.sharpness_steps.tolist() == [0, 4, 8]
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for t in range(steps + 1):
        theta_t = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
        out = net(X)
        loss = _half_mse(out, Y)
        assert float(run.loss[t]) == pytest.approx(float(loss.detach()), rel=1e-12)
        torch.testing.assert_close(run.per_example[t], 0.5 * ((out - Y) ** 2).sum(1).detach())
        if t % every == 0:
            dense = torch.linalg.eigvalsh(torch.func.hessian(f)(theta_t))[-1]
            torch.testing.assert_close(run.sharpness[t // every], dense, rtol=1e-8, atol=0)
        if t < steps:
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.testing.assert_close(run.theta, theta_t, atol=1e-12, rtol=0)


def test_gd_with_sharpness_on_a_quadratic():
    H, _, _ = _spd([3.0, 1.0, 0.2], seed=8)
    f = lambda x: 0.5 * x @ H @ x
    x0 = torch.tensor([1.0, 1.0, 1.0], dtype=D)
    run = dyn.gd_with_sharpness(f, x0, 0.5, 6, every=2, iters=3)
    torch.testing.assert_close(run.sharpness, torch.full((4,), 3.0, dtype=D))
    path = dyn.gd_quadratic(H, x0, 0.5, 6)
    torch.testing.assert_close(run.theta, path[-1])
    torch.testing.assert_close(run.loss, 0.5 * ((path @ H) * path).sum(1))
    assert run.per_example is None


def test_gd_with_sharpness_refuses_divergence_and_bad_functions():
    f = lambda x: 0.5 * 10 * (x**2).sum()
    with pytest.raises(ValueError, match="loss became non-finite at step [0-9]+.*lr = 1.0"):
        dyn.gd_with_sharpness(f, torch.ones(2), 1.0, 10_000, every=1000)
    with pytest.raises(ValueError, match=r"f must return a scalar.*got shape \(2,\)"):
        dyn.gd_with_sharpness(lambda x: x**2, torch.ones(2), 0.1, 3)
    with pytest.raises(TypeError, match="f must return a real floating tensor, got float"):
        dyn.gd_with_sharpness(lambda x: 1.0, torch.ones(2), 0.1, 3)
    with pytest.raises(TypeError, match="f must return a real floating tensor, got torch.complex64"):
        dyn.gd_with_sharpness(lambda x: (x * 1j).sum(), torch.ones(2), 0.1, 3)
    with pytest.raises(ValueError, match=r"per_example must return a 1-D floating tensor"):
        dyn.gd_with_sharpness(f, torch.ones(2), 0.1, 3, per_example=lambda x: x.sum())
    with pytest.raises(ValueError, match="per_example returned NaN"):
        dyn.gd_with_sharpness(f, torch.ones(2), 0.1, 3, per_example=lambda x: x * float("nan"))
    with pytest.raises(TypeError, match="per_example must be callable or None"):
        dyn.gd_with_sharpness(f, torch.ones(2), 0.1, 3, per_example=[1, 2])
    with pytest.raises(ValueError, match=r"theta0 must be 1-D, got shape \(2, 2\)"):
        dyn.gd_with_sharpness(f, torch.ones(2, 2), 0.1, 3)
    with pytest.raises(ValueError, match="lr must be a positive finite number, got -0.1"):
        dyn.gd_with_sharpness(f, torch.ones(2), -0.1, 3)
    with pytest.raises(TypeError, match="lr must be a number"):
        dyn.gd_with_sharpness(f, torch.ones(2), "0.1", 3)
    with pytest.raises(ValueError, match="every must be >= 1, got 0"):
        dyn.gd_with_sharpness(f, torch.ones(2), 0.1, 3, every=0)
    with pytest.raises(TypeError, match="steps must be an int"):
        dyn.gd_with_sharpness(f, torch.ones(2), 0.1, 3.0)
    # a loss that does not depend on theta: nothing moves, nothing breaks
    run = dyn.gd_with_sharpness(lambda x: torch.tensor(2.0), torch.ones(2), 0.1, 3)
    assert torch.equal(run.theta, torch.ones(2)) and torch.equal(run.sharpness, torch.zeros(1))


# ------------------------------------------------------------------ opposing signals

def _planted(seed=0, T=60, N=40):
    """Per-example losses: examples 0-4 and 5-9 see-saw against each other every step,
    the other 30 decrease smoothly with small noise."""
    g = torch.Generator().manual_seed(seed)
    sign = torch.tensor([(-1.0) ** t for t in range(T)], dtype=D)
    amp_a = 0.5 + torch.rand(5, generator=g, dtype=D)
    amp_b = 0.5 + torch.rand(5, generator=g, dtype=D)
    base = torch.linspace(2.0, 1.0, T, dtype=D)[:, None]
    losses = base + 0.01 * torch.randn(T, N, generator=g, dtype=D)
    losses[:, :5] += sign[:, None] * amp_a * 0.5
    losses[:, 5:10] -= sign[:, None] * amp_b * 0.5
    return losses


def test_loss_oscillation_closed_form():
    losses = torch.tensor([[1.0, 0.0], [3.0, 0.5], [2.0, 1.0]], dtype=D)
    torch.testing.assert_close(dyn.loss_oscillation(losses), torch.tensor([1.5, 0.5], dtype=D))
    osc = dyn.loss_oscillation(_planted())
    assert set(torch.argsort(osc, descending=True)[:10].tolist()) == set(range(10))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_opposing_groups_recovers_planted_groups(seed):
    losses = _planted(seed)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(seed))
    a, b, rho = dyn.opposing_groups(losses[:, perm], k=10)
    found = {frozenset(perm[a].tolist()), frozenset(perm[b].tolist())}
    assert found == {frozenset(range(5)), frozenset(range(5, 10))}
    assert rho < -0.99
    assert a.dtype == torch.long and len(a) >= len(b)


def test_opposing_groups_rho_is_correlation_of_group_means():
    losses = _planted(3)
    a, b, rho = dyn.opposing_groups(losses, k=12)
    da = losses[:, a].diff(dim=0).mean(1).numpy()
    db = losses[:, b].diff(dim=0).mean(1).numpy()
    assert rho == pytest.approx(np.corrcoef(da, db)[0, 1], abs=1e-10)


def test_opposing_groups_errors():
    together = torch.linspace(2, 1, 10, dtype=D)[:, None] * torch.tensor([1.0, 2.0, 3.0], dtype=D)
    together = together + 0.01 * torch.tensor([(-1.0) ** t for t in range(10)], dtype=D)[:, None]
    with pytest.raises(ValueError, match="all move together"):
        dyn.opposing_groups(together, k=3)
    with pytest.raises(ValueError, match="do not change"):
        dyn.opposing_groups(torch.ones(5, 4), k=2)
    with pytest.raises(ValueError, match=r"k must be in \[2, 4\], got 5"):
        dyn.opposing_groups(torch.rand(5, 4), k=5)
    with pytest.raises(ValueError, match=r"T >= 3 recorded steps, got \(2, 4\)"):
        dyn.opposing_groups(torch.rand(2, 4), k=2)
    with pytest.raises(ValueError, match="per_example_losses must be 2-D"):
        dyn.loss_oscillation(torch.rand(5))
    with pytest.raises(ValueError, match="per_example_losses must be finite"):
        dyn.loss_oscillation(torch.tensor([[1.0], [float("inf")]]))


def test_group_loss_correlation_matches_numpy():
    losses = _planted(4)
    groups = torch.zeros(40, dtype=torch.long)
    groups[:5], groups[5:10], groups[10:20] = 7, 2, 5  # labels need not be 0..G-1
    labels, corr = dyn.group_loss_correlation(losses, groups)
    assert labels.tolist() == [0, 2, 5, 7] and corr.shape == (4, 4)
    means = np.stack([losses[:, groups == g].diff(dim=0).mean(1).numpy() for g in (0, 2, 5, 7)])
    np.testing.assert_allclose(corr.numpy(), np.corrcoef(means), atol=1e-10)
    assert float(corr[1, 3]) < -0.99  # the planted see-saw pair
    torch.testing.assert_close(corr, corr.T)


def test_group_loss_correlation_constant_group_and_errors():
    losses = torch.tensor([[1.0, 5.0, 2.0], [2.0, 5.0, 1.0], [1.5, 5.0, 3.0]], dtype=D)
    _, corr = dyn.group_loss_correlation(losses, torch.tensor([0, 1, 2]))
    assert torch.equal(corr[1], torch.tensor([0.0, 1.0, 0.0], dtype=D))
    with pytest.raises(TypeError, match="groups must be an integer tensor"):
        dyn.group_loss_correlation(losses, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"groups must have shape \(3,\), got \(2,\)"):
        dyn.group_loss_correlation(losses, torch.tensor([0, 1]))


def test_errors_on_quadratic_inputs():
    with pytest.raises(ValueError, match="H must be symmetric"):
        dyn.gd_quadratic(torch.tensor([[1.0, 2.0], [0.0, 1.0]]), torch.ones(2), 0.1, 3)
    with pytest.raises(ValueError, match=r"H must be square \(n, n\), got shape \(2, 3\)"):
        dyn.stability_threshold(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"x0 must have shape \(2,\) to match H, got \(3,\)"):
        dyn.gd_quadratic(torch.eye(2), torch.ones(3), 0.1, 3)
    with pytest.raises(ValueError, match=r"x_star must have shape \(2,\)"):
        dyn.gd_quadratic(torch.eye(2), torch.ones(2), 0.1, 3, x_star=torch.ones(1))
    with pytest.raises(ValueError, match="H must be finite"):
        dyn.stability_threshold(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="lr must be a positive finite number, got inf"):
        dyn.gd_quadratic(torch.eye(2), torch.ones(2), math.inf, 3)
    with pytest.raises(ValueError, match="steps must be >= 0, got -1"):
        dyn.gd_quadratic(torch.eye(2), torch.ones(2), 0.1, -1)
    with pytest.raises(TypeError, match="H must be a torch.Tensor"):
        dyn.stability_threshold([[1.0]])
