"""Bad input, Part VI (chapter 22): every public name of ``lib.score`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised
by a user's function reaches the caller unchanged. The mixture functions draw
their arguments by hand (shapes, dtypes, NaN/inf, huge values); the losses, the
network and the samplers are table-driven (:class:`Param`, :func:`mutated`).
:data:`FUZZED` maps each public name to its test (``tests/test_fuzz_coverage.py``
checks it is complete). Meant to live as ``tests/test_fuzz_score.py``; run alone with
``cd /work/main && .venv/bin/python -m pytest /tmp/author/fuzz_22.py -q -p no:cacheprovider``.
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from lib import score
from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, Fresh, Param, _boom, all_finite, assert_finite,
                           count_bads, draw_number, draw_tensor, expect, mutated, positive_bads, small,
                           tensor_bads)

S_DTYPES = {torch.float64: OK, torch.float32: OK, torch.float16: MAYBE, torch.bfloat16: MAYBE,
            torch.int64: BAD, torch.bool: BAD, torch.complex64: BAD}


# ---------------------------------------------------------------- the analytic mixture

def _points(data, d):
    """x of shape (..., d): the right last dimension is OK, anything else must be refused."""
    shapes = [(4, d), (d,), (2, 3, d), (4, d + 1), (), (0, d)]
    return draw_tensor(data, shapes=shapes, dtypes=S_DTYPES, empty=MAYBE, name="x",
                       shape_verdict=lambda s: OK if len(s) >= 1 and s[-1] == d else BAD,
                       non_tensors=[None, [[0.0] * d], 1.5, "x"])


@FUZZ
@given(st.data(), st.sampled_from(["log_prob", "score"]))
def test_gmm(data, which):
    k, d = data.draw(st.integers(1, 3), label="k"), data.draw(st.integers(1, 3), label="d")
    means = draw_tensor(data, shapes=[(k, d), (k, d), (d,), (k, d, 1), (0, d)], name="means",
                        dtypes={torch.float64: OK, torch.float32: OK, torch.int64: BAD},
                        shape_verdict=lambda s: OK if s == (k, d) else BAD, non_tensors=[None, [[0.0] * d]])
    x = _points(data, d)
    stds = Arg(*data.draw(st.sampled_from([
        (1.0, OK), (0.5, OK), (2, OK), ([1.0] * k, OK), (torch.full((k,), 0.7), OK), (0.0, BAD), (-1.0, BAD),
        (math.nan, BAD), (math.inf, BAD), (torch.ones(k + 1), BAD), ("1", BAD), (None, BAD), (True, BAD),
        (1e-30, MAYBE), (1e200, MAYBE)]), label="stds"))
    weights = Arg(*data.draw(st.sampled_from([
        (None, OK), (torch.rand(k) + 0.1, OK), ([1.0] * k, OK), (torch.zeros(k), BAD), (-torch.ones(k), BAD),
        (torch.ones(k + 1), BAD), (torch.full((k,), math.nan), BAD), ("w", BAD),
        (torch.ones(k, dtype=torch.bool), BAD)]),
        label="weights"))
    sigma = draw_number(data, "sigma", st.sampled_from([0.0, 0.3, 2.0]), bad=(-0.1,), maybe=(1e200, 1e-300))
    if isinstance(stds.value, float) and stds.value == 1e200 or sigma.value == 1e200:
        for a in (stds, sigma):  # squared, they overflow float32/float64: refused naming one of them
            a.words = ("stds", "sigma", "overflow")
    fn = score.gmm_log_prob if which == "log_prob" else score.gmm_score

    def check(out):
        xv = x.value
        assert out.dtype == xv.dtype
        assert out.shape == (xv.shape[:-1] if which == "log_prob" else xv.shape)
        assert_finite(out)
        if which == "score" and xv.dtype == torch.float64 and small(xv) and xv.numel() and \
                isinstance(stds.value, float) and stds.value in (0.5, 1.0) and isinstance(means.value, torch.Tensor):
            xr = xv.clone().requires_grad_(True)
            lp = score.gmm_log_prob(xr, means.value, stds.value, weights.value, sigma=sigma.value)
            (g,) = torch.autograd.grad(lp.sum(), xr)
            assert torch.allclose(out, g, atol=1e-8), (out, g)

    expect(fn, {"x": x, "means": means, "stds": stds, "weights": weights, "sigma": sigma}, check)


# ---------------------------------------------------------------- losses

def X():
    return torch.tensor([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8]], dtype=torch.float64)


def _linear(y):
    return -y + 0.1 * y.flip(-1)


def _model(y, sigma):
    return -y / (1 + sigma.reshape(-1, *([1] * (y.dim() - 1))) ** 2)


SCORE_BADS = ["s", None, _boom, Fresh(lambda: (lambda y: y[..., :1]), "wrong shape"),
              Fresh(lambda: (lambda y: y * math.nan), "nan score"), Fresh(lambda: (lambda y: "s"), "str score"),
              Fresh(lambda: (lambda y: (y > 0).long()), "int score")]
MODEL_BADS = ["s", None, _boom, Fresh(lambda: (lambda y, s: y.sum(-1)), "wrong shape"),
              Fresh(lambda: (lambda y, s: y + math.inf), "inf score"), Fresh(lambda: (lambda y, s: 0.0), "float"),
              Fresh(lambda: (lambda y: y), "one argument")]
SIGMA_BADS = [0.0, -1.0, math.nan, math.inf, "1", None, True, [], [1.0, -2.0],
              Fresh(lambda: torch.tensor([1.0, math.nan]), "nan sigma"),
              Fresh(lambda: torch.ones(2, dtype=torch.bool), "bool")]
GEN_BADS = [0, "g", Fresh(lambda: torch.Generator().manual_seed(0).get_state(), "a state tensor")]


def _finite_scalar(out):
    assert isinstance(out, torch.Tensor) and out.shape == ()
    all_finite(out)


@FUZZ
@given(st.data())
def test_ism_loss(data):
    args = mutated(data, {
        "score": Param(lambda: _linear, SCORE_BADS),
        "x": Param(X, tensor_bads(X, [(3,), (2, 2, 2), (0, 2)]) + [Fresh(lambda: X().half(), "float16")]),
    })

    def check(out):
        _finite_scalar(out)
        if args["score"].value is _linear:  # s = A x with A = [[-1, .1], [.1, -1]]: tr A = -2
            xv = args["x"].value
            ref = 0.5 * (_linear(xv) ** 2).sum(1).mean() - 2.0
            assert abs(out.item() - ref.item()) < 1e-10

    expect(score.ism_loss, args, check)


@FUZZ
@given(st.data())
def test_dsm_loss(data):
    args = mutated(data, {
        "score_model": Param(lambda: _model, MODEL_BADS, words=("score_model",)),
        "x": Param(X, tensor_bads(X, [(3,), (0, 2)]) + [Fresh(lambda: X().half(), "float16")]),
        "sigmas": Param(lambda: [0.1, 1.0], SIGMA_BADS, maybe=[1e200, Fresh(lambda: torch.tensor([0.5]), "tensor")],
                        words=("sigmas", "overflow")),
        "generator": Param(lambda: torch.Generator().manual_seed(0), GEN_BADS),
        "antithetic": Param(lambda: False, [1, None, "yes"], maybe=[True]),
    })
    if args["score_model"].note == "one argument":
        args["score_model"].words = ("score_model", "argument", "positional")
    expect(score.dsm_loss, args, _finite_scalar)


@FUZZ
@given(st.data())
def test_score_mlp(data):
    d = draw_number(data, "d", st.integers(1, 3), bad=(0, -1), wrong=(None, 2.0, "2", True), nonfinite=())
    width = draw_number(data, "width", st.integers(1, 8), bad=(0, 2**40), wrong=(None, 4.5), nonfinite=())
    depth = draw_number(data, "depth", st.integers(1, 3), bad=(0,), wrong=(2.0, None), nonfinite=())
    data_std = draw_number(data, "data_std", st.floats(0.1, 10.0), bad=(0.0, -1.0), wrong=("1", None))
    net = expect(score.ScoreMLP, {"d": d, "width": width, "depth": depth, "data_std": data_std})
    if net is None or any(a.verdict != OK for a in (d, width, depth, data_std)):
        return
    dv = d.value
    x = draw_tensor(data, shapes=[(4, dv), (1, dv), (4, dv + 1), (dv,), (0, dv)], name="x",
                    dtypes={torch.float32: OK, torch.float64: BAD, torch.int64: BAD},
                    shape_verdict=lambda s: OK if len(s) == 2 and s[1] == dv and s[0] > 0 else BAD,
                    empty=BAD, non_tensors=[None, [[0.0] * dv]])
    n = x.value.shape[0] if isinstance(x.value, torch.Tensor) and x.value.dim() >= 1 else 4
    sigma = Arg(*data.draw(st.sampled_from([
        (0.5, OK), (2, OK), (torch.full((n,), 0.3), OK), (torch.tensor(1.0), OK), (0.0, BAD), (-1.0, BAD),
        (math.nan, BAD), (torch.ones(n + 1), BAD), ("s", BAD), (None, BAD), (1e-30, MAYBE), (1e30, MAYBE)]),
        label="sigma"))

    def check(out):
        assert out.shape == x.value.shape and out.dtype == torch.float32
        assert_finite(out)

    expect(net, {"x": x, "sigma": sigma}, check)


@FUZZ
@given(st.data())
def test_tweedie_denoise(data):
    args = mutated(data, {
        "x_noisy": Param(X, tensor_bads(X, [(0, 2)])),
        "score": Param(lambda: -X(), tensor_bads(X, [(3,), (3, 3)])),
        "sigma": Param(lambda: 0.5, [*positive_bads(), Fresh(lambda: torch.ones(2), "two sigmas")],
                       maybe=[Fresh(lambda: torch.tensor([0.1, 1.0, 2.0]), "per-sample"), 1e200],
                       words=("sigma", "overflow")),
    })

    def check(out):
        assert out.shape == args["x_noisy"].value.shape
        all_finite(out)
        if all(a.verdict == OK for a in args.values()):
            assert torch.allclose(out, X() - 0.25 * X())

    expect(score.tweedie_denoise, args, check)


# ---------------------------------------------------------------- samplers

def X0():
    return torch.tensor([[0.5, -1.0], [1.5, 0.2]], dtype=torch.float64)


LANGEVIN_SCORE_BADS = SCORE_BADS + [Fresh(lambda: (lambda y: y * 1e300), "explosive score")]


@QUICK
@given(st.data())
def test_langevin(data):
    args = mutated(data, {
        "score": Param(lambda: (lambda y: -y), LANGEVIN_SCORE_BADS, words=("score", "diverged")),
        "x0": Param(X0, tensor_bads(X0, [(0, 2)]) + [Fresh(lambda: X0().half(), "float16")]),
        "step_size": Param(lambda: 0.1, [*positive_bads(), 1e300], maybe=[9.0],
                           words=("step_size", "step", "diverged")),
        "n_steps": Param(lambda: 5, count_bads(0)),
        "generator": Param(lambda: None, GEN_BADS),
        "return_path": Param(lambda: False, [1, None, "no"], maybe=[True]),
    })

    def check(out):
        n_steps = args["n_steps"].value
        shape = args["x0"].value.shape
        assert out.shape == ((n_steps + 1, *shape) if args["return_path"].value is True else shape)
        all_finite(out)

    expect(score.langevin, args, check)


def _nc_model(y, sigma):
    return -y / (1 + sigma[:, None] ** 2)


@QUICK
@given(st.data())
def test_annealed_langevin(data):
    args = mutated(data, {
        "score": Param(lambda: _nc_model, MODEL_BADS, words=("score", "argument", "positional", "diverged")),
        "x0": Param(X0, tensor_bads(X0, [(0, 2)])),
        "sigmas": Param(lambda: [2.0, 1.0, 0.5], SIGMA_BADS + [[0.5, 1.0], [1.0, 1.0]],
                        maybe=[[1e200, 1e-200], Fresh(lambda: torch.tensor([3.0]), "one level")],
                        words=("sigmas", "overflows", "diverged")),
        "n_steps_each": Param(lambda: 3, count_bads(1)),
        "step_lr": Param(lambda: 0.01, [*positive_bads(), 1e300], maybe=[50.0],
                         words=("step_lr", "diverged", "overflows")),
        "generator": Param(lambda: None, GEN_BADS),
        "denoise": Param(lambda: False, [1, "yes"], maybe=[True]),
        "return_path": Param(lambda: False, [None, 0], maybe=[True]),
    })

    def check(out):
        shape = args["x0"].value.shape
        if args["return_path"].value is True:
            assert out.shape[1:] == shape
        else:
            assert out.shape == shape
        all_finite(out)

    expect(score.annealed_langevin, args, check)


FUZZED = {score: {"gmm_log_prob": test_gmm, "gmm_score": test_gmm, "ism_loss": test_ism_loss,
                  "dsm_loss": test_dsm_loss, "ScoreMLP": test_score_mlp, "tweedie_denoise": test_tweedie_denoise,
                  "langevin": test_langevin, "annealed_langevin": test_annealed_langevin}}
