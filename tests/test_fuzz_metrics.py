"""Bad input, Part VI: every public name of ``lib.metrics`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised
by a user's function reaches the caller unchanged. :data:`FUZZED` maps each public
name to its test (``tests/test_fuzz_coverage.py`` checks it is complete).
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from lib import metrics
from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, _boom, _checked_generator, _gen, assert_finite,
                           draw_number, draw_tensor, expect)

M_DTYPES = {torch.float64: OK, torch.float32: OK, torch.float16: MAYBE, torch.bfloat16: MAYBE,
            torch.int64: BAD, torch.bool: BAD}
M_SHAPES = [(3, 2), (4, 1), (2, 2, 2), (5,), (1, 2), (0, 2), (3, 0), ()]


def _shape_verdict(min_rows):
    def verdict(shape):
        if len(shape) == 0 or shape[0] < min_rows or math.prod(shape[1:]) == 0:
            return BAD
        return OK
    return verdict


def _samples(data, name, min_rows=1, shapes=M_SHAPES):
    return draw_tensor(data, shapes=shapes, dtypes=M_DTYPES, empty=BAD, name=name,
                       shape_verdict=_shape_verdict(min_rows),
                       non_tensors=[None, [[1.0, 2.0]], 1.5, "x"])


def _pair(data, min_rows=1):
    x = _samples(data, "x", min_rows)
    same = data.draw(st.booleans(), label="same features")
    if same and isinstance(x.value, torch.Tensor) and x.value.dim() >= 1:
        y = _samples(data, "y", min_rows, shapes=[(4,) + tuple(x.value.shape[1:]), (2,) + tuple(x.value.shape[1:])])
    else:
        y = _samples(data, "y", min_rows)
    xs, ys = x.value, y.value
    if (isinstance(xs, torch.Tensor) and isinstance(ys, torch.Tensor) and xs.dim() >= 1 and ys.dim() >= 1
            and math.prod(xs.shape[1:]) != math.prod(ys.shape[1:]) and BAD not in (x.verdict, y.verdict)):
        y.verdict = BAD
        y.words = ("same number of features",)
    return x, y


def _rows(t):
    return t.shape[0]


@FUZZ
@given(st.data())
def test_mmd(data):
    x, y = _pair(data, min_rows=2)
    bw = Arg(*data.draw(st.sampled_from([((0.5, 1.0), OK), ([2.0], OK), ((), BAD), ((1.0, -1.0), BAD),
                                         ((1.0, math.nan), BAD), ("1.0", BAD), (1.0, BAD), ((1e-30,), MAYBE)])),
             words=("bandwidths",))

    def check(out):
        assert out.shape == ()
        assert_finite(out)
        assert float(out) > -4.0 * len(bw.value)  # |each mean| <= number of kernels

    expect(metrics.mmd, {"x": x, "y": y, "bandwidths": bw}, check)


@FUZZ
@given(st.data())
def test_sliced_wasserstein(data):
    x, y = _pair(data)
    n = draw_number(data, "n_projections", st.integers(1, 16), bad=(0, -1), wrong=(None, 2.0, "2", True),
                    nonfinite=(), huge=BAD)
    p = draw_number(data, "p", st.sampled_from([1, 2, 3]), bad=(0, 17), wrong=(2.0, None), nonfinite=())
    generator = _gen(_checked_generator(data))

    def check(out):
        assert out.shape == ()
        assert_finite(out)
        assert float(out) >= 0

    expect(metrics.sliced_wasserstein, {"x": x, "y": y, "n_projections": n, "p": p, "generator": generator},
           check)


@FUZZ
@given(st.data())
def test_nearest_neighbour_distance(data):
    x, ref = _pair(data)
    ref.words = ref.words if ref.words != ("y",) else ("y", "reference")
    chunk = draw_number(data, "chunk", st.integers(1, 4), bad=(0,), wrong=(None, 1.5), nonfinite=(), huge=None)

    def check(out):
        assert out.shape == (_rows(x.value),)
        assert_finite(out)
        assert bool((out >= 0).all())

    # the error messages call the reference "y" (the shared pair check): accept either word
    ref.words = ("y", "reference")
    expect(metrics.nearest_neighbour_distance, {"x": x, "reference": ref, "chunk": chunk}, check)


LABEL_POOL = {
    "good": OK, "float": BAD, "short": BAD, "negative": BAD, "list": BAD,
}


def _labels(data, n, classes=3):
    kind = data.draw(st.sampled_from(sorted(LABEL_POOL)), label="labels")
    n = max(n, 0)
    base = torch.arange(n) % classes
    value = {"good": base, "float": base.double(), "short": base[:-1] if n else torch.zeros(1, dtype=torch.long),
             "negative": base - 1 if n else torch.zeros(1, dtype=torch.long) - 1, "list": base.tolist()}[kind]
    words = ("labels", "class", "shape", "int64", "non-negative")
    return Arg(value, LABEL_POOL[kind], words=words, note=f"labels:{kind}")


@QUICK
@given(st.data())
def test_train_classifier(data):
    x = _samples(data, "x", min_rows=2)
    n = x.value.shape[0] if isinstance(x.value, torch.Tensor) and x.value.dim() >= 1 else 3
    labels = _labels(data, n)
    if labels.verdict == OK and n and int(labels.value.max()) == 0:
        labels.verdict = OK  # a single class: a 2-class classifier is still returned
    n_classes = draw_number(data, "n_classes", st.sampled_from([None, 3, 5]), bad=(1, 0), wrong=(2.5, "3"),
                            nonfinite=(), huge=BAD)
    steps = draw_number(data, "steps", st.integers(0, 3), bad=(-1,), wrong=(1.5, None), nonfinite=(), huge=None)
    lr = draw_number(data, "lr", st.sampled_from([1e-2, 0.1]), bad=(0.0, -1.0), wrong=("0.1", None))
    wd = draw_number(data, "weight_decay", st.sampled_from([0.0, 1e-4]), bad=(-1.0,), wrong=("0", None))
    generator = _gen(_checked_generator(data))

    def check(model):
        out = model(x.value)
        assert out.shape[0] == x.value.shape[0] and out.shape[1] >= 2
        assert not model.training

    expect(metrics.train_classifier, {"x": x, "labels": labels, "n_classes": n_classes, "steps": steps,
                                      "lr": lr, "weight_decay": wd, "generator": generator}, check)


CLF_POOL = {
    "good": (lambda x: torch.stack([x.reshape(x.shape[0], -1).sum(1), -x.reshape(x.shape[0], -1).sum(1),
                                    torch.zeros(x.shape[0], dtype=x.dtype)], 1), OK),
    "wrong shape": (lambda x: torch.zeros(x.shape[0] + 1, 3), BAD),
    "one class": (lambda x: torch.zeros(x.shape[0], 1), BAD),
    "nan": (lambda x: torch.full((x.shape[0], 3), math.nan), BAD),
    "not a tensor": (lambda x: [[0.0, 1.0]], BAD),
    "boom": (_boom, BAD),
    "not callable": ("clf", BAD),
}


def _classifier(data):
    kind = data.draw(st.sampled_from(sorted(CLF_POOL)), label="classifier")
    fn, verdict = CLF_POOL[kind]
    return Arg(fn, verdict, raises=kind == "boom", nonfinite=kind == "nan", note=kind,
               words=("classifier", "logits", "callable"))


def _small_x(data):
    return _samples(data, "x", shapes=[(3, 2), (2, 2, 2), (1, 4), (0, 2), ()])


@FUZZ
@given(st.data())
def test_classifier_confidence(data):
    clf, x = _classifier(data), _small_x(data)
    if clf.verdict == BAD and x.verdict == BAD:
        clf.verdict = MAYBE  # x is checked first; the classifier may never be called

    def check(out):
        assert out.shape == ()
        assert 1 / 3 - 1e-3 <= float(out) <= 1.0 + 1e-3  # float16 logits round 1/3

    expect(metrics.classifier_confidence, {"classifier": clf, "x": x}, check)


@FUZZ
@given(st.data())
def test_class_accuracy(data):
    clf, x = _classifier(data), _small_x(data)
    n = x.value.shape[0] if isinstance(x.value, torch.Tensor) and x.value.dim() >= 1 else 3
    labels = _labels(data, n)
    if clf.verdict == BAD and (x.verdict == BAD or labels.verdict == BAD):
        clf.verdict = MAYBE

    def check(out):
        assert isinstance(out, float) and 0.0 <= out <= 1.0

    expect(metrics.class_accuracy, {"classifier": clf, "x": x, "labels": labels}, check)


FUZZED = {metrics: {"mmd": test_mmd, "sliced_wasserstein": test_sliced_wasserstein,
                    "nearest_neighbour_distance": test_nearest_neighbour_distance,
                    "train_classifier": test_train_classifier, "classifier_confidence": test_classifier_confidence,
                    "class_accuracy": test_class_accuracy}}
