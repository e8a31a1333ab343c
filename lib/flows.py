"""Flow matching and rectified flow: straight paths, velocity regression, reflow, straightness.

Chapter 25 (``book/25_flow_matching.md``, lab ``notebooks/25_flow_matching.ipynb``).

Time runs from noise to data, as in Liu et al. and Lipman et al.: ``x0 ~ pi_0`` (in the
book ``N(0, I)``) sits at ``t = 0`` and ``x1 ~ pi_1`` (the data) at ``t = 1``; chapter 23's
diffusion time runs the other way. A *coupling* is a batch of pairs ``(x0[i], x1[i])``;
a *velocity* is a callable ``v(x, t)`` with ``x`` of shape ``(B, d)`` and ``t`` a float
tensor of shape ``(B,)``, returning a ``(B, d)`` tensor.

* :func:`interpolate`: the interpolant ``x_t = a(t) x0 + b(t) x1`` of each pair and its
  time derivative, the regression target: ``"linear"`` (rectified flow,
  ``(1 - t) x0 + t x1`` with target ``x1 - x0``) or ``"trig"`` (``cos(pi t/2) x0 +
  sin(pi t/2) x1``, a stochastic interpolant that keeps the variance of two independent
  standard normals).
* :func:`flow_matching_loss`: ``E_t E ||v(x_t, t) - dx_t/dt||^2`` over a batch of pairs
  and uniform times. Over all functions it is minimised by the conditional expectation
  ``E[dx_t/dt | x_t = x]``, which :class:`MixtureVelocity` gives in closed form for
  ``N(0, I) -> `` an isotropic Gaussian mixture under the independent coupling.
* :class:`VelocityMLP` and :func:`train_rectified_flow`: a small velocity network and
  Adam on the loss, with the pairs of a coupling drawn as given (``"paired"``) or
  independently (``"independent"``, fresh ``N(0, I)`` noise when ``x0`` is None).
* :func:`sample`: ``steps`` equal Euler or Heun steps of ``dx/dt = v(x, t)``.
* :func:`reflow`: the new coupling ``(x0, Z1)``, ``Z1`` the ODE's image of ``x0``, and a
  velocity retrained on it, starting from the old one (the 2-rectified flow).
* :func:`straightness` and :func:`transport_cost`: Liu et al.'s
  ``S = int_0^1 E ||(Z1 - Z0) - dZ_t/dt||^2 dt`` along the ODE's trajectories, and
  ``E ||x1 - x0||^2`` of a coupling.

References: Liu, Gong & Liu (2023), "Flow Straight and Fast: Learning to Generate and
Transfer Data with Rectified Flow" (ICLR); Liu (2022), "Rectified Flow: A Marginal
Preserving Approach to Optimal Transport"; Lipman, Chen, Ben-Hamu, Nickel & Le (2023),
"Flow Matching for Generative Modeling" (ICLR); Albergo & Vanden-Eijnden (2023),
"Building Normalizing Flows with Stochastic Interpolants" (ICLR); Lee, Lin & Fanti
(2024), "Improving the Training of Rectified Flows" (NeurIPS).
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from .calculus import _check_finite
from .curvature import _check_callable, _check_generator, _check_int, _check_positive, _check_real

__all__ = ["interpolate", "flow_matching_loss", "MixtureVelocity", "VelocityMLP", "train_rectified_flow",
           "sample", "reflow", "straightness", "transport_cost"]

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x (B, d), t (B,)) -> (B, d)
INTERPOLANTS = ("linear", "trig")
METHODS = ("euler", "heun")
COUPLINGS = ("paired", "independent")
_MAX_WIDTH, _MAX_DEPTH, _MAX_STEPS = 2**16, 64, 10**6


# ---------------------------------------------------------------- validation

def _check_points(name: str, x, dim: int | None = None) -> torch.Tensor:
    """``x`` as a finite float32/float64 batch of points ``(B, d)``, ``B, d >= 1``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of points (B, d), got {type(x).__name__}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must have shape (B, d) with B, d >= 1, got {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} coordinates per point, got shape {tuple(x.shape)}")
    _check_finite(name, x.detach())
    return x  # with its graph, if any: interpolants and costs stay differentiable in the points


def _check_pair(x0, x1) -> tuple[torch.Tensor, torch.Tensor]:
    x0, x1 = _check_points("x0", x0), _check_points("x1", x1)
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape (pairs of a coupling), got {tuple(x0.shape)} "
                         f"and {tuple(x1.shape)}")
    if x0.dtype != x1.dtype or x0.device != x1.device:
        raise ValueError(f"x0 and x1 must share dtype and device, got {x0.dtype} on {x0.device} and "
                         f"{x1.dtype} on {x1.device}")
    return x0, x1


def _check_choice(name: str, value, choices: tuple) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_times(t, x: torch.Tensor) -> torch.Tensor:
    """Times for the batch ``x``: a number or a float tensor ``()`` / ``(B,)`` in [0, 1] -> ``(B,)``."""
    if isinstance(t, torch.Tensor):
        if not t.is_floating_point():
            raise TypeError(f"t must be a number or a floating tensor, got {t.dtype}")
        if t.shape not in ((), (x.shape[0],)):
            raise ValueError(f"t must be a number or have shape () or ({x.shape[0]},), got {tuple(t.shape)}")
        _check_finite("t", t.detach())
        t = t.to(device=x.device, dtype=x.dtype).expand(x.shape[0])
    else:
        t = torch.full((x.shape[0],), _check_real("t", t), dtype=x.dtype, device=x.device)
    if bool(((t < 0) | (t > 1)).any()):
        raise ValueError(f"t must lie in [0, 1], got values in [{float(t.min())}, {float(t.max())}]")
    return t


def _check_generator_on(generator, device: torch.device) -> torch.Generator | None:
    generator = _check_generator(generator)
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f"generator must be on the data's device {device}, got {generator.device}")
    return generator


def _call(v: Velocity, x: torch.Tensor, t: torch.Tensor, name: str = "v") -> torch.Tensor:
    """``v(x, t)`` with its output checked: a tensor of x's shape, dtype and device (finiteness: by callers)."""
    out = v(x, t)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    if out.shape != x.shape:
        raise ValueError(f"{name} must return a tensor of the points' shape {tuple(x.shape)}, got {tuple(out.shape)}")
    if out.dtype != x.dtype or out.device != x.device:
        raise TypeError(f"{name} must return {x.dtype} on {x.device} like its input, got {out.dtype} on {out.device}")
    return out


def _check_model_matches(model: nn.Module, x: torch.Tensor, name: str) -> None:
    """The data must have the dtype and device of the model's parameters (if it has any)."""
    p = next(model.parameters(), None)
    if p is not None and (p.dtype != x.dtype or p.device != x.device):
        raise ValueError(f"{name} must have the model's dtype and device ({p.dtype} on {p.device}), got "
                         f"{x.dtype} on {x.device}")


def _nonfinite(name: str) -> ValueError:
    return ValueError(f"{name} returned non-finite values (NaN or inf), or the trajectory overflowed: "
                      "check the velocity, or use more steps")


# ---------------------------------------------------------------- interpolants and the loss

def _coefficients(t: torch.Tensor, interpolant: str):
    """``a(t), b(t), a'(t), b'(t)`` of ``x_t = a x0 + b x1``, each ``(B, 1)``."""
    t = t[:, None]
    if interpolant == "linear":
        return 1 - t, t, -torch.ones_like(t), torch.ones_like(t)
    half_pi = math.pi / 2
    c, s = torch.cos(half_pi * t), torch.sin(half_pi * t)
    return c, s, -half_pi * s, half_pi * c


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t, interpolant: str = "linear"
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The interpolant of each pair at time ``t`` and its velocity: ``(x_t, dx_t/dt)``.

    Shapes: ``x0``, ``x1`` ``(B, d)`` (the pairs of a coupling); ``t`` a number or a tensor
    ``()`` / ``(B,)`` in ``[0, 1]``. ``"linear"``: ``x_t = (1 - t) x0 + t x1`` and
    ``dx_t/dt = x1 - x0``; ``"trig"``: ``x_t = cos(pi t/2) x0 + sin(pi t/2) x1`` and
    ``dx_t/dt = (pi/2)(cos(pi t/2) x1 - sin(pi t/2) x0)``. Returns two ``(B, d)`` tensors.
    Reference: Liu et al. (2023) (the linear interpolant of rectified flow); Albergo &
    Vanden-Eijnden (2023) (the trigonometric interpolant).
    """
    x0, x1 = _check_pair(x0, x1)
    interpolant = _check_choice("interpolant", interpolant, INTERPOLANTS)
    a, b, da, db = _coefficients(_check_times(t, x0), interpolant)
    return a * x0 + b * x1, da * x0 + db * x1


def flow_matching_loss(v: Velocity, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor | None = None,
                       interpolant: str = "linear", generator: torch.Generator | None = None) -> torch.Tensor:
    """Flow-matching loss ``mean_i ||v(x_t_i, t_i) - dx_t/dt_i||^2`` on a batch of pairs.

    Shapes: ``x0``, ``x1`` ``(B, d)`` are pairs of a coupling (row ``i`` with row ``i``);
    ``t`` ``(B,)`` in ``[0, 1]``, or None to draw ``t_i ~ U[0, 1]`` from ``generator`` (on the
    pairs' device). The squared norm sums over coordinates. Returns a 0-dim tensor with
    gradients w.r.t. the parameters of ``v``. Zero exactly when ``v`` reproduces every
    pair's velocity; in expectation it is minimised by ``E[dx_t/dt | x_t]`` (the chapter).
    Reference: Liu et al. (2023) (the rectified-flow objective); Lipman et al. (2023)
    (conditional flow matching).
    """
    _check_callable("v", v)
    x0, x1 = _check_pair(x0, x1)
    interpolant = _check_choice("interpolant", interpolant, INTERPOLANTS)
    generator = _check_generator_on(generator, x0.device)
    if t is None:
        t = torch.rand(x0.shape[0], generator=generator, device=x0.device, dtype=x0.dtype)
    elif not isinstance(t, torch.Tensor) or t.ndim != 1:
        raise ValueError(f"t must be None or a tensor of shape ({x0.shape[0]},), got "
                         f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    loss = _fm_loss(v, x0, x1, _check_times(t, x0), interpolant)
    if not bool(torch.isfinite(loss)):
        raise _nonfinite("v")
    return loss


def _fm_loss(v: Velocity, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, interpolant: str,
             name: str = "v") -> torch.Tensor:
    """The loss on checked inputs (the training loop calls it directly)."""
    a, b, da, db = _coefficients(t, interpolant)
    x_t, target = a * x0 + b * x1, da * x0 + db * x1
    return (_call(v, x_t, t, name) - target).square().sum(1).mean()


class MixtureVelocity:
    """The exact marginal velocity ``E[dx_t/dt | x_t = x]`` for ``N(0, I) -> `` a Gaussian mixture.

    ``x0 ~ N(0, I)`` and ``x1 ~ sum_k w_k N(m_k, s^2 I)`` drawn independently, joined by the
    interpolant ``x_t = a x0 + b x1``. Given the component ``k``, ``(x0, x_t)`` and
    ``(x1, x_t)`` are jointly Gaussian with ``Var x_t = (a^2 + b^2 s^2) I =: sigma^2 I``, so
    ``E[x0 | x_t, k] = a (x - b m_k) / sigma^2`` and ``E[x1 | x_t, k] = m_k + b s^2 (x - b m_k) /
    sigma^2``; the velocity is ``sum_k r_k(x) (a' E[x0 | x_t, k] + b' E[x1 | x_t, k])`` with the
    responsibilities ``r_k(x)`` of ``N(b m_k, sigma^2 I)``. This is the field that rectified
    flow learns from the independent coupling (the 1-rectified flow), with no training.

    ``MixtureVelocity(means (k, d), std > 0, weights=None, interpolant="linear")(x, t)`` with
    ``x`` ``(B, d)`` and ``t`` ``(B,)`` (or a number) in ``[0, 1]`` returns ``(B, d)`` in ``x``'s dtype.
    Reference: Liu et al. (2023) (the velocity as a conditional expectation), here in closed
    form; Albergo & Vanden-Eijnden (2023) for the trigonometric interpolant.
    """

    def __init__(self, means, std: float, weights=None, interpolant: str = "linear") -> None:
        if not isinstance(means, torch.Tensor) or not means.is_floating_point():
            raise TypeError(f"means must be a floating torch.Tensor (k, d), got "
                            f"{getattr(means, 'dtype', type(means).__name__)}")
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(f"means must have shape (k, d) with k, d >= 1, got {tuple(means.shape)}")
        self.means = _check_finite("means", means.detach()).double()
        self.std = _check_positive("std", std)
        if not 1e-150 <= self.std <= 1e150:  # std ** 2 times the interpolant's b ** 2 must stay a float64
            raise ValueError(f"std must lie in [1e-150, 1e150], got {std}")
        k = means.shape[0]
        if weights is None:
            w = torch.full((k,), 1.0 / k, dtype=torch.float64)
        else:
            if not isinstance(weights, torch.Tensor) or not weights.is_floating_point():
                raise TypeError(f"weights must be None or a floating tensor ({k},), got "
                                f"{getattr(weights, 'dtype', type(weights).__name__)}")
            if weights.shape != (k,):
                raise ValueError(f"weights must have shape ({k},), got {tuple(weights.shape)}")
            w = _check_finite("weights", weights.detach()).double().cpu()
            if bool((w < 0).any()) or float(w.sum()) <= 0:
                raise ValueError(f"weights must be non-negative with a positive sum, got {w.tolist()}")
            w = w / w.sum()
        self.log_weights = torch.log(w)  # -inf for a zero weight: that component never responds
        self.interpolant = _check_choice("interpolant", interpolant, INTERPOLANTS)

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        x = _check_points("x", x, self.means.shape[1])
        dtype, x = x.dtype, x.double()  # in float64: std ** 2 and the variances must not overflow float32
        t = _check_times(t, x)
        m = self.means.to(device=x.device)
        a, b, da, db = _coefficients(t, self.interpolant)                       # (B, 1) each
        var = a * a + b * b * self.std ** 2                                      # (B, 1), > 0
        r = x[:, None, :] - b[:, :, None] * m[None]                              # (B, k, d): x - b m_k
        logits = self.log_weights.to(device=x.device) - r.square().sum(-1) / (2 * var)
        resp = torch.softmax(logits, dim=1)[:, :, None]                          # (B, k, 1)
        e0 = a[:, :, None] * r / var[:, :, None]                                 # E[x0 | x_t, k]
        e1 = m[None] + (b * self.std ** 2)[:, :, None] * r / var[:, :, None]     # E[x1 | x_t, k]
        return (resp * (da[:, :, None] * e0 + db[:, :, None] * e1)).sum(1).to(dtype)


# ---------------------------------------------------------------- a velocity network and its training

class VelocityMLP(nn.Module):
    """A velocity field ``v_theta(x, t)``: an MLP on the concatenation ``[x, t]``.

    ``Linear(dim + 1, width)``, then ``depth - 1`` more hidden layers of ``width`` units, SiLU
    after each, and ``Linear(width, dim)``: with the defaults ``3-128-128-128-2``, the lab's
    network for 2-D data. ``forward(x (B, dim), t (B,) or a number)`` returns ``(B, dim)`` in
    the parameters' dtype, which ``x`` must have (finite: NaN or inf is refused).
    Reference: Liu et al. (2023) (small MLP velocities for their 2-D toys).
    """

    def __init__(self, dim: int = 2, width: int = 128, depth: int = 3) -> None:
        super().__init__()
        self.dim = _check_int("dim", dim, 1, _MAX_WIDTH)
        width, depth = _check_int("width", width, 1, _MAX_WIDTH), _check_int("depth", depth, 1, _MAX_DEPTH)
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(dim + 1 if i == 0 else width, width), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        dtype = self.net[0].weight.dtype
        if not isinstance(x, torch.Tensor) or x.dtype != dtype or x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must be a {dtype} tensor of shape (B, {self.dim}), got "
                             f"{(x.dtype, tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__}")
        _check_finite("x", x.detach())
        if isinstance(t, torch.Tensor):
            if not t.is_floating_point() or t.shape not in ((), (x.shape[0],)):
                raise ValueError(f"t must be a number or a floating tensor of shape () or ({x.shape[0]},), got "
                                 f"{t.dtype} {tuple(t.shape)}")
            _check_finite("t", t.detach())
            t = t.to(dtype).expand(x.shape[0])
        else:
            t = torch.full((x.shape[0],), _check_real("t", t), dtype=dtype, device=x.device)
        return self.net(torch.cat([x, t[:, None]], dim=1))


def train_rectified_flow(model: nn.Module, x0: torch.Tensor | None, x1: torch.Tensor, *,
                         coupling: str = "independent", interpolant: str = "linear", steps: int = 2000,
                         batch_size: int = 512, lr: float = 1e-3, generator: torch.Generator | None = None
                         ) -> tuple[nn.Module, list[float]]:
    """Fit ``model(x, t)`` to a coupling by Adam on :func:`flow_matching_loss`; returns ``(model, losses)``.

    ``x1`` ``(N, d)``: samples of the target; ``x0`` ``(M, d)`` samples of the source, or None
    for fresh ``N(0, I)`` draws at every step. ``coupling="paired"`` trains on the given pairs
    ``(x0[i], x1[i])`` (``M = N``: a coupling made by :func:`reflow`); ``"independent"`` draws
    the rows of ``x0`` and ``x1`` independently (the first rectified flow). Each of ``steps``
    steps uses ``batch_size`` pairs (with replacement) and fresh uniform times; the learning
    rate decays from ``lr`` to 0 on a cosine. All randomness from ``generator`` (on the data's
    device). ``model`` is trained in place (and returned); ``losses`` holds every step's loss.
    Reference: Liu et al. (2023), Algorithm 1 (training a rectified flow).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x1 = _check_points("x1", x1).detach()
    coupling = _check_choice("coupling", coupling, COUPLINGS)
    if x0 is None:
        if coupling == "paired":
            raise ValueError("coupling='paired' needs the pairs' x0 (got x0=None, fresh noise has no partner)")
    else:
        x0 = _check_points("x0", x0, x1.shape[1]).detach()
        if x0.dtype != x1.dtype or x0.device != x1.device:
            raise ValueError(f"x0 and x1 must share dtype and device, got {x0.dtype} on {x0.device} and "
                             f"{x1.dtype} on {x1.device}")
        if coupling == "paired" and x0.shape[0] != x1.shape[0]:
            raise ValueError(f"coupling='paired' needs as many x0 as x1 (pairs), got {x0.shape[0]} and {x1.shape[0]}")
    _check_model_matches(model, x1, "x1")
    interpolant = _check_choice("interpolant", interpolant, INTERPOLANTS)
    steps = _check_int("steps", steps, 1, _MAX_STEPS)
    batch_size = _check_int("batch_size", batch_size, 1, 2**24)
    lr = _check_positive("lr", lr)
    generator = _check_generator_on(generator, x1.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / steps)))
    n, d, dev = x1.shape[0], x1.shape[1], x1.device
    losses = []
    model.train()
    for step in range(steps):
        i = torch.randint(0, n, (batch_size,), generator=generator, device=dev)
        if x0 is None:
            a = torch.randn(batch_size, d, generator=generator, device=dev, dtype=x1.dtype)
        elif coupling == "paired":
            a = x0[i]
        else:
            a = x0[torch.randint(0, x0.shape[0], (batch_size,), generator=generator, device=dev)]
        t = torch.rand(batch_size, generator=generator, device=dev, dtype=x1.dtype)
        loss = _fm_loss(model, a, x1[i], t, interpolant, "model")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            raise ValueError(f"the training loss became non-finite (NaN or inf) at step {step}: lower lr, or "
                             "check the model's outputs")
    model.eval()
    return model, losses


# ---------------------------------------------------------------- sampling, reflow, straightness, cost

def _steps_and_times(steps, t_start, t_end) -> tuple[int, float, float]:
    steps = _check_int("steps", steps, 1, _MAX_STEPS)
    t_start, t_end = _check_real("t_start", t_start), _check_real("t_end", t_end)
    for name, value in (("t_start", t_start), ("t_end", t_end)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    if t_start == t_end:
        raise ValueError(f"t_start and t_end must differ, got {t_start}")
    return steps, t_start, t_end


def sample(v: Velocity, x0: torch.Tensor, steps: int = 1, method: str = "euler", *, t_start: float = 0.0,
           t_end: float = 1.0, return_trajectory: bool = False):
    """Integrate ``dx/dt = v(x, t)`` from ``x0`` at ``t_start`` to ``t_end`` in ``steps`` equal steps.

    ``method="euler"``: ``x <- x + h v(x, t)`` (one evaluation per step, first order);
    ``"heun"``: Heun's explicit trapezoidal rule, ``x' = x + h v(x, t)``,
    ``x <- x + h/2 (v(x, t) + v(x', t + h))`` (two evaluations, second order). ``t_end <
    t_start`` runs the flow backwards (data to noise). Shapes: ``x0`` ``(B, d)``; returns
    ``x`` at ``t_end`` ``(B, d)``, and with ``return_trajectory=True`` also the states at all
    ``steps + 1`` times, ``(steps + 1, B, d)``. Gradients flow through the steps (wrap in
    ``torch.no_grad()`` to sample only). One Euler step is exact for a velocity that is
    constant along each path (a straight flow).
    Reference: Liu et al. (2023) (Euler with N steps; N = 1 for straight flows); Karras et
    al. (2022), Algorithm 1 (Heun's method for generative ODEs).
    """
    _check_callable("v", v)
    x0 = _check_points("x0", x0)
    steps, t_start, t_end = _steps_and_times(steps, t_start, t_end)
    method = _check_choice("method", method, METHODS)
    if not isinstance(return_trajectory, bool):
        raise TypeError(f"return_trajectory must be a bool, got {type(return_trajectory).__name__}")
    return _integrate(v, x0, steps, method, t_start, t_end, return_trajectory)


def _integrate(v: Velocity, x: torch.Tensor, steps: int, method: str, t_start: float = 0.0, t_end: float = 1.0,
               return_trajectory: bool = False, name: str = "v"):
    """Euler or Heun steps on checked arguments (see :func:`sample`)."""
    h = (t_end - t_start) / steps
    path = [x]
    for k in range(steps):
        t = torch.full((x.shape[0],), t_start + k * h, dtype=x.dtype, device=x.device)
        k1 = _call(v, x, t, name)
        if method == "euler":
            x = x + h * k1
        else:
            t_next = torch.full_like(t, t_end if k == steps - 1 else t_start + (k + 1) * h)
            k2 = _call(v, x + h * k1, t_next, name)
            x = x + (0.5 * h) * (k1 + k2)
        if return_trajectory:
            path.append(x)
    if not bool(torch.isfinite(x).all()):
        raise _nonfinite(name)
    return (x, torch.stack(path)) if return_trajectory else x


def reflow(model: nn.Module, x0: torch.Tensor, *, ode_steps: int = 100, method: str = "euler",
           steps: int = 1000, batch_size: int = 512, lr: float = 1e-3, interpolant: str = "linear",
           generator: torch.Generator | None = None) -> tuple[nn.Module, torch.Tensor, list[float]]:
    """One rectification: a new coupling from the flow of ``model``, and a velocity fitted to it.

    ``x1 = sample(model, x0, ode_steps, method)`` (without gradients) pairs every ``x0``
    ``(N, d)`` with its image under the current flow; this deterministic coupling has the
    flow's marginals and a transport cost no higher than the coupling ``model`` was trained
    on (the chapter's theorems). A copy of ``model`` is then trained on the pairs by
    :func:`train_rectified_flow` (``coupling="paired"``, ``steps``, ``batch_size``, ``lr``,
    ``interpolant``, ``generator``). Returns ``(new_model, x1, losses)``; ``model`` is not changed.
    Reference: Liu et al. (2023), Algorithm 1 (Reflow; the k-rectified flow).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x0 = _check_points("x0", x0).detach()
    _check_model_matches(model, x0, "x0")
    ode_steps = _check_int("ode_steps", ode_steps, 1, _MAX_STEPS)
    method = _check_choice("method", method, METHODS)
    with torch.no_grad():
        x1 = _integrate(model.eval(), x0, ode_steps, method, name="model")
    new = copy.deepcopy(model)
    new, losses = train_rectified_flow(new, x0, x1, coupling="paired", interpolant=interpolant, steps=steps,
                                       batch_size=batch_size, lr=lr, generator=generator)
    return new, x1, losses


def straightness(v: Velocity, x0: torch.Tensor, steps: int = 100, method: str = "euler") -> torch.Tensor:
    """Liu et al.'s straightness ``S = int_0^1 E ||(Z1 - Z0) - dZ_t/dt||^2 dt`` of the flow of ``v``.

    The trajectories ``Z_t`` start at ``x0`` ``(B, d)`` and are integrated by :func:`sample`
    (``steps``, ``method``); on the resulting polyline ``Z_0, ..., Z_K`` (``h = 1/K``),
    ``S = (1/B) sum_i h sum_k ||(Z_K - Z_0) - (Z_{k+1} - Z_k)/h||^2``, the time-variance of
    the velocity along each path, averaged over paths. Zero exactly when every path is a
    straight line run at constant speed; positive otherwise. Returns a 0-dim tensor (no gradients).
    Reference: Liu et al. (2023), the definition of the straightness S(Z).
    """
    _check_callable("v", v)
    x0 = _check_points("x0", x0).detach()
    steps = _check_int("steps", steps, 1, _MAX_STEPS)
    method = _check_choice("method", method, METHODS)
    with torch.no_grad():
        _, path = _integrate(v, x0, steps, method, return_trajectory=True)
    k = path.shape[0] - 1
    slopes = (path[1:] - path[:-1]) * k                   # (K, B, d): the velocity of each segment
    chord = path[-1] - path[0]                             # (B, d) = mean of the slopes
    return (chord[None] - slopes).square().sum(-1).mean()


def transport_cost(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """The quadratic transport cost ``E ||x1 - x0||^2`` of a coupling, as a 0-dim tensor.

    Shapes: ``x0``, ``x1`` ``(B, d)``, row ``i`` paired with row ``i``; the mean over pairs of
    the squared Euclidean distance. Rectification never raises it (nor any convex cost), in
    expectation over the exact flow.
    Reference: Liu et al. (2023) (rectification does not increase convex transport costs).
    """
    x0, x1 = _check_pair(x0, x1)
    return (x1 - x0).square().sum(1).mean()
