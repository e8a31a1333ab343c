"""Tests of lib/plot.py: the style and helpers draw what they say and reject bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lib import plot  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_use_style_sets_palette():
    plot.use_style()
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    assert [c.lower() for c in colors] == [c.lower() for c in plot.COLORS]
    assert matplotlib.rcParams["axes.grid"] is True


def test_scatter2d_one_collection_per_label(ax):
    x = torch.randn(30, 2)
    y = torch.arange(30) % 3
    plot.scatter2d(ax, x, y, title="t")
    assert len(ax.collections) == 3
    assert ax.get_title() == "t"
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    assert offsets.shape == (30, 2)


def test_scatter2d_bad_input(ax):
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plot.scatter2d(ax, torch.randn(5, 3))
    with pytest.raises(ValueError, match="5 entries"):
        plot.scatter2d(ax, torch.randn(5, 2), torch.zeros(4))
    with pytest.raises(TypeError, match="list"):
        plot.scatter2d(ax, [[0.0, 1.0]])


@pytest.mark.parametrize("shape", [(12, 64), (12, 8, 8), (12, 1, 8, 8)])
def test_image_grid_tiles(ax, shape):
    imgs = torch.rand(*shape)
    plot.image_grid(ax, imgs, ncols=5)
    canvas = ax.images[0].get_array()
    assert canvas.shape == (3 * 9 - 1, 5 * 9 - 1)
    # the first tile is the first image
    assert np.allclose(canvas[:8, :8], imgs.reshape(12, 8, 8)[0].numpy())


def test_image_grid_bad_input(ax):
    with pytest.raises(ValueError, match="square"):
        plot.image_grid(ax, torch.rand(3, 10))
    with pytest.raises(ValueError, match="ncols"):
        plot.image_grid(ax, torch.rand(3, 64), ncols=0)
    with pytest.raises(ValueError, match="titles"):
        plot.image_grid(ax, torch.rand(3, 64), titles=["a"])


def test_reference_slope(ax):
    line = plot.reference_slope(ax, 1e-3, 1e-6, 2.0, span=100)
    xs, ys = line.get_data()
    assert np.allclose(ys[1] / ys[0], (xs[1] / xs[0]) ** 2)
    with pytest.raises(ValueError, match="x0"):
        plot.reference_slope(ax, -1.0, 1.0, 1.0)


# ------------------------------------------------------------------ found by tests/test_fuzz.py


def test_scatter2d_refuses_non_finite_points_and_bad_options(ax):
    x = torch.randn(5, 2)
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot.scatter2d(None, x)
    with pytest.raises(ValueError, match="x must be finite, got 1 NaN or inf entries"):
        plot.scatter2d(ax, torch.tensor([[0.0, float("nan")], [1.0, 1.0]]))
    with pytest.raises(TypeError, match="x must hold real numbers, got dtype complex64"):
        plot.scatter2d(ax, np.zeros((3, 2), np.complex64))
    with pytest.raises(ValueError, match="labels must be finite"):
        plot.scatter2d(ax, x, np.full(5, np.nan))
    with pytest.raises(ValueError, match="s must be a positive finite number"):
        plot.scatter2d(ax, x, s=0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        plot.scatter2d(ax, x, alpha=1.5)
    with pytest.raises(TypeError, match="title must be a str or None, got int"):
        plot.scatter2d(ax, x, title=5)
    assert not ax.collections  # refused before drawing


def test_image_grid_checks_options_before_drawing(ax):
    imgs = torch.rand(3, 64)
    with pytest.raises(TypeError, match="titles must be a sequence of 3 strings, got int"):
        plot.image_grid(ax, imgs, titles=3)
    with pytest.raises(ValueError, match="titles must have 3 entries"):
        plot.image_grid(ax, imgs, titles=["a"])
    with pytest.raises(ValueError, match="vmin must be a finite number"):
        plot.image_grid(ax, imgs, vmin=float("nan"))
    with pytest.raises(ValueError, match="cmap must name a matplotlib colormap, got 'nope'"):
        plot.image_grid(ax, imgs, cmap="nope")
    with pytest.raises(ValueError, match="images must be finite"):
        plot.image_grid(ax, torch.full((3, 64), float("inf")))
    assert not ax.images


def test_reference_slope_refuses_non_finite_lines(ax):
    with pytest.raises(ValueError, match="slope must be a finite number, got nan"):
        plot.reference_slope(ax, 1.0, 1.0, float("nan"))
    with pytest.raises(ValueError, match="x0 must be a positive finite number"):
        plot.reference_slope(ax, float("inf"), 1.0, 1.0)
    with pytest.raises(TypeError, match="y0 must be a number, got bool"):
        plot.reference_slope(ax, 1.0, True, 1.0)
    with pytest.raises(ValueError, match="leaves the positive float64 range"):
        plot.reference_slope(ax, 1.0, 1.0, 1e5, span=1e3)
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot.reference_slope("ax", 1.0, 1.0, 1.0)
