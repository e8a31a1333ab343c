"""Adversarial examples and certified robustness: attacks by the input gradient, bounds by intervals.

Chapter 20 (``book/20_adversarial.md``, lab ``notebooks/20_adversarial.ipynb``).

* Attacks follow the gradient of the loss with respect to the *input*. :func:`fgsm` takes one
  signed-gradient step of size ``eps`` (the fast gradient sign method); :func:`pgd_attack` takes
  ``steps`` signed steps of size ``alpha`` from a random start in the L-infinity ball
  ``B(x, eps) = {x' : max_i |x'_i - x_i| <= eps}`` and projects back onto it (and onto an optional
  input range) after each one, a projected gradient ascent on the cross-entropy.
* :func:`adversarial_training` minimises the loss at PGD's points, a stochastic approximation of
  the saddle-point problem ``min_theta E max_{x' in B(x, eps)} loss(f_theta(x'), y)``.
* :func:`ibp_bounds` pushes the box ``[lower, upper]`` through a stack of ``Linear``/``ReLU``/
  ``Flatten`` layers (interval bound propagation): with centre ``mu`` and radius ``r``, a
  ``Linear`` layer maps them to ``W mu + b`` and ``|W| r``, a ReLU maps both ends. The bounds are
  widened by Higham's rounding allowance ``gamma_n (|W| max(|l|, |u|) + |b|)`` so that they hold
  for the outputs the network computes in floating point, not only in exact arithmetic.
  :func:`margin_bounds` bounds the margins ``z_y - z_j`` directly, folding the last layer into
  the specification (Gowal et al.'s "elision"), and :func:`certified_accuracy` counts the points
  whose every margin bound is positive: no input in the ball can change their prediction.
* :func:`ibp_training` minimises Gowal et al.'s mixture
  ``kappa CE(z, y) + (1 - kappa) CE(-m_lower, y)`` with ``eps`` ramped up from 0 and ``kappa``
  from 1 during a short warm-up, as Shi et al. advocate.

Attacks run the model in eval mode and restore every module's train/eval flag afterwards; they
differentiate with respect to the input only (``torch.autograd.grad``), so they leave the
parameters' ``.grad`` and ``requires_grad`` untouched.

References: Goodfellow, Shlens & Szegedy (2015), "Explaining and Harnessing Adversarial
Examples"; Madry, Makelov, Schmidt, Tsipras & Vladu (2018), "Towards Deep Learning Models
Resistant to Adversarial Attacks"; Gowal et al. (2018), "On the Effectiveness of Interval Bound
Propagation for Training Verifiably Robust Models"; Shi, Wang, Zhang, Yi & Hsieh (2021), "Fast
Certified Robust Training with Short Warmup"; Mao, Mueller, Fischer & Vechev (2023),
"Understanding Certified Training with Interval Bound Propagation"; Higham (2002), "Accuracy and
Stability of Numerical Algorithms", chapter 3.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .calculus import _check_finite
from .curvature import _check_generator, _check_int, _check_positive, _check_real
from .generalization import _check_module

__all__ = ["fgsm", "pgd_attack", "adversarial_training", "ibp_bounds", "margin_bounds",
           "certified_accuracy", "ibp_training"]

# ---------------------------------------------------------------- validation

def _check_model(model) -> nn.Module:
    _check_module(model)
    return model


def _check_params_match(model: nn.Module, x: torch.Tensor) -> None:
    for name, p in model.named_parameters():
        if p.device != x.device:
            raise ValueError(f"model parameter {name!r} is on {p.device} but the input is on {x.device}")
        if p.is_floating_point() and p.dtype != x.dtype:
            raise TypeError(f"model parameter {name!r} has dtype {p.dtype} but the input has {x.dtype}")


def _check_batch(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0 or x.numel() == 0:
        raise ValueError(f"{name} must be a non-empty batch of shape (N, ...) with N >= 1, got shape "
                         f"{tuple(x.shape)}")
    return _check_finite(name, x.detach())


def _check_xy(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x = _check_batch("x", x)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor of class labels, got {type(y).__name__}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) (one label per row of x), got {tuple(y.shape)}")
    if y.device != x.device:
        raise ValueError(f"y must be on x's device {x.device}, got {y.device}")
    if bool((y < 0).any()):
        raise ValueError(f"y must hold labels >= 0, got minimum {int(y.min())}")
    return x, y.long()


def _check_clamp(clamp, x: torch.Tensor) -> tuple[float, float] | None:
    if clamp is None:
        return None
    if not isinstance(clamp, (tuple, list)) or len(clamp) != 2:
        raise TypeError(f"clamp must be None or a pair (lo, hi), got {clamp!r}")
    lo, hi = _check_real("clamp[0]", clamp[0]), _check_real("clamp[1]", clamp[1])
    if not lo < hi:
        raise ValueError(f"clamp must have lo < hi, got ({lo}, {hi})")
    if bool((x < lo).any()) or bool((x > hi).any()):
        raise ValueError(f"x must lie in the clamp range [{lo}, {hi}], got values in "
                         f"[{float(x.min())}, {float(x.max())}]")
    return lo, hi


def _check_eps(eps) -> float:
    eps = _check_real("eps", eps)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    return eps


def _logits(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z = model(x)
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"model must return a torch.Tensor of logits, got {type(z).__name__}")
    if z.ndim != 2 or z.shape[0] != x.shape[0] or z.shape[1] < 2:
        raise ValueError(f"model must return logits of shape (N, C) = ({x.shape[0]}, C) with C >= 2, got "
                         f"{tuple(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError("model returned non-finite logits")
    if int(y.max()) >= z.shape[1]:
        raise ValueError(f"y must hold labels < C = {z.shape[1]} (the number of logits), got {int(y.max())}")
    return z


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode (no batch-norm statistics updated); restore each module's flag."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _input_grad(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``grad_x sum_i CE(f(x_i), y_i)``, the gradient with respect to the input only."""
    with torch.enable_grad():
        x_adv = x_adv.detach().requires_grad_(True)
        loss = F.cross_entropy(_logits(model, x_adv, y), y, reduction="sum")
        if not loss.requires_grad:
            raise ValueError("model's logits do not depend differentiably on x: no gradient reaches the input")
        (g,) = torch.autograd.grad(loss, [x_adv], allow_unused=True)
    if g is None:  # the logits ignore x: a zero gradient, and the attack stays put
        return torch.zeros_like(x_adv)
    return _check_finite("the input gradient of the loss", g)


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, clamp) -> torch.Tensor:
    x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps)
    return x_adv if clamp is None else x_adv.clamp(clamp[0], clamp[1])


# ---------------------------------------------------------------- attacks

def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
         clamp: tuple[float, float] | None = None) -> torch.Tensor:
    """The fast gradient sign method: ``x + eps * sign(grad_x CE(f(x), y))``.

    Args:
        model: a classifier mapping ``(N, ...)`` inputs to ``(N, C)`` logits.
        x: ``(N, ...)`` floating inputs; y: ``(N,)`` integer labels in ``[0, C)``.
        eps: the L-infinity radius, ``>= 0``.
        clamp: optional input range ``(lo, hi)``; ``x`` must lie in it and the result is clipped to it.

    Returns:
        ``(N, ...)`` adversarial inputs (detached), within ``eps`` of ``x`` in every coordinate.
    Reference: Goodfellow, Shlens & Szegedy (2015), "Explaining and Harnessing Adversarial
    Examples" (the fast gradient sign method).
    """
    model = _check_model(model)
    x, y = _check_xy(x, y)
    eps = _check_eps(eps)
    clamp = _check_clamp(clamp, x)
    _check_params_match(model, x)
    with _eval_mode(model):
        g = _input_grad(model, x, y)
    return _project(x + eps * g.sign(), x, eps, clamp).detach()


def pgd_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float,
               steps: int, *, random_start: bool = True, generator: torch.Generator | None = None,
               clamp: tuple[float, float] | None = None) -> torch.Tensor:
    """Projected gradient ascent on the cross-entropy in the L-infinity ball of radius ``eps``.

    ``x^0 = x + U(-eps, eps)`` (or ``x`` when ``random_start`` is False), then ``steps`` times
    ``x^{t+1} = P(x^t + alpha * sign(grad_x CE(f(x^t), y)))`` with ``P`` the projection onto the
    ball (and onto ``clamp``). Returns the last iterate.

    Args:
        model: a classifier mapping ``(N, ...)`` inputs to ``(N, C)`` logits.
        x: ``(N, ...)`` floating inputs; y: ``(N,)`` integer labels in ``[0, C)``.
        eps: radius ``>= 0``; alpha: step size ``> 0``; steps: number of steps ``>= 0``.
        random_start: start at a uniform random point of the ball.
        generator: optional ``torch.Generator`` for the random start (any device).
        clamp: optional input range ``(lo, hi)``; ``x`` must lie in it.

    Returns:
        ``(N, ...)`` adversarial inputs (detached) with ``|x_adv - x| <= eps`` entrywise.
    Reference: Madry, Makelov, Schmidt, Tsipras & Vladu (2018), "Towards Deep Learning Models
    Resistant to Adversarial Attacks" (the PGD attack).
    """
    model = _check_model(model)
    x, y = _check_xy(x, y)
    eps = _check_eps(eps)
    alpha = _check_positive("alpha", alpha)
    steps = _check_int("steps", steps, 0)
    if not isinstance(random_start, bool):
        raise TypeError(f"random_start must be a bool, got {type(random_start).__name__}")
    generator = _check_generator(generator)
    clamp = _check_clamp(clamp, x)
    _check_params_match(model, x)
    x_adv = x.clone()
    if random_start and eps > 0:
        where = generator.device if generator is not None else x.device
        u = torch.rand(x.shape, generator=generator, device=where, dtype=x.dtype).to(x.device)
        x_adv = _project(x + eps * (2 * u - 1), x, eps, clamp)
    with _eval_mode(model):
        for _ in range(steps):
            g = _input_grad(model, x_adv, y)
            x_adv = _project(x_adv + alpha * g.sign(), x, eps, clamp)
    return x_adv.detach()


def _batches(n: int, batch_size: int, epochs: int, generator, device) -> Iterator[torch.Tensor]:
    for _ in range(epochs):
        where = generator.device if generator is not None else device
        perm = torch.randperm(n, generator=generator, device=where).to(device)
        yield from perm.split(batch_size)


def _check_training(model, x, y, epochs, batch_size, lr, generator):
    model = _check_model(model)
    x, y = _check_xy(x, y)
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    lr = _check_positive("lr", lr)
    generator = _check_generator(generator)
    _check_params_match(model, x)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameters that require grad: nothing to train")
    with torch.no_grad(), _eval_mode(model):
        _logits(model, x[:1], y[:1])  # shape and label checks once, before training
    return model, x, y, epochs, batch_size, lr, generator, params


def adversarial_training(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                         alpha: float, steps: int, epochs: int, batch_size: int, lr: float,
                         generator: torch.Generator | None = None,
                         clamp: tuple[float, float] | None = None) -> list[float]:
    """Train ``model`` in place with Adam on PGD adversarial examples (Madry et al.).

    Each minibatch is replaced by :func:`pgd_attack` (random start, ``steps`` steps of ``alpha``,
    radius ``eps``) against the current weights, and one Adam step of size ``lr`` is taken on
    the mean cross-entropy at those points. The model's train/eval flags are restored at the end.

    Args:
        model: a classifier; x: ``(N, ...)`` training inputs; y: ``(N,)`` labels.
        eps, alpha, steps: the attack (see :func:`pgd_attack`).
        epochs: passes over the data ``>= 1``; batch_size: ``>= 1``; lr: Adam step ``> 0``.
        generator: optional generator for the shuffles and the random starts.
        clamp: optional input range ``(lo, hi)`` for the attack.

    Returns:
        the adversarial training loss of every minibatch, a list of floats.
    Reference: Madry, Makelov, Schmidt, Tsipras & Vladu (2018), "Towards Deep Learning Models
    Resistant to Adversarial Attacks" (the saddle-point formulation and its training).
    """
    model, x, y, epochs, batch_size, lr, generator, params = _check_training(
        model, x, y, epochs, batch_size, lr, generator)
    eps = _check_eps(eps)
    alpha = _check_positive("alpha", alpha)
    steps = _check_int("steps", steps, 0)
    clamp = _check_clamp(clamp, x)
    def loss(t, idx):
        xb = pgd_attack(model, x[idx], y[idx], eps, alpha, steps, generator=generator, clamp=clamp)
        return F.cross_entropy(_logits(model, xb, y[idx]), y[idx])

    return _adam_loop(model, params, lr, _batches(x.shape[0], batch_size, epochs, generator, x.device), loss)


def _adam_loop(model: nn.Module, params, lr: float, batches, loss_fn) -> list[float]:
    """Adam on ``loss_fn(t, idx)`` over the index batches, the model in train mode; restores every
    module's train/eval flag afterwards; returns the loss history."""
    opt = torch.optim.Adam(params, lr=lr)
    history: list[float] = []
    flags = [(m, m.training) for m in model.modules()]
    try:
        for t, idx in enumerate(batches):
            model.train()
            loss = loss_fn(t, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
    finally:
        for m, flag in flags:
            m.training = flag
    return history


# ---------------------------------------------------------------- interval bounds

_PASS = (nn.Flatten, nn.Identity)


def _layers(model) -> list[nn.Module]:
    """The layers of a (nested) ``nn.Sequential``, refusing anything IBP here cannot bound."""
    _check_model(model)
    mods = list(model) if isinstance(model, nn.Sequential) else [model]
    out: list[nn.Module] = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Sequential):
            out.extend(_layers(m))
        elif isinstance(m, (nn.Linear, nn.ReLU) + _PASS):
            out.append(m)
        else:
            raise TypeError(f"interval bounds support nn.Sequential stacks of Linear, ReLU, Flatten and "
                            f"Identity layers; layer {i} is {type(m).__name__}")
    return out


def _gamma(n: int, dtype: torch.dtype) -> float:
    """Higham's ``gamma_n = n u / (1 - n u)``, ``u`` the unit roundoff of ``dtype``."""
    u = torch.finfo(dtype).eps / 2
    return n * u / (1 - n * u)


def _allowance(W_abs: torch.Tensor, m: torch.Tensor, b_abs: torch.Tensor) -> torch.Tensor:
    """``2 gamma_{n+4} (m |W|^T + |b|)``: covers the rounding of the bound and of the network itself."""
    return 2 * _gamma(W_abs.shape[-1] + 4, m.dtype) * (m @ W_abs.T + b_abs)


def _linear_bounds(layer: nn.Linear, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if lo.shape[-1] != layer.in_features:
        raise ValueError(f"a Linear layer expects {layer.in_features} input features, the bounds reaching "
                         f"it have {lo.shape[-1]} (shape {tuple(lo.shape)})")
    W = layer.weight
    b = layer.bias if layer.bias is not None else torch.zeros((), dtype=W.dtype, device=W.device)
    mu, r = (hi + lo) / 2, (hi - lo) / 2
    W_abs = W.abs()
    centre, radius = F.linear(mu, W, layer.bias), r @ W_abs.T
    slack = _allowance(W_abs, torch.maximum(lo.abs(), hi.abs()), b.abs())
    return centre - radius - slack, centre + radius + slack


def _propagate(layers: list[nn.Module], lo: torch.Tensor, hi: torch.Tensor):
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Linear):
            lo, hi = _linear_bounds(layer, lo, hi)
            _check_bounds_finite(lo, hi, i)
        elif isinstance(layer, nn.ReLU):
            lo, hi = lo.clamp_min(0), hi.clamp_min(0)
        else:  # Flatten, Identity: the same map on both ends
            lo, hi = layer(lo), layer(hi)
    return lo, hi


def _check_bounds_finite(lo: torch.Tensor, hi: torch.Tensor, where) -> None:
    if not (bool(torch.isfinite(lo).all()) and bool(torch.isfinite(hi).all())):
        raise ValueError(f"the interval bounds overflowed {lo.dtype} at layer {where}: the input box (lower, "
                         "upper; x and eps) or the weights are too large")


def _check_box(model, lower, upper) -> tuple[list[nn.Module], torch.Tensor, torch.Tensor]:
    layers = _layers(model)
    lower, upper = _check_batch("lower", lower), _check_batch("upper", upper)
    if lower.shape != upper.shape:
        raise ValueError(f"lower and upper must have the same shape, got {tuple(lower.shape)} and "
                         f"{tuple(upper.shape)}")
    if lower.device != upper.device or lower.dtype != upper.dtype:
        raise ValueError(f"lower and upper must share device and dtype, got {lower.device}/{lower.dtype} "
                         f"and {upper.device}/{upper.dtype}")
    if bool((lower > upper).any()):
        raise ValueError("lower must be <= upper entrywise (an empty box has no bounds)")
    _check_params_match(model, lower)
    return layers, lower, upper


def ibp_bounds(model: nn.Module, lower: torch.Tensor, upper: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval bounds on the outputs of ``model`` over the box ``[lower, upper]``.

    For every ``x`` with ``lower <= x <= upper`` (entrywise), ``out_lower <= model(x) <= out_upper``,
    also for the floating-point ``model(x)`` (the bounds carry a rounding allowance). Exact, up to
    that allowance, for a single ``Linear`` layer: ``W mu + b -+ |W| r``.

    Args:
        model: an ``nn.Sequential`` (possibly nested) of ``Linear``, ``ReLU``, ``Flatten`` and
            ``Identity`` layers, or one such layer; other layers raise TypeError.
        lower, upper: ``(N, ...)`` input bounds of the same shape, ``lower <= upper``.

    Returns:
        ``(out_lower, out_upper)``, each ``(N, C)``; differentiable in the parameters.
    Reference: Gowal et al. (2018), "On the Effectiveness of Interval Bound Propagation for
    Training Verifiably Robust Models"; Higham (2002), "Accuracy and Stability of Numerical
    Algorithms", chapter 3 (the gamma_n bound behind the allowance).
    """
    layers, lower, upper = _check_box(model, lower, upper)
    return _propagate(layers, lower, upper)


def margin_bounds(model: nn.Module, lower: torch.Tensor, upper: torch.Tensor, y: torch.Tensor
                  ) -> torch.Tensor:
    """Lower bounds on the margins ``z_y - z_j`` over the box, for every class ``j``.

    When the last layer is ``Linear`` (``W``, ``b``), it is folded into the specification: the
    rows ``W_y - W_j`` are applied to the interval of its input, which is tighter than
    ``lower_y - upper_j`` from :func:`ibp_bounds`. Column ``y`` is 0.

    Args:
        model: as for :func:`ibp_bounds`.
        lower, upper: ``(N, ...)`` input bounds; y: ``(N,)`` labels in ``[0, C)``.

    Returns:
        ``(N, C)`` lower bounds ``m`` with ``m[i, j] <= z_{y_i}(x) - z_j(x)`` for every ``x`` in
        the box; differentiable in the parameters.
    Reference: Gowal et al. (2018), "On the Effectiveness of Interval Bound Propagation for
    Training Verifiably Robust Models" (elision of the last layer).
    """
    layers, lower, upper = _check_box(model, lower, upper)
    _, y = _check_xy(lower, y)
    last = len(layers)
    while last > 0 and isinstance(layers[last - 1], _PASS):
        last -= 1
    if last > 0 and isinstance(layers[last - 1], nn.Linear):
        lo, hi = _propagate(layers[:last - 1], lower, upper)
        layer = layers[last - 1]
        if lo.shape[-1] != layer.in_features:
            raise ValueError(f"a Linear layer expects {layer.in_features} input features, the bounds "
                             f"reaching it have {lo.shape[-1]} (shape {tuple(lo.shape)})")
        W = layer.weight
        b = layer.bias if layer.bias is not None else torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)
        if W.shape[0] < 2:
            raise ValueError(f"model must return logits of shape (N, C) with C >= 2, got C = {W.shape[0]}")
        if int(y.max()) >= W.shape[0]:
            raise ValueError(f"y must hold labels < C = {W.shape[0]}, got {int(y.max())}")
        D = W[y][:, None, :] - W[None, :, :]                      # (N, C, h): rows W_y - W_j
        db = b[y][:, None] - b[None, :]                           # (N, C)
        mu, r = (hi + lo) / 2, (hi - lo) / 2
        centre = torch.einsum("nch,nh->nc", D, mu) + db
        radius = torch.einsum("nch,nh->nc", D.abs(), r)
        m_abs = torch.maximum(lo.abs(), hi.abs())                 # (N, h)
        both = W[y].abs()[:, None, :] + W.abs()[None, :, :]        # (N, C, h): |W_y| + |W_j|
        b_both = b[y].abs()[:, None] + b.abs()[None, :]            # (N, C)
        slack = 2 * _gamma(W.shape[1] + 4, W.dtype) * (torch.einsum("nch,nh->nc", both, m_abs) + b_both)
        m = centre - radius - slack
        _check_bounds_finite(m, m, last - 1)
    else:
        lo, hi = _propagate(layers, lower, upper)
        if lo.ndim != 2 or lo.shape[1] < 2 or int(y.max()) >= lo.shape[1]:
            raise ValueError(f"model must return logits of shape (N, C) with C >= 2 and C > max(y) = "
                             f"{int(y.max())}, got shape {tuple(lo.shape)}")
        m = lo.gather(1, y[:, None]) - hi
    return m.scatter(1, y[:, None], 0.0)


def certified_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                       clamp: tuple[float, float] | None = None) -> float:
    """Share of points whose prediction provably cannot change within the L-infinity ball.

    A point counts when every margin lower bound of :func:`margin_bounds` over the box
    ``[x - eps, x + eps]`` (intersected with ``clamp``) is positive for ``j != y``: then the
    network predicts ``y``, uniquely, at every point of the ball. Certified accuracy is a lower
    bound on the accuracy under *any* attack, PGD's included.

    Args:
        model: as for :func:`ibp_bounds`; x: ``(N, ...)`` inputs; y: ``(N,)`` labels.
        eps: radius ``>= 0``; clamp: optional input range ``(lo, hi)`` containing ``x``.

    Returns:
        the certified share, a float in ``[0, 1]``.
    Reference: Gowal et al. (2018), "On the Effectiveness of Interval Bound Propagation for
    Training Verifiably Robust Models" (verified accuracy).
    """
    _layers(model)
    x, y = _check_xy(x, y)
    eps = _check_eps(eps)
    clamp = _check_clamp(clamp, x)
    lo, hi = _project(x - eps, x, eps, clamp), _project(x + eps, x, eps, clamp)
    with torch.no_grad():
        m = margin_bounds(model, lo, hi, y)
    m = m.scatter(1, y[:, None], float("inf"))
    return float((m.min(dim=1).values > 0).double().mean())


def ibp_training(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, epochs: int,
                 batch_size: int, lr: float, warmup_epochs: int = 1, kappa_final: float = 0.5,
                 generator: torch.Generator | None = None,
                 clamp: tuple[float, float] | None = None) -> list[float]:
    """Certified (IBP) training in place with Adam, with a short linear warm-up.

    Minimises ``kappa CE(z, y) + (1 - kappa) CE(-m, y)`` per minibatch, where ``z`` are the
    clean logits and ``m`` the margin lower bounds of :func:`margin_bounds` over the
    ``eps_t``-box (``-m`` are the worst-case logits relative to the true class). During the first
    ``warmup_epochs`` epochs ``eps_t`` rises linearly from 0 to ``eps`` and ``kappa`` from 1 to
    ``kappa_final``; both then stay fixed.

    Args:
        model: as for :func:`ibp_bounds`; x: ``(N, ...)`` training inputs; y: ``(N,)`` labels.
        eps: final radius ``>= 0``; epochs ``>= 1``; batch_size ``>= 1``; lr: Adam step ``> 0``.
        warmup_epochs: length of the ramp, ``0 <= warmup_epochs <= epochs``.
        kappa_final: weight of the clean loss after the warm-up, in ``[0, 1]``.
        generator: optional generator for the shuffles; clamp: optional input range.

    Returns:
        the training loss of every minibatch, a list of floats.
    Reference: Gowal et al. (2018), "On the Effectiveness of Interval Bound Propagation for
    Training Verifiably Robust Models" (the mixed loss and the ramp-up); Shi et al. (2021),
    "Fast Certified Robust Training with Short Warmup".
    """
    model, x, y, epochs, batch_size, lr, generator, params = _check_training(
        model, x, y, epochs, batch_size, lr, generator)
    _layers(model)
    eps = _check_eps(eps)
    warmup_epochs = _check_int("warmup_epochs", warmup_epochs, 0, epochs)
    kappa_final = _check_real("kappa_final", kappa_final)
    if not 0 <= kappa_final <= 1:
        raise ValueError(f"kappa_final must be in [0, 1], got {kappa_final}")
    clamp = _check_clamp(clamp, x)
    per_epoch = -(-x.shape[0] // batch_size)
    ramp = warmup_epochs * per_epoch
    def loss(t, idx):
        frac = min(1.0, (t + 1) / ramp) if ramp else 1.0
        eps_t, kappa = eps * frac, 1 - (1 - kappa_final) * frac
        xb, yb = x[idx], y[idx]
        lo, hi = _project(xb - eps_t, xb, eps_t, clamp), _project(xb + eps_t, xb, eps_t, clamp)
        clean = F.cross_entropy(_logits(model, xb, yb), yb)
        robust = F.cross_entropy(-margin_bounds(model, lo, hi, yb), yb)
        value = kappa * clean + (1 - kappa) * robust
        if not bool(torch.isfinite(value)):
            raise ValueError(f"the IBP training loss became non-finite at step {t} (lower lr?)")
        return value

    return _adam_loop(model, params, lr, _batches(x.shape[0], batch_size, epochs, generator, x.device), loss)
