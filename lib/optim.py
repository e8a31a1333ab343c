"""Optimisers written from their update rules, learning-rate schedules, averaged iterates.

Chapter 6 (``book/06_optimizers.md``, lab ``notebooks/06_optimizers.ipynb``).

* :class:`SGD` (heavy ball, Nesterov), :class:`Adagrad`, :class:`RMSprop`, :class:`Adam`, :class:`AdamW`:
  drop-in replacements for ``torch.optim``'s (same arguments, defaults, semantics, validation), each ``step``
  one loop over the parameters; ``foreach``, ``fused``, ``capturable``, ``differentiable`` stay at defaults.
* :class:`AdamP` drops Adam's radial step on scale-invariant weights; :class:`EXAdam` adds cross-moments.
* Schedules as plain functions of the step ``t`` (:func:`cosine`, ...), :func:`set_lr`;
  :class:`IterateAverage`; tuned step sizes and rates on quadratics (:func:`gd_parameters`, ...).

References: Polyak (1964); Nesterov (1983); Sutskever et al. (2013); Duchi et al. (2011) (Adagrad); Tieleman &
Hinton (2012) (RMSprop); Kingma & Ba (2015) (Adam); Reddi et al. (2018) (AMSGrad); Loshchilov & Hutter (2019)
(AdamW); Heo et al. (2021) (AdamP); Adly (2024) (EXAdam); Polyak & Juditsky (1992) (averaging); Defazio,
Cutkosky, Mehta & Mishchenko (2023) (schedules and the last iterate).
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Iterable

import torch

__all__ = ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "AdamP", "EXAdam",
           "constant", "step_decay", "cosine", "linear_warmup", "linear_decay", "warmup_cosine",
           "set_lr", "IterateAverage", "gd_parameters", "heavy_ball_parameters",
           "nesterov_parameters"]

# ---------------------------------------------------------------- validation

def _scalar(name: str, value, low: float = 0.0, high: float = math.inf, high_open: bool = False) -> float:
    """A finite real number in [low, high] (or [low, high)); 1-element tensors allowed, as in torch."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element, got shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not math.isfinite(value) or value < low or value > high or (high_open and value == high):
        bound = (f" in [{low:g}, {high:g}{')' if high_open else ']'}" if high < math.inf
                 else f" >= {low:g}" if low > -math.inf else "")
        raise ValueError(f"Invalid {name}: expected a finite number{bound}, got {value}")
    return value


def _scalars(group: dict, **names: str) -> None:
    """Check each ``group[key] >= 0`` and store it as a float."""
    for key, name in names.items():
        group[key] = _scalar(name, group[key])


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} ({value!r})")
    return value


def _torch_only(**options) -> None:
    """Refuse the options of torch's other code paths unless they sit at torch's defaults."""
    for name, value in options.items():
        if value not in (None, False):
            raise ValueError(f"{name}={value!r} is not supported: lib.optim has only the "
                             f"single-tensor loop; use torch.optim for {name}, or leave it at its default")


def _param_list(params, tensors: bool = False) -> list:
    """``params`` as a list; ``tensors``: a non-empty list of floating tensors (else a TypeError naming params)."""
    if isinstance(params, (torch.Tensor, str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(f"params must be an iterable of tensors (or of param-group dicts, as for torch.optim), "
                        f"got {type(params).__name__}")
    params = list(params)
    if tensors and not (params and all(isinstance(p, torch.Tensor) and torch.is_floating_point(p) for p in params)):
        raise TypeError("params must be a non-empty list of floating tensors")
    return params


class _UpdateRule(torch.optim.Optimizer):
    """Shared plumbing: hyperparameter checks per param group, the closure, gradient checks."""

    def __init__(self, params: Iterable, defaults: dict) -> None:
        self._check_group(defaults)  # each optimiser checks its hyperparameters, before any params
        super().__init__(_param_list(params), defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for theta in group["params"]:
            if not torch.is_floating_point(theta):
                raise TypeError(f"params must be real floating tensors, got {theta.dtype}")
        self._check_group(group)

    def _gradients(self):
        """Yield ``(group, theta, g)`` for every parameter with a gradient (sign flipped if
        ``maximize``), after refusing sparse and non-finite gradients (one sync per device)."""
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        sums = {}  # a NaN or inf entry makes the sum non-finite, so a finite sum clears all entries
        for i, g in enumerate(grads):
            if g.is_sparse:
                raise TypeError(f"{type(self).__name__} does not support sparse gradients")
            sums.setdefault(g.device, []).append((i, g.sum()))
        for pairs in sums.values():
            if not bool(torch.isfinite(torch.stack([s for _, s in pairs])).all()):
                for i, _ in pairs:  # a sum can also overflow: look at the entries
                    if not torch.isfinite(grads[i]).all():
                        raise ValueError(f"the gradient of a parameter of shape {tuple(grads[i].shape)} is "
                                         "not finite (NaN or inf): the loss diverged or is undefined; "
                                         "lower the learning rate or check the loss")
        for group in self.param_groups:
            for theta in group["params"]:
                if theta.grad is not None:
                    yield group, theta, (-theta.grad if group.get("maximize") else theta.grad)

    def _loss(self, closure: Callable | None):
        with torch.enable_grad():
            return None if closure is None else closure()


# ---------------------------------------------------------------- SGD: gradient descent with momentum

class SGD(_UpdateRule):
    """Stochastic gradient descent with heavy-ball or Nesterov momentum, as ``torch.optim.SGD``.

    Per parameter ``theta`` with gradient ``g`` (any shape): ``g <- g + weight_decay theta``;
    with momentum ``mu``: ``b_t = mu b_{t-1} + (1 - dampening) g`` (``b_1 = g``), then
    ``d = g + mu b_t`` (Nesterov) or ``d = b_t``; finally ``theta <- theta - lr d``. With
    ``dampening = 0`` this is Polyak's heavy ball,
    ``theta_{t+1} = theta_t - lr g_t + mu (theta_t - theta_{t-1})``. Chapter 6.
    Reference: Polyak (1964); Sutskever et al. (2013) (the Nesterov form).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None) -> None:
        _torch_only(foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _check_group(self, group: dict) -> None:
        _scalars(group, lr="learning rate lr", momentum="momentum", weight_decay="weight_decay")
        group["dampening"] = _scalar("dampening", group["dampening"], -math.inf)
        _flag("maximize", group["maximize"])
        if _flag("nesterov", group["nesterov"]) and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """One update of every parameter with a gradient. Returns ``closure()`` if given."""
        loss = self._loss(closure)
        for group, theta, g in self._gradients():
            mu = group["momentum"]
            if group["weight_decay"] != 0:
                g = g.add(theta, alpha=group["weight_decay"])   # gradient of f + wd/2 |theta|^2
            if mu != 0:
                state = self.state[theta]
                if "b" not in state:
                    state["b"] = b = g.clone()                    # b_1 = g_1
                else:
                    b = state["b"].mul_(mu).add_(g, alpha=1 - group["dampening"])
                g = g.add(b, alpha=mu) if group["nesterov"] else b
            theta.add_(g, alpha=-group["lr"])
        return loss


# ---------------------------------------------------------------- Adagrad and RMSprop

class Adagrad(_UpdateRule):
    """Adagrad: divide each coordinate by the root of its summed squared gradients.

    ``G_t = G_{t-1} + g^2`` (``G_0 = initial_accumulator_value``),
    ``theta <- theta - lr_t g / (sqrt(G_t) + eps)`` with ``lr_t = lr / (1 + (t - 1) lr_decay)``;
    as ``torch.optim.Adagrad``. Chapter 6.
    Reference: Duchi, Hazan & Singer (2011), "Adaptive Subgradient Methods".
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        _torch_only(foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                                      initial_accumulator_value=initial_accumulator_value, maximize=maximize))

    def _check_group(self, group: dict) -> None:
        _scalars(group, lr="learning rate lr", lr_decay="lr_decay", eps="epsilon eps",
                 weight_decay="weight_decay", initial_accumulator_value="initial_accumulator_value")
        _flag("maximize", group["maximize"])

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """One Adagrad update. Returns ``closure()`` if given."""
        loss = self._loss(closure)
        for group, theta, g in self._gradients():
            state = self.state[theta]
            if not state:
                state["t"], state["G"] = 0, torch.full_like(theta, group["initial_accumulator_value"])
            state["t"] += 1
            if group["weight_decay"] != 0:
                g = g.add(theta, alpha=group["weight_decay"])
            lr_t = group["lr"] / (1 + (state["t"] - 1) * group["lr_decay"])
            G = state["G"].addcmul_(g, g)                                   # G_t = G_{t-1} + g^2
            theta.addcdiv_(g, G.sqrt().add_(group["eps"]), value=-lr_t)
        return loss


class RMSprop(_UpdateRule):
    """RMSprop: divide by the root of an exponential average of squared gradients.

    ``v_t = alpha v_{t-1} + (1 - alpha) g^2``; centred: also ``gbar_t = alpha gbar_{t-1} +
    (1 - alpha) g`` and ``v_t - gbar_t^2`` in place of ``v_t``; ``d = g / (sqrt(v_t) + eps)``;
    with momentum ``b_t = mu b_{t-1} + d`` and ``theta <- theta - lr b_t``, else
    ``theta <- theta - lr d``. As ``torch.optim.RMSprop``. Chapter 6.
    Reference: Tieleman & Hinton (2012), Coursera lecture 6.5; Graves (2013) (centred).
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _torch_only(capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check_group(self, group: dict) -> None:
        _scalars(group, lr="learning rate lr", eps="epsilon eps", momentum="momentum",
                 weight_decay="weight_decay", alpha="alpha")
        _flag("centered", group["centered"])
        _flag("maximize", group["maximize"])

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """One RMSprop update. Returns ``closure()`` if given."""
        loss = self._loss(closure)
        for group, theta, g in self._gradients():
            alpha, mu, state = group["alpha"], group["momentum"], self.state[theta]
            if not state:
                state["v"] = torch.zeros_like(theta)
                if group["centered"]:
                    state["g_bar"] = torch.zeros_like(theta)
                if mu > 0:
                    state["b"] = torch.zeros_like(theta)
            if group["weight_decay"] != 0:
                g = g.add(theta, alpha=group["weight_decay"])
            v = state["v"].mul_(alpha).addcmul_(g, g, value=1 - alpha)
            if group["centered"]:
                g_bar = state["g_bar"].lerp_(g, 1 - alpha)
                rms = v.addcmul(g_bar, g_bar, value=-1).sqrt_()   # root of a variance estimate
            else:
                rms = v.sqrt()
            rms.add_(group["eps"])
            if mu > 0:
                theta.add_(state["b"].mul_(mu).addcdiv_(g, rms), alpha=-group["lr"])
            else:
                theta.addcdiv_(g, rms, value=-group["lr"])
        return loss


# ---------------------------------------------------------------- Adam, AdamW, AdamP, EXAdam

def _check_adam_group(group: dict) -> None:
    _scalars(group, lr="learning rate lr", eps="epsilon eps", weight_decay="weight_decay")
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    group["betas"] = tuple(_scalar(f"beta parameter at index {i}", b, 0.0, 1.0, high_open=True)
                           for i, b in enumerate(betas))
    for key in ("amsgrad", "maximize", "decoupled_weight_decay", "dynamic_step"):
        if key in group:
            _flag(key, group[key])


def _moments(state: dict, theta: torch.Tensor, g: torch.Tensor, beta1: float, beta2: float):
    """Adam's moving averages: ``t += 1``, ``m_t = beta1 m + (1 - beta1) g``, ``v_t = beta2 v + (1 - beta2) g^2``."""
    if not state:
        state["t"], state["m"], state["v"] = 0, torch.zeros_like(theta), torch.zeros_like(theta)
    state["t"] += 1
    m = state["m"].lerp_(g, 1 - beta1)
    v = state["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
    return state["t"], m, v


class Adam(_UpdateRule):
    """Adam: momentum divided by a running RMS of the gradient, both bias-corrected.

    ``m_t = beta1 m_{t-1} + (1 - beta1) g``, ``v_t = beta2 v_{t-1} + (1 - beta2) g^2``,
    ``theta <- theta - lr mhat_t / (sqrt(vhat_t) + eps)`` with ``mhat_t = m_t / (1 - beta1^t)``,
    ``vhat_t = v_t / (1 - beta2^t)`` (AMSGrad: the running maximum of ``v_t`` instead).
    Weight decay adds ``weight_decay theta`` to ``g`` (L2) or, with
    ``decoupled_weight_decay``, first shrinks ``theta`` by ``1 - lr weight_decay`` (AdamW).
    As ``torch.optim.Adam``. Chapter 6.
    Reference: Kingma & Ba (2015), Algorithm 1; Reddi et al. (2018) (AMSGrad).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False) -> None:
        _torch_only(foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, decoupled_weight_decay=decoupled_weight_decay))

    _check_group = staticmethod(_check_adam_group)

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """One Adam (or AdamW) update. Returns ``closure()`` if given."""
        loss = self._loss(closure)
        for group, theta, g in self._gradients():
            lr, (beta1, beta2), lam = group["lr"], group["betas"], group["weight_decay"]
            if lam != 0 and group["decoupled_weight_decay"]:
                theta.mul_(1 - lr * lam)                      # decay the weights, not the gradient
            elif lam != 0:
                g = g.add(theta, alpha=lam)                   # L2: add the penalty's gradient
            state = self.state[theta]
            t, m, v = _moments(state, theta, g, beta1, beta2)
            if group["amsgrad"]:                              # AMSGrad: the largest v_t so far
                v_max = state.setdefault("v_max", torch.zeros_like(theta))
                v = torch.maximum(v_max, v, out=v_max)
            denominator = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(group["eps"])   # sqrt(vhat_t) + eps
            theta.addcdiv_(m, denominator, value=-lr / (1 - beta1**t))              # lr mhat_t / (...)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay: ``theta <- (1 - lr wd) theta - lr mhat / (sqrt(vhat) + eps)``.

    As ``torch.optim.AdamW`` (default ``weight_decay=1e-2``). Chapter 6.
    Reference: Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization", Algorithm 2.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)


def _tangential(u: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """Rows of ``u`` (n, d) without their components along the rows of ``w``: ``u - (w_hat . u) w_hat``."""
    w_hat = w / (w.norm(dim=1, keepdim=True) + eps)
    return u - w_hat * (w_hat * u).sum(dim=1, keepdim=True)


class AdamP(_UpdateRule):
    """AdamP: Adam whose step loses its radial part on scale-invariant weights.

    For a weight ``w`` with 2 or more dimensions, the Adam direction
    ``p = mhat / (sqrt(vhat) + eps)`` is projected onto the tangent space of ``w``
    (``p - (w_hat . p) w_hat``) when the gradient is nearly orthogonal to ``w``:
    row by row (``w`` as ``(w.shape[0], -1)``, one row per output channel) if
    ``|cos(g, w)| < delta / sqrt(row size)`` for every row, else as one vector if that
    holds for the flattened ``w``. Projected weights get decoupled weight decay
    ``lr weight_decay wd_ratio``, others ``lr weight_decay``. Without a radial part
    ``|w|`` grows only at second order, so the effective step ``lr / |w|`` does not
    collapse. Chapter 6.
    Reference: Heo et al. (2021), ICLR (the AdamP algorithm); bias correction, the
    channel-then-layer test and ``wd_ratio`` as in the authors' code.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, delta: float = 0.1, wd_ratio: float = 0.1) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      delta=delta, wd_ratio=wd_ratio))

    def _check_group(self, group: dict) -> None:
        _check_adam_group(group)
        _scalars(group, delta="delta", wd_ratio="wd_ratio")

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """One AdamP update. Returns ``closure()`` if given."""
        loss = self._loss(closure)
        for group, w, g in self._gradients():
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            t, m, v = _moments(self.state[w], w, g, beta1, beta2)
            p = m / (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)   # Adam's direction times 1 - beta1^t
            decay = group["weight_decay"]
            for shape in ((w.shape[0], -1), (1, -1)) if w.ndim > 1 else ():   # per channel, then layer
                w2, g2 = w.reshape(shape), g.reshape(shape)
                cos = (w2 * g2).sum(1).abs() / (w2.norm(dim=1) * g2.norm(dim=1)).clamp_min(eps)
                if cos.max() < group["delta"] / math.sqrt(w2.shape[1]):      # w looks scale-invariant
                    p = _tangential(p.reshape(shape), w2, eps).reshape(w.shape)
                    decay *= group["wd_ratio"]
                    break
            if decay != 0:
                w.mul_(1 - lr * decay)
            w.add_(p, alpha=-lr / (1 - beta1**t))
        return loss


class EXAdam(_UpdateRule):
    """EXAdam: Adam with cross-moment bias corrections and a gradient term.

    With Adam's ``m_t, v_t``: ``d1 = 1 + beta2^t v_t / (v_t + eps)``,
    ``d2 = 1 + beta1^t m_t^2 / (m_t^2 + eps)``, ``mtilde = d1 m_t / (1 - beta1^t)``,
    ``gtilde = d1 g / (1 - beta1^t)``, ``vtilde = d2 v_t / (1 - beta2^t)`` and
    ``theta <- theta - lr_t (mtilde + gtilde) / (sqrt(vtilde) + eps)``, where ``lr_t = lr``
    or, with ``dynamic_step`` (the paper's first version), ``lr_t = lr log(sqrt(2 (t + 1)))``.
    ``weight_decay`` first shrinks ``theta`` by ``1 - lr weight_decay``, as the author's code does.
    Reference: Adly (2024), arXiv:2412.20302, Algorithm 1 and the author's code.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, dynamic_step: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      dynamic_step=dynamic_step))

    _check_group = staticmethod(_check_adam_group)

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """One EXAdam update. Returns ``closure()`` if given."""
        loss = self._loss(closure)
        for group, theta, g in self._gradients():
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            if group["weight_decay"] != 0:
                theta.mul_(1 - lr * group["weight_decay"])
            t, m, v = _moments(self.state[theta], theta, g, beta1, beta2)
            d1 = 1 + beta2**t * v / (v + eps)
            d2 = 1 + beta1**t * m.square() / (m.square() + eps)
            m_tilde, g_tilde = d1 * m / (1 - beta1**t), d1 * g / (1 - beta1**t)
            v_tilde = d2 * v / (1 - beta2**t)
            lr_t = lr * math.log(math.sqrt(2 * (t + 1))) if group["dynamic_step"] else lr
            theta.addcdiv_(m_tilde + g_tilde, v_tilde.sqrt().add_(eps), value=-lr_t)
        return loss


# ---------------------------------------------------------------- learning-rate schedules

def _int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def _step(t) -> int:
    return _int("step t", t, 0)


def constant(t: int, lr: float) -> float:
    """``lr`` at every step ``t >= 0``. Chapter 6. Reference: none (the baseline schedule)."""
    _step(t)
    return _scalar("lr", lr)


def step_decay(t: int, lr: float, every: int, gamma: float = 0.1) -> float:
    """``lr gamma^floor(t / every)``: multiply by ``gamma`` every ``every`` steps (``StepLR``).

    Reference: the classic ImageNet schedule (He et al. 2016); ``torch.optim.lr_scheduler.StepLR``.
    """
    t, lr, every = _step(t), _scalar("lr", lr), _int("every", every)
    return lr * _scalar("gamma", gamma) ** (t // every)


def cosine(t: int, lr: float, total: int, lr_min: float = 0.0) -> float:
    """``lr_min + (lr - lr_min) (1 + cos(pi t / total)) / 2`` for ``t <= total``, ``lr_min`` after.

    Equals ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total, eta_min=lr_min)``
    for ``t <= total``. Chapter 6.
    Reference: Loshchilov & Hutter (2017), "SGDR" (cosine annealing without restarts).
    """
    t, lr, total, lr_min = _step(t), _scalar("lr", lr), _int("total", total), _scalar("lr_min", lr_min)
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * min(t, total) / total)) / 2


def linear_warmup(t: int, lr: float, warmup: int, start_factor: float = 0.0) -> float:
    """Linear ramp from ``start_factor lr`` at ``t = 0`` to ``lr`` at ``t = warmup``, then ``lr``.

    Equals ``torch.optim.lr_scheduler.LinearLR(start_factor, 1.0, total_iters=warmup)``.
    Reference: Goyal et al. (2017), "Accurate, Large Minibatch SGD" (gradual warmup).
    """
    t, lr, warmup = _step(t), _scalar("lr", lr), _int("warmup", warmup)
    start_factor = _scalar("start_factor", start_factor, 0.0, 1.0)
    return lr * (start_factor + (1 - start_factor) * min(t, warmup) / warmup)


def linear_decay(t: int, lr: float, total: int, lr_min: float = 0.0) -> float:
    """``lr_min + (lr - lr_min) (1 - t / total)`` for ``t <= total``, ``lr_min`` after.

    The schedule that worst-case last-iterate analysis recommends. Chapter 6.
    Reference: Defazio, Cutkosky, Mehta & Mishchenko (2023), "When, Why and How Much?".
    """
    t, lr, total, lr_min = _step(t), _scalar("lr", lr), _int("total", total), _scalar("lr_min", lr_min)
    return lr_min + (lr - lr_min) * (1 - min(t, total) / total)


def warmup_cosine(t: int, lr: float, warmup: int, total: int, lr_min: float = 0.0) -> float:
    """Linear warmup from 0 over ``warmup`` steps, then cosine from ``lr`` to ``lr_min`` at ``total``.

    Reference: Goyal et al. (2017) (warmup); Loshchilov & Hutter (2017) (cosine).
    """
    t, warmup, total = _step(t), _int("warmup", warmup), _int("total", total)
    if total <= warmup:
        raise ValueError(f"total must exceed warmup, got total={total}, warmup={warmup}")
    if t < warmup:
        return linear_warmup(t, lr, warmup)
    return cosine(t - warmup, lr, total - warmup, lr_min)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set ``lr`` in every param group of any ``torch.optim.Optimizer``:
    ``set_lr(opt, cosine(t, 0.1, T)); opt.step()``. Chapter 6. Reference: none (plumbing)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    lr = _scalar("lr", lr)
    for group in optimizer.param_groups:
        group["lr"] = lr


# ---------------------------------------------------------------- averaged iterates

class IterateAverage:
    """Running average of parameter iterates: uniform (Polyak-Ruppert) or exponential.

    ``update()`` reads the current values of ``params`` (a list of tensors of any
    shapes). The first call copies them; after ``n`` calls ``average`` holds
    ``(1/n) sum_k theta_k`` (``decay=None``), or the exponential average
    ``avg <- decay avg + (1 - decay) theta``. ``copy_to(params)`` writes the
    average into tensors of the same shapes. Same numbers as
    ``torch.optim.swa_utils.AveragedModel``. Chapter 6.
    Reference: Polyak & Juditsky (1992), "Acceleration of Stochastic Approximation by Averaging".
    """

    def __init__(self, params: Iterable[torch.Tensor], decay: float | None = None) -> None:
        self.params = _param_list(params, tensors=True)
        self.decay = None if decay is None else _scalar("decay", decay, 0.0, 1.0, high_open=True)
        self.average = [torch.zeros_like(p, requires_grad=False) for p in self.params]
        self.n = 0

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameter values into the average."""
        for p in self.params:
            if not torch.isfinite(p).all():
                raise ValueError(f"a parameter of shape {tuple(p.shape)} is not finite (NaN or inf)")
        self.n += 1
        for avg, p in zip(self.average, self.params):
            if self.n == 1:
                avg.copy_(p)
            elif self.decay is None:
                avg.add_(p - avg, alpha=1 / self.n)            # avg_n = avg_{n-1} + (p - avg_{n-1}) / n
            else:
                avg.lerp_(p, 1 - self.decay)

    @torch.no_grad()
    def copy_to(self, params: Iterable[torch.Tensor]) -> None:
        """Write the average into ``params`` (same number and shapes as the averaged ones)."""
        params, shapes = _param_list(params, tensors=True), [tuple(a.shape) for a in self.average]
        if self.n == 0:
            raise ValueError("no iterate averaged yet: call update() first")
        if [tuple(p.shape) for p in params] != shapes:
            raise ValueError(f"params must have the shapes {shapes}, got {[tuple(p.shape) for p in params]}")
        for p, avg in zip(params, self.average):
            p.copy_(avg)


# ---------------------------------------------------------------- tuned parameters on a quadratic

def _mu_L(mu, L) -> tuple[float, float]:
    mu, L = _scalar("mu", mu), _scalar("L", L)
    if not 0 < mu <= L:
        raise ValueError(f"need 0 < mu <= L (extreme Hessian eigenvalues), got mu={mu}, L={L}")
    return mu, L


def gd_parameters(mu: float, L: float) -> tuple[float, float]:
    """Gradient descent's best fixed step on a quadratic with Hessian eigenvalues in [mu, L]:
    ``(lr, rate) = (2 / (mu + L), (kappa - 1) / (kappa + 1))``, ``kappa = L / mu``. Chapter 6.
    Reference: Polyak (1987), "Introduction to Optimization"."""
    mu, L = _mu_L(mu, L)
    kappa = L / mu
    return 2 / (mu + L), (kappa - 1) / (kappa + 1)


def heavy_ball_parameters(mu: float, L: float) -> tuple[float, float, float]:
    """Polyak's tuned heavy ball on a quadratic: ``(lr, momentum, rate)`` with
    ``lr = 4 / (sqrt(L) + sqrt(mu))^2``, ``momentum = rate^2`` and the spectral radius
    ``rate = (sqrt(kappa) - 1) / (sqrt(kappa) + 1)``; use ``SGD(params, lr, momentum)``. Chapter 6.
    Reference: Polyak (1964), "Some methods of speeding up the convergence of iteration methods"."""
    mu, L = _mu_L(mu, L)
    rate = (math.sqrt(L / mu) - 1) / (math.sqrt(L / mu) + 1)
    return 4 / (math.sqrt(L) + math.sqrt(mu)) ** 2, rate**2, rate


def nesterov_parameters(mu: float, L: float) -> tuple[float, float, float]:
    """Nesterov's method on a quadratic: ``(lr, momentum, rate)`` with ``lr = 1 / L``,
    ``momentum = (sqrt(kappa) - 1) / (sqrt(kappa) + 1)`` and the spectral radius
    ``rate = 1 - 1 / sqrt(kappa)``; use ``SGD(params, lr, momentum, nesterov=True)``. Chapter 6.
    Reference: Nesterov (2004), "Introductory Lectures on Convex Optimization"."""
    mu, L = _mu_L(mu, L)
    root = math.sqrt(L / mu)
    return 1 / L, (root - 1) / (root + 1), 1 - 1 / root
