"""Reverse-mode automatic differentiation from scratch: the scalar engine and the graph walk.

Chapter 2 (``book/02_reverse_mode.md``, lab ``notebooks/02_reverse_mode.ipynb``).

* :class:`Value`: a float that records the operations applied to it; ``out.backward()``
  applies the chain rule in reverse topological order (:func:`_topological_order`),
  leaving ``d out / d node`` in every ``node.grad``.
* The vectorised engine of the same chapter, :class:`~lib.tensor.Tensor` with
  :func:`~lib.tensor.log_softmax`, :func:`~lib.tensor.cross_entropy`, :class:`~lib.tensor.MLP`
  and :func:`~lib.tensor.sgd_step`, lives in ``lib/tensor.py`` and shares this module's graph
  walk; it is also importable from here (``from lib.autodiff import Tensor``), so the two
  engines read as one interface.

Each operation computes its output and, right beside it, a ``_backward`` closure:
the vector-Jacobian product taking the output's gradient ``g`` to its inputs'
gradients (handed ``g``, it holds no reference to its output: no reference cycles).
Backward costs a small constant times forward, whatever the number of inputs:
the cheap gradient principle.

References: Elliott (2018), "The simple essence of automatic differentiation";
Griewank & Walther (2008), "Evaluating Derivatives", ch. 3-4 (reverse mode, the
cheap gradient principle); Karpathy's micrograd as the model for the interface
(the code here is written anew).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

_TENSOR_ENGINE = ("Tensor", "cross_entropy", "log_softmax", "MLP", "sgd_step")  # from lib/tensor.py
__all__ = ["Value", *_TENSOR_ENGINE]

_NUMBER = (int, float, np.integer, np.floating)


def _is_number(x) -> bool:
    return isinstance(x, _NUMBER) and not isinstance(x, bool)


class _Overflow(ValueError, OverflowError):
    """A result beyond float64: a ValueError, as every bad input in ``lib``, that is also the
    OverflowError of Python's float arithmetic (as NumPy's AxisError is ValueError and IndexError)."""


def _finite_float(what: str, x) -> float:
    """A real number as a finite float, else ValueError naming ``what``."""
    try:
        value = float(x)
    except OverflowError:
        raise ValueError(f"{what} must fit a float64, got an int of {int(x).bit_length()} bits") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}")
    return value


def _no_backward(g) -> None:
    """Leaves and constants: nothing to pass on."""


def _topological_order(root) -> list:
    """Nodes reachable from ``root`` via ``_prev``, once each, inputs first (iterative DFS)."""
    order, seen = [], {root}
    stack = [(root, iter(root._prev))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent not in seen:
                seen.add(parent)
                stack.append((parent, iter(parent._prev)))
                break
        else:  # every parent is placed: the node comes after them
            stack.pop()
            order.append(node)
    return order


# ---------------------------------------------------------------- scalar engine


class Value:
    """A scalar node of a computation graph: ``data``, ``grad`` and how it was made.

    Python numbers work on either side of ``+ - * /``; also ``** number``, unary
    minus, :meth:`relu`, :meth:`tanh`, :meth:`exp`, :meth:`log`. Shapes: all
    Python floats. Chapter 2, section "A scalar engine".

    ``data`` must be finite: an operation whose result overflows float64 raises
    ValueError (also an OverflowError); division by 0 and ``0 ** negative`` raise
    ZeroDivisionError, as Python's floats do. A gradient may be infinite (the slope
    of ``x ** 0.5`` at 0) but never NaN: ``backward`` raises ValueError instead.

    ``backward()`` gives fresh gradients: it zeroes ``grad`` on every node reachable
    from the output, then seeds the output with 1. So ``node.grad`` is ``d out / d node``
    for the last call and calling twice changes nothing (engines that accumulate
    into ``grad``, micrograd among them, give inflated gradients on a second call).
    To sum over losses, add them and call once.
    Reference: Griewank & Walther (2008), ch. 3; Karpathy's micrograd (interface).
    """

    __slots__ = ("data", "grad", "_backward", "_prev", "_op")

    def __init__(self, data: float, _children: tuple = (), _op: str = "",
                 _backward: Callable[[float], None] = _no_backward):
        if not _is_number(data):
            raise TypeError(f"Value data must be a real number, got {type(data).__name__} ({data!r})")
        if _op and not math.isfinite(data):  # finite inputs, non-finite result
            raise _Overflow(f"Value {_op}: the result overflows float64 ({data})")
        self.data, self.grad = _finite_float("Value data", data), 0.0
        self._prev, self._op, self._backward = tuple(_children), _op, _backward

    @classmethod
    def _result(cls, data: float, children: tuple, op: str, backward) -> Value:
        """An operation's output: ``data`` is a float computed from finite inputs, so the
        only check left is overflow (``data - data`` is NaN for inf and NaN). Skips the
        argument checks of ``__init__``: this is the engine's hot path."""
        if data - data != 0.0:
            raise _Overflow(f"Value {op}: the result overflows float64 ({data})")
        out = cls.__new__(cls)
        out.data, out.grad, out._prev, out._op, out._backward = data, 0.0, children, op, backward
        return out

    def __repr__(self) -> str:
        return f"Value(data={self.data!r}, grad={self.grad!r})"

    @staticmethod
    def _lift(other, op: str) -> Value:
        if isinstance(other, Value):
            return other
        if _is_number(other):
            return Value(other)
        raise TypeError(f"Value {op} expects a Value or a real number, got {type(other).__name__} ({other!r})")

    def __add__(self, other) -> Value:
        other = Value._lift(other, "+")
        def _backward(g):
            self.grad += g
            other.grad += g
        return Value._result(self.data + other.data, (self, other), "+", _backward)

    __radd__ = __add__

    def __sub__(self, other) -> Value:
        other = Value._lift(other, "-")
        def _backward(g):
            self.grad += g
            other.grad -= g
        return Value._result(self.data - other.data, (self, other), "-", _backward)

    def __rsub__(self, other) -> Value:
        return Value._lift(other, "-") - self

    def __mul__(self, other) -> Value:
        other = Value._lift(other, "*")
        def _backward(g):
            self.grad += g * other.data
            other.grad += g * self.data
        return Value._result(self.data * other.data, (self, other), "*", _backward)

    __rmul__ = __mul__

    def __truediv__(self, other) -> Value:
        other = Value._lift(other, "/")
        q = self.data / other.data  # ZeroDivisionError for 0
        def _backward(g):  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -q/b
            self.grad += g / other.data
            other.grad -= g * q / other.data
        return Value._result(q, (self, other), "/", _backward)

    def __rtruediv__(self, other) -> Value:
        return Value._lift(other, "/") / self

    def __neg__(self) -> Value:
        def _backward(g):
            self.grad -= g
        return Value._result(-self.data, (self,), "neg", _backward)

    def __pow__(self, p: float) -> Value:
        if isinstance(p, Value):
            raise TypeError("Value ** Value is not supported: the exponent must be an int or float, "
                            "got Value; write (b * a.log()).exp() for a ** b with a > 0")
        if not _is_number(p):
            raise TypeError(f"Value ** expects an int or float exponent, got {type(p).__name__} ({p!r})")
        _finite_float("Value ** exponent", p)
        p = p.item() if isinstance(p, np.generic) else p  # NumPy scalars would round to their own dtype
        x = self.data
        if x < 0 and not float(p).is_integer():
            raise ValueError(f"Value ** {p}: a negative base ({x}) needs an integer exponent")
        # d/dx x^p = p x^(p-1); 0 for p = 0; +inf at x = 0 for 0 < p < 1 (as torch)
        try:
            slope = 0.0 if p == 0 else math.inf if x == 0 and p < 1 else p * x ** (p - 1)
            value = x**p
        except OverflowError:
            raise _Overflow(f"Value ** {p}: {x} ** {p} overflows float64") from None
        def _backward(g):
            self.grad += g * slope
        return Value._result(value, (self,), f"**{p}", _backward)

    def relu(self) -> Value:
        """``max(x, 0)``; at 0 the subgradient 0 (as torch). Reference: Nair & Hinton (2010)."""
        x = self.data
        def _backward(g):
            if x > 0:
                self.grad += g
        return Value._result(x if x > 0 else 0.0, (self,), "relu", _backward)

    def tanh(self) -> Value:
        """``tanh x``, derivative ``1 - tanh(x)^2``. Reference: standard calculus."""
        t = math.tanh(self.data)
        def _backward(g):
            self.grad += g * (1.0 - t * t)
        return Value._result(t, (self,), "tanh", _backward)

    def exp(self) -> Value:
        """``e^x``, its own derivative (ValueError, also an OverflowError, past x ~ 709.78).
        Reference: standard calculus."""
        if self.data > 709.782712893384:  # log of the largest float64
            raise _Overflow(f"Value exp: exp({self.data}) overflows float64 (x must be <= 709.78)")
        e = math.exp(self.data)
        def _backward(g):
            self.grad += g * e
        return Value._result(e, (self,), "exp", _backward)

    def log(self) -> Value:
        """``ln x`` for ``x > 0`` (ValueError otherwise), derivative ``1/x``. Reference: calculus."""
        x = self.data
        if x <= 0:
            raise ValueError(f"log needs a positive value, got {x}")
        def _backward(g):
            self.grad += g / x
        return Value._result(math.log(x), (self,), "log", _backward)

    def backward(self) -> None:
        """Set ``node.grad = d self / d node`` on every node this one depends on: zero them,
        seed ``self.grad = 1``, run each ``_backward`` in reverse topological order (a node
        has its full gradient before passing it on). Reference: Griewank & Walther (2008), sec. 3.2."""
        order = _topological_order(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            if node._prev:  # leaves have nothing to pass on
                node._backward(node.grad)
        for node in order:
            if node.grad != node.grad:  # NaN: an infinite slope met a zero one
                raise ValueError(f"backward: the gradient of a {node._op or 'leaf'} node is not finite "
                                 "(NaN: an infinite slope such as x ** 0.5 at 0 met a zero one)")


def _check_gradients(order: list, allow_inf: bool) -> None:
    """No NaN gradient passed on quietly (inf * 0: an infinite slope met a zero one), nor an
    infinite one unless ``allow_inf`` (:class:`Value` keeps torch's inf slope of ``x ** 0.5`` at 0)."""
    for node in order:
        bad = np.isnan(node.grad) if allow_inf else ~np.isfinite(node.grad)
        if np.any(bad):
            raise ValueError(f"backward: the gradient of a {node._op or 'leaf'} node is not finite "
                             "(an infinite slope such as x ** 0.5 at 0, or an overflow)")


def __getattr__(name: str):
    """``lib.autodiff.Tensor`` and friends, loaded from ``lib/tensor.py`` on first use (that
    module imports this one, so a top-level import here would be circular)."""
    if name in _TENSOR_ENGINE:
        from . import tensor
        return getattr(tensor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
