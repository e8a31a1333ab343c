"""Tests of lib.metrics against brute-force and closed-form references."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from lib import metrics
from lib.data import digits


def brute_mmd(x, y, bandwidths):
    def k(a, b):
        return sum(math.exp(-float(((a - b) ** 2).sum()) / (2 * h * h)) for h in bandwidths)
    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 7), m=st.integers(2, 7), d=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_mmd_matches_brute_force(n, m, d, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(m, d, generator=g, dtype=torch.float64)
    bw = (0.5, 2.0)
    assert float(metrics.mmd(x, y, bw)) == pytest.approx(brute_mmd(x, y, bw), abs=1e-12)


def test_mmd_separates_distributions_and_flattens():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(400, 2, 2, generator=g), torch.randn(400, 2, 2, generator=g)
    same, shifted = metrics.mmd(x, y), metrics.mmd(x, y + 1.0)
    assert abs(float(same)) < 0.01 < float(shifted)
    assert metrics.mmd(x, y).shape == ()


def test_sliced_wasserstein_one_dimension_is_exact():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, 1, generator=g, dtype=torch.float64), torch.rand(80, 1, generator=g, dtype=torch.float64)
    ours = metrics.sliced_wasserstein(x, y, n_projections=3, p=1, generator=g)  # every direction is +-1
    assert float(ours) == pytest.approx(wasserstein_distance(x[:, 0].numpy(), y[:, 0].numpy()), rel=1e-10)
    x2 = torch.randn(64, 1, generator=g, dtype=torch.float64)
    y2 = torch.randn(64, 1, generator=g, dtype=torch.float64) * 2
    w2 = metrics.sliced_wasserstein(x2, y2, n_projections=2, p=2, generator=g)
    ref = math.sqrt(float((torch.sort(x2[:, 0]).values - torch.sort(y2[:, 0]).values).square().mean()))
    assert float(w2) == pytest.approx(ref, rel=1e-10)


def test_sliced_wasserstein_of_a_shift():
    # for y = x + s, every projection moves by theta.s, so SW_2^2 = E (theta.s)^2 = |s|^2 / d
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 4, generator=g, dtype=torch.float64)
    s = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    sw = metrics.sliced_wasserstein(x, x + s, n_projections=20_000, generator=g)
    assert float(sw) == pytest.approx(float(s.norm()) / 2.0, rel=0.03)


def test_nearest_neighbour_distance_brute_force():
    g = torch.Generator().manual_seed(3)
    x, ref = torch.randn(37, 3, 2, generator=g), torch.randn(50, 3, 2, generator=g)
    ours = metrics.nearest_neighbour_distance(x, ref, chunk=5)
    brute = np.array([min(np.linalg.norm(a - b) for b in ref.reshape(50, -1).numpy())
                      for a in x.reshape(37, -1).numpy()])
    assert ours.shape == (37,)
    np.testing.assert_allclose(ours.numpy(), brute, rtol=1e-5)
    assert float(metrics.nearest_neighbour_distance(ref[:4], ref).abs().max()) < 1e-3


def test_classifier_on_digits():
    split = digits(seed=0)
    clf = metrics.train_classifier(split.x_train, split.y_train, 10, steps=300,
                                   generator=torch.Generator().manual_seed(0))
    acc = metrics.class_accuracy(clf, split.x_test, split.y_test)
    conf = float(metrics.classifier_confidence(clf, split.x_test))
    noise = torch.rand(200, 64, generator=torch.Generator().manual_seed(1))
    assert acc > 0.9
    assert conf > float(metrics.classifier_confidence(clf, noise))
    assert not clf.training
    # same generator seed, same classifier
    clf2 = metrics.train_classifier(split.x_train, split.y_train, 10, steps=300,
                                    generator=torch.Generator().manual_seed(0))
    assert torch.equal(clf(split.x_test), clf2(split.x_test))


def test_class_accuracy_and_confidence_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    clf = lambda x: logits  # noqa: E731
    x = torch.zeros(3, 4)
    assert metrics.class_accuracy(clf, x, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    p = torch.softmax(logits, 1).max(1).values.mean()
    assert float(metrics.classifier_confidence(clf, x)) == pytest.approx(float(p), rel=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.mmd([1.0, 2.0], torch.zeros(3, 1)), "x must be a torch.Tensor"),
    (lambda: metrics.mmd(torch.zeros(1, 2), torch.zeros(3, 2)), "at least 2 samples"),
    (lambda: metrics.mmd(torch.zeros(3, 2), torch.zeros(3, 3)), "same number of features"),
    (lambda: metrics.mmd(torch.zeros(3, 2), torch.full((3, 2), math.nan)), "y must be finite"),
    (lambda: metrics.mmd(torch.zeros(3, 2), torch.zeros(3, 2), (1.0, -1.0)), "bandwidths"),
    (lambda: metrics.mmd(torch.zeros(3, 2), torch.zeros(3, 2), ()), "bandwidths"),
    (lambda: metrics.mmd(torch.zeros(3, 2, dtype=torch.int64), torch.zeros(3, 2)), "floating"),
    (lambda: metrics.sliced_wasserstein(torch.zeros(3, 2), torch.zeros(3, 2), n_projections=0), "n_projections"),
    (lambda: metrics.sliced_wasserstein(torch.zeros(3, 2), torch.zeros(3, 2), generator=1), "generator"),
    (lambda: metrics.nearest_neighbour_distance(torch.zeros(3, 0), torch.zeros(3, 0)), "at least one feature"),
    (lambda: metrics.nearest_neighbour_distance(torch.zeros(()), torch.zeros(3)), "leading sample"),
    (lambda: metrics.train_classifier(torch.zeros(4, 2), torch.tensor([0.0, 1, 0, 1])), "int64"),
    (lambda: metrics.train_classifier(torch.zeros(4, 2), torch.tensor([0, 1, 0])), r"shape \(4,\)"),
    (lambda: metrics.train_classifier(torch.zeros(4, 2), torch.tensor([0, 1, 0, 5]), 3), "n_classes"),
    (lambda: metrics.train_classifier(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), lr=0), "lr"),
    (lambda: metrics.train_classifier(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), weight_decay=-1), "weight_decay"),
    (lambda: metrics.classifier_confidence(5, torch.zeros(3, 2)), "classifier"),
    (lambda: metrics.classifier_confidence(lambda x: torch.zeros(2, 3), torch.zeros(3, 2)), "logits of shape"),
    (lambda: metrics.classifier_confidence(lambda x: torch.full((3, 2), math.nan), torch.zeros(3, 2)), "finite"),
    (lambda: metrics.class_accuracy(lambda x: torch.zeros(3, 2), torch.zeros(3, 2), torch.tensor([0, 1, 2])), "classes"),
    (lambda: metrics.class_accuracy(lambda x: torch.zeros(3, 2), torch.zeros(3, 2), torch.tensor([0, -1, 1])), "non-negative"),
])
def test_bad_input(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()
