"""Bad input, Part III (chapter 14): every public name of ``lib.estimators`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised
by a user's function reaches the caller unchanged. :data:`FUZZED` maps each public
name to its test (``tests/test_fuzz_coverage.py`` checks it is complete).
"""

import math

import torch
from hypothesis import given, strategies as st
from tests.fuzzing import (Arg, OK, MAYBE, BAD, FUZZ, expect, draw_tensor, draw_number, draw_f,
                             _checked_generator, _gen, assert_finite, finite)
from lib import estimators as est

LSHAPES = [(3,), (2, 3), (1,), (), (0,), (2, 0), (0, 3)]
def _logits(data, name="logits"):
    return draw_tensor(data, shapes=LSHAPES, name=name, empty=BAD,
                       shape_verdict=lambda s: OK if len(s) >= 1 else BAD)

def row_f(kind):
    # f maps (n, *batch, k) -> (n, *batch)
    return {"good": (lambda y: (y * torch.arange(y.shape[-1], dtype=y.dtype)).sum(-1) ** 2, OK),
            "pool": None}[kind]

def _f(data):
    kind = data.draw(st.sampled_from(["row", "row", "row", "pool"]))
    if kind == "row":
        return Arg(lambda y: (y * torch.arange(y.shape[-1], dtype=y.dtype)).sum(-1) ** 2, OK, note="row")
    a = draw_f(data, {})
    return a

TAU = dict(ok=st.sampled_from([1.0, 0.5, 2.0, 3]), bad=(0.0, -1.0), maybe=(1e-300, 1e300, 1e-30))
NS = dict(ok=st.integers(1, 3), bad=(0, -1), wrong=(None, 2.0, "2", True), nonfinite=(), huge=None)

def check_logits_out(logits, shape_extra=()):
    def check(out):
        out = out if isinstance(out, torch.Tensor) else out[0]
        assert out.shape == logits.value.shape
        assert_finite(out)
    return check

@FUZZ
@given(st.data())
def test_sample(data):
    lg = _logits(data)
    n = draw_number(data, "n_samples", **NS)
    g = _gen(_checked_generator(data))
    def check(y):
        assert y.shape == (n.value, *lg.value.shape) and bool((y.sum(-1) == 1).all())
    expect(est.sample_categorical, {"logits": lg, "n_samples": n, "generator": g}, check)

@FUZZ
@given(st.data())
def test_exact(data):
    lg = _logits(data); f = _f(data)
    expect(est.exact_gradient, {"f": f, "logits": lg}, lambda out: (assert_finite(out[0]), assert_finite(out[1])))

@FUZZ
@given(st.data())
def test_reinforce(data):
    lg = _logits(data); f = _f(data)
    n = draw_number(data, "n_samples", **NS)
    bk = data.draw(st.sampled_from(["none", "num", "loo", "bad", "tensor"]))
    b = {"none": Arg(None), "num": Arg(0.5), "loo": Arg("loo", OK if n.value != 1 else BAD, words=("loo", "n_samples")),
         "bad": Arg("x", BAD), "tensor": Arg(torch.zeros(()), OK)}[bk]
    g = _gen(_checked_generator(data))
    expect(est.reinforce, {"f": f, "logits": lg, "n_samples": n, "baseline": b, "generator": g},
           lambda out: (assert_finite(out[0]), assert_finite(out[1])))

@FUZZ
@given(st.data(), st.sampled_from(["gumbel", "gumbel_hard", "straight_through", "reinmax"]))
def test_relaxed(data, method):
    lg = _logits(data); f = _f(data)
    tau = draw_number(data, "tau", **TAU)
    if tau.value in (1e-300, 1e300, 1e-30): tau.verdict = MAYBE
    n = draw_number(data, "n_samples", **NS)
    g = _gen(_checked_generator(data))
    expect(est.relaxed_gradient, {"f": f, "logits": lg, "method": Arg(method), "tau": tau, "n_samples": n,
                                  "generator": g}, lambda out: (assert_finite(out[0]), assert_finite(out[1])))

@FUZZ
@given(st.data(), st.sampled_from(["gumbel_softmax", "straight_through", "reinmax"]))
def test_samplers(data, which):
    lg = _logits(data)
    tau = draw_number(data, "tau", **TAU)
    if tau.value in (1e-300, 1e300, 1e-30): tau.verdict = MAYBE
    g = _gen(_checked_generator(data))
    def check(y):
        assert y.shape == lg.value.shape and y.dtype == lg.value.dtype
        assert_finite(y)
        if isinstance(lg.value, torch.Tensor) and lg.value.dtype == torch.float64:
            torch.testing.assert_close(y.sum(-1), torch.ones(y.shape[:-1], dtype=y.dtype))
    expect(getattr(est, which), {"logits": lg, "tau": tau, "generator": g}, check)

@FUZZ
@given(st.data())
def test_gauss(data):
    mu = draw_tensor(data, name="mu", empty=BAD)
    shape = mu.value.shape if isinstance(mu.value, torch.Tensor) else (2,)
    dtype = mu.value.dtype if isinstance(mu.value, torch.Tensor) and mu.value.is_floating_point() else torch.float64
    sg = draw_tensor(data, shapes=[shape, shape, (7,)], dtypes={dtype: OK, torch.int64: BAD}, name="sigma", lo=0.1, hi=2,
                     shape_verdict=lambda s: OK if s == shape else BAD, empty=BAD)
    kind = data.draw(st.sampled_from(["good", "pool", "neg"]))
    if kind == "neg" and isinstance(sg.value, torch.Tensor) and sg.value.numel() and sg.value.is_floating_point():
        sg.value = -sg.value.abs(); sg.verdict = BAD
    elif isinstance(sg.value, torch.Tensor) and sg.value.is_floating_point() and bool((sg.value == 0).any()):
        sg.verdict = BAD  # a 'tiny' entry that underflowed to 0 in float16/float32: not a positive sigma
    f = Arg(lambda x: (torch.sin(x) * x).reshape(x.shape[0], -1).sum(-1), OK) if kind != "pool" else draw_f(data, {})
    method = Arg(data.draw(st.sampled_from(["reparam", "score"])))
    n = draw_number(data, "n_samples", **NS)
    g = _gen(_checked_generator(data))
    expect(est.gaussian_gradient, {"f": f, "mu": mu, "sigma": sg, "n_samples": n, "method": method, "generator": g},
           lambda out: (assert_finite(out[0]), assert_finite(out[1])))

@FUZZ
@given(st.data())
def test_sort(data):
    x = draw_tensor(data, shapes=LSHAPES + [(5,), (2, 4)], empty=BAD, shape_verdict=lambda s: OK if len(s) >= 1 else BAD)
    tau = draw_number(data, "tau", **TAU)
    if tau.value in (1e-300, 1e300, 1e-30): tau.verdict = MAYBE
    kind = Arg(data.draw(st.sampled_from(list(est.SIGMOIDS) + ["relu"])))
    if kind.value == "relu": kind.verdict = BAD; kind.words = ("sigmoid",)
    def check(out):
        v, P = out
        assert_finite(v); assert_finite(P)
        assert v.shape == x.value.shape and P.shape == (*x.value.shape, x.value.shape[-1])
    expect(est.soft_sort, {"x": x, "tau": tau, "sigmoid": kind}, check)

@FUZZ
@given(st.data())
def test_swap(data):
    u = draw_tensor(data, name="u", lo=-100, hi=100)
    kind = Arg(data.draw(st.sampled_from(list(est.SIGMOIDS) + ["relu"])))
    if kind.value == "relu": kind.verdict = BAD
    def check(s):
        assert_finite(s); assert s.shape == u.value.shape
        assert bool(((s >= 0) & (s <= 1)).all())
    expect(est.swap_sigmoid, {"u": u, "kind": kind}, check)

@FUZZ
@given(st.data())
def test_moving(data):
    values = draw_tensor(data, shapes=[(3,), (2, 2), (), (0,)], name="values", empty=BAD,
                         shape_verdict=lambda s: OK if len(s) >= 1 else BAD)
    b = Arg(*data.draw(st.sampled_from([(None, OK), (0.5, OK), ("b", BAD), (math.nan, BAD), (torch.zeros(()), OK),
                                        (torch.zeros(5), BAD)])))
    if isinstance(b.value, float) and math.isnan(b.value): b.nonfinite = True
    beta = draw_number(data, "beta", st.floats(0, 0.99), bad=(1.0, -0.1))
    expect(est.moving_average, {"b": b, "values": values, "beta": beta}, lambda out: assert_finite(out))


FUZZED = {est: {"sample_categorical": test_sample, "exact_gradient": test_exact, "reinforce": test_reinforce, "moving_average": test_moving, "gaussian_gradient": test_gauss, "gumbel_softmax": test_samplers, "straight_through": test_samplers, "reinmax": test_samplers, "relaxed_gradient": test_relaxed, "swap_sigmoid": test_swap, "soft_sort": test_sort}}
