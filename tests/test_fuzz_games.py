"""Bad input, Part II (chapter 9): every public name of ``lib.games`` fuzzed with hypothesis.

Table-driven (``tests/fuzzing.py``: :class:`Param`, :func:`mutated`): valid
arguments with none, one or two replaced by a value that must be refused, held
by :func:`expect` to the rule of ``tests/test_fuzz.py``.
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from lib import games
from tests.fuzzing import (FUZZ, QUICK, Fresh, Param, _boom, all_finite, count_bads, expect, mutated,
                           positive_bads, tensor_bads)


def A():
    return torch.tensor([[1.0, 0.5], [0.0, 2.0], [0.3, 0.0]], dtype=torch.float64)


def x0():
    return torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)


def y0():
    return torch.tensor([0.5, 2.0], dtype=torch.float64)


def losses():
    return (lambda x, y: x @ A() @ y, lambda x, y: -(x @ A() @ y))


GAME_BADS = [None, "game", (_boom, _boom), Fresh(lambda: (lambda x, y: (x,)), "field of one output"),
             Fresh(lambda: (lambda x, y: (x * math.nan, y)), "nan field"),
             Fresh(lambda: (lambda x, y: (y, x)), "field of wrong shapes")]


@FUZZ
@given(st.data())
def test_vector_field(data):
    args = mutated(data, {"game": Param(losses, ["game", None, (1, 2), ("f", "g", "h")])})
    field = expect(games.vector_field, args)
    if field is None:
        return
    xy = mutated(data, {"x": Param(x0, tensor_bads(x0)), "y": Param(y0, tensor_bads(y0))})

    def check(out):
        vx, vy = out
        assert torch.allclose(vx, A() @ xy["y"].value) and torch.allclose(vy, -A().T @ xy["x"].value)

    expect(field, xy, check)


@FUZZ
@given(st.data(), st.sampled_from(["bilinear_game", "bilinear_field"]))
def test_bilinear(data, which):
    args = mutated(data, {"A": Param(A, tensor_bads(A, [(3,), (0, 2)]))})
    out = expect(getattr(games, which), args)
    if out is None:
        return
    if which == "bilinear_game":
        f, g = out
        assert torch.allclose(f(x0(), y0()), x0() @ A() @ y0()) and torch.allclose(g(x0(), y0()), -f(x0(), y0()))
    else:
        vx, vy = out(x0(), y0())
        assert torch.allclose(vx, A() @ y0())


@FUZZ
@given(st.data(), st.sampled_from(["simultaneous_gd", "alternating_gd", "extragradient", "complex_momentum"]))
def test_methods(data, which):
    params = {
        "game": Param(losses, GAME_BADS, words=("game", "field", "loss", "f must", "g must")),
        "x0": Param(x0, tensor_bads(x0)),
        "y0": Param(y0, tensor_bads(y0)),
        "lr": Param(lambda: 0.1, positive_bads()),
        "steps": Param(lambda: 3, count_bads(0)),
    }
    if which == "complex_momentum":
        params["beta"] = Param(lambda: 0.5j, [complex(math.nan, 0), "0.5", None], maybe=[0.9, 0, -0.5 + 0.2j])
    args = mutated(data, params)

    def check(out):
        xs, ys = out
        assert xs.shape == (4, 3) and ys.shape == (4, 2)
        all_finite(out)

    expect(getattr(games, which), args, check)


@FUZZ
@given(st.data())
def test_iteration_matrix(data):
    args = mutated(data, {
        "A": Param(A, tensor_bads(A, [(3,)])),
        "method": Param(lambda: "extragradient", ["sgd", None, 3], maybe=["simultaneous", "alternating"]),
        "lr": Param(lambda: 0.1, positive_bads()),
        "beta": Param(lambda: 0.0, [complex(math.nan, 1), "b"], maybe=[0.5j]),
    })

    def check(T):
        assert T.shape[-1] == T.shape[-2] and T.shape[-1] in (5, 10)
        all_finite(T)

    expect(games.iteration_matrix, args, check)


def square():
    return torch.tensor([[0.5, 1.0], [-1.0, 0.5]], dtype=torch.float64)


@FUZZ
@given(st.data())
def test_spectral_radius(data):
    args = mutated(data, {"T": Param(square, tensor_bads(square, [(2,), (2, 3)]))})

    def check(rho):
        assert isinstance(rho, float) and abs(rho - math.sqrt(1.25)) < 1e-12

    expect(games.spectral_radius, args, check)


def J():
    return torch.tensor([[1.0, 0.0, 1.0], [-1.0, 1.0, 0.0]], dtype=torch.float64)


@FUZZ
@given(st.data(), st.sampled_from(["mean_gradient", "mgda", "upgrad"]))
def test_aggregators(data, which):
    args = mutated(data, {"J": Param(J, tensor_bads(J, [(3,), (0, 3)]))})

    def check(d):
        assert d.shape == (3,)
        all_finite(d)
        if which != "mean_gradient":
            assert bool((J() @ d >= -1e-10).all())

    expect(getattr(games, which), args, check)


def v():
    return torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64)


@FUZZ
@given(st.data())
def test_project_dual_cone(data):
    args = mutated(data, {"J": Param(J, tensor_bads(J, [(3,)])), "v": Param(v, tensor_bads(v, [(2,)]))})

    def check(d):
        assert d.shape == (3,) and bool((args["J"].value @ d >= -1e-10).all())

    expect(games.project_dual_cone, args, check)


@FUZZ
@given(st.data())
def test_nnls(data):
    args = mutated(data, {"A": Param(lambda: J().T, tensor_bads(lambda: J().T, [(3,)])),
                          "b": Param(v, tensor_bads(v, [(2,)]))})

    def check(x):
        assert x.shape == (2,) and bool((x >= 0).all())

    expect(games.nnls, args, check)


def params():
    return [torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True),
            torch.tensor(3.0, dtype=torch.float64, requires_grad=True)]


@FUZZ
@given(st.data())
def test_loss_jacobian(data):
    ps = params()
    good = lambda: [ps[0].square().sum(), ps[0].sum() * ps[1]]  # noqa: E731
    args = mutated(data, {
        "losses": Param(good, [None, "l", [], Fresh(lambda: [ps[0]], "non-scalar loss"),
                               Fresh(lambda: [ps[0].sum() * math.nan], "nan loss")]),
        "params": Param(lambda: ps, [None, [], ["p"], Fresh(lambda: [torch.ones(2)], "no grad")]),
    })

    def check(Jm):
        assert Jm.shape == (2, 3)
        assert torch.allclose(Jm, torch.tensor([[2.0, 4.0, 0.0], [3.0, 3.0, 3.0]], dtype=Jm.dtype))

    expect(games.loss_jacobian, args, check)


FUZZED = {games: {"vector_field": test_vector_field, "bilinear_game": test_bilinear, "bilinear_field": test_bilinear,
                  "simultaneous_gd": test_methods, "alternating_gd": test_methods, "extragradient": test_methods,
                  "complex_momentum": test_methods, "iteration_matrix": test_iteration_matrix,
                  "spectral_radius": test_spectral_radius, "mean_gradient": test_aggregators, "mgda": test_aggregators,
                  "upgrad": test_aggregators, "project_dual_cone": test_project_dual_cone, "nnls": test_nnls,
                  "loss_jacobian": test_loss_jacobian}}
