"""Saliency and attribution: gradients of a class score with respect to the input.

Chapter 19 (``book/19_attribution.md``, lab ``notebooks/19_attribution.ipynb``),
the first chapter of Part V, "Gradients with respect to the input".

A classifier ``model`` maps a batch ``x`` of shape ``(B, ...)`` to logits
``(B, C)``; the score explained is the logit ``f_c(x) = model(x)[b, c]`` of a
``target`` class ``c`` (an int, or one class per example as a ``(B,)`` tensor).
Every method returns attributions shaped like ``x``.

* :func:`input_gradient`: ``grad_x f_c(x)``, the plain saliency map
  (Simonyan et al. 2014 show its absolute value).
* :func:`gradient_x_input`: ``x * grad_x f_c(x)``, exact for a linear model with
  a zero baseline.
* :func:`smoothgrad`: the input gradient averaged over Gaussian perturbations
  ``x + N(0, sigma^2 I)``.
* :func:`integrated_gradients`: ``(x - x') * int_0^1 grad f_c(x' + a (x - x')) da``
  along the straight path from a baseline ``x'``, by a Riemann or trapezoid rule
  with all path points in one batched pass (or in chunks of ``batch_size``).
* :func:`completeness`: IG's defining check, ``sum_i IG_i = f_c(x) - f_c(x')``,
  returning both sides and the gap.
* :func:`attribution_mass`: the share of ``|attribution|`` inside a mask (the
  signal block of :func:`lib.data.block_digits`).
* :func:`rank_correlation`: Spearman's rank correlation of two maps per example,
  the similarity measure of the model-randomisation sanity check.

Put a module in ``eval()`` mode first: every method evaluates many inputs in one
batch and assumes each output row depends only on its own input row.

References: Simonyan, Vedaldi & Zisserman (2014), "Deep Inside Convolutional
Networks: Visualising Image Classification Models and Saliency Maps"; Shrikumar
et al. (2017), "Learning Important Features Through Propagating Activation
Differences" (gradient x input); Smilkov et al. (2017), "SmoothGrad: removing
noise by adding noise"; Sundararajan, Taly & Yan (2017), "Axiomatic Attribution
for Deep Networks"; Adebayo et al. (2018), "Sanity Checks for Saliency Maps";
Shah, Jain & Netrapalli (2021), "Do Input Gradients Highlight Discriminative
Features?"; Han, Srinivas & Lakkaraju (2022), "Which Explanation Should I
Choose? A Function Approximation Perspective to Characterizing Post Hoc
Explanations"; Bilodeau et al. (2024), "Impossibility Theorems for Feature
Attribution".
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from .calculus import _check_finite
from .curvature import _check_callable, _check_generator, _check_int, _check_real, _check_x

__all__ = ["input_gradient", "gradient_x_input", "smoothgrad", "integrated_gradients", "Completeness",
           "completeness", "attribution_mass", "rank_correlation"]

Model = Callable[[torch.Tensor], torch.Tensor]  # (N, ...) inputs -> (N, C) logits
RULES = ("trapezoid", "left", "right", "midpoint")


# ---------------------------------------------------------------- validation


def _check_batch(x) -> torch.Tensor:
    """A finite floating batch ``(B, ...)`` with ``B >= 1``, detached."""
    x = _check_x(x)
    if x.ndim < 1:
        raise ValueError("x must be a batch of shape (B, ...), got a 0-dim tensor")
    return x


def _check_target(target, x: torch.Tensor) -> torch.Tensor:
    """``target`` as a ``(B,)`` int64 tensor on x's device (range checked against the output later)."""
    batch = x.shape[0]
    if isinstance(target, torch.Tensor):
        if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
            raise TypeError(f"target must be an int or an integer tensor of class indices, got {target.dtype}")
        if target.shape != (batch,):
            raise ValueError(f"target must be an int or have shape (B,) = ({batch},), got {tuple(target.shape)}")
        target = target.to(device=x.device, dtype=torch.long)
    else:
        c = _check_int("target", target, 0)
        target = torch.full((batch,), c, dtype=torch.long, device=x.device)
    if batch and int(target.min()) < 0:
        raise ValueError(f"target must hold class indices >= 0, got {int(target.min())}")
    return target


def _check_baseline(baseline, x: torch.Tensor) -> torch.Tensor:
    """``None`` (zeros), or a tensor shaped like ``x`` or like one example ``x.shape[1:]``."""
    if baseline is None:
        return torch.zeros_like(x)
    if not isinstance(baseline, torch.Tensor) or not torch.is_floating_point(baseline):
        raise TypeError(f"baseline must be None or a floating torch.Tensor, got "
                        f"{getattr(baseline, 'dtype', type(baseline).__name__)}")
    if baseline.shape not in (x.shape, x.shape[1:]):
        raise ValueError(f"baseline must have the shape of x {tuple(x.shape)} or of one example "
                         f"{tuple(x.shape[1:])}, got {tuple(baseline.shape)}")
    if baseline.device != x.device:
        raise ValueError(f"baseline must be on x's device {x.device}, got {baseline.device}")
    _check_finite("baseline", baseline.detach())
    return baseline.detach().to(x.dtype).expand_as(x)


def _check_batch_size(batch_size) -> int | None:
    return None if batch_size is None else _check_int("batch_size", batch_size, 1)


def _selected(model: Model, xs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``model(xs)[n, target[n]]``, the output checked: a finite floating ``(N, C)`` tensor."""
    out = model(xs)
    if not isinstance(out, torch.Tensor) or not torch.is_floating_point(out):
        raise TypeError(f"model must return a floating tensor of logits, got "
                        f"{getattr(out, 'dtype', type(out).__name__)}")
    if out.ndim != 2 or out.shape[0] != xs.shape[0]:
        raise ValueError(f"model must return logits of shape (N, C) for N = {xs.shape[0]} inputs, got "
                         f"{tuple(out.shape)}")
    if int(target.max()) >= out.shape[1]:
        raise ValueError(f"target must be a class index below C = {out.shape[1]} (the model's outputs), "
                         f"got {int(target.max())}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError("model returned a non-finite logit at a finite input")
    return out.gather(1, target[:, None]).squeeze(1)


def _gradients(model: Model, xs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Row by row ``grad_x model(x)[target]`` for a batch ``xs``, in one backward pass.

    Summing the selected logits first is exact because row ``n`` of the output
    depends on row ``n`` of the input only (a model in eval mode).
    """
    with torch.enable_grad():
        xs = xs.detach().requires_grad_(True)
        score = _selected(model, xs, target)
        g = None
        if score.requires_grad:
            (g,) = torch.autograd.grad(score.sum(), xs, allow_unused=True)
    if g is None:  # the score does not depend on x
        return torch.zeros_like(xs)
    if not bool(torch.isfinite(g).all()):
        raise ValueError("the gradient of the model's target logit is not finite at a point of the batch")
    return g.detach().to(xs.dtype)


def _chunks(n_points: int, batch: int, batch_size: int | None):
    """Ranges of path points (or noise samples) per forward pass: all at once if ``batch_size`` is None."""
    per_pass = n_points if batch_size is None else max(1, batch_size // max(batch, 1))
    return [(i, min(i + per_pass, n_points)) for i in range(0, n_points, per_pass)]


# ---------------------------------------------------------------- gradients


def input_gradient(model: Model, x: torch.Tensor, target) -> torch.Tensor:
    """The input gradient ``grad_x f_c(x)`` of the target logit, one map per example.

    Args:
        model: callable (an ``nn.Module`` in eval mode) mapping ``(B, ...)`` to logits ``(B, C)``.
        x: floating batch of shape ``(B, ...)``.
        target: class index (int) or ``(B,)`` integer tensor of class indices.

    Returns:
        A tensor shaped like ``x``: the signed gradient; saliency maps show its
        absolute value. Zero where the logit does not depend on ``x``.
    Reference: Simonyan, Vedaldi & Zisserman (2014), "Deep Inside Convolutional
    Networks", section 3 (the class saliency map).
    """
    _check_callable("model", model)
    x = _check_batch(x)
    target = _check_target(target, x)
    return _gradients(model, x, target)


def gradient_x_input(model: Model, x: torch.Tensor, target) -> torch.Tensor:
    """Gradient times input, ``x * grad_x f_c(x)``, shaped like ``x``.

    For a linear score ``f(x) = w^T x + b`` this is ``w * x``: each feature's
    contribution to ``f(x) - f(0)``, i.e. Integrated Gradients with a zero baseline.
    Reference: Shrikumar et al. (2017), "Learning Important Features Through
    Propagating Activation Differences" (the gradient * input baseline).
    """
    _check_callable("model", model)
    x = _check_batch(x)
    target = _check_target(target, x)
    return x * _gradients(model, x, target)


def smoothgrad(model: Model, x: torch.Tensor, target, sigma: float, n_samples: int = 50, *,
               generator: torch.Generator | None = None, batch_size: int | None = None) -> torch.Tensor:
    """SmoothGrad: the input gradient averaged over ``n_samples`` noisy copies of ``x``.

    ``(1/n) sum_k grad_x f_c(x + eps_k)`` with ``eps_k ~ N(0, sigma^2 I)``: a
    Monte Carlo estimate of the gradient of ``f_c`` smoothed by a Gaussian.
    ``sigma`` is in the units of ``x`` (Smilkov et al. quote it as a fraction of
    ``x_max - x_min``; for pixels in [0, 1] the two agree). With ``sigma = 0``
    it returns :func:`input_gradient` exactly, without drawing noise.

    Args:
        model, x, target: as in :func:`input_gradient`.
        sigma: noise standard deviation, ``>= 0``.
        n_samples: number of noisy copies, ``>= 1``.
        generator: optional ``torch.Generator`` on x's device, for reproducible noise.
        batch_size: at most this many inputs per forward pass (all at once if None).

    Returns:
        A tensor shaped like ``x``.
    Reference: Smilkov et al. (2017), "SmoothGrad: removing noise by adding
    noise" (the smoothed sensitivity map).
    """
    _check_callable("model", model)
    x = _check_batch(x)
    target = _check_target(target, x)
    sigma = _check_real("sigma", sigma)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    n_samples = _check_int("n_samples", n_samples, 1)
    generator = _check_generator(generator)
    if generator is not None and generator.device.type != x.device.type:
        raise ValueError(f"generator must be on x's device {x.device}, got {generator.device}")
    batch_size = _check_batch_size(batch_size)
    if sigma == 0:
        return _gradients(model, x, target)
    # all the noise drawn at once, so that the result does not depend on batch_size
    eps = torch.randn((n_samples,) + tuple(x.shape), generator=generator, device=x.device, dtype=x.dtype)
    total = torch.zeros_like(x)
    for lo, hi in _chunks(n_samples, x.shape[0], batch_size):
        k = hi - lo
        xs = (x.unsqueeze(0) + sigma * eps[lo:hi]).reshape((k * x.shape[0],) + tuple(x.shape[1:]))
        if not bool(torch.isfinite(xs).all()):
            raise ValueError(f"x + sigma * noise overflows {x.dtype} (sigma={sigma})")
        g = _gradients(model, xs, target.repeat(k))
        total += g.reshape((k,) + tuple(x.shape)).sum(0)
    return total / n_samples


# ---------------------------------------------------------------- Integrated Gradients


def _rule(rule: str, steps: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes ``alpha_k`` in [0, 1] and weights ``w_k`` (summing to 1) of a quadrature rule."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    k = torch.arange(steps + (rule == "trapezoid"), dtype=torch.float64)
    alphas = {"left": k / steps, "right": (k + 1) / steps, "midpoint": (k + 0.5) / steps,
              "trapezoid": k / steps}[rule]
    weights = torch.full_like(alphas, 1.0 / steps)
    if rule == "trapezoid":
        weights[0] = weights[-1] = 0.5 / steps
    return alphas.to(device=device, dtype=dtype), weights.to(device=device, dtype=dtype)


def integrated_gradients(model: Model, x: torch.Tensor, baseline, target, steps: int = 50, *,
                         rule: str = "trapezoid", batch_size: int | None = None) -> torch.Tensor:
    """Integrated Gradients along the straight path from ``baseline`` to ``x``.

    ``IG_i(x) = (x_i - x'_i) * int_0^1 d f_c(x' + a (x - x')) / d x_i  da``,
    the integral replaced by a quadrature rule with ``steps`` intervals:

    * ``"trapezoid"`` (default): nodes ``k/steps``, ``k = 0..steps``, end weights halved;
      error ``O(steps^-2)`` for a smooth model;
    * ``"left"``, ``"right"``, ``"midpoint"``: Riemann sums with ``steps`` nodes
      (Sundararajan et al. use the right sum); ``O(steps^-1)``, midpoint ``O(steps^-2)``.

    For a piecewise-linear (ReLU) network the integrand jumps where the path crosses a
    kink, and every rule's error falls only like ``1/steps``.

    Args:
        model: callable mapping ``(N, ...)`` to logits ``(N, C)`` (an ``nn.Module`` in eval mode).
        x: floating batch ``(B, ...)``.
        baseline: ``None`` (the zero image), or a tensor shaped like ``x`` or like one
            example ``x.shape[1:]`` (shared by the batch).
        target: class index (int) or ``(B,)`` integer tensor.
        steps: number of quadrature intervals, ``>= 1``.
        rule: ``"trapezoid"``, ``"left"``, ``"right"`` or ``"midpoint"``.
        batch_size: at most this many path points per forward pass; None puts all
            ``(steps + 1) * B`` of them in one pass.

    Returns:
        Attributions shaped like ``x``. Their sum over the features of an example
        approximates ``f_c(x) - f_c(x')`` (completeness; see :func:`completeness`).
    Reference: Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep
    Networks", section 3 (the definition) and its Riemann approximation.
    """
    _check_callable("model", model)
    x = _check_batch(x)
    baseline = _check_baseline(baseline, x)
    target = _check_target(target, x)
    steps = _check_int("steps", steps, 1)
    batch_size = _check_batch_size(batch_size)
    alphas, weights = _rule(rule, steps, x.dtype, x.device)
    delta = x - baseline
    if not bool(torch.isfinite(delta).all()):
        raise ValueError(f"x - baseline overflows {x.dtype}")
    shape = (1,) * x.ndim
    avg_grad = torch.zeros_like(x)
    for lo, hi in _chunks(len(alphas), x.shape[0], batch_size):
        a, w = alphas[lo:hi], weights[lo:hi]
        path = baseline.unsqueeze(0) + a.reshape(-1, *shape) * delta.unsqueeze(0)  # (k, B, ...)
        g = _gradients(model, path.reshape((-1,) + tuple(x.shape[1:])), target.repeat(hi - lo))
        avg_grad += (w.reshape(-1, *shape) * g.reshape(path.shape)).sum(0)
    return delta * avg_grad


class Completeness(NamedTuple):
    """Both sides of the completeness identity, per example (each of shape ``(B,)``).

    ``attribution_sum = sum_i a_i``, ``output_difference = f_c(x) - f_c(x')`` and
    ``error = |attribution_sum - output_difference|`` (absolute; divide by
    ``|output_difference|`` for a relative error).
    """

    attribution_sum: torch.Tensor
    output_difference: torch.Tensor
    error: torch.Tensor


def completeness(model: Model, x: torch.Tensor, baseline, target, attributions: torch.Tensor) -> Completeness:
    """Check completeness: do the attributions of each example sum to ``f_c(x) - f_c(x')``?

    Args:
        model, x, baseline, target: as in :func:`integrated_gradients`.
        attributions: tensor shaped like ``x`` (from any method; IG satisfies the
            identity up to its quadrature error, gradient x input only for linear models).

    Returns:
        :class:`Completeness` with ``(B,)`` tensors, in x's dtype.
    Reference: Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep
    Networks", Proposition 1 (completeness).
    """
    _check_callable("model", model)
    x = _check_batch(x)
    baseline = _check_baseline(baseline, x)
    target = _check_target(target, x)
    if not isinstance(attributions, torch.Tensor) or not torch.is_floating_point(attributions):
        raise TypeError(f"attributions must be a floating torch.Tensor, got "
                        f"{getattr(attributions, 'dtype', type(attributions).__name__)}")
    if attributions.shape != x.shape:
        raise ValueError(f"attributions must have the shape of x {tuple(x.shape)}, got {tuple(attributions.shape)}")
    _check_finite("attributions", attributions.detach())
    with torch.no_grad():
        both = _selected(model, torch.cat([x, baseline]), target.repeat(2)).to(x.dtype)
    diff = both[: x.shape[0]] - both[x.shape[0]:]
    total = attributions.detach().to(device=x.device, dtype=x.dtype).reshape(x.shape[0], -1).sum(1)
    return Completeness(total, diff, (total - diff).abs())


# ---------------------------------------------------------------- comparing maps


def _check_maps(name: str, a) -> torch.Tensor:
    a = _check_x(a, name)
    if a.ndim < 2:
        raise ValueError(f"{name} must be a batch of maps of shape (B, ...) with ndim >= 2, got "
                         f"{tuple(a.shape)}")
    return a


def attribution_mass(attributions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The share of each map's absolute attribution that falls inside ``mask``.

    ``sum_i |a_i| m_i / sum_i |a_i|`` per example, in [0, 1]. With ``mask`` the
    signal block of a BlockMNIST-style image, it measures how much of a saliency
    map lands on the features that decide the label.

    Args:
        attributions: floating ``(B, ...)`` maps (ndim >= 2).
        mask: boolean tensor shaped like ``attributions`` or like one map ``(...)``.

    Returns:
        ``(B,)`` tensor in attributions' dtype (float32 for half precision input).
    Raises ValueError for a map that is zero everywhere (its share is undefined).
    Reference: Shah, Jain & Netrapalli (2021), "Do Input Gradients Highlight
    Discriminative Features?", section 4 (attribution mass on the signal block).
    """
    a = _check_maps("attributions", attributions)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a boolean torch.Tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.shape not in (a.shape, a.shape[1:]):
        raise ValueError(f"mask must have the shape of attributions {tuple(a.shape)} or of one map "
                         f"{tuple(a.shape[1:])}, got {tuple(mask.shape)}")
    a = a.abs().to(torch.promote_types(a.dtype, torch.float32)).reshape(a.shape[0], -1)
    m = mask.to(a.device).expand(attributions.shape).reshape(a.shape[0], -1)
    total = a.sum(1)
    if not bool((total > 0).all()):
        rows = torch.nonzero(total == 0).flatten()[:5].tolist()
        raise ValueError(f"attributions must not be zero everywhere in a map (the share is undefined); "
                         f"maps {rows} are")
    return (a * m).sum(1) / total


def _ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1 of a 1-D tensor, ties given their average rank (as scipy.stats.rankdata - 1)."""
    order = torch.argsort(v, stable=True)
    sorted_v = v[order]
    _, inverse, counts = torch.unique_consecutive(sorted_v, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)
    average = ends - (counts.to(torch.float64) + 1) / 2  # mean of 0-based positions in each group
    ranks = torch.empty_like(average[inverse])
    ranks[order] = average[inverse]
    return ranks


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation between two batches of maps, one number per example.

    The Pearson correlation of the ranks of ``a[n]`` and ``b[n]`` (ties get their
    average rank), in [-1, 1]: 1 when one map is an increasing function of the
    other. Used by the model-randomisation test: the saliency of a trained model
    and of a randomly initialised copy should differ.

    Args:
        a, b: floating tensors of the same shape ``(B, ...)`` (ndim >= 2, at least two
            features per map).

    Returns:
        ``(B,)`` float64 tensor. Raises ValueError when a map is constant (no ranking).
    Reference: Adebayo et al. (2018), "Sanity Checks for Saliency Maps",
    section 3 (Spearman rank correlation between maps).
    """
    a = _check_maps("a", a)
    b = _check_maps("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a[0].numel() < 2:
        raise ValueError(f"a and b must have at least two features per map to rank, got shape {tuple(a.shape)}")
    b = b.to(a.device)
    out = []
    for name, rows in (("a", a), ("b", b)):
        flat = rows.reshape(rows.shape[0], -1).to(torch.float64)
        ranks = torch.stack([_ranks(r) for r in flat])
        ranks = ranks - ranks.mean(1, keepdim=True)
        norms = ranks.norm(dim=1)
        if not bool((norms > 0).all()):
            raise ValueError(f"{name} has a constant map (example {int(torch.nonzero(norms == 0)[0])}): "
                             "its ranks are all tied and the correlation is undefined")
        out.append(ranks / norms[:, None])
    return (out[0] * out[1]).sum(1).clamp(-1.0, 1.0)
