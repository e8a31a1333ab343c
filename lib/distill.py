"""Learning the data: dataset condensation by gradient matching, and feature visualisation.

Chapter 21 (``book/21_distillation.md``, lab ``notebooks/21_distillation.ipynb``).
Both halves of the chapter train *inputs* instead of weights.

* :func:`gradient_match_distance`: ``sum_l sum_i (1 - cos(A_l[i], B_l[i]))`` over
  the output rows ``i`` of each layer ``l`` of two lists of parameter gradients.
* :func:`gradient_matching_loss`: that distance between the gradients of each
  class's loss on synthetic and on real examples, summed over classes; it stays in
  the graph, so it can be differentiated with respect to the synthetic images.
* :func:`condense`: dataset condensation: fresh networks in an outer loop; inside,
  image steps down the matching loss alternate with network steps on the synthetic
  set. :func:`random_subset` is the baseline, :func:`train_and_evaluate` the protocol.
* :func:`visualize_feature`: activation maximisation by gradient ascent on the
  input, with L2, total variation (:func:`total_variation`), jitter and a box;
  :func:`multifaceted_init`: starts at the k-means cluster means of the images
  that activate the unit most.

References: Wang et al. (2018), "Dataset Distillation"; Zhao, Mopuri & Bilen
(2021), "Dataset Condensation with Gradient Matching"; Lee et al. (2022), "Dataset
Condensation with Contrastive Signals"; Yin & Shen (2023), "Dataset Distillation
via Curriculum Data Synthesis in Large Data Era"; Erhan et al. (2009); Simonyan,
Vedaldi & Zisserman (2014); Mahendran & Vedaldi (2015), "Understanding Deep Image
Representations by Inverting Them"; Nguyen, Yosinski & Clune (2016),
"Multifaceted Feature Visualization".
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from .calculus import _check_finite
from .curvature import _check_callable, _check_generator, _check_int, _check_positive, _check_real

__all__ = ["gradient_match_distance", "gradient_matching_loss", "random_subset", "Condensed", "condense",
           "train_and_evaluate", "total_variation", "visualize_feature", "multifaceted_init"]

_DTYPES = (torch.float32, torch.float64)
_INITS = ("real", "noise")
Objective = Callable[[torch.Tensor], torch.Tensor]  # model output (n, ...) -> (n,)
MakeModel = Callable[[], torch.nn.Module]


# ---------------------------------------------------------------- validation

def _check_images(name: str, x, min_ndim: int = 2) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.ndim < min_ndim or x.numel() == 0:
        raise ValueError(f"{name} must be a non-empty tensor with at least {min_ndim} dimensions "
                         f"(n, ...), got shape {tuple(x.shape)}")
    return _check_finite(name, x.detach())


def _check_labels(name: str, y, x: torch.Tensor, xname: str) -> torch.Tensor:
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64:
        raise TypeError(f"{name} must hold int64 class indices, got {getattr(y, 'dtype', type(y).__name__)}")
    if y.shape != x.shape[:1] or y.device != x.device:
        raise ValueError(f"{name} must have shape ({len(x)},) on {x.device} to label {xname}, "
                         f"got {tuple(y.shape)} on {y.device}")
    if bool((y < 0).any()):
        raise ValueError(f"{name} must hold class indices >= 0, got {int(y.min())}")
    return y


def _check_same(name: str, t: torch.Tensor, ref: torch.Tensor, refname: str, per_image: bool = False) -> None:
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} must have {refname}'s dtype {ref.dtype}, got {t.dtype}")
    if t.device != ref.device:
        raise ValueError(f"{name} must be on {refname}'s device {ref.device}, got {t.device}")
    if per_image and t.shape[1:] != ref.shape[1:]:
        raise ValueError(f"{name} must hold images of {refname}'s shape {tuple(ref.shape[1:])}, "
                         f"got {tuple(t.shape[1:])}")


def _check_model(model, x: torch.Tensor, name: str = "model") -> list[torch.Tensor]:
    """The trainable parameters of ``model``, which must live on ``x``'s device in its dtype."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{name} must have at least one trainable parameter")
    for p in params:
        if p.dtype != x.dtype or p.device != x.device:
            raise ValueError(f"{name}'s parameters must be {x.dtype} on {x.device} like the images, "
                             f"got {p.dtype} on {p.device}")
    return params


def _logits(model, x: torch.Tensor, n_classes: int, name: str = "model", xname: str = "images") -> torch.Tensor:
    try:
        out = model(x)
    except RuntimeError as err:  # torch's shape errors: images the model cannot take
        raise ValueError(f"{name} failed on {xname} of shape {tuple(x.shape)}: {err}") from err
    if not isinstance(out, torch.Tensor) or out.dtype != x.dtype:
        raise TypeError(f"{name} must return a {x.dtype} tensor of logits, got "
                        f"{getattr(out, 'dtype', type(out).__name__)}")
    if out.ndim != 2 or out.shape[0] != x.shape[0] or out.shape[1] < n_classes:
        raise ValueError(f"{name} must return logits of shape ({x.shape[0]}, C) with C >= {n_classes} "
                         f"(the largest label + 1), got {tuple(out.shape)}")
    if not bool(torch.isfinite(out.detach()).all()):
        raise ValueError(f"{name} returned non-finite logits")
    return out


def _check_rowwise(rowwise) -> bool:
    if not isinstance(rowwise, bool):
        raise TypeError(f"rowwise must be a bool (True: one cosine per row, False: per layer), got {rowwise!r}")
    return rowwise


def _check_momentum(momentum) -> float:
    if not 0.0 <= _check_real("momentum", momentum) < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    return float(momentum)


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


# ---------------------------------------------------------------- gradient matching

def _grad_list(name: str, grads) -> list[torch.Tensor]:
    grads = [grads] if isinstance(grads, torch.Tensor) else grads
    if not isinstance(grads, (list, tuple)) or len(grads) == 0:
        raise TypeError(f"{name} must be a non-empty list or tuple of tensors (one per layer), "
                        f"got {type(grads).__name__}")
    for i, g in enumerate(grads):
        if not isinstance(g, torch.Tensor) or g.dtype not in _DTYPES:
            raise TypeError(f"{name}[{i}] must be a float32 or float64 tensor, got "
                            f"{getattr(g, 'dtype', type(g).__name__)}")
        if g.numel() == 0:
            raise ValueError(f"{name}[{i}] must have at least one element, got shape {tuple(g.shape)}")
        _check_finite(f"{name}[{i}]", g.detach())
    return list(grads)


def _one_minus_cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` of the rows of ``a`` and ``b``: 0 where both rows are zero, 1 where one is."""
    # cos is invariant to each row's scale: divide by the largest entry first (no overflow or
    # underflow in the norms), and keep that scale out of the graph (its derivative is zero anyway)
    sa = a.detach().abs().amax(dim=1, keepdim=True)
    sb = b.detach().abs().amax(dim=1, keepdim=True)
    a1 = a / torch.where(sa > 0, sa, torch.ones_like(sa))
    b1 = b / torch.where(sb > 0, sb, torch.ones_like(sb))
    na, nb = torch.linalg.vector_norm(a1, dim=1), torch.linalg.vector_norm(b1, dim=1)
    both_zero, one_zero = (sa[:, 0] == 0) & (sb[:, 0] == 0), (sa[:, 0] == 0) | (sb[:, 0] == 0)
    cos = ((a1 * b1).sum(dim=1) / torch.where(one_zero, torch.ones_like(na), na * nb)).clamp(-1.0, 1.0)
    return torch.where(both_zero, torch.zeros_like(cos), 1.0 - cos)


def gradient_match_distance(grads_a: Sequence[torch.Tensor], grads_b: Sequence[torch.Tensor], *,
                            rowwise: bool = True) -> torch.Tensor:
    """``d(A, B) = sum_l sum_i (1 - cos(A_l[i], B_l[i]))`` for two lists of parameter gradients.

    ``A``, ``B``: lists (or tuples; one tensor is a one-layer list) of float32/float64
    tensors of matching shapes, e.g. ``torch.autograd.grad(loss, params)``. Rows ``i``
    are the output units (first index) of tensors with two or more dimensions; a 1-D
    tensor such as a bias is one row; ``rowwise=False``: one cosine per tensor.
    Invariant to positive rescaling of any row; two zero rows count 0, a zero row
    against a nonzero one 1. Returns a differentiable 0-dim tensor in ``[0, 2 rows]``.
    Reference: Zhao, Mopuri & Bilen (2021), "Dataset Condensation with Gradient
    Matching", the layer-wise distance of section 2.
    """
    A, B = _grad_list("grads_a", grads_a), _grad_list("grads_b", grads_b)
    rowwise = _check_rowwise(rowwise)
    if len(A) != len(B):
        raise ValueError(f"grads_a and grads_b must have as many layers, got {len(A)} and {len(B)}")
    total = torch.zeros((), dtype=A[0].dtype, device=A[0].device)
    for i, (a, b) in enumerate(zip(A, B)):
        if a.shape != b.shape:
            raise ValueError(f"grads_b[{i}] must have the shape of grads_a[{i}] {tuple(a.shape)}, "
                             f"got {tuple(b.shape)}")
        _check_same(f"grads_b[{i}]", b, a, f"grads_a[{i}]")
        _check_same(f"grads_a[{i}]", a, A[0], "grads_a[0]")
        rows = (lambda g: g.reshape(g.shape[0], -1)) if rowwise and a.ndim >= 2 else (lambda g: g.reshape(1, -1))
        total = total + _one_minus_cos(rows(a), rows(b)).sum()
    return total


def _class_gradients(model, params, x, y, n_classes, create_graph: bool, xname: str) -> list[torch.Tensor]:
    loss = F.cross_entropy(_logits(model, x, n_classes, xname=xname), y)
    grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]


def gradient_matching_loss(model: torch.nn.Module, x_syn: torch.Tensor, y_syn: torch.Tensor,
                           x_real: torch.Tensor, y_real: torch.Tensor, *, rowwise: bool = True) -> torch.Tensor:
    """Sum over classes of the distance between synthetic and real loss gradients.

    For each class ``c`` of ``y_syn``: ``g_S``, the gradient of the mean cross-entropy
    of ``model`` (images ``(n, ...)`` to logits ``(n, C)``) on the synthetic images
    ``x_syn`` ``(m, ...)`` of class ``c`` with respect to its trainable parameters,
    kept in the graph; ``g_T``, the same on the real images ``x_real`` ``(N, ...)`` of
    ``c`` (detached). Returns ``sum_c gradient_match_distance(g_S, g_T)``, a 0-dim
    tensor differentiable with respect to ``x_syn``. Labels are int64; every class of
    ``y_syn`` must occur in ``y_real``.
    Reference: Zhao, Mopuri & Bilen (2021), the per-class matching loss of Algorithm 1.
    """
    xs = _check_images("x_syn", x_syn)
    xr = _check_images("x_real", x_real)
    _check_same("x_real", xr, xs, "x_syn", per_image=True)
    ys = _check_labels("y_syn", y_syn, xs, "x_syn")
    yr = _check_labels("y_real", y_real, xr, "x_real")
    rowwise = _check_rowwise(rowwise)
    params = _check_model(model, xs)
    n_classes = int(max(ys.max(), yr.max())) + 1
    total = torch.zeros((), dtype=xs.dtype, device=xs.device)
    for c in torch.unique(ys).tolist():
        real, syn = yr == c, ys == c
        if not bool(real.any()):
            raise ValueError(f"y_real has no example of class {c}, which y_syn contains")
        g_real = [g.detach() for g in _class_gradients(model, params, xr[real], yr[real], n_classes, False, "x_real")]
        g_syn = _class_gradients(model, params, x_syn[syn], ys[syn], n_classes, True, "x_syn")
        total = total + gradient_match_distance(g_syn, g_real, rowwise=rowwise)
    return total


# ---------------------------------------------------------------- condensation

def random_subset(x: torch.Tensor, y: torch.Tensor, images_per_class: int, *,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``k = images_per_class`` distinct random examples of each class of ``(x, y)``.

    Returns ``(x_sub, y_sub)`` of shapes ``(C k, ...)`` and ``(C k,)``, in increasing
    label order; ``k`` is at most the smallest class's size. Draws on the generator's
    device (the global RNG if None).
    Reference: Zhao, Mopuri & Bilen (2021), the "random" baseline.
    """
    x = _check_images("x", x)
    y = _check_labels("y", y, x, "x")
    k = _check_int("images_per_class", images_per_class, 1)
    generator = _check_generator(generator)
    classes, counts = torch.unique(y, return_counts=True)
    if k > int(counts.min()):
        c = int(classes[counts.argmin()])
        raise ValueError(f"images_per_class={k} but class {c} has only {int(counts.min())} examples")
    idx = []
    for c in classes.tolist():
        members = torch.nonzero(y == c).flatten()
        perm = torch.randperm(len(members), generator=generator, device=_draw_device(generator, x.device))
        idx.append(members[perm.to(x.device)[:k]])
    idx = torch.cat(idx)
    return x[idx].clone(), y[idx].clone()


class Condensed(NamedTuple):
    """What :func:`condense` returns.

    ``x``: ``(C k, ...)`` synthetic images, class by class; ``y``: ``(C k,)`` labels;
    ``distances``: ``(outer_steps, inner_steps)`` matching loss before each image
    step; ``snapshots``: ``(m, C k, ...)`` the images after the outer steps listed in
    ``snapshot_steps`` (``(m,)``; 0 is the start).
    """

    x: torch.Tensor
    y: torch.Tensor
    distances: torch.Tensor
    snapshots: torch.Tensor
    snapshot_steps: torch.Tensor


def _fresh_model(make_model: MakeModel, seed: int | None, x: torch.Tensor) -> torch.nn.Module:
    """``make_model()`` with the global RNG seeded by ``seed`` inside a fork (restored after)."""
    if seed is None:
        model = make_model()
    else:
        cuda = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda, device_type="cuda"):
            torch.default_generator.manual_seed(seed)
            if cuda:
                with torch.cuda.device(x.device):
                    torch.cuda.manual_seed(seed)
            model = make_model()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"make_model must return a torch.nn.Module, got {type(model).__name__}")
    return model


def _sgd_on(model, params, x, y, n_classes: int, steps: int, lr: float) -> None:
    for _ in range(steps):
        loss = F.cross_entropy(_logits(model, x, n_classes, "make_model()"), y)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads):
                if g is not None:
                    p -= lr * g


def condense(make_model: MakeModel, x: torch.Tensor, y: torch.Tensor, images_per_class: int, *,
             outer_steps: int = 20, inner_steps: int = 10, lr_images: float = 0.1, lr_model: float = 0.01,
             model_steps: int = 1, momentum: float = 0.5, batch_real: int | None = None, init: str = "real",
             rowwise: bool = True, snapshot_every: int = 1, generator: torch.Generator | None = None) -> Condensed:
    """Dataset condensation with gradient matching: learn ``k`` synthetic images per class.

    ``outer_steps`` times, build a fresh network ``make_model()``; then ``inner_steps``
    times: (1) one SGD step (``lr_images``, ``momentum``) on the synthetic images down
    :func:`gradient_matching_loss` against the real set (all of it, or ``batch_real``
    random examples per class); (2) ``model_steps`` full-batch SGD steps (``lr_model``)
    of the network on the synthetic set, so that later matches happen further along
    training.

    ``make_model``: no-argument callable returning a fresh ``nn.Module`` (images to
    ``(n, C)`` logits) in the dtype and device of the real images ``x`` ``(N, ...)``
    (labels ``y``: int64). With a ``generator`` (all randomness: start, batches,
    networks) each call runs with the global RNG seeded from it inside
    :func:`torch.random.fork_rng`: reproducible, and the caller's RNG untouched.
    ``init``: ``"real"`` (a :func:`random_subset`, the generator's first draw) or
    ``"noise"`` (Gaussian with the pixel-wise mean and std of ``x``). Returns a
    :class:`Condensed`, with snapshots every ``snapshot_every`` outer steps and the last.
    Reference: Zhao, Mopuri & Bilen (2021), "Dataset Condensation with Gradient
    Matching", Algorithm 1.
    """
    _check_callable("make_model", make_model)
    x = _check_images("x", x)
    y = _check_labels("y", y, x, "x")
    k = _check_int("images_per_class", images_per_class, 1)
    outer_steps, inner_steps = _check_int("outer_steps", outer_steps, 1), _check_int("inner_steps", inner_steps, 1)
    model_steps = _check_int("model_steps", model_steps, 1)
    snapshot_every = _check_int("snapshot_every", snapshot_every, 1)
    lr_images, lr_model = _check_positive("lr_images", lr_images), _check_positive("lr_model", lr_model)
    momentum = _check_momentum(momentum)
    batch_real = None if batch_real is None else _check_int("batch_real", batch_real, 1)
    if not isinstance(init, str) or init not in _INITS:
        raise ValueError(f"init must be one of {_INITS}, got {init!r}")
    rowwise = _check_rowwise(rowwise)
    generator = _check_generator(generator)
    draw_on = _draw_device(generator, x.device)

    if init == "real":
        x_syn, y_syn = random_subset(x, y, k, generator=generator)
    else:
        y_syn = torch.unique(y).repeat_interleave(k)
        noise = torch.randn((len(y_syn),) + tuple(x.shape[1:]), generator=generator, device=draw_on, dtype=x.dtype)
        x_syn = x.mean(0) + (x.std(0) if len(x) > 1 else 1.0) * noise.to(x.device)
    n_classes = int(y.max()) + 1
    members = [m for m in (torch.nonzero(y == c).flatten() for c in range(n_classes)) if len(m)]
    x_syn = x_syn.detach().clone().requires_grad_(True)
    opt = torch.optim.SGD([x_syn], lr=lr_images, momentum=momentum)
    distances = torch.zeros(outer_steps, inner_steps, dtype=x.dtype)
    snapshots, steps = [x_syn.detach().clone()], [0]
    for outer in range(outer_steps):
        seed = None if generator is None else int(torch.randint(0, 2**62, (1,), generator=generator, device=draw_on))
        model = _fresh_model(make_model, seed, x)
        params = _check_model(model, x, "make_model()")
        for inner in range(inner_steps):
            xr, yr = x, y
            if batch_real is not None:
                idx = torch.cat([m[torch.randperm(len(m), generator=generator, device=draw_on)[:batch_real]
                                   .to(x.device)] for m in members])
                xr, yr = x[idx], y[idx]
            D = gradient_matching_loss(model, x_syn, y_syn, xr, yr, rowwise=rowwise)
            opt.zero_grad()
            D.backward(inputs=[x_syn])
            opt.step()
            if not bool(torch.isfinite(x_syn.detach()).all()):
                raise ValueError("the synthetic images diverged (non-finite); lower lr_images")
            distances[outer, inner] = float(D.detach())
            if inner < inner_steps - 1:
                _sgd_on(model, params, x_syn.detach(), y_syn, n_classes, model_steps, lr_model)
        if (outer + 1) % snapshot_every == 0 or outer == outer_steps - 1:
            snapshots.append(x_syn.detach().clone())
            steps.append(outer + 1)
    return Condensed(x_syn.detach(), y_syn, distances, torch.stack(snapshots), torch.tensor(steps))


def train_and_evaluate(make_model: MakeModel, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor,
                       y_test: torch.Tensor, *, seeds: Sequence[int] = (0, 1, 2), steps: int = 300,
                       lr: float = 0.1, momentum: float = 0.9) -> torch.Tensor:
    """Test accuracy of fresh networks trained on ``(x, y)``, one per seed.

    For each seed: ``make_model()`` with the global RNG seeded by it (in a fork,
    restored after), ``steps`` full-batch SGD steps with momentum on the
    cross-entropy of ``(x, y)``, then the share of ``x_test`` classified as ``y_test``.

    ``make_model`` as in :func:`condense`; ``x_test`` has the per-image shape, dtype
    and device of ``x``. Returns a ``(len(seeds),)`` float64 CPU tensor of accuracies.
    Reference: Zhao, Mopuri & Bilen (2021), the evaluation protocol.
    """
    _check_callable("make_model", make_model)
    x = _check_images("x", x)
    y = _check_labels("y", y, x, "x")
    xt = _check_images("x_test", x_test)
    _check_same("x_test", xt, x, "x", per_image=True)
    yt = _check_labels("y_test", y_test, xt, "x_test")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise TypeError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    seeds = [_check_int("seeds", s, 0, 2**63 - 1) for s in seeds]
    steps, lr, momentum = _check_int("steps", steps, 1), _check_positive("lr", lr), _check_momentum(momentum)
    n_classes = int(max(y.max(), yt.max())) + 1
    accuracies = []
    for s in seeds:
        model = _fresh_model(make_model, s, x)
        params = _check_model(model, x, "make_model()")
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(_logits(model, x, n_classes, "make_model()"), y)
            loss.backward(inputs=params)
            opt.step()
        if not bool(torch.isfinite(loss.detach())):
            raise ValueError(f"training diverged (loss {loss.item()}); lower lr")
        with torch.no_grad():
            pred = _logits(model, xt, n_classes, "make_model()").argmax(dim=1)
        accuracies.append((pred == yt).double().mean().item())
    return torch.tensor(accuracies, dtype=torch.float64)


# ---------------------------------------------------------------- feature visualisation

def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Squared total variation of each image: ``sum (x[i+1, j] - x[i, j])^2 + (x[i, j+1] - x[i, j])^2``.

    Args:
        x: ``(n, ..., H, W)`` float32/float64, at least 3 dimensions; the sum runs
            over all but the first.
    Returns:
        ``(n,)`` tensor, differentiable; 0 for constant images.
    Reference: Mahendran & Vedaldi (2015), the TV regulariser with beta = 2.
    """
    _check_images("x", x, min_ndim=3)  # validated; x itself stays in the caller's graph
    dv = (x[..., 1:, :] - x[..., :-1, :]).pow(2).reshape(len(x), -1).sum(dim=1)
    dh = (x[..., :, 1:] - x[..., :, :-1]).pow(2).reshape(len(x), -1).sum(dim=1)
    return dv + dh


def _objective_values(out, objective, n: int) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or not torch.is_floating_point(out):
        raise TypeError(f"model must return a floating tensor, got {getattr(out, 'dtype', type(out).__name__)}")
    if out.ndim == 0 or out.shape[0] != n:
        raise ValueError(f"model must return one output row per image, shape ({n}, ...), got {tuple(out.shape)}")
    if isinstance(objective, int):
        flat = out.reshape(n, -1)
        if objective >= flat.shape[1]:
            raise ValueError(f"objective={objective} but the model has {flat.shape[1]} output units")
        value = flat[:, objective]
    else:
        value = objective(out)
        if not isinstance(value, torch.Tensor) or not torch.is_floating_point(value) or value.shape != (n,):
            raise ValueError(f"objective must return shape ({n},), one float per image, got "
                             f"{getattr(value, 'dtype', type(value).__name__)} {tuple(getattr(value, 'shape', ()))}")
    if not bool(torch.isfinite(value.detach()).all()):
        raise ValueError("objective is not finite at these images")
    return value


def _check_objective(objective):
    if isinstance(objective, bool) or not (isinstance(objective, int) or callable(objective)):
        raise TypeError(f"objective must be an output-unit index (int) or a callable, got "
                        f"{type(objective).__name__}")
    if isinstance(objective, int) and objective < 0:
        raise ValueError(f"objective must be a unit index >= 0, got {objective}")
    return objective


def _check_bounds(bounds) -> tuple[float, float] | None:
    if bounds is None:
        return None
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise TypeError(f"bounds must be None or a pair (low, high), got {bounds!r}")
    lo, hi = _check_real("bounds", bounds[0]), _check_real("bounds", bounds[1])
    if not lo < hi:
        raise ValueError(f"bounds must have low < high, got {bounds!r}")
    return lo, hi


def visualize_feature(model: Callable[[torch.Tensor], torch.Tensor], objective: int | Objective,
                      shape: Sequence[int], *, steps: int = 200, lr: float = 0.05, l2: float = 0.0,
                      tv: float = 0.0, jitter: int = 0, bounds: tuple[float, float] | None = None,
                      init: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Activation maximisation: images that drive one unit (or any objective) up.

    Gradient ascent (Adam, step ``lr``) on
    ``J(x) = sum_i [ a(x_i) - l2 |x_i|^2 - tv TV(x_i) ]``, where ``a`` is output unit
    ``objective`` of ``model`` (an int, e.g. a class logit) or ``objective(model(x))``
    (a callable returning one value per image). At each step the model sees ``x``
    rolled by a random shift of up to ``jitter`` pixels along the last two
    dimensions; after each step ``x`` is clamped to ``bounds``.

    ``model``: callable on images of ``shape`` ``(n, ..., H, W)`` (at least 3 dims),
    e.g. an ``nn.Module`` (left unchanged). ``init``: starting images of that shape;
    if None, Gaussian noise of std 0.01 (times ``high - low`` around the box centre)
    in the model's parameter dtype and device (float32 CPU if it has none);
    ``generator``: for the noise and the shifts. Returns the images, detached.
    Reference: Erhan et al. (2009); Simonyan, Vedaldi & Zisserman (2014), class model
    visualisation; Nguyen, Yosinski & Clune (2016) for regularisers and facets.
    """
    _check_callable("model", model)
    objective = _check_objective(objective)
    shape = tuple(shape) if isinstance(shape, (tuple, list, torch.Size)) else shape
    if not isinstance(shape, tuple) or len(shape) < 3 or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"shape must be a tuple of at least 3 positive ints (n, ..., H, W), got {shape!r}")
    steps, lr = _check_int("steps", steps, 1), _check_positive("lr", lr)
    l2, tv = _check_real("l2", l2), _check_real("tv", tv)
    if l2 < 0 or tv < 0:
        raise ValueError(f"l2 and tv must be >= 0, got l2={l2}, tv={tv}")
    jitter = _check_int("jitter", jitter, 0, 2**31 - 1)
    bounds = _check_bounds(bounds)
    generator = _check_generator(generator)
    ref = next((p for p in model.parameters() if p.is_floating_point()), None) \
        if isinstance(model, torch.nn.Module) else None
    if init is not None:
        x = _check_images("init", init, min_ndim=3).clone()
        if tuple(x.shape) != shape:
            raise ValueError(f"init must have shape {shape}, got {tuple(x.shape)}")
        if ref is not None and (x.dtype != ref.dtype or x.device != ref.device):
            raise ValueError(f"init must be {ref.dtype} on {ref.device} like the model's parameters, "
                             f"got {x.dtype} on {x.device}")
    else:
        dtype = ref.dtype if ref is not None and ref.dtype in _DTYPES else torch.float32
        device = ref.device if ref is not None else torch.device("cpu")
        noise = torch.randn(shape, generator=generator, device=_draw_device(generator, device), dtype=dtype)
        x = 0.01 * noise.to(device)
        if bounds is not None:
            x = (bounds[0] + bounds[1]) / 2 + (bounds[1] - bounds[0]) * x
    x = (x if bounds is None else x.clamp(*bounds)).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr, maximize=True)
    for _ in range(steps):
        x_in = x
        if jitter:
            dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator,
                                   device=_draw_device(generator, x.device)).tolist()
            x_in = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        J = _objective_values(model(x_in), objective, shape[0]).sum()
        J = J - l2 * x.pow(2).sum() - tv * total_variation(x).sum() if (l2 or tv) else J
        (x.grad,) = torch.autograd.grad(J, x)
        if not bool(torch.isfinite(x.grad).all()):
            raise ValueError("the gradient of the objective is not finite at these images")
        opt.step()
        if bounds is not None:
            with torch.no_grad():
                x.clamp_(*bounds)
    return x.detach()


def _kmeans(P: torch.Tensor, k: int, iters: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from a k-means++ start: the cluster of each row of ``P``, and the centres."""
    draw_on = _draw_device(generator, P.device)
    centres = [P[int(torch.randint(0, len(P), (1,), generator=generator, device=draw_on))]]
    for _ in range(1, k):
        d2 = torch.cdist(P, torch.stack(centres)).pow(2).min(dim=1).values
        weights = d2 if float(d2.sum()) > 0 else torch.ones_like(d2)
        centres.append(P[int(torch.multinomial(weights.to(draw_on), 1, generator=generator))])
    C = torch.stack(centres)
    for _ in range(iters):
        assign = torch.cdist(P, C).argmin(dim=1)
        new = torch.stack([P[assign == j].mean(dim=0) if bool((assign == j).any()) else C[j] for j in range(k)])
        if torch.equal(new, C):
            break
        C = new
    return torch.cdist(P, C).argmin(dim=1), C


def multifaceted_init(model: Callable[[torch.Tensor], torch.Tensor], objective: int | Objective,
                      x: torch.Tensor, k: int, *, top: int | None = None,
                      features: Callable[[torch.Tensor], torch.Tensor] | None = None, iters: int = 50,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Starting images for multifaceted feature visualisation: ``k`` cluster means.

    Scores the images of ``x`` by the objective (as in :func:`visualize_feature`),
    keeps the ``top`` highest, clusters them by k-means (k-means++ start, Lloyd
    iterations) in the space of ``features(images)`` (flattened pixels if None) and
    returns the mean *image* of each cluster, largest cluster first. Starting
    :func:`visualize_feature` from each gives one visualisation per facet.

    ``x``: ``(N, ...)`` candidate images (e.g. the training set); ``top`` defaults to
    ``min(N, 10 k)``; ``features``: callable ``(m, ...) -> (m, d)``. Returns ``(k, ...)``
    images (a cluster left empty takes the image nearest its centre).
    Reference: Nguyen, Yosinski & Clune (2016), "Multifaceted Feature Visualization"
    (they cluster a hidden layer's code, embedded by t-SNE).
    """
    _check_callable("model", model)
    objective = _check_objective(objective)
    x = _check_images("x", x)
    k = _check_int("k", k, 1)
    top = min(len(x), 10 * k) if top is None else _check_int("top", top, 1, len(x))
    if k > top:
        raise ValueError(f"k={k} facets need at least k top images, got top={top}")
    if features is not None:
        _check_callable("features", features)
    iters, generator = _check_int("iters", iters, 1), _check_generator(generator)
    with torch.no_grad():
        scores = _objective_values(model(x), objective, len(x))
        chosen = x[scores.argsort(descending=True, stable=True)[:top]]
        P = chosen.reshape(top, -1) if features is None else features(chosen)
        if not isinstance(P, torch.Tensor) or not torch.is_floating_point(P) or P.ndim != 2 or len(P) != top:
            raise ValueError(f"features must return a floating ({top}, d) tensor, got "
                             f"{getattr(P, 'dtype', type(P).__name__)} {tuple(getattr(P, 'shape', ()))}")
        assign, C = _kmeans(_check_finite("features(x)", P), k, iters, generator)
        sizes = torch.bincount(assign, minlength=k)
        means = [chosen[assign == j].mean(dim=0) if int(sizes[j]) else chosen[int(torch.cdist(C[j:j + 1], P).argmin())]
                 for j in range(k)]
        return torch.stack([means[j] for j in sorted(range(k), key=lambda j: (-int(sizes[j]), j))])
