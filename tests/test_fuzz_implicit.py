"""Bad input, Part III (chapter 10): every public name of ``lib.implicit`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised
by a user's function reaches the caller unchanged. :data:`FUZZED` maps each public
name to its test (``tests/test_fuzz_coverage.py`` checks it is complete).
"""

import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, Boom, _boom, assert_finite,
                             draw_number, draw_tensor, expect, finite, small)

from lib import implicit
from tests.fuzzing import Fresh, Param, count_bads, mutated, tensor_bads

IMP_DTYPES = {torch.float64: OK, torch.float32: OK, torch.float16: BAD, torch.bfloat16: BAD,
              torch.int64: BAD, torch.bool: BAD, torch.complex64: BAD}
IMP_SHAPES = [(), (1,), (3,), (2, 2), (0,)]


def _imp_tensor(data, name, shapes=IMP_SHAPES, shape_verdict=None, **kw):
    return draw_tensor(data, shapes=shapes, dtypes=IMP_DTYPES, empty=BAD, name=name,
                       shape_verdict=shape_verdict, **kw)


LIN_MATVEC_POOL = {  # (fn, verdict for CG, verdict for Neumann)
    "spd": (lambda u: (1.0 + torch.arange(u.numel(), dtype=u.dtype).reshape(u.shape)) * u, OK, MAYBE),  # Neumann: radius >= 1, may stop at max_iter or diverge
    "contraction": (lambda u: 0.5 * u, OK, OK),
    "negative": (lambda u: -u, BAD, OK),  # CG: not positive definite; Neumann: radius 1 -> no convergence, no error
    "short": (lambda u: u.reshape(-1)[:-1], BAD, BAD),
    "nan": (lambda u: u * math.nan, BAD, BAD),
    "str": (lambda u: "Au", BAD, BAD),
    "float16": (lambda u: u.half(), BAD, BAD),
    "boom": (_boom, BAD, BAD),
    "not callable": ("A", BAD, BAD),
}


def _lin_matvec(data, which):
    kind = data.draw(st.sampled_from(sorted(LIN_MATVEC_POOL)))
    fn, v_cg, v_neu = LIN_MATVEC_POOL[kind]
    verdict = v_cg if which == "cg" else v_neu
    if kind == "negative" and which == "neumann":
        verdict = OK  # ||M^k b|| = ||b||: stops at max_iter, residual 1, not an error
    return Arg(fn, verdict, raises=kind == "boom", nonfinite=kind == "nan", kind=kind,
               words=("matvec", "callable", "positive definite", "diverges", "finite"))


@FUZZ
@given(st.data(), st.sampled_from(["cg", "neumann"]))
def test_linear_solvers(data, which):
    matvec = _lin_matvec(data, which)
    b = _imp_tensor(data, "b")
    if isinstance(b.value, torch.Tensor) and b.verdict == OK and not bool(b.value.abs().max() > 0) \
            and matvec.kind != "not callable":
        matvec.verdict, matvec.raises = OK, False  # b = 0: x = 0 before any product
    tol = draw_number(data, "tol", st.sampled_from([None, 1e-8, 0.0, 1e-3]), bad=(-1.0,), wrong=("1e-3", True, [0.1]))
    max_iter = draw_number(data, "max_iter", st.sampled_from([1, 5, 200]), bad=(0, -2), wrong=(2.5, "3", True),
                           nonfinite=(), huge=BAD)
    if which == "cg" and data.draw(st.booleans()):
        max_iter = Arg(None)
    args = {"matvec": matvec, "b": b, "tol": tol, "max_iter": max_iter}

    def check(out):
        x, res = out
        assert x.shape == b.value.shape and x.dtype == b.value.dtype and res.ndim == 1
        assert_finite(x)
        assert_finite(res)
        if matvec.kind in ("spd", "contraction") and tol.value is None and small(b.value) and \
                (max_iter.value is None or max_iter.value == 200):
            d = torch.arange(b.value.numel(), dtype=b.value.dtype).reshape(b.value.shape)
            diag = (1 + d) if matvec.kind == "spd" else torch.full_like(b.value, 0.5)
            ref = b.value / diag if (which == "cg") else b.value / (1 - diag)
            if not (which == "neumann" and matvec.kind == "spd"):
                assert torch.allclose(x, ref, atol=1e-4, rtol=1e-4), (x, ref)

    fn = implicit.conjugate_gradient if which == "cg" else implicit.neumann_series
    if which == "neumann" and max_iter.value is None:
        return
    expect(fn, args, check)


def _F_cubic(x, th):
    return x**3 + x - th


def _newton(x, th):
    for _ in range(40):
        x = x - (x**3 + x - th) / (3 * x**2 + 1)
    return x


F_ROOT_POOL = {"good": (_F_cubic, OK), "nan": (lambda x, th: x * math.nan, BAD),
               "shape": (lambda x, th: x.sum().reshape(1, 1, 1), BAD), "str": (lambda x, th: "F", BAD),
               "boom": (_boom, BAD), "not callable": ("F", BAD)}
SOLVER_POOL = {"newton": (_newton, OK), "nan": (lambda x, th: x + math.nan, BAD),
               "shape": (lambda x, th: x.reshape(-1)[:0], BAD), "list": (lambda x, th: [0.0], BAD),
               "boom": (_boom, BAD), "not callable": (3, BAD)}


@QUICK
@given(st.data())
def test_root_solve(data):
    fk = data.draw(st.sampled_from(sorted(F_ROOT_POOL)))
    sk = data.draw(st.sampled_from(sorted(SOLVER_POOL)))
    F = Arg(F_ROOT_POOL[fk][0], F_ROOT_POOL[fk][1], raises=fk == "boom", nonfinite=fk == "nan", kind=fk,
            words=("F",))
    solver = Arg(SOLVER_POOL[sk][0], SOLVER_POOL[sk][1], raises=sk == "boom", nonfinite=sk == "nan", kind=sk,
                 words=("solver",))
    x0 = _imp_tensor(data, "x0", specials=True)
    shape = x0.value.shape if isinstance(x0.value, torch.Tensor) else (3,)
    x_dtype = x0.value.dtype if isinstance(x0.value, torch.Tensor) else torch.float64
    theta = draw_tensor(data, shapes=[shape], dtypes={torch.float64: OK if x_dtype == torch.float64 else BAD,
                                                      torch.float32: OK if x_dtype == torch.float32 else BAD,
                                                      torch.int64: BAD}, name="theta", lo=-3, hi=3,
                        non_tensors=[None, (), [1.0], "t"])
    if isinstance(theta.value, torch.Tensor) and theta.value.dtype.is_floating_point:
        theta.value = theta.value.clone().requires_grad_(True)
        theta.words = ("theta", "finite", "overflow")
    if sk == "shape" and isinstance(x0.value, torch.Tensor) and x0.value.numel() == 0:
        solver.verdict = OK
    lin = Arg(*data.draw(st.sampled_from([("cg", OK), ("dense", OK), ("gmres", BAD), (None, BAD),
                                          (np.ones(2), BAD)])), words=("linear_solver",))
    solve_tol = draw_number(data, "solve_tol", st.sampled_from([None, 1e-9]), bad=(0.0, -1.0), wrong=("1e-9",))

    def check(x):
        assert x.shape == x0.value.shape and x.dtype == x0.value.dtype
        assert_finite(x)
        if x.requires_grad and x0.value.dtype == torch.float64 and theta.value.dtype == torch.float64 and \
                solve_tol.value is None:
            (g,) = torch.autograd.grad(x.sum(), theta.value)
            assert torch.allclose(g, 1 / (3 * x.detach() ** 2 + 1), atol=1e-8)

    expect(implicit.root_solve, {"F": F, "x0": x0, "theta": theta, "solver": solver, "linear_solver": lin,
                                 "solve_tol": solve_tol}, check)


class _Cell(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.W = torch.nn.Linear(3, 3, bias=False)
        with torch.no_grad():
            self.W.weight.mul_(0.5 / torch.linalg.matrix_norm(self.W.weight, 2))

    def forward(self, z, x):
        return torch.tanh(self.W(z) + x)


@QUICK
@given(st.data())
def test_fixed_point_layer(data):
    f = Arg(*data.draw(st.sampled_from([(_Cell().double(), OK), (lambda z, x: z, BAD), (None, BAD)])),
            words=("f",))
    max_iter = draw_number(data, "max_iter", st.sampled_from([1, 30]), bad=(0, -1), wrong=(1.5, None, "3"),
                           nonfinite=(), huge=BAD)
    tol = draw_number(data, "tol", st.sampled_from([None, 0.0, 1e-8]), bad=(-1.0,), wrong=("0",))
    layer = expect(implicit.FixedPointLayer, {"f": f, "max_iter": max_iter, "tol": tol})
    if layer is None:
        return
    x = draw_tensor(data, shapes=[(2, 3), (3,)], dtypes={torch.float64: OK, torch.float32: BAD, torch.int64: BAD},
                    name="x", non_tensors=[None, [[1.0]]], empty=BAD)
    if isinstance(x.value, torch.Tensor) and x.value.dtype == torch.float64:
        x.value = x.value.clone().requires_grad_(True)

    def check(z):
        assert z.shape == x.value.shape
        assert_finite(z)
        if z.requires_grad:
            z.sum().backward()
            assert finite(x.value.grad)

    expect(layer, {"x": x}, check)



# ---------------------------------------------------------------- table-driven: argmin and fixed points


def _theta():
    return torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)


def _z0():
    return torch.zeros(3, dtype=torch.float64)


def _g(x, theta):  # strictly convex: argmin x = theta / 2
    return (x * x).sum() - (x * theta).sum()


def _g_solver(x0, theta):
    return theta.detach() / 2


def _contraction(z, theta):
    return 0.5 * torch.tanh(z) + theta


CALLABLE_BADS = ["f", None, _boom, Fresh(lambda: (lambda z, theta: z.sum()), "wrong shape"),
                 Fresh(lambda: (lambda z, theta: z * math.nan), "nan output")]
FN_WORDS = ("f", "g", "solver", "callable", "shape", "finite", "F")


def _check_grad(x, theta, expected):
    assert_finite(x)
    if x.requires_grad:
        (gr,) = torch.autograd.grad(x.sum(), theta)
        assert torch.allclose(gr, expected, atol=1e-6), (gr, expected)


@QUICK
@given(st.data())
def test_argmin_solve(data):
    args = mutated(data, {
        "g": Param(lambda: _g, ["g", None, _boom, Fresh(lambda: (lambda x, theta: x * theta), "vector-valued g"),
                               Fresh(lambda: (lambda x, theta: (x * theta).sum() * math.nan), "nan g")],
                   words=FN_WORDS + ("scalar",)),
        "x0": Param(_z0, tensor_bads(_z0)),
        "theta": Param(_theta, [Fresh(lambda: torch.full((3,), math.nan, dtype=torch.float64), "nan theta")]),
        "solver": Param(lambda: _g_solver, ["s", _boom, Fresh(lambda: (lambda x0, th: x0[:2]), "wrong shape")],
                        words=FN_WORDS),
        "linear_solver": Param(lambda: "cg", ["gmres", None], maybe=["dense"]),
        "solve_tol": Param(lambda: None, [0.0, -1.0, "t"]),
        "solve_max_iter": Param(lambda: 1000, count_bads(1)),
    })

    def check(x):
        assert x.shape == (3,)
        _check_grad(x, args["theta"].value, torch.full((3,), 0.5, dtype=torch.float64))

    expect(implicit.argmin_solve, args, check)


@QUICK
@given(st.data(), st.sampled_from(["fixed_point_iteration", "fixed_point_solve"]))
def test_fixed_point_functions(data, which):
    params = {
        "f": Param(lambda: _contraction, CALLABLE_BADS, words=FN_WORDS),
        "z0": Param(_z0, tensor_bads(_z0)),
        "theta": Param(_theta, []),
        "max_iter": Param(lambda: 200, count_bads(1)),
        "tol": Param(lambda: 1e-12 if which == "fixed_point_solve" else 0.0, [-1.0, math.nan, "t"],
                     maybe=[0.0]),
    }
    if which == "fixed_point_solve":
        params["linear_solver"] = Param(lambda: "neumann", ["gmres", None], maybe=["dense", "cg"])
        params["solve_tol"] = Param(lambda: None, [0.0, -1.0, "t"])
        params["solve_max_iter"] = Param(lambda: 1000, count_bads(1))
    args = mutated(data, params)

    def check(z):
        assert z.shape == (3,)
        assert_finite(z)
        theta = args["theta"].value
        assert torch.allclose(z, _contraction(z, theta), atol=1e-8)  # 200 steps of a 1/2-contraction
        if which == "fixed_point_solve" and args["linear_solver"].value != "cg":
            # dz/dtheta = (I - J)^{-1}, J = diag(0.5 sech^2 z): sum over outputs -> 1 / (1 - J_ii)
            jd = 0.5 / torch.cosh(z.detach()) ** 2
            _check_grad(z, theta, 1 / (1 - jd))

    expect(getattr(implicit, which), args, check)


FUZZED = {implicit: {"conjugate_gradient": test_linear_solvers, "neumann_series": test_linear_solvers, "root_solve": test_root_solve, "FixedPointLayer": test_fixed_point_layer, "argmin_solve": test_argmin_solve, "fixed_point_iteration": test_fixed_point_functions, "fixed_point_solve": test_fixed_point_functions}}
