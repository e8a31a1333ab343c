"""Bad input, Part I: the public functions of the Part I modules fuzzed with hypothesis.

The rule (the project's reliability issue): on any input, a public function of
``lib`` either returns a well-formed result (right type and shape, correct where
a reference is cheap, and without NaN, or inf where inf is not the right
answer, when its inputs were finite), or raises ``ValueError`` or ``TypeError``
whose message names the offending argument or what was expected. Never a
crash deep inside torch or NumPy, never a NaN passed on quietly; NaN and inf
inputs of an acceptable type are refused with ``ValueError``.

Scope: every name in ``__all__`` of ``lib.calculus``, ``lib.forward``,
``lib.curvature``, ``lib.numerics``, ``lib.autodiff``, ``lib.tensor``, ``lib.data``, ``lib.plot``
and ``lib.runtime`` (listed in :data:`FUZZED`); for classes the constructor and
the main methods. The later parts' modules are fuzzed in ``tests/test_fuzz_*.py``
with the same machinery (``tests/fuzzing.py``), and ``tests/test_fuzz_coverage.py``
checks that every public name of every ``lib`` module is fuzzed somewhere.

How the tests work: every argument is drawn as an :class:`Arg`, a value with a
verdict: ``OK`` (valid: the call must not refuse it), ``MAYBE`` (unusual but
legal, such as float16 or an empty tensor: accepted, and then the result is
checked, or refused by name) or ``BAD`` (must be refused). :func:`expect` runs
the call and holds it to the rule; ``words`` are the words one of which an
error message about that argument must contain (by default its name).

Accepted besides ``ValueError``/``TypeError`` (and asserted where they occur):

* ``ZeroDivisionError`` from the scalar engines (``forward.Dual``,
  ``autodiff.Value``) for division by zero and ``0 ** negative``: Python's own
  float arithmetic, documented in those classes;
* ``IndexError`` from ``tensor.Tensor.__getitem__`` for an index that does
  not fit the shape: Python's sequence protocol (``for row in t`` stops on it);
* ``OverflowError`` where it is also a ``ValueError`` (``autodiff.Value``
  keeps the OverflowError of Python's floats for results beyond float64);
* an exception raised by a user function (``f``, ``matvec``, ``model_fn``, a
  block): it reaches the caller unchanged (:class:`Boom` here), never hidden.

Infinite results are accepted only where inf is the right answer: the slope
of ``sqrt`` at 0 in a ``Dual`` tangent or a ``Value`` gradient (as torch).

Not drawn, on purpose: sizes that fit int64 but not in memory (torch's own
out-of-memory error, no cap in ``lib`` would be principled), huge loop counts
(``iters``, ``n_samples``, ``n_probes``: legal, just slow), inputs of a wrong
shape for a user's own module (its error is the module's, not ``lib``'s), and
NaN parameters handed to the function that :func:`lib.curvature.loss_as_function`
returns (it checks types and shapes but not values, so that it keeps working
under ``torch.func.vmap``; the curvature functions check ``x`` before calling it).
"""

from __future__ import annotations

import math
import os
import re
from decimal import Decimal, localcontext

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lib import autodiff, calculus, curvature, forward, numerics, runtime, tensor
from lib import data as datasets  # `data` is hypothesis's draw object below

from tests.fuzzing import (BAD, FLOAT_DTYPES, FUZZ, MAYBE, OK, QUICK, SHAPES, Arg, _boom, assert_finite,
                           draw_f, draw_number, draw_tensor, expect, f_good, finite, grad_good,
                           hess_diag_good, small, DTYPE_ARGS, DEVICE_ARGS,
                           _checked_generator, _gen, DEVICE_DATA, SEED, SIZE)

# ================================================================ calculus

CALC_DTYPES = FLOAT_DTYPES
STEPS = dict(ok=st.just(None), bad=(0.0, -1e-3, "1e-3", [1e-3], 0), maybe=(1e-300, 1e300),
             nonfinite=(math.nan, math.inf, -math.inf), wrong=("1e-3", True))


def _calc_x(data):
    return draw_tensor(data, empty=BAD)


def _one_element(x: Arg) -> str:
    """The verdict on ``f = 2 x`` where a scalar is expected: fine when x has one element."""
    return OK if isinstance(x.value, torch.Tensor) and x.value.numel() == 1 else BAD


def _check_grad(x, h_default=True, rtol=1e-3):
    def check(g):
        assert isinstance(g, torch.Tensor) and g.shape == x.shape and g.dtype == x.dtype
        assert_finite(g)
        if h_default and x.dtype == torch.float64 and small(x):
            ref = grad_good(x)
            assert torch.allclose(g, ref, rtol=rtol, atol=rtol), (g, ref)
    return check


@FUZZ
@given(st.data())
def test_default_step(data):
    dtype = data.draw(st.sampled_from([torch.float64, torch.float32, torch.float16, torch.bfloat16,
                                       torch.int64, torch.bool, torch.complex64, None, "float32",
                                       np.float64]))
    scheme = data.draw(st.sampled_from(["central", "forward", "backward", None, 1]))
    args = {"dtype": Arg(dtype, OK if isinstance(dtype, torch.dtype) and dtype.is_floating_point else BAD),
            "scheme": Arg(scheme, OK if scheme in ("central", "forward") else BAD)}

    def check(h):
        assert isinstance(h, float) and 0 < h < 1
        assert h == pytest.approx(torch.finfo(dtype).eps ** (0.5 if scheme == "forward" else 1 / 3))

    expect(calculus.default_step, args, check)


@FUZZ
@given(st.data())
def test_finite_difference(data):
    x = _calc_x(data)
    f = draw_f(data, {"good": OK, "const": OK, "vector": _one_element(x)}, words=("scalar",))
    h = draw_number(data, "h", st.one_of(st.none(), st.floats(1e-4, 1e-2)),
                    bad=(0.0, -1e-3, 0), maybe=(1e-300, 1e300), wrong=("1e-3", True, [1e-3]))
    if h.value is not None and h.verdict == OK:
        h.verdict, h.words = MAYBE, ("h",)  # may be lost to rounding at large x
    scheme = Arg(*data.draw(st.sampled_from([("central", OK), ("forward", OK), ("backward", BAD),
                                             (None, BAD)])))
    expect(calculus.finite_difference, {"f": f, "x": x, "h": h, "scheme": scheme},
           _check_grad(x.value, h.value is None and f.kind == "good" and scheme.value == "central"))


@FUZZ
@given(st.data())
def test_complex_step(data):
    x = _calc_x(data)
    f = draw_f(data, {"good": OK, "const": OK, "vector": _one_element(x)}, words=("scalar",))
    h = draw_number(data, "h", st.sampled_from([1e-20, 1e-10]), bad=(0.0, -1e-20),
                    maybe=(1e-300, 1e300), wrong=("1e-20", True, None))
    expect(calculus.complex_step, {"f": f, "x": x, "h": h},
           _check_grad(x.value, f.kind == "good" and h.value == 1e-20, rtol=1e-9))


@FUZZ
@given(st.data())
def test_jacobian_fd(data):
    f = draw_f(data, {"good": OK, "const": OK, "vector": OK})
    x = _calc_x(data)
    h = draw_number(data, "h", st.none(), bad=(0.0, -1.0), maybe=(1e-300, 1e300), wrong=("a",))
    scheme = Arg(*data.draw(st.sampled_from([("central", OK), ("forward", OK), ("sideways", BAD)])))

    def check(jac):
        xv = x.value
        out_shape = xv.shape if f.kind == "vector" else ()
        assert jac.shape == out_shape + xv.shape and jac.dtype == xv.dtype
        assert_finite(jac)
        if xv.dtype == torch.float64 and small(xv) and h.value is None:
            if f.kind == "vector":
                ref = 2 * torch.eye(xv.numel(), dtype=xv.dtype).reshape(jac.shape)
            elif f.kind == "good":
                ref = grad_good(xv)
            else:
                ref = torch.zeros_like(jac)
            assert torch.allclose(jac, ref, rtol=1e-3, atol=1e-3)

    expect(calculus.jacobian_fd, {"f": f, "x": x, "h": h, "scheme": scheme}, check)


@FUZZ
@given(st.data())
def test_gradcheck(data):
    f = draw_f(data, {"good": OK, "vector": OK}, words=("depend", "autograd"))
    x = _calc_x(data)
    atol = draw_number(data, "atol", st.sampled_from([1e-6, 0.0, 1]), bad=(-1.0,), wrong=("0", None, True))
    rtol = draw_number(data, "rtol", st.sampled_from([1e-4, 0.0]), bad=(-1e-4,), wrong=("0", None))

    def check(report):
        assert isinstance(report, calculus.GradcheckReport) and isinstance(report.ok, bool)
        for value in (report.max_abs_error, report.max_rel_error, report.autograd, report.numeric):
            assert isinstance(value, float) and not math.isnan(value)
        assert math.isfinite(report.max_abs_error) and report.max_abs_error >= 0
        assert isinstance(report.index, tuple)
        xv = x.value
        if xv.dtype == torch.float64 and small(xv) and atol.value == 1e-6 and rtol.value == 1e-4:
            assert report.ok, str(report)

    expect(calculus.gradcheck, {"f": f, "x": x, "atol": atol, "rtol": rtol}, check)


@FUZZ
@given(st.data())
def test_gradcheck_report(data):
    args = {
        "ok": draw_number(data, "ok", st.booleans(), nonfinite=(), wrong=(1, None, "yes")),
        "max_abs_error": draw_number(data, "max_abs_error", st.floats(0, 1e3), bad=(-1.0,),
                                     nonfinite=(math.nan,), wrong=(None, "0")),
        "max_rel_error": draw_number(data, "max_rel_error", st.one_of(st.floats(0, 1e3), st.just(math.inf)),
                                     bad=(-1.0,), nonfinite=(math.nan,), wrong=(None, "0")),
        "index": Arg(*data.draw(st.sampled_from([((0,), OK), ((), OK), ((1, 2), OK), ([0], BAD),
                                                 (0, BAD), (("a",), BAD), ((True,), BAD)]))),
        "autograd": draw_number(data, "autograd", st.floats(-1e3, 1e3), nonfinite=(math.nan,),
                                wrong=(None, "1")),
        "numeric": draw_number(data, "numeric", st.floats(-1e3, 1e3), nonfinite=(math.nan,),
                               wrong=(None, "1")),
    }

    def check(report):
        assert str(report).startswith("gradcheck ")

    expect(calculus.GradcheckReport, args, check)


# ================================================================ forward

BIG = 1e200
DUAL_NUMBERS = dict(
    ok=st.one_of(st.floats(-5, 5), st.integers(-5, 5), st.sampled_from([0.0, -0.0, 1e-300, BIG, -BIG])),
    wrong=(None, "1", [1.0], True, 1 + 2j), bad=(10**400,), maybe=(np.int64(2),))
OPERATOR_WORDS = ("Dual", "exponent", "number", "division", "finite", "overflow", "zero", "negative",
                  "positive", "tangent", "NaN", "float64", "argument")


def _dual_operand(data, name):
    """A Dual or a number on the other side of an operator, with its primal and tangent."""
    if data.draw(st.booleans(), label=f"{name} is Dual"):
        p, t = data.draw(DUAL_NUMBERS["ok"]), data.draw(st.one_of(st.floats(-5, 5), st.just(math.inf)))
        return Arg(forward.Dual(p, t), MAYBE if math.isinf(t) else OK, words=OPERATOR_WORDS), float(p), t
    arg = draw_number(data, name, DUAL_NUMBERS["ok"], bad=DUAL_NUMBERS["bad"], wrong=DUAL_NUMBERS["wrong"],
                      maybe=DUAL_NUMBERS["maybe"])
    arg.words = OPERATOR_WORDS
    num = arg.value
    ok = isinstance(num, (int, float, np.integer)) and not isinstance(num, bool) and abs(num) < 1e300
    return arg, (float(num) if ok else None), 0.0


def _ref_dual(op, a, b, dual_exponent=False):
    """(primal, tangent) of ``op`` on first-order expansions ``a = (p, t)``, ``b = (p, t)``, or None.

    ``a ** b`` with a Dual exponent is ``exp(b log a)``: defined for ``a > 0`` only."""
    (ap, at), (bp, bt) = a, b
    try:
        if op == "+":
            return ap + bp, at + bt
        if op == "-":
            return ap - bp, at - bt
        if op == "*":
            return ap * bp, ap * bt + at * bp
        if op == "/":
            return ap / bp, (at - ap / bp * bt) / bp
        if op == "**":
            if dual_exponent:
                if ap <= 0:
                    return None
                value = ap**bp
                with localcontext() as ctx:  # the base's term b a^(b-1) da in 40 digits: factors alone under/overflow
                    ctx.prec = 40
                    pull = float(Decimal(bp) * Decimal(at) * ((Decimal(bp) - 1) * Decimal(ap).ln()).exp()) \
                        if math.isfinite(at) else bp * at  # an infinite da: +-inf, or NaN for b = 0
                if math.isinf(pull) and math.isfinite(at):
                    return None  # the derivative overflows float64: refused, as for a number exponent
                return value, pull + value * math.log(ap) * bt
            if ap < 0 and not float(bp).is_integer():
                return None
            if bp == 0:
                return 1.0, 0.0
            return ap**bp, bp * ap ** (bp - 1) * at
    except (ZeroDivisionError, OverflowError, ValueError):
        return None


@FUZZ
@given(st.data())
def test_dual_constructor(data):
    primal = draw_number(data, "primal", DUAL_NUMBERS["ok"], bad=DUAL_NUMBERS["bad"],
                         wrong=DUAL_NUMBERS["wrong"])
    tangent = draw_number(data, "tangent", DUAL_NUMBERS["ok"], bad=DUAL_NUMBERS["bad"],
                          nonfinite=(math.nan,), maybe=(math.inf, -math.inf), wrong=DUAL_NUMBERS["wrong"])
    if isinstance(primal.value, np.integer):
        primal.verdict = MAYBE
    if isinstance(tangent.value, np.integer):
        tangent.verdict = MAYBE

    def check(d):
        assert d.primal == float(primal.value) and d.tangent == float(tangent.value)
        assert isinstance(d.primal, float) and repr(d).startswith("Dual(")

    expect(forward.Dual, {"primal": primal, "tangent": tangent}, check)


@FUZZ
@given(st.data())
def test_dual_arithmetic(data):
    """``Dual op operand`` and ``operand op Dual`` against the first-order expansion."""
    p, t = data.draw(DUAL_NUMBERS["ok"]), data.draw(st.floats(-5, 5))
    a = forward.Dual(p, t)
    op = data.draw(st.sampled_from(["+", "-", "*", "/", "**"]))
    b, bp, bt = _dual_operand(data, "other")
    flip = data.draw(st.booleans())
    fns = {"+": lambda u, v: u + v, "-": lambda u, v: u - v, "*": lambda u, v: u * v,
           "/": lambda u, v: u / v, "**": lambda u, v: u**v}
    ref = None
    if bp is not None:
        dual_exp = flip or isinstance(b.value, forward.Dual)
        ref = (_ref_dual(op, (bp, bt), (float(p), t), dual_exp) if flip
               else _ref_dual(op, (float(p), t), (bp, bt), dual_exp))
    representable = ref is not None and isinstance(ref[0], float) and math.isfinite(ref[0]) \
        and not math.isnan(ref[1])
    if bp is not None and b.verdict != BAD and not representable:
        b.verdict = MAYBE  # a domain error, overflow or zero division: refused

    def call(other):
        return fns[op](other, a) if flip else fns[op](a, other)

    def check(out):
        assert isinstance(out, forward.Dual)
        assert ref is not None and representable, (out, ref)
        assert out.primal == pytest.approx(ref[0], rel=1e-9, abs=1e-300)
        if math.isinf(ref[1]) or math.isinf(out.tangent):
            assert out.tangent == ref[1]
        else:
            assert out.tangent == pytest.approx(ref[1], rel=1e-6, abs=1e-200)

    zero = bp == 0.0 or float(p) == 0.0
    expect(call, {"other": b}, check, also=(ZeroDivisionError,) if zero and op in "/**" else ())


DUAL_FUNCTIONS = {  # name: (value, derivative)
    "sin": (math.sin, math.cos), "cos": (math.cos, lambda a: -math.sin(a)),
    "exp": (math.exp, math.exp), "log": (math.log, lambda a: 1 / a),
    "tanh": (math.tanh, lambda a: 1 - math.tanh(a) ** 2),
    "sqrt": (math.sqrt, lambda a: 0.5 / math.sqrt(a) if a > 0 else math.inf),
}


@FUZZ
@given(st.data())
def test_dual_functions(data):
    name = data.draw(st.sampled_from(sorted(DUAL_FUNCTIONS)))
    fn, dfn = DUAL_FUNCTIONS[name]
    x, xp, xt = _dual_operand(data, "x")
    try:
        ref = (fn(xp), dfn(xp) * xt) if xp is not None else None
    except (ValueError, OverflowError):
        ref = None
    if xp is not None and x.verdict != BAD and (ref is None or math.isnan(ref[1])):
        x.verdict = MAYBE
        x.words = ("finite", "overflow", "positive", "negative", "NaN", name)

    def check(out):
        assert ref is not None
        if isinstance(x.value, forward.Dual):
            assert isinstance(out, forward.Dual) and out.primal == pytest.approx(ref[0], rel=1e-12)
            assert out.tangent == pytest.approx(ref[1], rel=1e-9) or out.tangent == ref[1]
        else:
            assert isinstance(out, float) and out == pytest.approx(ref[0], rel=1e-12)

    expect(getattr(forward, name), {"x": x}, check)


DUAL_F_POOL = {
    "good": (lambda d: forward.sin(d) * d, OK),
    "const": (lambda d: 3.0, OK),
    "nan": (lambda d: math.nan, BAD),
    "str": (lambda d: "3", BAD),
    "list": (lambda d: [d], BAD),
    "boom": (_boom, BAD),
    "not callable": ("sin", BAD),
}


@FUZZ
@given(st.data())
def test_derivative(data):
    kind = data.draw(st.sampled_from(sorted(DUAL_F_POOL)))
    fn, verdict = DUAL_F_POOL[kind]
    f = Arg(fn, verdict, raises=kind == "boom", nonfinite=kind == "nan", note=kind,
            words=("f", "callable") if kind == "not callable" else ("f",))
    x = draw_number(data, "x", st.floats(-5, 5), wrong=(None, "1", True, [1.0]))

    def check(out):
        value, slope = out
        xv = x.value
        if kind == "good":
            assert value == pytest.approx(math.sin(xv) * xv, abs=1e-12)
            assert slope == pytest.approx(math.sin(xv) + xv * math.cos(xv), abs=1e-12)
        else:
            assert out == (3.0, 0.0)

    expect(forward.derivative, {"f": f, "x": x}, check)


def _fw_x(data, name="x"):
    return draw_tensor(data, name=name)


def _jvp_ref(kind, x, v):
    if kind == "good":
        return f_good(x), (grad_good(x) * v.double()).sum()
    if kind == "vector":
        return 2 * x, 2 * v
    return torch.ones(()), torch.zeros(())


@FUZZ
@given(st.data())
def test_jvp(data):
    f = draw_f(data, {"good": OK, "vector": OK, "const": OK})
    x = _fw_x(data)
    shape = x.value.shape if isinstance(x.value, torch.Tensor) else (2,)
    same = data.draw(st.booleans())
    v = draw_tensor(data, shapes=[shape] if same else SHAPES, name="v",
                    shape_verdict=lambda s: OK if s == shape else BAD)

    def check(out):
        primal, tangent = out
        assert_finite(primal)
        assert_finite(tangent)
        assert tangent.shape == primal.shape
        xv, vv = x.value, v.value
        ref_p, ref_t = _jvp_ref(f.kind, xv, vv)
        assert primal.shape == ref_p.shape
        if xv.dtype == torch.float64 and vv.dtype == torch.float64 and small(xv) and small(vv):
            assert torch.allclose(primal.double(), ref_p.double(), atol=1e-9)
            assert torch.allclose(tangent.double(), ref_t.double(), atol=1e-9)

    expect(forward.jvp, {"f": f, "x": x, "v": v}, check)


@FUZZ
@given(st.data())
def test_vjp(data):
    f = draw_f(data, {"good": OK, "vector": OK, "const": OK}, words=("shape",))
    x = _fw_x(data)
    xshape = x.value.shape if isinstance(x.value, torch.Tensor) else (2,)
    out_shape = xshape if f.kind == "vector" else ()
    u = draw_tensor(data, shapes=[out_shape, out_shape, (), (3,), (2, 2)], name="u",
                    shape_verdict=lambda s: OK if s == out_shape or f.kind not in ("good", "vector", "const")
                    else BAD)
    if u.verdict != OK and isinstance(u.value, torch.Tensor) and u.value.shape != out_shape:
        u.words = ("u", "shape")

    def check(out):
        value, g = out
        xv, uv = x.value, u.value
        assert g.shape == xv.shape and value.shape == out_shape
        assert_finite(value)
        assert_finite(g)
        if xv.dtype == torch.float64 and small(xv) and small(uv) and uv.dtype == torch.float64:
            ref = {"good": lambda: grad_good(xv) * uv, "vector": lambda: 2 * uv,
                   "const": lambda: torch.zeros_like(xv)}[f.kind]()
            assert torch.allclose(g.double(), ref.double(), atol=1e-9)

    expect(forward.vjp, {"f": f, "x": x, "u": u}, check)


@FUZZ
@given(st.data(), st.sampled_from(["jacobian_forward", "jacobian_reverse"]))
def test_jacobians(data, which):
    f = draw_f(data, {"good": OK, "vector": OK, "const": OK})
    x = _fw_x(data)

    def check(jac):
        xv = x.value
        out_shape = xv.shape if f.kind == "vector" else ()
        assert jac.shape == out_shape + xv.shape
        assert_finite(jac)
        if xv.dtype == torch.float64 and small(xv):
            ref = {"good": lambda: grad_good(xv),
                   "vector": lambda: 2 * torch.eye(xv.numel(), dtype=xv.dtype).reshape(jac.shape),
                   "const": lambda: torch.zeros_like(jac)}[f.kind]()
            assert torch.allclose(jac.double(), ref.double(), atol=1e-9)

    expect(getattr(forward, which), {"f": f, "x": x}, check)


@FUZZ
@given(st.data())
def test_forward_gradient(data):
    x = _fw_x(data)
    f = draw_f(data, {"good": OK, "const": OK, "vector": _one_element(x)}, words=("scalar",))
    n_samples = draw_number(data, "n_samples", st.integers(1, 3), bad=(0, -1), wrong=(None, 2.0, "2", True),
                            nonfinite=(), huge=None)
    gen = Arg(*data.draw(st.sampled_from([(None, OK), ("generator", OK), ("seed", BAD), (3, BAD)])))
    if gen.value == "generator":
        gen.value = torch.Generator().manual_seed(0)

    def check(g):
        xv = x.value
        assert g.shape == xv.shape and g.dtype == xv.dtype
        assert_finite(g)
        if isinstance(gen.value, torch.Generator) and xv.dtype == torch.float64 and small(xv) \
                and f.kind == "good":
            g2 = torch.Generator().manual_seed(0)
            vs = [torch.randn(xv.shape, generator=g2, dtype=xv.dtype) for _ in range(n_samples.value)]
            ref = sum((grad_good(xv) * v).sum() * v for v in vs) / n_samples.value
            assert torch.allclose(g, ref, atol=1e-9)

    expect(forward.forward_gradient, {"f": f, "x": x, "n_samples": n_samples, "generator": gen}, check)


# ================================================================ curvature

CURV_SHAPES = [(), (1,), (3,), (2, 2), (0,)]


def _curv_x(data, name="x"):
    return draw_tensor(data, shapes=CURV_SHAPES, empty=BAD, name=name)


def _curv_f(data, x: Arg):
    return draw_f(data, {"good": OK, "const": OK, "vector": _one_element(x)}, words=("scalar",))


def _tol(dtype):
    return 1e-8 if dtype == torch.float64 else 1e-3 if dtype == torch.float32 else 0.1


@FUZZ
@given(st.data())
def test_hvp(data):
    x = _curv_x(data)
    f = _curv_f(data, x)
    shape = x.value.shape if isinstance(x.value, torch.Tensor) else (2,)
    v = draw_tensor(data, shapes=[shape, shape, (), (4,)], name="v",
                    shape_verdict=lambda s: OK if s == shape else BAD)
    mode = Arg(*data.draw(st.sampled_from([("rev-rev", OK), ("fwd-rev", OK), ("fwd-fwd", BAD), (None, BAD)])))

    def check(hv):
        xv = x.value
        assert hv.shape == xv.shape and hv.dtype == xv.dtype
        assert_finite(hv)
        if small(xv) and small(v.value):
            ref = hess_diag_good(xv) * v.value.double() if f.kind == "good" else torch.zeros_like(hv)
            tol = _tol(xv.dtype)
            assert torch.allclose(hv.double(), ref.double(), rtol=tol, atol=tol * 10), (hv, ref)

    expect(curvature.hvp, {"f": f, "x": x, "v": v, "mode": mode}, check)


@FUZZ
@given(st.data())
def test_hessian(data):
    x = _curv_x(data)
    f = _curv_f(data, x)

    def check(H):
        xv = x.value
        assert H.shape == (xv.numel(), xv.numel())
        assert_finite(H)
        if small(xv):
            ref = torch.diag(hess_diag_good(xv).reshape(-1)) if f.kind == "good" else torch.zeros_like(H)
            tol = _tol(xv.dtype)
            assert torch.allclose(H.double(), ref.double(), rtol=tol, atol=tol * 10)

    expect(curvature.hessian, {"f": f, "x": x}, check)


MODEL_POOL = {"good": lambda p: 2 * torch.tanh(p), "nan": lambda p: p * math.nan,
              "str": lambda p: "z", "int": lambda p: (p > 0).long(), "boom": _boom}
LOSS_POOL = {"good": lambda z: 0.5 * (z * z).sum(), "vector": lambda z: z * z,
             "nan": lambda z: (z * 0).sum() + math.nan, "str": lambda z: 1, "boom": _boom}


@FUZZ
@given(st.data())
def test_ggn_vp(data):
    mk = data.draw(st.sampled_from(sorted(MODEL_POOL) + ["not callable"]))
    lk = data.draw(st.sampled_from(sorted(LOSS_POOL) + ["not callable"]))
    model_fn = Arg(MODEL_POOL.get(mk, "model"), OK if mk == "good" else BAD, raises=mk == "boom",
                   nonfinite=mk == "nan", note=mk, words=("model_fn",))
    loss_fn = Arg(LOSS_POOL.get(lk, "loss"), OK if lk == "good" else BAD, raises=lk == "boom",
                  nonfinite=lk == "nan", note=lk, words=("loss_fn",))
    params = _curv_x(data, "params")
    if lk == "vector":
        loss_fn.verdict, loss_fn.words = _one_element(params), ("loss_fn", "scalar")
    shape = params.value.shape if isinstance(params.value, torch.Tensor) else (2,)
    v = draw_tensor(data, shapes=[shape, shape, (5,)], name="v",
                    shape_verdict=lambda s: OK if s == shape else BAD)

    def check(gv):
        p = params.value
        assert gv.shape == p.shape and gv.dtype == p.dtype
        assert_finite(gv)
        if small(p) and small(v.value):
            h_loss = 2.0 if lk == "vector" else 1.0  # H_L = I for 0.5 |z|^2, 2 for z * z (one element)
            ref = h_loss * 4 / torch.cosh(p.double()) ** 4 * v.value.double()  # J = diag(2 sech^2 p)
            tol = _tol(p.dtype)
            assert torch.allclose(gv.double(), ref, rtol=tol, atol=tol * 10)

    expect(curvature.ggn_vp, {"model_fn": model_fn, "loss_fn": loss_fn, "params": params, "v": v}, check)


def _spectrum(n, dtype=torch.float64):
    return torch.linspace(-1.0, 2.0, n, dtype=dtype)


MATVEC_POOL = {
    "good": (lambda q: _spectrum(q.numel(), q.dtype) * q, OK),
    "short": (lambda q: q[:-1], BAD),
    "nan": (lambda q: q * math.nan, BAD),
    "str": (lambda q: [0.0], BAD),
    "boom": (_boom, BAD),
    "not callable": ("A", BAD),
}

def _matvec(data):
    kind = data.draw(st.sampled_from(sorted(MATVEC_POOL)))
    fn, verdict = MATVEC_POOL[kind]
    return Arg(fn, verdict, raises=kind == "boom", nonfinite=kind == "nan", note=kind, kind=kind,
               words=("matvec", "callable"))


@FUZZ
@given(st.data())
def test_lanczos(data):
    matvec = _matvec(data)
    n = draw_number(data, "n", st.integers(1, 6), bad=(0, -3, 2**64), wrong=(None, 3.0, "3", True),
                    nonfinite=())
    iters = draw_number(data, "iters", st.sampled_from([1, 3, 10, 10**30]), bad=(0, -1),
                        wrong=(None, 2.5, "3", True), nonfinite=())
    if iters.value == 10**30:
        iters.verdict, iters.words = MAYBE, ("iters",)
    gen = _gen(_checked_generator(data))
    nv = n.value if isinstance(n.value, int) and not isinstance(n.value, bool) and 1 <= n.value < 100 else 3
    v0 = draw_tensor(data, shapes=[(nv,), (nv,), (nv + 1,)], dtypes={torch.float64: OK, torch.float32: OK,
                                                                  torch.int64: BAD},
                     shape_verdict=lambda s: OK if s == (nv,) else BAD, name="v0", non_tensors=[[1.0], "v"])
    if data.draw(st.booleans()):
        v0 = Arg(None)
    elif isinstance(v0.value, torch.Tensor) and v0.value.dtype.is_floating_point and finite(v0.value) \
            and not float(v0.value.abs().sum()) > 0:
        v0.verdict, v0.words = BAD, ("v0", "non-zero")
    dtype = Arg(*data.draw(st.sampled_from(DTYPE_ARGS)))
    device = Arg(*data.draw(st.sampled_from(DEVICE_ARGS)))

    def check(out):
        alpha, beta, Q = out
        m = min(iters.value, n.value)
        assert alpha.shape == (m,) and beta.shape == (m - 1,) and Q.shape == (m, n.value)
        for t in out:
            assert_finite(t)
        if Q.dtype in (torch.float64, torch.float32):
            tol = 1e-6 if Q.dtype == torch.float64 else 1e-3
            assert torch.allclose(Q @ Q.T, torch.eye(m, dtype=Q.dtype), atol=tol)
            if m == n.value:
                T = torch.diag(alpha) + torch.diag(beta, 1) + torch.diag(beta, -1)
                eig = torch.linalg.eigvalsh(T.double())
                assert torch.allclose(eig, _spectrum(n.value), atol=100 * tol)

    expect(curvature.lanczos, {"matvec": matvec, "n": n, "iters": iters, "generator": gen, "v0": v0,
                               "dtype": dtype, "device": device}, check)


@FUZZ
@given(st.data())
def test_power_iteration(data):
    matvec = _matvec(data)
    n = draw_number(data, "n", st.integers(1, 5), bad=(0, -2, 2**64), wrong=(None, 3.0, True), nonfinite=())
    nv = n.value if n.verdict == OK else 3
    k = draw_number(data, "k", st.integers(1, nv), bad=(0, nv + 1), wrong=(None, 1.0, "1"), nonfinite=())
    iters = draw_number(data, "iters", st.sampled_from([1, 50, 300]), bad=(0, -1), wrong=(None, 1.5),
                        nonfinite=(), huge=None)
    tol = draw_number(data, "tol", st.sampled_from([1e-6, 1e-3]), bad=(0.0, -1e-6), wrong=(None, "1e-6"))
    shift = draw_number(data, "shift", st.sampled_from([0.0, 1.0, 3]), wrong=(None, "1.5", [0.0], True))
    gen = _gen(_checked_generator(data))
    dtype = Arg(*data.draw(st.sampled_from(DTYPE_ARGS)))
    device = Arg(*data.draw(st.sampled_from(DEVICE_ARGS)))

    def check(out):
        lams, U = out
        assert lams.shape == (k.value,) and U.shape == (k.value, n.value)
        assert_finite(lams)
        assert_finite(U)
        if U.dtype in (torch.float32, torch.float64):
            assert torch.allclose(U.norm(dim=1), torch.ones(k.value, dtype=U.dtype), atol=1e-3)
            assert float(lams.min()) >= -1 - 1e-3 and float(lams.max()) <= 2 + 1e-3

    expect(curvature.power_iteration, {"matvec": matvec, "n": n, "k": k, "iters": iters, "tol": tol,
                                       "shift": shift, "generator": gen, "dtype": dtype, "device": device},
           check)


@QUICK
@given(st.data())
def test_top_eigenvalues(data):
    x = _curv_x(data)
    f = _curv_f(data, x)
    nv = x.value.numel() if x.verdict != BAD or isinstance(x.value, torch.Tensor) else 2
    nv = max(nv, 1)
    k = draw_number(data, "k", st.integers(1, nv), bad=(0, nv + 1), wrong=(None, 1.0), nonfinite=())
    method = Arg(*data.draw(st.sampled_from([("lanczos", OK), ("power", OK), ("arnoldi", BAD), (1, BAD)])))
    kv = k.value if k.verdict == OK else 1
    iters = draw_number(data, "iters", st.sampled_from([None, 30, 200]),
                        bad=(0, -1) if method.value != "lanczos" else (0, -1, kv - 1),
                        wrong=("30", 30.0), nonfinite=())
    tol = draw_number(data, "tol", st.sampled_from([1e-6, 1e-4]), bad=(0.0, -1.0), wrong=(None, "1e-6"))
    gen = _gen(_checked_generator(data))

    def check(out):
        lams, vecs = out
        xv = x.value
        assert lams.shape == (k.value,) and vecs.shape == (k.value, *xv.shape)
        assert lams.dtype == xv.dtype
        assert_finite(lams)
        assert_finite(vecs)
        assert bool((lams[:-1] >= lams[1:]).all())
        if small(xv) and xv.dtype in (torch.float64, torch.float32):
            d = (hess_diag_good(xv).reshape(-1) if f.kind == "good"
                 else torch.zeros(xv.numel(), dtype=torch.float64))
            ref = d.sort(descending=True).values[: k.value]
            tol_ = 1e-5 if xv.dtype == torch.float64 else 1e-2
            if method.value == "lanczos" and (iters.value is None or iters.value >= xv.numel()):
                assert torch.allclose(lams.double(), ref, atol=tol_ * (1 + float(d.abs().max())))
            else:
                lo, hi = float(d.min()), float(d.max())
                assert lo - 0.1 * (1 + abs(lo)) <= float(lams.min())
                assert float(lams.max()) <= hi + 0.1 * (1 + abs(hi))

    expect(curvature.top_eigenvalues, {"f": f, "x": x, "k": k, "method": method, "iters": iters, "tol": tol,
                                       "generator": gen}, check)


@QUICK
@given(st.data())
def test_spectral_density(data):
    x = _curv_x(data)
    f = _curv_f(data, x)
    n_probes = draw_number(data, "n_probes", st.integers(1, 3), bad=(0, -1), wrong=(None, 2.0), nonfinite=(),
                           huge=None)
    iters = draw_number(data, "iters", st.integers(1, 8), bad=(0,), wrong=(None, "5"), nonfinite=())
    grid = draw_tensor(data, shapes=[(5,), (50,), (2, 2), (0,)], name="grid", non_tensors=[[0.0, 1.0], "g"],
                       shape_verdict=lambda s: OK if len(s) == 1 else BAD, empty=BAD)
    if data.draw(st.booleans()):
        grid = Arg(None)
    sigma = draw_number(data, "sigma", st.sampled_from([None, 0.1, 1.0]), bad=(0.0, -0.1), wrong=("0.1",))
    gen = _gen(_checked_generator(data))

    def check(out):
        g, density = out
        assert g.ndim == 1 and density.shape == g.shape and density.dtype == g.dtype
        assert_finite(g)
        assert_finite(density)
        assert bool((density >= 0).all())

    expect(curvature.spectral_density, {"f": f, "x": x, "n_probes": n_probes, "iters": iters, "grid": grid,
                                        "sigma": sigma, "generator": gen}, check)


@FUZZ
@given(st.data())
def test_loss_as_function(data):
    torch.manual_seed(0)
    model = Arg(*data.draw(st.sampled_from([(torch.nn.Linear(3, 2), OK), (torch.nn.ReLU(), BAD),
                                            ("model", BAD), (None, BAD)])))
    if isinstance(model.value, torch.nn.ReLU):
        model.words = ("model", "parameters")
    mse = lambda z, y: ((z - y) ** 2).mean()  # noqa: E731
    loss_fn = Arg(*data.draw(st.sampled_from([(mse, OK), ("mse", BAD), (None, BAD)])))
    inputs = draw_tensor(data, shapes=[(4, 3)], dtypes={torch.float32: OK, torch.int64: MAYBE},
                         name="inputs", specials=True)
    targets = draw_tensor(data, shapes=[(4, 2)], dtypes={torch.float32: OK}, name="targets")
    out = expect(curvature.loss_as_function,
                 {"model": model, "loss_fn": loss_fn, "inputs": inputs, "targets": targets},
                 lambda out: None)
    if out is None or any(a.verdict != OK for a in (model, loss_fn, inputs, targets)):
        return
    f, theta0 = out
    assert theta0.shape == (8,) and theta0.dtype == torch.float32
    theta = draw_tensor(data, shapes=[(8,), (8,), (7,), ()], dtypes={torch.float32: OK, torch.float64: BAD,
                                                                   torch.int64: BAD},
                        shape_verdict=lambda s: OK if s == (8,) else BAD, name="theta", specials=False)

    def check(loss):
        assert loss.shape == () and finite(loss)
        z = inputs.value @ theta.value[:6].reshape(2, 3).T + theta.value[6:]
        assert torch.allclose(loss, mse(z, targets.value), atol=1e-4 * (1 + float(loss.abs())))

    expect(f, {"theta": theta}, check)
    model.value.weight.grad = None  # the module is not modified by f


# ================================================================ numerics

NUM_SHAPES = [(), (3,), (2, 3), (4, 1), (0,), (2, 0), (0, 3)]


def _stablemax_ref(x, dim):
    x = x.double()
    s = torch.where(x >= 0, x + 1, 1 / (1 - x.clamp(max=0)))
    return s / s.sum(dim=dim, keepdim=True)


@FUZZ
@given(st.data(), st.sampled_from(["stablemax", "log_stablemax"]))
def test_stablemax(data, which):
    x = draw_tensor(data, shapes=NUM_SHAPES, lo=-50, hi=50)
    ndim = max(x.value.ndim, 1) if isinstance(x.value, torch.Tensor) else 1
    dim = draw_number(data, "dim", st.integers(-ndim, ndim - 1), bad=(ndim, -ndim - 1, 2**70),
                      wrong=(None, 1.0, "0", True), nonfinite=())

    def check(p):
        xv = x.value
        assert p.shape == xv.shape and p.dtype == xv.dtype
        assert_finite(p)
        ref = _stablemax_ref(xv, dim.value)
        tol = _tol(xv.dtype) * 10
        if which == "stablemax":
            assert torch.allclose(p.double(), ref, rtol=tol, atol=tol)
        else:
            assert torch.allclose(p.double(), ref.log(), rtol=tol, atol=tol)

    expect(getattr(numerics, which), {"x": x, "dim": dim}, check)


def _logits_and_targets(data):
    logits = draw_tensor(data, shapes=[(3, 4), (1, 2), (2,), (3, 4, 1), (0, 4), (3, 0)], lo=-30, hi=30,
                         name="logits", shape_verdict=lambda s: OK if len(s) == 2 else BAD, empty=BAD)
    n, k = logits.value.shape if isinstance(logits.value, torch.Tensor) and logits.value.ndim == 2 else (3, 4)
    kind = data.draw(st.sampled_from(["ok", "ok", "int32", "float", "shape", "range", "negative", "list"]))
    t = torch.tensor(data.draw(st.lists(st.integers(0, max(k - 1, 0)), min_size=n, max_size=n)),
                     dtype=torch.int64)
    targets = {
        "ok": Arg(t, OK if k else BAD),
        "int32": Arg(t.int(), OK if k else BAD),
        "float": Arg(t.float(), BAD),
        "shape": Arg(torch.zeros(n + 1, dtype=torch.int64), BAD),
        "range": Arg(t + k, BAD if n else OK),
        "negative": Arg(t - k, BAD if n else OK),
        "list": Arg(t.tolist(), BAD),
    }[kind]
    return logits, targets


@FUZZ
@given(st.data())
def test_stablemax_cross_entropy(data):
    logits, targets = _logits_and_targets(data)

    def check(loss):
        assert loss.shape == () and loss.dtype == logits.value.dtype
        assert_finite(loss)
        p = _stablemax_ref(logits.value, 1)
        ref = -p.log().gather(1, targets.value[:, None].long()).mean()
        assert float(loss) == pytest.approx(float(ref), rel=_tol(loss.dtype) * 10, abs=_tol(loss.dtype) * 10)

    expect(numerics.stablemax_cross_entropy, {"logits": logits, "targets": targets}, check)


@FUZZ
@given(st.data())
def test_zero_gradient_fraction(data):
    logits, targets = _logits_and_targets(data)
    loss = Arg(*data.draw(st.sampled_from([("softmax", OK), ("stablemax", OK), ("hinge", BAD), (None, BAD)])))

    def check(frac):
        assert isinstance(frac, float) and 0.0 <= frac <= 1.0

    expect(numerics.zero_gradient_fraction, {"logits": logits, "targets": targets, "loss": loss}, check)


@FUZZ
@given(st.data())
def test_saved_tensor_tracker(data):
    count = Arg(*data.draw(st.sampled_from([(False, OK), (True, OK), (1, BAD), ("yes", BAD), (None, BAD)])))
    tracker = expect(numerics.SavedTensorTracker, {"count_parameters": count})
    if tracker is None:
        return
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 3)
    x = torch.randn(data.draw(st.integers(0, 4)), 3, requires_grad=data.draw(st.booleans()))
    with tracker:
        y = torch.tanh(layer(x)).sum()
        assert tracker.live_bytes >= 0 and tracker.peak_bytes >= tracker.live_bytes
        y.backward()
    for value in (tracker.live_bytes, tracker.peak_bytes, tracker.saved_bytes, tracker.n_saves):
        assert isinstance(value, int) and value >= 0
    assert tracker.peak_bytes <= tracker.saved_bytes


@FUZZ
@given(st.data())
def test_checkpoint_sequential(data):
    torch.manual_seed(0)
    layers = [torch.nn.Linear(3, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3)]
    blocks = Arg(*data.draw(st.sampled_from([
        (layers, OK), (torch.nn.Sequential(*layers), OK), (tuple(layers), OK), ([], BAD),
        ([layers[0], None], BAD), (layers[0], BAD), (None, BAD), ("abc", BAD),
        (torch.nn.Linear(3, 3).double(), BAD)])))
    if isinstance(blocks.value, torch.nn.Linear) and blocks.value.weight.dtype == torch.float64:
        blocks.value = [blocks.value]  # float64 blocks: x's float32 must be refused
        blocks.verdict, blocks.words = MAYBE, ("blocks", "dtype")
    nb = len(blocks.value) if isinstance(blocks.value, (list, tuple, torch.nn.Sequential)) else 0
    x = draw_tensor(data, shapes=[(2, 3), (0, 3), (1, 3)], dtypes={torch.float32: OK, torch.float64: MAYBE,
                                                                 torch.int64: BAD},
                    non_tensors=[None, [[1.0, 2.0, 3.0]], np.ones((2, 3))])
    x.value = x.value.requires_grad_(True) if isinstance(x.value, torch.Tensor) and \
        x.value.dtype.is_floating_point else x.value
    segments = draw_number(data, "segments", st.integers(1, max(nb, 1)), bad=(0, nb + 1, -1),
                           wrong=(None, 1.0, "1", True), nonfinite=())

    def check(y):
        seq = list(blocks.value)
        ref = x.value
        for b in seq:
            ref = b(ref)
        assert torch.allclose(y, ref)
        if y.numel():
            (gx,) = torch.autograd.grad(y.sum(), x.value)
            (rx,) = torch.autograd.grad(ref.sum(), x.value)
            assert torch.allclose(gx, rx)

    expect(numerics.checkpoint_sequential, {"blocks": blocks, "x": x, "segments": segments}, check)


# ================================================================ autodiff

Value, Tensor = autodiff.Value, tensor.Tensor
VALUE_OK = st.one_of(st.floats(-5, 5), st.integers(-5, 5), st.sampled_from([0.0, 1e-300, 1e200, -1e200]),
                     st.floats(-5, 5).map(np.float32), st.integers(-5, 5).map(np.int64))
VALUE_WORDS = ("Value", "finite", "overflow", "float64", "negative", "positive", "exponent", "log", "number",
               "division", "zero")


@FUZZ
@given(st.data())
def test_value_constructor(data):
    x = draw_number(data, "data", VALUE_OK, bad=(10**400,), wrong=(None, "1", [1.0], True, 1j))

    def check(v):
        assert isinstance(v.data, float) and v.data == float(x.value) and v.grad == 0.0

    expect(Value, {"data": x}, check)


VALUE_BINARY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
                "/": lambda a, b: a / b, "**": lambda a, b: a**b}
VALUE_DERIVS = {  # d/da, d/db
    "+": lambda a, b: (1.0, 1.0), "-": lambda a, b: (1.0, -1.0), "*": lambda a, b: (b, a),
    "/": lambda a, b: (1 / b, -(a / b) / b),
    "**": lambda a, b: (0.0 if b == 0 else math.inf if a == 0 and b < 1 else b * a ** (b - 1), None),
}


@FUZZ
@given(st.data())
def test_value_binary_ops(data):
    """``Value op other`` and ``other op Value`` with ``backward``, against float arithmetic."""
    a = data.draw(VALUE_OK)
    op = data.draw(st.sampled_from(sorted(VALUE_BINARY)))
    flip = op != "**" and data.draw(st.booleans())
    as_value = op != "**" and data.draw(st.booleans())
    other = draw_number(data, "other", VALUE_OK, bad=(10**400,), wrong=(None, "1", [1.0], True, 1j))
    other.words = VALUE_WORDS
    b = other.value
    if as_value and other.verdict == OK:
        other.value = Value(b)
    x, y = (b, a) if flip else (a, b)
    ref = None
    if other.verdict == OK:
        try:
            value = VALUE_BINARY[op](float(x), float(y))
            if isinstance(value, float) and math.isfinite(value):
                ref = value, VALUE_DERIVS[op](float(x), float(y))
        except (ZeroDivisionError, OverflowError, ValueError):
            pass
        if ref is None:
            other.verdict = MAYBE
    va = Value(a)

    def call(other):
        return VALUE_BINARY[op](other, va) if flip else VALUE_BINARY[op](va, other)

    def check(out):
        assert isinstance(out, Value) and ref is not None
        assert out.data == pytest.approx(ref[0], rel=1e-12, abs=1e-300)
        out.backward()
        da, db = ref[1]
        got = [(va.grad, db if flip else da)]
        if isinstance(other.value, Value):
            got.append((other.value.grad, da if flip else db))
        for g, r in got:
            assert not math.isnan(g)
            assert g == r or g == pytest.approx(r, rel=1e-9, abs=1e-300), (g, r)

    zero = float(x if op == "**" else y) == 0.0 if other.verdict != BAD else False
    expect(call, {"other": other}, check, also=(ZeroDivisionError,) if zero and op in "/**" else ())


VALUE_UNARY = {  # name: (op, value, derivative)
    "neg": (lambda v: -v, lambda x: -x, lambda x: -1.0),
    "relu": (lambda v: v.relu(), lambda x: max(x, 0.0), lambda x: float(x > 0)),
    "tanh": (lambda v: v.tanh(), math.tanh, lambda x: 1 - math.tanh(x) ** 2),
    "exp": (lambda v: v.exp(), math.exp, math.exp),
    "log": (lambda v: v.log(), math.log, lambda x: 1 / x),
    "chain": (lambda v: (v * 0.5 - v).tanh() * 2, lambda x: 2 * math.tanh(-0.5 * x),
              lambda x: -(1 - math.tanh(-0.5 * x) ** 2)),
}


@FUZZ
@given(st.data(), st.sampled_from(sorted(VALUE_UNARY)))
def test_value_unary_ops(data, name):
    op, fn, dfn = VALUE_UNARY[name]
    x = data.draw(st.one_of(st.floats(-800, 800), st.sampled_from([0.0, 1e-300, 1e200, -1e200, 709.0, 710.0])))
    arg = Arg(x, OK, words=VALUE_WORDS)
    try:
        ref = (fn(x), dfn(x))
        ok = math.isfinite(ref[0]) and not math.isnan(ref[1])
    except (ValueError, OverflowError, ZeroDivisionError):
        ok = False
    if not ok:
        arg.verdict = MAYBE

    def call(x):
        v = Value(x)
        out = op(v)
        out.backward()
        return out, v

    def check(result):
        out, v = result
        assert out.data == pytest.approx(ref[0], rel=1e-12, abs=1e-300)
        assert v.grad == pytest.approx(ref[1], rel=1e-9, abs=1e-300) or v.grad == ref[1]

    expect(call, {"x": arg}, check)


TENSOR_DATA = [  # (value, verdict)
    (1.5, OK), (3, OK), ([1.0, 2.0], OK), ([[1, 2], [3, 4]], OK), ((1.0, 2.0), OK), ([], OK),
    (np.ones((2, 3)), OK), (np.float32(2.0), OK), (np.ones(3, np.float32), OK), (np.zeros((0, 2)), OK),
    (np.ones(2, np.float16), OK), (np.array(2.5), OK),
    (np.arange(3), MAYBE), (np.ones(2, bool), MAYBE), ([True, False], MAYBE), (["1.5"], MAYBE),
    (None, BAD), ("abc", BAD), (["a"], BAD), ([None, 1.0], BAD), ([[1.0], [1.0, 2.0]], BAD), ({}, BAD),
    (np.ones(2, complex), BAD), ([1j], BAD), (np.array(["a"]), BAD), (np.array([object()]), BAD),
    (torch.ones(2), BAD), (True, BAD), ([10**400], BAD),
]
NONFINITE_DATA = [math.nan, math.inf, [1.0, math.nan], np.array([0.0, -math.inf]), np.float64(math.nan),
                  np.array([math.nan], np.float32)]


@FUZZ
@given(st.data())
def test_tensor_constructor(data):
    if data.draw(st.integers(0, 4)) == 0:
        d = Arg(data.draw(st.sampled_from(NONFINITE_DATA)), BAD, nonfinite=True)
    else:
        d = Arg(*data.draw(st.sampled_from(TENSOR_DATA)))
    d.words = ("Tensor data", "data", "finite", "real", "number", "requires_grad")
    rg = Arg(*data.draw(st.sampled_from([(True, OK), (False, OK), (None, BAD), ("yes", BAD), (1, BAD)])))
    rg.words = ("requires_grad",)
    if rg.value is True and d.verdict == MAYBE:
        d.words += ("floating",)

    def check(t):
        arr = np.asarray(d.value, dtype=np.float64) if not isinstance(d.value, np.ndarray) else d.value
        assert isinstance(t.data, np.ndarray) and t.shape == np.shape(arr) and t.grad is None
        assert t.requires_grad is rg.value
        if isinstance(d.value, np.ndarray):  # arrays keep their dtype, numbers and lists become float64
            assert t.data.dtype == d.value.dtype
        else:
            assert t.data.dtype == np.float64
        assert np.array_equal(t.data, np.asarray(d.value, dtype=t.data.dtype))

    expect(Tensor, {"data": d, "requires_grad": rg}, check)


TENSOR_SHAPES = [(), (3,), (2, 3), (3, 1), (1, 3), (0,), (2, 0), (4,), (3, 2), (2, 3, 3)]
TENSOR_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
              "/": lambda a, b: a / b, "@": lambda a, b: a @ b}


def _array(data, shape, dtype=np.float64, lo=-3.0, hi=3.0):
    n = math.prod(shape)
    big, tiny = (1e200, 1e-300) if dtype == np.float64 else (1e30, 1e-30)
    vals = data.draw(st.lists(st.one_of(st.floats(lo, hi), st.sampled_from([0.0, big, tiny])),
                              min_size=n, max_size=n))
    return np.array(vals, dtype=dtype).reshape(shape)


def _torch_ref(fn, *arrays, out_dtype=None, grad_of=None):
    """``fn`` on float64 torch copies of ``arrays``: (value, input gradients), or None if torch
    fails or a value or gradient is not finite in the dtypes of the engine (``out_dtype`` for
    the result, each array's own for its gradient)."""
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    try:
        out = fn(*ts)
    except (RuntimeError, OverflowError):
        return None
    gs = torch.autograd.grad(out, ts, torch.ones_like(out), allow_unused=True)
    gs = [torch.zeros_like(t) if g is None else g for t, g in zip(ts, gs)]
    dtypes = [out_dtype or np.result_type(*arrays)] + [np.asarray(a).dtype for a in arrays]
    checked = [True] + (list(grad_of) if grad_of is not None else [True] * len(arrays))
    for t, dt, c in zip([out.detach(), *gs], dtypes, checked):
        if not c:
            continue
        if np.dtype(dt).kind != "f":
            continue
        if not bool(torch.isfinite(t).all()) or (t.numel() and float(t.abs().max()) > np.finfo(dt).max):
            return None
    return out.detach(), gs


def _close_np(a, ref, dtype):
    tol = 1e-9 if dtype == np.float64 else 1e-4
    a = torch.as_tensor(np.asarray(a, dtype=np.float64))
    scale = float(ref.abs().max()) if ref.numel() else 1.0
    return a.shape == ref.shape and bool(torch.allclose(a, ref, rtol=tol, atol=tol * 1e-3 * max(scale, 1.0))
                                         or torch.equal(a, ref))


NUMPY_WARNS = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns, then the engine refuses


@NUMPY_WARNS
@FUZZ
@given(st.data())
def test_tensor_binary_ops(data):
    """``Tensor op other`` (and the reflected op) with ``backward``, against torch in float64."""
    dtype = data.draw(st.sampled_from([np.float64, np.float32]))
    a_arr = _array(data, data.draw(st.sampled_from(TENSOR_SHAPES)), dtype)
    op = data.draw(st.sampled_from(sorted(TENSOR_OPS)))
    flip = data.draw(st.booleans())
    kind = data.draw(st.sampled_from(["Tensor", "ndarray", "number", "nan", "wrong"]))
    if kind in ("Tensor", "ndarray"):
        b_arr = _array(data, data.draw(st.sampled_from(TENSOR_SHAPES)),
                       data.draw(st.sampled_from([np.float64, np.float32])))
        other = Arg(Tensor(b_arr) if kind == "Tensor" else b_arr, OK)
    elif kind == "number":
        b_arr = np.asarray(data.draw(st.sampled_from([2.0, -1, 0.0, 0, 1e200, np.float64(0.5)])))
        other = Arg(b_arr.item(), OK)
    elif kind == "nan":
        other = Arg(data.draw(st.sampled_from([math.nan, math.inf, np.array([1.0, math.nan])])), BAD,
                    nonfinite=True)
    else:
        other = Arg(data.draw(st.sampled_from([None, "a", [1.0, 2.0], True, Value(1.0), 1j])), BAD)
    other.words = ("Tensor", "finite", "shape", "broadcast", "matmul", "dimension", "expects", "overflow",
                   "non-finite", "operands")
    a = Tensor(a_arr)
    ref = None
    if other.verdict == OK:
        fns = {"+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div, "@": torch.matmul}
        if op == "@" and (a_arr.ndim == 0 or b_arr.ndim == 0):
            ref = None
        else:
            out_dtype = dtype if kind == "number" else np.result_type(a_arr, b_arr)
            ref = _torch_ref((lambda p, q: fns[op](q, p)) if flip else fns[op], a_arr, b_arr, out_dtype=out_dtype,
                             grad_of=(True, kind == "Tensor"))
        if ref is None or (kind == "number" and abs(float(b_arr)) > np.finfo(dtype).max):
            other.verdict = MAYBE  # not finite, or the number does not fit a's dtype

    def call(other):
        out = TENSOR_OPS[op](other, a) if flip else TENSOR_OPS[op](a, other)
        out.backward(np.ones(out.shape))
        return out

    def check(out):
        assert isinstance(out, Tensor) and ref is not None
        assert _close_np(out.data, ref[0], out.data.dtype), (out.data, ref[0])
        assert _close_np(a.grad, ref[1][0], a.grad.dtype)
        if kind == "Tensor":
            assert _close_np(other.value.grad, ref[1][1], other.value.grad.dtype)
        if kind == "number" and dtype == np.float32:
            assert out.data.dtype == np.float32  # a Python number keeps our dtype

    expect(call, {"other": other}, check)


TENSOR_METHODS = ["exp", "log", "relu", "tanh", "neg", "pow", "sum", "mean", "reshape", "T", "getitem"]


@NUMPY_WARNS
@FUZZ
@given(st.data(), st.sampled_from(TENSOR_METHODS))
def test_tensor_methods(data, method):
    """The unary methods, reductions, reshape, transpose and indexing, with ``backward(grad)``."""
    shape = data.draw(st.sampled_from(TENSOR_SHAPES))
    arr = _array(data, shape, lo=-800, hi=800) if method == "exp" else _array(data, shape)
    t = Tensor(arr)
    args: dict[str, Arg] = {}
    words = ("Tensor", "finite", "overflow", "non-finite", "log", "positive", "axis", "shape", "reshape",
             "2-D", "index", "exponent", "empty", "mean", "keepdims", "ints", "integer", "dimension")
    if method == "pow":
        args["p"] = draw_number(data, "p", st.sampled_from([2, 3, 0, 0.5, -1, 1.5, np.float64(2.0)]),
                                bad=(10**400,), wrong=(None, "2", t, [2]))
        fn, tfn = (lambda p: t**p), (lambda u, p=None: u ** args["p"].value)
    elif method in ("sum", "mean"):
        args["axis"] = Arg(*data.draw(st.sampled_from([(None, OK), (0, MAYBE), (-1, MAYBE), ((0, 1), MAYBE),
                                                       (5, BAD), ("a", BAD), (1.5, BAD)])))
        args["keepdims"] = Arg(*data.draw(st.sampled_from([(False, OK), (True, OK), ("yes", BAD), (None, BAD)])))
        fn = lambda axis, keepdims: getattr(t, method)(axis, keepdims)  # noqa: E731

        def tfn(u):
            ax, keep = args["axis"].value, args["keepdims"].value
            dims = tuple(range(u.ndim)) if ax is None else ax
            return getattr(torch, method)(u, dim=dims, keepdim=keep) if u.ndim or ax is None \
                else getattr(torch, method)(u)
    elif method == "reshape":
        args["shape"] = Arg(*data.draw(st.sampled_from([((-1,), OK), ((1, -1), OK), ((7, 11), MAYBE),
                                                        ((-2,), BAD), (("a",), BAD), ((1.5,), BAD),
                                                        ((2**70,), BAD), ((True,), BAD)])))
        fn = lambda shape: t.reshape(*shape)  # noqa: E731
        tfn = lambda u: u.reshape(args["shape"].value)  # noqa: E731
    elif method == "getitem":
        args["index"] = Arg(*data.draw(st.sampled_from([(0, MAYBE), (-1, MAYBE), (slice(None, 2), OK),
                                                        ((Ellipsis, 0), MAYBE), (5, MAYBE), ("a", BAD),
                                                        (1.5, BAD), ([0, 0], MAYBE), (None, OK)])))
        args["index"].words = ("index", "shape")
        fn = lambda index: t[index]  # noqa: E731
        index = args["index"].value
        tfn = lambda u: u[torch.tensor(index) if isinstance(index, list) else index]  # noqa: E731
    else:
        fn = {"exp": lambda: t.exp(), "log": lambda: t.log(), "relu": lambda: t.relu(),
              "tanh": lambda: t.tanh(), "neg": lambda: -t, "T": lambda: t.T}[method]
        tfn = {"exp": torch.exp, "log": torch.log, "relu": torch.relu, "tanh": torch.tanh,
               "neg": torch.neg, "T": lambda u: u.T if u.ndim == 2 else 1 / 0}[method]
    try:
        ref = _torch_ref(tfn, arr)
    except (ZeroDivisionError, IndexError, TypeError, ValueError):
        ref = None
    if ref is None:  # an error or a non-finite result: the call must refuse it
        if not args:
            args["self"] = Arg(t, MAYBE)
        for a in args.values():
            if a.verdict == OK:
                a.verdict = MAYBE
    for a in args.values():
        a.words = a.words + words if a.words else words
    grad_kind = data.draw(st.sampled_from(["ones", "ones", "nan", "shape", "str", "list"]))

    def call(**kw):
        kw.pop("self", None)
        out = fn(**kw)
        g = {"ones": np.ones(out.shape), "nan": np.full(out.shape, math.nan), "shape": np.ones(out.shape + (2,)),
             "str": np.full(out.shape, "a"), "list": np.ones(out.shape).tolist()}[grad_kind]
        if grad_kind == "list" and out.data.size == 0:
            g = np.ones(out.shape)
        if grad_kind in ("ones", "list") or out.data.size == 0 and grad_kind == "nan":
            out.backward(g)
            return out
        with pytest.raises((ValueError, TypeError), match="grad"):
            out.backward(g)
        out.backward(np.ones(out.shape))
        return out

    def check(out):
        assert ref is not None
        assert isinstance(out, Tensor) and _close_np(out.data, ref[0], out.data.dtype), (out.data, ref[0])
        assert _close_np(t.grad, ref[1][0], t.grad.dtype), (t.grad, ref[1][0])

    also = (IndexError,) if method == "getitem" else ()
    expect(call, args, check, also=also)


@FUZZ
@given(st.data())
def test_log_softmax(data):
    x = Arg(Tensor(_array(data, data.draw(st.sampled_from(TENSOR_SHAPES)), lo=-50, hi=50)))
    if data.draw(st.integers(0, 5)) == 0:
        x = Arg(data.draw(st.sampled_from([None, np.zeros(3), [1.0], torch.zeros(3)])), BAD,
                words=("Tensor",))
    ndim = x.value.ndim if isinstance(x.value, Tensor) else 1
    axis = draw_number(data, "axis", st.integers(-max(ndim, 1), max(ndim, 1) - 1), bad=(ndim, -ndim - 1),
                       wrong=(None, 1.0, "0", True), nonfinite=())
    axis.words = ("axis",)
    if isinstance(x.value, Tensor) and (ndim == 0 or (axis.verdict == OK and x.value.shape[axis.value] == 0)):
        x.verdict, x.words = BAD, ("axis", "entry", "dimension")

    def check(y):
        ref = torch.log_softmax(torch.tensor(x.value.data), dim=axis.value)
        assert _close_np(y.data, ref, y.data.dtype)
        y.backward(np.ones(y.shape))
        ref_g = torch.autograd.functional.vjp(lambda u: torch.log_softmax(u, dim=axis.value),
                                              torch.tensor(x.value.data), torch.ones(ref.shape,
                                                                                     dtype=torch.float64))[1]
        assert _close_np(x.value.grad, ref_g, np.float64)

    expect(tensor.log_softmax, {"x": x, "axis": axis}, check)


@FUZZ
@given(st.data())
def test_cross_entropy(data):
    shape = data.draw(st.sampled_from([(3, 4), (1, 1), (2,), (0, 3), (3, 0), (2, 2, 2)]))
    logits = Arg(Tensor(_array(data, shape, lo=-50, hi=50)), OK if len(shape) == 2 and 0 not in shape else BAD)
    if data.draw(st.integers(0, 6)) == 0:
        logits = Arg(data.draw(st.sampled_from([None, np.zeros((2, 2)), torch.zeros(2, 2)])), BAD)
    n, k = shape if len(shape) == 2 else (3, 4)
    y = np.array(data.draw(st.lists(st.integers(0, max(k - 1, 0)), min_size=n, max_size=n)), dtype=np.int64)
    targets = Arg(*data.draw(st.sampled_from([(y, OK), (y.astype(np.int32), OK), (y.astype(np.uint8), OK),
                                              (y.astype(float), BAD), (y.tolist(), BAD),
                                              (np.zeros(n + 1, np.int64), BAD), (y + k, BAD if n else OK),
                                              (y - k - 1, BAD if n else OK), (torch.tensor(y), BAD)])))

    def check(loss):
        z = torch.tensor(logits.value.data, requires_grad=True)
        ref = torch.nn.functional.cross_entropy(z, torch.tensor(targets.value.astype(np.int64)))
        r = ref.item()
        assert loss.shape == () and abs(float(loss.data) - r) <= 1e-9 * (1 + abs(r))
        loss.backward()
        (g,) = torch.autograd.grad(ref, z)
        assert _close_np(logits.value.grad, g, np.float64)

    expect(tensor.cross_entropy, {"logits": logits, "targets": targets}, check)


@FUZZ
@given(st.data())
def test_mlp(data):
    sizes = Arg(*data.draw(st.sampled_from([
        ([3, 4, 2], OK), ((2, 1), OK), ([np.int64(2), 3], OK), ([3], BAD), ([], BAD), ([3, 0], BAD),
        ([3, -1], BAD), ([3, 2.0], BAD), ([3, True], BAD), ([3, 2**64], BAD), ([3, 10**30], BAD),
        (None, BAD), ("32", BAD), (5, BAD)])))
    sizes.words = ("sizes", "layer widths")
    seed = draw_number(data, "seed", st.integers(0, 2**40), bad=(-1,), wrong=(None, 1.5, "0", True),
                       nonfinite=(), huge=OK)  # NumPy's generators take any non-negative int
    dtype = Arg(*data.draw(st.sampled_from([(np.float32, OK), (np.float64, OK), ("float32", OK),
                                            (np.float16, MAYBE), (None, MAYBE), (np.int64, BAD),
                                            ("bogus", BAD), (torch.float32, BAD)])))
    mlp = expect(tensor.MLP, {"sizes": sizes, "seed": seed, "dtype": dtype})
    if mlp is None:
        return
    params = mlp.parameters()
    assert len(params) == 2 * (len(sizes.value) - 1)
    assert all(isinstance(p, Tensor) and p.data.dtype == np.dtype(dtype.value) for p in params)
    d_in = int(sizes.value[0])
    x = Arg(*data.draw(st.sampled_from([
        (np.ones((2, d_in)), OK), (Tensor(np.ones((5, d_in))), OK), (np.ones(d_in), OK),
        (np.ones((2, d_in + 1)), BAD), (np.ones(()), BAD), ([[1.0] * d_in], BAD), (None, BAD),
        (np.full((2, d_in), math.nan), BAD), (np.ones((2, d_in), complex), BAD)])))
    x.words = ("MLP input", "input", "finite", "dimension", "real")

    def check(out):
        xs = np.asarray(x.value.data if isinstance(x.value, Tensor) else x.value, dtype=np.float64)
        h = xs
        for i, (W, b) in enumerate(zip(mlp.weights, mlp.biases)):
            h = h @ W.data.astype(np.float64) + b.data
            h = np.maximum(h, 0) if i < len(mlp.weights) - 1 else h
        assert out.shape == h.shape and np.allclose(out.data, h, rtol=1e-2, atol=1e-2)
        assert finite(out.data)

    expect(mlp, {"x": x}, check)


@NUMPY_WARNS
@FUZZ
@given(st.data())
def test_sgd_step(data):
    mlp = tensor.MLP([2, 3], seed=0, dtype=np.float64)
    grad_kind = data.draw(st.sampled_from(["ok", "ok", "none", "nan", "huge"]))
    if grad_kind != "none":
        out = mlp(np.ones((1, 2))).sum()
        out.backward()
        if grad_kind == "nan":
            mlp.weights[0].grad[0, 0] = math.nan
        if grad_kind == "huge":
            mlp.weights[0].grad[0, 0] = 1e308
    before = [p.data.copy() for p in mlp.parameters()]
    kind = data.draw(st.sampled_from(["list", "list", "tuple", "generator", "bad item", "none", "tensor"]))
    params = {"list": Arg(mlp.parameters()), "tuple": Arg(tuple(mlp.parameters())),
              "generator": Arg(iter(mlp.parameters())), "bad item": Arg([mlp.weights[0], np.ones(2)], BAD),
              "none": Arg(None, BAD), "tensor": Arg(mlp.weights[0], BAD)}[kind]
    if grad_kind in ("none", "nan") and params.verdict == OK:
        params.verdict, params.words = BAD, ("params", "grad", "gradient")
    lr = draw_number(data, "lr", st.sampled_from([0.1, 1, 1e-3]), bad=(0.0, -0.1, 10**400), maybe=(1e300,),
                     wrong=(None, "0.1", True, [0.1]))
    if grad_kind == "huge" and lr.verdict == OK:
        lr.verdict = MAYBE
    lr.words = ("lr",)

    def check(_):
        for p, b in zip(mlp.parameters(), before):
            assert np.allclose(p.data, b - lr.value * p.grad)
            assert finite(p.data)

    def call(params, lr):
        tensor.sgd_step(params, lr)
        return "stepped"

    if expect(call, {"params": params, "lr": lr}, check) is None:
        for p, b in zip(mlp.parameters(), before):  # refused: nothing changed
            assert np.array_equal(p.data, b)


# ================================================================ data



def _check_points(n, d=2, labels=None):
    def check(out):
        x, y = out
        assert x.shape == (n, d) and x.dtype == torch.float32 and y.shape == (n,) and y.dtype == torch.int64
        assert_finite(x)
        if labels is not None:
            assert int(y.min()) >= 0 and int(y.max()) < labels
    return check


@FUZZ
@given(st.data())
def test_gaussian_mixture(data):
    n = draw_number(data, "n", st.integers(1, 50), **SIZE)
    means = Arg(*data.draw(st.sampled_from([
        ([[0.0, 0.0], [3.0, 1.0]], OK), (np.zeros((3, 2)), OK), (torch.ones(1, 4), OK), ([[1, 2]], OK),
        ([1.0, 2.0], BAD), ([], BAD), ([[0.0, 1.0], [2.0]], BAD), ("means", BAD), (None, BAD),
        ([[0.0, math.nan]], BAD), (np.array([[math.inf, 0.0]]), BAD), ([[1e39, 0.0]], BAD),
        (torch.zeros(2, 2, dtype=torch.complex64), BAD), ([["a", "b"]], BAD)])))
    k = len(means.value) if means.verdict == OK else 2
    std = Arg(*data.draw(st.sampled_from([(1.0, OK), (0.5, OK), ([0.1] * k, OK), (0.0, BAD), (-1.0, BAD),
                                          (math.nan, BAD), (math.inf, BAD), ([1.0] * (k + 1), BAD),
                                          ("1", BAD), (None, BAD)])))
    weights = Arg(*data.draw(st.sampled_from([(None, OK), ([1.0] * k, OK), ([0.0] * (k - 1) + [2.0], OK),
                                              ([-1.0] * k, BAD), ([0.0] * k, BAD), ([math.nan] * k, BAD),
                                              ([math.inf] * k, BAD), ([1.0] * (k + 2), BAD), ("w", BAD)])))
    seed = draw_number(data, "seed", **SEED)
    device = Arg(*data.draw(st.sampled_from(DEVICE_DATA)))

    def check(out):
        x, c = out
        _check_points(n.value, torch.as_tensor(means.value).shape[1], labels=k)(out)
        again = datasets.gaussian_mixture(n.value, means.value, std.value, weights.value, seed.value)
        assert torch.equal(again[0], x) and torch.equal(again[1], c)  # deterministic for a seed

    expect(datasets.gaussian_mixture,
           {"n": n, "means": means, "std": std, "weights": weights, "seed": seed, "device": device}, check)


@FUZZ
@given(st.data())
def test_ring_of_gaussians(data):
    n = draw_number(data, "n", st.integers(1, 50), **SIZE)
    k = draw_number(data, "k", st.integers(1, 10), **SIZE)
    radius = draw_number(data, "radius", st.floats(0, 10), bad=(-1.0,), wrong=(None, "4"))
    std = draw_number(data, "std", st.floats(0.01, 2), bad=(0.0, -0.3), wrong=(None, "0.3"))
    std.words = ("std",)
    seed = draw_number(data, "seed", **SEED)
    device = Arg(*data.draw(st.sampled_from(DEVICE_DATA)))
    expect(datasets.ring_of_gaussians, {"n": n, "k": k, "radius": radius, "std": std, "seed": seed,
                                        "device": device}, lambda out: _check_points(n.value, 2, k.value)(out))


@FUZZ
@given(st.data())
def test_two_moons(data):
    n = draw_number(data, "n", st.integers(1, 25).map(lambda h: 2 * h), maybe=(7,), **SIZE)
    if n.value == 7:
        n.verdict = BAD
    noise = draw_number(data, "noise", st.floats(0, 1), bad=(-0.1,), wrong=(None, "0.1"))
    seed = draw_number(data, "seed", **SEED)
    device = Arg(*data.draw(st.sampled_from(DEVICE_DATA)))
    expect(datasets.two_moons, {"n": n, "noise": noise, "seed": seed, "device": device},
           lambda out: _check_points(n.value, 2, 2)(out))


@FUZZ
@given(st.data())
def test_rings(data):
    n = draw_number(data, "n", st.integers(1, 50), **SIZE)
    radii = Arg(*data.draw(st.sampled_from([((1.0, 2.0), OK), ([0.5], OK), (np.array([1, 2, 3]), OK),
                                            (torch.tensor([2.0]), OK), (3.0, OK), ([], BAD), ([1.0, -1.0], BAD),
                                            ([0.0], BAD), ([math.nan], BAD), ([math.inf], BAD), ("1", BAD),
                                            (None, BAD), ([[1.0], [2.0, 3.0]], BAD)])))
    noise = draw_number(data, "noise", st.floats(0, 1), bad=(-0.1,), wrong=(None, "0.1"))
    seed = draw_number(data, "seed", **SEED)
    device = Arg(*data.draw(st.sampled_from(DEVICE_DATA)))
    n_rings = torch.as_tensor(radii.value).numel() if radii.verdict == OK else 1
    expect(datasets.rings, {"n": n, "radii": radii, "noise": noise, "seed": seed, "device": device},
           lambda out: _check_points(n.value, 2, n_rings)(out))


@QUICK
@given(st.data())
def test_digits(data):
    test_fraction = draw_number(data, "test_fraction", st.floats(0.05, 0.95), bad=(0.0, 1.0, -0.5, 2),
                                wrong=(None, "0.25", True))
    seed = draw_number(data, "seed", st.integers(0, 2**32 - 1), bad=(-1, 2**32), wrong=(None, 0.5),
                       nonfinite=())
    pixel_range = Arg(*data.draw(st.sampled_from([("unit", OK), ("symmetric", OK), ("raw", BAD), (None, BAD)])))
    flatten = Arg(*data.draw(st.sampled_from([(True, OK), (False, OK), ("no", BAD), (0, BAD), (None, BAD)])))
    device = Arg(*data.draw(st.sampled_from(DEVICE_DATA)))

    def check(split):
        assert isinstance(split, datasets.Split)
        assert len(split.x_train) + len(split.x_test) == 1797 and len(split.x_test) >= 1
        for x, y in ((split.x_train, split.y_train), (split.x_test, split.y_test)):
            assert x.shape[1:] == ((64,) if flatten.value else (1, 8, 8)) and x.dtype == torch.float32
            assert y.shape == x.shape[:1] and y.dtype == torch.int64
            lo = 0.0 if pixel_range.value == "unit" else -1.0
            assert float(x.min()) >= lo and float(x.max()) <= 1.0 and finite(x)

    expect(datasets.digits, {"test_fraction": test_fraction, "seed": seed, "pixel_range": pixel_range,
                             "flatten": flatten, "device": device}, check)


@FUZZ
@given(st.data())
def test_modular_table(data):
    p = draw_number(data, "p", st.integers(2, 13), bad=(1, 0, -7, 2**64), wrong=(None, 7.0, "7", True),
                    nonfinite=())
    op = Arg(*data.draw(st.sampled_from([("add", OK), ("sub", OK), ("mul", OK), ("div", BAD), (None, BAD)])))
    train_fraction = draw_number(data, "train_fraction", st.floats(0.01, 0.99), bad=(0.0, 1.0, 1.5),
                                 wrong=(None, "0.4"))
    seed = draw_number(data, "seed", **SEED)
    device = Arg(*data.draw(st.sampled_from(DEVICE_DATA)))

    def check(split):
        pv = p.value
        x = torch.cat([split.x_train, split.x_test])
        y = torch.cat([split.y_train, split.y_test])
        assert x.shape == (pv * pv, 2) and len(split.x_train) >= 1 and len(split.x_test) >= 1
        ref = {"add": x[:, 0] + x[:, 1], "sub": x[:, 0] - x[:, 1], "mul": x[:, 0] * x[:, 1]}[op.value] % pv
        assert torch.equal(y, ref) and len(torch.unique(x[:, 0] * pv + x[:, 1])) == pv * pv

    expect(datasets.modular_table, {"p": p, "op": op, "train_fraction": train_fraction, "seed": seed,
                                    "device": device}, check)


@FUZZ
@given(st.data())
def test_one_hot_pairs(data):
    p = draw_number(data, "p", st.integers(2, 9), bad=(1, -3, 2**64), wrong=(None, 5.0, True), nonfinite=())
    pv = p.value if p.verdict == OK else 5
    rows = data.draw(st.integers(0, 4))
    good = torch.tensor(data.draw(st.lists(st.tuples(st.integers(0, pv - 1), st.integers(0, pv - 1)),
                                           min_size=rows, max_size=rows)), dtype=torch.int64).reshape(rows, 2)
    pairs = Arg(*data.draw(st.sampled_from([
        (good, OK), (good.int(), OK), (good.float(), BAD), (good.reshape(-1), BAD),
        (torch.full((2, 2), pv), BAD), (torch.full((1, 2), -1), BAD), (good.tolist(), BAD), (None, BAD),
        (torch.zeros(2, 3, dtype=torch.int64), BAD)])))

    def check(x):
        pr = pairs.value
        assert x.shape == (pr.shape[0], 2 * p.value) and x.dtype == torch.float32
        assert torch.equal(x.sum(1), torch.full((pr.shape[0],), 2.0))
        if pr.shape[0]:
            assert torch.equal(x[:, : p.value].argmax(1), pr[:, 0].long())

    expect(datasets.one_hot_pairs, {"pairs": pairs, "p": p}, check)


# ================================================================ plot

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lib import plot  # noqa: E402


def _axes(data):
    """A fresh Axes (closed at the end of the example by the caller) or a bad stand-in."""
    kind = data.draw(st.sampled_from(["ax", "ax", "ax", "none", "figure", "str"]))
    fig, ax = plt.subplots()
    value = {"ax": ax, "none": None, "figure": fig, "str": "ax"}[kind]
    return fig, Arg(value, OK if kind == "ax" else BAD, words=("ax",))


def test_use_style_and_colors():
    plot.use_style()
    assert [c.lower() for c in matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]] == \
        [c.lower() for c in plot.COLORS]
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in plot.COLORS)


@QUICK
@given(st.data())
def test_scatter2d(data):
    fig, ax = _axes(data)
    try:
        x = draw_tensor(data, shapes=[(5, 2), (0, 2), (5, 3), (2,)],
                        dtypes={torch.float32: OK, torch.float64: OK, torch.int64: OK, torch.complex64: BAD,
                                torch.bfloat16: OK},
                        shape_verdict=lambda s: OK if len(s) == 2 and s[1] == 2 else BAD, empty=OK,
                        non_tensors=[None, [[0.0, 1.0]], "x"])
        if data.draw(st.booleans()) and isinstance(x.value, torch.Tensor):
            x.value = x.value.numpy() if x.value.dtype != torch.bfloat16 else x.value
        nrows = x.value.shape[0] if hasattr(x.value, "shape") and len(x.value.shape) == 2 else 5
        labels = Arg(*data.draw(st.sampled_from([
            (None, OK), (torch.arange(nrows) % 2, OK), (np.arange(nrows), OK), (torch.zeros(nrows + 1), BAD),
            (np.full(nrows, math.nan), BAD if nrows else OK), ([0] * nrows, BAD),
            (np.zeros(nrows, complex), BAD)])))
        title = Arg(*data.draw(st.sampled_from([(None, OK), ("t", OK), (5, BAD), (["t"], BAD)])))
        s = draw_number(data, "s", st.sampled_from([4, 0.5]), bad=(0, -1), wrong=(None, "4", True))
        alpha = draw_number(data, "alpha", st.sampled_from([0.6, 0, 1]), bad=(1.5, -0.1), wrong=(None, "0.5"))

        def check(out):
            assert out is ax.value
            n_labels = 1 if labels.value is None else max(len(np.unique(np.asarray(labels.value))), 0)
            assert len(out.collections) == (n_labels if nrows else (1 if labels.value is None else 0))

        expect(plot.scatter2d, {"ax": ax, "x": x, "labels": labels, "title": title, "s": s, "alpha": alpha}, check)
    finally:
        plt.close(fig)


@QUICK
@given(st.data())
def test_image_grid(data):
    fig, ax = _axes(data)
    try:
        images = draw_tensor(data, shapes=[(3, 16), (2, 4, 4), (2, 1, 3, 3), (3, 10), (0, 4, 4), (2, 3, 4), (4,)],
                             dtypes={torch.float32: OK, torch.float64: OK, torch.int64: OK, torch.bool: OK,
                                     torch.complex64: BAD},
                             lo=0, hi=1, empty=BAD, name="images",
                             shape_verdict=lambda s: OK if s in [(3, 16), (2, 4, 4), (2, 1, 3, 3)] else BAD)
        n = images.value.shape[0] if isinstance(images.value, torch.Tensor) and images.value.ndim > 1 else 3
        ncols = draw_number(data, "ncols", st.integers(1, 12), bad=(0, -1), wrong=(None, 2.0, True), nonfinite=(),
                        huge=OK)
        titles = Arg(*data.draw(st.sampled_from([(None, OK), ([str(i) for i in range(n)], OK),
                                                 (["a"] * (n + 1), BAD),
                                                 ("abc", BAD), (3, BAD)])))
        vmin = draw_number(data, "vmin", st.sampled_from([None, 0.0]), wrong=("0",))
        vmax = draw_number(data, "vmax", st.sampled_from([None, 1.0]), wrong=("1",))
        cmap = Arg(*data.draw(st.sampled_from([("gray_r", OK), ("viridis", OK), ("nope", BAD), (3, BAD)])))

        def check(out):
            assert out is ax.value and len(out.images) == 1
            canvas = out.images[0].get_array()
            assert canvas.ndim == 2

        expect(plot.image_grid, {"ax": ax, "images": images, "ncols": ncols, "titles": titles, "vmin": vmin,
                                 "vmax": vmax, "cmap": cmap}, check)
    finally:
        plt.close(fig)


@QUICK
@given(st.data())
def test_reference_slope(data):
    fig, ax = _axes(data)
    try:
        positive = dict(bad=(0.0, -1.0, 10**400), wrong=(None, "1", True))
        x0 = draw_number(data, "x0", st.floats(1e-6, 1e3), **positive)
        y0 = draw_number(data, "y0", st.floats(1e-6, 1e3), **positive)
        slope = draw_number(data, "slope", st.floats(-3, 3), maybe=(1e5,), wrong=(None, "2", True))
        slope.words = ("slope", "range")
        span = draw_number(data, "span", st.floats(1.0, 1e3), **positive)

        def check(line):
            xs, ys = line.get_data()
            assert np.all(np.isfinite(xs)) and np.all(np.isfinite(ys)) and np.all(ys > 0)
            assert np.allclose(np.log(ys[1] / ys[0]), slope.value * np.log(xs[1] / xs[0]), atol=1e-6)

        expect(plot.reference_slope, {"ax": ax, "x0": x0, "y0": y0, "slope": slope, "span": span}, check)
    finally:
        plt.close(fig)


# ================================================================ runtime


class _Env:
    """Set (or remove, for None) an environment variable for the duration of a block."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __enter__(self):
        self.before = os.environ.get(self.name)
        if self.value is None:
            os.environ.pop(self.name, None)
        else:
            os.environ[self.name] = self.value

    def __exit__(self, *exc):
        if self.before is None:
            os.environ.pop(self.name, None)
        else:
            os.environ[self.name] = self.before


ENV_TEXT = st.one_of(st.text(max_size=12).filter(lambda t: "\x00" not in t),
                     st.sampled_from(["cpu", " CPU ", "cuda", "cuda:0", "cuda:99", "mps", "meta", "cpu:0",
                                      "gpu", "", "cuda:-1", "xla", "small", "full", "FULL", "1", "4", "0",
                                      "-2", "1024", "1025", "99999999999999999999", "1.5", "two"]))


@FUZZ
@given(ENV_TEXT)
def test_device(value):
    with _Env("BOOK_DEVICE", value):
        try:
            dev = runtime.device()
        except ValueError as err:
            assert "BOOK_DEVICE" in str(err)
            return
    assert isinstance(dev, torch.device) and dev.type in ("cpu", "cuda", "mps")
    torch.empty(1, device=dev)  # a device this machine has


@FUZZ
@given(st.one_of(st.none(), ENV_TEXT))
def test_scale(value):
    with _Env("BOOK_SCALE", value):
        try:
            s = runtime.scale()
        except ValueError as err:
            assert "BOOK_SCALE" in str(err) and value.strip().lower() not in runtime.SCALES
            return
    assert s in runtime.SCALES and (value is None or not value.strip() or s == value.strip().lower())


@FUZZ
@given(st.one_of(st.none(), ENV_TEXT), st.booleans())
def test_threads_and_configure_threads(value, configure):
    before = torch.get_num_threads()
    try:
        with _Env("BOOK_THREADS", value):
            try:
                n = runtime.configure_threads() if configure else runtime.threads()
            except ValueError as err:
                assert "BOOK_THREADS" in str(err)
                return
        assert isinstance(n, int) and 1 <= n <= 1024
        if configure:
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(before)


@FUZZ
@given(st.data())
def test_seed(data):
    n = draw_number(data, "n", st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 100).map(np.int64)),
                    bad=(-1, 2**32, 2**64), wrong=(None, 1.5, "3", True, [1]), nonfinite=())
    n.words = ("seed", "int")

    def check(out):
        assert out == int(n.value) and isinstance(out, int)
        a = (np.random.rand(), torch.rand(1).item())
        runtime.seed(out)
        assert (np.random.rand(), torch.rand(1).item()) == a

    expect(runtime.seed, {"n": n}, check)


# ================================================================ coverage

FUZZED = {  # module: {public name: the test that fuzzes it}
    calculus: {"default_step": test_default_step, "finite_difference": test_finite_difference,
               "complex_step": test_complex_step, "jacobian_fd": test_jacobian_fd, "gradcheck": test_gradcheck,
               "GradcheckReport": test_gradcheck_report},
    forward: {"Dual": test_dual_arithmetic, "derivative": test_derivative, "jvp": test_jvp, "vjp": test_vjp,
              "jacobian_forward": test_jacobians, "jacobian_reverse": test_jacobians,
              "forward_gradient": test_forward_gradient,
              **{name: test_dual_functions for name in DUAL_FUNCTIONS}},
    curvature: {"hvp": test_hvp, "hessian": test_hessian, "ggn_vp": test_ggn_vp, "lanczos": test_lanczos,
                "power_iteration": test_power_iteration, "top_eigenvalues": test_top_eigenvalues,
                "spectral_density": test_spectral_density, "loss_as_function": test_loss_as_function},
    numerics: {"stablemax": test_stablemax, "log_stablemax": test_stablemax,
               "stablemax_cross_entropy": test_stablemax_cross_entropy,
               "zero_gradient_fraction": test_zero_gradient_fraction,
               "SavedTensorTracker": test_saved_tensor_tracker,
               "checkpoint_sequential": test_checkpoint_sequential},
    tensor: {"Tensor": test_tensor_methods, "cross_entropy": test_cross_entropy,
             "log_softmax": test_log_softmax, "MLP": test_mlp, "sgd_step": test_sgd_step},
    autodiff: {"Value": test_value_binary_ops,  # and the tensor engine it re-exports: the same objects
               "Tensor": test_tensor_methods, "cross_entropy": test_cross_entropy,
               "log_softmax": test_log_softmax, "MLP": test_mlp, "sgd_step": test_sgd_step},
    datasets: {"Split": test_digits,  # a result record (NamedTuple), checked as digits' and modular_table's
               "gaussian_mixture": test_gaussian_mixture, "ring_of_gaussians": test_ring_of_gaussians,
               "two_moons": test_two_moons, "rings": test_rings, "digits": test_digits,
               "modular_table": test_modular_table, "one_hot_pairs": test_one_hot_pairs},
    plot: {"COLORS": test_use_style_and_colors, "use_style": test_use_style_and_colors,
           "scatter2d": test_scatter2d, "image_grid": test_image_grid, "reference_slope": test_reference_slope},
    runtime: {"device": test_device, "seed": test_seed, "scale": test_scale,
              "threads": test_threads_and_configure_threads,
              "configure_threads": test_threads_and_configure_threads, "SCALES": test_scale},
}
