"""Tests of lib/tensor.py, the vectorised engine ``Tensor``, against torch.autograd
(float64): every operation, random programs from hypothesis, a digits training run and a
speed bound (one MLP step at most 3x torch's)."""

import math
import statistics
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lib import tensor as ad
from lib.autodiff import Value
from lib.tensor import MLP, Tensor, cross_entropy, log_softmax, sgd_step
F64 = torch.float64
TOL = dict(rtol=1e-10, atol=1e-10)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-10, abs_tol=1e-10)


def _torch_grads(out, leaves):
    grads = torch.autograd.grad(out, leaves, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]





def _pair(shape, rng, positive=False):
    x = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    return Tensor(x), torch.tensor(x, dtype=F64, requires_grad=True)


TENSOR_OPS = {  # name: (shapes of the inputs, function used for both engines)
    "add": ([(3, 4), (4,)], lambda a, b: a + b),
    "sub": ([(3, 1), (1, 4)], lambda a, b: a - b),
    "mul": ([(2, 3, 4), (3, 1)], lambda a, b: a * b),
    "div": ([(3, 4), ()], lambda a, b: a / (b * b + 1)),
    "rdiv": ([(3, 4)], lambda a: 2.0 / (a * a + 1)),
    "rsub": ([(4,)], lambda a: 3 - a),
    "neg": ([(3, 4)], lambda a: -a),
    "pow": ([(3, 4)], lambda a: a**3 + (a * a + 1) ** -0.5),
    "matmul": ([(3, 4), (4, 5)], lambda a, b: a @ b),
    "vecmat": ([(4,), (4, 5)], lambda a, b: a @ b),
    "matvec": ([(3, 4), (4,)], lambda a, b: a @ b),
    "dot": ([(4,), (4,)], lambda a, b: a @ b),
    "batched": ([(2, 3, 4), (4, 5)], lambda a, b: a @ b),
    "batched2": ([(2, 1, 3, 4), (5, 4, 2)], lambda a, b: a @ b),
    "exp": ([(3, 4)], lambda a: a.exp()),
    "log": ([(3, 4)], lambda a: (a * a + 1).log()),
    "relu": ([(3, 4)], lambda a: a.relu()),
    "tanh": ([(3, 4)], lambda a: a.tanh()),
    "reshape": ([(3, 4)], lambda a: a.reshape(2, 6) * 1.5),
    "reshape_tuple": ([(3, 4)], lambda a: a.reshape((4, -1))),
    "T": ([(3, 4)], lambda a: a.T @ a),
    "slice": ([(5, 4)], lambda a: a[1:4, ::2]),
    "fancy": ([(5, 4)], lambda a: a[[0, 2, 2, 4, 0]]),
    "fancy_cols": ([(3, 4)], lambda a: a[:, [3, 3, 1]]),
    "element": ([(3, 4)], lambda a: a[1, 2] * a[1, 2]),
}


@pytest.mark.parametrize("name", list(TENSOR_OPS))
def test_tensor_ops_match_torch(name):
    shapes, f = TENSOR_OPS[name]
    rng = np.random.default_rng(0)
    pairs = [_pair(s, rng) for s in shapes]
    ours = f(*(p[0] for p in pairs))
    ref = f(*(p[1] for p in pairs))
    assert ours.shape == tuple(ref.shape) and ours.data.dtype == np.float64
    np.testing.assert_allclose(ours.data, ref.detach().numpy(), **TOL)
    cot = rng.standard_normal(ours.shape)
    ours.backward(cot)
    ref_grads = torch.autograd.grad(ref, [p[1] for p in pairs], torch.tensor(cot))
    for (t, _), g in zip(pairs, ref_grads):
        assert t.grad.shape == t.shape
        np.testing.assert_allclose(t.grad, g.numpy(), **TOL)


@pytest.mark.parametrize("axis,keepdims", [(None, False), (None, True), (0, False), (1, True),
                                           (-1, False), ((0, 2), False), ((0, 2), True)])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_sum_and_mean_match_torch(reduce, axis, keepdims):
    x, t = _pair((2, 3, 4), np.random.default_rng(1))
    ours = getattr(x, reduce)(axis=axis, keepdims=keepdims)
    if axis is None:
        ref = getattr(t, reduce)()
        ref = ref.reshape(1, 1, 1) if keepdims else ref
    else:
        ref = getattr(t, reduce)(dim=axis, keepdim=keepdims)
    assert ours.shape == tuple(ref.shape)
    np.testing.assert_allclose(ours.data, ref.detach().numpy(), **TOL)
    cot = np.random.default_rng(2).standard_normal(ours.shape)
    ours.backward(cot)
    (g,) = torch.autograd.grad(ref, t, torch.tensor(cot))
    np.testing.assert_allclose(x.grad, g.numpy(), **TOL)


def test_sum_over_no_axes_is_the_identity_as_in_numpy():
    x = Tensor(np.arange(6.0).reshape(2, 3))  # torch reads dim=() as "all dims"; NumPy does not
    y = x.sum(axis=())
    assert y.shape == (2, 3)
    y.backward(np.full((2, 3), 2.0))
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


@pytest.mark.parametrize("grad_shape,shape,axes", [
    ((3, 4), (3, 4), None), ((3, 4), (4,), (0,)), ((3, 4), (3, 1), (1,)), ((3, 4), (1, 4), (0,)),
    ((3, 4), (), (0, 1)), ((3, 4), (1, 1), (0, 1)), ((2, 3, 4), (3, 1), (0, 2)),
    ((2, 3, 4), (1, 3, 1), (0, 2)), ((2, 1, 4), (1,), (0, 1, 2)), ((5,), (1,), (0,)),
])
def test_unbroadcast_sums_broadcast_axes(grad_shape, shape, axes):
    g = np.random.default_rng(3).standard_normal(grad_shape)
    out = ad._unbroadcast(g, shape)
    assert out.shape == shape
    expected = g if axes is None else g.sum(axis=axes, keepdims=True).reshape(shape)
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    # the defining property: <unbroadcast(g), x> = <g, broadcast_to(x)>
    x = np.random.default_rng(4).standard_normal(shape)
    assert np.sum(out * x) == pytest.approx(np.sum(g * np.broadcast_to(x, grad_shape)), rel=1e-12)
    if axes is None:
        assert out is g  # no copy when nothing was broadcast


@pytest.mark.parametrize("grad_shape,shape", [((3, 4), (5,)), ((3, 4), (3, 4, 1)), ((3, 4), (2, 4))])
def test_unbroadcast_rejects_shapes_that_do_not_broadcast(grad_shape, shape):
    with pytest.raises(ValueError, match=rf"shape {re_shape(shape)} does not broadcast"):
        ad._unbroadcast(np.ones(grad_shape), shape)


def re_shape(shape):
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def test_indexing_repeated_indices_and_masks_accumulate_like_torch():
    x, t = _pair((4, 3), np.random.default_rng(5))
    idx = np.array([0, 2, 2, 2, 3])
    mask = np.array([[True, False, True], [False, False, False], [True, True, True], [False, True, False]])
    ours = (x[idx] * 2.0).sum() + (x[mask] ** 2).sum() + x[1:, 0].sum() + x[idx, idx % 3].sum()
    ref = (t[idx] * 2.0).sum() + (t[torch.tensor(mask)] ** 2).sum() + t[1:, 0].sum() \
        + t[idx, idx % 3].sum()
    ours.backward()
    (g,) = torch.autograd.grad(ref, t)
    assert _close(float(ours.data), ref.item())
    np.testing.assert_allclose(x.grad, g.numpy(), **TOL)
    # x[2, 2]: in row 2 (picked 3 times), in the mask, and the pair (2, 2) picked 3 times
    assert x.grad[2, 2] == pytest.approx(3 * 2.0 + 2 * x.data[2, 2] + 3, rel=1e-14)


def test_log_softmax_and_cross_entropy_match_torch():
    rng = np.random.default_rng(6)
    z, tz = _pair((5, 7), rng)
    y = rng.integers(0, 7, 5)
    cot = rng.standard_normal((5, 7))
    ours = log_softmax(z)
    ours.backward(cot)
    ref = torch.log_softmax(tz, dim=-1)
    (g,) = torch.autograd.grad(ref, tz, torch.tensor(cot))
    np.testing.assert_allclose(ours.data, ref.detach().numpy(), **TOL)
    np.testing.assert_allclose(z.grad, g.numpy(), **TOL)
    w, tw = _pair((3, 4, 2), rng)  # another axis
    log_softmax(w, axis=1).sum().backward()
    (g,) = torch.autograd.grad(torch.log_softmax(tw, dim=1).sum(), tw)
    np.testing.assert_allclose(w.grad, g.numpy(), **TOL)
    for scale in (1.0, 1000.0):  # huge logits: no overflow
        z, tz = Tensor(scale * z.data), torch.tensor(scale * z.data, requires_grad=True)
        loss = cross_entropy(z, y)
        loss.backward()
        ref = torch.nn.functional.cross_entropy(tz, torch.tensor(y))
        (g,) = torch.autograd.grad(ref, tz)
        assert loss.shape == () and np.isfinite(loss.data)
        assert _close(float(loss.data), ref.item())
        np.testing.assert_allclose(z.grad, g.numpy(), **TOL)
    big = Tensor(np.array([[1000.0, 0.0], [0.0, 1000.0]]))
    assert float(cross_entropy(big, np.array([0, 1])).data) == 0.0


def test_cross_entropy_keeps_float32_and_checks_input():
    z = Tensor(np.zeros((2, 3), np.float32))
    loss = cross_entropy(z, np.array([0, 2]))
    assert loss.data.dtype == np.float32 and float(loss.data) == pytest.approx(math.log(3))
    with pytest.raises(TypeError, match="logits must be a Tensor, got ndarray"):
        cross_entropy(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(n, k\).*got \(3,\)"):
        cross_entropy(Tensor(np.zeros(3)), np.array([0]))
    with pytest.raises(TypeError, match="integer np.ndarray.*float64"):
        cross_entropy(z, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="got list"):
        cross_entropy(z, [0, 1])
    with pytest.raises(ValueError, match=r"shape \(2,\) to match logits \(2, 3\), got \(3,\)"):
        cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\[0, 3\), got range \[0, 3\]"):
        cross_entropy(z, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"got range \[-1, 0\]"):
        cross_entropy(z, np.array([-1, 0]))
    with pytest.raises(TypeError, match="log_softmax expects a Tensor"):
        log_softmax(np.zeros(3))
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):
        log_softmax(z, axis=2)


# ------------------------------------------------------------------ backward semantics


def test_tensor_backward_twice_and_fresh_gradients():
    rng = np.random.default_rng(7)
    a, b = Tensor(rng.standard_normal((3, 4))), Tensor(rng.standard_normal(4))
    loss = ((a * b).tanh() @ b).sum() + (a / (b * b + 1)).mean()
    loss.backward()
    first = a.grad.copy(), b.grad.copy()
    loss.backward()
    np.testing.assert_array_equal(a.grad, first[0])
    np.testing.assert_array_equal(b.grad, first[1])


def test_tensor_long_chain_and_shared_node():
    x = Tensor(np.array([0.5, -0.25]))
    y = x
    for _ in range(10_000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    s = x * x
    total = s
    for _ in range(49):
        total = total + s
    total.sum().backward()
    np.testing.assert_allclose(x.grad, 50 * 2 * x.data, rtol=1e-14)


def test_requires_grad_false_gets_no_grad_and_is_skipped():
    data = Tensor(np.ones((2, 3)), requires_grad=False)
    w = Tensor(np.full((3, 2), 0.5))
    product = data @ w
    assert product.requires_grad and product._prev == (w,)  # the data branch is not kept
    product.sum().backward()
    assert data.grad is None and w.grad.shape == (3, 2)
    np.testing.assert_array_equal(w.grad, np.full((3, 2), 2.0))
    const = data * 2 + 1  # no graph at all
    assert not const.requires_grad and const._prev == ()
    with pytest.raises(ValueError, match="requires_grad=True"):
        const.sum().backward()


def test_non_scalar_backward_needs_grad_of_its_shape():
    x = Tensor(np.ones((2, 3)))
    y = x * 2
    with pytest.raises(ValueError, match=r"output of shape \(2, 3\) needs grad"):
        y.backward()
    with pytest.raises(ValueError, match=r"output's shape \(2, 3\), got \(3, 2\)"):
        y.backward(np.ones((3, 2)))
    y.backward(np.full((2, 3), 3.0))
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 6.0))
    z = (x * 1).reshape(1, 6)[:, :1]  # one element, shape (1, 1): seeded with 1
    z.backward()
    assert x.grad[0, 0] == 1.0 and x.grad.sum() == 1.0


def test_tensor_construction_dtypes_and_operands():
    assert Tensor([1, 2]).data.dtype == np.float64 and Tensor(3).shape == ()
    x = Tensor(np.ones((2, 2), np.float32))
    assert x.data.dtype == np.float32 and x.ndim == 2 and x.grad is None
    for y in (x * 2.5, 1 - x, x / 3, x ** 2, x ** np.float64(0.5), np.float64(2.0) * x, x.mean()):
        assert y.data.dtype == np.float32, y
    y = np.ones(2) @ Tensor(np.eye(2)) + np.arange(2.0)  # arrays on either side
    assert isinstance(y, Tensor) and np.array_equal(y.data, [1.0, 2.0])
    z = np.arange(2.0) - Tensor(np.ones(2))
    assert isinstance(z, Tensor) and np.array_equal(z.data, [-1.0, 0.0])
    assert Tensor(np.arange(3), requires_grad=False).data.dtype == np.int64
    assert "requires_grad=True" in repr(x) and "float32" in repr(x)
    arr = np.ones(3)
    assert Tensor(arr).data is arr  # no copy


def test_tensor_errors():
    x = Tensor(np.ones((3, 4)))
    with pytest.raises(TypeError, match="got str"):
        Tensor("abc")
    with pytest.raises(TypeError, match="got dict"):
        Tensor({})
    with pytest.raises(ValueError, match="could not convert"):
        Tensor(["a"])
    with pytest.raises(ValueError, match="inhomogeneous"):
        Tensor([[1.0], [1.0, 2.0]])
    with pytest.raises(TypeError, match="complex"):
        Tensor(np.ones(2, complex))
    with pytest.raises(TypeError, match="floating dtype, got int64"):
        Tensor(np.arange(3))
    with pytest.raises(TypeError, match="requires_grad must be a bool"):
        Tensor(np.ones(2), requires_grad=1)
    with pytest.raises(TypeError, match="got str"):
        x + "a"
    with pytest.raises(TypeError, match="got list"):
        x * [1.0]
    with pytest.raises(TypeError, match="got Value"):
        x - Value(1.0)
    with pytest.raises(ValueError, match=r"\(3,4\) \(5,\)"):
        x + Tensor(np.ones(5))
    with pytest.raises(ValueError, match=r"\(3,4\) \(2,1\)"):
        np.ones((2, 1)) * x
    with pytest.raises(ValueError, match=r"inner dimensions differ: \(3, 4\) @ \(3, 4\) \(4 != 3\)"):
        x @ x
    with pytest.raises(ValueError, match=r"\(4,\) @ \(3,\)"):
        Tensor(np.ones(4)) @ np.ones(3)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        x @ 2.0
    with pytest.raises(TypeError, match="exponent, got Tensor"):
        x ** x
    with pytest.raises(ValueError, match=r"log needs positive entries, got minimum -1.0 in shape \(2,\)"):
        Tensor(np.array([1.0, -1.0])).log()
    with pytest.raises(ValueError, match=r"cannot reshape \(3, 4\) \(12 entries\) into \(5, 2\)"):
        x.reshape(5, 2)
    with pytest.raises(ValueError, match=r"2-D tensor, got shape \(4,\)"):
        Tensor(np.ones(4)).T
    with pytest.raises(IndexError, match=r"does not fit shape \(3, 4\)"):
        x[5]
    with pytest.raises(ValueError, match="axis 2 is out of bounds for array of dimension 2"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="axis 3 is out of bounds"):
        x.mean(axis=(0, 3))
    with pytest.raises(ValueError, match=r"shape \(3,\) does not broadcast"):
        ad._unbroadcast(np.ones(4), (3,))


# ------------------------------------------------------------------ random tensor programs

LEAF_SHAPES = [(3, 4), (4,), (3, 1), (1, 4), (), (1, 1)]  # all broadcast against (3, 4)


class _NP:  # the engine under test
    const = staticmethod(lambda a: a)

    @staticmethod
    def reduce(x, how, axis, keepdims):
        return getattr(x, how)(axis=axis, keepdims=keepdims)


class _Torch:  # the reference
    const = staticmethod(torch.tensor)

    @staticmethod
    def reduce(x, how, axis, keepdims):
        return getattr(x, how)() if axis is None else getattr(x, how)(dim=axis, keepdim=keepdims)


def _fit(x, E):  # broadcast up to (3, 4) so that indexing and matmul apply
    return x + E.const(np.zeros((3, 4))) if x.shape != (3, 4) else x


def _step(op, x, y, W, E, rng):
    c = float(rng.uniform(-2, 2))
    if op in ("add", "sub", "mul"):
        return {"add": x + y, "sub": x - y, "mul": x * y}[op]
    if op == "div":
        return x / (y * y + 1)
    if op == "consts":
        arr = rng.standard_normal((1, 4))
        return E.const(arr) - x * c + (x + c) / (E.const(arr) ** 2 + 1) - c
    if op in ("exp", "tanh", "relu"):
        return getattr(x, op)()
    if op == "neg":
        return -x
    if op == "pow":
        return x ** int(rng.integers(0, 4)) + (x * x + 1) ** c
    if op == "log":
        return (x * x + 1).log()
    if op in ("sum", "mean"):
        if x.ndim == 0:
            return E.reduce(x, op, None, False)
        axis, keepdims = [(0, False), (-1, True), (None, False)][int(rng.integers(0, 3))]
        return E.reduce(x, op, axis, keepdims)
    if op == "matmul":
        x = x if tuple(x.shape[-1:]) == (4,) else _fit(x, E)
        return x @ W if rng.integers(0, 2) else x @ W.T
    if op == "matvec":
        v = _fit(x, E).sum(0)
        return W @ v
    x = _fit(x, E)
    if op == "rows":
        return x[list(rng.integers(0, 3, 3))]
    if op == "cols":
        return x[:, list(rng.integers(0, 4, 4))]
    if op == "mask":
        mask = rng.random((3, 4)) < 0.5
        return x[E.const(mask)].sum() + x[1:, ::2].sum()
    if op == "reshape":
        return x.reshape(4, 3).T
    raise AssertionError(op)


TENSOR_PROGRAM_OPS = ["add", "sub", "mul", "div", "consts", "exp", "tanh", "relu", "neg", "pow",
                      "log", "sum", "mean", "matmul", "matvec", "rows", "cols", "mask", "reshape"]


@st.composite
def tensor_programs(draw):
    shapes = draw(st.lists(st.sampled_from(LEAF_SHAPES), min_size=1, max_size=3))
    steps = []
    for k in range(draw(st.integers(1, 8))):
        pool = len(shapes) + k  # the leaves, then the results (W is used by matmul only)
        steps.append((draw(st.sampled_from(TENSOR_PROGRAM_OPS)), draw(st.integers(0, pool - 1)),
                      draw(st.integers(0, pool - 1))))
    return shapes, steps, draw(st.integers(0, 2**32 - 1))


def _run_tensors(steps, leaves, E, seed):
    rng = np.random.default_rng(seed)
    nodes, W = list(leaves[:-1]), leaves[-1]
    for op, i, j in steps:
        nodes.append(_step(op, nodes[i], nodes[j], W, E, rng))
    return nodes + [W]  # every leaf reaches the loss


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(tensor_programs())
def test_random_tensor_programs_match_torch(program):
    shapes, steps, seed = program
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1, 1, s) for s in shapes] + [rng.uniform(-1, 1, (4, 4))]
    leaves_t = [torch.tensor(a, requires_grad=True) for a in arrays]
    ref = _run_tensors(steps, leaves_t, _Torch, seed)
    assume(all(bool(torch.isfinite(t).all()) and float(t.detach().abs().max()) < 1e6 for t in ref))
    cots = [np.random.default_rng(seed + 1).standard_normal(tuple(t.shape)) for t in ref]
    ref_loss = sum((t * torch.tensor(c)).sum() for t, c in zip(ref, cots))
    ref_grads = _torch_grads(ref_loss, leaves_t)

    leaves = [Tensor(a) for a in arrays]
    nodes = _run_tensors(steps, leaves, _NP, seed)
    loss = sum((n * c).sum() for n, c in zip(nodes, cots))
    loss.backward()
    for n, t in zip(nodes, ref):
        assert n.shape == tuple(t.shape)
        np.testing.assert_allclose(n.data, t.detach().numpy(), **TOL)
    assert _close(float(loss.data), ref_loss.item())
    for x, g in zip(leaves, ref_grads):
        np.testing.assert_allclose(x.grad, g.numpy(), **TOL)


# ================================================================== MLP and training


@pytest.fixture(scope="module")
def digits():
    from lib import data

    return tuple(t.numpy() for t in data.digits(seed=0))


def test_mlp_trains_on_digits(digits):
    x_train, y_train, x_test, y_test = digits
    mlp = MLP([64, 64, 10], seed=0)
    params = mlp.parameters()
    assert [p.shape for p in params] == [(64, 64), (64,), (64, 10), (10,)]
    assert all(p.data.dtype == np.float32 for p in params)
    x = Tensor(x_train, requires_grad=False)
    losses = []
    for _ in range(300):
        loss = cross_entropy(mlp(x), y_train)
        loss.backward()
        sgd_step(params, 0.5)
        losses.append(float(loss.data))
    accuracy = (mlp(x_test).data.argmax(1) == y_test).mean()
    assert losses[-1] < 0.3 * losses[0]
    assert accuracy > 0.85, accuracy


def test_mlp_matches_torch_gradients_and_is_seeded():
    mlp = MLP([5, 7, 3], seed=3, dtype=np.float64)
    again = MLP([5, 7, 3], seed=3, dtype=np.float64)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(mlp.parameters(), again.parameters()))
    assert not np.array_equal(mlp.weights[0].data, MLP([5, 7, 3], seed=4).weights[0].data)
    bound = math.sqrt(6 / 5)
    assert np.abs(mlp.weights[0].data).max() <= bound and np.all(mlp.biases[0].data == 0)
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    ts = [torch.tensor(p.data, requires_grad=True) for p in mlp.parameters()]
    h = torch.relu(torch.tensor(x) @ ts[0] + ts[1]) @ ts[2] + ts[3]
    ref = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    loss = cross_entropy(mlp(x), y)
    loss.backward()
    assert _close(float(loss.data), ref.item())
    for p, g in zip(mlp.parameters(), torch.autograd.grad(ref, ts)):
        np.testing.assert_allclose(p.grad, g.numpy(), **TOL)
    before = [p.data.copy() for p in mlp.parameters()]
    sgd_step(mlp.parameters(), 0.1)
    for p, b in zip(mlp.parameters(), before):
        np.testing.assert_allclose(p.data, b - 0.1 * p.grad, rtol=1e-15)


def test_mlp_and_sgd_errors():
    with pytest.raises(ValueError, match="at least 2 layer widths, got \\[3\\]"):
        MLP([3])
    with pytest.raises(ValueError, match="positive ints, got \\[3, 0\\]"):
        MLP([3, 0])
    with pytest.raises(ValueError, match="positive ints"):
        MLP([3, 2.0])
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        MLP([3, 2], seed=-1)
    with pytest.raises(TypeError, match="floating dtype, got int32"):
        MLP([3, 2], dtype=np.int32)
    mlp = MLP([3, 2])
    with pytest.raises(ValueError, match=r"last dimension 3, got shape \(4, 5\)"):
        mlp(np.ones((4, 5), np.float32))
    with pytest.raises(TypeError, match="got list"):
        mlp([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match=r"params\[0\] \(shape \(3, 2\)\) has no gradient"):
        sgd_step(mlp.parameters(), 0.1)
    with pytest.raises(ValueError, match="positive finite number, got -0.1"):
        sgd_step(mlp.parameters(), -0.1)
    with pytest.raises(ValueError, match="got nan"):
        sgd_step(mlp.parameters(), float("nan"))
    with pytest.raises(TypeError, match="lr must be a number, got str"):
        sgd_step(mlp.parameters(), "0.1")
    with pytest.raises(TypeError, match=r"params\[0\] must be a Tensor, got ndarray"):
        sgd_step([np.ones(2)], 0.1)


# ================================================================== speed


def test_training_step_at_most_3x_torch(digits):
    """One step (forward, backward, SGD) of a 64-128-128-10 MLP on 256 digits in float32,
    against the same step in torch on one thread; steps alternate so load hits both."""
    x_train, y_train = digits[0][:256], digits[1][:256]
    mlp = MLP([64, 128, 128, 10], seed=0)
    params, x = mlp.parameters(), Tensor(x_train, requires_grad=False)

    def ours():
        loss = cross_entropy(mlp(x), y_train)
        loss.backward()
        sgd_step(params, 0.01)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                                  torch.nn.ReLU(), torch.nn.Linear(128, 10))
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)

        def theirs():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt), yt).backward()
            opt.step()

        times = {ours: [], theirs: []}
        for i in range(70):
            for step in (ours, theirs):
                start = time.perf_counter()
                step()
                if i >= 20:  # warm-up
                    times[step].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    ratio = statistics.median(times[ours]) / statistics.median(times[theirs])
    print(f"autodiff step / torch step = {ratio:.2f}")
    assert ratio <= 3.0, ratio


# ================================================================== found by tests/test_fuzz.py


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns of the overflow, then Tensor refuses it
def test_tensor_refuses_non_finite_data_and_results():
    with pytest.raises(ValueError, match="Tensor data must be finite, got 1 NaN entries"):
        Tensor([1.0, float("nan")])
    with pytest.raises(ValueError, match="Tensor data must be finite, got 1 inf entries"):
        Tensor(np.array([0.0, -np.inf]), requires_grad=False)
    with pytest.raises(TypeError, match="Tensor data must be a number or a rectangular nested list"):
        Tensor([None, 1.0])
    with pytest.raises(ValueError, match=r"Tensor \*: the result has 1 non-finite entries"):
        Tensor([1e200]) * 1e200
    with pytest.raises(ValueError, match=r"Tensor /: the result has 1 non-finite entries"):
        Tensor([1.0]) / 0
    with pytest.raises(ValueError, match="Tensor data must be finite"):
        Tensor([1.0]) + np.array([np.nan])
    with pytest.raises(ValueError, match=r"Tensor \*\* exponent must be finite"):
        Tensor([1.0]) ** float("inf")
    with pytest.raises(ValueError, match="mean over an empty set"):
        Tensor(np.zeros((0, 2))).mean()
    with pytest.raises(ValueError, match="mean over an empty set"):
        Tensor(np.zeros((3, 0))).mean(axis=1)
    x = Tensor([0.0, 1.0])
    with pytest.raises(ValueError, match="gradient of a .* node is not finite"):
        (x**0.5).sum().backward()


def test_tensor_methods_check_their_arguments():
    t = Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="keepdims must be a bool, got str"):
        t.sum(0, keepdims="yes")
    with pytest.raises(ValueError, match=r"sizes must be in \[0, 2\*\*63\) or -1"):
        t.reshape(-2, 3)
    with pytest.raises(TypeError, match="reshape expects ints"):
        t.reshape("a")
    with pytest.raises(ValueError, match=r"sizes must be in \[0, 2\*\*63\)"):
        t.reshape(2**70)
    y = t * 2
    with pytest.raises(ValueError, match="grad must be finite, got 1 NaN entries"):
        y.backward(np.array([[1.0, np.nan, 1.0], [1.0, 1.0, 1.0]]))
    with pytest.raises(TypeError, match="grad must hold real numbers, got dtype <U1"):
        y.backward(np.full((2, 3), "a"))
    with pytest.raises(TypeError, match="grad must be an array of shape"):
        y.backward("a")
    with pytest.raises(TypeError, match="axis must be an int, got float"):
        log_softmax(t, axis=1.0)
    with pytest.raises(ValueError, match="needs at least one entry along axis 1"):
        log_softmax(Tensor(np.zeros((2, 0))), axis=1)


def test_mlp_and_sgd_step_refuse_overflow_and_bad_types():
    with pytest.raises(TypeError, match="dtype must be a NumPy floating dtype, got 'bogus'"):
        MLP([2, 3], dtype="bogus")
    with pytest.raises(ValueError, match="each below 2\\*\\*63"):
        MLP([2, 2**64])
    mlp = MLP([2, 3], seed=0, dtype=np.float64)
    mlp(np.ones((1, 2))).sum().backward()
    with pytest.raises(TypeError, match="params must be a list of Tensors, got NoneType"):
        sgd_step(None, 0.1)
    with pytest.raises(TypeError, match="params must be a list of Tensors, got Tensor"):
        sgd_step(mlp.weights[0], 0.1)
    with pytest.raises(ValueError, match="lr must fit a float64"):
        sgd_step(mlp.parameters(), 10**400)
    before = mlp.weights[0].data.copy()
    mlp.weights[0].grad[0, 0] = 1e308
    with pytest.raises(ValueError, match=r"lr=1e\+300 times params\[0\].grad overflows float64"):
        sgd_step(mlp.parameters(), 1e300)
    mlp.weights[0].grad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"params\[0\].grad must be finite"):
        sgd_step(mlp.parameters(), 0.1)
    assert np.array_equal(mlp.weights[0].data, before)  # refused before any update
