"""Bad input, Part III (chapter 13): every public name of ``lib.chaos`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised
by a user's function reaches the caller unchanged. :data:`FUZZED` maps each public
name to its test (``tests/test_fuzz_coverage.py`` checks it is complete).
"""

import math

import torch
from hypothesis import given, strategies as st
from tests.fuzzing import (Arg, OK, MAYBE, BAD, FUZZ, QUICK, expect, draw_tensor, draw_number, assert_finite,
                             small, Boom, _boom, FLOAT_DTYPES, NON_TENSORS)
from lib import chaos

STEP_POOL = {
    "logistic": (chaos.logistic_map, OK),
    "linear": (lambda x, th: 0.5 * x, OK),
    "sin": (lambda x, th: torch.sin(x) * 1.5, OK),
    "const": (lambda x, th: torch.ones_like(x), MAYBE),   # zero Jacobian
    "scalar": (lambda x, th: x.sum(), MAYBE),             # wrong shape unless 0-dim
    "nan": (lambda x, th: x * math.nan, BAD),
    "str": (lambda x, th: "x", BAD),
    "int": (lambda x, th: (x > 0).long(), BAD),
    "boom": (_boom, BAD),
    "not callable": ("step", BAD),
}

def draw_step(data, name="step"):
    kind = data.draw(st.sampled_from(sorted(STEP_POOL)), label=name)
    fn, verdict = STEP_POOL[kind]
    return Arg(fn, verdict, raises=kind == "boom", nonfinite=kind == "nan", note=kind, kind=kind,
               words=(name, "callable", "shape", "finite", "overflow", "vanished", "Jacobian", "tangent"))

def draw_theta(data, name="theta"):
    kind = data.draw(st.sampled_from(["none", "number", "tensor", "bad"]), label=name)
    if kind == "none":
        return Arg(None, OK)
    if kind == "number":
        return draw_number(data, name, st.floats(2.5, 4.0), maybe=(1e6,), wrong=("1", [1.0], True))
    if kind == "tensor":
        return draw_tensor(data, shapes=[(1,), (), (2, 1)], name=name, lo=2.5, hi=4.0,
                           non_tensors=[v for v in NON_TENSORS if v is not None and type(v) is not float])
        # None ("no theta") and a number are legal thetas, drawn by the other kinds
    return Arg("theta", BAD)

STATE_SHAPES = [(1,), (3, 1), (2,), (2, 2), (), (0, 1), (2, 0)]

def draw_x0(data, name="x0", min_ndim=1):
    return draw_tensor(data, shapes=STATE_SHAPES, lo=0.05, hi=0.95, name=name,
                       shape_verdict=lambda s: OK if len(s) >= min_ndim else BAD, empty=BAD)

def _wide(arg):
    # an OK theta/x of some shapes can legitimately be refused by the user's step (logistic r shape)
    return arg

@FUZZ
@given(st.data())
def test_rollout(data):
    step = draw_step(data)
    x0 = draw_x0(data, min_ndim=0)
    theta = draw_theta(data)
    steps = draw_number(data, "steps", st.integers(1, 5), bad=(-1,), wrong=(None, 2.0, "3", True), nonfinite=())
    # the step may refuse combos (logistic with theta None, shapes); mark as MAYBE with broad words
    for a in (theta, x0):
        if a.verdict == OK:
            a.verdict = MAYBE
            a.words = ("theta", "r", "x", "x0", "shape", "step", "finite", "overflow")
    if step.verdict == OK:
        step.verdict = MAYBE
    def check(path):
        assert path.shape == (steps.value + 1, *x0.value.shape)
        assert_finite(path)
    expect(chaos.rollout, {"step": step, "x0": x0, "theta": theta, "steps": steps}, check)

@FUZZ
@given(st.data())
def test_logistic(data):
    x = draw_tensor(data, name="x", empty=BAD)
    r = draw_number(data, "r", st.floats(0, 4), maybe=(1e6,), wrong=(None, "1", [1.0], True))
    def check(out):
        assert out.shape == x.value.shape
        assert_finite(out)
    expect(chaos.logistic_map, {"x": x, "r": r}, check)

@FUZZ
@given(st.data(), st.sampled_from(["lorenz", "damped_pendulum"]))
def test_fields(data, which):
    d = 3 if which == "lorenz" else 2
    x = draw_tensor(data, shapes=[(d,), (2, d), (4,), (), (0, d)], name="x", empty=BAD,
                    shape_verdict=lambda s: OK if len(s) >= 1 and s[-1] == d else BAD)
    theta = Arg(*data.draw(st.sampled_from([(None, OK), (torch.ones(d, dtype=torch.float64), OK),
                                            (torch.ones(d + 1, dtype=torch.float64), BAD), (1.0, BAD),
                                            (torch.ones(5, d, dtype=torch.float64), MAYBE)])))
    def check(out):
        assert out.shape == x.value.shape
        assert_finite(out)
    expect(getattr(chaos, which), {"x": x, "theta": theta}, check)

@FUZZ
@given(st.data())
def test_rk4(data):
    kind = data.draw(st.sampled_from(["lorenz", "lin", "nan", "str", "boom", "nc", "shape"]))
    field = {"lorenz": (chaos.lorenz, MAYBE), "lin": (lambda x, th: -x, OK), "nan": (lambda x, th: x * math.nan, BAD),
             "str": (lambda x, th: 1, BAD), "boom": (_boom, BAD), "nc": ("f", BAD),
             "shape": (lambda x, th: x.sum(), MAYBE)}[kind]
    field = Arg(field[0], field[1], raises=kind == "boom", nonfinite=kind == "nan", words=("field", "x", "shape", "finite", "overflow"))
    x = draw_tensor(data, shapes=[(3,), (2, 3), ()], name="x", empty=BAD)
    dt = draw_number(data, "dt", st.floats(1e-3, 0.1), bad=(0.0, -1.0), maybe=(1e300,), wrong=(None, "0.1", True))
    dt.words = ("dt", "finite", "overflow")
    def check(out):
        assert out.shape == x.value.shape
        assert_finite(out)
    expect(chaos.rk4_step, {"field": field, "x": x, "theta": Arg(None), "dt": dt}, check)

@QUICK
@given(st.data(), st.sampled_from(["tangent_log_growth", "lyapunov_exponent"]))
def test_lyap(data, which):
    step = draw_step(data)
    x0 = draw_x0(data)
    theta = Arg(*data.draw(st.sampled_from([(3.9, OK), (torch.tensor([3.9], dtype=torch.float64), OK), (None, OK)])))
    if step.kind == "logistic" and theta.value is None:
        theta.verdict = MAYBE; theta.words = ("r",)
    steps = draw_number(data, "steps", st.integers(1, 5), bad=(0, -1), wrong=(None, 2.0, True), nonfinite=())
    burn = draw_number(data, "burn_in", st.integers(0, 3), bad=(-1,), wrong=(None, 1.0), nonfinite=())
    gen = Arg(*data.draw(st.sampled_from([(None, OK), (torch.Generator().manual_seed(0), OK), (3, BAD)])))
    gen.words = ("generator",)
    shape = x0.value.shape if isinstance(x0.value, torch.Tensor) else (1,)
    v0 = Arg(*data.draw(st.sampled_from([(None, OK), ("same", OK), ("zeros", BAD), ("wrong", BAD)])))
    if v0.value == "same":
        v0.value = torch.ones(shape, dtype=torch.float64)
        v0.verdict = OK if len(shape) >= 1 and 0 not in shape else MAYBE
    elif v0.value == "zeros":
        v0.value = torch.zeros(shape, dtype=torch.float64)
    elif v0.value == "wrong":
        v0.value = torch.ones(7, dtype=torch.float64)
    v0.words = ("v0",)
    args = {"step": step, "x0": x0, "theta": theta, "steps": steps, "v0": v0, "burn_in": burn, "generator": gen}
    if step.kind in ("logistic", "const", "sin") and step.verdict == OK:
        step.verdict = MAYBE  # a zero derivative can hit
    if which == "lyapunov_exponent":
        args["dt"] = draw_number(data, "dt", st.floats(0.01, 1), bad=(0.0, -1.0), wrong=(None, "1"))
    def check(out):
        n = steps.value
        bshape = x0.value.shape[:-1]
        assert out.shape == ((n,) + bshape if which == "tangent_log_growth" else bshape)
        assert_finite(out)
    expect(getattr(chaos, which), args, check)

@QUICK
@given(st.data())
def test_gradient_norms(data):
    step = draw_step(data)
    x0 = draw_x0(data)
    theta = Arg(*data.draw(st.sampled_from([(3.9, OK), (torch.tensor([3.9], dtype=torch.float64), OK), (None, OK)])))
    wrt = Arg(*data.draw(st.sampled_from([("x0", OK), ("theta", OK), ("r", BAD), (None, BAD)])))
    if wrt.value == "theta" and not isinstance(theta.value, torch.Tensor):
        theta.verdict = BAD
    if step.kind == "logistic" and theta.value is None:
        theta.verdict = MAYBE if theta.verdict == OK else theta.verdict
        theta.words = ("r", "theta")
    if step.verdict == OK:
        step.verdict = MAYBE
    horizons = Arg(*data.draw(st.sampled_from([([1, 3], OK), ([2], OK), ([], BAD), ([0], BAD), ([1.5], BAD), (3, BAD),
                                               ("12", BAD), (range(1, 3), OK)])))
    loss = Arg(*data.draw(st.sampled_from([(None, OK), (lambda x: (x * x).sum(-1), OK), (lambda x: x.sum(), MAYBE),
                                           (lambda x: 1.0, BAD), ("loss", BAD)])))
    loss.words = ("loss",)
    def check(out):
        assert out.shape == (len(horizons.value), *x0.value.shape[:-1])
        assert_finite(out)
    expect(chaos.gradient_norms, {"step": step, "x0": x0, "theta": theta, "horizons": horizons, "wrt": wrt,
                                  "loss": loss}, check)

@QUICK
@given(st.data())
def test_tf(data):
    step = draw_step(data)
    x0 = draw_x0(data, min_ndim=0)
    shape = x0.value.shape if isinstance(x0.value, torch.Tensor) else (1,)
    dat = draw_tensor(data, shapes=[(3, *shape), (0, *shape), (3, 7), shape], name="data", lo=0.1, hi=0.9,
                      shape_verdict=lambda s: OK if len(s) == len(shape) + 1 and s[1:] == tuple(shape) and s[0] > 0 else BAD,
                      empty=BAD)
    alpha = draw_number(data, "alpha", st.floats(0, 1), bad=(-0.1, 1.5), wrong=(None, "0.5", True))
    theta = Arg(3.9)
    if step.verdict == OK:
        step.verdict = MAYBE
    def check(out):
        assert out.shape == dat.value.shape
        assert_finite(out)
    expect(chaos.teacher_forced_rollout, {"step": step, "x0": x0, "theta": theta, "data": dat, "alpha": alpha}, check)

@QUICK
@given(st.data())
def test_smooth(data):
    kind = data.draw(st.sampled_from(["good", "const", "scalar", "nan", "str", "boom", "nc"]))
    f = {"good": (lambda t: torch.sin(t).sum(-1), OK), "const": (lambda t: torch.zeros(t.shape[0], dtype=t.dtype), OK),
         "scalar": (lambda t: t.sum(), BAD), "nan": (lambda t: t.sum(-1) * math.nan, BAD),
         "str": (lambda t: "a", BAD), "boom": (_boom, BAD), "nc": ("f", BAD)}[kind]
    f = Arg(f[0], f[1], raises=kind == "boom", nonfinite=kind == "nan", words=("f",))
    theta = draw_tensor(data, shapes=[(2,), (1,), (), (2, 2), (0,)], name="theta", empty=BAD,
                        shape_verdict=lambda s: OK if len(s) == 1 else BAD)
    sigma = draw_number(data, "sigma", st.floats(1e-3, 1), bad=(0.0, -1.0), maybe=(1e300,), wrong=(None, "1", True))
    sigma.words = ("sigma", "finite", "overflow", "f")
    n = draw_number(data, "n_samples", st.integers(1, 5), bad=(0, -1), wrong=(None, 2.0, True), nonfinite=())
    est = Arg(*data.draw(st.sampled_from([("es", OK), ("pathwise", OK), ("fd", BAD), (None, BAD)])))
    est.words = ("estimator",)
    gen = Arg(*data.draw(st.sampled_from([(None, OK), (torch.Generator().manual_seed(0), OK), ("g", BAD)])))
    gen.words = ("generator",)
    def check(out):
        assert out.shape == (n.value, theta.value.shape[0])
        assert_finite(out)
    expect(chaos.smoothed_gradient_samples, {"f": f, "theta": theta, "sigma": sigma, "n_samples": n,
                                             "estimator": est, "generator": gen}, check)


FUZZED = {chaos: {"logistic_map": test_logistic, "lorenz": test_fields, "damped_pendulum": test_fields, "rk4_step": test_rk4, "rollout": test_rollout, "tangent_log_growth": test_lyap, "lyapunov_exponent": test_lyap, "gradient_norms": test_gradient_norms, "teacher_forced_rollout": test_tf, "smoothed_gradient_samples": test_smooth}}
