"""Many objectives and games: two-player dynamics and conflict-free aggregation.

Chapter 9 (``book/09_games.md``, lab ``notebooks/09_games.ipynb``).

Games. Player 1 moves ``x`` to lower ``f(x, y)``, player 2 moves ``y`` to lower
``g(x, y)``. The *simultaneous gradient* ``v(x, y) = (df/dx, dg/dy)`` is what both
players follow; for the bilinear zero-sum game ``f = x^T A y = -g`` it is
``v = M z`` with ``z = (x, y)`` and the antisymmetric ``M = [[0, A], [-A^T, 0]]``:
a rotation, not a gradient field.

* :func:`vector_field`, :func:`bilinear_game`, :func:`bilinear_field`: the game
  as a pair of losses ``(f, g)`` or as a field ``v(x, y) -> (v_x, v_y)``; every
  method below takes either.
* :func:`simultaneous_gd`, :func:`alternating_gd`, :func:`extragradient`,
  :func:`complex_momentum`: the methods, each returning the trajectory.
* :func:`iteration_matrix` and :func:`spectral_radius`: on the bilinear game each
  method is a linear map of its state, whose spectral radius is its rate:
  ``sqrt(1 + eta^2 sigma_max^2) > 1`` for simultaneous GD, below 1 for
  extragradient with ``eta sigma_max < 1``.

Many objectives. Rows of a Jacobian ``J`` (m, n) are the gradients of ``m``
losses; an *aggregator* maps ``J`` to one update direction ``d`` (step ``-lr d``).
``d`` *conflicts* with objective ``i`` when ``(J d)_i < 0``: the step raises loss
``i`` to first order.

* :func:`mean_gradient` (the gradient of the mean loss; can conflict),
  :func:`mgda` (the min-norm point of the convex hull of the rows; never
  conflicts) and :func:`upgrad` (the mean of the rows projected onto the dual
  cone ``{d : J d >= 0}``; never conflicts, and equals the gradient for m = 1).
* :func:`project_dual_cone` and :func:`nnls`: the small quadratic programs behind
  them, solved exactly by the Lawson-Hanson active-set method, in torch.
* :func:`loss_jacobian`: the (m, n) Jacobian of m losses w.r.t. a list of parameters.

References: Korpelevich (1976), "The extragradient method for finding saddle
points and other problems"; Gidel et al. (2019), "Negative Momentum for Improved
Game Dynamics"; Lorraine, Acuna, Vicol & Duvenaud (2022), "Complex Momentum for
Optimization in Games" (AISTATS); Desideri (2012), "Multiple-gradient descent
algorithm (MGDA) for multiobjective optimization"; Sener & Koltun (2018),
"Multi-Task Learning as Multi-Objective Optimization"; Quinton & Rey (2024),
"Jacobian Descent for Multi-Objective Optimization" (UPGrad); Lawson & Hanson
(1974/1995), "Solving Least Squares Problems", chapter 23 (NNLS).
"""

from __future__ import annotations

import cmath
import math
import numbers
from typing import Callable, Sequence, Union

import torch

__all__ = ["vector_field", "bilinear_game", "bilinear_field", "simultaneous_gd", "alternating_gd",
           "extragradient", "complex_momentum", "iteration_matrix", "spectral_radius",
           "mean_gradient", "mgda", "upgrad", "project_dual_cone", "nnls", "loss_jacobian"]

Field = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]
Game = Union[Field, "tuple[Callable, Callable]"]  # v(x, y) -> (v_x, v_y), or losses (f, g)
METHODS = ("simultaneous", "alternating", "extragradient", "complex_momentum")


# ---------------------------------------------------------------- validation

def _check_tensor(t, name: str, ndim: int | None = None) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not torch.is_floating_point(t):
        raise TypeError(f"{name} must have a real floating dtype, got {t.dtype}")
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must have at least one element, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf entries")
    return t.detach()


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"steps must be an int, got {type(steps).__name__} ({steps!r})")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    return int(steps)


def _check_beta(beta) -> complex:
    if isinstance(beta, bool) or not isinstance(beta, numbers.Complex):
        raise TypeError(f"beta must be a complex (or real) number, got {type(beta).__name__} ({beta!r})")
    beta = complex(beta)
    if not cmath.isfinite(beta):
        raise ValueError(f"beta must be finite, got {beta}")
    return beta


def _check_start(x0, y0) -> tuple[torch.Tensor, torch.Tensor]:
    x0, y0 = _check_tensor(x0, "x0"), _check_tensor(y0, "y0")
    if x0.dtype != y0.dtype or x0.device != y0.device:
        raise ValueError(f"x0 and y0 must share dtype and device, got {x0.dtype} on {x0.device} "
                         f"and {y0.dtype} on {y0.device}")
    return x0, y0


# ---------------------------------------------------------------- games

def vector_field(game: Game) -> Field:
    """The simultaneous gradient ``v(x, y) = (df/dx, dg/dy)`` of a two-player game.

    ``game`` is either a pair of losses ``(f, g)``, each ``(x, y) -> scalar``
    (player 1 minimises ``f`` over ``x``, player 2 ``g`` over ``y``; gradients by
    autograd), or already a field ``v(x, y) -> (v_x, v_y)``. The returned field
    checks that ``x``, ``y`` are finite and that ``v_x``, ``v_y`` are finite
    tensors shaped like ``x``, ``y``.
    Chapter 9. Reference: Balduzzi et al. (2018), "The Mechanics of n-Player
    Differentiable Games" (the simultaneous gradient ``xi``).
    """
    if isinstance(game, (tuple, list)):
        if len(game) != 2 or not all(callable(h) for h in game):
            raise TypeError(f"game must be a callable field or a pair (f, g) of callable losses, "
                            f"got a {type(game).__name__} of length {len(game)}")
        f, g = game

        def raw(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            with torch.enable_grad():
                xr = x.detach().requires_grad_(True)
                yr = y.detach().requires_grad_(True)
                return _grad(f(xr, yr.detach()), xr, "f"), _grad(g(xr.detach(), yr), yr, "g")
    elif callable(game):
        raw = game
    else:
        raise TypeError(f"game must be a callable field or a pair (f, g) of losses, got {type(game).__name__}")

    def field(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for name, t in (("x", x), ("y", y)):
            if not isinstance(t, torch.Tensor) or not torch.is_floating_point(t):
                raise TypeError(f"{name} must be a floating torch.Tensor, got {getattr(t, 'dtype', type(t).__name__)}")
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} is not finite: the iterates overflowed, the method "
                                 f"diverged (try a smaller lr or fewer steps)")
        out = raw(x, y)
        if not (isinstance(out, (tuple, list)) and len(out) == 2
                and all(isinstance(t, torch.Tensor) for t in out)):
            raise TypeError(f"the field must return a pair of tensors (v_x, v_y), got {type(out).__name__}")
        vx, vy = out
        if vx.shape != x.shape or vy.shape != y.shape:
            raise ValueError(f"the field must return v_x shaped {tuple(x.shape)} and v_y shaped "
                             f"{tuple(y.shape)}, got {tuple(vx.shape)} and {tuple(vy.shape)}")
        if not (bool(torch.isfinite(vx).all()) and bool(torch.isfinite(vy).all())):
            raise ValueError("the game's field (or its losses f, g) returned NaN or inf at a finite point")
        return vx.detach().to(x.dtype), vy.detach().to(y.dtype)

    return field


def _grad(loss, wrt: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss {name} must return a torch.Tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(f"loss {name} must return a scalar, got shape {tuple(loss.shape)}")
    if not loss.requires_grad:  # does not depend on its player's parameters
        return torch.zeros_like(wrt)
    (grad,) = torch.autograd.grad(loss.reshape(()), wrt, allow_unused=True)
    return torch.zeros_like(wrt) if grad is None else grad.detach()


def bilinear_game(A: torch.Tensor) -> tuple[Callable, Callable]:
    """The bilinear zero-sum game ``f(x, y) = x^T A y``, ``g = -f`` as a pair of losses.

    ``A``: (n, m); ``x``: (n,), ``y``: (m,). Its field is ``(A y, -A^T x)``
    (:func:`bilinear_field`); for invertible square ``A`` the only equilibrium is 0.
    Chapter 9. Reference: Gidel et al. (2019), bilinear games as the test case of game dynamics.
    """
    A = _check_tensor(A, "A", ndim=2)

    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_bilinear_args(A, x, y)
        return x @ A.to(dtype=x.dtype, device=x.device) @ y

    def g(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -f(x, y)

    return f, g


def _check_bilinear_args(A: torch.Tensor, x, y) -> None:
    for name, t, size in (("x", x, A.shape[0]), ("y", y, A.shape[1])):
        if not isinstance(t, torch.Tensor) or not torch.is_floating_point(t):
            raise TypeError(f"{name} must be a floating torch.Tensor, got {getattr(t, 'dtype', type(t).__name__)}")
        if t.shape != (size,):
            raise ValueError(f"{name} must have shape ({size},) for A of shape {tuple(A.shape)}, "
                             f"got {tuple(t.shape)}")


def bilinear_field(A: torch.Tensor) -> Field:
    """The field of :func:`bilinear_game` in closed form: ``v(x, y) = (A y, -A^T x)``.

    ``A``: (n, m); ``x``: (n,), ``y``: (m,). Stacked, ``v = M z`` with the
    antisymmetric ``M = [[0, A], [-A^T, 0]]``, whose eigenvalues are ``+-i sigma_k``.
    Reference: Mescheder, Nowozin & Geiger (2017), "The Numerics of GANs"
    (eigenvalues of the field's Jacobian on the imaginary axis).
    """
    A = _check_tensor(A, "A", ndim=2)

    def field(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_bilinear_args(A, x, y)
        Ax = A.to(dtype=x.dtype, device=x.device)
        return Ax @ y, -(Ax.T @ x)

    return field


def _run(game: Game, x0, y0, steps, step_fn) -> tuple[torch.Tensor, torch.Tensor]:
    x0, y0 = _check_start(x0, y0)
    steps = _check_steps(steps)
    v = vector_field(game)
    xs, ys = [x0.clone()], [y0.clone()]
    state: dict = {}
    x, y = x0.clone(), y0.clone()
    for _ in range(steps):
        x, y = step_fn(v, x, y, state)
        xs.append(x)
        ys.append(y)
    xs, ys = torch.stack(xs), torch.stack(ys)
    finite = torch.isfinite(xs.reshape(len(xs), -1)).all(1) & torch.isfinite(ys.reshape(len(ys), -1)).all(1)
    if not bool(finite.all()):
        k = int((~finite).nonzero()[0])
        raise ValueError(f"the iterates became non-finite at step {k}: the game's field returned "
                         f"NaN/inf or the method diverged (try a smaller lr or fewer steps)")
    return xs, ys


def simultaneous_gd(game: Game, x0: torch.Tensor, y0: torch.Tensor, lr: float, steps: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Simultaneous gradient descent: both players step on the current point.

    ``x' = x - lr df/dx(x, y)``, ``y' = y - lr dg/dy(x, y)``. ``game``: losses
    ``(f, g)`` or a field (see :func:`vector_field`); ``x0``, ``y0``: floating
    tensors of any shapes, same dtype and device. Returns ``(xs, ys)`` of shapes
    ``(steps + 1, *x0.shape)`` and ``(steps + 1, *y0.shape)``, starting points
    included. On a bilinear game it spirals out at the rate ``sqrt(1 + lr^2 sigma_max^2)``.
    Reference: Gidel et al. (2019), simultaneous gradient method on bilinear games.
    """
    lr = _check_positive("lr", lr)

    def step(v, x, y, state):
        vx, vy = v(x, y)
        return x - lr * vx, y - lr * vy

    return _run(game, x0, y0, steps, step)


def alternating_gd(game: Game, x0: torch.Tensor, y0: torch.Tensor, lr: float, steps: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Alternating gradient descent: player 2 sees player 1's new move.

    ``x' = x - lr df/dx(x, y)``, then ``y' = y - lr dg/dy(x', y)``. Arguments and
    shapes as :func:`simultaneous_gd`. On a bilinear game with ``lr sigma_max < 2``
    its iteration matrix has determinant 1 and eigenvalues on the unit circle:
    the iterates cycle, neither converging nor diverging.
    Reference: Gidel et al. (2019), alternating updates on bilinear games.
    """
    lr = _check_positive("lr", lr)

    def step(v, x, y, state):
        x_new = x - lr * v(x, y)[0]
        return x_new, y - lr * v(x_new, y)[1]

    return _run(game, x0, y0, steps, step)


def extragradient(game: Game, x0: torch.Tensor, y0: torch.Tensor, lr: float, steps: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Extragradient: look ahead one step, then step from the start with the look-ahead field.

    ``z_half = z - lr v(z)``, ``z' = z - lr v(z_half)`` with ``z = (x, y)``: two
    field evaluations per step. Arguments and shapes as :func:`simultaneous_gd`.
    On a bilinear game it contracts when ``lr sigma_max < 1``.
    Reference: Korpelevich (1976), the extragradient method.
    """
    lr = _check_positive("lr", lr)

    def step(v, x, y, state):
        vx, vy = v(x, y)
        vx, vy = v(x - lr * vx, y - lr * vy)
        return x - lr * vx, y - lr * vy

    return _run(game, x0, y0, steps, step)


def complex_momentum(game: Game, x0: torch.Tensor, y0: torch.Tensor, lr: float, beta: complex,
                     steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Simultaneous gradient descent with a complex momentum coefficient ``beta``.

    ``mu' = beta mu - v(z)`` (a complex buffer, ``mu_0 = 0``), ``z' = z + lr Re(mu')``:
    the parameters stay real. The buffer is kept as two real tensors,
    ``Re mu' = Re(beta) Re mu - Im(beta) Im mu - v``, ``Im mu' = Im(beta) Re mu + Re(beta) Im mu``.
    A real ``beta`` is heavy-ball momentum; ``beta = 0`` is :func:`simultaneous_gd`.
    ``beta``: a Python complex (or real) number. Arguments and shapes otherwise as
    :func:`simultaneous_gd`.
    Reference: Lorraine, Acuna, Vicol & Duvenaud (2022), "Complex Momentum for
    Optimization in Games", the simultaneous complex-momentum update.
    """
    lr = _check_positive("lr", lr)
    beta = _check_beta(beta)
    br, bi = beta.real, beta.imag

    def step(v, x, y, state):
        vx, vy = v(x, y)
        re_x, im_x = state.get("x", (torch.zeros_like(x), torch.zeros_like(x)))
        re_y, im_y = state.get("y", (torch.zeros_like(y), torch.zeros_like(y)))
        re_x, im_x = br * re_x - bi * im_x - vx, bi * re_x + br * im_x
        re_y, im_y = br * re_y - bi * im_y - vy, bi * re_y + br * im_y
        state["x"], state["y"] = (re_x, im_x), (re_y, im_y)
        return x + lr * re_x, y + lr * re_y

    return _run(game, x0, y0, steps, step)


def iteration_matrix(A: torch.Tensor, method: str, lr: float, beta: complex = 0.0) -> torch.Tensor:
    """The linear map one step of ``method`` applies on the bilinear game ``x^T A y``.

    ``A``: (n, m). With ``z = (x, y)`` and ``M = [[0, A], [-A^T, 0]]``:

    * ``"simultaneous"``: ``I - lr M``, eigenvalues ``1 -+ i lr sigma_k``;
    * ``"alternating"``: ``[[I, -lr A], [lr A^T, I - lr^2 A^T A]]``, determinant 1;
    * ``"extragradient"``: ``I - lr M + lr^2 M^2``, eigenvalues ``1 - lr^2 sigma^2 -+ i lr sigma``;
    * ``"complex_momentum"``: on the state ``(Re mu, Im mu, z)``,
      ``[[b_r I, -b_i I, -M], [b_i I, b_r I, 0], [lr b_r I, -lr b_i I, I - lr M]]``.

    Returns a real (N, N) matrix, ``N = n + m`` (``3 (n + m)`` for complex momentum),
    in ``A``'s dtype and device. Its spectral radius (:func:`spectral_radius`) is the
    asymptotic rate of the method.
    Reference: Gidel et al. (2019) (simultaneous, alternating); Korpelevich (1976)
    (extragradient); Lorraine et al. (2022) (complex momentum).
    """
    A = _check_tensor(A, "A", ndim=2)
    lr = _check_positive("lr", lr)
    beta = _check_beta(beta)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    n, m = A.shape
    N = n + m
    eye = torch.eye(N, dtype=A.dtype, device=A.device)
    M = torch.zeros(N, N, dtype=A.dtype, device=A.device)
    M[:n, n:], M[n:, :n] = A, -A.T
    if method == "simultaneous":
        T = eye - lr * M
    elif method == "extragradient":
        T = eye - lr * M + lr * (lr * (M @ M))
    elif method == "alternating":
        T = eye.clone()
        T[:n, n:] = -lr * A
        T[n:, :n] = lr * A.T
        T[n:, n:] -= lr * (lr * (A.T @ A))
    else:
        br, bi, zero = beta.real, beta.imag, torch.zeros_like(eye)
        T = torch.cat([torch.cat([br * eye, -bi * eye, -M], 1),
                       torch.cat([bi * eye, br * eye, zero], 1),
                       torch.cat([lr * br * eye, -lr * bi * eye, eye - lr * M], 1)], 0)
    if not bool(torch.isfinite(T).all()):
        raise ValueError(f"lr, beta or A is too large: the iteration matrix overflows {A.dtype}")
    return T


def spectral_radius(T: torch.Tensor) -> float:
    """The largest eigenvalue modulus of a square matrix ``T`` (N, N), as a float.

    For a linear iteration ``s' = T s`` it is the asymptotic rate:
    ``||s_k|| ~ rho^k``, divergence when ``rho > 1``. Computed in float64.
    Reference: the spectral radius of an iteration matrix (e.g. Golub & Van Loan, 2013).
    """
    T = _check_tensor(T, "T", ndim=2)
    if T.shape[0] != T.shape[1]:
        raise ValueError(f"T must be square, got shape {tuple(T.shape)}")
    return float(torch.linalg.eigvals(T.double()).abs().max())


# ---------------------------------------------------------------- many objectives

def _nnls_gram(Q: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Lawson-Hanson active set for  min_u 1/2 u^T Q u - b^T u  subject to u >= 0,
    # Q (m, m) symmetric PSD, in float64 on the CPU (the problems are m x m, tiny).
    # r = b - Q u is minus the gradient; at the optimum r <= 0 off the passive set P
    # and r = 0 on it (KKT). Each outer step frees the most promising index; the
    # inner loop solves the unconstrained problem on P and backs up to stay >= 0.
    m = b.numel()
    scale = max(float(Q.abs().max()), float(b.abs().max()), 1e-300)
    tol = 10.0 * m * torch.finfo(torch.float64).eps * scale
    u = torch.zeros(m, dtype=torch.float64)
    passive = torch.zeros(m, dtype=torch.bool)
    r = b.clone()
    for _ in range(3 * m + 10):
        candidates = ~passive & (r > tol)
        if not bool(candidates.any()):
            break
        j = int(torch.where(candidates, r, torch.full_like(r, -math.inf)).argmax())
        passive[j] = True
        for _ in range(3 * m + 10):
            idx = passive.nonzero().flatten()
            z = torch.zeros_like(u)
            z[idx] = torch.linalg.lstsq(Q[idx][:, idx], b[idx, None], driver="gelsd").solution.flatten()
            if bool((z[idx] > 0).all()):
                u = z
                break
            blocking = (passive & (z <= 0)).nonzero().flatten()
            ratios = u[blocking] / (u[blocking] - z[blocking])
            k = int(ratios.argmin())
            u = u + float(ratios[k]) * (z - u)
            u[blocking[k]] = 0.0  # the first variable to reach zero leaves P
            passive &= u > 0
            u[~passive] = 0.0
            if not bool(passive.any()):
                break
        r = b - Q @ u
        if not bool(passive[j]):  # the freed index fell straight back: rounding; stop here
            break
    return u


def nnls(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Non-negative least squares: ``argmin_{x >= 0} ||A x - b||``, exactly.

    ``A``: (p, m), ``b``: (p,). Returns ``x`` (m,) in ``A``'s dtype and device. The
    Lawson-Hanson active-set method on the normal equations (float64, CPU: meant for
    small ``m``, the number of objectives); finitely many steps, exact up to rounding.
    Reference: Lawson & Hanson (1974), "Solving Least Squares Problems", chapter 23 (NNLS).
    """
    A = _check_tensor(A, "A", ndim=2)
    b = _check_tensor(b, "b", ndim=1)
    if b.shape[0] != A.shape[0]:
        raise ValueError(f"b must have shape ({A.shape[0]},) to match A {tuple(A.shape)}, got {tuple(b.shape)}")
    if b.device != A.device:
        raise ValueError(f"b must be on A's device {A.device}, got {b.device}")
    A64, b64 = A.double(), b.double()
    x = _nnls_gram((A64.T @ A64).cpu(), (A64.T @ b64).cpu())
    return x.to(dtype=A.dtype, device=A.device)


def _check_jacobian(J) -> torch.Tensor:
    return _check_tensor(J, "J", ndim=2)


def _gram(J: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    # Jn = J / max|J| in float64 (on J's device) and its Gramian Jn Jn^T on the CPU,
    # scaled so that max diag = 1: the weights of MGDA and UPGrad do not change when
    # J is scaled, and nothing overflows. Returns (G / s, Jn, s); s = 0: every row zero.
    J64 = J.double()
    c = J64.abs().max()
    Jn = J64 / c if c > 0 else J64
    G = (Jn @ Jn.T).cpu()
    G = 0.5 * (G + G.T)
    s = float(G.diagonal().max())
    return (G / s if s > 0 else G), Jn, s


def _finite(d: torch.Tensor, name: str = "J") -> torch.Tensor:
    if not bool(torch.isfinite(d).all()):
        raise ValueError(f"{name} is too large: the result overflows {d.dtype}")
    return d


def mean_gradient(J: torch.Tensor) -> torch.Tensor:
    """The mean of the rows of ``J`` (m, n): the gradient of the average loss, shape (n,).

    The usual scalarisation. It conflicts with objective ``i`` (``(J d)_i < 0``)
    whenever ``g_i`` is outweighed by gradients pointing against it.
    Reference: Quinton & Rey (2024), the "Mean" aggregator.
    """
    return _finite(_check_jacobian(J).mean(0))


def mgda(J: torch.Tensor) -> torch.Tensor:
    """MGDA: the min-norm point ``d = J^T w`` of the convex hull of the rows of ``J`` (m, n).

    ``w`` minimises ``||J^T w||`` over the simplex. Then ``g_i^T d >= ||d||^2`` for
    every row, so ``d`` never conflicts, and ``d = 0`` exactly at Pareto-stationary
    points. Solved exactly as least-distance programming: ``u = argmin_{u >= 0}
    ||J^T u||^2 + (1^T u - 1)^2`` by :func:`nnls`, then ``w = u / 1^T u`` (KKT).
    Returns ``d`` (n,) in ``J``'s dtype and device.
    Reference: Desideri (2012), MGDA; Sener & Koltun (2018), the min-norm problem;
    Lawson & Hanson (1974), least distance programming solved by NNLS.
    """
    J = _check_jacobian(J)
    G, _, s = _gram(J)
    if s == 0:
        return torch.zeros(J.shape[1], dtype=J.dtype, device=J.device)
    m = J.shape[0]
    ones = torch.ones(m, dtype=torch.float64)
    u = _nnls_gram(G + torch.outer(ones, ones), ones)
    w = u / u.sum()
    return _finite((J.double().T @ w.to(J.device)).to(J.dtype))


def project_dual_cone(J: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Project ``v`` (n,) onto the dual cone ``{d : J d >= 0}`` of the rows of ``J`` (m, n).

    The projection is ``v + J^T w`` with ``w = argmin_{w >= 0} ||J^T w + v||^2``
    (the dual of ``min ||d - v||^2`` subject to ``J d >= 0``), solved exactly by
    the active-set NNLS. The result ``d`` has ``J d >= 0`` up to rounding.
    Returns (n,) in ``J``'s dtype and device.
    Reference: Quinton & Rey (2024), Proposition 1 (projection onto the dual cone
    through the Gramian ``J J^T``).
    """
    J = _check_jacobian(J)
    v = _check_tensor(v, "v", ndim=1)
    if v.shape[0] != J.shape[1] or v.device != J.device:
        raise ValueError(f"v must have shape ({J.shape[1]},) on {J.device}, got {tuple(v.shape)} on {v.device}")
    G, Jn, s = _gram(J)
    if s == 0:
        return v.to(J.dtype).clone()
    # min_w 1/2 ||Jn^T w + v||^2 = 1/2 w^T (s G) w + w^T Jn v + const; divide by s
    w = _nnls_gram(G, -(Jn @ v.double()).cpu() / s)
    return _finite((v.double() + Jn.T @ w.to(J.device)).to(J.dtype), "v")


def upgrad(J: torch.Tensor) -> torch.Tensor:
    """UPGrad: the mean of the rows of ``J`` (m, n), each projected onto the dual cone.

    ``d = (1/m) sum_i pi(g_i)`` with ``pi`` the projection onto ``{d : J d >= 0}``.
    Each ``pi(g_i) = J^T v_i`` with ``v_i = argmin_{v >= e_i} v^T G v``,
    ``G = J J^T`` (m small QPs, solved exactly by NNLS), so ``d = J^T alpha`` with
    ``alpha = mean_i v_i``. ``J d >= 0``: no objective increases to first order;
    for m = 1, ``d = g``. Returns ``d`` (n,) in ``J``'s dtype and device.
    Reference: Quinton & Rey (2024), "Jacobian Descent for Multi-Objective
    Optimization", the UPGrad aggregator and Proposition 1.
    """
    J = _check_jacobian(J)
    G, _, s = _gram(J)
    if s == 0:
        return torch.zeros(J.shape[1], dtype=J.dtype, device=J.device)
    m = J.shape[0]
    alpha = torch.zeros(m, dtype=torch.float64)
    for i in range(m):
        # v = e_i + w, w = argmin_{w >= 0} 1/2 w^T G w + w^T G e_i
        alpha += _nnls_gram(G, -G[:, i])
        alpha[i] += 1.0
    alpha /= m
    return _finite((J.double().T @ alpha.to(J.device)).to(J.dtype))


def loss_jacobian(losses: Sequence[torch.Tensor] | torch.Tensor, params: Sequence[torch.Tensor]
                  ) -> torch.Tensor:
    """The Jacobian (m, n) of ``m`` scalar losses w.r.t. ``params``, flattened and concatenated.

    Row ``i`` is the gradient of ``losses[i]`` (by autograd, one backward each, the
    graph kept until the last), ``n = sum(p.numel() for p in params)``. A parameter a
    loss does not use gets zeros. Returns a tensor in the first parameter's dtype.
    Reference: Quinton & Rey (2024), the Jacobian of Jacobian descent.
    """
    if isinstance(losses, torch.Tensor):
        losses = list(losses.reshape(-1)) if losses.ndim <= 1 else None
    if not isinstance(losses, (list, tuple)) or not losses:
        raise TypeError("losses must be a non-empty sequence of scalar tensors (or a 1-D tensor)")
    params = list(params) if isinstance(params, (list, tuple)) else None
    if not params or not all(isinstance(p, torch.Tensor) and p.requires_grad for p in params):
        raise TypeError("params must be a non-empty list of tensors that require grad")
    rows = []
    for k, loss in enumerate(losses):
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(f"losses[{k}] must be a scalar tensor, got "
                             f"{getattr(loss, 'shape', type(loss).__name__)}")
        if not bool(torch.isfinite(loss).all()):
            raise ValueError(f"losses[{k}] must be finite, got {float(loss.detach())}")
        grads = (torch.autograd.grad(loss.reshape(()), params, retain_graph=True, allow_unused=True)
                 if loss.requires_grad else [None] * len(params))
        rows.append(torch.cat([(torch.zeros_like(p) if gr is None else gr).reshape(-1)
                               for p, gr in zip(params, grads)]))
    return torch.stack(rows).detach()
