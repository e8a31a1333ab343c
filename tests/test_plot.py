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
