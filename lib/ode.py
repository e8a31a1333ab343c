"""ODE solvers and the adjoint method: Euler, RK4, adaptive Dormand-Prince, neural ODE gradients.

Chapter 12 (``book/12_neural_odes.md``, lab ``notebooks/12_neural_odes.ipynb``); Part VI's
probability-flow samplers use :func:`odeint` too.

* :func:`odeint` solves ``dy/dt = func(t, y)``, ``y(t[0]) = y0`` and returns ``y`` at
  every time of the 1-D tensor ``t`` (increasing or decreasing), stacked along a new
  first dimension: torchdiffeq's calling convention, so code can switch between the
  two. Gradients flow by backpropagation through every solver operation
  ("discretise-then-optimise"): memory grows with the number of steps.
* :func:`odeint_adjoint`: the same solution, with gradients w.r.t. ``y0``, ``t`` and
  the parameters of ``func`` from the adjoint ODE solved backwards in time
  ("optimise-then-discretise"): memory independent of the number of steps.
* :class:`ODEStats` counts function evaluations (NFE) and steps.

Methods. ``"euler"``; ``"rk4"``, Kutta's 3/8 rule (the fourth-order method behind
torchdiffeq's ``"rk4"``; its leading error coefficients are a little smaller than the
classic RK4's); ``"dopri5"``, the Dormand-Prince 5(4) pair. Fixed steps: without
``step_size`` one step from each output time to the next; with ``step_size=h`` each
output interval of length ``D`` is cut into ``n = ceil(D / h)`` equal steps (``D / n <=
h``, exactly ``h`` when it divides ``D``), landing exactly on every output time.
Adaptive steps: a step is accepted when Hairer's norm of the embedded error estimate,
``RMS(err / (atol + rtol * max(|y0|, |y1|)))``, is at most 1 (the 5th-order value is
kept); the next step is ``h * min(10, max(0.2, 0.9 * ratio^(-1/5)))``, never shrinking
after an accepted step; the first step follows Hairer, Norsett & Wanner (sec. II.4).
The solver steps past intermediate output times and reads them off a 4th-order dense
output (torchdiffeq's); it never evaluates ``func`` beyond ``t[-1]``: the last step is
shortened to land on it. One host synchronisation per step (the error ratio); the
fixed-step methods synchronise once per call (a finiteness check).

References: Chen, Rubanova, Bettencourt & Duvenaud (2018), "Neural Ordinary
Differential Equations"; Dormand & Prince (1980), "A family of embedded Runge-Kutta
formulae"; Hairer, Norsett & Wanner (1993), "Solving Ordinary Differential Equations I"
(sec. II.1-II.4); Kidger (2022), "On Neural Differential Equations"; torchdiffeq.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from .calculus import _check_finite

__all__ = ["ODEStats", "odeint", "odeint_adjoint"]

_METHODS = ("euler", "rk4", "dopri5")
_EPS64 = 2.0**-52
_FLOAT_MAX = torch.finfo(torch.float64).max
Func = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (t, y) -> dy/dt, the shape of y

# Dormand & Prince (1980): nodes c, stages a, 5th-order weights b (FSAL: b is the last
# row of a). Error weights e = b - b_hat with the embedded 4th-order b_hat of torchdiffeq
# and jax.experimental.ode (it meets the order-4 conditions, see the tests; Hairer's DOPRI5
# uses b_hat = (5179/57600, 0, 7571/16695, 393/640, -92097/339200, 187/2100, 1/40)).
# _MID: weights of the midpoint value of the dense output (torchdiffeq's).
_C = (1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = ((1 / 5,),
      (3 / 40, 9 / 40),
      (44 / 45, -56 / 15, 32 / 9),
      (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
      (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656))
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_E = (35 / 384 - 1951 / 21600, 0.0, 500 / 1113 - 22642 / 50085, 125 / 192 - 451 / 720,
      -2187 / 6784 + 12231 / 42400, 11 / 84 - 649 / 6300, -1 / 60)
_MID = (6025192743 / 30085553152 / 2, 0.0, 51252292925 / 65400821598 / 2,
        -2691868925 / 45128329728 / 2, 187940372067 / 1594534317056 / 2,
        -1776094331 / 19743644256 / 2, 11237099 / 235043384 / 2)
_WARM_START = 0.25  # the adjoint's first step: this fraction of the forward pass's last step
_SAFETY, _IFACTOR, _DFACTOR, _ORDER = 0.9, 10.0, 0.2, 5


class ODEStats:
    """Counters of one or more solves; pass ``stats=ODEStats()`` to a solver, read it after.

    Attributes (counts add up over the calls that received this object):

    * ``nfe``: evaluations of ``func`` in forward solves (for ``dopri5`` this
      includes the one extra evaluation of the initial-step selection);
    * ``n_steps``, ``n_rejected``: accepted and rejected steps of forward solves;
    * ``t_steps``: the times at which accepted forward steps ended, in order;
    * ``nfe_adjoint``, ``n_steps_adjoint``: evaluations of the augmented
      dynamics and accepted steps in the backward pass of :func:`odeint_adjoint`
      (each evaluation is one call of ``func`` plus one vector-Jacobian product).

    Reference: Chen et al. (2018) report NFE as the cost measure of neural ODEs.
    """

    def __init__(self) -> None:
        self.nfe = 0
        self.n_steps = 0
        self.n_rejected = 0
        self.t_steps: list[float] = []
        self.nfe_adjoint = 0
        self.n_steps_adjoint = 0

    def __repr__(self) -> str:
        return (f"ODEStats(nfe={self.nfe}, n_steps={self.n_steps}, n_rejected={self.n_rejected}, "
                f"nfe_adjoint={self.nfe_adjoint}, n_steps_adjoint={self.n_steps_adjoint})")


# ---------------------------------------------------------------- validation

def _check_number(name: str, value, low: float, allow_low: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    if not (-_FLOAT_MAX <= value <= _FLOAT_MAX):  # NaN, inf, or an int beyond float64
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or (value == low and not allow_low):
        raise ValueError(f"{name} must be {'>=' if allow_low else '>'} {low}, got {value!r}")
    return float(value)


def _check_tolerances(rname: str, rtol, aname: str, atol) -> tuple[float, float]:
    # atol > 0 keeps Hairer's scale atol + rtol |y| positive where y = 0 (an adjoint starts at 0)
    rtol, atol = _check_number(rname, rtol, 0.0), _check_number(aname, atol, 0.0, allow_low=False)
    if rtol >= 1:
        raise ValueError(f"{rname} must be < 1 (a relative tolerance), got {rtol!r}")
    return rtol, atol


def _check_args(func, y0, t, method, rtol, atol, step_size, max_steps, stats):
    """Validate the common arguments; returns (t as a list of floats, rtol, atol, step_size)."""
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y), got {type(func).__name__}")
    if not isinstance(y0, torch.Tensor):
        raise TypeError(f"y0 must be a torch.Tensor, got {type(y0).__name__}")
    if y0.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"y0 must be float32 or float64 (error control needs the precision), got {y0.dtype}")
    if y0.numel() == 0:
        raise ValueError(f"y0 must have at least one element, got shape {tuple(y0.shape)}")
    _check_finite("y0", y0.detach())
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a 1-D torch.Tensor of times, got {type(t).__name__}")
    if not torch.is_floating_point(t):
        raise TypeError(f"t must have a real floating dtype, got {t.dtype}")
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(f"t must be 1-D with at least one time, got shape {tuple(t.shape)}")
    _check_finite("t", t.detach())
    times = t.detach().double().cpu().tolist()
    diffs = [b - a for a, b in zip(times[:-1], times[1:])]
    if not (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)):
        raise ValueError(f"t must be strictly increasing or strictly decreasing, got {times[:8]}"
                         f"{' ...' if len(times) > 8 else ''}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    rtol, atol = _check_tolerances("rtol", rtol, "atol", atol)
    if step_size is not None:
        step_size = _check_number("step_size", step_size, 0.0, allow_low=False)
        if method == "dopri5":
            raise ValueError("step_size applies to the fixed-step methods 'euler' and 'rk4'; "
                             "dopri5 chooses its own steps (set rtol/atol)")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int):
        raise TypeError(f"max_steps must be an int, got {type(max_steps).__name__} ({max_steps!r})")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if stats is not None and not isinstance(stats, ODEStats):
        raise TypeError(f"stats must be None or an ODEStats, got {type(stats).__name__}")
    return times, rtol, atol, step_size


class _Field:
    """``func`` as the solvers call it: float time in, checked tensor out, evaluations counted."""

    def __init__(self, func, y0: torch.Tensor, name: str = "func"):
        self.func, self.name, self.nfe = func, name, 0
        self.shape, self.dtype, self.device = y0.shape, y0.dtype, y0.device

    def time(self, tau: float) -> torch.Tensor:
        return torch.full((), tau, dtype=self.dtype, device=self.device)

    def __call__(self, tau: float, y: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.check(self.func(self.time(tau), y))

    def check(self, f):
        if type(f) is not torch.Tensor or f.shape != self.shape or f.dtype != self.dtype \
                or f.device != self.device:
            self._complain(f)
        return f

    def _complain(self, f):
        if not isinstance(f, torch.Tensor):
            raise TypeError(f"{self.name} must return a torch.Tensor, got {type(f).__name__}")
        if f.shape != self.shape:
            raise ValueError(f"{self.name} must return a tensor of the state's shape {tuple(self.shape)}, "
                             f"got {tuple(f.shape)}")
        if f.dtype != self.dtype:
            raise TypeError(f"{self.name} must return the state's dtype {self.dtype}, got {f.dtype}")
        if f.device != self.device:
            raise ValueError(f"{self.name} must return a tensor on the state's device {self.device}, "
                             f"got {f.device}")


def _nonfinite(name: str, tau: float) -> ValueError:
    return ValueError(f"{name} returned non-finite values (NaN or inf) at t={tau:g}, or the solution "
                      "overflowed: check func and y0, or use a smaller step / tighter rtol and atol")


# ---------------------------------------------------------------- fixed steps

def _axpy(y: torch.Tensor | None, h: float, terms) -> torch.Tensor:
    """``y + h * sum(c * k for c, k in terms)`` (``y=None``: no ``y``).

    The increment is summed first (in place, on a fresh tensor) and added to ``y`` once:
    one rounding at the scale of ``y`` per step instead of one per stage."""
    (c0, k0), rest = terms[0], terms[1:]
    out = torch.mul(k0, c0 * h)
    for c, k in rest:
        if c:
            out.add_(k, alpha=c * h)
    return out if y is None else out.add_(y)


def _euler_step(field: _Field, tau: float, y: torch.Tensor, h: float) -> torch.Tensor:
    return torch.add(y, field(tau, y), alpha=h)


def _rk4_step(field: _Field, tau: float, y: torch.Tensor, h: float) -> torch.Tensor:
    # Kutta's 3/8 rule, the fourth-order method of torchdiffeq's "rk4": nodes 0, 1/3, 2/3, 1
    k1 = field(tau, y)
    k2 = field(tau + h / 3, torch.add(y, k1, alpha=h / 3))
    k3 = field(tau + 2 * h / 3, _axpy(y, h, ((-1 / 3, k1), (1.0, k2))))
    k4 = field(tau + h, _axpy(y, h, ((1.0, k1), (-1.0, k2), (1.0, k3))))
    return _axpy(y, h, ((1 / 8, k1), (3 / 8, k2), (3 / 8, k3), (1 / 8, k4)))


def _substeps(times: list[float], step_size: float | None, max_steps: int) -> list[int]:
    """Number of equal steps between consecutive output times (at most max_steps in all)."""
    if step_size is None:
        ns = [1] * (len(times) - 1)
    else:
        ratios = [abs(b - a) / step_size * (1 - 1e-12) for a, b in zip(times[:-1], times[1:])]
        ns = [max(1, math.ceil(r)) if r <= max_steps else max_steps + 1 for r in ratios]
    if sum(ns) > max_steps:
        raise ValueError(f"step_size={step_size!r} needs more than max_steps={max_steps} steps from "
                         f"t={times[0]:g} to t={times[-1]:g}: raise step_size or max_steps")
    return ns


def _fixed_interval(field, method, y, a: float, b: float, n: int, stats, record: bool):
    step = _euler_step if method == "euler" else _rk4_step
    h = (b - a) / n
    for i in range(n):
        tau = a + i * h
        y = step(field, tau, y, (b - tau) if i == n - 1 else h)  # the last step lands on b exactly
        if record and stats is not None:
            stats.t_steps.append(b if i == n - 1 else a + (i + 1) * h)
    return y


# ---------------------------------------------------------------- dopri5

def _error_ratio(err, y0, y1, rtol, atol, groups):
    """Hairer's norm of err / (atol + rtol max(|y0|, |y1|)): RMS, or the max of RMS over groups."""
    with torch.no_grad():
        scale = torch.maximum(y0.detach().abs(), y1.detach().abs()).mul_(rtol).add_(atol)
        return _rms(err.div_(scale.clamp_(min=torch.finfo(scale.dtype).tiny)), groups)  # atol=0, y=0


def _rms(x, groups) -> float:
    """RMS of x, or the largest RMS of its parts ``x[a:b]`` for the spans ``groups``: one sync."""
    if groups is None:
        return torch.linalg.vector_norm(x).item() / math.sqrt(x.numel())
    norms = torch.stack([torch.linalg.vector_norm(x[a:b]) / math.sqrt(b - a) for a, b in groups])
    return norms.max().item()


def _initial_step(field, tau, y0, f0, direction, span, rtol, atol, groups) -> float:
    """Hairer, Norsett & Wanner (1993), sec. II.4 (as in torchdiffeq): one extra evaluation.

    The trial point stays within the integration interval (of length ``span``)."""
    with torch.no_grad():
        scale = y0.detach().abs().mul_(rtol).add_(atol).clamp_(min=torch.finfo(y0.dtype).tiny)
        d0, d1 = _rms(y0.detach() / scale, groups), _rms(f0.detach() / scale, groups)
        h0 = 0.01 * d0 / d1 if d0 >= 1e-5 and d1 >= 1e-5 else 1e-6
        h0 = min(h0 if 0 < h0 < math.inf else 1e-6, span)
        f1 = field(tau + direction * h0, torch.add(y0.detach(), f0.detach(), alpha=direction * h0))
        d2 = _rms((f1 - f0.detach()).div_(scale), groups) / h0
    if not math.isfinite(d0 + d1 + d2):
        raise _nonfinite(field.name, tau)
    if max(d1, d2) <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / _ORDER)
    return min(100 * h0, h1)


def _dense(y0, y1, k, h):
    """Coefficients of the 4th-order dense output of a dopri5 step (torchdiffeq's).

    The quartic in the step fraction x matches y0, y1, the derivatives f0, f1 at both ends
    and a 4th-order value at the midpoint; :func:`_dense_at` evaluates it."""
    f0, f1 = k[0], k[6]
    y_mid = _axpy(y0, h, list(zip(_MID, k)))
    a = 2 * h * (f1 - f0) - 8 * (y1 + y0) + 16 * y_mid
    b = h * (5 * f0 - 3 * f1) + 18 * y0 + 14 * y1 - 32 * y_mid
    c = h * (f1 - 4 * f0) - 11 * y0 - 5 * y1 + 16 * y_mid
    return y0, h * f0, c, b, a


def _dense_at(coeffs, x: float) -> torch.Tensor:
    e, d, c, b, a = coeffs
    return e + x * (d + x * (c + x * (b + x * a)))


def _dopri5(field, y0, times, rtol, atol, max_steps, stats, groups=None, h=None, record=True):
    """Solve along ``times`` (floats, strictly monotone); returns (outputs, proposed next step size)."""
    tau, y, end = times[0], y0, times[-1]
    direction = 1.0 if end > tau else -1.0
    f = field(tau, y)
    if h is None:
        h = _initial_step(field, tau, y, f, direction, abs(end - tau), rtol, atol, groups)
    outs, j, n_tried, n_bad = [y0], 1, 0, 0
    while j < len(times):
        n_tried += 1
        if n_tried > max_steps:
            raise ValueError(f"dopri5 needed more than max_steps={max_steps} steps between t={times[0]:g} "
                             f"and t={end:g} (stuck at t={tau:g}): the ODE may be stiff or rtol/atol too "
                             "tight; raise max_steps or loosen rtol and atol")
        last = direction * (tau + direction * h - end) >= 0
        t1 = end if last else tau + direction * h
        hs = t1 - tau
        if not last and (abs(hs) <= 16 * _EPS64 * abs(tau) or t1 == tau):
            raise ValueError(f"dopri5 step size underflow at t={tau:g}: the solution may blow up "
                             "(overflow) near there, func may be non-finite, or rtol/atol are too "
                             "tight for the dtype of y0")
        k = [f]
        for c, a in zip(_C, _A):
            k.append(field(tau + c * hs, _axpy(y, hs, list(zip(a, k)))))
        y1 = _axpy(y, hs, list(zip(_B, k)))
        k.append(field(t1, y1))
        with torch.no_grad():
            ratio = _error_ratio(_axpy(None, hs, list(zip(_E, k))), y, y1, rtol, atol, groups)
        n_bad = 0 if math.isfinite(ratio) else n_bad + 1
        if n_bad:  # non-finite trial values: shrink the step, unless func is the culprit
            if n_bad > 30 or not bool(torch.isfinite(f).all()):
                raise _nonfinite(field.name, tau)
            ratio = math.inf
        if ratio <= 1:
            coeffs = None
            while j < len(times) and direction * (times[j] - t1) <= 0:
                x = (times[j] - tau) / hs
                if x < 1 and coeffs is None:
                    coeffs = _dense(y, y1, k, hs)
                outs.append(y1 if x >= 1 else _dense_at(coeffs, x))
                j += 1
            tau, y, f = t1, y1, k[6]
            if stats is not None:
                stats.n_steps += 1
                if record:
                    stats.t_steps.append(t1)
        elif stats is not None:
            stats.n_rejected += 1
        if ratio == 0:
            factor = _IFACTOR
        else:
            factor = min(_IFACTOR, max(_SAFETY * ratio ** (-1.0 / _ORDER), 1.0 if ratio <= 1 else _DFACTOR))
        h_next = abs(hs) * factor
        h = max(h, h_next) if last and ratio <= 1 else h_next  # a shortened last step says little
    if not bool(torch.isfinite(y).all()):  # e.g. overflow where the error estimate was still 0
        raise _nonfinite(field.name, end)
    return outs, h


# ---------------------------------------------------------------- odeint

def _solve(field, y0, times, method, rtol, atol, step_size, max_steps, stats, groups=None, record=True):
    """Outputs at every time (a list of tensors) and the last step proposal (dopri5) or None."""
    if len(times) == 1:
        return [y0], None
    if method == "dopri5":
        return _dopri5(field, y0, times, rtol, atol, max_steps, stats, groups, record=record)
    ns = _substeps(times, step_size, max_steps)
    outs, y = [y0], y0
    for a, b, n in zip(times[:-1], times[1:], ns):
        y = _fixed_interval(field, method, y, a, b, n, stats, record)
        outs.append(y)
    if stats is not None:
        stats.n_steps += sum(ns)
    if not bool(torch.isfinite(y).all()):  # one check at the end: no synchronisation per step
        bad = next(i for i, o in enumerate(outs) if not bool(torch.isfinite(o).all()))
        raise _nonfinite(field.name, times[bad])
    return outs, None


def odeint(func: Func, y0: torch.Tensor, t: torch.Tensor, *, method: str = "dopri5", rtol: float = 1e-7,
           atol: float = 1e-9, step_size: float | None = None, max_steps: int = 10_000,
           stats: ODEStats | None = None) -> torch.Tensor:
    """Solve ``dy/dt = func(t, y)``, ``y(t[0]) = y0``; return ``y`` at every time of ``t``.

    Shapes: ``y0`` any shape ``S`` (float32 or float64, at least one element);
    ``t`` of shape ``(T,)``, strictly increasing or decreasing (``t[0]`` is the
    initial time); ``func(t, y)`` gets a 0-dim tensor ``t`` and ``y`` of shape
    ``S`` (dtype and device of ``y0``) and returns ``dy/dt`` of shape ``S``.
    Returns a tensor of shape ``(T, *S)`` whose first entry is ``y0``.

    ``method``: ``"euler"`` or ``"rk4"`` (fixed steps: one per output interval, or
    equal steps of at most ``step_size``) or ``"dopri5"`` (adaptive: ``rtol >= 0``,
    ``atol > 0``); see the module docstring. Gradients flow to ``y0`` and to
    whatever ``func`` uses through every solver operation; ``t`` is data (for
    gradients w.r.t. ``t`` use :func:`odeint_adjoint`). ``max_steps`` bounds the
    number of steps (dopri5: tried steps); ``stats`` (an :class:`ODEStats`)
    receives the counts.

    Raises ``ValueError``/``TypeError`` for bad arguments, for ``func`` returning
    a wrong type, shape, dtype or non-finite values, and when dopri5 cannot meet
    the tolerance (step size underflow, more than ``max_steps`` steps).
    Reference: Hairer, Norsett & Wanner (1993), sec. II.1-II.4; Dormand & Prince
    (1980); torchdiffeq's ``odeint`` (Chen et al. 2018) for the interface.
    """
    times, rtol, atol, step_size = _check_args(func, y0, t, method, rtol, atol, step_size, max_steps, stats)
    if t.requires_grad and torch.is_grad_enabled():
        raise ValueError("t requires grad, but odeint treats the output times as data: use "
                         "odeint_adjoint for gradients with respect to t, or pass t.detach()")
    field = _Field(func, y0)
    try:
        outs, _ = _solve(field, y0, times, method, rtol, atol, step_size, max_steps, stats)
    finally:
        if stats is not None:
            stats.nfe += field.nfe
    return torch.stack(outs)


# ---------------------------------------------------------------- the adjoint method

class _Adjoint(torch.autograd.Function):
    """Forward: solve without recording. Backward: the adjoint ODE, interval by interval."""

    @staticmethod
    def forward(ctx, cfg, y0, t, *params):
        field = _Field(cfg["func"], y0)
        with torch.no_grad():
            try:
                outs, ctx.h_last = _solve(field, y0, cfg["times"], cfg["method"], cfg["rtol"], cfg["atol"],
                                          cfg["step_size"], cfg["max_steps"], cfg["stats"])
            finally:
                if cfg["stats"] is not None:
                    cfg["stats"].nfe += field.nfe
            ys = torch.stack(outs)
        ctx.cfg = cfg
        ctx.save_for_backward(ys, t)  # the outputs only: memory independent of the number of steps
        return ys

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_ys):
        cfg = ctx.cfg
        ys, t = ctx.saved_tensors
        func, params, times, method = cfg["func"], cfg["params"], cfg["times"], cfg["method"]
        shape, n = ys.shape[1:], ys[0].numel()
        sizes = [n, n] + [p.numel() for p in params]
        dtype, device = ys.dtype, ys.device
        ends = [sum(sizes[:i + 1]) for i in range(len(sizes))]
        groups = [(e - m, e) for e, m in zip(ends, sizes) if m > 0]
        plain = _Field(func, ys[0])

        def augmented(tt, z):
            # z = [y, a, a_theta]: dy/dt = f, da/dt = -a^T df/dy, da_theta/dt = -a^T df/dtheta
            y = z[:n].reshape(shape).detach().requires_grad_(True)
            with torch.enable_grad():
                f = plain.check(func(tt, y))
                wrt = (y, *params)
                vjp = (torch.autograd.grad(f, wrt, -z[n:2 * n].reshape(shape), allow_unused=True)
                       if f.requires_grad else [None] * len(wrt))
            return torch.cat([f.detach().reshape(-1)] + [(torch.zeros_like(w) if v is None else v).reshape(-1)
                                                         for v, w in zip(vjp, wrt)])

        aug = _Field(augmented, torch.zeros(sum(sizes), dtype=dtype, device=device), name="func (adjoint)")
        back = ODEStats()
        a, a_theta = grad_ys[-1], torch.zeros(sum(sizes[2:]), dtype=dtype, device=device)
        h = None if ctx.h_last is None else _WARM_START * ctx.h_last  # warm start (dopri5)
        grad_t = torch.zeros(len(times), dtype=dtype, device=device) if ctx.needs_input_grad[2] else None
        ns = _substeps(times, cfg["step_size"], cfg["max_steps"])
        for i in range(len(times) - 1, 0, -1):
            if grad_t is not None:  # moving an output time moves its output along f
                grad_t[i] = (plain(times[i], ys[i]) * grad_ys[i]).sum()
            z = torch.cat([ys[i].reshape(-1), a.reshape(-1), a_theta])
            if method == "dopri5":
                outs, h = _dopri5(aug, z, [times[i], times[i - 1]], cfg["adjoint_rtol"], cfg["adjoint_atol"],
                                  cfg["max_steps"], back, groups, h=h, record=False)
                z = outs[-1]
            else:
                z = _fixed_interval(aug, method, z, times[i], times[i - 1], ns[i - 1], None, False)
                back.n_steps += ns[i - 1]
                if not bool(torch.isfinite(z).all()):
                    raise _nonfinite("func (adjoint)", times[i - 1])
            a = z[n:2 * n].reshape(shape) + grad_ys[i - 1]  # y is reset to the stored y(t_{i-1})
            a_theta = z[2 * n:]
        if grad_t is not None:  # dL/dt0 = -a(t0)^T f(t0, y0), a without the output y(t0) itself
            grad_t[0] = -((a - grad_ys[0]) * plain(times[0], ys[0])).sum()
            grad_t = grad_t.to(device=t.device, dtype=t.dtype)
        if cfg["stats"] is not None:
            cfg["stats"].nfe_adjoint += aug.nfe + plain.nfe
            cfg["stats"].n_steps_adjoint += back.n_steps
        grads_p = list(torch.split(a_theta, sizes[2:])) if params else []
        return (None, a if ctx.needs_input_grad[1] else None, grad_t,
                *[g.view_as(p) for g, p in zip(grads_p, params)])


def odeint_adjoint(func: Func, y0: torch.Tensor, t: torch.Tensor, *, method: str = "dopri5",
                   rtol: float = 1e-7, atol: float = 1e-9, step_size: float | None = None,
                   adjoint_rtol: float | None = None, adjoint_atol: float | None = None,
                   adjoint_params: Sequence[torch.Tensor] | None = None, max_steps: int = 10_000,
                   stats: ODEStats | None = None) -> torch.Tensor:
    """:func:`odeint` whose gradients come from the adjoint ODE: memory flat in the number of steps.

    Same arguments, shapes and result as :func:`odeint`. ``func`` must be an
    ``nn.Module`` (its parameters that require grad get gradients), or pass
    ``adjoint_params`` (the tensors ``func`` uses that should get gradients).
    The forward solve runs under ``torch.no_grad()`` and keeps only the
    outputs ``y(t_i)``. The backward pass integrates the augmented state
    ``[y, a, a_theta]`` from ``t[-1]`` back to ``t[0]``, one output interval at
    a time:

        dy/dt = f,   da/dt = -a^T df/dy,   da_theta/dt = -a^T df/dtheta,

    starting from ``a = dL/dy(t[-1])``, ``a_theta = 0``, resetting ``y`` to the
    stored ``y(t_i)`` and adding ``dL/dy(t_i)`` to ``a`` at every output time.
    Then ``dL/dy0 = a(t0)`` and ``dL/dtheta = a_theta(t0)``; if ``t`` requires
    grad, ``dL/dt_i = dL/dy(t_i) . f(t_i, y_i)`` for ``i >= 1`` and
    ``dL/dt_0 = -(a(t_0) - dL/dy(t_0)) . f(t_0, y0)`` (one extra evaluation each).
    The backward pass uses the same method (and step grid for ``euler``/``rk4``);
    dopri5 uses ``adjoint_rtol``/``adjoint_atol`` (default ``rtol``/``atol``) and
    the norm ``max(RMS(y), RMS(a), RMS of each parameter's part)`` as torchdiffeq,
    starts from a quarter of the forward pass's last step and carries its step
    size across output times. Not twice differentiable.

    Reference: Chen et al. (2018), "Neural Ordinary Differential Equations",
    sec. 2 and Algorithm 1 (the adjoint method); Pontryagin et al. (1962).
    """
    times, rtol, atol, step_size = _check_args(func, y0, t, method, rtol, atol, step_size, max_steps, stats)
    adjoint_rtol, adjoint_atol = _check_tolerances("adjoint_rtol", rtol if adjoint_rtol is None else adjoint_rtol,
                                                   "adjoint_atol", atol if adjoint_atol is None else adjoint_atol)
    if adjoint_params is None:
        if not isinstance(func, torch.nn.Module):
            raise TypeError(f"func must be an nn.Module (whose parameters get gradients), or pass "
                            f"adjoint_params; got {type(func).__name__}")
        adjoint_params = list(func.parameters())
    elif isinstance(adjoint_params, torch.Tensor) or not isinstance(adjoint_params, (list, tuple)):
        raise TypeError(f"adjoint_params must be a list or tuple of tensors, got {type(adjoint_params).__name__}")
    for p in adjoint_params:
        if not isinstance(p, torch.Tensor) or p.requires_grad and (p.dtype != y0.dtype or p.device != y0.device):
            raise TypeError(f"adjoint_params must hold tensors of y0's dtype {y0.dtype} on {y0.device}, "
                            f"got {getattr(p, 'dtype', type(p).__name__)}")
    params = [p for p in adjoint_params if p.requires_grad]
    cfg = dict(func=func, times=times, method=method, rtol=rtol, atol=atol, step_size=step_size,
               adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol, max_steps=max_steps, stats=stats,
               params=params)
    return _Adjoint.apply(cfg, y0, t, *params)
