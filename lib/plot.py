"""The book's figure style and a few plotting helpers.

Introduced in the tour lab (chapter 0). Labs call :func:`use_style` once (the
setup cell does it through ``import lib.plot``) and then plain matplotlib; the
helpers here cover the pictures that recur across chapters: 2-D point clouds,
grids of 8x8 digits, and reference slopes on log-log axes.

This module and ``lib/runtime.py`` are the only places allowed global state
(matplotlib's ``rcParams``).
"""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["COLORS", "use_style", "scatter2d", "image_grid", "reference_slope"]

#: Colour-blind-safe palette (Okabe & Ito), used in this order across the book.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

_STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply the book's matplotlib style (palette, sizes, grid, layout).

    Reference: none (book infrastructure).
    """
    matplotlib.rcParams.update(_STYLE)
    matplotlib.rcParams["axes.prop_cycle"] = matplotlib.cycler(color=list(COLORS))


def _numpy(name: str, a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        if a.dtype == torch.bfloat16:  # NumPy has no bfloat16
            a = a.float()
        a = a.detach().cpu().numpy()
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(a).__name__}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {int(np.sum(~np.isfinite(a)))} NaN or inf entries")
    return a


def _check_ax(ax) -> None:
    if not isinstance(ax, matplotlib.axes.Axes):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()), got {type(ax).__name__}")


def _check_number(name: str, v, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(v).__name__} ({v!r})")
    try:
        value = float(v)
    except OverflowError:  # a Python int beyond float64
        value = math.inf
    if not math.isfinite(value) or (positive and not value > 0):
        raise ValueError(f"{name} must be a {'positive ' if positive else ''}finite number, got {v!r}")
    return value


def scatter2d(ax, x, labels=None, title: str | None = None, s: float = 4, alpha: float = 0.6, **kw):
    """Scatter ``(n, 2)`` points on ``ax``, coloured by integer ``labels`` if given.

    Sets equal aspect and labels the axes ``x_1``/``x_2``. Returns ``ax``.
    Reference: none (book infrastructure).
    """
    _check_ax(ax)
    pts = _numpy("x", x)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"x must have shape (n, 2), got {pts.shape}")
    s = _check_number("s", s, positive=True)
    if not 0 <= _check_number("alpha", alpha) <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {type(title).__name__}")
    if labels is None:
        ax.scatter(pts[:, 0], pts[:, 1], s=s, alpha=alpha, color=COLORS[0], **kw)
    else:
        lab = _numpy("labels", labels).reshape(-1)
        if lab.shape[0] != pts.shape[0]:
            raise ValueError(f"labels must have {pts.shape[0]} entries, got {lab.shape[0]}")
        for i, value in enumerate(np.unique(lab)):
            m = lab == value
            ax.scatter(pts[m, 0], pts[m, 1], s=s, alpha=alpha,
                       color=COLORS[i % len(COLORS)], label=str(value), **kw)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return ax


def image_grid(ax, images, ncols: int = 10, titles=None, vmin=None, vmax=None, cmap="gray_r"):
    """Tile square images into one picture on ``ax``.

    ``images`` has shape ``(n, side*side)``, ``(n, side, side)`` or
    ``(n, 1, side, side)``. Rows fill left to right; empty cells stay blank.
    ``titles`` (optional, ``n`` strings) are written above each image.
    Returns ``ax``.
    Reference: none (book infrastructure).
    """
    _check_ax(ax)
    imgs = _numpy("images", images).astype(float)
    if imgs.ndim == 4 and imgs.shape[1] == 1:
        imgs = imgs[:, 0]
    if imgs.ndim == 2:
        side = int(round(math.sqrt(imgs.shape[1])))
        if side * side != imgs.shape[1]:
            raise ValueError(f"flat images must have a square number of pixels, got {imgs.shape[1]}")
        imgs = imgs.reshape(-1, side, side)
    if imgs.ndim != 3 or imgs.shape[1] != imgs.shape[2] or imgs.shape[0] == 0:
        raise ValueError(f"images must be (n, s*s), (n, s, s) or (n, 1, s, s) with n >= 1, "
                         f"got {_numpy('images', images).shape}")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    n, side, _ = imgs.shape
    if titles is not None:  # checked before anything is drawn
        if isinstance(titles, str) or not hasattr(titles, "__len__"):
            raise TypeError(f"titles must be a sequence of {n} strings, got {type(titles).__name__}")
        if len(titles) != n:
            raise ValueError(f"titles must have {n} entries, got {len(titles)}")
    for name, v in (("vmin", vmin), ("vmax", vmax)):
        if v is not None:
            _check_number(name, v)
    if vmin is not None and vmax is not None and not vmin < vmax:
        raise ValueError(f"vmin must be below vmax, got vmin={vmin}, vmax={vmax}")
    if not isinstance(cmap, (str, matplotlib.colors.Colormap)):
        raise TypeError(f"cmap must be a colormap name or a Colormap, got {type(cmap).__name__}")
    if isinstance(cmap, str) and cmap not in matplotlib.colormaps:
        raise ValueError(f"cmap must name a matplotlib colormap, got {cmap!r}")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    pad = 1
    canvas = np.full((nrows * (side + pad) - pad, ncols * (side + pad) - pad), np.nan)
    for i, img in enumerate(imgs):
        r, c = divmod(i, ncols)
        canvas[r * (side + pad): r * (side + pad) + side, c * (side + pad): c * (side + pad) + side] = img
    ax.imshow(canvas, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if titles is not None:
        for i, t in enumerate(titles):
            r, c = divmod(i, ncols)
            ax.text(c * (side + pad) + side / 2 - 0.5, r * (side + pad) - 0.6, str(t),
                    ha="center", va="bottom", fontsize=8)
    return ax


def reference_slope(ax, x0: float, y0: float, slope: float, span: float = 10.0, label=None, **kw):
    """Draw the line ``y = y0 * (x / x0) ** slope`` over ``[x0, x0 * span]`` on log-log axes.

    Used to compare a measured error curve with its theoretical order (e.g. the
    ``h**2`` of central differences in chapter 1). Returns the line.
    Reference: none (book infrastructure).
    """
    _check_ax(ax)
    x0, y0, span = (_check_number(name, v, positive=True)
                    for name, v in (("x0", x0), ("y0", y0), ("span", span)))
    slope = _check_number("slope", slope)
    xs = np.array([x0, x0 * span])
    with np.errstate(all="ignore"):
        ys = y0 * (xs / x0) ** slope
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys)) and np.all(ys > 0)):
        raise ValueError(f"the line from x0={x0}, y0={y0} with slope={slope} over span={span} leaves the "
                         "positive float64 range (log axes need 0 < x, y < inf)")
    kw.setdefault("color", "0.4")
    kw.setdefault("linestyle", "--")
    (line,) = ax.loglog(xs, ys, label=label, **kw)
    return line


use_style()
