"""Derivatives as numbers: finite differences, the complex step, gradient checking.

Chapter 1 (``book/01_derivatives.md``, lab ``notebooks/01_derivatives.ipynb``)
teaches these as the numerical view of the derivative as a linear map: each
partial derivative is the linear map applied to a basis vector, estimated from a
few function values.

* :func:`finite_difference` and :func:`jacobian_fd`: forward differences (error
  O(h)) and central differences (error O(h^2)), each fighting round-off that
  grows like eps/h.
* :func:`complex_step`: Im f(x + ih)/h has no subtraction, hence no
  cancellation: it reaches machine precision with h = 1e-20 (Squire & Trapp
  1998; Martins, Sturdza & Alonso 2003).
* :func:`gradcheck`: the worst mismatch between autograd and central
  differences, the test every hand-written backward rule should pass.

References: Bright, Edelman & Johnson (2025), "Matrix Calculus (for Machine
Learning and Beyond)", the derivative as a linear operator and its
finite-difference approximation; Nocedal & Wright (2006),
"Numerical Optimization", section 8.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["default_step", "finite_difference", "complex_step", "jacobian_fd", "gradcheck",
           "GradcheckReport"]

_SCHEMES = ("central", "forward")
_FLOAT_MAX = torch.finfo(torch.float64).max


def _check_finite(name: str, t: torch.Tensor) -> torch.Tensor:
    """Refuse NaN and inf entries with a ValueError naming ``name`` (shared by lib's torch modules)."""
    if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
        counts = ((int(torch.isnan(t).sum()), "NaN"), (int(torch.isinf(t).sum()), "inf"))
        what = " and ".join(f"{k} {kind}" for k, kind in counts if k)
        raise ValueError(f"{name} must be finite, got a tensor with {what} entries")
    return t


def _check_x(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"x must have a real floating dtype, got {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"x must have at least one element, got shape {tuple(x.shape)}")
    return _check_finite("x", x.detach())


def _is_finite_real(v) -> bool:
    """A real number (not bool) that fits a finite float64."""
    return not isinstance(v, bool) and isinstance(v, (int, float)) and abs(v) <= _FLOAT_MAX


def _check_h(h, dtype: torch.dtype) -> float:
    if not _is_finite_real(h) or not h > 0:
        raise ValueError(f"step h must be a positive finite number, got {h!r}")
    info = torch.finfo(dtype)
    if not info.tiny <= h <= info.max:  # it would round to 0 or inf in x's dtype
        raise ValueError(f"step h={h:g} is not representable in {dtype}: it must lie in "
                         f"[{info.tiny:g}, {info.max:g}]")
    return float(h)


def _output(value, where: str, at: str = "x") -> torch.Tensor:
    """What ``f`` returned at the point ``at``: a tensor without NaN or inf."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{where}: f must return a tensor, got {type(value).__name__}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{where}: f returned a non-finite value at {at} "
                         f"({value.detach().reshape(-1)[:3].tolist()}...)")
    return value


def _scalar(value, where: str) -> torch.Tensor:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{where}: f must return a tensor, got {type(value).__name__}")
    if value.numel() != 1:
        raise ValueError(f"{where}: f must return a scalar, got shape {tuple(value.shape)}")
    return value.reshape(())


def default_step(dtype: torch.dtype, scheme: str = "central") -> float:
    """The step that balances truncation and round-off error.

    For a forward difference the error is about ``h |f''| / 2 + 2 eps |f| / h``,
    smallest near ``h = sqrt(eps)``; for a central difference about
    ``h^2 |f'''| / 6 + eps |f| / h``, smallest near ``h = eps**(1/3)`` (with
    function and derivatives of order one). ``eps`` is the machine epsilon of
    ``dtype``. Chapter 1 derives both.
    Reference: Nocedal & Wright (2006), section 8.1.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a real floating torch.dtype, got {dtype!r}")
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {_SCHEMES}, got {scheme!r}")
    eps = torch.finfo(dtype).eps
    return eps ** (1 / 2) if scheme == "forward" else eps ** (1 / 3)


def finite_difference(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    h: float | None = None,
    scheme: str = "central",
) -> torch.Tensor:
    """Gradient of a scalar function ``f`` at ``x`` by finite differences.

    ``scheme="central"``: ``(f(x + h e_i) - f(x - h e_i)) / 2h`` (error O(h^2));
    ``scheme="forward"``: ``(f(x + h e_i) - f(x)) / h`` (error O(h)). One
    (forward) or two (central) evaluations per entry of ``x``. ``h`` defaults to
    :func:`default_step` of ``x.dtype``, scaled by ``max(1, |x_i|)`` per entry so
    the perturbation is relative for large ``x_i``.

    Args:
        f: maps a tensor shaped like ``x`` to a scalar (0-dim or one-element) tensor.
        x: real floating tensor, any shape.
    Returns:
        Tensor shaped like ``x``.
    Reference: Bright, Edelman & Johnson (2025), finite-difference approximation;
    Nocedal & Wright (2006), section 8.1.
    """
    # the gradient of a scalar function is its Jacobian, of shape () + x.shape
    return jacobian_fd(lambda z: _scalar(f(z), "finite_difference"), x, h=h, scheme=scheme)


def _shifted(flat: torch.Tensor, i: int, h: torch.Tensor, scheme: str):
    """``x + h e_i`` and ``x - h e_i`` (central) or ``x`` (forward); refuse a step lost to rounding."""
    xp = flat.clone()
    xp[i] += h
    xm = flat.clone()
    if scheme == "central":
        xm[i] -= h
    if xp[i] == xm[i]:
        raise ValueError(f"step h={float(h):.3g} is lost to rounding at x[{i}]={float(flat[i]):.17g} "
                         f"in {flat.dtype} (x + h == x); use a larger h")
    return xp, xm


def complex_step(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, h: float = 1e-20
) -> torch.Tensor:
    """Gradient of a real-analytic scalar ``f`` at real ``x`` by the complex step.

    ``df/dx_i = Im f(x + i h e_i) / h + O(h^2)``: no difference of nearby
    numbers, so no cancellation, and with ``h = 1e-20`` the truncation error is
    far below machine precision. ``f`` must accept complex input and use only
    analytic operations (no ``abs``, no comparisons, no ``.real``).

    Args:
        f: maps a complex tensor shaped like ``x`` to a complex scalar.
        x: real floating tensor (float32 is promoted to complex64, float64 to complex128).
    Returns:
        Real tensor shaped like ``x``, dtype of ``x``.
    Reference: Squire & Trapp (1998), "Using complex variables to estimate
    derivatives of real functions", SIAM Review 40(1).
    """
    x = _check_x(x)
    h = _check_h(h, torch.float64 if x.dtype == torch.float64 else torch.float32)  # cdtype's real part
    cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    flat = x.reshape(-1).to(cdtype)
    grad = torch.empty(flat.numel(), dtype=x.dtype, device=x.device)
    for i in range(flat.numel()):
        xc = flat.clone()
        xc[i] += 1j * h
        out = _output(_scalar(f(xc.reshape(x.shape)), "complex_step"), "complex_step",
                      at=f"x + i h e_{i} (h={h:g})")
        if not torch.is_complex(out):
            raise TypeError("complex_step: f returned a real value for complex input; "
                            "f must propagate complex numbers (no .real, abs or casts)")
        grad[i] = out.imag / h
    return grad.reshape(x.shape)


def jacobian_fd(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    h: float | None = None,
    scheme: str = "central",
) -> torch.Tensor:
    """Jacobian of a tensor-valued ``f`` at ``x`` by finite differences.

    Column ``i`` (the derivative along ``e_i``) is ``(f(x + h e_i) - f(x - h e_i)) / 2h``
    (central) or ``(f(x + h e_i) - f(x)) / h`` (forward): the Jacobian, seen as
    a linear map, applied to each basis vector. Step as in :func:`finite_difference`.

    Returns:
        Tensor of shape ``f(x).shape + x.shape`` (the convention of
        ``torch.autograd.functional.jacobian``).
    Reference: Bright, Edelman & Johnson (2025), the derivative as a linear operator.
    """
    x = _check_x(x)
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {_SCHEMES}, got {scheme!r}")
    step = default_step(x.dtype, scheme) if h is None else _check_h(h, x.dtype)
    flat = x.reshape(-1)
    hs = step * torch.clamp(flat.abs(), min=1.0) if h is None else torch.full_like(flat, step)
    f0 = f(x)
    if not isinstance(f0, torch.Tensor):
        raise TypeError(f"jacobian_fd: f must return a tensor, got {type(f0).__name__}")
    f0 = _output(f0, "jacobian_fd")
    columns = []
    for i in range(flat.numel()):
        xp, xm = _shifted(flat, i, hs[i], scheme)
        at = f"x + h e_{i} (h={float(hs[i]):.3g})"
        fp = _output(f(xp.reshape(x.shape)), "jacobian_fd", at)
        fm = f0 if scheme == "forward" else _output(f(xm.reshape(x.shape)), "jacobian_fd", f"x - h e_{i}")
        if fp.shape != f0.shape or fm.shape != f0.shape:
            raise ValueError(f"jacobian_fd: f changed its output shape from {tuple(f0.shape)} "
                             f"to {tuple(fp.shape)}")
        columns.append((fp - fm) / (xp[i] - xm[i]))
    jac = torch.stack(columns, dim=-1)  # f0.shape + (n,)
    return jac.reshape(f0.shape + x.shape)  # a tuple: both may be 0-dim


@dataclass(frozen=True)
class GradcheckReport:
    """Result of :func:`gradcheck`: the worst entry and whether it passes.

    ``ok`` is True when every entry satisfies
    ``|autograd - numeric| <= atol + rtol * |numeric|``. ``index`` is the
    position of the worst entry (largest excess over the tolerance) in the
    autograd result, ``autograd`` and ``numeric`` its two values.
    """

    ok: bool
    max_abs_error: float
    max_rel_error: float
    index: tuple
    autograd: float
    numeric: float

    def __post_init__(self):
        if not isinstance(self.ok, bool):
            raise TypeError(f"ok must be a bool, got {type(self.ok).__name__} ({self.ok!r})")
        for name in ("max_abs_error", "max_rel_error", "autograd", "numeric"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
            if isinstance(value, int) and abs(value) > _FLOAT_MAX:
                raise ValueError(f"{name} must fit a float64, got an int of {value.bit_length()} bits")
            if value != value or (name.endswith("error") and value < 0):  # NaN, or a negative error
                expected = "non-negative" if name.endswith("error") else "a number, not NaN"
                raise ValueError(f"{name} must be {expected}, got {value}")
        if not isinstance(self.index, tuple) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in self.index):
            raise TypeError(f"index must be a tuple of ints, got {self.index!r}")

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "MISMATCH"
        return (f"gradcheck {verdict}: max abs error {self.max_abs_error:.3g}, max rel error "
                f"{self.max_rel_error:.3g}; worst entry {self.index}: autograd {self.autograd:.10g} "
                f"vs numeric {self.numeric:.10g}")


def gradcheck(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    h: float | None = None,
) -> GradcheckReport:
    """Compare autograd's derivative of ``f`` at ``x`` with central differences.

    For scalar ``f`` the gradient is compared, for tensor-valued ``f`` the whole
    Jacobian (shape ``f(x).shape + x.shape``). Work in float64: in float32 the
    finite-difference error alone is about ``eps**(2/3) ~ 1e-5``.

    Returns:
        :class:`GradcheckReport` of the worst mismatch (it does not raise on a
        mismatch; assert ``report.ok``).
    Reference: the practice of ``torch.autograd.gradcheck``; error model of
    Nocedal & Wright (2006), section 8.1.
    """
    x = _check_x(x)
    for name, tol in (("atol", atol), ("rtol", rtol)):
        if not _is_finite_real(tol) or not tol >= 0:
            raise ValueError(f"{name} must be a non-negative finite number, got {tol!r}")
    xg = x.clone().requires_grad_(True)
    out = f(xg)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"gradcheck: f must return a tensor, got {type(out).__name__}")
    _output(out, "gradcheck")
    if not out.requires_grad:
        raise ValueError("gradcheck: f's output does not depend on x through autograd "
                         "(did f detach, or use numpy?)")
    if out.numel() == 1:
        (analytic,) = torch.autograd.grad(out.reshape(()), xg)
        numeric = finite_difference(f, x, h=h)
    else:
        analytic = torch.autograd.functional.jacobian(f, x)
        numeric = jacobian_fd(f, x, h=h)
    analytic, numeric = analytic.detach(), numeric.detach()
    if not bool(torch.isfinite(analytic).all()):
        raise ValueError("gradcheck: autograd's derivative of f is not finite at x "
                         "(is f differentiable there?)")
    abs_err = (analytic - numeric).abs()
    rel_err = abs_err / numeric.abs().clamp_min(torch.finfo(numeric.dtype).tiny)
    excess = abs_err - (atol + rtol * numeric.abs())
    worst = int(torch.argmax(excess))
    index = (tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), analytic.shape))
             if analytic.ndim else ())  # unravel_index needs at least one dimension
    return GradcheckReport(
        ok=bool((excess <= 0).all()),
        max_abs_error=float(abs_err.max()),
        max_rel_error=float(rel_err.max()),
        index=index,
        autograd=float(analytic.reshape(-1)[worst]),
        numeric=float(numeric.reshape(-1)[worst]),
    )
