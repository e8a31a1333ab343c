"""Few-step and one-step generation: distilling a diffusion model's sampler into a fast generator.

Chapter 26 (``book/26_one_step.md``, lab ``notebooks/26_one_step.ipynb``). The teacher is
a noise predictor in the convention of :mod:`lib.diffusion` (``model(x_t, t) -> eps``,
``t`` a float tensor ``(B,)``) and its deterministic DDIM sampler, an Euler
discretisation of the probability-flow ODE. Four ways to a sampler with one step or few:

* **Direct regression** (Luhman & Luhman 2021): :func:`teacher_pairs` runs the teacher's
  many-step sampler on noise ``z``; any network ``G`` is fitted to the map ``z -> x`` with
  :func:`regression_loss`.
* **Progressive distillation** (Salimans & Ho 2022): :func:`progressive_distillation_loss`
  teaches a student to make in one DDIM step what the teacher makes in two; repeated, it
  halves the number of steps each round.
* **Consistency distillation** (Song et al. 2023): :func:`consistency_distillation_loss`
  asks the student's clean-sample prediction to agree at two adjacent points of one
  teacher ODE trajectory (the self-consistency condition).
* **Distribution matching** (Yin et al. 2024, DMD): :func:`distribution_matching_loss`
  pushes generated samples along the difference of two scores of noised distributions,
  the teacher's and a "fake" one fitted to the generator's own samples, which is the
  gradient of a KL divergence; :func:`train_distribution_matching` alternates the two fits.

:func:`ddim_solver` turns a teacher into the one-step solver ``teacher_step(x, t, t_prev)``
that the losses call, and :func:`fit` is the plain Adam loop with snapshots that the lab
uses for every student.

Timesteps follow :mod:`lib.diffusion`: integers ``0..T-1``, ``-1`` the clean sample.

References: Luhman & Luhman (2021), "Knowledge Distillation in Iterative Generative Models
for Improved Sampling Speed"; Salimans & Ho (2022), "Progressive Distillation for Fast
Sampling of Diffusion Models" (Algorithm 2); Song, Dhariwal, Chen & Sutskever (2023),
"Consistency Models" (Algorithm 2, consistency distillation); Yin et al. (2024), "One-step
Diffusion with Distribution Matching Distillation"; Luo et al. (2024), "One-Step Diffusion
Distillation through Score Implicit Matching"; Xu et al. (2025), "One-step Diffusion Models
with f-Divergence Distribution Matching".
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from .calculus import _check_finite
from .curvature import _check_callable, _check_generator, _check_int, _check_positive, _check_v
from .curvature import _check_x as _check_tensor
from .diffusion import NoiseSchedule, _check_schedule, ddim_step, ddim_timesteps, diffusion_loss, q_sample

__all__ = ["teacher_pairs", "regression_loss", "ddim_solver", "progressive_distillation_loss",
           "consistency_distillation_loss", "distribution_matching_loss", "fit", "train_distribution_matching"]

TeacherStep = Callable[[torch.Tensor, int, int], torch.Tensor]  # (x_t, t, t_prev) -> x_{t_prev}


# ---------------------------------------------------------------- validation

def _check_out(out, like: torch.Tensor, name: str) -> torch.Tensor:
    """A user function's output: a floating tensor of ``like``'s shape, finite."""
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        raise TypeError(f"{name} must return a floating torch.Tensor, got {getattr(out, 'dtype', type(out).__name__)}")
    if out.shape != like.shape:
        raise ValueError(f"{name} must return a tensor of shape {tuple(like.shape)}, got {tuple(out.shape)}")
    if not bool(torch.isfinite(out.detach()).all()):
        raise ValueError(f"{name} returned non-finite values (NaN or inf)")
    return out.to(like.dtype)


def _check_x(x, name: str) -> torch.Tensor:
    """A batch ``(B, ...)`` of float32/64 samples, B >= 1, finite (detached)."""
    x = _check_tensor(x, name)
    if x.dtype not in (torch.float32, torch.float64) or x.ndim < 1:
        raise (TypeError if x.ndim else ValueError)(
            f"{name} must be a float32/float64 batch of shape (B, ...), got {x.dtype} {tuple(x.shape)}")
    return x


def _eps(model, x: torch.Tensor, t: int | float, name: str) -> torch.Tensor:
    """``model(x, t)`` with ``t`` as a float tensor ``(B,)``, checked."""
    return _check_out(model(x, torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)), x, name)


def _samples(x, B: int, name: str) -> torch.Tensor:
    """A generator's output: a float32/64 tensor ``(B, ...)``, one row per noise, finite."""
    if not isinstance(x, torch.Tensor) or x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must return a float32 or float64 tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim < 1 or x.shape[0] != B or x.numel() == 0:
        raise ValueError(f"{name} must return one non-empty row per noise ({B}), got shape {tuple(x.shape)}")
    return _check_out(x, x, name)


def _check_times(t, schedule: NoiseSchedule, x: torch.Tensor) -> torch.Tensor:
    """``t`` as an int64 tensor ``(B,)`` on ``x``'s device: an int, or one int per sample, in [0, T-1]."""
    B = x.shape[0]
    if not isinstance(t, torch.Tensor):
        return torch.full((B,), _check_int("t", t, 0, schedule.T - 1), device=x.device, dtype=torch.int64)
    if t.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"t must be an int or an int64 tensor, got {t.dtype}")
    if t.shape != (B,):
        raise ValueError(f"t must have shape ({B},) (one per sample), got {tuple(t.shape)}")
    if int(t.min()) < 0 or int(t.max()) >= schedule.T:
        raise ValueError(f"t must lie in [0, {schedule.T - 1}], got [{int(t.min())}, {int(t.max())}]")
    return t.to(x.device, torch.int64)


def _check_module(name: str, module) -> nn.Module:
    if not isinstance(module, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
    if not any(p.requires_grad for p in module.parameters()):
        raise ValueError(f"{name} has no trainable parameters")
    return module


def _check_rng(generator, x: torch.Tensor) -> torch.Generator | None:
    if _check_generator(generator) is not None and generator.device != x.device:
        raise ValueError(f"generator must be on {x.device} (the data's device), got {generator.device}")
    return generator


def _finite_loss(loss: torch.Tensor, what: str) -> torch.Tensor:
    if not bool(torch.isfinite(loss.detach())):
        raise ValueError(f"{what} is not finite: a model returned NaN/inf or huge values")
    return loss


def _pick(index, n: int, name: str, x: torch.Tensor, generator) -> int:
    """A step index in ``[0, n-1]``: ``index`` if given, else uniform from ``generator``."""
    return (_check_int(name, index, 0, n - 1) if index is not None
            else int(torch.randint(0, n, (1,), generator=generator, device=x.device)))


def _noise(x: torch.Tensor, noise, generator) -> torch.Tensor:
    """``noise`` checked against ``x`` (not together with a generator), or a fresh draw."""
    if noise is None:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if generator is not None:
        raise ValueError("pass either noise or generator, not both")
    return _check_v(x, noise, "noise")


def _ab(schedule: NoiseSchedule, t: int) -> tuple[float, float]:
    """``(sqrt(abar_t), sqrt(1 - abar_t))``, with the clean sample at ``t = -1``."""
    ab = schedule.abar(t)
    return math.sqrt(ab), math.sqrt(1.0 - ab)


def _x0_of(model, x: torch.Tensor, t: int, schedule: NoiseSchedule, name: str) -> torch.Tensor:
    """The clean-sample prediction ``(x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``, differentiable."""
    if t < 0:
        return x
    a, s = _ab(schedule, t)
    return (x - s * _eps(model, x, t, name)) / a


# ---------------------------------------------------------------- direct regression

def teacher_pairs(sampler: Callable[[torch.Tensor], torch.Tensor], noise: torch.Tensor,
                  batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's ODE map on a set of noises: ``(noise, sampler(noise))``, without gradients.

    ``sampler`` maps a batch of noises ``(b, ...)`` to samples of the same shape (e.g.
    ``lambda z: ddim_sample(teacher, z, schedule, 50)``); it is called on chunks of
    ``batch_size`` rows (all at once if None). Shapes: ``noise`` ``(B, ...)``; returns two
    tensors of that shape. Deterministic samplers make the pairs a function, which a
    one-step student can learn.
    Reference: Luhman & Luhman (2021) (the distillation data set of noise-sample pairs).
    """
    _check_callable("sampler", sampler)
    noise = _check_x(noise, "noise")
    B = noise.shape[0]
    size = B if batch_size is None else _check_int("batch_size", batch_size, 1)
    with torch.no_grad():
        outs = [_check_out(sampler(noise[i:i + size]), noise[i:i + size], "sampler") for i in range(0, B, size)]
    return noise, torch.cat(outs)


def regression_loss(G: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``mean |G(z) - x|^2`` (over all entries): a one-step student regressing the teacher's map.

    Shapes: ``z`` and the targets ``x`` ``(B, ...)``, ``G(z)`` of ``x``'s shape. Returns a
    differentiable 0-dim tensor. The minimiser over all functions is ``E[x | z]``: the
    teacher's sample itself when the teacher is deterministic.
    Reference: Luhman & Luhman (2021) (their loss, with the squared error in place of LPIPS).
    """
    _check_callable("G", G)
    z, x = _check_x(z, "z"), _check_x(x, "x")
    if z.shape[0] != x.shape[0] or z.device != x.device:
        raise ValueError(f"z and x must have one row each per pair on one device, got {tuple(z.shape)} on {z.device} "
                         f"and {tuple(x.shape)} on {x.device}")
    return _finite_loss(((_check_out(G(z), x, "G") - x) ** 2).mean(), "regression_loss")


# ---------------------------------------------------------------- the teacher's solver

def ddim_solver(model, schedule: NoiseSchedule) -> TeacherStep:
    """``teacher_step(x, t, t_prev)``: one deterministic DDIM step of ``model`` from ``t`` to ``t_prev``.

    Both times are ints in ``[-1, T-1]`` (``-1``: clean); the step is Euler's method for the
    probability-flow ODE (:func:`lib.diffusion.ddim_step` with ``eta = 0``). Shapes: ``x``
    ``(B, ...)`` in, the same out.
    Reference: Song, Meng & Ermon (2021), eq. 12 with sigma = 0.
    """
    _check_callable("model", model)
    schedule = _check_schedule(schedule)

    def teacher_step(x: torch.Tensor, t: int, t_prev: int) -> torch.Tensor:
        x = _check_x(x, "x")
        return ddim_step(x, _eps(model, x, _check_int("t", t, 0, schedule.T - 1), "model"), t, t_prev, schedule)

    return teacher_step


# ---------------------------------------------------------------- progressive and consistency distillation

def _grid(schedule: NoiseSchedule, steps, spacing) -> list[int]:
    steps = _check_int("steps", steps, 1, schedule.T)
    return ddim_timesteps(schedule.T, steps, spacing).tolist() + [-1]


def _setup(student, teacher_step, x0, schedule, noise, generator):
    _check_callable("student", student)
    _check_callable("teacher_step", teacher_step)
    x0 = _check_x(x0, "x0")
    schedule = _check_schedule(schedule)
    generator = _check_rng(generator, x0)
    return x0, schedule, None if noise is None else _noise(x0, noise, generator), generator


def progressive_distillation_loss(student, teacher_step: TeacherStep, x0: torch.Tensor, schedule: NoiseSchedule,
                                  steps: int, *, spacing: str = "trailing", i: int | None = None,
                                  noise: torch.Tensor | None = None,
                                  generator: torch.Generator | None = None) -> torch.Tensor:
    """One DDIM step of ``student`` must land where two steps of the teacher land (a ``steps``-step student).

    The student's grid is :func:`lib.diffusion.ddim_timesteps` ``(T, steps, spacing)`` then
    -1, the teacher's the grid of ``2 steps``, which must contain it (``"trailing"`` always
    does). For the student step ``i`` (drawn uniformly unless given; the batch shares it)
    from ``t`` to ``t''`` with teacher midpoint ``t'``: ``x_t = q_sample(x0, t, noise)``, two
    teacher steps give ``x_t''``, and the target is the clean sample that makes one DDIM step
    reach it exactly, ``x~ = (x_t'' - (s''/s) x_t) / (a'' - (s''/s) a)`` with
    ``a = sqrt(abar)``, ``s = sqrt(1 - abar)``. Returns
    ``max(a^2/s^2, 1) mean |x0_hat_student(x_t) - x~|^2`` (truncated-SNR weight), a
    differentiable 0-dim tensor. Shapes: ``x0`` (and ``noise``) ``(B, ...)``.
    Reference: Salimans & Ho (2022), Algorithm 2 and sec. 4 (weighting).
    """
    x0, schedule, noise, generator = _setup(student, teacher_step, x0, schedule, noise, generator)
    steps = _check_int("steps", steps, 1, schedule.T // 2)  # the teacher takes 2 steps
    student_ts, teacher_ts = _grid(schedule, steps, spacing), _grid(schedule, 2 * steps, spacing)
    if teacher_ts[::2] != student_ts:
        raise ValueError(f"spacing {spacing!r} with T={schedule.T} does not nest the {steps}-step grid in the "
                         f"{2 * steps}-step one; use spacing='trailing'")
    i = _pick(i, steps, "i", x0, generator)
    t, t_mid, t_next = teacher_ts[2 * i], teacher_ts[2 * i + 1], teacher_ts[2 * i + 2]
    x_t = q_sample(x0, t, schedule, noise, generator=generator)
    with torch.no_grad():
        x_mid = _check_out(teacher_step(x_t, t, t_mid), x_t, "teacher_step")
        x_next = _check_out(teacher_step(x_mid, t_mid, t_next), x_t, "teacher_step")
    (a, s), (a2, s2) = _ab(schedule, t), _ab(schedule, t_next)
    target = (x_next - (s2 / s) * x_t) / (a2 - (s2 / s) * a)
    x0_hat = _x0_of(student, x_t, t, schedule, "student")
    loss = max(a * a / (s * s), 1.0) * ((x0_hat - target) ** 2).mean()
    return _finite_loss(loss, "progressive_distillation_loss")


def consistency_distillation_loss(student, teacher_step: TeacherStep, x0: torch.Tensor, schedule: NoiseSchedule,
                                  steps: int, *, spacing: str = "trailing", target=None, n: int | None = None,
                                  noise: torch.Tensor | None = None,
                                  generator: torch.Generator | None = None) -> torch.Tensor:
    """``mean |f_student(x_t, t) - f_target(x_{t_prev}, t_prev)|^2``: self-consistency along the teacher's ODE.

    The consistency function of a noise predictor is its clean-sample prediction
    ``f(x, t) = (x - sqrt(1 - abar_t) eps(x, t)) / sqrt(abar_t)``, with ``f(x, -1) = x`` (the
    boundary condition). On the grid of :func:`lib.diffusion.ddim_timesteps`
    ``(T, steps, spacing)`` then -1, a pair ``t -> t_prev`` (index ``n``, uniform unless
    given; the batch shares it): ``x_t = q_sample(x0, t, noise)``,
    ``x_{t_prev} = teacher_step(x_t, t, t_prev)``, and the target side, computed without
    gradient, uses ``target`` (an EMA copy of the student; None: the student itself).
    Zero for the exact consistency function of ``teacher_step``. Returns a differentiable
    0-dim tensor. Shapes: ``x0`` (and ``noise``) ``(B, ...)``.
    Reference: Song et al. (2023), "Consistency Models", Algorithm 2 (squared L2 metric,
    weight 1).
    """
    x0, schedule, noise, generator = _setup(student, teacher_step, x0, schedule, noise, generator)
    if target is not None:
        _check_callable("target", target)
    ts = _grid(schedule, steps, spacing)
    n = _pick(n, steps, "n", x0, generator)
    t, t_prev = ts[n], ts[n + 1]
    x_t = q_sample(x0, t, schedule, noise, generator=generator)
    with torch.no_grad():
        x_prev = _check_out(teacher_step(x_t, t, t_prev), x_t, "teacher_step")
        f_prev = _x0_of(student if target is None else target, x_prev, t_prev, schedule,
                        "student" if target is None else "target")
    loss = ((_x0_of(student, x_t, t, schedule, "student") - f_prev) ** 2).mean()
    return _finite_loss(loss, "consistency_distillation_loss")


# ---------------------------------------------------------------- distribution matching

def distribution_matching_loss(G: Callable[[torch.Tensor], torch.Tensor], real_eps, fake_eps, z: torch.Tensor,
                               schedule: NoiseSchedule, t, *, weighting: str = "kl", noise: torch.Tensor | None = None,
                               generator: torch.Generator | None = None) -> torch.Tensor:
    """A surrogate whose gradient in ``G``'s parameters is ``grad KL(q_t || p_t)``, a difference of scores.

    ``x = G(z)``, ``x_t = sqrt(abar_t) x + sqrt(1 - abar_t) noise``; ``q_t`` is the law of
    ``x_t`` (the generator's samples, noised), ``p_t`` the teacher's noised data. With the
    scores ``s = -eps / sqrt(1 - abar_t)`` of ``fake_eps`` (fitted to ``G``'s samples) and
    ``real_eps`` (the teacher), the per-sample signal is
    ``g = sqrt(abar_t) (s_fake - s_real)(x_t)`` (``weighting="kl"``), or Yin et al.'s
    ``g = (x0_fake - x0_real) / mean|x - x0_real|`` with Tweedie's clean-sample predictions
    (``"dmd"``: the same direction per sample, rescaled). Returns
    ``(1/2) mean_b |x_b - stopgrad(x_b) + g_b|^2``, whose gradient is ``mean_b g_b dx_b/dtheta``:
    for ``"kl"`` and exact scores, an unbiased estimate of ``grad_theta KL(q_t || p_t)``.
    Its value, ``mean |g|^2 / 2``, is not the KL. ``t``: an int in ``[0, T-1]`` or an int64
    tensor ``(B,)`` (one per sample). Shapes: ``z`` ``(B, ...)``, ``G(z)`` and ``noise``
    ``(B, ...)`` of one shape.
    Reference: Yin et al. (2024), "One-step Diffusion with Distribution Matching Distillation"
    (the KL gradient and its normalisation); Wang et al. (2023), "ProlificDreamer"
    (variational score distillation).
    """
    _check_callable("G", G)
    _check_callable("real_eps", real_eps)
    _check_callable("fake_eps", fake_eps)
    if weighting not in ("kl", "dmd"):
        raise ValueError(f"weighting must be 'kl' or 'dmd', got {weighting!r}")
    z = _check_x(z, "z")
    schedule = _check_schedule(schedule)
    generator = _check_rng(generator, z)
    x = _samples(G(z), z.shape[0], "G")
    noise = _noise(x, noise, generator)
    t = _check_times(t, schedule, x)
    view = (-1,) + (1,) * (x.ndim - 1)
    a = schedule.sqrt_alphas_cumprod.to(x.device, x.dtype)[t].view(view)
    s = schedule.sqrt_one_minus_alphas_cumprod.to(x.device, x.dtype)[t].view(view)
    with torch.no_grad():
        x_t = a * x + s * noise
        tt = t.to(x.dtype)
        e_real = _check_out(real_eps(x_t, tt), x_t, "real_eps")
        e_fake = _check_out(fake_eps(x_t, tt), x_t, "fake_eps")
        if weighting == "kl":  # a (s_fake - s_real) with s = -eps / s
            g = a * (e_real - e_fake) / s
        else:  # Tweedie: x0 = (x_t - s eps) / a, so x0_fake - x0_real = s (e_real - e_fake) / a
            x0_real = (x_t - s * e_real) / a
            scale = (x - x0_real).abs().reshape(len(x), -1).mean(1).clamp_min(1e-12).view(view)
            g = s * (e_real - e_fake) / a / scale
    loss = 0.5 * ((x - x.detach() + g) ** 2).reshape(len(x), -1).sum(1).mean()  # value |g|^2/2, gradient g
    return _finite_loss(loss, "distribution_matching_loss")


# ---------------------------------------------------------------- training loops

def _check_every(every, snapshot):
    every = _check_int("every", every, 0)
    if every and snapshot is None:
        raise ValueError("every > 0 needs a snapshot function")
    if snapshot is not None:
        _check_callable("snapshot", snapshot)
    return every


def _take(snapshot, k: int, snaps: list) -> None:
    with torch.no_grad():
        out = snapshot()
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"snapshot must return a torch.Tensor, got {type(out).__name__}")
    snaps.append((k, _check_finite("snapshot's output", out.detach()).clone()))


def _adam(module: nn.Module, lr: float, steps: int):
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / steps)))


def fit(module: nn.Module, loss_fn: Callable[[int], torch.Tensor], steps: int, *, lr: float = 1e-3, every: int = 0,
        snapshot: Callable[[], torch.Tensor] | None = None) -> tuple[list[float], list[tuple[int, torch.Tensor]]]:
    """Adam on ``loss_fn(k)`` (``k = 0..steps-1``) over ``module``'s parameters, cosine-decayed ``lr``.

    ``loss_fn`` draws its own batch and returns a differentiable 0-dim tensor. With
    ``every > 0``, ``snapshot()`` (e.g. the student's samples of fixed noises) is taken
    without gradients before training and after every ``every`` steps. Returns
    ``(losses, snapshots)``: the loss of every step and a list of ``(k, tensor)``.
    Reference: Kingma & Ba (2015), "Adam"; Loshchilov & Hutter (2017) (cosine decay).
    """
    module = _check_module("module", module)
    _check_callable("loss_fn", loss_fn)
    steps, lr = _check_int("steps", steps, 1), _check_positive("lr", lr)
    every = _check_every(every, snapshot)
    opt, sched = _adam(module, lr, steps)
    losses, snaps = [], []
    for k in range(steps):
        if every and k % every == 0:
            _take(snapshot, k, snaps)
        loss = loss_fn(k)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
            raise ValueError(f"loss_fn must return a differentiable one-element tensor, got "
                             f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}")
        _finite_loss(loss, "loss_fn's loss")
        opt.zero_grad(set_to_none=True)
        loss.reshape(()).backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    if every:
        _take(snapshot, steps, snaps)
    return losses, snaps


def train_distribution_matching(G: nn.Module, real_eps, fake_eps: nn.Module, schedule: NoiseSchedule,
                                z_shape: Sequence[int], steps: int, *, batch_size: int = 256, lr: float = 1e-3,
                                lr_fake: float = 1e-3, fake_steps: int = 1, t_range: tuple[int, int] | None = None,
                                weighting: str = "dmd", every: int = 0, snapshot: Callable[[], torch.Tensor] | None = None,
                                generator: torch.Generator | None = None):
    """Distribution matching distillation: alternate fitting the fake score and moving ``G`` along the score difference.

    :func:`fit` on ``G`` where each of the ``steps`` rounds is ``fake_steps`` Adam steps (``lr_fake``) of
    :func:`lib.diffusion.diffusion_loss` for ``fake_eps`` on fresh samples ``G(z)`` (so it
    tracks the noised distribution of ``G``'s samples; Yin et al. start it as a copy of the
    teacher), then one Adam step (``lr``, cosine-decayed) of ``G`` on
    :func:`distribution_matching_loss` with ``t`` uniform per sample in ``t_range``
    (default ``[0.02 T, 0.98 T)``). Noises have shape ``(batch_size, *z_shape)`` and come
    from ``generator`` on the device of ``G``'s parameters. ``snapshot()`` is recorded as in
    :func:`fit`. Returns ``(losses_G, losses_fake, snapshots)``.
    Reference: Yin et al. (2024), the DMD training loop (without its regression loss); Yin
    et al. (2024b), "Improved Distribution Matching Distillation" (several fake updates per step).
    """
    G, fake_eps = _check_module("G", G), _check_module("fake_eps", fake_eps)
    _check_callable("real_eps", real_eps)
    schedule = _check_schedule(schedule)
    if isinstance(z_shape, (str, bytes)) or not isinstance(z_shape, Sequence) or not z_shape:
        raise TypeError(f"z_shape must be a non-empty sequence of ints (one sample's shape), got {z_shape!r}")
    z_shape = tuple(_check_int("z_shape", d, 1, 2**20) for d in z_shape)
    steps, batch_size, fake_steps = (_check_int(k, v, 1) for k, v in
                                     (("steps", steps), ("batch_size", batch_size), ("fake_steps", fake_steps)))
    lr, lr_fake = _check_positive("lr", lr), _check_positive("lr_fake", lr_fake)
    if t_range is None:
        t_range = (round(0.02 * schedule.T), round(0.98 * schedule.T) - 1)
    if not isinstance(t_range, (tuple, list)) or len(t_range) != 2:
        raise TypeError(f"t_range must be a pair (low, high) of ints, got {t_range!r}")
    lo, hi = (_check_int("t_range", v, 0, schedule.T - 1) for v in t_range)
    if lo > hi:
        raise ValueError(f"t_range must be (low, high) with low <= high, got {t_range}")
    param = next(iter(G.parameters()))
    generator = _check_rng(generator, param)
    draw = lambda: torch.randn((batch_size, *z_shape), generator=generator, device=param.device, dtype=param.dtype)  # noqa: E731
    opt_f = torch.optim.Adam([p for p in fake_eps.parameters() if p.requires_grad], lr=lr_fake)
    losses_f = []

    def loss_g(k: int) -> torch.Tensor:  # the fake score catches up with G, then G moves
        for _ in range(fake_steps):
            with torch.no_grad():
                x = _samples(G(draw()), batch_size, "G")
            loss_f = diffusion_loss(fake_eps, x, schedule, generator=generator)
            opt_f.zero_grad(set_to_none=True)
            loss_f.backward()
            opt_f.step()
        losses_f.append(loss_f.item())
        t = torch.randint(lo, hi + 1, (batch_size,), generator=generator, device=param.device)
        return distribution_matching_loss(G, real_eps, fake_eps, draw(), schedule, t, weighting=weighting,
                                          generator=generator)

    losses_g, snaps = fit(G, loss_g, steps, lr=lr, every=every, snapshot=snapshot)
    return losses_g, losses_f, snaps
