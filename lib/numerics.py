"""When automatic differentiation meets floating point and memory.

Chapter 5 (``book/05_ad_pitfalls.md``, lab ``notebooks/05_ad_pitfalls.ipynb``).

* Softmax collapse: in float32, once the correct logit leads the others by
  about ``log(1/eps) ~ 16.6``, softmax rounds the correct class's probability
  to exactly 1, so that example's loss and the correct entry of its gradient
  ``p - onehot`` are exactly zero; past a lead of about 104, ``exp`` underflows
  and the whole gradient row is zero: the example stops teaching.
  :func:`zero_gradient_fraction` measures it; :func:`stablemax` and
  :func:`stablemax_cross_entropy` replace ``exp`` by a function that grows
  only linearly, which postpones the collapse by orders of magnitude.
* Memory of the backward pass: :class:`SavedTensorTracker` records what
  autograd saves for backward (live and peak bytes) through saved-tensor hooks,
  and :func:`checkpoint_sequential` trades memory for recomputation by keeping
  only each segment's input and recomputing the segment during backward.

References: Prieto, Barsbey, Mediano & Birdal (2025), "Grokking at the Edge of
Numerical Stability" (softmax collapse, StableMax); Chen, Xu, Zhang & Guestrin
(2016), "Training Deep Nets with Sublinear Memory Cost" (checkpointing);
Griewank & Walther (2000), "Algorithm 799: revolve"; Bhatia & Dangel (2024),
"Lowering PyTorch's Memory Consumption for Selective Differentiation".
"""

from __future__ import annotations

import weakref
from typing import Sequence

import torch

from .calculus import _check_finite

__all__ = ["stablemax", "log_stablemax", "stablemax_cross_entropy", "zero_gradient_fraction",
           "SavedTensorTracker", "checkpoint_sequential"]


# ---------------------------------------------------------------- StableMax

def _check_logits(logits, name: str = "logits") -> None:
    if not isinstance(logits, torch.Tensor) or not torch.is_floating_point(logits):
        raise TypeError(f"{name} must be a floating torch.Tensor, got "
                        f"{getattr(logits, 'dtype', type(logits).__name__)}")
    _check_finite(name, logits)


def _check_dim(x: torch.Tensor, dim) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int, got {type(dim).__name__} ({dim!r})")
    ndim = max(x.ndim, 1)  # a 0-dim tensor has the one dimension 0 (or -1), as in torch
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim must be in [{-ndim}, {ndim - 1}] for x of shape {tuple(x.shape)}, got {dim}")


def _s(x: torch.Tensor) -> torch.Tensor:
    # s(x) = x + 1 for x >= 0, 1 / (1 - x) for x < 0: positive, increasing, C^1 at 0.
    # Each branch is evaluated only where it is finite (no 1/0 for large positive x).
    pos = x >= 0
    return torch.where(pos, x.clamp(min=0) + 1, 1 / (1 - x.clamp(max=0)))


def stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """StableMax: ``s(x_i) / sum_j s(x_j)`` with ``s(x) = x + 1`` (x >= 0), ``1/(1 - x)`` (x < 0).

    Like softmax it maps scores to a probability vector that preserves their
    order, but ``s`` grows linearly instead of exponentially, so a lead of
    ``L`` in the logits gives odds of about ``L`` instead of ``exp(L)``.
    Shapes: any, normalised along ``dim``. Chapter 5.
    Reference: Prieto et al. (2025), "Grokking at the Edge of Numerical Stability" (StableMax).
    """
    _check_logits(x, "x")
    _check_dim(x, dim)
    sx = _s(x)
    return sx / sx.sum(dim=dim, keepdim=True)


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log stablemax(x)`` computed as ``log s(x) - log sum s(x)``. Shapes as :func:`stablemax`.

    Reference: Prieto et al. (2025) (StableMax).
    """
    _check_logits(x, "x")
    _check_dim(x, dim)
    sx = _s(x)
    return torch.log(sx) - torch.log(sx.sum(dim=dim, keepdim=True))


def _check_targets(logits: torch.Tensor, targets) -> None:
    if logits.ndim != 2 or 0 in logits.shape:
        raise ValueError(f"logits must have shape (n, k) with n, k >= 1, got {tuple(logits.shape)}")
    if not isinstance(targets, torch.Tensor) or targets.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"targets must be an integer tensor, got {getattr(targets, 'dtype', type(targets).__name__)}")
    if targets.shape != (logits.shape[0],):
        raise ValueError(f"targets must have shape ({logits.shape[0]},), got {tuple(targets.shape)}")
    if targets.numel() and (targets.min() < 0 or targets.max() >= logits.shape[1]):
        raise ValueError(f"targets must lie in [0, {logits.shape[1]}), got range "
                         f"[{int(targets.min())}, {int(targets.max())}]")


def stablemax_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-log stablemax(logits)[target]``.

    Shapes: ``logits`` (n, k) floating, ``targets`` (n,) integer in [0, k).
    Returns a 0-dim tensor. Drop-in for ``F.cross_entropy`` in chapter 5's lab.
    Reference: Prieto et al. (2025) (StableMax cross-entropy).
    """
    _check_logits(logits)
    _check_targets(logits, targets)
    return -log_stablemax(logits, dim=1).gather(1, targets[:, None].long()).mean()


def zero_gradient_fraction(logits: torch.Tensor, targets: torch.Tensor, loss: str = "softmax") -> float:
    """Share of examples whose loss gradient w.r.t. their logits is exactly zero.

    The gradient is computed by autograd in the dtype of ``logits`` for
    ``loss="softmax"`` (``F.cross_entropy``) or ``"stablemax"``
    (:func:`stablemax_cross_entropy`). A row of exact zeros means the example
    no longer teaches the model anything: the *softmax collapse* of Prieto et
    al. (2025). Returns a float in [0, 1].
    Reference: Prieto et al. (2025) (softmax collapse).
    """
    _check_logits(logits)
    _check_targets(logits, targets)
    if loss not in ("softmax", "stablemax"):
        raise ValueError(f"loss must be 'softmax' or 'stablemax', got {loss!r}")
    z = logits.detach().clone().requires_grad_(True)
    fn = torch.nn.functional.cross_entropy if loss == "softmax" else stablemax_cross_entropy
    # sum, not mean: the 1/n factor would only rescale (and could underflow) the rows
    value = fn(z, targets.long()) * z.shape[0]
    (grad,) = torch.autograd.grad(value, z)
    return (grad == 0).all(dim=1).float().mean().item()


# ---------------------------------------------------------------- memory of backward

class _Packed:
    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor):
        self.tensor = tensor


class SavedTensorTracker:
    """Context manager that measures what autograd saves for the backward pass.

    While active (forward *and* backward), every tensor that an operation saves
    for its backward rule goes through a pack hook that records its storage.
    Storages are counted once however many operations save them, and released
    when autograd frees the last saved reference (after the backward of the
    nodes that used it). Attributes after (or during) the block:

    * ``live_bytes``: bytes currently held for backward;
    * ``peak_bytes``: the maximum of ``live_bytes`` over the block;
    * ``saved_bytes``: total bytes of distinct storages ever saved (recomputed
      tensors count again);
    * ``n_saves``: number of pack events.

    Parameters (``nn.Parameter`` tensors, and views of them such as the
    transposed weight a linear layer saves) are not activations and are
    skipped unless ``count_parameters=True``.

    Reference: ``torch.autograd.graph.saved_tensors_hooks`` (PyTorch docs,
    "Hooks for saved tensors"); Bhatia & Dangel (2024) measure memory the same way.
    """

    def __init__(self, count_parameters: bool = False):
        if not isinstance(count_parameters, bool):
            raise TypeError(f"count_parameters must be a bool, got {type(count_parameters).__name__}")
        self.count_parameters = count_parameters
        self.live_bytes = 0
        self.peak_bytes = 0
        self.saved_bytes = 0
        self.n_saves = 0
        self._refs: dict[tuple, int] = {}
        self._hooks = None

    def _release(self, key, nbytes):
        self._refs[key] -= 1
        if self._refs[key] == 0:
            del self._refs[key]
            self.live_bytes -= nbytes

    def _pack(self, tensor):
        packed = _Packed(tensor)
        base = tensor._base if tensor._base is not None else tensor  # views of weights count as weights
        if isinstance(base, torch.nn.Parameter) and not self.count_parameters:
            return packed
        storage = tensor.untyped_storage()
        key = (tensor.device.type, storage.data_ptr())
        nbytes = storage.nbytes()
        self.n_saves += 1
        if key not in self._refs:
            self._refs[key] = 0
            self.live_bytes += nbytes
            self.saved_bytes += nbytes
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        self._refs[key] += 1
        weakref.finalize(packed, self._release, key, nbytes)
        return packed

    @staticmethod
    def _unpack(packed):
        return packed.tensor

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)
        return False


class _Segment(torch.autograd.Function):
    """Run ``blocks`` without saving activations; recompute them in backward."""

    @staticmethod
    def forward(ctx, x, blocks, *params):
        ctx.blocks = blocks
        ctx.save_for_backward(x)  # the only tensor this segment keeps
        with torch.no_grad():
            for block in blocks:
                x = block(x)
        return x

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        params = [p for block in ctx.blocks for p in block.parameters()]
        with torch.enable_grad():
            xr = x.detach().requires_grad_(x.requires_grad)
            y = xr
            for block in ctx.blocks:
                y = block(y)
            wanted = ([xr] if xr.requires_grad else []) + [p for p in params if p.requires_grad]
            grads = torch.autograd.grad(y, wanted, grad_out, allow_unused=True) if wanted else []
        grads = list(grads)
        gx = grads.pop(0) if xr.requires_grad else None
        gp = [grads.pop(0) if p.requires_grad else None for p in params]
        return (gx, None, *gp)


def checkpoint_sequential(blocks: Sequence[torch.nn.Module], x: torch.Tensor, segments: int) -> torch.Tensor:
    """Apply ``blocks`` in order, keeping only the input of each of ``segments`` segments.

    The blocks are split into ``segments`` contiguous groups of near-equal
    length. In the forward pass each group runs without recording (no
    activations saved) and only its input is stored; in the backward pass the
    group is recomputed from that input, then differentiated. With ``n``
    blocks of equal size and ``segments ~ sqrt(n)``, stored activations fall
    from ``n`` to about ``2 sqrt(n)`` at the cost of one extra forward pass.
    ``segments = len(blocks)`` keeps every block input; ``segments = 1`` keeps
    only ``x``. Returns the output of the last block. Blocks must be
    deterministic (no dropout) for the recomputation to be exact.

    Reference: Chen et al. (2016), "Training Deep Nets with Sublinear Memory
    Cost" (the sqrt(n) strategy); the same idea as
    ``torch.utils.checkpoint.checkpoint_sequential``.
    """
    if isinstance(blocks, (str, bytes)) or not hasattr(blocks, "__iter__"):
        raise TypeError(f"blocks must be a non-empty sequence of torch.nn.Module, got "
                        f"{type(blocks).__name__}")
    blocks = list(blocks)
    if not blocks or not all(isinstance(b, torch.nn.Module) for b in blocks):
        raise TypeError("blocks must be a non-empty sequence of torch.nn.Module")
    if isinstance(segments, bool) or not isinstance(segments, int) or not 1 <= segments <= len(blocks):
        raise ValueError(f"segments must be an int in [1, {len(blocks)}], got {segments!r}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):  # autograd differentiates floating tensors only
        raise TypeError(f"x must have a floating dtype, got {x.dtype}")
    _check_finite("x", x)
    dtypes = {p.dtype for b in blocks for p in b.parameters() if torch.is_floating_point(p)}
    if dtypes and x.dtype not in dtypes:
        raise TypeError(f"x must have the dtype of the blocks' parameters {sorted(map(str, dtypes))}, "
                        f"got {x.dtype}")
    bounds = [round(i * len(blocks) / segments) for i in range(segments + 1)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        group = blocks[a:b]
        params = [p for block in group for p in block.parameters()]
        x = _Segment.apply(x, group, *params)
    return x
