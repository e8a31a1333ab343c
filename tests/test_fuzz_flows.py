"""Bad input, Part VI (chapter 25): every public name of ``lib.flows`` fuzzed with hypothesis.

Table-driven (``tests/fuzzing.py``: :class:`Param`, :func:`mutated`): each call has valid
arguments, drawn with varied shapes, dtypes and values, with none, one or two of them
replaced by a value that must be refused (NaN/inf entries, a wrong dtype or shape, not a
tensor, a bad number or choice, a velocity that returns garbage or raises), and
:func:`expect` holds it to the rule of ``tests/test_fuzz.py``: a finite, well-formed result
(checked against a closed form where one is cheap), or a ``ValueError``/``TypeError``
naming the argument; an exception raised by the user's velocity reaches the caller
unchanged. :data:`FUZZED` maps each public name to its test (``tests/test_fuzz_coverage.py``
checks it is complete). Suggested home: ``tests/test_fuzz_flows.py``.
Run alone: ``cd /work/main && .venv/bin/python -m pytest /tmp/author/fuzz_25.py -q -p no:cacheprovider``.
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from lib import flows
from tests.fuzzing import (OK, FUZZ, QUICK, Fresh, Param, _boom, all_finite, count_bads, expect,
                           mutated, positive_bads, small, tensor_bads)

RING = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, 0.0], [0.0, -4.0]], dtype=torch.float64)
CHOICE_BADS = {"interpolant": ["cubic", None, 1], "method": ["rk4", None, "Euler"],
               "coupling": ["ot", None, True]}
UNIT_BADS = [1.5, -0.1, math.nan, math.inf, None, "0.5", [0.5], True]   # a time in [0, 1]


def _good_v(x, t):
    return torch.sin(x) + t[:, None].to(x.dtype)


def _const_v(x, t):
    return torch.ones_like(x)


V_BADS = ["v", None, _boom,
          Fresh(lambda: (lambda x, t: x[:, :1].expand(x.shape[0], x.shape[1] + 1)), "wrong-shape v"),  # any d
          Fresh(lambda: (lambda x, t: x * math.nan), "nan v"),
          Fresh(lambda: (lambda x, t: "velocity"), "str v"),
          Fresh(lambda: (lambda x, t: x.half()), "float16 v")]


def _points(data, name="x", d=None):
    """A valid batch of points (B, d), float32 or float64, small or large entries."""
    b = data.draw(st.integers(1, 5), label=f"{name} rows")
    d = data.draw(st.integers(1, 3), label=f"{name} dims") if d is None else d
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), label=f"{name} dtype")
    scale = data.draw(st.sampled_from([1.0, 1.0, 1e-20, 1e4]), label=f"{name} scale")
    seed = data.draw(st.integers(0, 2**16), label=f"{name} seed")
    x = scale * torch.randn(b, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x.to(dtype)


def _copy(t):
    return lambda: t.clone()


def _point_bads(x, extra_shapes=()):
    b, d = x.shape
    same_dtype = [Fresh(lambda s=s: torch.zeros(s, dtype=x.dtype), f"{x.dtype} zeros{s}") for s in extra_shapes]
    return tensor_bads(_copy(x), [(b, d, 1), (b,), (0, d), (b, 0), *extra_shapes]) + same_dtype + \
        [Fresh(lambda: x.half(), "float16 points")]


def _check_like(x, finite_when_small=True):
    def check(out):
        assert isinstance(out, torch.Tensor) and out.shape == x.shape and out.dtype == x.dtype
        if finite_when_small and small(x):
            all_finite(out)
    return check


# ---------------------------------------------------------------- interpolants and the loss


@FUZZ
@given(st.data())
def test_interpolate(data):
    x0 = _points(data, "x0")
    x1 = _points(data, "x1", d=x0.shape[1])[:1].expand(x0.shape).to(x0.dtype).clone()
    n = x0.shape[0]
    t = data.draw(st.sampled_from(["number", "vector", "scalar tensor"]))
    good_t = {"number": lambda: 0.3, "vector": lambda: torch.linspace(0, 1, n, dtype=x0.dtype),
              "scalar tensor": lambda: torch.tensor(1.0)}[t]
    args = mutated(data, {
        "x0": Param(_copy(x0), _point_bads(x0)),
        "x1": Param(_copy(x1), _point_bads(x1, [(n + 1, x0.shape[1])]) + [Fresh(lambda: x1.to(
            torch.float32 if x1.dtype == torch.float64 else torch.float64), "other dtype")],
            words=("x1", "share dtype", "same shape")),
        "t": Param(good_t, UNIT_BADS + [torch.zeros(n + 1), torch.zeros(n, dtype=torch.int64),
                                        torch.full((n,), math.nan), torch.full((n,), 2.0)]),
        "interpolant": Param(lambda: data.draw(st.sampled_from(["linear", "trig"])), CHOICE_BADS["interpolant"]),
    })

    def check(out):
        for o in out:
            _check_like(args["x0"].value)(o)
        if args["interpolant"].value == "linear" and small(x0) and small(x1):
            torch.testing.assert_close(out[1], args["x1"].value - args["x0"].value)

    expect(flows.interpolate, args, check)


@FUZZ
@given(st.data())
def test_flow_matching_loss(data):
    x0 = _points(data, "x0", d=2)
    x1 = _points(data, "x1", d=2)[:1].expand(x0.shape).to(x0.dtype).clone()
    n = x0.shape[0]
    v = data.draw(st.sampled_from([_good_v, _const_v, flows.MixtureVelocity(RING, 0.5)]), label="v")
    args = mutated(data, {
        "v": Param(lambda: v, V_BADS, words=("v", "callable")),
        "x0": Param(_copy(x0), _point_bads(x0)),
        "x1": Param(_copy(x1), _point_bads(x1), words=("x1", "same shape")),
        "t": Param(lambda: None, [0.5, torch.full((n,), 1.5), torch.zeros(n + 2), torch.zeros(n, dtype=torch.int64)]),
        "interpolant": Param(lambda: "linear", CHOICE_BADS["interpolant"]),
        "generator": Param(lambda: torch.Generator().manual_seed(0), ["seed", 0]),
    })
    if isinstance(args["v"].value, flows.MixtureVelocity) and args["x0"].value is not None:
        args["x0"].words += ("x",)  # the closed-form field refuses points it cannot take, by its name x

    def check(loss):
        assert isinstance(loss, torch.Tensor) and loss.shape == ()
        all_finite(loss)
        assert float(loss) >= 0
        if v is _const_v and args["interpolant"].value == "linear" and torch.equal(args["x1"].value,
                                                                                 args["x0"].value + 1):
            assert float(loss) < 1e-12

    expect(flows.flow_matching_loss, args, check)


@FUZZ
@given(st.data())
def test_mixture_velocity(data):
    k, d = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    means = 3 * torch.randn(k, d, generator=torch.Generator().manual_seed(k * 10 + d), dtype=torch.float64)
    args = mutated(data, {
        "means": Param(_copy(means), tensor_bads(_copy(means), [(k,), (0, d), (k, 0)])),
        "std": Param(lambda: data.draw(st.sampled_from([0.3, 1.0, 2.5])), positive_bads(), maybe=[1e-30, 1e30]),
        "weights": Param(lambda: data.draw(st.sampled_from([None, torch.arange(1.0, k + 1)])),
                         [torch.zeros(k), -torch.ones(k), torch.ones(k + 1), [1.0] * k, torch.full((k,), math.nan),
                          torch.ones(k, dtype=torch.int64)]),
        "interpolant": Param(lambda: data.draw(st.sampled_from(["linear", "trig"])), CHOICE_BADS["interpolant"]),
    })
    v = expect(flows.MixtureVelocity, args)
    if v is None:
        return
    x = _points(data, "x", d=d)
    call = mutated(data, {
        "x": Param(_copy(x), _point_bads(x, [(2, d + 1)])),
        "t": Param(lambda: data.draw(st.sampled_from([0.0, 0.5, 1.0, torch.tensor(0.2)])),
                   UNIT_BADS + [torch.zeros(x.shape[0] + 1)]),
    })
    expect(v.__call__, call, _check_like(x, finite_when_small=args["std"].value >= 0.3))


# ---------------------------------------------------------------- the network and its training


@QUICK
@given(st.data())
def test_velocity_mlp(data):
    args = mutated(data, {
        "dim": Param(lambda: data.draw(st.integers(1, 3)), count_bads(1) + [2**40]),
        "width": Param(lambda: data.draw(st.sampled_from([4, 16])), count_bads(1) + [2**40]),
        "depth": Param(lambda: data.draw(st.sampled_from([1, 2])), count_bads(1) + [1000]),
    })
    net = expect(flows.VelocityMLP, args)
    if net is None:
        return
    x = _points(data, "x", d=net.dim).float()
    n = x.shape[0]
    call = mutated(data, {
        "x": Param(_copy(x), _point_bads(x, [(n, net.dim + 1)]) + [Fresh(lambda: x.double(), "float64 x")]),
        "t": Param(lambda: data.draw(st.sampled_from([0.5, torch.full((n,), 0.2), torch.tensor(1.0)])),
                   [torch.zeros(n + 1), torch.zeros(n, dtype=torch.int64), "t", None, math.nan]),
    }, max_bad=1)

    def check(out):
        assert out.shape == x.shape and out.dtype == torch.float32
        all_finite(out)

    expect(net.forward, call, check)


class _WrongShape(torch.nn.Module):
    """A module whose output has the wrong shape: training and reflow must name the model."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x, t):
        return x[:, :1] * self.w


def _mlp(dtype):
    return lambda: flows.VelocityMLP(dim=2, width=8, depth=1).to(dtype)


def _model_bads(dtype):
    other = torch.float64 if dtype == torch.float32 else torch.float32
    return ["model", None, Fresh(lambda: _good_v, "plain function"), Fresh(_WrongShape, "wrong-shape module"),
            Fresh(_mlp(other), "other dtype")]


@QUICK
@given(st.data())
def test_train_rectified_flow(data):
    x1 = _points(data, "x1", d=2)
    x1 = torch.cat([x1, -x1])  # at least two rows
    n = x1.shape[0]
    paired = data.draw(st.booleans(), label="paired")
    x0_good = torch.randn(n if paired else 3, 2, generator=torch.Generator().manual_seed(n), dtype=x1.dtype)
    args = mutated(data, {
        "model": Param(_mlp(x1.dtype), _model_bads(x1.dtype), words=("model", "dtype")),
        "x0": Param(lambda: x0_good.clone() if paired or data.draw(st.booleans(), label="x0 none") else None,
                    tensor_bads(_copy(x0_good), [(n, 3), (n,)], optional=True) + ([None] if paired else [])
                    + ([x0_good[:1].clone()] if paired else []), words=("x0", "coupling")),
        "x1": Param(_copy(x1), tensor_bads(_copy(x1), [(n, 3), (n,), (0, 2)]), words=("x1", "model's dtype")),
        "coupling": Param(lambda: "paired" if paired else "independent",
                          CHOICE_BADS["coupling"] + ([] if paired else ["paired"])),
        "interpolant": Param(lambda: "linear", CHOICE_BADS["interpolant"]),
        "steps": Param(lambda: data.draw(st.integers(1, 3)), count_bads(1) + [10**7]),
        "batch_size": Param(lambda: data.draw(st.sampled_from([1, 4])), count_bads(1)),
        "lr": Param(lambda: 1e-3, positive_bads()),
        "generator": Param(lambda: torch.Generator().manual_seed(0), ["seed", 0]),
    })
    if args["x1"].value is not None and isinstance(args["x1"].value, torch.Tensor) \
            and args["x1"].value.shape[-1:] != (2,):
        args["x1"].words += ("x0", "x")  # points the 2-D model cannot take are refused by shape, with x0 or x

    def check(out):
        net, losses = out
        assert net is args["model"].value and len(losses) == args["steps"].value
        assert all(math.isfinite(v) for v in losses)

    expect(flows.train_rectified_flow, args, check)


@QUICK
@given(st.data())
def test_reflow(data):
    x0 = _points(data, "x0", d=2)
    args = mutated(data, {
        "model": Param(_mlp(x0.dtype), _model_bads(x0.dtype), words=("model", "dtype")),
        "x0": Param(_copy(x0), tensor_bads(_copy(x0), [(2, 3), (0, 2)]), words=("x0", "model's dtype")),
        "ode_steps": Param(lambda: data.draw(st.integers(1, 4)), count_bads(1)),
        "method": Param(lambda: data.draw(st.sampled_from(["euler", "heun"])), CHOICE_BADS["method"]),
        "steps": Param(lambda: data.draw(st.integers(1, 2)), count_bads(1)),
        "batch_size": Param(lambda: 4, count_bads(1)),
        "lr": Param(lambda: 1e-3, positive_bads()),
        "interpolant": Param(lambda: "trig", CHOICE_BADS["interpolant"]),
        "generator": Param(lambda: None, ["seed", 0]),
    })
    if isinstance(args["x0"].value, torch.Tensor) and args["x0"].value.shape[-1:] == (3,):
        args["x0"].words += ("x",)

    def check(out):
        net, x1, losses = out
        assert isinstance(net, torch.nn.Module) and net is not args["model"].value
        _check_like(x0)(x1)
        assert all(math.isfinite(v) for v in losses)

    expect(flows.reflow, args, check)


# ---------------------------------------------------------------- sampling, straightness, cost


@FUZZ
@given(st.data())
def test_sample(data):
    x0 = _points(data, "x0")
    v = data.draw(st.sampled_from([_good_v, _const_v]), label="v")
    t_start, t_end = data.draw(st.sampled_from([(0.0, 1.0), (1.0, 0.0), (0.3, 0.7), (0.5, 0.0)]), label="times")
    args = mutated(data, {
        "v": Param(lambda: v, V_BADS, words=("v", "callable")),
        "x0": Param(_copy(x0), _point_bads(x0)),
        "steps": Param(lambda: data.draw(st.integers(1, 5)), count_bads(1) + [10**7]),
        "method": Param(lambda: data.draw(st.sampled_from(["euler", "heun"])), CHOICE_BADS["method"]),
        "t_start": Param(lambda: t_start, UNIT_BADS + [t_end], words=("t_start",)),
        "t_end": Param(lambda: t_end, UNIT_BADS + [t_start], words=("t_end",)),
        "return_trajectory": Param(lambda: data.draw(st.booleans()), [1, None, "yes"]),
    })
    a, b = args["t_start"].value, args["t_end"].value
    if all(type(u) is float and 0 <= u <= 1 for u in (a, b)) and a != b:
        args["t_start"].verdict = args["t_end"].verdict = OK  # each set to the other's value: a legal swap

    def check(out):
        traj = args["return_trajectory"].value
        x, path = out if traj else (out, None)
        _check_like(x0)(x)
        if path is not None:
            assert path.shape == (args["steps"].value + 1, *x0.shape) and torch.equal(path[0], x0)
        if v is _const_v and args["t_start"].value == t_start and args["t_end"].value == t_end and small(x0):
            torch.testing.assert_close(x, x0 + (t_end - t_start))  # one step or many: exact for a straight flow

    expect(flows.sample, args, check)


@FUZZ
@given(st.data())
def test_straightness(data):
    x0 = _points(data, "x0")
    v = data.draw(st.sampled_from([_good_v, _const_v]), label="v")
    args = mutated(data, {
        "v": Param(lambda: v, V_BADS, words=("v", "callable")),
        "x0": Param(_copy(x0), _point_bads(x0)),
        "steps": Param(lambda: data.draw(st.integers(1, 6)), count_bads(1)),
        "method": Param(lambda: data.draw(st.sampled_from(["euler", "heun"])), CHOICE_BADS["method"]),
    })

    def check(s):
        assert isinstance(s, torch.Tensor) and s.shape == ()
        all_finite(s)
        assert float(s) >= 0
        if v is _const_v:
            assert float(s) < 1e-10

    expect(flows.straightness, args, check)


@FUZZ
@given(st.data())
def test_transport_cost(data):
    x0 = _points(data, "x0")
    x1 = _points(data, "x1", d=x0.shape[1])[:1].expand(x0.shape).to(x0.dtype).clone()
    args = mutated(data, {
        "x0": Param(_copy(x0), _point_bads(x0)),
        "x1": Param(_copy(x1), _point_bads(x1, [(x0.shape[0] + 1, x0.shape[1])]), words=("x1", "same shape")),
    })

    def check(c):
        assert isinstance(c, torch.Tensor) and c.shape == () and float(c) >= 0
        if small(x0) and small(x1):
            all_finite(c)
            torch.testing.assert_close(c, ((x1 - x0) ** 2).sum(1).mean())

    expect(flows.transport_cost, args, check)


FUZZED = {
    flows: {"interpolate": test_interpolate, "flow_matching_loss": test_flow_matching_loss,
            "MixtureVelocity": test_mixture_velocity, "VelocityMLP": test_velocity_mlp,
            "train_rectified_flow": test_train_rectified_flow, "sample": test_sample, "reflow": test_reflow,
            "straightness": test_straightness, "transport_cost": test_transport_cost},
}
