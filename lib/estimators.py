"""Gradients through discrete choices: score functions, relaxations, sorting networks.

Chapter 14 (``book/14_discrete.md``, lab ``notebooks/14_discrete.ipynb``).

The objective is ``E_{z ~ Cat(softmax(theta))}[f(z)]``: ``f`` of a sample that
autograd cannot differentiate, since the sample is piecewise constant in
``theta``. Conventions: ``logits`` ``theta`` of shape ``(*batch, k)`` hold a
batch of independent categorical problems; a sample is a one-hot ``y`` of
shape ``(n, *batch, k)``, and the user's ``f(y)`` returns one value per sample
and problem, shape ``(n, *batch)`` (for a relaxed ``y`` on the simplex too).

* :func:`sample_categorical`: one-hot samples by the Gumbel-max trick;
  :func:`exact_gradient`: the true value and gradient by enumerating the ``k``
  outcomes, ``grad = pi * (F - E[F])``, the reference for every estimator.
* :func:`reinforce`: the score-function estimator ``(f(z) - b) grad log p(z)``
  with no baseline, a constant or moving-average one (:func:`moving_average`),
  or the leave-one-out baseline; unbiased, often noisy.
* :func:`gaussian_gradient`: for ``x ~ N(mu, sigma^2)``, the reparameterisation
  ``x = mu + sigma eps`` (pathwise) against the score function.
* :func:`gumbel_softmax` (the Concrete relaxation, with a straight-through
  ``hard`` option), :func:`straight_through` and :func:`reinmax`: one-hot
  forward values with surrogate gradients; :func:`relaxed_gradient` turns any of
  them into a gradient estimate shaped like :func:`reinforce`'s.
* :func:`swap_sigmoid` and :func:`soft_sort`: an odd-even transposition sorting
  network whose conditional swaps are relaxed by a sigmoid, returning soft-sorted
  values and the relaxed permutation matrix. With the Cauchy, reciprocal or
  "optimal" sigmoid every output is non-decreasing in every input; the logistic
  sigmoid breaks this.

References: Williams (1992), "Simple statistical gradient-following algorithms
for connectionist reinforcement learning" (REINFORCE); Kool, van Hoof & Welling
(2019), "Buy 4 REINFORCE samples, get a baseline for free!" (leave-one-out);
Kingma & Welling (2014), "Auto-Encoding Variational Bayes" (reparameterisation);
Jang, Gu & Poole (2017), "Categorical Reparameterization with Gumbel-Softmax";
Maddison, Mnih & Teh (2017), "The Concrete Distribution"; Bengio, Leonard &
Courville (2013), "Estimating or Propagating Gradients Through Stochastic Neurons
for Conditional Computation" (straight-through); Liu, Dong, Liu, Yu & Gao (2023),
"Bridging Discrete and Backpropagation: Straight-Through and Beyond" (ReinMax);
Petersen, Borgelt, Kuehne & Deussen (2022), "Monotonic Differentiable Sorting
Networks" (ICLR).
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import torch

__all__ = ["sample_categorical", "exact_gradient", "reinforce", "moving_average", "gaussian_gradient",
           "gumbel_softmax", "straight_through", "reinmax", "relaxed_gradient", "swap_sigmoid", "soft_sort"]

SIGMOIDS = ("cauchy", "reciprocal", "optimal", "logistic")
RELAXED = ("gumbel", "gumbel_hard", "straight_through", "reinmax")


# ---------------------------------------------------------------- validation

def _check_tensor(t, name: str, min_dim: int = 1) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not torch.is_floating_point(t):
        raise TypeError(f"{name} must have a real floating dtype, got {t.dtype}")
    if t.ndim < min_dim or t.numel() == 0:
        raise ValueError(f"{name} must have at least {min_dim} dimension(s) and one element, "
                         f"got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf entries")
    return t


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    # float16/bfloat16 are computed in float32 and cast back at the end
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _check_number(name: str, value, low: float = 0.0, low_ok: bool = False, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be a finite number, got an integer too large for float64") from None
    if not math.isfinite(v) or v < low or (v == low and not low_ok) or v >= high:
        bound = f"{'>=' if low_ok else '>'} {low:g}" + (f" and < {high:g}" if high < math.inf else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return v


def _check_tau(tau, dtype: torch.dtype) -> float:
    t = _check_number("tau", tau)
    info = torch.finfo(dtype)
    if not info.tiny <= t <= info.max:  # it would round to 0 or inf in the working dtype
        raise ValueError(f"tau={t:g} is not representable in {dtype}: it must lie in [{info.tiny:g}, {info.max:g}]")
    return t


def _check_count(name: str, n, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(n).__name__} ({n!r})")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    return int(n)


def _check_generator(generator, device: torch.device) -> torch.Generator | None:
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be None or a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != device.type:
        raise ValueError(f"generator must live on the tensors' device ({device.type}), got one on "
                         f"{generator.device.type}")
    return generator


def _check_f(f) -> None:
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")


def _values(out, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """What ``f`` returned: a finite floating tensor of ``shape`` (one value per sample and problem)."""
    if not isinstance(out, torch.Tensor) or not torch.is_floating_point(out):
        raise TypeError(f"f must return a floating torch.Tensor, got {getattr(out, 'dtype', type(out).__name__)}")
    if tuple(out.shape) != shape:
        raise ValueError(f"f must return one value per sample and problem, shape {shape}, got {tuple(out.shape)}")
    if not bool(torch.isfinite(out.detach()).all()):
        raise ValueError("f returned NaN or inf values")
    return out.to(dtype)


def _check_index(index, logits: torch.Tensor) -> torch.Tensor:
    batch, k = logits.shape[:-1], logits.shape[-1]
    if not isinstance(index, torch.Tensor) or index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"index must be an integer tensor, got {getattr(index, 'dtype', type(index).__name__)}")
    if index.shape != batch or index.device != logits.device:
        raise ValueError(f"index must have shape {tuple(batch)} on {logits.device}, got {tuple(index.shape)} "
                         f"on {index.device}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= k):
        raise ValueError(f"index must lie in [0, {k}), got range [{int(index.min())}, {int(index.max())}]")
    return index.long()


# ---------------------------------------------------------------- sampling and the exact gradient

def _gumbel(shape: tuple, generator, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # G = -log(-log U), U ~ Uniform(0, 1), U kept away from 0 so that G is finite
    u = torch.rand(shape, generator=generator, dtype=dtype, device=device).clamp_(min=torch.finfo(dtype).tiny)
    return -torch.log(-torch.log(u))


def _one_hot(index: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(index, k).to(dtype)


def sample_categorical(logits: torch.Tensor, n_samples: int = 1,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """One-hot samples of ``Cat(softmax(logits))`` by the Gumbel-max trick.

    ``argmax_i (logits_i + G_i)`` with i.i.d. standard Gumbel ``G_i`` is distributed
    as ``softmax(logits)`` (proved in chapter 14). ``logits``: ``(*batch, k)``.
    Returns ``(n_samples, *batch, k)`` one-hot, in ``logits``' dtype.
    Reference: Gumbel (1954); Maddison, Tarlow & Minka (2014), "A* Sampling" (the Gumbel-max trick).
    """
    logits = _check_tensor(logits, "logits").detach()
    n = _check_count("n_samples", n_samples)
    generator = _check_generator(generator, logits.device)
    work = _work_dtype(logits.dtype)
    g = _gumbel((n, *logits.shape), generator, work, logits.device)
    return _one_hot((logits.to(work) + g).argmax(-1), logits.shape[-1], logits.dtype)


def exact_gradient(f: Callable, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Value and gradient of ``E_{z ~ Cat(softmax(logits))}[f(z)]`` by enumeration.

    ``f`` is called once on the ``k`` one-hot outcomes, ``y`` of shape
    ``(k, *batch, k)`` (row ``j`` is ``e_j`` for every problem), and returns ``F``
    of shape ``(k, *batch)``. With ``pi = softmax(logits)``: value ``pi . F`` and
    ``d/dlogits_i = pi_i (F_i - pi . F)``. Returns ``(value (*batch), grad (*batch, k))``.
    Reference: the softmax derivative ``d pi_j / d theta_i = pi_j (delta_ij - pi_i)``.
    """
    _check_f(f)
    logits = _check_tensor(logits, "logits").detach()
    work, k = _work_dtype(logits.dtype), logits.shape[-1]
    eye = torch.eye(k, dtype=logits.dtype, device=logits.device)
    y = eye.reshape(k, *([1] * (logits.ndim - 1)), k).expand(k, *logits.shape)
    F = _values(f(y), (k, *logits.shape[:-1]), work).detach()
    pi = logits.to(work).softmax(-1)
    F = torch.movedim(F, 0, -1)  # (*batch, k): F[..., i] = f(e_i)
    value = (pi * F).sum(-1)
    return value.to(logits.dtype), (pi * (F - value[..., None])).to(logits.dtype)


# ---------------------------------------------------------------- score function (REINFORCE)

def _baseline(baseline, values: torch.Tensor, name: str = "baseline") -> torch.Tensor:
    """The baseline ``b`` broadcast to ``values`` (n, *batch)."""
    if baseline is None:
        return torch.zeros_like(values)
    if isinstance(baseline, str):
        if baseline != "loo":
            raise ValueError(f"baseline must be None, a number, a tensor or 'loo', got {baseline!r}")
        n = values.shape[0]
        if n < 2:
            raise ValueError("the leave-one-out baseline ('loo') needs n_samples >= 2")
        return (values.sum(0, keepdim=True) - values) / (n - 1)
    if isinstance(baseline, torch.Tensor):
        if not torch.is_floating_point(baseline):
            raise TypeError(f"{name} tensor must be floating, got {baseline.dtype}")
        if baseline.shape not in ((), values.shape[1:]) or baseline.device != values.device:
            raise ValueError(f"{name} tensor must have shape () or {tuple(values.shape[1:])} on {values.device}, "
                             f"got {tuple(baseline.shape)} on {baseline.device}")
        if not bool(torch.isfinite(baseline).all()):
            raise ValueError(f"{name} must be finite, got NaN or inf entries")
        return baseline.detach().to(values).expand_as(values)
    b = _check_number(name, baseline, low=-math.inf)
    return torch.full_like(values, b)


def reinforce(f: Callable, logits: torch.Tensor, n_samples: int = 1, baseline=None,
              index: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Score-function (REINFORCE) estimate of ``grad E_{z ~ Cat(softmax(logits))}[f(z)]``.

    Draws ``n`` one-hot samples ``y_s`` and averages ``(f(y_s) - b_s) (y_s - pi)``,
    where ``y - pi = grad_logits log p(z)``. ``baseline``: None (``b = 0``); a number
    or a tensor of shape ``()`` or ``batch`` (a constant, e.g. a moving average from
    :func:`moving_average`: unbiased because it does not depend on the samples);
    or ``"loo"``, ``b_s`` = the mean of the other ``n - 1`` values (unbiased because
    ``y_s`` is independent of them; needs ``n >= 2``).
    ``f``: ``(n, *batch, k)`` one-hot -> ``(n, *batch)``. ``index``: the categories
    ``(n, *batch)`` to use instead of drawing them (to enumerate the expectation).
    Returns ``(grad (*batch, k), values (n, *batch))``.
    Reference: Williams (1992) (REINFORCE); Kool, van Hoof & Welling (2019) (leave-one-out baseline).
    """
    _check_f(f)
    logits = _check_tensor(logits, "logits").detach()
    n = _check_count("n_samples", n_samples)
    if index is None:
        y = sample_categorical(logits, n, generator)
    else:
        _check_generator(generator, logits.device)
        y = _one_hot(_check_index(index, logits.expand(n, *logits.shape)), logits.shape[-1], logits.dtype)
    work = _work_dtype(logits.dtype)
    values = _values(f(y), (n, *logits.shape[:-1]), work).detach()
    weight = values - _baseline(baseline, values)
    score = y.to(work) - logits.to(work).softmax(-1)  # grad of log softmax(logits)[z]
    return (weight[..., None] * score).mean(0).to(logits.dtype), values.to(logits.dtype)


def moving_average(b, values: torch.Tensor, beta: float = 0.9) -> torch.Tensor:
    """Update an exponential moving-average baseline: ``beta b + (1 - beta) mean_s values_s``.

    ``b``: None (start from the mean of ``values``), a number, or a tensor of shape
    ``()`` or ``batch``; ``values``: ``(n, *batch)`` as returned by :func:`reinforce`.
    Use the returned ``b`` for the *next* call, so that it never depends on the
    samples it weights. Returns a tensor of shape ``batch``.
    Reference: Williams (1992) (reinforcement baselines); Mohamed et al. (2020) (control variates).
    """
    values = _check_tensor(values, "values")
    beta = _check_number("beta", beta, low_ok=True, high=1.0)
    mean = values.detach().mean(0)
    if b is None:
        return mean
    if isinstance(b, str):
        raise TypeError(f"b must be None, a number or a tensor, got the string {b!r}")
    return beta * _baseline(b, values, "b")[0] + (1 - beta) * mean


def gaussian_gradient(f: Callable, mu: torch.Tensor, sigma: torch.Tensor, n_samples: int = 1,
                      method: str = "reparam", baseline=None,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimate ``d/dmu`` and ``d/dsigma`` of ``E_{x ~ N(mu, diag sigma^2)}[f(x)]``.

    ``method="reparam"``: ``x = mu + sigma eps``, ``eps ~ N(0, I)``, and autograd
    through ``f`` (pathwise; ``f`` must be differentiable). ``method="score"``:
    ``(f(x) - b) grad log N(x)``, with ``d/dmu log N = (x - mu)/sigma^2`` and
    ``d/dsigma log N = ((x - mu)^2 - sigma^2)/sigma^3``; ``baseline`` as in
    :func:`reinforce`, with ``batch = ()``. ``f``: ``(n, *mu.shape)`` -> ``(n,)``.
    Returns ``(grad_mu, grad_sigma)``, shaped like ``mu``.
    Reference: Kingma & Welling (2014) (reparameterisation); Williams (1992) (score function).
    """
    _check_f(f)
    mu = _check_tensor(mu, "mu", min_dim=0).detach()
    sigma = _check_tensor(sigma, "sigma", min_dim=0).detach()
    if sigma.shape != mu.shape or sigma.dtype != mu.dtype or sigma.device != mu.device:
        raise ValueError(f"sigma must have mu's shape {tuple(mu.shape)}, dtype {mu.dtype} and device, got "
                         f"{tuple(sigma.shape)}, {sigma.dtype} on {sigma.device}")
    if not bool((sigma > 0).all()):
        raise ValueError(f"sigma must be positive, got a smallest entry of {float(sigma.min()):g}")
    n = _check_count("n_samples", n_samples)
    if method not in ("reparam", "score"):
        raise ValueError(f"method must be 'reparam' or 'score', got {method!r}")
    generator = _check_generator(generator, mu.device)
    work = _work_dtype(mu.dtype)
    m, s = mu.to(work), sigma.to(work)
    eps = torch.randn((n, *mu.shape), generator=generator, dtype=work, device=mu.device)
    if method == "score":
        values = _values(f((m + s * eps).to(mu.dtype)), (n,), work).detach()
        w = (values - _baseline(baseline, values)).reshape(n, *([1] * mu.ndim))
        grads = ((w * eps / s).mean(0), (w * (eps**2 - 1) / s).mean(0))  # x - mu = sigma eps
    else:
        with torch.enable_grad():
            m, s = m.requires_grad_(True), s.requires_grad_(True)
            values = _values(f((m + s * eps).to(mu.dtype)), (n,), work)
            if not values.requires_grad:  # f does not depend on x
                return torch.zeros_like(mu), torch.zeros_like(mu)
            grads = torch.autograd.grad(values.mean(), (m, s), allow_unused=True)
        grads = tuple(torch.zeros_like(mu) if g is None else g for g in grads)
    out = tuple(g.detach().to(mu.dtype) for g in grads)
    if not all(bool(torch.isfinite(g).all()) for g in out):
        raise ValueError("the gradient estimate overflowed: f's values or slopes, or 1/sigma, are too large "
                         "for the dtype")
    return out


# ---------------------------------------------------------------- relaxations and surrogate gradients

def _softmax_tau(z: torch.Tensor, tau: float) -> torch.Tensor:
    # softmax(z / tau) with the maximum subtracted first, so that a tiny tau gives 0 and -inf, never NaN
    return ((z - z.max(-1, keepdim=True).values.detach()) / tau).softmax(-1)


def gumbel_softmax(logits: torch.Tensor, tau: float = 1.0, hard: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A Gumbel-softmax (Concrete) sample ``softmax((logits + G) / tau)`` over the last dimension.

    Same distribution as ``torch.nn.functional.gumbel_softmax``; differentiable in
    ``logits``. As ``tau -> 0`` samples approach one-hot vectors distributed as
    ``Cat(softmax(logits))``; as ``tau`` grows they approach the uniform vector.
    ``hard=True``: the forward value is the one-hot ``argmax`` of the soft sample
    and the gradient is that of the soft sample (straight-through Gumbel).
    ``logits``: ``(*batch, k)``. Returns ``(*batch, k)`` in ``logits``' dtype.
    Reference: Jang, Gu & Poole (2017); Maddison, Mnih & Teh (2017).
    """
    _check_tensor(logits, "logits")
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    work = _work_dtype(logits.dtype)
    tau = _check_tau(tau, work)
    generator = _check_generator(generator, logits.device)
    z = logits.to(work) + _gumbel(tuple(logits.shape), generator, work, logits.device)  # |G| < 90: no overflow
    y = _softmax_tau(z, tau)
    if hard:  # (y - y.detach()) is exactly 0 in the forward pass, so the value is exactly one-hot
        y = _one_hot(y.argmax(-1), y.shape[-1], work) + (y - y.detach())
    return y.to(logits.dtype)


def straight_through(logits: torch.Tensor, tau: float = 1.0, index: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """A one-hot sample ``D ~ Cat(softmax(logits))`` whose gradient is that of ``softmax(logits / tau)``.

    Forward: ``D``; backward: ``dL/dlogits = J(pi_tau) dL/dD / tau`` with
    ``J(p) = diag(p) - p p^T``: the sampler is treated as if it were the softmax.
    This is the first-order (forward Euler) approximation of the true gradient;
    at ``tau = 1`` it is unbiased when ``f`` is linear in ``D``. ``index``: the
    sampled categories ``(*batch,)`` to use instead of drawing (e.g. to enumerate).
    ``logits``: ``(*batch, k)``. Returns ``(*batch, k)``.
    Reference: Bengio, Leonard & Courville (2013); Liu et al. (2023) (the first-order view).
    """
    _check_tensor(logits, "logits")
    work = _work_dtype(logits.dtype)
    tau = _check_tau(tau, work)
    D = _draw(logits, index, generator, work)
    p = _softmax_tau(logits.to(work), tau)
    return (D + (p - p.detach())).to(logits.dtype)


def _draw(logits: torch.Tensor, index, generator, work: torch.dtype) -> torch.Tensor:
    if index is None:
        return sample_categorical(logits.detach(), 1, generator)[0].to(work)
    _check_generator(generator, logits.device)
    return _one_hot(_check_index(index, logits), logits.shape[-1], work)


def _softmax_vjp(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # J(p) g with J(p) = diag(p) - p p^T, the Jacobian of softmax at output p
    return p * g - p * (p * g).sum(-1, keepdim=True)


class _ReinMax(torch.autograd.Function):
    """Forward: the one-hot ``D``. Backward: ``2 J(pi_1) g - J(pi_0) g / 2`` (Heun's method)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, D: torch.Tensor, tau: float) -> torch.Tensor:
        pi0 = logits.softmax(-1)
        pi1 = (D + _softmax_tau(logits, tau)) / 2
        ctx.save_for_backward(pi0, pi1)
        return D.clone()

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        pi0, pi1 = ctx.saved_tensors
        return 2 * _softmax_vjp(pi1, g) - 0.5 * _softmax_vjp(pi0, g), None, None


def reinmax(logits: torch.Tensor, tau: float = 1.0, index: torch.Tensor | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """A one-hot sample ``D ~ Cat(softmax(logits))`` with the ReinMax gradient.

    With ``pi_0 = softmax(logits)`` and ``pi_1 = (D + softmax(logits / tau)) / 2``,
    the backward pass returns ``2 J(pi_1) g - J(pi_0) g / 2`` for ``g = dL/dD``
    (``J(p) = diag(p) - p p^T``): Heun's second-order rule in place of
    straight-through's Euler step, at about the same cost. At ``tau = 1`` its expectation
    equals the true gradient whenever ``f`` is quadratic in ``D``. ``index``: as in
    :func:`straight_through`. ``logits``: ``(*batch, k)``. Returns ``(*batch, k)``.
    Reference: Liu, Dong, Liu, Yu & Gao (2023), the ReinMax algorithm.
    """
    _check_tensor(logits, "logits")
    work = _work_dtype(logits.dtype)
    tau = _check_tau(tau, work)
    D = _draw(logits, index, generator, work)
    return _ReinMax.apply(logits.to(work), D, tau).to(logits.dtype)


def relaxed_gradient(f: Callable, logits: torch.Tensor, method: str = "gumbel", tau: float = 1.0,
                     n_samples: int = 1, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient estimate of ``E_{z ~ Cat(softmax(logits))}[f(z)]`` by a relaxed or surrogate sample.

    ``method``: ``"gumbel"`` (``f`` at the soft sample, biased for ``tau > 0``),
    ``"gumbel_hard"`` (straight-through Gumbel), ``"straight_through"`` or
    ``"reinmax"``. Each of ``n`` samples is drawn independently and
    backpropagated; the estimate is their mean. ``f``: ``(n, *batch, k)`` ->
    ``(n, *batch)``, differentiable. Returns ``(grad (*batch, k), values (n, *batch))``.
    Reference: Jang et al. (2017); Bengio et al. (2013); Liu et al. (2023).
    """
    _check_f(f)
    logits = _check_tensor(logits, "logits").detach()
    if method not in RELAXED:
        raise ValueError(f"method must be one of {RELAXED}, got {method!r}")
    n = _check_count("n_samples", n_samples)
    work = _work_dtype(logits.dtype)
    _check_tau(tau, work)
    theta = logits.to(work).expand(n, *logits.shape).clone().requires_grad_(True)
    with torch.enable_grad():
        if method.startswith("gumbel"):
            y = gumbel_softmax(theta, tau, hard=method == "gumbel_hard", generator=generator)
        else:
            y = (straight_through if method == "straight_through" else reinmax)(theta, tau, generator=generator)
        values = _values(f(y.to(logits.dtype)), (n, *logits.shape[:-1]), work)
        if not values.requires_grad:  # f does not depend on y
            return torch.zeros_like(logits), values.detach().to(logits.dtype)
        (grad,) = torch.autograd.grad(values.sum(), theta, allow_unused=True)
    grad = torch.zeros_like(theta) if grad is None else grad
    if not bool(torch.isfinite(grad).all()):
        raise ValueError("the gradient of f at the relaxed samples is not finite (f too steep, or tau too small)")
    return grad.mean(0).to(logits.dtype), values.detach().to(logits.dtype)


# ---------------------------------------------------------------- differentiable sorting networks

def swap_sigmoid(u: torch.Tensor, kind: str = "cauchy") -> torch.Tensor:
    """A sigmoid ``f`` relaxing the step of a conditional swap, all with slope ``f'(0) = 1/4``.

    ``"logistic"``: ``1 / (1 + e^-u)``. ``"cauchy"``: ``1/2 + arctan(pi u / 4) / pi``
    (the Cauchy CDF). ``"reciprocal"``: ``1/(2 - u)`` for ``u < 0``, ``1 - 1/(2 + u)``
    for ``u >= 0``. ``"optimal"``: ``v + 1/2`` for ``|v| <= 1/4`` with ``v = u/4``,
    ``-1/(16 v)`` below and ``1 - 1/(16 v)`` above. All satisfy ``f(-u) = 1 - f(u)``.
    The relaxed swap is monotonic iff ``f(u) + u f'(u) >= 0`` for all ``u``: true for
    the last three (their tails decay like ``1/|u|``), false for the logistic.
    ``u``: any shape, floating. Returns a tensor shaped like ``u``.
    Reference: Petersen, Borgelt, Kuehne & Deussen (2022) (the family of monotonic sigmoids;
    shapes as in the authors' code, scaled here to a common slope at 0).
    """
    _check_tensor(u, "u", min_dim=0)
    if kind not in SIGMOIDS:
        raise ValueError(f"kind must be one of {SIGMOIDS}, got {kind!r}")
    return _sigmoid(u.to(_work_dtype(u.dtype)), kind).to(u.dtype)


def _sigmoid(u: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "logistic":
        return torch.sigmoid(u)
    if kind == "cauchy":
        return 0.5 + torch.atan(u * (math.pi / 4)) / math.pi
    pos, neg = u.clamp(min=0), u.clamp(max=0)  # each branch evaluated only where it is finite
    if kind == "reciprocal":
        return torch.where(u >= 0, 1 - 1 / (2 + pos), 1 / (2 - neg))
    v, vp, vn = u / 4, pos.clamp(min=1) / 4, neg.clamp(max=-1) / 4
    return torch.where(v > 0.25, 1 - 1 / (16 * vp), torch.where(v < -0.25, -1 / (16 * vn), v + 0.5))


def soft_sort(x: torch.Tensor, tau: float = 1.0, sigmoid: str = "cauchy") -> tuple[torch.Tensor, torch.Tensor]:
    """Sort ``x`` ascending along its last dimension with a relaxed odd-even transposition network.

    The network has ``n`` layers; layer ``l`` compares wires ``(i, i + 1)`` for
    ``i = l mod 2, l mod 2 + 2, ...``. Each conditional swap of ``(a, b)`` becomes,
    with ``alpha = f((b - a) / tau)`` (:func:`swap_sigmoid`), ``min = alpha a +
    (1 - alpha) b`` and ``max = (1 - alpha) a + alpha b``. The same mixing applied
    to the rows of the identity gives the relaxed permutation matrix ``P``
    (doubly stochastic), with ``values = P x``. As ``tau -> 0`` both tend to the
    hard sort (for distinct entries). ``x``: ``(*batch, n)``. Returns
    ``(values (*batch, n), P (*batch, n, n))``, ``P[..., r, i]`` = weight of ``x_i`` in rank ``r``.
    Reference: Petersen et al. (2022), "Monotonic Differentiable Sorting Networks"; Knuth,
    TAOCP vol. 3, section 5.3.4 (odd-even transposition sort).
    """
    _check_tensor(x, "x")
    if sigmoid not in SIGMOIDS:
        raise ValueError(f"sigmoid must be one of {SIGMOIDS}, got {sigmoid!r}")
    work = _work_dtype(x.dtype)
    tau = _check_tau(tau, work)
    n = x.shape[-1]
    values = x.to(work)
    P = torch.eye(n, dtype=work, device=x.device).expand(*x.shape, n)
    for layer in range(n):
        i = torch.arange(layer % 2, n - 1, 2, device=x.device)
        if len(i) == 0:
            continue
        j = i + 1
        a, b = values[..., i], values[..., j]
        alpha = _sigmoid((b - a) / tau, sigmoid)
        new = values.clone()
        new[..., i], new[..., j] = alpha * a + (1 - alpha) * b, (1 - alpha) * a + alpha * b
        al = alpha[..., None]
        Pi, Pj = P[..., i, :], P[..., j, :]
        P = P.clone()
        P[..., i, :], P[..., j, :] = al * Pi + (1 - al) * Pj, (1 - al) * Pi + al * Pj
        values = new
    return values.to(x.dtype), P.to(x.dtype)
