"""The vectorised reverse-mode engine: ``Tensor`` on NumPy arrays, losses, a small MLP.

Chapter 2 (``book/02_reverse_mode.md``, section "From scalars to tensors"; lab
``notebooks/02_reverse_mode.ipynb``). The scalar engine :class:`lib.autodiff.Value` made
vector-valued: one graph node per array operation instead of one per number, so the
Python overhead is paid per layer, not per weight.

* :class:`Tensor`: NumPy arrays with broadcasting (:func:`_unbroadcast` sums a gradient
  back to its input's shape), ``@``, reductions, indexing, ``relu``/``tanh``/``exp``/``log``;
* :func:`log_softmax` and a fused, stable :func:`cross_entropy`;
* :class:`MLP` and :func:`sgd_step`: a small ReLU network and gradient descent, enough to
  train on the digits at a cost within a small factor of PyTorch.

The graph walk (:func:`lib.autodiff._topological_order`) and the "fresh gradients on every
``backward``" rule are shared with :class:`lib.autodiff.Value`; everything here is also
importable from ``lib.autodiff``.

References: Griewank & Walther (2008), "Evaluating Derivatives", ch. 3 (reverse mode, adjoints
add up); Elliott (2018), "The simple essence of automatic differentiation", sec. 4-5.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .autodiff import _check_gradients, _finite_float, _is_number, _no_backward, _topological_order

__all__ = ["Tensor", "cross_entropy", "log_softmax", "MLP", "sgd_step"]


def _check_finite_array(what: str, a: np.ndarray) -> None:
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        counts = " and ".join(f"{k} {kind}" for k, kind in ((n_nan, "NaN"), (n_inf, "inf")) if k)
        raise ValueError(f"{what} must be finite, got {counts} entries")


def _holds_none(v) -> bool:
    return v is None or isinstance(v, (list, tuple)) and any(_holds_none(u) for u in v)


def _unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes broadcasting added or stretched, giving ``shape``: an input
    broadcast to ``grad.shape`` was used once per copy, so its gradient sums the copies.
    ``(3, 4) -> (4,)`` sums axis 0; ``(3, 4) -> (3, 1)`` sums axis 1, keeping it.
    Reference: NumPy broadcasting; Griewank & Walther (2008), sec. 3.2 (adjoints add up)."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)  # leading axes that broadcasting added
    if extra < 0 or any(n not in (1, m) for n, m in zip(shape, grad.shape[extra:])):
        raise ValueError(f"shape {shape} does not broadcast to the gradient's shape {grad.shape}")
    stretched = tuple(extra + i for i, n in enumerate(shape) if n == 1)
    return grad.sum(axis=tuple(range(extra)) + stretched, keepdims=True).reshape(shape)


def _node(data, parents: tuple, op: str, backward: Callable[[np.ndarray], None]) -> Tensor:
    """A result Tensor; it keeps (and back-propagates to) only parents that need gradients."""
    data = np.asarray(data)
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):  # finite inputs, non-finite result
        raise ValueError(f"Tensor {op}: the result has {int(np.sum(~np.isfinite(data)))} non-finite "
                         f"entries of {data.size} (overflow, or division by zero)")
    out = Tensor.__new__(Tensor)
    out.data, out.grad, out._op = data, None, op
    out._prev = tuple(p for p in parents if p.requires_grad)
    out.requires_grad = bool(out._prev)
    out._backward = backward if out._prev else _no_backward
    return out


def _accumulate(t: Tensor, g: np.ndarray) -> None:
    if t.requires_grad:
        t.grad += _unbroadcast(g, t.data.shape)


class Tensor:
    """A NumPy array in a computation graph, with reverse-mode gradients.

    ``Tensor(data, requires_grad=True)`` wraps ``data`` without copying: arrays keep
    their dtype, numbers and lists become float64. ``.grad`` (shape of ``.data``) is
    None until :meth:`backward`, always without ``requires_grad``. Tensors, arrays,
    numbers mix on either side of ``+ - * / @`` with broadcasting (a number keeps a
    float tensor's dtype); also ``-x``, ``x ** number``. ``backward`` gives fresh
    gradients, as for :class:`lib.autodiff.Value`. Chapter 2, section "From scalars to tensors".
    Data must be finite; an operation whose result is not (overflow, division by
    zero) raises ValueError, and so does ``backward`` when a gradient is not finite.
    Reference: Griewank & Walther (2008), ch. 3; Elliott (2018), sec. 4-5.
    """

    __slots__ = ("data", "grad", "requires_grad", "_backward", "_prev", "_op")
    __array_ufunc__ = None  # `ndarray + Tensor` defers to Tensor.__radd__

    def __init__(self, data, requires_grad: bool = True):
        if _is_number(data) or isinstance(data, (list, tuple)):
            given = data
            try:  # ValueError for ragged lists or strings, TypeError for complex
                data = np.asarray(data, dtype=np.float64)
            except (TypeError, ValueError, OverflowError) as err:
                kind = TypeError if isinstance(err, TypeError) else ValueError
                raise kind(f"Tensor data must be a number or a rectangular nested list of real numbers: "
                           f"{err}") from None
            if np.isnan(data).any() and _holds_none(given):  # NumPy reads None as NaN
                raise TypeError("Tensor data must be a number or a rectangular nested list of real numbers, "
                                "got None in it")
        if not isinstance(data, (np.ndarray, np.generic)) or data.dtype.kind not in "biuf":
            raise TypeError(f"Tensor data must be a real np.ndarray, a number or a list, got "
                            f"{type(data).__name__} {getattr(data, 'dtype', '')}".rstrip())
        _check_finite_array("Tensor data", data)
        if not isinstance(requires_grad, bool):
            raise TypeError(f"requires_grad must be a bool, got {type(requires_grad).__name__}")
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"requires_grad=True needs a floating dtype, got {data.dtype}; "
                            "pass requires_grad=False or convert with .astype(np.float64)")
        self.data, self.grad, self.requires_grad = np.asarray(data), None, requires_grad
        self._backward, self._prev, self._op = _no_backward, (), ""

    @property
    def shape(self) -> tuple:
        """The shape of ``data``. Reference: NumPy ``ndarray.shape``."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions of ``data``. Reference: NumPy ``ndarray.ndim``."""
        return self.data.ndim

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, threshold=20, separator=", ")
        return f"Tensor({body}, dtype={self.data.dtype}, requires_grad={self.requires_grad})"

    def _lift(self, other, op: str) -> Tensor:
        if isinstance(other, Tensor):
            return other
        if isinstance(other, np.ndarray):
            return Tensor(other, requires_grad=False)
        if _is_number(other):  # NumPy treats 0-d arrays as strong types: match our dtype
            dtype = self.data.dtype if self.data.dtype.kind == "f" else None
            return Tensor(np.asarray(other, dtype=dtype), requires_grad=False)
        raise TypeError(f"Tensor {op} expects a Tensor, an np.ndarray or a number, got {type(other).__name__}")

    def __add__(self, other) -> Tensor:
        a, b = self, self._lift(other, "+")
        def _backward(g):
            _accumulate(a, g)
            _accumulate(b, g)
        return _node(a.data + b.data, (a, b), "+", _backward)

    __radd__ = __add__

    def __sub__(self, other) -> Tensor:
        a, b = self, self._lift(other, "-")
        def _backward(g):
            _accumulate(a, g)
            _accumulate(b, -g)
        return _node(a.data - b.data, (a, b), "-", _backward)

    def __rsub__(self, other) -> Tensor:
        return self._lift(other, "-") - self

    def __mul__(self, other) -> Tensor:
        a, b = self, self._lift(other, "*")
        def _backward(g):
            if a.requires_grad:
                _accumulate(a, g * b.data)
            if b.requires_grad:
                _accumulate(b, g * a.data)
        return _node(a.data * b.data, (a, b), "*", _backward)

    __rmul__ = __mul__

    def __truediv__(self, other) -> Tensor:
        a, b = self, self._lift(other, "/")
        q = a.data / b.data
        def _backward(g):  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -q/b
            g_b = g / b.data
            _accumulate(a, g_b)
            if b.requires_grad:
                _accumulate(b, -g_b * q)
        return _node(q, (a, b), "/", _backward)

    def __rtruediv__(self, other) -> Tensor:
        return self._lift(other, "/") / self

    def __neg__(self) -> Tensor:
        def _backward(g):
            self.grad -= g
        return _node(-self.data, (self,), "neg", _backward)

    def __pow__(self, p: float) -> Tensor:
        if isinstance(p, Tensor) or not _is_number(p):
            raise TypeError(f"Tensor ** expects an int or float exponent, got {type(p).__name__}")
        p = p.item() if isinstance(p, np.generic) else p  # a Python number keeps our dtype
        _finite_float("Tensor ** exponent", p)
        def _backward(g):  # d/dx x^p = p x^(p-1), and 0 for p = 0
            if p != 0:
                self.grad += g * (p * self.data ** (p - 1))
        return _node(self.data**p, (self,), f"**{p}", _backward)

    def __matmul__(self, other) -> Tensor:
        """``a @ b``: ``(n, k) @ (k, m) -> (n, m)``, 1-D operands are vectors, stacks broadcast
        (NumPy rules). Gradients ``g b^T`` and ``a^T g``. Reference: Giles (2008), "Collected
        matrix derivative results for forward and reverse mode algorithmic differentiation"."""
        a, b = self, self._lift(other, "@")
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul needs operands with at least 1 dimension, got {a.shape} @ {b.shape}")
        ka, kb = a.shape[-1], b.shape[-2 if b.ndim > 1 else 0]
        if ka != kb:
            raise ValueError(f"matmul inner dimensions differ: {a.shape} @ {b.shape} ({ka} != {kb})")
        def _backward(g):
            a2 = a.data if a.ndim > 1 else a.data[None, :]  # a vector as a 1-row matrix
            b2 = b.data if b.ndim > 1 else b.data[:, None]  # ... or as a 1-column matrix
            g = g if b.ndim > 1 else g[..., None]
            g = g if a.ndim > 1 else np.expand_dims(g, -2)
            if a.requires_grad:
                a.grad += _unbroadcast(np.matmul(g, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
            if b.requires_grad:
                b.grad += _unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g), b2.shape).reshape(b.shape)
        return _node(np.matmul(a.data, b.data), (a, b), "@", _backward)

    def __rmatmul__(self, other) -> Tensor:
        return self._lift(other, "@") @ self

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (None: all), e.g. ``(3, 4) -> (4,)`` for axis 0; the gradient is
        copied back along the summed axes. Reference: Griewank & Walther (2008), sec. 3.2."""
        if not isinstance(keepdims, bool):
            raise TypeError(f"keepdims must be a bool, got {type(keepdims).__name__}")
        kept = np.sum(self.data, axis=axis, keepdims=True)  # NumPy checks `axis`
        def _backward(g):
            self.grad += g.reshape(kept.shape)
        return _node(kept if keepdims else kept.squeeze(axis), (self,), "sum", _backward)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis``, shapes as :meth:`sum`: the sum over the count, so the gradient
        comes from :meth:`sum` and ``/``. Reference: Elliott (2018), sec. 3 (composition)."""
        total = self.sum(axis, keepdims)
        if self.data.size == 0:
            raise ValueError(f"mean over an empty set: shape {self.shape}, axis {axis!r}")
        return total / (self.data.size // max(total.data.size, 1))

    def exp(self) -> Tensor:
        """``e^x`` elementwise (same shape); gradient ``g e^x``. Reference: standard calculus."""
        e = np.exp(self.data)
        def _backward(g):
            self.grad += g * e
        return _node(e, (self,), "exp", _backward)

    def log(self) -> Tensor:
        """``ln x`` elementwise, entries > 0 (else ValueError); gradient ``g / x``. Reference: calculus."""
        if self.data.size and not np.all(self.data > 0):
            raise ValueError(f"log needs positive entries, got minimum {self.data.min()} in shape {self.shape}")
        def _backward(g):
            self.grad += g / self.data
        return _node(np.log(self.data), (self,), "log", _backward)

    def relu(self) -> Tensor:
        """``max(x, 0)`` elementwise; subgradient 0 at 0 (as torch). Reference: Nair & Hinton (2010)."""
        def _backward(g):
            self.grad += g * (self.data > 0)
        return _node(np.maximum(self.data, 0), (self,), "relu", _backward)

    def tanh(self) -> Tensor:
        """``tanh x`` elementwise; gradient ``g (1 - tanh(x)^2)``. Reference: standard calculus."""
        t = np.tanh(self.data)
        def _backward(g):
            self.grad += g * (1 - t * t)
        return _node(t, (self,), "tanh", _backward)

    def reshape(self, *shape) -> Tensor:
        """Same entries, new shape: ``t.reshape(2, 3)`` or ``t.reshape((2, -1))``. Reference: NumPy."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape):
            raise TypeError(f"reshape expects ints, got {shape!r}")
        if not all(-1 <= n < 2**63 for n in shape):
            raise ValueError(f"cannot reshape {self.shape} into {shape}: sizes must be in [0, 2**63) "
                             "or -1 (the one inferred)")
        try:
            data = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape {self.shape} ({self.data.size} entries) into {shape}") from None
        def _backward(g):
            self.grad += g.reshape(self.shape)
        return _node(data, (self,), "reshape", _backward)

    @property
    def T(self) -> Tensor:
        """The transpose of a 2-D tensor, ``(n, m) -> (m, n)``. Reference: linear algebra."""
        if self.ndim != 2:
            raise ValueError(f".T needs a 2-D tensor, got shape {self.shape}")
        def _backward(g):
            self.grad += g.T
        return _node(self.data.T, (self,), "T", _backward)

    def __getitem__(self, index) -> Tensor:
        """NumPy indexing (slices, integer arrays, boolean masks), shapes as in NumPy. The
        gradient is scattered back with ``np.add.at``, so an entry picked twice gets both
        gradients. Reference: NumPy indexing; Griewank & Walther (2008), sec. 3.2."""
        try:
            data = self.data[index]
        except IndexError as err:
            raise IndexError(f"index {index!r} does not fit shape {self.shape}: {err}") from None
        def _backward(g):
            np.add.at(self.grad, index, g)
        return _node(data, (self,), "index", _backward)

    def backward(self, grad=None) -> None:
        """Set ``node.grad`` for every node this depends on. One element: seed 1; otherwise
        ``grad`` (array of this shape, a cotangent ``u``: inputs get ``J^T u``) is required.
        Gradients are zeroed first, so calls agree. Reference: Griewank & Walther (2008), 3.2."""
        if not self.requires_grad:
            raise ValueError("backward() needs a tensor computed from a requires_grad=True tensor")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() on an output of shape {self.shape} needs grad, "
                                 "an array of that shape")
            grad = np.ones_like(self.data)
        if not isinstance(grad, (np.ndarray, np.generic, list, tuple)) and not _is_number(grad):
            raise TypeError(f"grad must be an array of shape {self.shape}, got {type(grad).__name__}")
        grad = np.asarray(grad)
        if grad.dtype.kind not in "biuf":
            raise TypeError(f"grad must hold real numbers, got dtype {grad.dtype}")
        if grad.shape != self.shape:
            raise ValueError(f"grad must have the output's shape {self.shape}, got {grad.shape}")
        _check_finite_array("grad", grad)
        order = _topological_order(self)
        for node in order:
            node.grad = np.zeros_like(node.data)
        self.grad += grad
        for node in reversed(order):
            node._backward(node.grad)
        _check_gradients(order, allow_inf=False)


# ---------------------------------------------------------------- losses


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``x - logsumexp(x)`` along ``axis`` (shape of ``x``), stable (max subtracted first);
    backward ``g - softmax(x) * sum(g, axis)``. Reference: Goodfellow et al. (2016), 6.2.2.3."""
    if not isinstance(x, Tensor):
        raise TypeError(f"log_softmax expects a Tensor, got {type(x).__name__}")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, got {type(axis).__name__} ({axis!r})")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of bounds for shape {x.shape}: it must be in "
                         f"[{-x.ndim}, {x.ndim - 1}]")
    if x.shape[axis] == 0:
        raise ValueError(f"log_softmax needs at least one entry along axis {axis}, got shape {x.shape}")
    shifted = x.data - x.data.max(axis=axis, keepdims=True)  # NumPy checks `axis`
    y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    def _backward(g):
        x.grad += g - np.exp(y) * g.sum(axis=axis, keepdims=True)
    return _node(y, (x,), "log_softmax", _backward)


def cross_entropy(logits: Tensor, targets: np.ndarray) -> Tensor:
    """Mean over rows of ``-log softmax(z)[i, targets[i]]``: ``z`` ``(n, k)``, integer ``targets``
    ``(n,)`` in ``[0, k)``, scalar result. ``logsumexp(z) - z[target]`` after subtracting each
    row's maximum (logits of 1000 do not overflow); fused backward ``(softmax - onehot) / n``.
    Reference: Goodfellow, Bengio & Courville (2016), "Deep Learning", sec. 6.2.2.3.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a Tensor, got {type(logits).__name__}")
    if logits.ndim != 2 or 0 in logits.shape:
        raise ValueError(f"logits must have shape (n, k) with n, k >= 1, got {logits.shape}")
    n, k = logits.shape
    if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be an integer np.ndarray (e.g. y.numpy()), got "
                        f"{type(targets).__name__} {getattr(targets, 'dtype', '')}".rstrip())
    if targets.shape != (n,):
        raise ValueError(f"targets must have shape ({n},) to match logits {logits.shape}, got {targets.shape}")
    if targets.min() < 0 or targets.max() >= k:
        raise ValueError(f"targets must lie in [0, {k}), got range [{targets.min()}, {targets.max()}]")
    shifted = logits.data - logits.data.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = np.mean(np.log(s[:, 0]) - shifted[rows, targets]).astype(logits.data.dtype)
    def _backward(g):
        p = e / s  # softmax, a fresh array we may edit in place
        p[rows, targets] -= 1
        p *= g / n
        logits.grad += p
    return _node(loss, (logits,), "cross_entropy", _backward)


# ---------------------------------------------------------------- a small network


class MLP:
    """ReLU network ``sizes[0] -> ... -> sizes[-1]``: ``mlp(x)`` maps ``(n, sizes[0])`` to logits
    ``(n, sizes[-1])``. Weights ``(fan_in, fan_out)`` ~ ``U(+-sqrt(6/fan_in))`` from
    ``np.random.default_rng(seed)``, biases 0. Chapter 2 lab.
    Reference: He, Zhang, Ren & Sun (2015), "Delving Deep into Rectifiers" (the init).
    """

    def __init__(self, sizes: list[int], seed: int = 0, dtype=np.float32):
        if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
            raise ValueError(f"sizes must be a list of at least 2 layer widths, got {sizes!r}")
        if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 1 <= n < 2**63
                   for n in sizes):
            raise ValueError(f"layer widths must be positive ints, got {sizes!r} (each below 2**63)")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be a NumPy floating dtype, got {dtype!r}") from None
        if dtype.kind != "f":
            raise TypeError(f"dtype must be a floating dtype, got {dtype}")
        rng = np.random.default_rng(seed)
        self.sizes = [int(n) for n in sizes]
        self.weights, self.biases = [], []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            bound = math.sqrt(6.0 / fan_in)
            self.weights.append(Tensor(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype)))
            self.biases.append(Tensor(np.zeros(fan_out, dtype=dtype)))

    def __call__(self, x: Tensor) -> Tensor:
        """Logits ``(n, sizes[-1])`` for inputs ``(n, sizes[0])`` (Tensor or array).
        Reference: Goodfellow et al. (2016), ch. 6."""
        if isinstance(x, np.ndarray):
            x = Tensor(x, requires_grad=False)
        if not isinstance(x, Tensor):
            raise TypeError(f"MLP input must be a Tensor or np.ndarray, got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != self.sizes[0]:
            raise ValueError(f"MLP input must have last dimension {self.sizes[0]}, got shape {x.shape}")
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ W + b
            x = x.relu() if i < len(self.weights) - 1 else x
        return x

    def parameters(self) -> list[Tensor]:
        """``[W_1, b_1, W_2, b_2, ...]``, the tensors :func:`sgd_step` updates. Reference: none."""
        return [t for pair in zip(self.weights, self.biases) for t in pair]


def sgd_step(params: list[Tensor], lr: float) -> None:
    """In place ``p.data -= lr * p.grad`` for every ``p`` (any shapes; call ``backward()`` first).
    Reference: Robbins & Monro (1951); Goodfellow et al. (2016), sec. 8.3.1."""
    if not _is_number(lr):
        raise TypeError(f"lr must be a number, got {type(lr).__name__}")
    if not _finite_float("lr", lr) > 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if isinstance(params, (Tensor, str)) or not hasattr(params, "__iter__"):
        raise TypeError(f"params must be a list of Tensors, got {type(params).__name__}")
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"params[{i}] must be a Tensor, got {type(p).__name__}")
        if p.grad is None:
            raise ValueError(f"params[{i}] (shape {p.shape}) has no gradient; call backward() first")
        _check_finite_array(f"params[{i}].grad", p.grad)
        with np.errstate(over="ignore"):
            if not np.all(np.isfinite(p.data - lr * p.grad)):
                raise ValueError(f"lr={lr!r} times params[{i}].grad overflows {p.data.dtype}")
    for p in params:
        p.data -= lr * p.grad
