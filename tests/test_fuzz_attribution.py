"""Bad input, Part V (chapter 19): every public name of ``lib.attribution`` fuzzed with hypothesis,
and ``lib.data.block_digits``.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised
by a user's function (here the ``model``) reaches the caller unchanged. :data:`FUZZED`
maps each public name to its test (``tests/test_fuzz_coverage.py`` checks it is complete).
"""

import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, _boom, assert_finite,
                           draw_number, draw_tensor, expect, finite, small)
from tests.fuzzing import DEVICE_DATA, SEED

from lib import attribution as at
from lib import data as datasets

AT_DTYPES = {torch.float64: OK, torch.float32: OK, torch.float16: MAYBE, torch.bfloat16: MAYBE,
             torch.int64: BAD, torch.bool: BAD, torch.complex64: BAD}
X_SHAPES = [(2, 3), (1, 4), (3, 2, 2), (3,), (), (0, 3)]


def _amax(t):
    return float(t.double().abs().max()) if t.numel() else 0.0


def _x_verdict(shape):
    return BAD if len(shape) == 0 else OK


def _powers(x):
    """Logits (sum x^2, sum x^3): input gradients 2x and 3x^2."""
    flat = x.reshape(x.shape[0], -1)
    return torch.stack([(flat**2).sum(1), (flat**3).sum(1)], 1)


MODEL_POOL = {  # (model, verdict, raises, non-finite)
    "powers": (_powers, OK),
    "const": (lambda x: torch.ones(x.shape[0], 2, dtype=x.dtype), OK),  # no dependence on x: zero maps
    "sin": (lambda x: torch.stack([x.reshape(x.shape[0], -1).sin().sum(1), x.reshape(x.shape[0], -1).sum(1)], 1), OK),
    "nan": (lambda x: _powers(x) * math.nan, BAD),
    "flat": (lambda x: x.reshape(x.shape[0], -1).sum(1), BAD),  # (N,) instead of (N, C)
    "short": (lambda x: _powers(x)[:1], MAYBE),  # wrong only when N > 1
    "int": (lambda x: (x.reshape(x.shape[0], -1) > 0).long(), BAD),
    "str": (lambda x: "logits", BAD),
    "boom": (_boom, BAD),
    "not callable": ("model", BAD),
}


def _model(data):
    kind = data.draw(st.sampled_from(sorted(MODEL_POOL)), label="model")
    fn, verdict = MODEL_POOL[kind]
    return Arg(fn, verdict, raises=kind == "boom", nonfinite=kind == "nan", kind=kind, note=kind,
               words=("model",))


def _x(data, name="x"):
    return draw_tensor(data, shapes=X_SHAPES, dtypes=AT_DTYPES, empty=BAD, name=name, shape_verdict=_x_verdict)


def _fix_short(model, x):
    if model.kind == "short" and isinstance(x.value, torch.Tensor) and x.value.ndim and x.value.shape[0] == 1:
        model.verdict = OK


def _target(data, x):
    batch = x.value.shape[0] if isinstance(x.value, torch.Tensor) and x.value.ndim else 2
    return Arg(*data.draw(st.sampled_from([
        (0, OK), (1, OK), (torch.zeros(batch, dtype=torch.long), OK), (torch.ones(batch, dtype=torch.int32), OK),
        (2, BAD), (-1, BAD), (1.0, BAD), (True, BAD), (None, BAD), ("0", BAD),
        (torch.zeros(batch + 1, dtype=torch.long), BAD), (torch.zeros(batch), BAD),
        (torch.full((batch,), 5), BAD)]), label="target"), words=("target",))


def _target_ok(model, target):
    """An out-of-range class is only detectable when the model's output is checked; make its verdict fit."""
    if model.verdict == BAD and target.verdict == BAD and isinstance(target.value, (int, torch.Tensor)) \
            and not isinstance(target.value, bool):
        target.words = ("target", "model")


def _reference_grad(model, x, target):
    if model.kind == "powers":
        return 2 * x if target == 0 else 3 * x**2
    if model.kind == "sin":
        return torch.cos(x) if target == 0 else torch.ones_like(x)
    return torch.zeros_like(x)


def _int_target(target):
    t = target.value
    if isinstance(t, torch.Tensor):
        return int(t[0]) if bool((t == t[0]).all()) else None
    return t


def _check_map(x, model, target, kind="grad"):
    def check(out):
        xv = x.value
        assert out.shape == xv.shape and out.dtype == xv.dtype
        assert_finite(out)
        c = _int_target(target)
        if xv.dtype == torch.float64 and small(xv) and c is not None and model.kind in ("powers", "sin", "const"):
            ref = _reference_grad(model, xv, c)
            if kind == "gxi":
                ref = xv * ref
            assert torch.allclose(out, ref, atol=1e-10), (out, ref)
    return check


@FUZZ
@given(st.data(), st.sampled_from(["input_gradient", "gradient_x_input"]))
def test_gradients(data, which):
    model = _model(data)
    x = _x(data)
    _fix_short(model, x)
    target = _target(data, x)
    _target_ok(model, target)
    expect(getattr(at, which), {"model": model, "x": x, "target": target},
           _check_map(x, model, target, "gxi" if which == "gradient_x_input" else "grad"))


def _generator(data):
    return Arg(*data.draw(st.sampled_from([(None, OK), (torch.Generator().manual_seed(0), OK), (3, BAD),
                                           ("seed", BAD), (np.random.default_rng(0), BAD)]), label="generator"))


@QUICK
@given(st.data())
def test_smoothgrad(data):
    model = _model(data)
    x = _x(data)
    _fix_short(model, x)
    target = _target(data, x)
    _target_ok(model, target)
    sigma = draw_number(data, "sigma", st.sampled_from([0.0, 0.1, 1.0, 0]), bad=(-0.1,),
                        wrong=(None, "0.1", [0.1], True))
    n_samples = draw_number(data, "n_samples", st.integers(1, 6), bad=(0, -1), wrong=(None, 2.0, "3"),
                            nonfinite=(), huge=None)
    generator = _generator(data)
    batch_size = draw_number(data, "batch_size", st.sampled_from([None, 1, 5, 1000]), bad=(0, -3),
                             wrong=(2.5, "4", True), nonfinite=(), huge=None)

    def check(out):
        xv = x.value
        assert out.shape == xv.shape and out.dtype == xv.dtype
        assert_finite(out)
        if sigma.value == 0:
            assert torch.equal(out, at.input_gradient(model.value, xv, target.value))
        elif model.kind == "sin" and _int_target(target) == 1 and xv.dtype == torch.float64:
            assert torch.allclose(out, torch.ones_like(xv))

    expect(at.smoothgrad, {"model": model, "x": x, "target": target, "sigma": sigma, "n_samples": n_samples,
                           "generator": generator, "batch_size": batch_size}, check)


def _baseline(data, x):
    shape = tuple(x.value.shape) if isinstance(x.value, torch.Tensor) else (2, 3)
    one = shape[1:]
    dtype = x.value.dtype if isinstance(x.value, torch.Tensor) and x.value.dtype.is_floating_point else torch.float64
    kind = data.draw(st.sampled_from(["none", "full", "one", "wrong", "int", "nan", "number", "list"]),
                     label="baseline")
    if kind == "none":
        return Arg(None, kind=kind)
    if kind in ("full", "one"):
        b = draw_tensor(data, shapes=[shape if kind == "full" else one], dtypes={dtype: OK, torch.float64: OK},
                        name="baseline", non_tensors=[], specials=True, empty=OK)
        b.kind = kind
        return b
    value = {"wrong": torch.zeros(shape + (2,), dtype=dtype), "int": torch.zeros(shape, dtype=torch.long),
             "nan": torch.full(shape, math.nan, dtype=dtype), "number": 0.0, "list": [0.0]}[kind]
    return Arg(value, BAD, nonfinite=kind == "nan", kind=kind, words=("baseline",))


@QUICK
@given(st.data())
def test_integrated_gradients(data):
    model = _model(data)
    x = _x(data)  # no _fix_short: the path is evaluated in batches of several points even for one row
    target = _target(data, x)
    _target_ok(model, target)
    baseline = _baseline(data, x)
    if baseline.verdict != OK and isinstance(baseline.value, torch.Tensor) and baseline.kind == "wrong" \
            and x.verdict == BAD:
        baseline.verdict = MAYBE
    steps = draw_number(data, "steps", st.integers(1, 12), bad=(0, -2), wrong=(None, 4.0, "8", True),
                        nonfinite=(), huge=None)
    rule = Arg(*data.draw(st.sampled_from([("trapezoid", OK), ("left", OK), ("right", OK), ("midpoint", OK),
                                           ("simpson", BAD), (None, BAD), (1, BAD)])), words=("rule",))
    batch_size = draw_number(data, "batch_size", st.sampled_from([None, 1, 7, 1000]), bad=(0, -3),
                             wrong=(2.5, "4", True), nonfinite=(), huge=None)
    if baseline.kind in ("full", "one") and isinstance(x.value, torch.Tensor) and isinstance(baseline.value, torch.Tensor):
        xv, bv = x.value, baseline.value
        if xv.dtype.is_floating_point and finite(xv) and finite(bv):
            if _amax(xv.double() - bv.double()) > 1e4:
                baseline.verdict = MAYBE  # a huge path can overflow x's dtype: refused by name or fine
                baseline.words = ("baseline", "x", "overflows", "model", "gradient")

    def check(ig):
        xv = x.value
        assert ig.shape == xv.shape and ig.dtype == xv.dtype
        assert_finite(ig)
        c = _int_target(target)
        if model.kind == "powers" and c == 0 and baseline.value is None and rule.value in ("trapezoid", "midpoint") \
                and xv.dtype == torch.float64 and small(xv):
            assert torch.allclose(ig, xv**2, atol=1e-10)
        if model.kind == "const":
            assert not bool(ig.abs().max() > 0)

    expect(at.integrated_gradients, {"model": model, "x": x, "baseline": baseline, "target": target,
                                     "steps": steps, "rule": rule, "batch_size": batch_size}, check)


@QUICK
@given(st.data())
def test_completeness(data):
    model = _model(data)
    x = _x(data)  # no _fix_short: the path is evaluated in batches of several points even for one row
    target = _target(data, x)
    _target_ok(model, target)
    baseline = _baseline(data, x)
    shape = tuple(x.value.shape) if isinstance(x.value, torch.Tensor) else (2, 3)
    attributions = draw_tensor(data, shapes=[shape, shape, shape[1:] or (1,), (5,)], dtypes=AT_DTYPES,
                               name="attributions", shape_verdict=lambda s: OK if s == shape else BAD, empty=OK)

    def check(out):
        assert isinstance(out, at.Completeness)
        b = x.value.shape[0]
        for t in out:
            assert t.shape == (b,) and t.dtype == x.value.dtype
        assert_finite(out.attribution_sum)
        assert bool((out.error >= 0).all())
        if model.kind == "const":
            assert not bool(out.output_difference.abs().max() > 0)

    if baseline.kind in ("full", "one") and isinstance(baseline.value, torch.Tensor) and \
            _amax(baseline.value) > 10:
        baseline.verdict = MAYBE  # a model output that overflows at a huge baseline is refused by name
        baseline.words = ("baseline", "model")
    expect(at.completeness, {"model": model, "x": x, "baseline": baseline, "target": target,
                             "attributions": attributions}, check)
    if model.kind == "powers" and x.verdict == OK and target.verdict == OK and baseline.value is None \
            and x.value.dtype == torch.float64 and small(x.value):  # IG is complete for sum x^2 (exact rule)
        ig = at.integrated_gradients(_powers, x.value, None, 0, 3)
        assert bool((at.completeness(_powers, x.value, None, 0, ig).error < 1e-10).all())


MAP_SHAPES = [(2, 3), (1, 4), (3, 2, 2), (3,), (0, 3), (2, 1)]


@FUZZ
@given(st.data())
def test_attribution_mass(data):
    a = draw_tensor(data, shapes=MAP_SHAPES, dtypes=AT_DTYPES, name="attributions", empty=BAD,
                    shape_verdict=lambda s: OK if len(s) >= 2 else BAD)
    shape = tuple(a.value.shape) if isinstance(a.value, torch.Tensor) else (2, 3)
    bits = torch.tensor(data.draw(st.lists(st.booleans(), min_size=math.prod(shape[1:]),
                                           max_size=math.prod(shape[1:]))), dtype=torch.bool).reshape(shape[1:])
    mask = Arg(*data.draw(st.sampled_from([(bits, OK), (bits.expand(shape).clone(), OK), (bits.float(), BAD),
                                           (torch.ones(7, dtype=torch.bool), BAD), (bits.tolist(), BAD),
                                           (None, BAD)]), label="mask"))
    av = a.value
    if isinstance(av, torch.Tensor) and av.ndim >= 2 and av.numel() and av.dtype.is_floating_point and finite(av):
        if bool((av.reshape(av.shape[0], -1).abs().sum(1) == 0).any()):  # a zero map: its share is undefined
            a.verdict = BAD if a.verdict == OK else a.verdict
            a.words = ("attributions",)

    def check(share):
        assert share.shape == (av.shape[0],)
        assert_finite(share)
        assert bool((share >= 0).all()) and bool((share <= 1 + 1e-6).all())
        if av.dtype == torch.float64:
            m = mask.value.expand(av.shape).reshape(av.shape[0], -1).double()
            w = av.reshape(av.shape[0], -1).abs()
            assert torch.allclose(share, (w * m).sum(1) / w.sum(1))

    expect(at.attribution_mass, {"attributions": a, "mask": mask}, check)


@FUZZ
@given(st.data())
def test_rank_correlation(data):
    a = draw_tensor(data, shapes=MAP_SHAPES, dtypes=AT_DTYPES, name="a", empty=BAD,
                    shape_verdict=lambda s: OK if len(s) >= 2 and math.prod(s[1:]) >= 2 else BAD)
    shape = tuple(a.value.shape) if isinstance(a.value, torch.Tensor) else (2, 3)
    b = draw_tensor(data, shapes=[shape, shape, (4, 4)], dtypes=AT_DTYPES, name="b", empty=BAD,
                    shape_verdict=lambda s: OK if s == shape and len(s) >= 2 and math.prod(s[1:]) >= 2 else BAD)
    for arg in (a, b):  # a constant map has no ranking
        v = arg.value
        if isinstance(v, torch.Tensor) and v.ndim >= 2 and v.numel() and v.dtype.is_floating_point and finite(v):
            flat = v.reshape(v.shape[0], -1)
            if bool((flat == flat[:, :1]).all(1).any()) and arg.verdict == OK:
                arg.verdict = BAD
    if a.verdict == BAD or b.verdict == BAD:
        a.words = b.words = ("a", "b")

    def check(rho):
        assert rho.shape == (shape[0],) and rho.dtype == torch.float64
        assert_finite(rho)
        assert bool((rho.abs() <= 1).all())

    expect(at.rank_correlation, {"a": a, "b": b}, check)


@QUICK
@given(st.data())
def test_block_digits(data):
    split = Arg(*data.draw(st.sampled_from([("train", OK), ("test", OK), ("val", BAD), (None, BAD), (0, BAD)])))
    classes = Arg(*data.draw(st.sampled_from([
        ((0, 1), OK), ([3, 8, 5], OK), (tuple(range(10)), OK), ((np.int64(2), 7), OK), ((1, 1), BAD), ([4], BAD),
        ((0, 10), BAD), ((-1, 2), BAD), ((0, 1.0), BAD), ("01", BAD), (None, BAD), (torch.tensor([0, 1]), BAD)])),
        words=("classes",))
    test_fraction = draw_number(data, "test_fraction", st.floats(0.05, 0.95), bad=(0.0, 1.0, -0.5),
                                wrong=(None, "0.25"))
    seed = draw_number(data, "seed", st.integers(0, 2**32 - 1), bad=(-1, 2**32), wrong=(None, 0.5, "0"),
                       nonfinite=())
    flatten = Arg(*data.draw(st.sampled_from([(True, OK), (False, OK), (1, BAD), (None, BAD)])))
    device = Arg(*data.draw(st.sampled_from(DEVICE_DATA)))

    def check(out):
        x, y, mask = out
        k = len(classes.value)
        n = len(y)
        assert n >= 1 and y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) < k
        assert x.shape == ((n, 128) if flatten.value else (n, 1, 16, 8)) and x.dtype == torch.float32
        assert mask.shape == x.shape and mask.dtype == torch.bool
        assert int(mask.reshape(n, -1).sum(1).min()) == 64 == int(mask.reshape(n, -1).sum(1).max())
        assert finite(x) and float(x.min()) >= 0 and float(x.max()) <= 1

    expect(datasets.block_digits, {"split": split, "classes": classes, "test_fraction": test_fraction,
                                   "seed": seed, "flatten": flatten, "device": device}, check)


FUZZED = {
    at: {"input_gradient": test_gradients, "gradient_x_input": test_gradients, "smoothgrad": test_smoothgrad,
         "integrated_gradients": test_integrated_gradients, "Completeness": test_completeness,
         "completeness": test_completeness, "attribution_mass": test_attribution_mass,
         "rank_correlation": test_rank_correlation},
    datasets: {"block_digits": test_block_digits},
}


def test_every_public_name_is_fuzzed():
    assert sorted(FUZZED[at]) == sorted(at.__all__)
    assert "block_digits" in datasets.__all__
