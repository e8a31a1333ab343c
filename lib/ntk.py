"""The empirical neural tangent kernel, how much it moves, and the kernel gradient flow.

Chapter 8 (``book/08_generalization.md``, lab ``notebooks/08_generalization.ipynb``).

A network ``f(x; theta)`` with ``k`` outputs and ``P`` parameters has, at each
input, a Jacobian ``J(x) = d f(x) / d theta`` of shape ``(k, P)``. The *empirical
NTK* is the Gram matrix of these Jacobians,

    Theta(x, x') = J(x) J(x')^T        (a k x k block for each pair of inputs).

Under gradient flow on the summed squared loss ``1/2 sum_i ||f(x_i) - y_i||^2``
the training outputs move by ``df/dt = -Theta (f - y)``; when the network is wide
(in the NTK parametrisation) ``Theta`` barely changes during training and this is
a linear ODE with the closed-form solution of :func:`kernel_flow`.

* :func:`jacobian`: the per-example Jacobians ``(n, k, P)`` with ``torch.func``
  (``functional_call`` + ``vmap(jacrev)``).
* :func:`empirical_ntk`: ``Theta`` on one or two sets of inputs, as one
  ``(n1 k, n2 k)`` matrix (``layout="flat"``, row ``i * k + a`` is output ``a`` of
  input ``i``) or as blocks ``(n1, n2, k, k)`` (``layout="blocks"``).
* :func:`ntk_change`: the relative Frobenius distance
  ``||Theta_t - Theta_0||_F / ||Theta_0||_F``.
* :class:`NTKLinear` and :func:`ntk_mlp`: layers in the NTK parametrisation
  (weights ``N(0, 1)``, pre-activations divided by ``sqrt(fan_in)``), whose kernel
  has a finite limit as the width grows.
* :func:`kernel_flow`: ``f_t = y + exp(-Theta t) (f_0 - y)``, the solution of the
  linear ODE above.

References: Jacot, Gabriel & Hongler (2018), "Neural Tangent Kernel: Convergence
and Generalization in Neural Networks"; Lee et al. (2019), "Wide Neural Networks of
Any Depth Evolve as Linear Models Under Gradient Descent"; Chizat, Oyallon & Bach
(2019), "On Lazy Training in Differentiable Programming".
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.func import functional_call, jacrev, vmap

from .curvature import _check_int
from .runtime import _check_device

__all__ = ["jacobian", "empirical_ntk", "ntk_change", "NTKLinear", "ntk_mlp", "kernel_flow"]

_LAYOUTS = ("flat", "blocks")


# ---------------------------------------------------------------- validation

def _check_module(model) -> dict[str, torch.Tensor]:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError(f"model has no trainable parameters ({type(model).__name__})")
    return params


def _check_tensor(name: str, t, min_ndim: int = 0) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not torch.is_floating_point(t):
        raise TypeError(f"{name} must have a real floating dtype, got {t.dtype}")
    if t.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return t


def _check_output(out, n: int) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model must return a torch.Tensor, got {type(out).__name__}")
    if out.ndim not in (1, 2) or out.shape[0] != n:
        raise ValueError(f"model output must have shape (n,) or (n, k) with n = {n} inputs, "
                         f"got {tuple(out.shape)}")
    if not torch.isfinite(out).all():
        raise ValueError("model output is not finite (NaN or inf) on these inputs")
    return out


# ---------------------------------------------------------------- Jacobians and the kernel

def jacobian(model: torch.nn.Module, x: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """Per-example Jacobians of the outputs w.r.t. all trainable parameters.

    ``x``: ``(n, ...)`` inputs, batch first; the model must treat examples
    independently (no batch-norm in training mode). The model's output on ``x``
    must be ``(n,)`` (scalar outputs) or ``(n, k)``.
    Returns ``J`` of shape ``(n, k, P)`` (``k = 1`` for scalar outputs), where
    ``P`` is the number of trainable parameters, concatenated in
    ``named_parameters()`` order and flattened. ``chunk_size`` bounds how many
    examples ``vmap`` processes at once (memory). Chapter 8.
    Reference: Jacot et al. (2018), the Jacobian ``d f_theta / d theta`` behind the NTK.
    """
    params = _check_module(model)
    x = _check_tensor("x", x, min_ndim=1)
    if chunk_size is not None:
        chunk_size = _check_int("chunk_size", chunk_size, 1)
    n = x.shape[0]
    with torch.no_grad():
        out = _check_output(model(x), n)
    k = 1 if out.ndim == 1 else out.shape[1]
    buffers = dict(model.named_buffers())

    def f(p: dict, xi: torch.Tensor) -> torch.Tensor:
        y = functional_call(model, {**p, **buffers}, (xi.unsqueeze(0),))
        return y.reshape(k)

    jac = vmap(jacrev(f), in_dims=(None, 0), chunk_size=chunk_size)(params, x)
    J = torch.cat([jac[name].reshape(n, k, -1) for name in params], dim=2)
    return J.detach()


def empirical_ntk(model: torch.nn.Module, x1: torch.Tensor, x2: torch.Tensor | None = None,
                  layout: str = "flat", chunk_size: int | None = None) -> torch.Tensor:
    """The empirical NTK ``Theta(x, x') = J(x) J(x')^T`` at the model's current parameters.

    ``x1``: ``(n1, ...)``; ``x2``: ``(n2, ...)`` with the same trailing shape, or
    None for ``x2 = x1`` (then the result is symmetric positive semi-definite).
    With ``k`` outputs per input:

    * ``layout="flat"``: shape ``(n1 * k, n2 * k)``, entry ``[i * k + a, j * k + b]``
      is ``<d f_a(x1_i)/d theta, d f_b(x2_j)/d theta>``; for scalar outputs
      (``k = 1``) simply ``(n1, n2)``. This is the matrix of the kernel gradient
      flow ``df/dt = -Theta (f - y)`` with ``f`` flattened example-major.
    * ``layout="blocks"``: shape ``(n1, n2, k, k)``, the same numbers with the
      ``k x k`` block of each pair of inputs kept apart.

    Chapter 8. Reference: Jacot, Gabriel & Hongler (2018), the neural tangent kernel.
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    _check_tensor("x1", x1, min_ndim=1)
    J1 = jacobian(model, x1, chunk_size=chunk_size)
    if x2 is None:
        J2 = J1
    else:
        x2 = _check_tensor("x2", x2, min_ndim=1)
        if x2.shape[1:] != x1.shape[1:]:
            raise ValueError(f"x2 must have the trailing shape of x1 {tuple(x1.shape[1:])}, "
                             f"got {tuple(x2.shape[1:])}")
        J2 = jacobian(model, x2, chunk_size=chunk_size)
    n1, k, _ = J1.shape
    n2 = J2.shape[0]
    if layout == "blocks":
        return torch.einsum("iap,jbp->ijab", J1, J2)
    return J1.reshape(n1 * k, -1) @ J2.reshape(n2 * k, -1).T


def ntk_change(theta_t: torch.Tensor, theta_0: torch.Tensor) -> torch.Tensor:
    """Relative Frobenius distance ``||Theta_t - Theta_0||_F / ||Theta_0||_F`` (0-dim tensor).

    Both kernels of the same shape (any layout). Zero when the kernel has not
    moved; in the lazy (wide-network) regime it shrinks like ``1/sqrt(width)``.
    Chapter 8. Reference: Jacot et al. (2018) (the kernel is constant in the
    infinite-width limit); Chizat, Oyallon & Bach (2019), lazy training.
    """
    theta_t = _check_tensor("theta_t", theta_t)
    theta_0 = _check_tensor("theta_0", theta_0)
    if theta_t.shape != theta_0.shape:
        raise ValueError(f"theta_t and theta_0 must have the same shape, got "
                         f"{tuple(theta_t.shape)} and {tuple(theta_0.shape)}")
    norm0 = theta_0.norm()
    if norm0 == 0:
        raise ValueError("theta_0 must not be the zero kernel (the relative change is undefined)")
    return (theta_t.to(theta_0.dtype) - theta_0).norm() / norm0


# ---------------------------------------------------------------- NTK parametrisation

class NTKLinear(torch.nn.Module):
    """A linear layer in the NTK parametrisation: ``y = W x / sqrt(fan_in) + beta * b``.

    ``W`` ``(out, in)`` and ``b`` ``(out,)`` are drawn from ``N(0, 1)`` (with the
    optional ``generator``); ``beta`` (default 0.1, as in Jacot et al.) scales the
    bias. Because the ``1/sqrt(fan_in)`` sits in the forward pass and not in the
    initialisation, one learning rate suits every width and the NTK tends to a
    fixed limit as the width grows. Input ``(..., in)``, output ``(..., out)``.
    Chapter 8. Reference: Jacot, Gabriel & Hongler (2018), the NTK parametrisation.
    """

    def __init__(self, in_features: int, out_features: int, beta: float = 0.1,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        in_features = _check_int("in_features", in_features, 1)
        out_features = _check_int("out_features", out_features, 1)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        device = _check_device(device)
        gen_device = generator.device if generator is not None else device
        w = torch.randn(out_features, in_features, generator=generator, dtype=dtype, device=gen_device)
        b = torch.randn(out_features, generator=generator, dtype=dtype, device=gen_device)
        self.weight = torch.nn.Parameter(w.to(device) if device is not None else w)
        self.bias = torch.nn.Parameter(b.to(device) if device is not None else b)
        self.in_features, self.out_features, self.beta = in_features, out_features, float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T / math.sqrt(self.in_features) + self.beta * self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, beta={self.beta}"


def ntk_mlp(sizes: Sequence[int], activation: str = "relu", beta: float = 0.1,
            generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
            device: torch.device | str | None = None) -> torch.nn.Sequential:
    """A multilayer perceptron of :class:`NTKLinear` layers, e.g. ``sizes=(64, 512, 10)``.

    ``sizes``: input, hidden and output widths (at least two entries); the
    ``activation`` (``"relu"`` or ``"tanh"``) follows every layer but the last.
    Maps ``(n, sizes[0])`` to ``(n, sizes[-1])``. Chapter 8.
    Reference: Jacot, Gabriel & Hongler (2018), the NTK parametrisation.
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a sequence of ints, got {type(sizes).__name__}")
    if len(sizes) < 2:
        raise ValueError(f"sizes must have at least 2 entries (input and output), got {list(sizes)}")
    sizes = [_check_int("sizes", s, 1) for s in sizes]
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
    if activation not in acts:
        raise ValueError(f"activation must be one of {sorted(acts)}, got {activation!r}")
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(NTKLinear(a, b, beta=beta, generator=generator, dtype=dtype, device=device))
        if i < len(sizes) - 2:
            layers.append(acts[activation]())
    return torch.nn.Sequential(*layers)


# ---------------------------------------------------------------- kernel gradient flow

def kernel_flow(theta: torch.Tensor, f0: torch.Tensor, y: torch.Tensor,
                t: float | torch.Tensor) -> torch.Tensor:
    """Solve ``df/dt = -Theta (f - y)`` exactly: ``f_t = y + exp(-Theta t) (f_0 - y)``.

    ``theta``: symmetric positive semi-definite ``(N, N)`` (a flat-layout NTK);
    ``f0``, ``y``: ``(N,)`` (outputs flattened example-major, as in
    :func:`empirical_ntk`). ``t``: a time ``>= 0`` (returns ``(N,)``) or a 1-D
    tensor of times (returns ``(len(t), N)``). Gradient descent with step ``eta``
    on ``1/2 sum ||f - y||^2`` with the kernel frozen is this flow at ``t = eta *
    steps`` up to ``O(eta)``. Uses the eigendecomposition of ``theta``: each
    eigen-direction of the residual decays like ``exp(-lambda t)``.
    Chapter 8. Reference: Jacot, Gabriel & Hongler (2018), least-squares regression
    in the infinite-width limit.
    """
    theta = _check_tensor("theta", theta)
    if theta.ndim != 2 or theta.shape[0] != theta.shape[1]:
        raise ValueError(f"theta must be a square (N, N) matrix, got shape {tuple(theta.shape)}")
    N = theta.shape[0]
    f0 = _check_tensor("f0", f0)
    y = _check_tensor("y", y)
    for name, v in (("f0", f0), ("y", y)):
        if v.shape != (N,):
            raise ValueError(f"{name} must have shape ({N},) to match theta, got {tuple(v.shape)}")
    scale = theta.abs().max().clamp_min(torch.finfo(theta.dtype).tiny)
    if (theta - theta.T).abs().max() > 1e-4 * scale:
        raise ValueError("theta must be symmetric (an NTK on one set of inputs)")
    if isinstance(t, torch.Tensor):
        times = _check_tensor("t", t.to(theta.dtype))
        if times.ndim > 1:
            raise ValueError(f"t must be a number or a 1-D tensor of times, got shape {tuple(times.shape)}")
    elif isinstance(t, (int, float)) and not isinstance(t, bool):
        if not math.isfinite(t):
            raise ValueError(f"t must be finite, got {t}")
        times = torch.tensor(float(t), dtype=theta.dtype, device=theta.device)
    else:
        raise TypeError(f"t must be a finite number or a tensor of times, got {type(t).__name__} ({t!r})")
    if (times < 0).any():
        raise ValueError("t must be >= 0 (the flow is solved forward in time)")
    lam, U = torch.linalg.eigh(0.5 * (theta + theta.T))
    if lam.min() < -1e-6 * lam.abs().max().clamp_min(1.0):
        raise ValueError(f"theta must be positive semi-definite, smallest eigenvalue {lam.min().item():.3g}")
    lam = lam.clamp_min(0)
    r0 = U.T @ (f0.to(theta.dtype) - y.to(theta.dtype))             # residual in the eigenbasis
    decay = torch.exp(-times.to(theta.device).reshape(-1, 1) * lam)  # (T, N)
    f_t = y.to(theta.dtype) + (decay * r0) @ U.T
    return f_t[0] if times.ndim == 0 else f_t
