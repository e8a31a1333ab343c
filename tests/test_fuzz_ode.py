"""Bad input, Part III (chapter 12): every public name of ``lib.ode`` fuzzed with hypothesis.

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

from lib import ode
from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, _boom, assert_finite, draw_number, draw_tensor,
                           expect, finite, small)

ODE_F = {
    "decay": (lambda t, y: -y, OK),
    "sin": (lambda t, y: torch.sin(y) * t, OK),
    "shape": (lambda t, y: torch.cat([y.reshape(-1), y.reshape(-1)]), BAD),
    "nan": (lambda t, y: y * math.nan, BAD),
    "str": (lambda t, y: "dy", BAD),
    "dtype": (lambda t, y: y.to(torch.float16), BAD),
    "boom": (_boom, BAD),
    "not callable": ("f", BAD),
}


class _Decay(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, t, y):
        return -self.k.to(y.dtype) * y


def _ode_args(data):
    kind = data.draw(st.sampled_from(sorted(ODE_F)))
    fn, verdict = ODE_F[kind]
    func = Arg(fn, verdict, raises=kind == "boom", nonfinite=kind == "nan", note=kind, kind=kind,
               words=("func", "callable"))
    y0 = draw_tensor(data, shapes=[(), (1,), (3,), (2, 2), (0,)], empty=BAD, name="y0",
                     dtypes={torch.float64: OK, torch.float32: OK, torch.float16: MAYBE, torch.int64: BAD,
                             torch.complex64: BAD})
    if isinstance(y0.value, torch.Tensor) and y0.value.dtype == torch.float16 and y0.verdict != BAD:
        y0.verdict = MAYBE
    tkind = data.draw(st.sampled_from(["inc", "dec", "one", "flat", "2d", "int", "list", "nan", "big"]))
    t = {"inc": Arg(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)),
         "dec": Arg(torch.tensor([1.0, 0.2], dtype=torch.float32)),
         "one": Arg(torch.tensor([0.3])),
         "flat": Arg(torch.tensor([0.0, 1.0, 1.0]), BAD),
         "2d": Arg(torch.zeros(2, 2), BAD),
         "int": Arg(torch.tensor([0, 1]), BAD),
         "list": Arg([0.0, 1.0], BAD),
         "nan": Arg(torch.tensor([0.0, math.nan]), BAD, nonfinite=True),
         "big": Arg(torch.tensor([0.0, 1e6]), MAYBE, words=("t", "max_steps", "finite", "overflow"))}[tkind]
    t.kind = tkind
    if tkind == "one" and kind != "not callable" and func.verdict == BAD:
        func.verdict = MAYBE  # a single time: func is never called, y0 comes back
    method = Arg(*data.draw(st.sampled_from([("dopri5", OK), ("rk4", OK), ("euler", OK), ("rk45", BAD),
                                             (None, BAD)])))
    rtol = draw_number(data, "rtol", st.sampled_from([1e-3, 1e-6]), bad=(-1.0, 1.0), wrong=("1e-3", None, True))
    atol = draw_number(data, "atol", st.sampled_from([1e-6, 1e-9]), bad=(-1.0, 0.0), wrong=("0", None))
    fixed = method.value in ("rk4", "euler")
    step = draw_number(data, "step_size", st.sampled_from([None, 0.1] if fixed else [None]),
                       bad=(0.0, -0.1) if fixed else (0.0, 0.1), maybe=(1e-300,), wrong=("0.1", True))
    if step.value == 1e-300:
        step.words = ("step_size", "max_steps")
    return func, y0, t, method, rtol, atol, step


def _check_solution(func, y0, t, method, atol, rtol, k=1.0):
    def check(out):
        tv, yv = t.value, y0.value
        assert out.shape == (len(tv), *yv.shape) and out.dtype == yv.dtype
        assert_finite(out)
        assert torch.equal(out[0], yv)
        if func.kind == "decay" and small(yv) and method.value == "dopri5" and tv.numel() > 1 \
                and yv.dtype == torch.float64 and rtol.value == 1e-6 and atol.value == 1e-6:
            exact = torch.exp(-k * (tv.double() - tv[0].double())).reshape(-1, *[1] * yv.ndim) * yv
            assert torch.allclose(out, exact, atol=1e-4)
    return check


@QUICK
@given(st.data())
def test_odeint(data):
    func, y0, t, method, rtol, atol, step = _ode_args(data)
    expect(lambda **kw: ode.odeint(kw.pop("func"), kw.pop("y0"), kw.pop("t"), **kw),
           {"func": func, "y0": y0, "t": t, "method": method, "rtol": rtol, "atol": atol, "step_size": step},
           _check_solution(func, y0, t, method, atol, rtol))


@QUICK
@given(st.data())
def test_odeint_adjoint(data):
    func, y0, t, method, rtol, atol, step = _ode_args(data)
    if func.kind == "decay":
        func.value = _Decay()
        if isinstance(y0.value, torch.Tensor) and y0.value.dtype == torch.float32 and y0.verdict == OK:
            y0.verdict, y0.words = MAYBE, ("adjoint_params", "dtype")  # float64 parameter, float32 state
    params = Arg(*data.draw(st.sampled_from([(None, OK), ((), OK), ("p", BAD), (torch.ones(2), BAD)])))
    if params.value is None and not isinstance(func.value, torch.nn.Module):
        params.verdict, params.words = BAD, ("func", "adjoint_params", "Module")
    if isinstance(y0.value, torch.Tensor) and y0.value.dtype.is_floating_point:
        y0.value = y0.value.clone().requires_grad_(True)

    def call(**kw):
        out = ode.odeint_adjoint(kw.pop("func"), kw.pop("y0"), kw.pop("t"), **kw)
        out.square().sum().backward()
        return out.detach()

    out = expect(call, {"func": func, "y0": y0, "t": t, "method": method, "rtol": rtol, "atol": atol,
                        "step_size": step, "adjoint_params": params},
                 _check_solution(func, y0, t, method, atol, rtol, 0.5 if func.kind == "decay" else 1.0))
    if out is not None:
        assert y0.value.grad is not None and torch.isfinite(y0.value.grad).all()


@FUZZ
@given(st.data())
def test_ode_stats(data):
    s = ode.ODEStats()
    assert s.nfe == 0 and s.t_steps == [] and repr(s).startswith("ODEStats(")


FUZZED = {ode: {"odeint": test_odeint, "odeint_adjoint": test_odeint_adjoint, "ODEStats": test_ode_stats}}
