"""Tests of lib/curvature.py against dense Hessians, closed forms and torch.func."""

import math

import pytest
import torch
import torch.nn.functional as F

from lib import curvature as cv

D = torch.float64


def _orthogonal(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=D))
    return q * torch.sign(torch.diagonal(r))


def _quadratic(lams, seed: int = 0):
    """f(x) = 0.5 x^T A x with A = Q diag(lams) Q^T: Hessian A, known eigenpairs."""
    lams = torch.as_tensor(lams, dtype=D)
    q = _orthogonal(len(lams), seed)
    a = q @ torch.diag(lams) @ q.T
    a = 0.5 * (a + a.T)
    return (lambda x: 0.5 * x @ a @ x), a, lams, q


def _mlp_problem(seed: int = 0, out: int = 3):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, out)).to(D)
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(16, 4, generator=g, dtype=D)
    y = torch.randint(0, out, (16,), generator=g)
    return net, X, y


def _nonlinear(x):
    x = x.reshape(-1)
    return (torch.sin(x) * x**2).sum() + (x @ x) ** 2


SPECTRUM = [10.0, 7.0, 5.0, 3.0, 1.0, 0.5, 0.1, 0.0, -0.2, -1.0, -2.0, -4.0]


# ------------------------------------------------------------------ hvp / hessian

@pytest.mark.parametrize("mode", ["rev-rev", "fwd-rev"])
@pytest.mark.parametrize("shape", [(5,), (2, 3)])
def test_hvp_matches_dense_hessian(mode, shape):
    g = torch.Generator().manual_seed(1)
    n = math.prod(shape)
    a = torch.randn(n, n, generator=g, dtype=D)
    quad = lambda x: 0.5 * x.reshape(-1) @ a @ x.reshape(-1) + x.sum()
    for f in (quad, _nonlinear):
        x = torch.randn(shape, generator=g, dtype=D)
        v = torch.randn(shape, generator=g, dtype=D)
        dense = torch.func.hessian(f)(x).reshape(n, n)
        hv = cv.hvp(f, x, v, mode=mode)
        assert hv.shape == x.shape
        torch.testing.assert_close(hv.reshape(-1), dense @ v.reshape(-1), atol=1e-10, rtol=0)
    torch.testing.assert_close(cv.hvp(quad, x, v, mode=mode).reshape(-1),
                               0.5 * (a + a.T) @ v.reshape(-1), atol=1e-10, rtol=0)


@pytest.mark.parametrize("mode", ["rev-rev", "fwd-rev"])
def test_hvp_on_mlp_loss(mode):
    net, X, y = _mlp_problem()
    f, theta = cv.loss_as_function(net, F.cross_entropy, X, y)
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(2), dtype=D)
    dense = torch.func.hessian(f)(theta)
    torch.testing.assert_close(cv.hvp(f, theta, v, mode=mode), dense @ v, atol=1e-10, rtol=0)


def test_hvp_of_linear_and_constant_functions_is_zero():
    x = torch.ones(3, dtype=D)
    for f in (lambda t: t.sum(), lambda t: torch.tensor(2.0, dtype=D)):
        for mode in ("rev-rev", "fwd-rev"):
            assert torch.equal(cv.hvp(f, x, x, mode=mode), torch.zeros(3, dtype=D))
    assert torch.equal(cv.hessian(lambda t: t.sum(), x), torch.zeros(3, 3, dtype=D))


def test_hessian_matches_autograd_and_closed_form():
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(3), dtype=D)
    h = cv.hessian(_nonlinear, x)
    ref = torch.autograd.functional.hessian(_nonlinear, x).reshape(6, 6)
    assert h.shape == (6, 6)
    torch.testing.assert_close(h, ref, atol=1e-10, rtol=0)
    assert torch.equal(h, h.T)
    a = torch.randn(4, 4, generator=torch.Generator().manual_seed(4), dtype=D)  # not symmetric
    hq = cv.hessian(lambda t: 0.5 * t @ a @ t, torch.zeros(4, dtype=D))
    torch.testing.assert_close(hq, 0.5 * (a + a.T), atol=1e-12, rtol=0)


# ------------------------------------------------------------------ eigenvalues

@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvalues_of_known_spectrum(method):
    f, _, lams, q = _quadratic(SPECTRUM, seed=5)
    x = torch.zeros(len(SPECTRUM), dtype=D)
    k = 4
    vals, vecs = cv.top_eigenvalues(f, x, k=k, method=method,  # default iters and tol
                                    generator=torch.Generator().manual_seed(0))
    assert vals.shape == (k,) and vecs.shape == (k, len(SPECTRUM))
    torch.testing.assert_close(vals, lams[:k], rtol=1e-6, atol=0)
    assert torch.all(vals[:-1] >= vals[1:])
    cos = (vecs * q[:, :k].T).sum(1).abs()
    assert torch.all(cos > 1 - 1e-6), cos
    torch.testing.assert_close(vecs.norm(dim=1), torch.ones(k, dtype=D))


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvalues_with_dominant_negative_eigenvalue(method):
    # |-12| > 10: plain power iteration would return -12; the shift must not.
    lams = [10.0, 4.0, 2.0, 1.0, 0.0, -3.0, -12.0]
    f, _, _, _ = _quadratic(lams, seed=6)
    vals, _ = cv.top_eigenvalues(f, torch.zeros(7, dtype=D), k=2, method=method,
                                 generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(vals, torch.tensor([10.0, 4.0], dtype=D), rtol=1e-6, atol=0)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvalues_with_repeated_eigenvalues_and_matrix_x(method):
    # Hessian diag(12 ...) + a coupling of x[0,0] and x[1,2]: eigenvalues 13, 12 (x4), 11.
    # A single Krylov space sees only three distinct values: Lanczos must restart.
    f = lambda t: (t**4).sum() + t[0, 0] * t[1, 2]
    x = torch.ones(2, 3, dtype=D)
    vals, vecs = cv.top_eigenvalues(f, x, k=3, method=method,
                                    generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(vals, torch.tensor([13.0, 12.0, 12.0], dtype=D), rtol=1e-6, atol=0)
    assert vecs.shape == (3, 2, 3)
    hv = torch.stack([cv.hvp(f, x, u) for u in vecs])
    # Power stops at residual <= tol * |theta + rho| = 1e-6 * 26.
    torch.testing.assert_close(hv, vals[:, None, None] * vecs, atol=3e-5, rtol=0)


def test_lanczos_on_larger_spectrum_with_default_iters():
    # n = 200 > default iters (30): extreme eigenvalues converge first.
    bulk = torch.linspace(0, 1, 197, dtype=D).tolist()
    f, _, _, _ = _quadratic([40.0, 30.0, 20.0] + bulk, seed=7)
    vals, vecs = cv.top_eigenvalues(f, torch.zeros(200, dtype=D), k=3,
                                    generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(vals, torch.tensor([40.0, 30.0, 20.0], dtype=D), rtol=1e-6, atol=0)
    assert vecs.shape == (3, 200)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvalues_of_mlp_hessian(method):
    net, X, y = _mlp_problem(seed=1)
    f, theta = cv.loss_as_function(net, F.cross_entropy, X, y)
    dense = torch.linalg.eigvalsh(torch.func.hessian(f)(theta)).flip(0)
    vals, vecs = cv.top_eigenvalues(f, theta, k=3, method=method, iters=None if method == "power"
                                    else theta.numel(), tol=1e-10,
                                    generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(vals, dense[:3], rtol=1e-6, atol=1e-12)
    hv = torch.stack([cv.hvp(f, theta, u) for u in vecs])
    torch.testing.assert_close(hv, vals[:, None] * vecs, atol=1e-6 * float(vals[0]), rtol=0)


def test_lanczos_worker_tridiagonalises():
    _, a, lams, _ = _quadratic(SPECTRUM, seed=8)
    n = len(SPECTRUM)
    alpha, beta, Q = cv.lanczos(lambda v: a @ v, n, 8, generator=torch.Generator().manual_seed(0),
                                dtype=D)
    assert alpha.shape == (8,) and beta.shape == (7,) and Q.shape == (8, n)
    torch.testing.assert_close(Q @ Q.T, torch.eye(8, dtype=D), atol=1e-12, rtol=0)
    t = torch.diag(alpha) + torch.diag(beta, 1) + torch.diag(beta, -1)
    torch.testing.assert_close(Q @ a @ Q.T, t, atol=1e-12, rtol=0)
    # iters >= n: exact spectrum; repeated eigenvalues exhaust the Krylov space early.
    alpha, beta, _ = cv.lanczos(lambda v: 2 * v, 5, 10, generator=torch.Generator().manual_seed(0),
                                dtype=D)
    assert alpha.shape == (5,)
    torch.testing.assert_close(torch.linalg.eigvalsh(torch.diag(alpha) + torch.diag(beta, 1)
                                                     + torch.diag(beta, -1)),
                               torch.full((5,), 2.0, dtype=D))


def test_power_iteration_worker_finds_largest_magnitude():
    _, a, _, _ = _quadratic([3.0, 1.0, -5.0, 0.5], seed=9)
    vals, vecs = cv.power_iteration(lambda v: a @ v, 4, k=2, tol=1e-12, dtype=D,
                                    generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(vals, torch.tensor([-5.0, 3.0], dtype=D), rtol=1e-9, atol=0)
    torch.testing.assert_close(a @ vecs.T, vecs.T * vals, atol=1e-9, rtol=0)


# ------------------------------------------------------------------ spectral density

def test_spectral_density_integrates_to_one_and_matches_trace():
    g = torch.Generator().manual_seed(10)
    lams = torch.cat([torch.rand(190, generator=g, dtype=D) * 3.5 + 0.5,
                      torch.tensor([8.0, 9, 10, 12, 15, 5, 6, 7, -3, -2], dtype=D)])
    f, a, _, _ = _quadratic(lams, seed=11)
    grid, p = cv.spectral_density(f, torch.zeros(200, dtype=D), n_probes=32, iters=60,
                                  generator=torch.Generator().manual_seed(0))
    assert grid.shape == p.shape == (1000,) and torch.all(p >= 0)
    assert abs(float(torch.trapezoid(p, grid)) - 1) < 0.01
    mean = float(torch.trapezoid(grid * p, grid))
    exact = float(torch.trace(a)) / 200
    # The mean is Hutchinson's estimate: per probe std sqrt(2 sum_{i!=j} a_ij^2) / n (~1.3% here).
    std = math.sqrt(2 * float((a**2).sum() - (torch.diagonal(a) ** 2).sum())) / 200 / math.sqrt(32)
    assert abs(mean - exact) < min(4 * std, 0.05 * exact), (mean, exact, std)


def test_spectral_density_mass_sits_on_the_outliers():
    bulk = torch.linspace(0, 1, 97, dtype=D)
    f, _, _, _ = _quadratic(torch.cat([bulk, torch.tensor([20.0, 30.0, 40.0], dtype=D)]), seed=12)
    grid, p = cv.spectral_density(f, torch.zeros(100, dtype=D), n_probes=16,
                                  generator=torch.Generator().manual_seed(1))
    above = grid > 10
    mass_above = float(torch.trapezoid(p[above], grid[above]))
    assert abs(mass_above - 0.03) < 0.015, mass_above
    near_bulk = (grid > -2) & (grid < 3)  # the bulk [0, 1] blurred by sigma = 1% of the span
    assert float(torch.trapezoid(p[near_bulk], grid[near_bulk])) > 0.95
    assert float(grid.max()) > 40 and float(grid.min()) < 0


def test_spectral_density_custom_grid_and_sigma():
    f, _, _, _ = _quadratic([1.0, 2.0, 3.0], seed=13)
    grid = torch.linspace(-2, 6, 801, dtype=D)
    out_grid, p = cv.spectral_density(f, torch.zeros(3, dtype=D), n_probes=4, grid=grid, sigma=0.1,
                                      generator=torch.Generator().manual_seed(0))
    assert torch.equal(out_grid, grid)
    # Three Lanczos steps are exact: nodes at 1, 2, 3; every probe averages to mass 1.
    assert abs(float(torch.trapezoid(p, grid)) - 1) < 1e-6
    for lam in (1.0, 2.0, 3.0):
        assert float(p[(grid - lam).abs().argmin()]) > 0.5


# ------------------------------------------------------------------ Gauss-Newton

def _dense_ggn(model_fn, loss_fn, params):
    z = model_fn(params)
    j = torch.autograd.functional.jacobian(model_fn, params).reshape(z.numel(), params.numel())
    h = torch.autograd.functional.hessian(lambda t: loss_fn(t.reshape(z.shape)),
                                          z.reshape(-1)).reshape(z.numel(), z.numel())
    return j.T @ h @ j


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_ggn_vp_matches_dense(loss):
    g = torch.Generator().manual_seed(14)
    X = torch.randn(6, 3, generator=g, dtype=D)
    y = torch.randint(0, 2, (6,), generator=g)
    target = torch.randn(6, 2, generator=g, dtype=D)

    def model_fn(p):
        w1, w2 = p[:12].reshape(3, 4), p[12:].reshape(4, 2)
        return torch.tanh(X @ w1) @ w2

    loss_fn = (lambda z: F.mse_loss(z, target)) if loss == "mse" else (lambda z: F.cross_entropy(z, y))
    params = torch.randn(20, generator=g, dtype=D)
    v = torch.randn(20, generator=g, dtype=D)
    gv = cv.ggn_vp(model_fn, loss_fn, params, v)
    torch.testing.assert_close(gv, _dense_ggn(model_fn, loss_fn, params) @ v, atol=1e-10, rtol=0)
    assert float(v @ gv) >= 0  # convex loss in z: G is positive semi-definite


def test_ggn_equals_hessian_for_linear_model_with_mse():
    g = torch.Generator().manual_seed(15)
    X = torch.randn(8, 3, generator=g, dtype=D)
    target = torch.randn(8, 2, generator=g, dtype=D)
    model_fn = lambda p: X @ p
    loss_fn = lambda z: F.mse_loss(z, target)
    params = torch.randn(3, 2, generator=g, dtype=D)
    v = torch.randn(3, 2, generator=g, dtype=D)
    gv = cv.ggn_vp(model_fn, loss_fn, params, v)
    assert gv.shape == (3, 2)
    torch.testing.assert_close(gv, cv.hvp(lambda p: loss_fn(model_fn(p)), params, v),
                               atol=1e-12, rtol=0)


# ------------------------------------------------------------------ loss_as_function

def test_loss_as_function_matches_module_loss_and_grad():
    net, X, y = _mlp_problem(seed=2)
    f, theta = cv.loss_as_function(net, F.cross_entropy, X, y)
    n = sum(p.numel() for p in net.parameters())
    assert theta.shape == (n,) and not theta.requires_grad
    loss = F.cross_entropy(net(X), y)
    loss.backward()
    torch.testing.assert_close(f(theta), loss.detach(), atol=1e-14, rtol=0)
    grad = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    torch.testing.assert_close(torch.func.grad(f)(theta), grad, atol=1e-14, rtol=0)
    theta2 = theta + 1.0  # f does not touch the module
    f(theta2)
    torch.testing.assert_close(torch.cat([p.detach().reshape(-1) for p in net.parameters()]), theta)


def test_loss_as_function_skips_frozen_parameters():
    net, X, y = _mlp_problem(seed=3)
    net[0].weight.requires_grad_(False)
    f, theta = cv.loss_as_function(net, F.cross_entropy, X, y)
    assert theta.numel() == sum(p.numel() for p in net.parameters()) - net[0].weight.numel()
    torch.testing.assert_close(f(theta), F.cross_entropy(net(X), y).detach())


# ------------------------------------------------------------------ errors and determinism

def test_error_paths():
    f = lambda x: (x**2).sum()
    x = torch.ones(4, dtype=D)
    with pytest.raises(ValueError, match=r"shape of x \(4,\), got \(3,\)"):
        cv.hvp(f, x, torch.ones(3, dtype=D))
    with pytest.raises(ValueError, match=r"scalar.*got shape \(4,\)"):
        cv.hvp(lambda t: t**2, x, x)
    with pytest.raises(ValueError, match=r"scalar.*got shape \(4,\)"):
        cv.hvp(lambda t: t**2, x, x, mode="fwd-rev")
    with pytest.raises(ValueError, match="mode must be one of.*'fwd-fwd'"):
        cv.hvp(f, x, x, mode="fwd-fwd")
    with pytest.raises(TypeError, match="floating dtype, got torch.int64"):
        cv.hvp(f, torch.ones(4, dtype=torch.long), x)
    with pytest.raises(ValueError, match="method must be one of.*'qr'"):
        cv.top_eigenvalues(f, x, method="qr")
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\], got 0"):
        cv.top_eigenvalues(f, x, k=0)
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\], got 5"):
        cv.top_eigenvalues(f, x, k=5)
    with pytest.raises(ValueError, match="iters must be >= 3, got 2"):
        cv.top_eigenvalues(f, x, k=3, iters=2)
    with pytest.raises(ValueError, match="tol must be a positive"):
        cv.top_eigenvalues(f, x, tol=0.0)
    with pytest.raises(ValueError, match="n_probes must be >= 1, got 0"):
        cv.spectral_density(f, x, n_probes=0)
    with pytest.raises(TypeError, match="iters must be an int, got float"):
        cv.spectral_density(f, x, iters=2.5)
    with pytest.raises(ValueError, match="sigma must be a positive"):
        cv.spectral_density(f, x, sigma=-1.0)
    with pytest.raises(ValueError, match="grid must be 1-D"):
        cv.spectral_density(f, x, grid=torch.zeros(2, 2, dtype=D))
    with pytest.raises(ValueError, match=r"v must have the shape of x \(4,\), got \(2,\)"):
        cv.ggn_vp(lambda p: p, f, x, torch.ones(2, dtype=D))
    with pytest.raises(TypeError, match="torch.nn.Module, got function"):
        cv.loss_as_function(f, F.mse_loss, x, x)
    net, X, y = _mlp_problem()
    g, theta = cv.loss_as_function(net, F.cross_entropy, X, y)
    with pytest.raises(ValueError, match=rf"shape \({theta.numel()},\), got"):
        g(theta[:-1])
    with pytest.raises(ValueError, match=r"v0 must be non-zero of shape \(3,\)"):
        cv.lanczos(lambda v: v, 3, 2, v0=torch.zeros(3))


def test_same_seed_same_result():
    f, _, _, _ = _quadratic(SPECTRUM, seed=16)
    x = torch.zeros(len(SPECTRUM), dtype=D)
    for method in ("lanczos", "power"):
        runs = [cv.top_eigenvalues(f, x, k=2, method=method, iters=8 if method == "lanczos" else 50,
                                   generator=torch.Generator().manual_seed(7)) for _ in range(2)]
        assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    dens = [cv.spectral_density(f, x, n_probes=3, iters=5, generator=torch.Generator().manual_seed(7))
            for _ in range(2)]
    assert torch.equal(dens[0][0], dens[1][0]) and torch.equal(dens[0][1], dens[1][1])
    other = cv.spectral_density(f, x, n_probes=3, iters=5, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(dens[0][1], other[1])


def test_float32_network_keeps_dtype():
    net, X, y = _mlp_problem(seed=4)
    net = net.float()
    f, theta = cv.loss_as_function(net, F.cross_entropy, X.float(), y)
    vals, vecs = cv.top_eigenvalues(f, theta, k=2)
    grid, p = cv.spectral_density(f, theta, n_probes=2, iters=10)
    assert vals.dtype == vecs.dtype == grid.dtype == p.dtype == torch.float32
    dense = torch.linalg.eigvalsh(cv.hessian(f, theta).double()).flip(0)
    torch.testing.assert_close(vals.double(), dense[:2], rtol=1e-3, atol=1e-5)


# ------------------------------------------------------------------ found by tests/test_fuzz.py

def _quartic(x):
    return (x**4).sum()


def test_refuses_non_finite_input_and_output():
    x = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="x must be finite, got a tensor with 1 NaN entries"):
        cv.hvp(_quartic, torch.tensor([1.0, math.nan]), torch.ones(2))
    with pytest.raises(ValueError, match="v must be finite"):
        cv.hvp(_quartic, x, torch.full((3,), math.inf, dtype=torch.float64))
    with pytest.raises(ValueError, match="f returned a non-finite value"):
        cv.hessian(lambda x: x.sum() * math.nan, x)
    with pytest.raises(ValueError, match="Hessian-vector product of f is not finite"):
        cv.hvp(lambda x: (x.abs() ** 1.5).sum(), torch.zeros(3), x, mode="fwd-rev")
    with pytest.raises(ValueError, match="params must be finite"):
        cv.ggn_vp(torch.tanh, _quartic, torch.tensor([math.inf]), torch.ones(1))
    with pytest.raises(ValueError, match="grid must be finite"):
        cv.spectral_density(_quartic, x, grid=torch.tensor([0.0, math.nan], dtype=torch.float64))


def test_ggn_vp_names_the_function_at_fault():
    p = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        cv.ggn_vp(torch.tanh, lambda z: z * z, p, p)
    with pytest.raises(ValueError, match="loss_fn returned a non-finite value"):
        cv.ggn_vp(torch.tanh, lambda z: z.sum() * math.nan, p, p)
    with pytest.raises(TypeError, match="model_fn must return a floating tensor, got str"):
        cv.ggn_vp(lambda p: "z", _quartic, p, p)
    with pytest.raises(ValueError, match="model_fn's output must be finite"):
        cv.ggn_vp(lambda p: p * math.inf, _quartic, p, p)


def test_eigen_solvers_check_matvec_and_their_options():
    good = lambda q: 2 * q  # noqa: E731
    with pytest.raises(ValueError, match="matvec must return 4 entries"):
        cv.lanczos(lambda q: q[:-1], 4, 2)
    with pytest.raises(ValueError, match="matvec's output must be finite"):
        cv.power_iteration(lambda q: q * math.nan, 4)
    with pytest.raises(TypeError, match="matvec must return a torch.Tensor, got list"):
        cv.lanczos(lambda q: [0.0], 4, 2)
    with pytest.raises(TypeError, match="matvec must be callable"):
        cv.lanczos("A", 4, 2)
    with pytest.raises(TypeError, match="dtype must be None or a real floating torch.dtype"):
        cv.lanczos(good, 4, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'"):
        cv.lanczos(good, 4, 2, device="gpu")
    with pytest.raises(TypeError, match="generator must be None or a torch.Generator, got str"):
        cv.power_iteration(good, 4, generator="seed")
    with pytest.raises(ValueError, match="shift must be a finite number, got nan"):
        cv.power_iteration(good, 4, shift=math.nan)
    with pytest.raises(TypeError, match="shift must be a number, got str"):
        cv.power_iteration(good, 4, shift="1.5")
    with pytest.raises(ValueError, match="n must be >= 1"):
        cv.lanczos(good, 2**64, 2)
    with pytest.raises(ValueError, match="v0 must be finite"):
        cv.lanczos(good, 2, 2, v0=torch.tensor([1.0, math.nan]))
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        cv.top_eigenvalues(_quartic, torch.ones(3, dtype=torch.float16))


def test_loss_as_function_checks_its_tensors():
    model = torch.nn.Linear(3, 1)
    mse = lambda z, y: ((z - y) ** 2).mean()  # noqa: E731
    with pytest.raises(ValueError, match="inputs must be finite"):
        cv.loss_as_function(model, mse, torch.full((2, 3), math.nan), torch.zeros(2, 1))
    with pytest.raises(TypeError, match="targets must be a torch.Tensor, got list"):
        cv.loss_as_function(model, mse, torch.zeros(2, 3), [0.0, 1.0])
    f, theta0 = cv.loss_as_function(model, mse, torch.zeros(2, 3), torch.zeros(2, 1))
    with pytest.raises(TypeError, match="theta must have the parameters' dtype torch.float32"):
        f(theta0.double())
