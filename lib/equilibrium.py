"""Energy-based learning: equilibrium propagation (EP) and predictive coding.

Chapter 17 (``book/17_equilibrium.md``, lab ``notebooks/17_equilibrium.ipynb``).

A layered Hopfield-style network, input ``x = s_0`` clamped, sigmoid states
``s_1..s_L`` (``s_L`` the output), settles where
``s_k = sigma(W_k s_{k-1} + b_k + B_{k+1} s_{k+1})``. With tied feedback
``B_{k+1} = W_{k+1}^T`` these are the stationary points of the energy

    E(s) = sum_k sum_i G(s_{k,i}) - sum_k s_k^T W_k s_{k-1} - sum_k b_k^T s_k,
    G(u) = u log u + (1 - u) log(1 - u)       (G' = sigma^{-1}),

and a sweep of layer updates is block-coordinate descent on ``E``. EP adds
``beta C`` with ``C = ||s_L - y||^2 / 2``: the free (``beta = 0``) and nudged
phases settle at two fixed points whose difference, through local products of
activities, estimates the gradient of the loss ``C(s_L^0)``.

* :class:`EnergyNetwork`: ``energy``, ``relax`` (free and nudged phases),
  ``ep_gradient`` (one-sided, error O(beta), and centred +beta/-beta, error
  O(beta^2); generalised EP for separate feedback weights) and the exact
  ``reference_gradient`` (``lib.implicit.root_solve`` at the free fixed point).
* :func:`random_network` (tied, or feedback rotated away from ``W^T``),
  :func:`gradient_alignment` (cosine, relative error) and
  :func:`predictive_coding_gradient` (EP on a predictive-coding energy).

References: Scellier & Bengio (2017), "Equilibrium Propagation: Bridging the
Gap between Energy-Based Models and Backpropagation"; Laborieux et al. (2021),
"Scaling Equilibrium Propagation to Deep ConvNets by Drastically Reducing Its
Gradient Estimator Bias"; Laborieux & Zenke (2024), "Improving equilibrium
propagation without weight symmetry through Jacobian homeostasis"; Hopfield
(1984), "Neurons with graded response have collective computational properties
like those of two-state neurons"; Whittington & Bogacz (2017), "An Approximation
of the Error Backpropagation Algorithm in a Predictive Coding Network with
Local Hebbian Synaptic Plasticity".
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .curvature import _check_generator, _check_int, _check_real
from .implicit import _check_tensor, _check_tol, root_solve
from .runtime import _check_device

__all__ = ["EnergyNetwork", "random_network", "gradient_alignment", "predictive_coding_gradient"]

States = list  # L tensors, s[k] of shape (batch, n_{k+1})
_MAX_BETA = 4.0  # the output update s_L <- sigma(pre + beta (y - s_L)) contracts for |beta| < 4


# ---------------------------------------------------------------- validation

def _check_list(name: str, tensors, length: int | None = None, like: torch.Tensor | None = None
                ) -> list[torch.Tensor]:
    """Finite float tensors (not detached: energy() is differentiable in s), of ``like``'s dtype and device."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError(f"{name} must be a non-empty list of tensors, got {type(tensors).__name__}")
    if length is not None and len(tensors) != length:
        raise ValueError(f"{name} must hold {length} tensors, got {len(tensors)}")
    for i, t in enumerate(tensors):
        _check_tensor(f"{name}[{i}]", t)
        if like is not None:
            _check_like(f"{name}[{i}]", t, like)
    return list(tensors)


def _check_like(name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if t.dtype != like.dtype or t.device != like.device:
        raise TypeError(f"{name} must have the network's dtype and device ({like.dtype}, {like.device}), "
                        f"got {t.dtype}, {t.device}")
    return t


def _check_beta(beta, low: float = -_MAX_BETA) -> float:
    beta = _check_real("beta", beta)
    if not low < beta < _MAX_BETA:
        what = "in (0, 4)" if low == 0 else "in (-4, 4)"
        raise ValueError(f"beta must be {what} (the nudged output update contracts only for |beta| < 4), "
                         f"got {beta}")
    return beta


# ---------------------------------------------------------------- the dynamics

def _pre(k: int, x, s, W, b, B) -> torch.Tensor:
    """Input of layer k (0-based): W_k s_{k-1} + b_k + B_{k+1} s_{k+1}; B = None: tied (W_{k+1}^T)."""
    below = x if k == 0 else s[k - 1]
    pre = below @ W[k].T + b[k]
    if k + 1 < len(W):
        pre = pre + (s[k + 1] @ W[k + 1] if B is None else s[k + 1] @ B[k].T)
    return pre


def _relax(x, W, b, B, y, beta: float, s: States, tol: float, max_iter: int) -> States:
    """Sweeps k = 1..L of s_k <- sigma(pre_k) (output: + beta (y - s_L)) until no entry moves more than tol."""
    s = [t.clone() for t in s]
    L = len(W)
    for _ in range(max_iter):
        change = 0.0
        for k in range(L):
            pre = _pre(k, x, s, W, b, B)
            if k == L - 1 and beta != 0.0:
                pre = pre + beta * (y - s[k])
            new = torch.sigmoid(pre)
            step = float((new - s[k]).abs().max())  # NaN if any entry is NaN (max() would skip it)
            if not math.isfinite(step):
                raise ValueError("the relaxation produced a non-finite state (weights too large?)")
            change = max(change, step)
            s[k] = new
        if change <= tol:
            return s
    if tol == 0:  # exactly max_iter sweeps were asked for
        return s
    raise ValueError(f"the relaxation did not reach a fixed point within max_iter={max_iter} sweeps (last "
                     f"change {change:.3g} > tol={tol:.3g}); raise max_iter or tol, or use smaller weights "
                     "or a smaller |beta|")


def _batched_dense_solve(matvec, v: torch.Tensor) -> torch.Tensor:
    """Solve A^T u = v where A is block-diagonal over the batch (rows of v): n products build every block."""
    batch, n = v.shape
    cols = []
    for j in range(n):
        e = torch.zeros_like(v)
        e[:, j] = 1
        cols.append(matvec(e))  # row b: column j of the b-th block of A^T
    A_T = torch.stack(cols, dim=2)  # (batch, n, n)
    try:
        return torch.linalg.solve(A_T, v)
    except RuntimeError as err:  # singular Jacobian
        raise ValueError(f"the fixed point is degenerate (singular Jacobian); no implicit gradient ({err})") \
            from None


# ---------------------------------------------------------------- the network

class EnergyNetwork:
    """A layered network of sigmoid units that relaxes to a fixed point; trained by EP or backprop.

    Layer sizes ``(n_0, ..., n_L)``: ``weights[k]`` (``W_{k+1}``) has shape
    ``(n_{k+1}, n_k)``, ``biases[k]`` shape ``(n_{k+1},)``. ``feedback``: None
    for tied weights (layer ``k+1`` hears layer ``k+2`` through
    ``W_{k+2}^T``; an energy exists), or ``L - 1`` tensors ``feedback[k]`` of
    shape ``(n_{k+1}, n_{k+2})`` (asymmetric; no energy). One float dtype and
    device; tensors are stored as given. ``x``: ``(batch, n_0)``; ``y``:
    ``(batch, n_L)``; a state is a list of ``L`` tensors ``(batch, n_k)``.
    Reference: Scellier & Bengio (2017), section 2; Laborieux & Zenke (2024).
    """

    def __init__(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                 feedback: Sequence[torch.Tensor] | None = None):
        W = _check_list("weights", weights)
        W = _check_list("weights", W, like=W[0])
        b = _check_list("biases", biases, len(W), like=W[0])
        sizes = [W[0].shape[-1]]
        for i, w in enumerate(W):
            if w.ndim != 2 or w.shape[1] != sizes[-1]:
                raise ValueError(f"weights[{i}] must be a matrix of shape (n_{i + 1}, {sizes[-1]}), got "
                                 f"{tuple(w.shape)}")
            sizes.append(w.shape[0])
            if b[i].shape != (w.shape[0],):
                raise ValueError(f"biases[{i}] must have shape ({w.shape[0]},), got {tuple(b[i].shape)}")
        B = None
        if feedback is not None:
            if len(W) == 1:
                raise ValueError("feedback must be None without hidden layers (nothing to feed back)")
            B = _check_list("feedback", feedback, len(W) - 1, like=W[0])
            for i, t in enumerate(B):
                if t.shape != (sizes[i + 1], sizes[i + 2]):
                    raise ValueError(f"feedback[{i}] must have shape ({sizes[i + 1]}, {sizes[i + 2]}), "
                                     f"got {tuple(t.shape)}")
        self.weights, self.biases, self.feedback, self.sizes = W, b, B, tuple(sizes)

    @property
    def symmetric(self) -> bool:
        """True for tied feedback weights (``B_{k+1} = W_{k+1}^T``), where the energy exists."""
        return self.feedback is None

    def parameters(self) -> list[torch.Tensor]:
        """``weights + biases (+ feedback)``: the order of every gradient list returned here."""
        return self.weights + self.biases + ([] if self.feedback is None else self.feedback)

    def asymmetry(self) -> float:
        """``||B - W^T||_F / ||W||_F`` over the feedback weights (0 if tied).

        Reference: the weight asymmetry of Laborieux & Zenke (2024).
        """
        if self.feedback is None:
            return 0.0
        diff = sum(float((B - W.T).square().sum()) for B, W in zip(self.feedback, self.weights[1:]))
        norm = sum(float(W.square().sum()) for W in self.weights[1:])
        return math.sqrt(diff / norm) if norm > 0 else math.inf

    # ------------------------------------------------------------ inputs

    def _x(self, x) -> torch.Tensor:
        _check_tensor("x", x)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"x must have shape (batch, {self.sizes[0]}), got {tuple(x.shape)}")
        return _check_like("x", x, self.weights[0])

    def _y(self, y, x: torch.Tensor) -> torch.Tensor:
        _check_tensor("y", y)
        if y.shape != (x.shape[0], self.sizes[-1]):
            raise ValueError(f"y must have shape ({x.shape[0]}, {self.sizes[-1]}), got {tuple(y.shape)}")
        return _check_like("y", y, x)

    def _s(self, s, x: torch.Tensor, name: str = "s") -> States:
        s = _check_list(name, s, len(self.weights))
        for k, t in enumerate(s):
            if t.shape != (x.shape[0], self.sizes[k + 1]) or t.dtype != x.dtype or t.device != x.device:
                raise ValueError(f"{name}[{k}] must be a ({x.shape[0]}, {self.sizes[k + 1]}) tensor of x's "
                                 f"dtype and device, got {tuple(t.shape)} {t.dtype} {t.device}")
            if bool((t < 0).any() or (t > 1).any()):
                raise ValueError(f"{name}[{k}] must lie in [0, 1] (sigmoid states)")
        return s

    # ------------------------------------------------------------ energy and phases

    def energy(self, x: torch.Tensor, s: States, y: torch.Tensor | None = None, beta: float = 0.0
               ) -> torch.Tensor:
        """The total energy ``F = E(s) + beta C(s_L, y)`` of each example, shape ``(batch,)``.

        Tied weights only. Differentiable in ``s`` and the parameters; its
        gradient in ``s`` vanishes at the fixed points of :meth:`relax`.
        Reference: Scellier & Bengio (2017); Hopfield (1984) (the leak term).
        """
        if not self.symmetric:
            raise ValueError("an asymmetric network (feedback is not None) has no energy: its dynamics are not "
                             "the gradient of any function")
        x = self._x(x)
        s = self._s(s, x)
        beta = _check_real("beta", beta)
        E = sum((torch.xlogy(t, t) + torch.xlogy(1 - t, 1 - t)).sum(1) for t in s)  # G(u), G' = sigma^{-1}
        for k, (W, b) in enumerate(zip(self.weights, self.biases)):
            below = x if k == 0 else s[k - 1]
            E = E - ((s[k] @ W) * below).sum(1) - s[k] @ b
        if y is not None:
            E = E + beta * self.cost(s, self._y(y, x))
        elif beta != 0.0:
            raise ValueError("beta != 0 needs targets y")
        return E

    def cost(self, s: States, y: torch.Tensor) -> torch.Tensor:
        """``C = ||s_L - y||^2 / 2`` per example, shape ``(batch,)``. Reference: Scellier & Bengio (2017)."""
        s = _check_list("s", s)
        _check_tensor("y", y)
        if y.shape != s[-1].shape or y.dtype != s[-1].dtype:
            raise ValueError(f"y must match the output state s[-1] ({tuple(s[-1].shape)}, {s[-1].dtype}), got "
                             f"{tuple(y.shape)}, {y.dtype}")
        return 0.5 * (s[-1] - y).square().sum(1)

    def relax(self, x: torch.Tensor, y: torch.Tensor | None = None, beta: float = 0.0,
              s0: States | None = None, tol: float | None = None, max_iter: int = 1000) -> States:
        """The fixed point of the layer updates: free phase (``beta = 0``) or nudged phase.

        Sweeps ``k = 1..L`` of ``s_k <- sigma(W_k s_{k-1} + b_k + B_{k+1} s_{k+1})``
        (the output also gets ``+ beta (y - s_L)``) until no entry moves by more
        than ``tol`` (default ``max(1e-10, 10 eps)``; ``tol = 0``: exactly
        ``max_iter`` sweeps). Tied weights: each update minimises ``E + beta C``
        over one layer, so ``E`` never rises in the free phase. ``s0``: start
        (default: a feedforward pass). Returns ``L`` states ``(batch, n_k)``, no
        autograd history; ValueError if ``max_iter`` sweeps do not converge.
        Reference: Scellier & Bengio (2017), free and weakly clamped phases.
        """
        x = self._x(x)
        beta = _check_beta(beta)
        if beta != 0.0 and y is None:
            raise ValueError("the nudged phase (beta != 0) needs targets y")
        y = None if y is None else self._y(y, x)
        tol = _check_tol("tol", tol, x.dtype, positive=False)
        max_iter = _check_int("max_iter", max_iter, 1)
        with torch.no_grad():
            if s0 is None:  # start from a feedforward pass
                s = [x]
                for W, b in zip(self.weights, self.biases):
                    s.append(torch.sigmoid(s[-1] @ W.T + b))
                s = s[1:]
            else:
                s = self._s(s0, x, "s0")
            return _relax(x, self.weights, self.biases, self.feedback, y, beta, s, tol, max_iter)

    def loss(self, x: torch.Tensor, y: torch.Tensor, tol: float | None = None, max_iter: int = 1000
             ) -> torch.Tensor:
        """The loss, the batch mean of ``C(s_L^0, y)`` at the free fixed point (0-dim).

        Reference: Scellier & Bengio (2017), the objective ``C(s^0)``.
        """
        x = self._x(x)
        y = self._y(y, x)
        return self.cost(self.relax(x, tol=tol, max_iter=max_iter), y).mean()

    def ep_gradient(self, x: torch.Tensor, y: torch.Tensor, beta: float, centred: bool = True,
                    tol: float | None = None, max_iter: int = 1000) -> list[torch.Tensor]:
        """The EP estimate of the gradient of :meth:`loss`, shaped like :meth:`parameters`.

        Relaxes ``s^0``, then ``s^{+beta}`` (and ``s^{-beta}`` if ``centred``)
        from ``s^0``. With ``(s^a, s^b, d) = (s^{+beta}, s^{-beta}, 2 beta)``
        (centred, error ``O(beta^2)``) or ``(s^{+beta}, s^0, beta)``
        (one-sided, ``O(beta)``), batch-averaged: tied weights (classic EP),
        ``(dE/dtheta(s^a) - dE/dtheta(s^b)) / d``, i.e. ``dW_k = -(s_k^a
        s_{k-1}^{aT} - s_k^b s_{k-1}^{bT}) / d``, ``db_k = -(s_k^a - s_k^b) / d``;
        separate feedback (generalised EP), with ``lambda = (s^a - s^b) / d``:
        ``dW_k = -lambda_k s_{k-1}^{0T}``, ``db_k = -lambda_k``, ``dB_{k+1} =
        -lambda_k s_{k+1}^{0T}`` (exact as ``beta -> 0`` only for a symmetric
        Jacobian). ``beta`` in (0, 4).
        Reference: Scellier & Bengio (2017), Theorem 1; Laborieux et al. (2021);
        Laborieux & Zenke (2024).
        """
        x, beta = self._x(x), _check_beta(beta, low=0.0)
        y = self._y(y, x)
        if not isinstance(centred, bool):
            raise TypeError(f"centred must be a bool, got {type(centred).__name__}")
        s0 = self.relax(x, tol=tol, max_iter=max_iter)
        sa = self.relax(x, y, beta, s0, tol, max_iter)
        sb = self.relax(x, y, -beta, s0, tol, max_iter) if centred else s0
        d, n = (2 * beta if centred else beta), x.shape[0]
        below = lambda s, k: x if k == 0 else s[k - 1]  # noqa: E731
        if self.symmetric:
            gW = [-(sa[k].T @ below(sa, k) - sb[k].T @ below(sb, k)) / (d * n) for k in range(len(sa))]
            return gW + [-(sa[k] - sb[k]).sum(0) / (d * n) for k in range(len(sa))]
        lam = [(a - b_) / d for a, b_ in zip(sa, sb)]
        gW = [-(lam[k].T @ below(s0, k)) / n for k in range(len(lam))]
        gb = [-lam[k].mean(0) for k in range(len(lam))]
        gB = [-(lam[k].T @ s0[k + 1]) / n for k in range(len(lam) - 1)]
        return gW + gb + gB

    def reference_gradient(self, x: torch.Tensor, y: torch.Tensor, tol: float | None = None,
                           max_iter: int = 1000) -> list[torch.Tensor]:
        """The exact gradient of :meth:`loss` by implicit differentiation, shaped like :meth:`parameters`.

        The free fixed point is the root of ``F(s) = sigma(pre(s, theta)) - s``;
        ``lib.implicit.root_solve`` differentiates it (recurrent backprop: what
        backprop through infinitely many sweeps gives), solving the adjoint
        system exactly, one dense ``N x N`` block per example (``N = n_1 + .. + n_L``).
        Reference: Scellier & Bengio (2019); Blondel et al. (2022).
        """
        x = self._x(x)
        y = self._y(y, x)
        s0 = self.relax(x, tol=tol, max_iter=max_iter)
        L, sizes = len(self.weights), list(self.sizes[1:])
        tol = _check_tol("tol", tol, x.dtype, positive=False)

        def unpack(th):
            return list(th[:L]), list(th[L:2 * L]), (None if self.symmetric else list(th[2 * L:]))

        def F(z, th):
            W, b, B = unpack(th)
            s = list(torch.split(z, sizes, dim=1))
            return torch.cat([torch.sigmoid(_pre(k, x, s, W, b, B)) for k in range(L)], 1) - z

        def solver(z, th):
            W, b, B = unpack(th)
            return torch.cat(_relax(x, W, b, B, None, 0.0, list(torch.split(z, sizes, 1)), tol, max_iter), 1)

        theta = tuple(p.detach().clone().requires_grad_(True) for p in self.parameters())
        with torch.enable_grad():
            z = root_solve(F, torch.cat(s0, 1), theta, solver, linear_solver=_batched_dense_solve)
            loss = 0.5 * (z[:, -sizes[-1]:] - y).square().sum(1).mean()
            return list(torch.autograd.grad(loss, theta))


# ---------------------------------------------------------------- construction and comparison

def random_network(sizes: Sequence[int], asymmetry: float | None = None, scale: float = 1.0,
                   generator: torch.Generator | None = None, dtype: torch.dtype | None = torch.float64,
                   device=None) -> EnergyNetwork:
    """A seeded :class:`EnergyNetwork` with layer sizes ``(n_0, ..., n_L)`` and zero biases.

    ``W_k`` has i.i.d. ``N(0, scale^2 / n_{k-1})`` entries. ``asymmetry``: None
    for tied weights, or ``a`` in ``[0, 1]`` for feedback ``B_{k+1} = cos(pi a/2)
    W_{k+1}^T + sin(pi a/2) R_{k+1}``, ``R`` a fresh draw of the same law (``a = 1``:
    random feedback). Every ``W`` is drawn before any ``R``: one seed, same ``W``.
    Reference: Laborieux & Zenke (2024) (asymmetric networks).
    """
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise TypeError(f"sizes must be a list of at least two ints (n_0, ..., n_L), got {sizes!r}")
    sizes = [_check_int(f"sizes[{i}]", n, 1) for i, n in enumerate(sizes)]
    scale = _check_real("scale", scale)
    if scale < 0:
        raise ValueError(f"scale must be non-negative, got {scale}")
    if asymmetry is not None:
        asymmetry = _check_real("asymmetry", asymmetry)
        if not 0.0 <= asymmetry <= 1.0:
            raise ValueError(f"asymmetry must be None or in [0, 1], got {asymmetry}")
    dtype = torch.float64 if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be None, torch.float32 or torch.float64, got {dtype!r}")
    device = _check_device(device) or torch.device("cpu")
    generator = _check_generator(generator)
    if generator is not None and generator.device != device:
        raise ValueError(f"generator must be on the device {device}, got one on {generator.device}")

    def draw(n_out, n_in):
        w = torch.randn(n_out, n_in, generator=generator, dtype=torch.float64, device=device)
        return (w * scale / math.sqrt(n_in)).to(dtype)

    W = [draw(n_out, n_in) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    b = [torch.zeros(n, dtype=dtype, device=device) for n in sizes[1:]]
    if asymmetry is None:
        return EnergyNetwork(W, b)
    if len(W) == 1:
        raise ValueError("asymmetry needs at least one hidden layer (sizes of length >= 3)")
    c, s = math.cos(math.pi * asymmetry / 2), math.sin(math.pi * asymmetry / 2)
    R = [draw(w.shape[0], w.shape[1]).T for w in W[1:]]  # same law as W_{k+1}, transposed
    return EnergyNetwork(W, b, [c * w.T + s * r for w, r in zip(W[1:], R)])


def gradient_alignment(estimate: Sequence[torch.Tensor], reference: Sequence[torch.Tensor]
                       ) -> tuple[float, float]:
    """``(cosine, relative error)`` of two gradients given as lists of tensors of matching shapes.

    Cosine of the angle between the flattened lists, and
    ``||estimate - reference|| / ||reference||``.
    Reference: the alignment measures of Laborieux & Zenke (2024).
    """
    est = _check_list("estimate", estimate)
    ref = _check_list("reference", reference, len(est))
    for i, (e, r) in enumerate(zip(est, ref)):
        if e.shape != r.shape:
            raise ValueError(f"estimate[{i}] must have the shape of reference[{i}] {tuple(r.shape)}, "
                             f"got {tuple(e.shape)}")
    e = torch.cat([t.detach().reshape(-1).double().cpu() for t in est])
    r = torch.cat([t.detach().reshape(-1).double().cpu() for t in ref])
    scale = float(r.abs().max())
    if scale == 0.0:
        raise ValueError("reference must not be zero (cosine and relative error are undefined)")
    e, r = e / scale, r / scale  # no underflow or overflow in the squares
    e_scale = float(e.abs().max())
    if not math.isfinite(e_scale):
        raise ValueError("estimate is too large relative to reference (the ratio overflows float64)")
    cosine = 0.0 if e_scale == 0 else float((e / e_scale) @ r) / (float((e / e_scale).norm()) * float(r.norm()))
    d = e - r
    d_scale = float(d.abs().max())  # ||d|| as d_scale ||d / d_scale||: its squares could overflow
    err = 0.0 if d_scale == 0 else d_scale * float((d / d_scale).norm()) / float(r.norm())
    if not math.isfinite(err):
        raise ValueError("estimate is too large relative to reference (the relative error overflows float64)")
    return cosine, err


# ---------------------------------------------------------------- predictive coding

def predictive_coding_gradient(net: EnergyNetwork, x: torch.Tensor, y: torch.Tensor, beta: float,
                               step: float = 0.2, tol: float | None = None, max_iter: int = 5000
                               ) -> list[torch.Tensor]:
    """EP on the predictive-coding energy of the feedforward net ``a_k = sigma(W_k a_{k-1} + b_k)``.

    Uses ``net.weights``, ``net.biases``. Value nodes ``u_k`` (``a_k = sigma(u_k)``,
    ``a_0 = x``) carry errors ``e_k = u_k - W_k a_{k-1} - b_k``; the energy is
    ``F = sum_k ||e_k||^2 / 2 + beta ||a_L - y||^2 / 2``. The free phase is the
    forward pass (``e = 0``, ``dF/dtheta = 0``); the nudged phase descends ``F``
    over ``u`` (``step``) until ``max |dF/du| <= tol`` (or below ``64 eps`` times its largest
    term, the rounding floor no ``tol`` can beat). Returns the batch mean of
    ``dF/dtheta(u^beta) / beta`` (``dW_k = -e_k a_{k-1}^T / beta``, ``db_k =
    -e_k / beta``), tending to backprop's gradient of ``mean ||a_L - y||^2 / 2``.
    Reference: Whittington & Bogacz (2017); the EP view: Scellier & Bengio (2017).
    """
    if not isinstance(net, EnergyNetwork):
        raise TypeError(f"net must be an EnergyNetwork, got {type(net).__name__}")
    x, beta = net._x(x), _check_beta(beta, low=0.0)
    y = net._y(y, x)
    step = _check_real("step", step)
    if not 0.0 < step <= 1.0:
        raise ValueError(f"step must be in (0, 1], got {step}")
    tol = _check_tol("tol", tol, x.dtype, positive=False)
    max_iter = _check_int("max_iter", max_iter, 1)
    W, b, L, n = net.weights, net.biases, len(net.weights), x.shape[0]
    eps = torch.finfo(x.dtype).eps
    with torch.no_grad():
        u, a = [], [x]
        for k in range(L):  # free phase: the feedforward pass, every error zero
            u.append(a[-1] @ W[k].T + b[k])
            a.append(torch.sigmoid(u[-1]))
        for _ in range(max_iter):
            a = [x] + [torch.sigmoid(t) for t in u]
            e = [u[k] - a[k] @ W[k].T - b[k] for k in range(L)]
            grads, size = [], 0.0
            for k in range(L):  # dF/du_k = e_k - sigma'(u_k) (W_{k+1}^T e_{k+1}, or beta (y - a_L) at the output)
                back = e[k + 1] @ W[k + 1] if k + 1 < L else beta * (y - a[L])
                pull = a[k + 1] * torch.sigmoid(-u[k]) * back  # sigma' = sigma(u) sigma(-u): 1 - a cancels
                grads.append(e[k] - pull)
                size = max(size, float(e[k].abs().max()), float(pull.abs().max()))
            worst = float(torch.stack([g.abs().max() for g in grads]).max())
            if not math.isfinite(worst):
                raise ValueError("the predictive-coding relaxation diverged; use a smaller step")
            if worst <= max(tol, 64 * eps * size):  # below the rounding floor of its terms, no tol is reachable
                break
            u = [t - step * g for t, g in zip(u, grads)]
        else:
            raise ValueError(f"the predictive-coding relaxation did not converge within max_iter={max_iter} "
                             f"steps (max |dF/du| = {worst:.3g} > tol={tol:.3g}); raise max_iter or step")
        gW = [-(e[k].T @ a[k]) / (beta * n) for k in range(L)]
        return gW + [-e[k].sum(0) / (beta * n) for k in range(L)]
