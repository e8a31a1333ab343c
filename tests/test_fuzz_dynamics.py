"""Bad input, Part II (chapter 7): every public name of ``lib.dynamics`` fuzzed with hypothesis.

Table-driven (``tests/fuzzing.py``: :class:`Param`, :func:`mutated`): each call has
valid arguments with none, one or two of them replaced by a value that must be
refused (NaN/inf entries, wrong dtype, wrong shape, not a tensor, a bad number),
and :func:`expect` holds it to the rule of ``tests/test_fuzz.py``: a finite,
well-formed result, or a ``ValueError``/``TypeError`` naming the argument.
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from lib import dynamics
from tests.fuzzing import (FUZZ, QUICK, Fresh, Param, _boom, all_finite, count_bads, expect, mutated,
                           positive_bads, tensor_bads)


def H():
    return torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)


def vec():
    return torch.tensor([1.0, -1.0], dtype=torch.float64)


def quad(theta):
    return 0.5 * (theta * theta * torch.arange(1.0, theta.numel() + 1, dtype=theta.dtype)).sum()


def per_example(theta):
    return torch.stack([theta.square().sum(), (theta - 1).square().sum(), theta.sum().square()])


def losses():
    t = torch.arange(8, dtype=torch.float64)[:, None]
    return torch.cat([torch.sin(t), -torch.sin(t), torch.cos(t) + 2, 0.1 * t], dim=1)


FN_BADS = ["f", None, _boom, Fresh(lambda: (lambda th: th), "vector-valued f"),
           Fresh(lambda: (lambda th: th.sum() * math.nan), "nan f")]


@FUZZ
@given(st.data())
def test_gd_quadratic(data):
    args = mutated(data, {
        "H": Param(H, tensor_bads(H, [(2,), (2, 3)])),
        "x0": Param(vec, tensor_bads(vec, [(3,), (2, 2)])),
        "lr": Param(lambda: 0.1, [*positive_bads(zero_ok=True), 1e300]),
        "steps": Param(lambda: 5, count_bads(0)),
        "x_star": Param(lambda: None, tensor_bads(vec, [(3,)], optional=True)),
    })

    def check(out):
        assert out.shape == (6, 2)
        all_finite(out)

    expect(dynamics.gd_quadratic, args, check)


@FUZZ
@given(st.data())
def test_stability_threshold(data):
    args = mutated(data, {"H": Param(H, tensor_bads(H, [(2,), (2, 3), (0, 0)]))})

    def check(out):
        assert isinstance(out, float) and out > 0
        lam = float(torch.linalg.eigvalsh(args["H"].value)[-1])
        assert out == math.inf if lam <= 0 else abs(out - 2 / lam) < 1e-9 * out

    expect(dynamics.stability_threshold, args, check)


@QUICK
@given(st.data())
def test_sharpness(data):
    args = mutated(data, {
        "f": Param(lambda: quad, FN_BADS),
        "theta": Param(lambda: torch.ones(3, dtype=torch.float64), tensor_bads(lambda: torch.ones(3))),
        "v0": Param(lambda: None, tensor_bads(lambda: torch.ones(3), [(2,)], optional=True)),
        "iters": Param(lambda: 5, count_bads(1)),
        "generator": Param(lambda: None, ["seed", 0]),
    })

    def check(out):
        lam, v = out
        all_finite(out)
        assert abs(float(lam) - 3.0) < 1e-6 and v.shape == (3,)

    expect(dynamics.sharpness, args, check)


@QUICK
@given(st.data())
def test_gd_with_sharpness(data):
    args = mutated(data, {
        "f": Param(lambda: quad, FN_BADS),
        "theta0": Param(lambda: torch.ones(3, dtype=torch.float64), tensor_bads(lambda: torch.ones(3))),
        "lr": Param(lambda: 0.1, positive_bads()),
        "steps": Param(lambda: 4, count_bads(0)),
        "every": Param(lambda: 2, count_bads(1)),
        "iters": Param(lambda: 3, count_bads(1)),
        "per_example": Param(lambda: per_example, ["g", _boom, Fresh(lambda: (lambda th: th.sum()), "scalar")]),
        "generator": Param(lambda: None, ["seed"]),
    })

    def check(run):
        assert isinstance(run, dynamics.GDRun)
        all_finite(run)
        assert run.loss.shape == (5,) and run.per_example.shape == (5, 3)

    expect(dynamics.gd_with_sharpness, args, check)


@FUZZ
@given(st.data())
def test_loss_oscillation(data):
    args = mutated(data, {"per_example_losses": Param(losses, tensor_bads(losses, [(8,), (1, 4)]))})

    def check(out):
        assert out.shape == (4,)
        all_finite(out)
        assert torch.allclose(out, (args["per_example_losses"].value.diff(dim=0)).abs().mean(0))

    expect(dynamics.loss_oscillation, args, check)


@FUZZ
@given(st.data())
def test_opposing_groups(data):
    args = mutated(data, {
        "per_example_losses": Param(losses, tensor_bads(losses, [(8,), (2, 4)])),
        "k": Param(lambda: 3, [1, 5, 2.0, None, "3"]),
    })

    def check(out):
        a, b, rho = out
        assert a.dtype == b.dtype == torch.int64 and len(a) + len(b) == args["k"].value
        assert len(set(a.tolist()) & set(b.tolist())) == 0
        assert -1.0 <= rho <= 1.0 or math.isnan(rho) is False

    expect(dynamics.opposing_groups, args, check)


def groups():
    return torch.tensor([0, 1, 0, 2])


@FUZZ
@given(st.data())
def test_group_loss_correlation(data):
    args = mutated(data, {
        "per_example_losses": Param(losses, tensor_bads(losses, [(8,), (2, 4)])),
        "groups": Param(groups, [Fresh(lambda: groups().double(), "float labels"), Fresh(lambda: groups()[:3], "short"),
                                 None, [0, 1, 0, 2]]),
    })

    def check(out):
        labels, corr = out
        assert labels.tolist() == [0, 1, 2] and corr.shape == (3, 3)
        all_finite(corr)

    expect(dynamics.group_loss_correlation, args, check)


def test_gd_run_record():
    run = dynamics.gd_with_sharpness(quad, torch.ones(3, dtype=torch.float64), 0.1, 2, every=1, iters=3)
    assert isinstance(run, dynamics.GDRun) and run.per_example is None


FUZZED = {dynamics: {"gd_quadratic": test_gd_quadratic, "stability_threshold": test_stability_threshold,
                     "sharpness": test_sharpness, "GDRun": test_gd_run_record,
                     "gd_with_sharpness": test_gd_with_sharpness, "loss_oscillation": test_loss_oscillation,
                     "opposing_groups": test_opposing_groups,
                     "group_loss_correlation": test_group_loss_correlation}}
