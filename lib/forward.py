"""Forward mode: dual numbers, Jacobian-vector products and forward gradients.

Chapter 3 (``book/03_forward_mode.md``, lab ``notebooks/03_forward_mode.ipynb``).

* :class:`Dual` numbers ``a + b*epsilon`` with ``epsilon**2 = 0`` carry a value
  and its directional derivative through every operation: forward-mode
  automatic differentiation in a few lines.
* :func:`jvp` pushes a tangent ``v`` through a tensor program, giving
  ``(f(x), J v)`` in one pass; it uses torch's dual tensors
  (``torch.autograd.forward_ad``), the tensor version of :class:`Dual`.
  :func:`vjp` is its reverse-mode counterpart ``(f(x), J^T u)``.
* :func:`jacobian_forward` (one JVP per input) and :func:`jacobian_reverse`
  (one VJP per output) show why the shape of ``f`` decides the mode.
* :func:`forward_gradient`: ``g(x) = (grad f(x) . v) v`` with ``v ~ N(0, I)``,
  an unbiased estimate of the gradient from a single forward pass.

References: Baydin, Pearlmutter, Syme, Wood & Torr (2022), "Gradients without
Backpropagation"; Griewank & Walther (2008), "Evaluating Derivatives", ch. 3;
Wengert (1964) for the forward mode.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.autograd.forward_ad as fwAD

from .calculus import _check_finite

__all__ = ["Dual", "derivative", "sin", "cos", "exp", "log", "tanh", "sqrt",
           "jvp", "vjp", "jacobian_forward", "jacobian_reverse", "forward_gradient"]

_NUMBER = (int, float)


def _real(what: str, v) -> float:
    """``v`` as a float: TypeError unless a real number, ValueError if NaN or too large a Python int."""
    if isinstance(v, bool) or not isinstance(v, _NUMBER):
        raise TypeError(f"{what} must be a real number, got {type(v).__name__} ({v!r})")
    try:
        value = float(v)
    except OverflowError:
        raise ValueError(f"{what} must fit a float64, got an int of {v.bit_length()} bits") from None
    if math.isnan(value):
        raise ValueError(f"{what} must not be NaN, got {v}")
    return value


class Dual:
    """A dual number ``primal + tangent * epsilon`` with ``epsilon**2 = 0``.

    Arithmetic on duals is arithmetic on first-order Taylor expansions:
    ``(a + b e)(c + d e) = ac + (ad + bc) e``. Seeding ``Dual(x, 1.0)`` and
    evaluating ``f`` gives ``Dual(f(x), f'(x))``. Works with Python numbers
    on either side of ``+ - * / **``. Chapter 3, section "Dual numbers".

    The primal must be finite and the tangent not NaN (it may be infinite: the
    slope of ``sqrt`` at 0), so an operation that overflows raises ValueError;
    division by a zero primal and ``0 ** negative`` raise ZeroDivisionError,
    as Python's float arithmetic does.

    Reference: Clifford (1873) for dual numbers; Wengert (1964) for their use
    in forward-mode differentiation.
    """

    __slots__ = ("primal", "tangent")

    def __init__(self, primal: float, tangent: float = 0.0):
        primal, tangent = _real("Dual primal", primal), _real("Dual tangent", tangent)
        if not math.isfinite(primal):
            raise ValueError(f"Dual primal must be finite, got {primal} (an overflow?)")
        self.primal = primal
        self.tangent = tangent

    @staticmethod
    def _lift(other) -> "Dual":
        if isinstance(other, Dual):
            return other
        if isinstance(other, bool) or not isinstance(other, _NUMBER):
            raise TypeError(f"cannot combine Dual with {type(other).__name__} ({other!r})")
        return Dual(other, 0.0)  # ValueError for NaN, inf or an int beyond float64

    def __add__(self, other):
        o = Dual._lift(other)
        return Dual(self.primal + o.primal, self.tangent + o.tangent)

    __radd__ = __add__

    def __neg__(self):
        return Dual(-self.primal, -self.tangent)

    def __sub__(self, other):
        return self + (-Dual._lift(other))

    def __rsub__(self, other):
        return Dual._lift(other) + (-self)

    def __mul__(self, other):
        o = Dual._lift(other)
        return Dual(self.primal * o.primal, self.primal * o.tangent + self.tangent * o.primal)

    __rmul__ = __mul__

    def __truediv__(self, other):
        o = Dual._lift(other)
        if o.primal == 0.0:
            raise ZeroDivisionError("Dual division by a dual number with primal 0")
        q = self.primal / o.primal
        return Dual(q, (self.tangent - q * o.tangent) / o.primal)

    def __rtruediv__(self, other):
        return Dual._lift(other) / self

    def __pow__(self, p):
        if isinstance(p, Dual):  # a**b = exp(b log a), needs a > 0
            return self._pow_dual(p)
        if isinstance(p, bool) or not isinstance(p, _NUMBER):
            raise TypeError(f"Dual exponent must be a number or Dual, got {type(p).__name__}")
        if not math.isfinite(_real("Dual exponent", p)):
            raise ValueError(f"Dual exponent must be finite, got {p}")
        if p == 0:
            return Dual(1.0, 0.0)
        if self.primal < 0 and not float(p).is_integer():
            raise ValueError(f"Dual ** {p}: a negative base ({self.primal}) needs an integer exponent")
        try:
            return Dual(self.primal**p, p * self.primal ** (p - 1) * self.tangent)
        except OverflowError:
            raise ValueError(f"Dual ** {p}: {self.primal} ** {p} overflows float64") from None

    def __rpow__(self, base):
        return Dual._lift(base) ** self

    def _pow_dual(self, p: Dual) -> Dual:
        """``a ** b`` for a Dual exponent: ``d(a^b) = b a^(b-1) da + a^b log(a) db``, ``a > 0``.

        Composing ``exp(b * log(a))`` would be shorter, but at a tiny base ``log``'s tangent
        ``da / a`` overflows (``a = 1e-313``) where the answer is modest: the first product is
        taken in log space instead, ``exp(log|b| + log|da| + (b - 1) log a)``.
        """
        a, b = self.primal, p.primal
        log_a = _log(a)
        try:
            value = a**b
            pull = self.tangent * b  # zero, or inf for an inf tangent; else its size comes from log space
            if self.tangent != 0 and b != 0 and math.isfinite(self.tangent):
                pull = math.copysign(math.exp(math.log(abs(b)) + math.log(abs(self.tangent)) + (b - 1) * log_a), pull)
            return Dual(value, pull + value * log_a * p.tangent)
        except OverflowError:
            raise ValueError(f"Dual ** Dual: {a} ** {b} or its derivative overflows float64") from None

    def __repr__(self) -> str:
        return f"Dual({self.primal!r}, {self.tangent!r})"


def _unary(name: str, fn, dfn):
    def op(x):
        if not isinstance(x, Dual) and (isinstance(x, bool) or not isinstance(x, _NUMBER)):
            raise TypeError(f"{name} expects a number or Dual, got {type(x).__name__}")
        a = x.primal if isinstance(x, Dual) else _real(f"{name} argument", x)
        if not math.isfinite(a):
            raise ValueError(f"{name} expects a finite number, got {a}")
        try:
            return Dual(fn(a), dfn(a) * x.tangent) if isinstance(x, Dual) else fn(a)
        except OverflowError:
            raise ValueError(f"{name}({a}) overflows float64") from None

    op.__name__ = name
    op.__doc__ = (f"``{name}`` of a number or :class:`Dual` (derivative rule applied to the "
                  f"tangent). Chapter 3.\n\n    Reference: standard calculus.")
    return op


def _log(a: float) -> float:
    if a <= 0:
        raise ValueError(f"log needs a positive argument, got {a}")
    return math.log(a)


def _sqrt(a: float) -> float:
    if a < 0:
        raise ValueError(f"sqrt needs a non-negative argument, got {a}")
    return math.sqrt(a)


sin = _unary("sin", math.sin, math.cos)
cos = _unary("cos", math.cos, lambda a: -math.sin(a))
exp = _unary("exp", math.exp, math.exp)
log = _unary("log", _log, lambda a: 1.0 / a)
tanh = _unary("tanh", math.tanh, lambda a: 1.0 - math.tanh(a) ** 2)
sqrt = _unary("sqrt", _sqrt, lambda a: 0.5 / math.sqrt(a) if a > 0 else math.inf)


def derivative(f: Callable[[Dual], Dual], x: float) -> tuple[float, float]:
    """``(f(x), f'(x))`` for a scalar function written with :class:`Dual`-aware operations.

    Reference: Wengert (1964), forward mode with dual numbers.
    """
    if not math.isfinite(_real("x", x)):
        raise ValueError(f"x must be finite, got {x}")
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    out = f(Dual(x, 1.0))
    if not isinstance(out, Dual):  # f did not depend on x
        if isinstance(out, bool) or not isinstance(out, _NUMBER):
            raise TypeError(f"f must return a Dual or a real number, got {type(out).__name__}")
        if isinstance(out, float) and not math.isfinite(out):
            raise ValueError(f"f returned a non-finite value {out} at x={x}")
        _real("f's value", out)  # an int beyond float64
        return float(out), 0.0
    return out.primal, out.tangent


# ---------------------------------------------------------------- tensors

def _check_x(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        raise TypeError(f"x must be a floating torch.Tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    return _check_finite("x", x)


def _check_f(f) -> None:
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")


def _output(out, x) -> torch.Tensor:
    """What ``f`` returned: a tensor without NaN or inf."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"f must return a tensor, got {type(out).__name__}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"f returned a non-finite value at x (finite, shape {tuple(x.shape)})")
    return out


def _check_pair(x, v, vname: str) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(v, torch.Tensor):
        raise TypeError(f"x and {vname} must be torch.Tensors, got {type(x).__name__} and "
                        f"{type(v).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"x must have a floating dtype, got {x.dtype}")
    if not torch.is_floating_point(v):
        raise TypeError(f"{vname} must have a floating dtype, got {v.dtype}")
    if v.shape != x.shape:
        raise ValueError(f"{vname} must have the shape of x {tuple(x.shape)}, got {tuple(v.shape)}")
    _check_finite("x", x)
    _check_finite(vname, v)


def jvp(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, v: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(x), J_f(x) v)`` by forward mode, in one evaluation of ``f``.

    ``x`` and the tangent ``v`` have the same shape; the result pair has the
    shape of ``f(x)``. Same convention as ``torch.func.jvp(f, (x,), (v,))``.
    Implemented with dual tensors (``torch.autograd.forward_ad``): every
    operation of ``f`` computes its output's tangent from its inputs' tangents,
    exactly as :class:`Dual` does for scalars.

    Reference: Griewank & Walther (2008), ch. 3 (tangent propagation); Baydin
    et al. (2022), section 2.
    """
    _check_pair(x, v, "v")
    _check_f(f)
    with fwAD.dual_level():
        out = f(fwAD.make_dual(x.detach(), v.detach().to(x.dtype)))
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"f must return a tensor, got {type(out).__name__}")
        primal, tangent = fwAD.unpack_dual(out)
        primal = _output(primal.detach().clone(), x)
        tangent = torch.zeros_like(primal) if tangent is None else tangent.detach().clone()
    if not bool(torch.isfinite(tangent).all()):
        raise ValueError("the derivative of f along v is not finite at x (is f differentiable there?)")
    return primal, tangent


def vjp(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, u: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(x), J_f(x)^T u)`` by reverse mode: one evaluation, one backward pass.

    ``u`` has the shape of ``f(x)``; the second result has the shape of ``x``.
    Reference: Griewank & Walther (2008), ch. 3 (adjoint propagation).
    """
    x = _check_x(x)
    _check_f(f)
    if not isinstance(u, torch.Tensor) or not torch.is_floating_point(u):
        raise TypeError(f"u must be a floating torch.Tensor, got {getattr(u, 'dtype', type(u).__name__)}")
    _check_finite("u", u)
    xg = x.detach().requires_grad_(True)
    out = _output(f(xg), x)
    if u.shape != out.shape:
        raise ValueError(f"u must be a tensor of the output shape {tuple(out.shape)}, got {tuple(u.shape)}")
    if not out.requires_grad:
        return out.detach(), torch.zeros_like(x)
    (g,) = torch.autograd.grad(out, xg, u.to(out.dtype), allow_unused=True)
    if g is not None and not bool(torch.isfinite(g).all()):
        raise ValueError("the derivative of f is not finite at x (is f differentiable there?)")
    return out.detach(), torch.zeros_like(x) if g is None else g


def jacobian_forward(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The Jacobian from ``n = x.numel()`` JVPs, one per input direction ``e_i``.

    Returns shape ``f(x).shape + x.shape``. Cost: ``n`` forward passes, so cheap
    when inputs are few. Reference: Griewank & Walther (2008), ch. 3.
    """
    x = _check_x(x)
    _check_f(f)
    if x.numel() == 0:  # no directions: the Jacobian is empty, of shape f(x).shape + (0,)
        return torch.zeros(jvp(f, x, x)[0].shape + x.shape, dtype=x.dtype, device=x.device)
    eye = torch.eye(x.numel(), dtype=x.dtype, device=x.device)
    cols = [jvp(f, x, e.reshape(x.shape))[1] for e in eye]
    out_shape = cols[0].shape
    return torch.stack(cols, dim=-1).reshape(out_shape + x.shape)  # a tuple: both may be 0-dim


def jacobian_reverse(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The Jacobian from ``m = f(x).numel()`` VJPs, one per output direction.

    Returns shape ``f(x).shape + x.shape``. Cost: ``m`` backward passes, so cheap
    when outputs are few (a loss has one). Reference: Griewank & Walther (2008), ch. 3.
    """
    x = _check_x(x)
    _check_f(f)
    xg = x.detach().requires_grad_(True)
    out = _output(f(xg), x)
    if not out.requires_grad or out.numel() == 0:  # f does not depend on x, or has no outputs
        return torch.zeros(out.shape + x.shape, dtype=x.dtype, device=x.device)
    rows = []
    for i in range(out.numel()):
        u = torch.zeros(out.numel(), dtype=out.dtype, device=out.device)
        u[i] = 1.0
        (g,) = torch.autograd.grad(out, xg, u.reshape(out.shape), retain_graph=True, allow_unused=True)
        rows.append(torch.zeros_like(x) if g is None else g)
    if not all(bool(torch.isfinite(r).all()) for r in rows):
        raise ValueError("the derivative of f is not finite at x (is f differentiable there?)")
    return torch.stack(rows).reshape(out.shape + x.shape)  # a tuple: both may be 0-dim


def forward_gradient(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Forward-gradient estimate ``mean_k (grad f(x) . v_k) v_k`` with ``v_k ~ N(0, I)``.

    Each term needs one JVP (``grad f . v`` is the directional derivative),
    never a backward pass. Unbiased because ``E[v v^T] = I``; its variance
    grows with the dimension ``n``: ``E||g - grad f||^2 = (n + 1) ||grad f||^2``
    per sample (chapter 3 derives it).

    Args:
        f: scalar function of a tensor.
        x: floating tensor, any shape.
        n_samples: number of directions averaged.
        generator: optional ``torch.Generator`` (on ``x``'s device) for the directions.
    Returns:
        Tensor shaped like ``x``.
    Reference: Baydin et al. (2022), "Gradients without Backpropagation", eq. (2)
    and Algorithm 1.
    """
    x = _check_x(x)
    _check_f(f)
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    total = torch.zeros_like(x)
    for _ in range(n_samples):
        v = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        value, dir_deriv = jvp(f, x, v)
        if value.numel() != 1:
            raise ValueError(f"f must return a scalar, got shape {tuple(value.shape)}")
        total += dir_deriv.reshape(()) * v
    return total / n_samples
