"""Bilevel optimisation: hypergradients by unrolling and by the implicit function theorem.

Chapter 11 (``book/11_bilevel.md``, lab ``notebooks/11_bilevel.ipynb``).

A bilevel problem tunes hyperparameters ``lam`` on an *outer* (validation) loss
whose weights come from an *inner* (training) problem::

    min_lam  L_out(w*(lam), lam)    with    w*(lam) = argmin_w L_in(w, lam).

Both losses are user functions ``(w, lam) -> scalar`` on tensors of any shape.
The *hypergradient* is the total derivative ``d L_out(w*(lam), lam) / d lam``.

* :func:`hypergradient` with ``method="implicit"``: at a stationary point
  ``grad_w L_in(w*, lam) = 0`` the implicit function theorem gives
  ``dw*/dlam = -H^{-1} d^2 L_in / (dw dlam)``, so

      d L_out / d lam = dL_out/dlam - (d^2 L_in / (dlam dw)) H^{-1} dL_out/dw,

  with ``H = d^2 L_in / dw^2``. Only a Hessian-vector product and one
  mixed second derivative (both by autodiff) and a linear solve are needed;
  ``inverse`` picks how ``H^{-1} v`` is approximated (see :func:`inverse_hvp`).
* :func:`hypergradient` with ``method="unrolled"``: ``steps`` iterations of
  gradient descent on ``L_in`` from ``w``, kept in the autograd graph, then one
  backward pass through the whole loop to ``lam`` (memory grows with ``steps``).
* :func:`inverse_hvp`: ``H^{-1} v`` for a symmetric ``matvec``: ``"exact"``
  (dense ``H`` from ``n`` products, then a solve), ``"cg"`` (conjugate
  gradients), ``"neumann"`` (``alpha sum_j (I - alpha H)^j v``) or
  ``"identity"`` (``alpha v``: the one-term Neumann series).
* :func:`solve_inner`: the best response ``w*(lam)`` by Newton's method with a
  backtracking line search, to rounding level on smooth strongly convex problems.

References: Bengio (2000), "Gradient-Based Optimization of Hyperparameters";
Maclaurin, Duvenaud & Adams (2015), "Gradient-based Hyperparameter Optimization
through Reversible Learning"; Pedregosa (2016), "Hyperparameter optimization with
approximate gradient"; Luketina, Berglund, Greff & Raiko (2016), "Scalable
Gradient-Based Tuning of Continuous Regularization Hyperparameters" (T1-T2);
Shaban, Cheng, Hatch & Boots (2019), "Truncated Back-propagation for Bilevel
Optimization"; Lorraine, Vicol & Duvenaud (2020), "Optimizing Millions of
Hyperparameters by Implicit Differentiation" (Neumann series, AISTATS);
Hestenes & Stiefel (1952) for conjugate gradients.
"""

from __future__ import annotations

from typing import Callable

import torch

from .calculus import _check_finite
from .implicit import conjugate_gradient
from .curvature import _check_callable, _check_int, _check_positive

__all__ = ["hypergradient", "inverse_hvp", "solve_inner"]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (w, lam) -> scalar
Matvec = Callable[[torch.Tensor], torch.Tensor]              # (n,) -> (n,), symmetric
METHODS = ("implicit", "unrolled")
INVERSES = ("exact", "cg", "neumann", "identity")
_DTYPES = (torch.float32, torch.float64)


# ---------------------------------------------------------------- validation

def _check_tensor(name: str, t) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {t.dtype}")
    if t.numel() == 0:
        raise ValueError(f"{name} must have at least one element, got shape {tuple(t.shape)}")
    return _check_finite(name, t.detach())


def _check_pair(w, lam, wname: str = "w") -> tuple[torch.Tensor, torch.Tensor]:
    w, lam = _check_tensor(wname, w), _check_tensor("lam", lam)
    if lam.dtype != w.dtype:
        raise TypeError(f"lam must have {wname}'s dtype {w.dtype}, got {lam.dtype}")
    if lam.device != w.device:
        raise ValueError(f"lam must be on {wname}'s device {w.device}, got {lam.device}")
    return w, lam


def _check_optional_positive(name: str, value) -> float | None:
    return None if value is None else _check_positive(name, value)


def _default_tol(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps) ** 0.75  # 1.8e-12 in float64, 6.5e-6 in float32


def _value(fn: Loss, name: str, w: torch.Tensor, lam: torch.Tensor, finite: bool = True) -> torch.Tensor:
    """``fn(w, lam)`` checked: a one-element floating tensor, finite unless ``finite=False``."""
    out = fn(w, lam)
    if not isinstance(out, torch.Tensor) or not torch.is_floating_point(out):
        raise TypeError(f"{name} must return a floating torch.Tensor, got "
                        f"{getattr(out, 'dtype', type(out).__name__)}")
    if out.numel() != 1:
        raise ValueError(f"{name} must return a scalar (one element), got shape {tuple(out.shape)}")
    if finite and not bool(torch.isfinite(out.detach()).all()):
        raise ValueError(f"{name} returned a non-finite value ({float(out.detach().reshape(()))}) "
                         "at finite w and lam")
    return out.reshape(())


def _grad(out: torch.Tensor, x: torch.Tensor, name: str, create_graph: bool = False) -> torch.Tensor:
    """d out / d x (zeros where ``out`` does not depend on ``x``), checked finite."""
    g = None
    if out.requires_grad:
        (g,) = torch.autograd.grad(out, x, create_graph=create_graph, retain_graph=True, allow_unused=True)
    if g is None:
        return torch.zeros_like(x)
    if not bool(torch.isfinite(g.detach()).all()):
        raise ValueError(f"the gradient of {name} is not finite (is {name} differentiable there?)")
    return g


# ---------------------------------------------------------------- second derivatives of L_in

class _Inner:
    """``L_in`` at ``(w, lam)`` with its gradient in ``w`` kept in the graph.

    ``hvp(q) = H q`` and ``mixed(v) = (d^2 L_in / dlam dw) v`` both differentiate the
    same ``g = grad_w L_in`` once more: a vector-Jacobian product of ``g`` with ``q``
    (with respect to ``w``) or with ``v`` (with respect to ``lam``).
    """

    def __init__(self, inner_loss: Loss, w: torch.Tensor, lam: torch.Tensor):
        self.w = w.detach().clone().requires_grad_(True)
        self.lam = lam.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            self.value = _value(inner_loss, "inner_loss", self.w, self.lam)
            self.g = _grad(self.value, self.w, "inner_loss", create_graph=True)
        self.n = self.w.numel()

    def _vjp(self, u: torch.Tensor, wrt: torch.Tensor) -> torch.Tensor:
        out = None
        if self.g.requires_grad:
            (out,) = torch.autograd.grad(self.g, wrt, u.reshape(self.g.shape), retain_graph=True,
                                         allow_unused=True)
        if out is None:
            return torch.zeros_like(wrt)
        if not bool(torch.isfinite(out).all()):
            raise ValueError("a second derivative of inner_loss is not finite at w and lam "
                             "(is inner_loss twice differentiable there?)")
        return out.detach()

    def hvp(self, q: torch.Tensor) -> torch.Tensor:
        return self._vjp(q, self.w).reshape(-1)

    def mixed(self, v: torch.Tensor) -> torch.Tensor:
        return self._vjp(v, self.lam)

    def hessian(self) -> torch.Tensor:
        """The dense (n, n) Hessian: n HVPs, batched through vmap where autograd allows it."""
        eye = torch.eye(self.n, dtype=self.w.dtype, device=self.w.device)
        if self.g.requires_grad:
            try:
                (h,) = torch.autograd.grad(self.g, self.w, eye.reshape(self.n, *self.g.shape),
                                           retain_graph=True, is_grads_batched=True, allow_unused=True)
            except RuntimeError:  # an op without a batching rule: one product at a time
                h = None
            else:
                h = torch.zeros(self.n, self.n, dtype=eye.dtype, device=eye.device) if h is None else \
                    h.detach().reshape(self.n, self.n)
                if not bool(torch.isfinite(h).all()):
                    raise ValueError("the Hessian of inner_loss is not finite at w and lam")
                return 0.5 * (h + h.T)
        h = torch.stack([self.hvp(e) for e in eye], dim=1)
        return 0.5 * (h + h.T)


# ---------------------------------------------------------------- H^{-1} v

def _lambda_max(matvec: Matvec, n: int, dtype, device, iters: int = 50) -> float:
    # ||H q|| for the power iterate q: tends to max |eigenvalue| from below. The start is
    # drawn from a generator with a fixed seed, so results do not depend on global state.
    gen = torch.Generator(device=device).manual_seed(0)
    q = torch.randn(n, generator=gen, dtype=dtype, device=device)
    q = q / q.norm()
    radius = 0.0
    for _ in range(iters):
        hq = matvec(q)
        new = float(hq.norm())
        if new == 0.0:
            return radius
        converged = abs(new - radius) <= 1e-3 * new
        q, radius = hq / new, new
        if converged:
            break
    return radius


def _default_alpha(matvec: Matvec, n: int, dtype, device) -> float:
    lam_max = _lambda_max(matvec, n, dtype, device)
    if not lam_max > 0:
        raise ValueError("alpha: cannot choose a default step, the Hessian is zero (no curvature); "
                         "pass alpha explicitly")
    return 1.0 / lam_max


def _cg(matvec: Matvec, b: torch.Tensor, iters: int, tol: float) -> torch.Tensor:
    # chapter 10's conjugate gradients, with the bilevel reading of its failure
    try:
        x, _ = conjugate_gradient(matvec, b, tol=tol, max_iter=iters)
    except ValueError as err:
        if "not positive definite" not in str(err):
            raise
        raise ValueError(f"cg needs a positive definite Hessian ({err}); use inverse='exact' or make "
                         "the inner problem strongly convex") from None
    return x


def _neumann(matvec: Matvec, v: torch.Tensor, iters: int, alpha: float) -> torch.Tensor:
    # H^{-1} = alpha sum_{j >= 0} (I - alpha H)^j when the spectral radius of I - alpha H is < 1.
    # Not lib.implicit.neumann_series: here M = I - alpha H is symmetric, so any growing term
    # already proves divergence, a stricter (earlier) test than that general solver can use.
    # The terms (I - alpha H)^j v never grow when that holds (I - alpha H is symmetric with
    # norm < 1), so a growing term means the series diverges: refused before it overflows.
    term, total = v.clone(), v.clone()
    size = float(v.norm())
    for j in range(1, iters):
        term = term - alpha * matvec(term)
        new = float(term.norm())
        if not new <= size * (1 + 1e-6):  # also catches inf and NaN
            raise ValueError(f"the neumann series diverges (alpha = {alpha:.3g}): term {j} grew, so "
                             "the Hessian is not positive definite or alpha >= 2 / lambda_max")
        total, size = total + term, new
    return alpha * total


def _solve(matvec: Matvec, v: torch.Tensor, inverse: str, iters: int, alpha: float | None,
           tol: float | None, dense: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
    n = v.numel()
    if not bool((v != 0).any()):
        return torch.zeros_like(v)  # H^{-1} 0 = 0, whatever H is
    if inverse == "exact":
        H = dense() if dense is not None else _dense(matvec, n, v.dtype, v.device)
        x, info = torch.linalg.solve_ex(H, v)
        if int(info) != 0 or not bool(torch.isfinite(x).all()):
            raise ValueError("the Hessian is singular, so the exact inverse does not exist "
                             "(the implicit function theorem needs an invertible Hessian)")
        return x
    if inverse == "cg":
        return _cg(matvec, v, iters, _default_tol(v.dtype) if tol is None else tol)
    alpha = _default_alpha(matvec, n, v.dtype, v.device) if alpha is None else alpha
    return _neumann(matvec, v, 1 if inverse == "identity" else iters, alpha)


def _dense(matvec: Matvec, n: int, dtype, device) -> torch.Tensor:
    eye = torch.eye(n, dtype=dtype, device=device)
    h = torch.stack([matvec(e) for e in eye], dim=1)
    return 0.5 * (h + h.T)


def _checked_matvec(matvec: Matvec, n: int, dtype, device) -> Matvec:
    def apply(q: torch.Tensor) -> torch.Tensor:
        out = matvec(q)
        if not isinstance(out, torch.Tensor) or not torch.is_floating_point(out):
            raise TypeError(f"matvec must return a floating torch.Tensor, got "
                            f"{getattr(out, 'dtype', type(out).__name__)}")
        if out.numel() != n:
            raise ValueError(f"matvec must return {n} entries (the size of v), got shape {tuple(out.shape)}")
        if out.device != q.device:
            raise ValueError(f"matvec must return a tensor on v's device {q.device}, got {out.device}")
        return _check_finite("matvec's output", out.detach().reshape(-1).to(dtype))
    return apply


def _check_inverse(inverse, iters, alpha, tol) -> tuple[str, int, float | None, float | None]:
    if inverse not in INVERSES:
        raise ValueError(f"inverse must be one of {INVERSES}, got {inverse!r}")
    return (inverse, _check_int("iters", iters, 1), _check_optional_positive("alpha", alpha),
            _check_optional_positive("tol", tol))


def inverse_hvp(matvec: Matvec, v: torch.Tensor, inverse: str = "cg", iters: int = 20,
                alpha: float | None = None, tol: float | None = None) -> torch.Tensor:
    """An approximation of ``H^{-1} v`` for a symmetric operator ``matvec: q -> H q``.

    ``v``: 1-D float32/float64 ``(n,)``; ``matvec`` maps ``(n,)`` to ``n`` entries.

    * ``"exact"``: the dense ``H`` from ``n`` products, then ``torch.linalg.solve``;
      ``n`` products and ``O(n^2)`` memory. ``H`` must be invertible.
    * ``"cg"``: at most ``iters`` conjugate-gradient steps (one product each),
      stopping once ``||v - H x|| <= tol ||v||`` (``tol`` defaults to
      ``eps^0.75`` of the dtype). Exact after ``n`` steps in exact arithmetic;
      ``H`` must be positive definite (a ValueError says so otherwise).
    * ``"neumann"``: the truncated series ``alpha sum_{j<iters} (I - alpha H)^j v``
      (``iters - 1`` products). It converges to ``H^{-1} v`` iff every eigenvalue
      of ``H`` lies in ``(0, 2/alpha)``; the error shrinks like ``(1 - alpha
      lambda_min)^iters``. ``alpha`` defaults to ``1 / lambda_max`` from 50 power
      iterations (seeded, so deterministic).
    * ``"identity"``: ``alpha v``, the one-term series (no product; ``H^{-1}``
      replaced by a multiple of the identity, as in T1-T2 and one-step unrolling).

    ``iters`` is not used by ``"exact"`` and ``"identity"``, ``alpha`` only by the
    series, ``tol`` only by ``"cg"``. ``matvec`` is always called at least once, and
    every output is checked (a floating tensor of ``n`` finite entries on ``v``'s
    device). Returns a tensor like ``v``.
    Reference: Hestenes & Stiefel (1952) (CG); Lorraine, Vicol & Duvenaud (2020),
    the Neumann series for the inverse Hessian; Luketina et al. (2016) (identity).
    """
    _check_callable("matvec", matvec)
    v = _check_tensor("v", v)
    if v.ndim != 1:
        raise ValueError(f"v must be 1-D (n,), got shape {tuple(v.shape)}")
    inverse, iters, alpha, tol = _check_inverse(inverse, iters, alpha, tol)
    matvec = _checked_matvec(matvec, v.numel(), v.dtype, v.device)
    matvec(v)  # one checked product, so that a bad matvec is refused whatever the method needs
    return _solve(matvec, v, inverse, iters, alpha, tol)


# ---------------------------------------------------------------- hypergradients

def _implicit(outer_loss: Loss, inner_loss: Loss, w: torch.Tensor, lam: torch.Tensor, inverse: str,
              iters: int, alpha: float | None, tol: float | None) -> torch.Tensor:
    wr, lr_ = w.clone().requires_grad_(True), lam.clone().requires_grad_(True)
    with torch.enable_grad():
        out = _value(outer_loss, "outer_loss", wr, lr_)
        dout_dw = _grad(out, wr, "outer_loss").detach()
        dout_dlam = _grad(out, lr_, "outer_loss").detach()
        inner = _Inner(inner_loss, w, lam)
        v = _solve(inner.hvp, dout_dw.reshape(-1), inverse, iters, alpha, tol, dense=inner.hessian)
        return dout_dlam - inner.mixed(v)


def _unrolled(outer_loss: Loss, inner_loss: Loss, w0: torch.Tensor, lam: torch.Tensor, steps: int,
              lr: float | None) -> torch.Tensor:
    if lr is None:
        inner = _Inner(inner_loss, w0, lam)
        lam_max = _lambda_max(inner.hvp, inner.n, w0.dtype, w0.device)
        if not lam_max > 0:
            raise ValueError("lr: cannot choose a default step, the Hessian of inner_loss is zero at w; "
                             "pass lr explicitly")
        lr = 1.0 / lam_max

    def diverged(k: int) -> ValueError:
        return ValueError(f"unrolled gradient descent diverged by step {k} (lr = {lr:.3g} too large "
                          "for inner_loss?): a loss or gradient is no longer finite")

    lam_ = lam.clone().requires_grad_(True)
    with torch.enable_grad():
        w_k = w0.clone().requires_grad_(True)
        for k in range(steps):
            value = _value(inner_loss, "inner_loss", w_k, lam_, finite=k == 0)
            if not bool(torch.isfinite(value.detach())):
                raise diverged(k)
            g = None
            if k == 0:
                g = _grad(value, w_k, "inner_loss", create_graph=True)
            elif value.requires_grad:  # finiteness is checked on w_{k+1} below
                g = torch.autograd.grad(value, w_k, create_graph=True, allow_unused=True)[0]
            w_k = w_k - lr * (torch.zeros_like(w_k) if g is None else g)
            if not bool(torch.isfinite(w_k.detach()).all()):
                raise diverged(k + 1)
        out = _value(outer_loss, "outer_loss", w_k, lam_)
        return _grad(out, lam_, "outer_loss").detach()


def hypergradient(outer_loss: Loss, inner_loss: Loss, w: torch.Tensor, lam: torch.Tensor,
                  method: str = "implicit", inverse: str = "exact", iters: int = 20,
                  alpha: float | None = None, tol: float | None = None, steps: int = 100,
                  lr: float | None = None) -> torch.Tensor:
    """The hypergradient ``d L_out(w*(lam), lam) / d lam`` of a bilevel problem.

    ``outer_loss(w, lam)`` and ``inner_loss(w, lam)`` return scalars; ``w`` (any
    shape, the weights) and ``lam`` (any shape, the hyperparameters) are finite
    float32/float64 tensors of one dtype and device. Returns a tensor shaped like
    ``lam`` (detached).

    * ``method="implicit"`` (default): ``w`` should be the inner solution
      ``w*(lam)`` (e.g. from :func:`solve_inner`). By the implicit function theorem,

          dL_out/dlam - (d^2 L_in / dlam dw) H^{-1} dL_out/dw,   H = d^2 L_in / dw^2,

      with ``H^{-1} dL_out/dw`` from :func:`inverse_hvp` (``inverse``, ``iters``,
      ``alpha``, ``tol``) and the mixed term as one more VJP of ``grad_w L_in``.
      Exact at a stationary point with invertible ``H``; at an approximate ``w``
      its error is of the order of the distance to ``w*``. Memory does not depend
      on how ``w`` was found.
    * ``method="unrolled"``: ``w`` is the starting point ``w_0``; run ``steps``
      steps ``w_{k+1} = w_k - lr grad_w L_in(w_k, lam)`` inside autograd and
      differentiate ``L_out(w_steps, lam)`` by reverse mode through the loop.
      ``lr`` defaults to ``1 / lambda_max`` of ``H`` at ``w_0``. Memory grows
      linearly with ``steps``; a finite ``steps`` is the hypergradient of the
      truncated problem, biased when the loop has not converged.

    Arguments of the other method are validated but not used.
    Reference: Lorraine, Vicol & Duvenaud (2020) (implicit, with the inverse
    approximations); Maclaurin, Duvenaud & Adams (2015) and Shaban et al. (2019)
    (unrolled and truncated); Bengio (2000) (the implicit hypergradient).
    """
    _check_callable("outer_loss", outer_loss)
    _check_callable("inner_loss", inner_loss)
    w, lam = _check_pair(w, lam)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    inverse, iters, alpha, tol = _check_inverse(inverse, iters, alpha, tol)
    steps = _check_int("steps", steps, 0)
    lr = _check_optional_positive("lr", lr)
    if method == "unrolled":
        return _unrolled(outer_loss, inner_loss, w, lam, steps, lr)
    return _implicit(outer_loss, inner_loss, w, lam, inverse, iters, alpha, tol)


# ---------------------------------------------------------------- the inner problem

def solve_inner(inner_loss: Loss, w0: torch.Tensor, lam: torch.Tensor, steps: int = 50,
                tol: float | None = None) -> torch.Tensor:
    """The best response ``w*(lam) = argmin_w inner_loss(w, lam)`` by damped Newton.

    Each step forms the dense Hessian ``H`` (``n = w0.numel()`` HVPs, batched),
    solves ``H d = -g`` (``H`` shifted to be positive definite if it is not), and
    halves the step from 1 until the Armijo condition
    ``L(w + t d) <= L(w) + 1e-4 t g.d`` holds (non-finite trial values count as
    failures). Near the minimum, where ``L`` no longer changes beyond rounding, a
    full step is taken as long as it shrinks ``||g||``. Stops after ``steps``
    steps, when ``||g|| <= tol max(1, ||g_0||)`` (``tol`` defaults to
    ``eps^0.75`` of the dtype) or when no step helps any more.
    Quadratic convergence near a minimum with positive definite ``H``, so
    rounding level in a few steps: what the implicit hypergradient and finite
    differences of the re-solved problem need. For small ``n`` (hundreds).
    ``w0``, ``lam``: finite float32/float64 tensors of one dtype and device.
    Returns ``w`` shaped like ``w0`` (detached).
    Reference: Nocedal & Wright, "Numerical Optimization" (2nd ed., 2006),
    chapter 3 (backtracking line search) and section 3.4 (Newton with Hessian modification).
    """
    _check_callable("inner_loss", inner_loss)
    w0, lam = _check_pair(w0, lam, "w0")
    steps = _check_int("steps", steps, 0)
    tol = _default_tol(w0.dtype) if tol is None else _check_positive("tol", tol)
    w = w0.clone()
    inner = _Inner(inner_loss, w, lam)
    g = inner.g.detach().reshape(-1)
    gnorm = float(g.norm())
    stop = tol * max(1.0, gnorm)
    rounding = 1e3 * float(torch.finfo(w.dtype).eps)
    for _ in range(steps):
        if gnorm <= stop:
            break
        H = inner.hessian()
        evals = torch.linalg.eigvalsh(H)
        floor = 1e-10 * max(1.0, float(evals.abs().max()))
        if not float(evals.min()) > floor:  # not positive definite: shift the spectrum up
            H = H + (floor - float(evals.min())) * torch.eye(len(g), dtype=H.dtype, device=H.device)
        d = torch.linalg.solve(H, -g).reshape(w.shape)
        slope, f0, t = float(g @ d.reshape(-1)), float(inner.value.detach()), 1.0
        with torch.no_grad():
            for _ in range(60):
                f = float(_value(inner_loss, "inner_loss", w + t * d, lam, finite=False))
                armijo = f <= f0 + 1e-4 * t * slope  # False for NaN
                flat = t == 1.0 and abs(f - f0) <= rounding * abs(f0)  # a full step within rounding of f
                if armijo or flat:
                    break
                t *= 0.5
            else:
                break  # no acceptable step
        new = _Inner(inner_loss, w + t * d, lam)
        new_g = new.g.detach().reshape(-1)
        new_gnorm = float(new_g.norm())
        if not armijo and not new_gnorm < gnorm:
            break  # at the minimum to rounding: the step no longer helps
        w, inner, g, gnorm = new.w.detach(), new, new_g, new_gnorm
    return w.detach()
