"""Training dynamics at large step sizes: stability, sharpness, edge of stability.

Chapter 7 (``book/07_edge_of_stability.md``, lab ``notebooks/07_edge_of_stability.ipynb``).

* :func:`gd_quadratic` and :func:`stability_threshold`: gradient descent on a
  quadratic ``f(x) = (x - x*)^T H (x - x*) / 2``, whose error evolves by the
  fixed map ``I - lr H``: it converges iff ``lr < 2 / lambda_max(H)``.
* :func:`sharpness`: the top Hessian eigenvalue of a loss, warm-started from
  the previous eigenvector, so that following it along training costs a few
  Hessian-vector products per measurement (``lib.curvature``).
* :func:`gd_with_sharpness`: full-batch gradient descent on a flat parameter
  vector that records the loss, the sharpness every few steps and, optionally,
  every example's loss: the measurements of progressive sharpening and of the
  edge of stability (sharpness rising to ``2 / lr``, then hovering there).
* :func:`loss_oscillation`, :func:`opposing_groups` and
  :func:`group_loss_correlation`: find the training examples whose losses swing
  the most from step to step, and split them into groups whose losses move in
  opposite directions (opposing signals).

References: Cohen, Kaur, Li, Kolter & Talwalkar (2021), "Gradient Descent on
Neural Networks Typically Occurs at the Edge of Stability"; Damian, Nichani &
Lee (2023), "Self-Stabilization: The Implicit Bias of Gradient Descent at the
Edge of Stability"; Agarwala, Pedregosa & Pennington (2023), "Second-order
regression models exhibit progressive sharpening to the edge of stability";
Kreisler, Nacson, Soudry & Carmon (2023), "Gradient Descent Monotonically
Decreases the Sharpness of Gradient Flow Solutions in Scalar Networks and
Beyond"; Wu & Su (2023), "The Implicit Regularization of Dynamical Stability in
Stochastic Gradient Descent"; Rosenfeld & Risteski (2024), "Outliers with
Opposing Signals Have an Outsized Effect on Neural Network Optimization".
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from . import curvature

__all__ = ["gd_quadratic", "stability_threshold", "sharpness", "GDRun", "gd_with_sharpness",
           "loss_oscillation", "opposing_groups", "group_loss_correlation"]

ScalarFn = Callable[[torch.Tensor], torch.Tensor]  # theta -> 0-dim loss


# ---------------------------------------------------------------- validation

def _check_int(name: str, value, low: int, high: float = math.inf) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if not low <= value <= high:
        bound = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_lr(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        raise TypeError(f"lr must be a number, got {type(lr).__name__} ({lr!r})")
    if not 0 < lr < math.inf:
        raise ValueError(f"lr must be a positive finite number, got {lr}")
    return float(lr)


def _check_tensor(name: str, x, ndim: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must have at least one element, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return x.detach()


def _check_symmetric(H) -> torch.Tensor:
    H = _check_tensor("H", H, ndim=2)
    n = H.shape[0]
    if H.shape != (n, n):
        raise ValueError(f"H must be square (n, n), got shape {tuple(H.shape)}")
    scale = float(H.abs().max())
    if not torch.allclose(H, H.T, rtol=0, atol=1e3 * torch.finfo(H.dtype).eps * max(scale, 1.0)):
        raise ValueError("H must be symmetric, got max |H - H^T| = "
                         f"{float((H - H.T).abs().max()):.3g}")
    return 0.5 * (H + H.T)


def _check_losses(losses, min_steps: int = 3) -> torch.Tensor:
    losses = _check_tensor("per_example_losses", losses, ndim=2)
    if losses.shape[0] < min_steps:
        raise ValueError(f"per_example_losses must have shape (T, N) with T >= {min_steps} "
                         f"recorded steps, got {tuple(losses.shape)}")
    return losses


# ---------------------------------------------------------------- quadratics

def gd_quadratic(H: torch.Tensor, x0: torch.Tensor, lr: float, steps: int,
                 x_star: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient descent on ``f(x) = (x - x*)^T H (x - x*) / 2``: the whole trajectory.

    The gradient is ``H (x - x*)``, so each step ``x <- x - lr H (x - x*)`` maps the
    error ``e = x - x*`` to ``(I - lr H) e``: along the eigenvector ``u_i`` of
    ``H`` the error is multiplied by ``1 - lr lambda_i`` at every step, and
    ``e_t = (I - lr H)^t e_0``. ``H``: symmetric ``(n, n)``; ``x0`` and ``x_star``
    (default zero): ``(n,)``. Returns the iterates ``(steps + 1, n)``, ``x0`` first.
    Raises ValueError when the iterates overflow (``lr`` far above
    :func:`stability_threshold`), instead of handing back inf or NaN.
    Reference: Cohen et al. (2021), section 2 (GD on quadratics); the classical
    linear stability analysis of gradient descent.
    """
    H = _check_symmetric(H)
    n = H.shape[0]
    x0 = _check_tensor("x0", x0, ndim=1)
    if x0.shape != (n,):
        raise ValueError(f"x0 must have shape ({n},) to match H, got {tuple(x0.shape)}")
    if x_star is None:
        x_star = torch.zeros_like(x0)
    x_star = _check_tensor("x_star", x_star, ndim=1)
    if x_star.shape != (n,):
        raise ValueError(f"x_star must have shape ({n},) to match H, got {tuple(x_star.shape)}")
    lr = _check_lr(lr)
    steps = _check_int("steps", steps, 0)
    dtype = torch.promote_types(H.dtype, x0.dtype)
    H, x, x_star = H.to(dtype), x0.to(dtype), x_star.to(dtype=dtype, device=x0.device)
    path = torch.empty(steps + 1, n, dtype=dtype, device=x0.device)
    path[0] = x
    for t in range(1, steps + 1):
        x = x - lr * (H @ (x - x_star))
        if not torch.isfinite(x).all():
            raise ValueError(f"the iterates overflowed at step {t}: lr = {lr} is far above the "
                             f"stability threshold 2 / lambda_max = {stability_threshold(H):.4g}")
        path[t] = x
    return path


def stability_threshold(H: torch.Tensor) -> float:
    """The largest stable step size of gradient descent on a quadratic, ``2 / lambda_max(H)``.

    GD on ``(x - x*)^T H (x - x*) / 2`` converges from every start iff every factor
    ``|1 - lr lambda_i| < 1``, i.e. ``0 < lr lambda_i < 2``: for positive definite
    ``H`` iff ``lr < 2 / lambda_max``. ``H``: symmetric ``(n, n)``; its eigenvalues
    come from ``torch.linalg.eigvalsh``. Returns ``inf`` when ``lambda_max <= 0``
    (no step size is too large for the top of the spectrum; a negative eigenvalue
    makes GD diverge along its eigenvector at every step size).
    Reference: Cohen et al. (2021), section 2; Wu & Su (2023), the linear
    stability of GD (``lambda_max <= 2 / lr``) and of SGD (trace bound).
    """
    H = _check_symmetric(H)
    lam_max = float(torch.linalg.eigvalsh(H.double())[-1])
    return 2.0 / lam_max if lam_max > 0 else math.inf


# ---------------------------------------------------------------- sharpness

def sharpness(f: ScalarFn, theta: torch.Tensor, v0: torch.Tensor | None = None, iters: int = 20,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The sharpness ``lambda_max`` of the Hessian of ``f`` at ``theta``, and its eigenvector.

    ``iters`` Lanczos steps (``lib.curvature.lanczos``) on Hessian-vector products
    (``lib.curvature.hvp``), started from ``v0``: pass the eigenvector returned by
    the previous measurement and, as the parameters move little between
    measurements, a handful of products suffices. Warm-started Lanczos is never
    worse than warm-started power iteration with as many products: the top Ritz
    value is the largest Rayleigh quotient over the whole Krylov space that
    power iteration walks through, and it targets the algebraically largest
    eigenvalue, not the largest in magnitude. ``v0``: shaped like ``theta``
    (random from ``generator`` if None). ``theta``: any shape, floating, finite.
    Returns ``(lambda_max, v)``: a 0-dim tensor and a unit tensor shaped like ``theta``.
    Reference: Cohen et al. (2021), appendix (sharpness by Lanczos every few
    steps); Lanczos (1950); Golub & Van Loan (4th ed.), Algorithm 10.1.1.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    theta = _check_tensor("theta", theta)
    n = theta.numel()
    iters = _check_int("iters", iters, 1)
    if v0 is not None:
        v0 = _check_tensor("v0", v0)
        if v0.shape != theta.shape:
            raise ValueError(f"v0 must have the shape of theta {tuple(theta.shape)}, "
                             f"got {tuple(v0.shape)}")
        if not bool((v0 != 0).any()):  # not v0.norm() > 0: the norm of a tiny v0 underflows
            raise ValueError("v0 must be non-zero")
        v0 = v0.reshape(-1).to(dtype=theta.dtype, device=theta.device)

    def matvec(q: torch.Tensor) -> torch.Tensor:
        return curvature.hvp(f, theta, q.reshape(theta.shape)).reshape(-1)

    alpha, beta, Q = curvature.lanczos(matvec, n, iters, generator=generator, v0=v0,
                                       dtype=theta.dtype, device=theta.device)
    if not (torch.isfinite(alpha).all() and torch.isfinite(beta).all()):
        raise ValueError("f has non-finite Hessian-vector products at theta "
                         "(does f return NaN or inf there?)")
    T = torch.diag(alpha) + torch.diag(beta, 1) + torch.diag(beta, -1)
    ritz, S = torch.linalg.eigh(T.double())  # small (iters x iters); float64 for any dtype
    v = S[:, -1].to(Q.dtype) @ Q
    return ritz[-1].to(theta.dtype), (v / v.norm()).reshape(theta.shape)


class GDRun(NamedTuple):
    """What :func:`gd_with_sharpness` records.

    ``theta`` ``(n,)``: the final parameters; ``loss`` ``(steps + 1,)``: the loss at
    each iterate, before each step and at the end; ``sharpness_steps`` ``(m,)``
    int64 and ``sharpness`` ``(m,)``: when and what ``lambda_max`` was measured;
    ``per_example`` ``(steps + 1, N)`` per-example losses, or None.
    Reference: Cohen et al. (2021), the quantities plotted in their figure 1.
    """

    theta: torch.Tensor
    loss: torch.Tensor
    sharpness_steps: torch.Tensor
    sharpness: torch.Tensor
    per_example: torch.Tensor | None


def gd_with_sharpness(f: ScalarFn, theta0: torch.Tensor, lr: float, steps: int, every: int = 20,
                      iters: int = 10, per_example: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      generator: torch.Generator | None = None) -> GDRun:
    """Full-batch gradient descent ``theta <- theta - lr grad f(theta)``, tracking the sharpness.

    Every ``every`` steps (and at step 0) :func:`sharpness` measures
    ``lambda_max`` with ``iters`` Lanczos steps warm-started from the last
    eigenvector, so tracking costs about ``iters / every`` HVPs per step.
    ``f``: the full-batch loss of a flat parameter vector (for example from
    ``lib.curvature.loss_as_function``); ``theta0``: ``(n,)``. ``per_example``
    (optional): ``theta -> (N,)`` the loss of every training example, recorded
    at every iterate, for :func:`opposing_groups`. ``generator``: for the random
    start of the first measurement. Gradients come from ``torch.autograd``.
    Returns a :class:`GDRun`. Raises ValueError naming the step if the loss
    becomes non-finite (GD diverged: the step size is far too large).
    Reference: Cohen et al. (2021), the full-batch GD experiments of section 3.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if per_example is not None and not callable(per_example):
        raise TypeError(f"per_example must be callable or None, got {type(per_example).__name__}")
    theta = _check_tensor("theta0", theta0, ndim=1).clone()
    lr = _check_lr(lr)
    steps = _check_int("steps", steps, 0)
    every = _check_int("every", every, 1)
    iters = _check_int("iters", iters, 1)
    losses = torch.empty(steps + 1, dtype=theta.dtype, device=theta.device)
    records, when, lams, v = [], [], [], None
    for t in range(steps + 1):
        x = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = f(x)
            if not isinstance(loss, torch.Tensor) or not torch.is_floating_point(loss):
                raise TypeError(f"f must return a real floating tensor, got "
                                f"{getattr(loss, 'dtype', type(loss).__name__)}")
            if loss.numel() != 1:
                raise ValueError(f"f must return a scalar (one element), got shape {tuple(loss.shape)}")
            if not torch.isfinite(loss).all():
                if t == 0:
                    raise ValueError("f returned a non-finite loss at theta0 (step 0), before any step")
                raise ValueError(f"the loss became non-finite at step {t}: gradient descent "
                                 f"diverged (lr = {lr} too large?)")
            g = (torch.autograd.grad(loss.reshape(()), x, allow_unused=True)[0]
                 if loss.requires_grad else None)
        losses[t] = loss.detach().reshape(())
        if t % every == 0:
            lam, v = sharpness(f, theta, v0=v, iters=iters, generator=generator)
            when.append(t)
            lams.append(lam)
        if per_example is not None:
            records.append(_per_example_losses(per_example, theta, records))
        if t < steps and g is not None:
            theta = theta - lr * g
    return GDRun(theta, losses, torch.tensor(when, dtype=torch.long, device=theta.device),
                 torch.stack(lams), torch.stack(records) if records else None)


def _per_example_losses(per_example: Callable, theta: torch.Tensor, records: list) -> torch.Tensor:
    with torch.no_grad():
        out = per_example(theta)
    if not isinstance(out, torch.Tensor) or not torch.is_floating_point(out) or out.ndim != 1:
        raise ValueError(f"per_example must return a 1-D floating tensor (N,), got "
                         f"{getattr(out, 'shape', type(out).__name__)}")
    if records and out.shape != records[0].shape:
        raise ValueError(f"per_example changed its output shape from {tuple(records[0].shape)} "
                         f"to {tuple(out.shape)}")
    if not torch.isfinite(out).all():
        raise ValueError("per_example returned NaN or inf")
    return out.detach().to(theta.dtype)


# ---------------------------------------------------------------- opposing signals

def loss_oscillation(per_example_losses: torch.Tensor) -> torch.Tensor:
    """How much each example's loss swings from step to step: ``mean_t |l_i(t+1) - l_i(t)|``.

    ``per_example_losses``: ``(T, N)``, row ``t`` the losses of the ``N`` examples at
    step ``t`` (``T >= 2``). Returns ``(N,)``. At the edge of stability GD
    oscillates along the top Hessian eigenvector, and a few examples carry most
    of the swing.
    Reference: Rosenfeld & Risteski (2024), section 2 (examples ranked by the
    change of their loss between steps).
    """
    losses = _check_losses(per_example_losses, min_steps=2)
    return losses.diff(dim=0).abs().mean(dim=0)


def _correlation(series: torch.Tensor) -> torch.Tensor:
    # Pearson correlation of the columns of (T, k); columns of zero variance get 0 off the diagonal.
    centred = series - series.mean(dim=0, keepdim=True)
    norms = centred.norm(dim=0)
    scaled = centred / torch.where(norms > 0, norms, torch.ones_like(norms))
    corr = scaled.T @ scaled
    corr.fill_diagonal_(1.0)
    return corr.clamp(-1.0, 1.0)


def opposing_groups(per_example_losses: torch.Tensor, k: int = 20
                    ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Two groups of examples whose losses move in opposite directions, with large swings.

    Takes the ``k`` examples of largest :func:`loss_oscillation`, forms the
    correlation matrix ``C`` ``(k, k)`` of their loss changes
    ``l_i(t+1) - l_i(t)``, and splits them by the sign of ``C``'s leading
    eigenvector (a spectral two-way cut): with two blocks of mutually
    correlated examples that anti-correlate with each other, that eigenvector
    is positive on one block and negative on the other. The larger group comes
    first. ``per_example_losses``: ``(T, N)`` with ``T >= 3``; ``k`` in ``[2, N]``.
    Returns ``(group_a, group_b, rho)``: int64 indices into the ``N`` examples,
    and the correlation of the groups' mean loss changes (close to -1 for
    opposing signals). Raises ValueError if the losses do not change, or if all
    ``k`` examples move together (no opposing groups).
    Reference: Rosenfeld & Risteski (2024), opposing signals: paired groups of
    outliers whose losses oscillate, high on one group, then on the other.
    """
    losses = _check_losses(per_example_losses)
    k = _check_int("k", k, 2, losses.shape[1])
    top = torch.argsort(loss_oscillation(losses), descending=True, stable=True)[:k]
    changes = losses[:, top].diff(dim=0)
    if not changes.abs().max() > 0:
        raise ValueError("per_example_losses do not change over the recorded steps")
    _, vecs = torch.linalg.eigh(_correlation(changes).double())
    lead = vecs[:, -1].to(changes.device)
    side = lead > 0
    if side.all() or (~side).all():
        raise ValueError(f"per_example_losses: the {k} most oscillating examples all move "
                         "together; no opposing groups")
    a, b = top[side], top[~side]
    if len(b) > len(a):
        a, b = b, a
    mean_a, mean_b = losses[:, a].diff(dim=0).mean(1), losses[:, b].diff(dim=0).mean(1)
    rho = float(_correlation(torch.stack([mean_a, mean_b], dim=1))[0, 1])
    return a, b, rho


def group_loss_correlation(per_example_losses: torch.Tensor, groups: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Correlation between the mean loss changes of labelled groups (classes, say).

    Group ``g``'s series is ``d_g(t) = mean_{i in g} (l_i(t+1) - l_i(t))``.
    Strongly negative entries of their Pearson correlation matrix mark pairs of
    groups whose losses see-saw: one goes up when the other goes down (a group
    whose loss never changes gets 0 off the diagonal). ``per_example_losses``:
    ``(T, N)``, ``T >= 3``; ``groups``: ``(N,)`` integer labels. Returns
    ``(labels, corr)``: the ``G`` distinct labels, ascending, ``(G,)``, and the
    correlation matrix ``(G, G)`` in that order.
    Reference: Rosenfeld & Risteski (2024), opposing signals between groups.
    """
    losses = _check_losses(per_example_losses)
    if not isinstance(groups, torch.Tensor) or groups.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"groups must be an integer tensor, got "
                        f"{getattr(groups, 'dtype', type(groups).__name__)}")
    if groups.shape != (losses.shape[1],):
        raise ValueError(f"groups must have shape ({losses.shape[1]},), got {tuple(groups.shape)}")
    labels, index = torch.unique(groups.to(losses.device), sorted=True, return_inverse=True)
    onehot = torch.nn.functional.one_hot(index, len(labels)).to(losses.dtype)
    means = losses.diff(dim=0) @ onehot / onehot.sum(0)
    return labels, _correlation(means)
