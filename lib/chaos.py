"""Chaos: differentiating through long rollouts, Lyapunov exponents, remedies.

Chapter 13 (``book/13_chaos.md``, lab ``notebooks/13_chaos.ipynb``).

A rollout ``x_{t+1} = step(x_t, theta)`` is a composition, so its derivative is a
product of Jacobians: ``dx_T/dx_0 = J_{T-1} ... J_1 J_0`` with
``J_t = d step / dx`` at ``x_t``. For a chaotic system this product grows like
``exp(lambda T)``, ``lambda`` the largest Lyapunov exponent, and so does the
gradient that backpropagation through time computes.

* Systems: :func:`logistic_map` (a discrete map), the vector fields
  :func:`lorenz` and :func:`damped_pendulum`, integrated with the classical
  fixed-step :func:`rk4_step`; :func:`rollout` iterates any step and keeps the
  autograd graph, so gradients flow to the initial state and the parameters.
* :func:`tangent_log_growth` and :func:`lyapunov_exponent`: the standard
  estimate of the largest Lyapunov exponent, the average log growth of a
  tangent vector carried along the orbit by the step's Jacobian and
  renormalised at every step (Benettin et al. 1980).
* :func:`gradient_norms`: backpropagation through time for several horizons
  at once, ``||d loss(x_T) / d x_0||`` or ``||d loss(x_T) / d theta||``.
* Remedies: :func:`teacher_forced_rollout` (generalised teacher forcing, Hess
  et al. 2023: pull the state towards the data at every step) and
  :func:`smoothed_gradient_samples` (the gradient of a Gaussian-smoothed loss,
  estimated from loss values alone or by the reparameterised path).

Conventions: a state is a tensor whose *last* dimension holds the ``d``
coordinates; leading dimensions are independent trajectories, and a step must
act on each row on its own. Steps have the signature ``step(x, theta)``.

References: Metz, Freeman, Schoenholz & Kachman (2021), "Gradients are Not All
You Need"; Hess, Monfared, Brenner & Durstewitz (2023), "Generalized Teacher
Forcing for Learning Chaotic Dynamics"; Benettin, Galgani, Giorgilli & Strelcyn
(1980), Lyapunov characteristic exponents; Pascanu, Mikolov & Bengio (2013),
"On the difficulty of training recurrent neural networks"; Lorenz (1963),
"Deterministic Nonperiodic Flow".
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence

import torch

__all__ = ["logistic_map", "lorenz", "damped_pendulum", "rk4_step", "rollout", "tangent_log_growth",
           "lyapunov_exponent", "gradient_norms", "teacher_forced_rollout", "smoothed_gradient_samples"]

Step = Callable[[torch.Tensor, object], torch.Tensor]   # (x, theta) -> next x, same shape
Field = Callable[[torch.Tensor, object], torch.Tensor]  # (x, theta) -> dx/dt, same shape

_DTYPES = (torch.float32, torch.float64)
_INT64_MAX = 2**63 - 1
_FLOAT_MAX = torch.finfo(torch.float64).max


# ---------------------------------------------------------------- validation

def _check_state(x, name: str = "x", min_ndim: int = 0, finite: bool = True) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _DTYPES:
        raise TypeError(f"{name} must be float32 or float64 (chaos amplifies rounding), got {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s) (..., d), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must have at least one element, got shape {tuple(x.shape)}")
    if finite:
        _check_finite(name, x)
    return x


def _check_finite(name: str, t) -> None:
    if isinstance(t, torch.Tensor) and not bool(torch.isfinite(t.detach()).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf entries")


def _check_real(name: str, value, low: float = -math.inf, low_open: bool = False,
                high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    if not (abs(value) <= _FLOAT_MAX):  # NaN, inf, or an int beyond float64
        raise ValueError(f"{name} must be a finite number, got {value}")
    value = float(value)
    if value < low or (low_open and value == low) or value > high:
        lo = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be {lo}" + (f" and <= {high}" if high < math.inf else "") + f", got {value}")
    return value


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if not low <= value <= _INT64_MAX:
        raise ValueError(f"{name} must be an int >= {low}, got {value}")
    return int(value)


def _check_callable(name: str, f) -> None:
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__}")


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be None or a torch.Generator, got {type(generator).__name__}")


def _check_theta(theta, x: torch.Tensor, name: str = "theta", finite: bool = True):
    """None, a finite real number, or a finite float tensor on x's device (cast to x's dtype)."""
    if theta is None:
        return None
    if isinstance(theta, torch.Tensor):
        if theta.dtype not in _DTYPES:
            raise TypeError(f"{name} must be a float32 or float64 tensor, got {theta.dtype}")
        if theta.numel() == 0:
            raise ValueError(f"{name} must have at least one element, got shape {tuple(theta.shape)}")
        if theta.device != x.device:
            raise ValueError(f"{name} must be on the state's device {x.device}, got {theta.device}")
        if finite:
            _check_finite(name, theta)
        return theta.to(x.dtype)
    if isinstance(theta, numbers.Real) and not isinstance(theta, bool):
        return _check_real(name, theta)
    raise TypeError(f"{name} must be None, a real number or a torch.Tensor, got {type(theta).__name__}")


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target`` (without growing it)."""
    if len(shape) > len(target):
        return False
    return all(a in (1, b) for a, b in zip(reversed(shape), reversed(target)))


def _params(theta, x: torch.Tensor, p: int, default: tuple, name: str = "theta") -> list[torch.Tensor]:
    """The ``p`` parameters of a vector field as tensors broadcastable to ``x[..., :1]``."""
    if theta is None:
        theta = torch.tensor(default, dtype=x.dtype, device=x.device)
    theta = _check_theta(theta, x, name, finite=False)  # checked through the result (_finite_result)
    if not isinstance(theta, torch.Tensor) or theta.ndim < 1 or theta.shape[-1] != p:
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise ValueError(f"{name} must be a tensor of shape ({p},) or (..., {p}), got {shape}")
    if not _broadcasts_to(tuple(theta.shape[:-1]) + (1,), tuple(x.shape)):
        raise ValueError(f"{name} of shape {tuple(theta.shape)} does not broadcast to the state's batch shape "
                         f"{tuple(x.shape[:-1])}")
    return [theta[..., i:i + 1] for i in range(p)]


def _output(y, x: torch.Tensor, name: str, where: str, finite: bool = True) -> torch.Tensor:
    """What a user's step or field returned: a finite float tensor of x's shape (cast to x's dtype)."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(y).__name__}")
    if not torch.is_floating_point(y):
        raise TypeError(f"{name} must return a floating tensor, got {y.dtype}")
    if y.shape != x.shape:
        raise ValueError(f"{name} must return a tensor of the state's shape {tuple(x.shape)}, got {tuple(y.shape)}")
    if finite and not bool(torch.isfinite(y.detach()).all()):
        raise ValueError(f"{name} returned a non-finite state {where} (NaN or inf: overflow, or a point "
                         f"outside its domain)")
    return y.to(x.dtype)


def _finite_result(y: torch.Tensor, what: str, **inputs) -> torch.Tensor:
    """``y``, checked finite. One check per call: NaN or inf in any input reaches ``y``
    (every formula here propagates them), and only then are the ``inputs`` examined,
    to name the culprit; finite inputs with a non-finite result mean overflow."""
    if not bool(torch.isfinite(y.detach()).all()):
        for name, t in inputs.items():
            _check_finite(name, t)
        raise ValueError(f"{what} is not finite (overflow): the inputs are too large for {y.dtype}")
    return y


# ---------------------------------------------------------------- systems

def logistic_map(x: torch.Tensor, r) -> torch.Tensor:
    """One step of the logistic map ``x -> r x (1 - x)``, elementwise.

    ``x``: any shape, float32/float64; ``r``: a number or a tensor that
    broadcasts to ``x``'s shape (e.g. ``(1,)``, or ``(B, 1)`` for one value per
    trajectory). Returns a tensor of ``x``'s shape. Chaotic for most ``r`` near 4
    (``lambda = ln 2`` exactly at ``r = 4``), a stable fixed point
    ``1 - 1/r`` for ``1 < r < 3`` (``lambda = ln |2 - r|``). Its derivative is
    ``r (1 - 2x)``. Chapter 13.
    Reference: May (1976), "Simple mathematical models with very complicated dynamics".
    """
    x = _check_state(x, "x", finite=False)
    r = _check_theta(r, x, "r", finite=False)
    if r is None:
        raise TypeError("r must be a real number or a torch.Tensor, got None")
    if isinstance(r, torch.Tensor):
        if not _broadcasts_to(tuple(r.shape), tuple(x.shape)):
            raise ValueError(f"r of shape {tuple(r.shape)} must broadcast to x's shape {tuple(x.shape)}")
    return _finite_result(r * x * (1 - x), "logistic_map(x, r)", x=x, r=r)


def lorenz(x: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
    """The Lorenz vector field ``(sigma (y - x), x (rho - z) - y, x y - beta z)``.

    ``x``: ``(..., 3)``; ``theta``: ``(sigma, rho, beta)`` as a tensor of shape
    ``(3,)`` or ``(..., 3)`` broadcasting to the batch, default the standard
    ``(10, 28, 8/3)``, for which the largest Lyapunov exponent is about 0.906.
    Returns ``dx/dt`` of shape ``(..., 3)``. Integrate it with :func:`rk4_step`.
    Chapter 13.
    Reference: Lorenz (1963), "Deterministic Nonperiodic Flow", equations (25)-(27).
    """
    x = _check_state(x, "x", min_ndim=1, finite=False)
    if x.shape[-1] != 3:
        raise ValueError(f"x must have shape (..., 3), got {tuple(x.shape)}")
    sigma, rho, beta = _params(theta, x, 3, (10.0, 28.0, 8.0 / 3.0))
    X, Y, Z = x[..., 0:1], x[..., 1:2], x[..., 2:3]
    dx = torch.cat([sigma * (Y - X), X * (rho - Z) - Y, X * Y - beta * Z], dim=-1)
    return _finite_result(dx, "lorenz(x, theta)", x=x, theta=theta)


def damped_pendulum(x: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
    """The damped pendulum ``(phi, omega) -> (omega, -gamma omega - w0^2 sin phi)``.

    ``x``: ``(..., 2)``, angle and angular velocity; ``theta``: ``(gamma, w0)``,
    damping and natural frequency, shape ``(2,)`` or ``(..., 2)``, default
    ``(0.5, 1.0)``. Returns ``dx/dt``, shape ``(..., 2)``. Every orbit that
    starts near the bottom spirals into it; there the Lyapunov exponents are
    ``-gamma/2`` (twice, while ``gamma < 2 w0``): a stable system. Chapter 13.
    Reference: Strogatz (2015), "Nonlinear Dynamics and Chaos", section 6.7.
    """
    x = _check_state(x, "x", min_ndim=1, finite=False)
    if x.shape[-1] != 2:
        raise ValueError(f"x must have shape (..., 2), got {tuple(x.shape)}")
    gamma, w0 = _params(theta, x, 2, (0.5, 1.0))
    phi, omega = x[..., 0:1], x[..., 1:2]
    dx = torch.cat([omega, -gamma * omega - w0 ** 2 * torch.sin(phi)], dim=-1)
    return _finite_result(dx, "damped_pendulum(x, theta)", x=x, theta=theta)


def rk4_step(field: Field, x: torch.Tensor, theta, dt: float) -> torch.Tensor:
    """One classical Runge-Kutta step of ``dx/dt = field(x, theta)`` with fixed step ``dt``.

    ``k1 = f(x)``, ``k2 = f(x + dt k1/2)``, ``k3 = f(x + dt k2/2)``,
    ``k4 = f(x + dt k3)``, ``x + dt (k1 + 2 k2 + 2 k3 + k4) / 6``: local error
    ``O(dt^5)``. ``x``: any shape the field accepts; ``theta`` is passed to
    ``field`` unchanged. Differentiable in ``x`` and ``theta``. Returns the next
    state, ``x``'s shape. Chapter 13 (a self-contained integrator; chapter 12
    treats ODE solvers in depth).
    Reference: Hairer, Norsett & Wanner (1993), "Solving Ordinary Differential Equations I", section II.1.
    """
    _check_callable("field", field)
    x = _check_state(x, "x", finite=False)  # x reaches the result, so its NaN would too
    theta = _check_theta(theta, x)  # a field may ignore theta: checked here
    dt = _check_real("dt", dt, low=0.0, low_open=True)

    def f(z):  # type and shape checked at every stage; finiteness once, on the result
        return _output(field(z, theta), x, "field", "", finite=False)

    k1 = f(x)
    k2 = f(x + (dt / 2) * k1)
    k3 = f(x + (dt / 2) * k2)
    k4 = f(x + dt * k3)
    out = x + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    if not bool(torch.isfinite(out.detach()).all()):
        _check_finite("x", x)
        for stage, k in enumerate((k1, k2, k3, k4), 1):
            if not bool(torch.isfinite(k.detach()).all()):
                raise ValueError(f"field returned a non-finite value at RK4 stage {stage} (NaN or inf: "
                                 "overflow, or a point outside its domain)")
        raise ValueError(f"rk4_step's result is not finite (overflow): dt = {dt:g} is too large for {x.dtype}")
    return out


def rollout(step: Step, x0: torch.Tensor, theta, steps: int) -> torch.Tensor:
    """Iterate ``x_{t+1} = step(x_t, theta)`` and return the whole trajectory.

    ``x0``: any non-empty shape; ``theta``: None, a number or a tensor, passed to
    ``step`` unchanged. Returns ``(steps + 1, *x0.shape)``, ``x0`` first. The
    autograd graph is kept, so ``x0`` or ``theta`` with ``requires_grad`` get
    gradients by backpropagation through time. Raises ValueError (naming the
    step index) when the state stops being finite.
    Reference: Metz et al. (2021), "Gradients are Not All You Need" (iterated dynamical systems).
    """
    _check_callable("step", step)
    x = _check_state(x0, "x0")
    theta = _check_theta(theta, x)
    steps = _check_int("steps", steps, 0)
    return torch.stack(_states(step, x, theta, steps))


def _states(step: Step, x: torch.Tensor, theta, steps: int) -> list[torch.Tensor]:
    """``[x_0, ..., x_steps]`` as separate tensors (backprop from ``x_T`` then visits only steps < T)."""
    path = [x]
    for t in range(steps):
        x = _output(step(x, theta), x, "step", f"at step {t + 1}")
        path.append(x)
    return path


# ---------------------------------------------------------------- Lyapunov exponents

def _step_jacobian(step: Step, x: torch.Tensor, theta, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The next state and the Jacobians ``J[..., i, j] = d step_i / d x_j``, shape ``(..., d, d)``.

    All ``d`` rows come from one backward pass: the state is replicated ``d``
    times along a new leading dimension and copy ``i`` is seeded with ``e_i``
    (the rows of the batch are independent by convention).
    """
    d = x.shape[-1]
    X = x.detach().unsqueeze(0).expand(d, *x.shape).clone().requires_grad_(True)
    th = theta.detach() if isinstance(theta, torch.Tensor) else theta
    with torch.enable_grad():
        Y = _output(step(X, th), X, "step", f"at step {t}")
        seed = torch.eye(d, dtype=x.dtype, device=x.device).reshape(d, *([1] * (x.ndim - 1)), d)
        G = torch.autograd.grad(Y, X, seed.expand_as(Y), allow_unused=True)[0] if Y.requires_grad else None
    J = torch.zeros_like(X) if G is None else G
    if not bool(torch.isfinite(J).all()):
        raise ValueError(f"the Jacobian of step is not finite at step {t} (is step differentiable there?)")
    return Y[0].detach(), J.movedim(0, -2)


def tangent_log_growth(step: Step, x0: torch.Tensor, theta, steps: int, v0: torch.Tensor | None = None,
                       burn_in: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Log growth ``log ||J_t v_t||`` of a renormalised tangent vector, step by step.

    Starting from ``v0`` (default: a random unit vector per trajectory), the
    tangent is pushed forward by the step's Jacobian ``J_t`` at ``x_t`` and
    renormalised to length 1 after every step; the logs of the lengths before
    renormalisation are returned. Their sum is ``log ||J_{T-1} ... J_0 v_0||``
    (the renormalisation only prevents overflow), so their mean is the
    finite-time Lyapunov exponent (per step). The first ``burn_in`` steps move
    state and tangent without being recorded, so both settle on the attractor
    and its most expanding direction first.
    ``x0``: ``(d,)`` or ``(..., d)``; ``v0``: ``x0``'s shape. Returns
    ``(steps, *x0.shape[:-1])``.
    Reference: Benettin, Galgani, Giorgilli & Strelcyn (1980), Meccanica 15 (the renormalised tangent method).
    """
    _check_callable("step", step)
    x = _check_state(x0, "x0", min_ndim=1).detach()
    theta = _check_theta(theta, x)
    steps = _check_int("steps", steps, 1)
    burn_in = _check_int("burn_in", burn_in, 0)
    _check_generator(generator)
    if v0 is None:
        v = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    else:
        v = _check_state(v0, "v0")
        if v.shape != x.shape:
            raise ValueError(f"v0 must have x0's shape {tuple(x.shape)}, got {tuple(v.shape)}")
        if v.device != x.device:
            raise ValueError(f"v0 must be on x0's device {x.device}, got {v.device}")
        v = v.detach().to(x.dtype)
    norm = v.norm(dim=-1, keepdim=True)
    if not bool((norm > 0).all()):
        raise ValueError("v0 must have a non-zero vector in every row")
    v = v / norm
    logs = []
    for t in range(burn_in + steps):
        x, J = _step_jacobian(step, x, theta, t + 1)
        v = (J @ v.unsqueeze(-1)).squeeze(-1)
        norm = v.norm(dim=-1)
        if not bool((norm > 0).all()):
            raise ValueError(f"the tangent vector vanished at step {t + 1}: the Jacobian of step is singular "
                             "along this orbit (the exponent is -inf)")
        if not bool(torch.isfinite(norm).all()):
            raise ValueError(f"the tangent vector is not finite at step {t + 1} (overflow in one step)")
        v = v / norm.unsqueeze(-1)
        if t >= burn_in:
            logs.append(norm.log())
    return torch.stack(logs)


def lyapunov_exponent(step: Step, x0: torch.Tensor, theta, steps: int, dt: float = 1.0,
                      v0: torch.Tensor | None = None, burn_in: int = 0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The largest Lyapunov exponent, per unit time, of each trajectory.

    ``lambda = lim (1 / (T dt)) log ||D phi^T(x_0) v||``, estimated as the mean of
    :func:`tangent_log_growth` over ``steps`` steps, divided by ``dt`` (the time
    one step covers: 1 for a map, the RK4 step for a flow). Positive: nearby
    orbits separate exponentially (chaos); negative: they converge.
    ``x0``: ``(d,)`` or ``(..., d)``. Returns ``x0.shape[:-1]`` (a 0-dim tensor for
    one trajectory). The error falls like ``1/sqrt(steps)``; average over
    trajectories for a tighter estimate.
    Reference: Benettin et al. (1980); Oseledets (1968) (the limit exists for almost every x_0).
    """
    dt = _check_real("dt", dt, low=0.0, low_open=True)
    logs = tangent_log_growth(step, x0, theta, steps, v0=v0, burn_in=burn_in, generator=generator)
    return logs.mean(dim=0) / dt


# ---------------------------------------------------------------- gradients through rollouts

def gradient_norms(step: Step, x0: torch.Tensor, theta, horizons: Sequence[int], wrt: str = "x0",
                   loss: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """``||d loss(x_T) / d x0||`` (or ``/ d theta``) for every horizon ``T``, by backprop through time.

    One forward :func:`rollout` to the longest horizon keeps the graph; for each
    ``T`` autograd backpropagates from ``loss(x_T)``, i.e. multiplies the loss
    gradient by the transposed Jacobians ``J_{T-1}^T ... J_0^T`` (and, for
    ``wrt="theta"``, adds the parameter Jacobians met on the way). Each
    trajectory gets its own gradient: with ``wrt="theta"`` the parameters are
    copied per trajectory, so ``step`` receives ``theta`` of shape ``(..., p)``
    and must broadcast it over the rows (as :func:`logistic_map`, :func:`lorenz`
    and :func:`damped_pendulum` do). ``x0``: ``(d,)`` or ``(..., d)``; ``theta``:
    None, a number or a tensor (a tensor of shape ``(p,)`` or ``(..., p)`` for
    ``wrt="theta"``); ``horizons``: positive ints; ``loss``: maps ``x_T``
    ``(..., d)`` to one loss per trajectory ``(...)``, default ``x_T.sum(-1)``.
    Returns ``(len(horizons), *x0.shape[:-1])``.
    Reference: Metz et al. (2021) (gradient norms against unroll length); Pascanu et al. (2013)
    (exploding gradients as products of Jacobians).
    """
    _check_callable("step", step)
    x0 = _check_state(x0, "x0", min_ndim=1).detach()
    theta = _check_theta(theta, x0)
    if isinstance(horizons, (str, bytes)) or not isinstance(horizons, Sequence) or len(horizons) == 0:
        raise TypeError(f"horizons must be a non-empty sequence of ints, got {horizons!r}")
    horizons = [_check_int("horizons", T, 1) for T in horizons]
    if wrt not in ("x0", "theta"):
        raise ValueError(f"wrt must be 'x0' or 'theta', got {wrt!r}")
    if loss is None:
        loss = lambda xT: xT.sum(-1)  # noqa: E731
    _check_callable("loss", loss)
    batch = x0.shape[:-1]
    with torch.enable_grad():
        x = x0.clone().requires_grad_(wrt == "x0")
        if wrt == "theta":
            if not isinstance(theta, torch.Tensor) or theta.ndim < 1:
                raise ValueError("theta must be a tensor of shape (p,) or (..., p) to differentiate with "
                                 f"respect to it, got {theta!r}")
            try:
                theta = theta.detach().expand(*batch, theta.shape[-1]).clone().requires_grad_(True)
            except RuntimeError:
                raise ValueError(f"theta of shape {tuple(theta.shape)} does not match the batch shape "
                                 f"{tuple(batch)} of x0") from None
        leaf = x if wrt == "x0" else theta
        path = _states(step, x, theta, max(horizons))
        norms = []
        for T in horizons:
            value = loss(path[T])
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"loss must return a torch.Tensor, got {type(value).__name__}")
            if value.shape != batch:
                raise ValueError(f"loss must return one value per trajectory, shape {tuple(batch)}, "
                                 f"got {tuple(value.shape)}")
            if not bool(torch.isfinite(value.detach()).all()):
                raise ValueError(f"loss returned a non-finite value at horizon {T}")
            if not value.requires_grad:  # the loss ignores x_T: the gradient is zero
                norms.append(torch.zeros(batch, dtype=x0.dtype, device=x0.device))
                continue
            (g,) = torch.autograd.grad(value.sum(), leaf, retain_graph=True, allow_unused=True)
            g = torch.zeros_like(leaf) if g is None else g
            n = g.detach().norm(dim=-1)
            if not bool(torch.isfinite(n).all()):
                raise ValueError(f"the gradient at horizon {T} is not finite (overflow): use shorter "
                                 "horizons")
            norms.append(n)
    return torch.stack(norms)


# ---------------------------------------------------------------- remedies

def teacher_forced_rollout(step: Step, x0: torch.Tensor, theta, data: torch.Tensor,
                           alpha: float) -> torch.Tensor:
    """Generalised teacher forcing: a rollout pulled towards the data at every step.

    With ``z_0 = x0``: ``y_t = step(z_{t-1}, theta)`` (the model's prediction) and
    ``z_t = (1 - alpha) y_t + alpha d_t`` for ``t = 1..T``, where ``d_t = data[t-1]``.
    ``alpha = 0`` is the free-running rollout, ``alpha = 1`` classical teacher
    forcing (every prediction starts from the data). Each backward step through
    ``z`` is multiplied by ``(1 - alpha)``, so the product of Jacobians behaves
    like ``((1 - alpha) e^lambda)^T``: bounded once ``alpha > 1 - e^-lambda``.
    ``x0``: any shape; ``data``: ``(T, *x0.shape)``, ``T >= 1``; ``alpha`` in
    ``[0, 1]``. Returns the predictions ``y``, ``(T, *x0.shape)``, differentiable
    in ``x0`` and ``theta``; a training loss compares them with ``data``.
    Reference: Hess, Monfared, Brenner & Durstewitz (2023), "Generalized Teacher Forcing for Learning
    Chaotic Dynamics"; Williams & Zipser (1989) (teacher forcing).
    """
    _check_callable("step", step)
    x = _check_state(x0, "x0")
    theta = _check_theta(theta, x)
    data = _check_state(data, "data")
    if data.ndim != x.ndim + 1 or data.shape[1:] != x.shape:
        raise ValueError(f"data must have shape (T, *x0.shape) = (T, {', '.join(map(str, x.shape))}), "
                         f"got {tuple(data.shape)}")
    if data.device != x.device:
        raise ValueError(f"data must be on x0's device {x.device}, got {data.device}")
    alpha = _check_real("alpha", alpha, low=0.0, high=1.0)
    data = data.to(x.dtype)
    z, predictions = x, []
    for t in range(data.shape[0]):
        y = _output(step(z, theta), z, "step", f"at step {t + 1}")
        predictions.append(y)
        z = (1 - alpha) * y + alpha * data[t]
    return torch.stack(predictions)


def smoothed_gradient_samples(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, sigma: float,
                              n_samples: int, estimator: str = "es",
                              generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample estimates of the gradient of the smoothed loss ``F(theta) = E f(theta + sigma eps)``.

    ``eps ~ N(0, I)``. Both estimators are unbiased for ``grad F``:

    * ``"es"`` (antithetic evolution strategies, loss values only):
      ``(f(theta + sigma eps) - f(theta - sigma eps)) / (2 sigma) * eps``; its
      variance is set by the spread of the *losses*, which stay bounded on a
      chaotic attractor however long the rollout;
    * ``"pathwise"`` (reparameterisation): ``grad f(theta + sigma eps)`` by
      autograd; its variance is set by the spread of the *gradients*, which grow
      like ``exp(lambda T)``.

    ``f`` is batched: it maps parameters ``(n, p)`` to losses ``(n,)``.
    ``theta``: ``(p,)``. Returns ``(n_samples, p)``; the mean over samples is the
    estimate, and their spread shows its variance.
    Reference: Metz et al. (2021) (black-box gradient estimates as a remedy);
    Salimans et al. (2017), "Evolution Strategies as a Scalable Alternative to Reinforcement Learning".
    """
    _check_callable("f", f)
    theta = _check_state(theta, "theta")
    if theta.ndim != 1:
        raise ValueError(f"theta must have shape (p,), got {tuple(theta.shape)}")
    theta = theta.detach()
    sigma = _check_real("sigma", sigma, low=0.0, low_open=True)
    n_samples = _check_int("n_samples", n_samples, 1)
    if estimator not in ("es", "pathwise"):
        raise ValueError(f"estimator must be 'es' or 'pathwise', got {estimator!r}")
    _check_generator(generator)
    eps = torch.randn(n_samples, theta.shape[0], generator=generator, dtype=theta.dtype, device=theta.device)

    def losses(points: torch.Tensor) -> torch.Tensor:
        out = f(points)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"f must return a torch.Tensor, got {type(out).__name__}")
        if out.shape != (points.shape[0],):
            raise ValueError(f"f must map parameters (n, p) to losses of shape (n,) = ({points.shape[0]},), "
                             f"got {tuple(out.shape)}")
        if not bool(torch.isfinite(out.detach()).all()):
            raise ValueError("f returned a non-finite loss")
        return out

    if estimator == "es":
        with torch.no_grad():
            diff = losses(theta + sigma * eps) - losses(theta - sigma * eps)
        g = (diff / (2 * sigma)).to(theta.dtype).unsqueeze(-1) * eps
    else:
        with torch.enable_grad():
            points = (theta + sigma * eps).requires_grad_(True)
            out = losses(points)
            if not out.requires_grad:  # f does not depend on theta
                return torch.zeros_like(eps)
            (g,) = torch.autograd.grad(out.sum(), points, allow_unused=True)
        g = torch.zeros_like(eps) if g is None else g.detach()
    return _finite_result(g, "the gradient estimate")
