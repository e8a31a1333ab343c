"""Scores of densities: analytic mixture scores, score matching losses and Langevin samplers.

Chapter 22 (``book/22_score_matching.md``, lab ``notebooks/22_score_matching.ipynb``).

The *score* of a density ``p`` on ``R^d`` is ``s(x) = grad_x log p(x)``: a vector
field that points uphill in probability and does not depend on the normalising
constant of ``p``. Conventions: points ``x`` have shape ``(..., d)`` (a batch of
``d``-vectors); a score function is a callable returning a tensor shaped like
its input; a *noise-conditional* score ``s(x, sigma)`` takes ``x`` of shape
``(n, ...)`` and the noise levels ``sigma`` of shape ``(n,)``, one per sample,
and estimates the score of ``p_sigma = p * N(0, sigma^2 I)``.

* :func:`gmm_log_prob` and :func:`gmm_score`: the log-density and the score of an
  isotropic Gaussian mixture, optionally convolved with ``N(0, sigma^2 I)``, in
  closed form: the references every learned score is checked against.
* :func:`ism_loss`: Hyvarinen's implicit score matching objective
  ``E[ |s|^2 / 2 + tr(ds/dx) ]``, the Fisher divergence to the data up to a
  constant, by integration by parts (exact trace: one backward pass per dimension).
* :func:`dsm_loss`: denoising score matching with a noise level drawn per sample
  and the ``sigma^2`` weighting, ``E |sigma s(x + sigma z, sigma) + z|^2 / 2``,
  optionally with antithetic noise pairs ``(z, -z)`` to tame its variance at small ``sigma``.
* :class:`ScoreMLP`: a small noise-conditional score network for 2-D toys.
* :func:`tweedie_denoise`: ``E[x | x + sigma z] = x_noisy + sigma^2 s_sigma(x_noisy)``.
* :func:`langevin` (unadjusted Langevin, ``x + (eps/2) s(x) + sqrt(eps) z``) and
  :func:`annealed_langevin` (the same through decreasing noise levels with steps
  ``eps * sigma_i^2 / sigma_L^2``), optionally ending with a Tweedie denoising step.

References: Hyvarinen (2005), "Estimation of Non-Normalized Statistical Models by
Score Matching" (JMLR 6); Vincent (2011), "A Connection Between Score Matching and
Denoising Autoencoders" (Neural Computation 23); Song & Ermon (2019), "Generative
Modeling by Estimating Gradients of the Data Distribution" (NeurIPS); Song,
Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), "Score-Based Generative
Modeling through Stochastic Differential Equations" (ICLR); Efron (2011),
"Tweedie's Formula and Selection Bias" (JASA); Roberts & Tweedie (1996),
"Exponential Convergence of Langevin Distributions and Their Discrete
Approximations" (Bernoulli).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .calculus import _check_finite
from .curvature import _check_callable, _check_generator, _check_int, _check_positive, _check_real
from .estimators import _check_tensor as _check_float_tensor

__all__ = ["gmm_log_prob", "gmm_score", "ism_loss", "dsm_loss", "ScoreMLP", "tweedie_denoise",
           "langevin", "annealed_langevin"]

Score = Callable[[torch.Tensor], torch.Tensor]                       # x -> s(x), shaped like x
NoiseScore = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]    # (x (n, ...), sigma (n,)) -> like x
_MAX_WIDTH = 2**16   # a typo beyond this would allocate gigabytes before failing
_MAX_DEPTH = 64


# ---------------------------------------------------------------- validation

def _check_tensor(name: str, t, min_dim: int = 1) -> torch.Tensor:
    """A finite, non-empty, real floating tensor with at least ``min_dim`` dimensions (chapter 14's check)."""
    return _check_float_tensor(t, name, min_dim)


def _work(t: torch.Tensor) -> torch.Tensor:
    # float16/bfloat16 are computed in float32 (exp and logsumexp underflow early) and cast back
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _as_float(name: str, value, like: torch.Tensor, lists: bool = True) -> torch.Tensor:
    """A number, a list of numbers (if ``lists``) or a real tensor as a tensor of ``like``'s dtype and device."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
        _check_finite(name, value.detach())
        return value.detach().to(dtype=like.dtype, device=like.device)
    if isinstance(value, (list, tuple)) and lists:
        return torch.tensor([_check_real(name, v) for v in value], dtype=like.dtype, device=like.device)
    return torch.tensor(_check_real(name, value), dtype=like.dtype, device=like.device)


def _mixture(x: torch.Tensor, means, stds, weights, sigma):
    """Checked mixture parameters in x's working dtype: means (k, d), variances (k,), log weights (k,)."""
    x = _work(_check_tensor("x", x))
    m = _check_tensor("means", means, min_dim=2)
    if m.ndim != 2:
        raise ValueError(f"means must have shape (k, d), got {tuple(m.shape)}")
    k, d = m.shape
    if x.shape[-1] != d:
        raise ValueError(f"x must have shape (..., d) with d={d} (the columns of means), got {tuple(x.shape)}")
    m = m.detach().to(dtype=x.dtype, device=x.device)
    s = _as_float("stds", stds, x).reshape(-1)
    if s.numel() == 1:
        s = s.expand(k)
    if s.numel() != k:
        raise ValueError(f"stds must be a number or have k={k} entries, got {s.numel()}")
    if not bool((s > 0).all()):
        raise ValueError(f"stds must be positive, got {s.tolist()}")
    if weights is None:
        log_w = torch.full((k,), -math.log(k), dtype=x.dtype, device=x.device)
    else:
        w = _as_float("weights", weights, x).reshape(-1)
        if w.numel() != k:
            raise ValueError(f"weights must have k={k} entries, got {w.numel()}")
        if bool((w < 0).any()) or not bool(w.sum() > 0):
            raise ValueError(f"weights must be non-negative with a positive sum, got {w.tolist()}")
        log_w = torch.log(w / w.sum())
    sigma = _check_real("sigma", sigma)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 (the noise level), got {sigma}")
    # convolving N(mu, s^2 I) with N(0, sigma^2 I) gives N(mu, (s^2 + sigma^2) I); a tensor: inf, not OverflowError
    var = s**2 + s.new_tensor(sigma) ** 2
    if not bool(torch.isfinite(var).all()):
        raise ValueError(f"stds and sigma overflow {x.dtype} when squared: stds={s.tolist()}, sigma={sigma}")
    if not bool((var >= torch.finfo(x.dtype).tiny).all()):
        raise ValueError(f"stds and sigma underflow {x.dtype} when squared (variance 0): stds={s.tolist()}, "
                         f"sigma={sigma}")
    return x, m, var, log_w


def _component_logits(x, m, var, log_w):
    """log w_k + log N(x; mu_k, var_k I) for every component: shape (..., k)."""
    d = m.shape[1]
    sq = ((x.unsqueeze(-2) - m) ** 2).sum(-1)  # (..., k)
    if not bool(torch.isfinite(sq).all()):
        raise ValueError(f"x is too far from the means: squared distances overflow {x.dtype}")
    return log_w - sq / (2 * var) - 0.5 * d * torch.log(2 * math.pi * var)


def _check_output(name: str, out, shape, dtype=None) -> torch.Tensor:
    """What a user's score function returned: a finite tensor of the expected shape."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name} must return a tensor shaped like its input {tuple(shape)}, "
                         f"got {tuple(out.shape)}")
    if not torch.is_floating_point(out):
        raise TypeError(f"{name} must return a real floating tensor, got {out.dtype}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} returned NaN or inf entries")
    return out if dtype is None else out.to(dtype)


def _check_gen_device(generator, x: torch.Tensor):
    generator = _check_generator(generator)
    if generator is not None and generator.device.type != x.device.type:
        raise ValueError(f"generator must be on x's device type ({x.device.type}), got one on "
                         f"{generator.device.type}")
    return generator


def _check_sigmas(sigmas, like: torch.Tensor, decreasing: bool = False) -> torch.Tensor:
    """Noise levels: a positive number or a 1-D tensor/list of positive numbers, as like's dtype."""
    sig = _as_float("sigmas", sigmas, like).reshape(-1)
    if sig.numel() == 0:
        raise ValueError("sigmas must hold at least one noise level, got none")
    if not bool((sig > 0).all()) or not bool(torch.isfinite(sig).all()):
        raise ValueError(f"sigmas must be positive and finite in {like.dtype}, got {sig.tolist()[:8]}")
    if decreasing and sig.numel() > 1 and not bool((sig[1:] < sig[:-1]).all()):
        raise ValueError(f"sigmas must be strictly decreasing (annealing from large to small noise), "
                         f"got {sig.tolist()[:8]}")
    return sig


# ---------------------------------------------------------------- analytic mixture scores

def gmm_log_prob(x: torch.Tensor, means: torch.Tensor, stds, weights=None, sigma: float = 0.0) -> torch.Tensor:
    """Log-density of an isotropic Gaussian mixture, optionally convolved with ``N(0, sigma^2 I)``.

    ``p_sigma(x) = sum_k w_k N(x; mu_k, (s_k^2 + sigma^2) I)``: adding independent
    Gaussian noise of standard deviation ``sigma`` to a sample of the mixture widens
    every component and keeps the weights.

    Args:
        x: points, shape ``(..., d)``.
        means: component means ``mu_k``, shape ``(k, d)``.
        stds: one standard deviation ``s`` for all components, or ``k`` of them (number or tensor).
        weights: ``k`` non-negative weights (normalised here); uniform if None.
        sigma: noise level ``>= 0``.

    Returns:
        ``log p_sigma(x)``, shape ``x.shape[:-1]``, in ``x``'s dtype.
    Reference: the Gaussian convolution identity; the two-mode toy of Song & Ermon (2019).
    """
    xw, m, var, log_w = _mixture(x, means, stds, weights, sigma)
    out = torch.logsumexp(_component_logits(xw, m, var, log_w), dim=-1).to(x.dtype)
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"log p overflows {x.dtype}: x too far from the means for stds this small")
    return out


def gmm_score(x: torch.Tensor, means: torch.Tensor, stds, weights=None, sigma: float = 0.0) -> torch.Tensor:
    """The score ``grad_x log p_sigma(x)`` of an isotropic Gaussian mixture, in closed form.

    ``s(x) = sum_k r_k(x) (mu_k - x) / (s_k^2 + sigma^2)``, with the posterior
    responsibilities ``r_k(x) = softmax_k(log w_k + log N(x; mu_k, (s_k^2 + sigma^2) I))``:
    each component pulls ``x`` towards its mean, weighted by how likely it is to
    have produced ``x``. Far from all means the weights of the components enter
    only through ``r_k``, which is why Langevin dynamics cannot tell them apart
    between well-separated modes. Arguments as in :func:`gmm_log_prob`.

    Returns:
        the score, shaped like ``x``.
    Reference: Song & Ermon (2019), the two-mode mixture whose weights Langevin misses.
    """
    xw, m, var, log_w = _mixture(x, means, stds, weights, sigma)
    r = torch.softmax(_component_logits(xw, m, var, log_w), dim=-1)          # (..., k)
    pull = (m - xw.unsqueeze(-2)) / var.unsqueeze(-1)                        # (..., k, d)
    out = (r.unsqueeze(-1) * pull).sum(-2).to(x.dtype)
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"the score overflows {x.dtype}: x too far from the means for stds this small")
    return out


# ---------------------------------------------------------------- score matching losses

def ism_loss(score: Score, x: torch.Tensor) -> torch.Tensor:
    """Hyvarinen's implicit score matching loss ``mean_i [ |s(x_i)|^2 / 2 + tr(ds/dx)(x_i) ]``.

    Integration by parts turns the Fisher divergence ``E_p |s - grad log p|^2 / 2``
    into this expectation plus a constant that does not depend on ``s``: the data
    score never appears. The trace of the Jacobian is computed exactly, one
    backward pass per dimension (fine for the small ``d`` of the toys; sliced score
    matching estimates it with random projections when ``d`` is large). The result
    keeps its graph, so it can be minimised over the parameters of ``score``.

    Args:
        score: ``s(x)``, ``(n, d) -> (n, d)``, differentiable in ``x`` (an output
            without a graph counts as constant in ``x``: zero trace).
        x: data samples, shape ``(n, d)``, float32 or float64.

    Returns:
        a scalar tensor.
    Reference: Hyvarinen (2005), Theorem 1 (score matching by integration by parts).
    """
    _check_callable("score", score)
    x = _check_tensor("x", x, min_dim=2)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, d), got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        s = _check_output("score", score(x), x.shape, x.dtype)
        trace = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for j in range(x.shape[1] if s.requires_grad else 0):  # no graph: s does not depend on x
            (g,) = torch.autograd.grad(s[:, j].sum(), x, create_graph=True, allow_unused=True)
            if g is not None:
                trace = trace + g[:, j]
        return (0.5 * (s**2).sum(-1) + trace).mean()


def dsm_loss(score_model: NoiseScore, x: torch.Tensor, sigmas, generator: torch.Generator | None = None,
             antithetic: bool = False) -> torch.Tensor:
    """Noise-conditional denoising score matching with the ``sigma^2`` weighting.

    For each sample a noise level ``sigma`` is drawn uniformly from ``sigmas`` and
    a noise ``z ~ N(0, I)``; with ``x~ = x + sigma z`` the target
    ``grad log q(x~ | x) = -z / sigma`` gives

        ``loss = mean_i |sigma_i s(x~_i, sigma_i) + z_i|^2 / 2``,

    which is ``sigma^2/2 E|s - grad log q(x~|x)|^2``: equal, up to a constant that does
    not depend on ``s``, to the explicit score matching loss against the score of
    the noisy data ``p_sigma`` (Vincent 2011). Its minimum at level ``sigma`` is
    ``(d - sigma^2 E|grad log p_sigma|^2)/2``, not zero.

    At small ``sigma`` the term ``sigma s . z``, odd in ``z``, dominates the
    gradient's noise (its signal-to-noise ratio falls like ``sigma``). With
    ``antithetic`` every sample is used twice, with ``z`` and ``-z`` (same ``sigma``):
    the loss keeps its expectation, the odd terms cancel, and the model is called
    on ``2n`` points.

    Args:
        score_model: ``s(x~, sigma)`` with ``x~`` of shape ``(n, ...)`` and ``sigma`` of
            shape ``(n,)``, returning a tensor shaped like ``x~``.
        x: clean data, shape ``(n, ...)``, float32 or float64.
        sigmas: the noise levels: a positive number or a 1-D tensor/list of them.
        generator: for the noise levels and ``z`` (on ``x``'s device type).
        antithetic: pair each noise ``z`` with ``-z`` (antithetic variates).

    Returns:
        a scalar tensor with the graph of ``score_model`` (call ``backward`` on it).
    Reference: Vincent (2011), the equivalence of denoising and explicit score
    matching; Song & Ermon (2019), the noise-conditional objective with lambda(sigma) = sigma^2.
    """
    _check_callable("score_model", score_model)
    x = _check_tensor("x", x, min_dim=2)
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    sig = _check_sigmas(sigmas, x)
    generator = _check_gen_device(generator, x)
    if not isinstance(antithetic, bool):
        raise TypeError(f"antithetic must be a bool, got {type(antithetic).__name__}")
    n = x.shape[0]
    idx = torch.randint(sig.numel(), (n,), generator=generator, device=x.device)
    sigma = sig[idx]
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    x = x.detach()
    if antithetic:
        x, sigma, z, n = torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([z, -z]), 2 * n
    sigma_b = sigma.reshape((n,) + (1,) * (x.ndim - 1))
    x_noisy = x + sigma_b * z
    s = _check_output("score_model", score_model(x_noisy, sigma), x.shape, x.dtype)
    return 0.5 * ((sigma_b * s + z) ** 2).reshape(n, -1).sum(-1).mean()


class ScoreMLP(torch.nn.Module):
    """A noise-conditional score network ``s_theta(x, sigma)`` for low-dimensional data.

    The input ``x / sqrt(data_std^2 + sigma^2)`` (of unit scale at every noise
    level) and ``log sigma`` go through ``depth`` hidden layers of ``width`` SiLU
    units; the output is divided by ``sigma``, so that the network only has to learn
    ``sigma * score``, of order one at every level (Song & Ermon 2020 suggest this
    ``1/sigma`` parametrisation; the input scaling is Karras et al.'s 2022 ``c_in``).

    ``forward(x, sigma)``: ``x`` of shape ``(n, d)``, ``sigma`` a positive number or a
    tensor of shape ``(n,)``; returns ``(n, d)``. Parameters are drawn from torch's
    global generator (seed it, e.g. with ``lib.seed``), in float32 on the CPU; move
    the module with ``.to(device)``.
    Reference: Song & Ermon (2019), noise-conditional score networks.
    """

    def __init__(self, d: int = 2, width: int = 128, depth: int = 3, data_std: float = 1.0):
        super().__init__()
        self.d = _check_int("d", d, 1, _MAX_WIDTH)
        self.width = _check_int("width", width, 1, _MAX_WIDTH)
        self.depth = _check_int("depth", depth, 1, _MAX_DEPTH)
        self.data_std = _check_positive("data_std", data_std)
        sizes = [self.d + 1] + [self.width] * self.depth
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(a, b), torch.nn.SiLU()]
        self.net = torch.nn.Sequential(*layers, torch.nn.Linear(self.width, self.d))

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        x = _check_tensor("x", x, min_dim=2)
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"x must have shape (n, {self.d}), got {tuple(x.shape)}")
        param = next(self.parameters())
        if x.dtype != param.dtype or x.device != param.device:
            raise ValueError(f"x must have the module's dtype and device ({param.dtype}, {param.device}), "
                             f"got {x.dtype}, {x.device}")
        sigma = _as_float("sigma", sigma, x, lists=False).reshape(-1)
        if sigma.numel() == 1:
            sigma = sigma.expand(x.shape[0])
        if sigma.numel() != x.shape[0]:
            raise ValueError(f"sigma must be a number or have n={x.shape[0]} entries, got {sigma.numel()}")
        if not bool((sigma > 0).all()):
            raise ValueError(f"sigma must be positive, got min {sigma.min().item()}")
        c_in = torch.rsqrt(self.data_std**2 + sigma**2)[:, None]
        h = torch.cat([x * c_in, torch.log(sigma)[:, None]], dim=1)
        return self.net(h) / sigma[:, None]

    def extra_repr(self) -> str:
        return f"d={self.d}, width={self.width}, depth={self.depth}, data_std={self.data_std}"


# ---------------------------------------------------------------- Tweedie and Langevin

def tweedie_denoise(x_noisy: torch.Tensor, score: torch.Tensor, sigma) -> torch.Tensor:
    """Tweedie's formula: the posterior mean ``E[x | x + sigma z = x_noisy] = x_noisy + sigma^2 s``.

    ``score`` holds ``grad log p_sigma`` at ``x_noisy`` (the score of the *noisy*
    density), so a score model is also an optimal (least-squares) denoiser.

    Args:
        x_noisy: ``(n, ...)`` noisy points.
        score: the noisy score at ``x_noisy``, same shape.
        sigma: the noise level: a positive number, or a tensor of shape ``(n,)``.

    Returns:
        the denoised points, shaped like ``x_noisy``.
    Reference: Efron (2011), Tweedie's formula (credited there to Robbins 1956).
    """
    x_noisy = _check_tensor("x_noisy", x_noisy)
    score = _check_tensor("score", score)
    if score.shape != x_noisy.shape:
        raise ValueError(f"score must be shaped like x_noisy {tuple(x_noisy.shape)}, got {tuple(score.shape)}")
    sig = _as_float("sigma", sigma, x_noisy, lists=False).reshape(-1)
    if sig.numel() not in (1, x_noisy.shape[0]):
        raise ValueError(f"sigma must be a number or have n={x_noisy.shape[0]} entries, got {sig.numel()}")
    if not bool((sig > 0).all()):
        raise ValueError(f"sigma must be positive, got {sig.tolist()[:8]}")
    sig = sig.reshape((-1,) + (1,) * (x_noisy.ndim - 1)) if sig.numel() > 1 else sig.reshape(())
    out = x_noisy + sig**2 * score.to(x_noisy.dtype)
    if not bool(torch.isfinite(out).all()):
        raise ValueError("x_noisy + sigma^2 * score overflows its dtype (sigma or score too large)")
    return out


def _langevin_steps(score_at, x, step, n_steps, generator, path):
    """``n_steps`` unadjusted Langevin steps ``x + (step/2) s(x) + sqrt(step) z``; appends to ``path``."""
    for _ in range(n_steps):
        s = score_at(x)
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = (x + 0.5 * step * s + math.sqrt(step) * z).detach()
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"Langevin diverged (non-finite iterate) with step {step:g}: reduce the step size")
        if path is not None:
            path.append(x)
    return x


def _check_x0(x0) -> torch.Tensor:
    x0 = _check_tensor("x0", x0)
    if x0.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x0 must be float32 or float64, got {x0.dtype}")
    return x0.detach()


def langevin(score: Score, x0: torch.Tensor, step_size: float, n_steps: int,
             generator: torch.Generator | None = None, return_path: bool = False) -> torch.Tensor:
    """Unadjusted Langevin dynamics ``x_{t+1} = x_t + (eps/2) s(x_t) + sqrt(eps) z_t``.

    The Euler-Maruyama discretisation of ``dx = grad log p(x) dt / 2 + dW``, whose
    stationary law is ``p``. With a finite step the chain is biased (for
    ``N(mu, s^2 I)`` its stationary variance is ``s^2 / (1 - eps / (4 s^2))``) and
    it needs a time of order ``exp(barrier)`` to cross between separated modes.

    Args:
        score: ``s(x)`` returning a tensor shaped like ``x``.
        x0: starting points, shape ``(n, ...)`` (every row is an independent chain).
        step_size: ``eps > 0``.
        n_steps: number of steps ``>= 0``.
        generator: for the noise ``z`` (on ``x0``'s device type).
        return_path: if True, return all iterates, shape ``(n_steps + 1, *x0.shape)``.

    Returns:
        the last iterate, shaped like ``x0`` (or the path).
    Reference: Roberts & Tweedie (1996), the unadjusted Langevin algorithm; Song & Ermon (2019), section 2.
    """
    _check_callable("score", score)
    x = _check_x0(x0)
    step = _check_positive("step_size", step_size)
    n_steps = _check_int("n_steps", n_steps, 0)
    generator = _check_gen_device(generator, x)
    if not isinstance(return_path, bool):
        raise TypeError(f"return_path must be a bool, got {type(return_path).__name__}")
    path = [x] if return_path else None
    x = _langevin_steps(lambda y: _check_output("score", score(y), y.shape, y.dtype), x, step, n_steps,
                        generator, path)
    return torch.stack(path) if return_path else x


def annealed_langevin(score: NoiseScore, x0: torch.Tensor, sigmas, n_steps_each: int, step_lr: float,
                      generator: torch.Generator | None = None, denoise: bool = False,
                      return_path: bool = False) -> torch.Tensor:
    """Annealed Langevin dynamics: Langevin at each noise level, from the largest to the smallest.

    At level ``sigma_i`` run ``n_steps_each`` steps of :func:`langevin` on the score
    ``s(x, sigma_i)`` with step ``alpha_i = step_lr * sigma_i^2 / sigma_L^2``
    (``sigma_L`` the smallest level), each level starting where the previous ended.
    At large noise the modes of ``p_sigma`` merge and the chain mixes between them,
    so the mass it sends to each mode follows the mixture weights; the small levels
    then only sharpen each mode. With ``denoise`` a final Tweedie step
    ``x + sigma_L^2 s(x, sigma_L)`` removes the remaining noise of level ``sigma_L``.

    Args:
        score: noise-conditional ``s(x, sigma)``, ``x`` of shape ``(n, ...)``, ``sigma`` of shape ``(n,)``.
        x0: starting points, shape ``(n, ...)``.
        sigmas: strictly decreasing positive noise levels (1-D tensor or list).
        n_steps_each: steps per level, ``>= 1``.
        step_lr: ``eps``, the step at the smallest level.
        generator: for the noise (on ``x0``'s device type).
        denoise: end with the Tweedie denoising step.
        return_path: if True, return every iterate, shape ``(L * n_steps_each + 1 [+ 1], *x0.shape)``.

    Returns:
        the samples, shaped like ``x0`` (or the path).
    Reference: Song & Ermon (2019), Algorithm 1; the final denoising step is from
    Jolicoeur-Martineau et al. (2021), "Adversarial Score Matching and Improved Sampling".
    """
    _check_callable("score", score)
    x = _check_x0(x0)
    sig = _check_sigmas(sigmas, x, decreasing=True)
    n_steps_each = _check_int("n_steps_each", n_steps_each, 1)
    step_lr = _check_positive("step_lr", step_lr)
    generator = _check_gen_device(generator, x)
    for name, flag in (("denoise", denoise), ("return_path", return_path)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    n = x.shape[0]
    path = [x] if return_path else None
    sigma_last = sig[-1].item()

    def score_at(sigma_i):
        level = torch.full((n,), sigma_i, dtype=x.dtype, device=x.device)
        return lambda y: _check_output("score", score(y, level), y.shape, y.dtype)

    for sigma_i in sig.tolist():
        alpha = step_lr * (sigma_i / sigma_last) ** 2
        if not math.isfinite(alpha):
            raise ValueError(f"step_lr * (sigma_i / sigma_L)^2 overflows at sigma_i={sigma_i:g}")
        x = _langevin_steps(score_at(sigma_i), x, alpha, n_steps_each, generator, path)
    if denoise:
        x = tweedie_denoise(x, score_at(sigma_last)(x).detach(), sigma_last)
        if path is not None:
            path.append(x)
    return torch.stack(path) if return_path else x
