"""Implicit differentiation: gradients of roots, argmins and fixed points.

Chapter 10 (``book/10_implicit.md``, lab ``notebooks/10_implicit.ipynb``).

A solution defined by a condition ``F(x, theta) = 0`` has, by the implicit
function theorem, the derivative ``dx*/dtheta = -(dF/dx)^{-1} dF/dtheta``,
whatever solver found it. Reverse mode needs only one product with that
matrix per output gradient: solve ``(dF/dx)^T u = v`` with vector-Jacobian
products of ``F``, then ``grad_theta = -(dF/dtheta)^T u`` (one more VJP).
No Jacobian is formed and nothing of the solver's iterations is stored.

* :func:`root_solve`: ``x*(theta)`` from any black-box ``solver``,
  differentiable in ``theta`` by the implicit function theorem;
  :func:`argmin_solve` does the same for ``argmin_x g(x, theta)`` through the
  optimality condition ``grad_x g(x, theta) = 0``.
* :func:`conjugate_gradient` (symmetric positive definite systems, e.g. the
  Hessian of an argmin) and :func:`neumann_series` (``(I - M) x = b`` for a
  contraction ``M``, e.g. a fixed point's Jacobian): the matrix-free linear
  solvers of the backward pass.
* :func:`fixed_point_iteration` (the plain iteration, differentiable by
  unrolling), :func:`fixed_point_solve` (the same solution, differentiable
  implicitly in constant memory) and :class:`FixedPointLayer`, a
  deep-equilibrium layer ``z* = f(z*, x)`` built on them.

References: Blondel et al. (2022), "Efficient and Modular Implicit
Differentiation" (optimality conditions ``F``, VJPs only); Bai, Kolter &
Koltun (2019), "Deep Equilibrium Models"; Liao et al. (2018), "Reviving and
Improving Recurrent Back-Propagation" (Neumann-series backward); Hestenes &
Stiefel (1952), "Methods of Conjugate Gradients for Solving Linear Systems";
Park, Choo & Park (2022), "Convergent Graph Solvers".
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, Union

import torch
from torch.autograd.function import once_differentiable

from .calculus import _check_finite
from .curvature import _check_callable, _check_int, _check_real

__all__ = ["conjugate_gradient", "neumann_series", "root_solve", "argmin_solve",
           "fixed_point_iteration", "fixed_point_solve", "FixedPointLayer"]

Theta = Union[torch.Tensor, Sequence[torch.Tensor]]
Matvec = Callable[[torch.Tensor], torch.Tensor]
_LINEAR_SOLVERS = ("cg", "neumann", "dense")
_DIVERGED = 1e10  # a Neumann term this many times ||b||: the series diverges


# ---------------------------------------------------------------- validation

def _check_tensor(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} must have at least one element, got shape {tuple(x.shape)}")
    return _check_finite(name, x.detach())


def _check_tol(name: str, value, dtype: torch.dtype, positive: bool = True) -> float:
    """A tolerance; None means ``max(1e-10, 10 eps)`` of ``dtype`` (1e-10 in float64, ~1e-6 in float32)."""
    if value is None:
        return max(1e-10, 10 * torch.finfo(dtype).eps)
    value = _check_real(name, value)
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'positive' if positive else 'non-negative'}, got {value}")
    return value


def _check_output(name: str, out, like: torch.Tensor) -> torch.Tensor:
    """What a user function returned where a tensor shaped like ``like`` is expected."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    if out.shape != like.shape:
        raise ValueError(f"{name} must return a tensor of shape {tuple(like.shape)}, got {tuple(out.shape)}")
    if out.dtype != like.dtype:
        raise TypeError(f"{name} must return {like.dtype} (the dtype of its input), got {out.dtype}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} returned a non-finite value (NaN or inf) at a finite input")
    return out


def _check_theta(theta, x0: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], bool]:
    """``theta`` as a tuple of finite floating tensors on x0's device, and whether it came as one tensor."""
    single = isinstance(theta, torch.Tensor)
    if not single and not (isinstance(theta, (tuple, list)) and theta):
        raise TypeError(f"theta must be a tensor or a non-empty tuple/list of tensors, got "
                        f"{type(theta).__name__}{' (empty)' if isinstance(theta, (tuple, list)) else ''}")
    thetas = (theta,) if single else tuple(theta)
    for i, t in enumerate(thetas):
        name = "theta" if single else f"theta[{i}]"
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype != x0.dtype:
            raise TypeError(f"{name} must have x0's dtype {x0.dtype} (it is differentiated), got {t.dtype}")
        if t.device != x0.device:
            raise ValueError(f"{name} must be on x0's device {x0.device}, got {t.device}")
        _check_finite(name, t.detach())
    return thetas, single


def _check_linear_solver(linear_solver) -> None:
    if not (callable(linear_solver) or (isinstance(linear_solver, str) and linear_solver in _LINEAR_SOLVERS)):
        raise ValueError(f"linear_solver must be one of {_LINEAR_SOLVERS} or a callable, got "
                         f"{type(linear_solver).__name__} {linear_solver!r}")


def _pack(thetas: Sequence[torch.Tensor], single: bool):
    return thetas[0] if single else tuple(thetas)


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum())


def _apply(matvec: Matvec, u: torch.Tensor) -> torch.Tensor:
    return _check_output("matvec", matvec(u), u)


# ---------------------------------------------------------------- linear solvers

def conjugate_gradient(matvec: Matvec, b: torch.Tensor, x0: torch.Tensor | None = None,
                       tol: float | None = None, max_iter: int | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve ``A x = b`` for a symmetric positive definite ``A`` given only ``matvec(u) = A u``.

    Conjugate gradients: search directions ``p_k`` that are ``A``-conjugate
    (``p_i^T A p_j = 0``), each with an exact line search. The iterate ``x_k``
    minimises the error in the ``A``-norm, ``||x - x*||_A``, over
    ``x0 + span{r0, A r0, ..., A^{k-1} r0}``, so it is exact after at most
    ``n`` steps (in exact arithmetic; fewer if ``A`` has few distinct
    eigenvalues) and the ``A``-norm error falls at least like
    ``2 ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^k`` for condition number ``kappa``.

    ``b``: float32/float64, any shape; ``matvec`` maps tensors of that shape to
    the same shape. Stops when the (recursively updated) relative residual
    ``||b - A x|| / ||b||`` is at most ``tol`` (default ``max(1e-10, 10 eps)``)
    or after ``max_iter`` products (default ``2 n + 10``). Returns ``(x,
    residuals)``: ``x`` shaped like ``b``, and ``residuals[k]`` the relative
    residual after ``k`` products by ``A`` (1-D, length ``iterations + 1``).
    Raises ValueError where a search direction has ``p^T A p <= 0`` (``A`` is
    not positive definite). Not converging within ``max_iter`` is not an
    error: read ``residuals[-1]``.
    Reference: Hestenes & Stiefel (1952); Golub & Van Loan, "Matrix
    Computations" (4th ed.), section 11.3.
    """
    _check_callable("matvec", matvec)
    b = _check_tensor("b", b)
    tol = _check_tol("tol", tol, b.dtype, positive=False)
    max_iter = 2 * b.numel() + 10 if max_iter is None else _check_int("max_iter", max_iter, 1)
    if x0 is not None:
        x0 = _check_tensor("x0", x0)
        if x0.shape != b.shape or x0.dtype != b.dtype or x0.device != b.device:
            raise ValueError(f"x0 must match b (shape {tuple(b.shape)}, {b.dtype}, {b.device}), got shape "
                             f"{tuple(x0.shape)}, {x0.dtype}, {x0.device}")
    scale = float(b.abs().max())
    if scale == 0:
        return torch.zeros_like(b), torch.zeros(1, dtype=b.dtype, device=b.device)
    b = b / scale  # solve A (x / scale) = b / scale: no overflow in the inner products
    b_norm = float(b.norm())
    if x0 is None:
        x, r = torch.zeros_like(b), b.clone()
    else:
        x = x0 / scale
        r = b - _apply(matvec, x)
    p = r.clone()
    rs = _dot(r, r)
    residuals = [math.sqrt(rs) / b_norm]
    for k in range(max_iter):
        if residuals[-1] <= tol:
            break
        Ap = _apply(matvec, p)
        pAp = _dot(p, Ap)
        if not pAp > 0:
            raise ValueError(f"matvec is not positive definite: p^T A p = {pAp:.3g} <= 0 along search "
                             f"direction {k}; conjugate gradients needs a symmetric positive definite A")
        alpha = rs / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = _dot(r, r)
        residuals.append(math.sqrt(rs_new) / b_norm)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return _unscale(x, scale), torch.tensor(residuals, dtype=b.dtype, device=b.device)


def _unscale(x: torch.Tensor, scale: float) -> torch.Tensor:
    x = x * scale
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"the solution overflows {x.dtype} (b is too large for this matvec)")
    return x


def neumann_series(matvec: Matvec, b: torch.Tensor, tol: float | None = None, max_iter: int = 1000
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve ``(I - M) x = b`` by the Neumann series ``x = b + M b + M^2 b + ...``.

    ``matvec(u) = M u``. The partial sums converge for every ``b`` if and only
    if the spectral radius of ``M`` is below 1, at the rate of the largest
    ``|eigenvalue|``: for a fixed point ``z = f(z)`` with Jacobian ``J`` and
    ``M = J^T`` this is the backward pass of a deep equilibrium model, and it
    is what backpropagation through the forward iterations computes term by term.

    After ``k`` products the iterate is ``x_k = sum_{j<k} M^j b`` and its
    residual ``b - (I - M) x_k = M^k b`` is the next term, known for free.
    Stops when ``||M^k b|| / ||b|| <= tol`` (default ``max(1e-10, 10 eps)``)
    or after ``max_iter`` products. ``b``: float32/float64, any shape.
    Returns ``(x, residuals)`` with ``residuals[k] = ||M^k b|| / ||b||``
    (1-D, ``residuals[0] = 1``). Raises ValueError when a term grows beyond
    ``1e10 ||b||`` (the series diverges: spectral radius >= 1). Not converging
    within ``max_iter`` is not an error: read ``residuals[-1]``.
    Reference: Liao et al. (2018), "Reviving and Improving Recurrent
    Back-Propagation" (Neumann-RBP); Lorraine, Vicol & Duvenaud (2020).
    """
    _check_callable("matvec", matvec)
    b = _check_tensor("b", b)
    tol = _check_tol("tol", tol, b.dtype, positive=False)
    max_iter = _check_int("max_iter", max_iter, 1)
    scale = float(b.abs().max())
    if scale == 0:
        return torch.zeros_like(b), torch.zeros(1, dtype=b.dtype, device=b.device)
    b = b / scale  # M is linear: sum the series for b / scale, no overflow in the norms
    b_norm = float(b.norm())
    x, term = b.clone(), b
    residuals = [1.0]
    for k in range(1, max_iter + 1):
        term = _apply(matvec, term)
        residuals.append(float(term.norm()) / b_norm)
        if residuals[-1] <= tol or k == max_iter:
            break
        if not residuals[-1] < _DIVERGED:
            raise ValueError(f"the Neumann series diverges: ||M^{k} b|| = {residuals[-1]:.3g} ||b||; "
                             "it converges only if the spectral radius of M (matvec) is below 1")
        x = x + term
    return _unscale(x, scale), torch.tensor(residuals, dtype=b.dtype, device=b.device)


def _dense_solve(matvec: Matvec, v: torch.Tensor) -> tuple[torch.Tensor, float]:
    # Form A column by column (n products), then LU: for small problems and for checking.
    n = v.numel()
    eye = torch.eye(n, dtype=v.dtype, device=v.device)
    A = torch.stack([_apply(matvec, e.reshape(v.shape)).reshape(-1) for e in eye], dim=1)
    try:
        u = torch.linalg.solve(A, v.reshape(-1))
    except RuntimeError as err:  # torch.linalg.LinAlgError: singular
        raise ValueError(f"dF/dx is singular at the solution; the implicit function theorem does not "
                         f"apply ({err})") from None
    if not bool(torch.isfinite(u).all()):
        raise ValueError("dF/dx is singular at the solution (the dense solve is not finite)")
    residual = float((A @ u - v.reshape(-1)).norm()) / max(float(v.norm()), torch.finfo(v.dtype).tiny)
    return u.reshape(v.shape), residual


def _linear_solve(linear_solver, matvec: Matvec, v: torch.Tensor, tol: float, max_iter: int
                  ) -> torch.Tensor:
    """``u`` with ``A^T u = v``, where ``matvec(u) = A^T u`` and ``A = dF/dx``; checked to reach ``tol``."""
    if float(v.norm()) == 0:
        return torch.zeros_like(v)
    if linear_solver == "cg":
        try:
            u, res = conjugate_gradient(matvec, v, tol=tol, max_iter=max_iter)
        except ValueError as err:
            raise ValueError(f"linear_solver='cg' needs dF/dx symmetric positive definite (an argmin's "
                             f"Hessian); use 'neumann', 'dense' or your own. ({err})") from None
        residual = float(res[-1])
    elif linear_solver == "neumann":
        # A^T u = v  <=>  (I - M) u = -v  with  M = I + A^T (= J^T for F(z) = f(z) - z)
        try:
            w, res = neumann_series(lambda q: q + matvec(q), v, tol=tol, max_iter=max_iter)
        except ValueError as err:
            raise ValueError(f"linear_solver='neumann' needs the spectral radius of I + dF/dx below 1 "
                             f"(a contraction f for F = f(z) - z); use 'cg', 'dense' or your own. ({err})"
                             ) from None
        u, residual = -w, float(res[-1])
    elif linear_solver == "dense":
        u, residual = _dense_solve(matvec, v)
        tol = max(tol, 1e3 * torch.finfo(v.dtype).eps)  # LU is exact to rounding
    else:
        u = _check_output("linear_solver", linear_solver(matvec, v), v)
        residual = float((_apply(matvec, u) - v).norm()) / float(v.norm())
    if not residual <= tol:
        raise ValueError(f"the linear solve for the implicit gradient did not converge: relative residual "
                         f"{residual:.3g} > solve_tol = {tol:.3g}; raise solve_max_iter or solve_tol, or "
                         "check that dF/dx is invertible (for 'neumann': spectral radius of I + dF/dx < 1)")
    return u


# ---------------------------------------------------------------- implicit differentiation

class _RootSolve(torch.autograd.Function):
    """Identity on ``x_star`` in the forward pass; the implicit function theorem in the backward pass."""

    @staticmethod
    def forward(ctx, F, single, linear_solver, tol, max_iter, x_star, *thetas):
        ctx.F, ctx.single, ctx.linear_solver, ctx.tol, ctx.max_iter = F, single, linear_solver, tol, max_iter
        ctx.save_for_backward(x_star, *thetas)
        return x_star.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, v):
        x_star, *thetas = ctx.saved_tensors
        needs = ctx.needs_input_grad[6:]
        if not bool(torch.isfinite(v).all()):
            raise ValueError("the incoming gradient dL/dx* is not finite (NaN or inf)")
        with torch.enable_grad():
            x = x_star.detach().requires_grad_(True)
            th = [t.detach().requires_grad_(need) for t, need in zip(thetas, needs)]
            y = _check_output("F", ctx.F(x, _pack(th, ctx.single)), x)

        def matvec(u: torch.Tensor) -> torch.Tensor:  # (dF/dx)^T u: one VJP of F in x
            if not y.requires_grad:
                return torch.zeros_like(u)
            (g,) = torch.autograd.grad(y, x, u, retain_graph=True, allow_unused=True)
            return torch.zeros_like(u) if g is None else g

        u = _linear_solve(ctx.linear_solver, matvec, v.contiguous(), ctx.tol, ctx.max_iter)
        wanted = [t for t in th if t.requires_grad]
        grads = list(torch.autograd.grad(y, wanted, u, allow_unused=True)) if wanted and y.requires_grad \
            else [None] * len(wanted)
        out = []
        for t in th:
            if not t.requires_grad:
                out.append(None)
                continue
            g = grads.pop(0)
            out.append(torch.zeros_like(t) if g is None else -g)  # dtheta = -(dF/dtheta)^T u
        return (None, None, None, None, None, None, *out)


def root_solve(F: Callable, x0: torch.Tensor, theta: Theta, solver: Callable,
               linear_solver: str | Callable = "cg", solve_tol: float | None = None,
               solve_max_iter: int = 1000) -> torch.Tensor:
    """The root ``x*(theta)`` of ``F(x, theta) = 0`` found by ``solver``, differentiable in ``theta``.

    Forward: ``x* = solver(x0, theta)`` runs without recording (any algorithm,
    any number of iterations, nothing stored). Backward, for an incoming
    gradient ``v = dL/dx*``, the implicit function theorem
    ``dx*/dtheta = -(dF/dx)^{-1} dF/dtheta`` gives

        solve ``(dF/dx)^T u = v``,   then   ``dL/dtheta = -(dF/dtheta)^T u``,

    with VJPs of ``F`` at ``(x*, theta)`` only: one per linear-solver
    iteration and one for the last step. ``linear_solver``:

    * ``"cg"``: :func:`conjugate_gradient`; needs ``dF/dx`` symmetric positive
      definite, as for ``F = grad_x g`` at a strict minimum (see :func:`argmin_solve`);
    * ``"neumann"``: :func:`neumann_series` on ``M = I + (dF/dx)^T``; converges
      iff its spectral radius is below 1, as for ``F(z) = f(z) - z`` with a
      contraction ``f`` (see :func:`fixed_point_solve`);
    * ``"dense"``: forms ``dF/dx`` with ``n`` VJPs and LU-solves (small ``n``, checking);
    * a callable ``linear_solver(matvec, v) -> u`` with ``matvec(u) = (dF/dx)^T u``.

    Shapes: ``x0`` float32/float64, any shape; ``F(x, theta)`` returns ``x``'s
    shape and dtype; ``solver(x0, theta)`` returns ``x0``'s shape and dtype.
    ``theta`` is a tensor or a tuple/list of tensors of ``x0``'s dtype (passed to ``F``
    and ``solver`` as given, detached in ``solver``); only ``theta`` receives
    gradients (not tensors that ``F`` closes over). The linear solve must reach
    relative residual ``solve_tol`` (default ``max(1e-10, 10 eps)``) within
    ``solve_max_iter`` iterations, else the backward pass raises ValueError.
    The gradient is exact only at an exact root: its error grows with
    ``||F(x*, theta)||``. First-order gradients only.
    Reference: Blondel et al. (2022), "Efficient and Modular Implicit
    Differentiation" (optimality conditions, VJPs only); Krantz &
    Parks (2002), "The Implicit Function Theorem".
    """
    _check_callable("F", F)
    _check_callable("solver", solver)
    x0 = _check_tensor("x0", x0)
    thetas, single = _check_theta(theta, x0)
    _check_linear_solver(linear_solver)
    solve_tol = _check_tol("solve_tol", solve_tol, x0.dtype)
    solve_max_iter = _check_int("solve_max_iter", solve_max_iter, 1)
    detached = _pack([t.detach() for t in thetas], single)
    with torch.no_grad():
        x_star = _check_output("solver", solver(x0.detach(), detached), x0)
        _check_output("F", F(x_star, detached), x0)  # fail now, not in the backward pass
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in thetas):
        return x_star
    return _RootSolve.apply(F, single, linear_solver, solve_tol, solve_max_iter, x_star.detach(), *thetas)


def argmin_solve(g: Callable, x0: torch.Tensor, theta: Theta, solver: Callable,
                 linear_solver: str | Callable = "cg", solve_tol: float | None = None,
                 solve_max_iter: int = 1000) -> torch.Tensor:
    """``x*(theta) = argmin_x g(x, theta)``, differentiable in ``theta`` through ``grad_x g(x*, theta) = 0``.

    :func:`root_solve` with the optimality condition ``F = grad_x g`` (by
    autograd, with ``create_graph`` so that its VJPs are Hessian-vector
    products). Then ``dF/dx`` is the Hessian of ``g`` in ``x``, symmetric and,
    at a strict minimum, positive definite: conjugate gradients (the default)
    apply, and ``dx*/dtheta = -H^{-1} d^2 g / dx dtheta``. ``g(x, theta)``
    returns a scalar; ``solver(x0, theta)`` returns the minimiser (shape and
    dtype of ``x0``). Other arguments as in :func:`root_solve`.
    Reference: Blondel et al. (2022) (stationary conditions as optimality conditions);
    Bengio (2000), "Gradient-Based Optimization of Hyperparameters".
    """
    _check_callable("g", g)

    def F(x: torch.Tensor, th) -> torch.Tensor:
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            value = g(xg, th)
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise ValueError(f"g must return a scalar tensor, got "
                                 f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
            if not bool(torch.isfinite(value).all()):
                raise ValueError("g returned a non-finite value (NaN or inf) at a finite input")
            if not value.requires_grad:  # g does not depend on x
                return torch.zeros_like(x)
            # create_graph in the backward pass (x requires grad there): VJPs of F are HVPs of g
            (grad,) = torch.autograd.grad(value.reshape(()), xg, create_graph=x.requires_grad,
                                          allow_unused=True)
        return torch.zeros_like(x) if grad is None else grad

    return root_solve(F, x0, theta, solver, linear_solver, solve_tol, solve_max_iter)


# ---------------------------------------------------------------- fixed points

def fixed_point_iteration(f: Callable, z0: torch.Tensor, theta, max_iter: int = 100, tol: float = 0.0
                          ) -> torch.Tensor:
    """Iterate ``z_{k+1} = f(z_k, theta)`` from ``z0``; differentiable by unrolling.

    Stops after ``max_iter`` steps or once ``||z_{k+1} - z_k|| <= tol ||z_{k+1}||``
    (``tol = 0``, the default: exactly ``max_iter`` steps). With gradients
    enabled, autograd records every step, so backpropagation through the
    result stores ``O(max_iter)`` activations: the *unrolled* baseline that
    :func:`fixed_point_solve` replaces. ``f(z, theta)`` returns ``z``'s shape
    and dtype; ``z0`` float32/float64, any shape; ``theta`` is passed to ``f``
    unchanged. Converges to the unique fixed point when ``f`` is a contraction
    in ``z`` (Banach). Returns the last iterate.
    Reference: Banach's fixed-point theorem; the unrolled baseline of Bai,
    Kolter & Koltun (2019) and Liao et al. (2018) (BPTT).
    """
    _check_callable("f", f)
    _check_tensor("z0", z0)
    z = z0  # not detached: unrolling differentiates through z0's graph, if any
    max_iter = _check_int("max_iter", max_iter, 1)
    tol = _check_tol("tol", tol, z0.dtype, positive=False)
    for _ in range(max_iter):
        z_new = _check_output("f", f(z, theta), z0)
        if tol > 0 and float((z_new - z).norm()) <= tol * float(z_new.norm()):
            return z_new
        z = z_new
    return z


def fixed_point_solve(f: Callable, z0: torch.Tensor, theta: Theta, max_iter: int = 100,
                      tol: float | None = None, linear_solver: str | Callable = "neumann",
                      solve_tol: float | None = None, solve_max_iter: int = 1000) -> torch.Tensor:
    """The fixed point ``z* = f(z*, theta)``, differentiable in ``theta`` by the implicit function theorem.

    Forward: :func:`fixed_point_iteration` without recording (``max_iter``,
    ``tol``, default ``max(1e-10, 10 eps)``; ``tol=0`` runs exactly
    ``max_iter`` steps). Backward: :func:`root_solve` on ``F(z, theta) =
    f(z, theta) - z``, whose Jacobian is ``J - I`` (``J = df/dz``); the
    default Neumann solver sums ``u = sum_k (J^T)^k v`` with one VJP of ``f``
    per term. Memory does not depend on ``max_iter``: only ``z*`` and ``theta``
    are kept, and one graph of ``f`` at ``z*`` is built in the backward pass.
    Shapes and ``theta`` as in :func:`root_solve`.
    Reference: Bai, Kolter & Koltun (2019), "Deep Equilibrium Models"
    (implicit backward through the equilibrium); Liao et al. (2018) (Neumann-RBP).
    """
    _check_callable("f", f)
    z0 = _check_tensor("z0", z0)
    max_iter = _check_int("max_iter", max_iter, 1)
    tol = _check_tol("tol", tol, z0.dtype, positive=False)

    def solver(z, th):
        return fixed_point_iteration(f, z, th, max_iter, tol)

    def F(z, th):
        return _check_output("f", f(z, th), z) - z

    return root_solve(F, z0, theta, solver, linear_solver, solve_tol, solve_max_iter)


class FixedPointLayer(torch.nn.Module):
    """A deep-equilibrium layer: ``forward(x)`` returns ``z*`` with ``z* = f(z*, x)``.

    ``f`` is an ``nn.Module`` called as ``f(z, x)``: one weight-tied layer,
    e.g. ``tanh(W z + U x + b)``, iterated to its fixed point (an "infinitely
    deep" network with the same weights in every layer). The forward pass runs
    :func:`fixed_point_iteration` without recording; the backward pass solves
    the adjoint system ``(I - J^T) u = dL/dz*`` (:func:`fixed_point_solve`) and
    returns gradients for ``x`` and for every parameter of ``f``, in memory
    that does not grow with the number of forward iterations. Make ``f`` a
    contraction in ``z`` (e.g. spectral norm of ``W`` below 1 with a
    1-Lipschitz activation) so that the fixed point exists, is unique, and the
    Neumann backward converges.

    ``forward(x, z0=None)``: ``x`` a float32/float64 tensor; ``z0`` the
    starting point (default zeros shaped like ``x``; pass ``z0`` when the
    state has another shape). Other arguments as in :func:`fixed_point_solve`.
    Reference: Bai, Kolter & Koltun (2019), "Deep Equilibrium Models".
    """

    def __init__(self, f: torch.nn.Module, max_iter: int = 100, tol: float | None = None,
                 linear_solver: str | Callable = "neumann", solve_tol: float | None = None,
                 solve_max_iter: int = 1000):
        super().__init__()
        if not isinstance(f, torch.nn.Module):
            raise TypeError(f"f must be a torch.nn.Module called as f(z, x), got {type(f).__name__}")
        _check_linear_solver(linear_solver)
        self.f = f
        self.max_iter = _check_int("max_iter", max_iter, 1)
        self.tol = None if tol is None else _check_tol("tol", tol, torch.float64, positive=False)
        self.linear_solver = linear_solver
        self.solve_tol = None if solve_tol is None else _check_tol("solve_tol", solve_tol, torch.float64)
        self.solve_max_iter = _check_int("solve_max_iter", solve_max_iter, 1)

    def forward(self, x: torch.Tensor, z0: torch.Tensor | None = None) -> torch.Tensor:
        x_checked = _check_tensor("x", x)
        z0 = torch.zeros_like(x_checked) if z0 is None else _check_tensor("z0", z0)
        if z0.device != x.device or z0.dtype != x.dtype:
            raise ValueError(f"z0 must have x's dtype and device ({x.dtype}, {x.device}), got "
                             f"{z0.dtype}, {z0.device}")
        names = [name for name, _ in self.f.named_parameters()]
        params = [p for _, p in self.f.named_parameters()]
        for name, p in zip(names, params):
            if torch.is_floating_point(p) and (p.dtype != x.dtype or p.device != x.device):
                raise TypeError(f"x must have the dtype and device of f's parameters ({name}: {p.dtype}, "
                                f"{p.device}), got {x.dtype}, {x.device}")

        def f_theta(z, th):  # f with its parameters (and x) as explicit inputs
            return torch.func.functional_call(self.f, dict(zip(names, th[1:])), (z, th[0]))

        return fixed_point_solve(f_theta, z0, (x, *params), self.max_iter, self.tol, self.linear_solver,
                                 self.solve_tol, self.solve_max_iter)

    def extra_repr(self) -> str:
        return f"max_iter={self.max_iter}, linear_solver={self.linear_solver!r}"
