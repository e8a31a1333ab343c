"""Zeroth-order and evolutionary optimisation: gradients from function values alone.

Chapter 18 (``book/18_zeroth_order.md``, lab ``notebooks/18_zeroth_order.ipynb``).

Every estimator here only *evaluates* the objective ``f``; none calls autograd.
Finite differences along the coordinate axes are :func:`lib.calculus.finite_difference`
(chapter 1): ``2n`` evaluations for ``n`` parameters. The random-direction estimators
below need two evaluations per direction, whatever ``n`` is.

* :func:`spsa_gradient`: simultaneous perturbation (SPSA). All coordinates move at
  once along a random sign vector ``Delta``, and
  ``(f(x + c Delta) - f(x - c Delta)) / (2c) * Delta`` estimates ``grad f(x)``; on a
  quadratic the estimate does not depend on ``c`` and is unbiased.
* :func:`es_gradient`: evolution strategies (ES) as a smoothed gradient. With
  ``eps ~ N(0, I)``, ``E[f(x + sigma eps) eps] / sigma`` is exactly the gradient
  of the Gaussian-smoothed objective ``f_sigma(x) = E f(x + sigma eps)``, with
  or without antithetic (mirrored) pairs ``+-eps``.
* :func:`centered_ranks` (fitness shaping) and :func:`es_minimize`: the plain ES
  optimisation loop of Salimans et al., gradient steps along ES estimates.
* :func:`genetic_algorithm`: the Deep GA of Such et al.: truncation selection,
  Gaussian mutation, no crossover, and elitism, which keeps the best fitness
  from ever decreasing (for a deterministic fitness).

Conventions: a point ``x`` is a float32 or float64 tensor of any shape. The user's
``f`` (or ``fitness``) maps one point to a scalar tensor; with ``batched=True`` it
maps a batch of shape ``(B, *x.shape)`` to values of shape ``(B,)``, and every
estimator then evaluates all its points in one call. Randomness comes only from
``generator`` (a ``torch.Generator`` on ``x``'s device) or torch's global seed.

References: Spall (1992), "Multivariate Stochastic Approximation Using a
Simultaneous Perturbation Gradient Approximation" (SPSA); Nesterov & Spokoiny
(2017), "Random Gradient-Free Minimization of Convex Functions" (Gaussian
smoothing); Salimans, Ho, Chen, Sidor & Sutskever (2017), "Evolution Strategies as
a Scalable Alternative to Reinforcement Learning" (antithetic ES, centered ranks);
Such, Madhavan, Conti, Lehman, Stanley & Clune (2017), "Deep Neuroevolution:
Genetic Algorithms Are a Competitive Alternative for Training Deep Neural Networks
for Reinforcement Learning" (the GA).
"""

from __future__ import annotations

from typing import Callable

import torch

from .calculus import _check_finite
from .curvature import _check_callable, _check_generator, _check_int, _check_positive, _check_x

__all__ = ["spsa_gradient", "es_gradient", "centered_ranks", "es_minimize", "genetic_algorithm"]

Objective = Callable[[torch.Tensor], torch.Tensor]  # x -> scalar, or (B, *x.shape) -> (B,) if batched
_DTYPES = (torch.float32, torch.float64)


# ---------------------------------------------------------------- validation

def _check_point(x, name: str = "x") -> torch.Tensor:
    x = _check_x(x, name)  # a finite, non-empty floating tensor, detached
    if x.dtype not in _DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    return x


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} ({value!r})")
    return value


def _check_rng(generator, device: torch.device) -> torch.Generator | None:
    generator = _check_generator(generator)
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f"generator must live on x's device ({device.type}), got one on "
                         f"{generator.device.type}")
    return generator


def _check_scale(name: str, value, x: torch.Tensor) -> float:
    """A perturbation size (``c``, ``sigma``): positive, finite, and representable in x's dtype."""
    v = _check_positive(name, value)
    info = torch.finfo(x.dtype)
    if not info.tiny <= v <= info.max:
        raise ValueError(f"{name}={v:g} is not representable in {x.dtype}: it must lie in "
                         f"[{info.tiny:g}, {info.max:g}]")
    return v


def _value(out, name: str) -> torch.Tensor:
    """One user value: a real one-element tensor (finiteness is checked on the whole batch)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    if out.numel() != 1:
        raise ValueError(f"{name} must return a scalar (one element) per point, got shape {tuple(out.shape)}")
    return out.reshape(())


def _evaluate(f: Objective, points: torch.Tensor, batched: bool, name: str = "f",
              at: str = "x + sigma eps") -> torch.Tensor:
    """``f`` at each of the ``B`` points ``(B, *shape)``: a finite ``(B,)`` tensor of the points' dtype.

    With ``batched`` one call on the whole batch, else one call per point. ``at``
    says in error messages where the points come from (it names the step size).
    """
    if not bool(torch.isfinite(points).all()):
        raise ValueError(f"a point {at} overflowed to inf in {points.dtype}: the step is too large")
    count = points.shape[0]
    with torch.no_grad():
        if batched:
            out = f(points)
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
            if out.shape != (count,):
                raise ValueError(f"batched {name} must map a batch of {count} points to shape ({count},), "
                                 f"got shape {tuple(out.shape)}")
        else:
            out = torch.stack([_value(f(p), name) for p in points])
    if out.is_complex():
        raise TypeError(f"{name} must return real values, got {out.dtype}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} returned a non-finite value at a finite point {at}")
    out = out.detach().to(device=points.device, dtype=points.dtype)
    if not bool(torch.isfinite(out).all()):  # a finite value beyond the points' dtype (float64 -> float32)
        raise ValueError(f"{name} returned a value too large for {points.dtype} at {at}")
    return out


def _finite_estimate(g: torch.Tensor, what: str, scale: str) -> torch.Tensor:
    if not bool(torch.isfinite(g).all()):
        raise ValueError(f"the {what} estimate overflowed: f's values divided by {scale} are too large "
                         f"for {g.dtype}")
    return g


def _weighted_directions(weights: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """``mean_k weights_k * directions_k`` for ``weights (n,)`` and ``directions (n, *shape)``."""
    w = weights.reshape((-1,) + (1,) * (directions.ndim - 1))
    return (w * directions).mean(0)


# ---------------------------------------------------------------- SPSA

def spsa_gradient(f: Objective, x: torch.Tensor, c: float, n_samples: int = 1,
                  generator: torch.Generator | None = None, batched: bool = False) -> torch.Tensor:
    """Simultaneous-perturbation estimate of ``grad f(x)`` from ``2 * n_samples`` evaluations.

    For each of ``n_samples`` random sign vectors ``Delta`` (entries +-1 with
    probability 1/2 each),

        g = (f(x + c Delta) - f(x - c Delta)) / (2c) * Delta,

    and the samples are averaged (Spall's ``1 / Delta_i`` equals ``Delta_i`` for signs).
    The central difference along ``Delta`` is exact on a quadratic, so there the
    estimate does not depend on ``c`` and its mean is ``grad f(x)`` exactly; in
    general the bias is O(c^2). Per sample the total variance on a linear ``f``
    is ``(d - 1) ||grad f||^2`` for ``d`` entries of ``x`` (the book derives it).

    Args:
        f: maps a tensor shaped like ``x`` to a scalar tensor; with ``batched=True``,
            a ``(B, *x.shape)`` batch to ``(B,)`` values.
        x: float32 or float64 tensor, any shape (the point).
        c: perturbation size, > 0.
        n_samples: number of sign vectors averaged, >= 1.
        generator: optional ``torch.Generator`` on ``x``'s device.
        batched: whether ``f`` takes a batch (then one call evaluates all ``2 n_samples`` points).
    Returns:
        Tensor shaped like ``x``, of its dtype and device.
    Reference: Spall (1992), the simultaneous perturbation gradient approximation.
    """
    _check_callable("f", f)
    x = _check_point(x)
    c = _check_scale("c", c, x)
    n = _check_int("n_samples", n_samples, 1)
    generator = _check_rng(generator, x.device)
    batched = _check_bool("batched", batched)
    signs = torch.randint(0, 2, (n, *x.shape), generator=generator, device=x.device)
    delta = (2 * signs - 1).to(x.dtype)
    plus, minus = x + c * delta, x - c * delta
    if bool((plus == minus).any()):
        raise ValueError(f"c={c:.3g} is lost to rounding at x (x + c == x - c in {x.dtype}); use a larger c")
    values = _evaluate(f, torch.cat([plus, minus]), batched, at="x +- c Delta")
    slopes = (values[:n] - values[n:]) / (2 * c)  # directional derivatives along each Delta
    return _finite_estimate(_weighted_directions(slopes, delta), "SPSA", "2 * c")


# ---------------------------------------------------------------- evolution strategies

def _es_directions(x: torch.Tensor, sigma: float, n: int, antithetic: bool, generator):
    eps = torch.randn((n, *x.shape), generator=generator, dtype=x.dtype, device=x.device)
    plus = x + sigma * eps
    if bool((plus == x).all()):
        raise ValueError(f"sigma={sigma:.3g} is lost to rounding at x (x + sigma eps == x in {x.dtype}); "
                         "use a larger sigma")
    return eps, torch.cat([plus, x - sigma * eps]) if antithetic else plus


def _es_combine(values: torch.Tensor, eps: torch.Tensor, sigma: float, antithetic: bool) -> torch.Tensor:
    """The ES estimate from the values at ``x + sigma eps`` (and ``x - sigma eps`` if antithetic)."""
    n = eps.shape[0]
    weights = (values[:n] - values[n:]) / (2 * sigma) if antithetic else values / sigma
    return _weighted_directions(weights, eps)


def es_gradient(f: Objective, x: torch.Tensor, sigma: float, n_samples: int, antithetic: bool = True,
                generator: torch.Generator | None = None, batched: bool = False) -> torch.Tensor:
    """Monte Carlo estimate of ``grad f_sigma(x)``, the gradient of the Gaussian-smoothed objective.

    ``f_sigma(x) = E_{eps ~ N(0, I)} f(x + sigma eps)`` is differentiable even where
    ``f`` is not, and (Stein's lemma)

        grad f_sigma(x) = E[f(x + sigma eps) eps] / sigma
                        = E[(f(x + sigma eps) - f(x - sigma eps)) eps] / (2 sigma).

    With ``antithetic=True`` the second form is averaged over ``n_samples`` mirrored
    pairs (``2 n_samples`` evaluations); with ``antithetic=False`` the first over
    ``n_samples`` single points (``n_samples`` evaluations). Both are unbiased for
    ``grad f_sigma(x)``, not for ``grad f(x)``: they agree for quadratics, and
    differ by O(sigma^2) for smooth ``f``. The error falls like ``1 / sqrt(n_samples)``.
    As ``sigma -> 0`` an antithetic pair tends to the forward gradient of chapter 3,
    ``(grad f . eps) eps``.

    Args:
        f: maps a tensor shaped like ``x`` to a scalar tensor; with ``batched=True``,
            a ``(B, *x.shape)`` batch to ``(B,)`` values.
        x: float32 or float64 tensor, any shape.
        sigma: smoothing scale (standard deviation of the perturbations), > 0.
        n_samples: number of directions ``eps``, >= 1.
        antithetic: evaluate at ``x - sigma eps`` too (mirrored sampling).
        generator: optional ``torch.Generator`` on ``x``'s device.
        batched: whether ``f`` takes a batch.
    Returns:
        Tensor shaped like ``x``.
    Reference: Salimans et al. (2017), Algorithm 1, with their mirrored sampling;
    Nesterov & Spokoiny (2017), Gaussian smoothing.
    """
    _check_callable("f", f)
    x = _check_point(x)
    sigma = _check_scale("sigma", sigma, x)
    n = _check_int("n_samples", n_samples, 1)
    antithetic = _check_bool("antithetic", antithetic)
    generator = _check_rng(generator, x.device)
    batched = _check_bool("batched", batched)
    eps, points = _es_directions(x, sigma, n, antithetic, generator)
    values = _evaluate(f, points, batched)
    return _finite_estimate(_es_combine(values, eps, sigma, antithetic), "ES", "sigma")


def centered_ranks(values: torch.Tensor) -> torch.Tensor:
    """Fitness shaping: replace each value by its rank, scaled to ``[-0.5, 0.5]``.

    The smallest value maps to -0.5, the largest to 0.5, equal values share
    their average rank, and a single value maps to 0. An ES step on ranks is
    invariant to any increasing transformation of ``f`` and insensitive to outliers.

    Args:
        values: 1-D float tensor of ``n >= 1`` finite values.
    Returns:
        Tensor of shape ``(n,)``, dtype and device of ``values``.
    Reference: Salimans et al. (2017), fitness shaping by a rank transformation;
    Wierstra et al. (2014), "Natural Evolution Strategies", fitness shaping.
    """
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a torch.Tensor, got {type(values).__name__}")
    if not values.is_floating_point():
        raise TypeError(f"values must have a real floating dtype, got {values.dtype}")
    if values.ndim != 1 or values.numel() == 0:
        raise ValueError(f"values must be 1-D with at least one entry, got shape {tuple(values.shape)}")
    values = _check_finite("values", values.detach())
    n = values.numel()
    if n == 1:
        return torch.zeros_like(values)
    ordered = values.sort().values
    below = torch.searchsorted(ordered, values, right=False)       # how many are smaller
    at_or_below = torch.searchsorted(ordered, values, right=True)  # how many are smaller or equal
    rank = (below + at_or_below - 1).to(values.dtype) / 2          # 0 .. n-1, ties averaged
    return rank / (n - 1) - 0.5


def es_minimize(f: Objective, x0: torch.Tensor, sigma: float, lr: float, n_steps: int, n_samples: int,
                antithetic: bool = True, shaping: bool = False, generator: torch.Generator | None = None,
                batched: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise ``f`` by gradient descent on ES estimates: ``x <- x - lr * g``.

    Each step draws ``n_samples`` directions and evaluates ``f`` at ``2 n_samples``
    (antithetic) or ``n_samples`` points. With ``shaping=False``, ``g`` is
    :func:`es_gradient`, so the loop is stochastic gradient descent on the smoothed
    objective ``f_sigma``. With ``shaping=True`` the values are first replaced by
    their :func:`centered_ranks` within the step, as Salimans et al. do: the step
    no longer scales with ``f``, only its ordering of the points counts (``lr`` is
    then in units of ``x`` per unit rank).

    Args:
        f: objective to minimise; as in :func:`es_gradient`.
        x0: float32 or float64 starting point, any shape.
        sigma: smoothing scale, > 0.
        lr: step size, > 0.
        n_steps: number of steps, >= 0.
        n_samples: directions per step, >= 1.
        antithetic, generator, batched: as in :func:`es_gradient`.
    Returns:
        ``(x, history)``: the final point (shaped like ``x0``) and, of shape
        ``(n_steps,)``, the mean of ``f`` over each step's population, a free
        Monte Carlo estimate of ``f_sigma`` at that step's point.
    Reference: Salimans et al. (2017), Algorithm 1 (plain gradient steps here, where
    they use Adam) with fitness shaping.
    """
    _check_callable("f", f)
    x = _check_point(x0, "x0").clone()
    sigma = _check_scale("sigma", sigma, x)
    lr = _check_positive("lr", lr)
    steps = _check_int("n_steps", n_steps, 0)
    n = _check_int("n_samples", n_samples, 1)
    antithetic = _check_bool("antithetic", antithetic)
    shaping = _check_bool("shaping", shaping)
    generator = _check_rng(generator, x.device)
    batched = _check_bool("batched", batched)
    history = torch.empty(steps, dtype=x.dtype, device=x.device)
    for t in range(steps):
        eps, points = _es_directions(x, sigma, n, antithetic, generator)
        try:
            values = _evaluate(f, points, batched)
        except ValueError as err:
            if t == 0:
                raise
            raise ValueError(f"{err} (at step {t}, where the iterate reached max |x| = "
                             f"{float(x.abs().max()):.3g}: is lr={lr:g} too large?)") from None
        history[t] = values.mean()
        weights = centered_ranks(values) if shaping else values
        x = x - lr * _finite_estimate(_es_combine(weights, eps, sigma, antithetic), "ES", "sigma")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"the iterate overflowed at step {t}: lr={lr:g} is too large for this f")
    return x, history


# ---------------------------------------------------------------- genetic algorithm

def genetic_algorithm(fitness: Objective, population: torch.Tensor, n_generations: int, n_parents: int,
                      sigma: float, n_elite: int = 1, generator: torch.Generator | None = None,
                      batched: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maximise ``fitness`` with the simple genetic algorithm of Deep Neuroevolution.

    Every generation keeps the ``n_elite`` best individuals unchanged (elitism) and
    replaces the other ``N - n_elite`` by mutants ``theta_k + sigma eps`` of parents
    ``theta_k`` drawn uniformly from the ``n_parents`` best (truncation selection;
    no crossover). The fitness is assumed deterministic, so elites are not
    re-evaluated; with ``n_elite >= 1`` the best fitness then never decreases.

    Args:
        fitness: maps one individual (shape ``population.shape[1:]``) to a scalar
            tensor, larger is better; with ``batched=True``, ``(B, *shape)`` to ``(B,)``.
        population: the initial population, float32 or float64, shape ``(N, *shape)``, ``N >= 2``.
        n_generations: number of generations, >= 0.
        n_parents: truncation size ``T``, in ``[1, N]``.
        sigma: mutation scale, > 0.
        n_elite: individuals copied unchanged each generation, in ``[0, N]``.
        generator: optional ``torch.Generator`` on the population's device.
        batched: whether ``fitness`` takes a batch (one call per generation).
    Returns:
        ``(population, fitness, history)``: the final population sorted best first
        ``(N, *shape)``, its fitness ``(N,)`` in decreasing order, and the best
        fitness after each generation ``(n_generations + 1,)`` (entry 0: the initial
        population). ``N + n_generations * (N - n_elite)`` evaluations in all.
    Reference: Such et al. (2017), Algorithm 1 (the elite chosen by re-evaluation
    there, for noisy fitness, is simply the best here).
    """
    _check_callable("fitness", fitness)
    pop = _check_point(population, "population")
    if pop.ndim < 1 or pop.shape[0] < 2:
        raise ValueError(f"population must have shape (N, ...) with N >= 2 individuals, got "
                         f"{tuple(pop.shape)}")
    size = pop.shape[0]
    generations = _check_int("n_generations", n_generations, 0)
    parents = _check_int("n_parents", n_parents, 1, size)
    sigma = _check_scale("sigma", sigma, pop)
    elite = _check_int("n_elite", n_elite, 0, size)
    generator = _check_rng(generator, pop.device)
    batched = _check_bool("batched", batched)
    fit = _evaluate(fitness, pop.clone(), batched, "fitness", "an individual of population")
    history = torch.empty(generations + 1, dtype=pop.dtype, device=pop.device)
    order = fit.argsort(descending=True, stable=True)
    pop, fit = pop[order], fit[order]
    history[0] = fit[0]
    for g in range(1, generations + 1):
        n_children = size - elite
        if n_children:
            k = torch.randint(0, parents, (n_children,), generator=generator, device=pop.device)
            noise = torch.randn((n_children, *pop.shape[1:]), generator=generator, dtype=pop.dtype,
                                device=pop.device)
            children = pop[k] + sigma * noise
            child_fit = _evaluate(fitness, children, batched, "fitness", "a mutant theta + sigma eps")
            pop, fit = torch.cat([pop[:elite], children]), torch.cat([fit[:elite], child_fit])
            order = fit.argsort(descending=True, stable=True)  # ties keep elites first
            pop, fit = pop[order], fit[order]
        history[g] = fit[0]
    return pop, fit, history
