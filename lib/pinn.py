"""Physics-informed learning: input derivatives, PINN losses, hard constraints and SIREN.

Chapter 15 (``book/15_pinns.md``, lab ``notebooks/15_pinns.ipynb``).

A *physics-informed neural network* (PINN) represents the solution ``u(x, t)`` of a
partial differential equation by a network ``u_theta`` and trains it so that the
equation holds at *collocation points*. The equation is written with derivatives
of the network with respect to its **inputs**, which autodiff computes exactly:
``u_x = d u_theta / dx`` is the backward pass of ``u`` with respect to ``x``,
kept as a graph (``create_graph=True``) so that a loss built from it can be
differentiated once more, with respect to ``theta``.

* :func:`input_derivative`: ``d^k y / dx^k`` of a batch of values computed point
  by point from ``x``; :func:`partials` bundles ``u, u_x, u_t, u_xx`` of a field
  ``u(x, t)`` (:class:`Partials`).
* :func:`advection_residual` (``u_t + c u_x``) and :func:`heat_residual`
  (``u_t - nu u_xx``): strong-form residuals at collocation points.
* :func:`pinn_loss` (:class:`PINNLoss`): residual mean square plus weighted
  initial- and boundary-condition mean squares, the soft-constraint loss.
* :func:`periodic_features` and :class:`FieldMLP`: an MLP ``u(x, t)``, optionally
  exactly periodic in ``x`` through ``sin``/``cos`` input features.
* :class:`InitialConditionAnsatz`: the hard constraint
  ``u(x, t) = u0(x) + (t - t0) N(x, t)``, exact at ``t = t0`` for any network ``N``.
* :func:`siren_bound`, :class:`SineLayer`, :class:`Siren`: sinusoidal representation
  networks ``sin(omega_0 (W x + b))`` with their initialisation.
* :func:`relative_l2`: ``||pred - exact|| / ||exact||``, the error the lab reports.

References: Lagaris, Likas & Fotiadis (1998), "Artificial Neural Networks for Solving
Ordinary and Partial Differential Equations" (trial solutions that satisfy the
initial/boundary conditions by construction); Raissi, Perdikaris & Karniadakis
(2019), "Physics-informed neural networks"; Krishnapriyan, Gholami, Zhe, Kirby &
Mahoney (2021), "Characterizing possible failure modes in physics-informed neural
networks"; Sitzmann, Martel, Bergman, Lindell & Wetzstein (2020), "Implicit Neural
Representations with Periodic Activation Functions".
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from .calculus import _check_finite
from .runtime import _check_device

__all__ = ["input_derivative", "Partials", "partials", "advection_residual", "heat_residual",
           "PINNLoss", "pinn_loss", "periodic_features", "FieldMLP", "InitialConditionAnsatz",
           "siren_bound", "SineLayer", "Siren", "relative_l2"]

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # u(x, t), shaped like x
_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "silu": torch.nn.functional.silu}
_MAX_ORDER = 10      # each order is one more backward pass over a graph that grows with the order
_MAX_HARMONICS = 1024
_MAX_WIDTH = 2**20   # a typo beyond this would allocate gigabytes before failing
_FLOAT_MAX = torch.finfo(torch.float64).max


# ---------------------------------------------------------------- validation

def _inspectable(t: torch.Tensor) -> bool:
    # Inside torch.func transforms (vmap, grad, jacrev) values cannot be read, so checks of
    # values are skipped there; shapes and dtypes are still checked.
    try:
        return not torch._C._functorch.is_functorch_wrapped_tensor(t)
    except AttributeError:  # an older torch without this query
        return True


def _check_real(name: str, value, low: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    if not -math.inf < value < math.inf or abs(value) > _FLOAT_MAX:  # NaN, inf, or an int beyond float64
        raise ValueError(f"{name} must be a finite number, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return float(value)


def _check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def _check_tensor(name: str, t, allow_empty: bool = False) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not torch.is_floating_point(t):
        raise TypeError(f"{name} must have a real floating dtype, got {t.dtype}")
    if t.numel() == 0 and not allow_empty:
        raise ValueError(f"{name} must have at least one element, got shape {tuple(t.shape)}")
    if _inspectable(t):
        _check_finite(name, t.detach())
    return t


def _check_callable(name: str, f) -> None:
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__}")


def _check_init(generator, dtype, device) -> tuple[torch.dtype, torch.device | None]:
    # the generator, dtype and device arguments of the modules' constructors
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be None or a torch.Generator, got {type(generator).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a real floating torch.dtype, got {dtype!r}")
    return dtype, _check_device(device)


def _check_points(x, t) -> tuple[torch.Tensor, torch.Tensor]:
    """Collocation points: two finite floating tensors of one shape, dtype and device."""
    x, t = _check_tensor("x", x), _check_tensor("t", t)
    if x.shape != t.shape:
        raise ValueError(f"x and t must have the same shape (one point (x_i, t_i) each), got "
                         f"{tuple(x.shape)} and {tuple(t.shape)}")
    if x.dtype != t.dtype or x.device != t.device:
        raise TypeError(f"x and t must share dtype and device, got {x.dtype} on {x.device} and "
                        f"{t.dtype} on {t.device}")
    return x, t


def _check_output(out, shape: torch.Size, name: str) -> torch.Tensor:
    """A user function's values at points of ``shape``: shaped like them (or with a trailing 1)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    if not torch.is_floating_point(out):
        raise TypeError(f"{name} must return a floating tensor, got {out.dtype}")
    if out.shape != shape:
        if out.shape != (*shape, 1):
            raise ValueError(f"{name} must return one value per point, shape {tuple(shape)} (or "
                             f"{(*shape, 1)}), got {tuple(out.shape)}")
        out = out.squeeze(-1)
    if _inspectable(out) and not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} returned non-finite values (NaN or inf) at finite points")
    return out


def _check_finite_result(r: torch.Tensor, what: str, cause: str) -> torch.Tensor:
    if _inspectable(r) and not bool(torch.isfinite(r).all()):
        raise ValueError(f"{what} is not finite (overflow in {r.dtype}?); check {cause}")
    return r


# ---------------------------------------------------------------- input derivatives

def _d(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # One backward pass: the elementwise dy_i/dx_i when y_i depends on x_i only. The
    # gradient of sum_i y_i w.r.t. x_j is sum_i dy_i/dx_j = dy_j/dx_j for pointwise y.
    if not y.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y), create_graph=True,
                               allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def input_derivative(y: torch.Tensor, x: torch.Tensor, order: int = 1) -> torch.Tensor:
    """The derivative ``d^k y / dx^k`` of values ``y`` computed point by point from inputs ``x``.

    ``x``: floating tensor with ``requires_grad=True``, any shape (a batch of
    points); ``y``: the same shape, each ``y[i]`` a function of ``x[i]`` alone (a
    network applied to a batch, without batch-norm). Then one backward pass of
    ``y.sum()`` gives every ``dy[i]/dx[i]`` at once, and ``order`` passes give the
    ``order``-th derivative. Each pass uses ``torch.autograd.grad(...,
    create_graph=True)``, so the result is itself differentiable, w.r.t. ``x``
    (the next order) and w.r.t. the network's parameters (training). Cost: order
    ``k`` runs backward through the graph of order ``k - 1``, which is a few times
    larger each time. Returns a tensor shaped like ``x``; zeros where ``y`` does
    not depend on ``x``. ``order``: 1 to 10. Chapter 15.
    Reference: Raissi, Perdikaris & Karniadakis (2019), derivatives of the network
    w.r.t. its inputs by automatic differentiation.
    """
    x, y = _check_tensor("x", x, allow_empty=True), _check_tensor("y", y, allow_empty=True)
    if y.shape != x.shape:
        raise ValueError(f"y must have the shape of x {tuple(x.shape)} (one value per point), got "
                         f"{tuple(y.shape)}")
    if not x.requires_grad:
        raise ValueError("x must require grad: call x.requires_grad_() before computing y from it")
    order = _check_int("order", order, 1, _MAX_ORDER)
    d = y
    with torch.enable_grad():
        for _ in range(order):
            d = _d(d, x)
    return _check_finite_result(d, "the derivative of y with respect to x", "that y is "
                                "differentiable at x")


class Partials(NamedTuple):
    """The field and its input derivatives at the collocation points, each shaped like ``x``.

    ``u_xx`` is None when :func:`partials` was asked for first derivatives only.
    Chapter 15. Reference: Raissi et al. (2019).
    """

    u: torch.Tensor
    u_x: torch.Tensor
    u_t: torch.Tensor
    u_xx: torch.Tensor | None


def partials(u: Field, x: torch.Tensor, t: torch.Tensor, second_order: bool = True) -> Partials:
    """``u``, ``u_x``, ``u_t`` (and ``u_xx``) of a field ``u(x, t)`` at the points ``(x_i, t_i)``.

    ``u``: a callable, e.g. a :class:`FieldMLP`, mapping ``x``, ``t`` of one shape
    ``S`` to values of shape ``S`` (or ``S + (1,)``), each from its own point.
    ``x``, ``t``: finite floating tensors of shape ``S`` (they are detached and
    made leaves that require grad here). One backward pass of ``u`` gives ``u_x``
    and ``u_t`` together; a second pass, through the first, gives ``u_xx``. All
    results keep their graphs, so a loss built from them trains ``u``'s parameters.
    Returns :class:`Partials`, each entry of shape ``S``. Chapter 15.
    Reference: Raissi, Perdikaris & Karniadakis (2019), the residual network built by
    automatic differentiation.
    """
    _check_callable("u", u)
    x, t = _check_points(x, t)
    if not isinstance(second_order, bool):
        raise TypeError(f"second_order must be a bool, got {type(second_order).__name__}")
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        t = t.detach().requires_grad_(True)
        out = _check_output(u(x, t), x.shape, "u")
        if out.requires_grad:
            gx, gt = torch.autograd.grad(out, (x, t), grad_outputs=torch.ones_like(out),
                                         create_graph=True, allow_unused=True)
        else:
            gx = gt = None
        u_x = torch.zeros_like(x) if gx is None else gx
        u_t = torch.zeros_like(t) if gt is None else gt
        u_xx = _d(u_x, x) if second_order else None
    for name, v in (("u_x", u_x), ("u_t", u_t), ("u_xx", u_xx)):
        if v is not None:
            _check_finite_result(v, f"the derivative {name} of u", "that u is differentiable there")
    return Partials(out, u_x, u_t, u_xx)


# ---------------------------------------------------------------- residuals and the loss

def advection_residual(u: Field, x: torch.Tensor, t: torch.Tensor, c: float) -> torch.Tensor:
    """The advection residual ``r = u_t + c u_x`` of a field ``u(x, t)`` at the points ``(x, t)``.

    Zero everywhere exactly when ``u`` solves ``u_t + c u_x = 0``, whose solutions
    are the travelling waves ``u(x, t) = u0(x - c t)``: the initial profile moves
    at speed ``c`` along the characteristics ``x - c t = const``. ``x``, ``t``: shape
    ``S``; returns shape ``S``, differentiable w.r.t. ``u``'s parameters. Chapter 15.
    Reference: Krishnapriyan et al. (2021), the convection problem
    ``u_t + beta u_x = 0`` (their ``beta`` is ``c``).
    """
    c = _check_real("c", c)
    p = partials(u, x, t, second_order=False)
    return _check_finite_result(p.u_t + c * p.u_x, "the advection residual", f"the speed c={c:g}")


def heat_residual(u: Field, x: torch.Tensor, t: torch.Tensor, nu: float) -> torch.Tensor:
    """The heat (diffusion) residual ``r = u_t - nu u_xx`` at the points ``(x, t)``.

    ``nu >= 0`` is the diffusivity; ``u(x, t) = exp(-nu k^2 t) sin(k x)`` makes it
    zero. ``x``, ``t``: shape ``S``; returns shape ``S``. Chapter 15.
    Reference: Raissi, Perdikaris & Karniadakis (2019), residuals of parabolic PDEs.
    """
    nu = _check_real("nu", nu, low=0.0)
    p = partials(u, x, t, second_order=True)
    return _check_finite_result(p.u_t - nu * p.u_xx, "the heat residual", f"the diffusivity nu={nu:g}")


class PINNLoss(NamedTuple):
    """The PINN loss: ``total`` (differentiable) and its three mean squares (detached, 0-dim).

    ``total = residual + w_initial * initial + w_boundary * boundary``.
    Chapter 15. Reference: Raissi et al. (2019), the mean-squared-error loss.
    """

    total: torch.Tensor
    residual: torch.Tensor
    initial: torch.Tensor
    boundary: torch.Tensor


def pinn_loss(residual: torch.Tensor, initial: torch.Tensor | None = None,
              boundary: torch.Tensor | None = None, w_initial: float = 1.0,
              w_boundary: float = 1.0) -> PINNLoss:
    """The soft-constraint PINN loss from pointwise errors.

    ``residual``: the PDE residual at the collocation points (any shape);
    ``initial``: ``u(x_j, 0) - u0(x_j)`` at points of the initial line;
    ``boundary``: boundary errors, e.g. ``u(0, t_k) - u(L, t_k)`` for periodicity.
    Either may be None (no such term, e.g. because a hard constraint makes it
    zero). The loss is ``mean(r^2) + w_initial mean(e_0^2) + w_boundary mean(e_b^2)``
    with weights ``>= 0``; all tensors finite, non-empty, on one device. Returns
    :class:`PINNLoss`; ``total`` keeps the graph for ``backward()``. Chapter 15.
    Reference: Raissi, Perdikaris & Karniadakis (2019), the mean-squared-error loss;
    Krishnapriyan et al. (2021), the soft-regularisation view of it.
    """
    residual = _check_tensor("residual", residual)
    w_initial = _check_real("w_initial", w_initial, low=0.0)
    w_boundary = _check_real("w_boundary", w_boundary, low=0.0)
    terms = [residual.square().mean()]
    for name, e in (("initial", initial), ("boundary", boundary)):
        if e is None:
            terms.append(torch.zeros((), dtype=residual.dtype, device=residual.device))
            continue
        e = _check_tensor(name, e)
        if e.device != residual.device:
            raise ValueError(f"{name} must be on residual's device {residual.device}, got {e.device}")
        terms.append(e.square().mean())
    total = terms[0] + w_initial * terms[1] + w_boundary * terms[2]
    _check_finite_result(total, "the PINN loss", "the sizes of residual, initial, boundary and the "
                         "weights w_initial, w_boundary")
    return PINNLoss(total, *(term.detach() for term in terms))


# ---------------------------------------------------------------- networks for u(x, t)

def periodic_features(x: torch.Tensor, period: float, harmonics: int = 1) -> torch.Tensor:
    """``[sin(2 pi k x / P), cos(2 pi k x / P)]`` for ``k = 1..K``: features periodic in ``x``.

    Any function of these features is exactly ``P``-periodic in ``x``, so a network
    fed them satisfies a periodic boundary condition by construction (a hard
    constraint) instead of by a penalty. ``x``: any shape ``S``; returns shape
    ``S + (2K,)``: the ``K`` sines, then the ``K`` cosines. Chapter 15.
    Reference: Lagaris, Likas & Fotiadis (1998), conditions built into the trial
    function; the sin/cos embedding of a periodic coordinate.
    """
    x = _check_tensor("x", x, allow_empty=True)
    period = _check_real("period", period, positive=True)
    harmonics = _check_int("harmonics", harmonics, 1, _MAX_HARMONICS)
    k = torch.arange(1, harmonics + 1, dtype=x.dtype, device=x.device)
    angle = (2 * math.pi / period) * x.unsqueeze(-1) * k
    out = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)
    return _check_finite_result(out, "periodic_features", f"x and the period={period:g}")


def _uniform(shape: tuple[int, ...], bound: float, generator, dtype, device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else device
    w = (2 * torch.rand(shape, generator=generator, dtype=torch.float64, device=gen_device) - 1) * bound
    return w.to(dtype=dtype, device=device if device is not None else gen_device)


def _check_range(name: str, r) -> tuple[float, float] | None:
    if r is None:
        return None
    if not isinstance(r, (tuple, list)) or len(r) != 2:
        raise TypeError(f"{name} must be None or a pair (low, high), got {r!r}")
    lo, hi = (_check_real(name, v) for v in r)
    if not hi > lo:
        raise ValueError(f"{name} must have low < high, got {r!r}")
    return lo, hi


def _module_input(module: torch.nn.Module, name: str, x) -> torch.Tensor:
    # a forward input checked against the module's parameters (dtype and device)
    x = _check_tensor(name, x, allow_empty=True)
    p = next(module.parameters())
    if x.dtype != p.dtype:
        raise TypeError(f"{name} must have the module's dtype {p.dtype}, got {x.dtype}")
    if x.device != p.device:
        raise ValueError(f"{name} must be on the module's device {p.device}, got {x.device}")
    return x


class FieldMLP(torch.nn.Module):
    """A multilayer perceptron ``u_theta(x, t)``: the trial solution of a PINN.

    ``depth`` hidden layers of ``width`` units with ``activation`` (``"tanh"``,
    ``"relu"`` or ``"silu"``), one output. Inputs: ``t`` rescaled from
    ``t_range`` to ``[-1, 1]`` (None: as given); ``x`` rescaled from ``x_range``
    the same way, or, when ``period`` is given, replaced by
    :func:`periodic_features` with ``harmonics`` frequencies, which makes ``u``
    exactly ``period``-periodic in ``x`` (give ``x_range`` or ``period``, not
    both). Weights Glorot-uniform (from ``generator`` if given), biases zero.
    ``forward(x, t)``: ``x``, ``t`` of one shape ``S``, the module's dtype and
    device; returns shape ``S``. Chapter 15.
    Reference: Raissi, Perdikaris & Karniadakis (2019), fully connected tanh
    networks with Xavier initialisation.
    """

    def __init__(self, width: int = 50, depth: int = 3, activation: str = "tanh",
                 x_range: tuple[float, float] | None = None, t_range: tuple[float, float] | None = None,
                 period: float | None = None, harmonics: int = 1,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        width = _check_int("width", width, 1, _MAX_WIDTH)
        depth = _check_int("depth", depth, 1, 1000)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.x_range, self.t_range = _check_range("x_range", x_range), _check_range("t_range", t_range)
        self.period = None if period is None else _check_real("period", period, positive=True)
        self.harmonics = _check_int("harmonics", harmonics, 1, _MAX_HARMONICS)
        if self.period is not None and self.x_range is not None:
            raise ValueError("give x_range or period, not both (periodic features need no rescaling)")
        dtype, device = _check_init(generator, dtype, device)
        self.activation = activation
        sizes = [2 * self.harmonics + 1 if self.period is not None else 2] + [width] * depth + [1]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            w = _uniform((b, a), math.sqrt(6.0 / (a + b)), generator, dtype, device)
            self.weights.append(torch.nn.Parameter(w))
            self.biases.append(torch.nn.Parameter(torch.zeros(b, dtype=dtype, device=w.device)))

    @staticmethod
    def _rescale(v: torch.Tensor, r: tuple[float, float] | None) -> torch.Tensor:
        return v if r is None else (2.0 / (r[1] - r[0])) * (v - r[0]) - 1.0

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x, t = _module_input(self, "x", x), _module_input(self, "t", t)
        if x.shape != t.shape:
            raise ValueError(f"x and t must have the same shape, got {tuple(x.shape)} and {tuple(t.shape)}")
        if self.period is not None:
            fx = periodic_features(x, self.period, self.harmonics)
        else:
            fx = self._rescale(x, self.x_range).unsqueeze(-1)
        h = torch.cat([fx, self._rescale(t, self.t_range).unsqueeze(-1)], dim=-1)
        act = _ACTIVATIONS[self.activation]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w.T + b
            if i < len(self.weights) - 1:
                h = act(h)
        return h.squeeze(-1)

    def extra_repr(self) -> str:
        inputs = f"period={self.period:g}, harmonics={self.harmonics}" if self.period else f"x_range={self.x_range}"
        return f"activation={self.activation}, {inputs}, t_range={self.t_range}"


class InitialConditionAnsatz(torch.nn.Module):
    """The hard initial condition ``u(x, t) = u0(x) + (t - t0) N(x, t)``.

    Whatever the network ``N`` (an ``nn.Module`` ``(x, t) -> `` values shaped like
    ``x``, e.g. :class:`FieldMLP`) computes, ``u(x, t0) = u0(x)`` holds exactly, so
    the loss needs no initial-condition term; ``N`` only has to learn how ``u``
    departs from ``u0``. ``u0``: a callable ``x -> `` values shaped like ``x``
    (no parameters of its own are trained). ``t0``: the initial time.
    ``forward(x, t)``: shape ``S`` in, shape ``S`` out. Chapter 15.
    Reference: Lagaris, Likas & Fotiadis (1998), the trial solution
    ``A(x) + F(x, N(x))`` whose first part carries the conditions.
    """

    def __init__(self, net: torch.nn.Module, u0: Callable[[torch.Tensor], torch.Tensor], t0: float = 0.0):
        super().__init__()
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        _check_callable("u0", u0)
        self.net, self.u0, self.t0 = net, u0, _check_real("t0", t0)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x, t = _check_points(x, t)
        base = _check_output(self.u0(x), x.shape, "u0")
        correction = _check_output(self.net(x, t), x.shape, "net")
        return base + (t - self.t0) * correction


# ---------------------------------------------------------------- SIREN

def siren_bound(fan_in: int, omega_0: float = 30.0, first: bool = False) -> float:
    """The half-width ``a`` of the uniform SIREN initialisation ``W ~ U(-a, a)``.

    First layer: ``a = 1 / fan_in``, so with inputs in ``[-1, 1]`` the arguments
    ``omega_0 W x`` span several periods of the sine. Other layers:
    ``a = sqrt(6 / fan_in) / omega_0``, so that ``omega_0 W x`` has variance
    ``fan_in * (6 / fan_in) / 3 * Var(x) = 2 Var(x) = 1`` for arcsine-distributed
    inputs ``x = sin(.)`` (variance 1/2): every sine receives a standard normal
    argument, and its output is again (close to) arcsine distributed, at any depth.
    Chapter 15.
    Reference: Sitzmann et al. (2020), section 3.2 and supplement section 1.5 (the
    factor ``omega_0`` moved into the weights).
    """
    fan_in = _check_int("fan_in", fan_in, 1, _MAX_WIDTH)
    omega_0 = _check_real("omega_0", omega_0, positive=True)
    if not isinstance(first, bool):
        raise TypeError(f"first must be a bool, got {type(first).__name__}")
    return 1.0 / fan_in if first else math.sqrt(6.0 / fan_in) / omega_0


class SineLayer(torch.nn.Module):
    """A SIREN layer ``y = sin(omega_0 (W x + b))``, initialised as Sitzmann et al. (2020).

    ``W`` ``(out, in)`` and ``b`` ``(out,)`` are drawn from ``U(-a, a)`` with ``a =``
    :func:`siren_bound` ``(in_features, omega_0, first)`` (the paper fixes ``W``;
    drawing ``b`` from the same range keeps the argument's variance at ``1 + 2/n``).
    ``forward(x)``: ``(..., in)`` -> ``(..., out)``; :meth:`pre_activation` returns
    the sine's argument ``omega_0 (W x + b)``. The derivative of the layer,
    ``omega_0 cos(.) W = omega_0 sin(. + pi/2) W``, is again a sine layer. Chapter 15.
    Reference: Sitzmann et al. (2020), section 3 (the sine layer) and section 3.2.
    """

    def __init__(self, in_features: int, out_features: int, omega_0: float = 30.0, first: bool = False,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        in_features = _check_int("in_features", in_features, 1, _MAX_WIDTH)
        out_features = _check_int("out_features", out_features, 1, _MAX_WIDTH)
        a = siren_bound(in_features, omega_0, first)
        dtype, device = _check_init(generator, dtype, device)
        self.weight = torch.nn.Parameter(_uniform((out_features, in_features), a, generator, dtype, device))
        self.bias = torch.nn.Parameter(_uniform((out_features,), a, generator, dtype, device))
        self.in_features, self.out_features = in_features, out_features
        self.omega_0, self.first = float(omega_0), first

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The sine's argument ``omega_0 (W x + b)``, shape ``(..., out)``."""
        x = _module_input(self, "x", x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., {self.in_features}), got {tuple(x.shape)}")
        return self._z(x)

    def _z(self, x: torch.Tensor) -> torch.Tensor:
        return self.omega_0 * (x @ self.weight.T + self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.pre_activation(x))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"omega_0={self.omega_0:g}, first={self.first}")


class Siren(torch.nn.Module):
    """A sinusoidal representation network: ``hidden_layers`` :class:`SineLayer` s and a linear output.

    ``in_features -> hidden_features (x hidden_layers, sine) -> out_features``. The
    first layer uses ``omega_0`` (default 30) and the first-layer bound; the others
    ``omega_hidden``. The output layer is linear with weights and bias
    ``U(-sqrt(6/n)/omega_hidden, ...)``. ``forward(x)``: ``(..., in)`` ->
    ``(..., out)``; :meth:`pre_activations` lists each sine layer's argument. All
    derivatives w.r.t. ``x`` are smooth and again SIREN-like, which suits fitting
    signals through their derivatives and PDE residuals. Chapter 15.
    Reference: Sitzmann et al. (2020), section 3 (architecture and initialisation).
    """

    def __init__(self, in_features: int = 1, hidden_features: int = 64, hidden_layers: int = 2,
                 out_features: int = 1, omega_0: float = 30.0, omega_hidden: float = 30.0,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        hidden_layers = _check_int("hidden_layers", hidden_layers, 1, 1000)
        out_features = _check_int("out_features", out_features, 1, _MAX_WIDTH)
        hidden_features = _check_int("hidden_features", hidden_features, 1, _MAX_WIDTH)
        opts = dict(generator=generator, dtype=dtype, device=device)
        layers = [SineLayer(in_features, hidden_features, omega_0, first=True, **opts)]
        layers += [SineLayer(hidden_features, hidden_features, omega_hidden, **opts)
                   for _ in range(hidden_layers - 1)]
        self.layers = torch.nn.ModuleList(layers)
        a = siren_bound(hidden_features, omega_hidden)
        dtype, device = _check_init(generator, dtype, device)
        self.weight = torch.nn.Parameter(_uniform((out_features, hidden_features), a, generator, dtype, device))
        self.bias = torch.nn.Parameter(_uniform((out_features,), a, generator, dtype, device))

    def pre_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The argument ``omega (W h + b)`` of every sine layer, each ``(..., hidden_features)``."""
        out = [self.layers[0].pre_activation(x)]  # checks x once
        for layer in self.layers[1:]:
            out.append(layer._z(torch.sin(out[-1])))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.sin(self.pre_activations(x)[-1])
        return h @ self.weight.T + self.bias


# ---------------------------------------------------------------- error

def relative_l2(pred: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """The relative L2 error ``||pred - exact|| / ||exact||`` over all entries, 0-dim.

    ``pred`` and ``exact``: finite floating tensors of one shape, ``exact`` not all
    zero. Computed in float64, returned in ``pred``'s dtype (detached). The error
    the lab reports for PINN solutions on a grid. Chapter 15.
    Reference: Krishnapriyan et al. (2021), the relative error of their tables.
    """
    pred, exact = _check_tensor("pred", pred), _check_tensor("exact", exact)
    if pred.shape != exact.shape:
        raise ValueError(f"pred must have the shape of exact {tuple(exact.shape)}, got {tuple(pred.shape)}")
    if pred.device != exact.device:
        raise ValueError(f"pred must be on exact's device {exact.device}, got {pred.device}")
    p, e = pred.detach().double(), exact.detach().double()
    scale = e.abs().max()  # both norms taken after dividing by it: tiny entries' squares underflow
    if not scale > 0:
        raise ValueError("exact must not be all zero (the relative error is undefined)")
    norm = scale * (e / scale).norm()
    err = (((p - e) / scale).norm() / (e / scale).norm()).to(pred.dtype)
    return _check_finite_result(err, "the relative error", f"exact (its norm {float(norm):.3g} is tiny "
                                f"for {pred.dtype})")
