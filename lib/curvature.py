"""Curvature without matrices: Hessian-vector products, top eigenpairs and spectra.

Chapter 4 (``book/04_curvature.md``, lab ``notebooks/04_curvature.ipynb``).

* :func:`hvp`: the Hessian-vector product ``H v`` of a scalar function at the
  cost of a few gradients (Pearlmutter's trick), reverse-over-reverse or
  forward-over-reverse; :func:`hessian` stacks ``n`` of them into the dense
  matrix, for small problems and for checking.
* :func:`ggn_vp`: the generalised Gauss-Newton product ``J^T H_L J v``.
* :func:`lanczos` and :func:`power_iteration`: matrix-free eigen-solvers for
  any symmetric ``matvec``; :func:`top_eigenvalues` applies them to a Hessian
  (the sharpness ``lambda_max`` bounds stable step sizes, ``lr < 2 / lambda_max``;
  Granziol et al. 2022 follow it and the batch size to the best learning rate).
* :func:`spectral_density`: the whole eigenvalue density by stochastic Lanczos
  quadrature: a bulk near zero and a few outliers for trained networks.
* :func:`loss_as_function`: an ``nn.Module`` and a batch as a function of one
  flat parameter vector, which is what every function above takes.

References: Pearlmutter (1994), "Fast Exact Multiplication by the Hessian";
Schraudolph (2002), "Fast Curvature Matrix-Vector Products for Second-Order
Gradient Descent"; Lanczos (1950), "An Iteration Method for the Solution of the
Eigenvalue Problem of Linear Differential and Integral Operators"; Lin, Saad &
Yang (2016), "Approximating Spectral Densities of Large Matrices"; Sagun, Evci,
Guney, Dauphin & Bottou (2017), "Empirical Analysis of the Hessian of
Over-Parametrized Neural Networks"; Ghorbani, Krishnan & Xiao (2019), "An
Investigation into Neural Net Optimization via Hessian Eigenvalue Density";
Granziol et al. (2022), "Learning Rates as a Function of Batch Size: A Random
Matrix Theory Approach to Neural Network Training".
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .calculus import _check_finite
from .runtime import _check_device

__all__ = ["hvp", "hessian", "ggn_vp", "lanczos", "power_iteration", "top_eigenvalues",
           "spectral_density", "loss_as_function"]

_MODES = ("rev-rev", "fwd-rev")
_METHODS = ("lanczos", "power")
Matvec = Callable[[torch.Tensor], torch.Tensor]  # a symmetric linear map (n,) -> (n,)
ScalarFn = Callable[[torch.Tensor], torch.Tensor]  # x -> 0-dim tensor


# ---------------------------------------------------------------- validation

_INT64_MAX = 2**63 - 1  # the largest size torch can hold
_FLOAT_MAX = torch.finfo(torch.float64).max


def _check_int(name: str, value, low: int, high: float = _INT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if not low <= value <= high:
        bound = f">= {low}" if high == _INT64_MAX else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    if not -math.inf < value < math.inf or abs(value) > _FLOAT_MAX:  # NaN, inf, or an int beyond float64
        raise ValueError(f"{name} must be a finite number, got {value}")
    return float(value)


def _check_positive(name: str, value) -> float:
    if not _check_real(name, value) > 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def _check_eigh_dtype(x: torch.Tensor) -> torch.Tensor:
    # the small tridiagonal eigenproblem runs in x's dtype; torch.linalg.eigh has no half precision
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be float32 or float64 (torch.linalg.eigh needs them), got {x.dtype}")
    return x


def _check_dtype(dtype) -> torch.dtype | None:
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be None or a real floating torch.dtype, got {dtype!r}")
    return dtype


def _check_generator(generator) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be None or a torch.Generator, got {type(generator).__name__}")
    return generator


def _check_callable(name: str, f) -> None:
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__}")


def _check_x(x, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} must have at least one element, got shape {tuple(x.shape)}")
    return _check_finite(name, x.detach())


def _check_v(x: torch.Tensor, v, name: str = "v") -> torch.Tensor:
    if not isinstance(v, torch.Tensor) or not torch.is_floating_point(v):
        raise TypeError(f"{name} must be a floating torch.Tensor, got "
                        f"{getattr(v, 'dtype', type(v).__name__)}")
    if v.shape != x.shape:
        raise ValueError(f"{name} must have the shape of x {tuple(x.shape)}, got {tuple(v.shape)}")
    if v.device != x.device:
        raise ValueError(f"{name} must be on x's device {x.device}, got {v.device}")
    return _check_finite(name, v.detach()).to(x.dtype)


def _scalar(out, name: str = "f") -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    if out.numel() != 1:
        raise ValueError(f"{name} must return a scalar (one element), got shape {tuple(out.shape)}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} returned a non-finite value ({float(out.detach().reshape(()))}) at a "
                         "finite point")
    return out.reshape(())


def _scalar_fn(f: Callable, name: str = "f") -> Callable[[torch.Tensor], torch.Tensor]:
    _check_callable(name, f)
    return lambda t: _scalar(f(t), name)


def _check_product(hv: torch.Tensor, name: str = "f") -> torch.Tensor:
    if not bool(torch.isfinite(hv).all()):
        raise ValueError(f"the Hessian-vector product of {name} is not finite at x "
                         f"(is {name} twice differentiable there?)")
    return hv


def _apply(matvec: Matvec, q: torch.Tensor, dtype) -> torch.Tensor:
    """``matvec(q)`` as a flat vector of ``dtype``, checked: a tensor of q's size, finite."""
    w = matvec(q)
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"matvec must return a torch.Tensor, got {type(w).__name__}")
    if w.numel() != q.numel():
        raise ValueError(f"matvec must return {q.numel()} entries (the size of its input), got shape "
                         f"{tuple(w.shape)}")
    return _check_finite("matvec's output", w.reshape(-1).to(dtype))


# ---------------------------------------------------------------- products

def hvp(f: ScalarFn, x: torch.Tensor, v: torch.Tensor, mode: str = "rev-rev") -> torch.Tensor:
    """The Hessian-vector product ``H(x) v`` of a scalar ``f``, without forming ``H``.

    ``H v`` is the directional derivative of the gradient along ``v``,
    ``d/dr grad f(x + r v)`` at ``r = 0``, so autodiff gives it exactly:

    * ``"rev-rev"``: ``g = grad(f(x), x, create_graph=True)``, then
      ``grad((g * v).sum(), x)``: a forward and two backward passes (2-4 gradients),
      holding the graph of the first backward in memory.
    * ``"fwd-rev"``: ``torch.func.jvp(torch.func.grad(f), (x,), (v,))``: one
      backward pass carrying forward-mode tangents; same order of cost, no graph
      of the backward kept, so usually less memory; ``f`` must be functional.

    Neither cost grows with ``n = x.numel()`` (the dense Hessian takes ``n``).
    ``x``: floating, any shape; ``v``: same shape. Returns a tensor shaped like ``x``.
    Reference: Pearlmutter (1994), the operator ``R_v{grad f} = H v``.
    """
    x = _check_x(x)
    v = _check_v(x, v)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if mode == "fwd-rev":
        _, hv = torch.func.jvp(torch.func.grad(_scalar_fn(f)), (x,), (v,))
        return _check_product(hv.detach())
    return _hvp_operator(f, x)(v.reshape(-1)).reshape(x.shape)


def _hvp_operator(f: Callable, x: torch.Tensor, name: str = "f") -> Matvec:
    # Flat (n,) -> (n,) matvec of H(x), reverse-over-reverse: g = grad f with
    # create_graph, then H v = grad((g * v).sum(), x), i.e. the VJP of g with v.
    # The gradient graph is built once and kept (retain_graph) for every v.
    x = _check_x(x).requires_grad_(True)
    with torch.enable_grad():
        y = _scalar_fn(f, name)(x)
        g = torch.autograd.grad(y, x, create_graph=True)[0] if y.requires_grad else None
    if g is None or not g.requires_grad:
        return lambda q: torch.zeros_like(q)

    def matvec(q: torch.Tensor) -> torch.Tensor:
        (hv,) = torch.autograd.grad(g, x, q.reshape(x.shape), retain_graph=True, allow_unused=True)
        return torch.zeros_like(q) if hv is None else _check_product(hv.detach().reshape(-1), name)

    return matvec


def hessian(f: ScalarFn, x: torch.Tensor) -> torch.Tensor:
    """The dense Hessian of scalar ``f`` at ``x``, shape ``(n, n)`` with ``n = x.numel()``.

    Column ``i`` is ``H e_i``: ``n`` HVPs and ``n^2`` memory, for small problems and
    for checking the matrix-free routines. Returned symmetrised, ``(H + H^T) / 2``.
    Reference: Pearlmutter (1994), applied to the unit vectors.
    """
    x = _check_x(x)
    matvec = _hvp_operator(f, x)
    eye = torch.eye(x.numel(), dtype=x.dtype, device=x.device)
    h = torch.stack([matvec(e) for e in eye], dim=1)
    return 0.5 * (h + h.T)


def ggn_vp(model_fn: Callable[[torch.Tensor], torch.Tensor],
           loss_fn: Callable[[torch.Tensor], torch.Tensor],
           params: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The generalised Gauss-Newton product ``G v = J^T H_L J v``.

    ``model_fn(params) -> z`` (any shape), ``loss_fn(z) -> scalar``,
    ``J = dz/dparams`` and ``H_L`` the Hessian of the loss in ``z``. Three
    matrix-free steps: ``u = J v`` (one JVP), ``w = H_L u`` (an HVP in output
    space, cheap: ``z`` is small) and ``J^T w`` (one VJP). ``G`` drops the
    curvature of the model itself from the Hessian, so it is positive
    semi-definite whenever the loss is convex in ``z`` (MSE, cross-entropy), and
    equals the Hessian for a linear model. ``params`` and ``v`` share a shape;
    returns a tensor of that shape.
    Reference: Schraudolph (2002), the Gauss-Newton product ``G = J^T H_L J``.
    """
    params = _check_x(params, "params")
    v = _check_v(params, v)
    if not callable(model_fn) or not callable(loss_fn):
        raise TypeError(f"model_fn and loss_fn must be callable, got "
                        f"{type(model_fn).__name__} and {type(loss_fn).__name__}")

    def model(p):  # model_fn, its output checked
        z = model_fn(p)
        if not isinstance(z, torch.Tensor) or not torch.is_floating_point(z):
            raise TypeError(f"model_fn must return a floating tensor, got "
                            f"{getattr(z, 'dtype', type(z).__name__)}")
        return _check_finite("model_fn's output", z)

    z, jv = torch.func.jvp(model, (params,), (v,))
    if not bool(torch.isfinite(jv).all()):
        raise ValueError("the Jacobian-vector product of model_fn is not finite at params")
    z, jv = z.detach(), jv.detach()
    hjv = _hvp_operator(loss_fn, z, "loss_fn")(jv.reshape(-1)).reshape(z.shape)  # hvp, naming loss_fn
    _, vjp_fn = torch.func.vjp(model, params)
    return _check_product(vjp_fn(hjv)[0].detach(), "model_fn and loss_fn")


# ---------------------------------------------------------------- eigen-solvers

def _orthogonalise(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    # Classical Gram-Schmidt against the rows of `basis`, twice ("twice is enough").
    for _ in range(2):
        w = w - basis.T @ (basis @ w)
    return w


def _random_unit(n: int, generator, dtype, device, basis: torch.Tensor | None = None
                 ) -> torch.Tensor:
    w = torch.randn(n, generator=generator, dtype=dtype, device=device)
    w = w if basis is None else _orthogonalise(w, basis)
    return w / w.norm()


def lanczos(matvec: Matvec, n: int, iters: int, generator: torch.Generator | None = None,
            v0: torch.Tensor | None = None, dtype: torch.dtype | None = None,
            device: torch.device | str | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``m = min(iters, n)`` Lanczos steps on a symmetric ``matvec``, fully reorthogonalised.

    Builds an orthonormal basis ``Q`` (rows, shape ``(m, n)``) of the Krylov space
    of the start vector in which the operator ``A`` is tridiagonal: ``Q A Q^T = T``
    with diagonal ``alpha`` ``(m,)`` and off-diagonal ``beta`` ``(m-1,)``. The
    eigenvalues of ``T`` (Ritz values) approximate the extreme eigenvalues of
    ``A`` first. Each new vector is orthogonalised against all of ``Q`` (twice):
    ``O(m n)`` memory, but no spurious copies of converged eigenvalues as in plain
    Lanczos. If the Krylov space is exhausted early (``beta`` at rounding level),
    the run goes on from a random vector orthogonal to ``Q`` with ``beta = 0``.
    ``v0``: start vector ``(n,)``, Gaussian (from ``generator``) if None; ``dtype``
    and ``device`` default to ``v0``'s, else torch's default dtype and CPU.
    Returns ``(alpha, beta, Q)``.
    Reference: Lanczos (1950); Golub & Van Loan, "Matrix Computations" (4th ed.),
    Algorithm 10.1.1, here with complete reorthogonalisation.
    """
    _check_callable("matvec", matvec)
    n = _check_int("n", n, 1)
    m = min(_check_int("iters", iters, 1), n)
    _check_generator(generator)
    _check_dtype(dtype)
    device = _check_device(device)
    if v0 is not None:
        v0 = _check_x(v0, "v0")
        if v0.shape != (n,) or not bool((v0 != 0).any()):
            raise ValueError(f"v0 must be non-zero of shape ({n},), got shape {tuple(v0.shape)}")
        dtype = dtype or v0.dtype
        q = v0 / v0.abs().max()  # first scaled to max 1: the norm of a tiny v0 would underflow to 0
        q = (q / q.norm()).to(dtype=dtype, device=device or v0.device)
    else:
        dtype = dtype or torch.get_default_dtype()
        q = _random_unit(n, generator, dtype, device)
    eps = torch.finfo(dtype).eps
    Q = torch.empty(m, n, dtype=dtype, device=q.device)
    alpha = torch.empty(m, dtype=dtype, device=q.device)
    beta = torch.zeros(max(m - 1, 0), dtype=dtype, device=q.device)
    a_norm = 0.0
    for j in range(m):
        Q[j] = q
        w = _apply(matvec, q, dtype)
        a_norm = max(a_norm, float(w.norm()))
        alpha[j] = q @ w
        if j == m - 1:
            break
        w = _orthogonalise(w, Q[: j + 1])  # removes alpha_j q_j and beta_{j-1} q_{j-1} too
        b = w.norm()
        if b <= 100 * eps * a_norm:  # invariant subspace found: restart, T splits
            q = _random_unit(n, generator, dtype, q.device, Q[: j + 1])
        else:
            beta[j], q = b, w / b
    return alpha, beta, Q


def _tridiagonal(alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return torch.diag(alpha) + torch.diag(beta, 1) + torch.diag(beta, -1)


def power_iteration(matvec: Matvec, n: int, k: int = 1, iters: int = 1000, tol: float = 1e-6,
                    shift: float = 0.0, generator: torch.Generator | None = None,
                    dtype: torch.dtype | None = None, device: torch.device | str | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` eigenpairs of a symmetric operator ``A`` by power iteration with deflation.

    For each pair: ``v <- P (A + shift I) v / ||.||``, ``P`` projecting out the
    eigenvectors found so far (Hotelling's deflation ``A - sum_j lambda_j u_j u_j^T``
    in its stable, projected form), until ``||P A v - theta v|| <= tol *
    max(|theta|, |theta + shift|)`` with ``theta = v . A v``, or ``iters`` products
    (then the last iterate is returned as it is). Pairs come out in decreasing
    ``|lambda + shift|``: largest magnitude for ``shift = 0``, algebraically largest
    once ``shift >= -lambda_min``. Linear convergence, rate
    ``|lambda_{i+1} + shift| / |lambda_i + shift|``. Returns eigenvalues of ``A``
    itself (Rayleigh quotients) ``(k,)`` and unit eigenvectors ``(k, n)``.
    Reference: Golub & Van Loan, "Matrix Computations" (4th ed.), section 8.2.1
    (power method); Hotelling (1933) for deflation.
    """
    _check_callable("matvec", matvec)
    n = _check_int("n", n, 1)
    k = _check_int("k", k, 1, n)
    iters = _check_int("iters", iters, 1)
    tol = _check_positive("tol", tol)
    shift = _check_real("shift", shift)
    _check_generator(generator)
    dtype = _check_dtype(dtype) or torch.get_default_dtype()
    device = _check_device(device)
    U = torch.empty(0, n, dtype=dtype, device=device)
    lams = []
    for _ in range(k):
        v = _random_unit(n, generator, dtype, U.device, U)
        for t in range(iters):
            av = _orthogonalise(_apply(matvec, v, dtype), U)
            theta = v @ av
            scale = max(abs(float(theta)), abs(float(theta) + shift))
            if float((av - theta * v).norm()) <= tol * scale or t == iters - 1:
                break
            w = _orthogonalise(av + shift * v, U)
            if not w.norm() > 0:
                break
            v = w / w.norm()
        lams.append(theta)
        U = torch.cat([U, v[None]])
    return torch.stack(lams), U


def _spectral_radius(matvec: Matvec, n: int, iters: int, tol: float, generator, dtype, device
                     ) -> float:
    # ||A v|| for the power iterate v: non-decreasing and tends to max |lambda|,
    # even when +rho and -rho are both eigenvalues (where the Rayleigh quotient stalls).
    v = _random_unit(n, generator, dtype, device)
    radius = 0.0
    for _ in range(iters):
        w = _apply(matvec, v, dtype)
        new = float(w.norm())
        if new == 0 or abs(new - radius) <= tol * new:
            return new
        v, radius = w / new, new
    return radius


def top_eigenvalues(f: ScalarFn, x: torch.Tensor, k: int = 1, method: str = "lanczos",
                    iters: int | None = None, tol: float = 1e-6,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` algebraically largest eigenvalues of the Hessian of ``f`` at ``x``.

    Matrix-free: only Hessian-vector products, nothing of size ``n^2``.

    * ``"lanczos"`` (default): ``iters`` Lanczos steps (default
      ``min(n, max(2k + 20, 30))``; exact once ``iters >= n``), then the top ``k``
      Ritz pairs from ``torch.linalg.eigh`` of ``T``. ``tol`` is not used.
    * ``"power"``: power iteration finds the largest *magnitude*: the top of the
      spectrum only if the top positive eigenvalue dominates (true for trained
      networks, not early in training or near saddles). So the spectral radius
      ``rho`` is found first and deflated power iteration runs on ``H + rho I >= 0``,
      whose order is ``H``'s algebraic order: always the top ``k``, at a slower
      rate ``(lambda_2 + rho) / (lambda_1 + rho)``. ``iters`` (default 1000) caps
      the products per eigenpair; ``tol`` is the relative residual to stop at.

    Returns eigenvalues ``(k,)``, descending, and unit eigenvectors
    ``(k, *x.shape)`` (each up to sign), in ``x``'s dtype and on its device.
    Reference: Lanczos (1950); Golub & Van Loan (4th ed.), Algorithm 10.1.1 and
    section 8.2.1; used on networks by Sagun et al. (2017) and Ghorbani et al. (2019).
    """
    x = _check_eigh_dtype(_check_x(x))
    n = x.numel()
    _check_generator(generator)
    k = _check_int("k", k, 1, n)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    tol = _check_positive("tol", tol)
    if iters is None:
        iters = min(n, max(2 * k + 20, 30)) if method == "lanczos" else 1000
    iters = _check_int("iters", iters, k if method == "lanczos" else 1)
    matvec = _hvp_operator(f, x)
    opts = dict(generator=generator, dtype=x.dtype, device=x.device)
    if method == "lanczos":
        alpha, beta, Q = lanczos(matvec, n, iters, **opts)
        theta, S = torch.linalg.eigh(_tridiagonal(alpha, beta))
        lams, vecs = theta.flip(0)[:k], (S.flip(1)[:, :k].T @ Q)
    else:
        rho = _spectral_radius(matvec, n, iters, tol, **opts)
        lams, vecs = power_iteration(matvec, n, k, iters, tol, shift=rho, **opts)
        lams, order = torch.sort(lams, descending=True)
        vecs = vecs[order]
    vecs = vecs / vecs.norm(dim=1, keepdim=True)
    return lams, vecs.reshape(k, *x.shape)


def spectral_density(f: ScalarFn, x: torch.Tensor, n_probes: int = 8, iters: int = 60,
                     grid: torch.Tensor | None = None, sigma: float | None = None,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The eigenvalue density of the Hessian of ``f`` at ``x`` by stochastic Lanczos quadrature.

    The density ``p(t) = (1/n) sum_i delta(t - lambda_i)`` satisfies
    ``E_v[v^T g(H) v] = int g(t) p(t) dt`` for a unit random probe with
    ``E[v v^T] = I / n``. For each Rademacher probe, ``iters`` Lanczos steps
    give the Gauss quadrature of that quadratic form: nodes ``theta_i`` (Ritz
    values) and weights ``tau_i = S[0, i]^2`` (squared first components of
    ``T``'s eigenvectors, summing to 1). Averaging the smoothed measures
    ``sum_i tau_i N(t; theta_i, sigma^2)`` over probes estimates ``p``; its mean
    is Hutchinson's estimate of ``trace(H) / n``. Outliers (Sagun et al. 2017)
    show up as small bumps of mass about ``1/n`` each.

    ``iters`` is capped at ``n``. ``grid``: 1-D evaluation points, default 1000
    spanning the Ritz values with a 10% margin each side; ``sigma``: Gaussian
    width, default 1% of that span; ``generator`` draws the probes (on ``x``'s
    device). Returns ``(grid, density)``, 1-D, in ``x``'s dtype; ``density``
    integrates to about 1 over the default grid.
    Reference: Ghorbani, Krishnan & Xiao (2019), Algorithm 1 (SLQ); Lin, Saad &
    Yang (2016), the Lanczos method for spectral densities.
    """
    x = _check_eigh_dtype(_check_x(x))
    _check_generator(generator)
    n_probes = _check_int("n_probes", n_probes, 1)
    iters = _check_int("iters", iters, 1)
    if sigma is not None:
        sigma = _check_positive("sigma", sigma)
    if grid is not None:
        grid = _check_x(grid, "grid").to(x.dtype)
        if grid.ndim != 1:
            raise ValueError(f"grid must be 1-D, got shape {tuple(grid.shape)}")
    n = x.numel()
    matvec = _hvp_operator(f, x)
    nodes, weights = [], []
    for _ in range(n_probes):
        signs = torch.randint(0, 2, (n,), generator=generator, device=x.device)
        alpha, beta, _ = lanczos(matvec, n, iters, generator, v0=2 * signs.to(x.dtype) - 1)
        theta, S = torch.linalg.eigh(_tridiagonal(alpha, beta))
        nodes.append(theta)
        weights.append(S[0] ** 2)
    nodes, weights = torch.cat(nodes), torch.cat(weights) / n_probes
    lo, hi = float(nodes.min()), float(nodes.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    if grid is None:
        grid = torch.linspace(lo - 0.1 * span, hi + 0.1 * span, 1000, dtype=x.dtype, device=x.device)
    sigma = 0.01 * span if sigma is None else sigma
    gauss = torch.exp(-0.5 * ((grid[:, None] - nodes[None, :]) / sigma) ** 2)
    density = gauss @ weights / (sigma * math.sqrt(2 * math.pi))
    return grid, density.to(grid.dtype)


# ---------------------------------------------------------------- networks

def loss_as_function(model: torch.nn.Module, loss_fn: Callable, inputs: torch.Tensor,
                     targets: torch.Tensor
                     ) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """A network's loss on one batch as a function of one flat parameter vector.

    ``f(theta) = loss_fn(model with parameters theta (inputs), targets)``, through
    ``torch.func.functional_call`` (the module is not modified), so ``f`` works
    with every function of this module and with ``torch.func`` transforms.
    ``theta`` concatenates the flattened trainable parameters in
    ``named_parameters()`` order; frozen parameters and buffers stay the module's
    (use ``model.eval()`` if it has batch-norm, so that calls do not update them).

    Returns ``(f, theta0)``: ``theta0`` of shape ``(n,)``, a detached copy of the
    current parameters.
    Reference: none (book infrastructure, as in Ghorbani et al. 2019's code).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    for name, t in (("inputs", inputs), ("targets", targets)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        _check_finite(name, t)
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError(f"model has no trainable parameters ({type(model).__name__})")
    names, shapes, sizes = zip(*[(name, p.shape, p.numel()) for name, p in named])
    theta0 = torch.cat([p.detach().reshape(-1) for _, p in named]).clone()

    def f(theta: torch.Tensor) -> torch.Tensor:
        # shape and dtype only: a check of values would break torch.func.vmap over f
        if not isinstance(theta, torch.Tensor) or theta.shape != theta0.shape:
            raise ValueError(f"theta must be a tensor of shape {tuple(theta0.shape)}, got "
                             f"{getattr(theta, 'shape', type(theta).__name__)}")
        if theta.dtype != theta0.dtype:
            raise TypeError(f"theta must have the parameters' dtype {theta0.dtype}, got {theta.dtype}")
        params = {nm: c.view(s) for nm, c, s in zip(names, torch.split(theta, sizes), shapes)}
        return loss_fn(torch.func.functional_call(model, params, (inputs,)), targets)

    return f, theta0
