"""Bad input, Part III (chapter 11): every public name of ``lib.bilevel`` fuzzed with hypothesis.

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

from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, _boom, assert_finite,
                             draw_number, draw_tensor, expect)

from lib import bilevel

BIL_DTYPES = {torch.float64: OK, torch.float32: OK, torch.float16: BAD, torch.bfloat16: BAD,
              torch.int64: BAD, torch.bool: BAD, torch.complex64: BAD}  # float32/float64 only
BIL_SHAPES = [(), (1,), (3,), (2, 2), (0,)]
BIL_SOLVER_WORDS = ("singular", "positive definite", "neumann", "alpha", "lr", "diverged", "Hessian",
                    "finite", "scalar")


def _inner_good(w, lam):  # strongly convex in w for every lam (Hessian >= 0.9 I)
    w, lam = w.reshape(-1), lam.reshape(-1)
    return (0.5 * (w * w).sum() * (1 + lam.exp().sum()) + 0.1 * torch.sin(w).sum()
            + 0.1 * lam.sum() * w.sum() + 0.25 * (w**4).sum())


def _outer_good(w, lam):
    return ((w - 1) ** 2).sum() + 0.1 * (lam**2).sum()


BIL_POOL = {  # kind: (fn or None for the good one, verdict)
    "good": (None, OK),
    "const": (lambda w, lam: torch.ones((), dtype=w.dtype), MAYBE),     # inner: H = 0 -> singular
    "linear": (lambda w, lam: w.sum() * lam.sum(), MAYBE),
    "sqrt": (lambda w, lam: w.abs().sqrt().sum() + lam.sum(), MAYBE),  # infinite slope at 0
    "vector": (lambda w, lam: 2 * w, MAYBE),                           # a scalar only for one element
    "nan": (lambda w, lam: (w * 0).sum() + math.nan, BAD),
    "inf": (lambda w, lam: (w * 0).sum() + math.inf, BAD),
    "str": (lambda w, lam: "x", BAD),
    "int": (lambda w, lam: torch.ones((), dtype=torch.int64), BAD),
    "boom": (_boom, BAD),
}


def _bil_fn(data, name, good):
    kind = data.draw(st.sampled_from(sorted(BIL_POOL) + ["not callable"]), label=name)
    if kind == "not callable":
        return Arg("f", BAD, words=(name, "callable"), kind=kind)
    fn, verdict = BIL_POOL[kind]
    return Arg(good if fn is None else fn, verdict, nonfinite=kind in ("nan", "inf"), raises=kind == "boom",
               kind=kind, words=(name,) + BIL_SOLVER_WORDS)


def _bil_pair(data, wname):
    w = draw_tensor(data, shapes=BIL_SHAPES, dtypes=BIL_DTYPES, empty=BAD, name=wname)
    lam = draw_tensor(data, shapes=BIL_SHAPES, dtypes=BIL_DTYPES, empty=BAD, name="lam")
    if isinstance(w.value, torch.Tensor) and isinstance(lam.value, torch.Tensor) \
            and w.value.dtype != lam.value.dtype and w.verdict != BAD and lam.verdict != BAD:
        lam.verdict, lam.words = BAD, ("lam", "dtype")
    return w, lam


@QUICK
@given(st.data())
def test_hypergradient(data):
    w, lam = _bil_pair(data, "w")
    outer = _bil_fn(data, "outer_loss", _outer_good)
    inner = _bil_fn(data, "inner_loss", _inner_good)
    method = Arg(*data.draw(st.sampled_from([("implicit", OK), ("unrolled", OK), ("forward", BAD), (None, BAD)])))
    inverse = Arg(*data.draw(st.sampled_from([("exact", OK), ("cg", OK), ("neumann", OK), ("identity", OK),
                                              ("lu", BAD)])))
    iters = draw_number(data, "iters", st.integers(1, 30), bad=(0, -1), wrong=(None, 2.0, "3", True), nonfinite=())
    alpha = draw_number(data, "alpha", st.sampled_from([None, 0.1, 1.0]), bad=(0.0, -1.0), maybe=(1e6, 1e-300),
                        wrong=("1", True))
    alpha.words = ("alpha", "neumann")
    tol = draw_number(data, "tol", st.sampled_from([None, 1e-8]), bad=(0.0, -1.0), wrong=("1", True))
    steps = draw_number(data, "steps", st.integers(0, 20), bad=(-1,), wrong=(None, 2.0, "3", True), nonfinite=(),
                        huge=None)
    lr = draw_number(data, "lr", st.sampled_from([None, 0.05, 0.2]), bad=(0.0, -1.0), maybe=(1e3, 1e300),
                     wrong=("1", True))
    lr.words = ("lr", "diverged")

    def check(h):
        assert h.shape == lam.value.shape and h.dtype == lam.value.dtype
        assert_finite(h)
        if inner.kind == "good" and outer.kind == "good" and method.value == "implicit" \
                and inverse.value == "exact" and w.value.dtype == torch.float64:
            wv, lv = w.value.reshape(-1), lam.value.reshape(-1)  # dense reference by torch.func
            Hm = torch.func.hessian(_inner_good, argnums=0)(wv, lv)
            Bm = torch.func.jacrev(torch.func.grad(_inner_good, argnums=0), argnums=1)(wv, lv)
            gw, gl = torch.func.grad(_outer_good, argnums=(0, 1))(wv, lv)
            ref = gl - Bm.T @ torch.linalg.solve(Hm, gw)
            assert torch.allclose(h.reshape(-1), ref, rtol=1e-6, atol=1e-6 * (1 + float(ref.abs().max())))

    expect(bilevel.hypergradient, {"outer_loss": outer, "inner_loss": inner, "w": w, "lam": lam, "method": method,
                                   "inverse": inverse, "iters": iters, "alpha": alpha, "tol": tol, "steps": steps,
                                   "lr": lr}, check)


@QUICK
@given(st.data())
def test_solve_inner(data):
    w0, lam = _bil_pair(data, "w0")
    inner = _bil_fn(data, "inner_loss", _inner_good)
    steps = draw_number(data, "steps", st.integers(0, 20), bad=(-1,), wrong=(None, 2.0, "3", True), nonfinite=(),
                        huge=None)
    tol = draw_number(data, "tol", st.sampled_from([None, 1e-8]), bad=(0.0, -1.0), wrong=("1", True))

    def check(w):
        assert w.shape == w0.value.shape and w.dtype == w0.value.dtype
        assert_finite(w)
        if inner.kind == "good" and steps.value >= 15 and w0.value.dtype == torch.float64 \
                and float(w0.value.abs().max()) <= 3:
            wr = w.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(_inner_good(wr, lam.value), wr)
            assert float(g.norm()) < 1e-6, g  # Newton reaches the minimum

    expect(bilevel.solve_inner, {"inner_loss": inner, "w0": w0, "lam": lam, "steps": steps, "tol": tol}, check)


BIL_MATVEC_POOL = {
    "good": (lambda q: torch.linspace(0.5, 2.0, q.numel(), dtype=q.dtype) * q, OK),
    "negative": (lambda q: -q, MAYBE),   # exact works; cg and neumann refuse by name
    "zero": (lambda q: 0 * q, MAYBE),    # singular
    "short": (lambda q: q[:-1], BAD),
    "nan": (lambda q: q * math.nan, BAD),
    "str": (lambda q: "a", BAD),
    "int": (lambda q: (q > 0).long(), BAD),
    "boom": (_boom, BAD),
    "not callable": ("A", BAD),
}


@FUZZ
@given(st.data())
def test_inverse_hvp(data):
    kind = data.draw(st.sampled_from(sorted(BIL_MATVEC_POOL)))
    fn, verdict = BIL_MATVEC_POOL[kind]
    matvec = Arg(fn, verdict, raises=kind == "boom", nonfinite=kind == "nan", kind=kind,
                 words=("matvec", "callable", "singular", "positive definite", "neumann", "alpha"))
    v = draw_tensor(data, shapes=[(1,), (3,), (5,), (2, 2), (0,), ()], dtypes=BIL_DTYPES, name="v", empty=BAD,
                    shape_verdict=lambda s: OK if len(s) == 1 else BAD)
    inverse = Arg(*data.draw(st.sampled_from([("exact", OK), ("cg", OK), ("neumann", OK), ("identity", OK),
                                              ("lu", BAD)])))
    iters = draw_number(data, "iters", st.integers(1, 200), bad=(0, -1), wrong=(None, 2.0, "3", True), nonfinite=())
    alpha = draw_number(data, "alpha", st.sampled_from([None, 0.5]), bad=(0.0, -1.0), maybe=(1e6,), wrong=("1", True))
    alpha.words = ("alpha", "neumann")
    tol = draw_number(data, "tol", st.sampled_from([None, 1e-10]), bad=(0.0, -1.0), wrong=("1", True))

    def check(x):
        vv = v.value
        assert x.shape == vv.shape and x.dtype == vv.dtype
        assert_finite(x)
        if kind == "good" and vv.dtype == torch.float64 and float(vv.abs().max()) < 10:
            ref = vv / torch.linspace(0.5, 2.0, vv.numel(), dtype=vv.dtype)
            if inverse.value == "exact" or (inverse.value == "cg" and iters.value >= vv.numel()):
                assert torch.allclose(x, ref, atol=1e-6)
            if inverse.value == "identity" and alpha.value == 0.5:
                assert torch.allclose(x, 0.5 * vv)

    expect(bilevel.inverse_hvp, {"matvec": matvec, "v": v, "inverse": inverse, "iters": iters, "alpha": alpha,
                                 "tol": tol}, check)


FUZZED = {bilevel: {"hypergradient": test_hypergradient, "inverse_hvp": test_inverse_hvp, "solve_inner": test_solve_inner}}
