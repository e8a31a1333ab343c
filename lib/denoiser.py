"""Small time-conditioned noise predictors for diffusion models, and their training loop.

Chapter 23 (``book/23_diffusion.md``, lab ``notebooks/23_diffusion.ipynb``); reused by the
guidance and few-step chapters. Every network has the signature of :mod:`lib.diffusion`,
``model(x_t, t, labels=None) -> eps``, with ``t`` a float tensor ``(B,)`` of (possibly
fractional) timesteps and ``labels`` None or int64 ``(B,)`` in ``{-1, 0, ..., C-1}``, where
``-1`` (:data:`lib.diffusion.NULL_LABEL`) is the learned "no label" embedding of
classifier-free guidance.

* :func:`timestep_embedding`: the sinusoidal features of the Transformer / DDPM.
* :class:`ResidualMLP`: pre-norm residual MLP on flattened inputs, time and class
  embeddings added in every block (the lab's model for 8x8 digits).
* :class:`TinyCNN`: a few 3x3 convolutions with the same conditioning, for images
  ``(B, C, H, W)`` (``BOOK_SCALE=full``).
* :class:`GaussianEps`: the exact noise predictor ``E[eps | x_t]`` for Gaussian data, with the
  closed-form probability-flow map: the reference the samplers are tested against.
* :func:`ema_update` and :func:`train_denoiser`: Adam on :func:`lib.diffusion.diffusion_loss`
  with an exponential moving average of the weights.

References: Ho, Jain & Abbeel (2020), sec. 4 and app. B (sinusoidal time embedding, EMA);
Vaswani et al. (2017) (sinusoidal features); Ho & Salimans (2022), "Classifier-Free
Diffusion Guidance" (null label).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from .calculus import _check_finite
from .curvature import _check_generator, _check_int, _check_positive, _check_real
from .diffusion import NULL_LABEL, NoiseSchedule, _check_labels, _check_schedule, _check_x, diffusion_loss

__all__ = ["timestep_embedding", "ResidualMLP", "TinyCNN", "GaussianEps", "ema_update", "train_denoiser"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features ``[cos(t w_k), sin(t w_k)]``, ``w_k = max_period^(-k / (dim/2))``.

    Shapes: ``t`` ``(B,)`` float (fractional times are fine); returns ``(B, dim)`` for an even
    ``dim >= 2``, in ``t``'s dtype.
    Reference: Vaswani et al. (2017), sec. 3.5; Ho et al. (2020), app. B.
    """
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(f"t must be a floating torch.Tensor, got {getattr(t, 'dtype', type(t).__name__)}")
    if t.ndim != 1:
        raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
    _check_finite("t", t.detach())
    dim = _check_int("dim", dim, 2)
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    max_period = _check_positive("max_period", max_period)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    args = t[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class _Conditioning(nn.Module):
    """Time (and class) embedding ``e(t, y)`` of width ``emb``; null label -> index C."""

    def __init__(self, emb: int, num_classes: int | None):
        super().__init__()
        self.emb, self.num_classes = emb, num_classes
        self.time = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label = nn.Embedding(num_classes + 1, emb) if num_classes is not None else None

    def forward(self, x: torch.Tensor, t, labels) -> torch.Tensor:
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.shape != (x.shape[0],):
            raise TypeError(f"t must be a floating tensor of shape ({x.shape[0]},), got "
                            f"{getattr(t, 'dtype', type(t).__name__)} {tuple(getattr(t, 'shape', ()))}")
        e = self.time(timestep_embedding(t.to(x.dtype), self.emb))
        if labels is not None:
            labels = _check_labels(labels, x)
            if self.label is None:
                raise ValueError("labels were given to an unconditional model (num_classes=None)")
            if int(labels.max()) >= self.num_classes:
                raise ValueError(f"labels must be in [-1, {self.num_classes - 1}], got max {int(labels.max())}")
            e = e + self.label(torch.where(labels < 0, self.num_classes, labels))
        elif self.label is not None:
            e = e + self.label.weight[self.num_classes]
        return F.silu(e)


def _check_sizes(num_classes, **sizes) -> int | None:
    for name, v in sizes.items():
        _check_int(name, v, 1)
    return None if num_classes is None else _check_int("num_classes", num_classes, 1)


class _Block(nn.Module):
    def __init__(self, width: int, emb: int):
        super().__init__()
        self.norm, self.fc1, self.cond, self.fc2 = (nn.LayerNorm(width), nn.Linear(width, width),
                                                   nn.Linear(emb, width), nn.Linear(width, width))

    def forward(self, h, e):
        return h + self.fc2(F.silu(self.fc1(F.silu(self.norm(h))) + self.cond(e)))


class ResidualMLP(nn.Module):
    """Noise predictor ``eps(x_t, t, labels)`` on inputs of any shape ``(B, ...)`` flattened to ``dim``.

    ``Linear(dim, width)``, ``depth`` residual blocks ``h + W2 silu(W1 silu(LN h) + U e)`` with
    the conditioning ``e = silu(MLP(sinusoid(t)) + label embedding)``, and ``silu`` then a
    zero-initialised ``Linear(width, dim)`` giving a correction ``F``; the output is
    ``eps = x_t + F``. The skip matters: at high noise ``E[eps | x_t] ~ x_t`` to within
    ``1e-4``, and a network that must build that identity itself learns it only to a few
    percent (cheap in the loss) which the deterministic samplers amplify step after step (the
    exposure bias of the lab). The untrained model says "all noise"; no normalisation after
    the last block, so ``F`` can scale with the input. ``num_classes=None``:
    unconditional. Returns eps of ``x_t``'s shape.
    Reference: Ho et al. (2020), app. B (conditioning by addition), in MLP form.
    """

    def __init__(self, dim: int = 64, width: int = 256, depth: int = 3, num_classes: int | None = None,
                 emb: int = 128) -> None:
        super().__init__()
        self.num_classes = _check_sizes(num_classes, dim=dim, width=width, depth=depth, emb=emb)
        if emb % 2:
            raise ValueError(f"emb must be even (sin and cos features), got {emb}")
        self.dim = dim
        self.cond = _Conditioning(emb, self.num_classes)
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(_Block(width, emb) for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(width, dim))  # no norm here: |eps| must scale with |x_t|
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x_t, torch.Tensor) or x_t.ndim < 1 or x_t[0].numel() != self.dim:
            raise ValueError(f"x_t must have shape (B, ...) with {self.dim} entries per sample, got "
                             f"{tuple(getattr(x_t, 'shape', ())) or type(x_t).__name__}")
        e = self.cond(x_t, t, labels)
        h = self.inp(x_t.reshape(x_t.shape[0], self.dim))
        for block in self.blocks:
            h = block(h, e)
        return x_t + self.out(h).reshape(x_t.shape)


class _ConvBlock(nn.Module):
    def __init__(self, width: int, emb: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8 if width % 8 == 0 else 1, width), nn.Conv2d(width, width, 3, padding=1)
        self.cond = nn.Linear(emb, width)
        self.norm2, self.conv2 = nn.GroupNorm(8 if width % 8 == 0 else 1, width), nn.Conv2d(width, width, 3, padding=1)

    def forward(self, h, e):
        z = self.conv1(F.silu(self.norm1(h))) + self.cond(e)[:, :, None, None]
        return h + self.conv2(F.silu(self.norm2(z)))


class TinyCNN(nn.Module):
    """Convolutional noise predictor for images ``(B, channels, H, W)``.

    A 3x3 convolution in, ``depth`` residual blocks (GroupNorm, SiLU, 3x3 convolutions,
    the conditioning added per channel), a zero-initialised 3x3 convolution out giving the
    correction ``F``, and ``eps = x_t + F`` as in :class:`ResidualMLP`; the resolution is
    kept throughout (8x8 digits need no down-sampling). Same conditioning and signature as
    :class:`ResidualMLP`.
    Reference: Ho et al. (2020), app. B (a U-Net with these residual blocks; here without
    down-sampling or attention).
    """

    def __init__(self, channels: int = 1, width: int = 64, depth: int = 3, num_classes: int | None = None,
                 emb: int = 128) -> None:
        super().__init__()
        self.num_classes = _check_sizes(num_classes, channels=channels, width=width, depth=depth, emb=emb)
        if emb % 2:
            raise ValueError(f"emb must be even (sin and cos features), got {emb}")
        self.channels = channels
        self.cond = _Conditioning(emb, self.num_classes)
        self.inp = nn.Conv2d(channels, width, 3, padding=1)
        self.blocks = nn.ModuleList(_ConvBlock(width, emb) for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Conv2d(width, channels, 3, padding=1))  # no norm: see ResidualMLP
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x_t, torch.Tensor) or x_t.ndim != 4 or x_t.shape[1] != self.channels:
            raise ValueError(f"x_t must have shape (B, {self.channels}, H, W), got "
                             f"{tuple(getattr(x_t, 'shape', ())) or type(x_t).__name__}")
        e = self.cond(x_t, t, labels)
        h = self.inp(x_t)
        for block in self.blocks:
            h = block(h, e)
        return x_t + self.out(h)


class GaussianEps:
    """The exact noise predictor ``E[eps | x_t]`` for data ``x_0 ~ N(mean, std^2 I)``.

    ``GaussianEps(schedule, mean, std)(x_t, t)`` with ``x_t`` ``(B, d...)`` and ``t`` a float
    tensor ``(B,)`` (fractional times through :meth:`NoiseSchedule.sigma_at`) returns
    ``sigma (xbar - mean) / (std^2 + sigma^2)`` with ``xbar = x_t sqrt(1 + sigma^2)``.
    ``mean`` is a number or a tensor broadcastable to one sample; ``std >= 0`` (0: a point mass).
    Its probability-flow ODE has the closed form :meth:`ode_solution`.
    Reference: the Gaussian case of Tweedie's formula (Efron 2011); the unit tests and the
    theory page use it as the exact model.
    """

    def __init__(self, schedule: NoiseSchedule, mean=0.0, std: float = 1.0) -> None:
        self.schedule = _check_schedule(schedule)
        if isinstance(mean, torch.Tensor):
            if not mean.is_floating_point():
                raise TypeError(f"mean must be a number or a floating tensor, got {mean.dtype}")
            self.mean = _check_finite("mean", mean.detach())
        else:
            self.mean = _check_real("mean", mean)
        self.std = _check_real("std", std)
        if self.std < 0:
            raise ValueError(f"std must be >= 0, got {self.std}")

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, labels=None) -> torch.Tensor:
        sigma = self.schedule.sigma_at(t.to(x_t.dtype)).view((-1,) + (1,) * (x_t.ndim - 1))
        xbar = x_t * (1 + sigma ** 2).sqrt()
        return sigma * (xbar - self.mean) / (self.std ** 2 + sigma ** 2)

    def ode_solution(self, x: torch.Tensor, sigma_from: float, sigma_to: float) -> torch.Tensor:
        """Exact probability-flow ODE map from noise level ``sigma_from`` to ``sigma_to``.

        ``xbar(sigma) - mean = (xbar(sigma_from) - mean) sqrt((std^2 + sigma^2) / (std^2 + sigma_from^2))``,
        returned as ``x = xbar / sqrt(1 + sigma_to^2)`` (``sigma_to = 0``: the clean sample).
        """
        s2 = self.std ** 2
        xbar = x * math.sqrt(1 + sigma_from ** 2)
        out = self.mean + (xbar - self.mean) * math.sqrt((s2 + sigma_to ** 2) / (s2 + sigma_from ** 2))
        return out / math.sqrt(1 + sigma_to ** 2)


def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """In place: ``p_ema <- decay p_ema + (1 - decay) p`` for every parameter (buffers copied).

    ``ema`` and ``model`` must have the same parameter shapes; ``decay`` in [0, 1].
    Reference: Ho et al. (2020), app. B (EMA decay 0.9999); Polyak & Juditsky (1992).
    """
    if not isinstance(ema, nn.Module) or not isinstance(model, nn.Module):
        raise TypeError(f"ema and model must be torch.nn.Modules, got {type(ema).__name__}, {type(model).__name__}")
    decay = _check_real("decay", decay)
    if not 0 <= decay <= 1:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    pe, pm = list(ema.parameters()), list(model.parameters())
    if len(pe) != len(pm) or any(a.shape != b.shape for a, b in zip(pe, pm)):
        raise ValueError("ema and model must have the same parameters (shapes differ)")
    with torch.no_grad():
        torch._foreach_lerp_(pe, pm, 1.0 - decay) if pe else None
        for be, bm in zip(ema.buffers(), model.buffers()):
            be.copy_(bm)


def train_denoiser(model: nn.Module, x0: torch.Tensor, schedule: NoiseSchedule, *, labels: torch.Tensor | None = None,
                   steps: int = 5000, batch_size: int = 128, lr: float = 1e-3, p_uncond: float = 0.0,
                   ema_decay: float = 0.999, generator: torch.Generator | None = None) -> tuple[nn.Module, list[float]]:
    """Train ``model`` (in place) on :func:`lib.diffusion.diffusion_loss`; return ``(ema_model, losses)``.

    Adam with learning rate ``lr`` and a cosine decay to 0 over ``steps`` steps of
    ``batch_size`` examples drawn with replacement from ``x0`` ``(N, ...)`` (and ``labels``
    ``(N,)``, dropped to the null label with probability ``p_uncond``); all randomness from
    ``generator`` (on ``x0``'s device). ``ema_model`` is a copy holding the exponential
    moving average of the weights (``ema_decay``; 0 keeps the last weights), in eval mode and
    without gradients. ``losses``: the loss of every step.
    Reference: Ho et al. (2020), Algorithm 1 and app. B; Loshchilov & Hutter (2017) (cosine decay).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x0 = _check_x(x0, "x0")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params or any(p.dtype != x0.dtype or p.device != x0.device for p in params):
        raise ValueError(f"model needs trainable parameters of x0's dtype {x0.dtype} on {x0.device}, got "
                         f"{sorted({f'{p.dtype} on {p.device}' for p in params}) or 'none'} (model.to(x0))")
    schedule = _check_schedule(schedule)
    labels = _check_labels(labels, x0)
    if labels is not None and bool((labels == NULL_LABEL).any()):
        raise ValueError("labels of the training set must be class indices >= 0 (NULL_LABEL is added by p_uncond)")
    steps, batch_size = _check_int("steps", steps, 1), _check_int("batch_size", batch_size, 1)
    lr = _check_positive("lr", lr)
    ema_decay = _check_real("ema_decay", ema_decay)
    if not 0 <= ema_decay < 1:
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
    generator = _check_generator(generator)
    if generator is not None and generator.device != x0.device:
        raise ValueError(f"generator must be on x0's device {x0.device}, got {generator.device}")
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.Adam(params, lr=lr, foreach=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / steps)))
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, x0.shape[0], (batch_size,), generator=generator, device=x0.device)
        loss = diffusion_loss(model, x0[idx], schedule, labels=None if labels is None else labels[idx],
                              p_uncond=p_uncond, generator=generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ema_update(ema, model, ema_decay)
        losses.append(loss.item())
    return ema.eval(), losses
