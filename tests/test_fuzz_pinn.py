"""Bad input, Part III (chapter 15): every public name of ``lib.pinn`` fuzzed with hypothesis.

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

from tests.fuzzing import (BAD, DEVICE_ARGS, DTYPE_ARGS, FUZZ, MAYBE, OK, Arg, _boom,
                             _checked_generator, _gen, assert_finite, draw_number, draw_tensor, expect, finite,
                             small)

from lib import pinn

U_POOL = {"good": (lambda x, t: torch.sin(x) * t, OK), "trailing": (lambda x, t: (x * t).unsqueeze(-1), OK),
          "nan": (lambda x, t: x * math.nan, BAD), "short": (lambda x, t: x.reshape(-1)[:1], BAD),
          "str": (lambda x, t: "u", BAD), "int": (lambda x, t: (x > 0).long(), BAD), "boom": (_boom, BAD),
          "not callable": ("u", BAD)}
PT_SHAPES = [(3,), (2, 2), (), (0,), (1,)]


def _u(data):
    kind = data.draw(st.sampled_from(sorted(U_POOL)))
    fn, v = U_POOL[kind]
    if kind == "short":
        return Arg(fn, MAYBE, raises=False, note=kind, kind=kind, words=("u",))
    return Arg(fn, v, raises=kind == "boom", nonfinite=kind == "nan", note=kind, kind=kind, words=("u",))


def _xt(data):
    x = draw_tensor(data, shapes=PT_SHAPES, empty=BAD, name="x")
    shape = x.value.shape if isinstance(x.value, torch.Tensor) else (3,)
    t = draw_tensor(data, shapes=[shape, shape, (5,)], empty=BAD, name="t",
                    shape_verdict=lambda s: OK if s == shape else BAD)
    if isinstance(x.value, torch.Tensor) and isinstance(t.value, torch.Tensor) and x.value.dtype != t.value.dtype:
        for a in (x, t):
            if a.verdict == OK:
                a.verdict = MAYBE
            a.words = a.words or ("x", "t", "dtype")
        x.words, t.words = ("x", "t"), ("x", "t")
    return x, t


def _check_partials(x, t, u, second):
    def check(p):
        assert p.u.shape == x.shape and p.u_x.shape == x.shape and p.u_t.shape == x.shape
        for v in (p.u, p.u_x, p.u_t) + ((p.u_xx,) if second else ()):
            assert_finite(v)
        if u.kind == "good" and x.dtype == torch.float64 and small(x) and small(t):  # u = sin(x) t
            assert torch.allclose(p.u_x, torch.cos(x) * t, atol=1e-12)
            assert torch.allclose(p.u_t, torch.sin(x), atol=1e-12)
            if second:
                assert torch.allclose(p.u_xx, -torch.sin(x) * t, atol=1e-12)
    return check


@FUZZ
@given(st.data())
def test_partials(data):
    u = _u(data)
    x, t = _xt(data)
    if u.kind == "short" and isinstance(x.value, torch.Tensor) and x.value.numel() == 1:
        u.verdict = OK
    second = Arg(*data.draw(st.sampled_from([(True, OK), (False, OK), (1, BAD), (None, BAD)])))
    xv = x.value if isinstance(x.value, torch.Tensor) else torch.ones(1)
    tv = t.value if isinstance(t.value, torch.Tensor) else torch.ones(1)
    expect(pinn.partials, {"u": u, "x": x, "t": t, "second_order": second},
           _check_partials(xv, tv, u, second.value is True))


@FUZZ
@given(st.data(), st.sampled_from(["advection", "heat"]))
def test_residuals(data, which):
    u = _u(data)
    x, t = _xt(data)
    if u.kind == "short" and isinstance(x.value, torch.Tensor) and x.value.numel() == 1:
        u.verdict = OK
    name = "c" if which == "advection" else "nu"
    coef = draw_number(data, name, st.floats(0, 5), bad=(-1.0,) if which == "heat" else (),
                       maybe=(1e300, -1e300) if which == "advection" else (1e300,))
    fn = pinn.advection_residual if which == "advection" else pinn.heat_residual

    def check(r):
        assert r.shape == x.value.shape
        assert_finite(r)

    expect(fn, {"u": u, "x": x, "t": t, name: coef}, check)


@FUZZ
@given(st.data())
def test_input_derivative(data):
    x = draw_tensor(data, shapes=[(3,), (2, 2), (), (0,)], name="x")
    fn = data.draw(st.sampled_from(["sin", "square", "const", "other"]))
    order = draw_number(data, "order", st.integers(1, 4), bad=(0, -1, 11), wrong=(None, 1.0, "1", True),
                        nonfinite=())
    if isinstance(x.value, torch.Tensor) and x.value.dtype.is_floating_point:
        xv = x.value.clone().requires_grad_(data.draw(st.booleans()) or True)
        if data.draw(st.integers(0, 5)) == 0:
            xv = x.value.clone()  # no grad
            x.verdict, x.words = BAD, ("x", "grad")
        with torch.enable_grad():
            y = {"sin": torch.sin(xv), "square": xv * xv, "const": torch.ones_like(xv),
                 "other": torch.ones(2, dtype=xv.dtype)}[fn]
        x.value = xv
    else:
        y = torch.ones(3)
    ya = Arg(y, BAD if fn == "other" and y.shape != getattr(x.value, "shape", None) else OK,
             words=("y", "shape"))

    def check(d):
        assert d.shape == x.value.shape
        assert_finite(d)
        if fn == "sin" and x.value.dtype == torch.float64 and small(x.value):
            k = order.value
            ref = torch.sin(x.value.detach() + k * math.pi / 2)
            assert torch.allclose(d, ref, atol=1e-8)

    expect(pinn.input_derivative, {"y": ya, "x": x, "order": order}, check)


@FUZZ
@given(st.data())
def test_pinn_loss(data):
    r = draw_tensor(data, shapes=[(3,), (2, 2), ()], empty=BAD, name="residual")
    nt = ["x", [1.0], 1.5, True]
    i = draw_tensor(data, shapes=[(4,), (0,)], empty=BAD, name="initial", non_tensors=nt)
    b = draw_tensor(data, shapes=[(2,)], empty=BAD, name="boundary", non_tensors=nt)
    if data.draw(st.booleans()):
        i = Arg(None)
    if data.draw(st.booleans()):
        b = Arg(None)
    wi = draw_number(data, "w_initial", st.floats(0, 10), bad=(-1.0,), maybe=(1e300,))
    wb = draw_number(data, "w_boundary", st.floats(0, 10), bad=(-0.5,), maybe=(1e300,))

    def check(out):
        assert out.total.shape == () and finite(out.total)
        assert all(finite(v) for v in out)

    expect(pinn.pinn_loss, {"residual": r, "initial": i, "boundary": b, "w_initial": wi, "w_boundary": wb},
           check)


@FUZZ
@given(st.data())
def test_periodic_features(data):
    x = draw_tensor(data, shapes=[(3,), (2, 2), (), (0,)], name="x")
    period = draw_number(data, "period", st.floats(0.1, 10), bad=(0.0, -1.0), maybe=(1e-300, 1e300))
    k = draw_number(data, "harmonics", st.integers(1, 4), bad=(0, -1, 2000), wrong=(None, 1.0, True), nonfinite=())

    def check(f):
        assert f.shape == (*x.value.shape, 2 * k.value)
        assert_finite(f)

    expect(pinn.periodic_features, {"x": x, "period": period, "harmonics": k}, check)


@FUZZ
@given(st.data())
def test_field_mlp(data):
    width = draw_number(data, "width", st.integers(1, 8), bad=(0, -1), wrong=(None, 2.0, True), nonfinite=())
    depth = draw_number(data, "depth", st.integers(1, 3), bad=(0,), wrong=(None, 1.5), nonfinite=())
    act = Arg(*data.draw(st.sampled_from([("tanh", OK), ("relu", OK), ("silu", OK), ("gelu", BAD), (None, BAD)])))
    xr = Arg(*data.draw(st.sampled_from([(None, OK), ((0.0, 1.0), OK), ((1.0, 0.0), BAD), ((0.0, math.nan), BAD),
                                         ((0.0,), BAD), ("ab", BAD), ((0, "1"), BAD)])))
    period = draw_number(data, "period", st.one_of(st.none(), st.floats(0.5, 7)), bad=(0.0, -1.0),
                         wrong=("1", [1.0], True))  # None is legal: no periodic features
    if period.value is not None and xr.value is not None and period.verdict == OK and xr.verdict == OK:
        period.verdict, xr.verdict = BAD, BAD
        period.words = xr.words = ("x_range", "period")
    gen = _gen(_checked_generator(data))
    dtype = Arg(*data.draw(st.sampled_from(DTYPE_ARGS[1:])))
    device = Arg(*data.draw(st.sampled_from(DEVICE_ARGS)))
    net = expect(pinn.FieldMLP, {"width": width, "depth": depth, "activation": act, "x_range": xr,
                                 "period": period, "generator": gen, "dtype": dtype, "device": device})
    if net is None or any(a.verdict != OK for a in (width, depth, act, xr, period, gen, dtype, device)):
        return
    x, t = _xt(data)
    for a in (x, t):
        if isinstance(a.value, torch.Tensor) and a.value.dtype != dtype.value and a.verdict == OK:
            a.verdict, a.words = BAD, (a.words or ()) + ("x", "t", "dtype")

    def check(out):
        assert out.shape == x.value.shape and out.dtype == dtype.value
        assert_finite(out)

    expect(net, {"x": x, "t": t}, check)


@FUZZ
@given(st.data())
def test_siren(data):
    inf = draw_number(data, "in_features", st.integers(1, 3), bad=(0,), wrong=(None, 1.0), nonfinite=())
    hid = draw_number(data, "hidden_features", st.integers(1, 8), bad=(0,), wrong=(None,), nonfinite=())
    hl = draw_number(data, "hidden_layers", st.integers(1, 3), bad=(0,), wrong=(2.0,), nonfinite=())
    w0 = draw_number(data, "omega_0", st.floats(0.5, 40), bad=(0.0, -30.0), maybe=(1e300,))
    gen = _gen(_checked_generator(data))
    dtype = Arg(*data.draw(st.sampled_from(DTYPE_ARGS[1:])))
    net = expect(pinn.Siren, {"in_features": inf, "hidden_features": hid, "hidden_layers": hl,
                              "omega_0": w0, "generator": gen, "dtype": dtype})
    if net is None or any(a.verdict != OK for a in (inf, hid, hl, w0, gen, dtype)):
        return
    n = inf.value
    x = draw_tensor(data, shapes=[(4, n), (n,), (4, n + 1), (), (0, n)], name="x",
                    dtypes={dtype.value: OK, torch.int64: BAD},
                    shape_verdict=lambda s: OK if len(s) >= 1 and s[-1] == n else BAD)

    def check(out):
        assert out.shape == (*x.value.shape[:-1], 1)
        assert_finite(out)

    expect(net, {"x": x}, check)


@FUZZ
@given(st.data())
def test_relative_l2(data):
    e = draw_tensor(data, shapes=[(3,), (2, 2)], empty=BAD, name="exact")
    shape = e.value.shape if isinstance(e.value, torch.Tensor) else (3,)
    p = draw_tensor(data, shapes=[shape, shape, (5,)], empty=BAD, name="pred",
                    shape_verdict=lambda s: OK if s == shape else BAD)
    if isinstance(e.value, torch.Tensor) and e.value.dtype.is_floating_point and finite(e.value) \
            and not bool((e.value != 0).any()):  # all zero (a tiny non-zero exact is fine: scaled first)
        e.verdict, e.words = BAD, ("exact", "zero")
    if isinstance(e.value, torch.Tensor) and e.value.dtype.is_floating_point and e.verdict == OK:
        e.verdict, e.words = MAYBE, ("exact",)  # tiny norms may overflow pred's dtype

    def check(out):
        assert out.shape == () and finite(out) and float(out) >= 0

    expect(pinn.relative_l2, {"pred": p, "exact": e}, check)


@FUZZ
@given(st.data())
def test_initial_condition_ansatz(data):
    net = Arg(*data.draw(st.sampled_from([(pinn.FieldMLP(4, 1, dtype=torch.float64), OK), (torch.sin, BAD),
                                          (None, BAD)])))
    u0k = data.draw(st.sampled_from(["good", "short", "nan", "str", "boom", "nc"]))
    u0 = Arg({"good": torch.sin, "short": lambda x: x.reshape(-1)[:1], "nan": lambda x: x * math.nan,
              "str": lambda x: "a", "boom": _boom, "nc": 3}[u0k], OK if u0k == "good" else MAYBE if u0k == "short"
             else BAD, raises=u0k == "boom", nonfinite=u0k == "nan", words=("u0",))
    t0 = draw_number(data, "t0", st.floats(-1, 1))
    at_init = Arg(u0.value, BAD if u0k == "nc" else OK, words=("u0",))
    ans = expect(pinn.InitialConditionAnsatz, {"net": net, "u0": at_init, "t0": t0})
    if ans is None or net.verdict != OK or t0.verdict != OK:
        return
    if u0k == "short":
        pass
    x, t = _xt(data)
    for a in (x, t):  # the net is float64: other dtypes are refused by name
        if isinstance(a.value, torch.Tensor) and a.value.dtype != torch.float64:
            a.verdict, a.words = BAD, ("x", "t", "dtype")

    def check(out):
        assert out.shape == x.value.shape
        assert_finite(out)

    args = {"x": x, "t": t}
    if u0.verdict != OK:
        args["u0_"] = u0
    expect(lambda x, t, u0_=None: ans(x, t), args, check)


@FUZZ
@given(st.data())
def test_siren_bound(data):
    n = draw_number(data, "fan_in", st.integers(1, 1000), bad=(0, -1), wrong=(None, 1.0, True), nonfinite=())
    w0 = draw_number(data, "omega_0", st.floats(0.1, 100), bad=(0.0, -1.0), maybe=(1e-300, 1e300))
    first = Arg(*data.draw(st.sampled_from([(True, OK), (False, OK), (1, BAD), ("no", BAD)])))

    def check(a):
        assert isinstance(a, float) and a > 0 and math.isfinite(a)

    expect(pinn.siren_bound, {"fan_in": n, "omega_0": w0, "first": first}, check)


FUZZED = {pinn: {"input_derivative": test_input_derivative, "Partials": test_partials, "partials": test_partials, "advection_residual": test_residuals, "heat_residual": test_residuals, "PINNLoss": test_pinn_loss, "pinn_loss": test_pinn_loss, "periodic_features": test_periodic_features, "FieldMLP": test_field_mlp, "InitialConditionAnsatz": test_initial_condition_ansatz, "siren_bound": test_siren_bound, "SineLayer": test_siren, "Siren": test_siren, "relative_l2": test_relative_l2}}
