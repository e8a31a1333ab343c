"""Sample-quality measures: how close are generated samples to the data?

Part VI (chapters 22-26, ``book/23_diffusion.md`` onwards) claims that one
sampler's output is "closer to the data" than another's. These functions make
"closer" a number, each with a stated definition:

* :func:`mmd`: the squared maximum mean discrepancy between two sample sets
  under a sum of Gaussian (RBF) kernels with fixed bandwidths (unbiased
  U-statistic, so it is near 0, and can be slightly negative, for two samples
  of one distribution).
* :func:`sliced_wasserstein`: the sliced p-Wasserstein distance, the average
  over random unit directions of the 1-D Wasserstein distance between the
  projected samples (exact in 1-D through sorting / quantiles).
* :func:`nearest_neighbour_distance`: for each sample, the Euclidean distance
  to the nearest row of a reference set (memorisation and "does it look like
  the data" in one number).
* :func:`train_classifier`, :func:`classifier_confidence`,
  :func:`class_accuracy`: a small MLP classifier on flattened inputs, its mean
  top-class probability on samples, and the share of samples it assigns to the
  requested class.

References: Gretton, Borgwardt, Rasch, Schoelkopf & Smola (2012), "A Kernel
Two-Sample Test" (the unbiased MMD estimate, Lemma 6); Bonneel, Rabin, Peyre &
Pfister (2015), "Sliced and Radon Wasserstein Barycenters of Measures" (the
sliced distance).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from .calculus import _check_finite
from .curvature import (_check_callable, _check_generator, _check_int, _check_positive,
                        _check_real)

__all__ = ["mmd", "sliced_wasserstein", "nearest_neighbour_distance", "train_classifier",
           "classifier_confidence", "class_accuracy"]

DEFAULT_BANDWIDTHS = (0.25, 0.5, 1.0, 2.0, 4.0)


# ---------------------------------------------------------------- validation

def _samples(name: str, x, min_rows: int = 1) -> torch.Tensor:
    """``x`` as a float (n, d) matrix: rows are samples, trailing dimensions are flattened."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of samples, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"{name} must have a leading sample dimension, got a 0-dim tensor")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} samples (rows), got shape "
                         f"{tuple(x.shape)}")
    x = x.detach().reshape(x.shape[0], -1)
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature per sample, got shape {tuple(x.shape)}")
    return _check_finite(name, x)


def _pair(x, y, min_rows: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _samples("x", x, min_rows), _samples("y", y, min_rows)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of features per sample, got {x.shape[1]} "
                         f"and {y.shape[1]}")
    if x.device != y.device:
        raise ValueError(f"x and y must be on one device, got {x.device} and {y.device}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    if dtype not in (torch.float32, torch.float64):
        dtype = torch.float32  # half precision would lose the small differences MMD measures
    return x.to(dtype), y.to(dtype)


def _labels(name: str, labels, n: int, device) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an int64 tensor of class indices, got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one label per sample), got {tuple(labels.shape)}")
    if n and int(labels.min()) < 0:
        raise ValueError(f"{name} must be non-negative class indices, got {int(labels.min())}")
    return labels.to(device=device, dtype=torch.int64)


def _logits(classifier: Callable, x: torch.Tensor, n: int) -> torch.Tensor:
    _check_callable("classifier", classifier)
    with torch.no_grad():
        out = classifier(x)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != n or out.shape[1] < 2:
        raise ValueError(f"classifier must return logits of shape ({n}, n_classes >= 2), got "
                         f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    return _check_finite("classifier's logits", out)


# ---------------------------------------------------------------- distances

def mmd(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS) -> torch.Tensor:
    """Unbiased squared MMD between samples ``x`` (n, ...) and ``y`` (m, ...), n, m >= 2.

    The kernel is ``k(a, b) = sum_h exp(-|a - b|^2 / (2 h^2))`` over ``bandwidths``
    (in the units of the data; trailing dimensions are flattened). Returns a
    0-dim tensor ``mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean k(x_i, y_j)``.

    Reference: Gretton et al. (2012), "A Kernel Two-Sample Test", Lemma 6.
    """
    x, y = _pair(x, y, min_rows=2)
    if isinstance(bandwidths, (str, bytes)) or not isinstance(bandwidths, Sequence) or not bandwidths:
        raise TypeError(f"bandwidths must be a non-empty sequence of positive numbers, got {bandwidths!r}")
    h = [_check_positive("bandwidths", b) for b in bandwidths]
    dtype, x, y = x.dtype, x.double(), y.double()  # float64 inside: tiny or huge bandwidths stay finite

    # 1 / (2 h^2), capped so that a tiny bandwidth gives exp(-0 * cap) = 1 and exp(-d^2 * cap) = 0
    scales = [1e300 if float(b) < 1e-150 else min(0.5 / (float(b) * float(b)), 1e300) for b in h]

    def kernel_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(a, b).square_()
        out = torch.zeros_like(d2)
        for c in scales:
            out += torch.exp(d2 * -c)
        return out

    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = kernel_sum(x, x), kernel_sum(y, y), kernel_sum(x, y)
    diag = float(len(bandwidths))  # k(a, a) = one per bandwidth
    return ((kxx.sum() - n * diag) / (n * (n - 1)) + (kyy.sum() - m * diag) / (m * (m - 1))
            - 2.0 * kxy.mean()).to(dtype)


def _quantiles(sorted_proj: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Empirical quantile function (left-continuous inverse CDF) of sorted columns at ``levels``."""
    n = sorted_proj.shape[0]
    idx = torch.clamp(torch.ceil(levels * n).long() - 1, 0, n - 1)
    return sorted_proj[idx]


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_projections: int = 128, p: int = 2,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Sliced p-Wasserstein distance between samples ``x`` (n, ...) and ``y`` (m, ...).

    ``(mean_theta W_p^p(theta . x, theta . y))^(1/p)`` over ``n_projections`` random
    unit directions ``theta`` (drawn with ``generator``). Each 1-D distance is exact:
    the integral over levels of |F^-1 - G^-1|^p, evaluated on the union of the two
    empirical quantile grids (sorting when n == m). Returns a 0-dim tensor.

    Reference: Bonneel et al. (2015), "Sliced and Radon Wasserstein Barycenters of Measures".
    """
    x, y = _pair(x, y)
    _check_int("n_projections", n_projections, 1, 1_000_000)
    _check_int("p", p, 1, 16)
    _check_generator(generator)
    d = x.shape[1]
    theta = torch.randn(d, n_projections, generator=generator, dtype=torch.float64,
                        device=generator.device if generator is not None else "cpu")
    theta = (theta / theta.norm(dim=0, keepdim=True)).to(device=x.device, dtype=x.dtype)
    px, _ = torch.sort(x @ theta, dim=0)
    py, _ = torch.sort(y @ theta, dim=0)
    n, m = px.shape[0], py.shape[0]
    if n == m:
        cost = (px - py).abs().pow(p).mean(0)
    else:  # piecewise-constant quantile functions: integrate exactly over the merged breakpoints
        grid = torch.unique(torch.cat([torch.arange(1, n + 1, device=x.device, dtype=x.dtype) / n,
                                       torch.arange(1, m + 1, device=x.device, dtype=x.dtype) / m]))
        grid = torch.clamp(grid, max=1.0)
        widths = torch.diff(grid, prepend=grid.new_zeros(1))
        mid = grid - widths / 2
        cost = ((_quantiles(px, mid) - _quantiles(py, mid)).abs().pow(p) * widths[:, None]).sum(0)
    return cost.mean().pow(1.0 / p)


def nearest_neighbour_distance(x: torch.Tensor, reference: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """For each row of ``x`` (n, ...), the Euclidean distance to its nearest row of ``reference`` (m, ...).

    Trailing dimensions are flattened. Returns a tensor of shape (n,). Computed in
    chunks of ``chunk`` rows, so memory stays O(chunk * m).

    Reference: the nearest-neighbour "memorisation" distance used to compare samples with data.
    """
    x, reference = _pair(x, reference)
    _check_int("chunk", chunk, 1)
    return torch.cat([torch.cdist(part, reference).min(dim=1).values for part in x.split(chunk)])


# ---------------------------------------------------------------- classifier-based

def train_classifier(x: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None, *,
                     hidden: int = 128, steps: int = 500, lr: float = 1e-2, weight_decay: float = 1e-4,
                     batch_size: int = 256, generator: torch.Generator | None = None) -> nn.Module:
    """A Linear-ReLU-Linear classifier of flattened inputs ``x`` (n, ...) trained with Adam.

    Trained for ``steps`` minibatch steps of cross-entropy (batches drawn with
    ``generator``); returned in eval mode on ``x``'s device and dtype. It maps a
    batch (b, ...) to logits (b, n_classes).

    Reference: a standard softmax-regression MLP, the "separately trained classifier" of the Part VI claims.
    """
    x = _samples("x", x, min_rows=2)
    labels = _labels("labels", labels, x.shape[0], x.device)
    k = int(labels.max()) + 1 if n_classes is None else _check_int("n_classes", n_classes, 2)
    if int(labels.max()) >= k:
        raise ValueError(f"labels must be < n_classes = {k}, got {int(labels.max())}")
    k = max(k, 2)
    _check_int("hidden", hidden, 1)
    _check_int("steps", steps, 0)
    _check_int("batch_size", batch_size, 1)
    lr = _check_positive("lr", lr)
    if _check_real("weight_decay", weight_decay) < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    _check_generator(generator)
    gen = generator if generator is not None else torch.Generator(device=x.device).manual_seed(0)
    init = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen, device=gen.device)))
    d = x.shape[1]
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, k))
    with torch.no_grad():
        for layer in (model[1], model[3]):
            bound = layer.in_features ** -0.5
            layer.weight.copy_(torch.empty_like(layer.weight).uniform_(-bound, bound, generator=init))
            layer.bias.zero_()
    model = model.to(device=x.device, dtype=x.dtype)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = x.shape[0]
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=gen, device=gen.device).to(x.device)
        loss = nn.functional.cross_entropy(model(x[idx]), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def classifier_confidence(classifier: Callable, x: torch.Tensor) -> torch.Tensor:
    """Mean top-class softmax probability of ``classifier`` on samples ``x`` (n, ...): a 0-dim tensor.

    ``classifier`` maps (n, ...) to logits (n, n_classes); evaluated without gradients.

    Reference: the "classifier confidence" sample-quality proxy (as the Inception score's sharpness term).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of samples, got {type(x).__name__}")
    _samples("x", x)
    logits = _logits(classifier, x, x.shape[0])
    return torch.softmax(logits.double(), dim=1).max(dim=1).values.mean().to(logits.dtype)


def class_accuracy(classifier: Callable, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of samples ``x`` (n, ...) that ``classifier`` assigns to the requested ``labels`` (n,).

    Reference: the conditional-generation check "a separately trained classifier agrees".
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of samples, got {type(x).__name__}")
    _samples("x", x)
    labels = _labels("labels", labels, x.shape[0], x.device)
    logits = _logits(classifier, x, x.shape[0])
    if int(labels.max()) >= logits.shape[1]:
        raise ValueError(f"labels must be < the classifier's {logits.shape[1]} classes, got {int(labels.max())}")
    return float((logits.argmax(dim=1) == labels).double().mean())
