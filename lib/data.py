"""The data sets of the book, all made in code or from data bundled with a package.

Introduced in the tour lab (chapter 0); every later lab takes its data from here.
Nothing is downloaded. Every function is deterministic for a given ``seed``: it
draws from its own ``torch.Generator`` (or NumPy ``RandomState``) and never touches
the global random state.

* 2-D toys: :func:`gaussian_mixture`, :func:`ring_of_gaussians`, :func:`two_moons`,
  :func:`rings` (score models, flows and classifiers in chapters 9, 22, 25).
* :func:`digits`: scikit-learn's bundled 8x8 handwritten digits (1797 images),
  the book's "MNIST" (chapters 2, 4, 7, 16, 19-24).
* :func:`block_digits`: BlockMNIST-style 16x8 images, a digit stacked with a
  fixed null block in random order (chapter 19; Shah et al. 2021).
* :func:`modular_table`: all pairs ``(a, b)`` with label ``(a op b) mod p``, the
  grokking set-up (chapter 8; Power et al. 2022, Nanda et al. 2023).

All return CPU float32 tensors (labels int64) unless a ``device`` is given.
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import numpy as np
import torch

from .runtime import _check_device

__all__ = [
    "Split",
    "gaussian_mixture",
    "ring_of_gaussians",
    "two_moons",
    "rings",
    "digits",
    "block_digits",
    "modular_table",
    "one_hot_pairs",
]


class Split(NamedTuple):
    """A train/test split: inputs ``x_*`` and integer labels ``y_*``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


# ---------------------------------------------------------------- validation


_INT64_MAX = 2**63 - 1  # the largest size torch can hold


def _check_int(name: str, value, low: int, high: float = _INT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if not low <= value <= high:
        bound = f">= {low}" if high == _INT64_MAX else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def _check_float(name: str, value, low: float, high: float = math.inf, low_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    value = float(value) if abs(value) <= sys.float_info.max else math.inf  # ints beyond float64
    ok = (low < value if low_open else low <= value) and value <= high
    if not ok or not math.isfinite(value):
        left = "(" if low_open else "["
        right = ")" if high == math.inf else "]"
        raise ValueError(f"{name} must be finite and in {left}{low}, {high}{right}, got {value}")
    return value


def _floats(name: str, value) -> torch.Tensor:
    """A number, nested list, array or tensor of reals as a float32 tensor, refusing NaN and inf."""
    if isinstance(value, torch.Tensor):
        bad = value.is_complex() or value.dtype == torch.bool
    elif isinstance(value, np.ndarray):
        bad = value.dtype.kind not in "iuf"
    else:
        bad = isinstance(value, bool) or not isinstance(value, (int, float, np.number, list, tuple))
    if bad:
        raise TypeError(f"{name} must be a number, a (nested) list, array or tensor of real numbers, got "
                        f"{type(value).__name__} {getattr(value, 'dtype', '')}".rstrip())
    try:
        t = torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:  # strings, None, ragged lists
        raise TypeError(f"{name} must hold real numbers in a rectangular (nested) list: {err}") from None
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (in float32), got {t.flatten()[:8].tolist()}")
    return t


def _generator(seed) -> torch.Generator:
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    return torch.Generator().manual_seed(seed)


def _to(device, *tensors):
    out = tuple(t.to(device) if device is not None else t for t in tensors)
    return out if len(out) > 1 else out[0]


# ---------------------------------------------------------------- 2-D toys


def gaussian_mixture(
    n: int,
    means,
    std: float | list = 1.0,
    weights=None,
    seed: int = 0,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``n`` points from an isotropic Gaussian mixture in ``d`` dimensions.

    Args:
        n: number of samples.
        means: ``(k, d)`` component means (tensor, array or nested list).
        std: one standard deviation for all components, or ``k`` of them.
        weights: ``k`` non-negative mixture weights (normalised here); uniform if None.
        seed: seed of the private generator.
        device: where to put the result (CPU if None).

    Returns:
        ``x`` of shape ``(n, d)`` (float32) and the component index ``c`` of
        shape ``(n,)`` (int64). Chapter 22 uses the same parameters for the
        analytic score.
    Reference: textbook Gaussian mixture; used for score matching in Song et al.
    (2021), "Score-Based Generative Modeling through SDEs".
    """
    n = _check_int("n", n, 1)
    device = _check_device(device)
    means = _floats("means", means)
    if means.ndim != 2 or means.shape[0] < 1:
        raise ValueError(f"means must have shape (k, d) with k >= 1, got {tuple(means.shape)}")
    k, d = means.shape
    stds = _floats("std", std).flatten()
    if stds.numel() == 1:
        stds = stds.expand(k)
    if stds.numel() != k:
        raise ValueError(f"std must be a number or have k={k} entries, got {stds.numel()}")
    if not torch.all(stds > 0):
        raise ValueError(f"std must be positive, got {stds.tolist()}")
    if weights is None:
        w = torch.full((k,), 1.0 / k)
    else:
        w = _floats("weights", weights).flatten()
        if w.numel() != k:
            raise ValueError(f"weights must have k={k} entries, got {w.numel()}")
        if torch.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {w.tolist()}")
        w = w / w.sum()
    g = _generator(seed)
    c = torch.multinomial(w, n, replacement=True, generator=g)
    x = means[c] + stds[c, None] * torch.randn(n, d, generator=g)
    return _to(device, x, c)


def ring_of_gaussians(
    n: int, k: int = 8, radius: float = 4.0, std: float = 0.3, seed: int = 0, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` equal-weight Gaussians with centres evenly spaced on a circle.

    Returns ``x`` of shape ``(n, 2)`` and component labels ``(n,)``. With the
    defaults, the target of the rectified-flow lab (chapter 25).
    Reference: the "8 Gaussians" toy of Liu et al. (2023), "Flow Straight and Fast".
    """
    k = _check_int("k", k, 1)
    radius = _check_float("radius", radius, 0.0)
    _check_device(device)
    angles = 2 * math.pi * torch.arange(k, dtype=torch.float32) / k
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return gaussian_mixture(n, means, std=std, seed=seed, device=device)


def two_moons(
    n: int, noise: float = 0.1, seed: int = 0, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles, ``n // 2`` points each (``n`` even).

    Returns ``x`` of shape ``(n, 2)``, roughly centred, and labels in {0, 1}.
    Reference: the classic toy of scikit-learn's ``make_moons``, drawn here with
    torch so that the seed fixes it.
    """
    n = _check_int("n", n, 2)
    if n % 2:
        raise ValueError(f"n must be even (two equal halves), got {n}")
    noise = _check_float("noise", noise, 0.0)
    device = _check_device(device)
    g = _generator(seed)
    half = n // 2
    t = math.pi * torch.rand(half, generator=g)
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    t = math.pi * torch.rand(half, generator=g)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.cat([upper, lower]) - torch.tensor([0.5, 0.25])
    x = x + noise * torch.randn(n, 2, generator=g)
    y = torch.cat([torch.zeros(half, dtype=torch.long), torch.ones(half, dtype=torch.long)])
    return _to(device, x, y)


def rings(
    n: int, radii=(1.0, 2.0), noise: float = 0.05, seed: int = 0, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concentric circles; point ``i`` lies on ring ``i % len(radii)``.

    Returns ``x`` of shape ``(n, 2)`` and the ring index as label.
    Reference: the classic "circles" toy (scikit-learn's ``make_circles``).
    """
    n = _check_int("n", n, 1)
    radii = _floats("radii", radii).flatten()
    if radii.numel() < 1 or torch.any(radii <= 0):
        raise ValueError(f"radii must be a non-empty list of positive numbers, got {radii.tolist()}")
    noise = _check_float("noise", noise, 0.0)
    device = _check_device(device)
    g = _generator(seed)
    y = torch.arange(n) % radii.numel()
    t = 2 * math.pi * torch.rand(n, generator=g)
    x = radii[y, None] * torch.stack([torch.cos(t), torch.sin(t)], 1)
    x = x + noise * torch.randn(n, 2, generator=g)
    return _to(device, x, y)


# ---------------------------------------------------------------- digits


def digits(
    test_fraction: float = 0.25,
    seed: int = 0,
    pixel_range: str = "unit",
    flatten: bool = True,
    device=None,
) -> Split:
    """The 1797 8x8 handwritten digits bundled with scikit-learn, split stratified.

    Args:
        test_fraction: share of each class held out for testing, in (0, 1).
        seed: seed of the shuffle.
        pixel_range: ``"unit"`` for pixels in [0, 1] (classifiers) or
            ``"symmetric"`` for [-1, 1] (diffusion models, chapters 23-24).
        flatten: ``(N, 64)`` if True, else ``(N, 1, 8, 8)`` images.
        device: where to put the tensors (CPU if None).

    Returns:
        :class:`Split` with float32 ``x`` and int64 labels 0-9.
    Reference: Alpaydin & Kaynak (1998), UCI optical recognition of handwritten
    digits, as shipped in ``sklearn.datasets.load_digits``.
    """
    from sklearn.datasets import load_digits  # bundled with scikit-learn

    test_fraction = _check_float("test_fraction", test_fraction, 0.0, 1.0, low_open=True)
    if test_fraction >= 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if pixel_range not in ("unit", "symmetric"):
        raise ValueError(f"pixel_range must be 'unit' or 'symmetric', got {pixel_range!r}")
    if not isinstance(flatten, bool):
        raise TypeError(f"flatten must be a bool, got {type(flatten).__name__} ({flatten!r})")
    device = _check_device(device)
    seed = _check_int("seed", seed, 0, 2**32 - 1)
    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    if pixel_range == "symmetric":
        x = 2 * x - 1
    y = torch.tensor(bunch.target, dtype=torch.long)
    rng = np.random.RandomState(seed)
    test_idx, train_idx = [], []
    for label in range(10):
        idx = np.flatnonzero(bunch.target == label)
        rng.shuffle(idx)
        n_test = int(round(test_fraction * len(idx)))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    train_idx = np.concatenate(train_idx)
    test_idx = np.concatenate(test_idx)
    rng.shuffle(train_idx)
    rng.shuffle(test_idx)
    if not flatten:
        x = x.reshape(-1, 1, 8, 8)
    tr, te = torch.as_tensor(train_idx), torch.as_tensor(test_idx)
    return Split(*_to(device, x[tr], y[tr], x[te], y[te]))


def _null_block() -> torch.Tensor:
    """The fixed 8x8 pattern of :func:`block_digits`: the outline of a 6x6 square, ink 1."""
    block = torch.zeros(8, 8)
    block[1:7, 1:7] = 1.0
    block[2:6, 2:6] = 0.0
    return block


def block_digits(
    split: str = "train",
    classes=(0, 1),
    test_fraction: float = 0.25,
    seed: int = 0,
    flatten: bool = False,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BlockMNIST-style images: an 8x8 digit and a fixed null block stacked vertically.

    Each 16x8 image holds a *signal* block (a digit of one of ``classes``) and a
    *null* block (the same pattern for every image: the outline of a square, which
    carries no class information), one above the other; which of the two is on
    top is drawn at random per image, so the signal's position varies. Only the
    signal block decides the label, so an attribution method can be scored by the
    share of its mass on the signal block (chapter 19).

    Args:
        split: ``"train"`` or ``"test"``: the digits of :func:`digits` (same
            ``test_fraction`` and ``seed``), so the two splits never share a digit.
        classes: at least two distinct digit classes in 0-9; label ``k`` means
            ``classes[k]``.
        test_fraction: share of each class held out for ``"test"``, in (0, 1).
        seed: seed of the split and of the block order.
        flatten: ``(N, 128)`` if True, else ``(N, 1, 16, 8)`` images.
        device: where to put the tensors (CPU if None).

    Returns:
        ``x`` (float32, pixels in [0, 1]), labels ``y`` (int64, ``(N,)``, in
        ``[0, len(classes))``) and ``mask`` (bool, shaped like ``x``, True on the
        pixels of the signal block; ``mask[:, 0, 0, 0]`` says the signal is on top).
    Reference: Shah, Jain & Netrapalli (2021), "Do Input Gradients Highlight
    Discriminative Features?", section 4 (BlockMNIST), built here from the 8x8
    digits of Alpaydin & Kaynak (1998).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (tuple, list)):
        raise TypeError(f"classes must be a tuple or list of digit classes, got {type(classes).__name__}")
    classes = [_check_int("classes entry", c, 0, 9) for c in classes]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must hold at least two distinct digits, got {classes}")
    if not isinstance(flatten, bool):
        raise TypeError(f"flatten must be a bool, got {type(flatten).__name__} ({flatten!r})")
    device = _check_device(device)
    seed = _check_int("seed", seed, 0, 2**32 - 1)
    parts = digits(test_fraction=test_fraction, seed=seed, flatten=False)
    g = _generator(seed)
    on_top = {name: torch.rand(len(labels), generator=g) < 0.5
              for name, labels in (("train", parts.y_train), ("test", parts.y_test))}
    x, y = (parts.x_train, parts.y_train) if split == "train" else (parts.x_test, parts.y_test)
    keep = torch.isin(y, torch.tensor(classes))
    signal, top = x[keep], on_top[split][keep]
    y = torch.tensor([classes.index(int(c)) for c in y[keep]], dtype=torch.long)
    null = _null_block().expand_as(signal)
    t = top[:, None, None, None]
    images = torch.cat([torch.where(t, signal, null), torch.where(t, null, signal)], dim=2)
    ones, zeros = torch.ones_like(signal, dtype=torch.bool), torch.zeros_like(signal, dtype=torch.bool)
    mask = torch.cat([torch.where(t, ones, zeros), torch.where(t, zeros, ones)], dim=2)
    if flatten:
        images, mask = images.reshape(-1, 128), mask.reshape(-1, 128)
    return _to(device, images, y, mask)


# ---------------------------------------------------------------- modular arithmetic

_OPS = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: (a * b) % p,
}


def modular_table(
    p: int = 47, op: str = "add", train_fraction: float = 0.4, seed: int = 0, device=None
) -> Split:
    """All ``p * p`` pairs ``(a, b)`` labelled ``(a op b) mod p``, split at random.

    Args:
        p: the modulus (at least 2).
        op: ``"add"``, ``"sub"`` or ``"mul"``.
        train_fraction: share of the pairs used for training, in (0, 1).

    Returns:
        :class:`Split` whose ``x`` are int64 pairs of shape ``(N, 2)`` and ``y``
        int64 labels in ``[0, p)``. Use :func:`one_hot_pairs` for a network input.
    Reference: Power et al. (2022), "Grokking: Generalization Beyond Overfitting on
    Small Algorithmic Datasets"; the set-up of chapter 8.
    """
    p = _check_int("p", p, 2)
    if op not in _OPS:
        raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    train_fraction = _check_float("train_fraction", train_fraction, 0.0, 1.0, low_open=True)
    if train_fraction >= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    device = _check_device(device)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    pairs = torch.stack([a.flatten(), b.flatten()], 1)
    labels = _OPS[op](pairs[:, 0], pairs[:, 1], p)
    perm = torch.randperm(p * p, generator=_generator(seed))
    n_train = max(1, min(p * p - 1, int(round(train_fraction * p * p))))
    tr, te = perm[:n_train], perm[n_train:]
    return Split(*_to(device, pairs[tr], labels[tr], pairs[te], labels[te]))


def one_hot_pairs(pairs: torch.Tensor, p: int) -> torch.Tensor:
    """Concatenate one-hot(a) and one-hot(b): ``(N, 2)`` int pairs -> ``(N, 2p)`` floats.

    Reference: the input encoding of the grokking feasibility notes (chapter 8).
    """
    p = _check_int("p", p, 2)
    if not isinstance(pairs, torch.Tensor) or pairs.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"pairs must be an integer tensor, got {type(pairs).__name__} "
                        f"{getattr(pairs, 'dtype', '')}")
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must have shape (N, 2), got {tuple(pairs.shape)}")
    if pairs.numel() and (pairs.min() < 0 or pairs.max() >= p):
        raise ValueError(f"entries of pairs must lie in [0, {p}) (p={p}), got range "
                         f"[{int(pairs.min())}, {int(pairs.max())}]")
    eye = torch.eye(p, device=pairs.device)
    return torch.cat([eye[pairs[:, 0]], eye[pairs[:, 1]]], dim=1)
