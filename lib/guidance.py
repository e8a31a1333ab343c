"""Guidance: steering a diffusion sampler with gradients of log-densities and rewards.

Chapter 24 (``book/24_guidance.md``, lab ``notebooks/24_guidance.ipynb``), on the interfaces of
:mod:`lib.diffusion` (``model(x_t, t, labels) -> eps``, :data:`NULL_LABEL`, DDIM). One convention
for the guidance scale ``w``: ``eps_u + w (eps_c - eps_u)`` (``w = 0`` unconditional, ``w = 1``
conditional); Ho & Salimans' ``(1 + w') eps_c - w' eps_u`` has ``w' = w - 1``.

* classifier-free guidance: :func:`cfg_combine`, :func:`eps_cond_uncond`, :func:`cfg_sample`
  (with Adaptive Guidance's early switch-off); classifier guidance: :func:`classifier_guided_eps`,
  :func:`classifier_guided_sample`, :class:`NoisyClassifier`, :func:`train_noisy_classifier`;
* adaptive projected guidance on the clean estimates: :func:`project`, :func:`apg_combine`,
  :func:`apg_sample`; CFG++: :func:`cfgpp_sample`; oversaturation: :func:`saturation`;
* the sampler as an autograd graph: :func:`reward_finetune` (a few parameters, e.g. a
  :class:`LoRALinear`) and :func:`optimize_initial_noise` (the starting noise).

References: Dhariwal & Nichol (2021); Ho & Salimans (2022); Sadat, Hilliges & Weber (2025),
"Eliminating Oversaturation and Artifacts of High Guidance Scales in Diffusion Models" (APG);
Chung et al. (2025), "CFG++"; Castillo et al. (2025), "Adaptive Guidance"; Prabhudesai et al.
(2023), "AlignProp"; Clark et al. (2024), "DRaFT"; Hu et al. (2022), "LoRA".
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .calculus import _check_finite
from .curvature import _check_callable, _check_generator, _check_int, _check_positive, _check_real, _check_v
from .denoiser import timestep_embedding
from .diffusion import (NULL_LABEL, NoiseSchedule, _check_labels, _check_schedule, _check_steps,
                        _check_x, _ddim_coeffs, _finite_result)

__all__ = ["saturation", "cfg_combine", "eps_cond_uncond", "classifier_guided_eps", "project", "apg_combine",
           "cfg_sample", "classifier_guided_sample", "apg_sample", "cfgpp_sample", "NoisyClassifier",
           "train_noisy_classifier", "LoRALinear", "reward_finetune", "optimize_initial_noise"]

Model = Callable[..., torch.Tensor]


# ---------------------------------------------------------------- validation and the network call

def _times(x: torch.Tensor, t: int) -> torch.Tensor:
    return torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)


def _call(model: Model, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    out = model(x, t) if labels is None else model(x, t, labels)
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        raise TypeError(f"model must return a floating torch.Tensor, got {getattr(out, 'dtype', type(out).__name__)}")
    if out.shape != x.shape:
        raise ValueError(f"model must return eps of x_t's shape {tuple(x.shape)}, got {tuple(out.shape)}")
    return out.to(x.dtype)


def _pair(model: Model, x: torch.Tensor, t: int, labels: torch.Tensor, scale: float | None = None):
    """(eps_c, eps_u) in one batched call on 2B rows; one call when a CFG ``scale`` of 0 or 1 needs only one."""
    null = torch.full_like(labels, NULL_LABEL)
    if scale == 1.0 or scale == 0.0:
        eps = _call(model, x, _times(x, t), labels if scale == 1.0 else null)
        return eps, eps
    both = _call(model, torch.cat([x, x]), _times(x, t).repeat(2), torch.cat([labels, null]))
    return both.chunk(2)


def _inputs(model, x_T, schedule, steps, spacing, labels) -> tuple[torch.Tensor, NoiseSchedule, list[int], torch.Tensor]:
    _check_callable("model", model)
    _check_x(x_T, "x_T")
    schedule = _check_schedule(schedule)
    ts = _check_steps(schedule, steps, spacing) + [-1]
    labels = _check_labels(labels, x_T)
    if labels is None:
        labels = torch.full((x_T.shape[0],), NULL_LABEL, dtype=torch.int64, device=x_T.device)
    return x_T, schedule, ts, labels


def saturation(x: torch.Tensor, threshold: float = 1.5) -> float:
    """The share of entries of ``x`` (any shape, pixels in [-1, 1] units) with ``|x| > threshold``.

    Real 8x8 digits in [-1, 1] give 0; half their pixels sit exactly at -1, which is why
    the threshold is above 1. Returns a Python float in [0, 1].
    Reference: Sadat, Hilliges & Weber (2025) (oversaturation at high CFG scales); the threshold is the book's.
    """
    x = _check_x(x, "x")
    threshold = _check_positive("threshold", threshold)
    return float((x.abs() > threshold).double().mean())


# ---------------------------------------------------------------- classifier-free guidance

def _cfg(cond, uncond, scale):
    return uncond + scale * (cond - uncond)


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """``uncond + scale (cond - uncond)``: classifier-free guidance of eps, scores or x0 predictions.

    Shapes: ``cond``, ``uncond`` ``(B, ...)``; returns the same shape, differentiable.
    For scores this is the score of ``p(x|c)^w p(x)^(1-w)`` (up to normalisation).
    Reference: Ho & Salimans (2022), Algorithm 2 (with their w = our scale - 1).
    """
    _check_x(cond, "cond")
    _check_v(cond, uncond, "uncond")
    return _cfg(cond, uncond, _check_real("scale", scale))


def eps_cond_uncond(model: Model, x_t: torch.Tensor, t: int, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(eps(x_t, t, labels), eps(x_t, t, NULL_LABEL))`` from one batched network call on ``2B`` rows.

    Shapes: ``x_t`` ``(B, ...)``, ``t`` an int timestep, ``labels`` int64 ``(B,)``; both outputs
    ``(B, ...)`` (differentiable if the model is).
    Reference: Ho & Salimans (2022) (one network for the conditional and unconditional model).
    """
    _check_callable("model", model)
    _check_x(x_t, "x_t")
    if labels is None:
        raise TypeError("labels must be an int64 tensor of class indices, got None")
    eps_c, eps_u = _pair(model, x_t, _check_int("t", t, 0), _check_labels(labels, x_t))
    return _check_finite("the model's eps_c", eps_c), _check_finite("the model's eps_u", eps_u)


# ---------------------------------------------------------------- classifier guidance

def _log_prob_grad(classifier: Model, x: torch.Tensor, t: int, labels: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        z = x.detach().requires_grad_(True)
        logits = classifier(z, _times(z, t))
        if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.shape[:1] != x.shape[:1] \
                or logits.ndim != 2:
            raise ValueError(f"classifier must return logits of shape ({x.shape[0]}, n_classes), got "
                             f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
        if int(labels.max()) >= logits.shape[1] or int(labels.min()) < 0:
            raise ValueError(f"labels must be class indices in [0, {logits.shape[1] - 1}] for the classifier")
        logp = torch.log_softmax(logits, dim=1).gather(1, labels[:, None]).sum()
        (grad,) = torch.autograd.grad(logp, z)
    return grad


def classifier_guided_eps(eps: torch.Tensor, x_t: torch.Tensor, t: int, classifier: Model, labels: torch.Tensor,
                          scale: float, schedule: NoiseSchedule) -> torch.Tensor:
    """``eps - scale sqrt(1 - abar_t) grad_x log p_phi(y | x_t, t)``: the guided noise prediction.

    Bayes' rule on scores, ``grad log p_t(x|y) = grad log p_t(x) + grad log p_t(y|x)``, in eps
    units (``score = -eps / sqrt(1 - abar_t)``). ``classifier(x_t, t)`` returns logits
    ``(B, C)`` of a classifier trained on noisy inputs; ``t`` an int timestep, ``labels``
    int64 ``(B,)`` in ``[0, C)``. Shapes: ``eps``, ``x_t`` ``(B, ...)``. The gradient is
    taken with autograd (the result carries no graph).
    Reference: Dhariwal & Nichol (2021), Algorithm 2 (classifier-guided DDIM), sec. 4.
    """
    x_t = _check_x(x_t, "x_t")
    eps = _check_v(x_t, eps, "eps")
    _check_callable("classifier", classifier)
    schedule = _check_schedule(schedule)
    t = schedule._check_t(t, clean=False)
    if labels is None:
        raise TypeError("labels must be an int64 tensor of class indices, got None")
    labels = _check_labels(labels, x_t)
    scale = _check_real("scale", scale)
    grad = _check_finite("the classifier's gradient", _log_prob_grad(classifier, x_t, t, labels).to(x_t.dtype))
    return eps - scale * math.sqrt(1 - schedule.abar(t)) * grad


# ---------------------------------------------------------------- adaptive projected guidance

def _project(v: torch.Tensor, direction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dims = tuple(range(1, v.ndim))
    v64, d64 = v.double(), direction.double()
    norm = d64.square().sum(dims, keepdim=True).sqrt() if dims else d64.abs()
    unit = d64 / norm.clamp_min(1e-300) if dims else torch.sign(d64)
    par = ((v64 * unit).sum(dims, keepdim=True) if dims else v64 * unit) * unit
    return par.to(v.dtype), (v64 - par).to(v.dtype)


def project(v: torch.Tensor, direction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split each sample of ``v`` into parts parallel and orthogonal to the same sample of ``direction``.

    ``v_par = (<v, u> ) u`` with ``u = direction / |direction|`` per sample (all dimensions but
    the first), ``v_orth = v - v_par``; a zero direction gives ``v_par = 0``. Computed in
    float64 and returned in ``v``'s dtype (differentiable), shapes ``(B, ...)`` both.
    Reference: Sadat, Hilliges & Weber (2025) (the projection of the CFG update).
    """
    _check_x(v, "v")
    _check_v(v, direction, "direction")
    return _project(v, direction.to(v.dtype))


def _apg(pred_c, pred_u, scale, eta, norm_threshold, momentum, running):
    diff = pred_c - pred_u
    running = diff if running is None else diff + momentum * running
    diff = running
    if norm_threshold > 0:
        dims = tuple(range(1, diff.ndim))
        norm = diff.square().sum(dims, keepdim=True).sqrt() if dims else diff.abs()
        diff = diff * torch.clamp(norm_threshold / norm.clamp_min(1e-30), max=1.0)
    par, orth = _project(diff, pred_c)
    return pred_c + (scale - 1) * (orth + eta * par), running


def _check_apg(eta, norm_threshold, momentum) -> tuple[float, float, float]:
    eta, r, beta = _check_real("eta", eta), _check_real("norm_threshold", norm_threshold), _check_real("momentum", momentum)
    if r < 0:
        raise ValueError(f"norm_threshold must be >= 0 (0: no cap), got {r}")
    if not -1 < beta < 1:
        raise ValueError(f"momentum must lie in (-1, 1), got {beta}")
    return eta, r, beta


def apg_combine(pred_c: torch.Tensor, pred_u: torch.Tensor, scale: float, *, eta: float = 0.0,
                norm_threshold: float = 0.0, momentum: float = 0.0,
                running: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive projected guidance: ``pred_c + (scale - 1) (D_orth + eta D_par)``; returns ``(guided, running)``.

    ``D = pred_c - pred_u`` (the CFG update, ``cfg = pred_c + (scale - 1) D``) is first averaged
    with reverse momentum, ``running = D + momentum * running`` (pass the returned ``running``
    back at the next step; None starts it), then capped, ``D <- D min(1, r / |D|)`` per sample
    (``norm_threshold = r``, 0 for no cap), then split by :func:`project` into parts parallel
    and orthogonal to ``pred_c``. ``eta = 1``, ``r = 0``, ``momentum = 0`` is exactly CFG.
    Shapes: ``pred_c``, ``pred_u`` (and ``running``) ``(B, ...)``, usually predicted clean images.
    Reference: Sadat, Hilliges & Weber (2025) (projection, rescaling, reverse momentum).
    """
    _check_x(pred_c, "pred_c")
    _check_v(pred_c, pred_u, "pred_u")
    if running is not None:
        _check_v(pred_c, running, "running")
    eta, r, beta = _check_apg(eta, norm_threshold, momentum)
    return _apg(pred_c, pred_u, _check_real("scale", scale), eta, r, beta, running)


# ---------------------------------------------------------------- samplers

def cfg_sample(model: Model, x_T: torch.Tensor, schedule: NoiseSchedule, steps: int, labels: torch.Tensor | None,
               scale: float, *, spacing: str = "leading", adaptive_threshold: float | None = None,
               grad_last: int | None = None) -> torch.Tensor:
    """Deterministic DDIM with classifier-free guidance, ``eps_u + scale (eps_c - eps_u)``; returns ``x_0``.

    ``labels`` int64 ``(B,)`` (None: every sample unconditional). ``scale`` 0 or 1 costs one
    network call per step, any other scale one call on ``2B`` rows. ``adaptive_threshold``
    ``gamma``: once the cosine similarity of a sample's two clean estimates ``x0_c``, ``x0_u``
    exceeds it, that sample uses ``eps_c`` alone for the remaining steps, saving its
    unconditional evaluations (Adaptive Guidance compares the two predictions; in eps they agree
    trivially at high noise, where ``eps ~ x_t``, so the clean estimates are compared here).
    The loop is an autograd graph: gradients flow to ``x_T`` and to the model's parameters
    when they require them; ``grad_last = K`` runs all but the last ``K`` steps without a graph
    (truncated backpropagation). Shapes: ``x_T`` ``(B, ...)``, returns ``(B, ...)``.
    Reference: Ho & Salimans (2022), Algorithm 2; Song, Meng & Ermon (2021), eq. 12 (DDIM);
    Castillo et al. (2025) (Adaptive Guidance).
    """
    x, schedule, ts, labels = _inputs(model, x_T, schedule, steps, spacing, labels)
    scale = _check_real("scale", scale)
    if adaptive_threshold is not None:
        adaptive_threshold = _check_real("adaptive_threshold", adaptive_threshold)
        if not -1 <= adaptive_threshold <= 1:
            raise ValueError(f"adaptive_threshold must be a cosine similarity in [-1, 1], got {adaptive_threshold}")
    n = len(ts) - 1
    if grad_last is not None:
        grad_last = _check_int("grad_last", grad_last, 0, n)
    first_graph = 0 if grad_last is None else n - grad_last
    done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    dims = tuple(range(1, x.ndim))
    for k, (t, t_prev) in enumerate(zip(ts[:-1], ts[1:])):
        if k == first_graph and grad_last is not None:
            x = x.detach()
        with torch.set_grad_enabled(torch.is_grad_enabled() and k >= first_graph):
            a, b, _ = _ddim_coeffs(schedule, t, t_prev)
            if adaptive_threshold is None or scale in (0.0, 1.0):
                eps = _cfg(*_pair(model, x, t, labels, scale), scale)
            else:
                eps = _adaptive_eps(model, x, t, labels, scale, adaptive_threshold, done, dims,
                                    math.sqrt(1 - schedule.abar(t)))
            x = a * x + b * eps
    return _finite_result(x, "cfg_sample")


def _adaptive_eps(model, x, t, labels, scale, gamma, done, dims, c):
    """CFG for the samples still guided, plain conditional eps for those whose clean estimates agreed."""
    live = (~done).nonzero().squeeze(1)
    rows = torch.cat([x, x[live]])
    lab = torch.cat([labels, torch.full_like(labels[live], NULL_LABEL)])
    out = _call(model, rows, _times(rows, t), lab)
    eps_c, eps_u = out[: x.shape[0]], out[x.shape[0]:]
    x0_c, x0_u = (x[live] - c * eps_c[live]).flatten(1), (x[live] - c * eps_u).flatten(1)  # x0 up to 1/sqrt(abar)
    cos = F.cosine_similarity(x0_c, x0_u, dim=1) if dims else torch.ones_like(eps_u)
    eps = eps_c.clone()
    eps[live] = _cfg(eps_c[live], eps_u, scale)
    done[live] |= cos > gamma  # from the next step on, this sample is not guided
    return eps


def classifier_guided_sample(model: Model, classifier: Model, x_T: torch.Tensor, schedule: NoiseSchedule, steps: int,
                             labels: torch.Tensor, scale: float, *, spacing: str = "leading") -> torch.Tensor:
    """Deterministic DDIM with :func:`classifier_guided_eps` on the unconditional model ``model(x_t, t)``.

    ``classifier(x_t, t)`` returns logits ``(B, C)`` of noisy inputs; ``labels`` int64 ``(B,)``
    the requested classes, ``scale`` the guidance scale ``s``. Shapes: ``x_T`` ``(B, ...)``, returns
    ``x_0`` of that shape (no graph: each step takes a fresh gradient of the classifier).
    Reference: Dhariwal & Nichol (2021), Algorithm 2.
    """
    _check_callable("classifier", classifier)
    if labels is None:
        raise TypeError("labels must be an int64 tensor of class indices, got None")
    x, schedule, ts, labels = _inputs(model, x_T, schedule, steps, spacing, labels)
    scale = _check_real("scale", scale)
    x = x.detach()
    for t, t_prev in zip(ts[:-1], ts[1:]):
        a, b, _ = _ddim_coeffs(schedule, t, t_prev)
        with torch.no_grad():
            eps = _check_finite("the model's eps", _call(model, x, _times(x, t), None))
        grad = _check_finite("the classifier's gradient", _log_prob_grad(classifier, x, t, labels).to(x.dtype))
        x = a * x + b * (eps - scale * math.sqrt(1 - schedule.abar(t)) * grad)
    return _finite_result(x, "classifier_guided_sample")


def apg_sample(model: Model, x_T: torch.Tensor, schedule: NoiseSchedule, steps: int, labels: torch.Tensor | None,
               scale: float, *, eta: float = 0.0, norm_threshold: float = 0.0, momentum: float = 0.0,
               spacing: str = "leading") -> torch.Tensor:
    """Deterministic DDIM with adaptive projected guidance applied to the predicted clean images.

    At each step ``x0_c``, ``x0_u`` are Tweedie's estimates from ``eps_c``, ``eps_u``;
    :func:`apg_combine` (``eta``, ``norm_threshold``, ``momentum``, its running average carried
    from step to step) gives ``x0_g``; the step is DDIM with ``x0_g`` and the noise it implies,
    ``eps_g = (x_t - sqrt(abar_t) x0_g) / sqrt(1 - abar_t)``. With ``eta = 1``,
    ``norm_threshold = 0``, ``momentum = 0`` it is :func:`cfg_sample`. Shapes: ``x_T``
    ``(B, ...)``; returns ``x_0`` (an autograd graph like :func:`cfg_sample`).
    Reference: Sadat, Hilliges & Weber (2025) (APG applied to the denoised prediction).
    """
    x, schedule, ts, labels = _inputs(model, x_T, schedule, steps, spacing, labels)
    scale = _check_real("scale", scale)
    eta, r, beta = _check_apg(eta, norm_threshold, momentum)
    running = None
    for t, t_prev in zip(ts[:-1], ts[1:]):
        ab, ab_prev = schedule.abar(t), schedule.abar(t_prev)
        eps_c, eps_u = _pair(model, x, t, labels, 1.0 if scale == 1 else None)
        x0_c = (x - math.sqrt(1 - ab) * eps_c) / math.sqrt(ab)
        x0_u = (x - math.sqrt(1 - ab) * eps_u) / math.sqrt(ab)
        x0_g, running = _apg(x0_c, x0_u, scale, eta, r, beta, running)
        eps_g = (x - math.sqrt(ab) * x0_g) / math.sqrt(1 - ab)
        x = math.sqrt(ab_prev) * x0_g + math.sqrt(1 - ab_prev) * eps_g
    return _finite_result(x, "apg_sample")


def cfgpp_sample(model: Model, x_T: torch.Tensor, schedule: NoiseSchedule, steps: int, labels: torch.Tensor | None,
                 scale: float, *, spacing: str = "leading") -> torch.Tensor:
    """CFG++: DDIM whose denoising uses the guided eps and whose renoising uses the unconditional one.

    ``x0_l = (x_t - sqrt(1 - abar_t) eps_l) / sqrt(abar_t)`` with ``eps_l = eps_u + l (eps_c - eps_u)``
    (``l = scale``, meant for ``[0, 1]``), then ``x_prev = sqrt(abar_prev) x0_l + sqrt(1 - abar_prev) eps_u``.
    Algebraically one CFG-DDIM step with the step-dependent scale
    ``w_t = l sigma_t / (sigma_t - sigma_prev)`` (``sigma = sqrt((1 - abar) / abar)``).
    Shapes: ``x_T`` ``(B, ...)``; returns ``x_0``.
    Reference: Chung et al. (2025), "CFG++" (the DDIM form).
    """
    x, schedule, ts, labels = _inputs(model, x_T, schedule, steps, spacing, labels)
    lam = _check_real("scale", scale)
    for t, t_prev in zip(ts[:-1], ts[1:]):
        ab, ab_prev = schedule.abar(t), schedule.abar(t_prev)
        eps_c, eps_u = _pair(model, x, t, labels, 0.0 if lam == 0 else None)
        x0 = (x - math.sqrt(1 - ab) * _cfg(eps_c, eps_u, lam)) / math.sqrt(ab)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps_u
    return _finite_result(x, "cfgpp_sample")


# ---------------------------------------------------------------- a classifier of noisy inputs

class NoisyClassifier(nn.Module):
    """Logits ``(B, n_classes)`` of noisy inputs ``x_t`` ``(B, ...)`` (flattened to ``dim``) at times ``t`` ``(B,)``.

    ``Linear(dim) + Linear(sinusoid(t))``, SiLU, ``Linear(width, width)``, SiLU, ``Linear(width, n_classes)``:
    the time enters as in :class:`lib.denoiser.ResidualMLP`. Train it with :func:`train_noisy_classifier`.
    Reference: Dhariwal & Nichol (2021), sec. 4 (a classifier trained on noisy images).
    """

    def __init__(self, dim: int = 64, n_classes: int = 10, width: int = 128, emb: int = 32) -> None:
        super().__init__()
        for name, v in (("dim", dim), ("width", width), ("emb", emb)):
            _check_int(name, v, 1)
        _check_int("n_classes", n_classes, 2)
        if emb % 2:
            raise ValueError(f"emb must be even (sin and cos features), got {emb}")
        self.dim, self.emb = dim, emb
        self.inp, self.time = nn.Linear(dim, width), nn.Linear(emb, width)
        self.hidden, self.out = nn.Linear(width, width), nn.Linear(width, n_classes)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not isinstance(x_t, torch.Tensor) or x_t.ndim < 1 or x_t[0].numel() != self.dim:
            raise ValueError(f"x_t must have shape (B, ...) with {self.dim} entries per sample, got "
                             f"{tuple(getattr(x_t, 'shape', ())) or type(x_t).__name__}")
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.shape != (x_t.shape[0],):
            raise TypeError(f"t must be a floating tensor of shape ({x_t.shape[0]},), got "
                            f"{getattr(t, 'dtype', type(t).__name__)} {tuple(getattr(t, 'shape', ()))}")
        h = F.silu(self.inp(x_t.reshape(x_t.shape[0], self.dim)) + self.time(timestep_embedding(t.to(x_t.dtype), self.emb)))
        return self.out(F.silu(self.hidden(h)))


def train_noisy_classifier(classifier: nn.Module, x0: torch.Tensor, labels: torch.Tensor, schedule: NoiseSchedule, *,
                           steps: int = 1000, batch_size: int = 256, lr: float = 2e-3,
                           generator: torch.Generator | None = None) -> list[float]:
    """Train ``classifier(x_t, t) -> logits`` (in place, then eval mode) on ``q(x_t | x_0)``; return the losses.

    Each Adam step draws ``batch_size`` rows of ``x0`` ``(N, ...)`` with their ``labels``
    (int64 ``(N,)``), a uniform timestep and Gaussian noise (all with ``generator``), and
    minimises the cross-entropy of ``classifier(x_t, t)``.
    Reference: Dhariwal & Nichol (2021), sec. 4.
    """
    if not isinstance(classifier, nn.Module):
        raise TypeError(f"classifier must be a torch.nn.Module, got {type(classifier).__name__}")
    x0 = _check_x(x0, "x0")
    if labels is None:
        raise TypeError("labels must be an int64 tensor of class indices, got None")
    labels = _check_labels(labels, x0)
    if int(labels.min()) < 0:
        raise ValueError(f"labels must be class indices >= 0, got {int(labels.min())}")
    schedule = _check_schedule(schedule)
    steps, batch_size, lr = _check_int("steps", steps, 1), _check_int("batch_size", batch_size, 1), _check_positive("lr", lr)
    generator = _check_generator(generator)
    if generator is not None and generator.device != x0.device:
        raise ValueError(f"generator must be on x0's device {x0.device}, got {generator.device}")
    opt = torch.optim.Adam(classifier.parameters(), lr=lr)
    sqrt_ab = schedule.sqrt_alphas_cumprod.to(x0.device, x0.dtype)
    sqrt_1mab = schedule.sqrt_one_minus_alphas_cumprod.to(x0.device, x0.dtype)
    view = (-1,) + (1,) * (x0.ndim - 1)
    losses = []
    classifier.train()
    for _ in range(steps):
        idx = torch.randint(0, x0.shape[0], (batch_size,), generator=generator, device=x0.device)
        t = torch.randint(0, schedule.T, (batch_size,), generator=generator, device=x0.device)
        noise = torch.randn((batch_size,) + x0.shape[1:], generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = sqrt_ab[t].view(view) * x0[idx] + sqrt_1mab[t].view(view) * noise
        logits = classifier(x_t, t.to(x0.dtype))
        if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.ndim != 2 \
                or logits.shape[0] != batch_size or logits.shape[1] <= int(labels.max()):
            raise ValueError(f"classifier must return floating logits of shape ({batch_size}, n_classes) with "
                             f"n_classes > max(labels) = {int(labels.max())}, got "
                             f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
        loss = F.cross_entropy(logits, labels[idx])
        if not bool(torch.isfinite(loss)):
            raise ValueError("the classifier's loss is not finite: it returned NaN/inf logits")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    classifier.eval()
    return losses


# ---------------------------------------------------------------- reward backpropagation

class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) x A^T B^T``: a frozen linear layer plus a trainable low-rank update.

    ``A`` ``(rank, in)`` is drawn from ``N(0, 1/in)`` (with ``generator``), ``B`` ``(out, rank)``
    starts at zero, so the wrapped layer first computes exactly what ``base`` did; only
    ``A`` and ``B`` require gradients. Input ``(..., in)``, output ``(..., out)``.
    Reference: Hu et al. (2022), "LoRA: Low-Rank Adaptation of Large Language Models", sec. 4.1.
    """

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        rank = _check_int("rank", rank, 1, min(base.in_features, base.out_features))
        self.base, self.rank, self.alpha = base.requires_grad_(False), rank, _check_positive("alpha", alpha)
        generator = _check_generator(generator)
        w = base.weight
        a = torch.randn(rank, base.in_features, generator=generator, device=w.device if generator is None
                        else generator.device, dtype=w.dtype).to(w.device) / math.sqrt(base.in_features)
        self.A = nn.Parameter(a)
        self.B = nn.Parameter(torch.zeros(base.out_features, rank, device=w.device, dtype=w.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 1 or x.shape[-1] != self.A.shape[1]:
            raise ValueError(f"x must be a floating tensor of shape (..., {self.A.shape[1]}), got "
                             f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        return self.base(x) + (self.alpha / self.rank) * F.linear(F.linear(x, self.A), self.B)


def _reward_of(reward: Callable, x0: torch.Tensor) -> torch.Tensor:
    r = reward(x0)
    if not isinstance(r, torch.Tensor) or r.shape != (x0.shape[0],):
        raise ValueError(f"reward must return a tensor of shape ({x0.shape[0]},) (one value per sample), got "
                         f"{tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__}")
    if not bool(torch.isfinite(r).all()):
        raise ValueError("reward returned non-finite values")
    return r


def _check_reward_args(model, reward, schedule, iters, lr):
    _check_callable("model", model)
    _check_callable("reward", reward)
    schedule = _check_schedule(schedule)
    return schedule, _check_int("iters", iters, 1), _check_positive("lr", lr)


def reward_finetune(model: Model, params: Sequence[torch.Tensor], reward: Callable[[torch.Tensor], torch.Tensor],
                    x_T: torch.Tensor, schedule: NoiseSchedule, steps: int, *, labels: torch.Tensor | None = None,
                    scale: float = 1.0, iters: int = 20, lr: float = 1e-3, grad_last: int | None = None,
                    generator: torch.Generator | None = None) -> list[float]:
    """Raise ``E[reward(sample)]`` by Adam on ``params`` through the whole sampler; returns the mean reward per step.

    Each iteration draws fresh noise of ``x_T``'s shape ``(B, ...)`` (with ``generator``; the
    given ``x_T`` is the first batch), samples ``x_0`` = :func:`cfg_sample` (``labels``,
    ``scale``, ``grad_last``) as one autograd graph, and takes an Adam step on
    ``-mean reward(x_0)``. ``params``: tensors the model uses, with ``requires_grad`` (a
    small set, e.g. a :class:`LoRALinear`'s ``A``, ``B``); ``reward`` maps ``(B, ...)`` to
    ``(B,)``. Returns ``iters`` floats, each the batch's mean reward *before* its step.
    Reference: Prabhudesai et al. (2023), AlignProp (end-to-end reward backpropagation, LoRA);
    Clark et al. (2024), DRaFT (truncated backpropagation, ``grad_last``).
    """
    schedule, iters, lr = _check_reward_args(model, reward, schedule, iters, lr)
    _check_x(x_T, "x_T")
    if isinstance(params, torch.Tensor) or not isinstance(params, (list, tuple)) or not params:
        raise TypeError(f"params must be a non-empty list of tensors, got {type(params).__name__}")
    for p in params:
        if not isinstance(p, torch.Tensor) or not p.is_floating_point() or not p.requires_grad:
            raise ValueError("params must be floating tensors with requires_grad=True (the parameters to fine-tune)")
    generator = _check_generator(generator)
    if generator is not None and generator.device != x_T.device:
        raise ValueError(f"generator must be on x_T's device {x_T.device}, got {generator.device}")
    opt = torch.optim.Adam(list(params), lr=lr)
    history, noise = [], x_T.detach()
    for k in range(iters):
        if k > 0:
            noise = torch.randn(x_T.shape, generator=generator, device=x_T.device, dtype=x_T.dtype)
        with torch.enable_grad():
            r = _reward_of(reward, cfg_sample(model, noise, schedule, steps, labels, scale, grad_last=grad_last))
            # gradients of params only: the model's other parameters get no .grad
            grads = torch.autograd.grad(-r.mean(), params, allow_unused=True) if r.requires_grad else [None]
        if all(g is None for g in grads):
            raise ValueError("the reward does not depend on params (are they used by the model? grad_last=0?)")
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        history.append(float(r.detach().mean()))
    return history


def optimize_initial_noise(model: Model, x_T: torch.Tensor, reward: Callable[[torch.Tensor], torch.Tensor],
                           schedule: NoiseSchedule, steps: int, *, labels: torch.Tensor | None = None,
                           scale: float = 1.0, iters: int = 20, lr: float = 0.05,
                           keep_norm: bool = True) -> tuple[torch.Tensor, list[float]]:
    """Gradient ascent (Adam) on the starting noise of the deterministic sampler to raise ``reward``.

    ``x_0 = cfg_sample(model, x_T, ...)`` is a differentiable function of ``x_T``; each
    iteration steps ``x_T`` along ``grad sum_i reward(x_0)_i`` (samples are independent, so each
    gets its own gradient). ``keep_norm``: after each step every sample of ``x_T`` is rescaled
    to its starting norm, so it stays on the shell where Gaussian noise lives. The model's
    parameters are not changed. Returns ``(x_T_opt, history)`` with ``x_T_opt`` of ``x_T``'s
    shape ``(B, ...)`` and the mean reward before each of the ``iters`` steps.
    Reference: Wallace et al. (2023), DOODL (optimising the initial noise through the sampler);
    Kasaei et al. (2025), CARINOX (reward-based initial-noise optimisation).
    """
    schedule, iters, lr = _check_reward_args(model, reward, schedule, iters, lr)
    _check_x(x_T, "x_T")
    if not isinstance(keep_norm, bool):
        raise TypeError(f"keep_norm must be a bool, got {type(keep_norm).__name__}")
    z = x_T.detach().clone().requires_grad_(True)
    dims = tuple(range(1, z.ndim))
    norm0 = z.detach().square().sum(dims, keepdim=True).sqrt() if dims else z.detach().abs()
    opt = torch.optim.Adam([z], lr=lr)
    history = []
    for _ in range(iters):
        with torch.enable_grad():
            r = _reward_of(reward, cfg_sample(model, z, schedule, steps, labels, scale))
            if not r.requires_grad:
                raise ValueError("reward must be a differentiable function of the samples (its output has no graph)")
            (z.grad,) = torch.autograd.grad(-r.sum(), z)  # the model's parameters get no .grad
        opt.step()
        if keep_norm:
            with torch.no_grad():
                norm = z.square().sum(dims, keepdim=True).sqrt() if dims else z.abs()
                z.mul_(norm0 / norm.clamp_min(1e-30))
        history.append(float(r.detach().mean()))
    return z.detach(), history
