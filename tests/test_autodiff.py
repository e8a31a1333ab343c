"""Tests of lib/autodiff.py, the scalar engine ``Value``, against closed forms and
torch.autograd (float64), with random programs from hypothesis. The tensor engine has its
own tests (tests/test_tensor.py); here only that ``lib.autodiff`` still exports it."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import lib.tensor
from lib import autodiff as ad
from lib.autodiff import Value
F64 = torch.float64


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-10, abs_tol=1e-10)


def _torch_grads(out, leaves):
    grads = torch.autograd.grad(out, leaves, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]


# ================================================================== Value

UNARY = {  # name: (Value op, torch op, closed-form derivative)
    "neg": (lambda v: -v, lambda t: -t, lambda x: -1.0),
    "relu": (lambda v: v.relu(), torch.relu, lambda x: float(x > 0)),
    "tanh": (lambda v: v.tanh(), torch.tanh, lambda x: 1 - math.tanh(x) ** 2),
    "exp": (lambda v: v.exp(), torch.exp, math.exp),
    "log": (lambda v: v.log(), torch.log, lambda x: 1 / x),
    "pow3": (lambda v: v**3, lambda t: t**3, lambda x: 3 * x**2),
    "pow-1.5": (lambda v: v**-1.5, lambda t: t**-1.5, lambda x: -1.5 * x**-2.5),
    "pow0.5": (lambda v: v**0.5, lambda t: t**0.5, lambda x: 0.5 * x**-0.5),
}


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("x", [0.3, 1.7, -0.8])
def test_value_unary_ops_match_torch_and_closed_forms(name, x):
    op, top, deriv = UNARY[name]
    if (name in ("log", "pow-1.5", "pow0.5")) and x <= 0:
        x = -x
    v = Value(x)
    out = op(v)
    out.backward()
    t = torch.tensor(x, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(top(t), t)
    assert _close(out.data, top(t).item()) and _close(v.grad, g.item())
    assert _close(v.grad, deriv(x))
    assert out.grad == 1.0


BINARY = {  # name: (op, d/da, d/db)
    "+": (lambda a, b: a + b, lambda a, b: 1.0, lambda a, b: 1.0),
    "-": (lambda a, b: a - b, lambda a, b: 1.0, lambda a, b: -1.0),
    "*": (lambda a, b: a * b, lambda a, b: b, lambda a, b: a),
    "/": (lambda a, b: a / b, lambda a, b: 1 / b, lambda a, b: -a / b**2),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_value_binary_ops_with_numbers_on_either_side(name):
    op, da, db = BINARY[name]
    a, b = 1.3, -0.7
    va, vb = Value(a), Value(b)
    out = op(va, vb)
    out.backward()
    assert _close(out.data, op(a, b)) and _close(va.grad, da(a, b)) and _close(vb.grad, db(a, b))
    for left, right, wrt, ref in [(va, b, va, da), (a, vb, vb, db)]:  # number on one side
        out = op(left, right)
        out.backward()
        assert isinstance(out, Value) and _close(out.data, op(a, b)) and _close(wrt.grad, ref(a, b))
    ta, tb = (torch.tensor(z, dtype=F64, requires_grad=True) for z in (a, b))
    ga, gb = torch.autograd.grad(op(ta, tb), (ta, tb))
    out = op(va, vb)
    out.backward()
    assert _close(va.grad, ga.item()) and _close(vb.grad, gb.item())


def test_value_accepts_numpy_numbers_and_repr():
    v = Value(np.float32(1.5)) * np.int64(2) + np.float64(0.5)
    assert v.data == 3.5 and isinstance(v.data, float)
    assert repr(Value(2.0)) == "Value(data=2.0, grad=0.0)"


def test_value_backward_twice_gives_the_same_gradients():
    a, b = Value(0.5), Value(-1.5)
    loss = (a * b + a.tanh()).exp() / (b * b + 1)
    loss.backward()
    first = (a.grad, b.grad, loss.grad)
    loss.backward()
    assert (a.grad, b.grad, loss.grad) == first
    # accumulating over two losses: add them
    l1, l2 = a * b, a * a
    (l1 + l2).backward()
    assert a.grad == pytest.approx(b.data + 2 * a.data)


def test_value_node_used_many_times():
    x = Value(1.5)
    y = x * x + x * x * x  # dy/dx = 2x + 3x^2
    y.backward()
    assert _close(x.grad, 2 * 1.5 + 3 * 1.5**2)
    a, b = Value(2.0), Value(-3.0)
    s = a * b
    total = s
    for _ in range(49):
        total = total + s  # s is shared by 50 uses
    total.backward()
    assert _close(total.data, 50 * -6.0)
    assert _close(s.grad, 50.0) and _close(a.grad, 50 * -3.0) and _close(b.grad, 50 * 2.0)
    # each node visited once: a, b, s and the 49 sums
    assert len(ad._topological_order(total)) == 3 + 49


def test_value_long_chain_has_no_recursion_limit():
    x = Value(0.5)
    y = x
    for _ in range(10_000):
        y = y * 1.0 + 0.0  # 20_000 operations deep
    y = y.tanh()
    y.backward()
    assert _close(x.grad, 1 - math.tanh(0.5) ** 2)


def test_value_relu_at_zero_uses_subgradient_zero_like_torch():
    x = Value(0.0)
    x.relu().backward()
    t = torch.tensor(0.0, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(torch.relu(t), t)
    assert x.grad == 0.0 == g.item()


def test_value_pow_edges_match_torch():
    for base, p in [(0.0, 0), (2.0, 0), (0.0, 0.5), (0.0, 2), (-2.0, 3), (-2.0, 2.0), (0.0, 1)]:
        v = Value(base)
        out = v**p
        out.backward()
        t = torch.tensor(base, dtype=F64, requires_grad=True)
        (g,) = torch.autograd.grad(t**p, t)
        assert out.data == (t**p).item() and v.grad == g.item(), (base, p)


def test_value_errors():
    x = Value(1.0)
    with pytest.raises(TypeError, match="got str"):
        x + "a"
    with pytest.raises(TypeError, match="got str"):
        "a" * x
    with pytest.raises(TypeError, match="got list"):
        x - [1.0]
    with pytest.raises(TypeError, match="got list"):
        [1.0] / x
    with pytest.raises(TypeError, match="got bool"):
        x * True
    with pytest.raises(TypeError, match="Value data must be a real number, got str"):
        Value("1")
    with pytest.raises(ValueError, match=r"log needs a positive value, got -2.0"):
        Value(-2.0).log()
    with pytest.raises(ValueError, match=r"got 0.0"):
        Value(0.0).log()
    with pytest.raises(TypeError, match=r"Value \*\* Value is not supported"):
        x ** Value(2.0)
    with pytest.raises(TypeError, match="exponent, got str"):
        x ** "2"
    with pytest.raises(ValueError, match=r"negative base \(-8.0\)"):
        Value(-8.0) ** (1 / 3)
    with pytest.raises(ZeroDivisionError):
        x / 0
    with pytest.raises(ZeroDivisionError):
        Value(0.0) ** -1
    with pytest.raises(OverflowError):
        Value(1000.0).exp()


# ------------------------------------------------------------------ random scalar programs

SCALAR_OPS = {
    "add": lambda a, b, c: a + b,
    "sub": lambda a, b, c: a - b,
    "mul": lambda a, b, c: a * b,
    "div": lambda a, b, c: a / (b * b + 1),
    "cadd": lambda a, b, c: c + a,
    "addc": lambda a, b, c: a + c,
    "csub": lambda a, b, c: c - a,
    "subc": lambda a, b, c: a - c,
    "cmul": lambda a, b, c: c * a,
    "mulc": lambda a, b, c: a * c,
    "cdiv": lambda a, b, c: c / (a * a + 1),
    "divc": lambda a, b, c: a / (c * c + 0.5),
    "neg": lambda a, b, c: -a,
    "powi": lambda a, b, c: a ** (int(abs(c) * 10) % 4),
    "powf": lambda a, b, c: (a * a + 1) ** c,
    "tanh": lambda a, b, c: a.tanh(),
    "relu": lambda a, b, c: a.relu(),
    "exp": lambda a, b, c: a.exp(),
    "log": lambda a, b, c: (a * a + 1).log(),
    "logexp": lambda a, b, c: a.exp().log(),
}


@st.composite
def scalar_programs(draw):
    n_in = draw(st.integers(1, 3))
    inputs = draw(st.lists(st.floats(-2, 2), min_size=n_in, max_size=n_in))
    steps = []
    for k in range(draw(st.integers(1, 10))):
        pool = n_in + k
        steps.append((draw(st.sampled_from(sorted(SCALAR_OPS))), draw(st.integers(0, pool - 1)),
                      draw(st.integers(0, pool - 1)), draw(st.floats(-3, 3))))
    return inputs, steps


def _run(steps, nodes):
    nodes = list(nodes)
    for op, i, j, c in steps:
        nodes.append(SCALAR_OPS[op](nodes[i], nodes[j], c))
    return nodes


@settings(max_examples=500, deadline=None)
@given(scalar_programs())
def test_random_scalar_programs_match_torch(program):
    inputs, steps = program
    leaves = [torch.tensor(x, dtype=F64, requires_grad=True) for x in inputs]
    ref = _run(steps, leaves)
    assume(all(torch.isfinite(t) and abs(t.item()) < 1e6 for t in ref))
    ref_grads = _torch_grads(sum(ref), leaves)
    values = [Value(x) for x in inputs]
    nodes = _run(steps, values)
    out = sum(nodes)
    out.backward()
    for n, t in zip(nodes, ref):
        assert _close(n.data, t.item())
    for v, g in zip(values, ref_grads):
        assert _close(v.grad, g.item()), (v.grad, g.item())


# ================================================================== found by tests/test_fuzz.py


def test_value_refuses_non_finite_data_and_overflow():
    with pytest.raises(ValueError, match="Value data must be finite, got nan"):
        Value(float("nan"))
    with pytest.raises(ValueError, match="Value data must be finite, got inf"):
        Value(np.float64("inf"))
    with pytest.raises(ValueError, match="must fit a float64"):
        Value(10**400)
    with pytest.raises(ValueError, match=r"Value \*: the result overflows float64"):
        Value(1e200) * 1e200
    with pytest.raises(OverflowError):  # also a ValueError, as every bad input in lib
        Value(1e200) ** 2
    with pytest.raises(ValueError, match=r"exp\(710.0\) overflows float64"):
        Value(710.0).exp()
    with pytest.raises(ValueError, match="Value \\*\\* exponent must be finite, got nan"):
        Value(2.0) ** float("nan")
    x = Value(0.0)
    y = x**0.5 * 0.0  # an infinite slope times a zero one
    with pytest.raises(ValueError, match="gradient of a .* node is not finite"):
        y.backward()
    assert (Value(1.7) ** np.float32(1.0)).data == 1.7  # NumPy exponents do not round to float32


# ================================================================== the tensor engine, re-exported


def test_autodiff_exports_the_tensor_engine():
    import lib.autodiff as fresh
    for name in ("Tensor", "cross_entropy", "log_softmax", "MLP", "sgd_step"):
        assert getattr(fresh, name) is getattr(lib.tensor, name) and name in fresh.__all__
    with pytest.raises(AttributeError, match="no attribute 'Tensr'"):
        fresh.Tensr
