"""Diffusion models: noise schedules, DDPM and DDIM sampling, the probability-flow ODE, inversion.

Chapter 23 (``book/23_diffusion.md``, lab ``notebooks/23_diffusion.ipynb``); the guidance and
few-step chapters build on the same interfaces. Conventions are diffusers', so the two can
be compared:

* discrete time ``t = 0, ..., T-1`` with ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``,
  ``abar_t = prod_{s <= t} (1 - beta_s)``; ``t = -1`` is the clean sample (``abar = 1``),
  where every sampler's last step lands (diffusers' ``set_alpha_to_one=True``);
* noise level ``sigma_t = sqrt((1 - abar_t) / abar_t)`` and scaled state ``xbar = x / sqrt(abar)``:
  DDIM with ``eta = 0`` is Euler's method for the probability-flow ODE
  ``d xbar / d sigma = eps``, which :func:`probability_flow_ode` solves with :func:`lib.ode.odeint`;
* a *model* is any callable ``model(x_t, t, labels=None) -> eps`` of ``x_t``'s shape ``(B, ...)``,
  with ``t`` a float tensor ``(B,)`` of timesteps (fractional in the ODE) and ``labels`` None
  (then the samplers call ``model(x_t, t)``) or int64 ``(B,)``, :data:`NULL_LABEL` meaning
  "no label". Samplers check its output shape every step and finiteness once, at the end.

References: Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models"; Song, Meng
& Ermon (2021), "Denoising Diffusion Implicit Models"; Nichol & Dhariwal (2021), "Improved
Denoising Diffusion Probabilistic Models"; Song et al. (2021), "Score-Based Generative Modeling
through Stochastic Differential Equations"; Zhang, Lewis & Kleijn (2023), "Exact Diffusion
Inversion via Bi-directional Integration Approximation" (BDIA).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from .calculus import _check_finite
from .curvature import _check_callable, _check_generator, _check_int, _check_real, _check_v
from .ode import ODEStats, odeint

__all__ = [
    "NULL_LABEL", "NoiseSchedule", "q_sample", "predict_x0", "eps_to_score",
    "diffusion_loss", "ddpm_step", "ddpm_sample", "ddim_timesteps", "ddim_step", "ddim_sample",
    "ddim_invert", "bdia_sample", "bdia_invert", "probability_flow_ode",
]

NULL_LABEL = -1  #: the "no label" class of classifier-free guidance
Model = Callable[..., torch.Tensor]  # model(x_t, t, labels=None) -> eps


# ---------------------------------------------------------------- the noise schedule

class NoiseSchedule:
    """The variances ``beta_t`` of the forward process, from ``betas`` in (0, 1) or :meth:`linear` / :meth:`cosine`.

    Attributes: ``T`` and float64 CPU tensors of length ``T``: ``betas``, ``alphas = 1 - betas``,
    ``alphas_cumprod`` (``abar_t``), ``sqrt_alphas_cumprod``, ``sqrt_one_minus_alphas_cumprod``,
    ``sigmas = sqrt((1 - abar_t) / abar_t)`` (increasing).
    Reference: Ho et al. (2020), eq. 4 (``q(x_t | x_0)``); Nichol & Dhariwal (2021), sec. 3.2.
    """

    def __init__(self, betas) -> None:
        b = betas
        if isinstance(b, (list, tuple, np.ndarray)):
            try:
                b = torch.as_tensor(np.asarray(b, dtype=np.float64))
            except (TypeError, ValueError) as err:
                raise TypeError(f"betas must hold real numbers: {err}") from None
        if not isinstance(b, torch.Tensor) or not b.is_floating_point():
            raise TypeError(f"betas must be a real floating tensor or list, got {getattr(b, 'dtype', type(b))}")
        b = _check_finite("betas", b.detach().to("cpu", torch.float64))
        if b.ndim != 1 or b.numel() < 2:
            raise ValueError(f"betas must be 1-D with at least 2 entries, got shape {tuple(b.shape)}")
        if not bool(((b > 0) & (b < 1)).all()):
            raise ValueError(f"betas must lie in (0, 1), got min {b.min().item():g}, max {b.max().item():g}")
        self.betas = b
        self.alphas = 1.0 - b
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        if not bool((self.alphas_cumprod > 0).all()):
            raise ValueError("betas drive alphas_cumprod to 0 in float64: shorten the schedule")
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - self.alphas_cumprod).sqrt()
        self.sigmas = (self.sqrt_one_minus_alphas_cumprod / self.sqrt_alphas_cumprod)
        self.T = b.numel()
        self._abar = self.alphas_cumprod.tolist()  # Python floats for the samplers' coefficients
        self._log_sigmas = self.sigmas.log()
        if not bool((self._log_sigmas.diff() > 0).all()) or self.alphas[0] >= 1:  # 1 - beta rounded to 1
            raise ValueError(f"betas too small for float64 (min {b.min().item():g}): sigma must grow with t")
        self._cache: dict = {}

    @classmethod
    def linear(cls, T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        """``beta_t`` evenly spaced from ``beta_start`` to ``beta_end`` (``T`` values).

        Ho et al. use T = 1000 with the defaults; with fewer steps scale both by 1000 / T
        to keep the same total noise.
        Reference: Ho et al. (2020), sec. 4.
        """
        T = _check_int("T", T, 2)
        lo, hi = _check_real("beta_start", beta_start), _check_real("beta_end", beta_end)
        if not 0 < lo <= hi < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got beta_start={lo}, beta_end={hi}")
        return cls(torch.linspace(lo, hi, T, dtype=torch.float64))

    @classmethod
    def cosine(cls, T: int, s: float = 0.008, max_beta: float = 0.999) -> "NoiseSchedule":
        """``abar(t) = f(t) / f(0)``, ``f(t) = cos((t/T + s) / (1 + s) * pi/2)^2``, betas capped.

        ``beta_t = min(1 - abar(t+1) / abar(t), max_beta)`` for ``t = 0, ..., T-1`` (so
        ``alphas_cumprod[t] = f(t+1) / f(0)`` wherever the cap is not reached).
        Reference: Nichol & Dhariwal (2021), eq. 17.
        """
        T = _check_int("T", T, 2)
        s, max_beta = _check_real("s", s), _check_real("max_beta", max_beta)
        if s < 0:
            raise ValueError(f"s must be >= 0, got {s}")
        if not 0 < max_beta < 1:
            raise ValueError(f"max_beta must be in (0, 1), got {max_beta}")
        f = lambda u: math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        betas = [min(1 - f(i + 1) / f(i), max_beta) for i in range(T)]
        if min(betas) <= 0:
            raise ValueError(f"s={s} gives a zero beta (f(0) rounds to f(1)); use a larger s or smaller T")
        return cls(torch.tensor(betas, dtype=torch.float64))

    def __repr__(self) -> str:
        return (f"NoiseSchedule(T={self.T}, beta {self.betas[0].item():.3g}..{self.betas[-1].item():.3g}, "
                f"abar_T-1={self._abar[-1]:.3g})")

    def abar(self, t: int) -> float:
        """``abar_t`` as a Python float, with ``abar_{-1} = 1`` (the clean sample)."""
        return 1.0 if (t := self._check_t(t)) < 0 else self._abar[t]

    def _check_t(self, t, name: str = "t", clean: bool = True) -> int:
        if isinstance(t, torch.Tensor) and t.numel() == 1 and not t.is_floating_point() and t.dtype != torch.bool:
            t = int(t)
        return _check_int(name, t, -1 if clean else 0, self.T - 1)

    def _on(self, device, dtype) -> dict:
        key = (str(device), dtype)
        if key not in self._cache:
            self._cache[key] = {"sqrt_ab": self.sqrt_alphas_cumprod.to(device, dtype),
                                "sqrt_1mab": self.sqrt_one_minus_alphas_cumprod.to(device, dtype),
                                "log_sigma": self._log_sigmas.to(device, dtype)}
        return self._cache[key]

    def sigma_at(self, t: torch.Tensor) -> torch.Tensor:
        """The noise level at continuous times ``t`` in ``[0, T-1]`` (any shape, float): ``log sigma``
        interpolated linearly between the timesteps. :meth:`t_of_sigma` is its inverse.
        Reference: Karras et al. (2022), "Elucidating the Design Space...", app. C.
        """
        ls = self._on(t.device, t.dtype)["log_sigma"]
        u = t.clamp(0, self.T - 1)
        i = u.floor().clamp(max=self.T - 2).long()
        w = u - i.to(u.dtype)
        return ((1 - w) * ls[i] + w * ls[i + 1]).exp()

    def t_of_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """The continuous time of a noise level, inverse of :meth:`sigma_at` (clamped to [0, T-1])."""
        ls = self._on(sigma.device, sigma.dtype)["log_sigma"]
        x = sigma.clamp_min(torch.finfo(sigma.dtype).tiny).log().clamp(ls[0], ls[-1])
        i = (torch.searchsorted(ls, x.reshape(-1).contiguous()).reshape(x.shape) - 1).clamp(0, self.T - 2)
        return (i.to(x.dtype) + (x - ls[i]) / (ls[i + 1] - ls[i])).clamp(0, self.T - 1)


def _check_schedule(schedule) -> NoiseSchedule:
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    return schedule


# ---------------------------------------------------------------- validation

def _check_x(x, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.ndim < 1 or x.shape[0] < 1 or x.numel() == 0:
        raise ValueError(f"{name} must have shape (B, ...) with B >= 1 and no empty dimension, "
                         f"got {tuple(x.shape)}")
    return _check_finite(name, x.detach())


def _check_labels(labels, x: torch.Tensor) -> torch.Tensor | None:
    if labels is None:
        return None
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
        raise TypeError(f"labels must be None or an int64 tensor, got {getattr(labels, 'dtype', type(labels))}")
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},) (one per sample), got {tuple(labels.shape)}")
    if labels.device != x.device:
        raise ValueError(f"labels must be on x's device {x.device}, got {labels.device}")
    if labels.numel() and int(labels.min()) < NULL_LABEL:
        raise ValueError(f"labels must be >= {NULL_LABEL} (NULL_LABEL means no label), got {int(labels.min())}")
    return labels


def _check_eta(eta) -> float:
    if _check_real("eta", eta) < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    return float(eta)


def _gen(generator, x: torch.Tensor) -> torch.Generator | None:
    if _check_generator(generator) is not None and generator.device != x.device:
        raise ValueError(f"generator must be on the samples' device {x.device}, got {generator.device}")
    return generator


def _noise(x: torch.Tensor, noise, generator) -> torch.Tensor:
    if noise is not None:
        if generator is not None:
            raise ValueError("pass either noise or generator, not both")
        return _check_v(x, noise, "noise")
    return torch.randn(x.shape, generator=_gen(generator, x), device=x.device, dtype=x.dtype)


class _Eps:
    """``model`` as the samplers call it: time as a (B,) tensor, output shape checked."""

    def __init__(self, model, x: torch.Tensor, labels):
        _check_callable("model", model)
        self.model, self.labels = model, _check_labels(labels, x)
        self.shape, self.B, self.dtype, self.device = x.shape, x.shape[0], x.dtype, x.device
        self._times: dict = {}

    def time(self, t: float) -> torch.Tensor:
        if t not in self._times:
            self._times[t] = torch.full((self.B,), float(t), dtype=self.dtype, device=self.device)
        return self._times[t]

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        tt = self.time(t) if not isinstance(t, torch.Tensor) else t
        out = self.model(x, tt) if self.labels is None else self.model(x, tt, self.labels)
        if type(out) is not torch.Tensor or out.shape != self.shape or out.dtype != self.dtype:
            if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                raise TypeError(f"model must return a floating torch.Tensor, got "
                                f"{getattr(out, 'dtype', type(out).__name__)}")
            if out.shape != self.shape:
                raise ValueError(f"model must return eps of x_t's shape {tuple(self.shape)}, got {tuple(out.shape)}")
            out = out.to(self.dtype)
        return out


def _finite_result(x: torch.Tensor, what: str) -> torch.Tensor:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what} produced non-finite values: the model returned NaN/inf or the samples overflowed")
    return x


def _chain(eps_of: _Eps, x: torch.Tensor, plan, generator, return_trajectory: bool, what: str):
    """``x <- a x + b eps(x, t) + std z`` for each ``(t, a, b, std)`` of ``plan``: every sampler's loop."""
    traj = [x] if return_trajectory else None
    for t, a, b, std in plan:
        x = torch.add(x * a, eps_of(x, t), alpha=b)
        if std > 0:
            x.add_(torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype), alpha=std)
        if traj is not None:
            traj.append(x)
    _finite_result(x, what)
    return (x, torch.stack(traj)) if return_trajectory else x


# ---------------------------------------------------------------- forward process and training

def q_sample(x0: torch.Tensor, t, schedule: NoiseSchedule, noise: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` from ``q(x_t | x_0)``.

    Shapes: ``x0`` ``(B, ...)``; ``t`` an int in ``[0, T-1]`` or an integer tensor of shape
    ``(B,)``; ``noise`` of ``x0``'s shape (drawn with ``generator`` if None). Returns ``x_t``.
    Reference: Ho et al. (2020), eq. 4.
    """
    x0 = _check_x(x0, "x0")
    schedule = _check_schedule(schedule)
    noise = _noise(x0, noise, generator)
    coef = schedule._on(x0.device, x0.dtype)
    if isinstance(t, torch.Tensor):
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"t must be an int or an integer tensor, got {t.dtype}")
        if t.shape != (x0.shape[0],):
            raise ValueError(f"t must have shape ({x0.shape[0]},) (one per sample), got {tuple(t.shape)}")
        if int(t.min()) < 0 or int(t.max()) >= schedule.T:
            raise ValueError(f"t must lie in [0, {schedule.T - 1}], got [{int(t.min())}, {int(t.max())}]")
        view = (-1,) + (1,) * (x0.ndim - 1)
        t = t.to(x0.device)
        return coef["sqrt_ab"][t].view(view) * x0 + coef["sqrt_1mab"][t].view(view) * noise
    t = schedule._check_t(t, clean=False)
    return math.sqrt(schedule._abar[t]) * x0 + math.sqrt(1 - schedule._abar[t]) * noise


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, t: int, schedule: NoiseSchedule) -> torch.Tensor:
    """Tweedie's denoised estimate ``x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``.

    With the optimal ``eps = E[eps | x_t]`` this is the posterior mean ``E[x_0 | x_t]``.
    Shapes: ``x_t`` and ``eps`` ``(B, ...)``; ``t`` an int in ``[0, T-1]``.
    Reference: Ho et al. (2020), eq. 15; Efron (2011) for Tweedie's formula.
    """
    x_t = _check_x(x_t, "x_t")
    eps = _check_v(x_t, eps, "eps")
    ab = _check_schedule(schedule).abar(schedule._check_t(t, clean=False))
    return (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)


def eps_to_score(eps: torch.Tensor, t: int, schedule: NoiseSchedule) -> torch.Tensor:
    """The score ``grad log p_t(x_t) = -eps / sqrt(1 - abar_t)`` of an optimal eps-predictor.

    Shapes: ``eps`` ``(B, ...)``, returned as is scaled; ``t`` an int in ``[0, T-1]``.
    Reference: Song et al. (2021, SDE), sec. 3 and app. B; Vincent (2011).
    """
    eps = _check_x(eps, "eps")
    ab = _check_schedule(schedule).abar(schedule._check_t(t, clean=False))
    return -eps / math.sqrt(1 - ab)


def diffusion_loss(model: Model, x0: torch.Tensor, schedule: NoiseSchedule, *, labels: torch.Tensor | None = None,
                   p_uncond: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """The simple DDPM loss ``E_{t, eps} |eps - model(x_t, t, labels)|^2`` (mean over entries), 0-dim.

    ``t ~ U{0, ..., T-1}`` and ``eps ~ N(0, I)`` drawn with ``generator`` (on ``x0``'s device);
    each of the ``labels`` (int64 ``(B,)``) becomes :data:`NULL_LABEL` with probability
    ``p_uncond``, so one network learns the conditional and the unconditional model.
    Reference: Ho et al. (2020), eq. 14 and Algorithm 1; Ho & Salimans (2022),
    "Classifier-Free Diffusion Guidance", Algorithm 1 (label dropout).
    """
    x0 = _check_x(x0, "x0")
    schedule = _check_schedule(schedule)
    _check_callable("model", model)
    labels = _check_labels(labels, x0)
    p_uncond = _check_real("p_uncond", p_uncond)
    if not 0 <= p_uncond <= 1:
        raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond}")
    generator = _gen(generator, x0)
    B = x0.shape[0]
    t = torch.randint(0, schedule.T, (B,), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    view = (-1,) + (1,) * (x0.ndim - 1)
    coef = schedule._on(x0.device, x0.dtype)
    x_t = coef["sqrt_ab"][t].view(view) * x0 + coef["sqrt_1mab"][t].view(view) * noise
    if labels is not None and p_uncond > 0:
        drop = torch.rand(B, generator=generator, device=x0.device) < p_uncond
        labels = torch.where(drop, torch.full_like(labels, NULL_LABEL), labels)
    loss = ((_Eps(model, x0, labels)(x_t, t.to(x0.dtype)) - noise) ** 2).mean()
    if not bool(torch.isfinite(loss)):
        raise ValueError("the loss is not finite: the model returned NaN/inf")
    return loss


# ---------------------------------------------------------------- DDPM

def _ddpm_coeffs(schedule: NoiseSchedule, t: int, variance: str) -> tuple[float, float, float]:
    beta, ab = float(schedule.betas[t]), schedule._abar[t]
    ab_prev = schedule._abar[t - 1] if t > 0 else 1.0
    c_x = 1 / math.sqrt(1 - beta)
    c_eps = -beta / (math.sqrt(1 - ab) * math.sqrt(1 - beta))
    std = 0.0 if t == 0 else math.sqrt(beta * (1 - ab_prev) / (1 - ab) if variance == "small" else beta)
    return c_x, c_eps, std


def _check_variance(variance) -> str:
    if not isinstance(variance, str) or variance not in ("small", "large"):
        raise ValueError(f"variance must be 'small' (posterior beta_tilde) or 'large' (beta), got {variance!r}")
    return variance


def ddpm_step(x_t: torch.Tensor, eps: torch.Tensor, t: int, schedule: NoiseSchedule, *, variance: str = "small",
              noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One ancestral step ``x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sigma_t z``.

    ``sigma_t^2 = beta_t (1 - abar_{t-1}) / (1 - abar_t)`` (``"small"``, the posterior variance)
    or ``beta_t`` (``"large"``); none at ``t = 0``. ``x_t``, ``eps``, ``noise``: ``(B, ...)``.
    Reference: Ho et al. (2020), eq. 11 and Algorithm 2.
    """
    x_t = _check_x(x_t, "x_t")
    eps = _check_v(x_t, eps, "eps")
    schedule = _check_schedule(schedule)
    t = schedule._check_t(t, clean=False)
    c_x, c_eps, std = _ddpm_coeffs(schedule, t, _check_variance(variance))
    out = torch.add(x_t * c_x, eps, alpha=c_eps)
    z = _noise(x_t, noise, generator)
    return out.add_(z, alpha=std) if std > 0 else out


def ddpm_sample(model: Model, x_T: torch.Tensor, schedule: NoiseSchedule, *, labels: torch.Tensor | None = None,
                variance: str = "small", generator: torch.Generator | None = None,
                return_trajectory: bool = False):
    """Ancestral sampling: :func:`ddpm_step` for ``t = T-1, ..., 0`` from ``x_T`` (``T`` model calls).

    Returns ``x_0``, or ``(x_0, trajectory)`` with the ``T + 1`` states ``x_{T-1}``, ..., ``x_0``
    stacked, ``(T + 1, B, ...)``. Reference: Ho et al. (2020), Algorithm 2 (reverse SDE discretised).
    """
    x = _check_x(x_T, "x_T")
    schedule = _check_schedule(schedule)
    _check_variance(variance)
    generator = _gen(generator, x)
    plan = [(t, *_ddpm_coeffs(schedule, t, variance)) for t in range(schedule.T - 1, -1, -1)]
    return _chain(_Eps(model, x, labels), x, plan, generator, return_trajectory, "ddpm_sample")


# ---------------------------------------------------------------- DDIM

def ddim_timesteps(T: int, steps: int, spacing: str = "leading") -> torch.Tensor:
    """The ``steps`` decreasing timesteps a DDIM sampler visits before the clean sample.

    ``"leading"``: ``(steps-1) r, ..., r, 0`` with ``r = T // steps`` (diffusers' default);
    ``"trailing"``: ``round(T - k T/steps) - 1`` (starts at ``T-1``); ``"linspace"``:
    ``round(linspace(T-1, 0, steps))``. Returns an int64 tensor of shape ``(steps,)``; after its
    last entry a sampler steps to ``t = -1``.
    Reference: Song, Meng & Ermon (2021), sec. 4.2 and app. C.2; Lin et al. (2024), "Common
    Diffusion Noise Schedules and Sample Steps are Flawed", table 2 (the names).
    """
    T, steps = _check_int("T", T, 2), _check_int("steps", steps, 1)
    if steps > T:
        raise ValueError(f"steps must be <= T={T}, got {steps}")
    if spacing == "leading":
        ts = (np.arange(0, steps) * (T // steps)).round()[::-1]
    elif spacing == "trailing":
        ts = np.round(np.arange(T, 0, -T / steps)[:steps]) - 1  # diffusers' values; rounding can add one (T=21, 15)
    elif spacing == "linspace":
        ts = np.linspace(0, T - 1, steps).round()[::-1]
    else:
        raise ValueError(f"spacing must be one of ('leading', 'trailing', 'linspace'), got {spacing!r}")
    return torch.from_numpy(ts.astype(np.int64).copy())


def _ddim_coeffs(schedule: NoiseSchedule, t: int, t_prev: int, eta: float = 0.0) -> tuple[float, float, float]:
    """``x_prev = a x_t + b eps + std z`` for DDIM from ``t`` to ``t_prev`` (either may be -1)."""
    ab = 1.0 if t < 0 else schedule._abar[t]
    ab_prev = 1.0 if t_prev < 0 else schedule._abar[t_prev]
    std = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) if eta > 0 else 0.0
    a = math.sqrt(ab_prev / ab)
    b = math.sqrt(max(1 - ab_prev - std ** 2, 0.0)) - math.sqrt(ab_prev * (1 - ab) / ab)
    return a, b, std


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int, schedule: NoiseSchedule, eta: float = 0.0, *,
              noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The DDIM update from time ``t`` to ``t_prev`` (``-1``: the clean sample).

    ``x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - s^2) eps + s z``, ``x0_hat`` from
    :func:`predict_x0`, ``s = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)``.
    ``eta = 0``: an Euler step of the probability-flow ODE in ``sigma``, which may also go *up*
    (``t_prev > t``, inversion); ``eta = 1``, ``t_prev = t - 1``: DDPM's step. ``x_t``, ``eps``: ``(B, ...)``.
    Reference: Song, Meng & Ermon (2021), eq. 12 and eq. 16.
    """
    x_t = _check_x(x_t, "x_t")
    eps = _check_v(x_t, eps, "eps")
    schedule = _check_schedule(schedule)
    t, t_prev = schedule._check_t(t), schedule._check_t(t_prev, "t_prev")
    eta = _check_eta(eta)
    if t == t_prev:
        raise ValueError(f"t and t_prev must differ, got t = t_prev = {t}")
    if eta > 0 and t_prev > t:
        raise ValueError(f"eta > 0 needs t_prev < t (a stochastic step only goes down), got t={t}, t_prev={t_prev}")
    a, b, std = _ddim_coeffs(schedule, t, t_prev, eta)
    out = torch.add(x_t * a, eps, alpha=b)
    if std > 0 or noise is not None:  # a given noise is checked even where eta = 0 leaves it unused
        out.add_(_noise(x_t, noise, generator), alpha=std)
    return out


def _check_steps(schedule: NoiseSchedule, steps, spacing) -> list[int]:
    steps = _check_int("steps", steps, 1)
    if steps > schedule.T:
        raise ValueError(f"steps must be <= T={schedule.T}, got {steps}")
    return ddim_timesteps(schedule.T, steps, spacing).tolist()


def ddim_sample(model: Model, x_T: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                labels: torch.Tensor | None = None, eta: float = 0.0, spacing: str = "leading",
                generator: torch.Generator | None = None, return_trajectory: bool = False):
    """DDIM sampling in ``steps`` model calls: :func:`ddim_step` along :func:`ddim_timesteps`, then to -1.

    ``x_T`` lives at the first timestep. Returns ``x_0``, or ``(x_0, trajectory)``, the ``steps + 1``
    states ``(steps + 1, B, ...)``. With ``eta = 0``, "leading" spacing, it is diffusers'
    ``DDIMScheduler`` (``set_alpha_to_one=True``, ``clip_sample=False``).
    Reference: Song, Meng & Ermon (2021), sec. 4.
    """
    x = _check_x(x_T, "x_T")
    schedule = _check_schedule(schedule)
    ts = _check_steps(schedule, steps, spacing) + [-1]
    eta = _check_eta(eta)
    generator = _gen(generator, x)
    plan = [(t, *_ddim_coeffs(schedule, t, t_prev, eta)) for t, t_prev in zip(ts[:-1], ts[1:])]
    return _chain(_Eps(model, x, labels), x, plan, generator, return_trajectory, "ddim_sample")


def ddim_invert(model: Model, x0: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                labels: torch.Tensor | None = None, spacing: str = "leading", return_trajectory: bool = False):
    """DDIM inversion: deterministic DDIM steps *upwards*, from the clean ``x0`` to the top timestep.

    Visits ``-1 < t_1 < ... < t_N`` (:func:`ddim_timesteps` reversed) by Euler steps of the ODE
    with ``eps`` at each step's start (``model(x, max(t, 0))``); :func:`ddim_sample` evaluates it
    at the other end, so the round trip is exact only as the steps shrink. Returns the latent
    at ``t_N``, or ``(latent, trajectory)`` with the ``steps + 1`` states ``(steps + 1, B, ...)``.
    Reference: Song, Meng & Ermon (2021), sec. 5.4 (encoding by reversing the ODE);
    Mokady et al. (2023), "Null-text Inversion", sec. 3.
    """
    x = _check_x(x0, "x0")
    schedule = _check_schedule(schedule)
    ts = [-1] + _check_steps(schedule, steps, spacing)[::-1]
    plan = [(max(t, 0), *_ddim_coeffs(schedule, t, t_next)) for t, t_next in zip(ts[:-1], ts[1:])]
    return _chain(_Eps(model, x, labels), x, plan, None, return_trajectory, "ddim_invert")


# ---------------------------------------------------------------- BDIA: exact inversion

def _bdia_coeffs(schedule: NoiseSchedule, t_lo: int, t: int, t_hi: int) -> tuple[float, float]:
    """``d = c_x z_t + c_eps eps``: DDIM from t down to t_lo minus DDIM from t up to t_hi."""
    a_dn, b_dn, _ = _ddim_coeffs(schedule, t, t_lo)
    a_up, b_up, _ = _ddim_coeffs(schedule, t, t_hi)
    return a_dn - a_up, b_dn - b_up


def bdia_sample(model: Model, x_T: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                labels: torch.Tensor | None = None, x_next: torch.Tensor | None = None, spacing: str = "leading",
                return_trajectory: bool = False):
    """BDIA-DDIM sampling (``gamma = 1``): ``z_{i-1} = z_{i+1} + D(t_i -> t_{i-1}) - D(t_i -> t_{i+1})``.

    Timesteps ``t_N > ... > t_1`` (:func:`ddim_timesteps`), ``t_0 = -1``, and
    ``D(t_i -> s) = ddim_step(z_i, eps(z_i, t_i), t_i, s) - z_i``: one model call per step, and
    reaching back to ``z_{i+1}`` makes it exactly invertible (:func:`bdia_invert`). The first step
    is plain DDIM unless ``x_next`` (``z_{N-1}``) is given. Returns ``x_0``, or ``(x_0, trajectory)``
    with the ``steps + 1`` states ``(steps + 1, B, ...)``.
    Reference: Zhang, Lewis & Kleijn (2023), eq. 14 (BDIA-DDIM) with gamma = 1.
    """
    z_hi = _check_x(x_T, "x_T")
    schedule = _check_schedule(schedule)
    ts = [-1] + _check_steps(schedule, steps, spacing)[::-1]  # ts[i] is t_i, z_i lives at ts[i]
    N = len(ts) - 1
    eps_of = _Eps(model, z_hi, labels)
    z = (_chain(eps_of, z_hi, [(ts[N], *_ddim_coeffs(schedule, ts[N], ts[N - 1]))], None, False, "bdia_sample")
         if x_next is None else _check_v(z_hi, x_next, "x_next"))
    traj = [z_hi, z] if return_trajectory else None
    for i in range(N - 1, 0, -1):  # z = z_i, z_hi = z_{i+1}
        c_x, c_eps = _bdia_coeffs(schedule, ts[i - 1], ts[i], ts[i + 1])
        d = torch.add(z * c_x, eps_of(z, ts[i]), alpha=c_eps)
        z_hi, z = z, z_hi + d
        if traj is not None:
            traj.append(z)
    _finite_result(z, "bdia_sample")
    return (z, torch.stack(traj)) if return_trajectory else z


def bdia_invert(model: Model, x0: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                labels: torch.Tensor | None = None, spacing: str = "leading") -> tuple[torch.Tensor, torch.Tensor]:
    """Exact inversion of :func:`bdia_sample`: returns the pair ``(z_N, z_{N-1})`` that samples back to ``x0``.

    ``z_1``: one DDIM inversion step of ``x0``; then ``z_{i+1} = z_{i-1} - D(t_i -> t_{i-1}) +
    D(t_i -> t_{i+1})``, the increments sampling computes, so ``bdia_sample(model, z_N, ...,
    x_next=z_{N-1})`` returns ``x0`` up to rounding, for any model and step count. All ``(B, ...)``.
    Reference: Zhang, Lewis & Kleijn (2023), sec. 4 (eq. 15, gamma = 1).
    """
    z_lo = _check_x(x0, "x0")
    schedule = _check_schedule(schedule)
    ts = [-1] + _check_steps(schedule, steps, spacing)[::-1]
    N = len(ts) - 1
    eps_of = _Eps(model, z_lo, labels)
    z = _chain(eps_of, z_lo, [(0, *_ddim_coeffs(schedule, -1, ts[1]))], None, False, "bdia_invert")  # z_1
    for i in range(1, N):  # z = z_i, z_lo = z_{i-1}
        c_x, c_eps = _bdia_coeffs(schedule, ts[i - 1], ts[i], ts[i + 1])
        d = torch.add(z * c_x, eps_of(z, ts[i]), alpha=c_eps)
        z_lo, z = z, z_lo - d
    _finite_result(z, "bdia_invert")
    return z, z_lo


# ---------------------------------------------------------------- the probability-flow ODE

def probability_flow_ode(model: Model, x: torch.Tensor, schedule: NoiseSchedule, *, t_from: float | None = None,
                         t_to: float = -1, labels: torch.Tensor | None = None, method: str = "dopri5",
                         rtol: float = 1e-5, atol: float = 1e-5, step_size: float | None = None,
                         stats: ODEStats | None = None) -> torch.Tensor:
    """Integrate the probability-flow ODE ``d xbar / d sigma = eps(xbar / sqrt(1 + sigma^2), t(sigma))``.

    ``xbar = x / sqrt(abar)``; the model gets the continuous time ``t(sigma)`` of
    :meth:`NoiseSchedule.t_of_sigma`. From ``t_from`` (default ``T-1``) to ``t_to``, each in
    ``[0, T-1]`` or ``-1`` (clean), either way (``t_to > t_from`` encodes), by :func:`lib.ode.odeint`
    (``method``, ``rtol``, ``atol``, ``step_size``, ``stats`` passed on). Between ``t = 0`` and the
    clean end, where the model is not defined, one Euler (DDIM) step with ``eps`` at ``t = 0``.
    Returns ``x`` at ``t_to``. Reference: Song et al. (2021, SDE), eq. 13; Song, Meng & Ermon
    (2021), eq. 14 (the form in ``sigma``); Karras et al. (2022), eq. 4.
    """
    x = _check_x(x, "x")
    schedule = _check_schedule(schedule)
    ends = [float(schedule.T - 1) if t_from is None else _check_real("t_from", t_from), _check_real("t_to", t_to)]
    for name, v in zip(("t_from", "t_to"), ends):
        if not (v == -1 or 0 <= v <= schedule.T - 1):
            raise ValueError(f"{name} must be -1 (clean) or in [0, {schedule.T - 1}], got {v}")
    if ends[0] == ends[1]:
        raise ValueError(f"t_from and t_to must differ, got {ends[0]}")
    eps_of, B = _Eps(model, x, labels), x.shape[0]
    if ends[0] == -1:  # clean -> t = 0: one Euler (DDIM) step, eps at t = 0
        x = _chain(eps_of, x, [(0, *_ddim_coeffs(schedule, -1, 0))], None, False, "probability_flow_ode")
    sig = schedule.sigma_at(torch.tensor([max(v, 0.0) for v in ends], dtype=torch.float64)).tolist()
    if sig[0] != sig[1]:
        def field(s: torch.Tensor, xbar: torch.Tensor) -> torch.Tensor:
            return eps_of(xbar / torch.sqrt(1 + s * s), schedule.t_of_sigma(s.reshape(1)).expand(B))

        x = odeint(field, x * math.sqrt(1 + sig[0] ** 2), torch.tensor(sig, dtype=torch.float64), method=method,
                   rtol=rtol, atol=atol, step_size=step_size, stats=stats)[-1] / math.sqrt(1 + sig[1] ** 2)
    if ends[1] == -1:  # t = 0 -> clean
        x = _chain(eps_of, x, [(0, *_ddim_coeffs(schedule, 0, -1))], None, False, "probability_flow_ode")
    return _finite_result(x, "probability_flow_ode")
