"""Tests of lib/ntk.py against torch.autograd Jacobians, closed forms and matrix exponentials."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import ntk

D = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tanh_net(out: int = 3, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, out)).to(D)


def _autograd_jacobian(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reference: torch.autograd.functional.jacobian of the whole batch output, (n * k, P)."""
    names = [name for name, _ in model.named_parameters()]

    def out(*params):
        return torch.func.functional_call(model, dict(zip(names, params)), (x,)).reshape(-1)

    jac = torch.autograd.functional.jacobian(out, tuple(model.parameters()))
    return torch.cat([j.reshape(j.shape[0], -1) for j in jac], dim=1)


# ------------------------------------------------------------------ jacobian / empirical_ntk

@pytest.mark.parametrize("out", [1, 3])
def test_jacobian_matches_autograd(out):
    model = _tanh_net(out)
    x = torch.randn(5, 4, generator=_gen(1), dtype=D)
    J = ntk.jacobian(model, x)
    n_params = sum(p.numel() for p in model.parameters())
    assert J.shape == (5, out, n_params)
    torch.testing.assert_close(J.reshape(5 * out, -1), _autograd_jacobian(model, x), atol=1e-12, rtol=0)
    torch.testing.assert_close(ntk.jacobian(model, x, chunk_size=2), J, atol=1e-12, rtol=0)


@pytest.mark.parametrize("out", [1, 3])
def test_ntk_equals_jacobian_product(out):
    model = _tanh_net(out, seed=2)
    x = torch.randn(6, 4, generator=_gen(3), dtype=D)
    J = _autograd_jacobian(model, x)
    K = ntk.empirical_ntk(model, x)
    assert K.shape == (6 * out, 6 * out)
    torch.testing.assert_close(K, J @ J.T, atol=1e-11, rtol=0)
    assert torch.linalg.eigvalsh(K).min() > -1e-10  # symmetric PSD
    B = ntk.empirical_ntk(model, x, layout="blocks")
    assert B.shape == (6, 6, out, out)
    torch.testing.assert_close(B.permute(0, 2, 1, 3).reshape(6 * out, 6 * out), K, atol=1e-12, rtol=0)


def test_scalar_output_model_gives_n_by_n_kernel():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 1).to(D)
    squeeze = torch.nn.Sequential(lin, torch.nn.Flatten(0))  # output (n,)
    x = torch.randn(4, 3, generator=_gen(4), dtype=D)
    K1, K2 = ntk.empirical_ntk(lin, x), ntk.empirical_ntk(squeeze, x)
    assert K1.shape == K2.shape == (4, 4)
    torch.testing.assert_close(K1, K2)


def test_cross_kernel_is_off_diagonal_block():
    model = _tanh_net(2, seed=5)
    x1 = torch.randn(3, 4, generator=_gen(6), dtype=D)
    x2 = torch.randn(4, 4, generator=_gen(7), dtype=D)
    full = ntk.empirical_ntk(model, torch.cat([x1, x2]))
    cross = ntk.empirical_ntk(model, x1, x2)
    assert cross.shape == (6, 8)
    torch.testing.assert_close(cross, full[:6, 6:], atol=1e-12, rtol=0)
    blocks = ntk.empirical_ntk(model, x1, x2, layout="blocks")
    assert blocks.shape == (3, 4, 2, 2)


def test_linear_model_closed_form():
    # f(x) = W x + b: d f_a / d W_{a'j} = delta_{aa'} x_j, d f_a / d b_{a'} = delta_{aa'},
    # so Theta(x, x') = (x . x' + 1) I_k; for one output, X X^T + 1.
    x = torch.randn(5, 3, generator=_gen(8), dtype=D)
    lin1 = torch.nn.Linear(3, 1).to(D)
    torch.testing.assert_close(ntk.empirical_ntk(lin1, x), x @ x.T + 1, atol=1e-12, rtol=0)
    lin3 = torch.nn.Linear(3, 4).to(D)
    expect = torch.einsum("ij,ab->ijab", x @ x.T + 1, torch.eye(4, dtype=D))
    torch.testing.assert_close(ntk.empirical_ntk(lin3, x, layout="blocks"), expect, atol=1e-12, rtol=0)
    nolin = torch.nn.Linear(3, 1, bias=False).to(D)
    torch.testing.assert_close(ntk.empirical_ntk(nolin, x), x @ x.T, atol=1e-12, rtol=0)


def test_ntk_linear_layer_closed_form():
    layer = ntk.NTKLinear(3, 2, beta=0.5, generator=_gen(9), dtype=D)
    x = torch.randn(4, 3, generator=_gen(10), dtype=D)
    expect = torch.einsum("ij,ab->ijab", x @ x.T / 3 + 0.25, torch.eye(2, dtype=D))
    torch.testing.assert_close(ntk.empirical_ntk(layer, x, layout="blocks"), expect, atol=1e-12, rtol=0)


def test_two_layer_relu_closed_form():
    # f(x) = a . relu(W x / sqrt(d) + beta b) / sqrt(m) + beta c, differentiated by hand.
    d, m, beta = 3, 7, 0.1
    net = ntk.ntk_mlp((d, m, 1), beta=beta, generator=_gen(11), dtype=D)
    W, b, a, c = net[0].weight, net[0].bias, net[2].weight[0], net[2].bias
    x = torch.randn(5, d, generator=_gen(12), dtype=D)
    pre = x @ W.T / math.sqrt(d) + beta * b          # (n, m)
    h, on = torch.relu(pre), (pre > 0).to(D)
    second = (h @ h.T) / m + beta**2                 # w.r.t. a and c
    first = ((on * a) @ (on * a).T) * (x @ x.T / d + beta**2) / m  # w.r.t. W and b
    torch.testing.assert_close(ntk.empirical_ntk(net, x), first + second, atol=1e-12, rtol=0)


def test_buffers_are_used():
    torch.manual_seed(0)
    bn = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)).to(D).eval()
    bn[1].running_var.fill_(4.0)
    x = torch.randn(4, 3, generator=_gen(13), dtype=D)
    ref = _autograd_jacobian(bn, x)
    torch.testing.assert_close(ntk.empirical_ntk(bn, x), ref @ ref.T, atol=1e-12, rtol=0)


# ------------------------------------------------------------------ ntk_change

def test_ntk_change_values():
    k0 = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=D)
    assert ntk.ntk_change(k0, k0).item() == 0.0
    k1 = k0 + torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=D)
    torch.testing.assert_close(ntk.ntk_change(k1, k0), torch.tensor(math.sqrt(2) / math.sqrt(10), dtype=D))
    torch.testing.assert_close(ntk.ntk_change(3 * k0, k0), torch.tensor(2.0, dtype=D))


def test_ntk_barely_moves_in_a_wide_network():
    # Lazy training in one picture: after the same GD steps the wide kernel moves less.
    x = torch.randn(8, 4, generator=_gen(14), dtype=D)
    y = torch.randn(8, 1, generator=_gen(15), dtype=D)
    moves = []
    for width in (16, 1024):
        net = ntk.ntk_mlp((4, width, 1), generator=_gen(16), dtype=D)
        k0 = ntk.empirical_ntk(net, x)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(50):
            opt.zero_grad()
            (0.5 * ((net(x) - y) ** 2).sum()).backward()
            opt.step()
        moves.append(ntk.ntk_change(ntk.empirical_ntk(net, x), k0).item())
    assert moves[1] < moves[0] / 3, moves


# ------------------------------------------------------------------ NTKLinear / ntk_mlp

def test_ntk_mlp_structure_and_seed():
    net = ntk.ntk_mlp((5, 8, 8, 2), activation="tanh", generator=_gen(0))
    assert [type(m).__name__ for m in net] == ["NTKLinear", "Tanh", "NTKLinear", "Tanh", "NTKLinear"]
    assert net(torch.randn(3, 5)).shape == (3, 2)
    again = ntk.ntk_mlp((5, 8, 8, 2), activation="tanh", generator=_gen(0))
    for p, q in zip(net.parameters(), again.parameters()):
        assert torch.equal(p, q)
    assert net[0].weight.dtype == torch.float32
    assert "beta=0.1" in repr(net[0])


def test_ntk_linear_forward():
    layer = ntk.NTKLinear(4, 3, beta=0.2, generator=_gen(1), dtype=D)
    x = torch.randn(2, 4, generator=_gen(2), dtype=D)
    torch.testing.assert_close(layer(x), x @ layer.weight.T / 2 + 0.2 * layer.bias)


def test_ntk_at_init_concentrates_with_width():
    # The NTK parametrisation has a deterministic infinite-width kernel: the
    # spread of Theta(x, x) over seeds shrinks as the width grows.
    x = torch.randn(2, 3, generator=_gen(3), dtype=D)
    spread = []
    for width in (8, 2048):
        vals = torch.stack([ntk.empirical_ntk(ntk.ntk_mlp((3, width, 1), generator=_gen(s), dtype=D), x)[0, 1]
                            for s in range(8)])
        spread.append((vals.std() / vals.mean().abs()).item())
    assert spread[1] < spread[0] / 4, spread


# ------------------------------------------------------------------ kernel_flow

def _psd(n: int, seed: int) -> torch.Tensor:
    a = torch.randn(n, n, generator=_gen(seed), dtype=D)
    return a @ a.T / n + 0.1 * torch.eye(n, dtype=D)


def test_kernel_flow_matches_matrix_exponential():
    theta = _psd(5, 0)
    f0 = torch.randn(5, generator=_gen(1), dtype=D)
    y = torch.randn(5, generator=_gen(2), dtype=D)
    for t in (0.0, 0.3, 2.0):
        expect = y + torch.linalg.matrix_exp(-theta * t) @ (f0 - y)
        torch.testing.assert_close(ntk.kernel_flow(theta, f0, y, t), expect, atol=1e-12, rtol=0)
    times = torch.tensor([0.0, 0.3, 2.0], dtype=D)
    out = ntk.kernel_flow(theta, f0, y, times)
    assert out.shape == (3, 5)
    torch.testing.assert_close(out[1], ntk.kernel_flow(theta, f0, y, 0.3))
    torch.testing.assert_close(out[0], f0)
    torch.testing.assert_close(ntk.kernel_flow(theta, f0, y, 1e4), y, atol=1e-10, rtol=0)


def test_kernel_flow_matches_gradient_descent_on_linear_model():
    # A linear model's NTK is constant, so small-step GD on 1/2 ||X w - y||^2
    # follows the kernel flow with Theta = X X^T at t = lr * steps.
    X = torch.randn(6, 3, generator=_gen(3), dtype=D)
    y = torch.randn(6, generator=_gen(4), dtype=D)
    w = torch.zeros(3, dtype=D)
    lr, steps = 1e-4, 5000
    for _ in range(steps):
        w = w - lr * X.T @ (X @ w - y)
    flow = ntk.kernel_flow(X @ X.T, torch.zeros(6, dtype=D), y, lr * steps)
    torch.testing.assert_close(X @ w, flow, atol=1e-3, rtol=0)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), seed=st.integers(0, 1000), t1=st.floats(0, 5), dt=st.floats(0, 5))
def test_kernel_flow_residual_never_grows(n, seed, t1, dt):
    theta = _psd(n, seed)
    f0 = torch.randn(n, generator=_gen(seed + 1), dtype=D)
    y = torch.randn(n, generator=_gen(seed + 2), dtype=D)
    r1 = (ntk.kernel_flow(theta, f0, y, t1) - y).norm()
    r2 = (ntk.kernel_flow(theta, f0, y, t1 + dt) - y).norm()
    assert r2 <= r1 + 1e-12


# ------------------------------------------------------------------ errors

def test_errors_jacobian_and_ntk():
    model = _tanh_net(2)
    x = torch.randn(3, 4, dtype=D)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        ntk.empirical_ntk(lambda t: t, x)
    with pytest.raises(TypeError, match="x1 must have a real floating dtype"):
        ntk.empirical_ntk(model, torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        ntk.jacobian(model, [[1.0] * 4])
    with pytest.raises(ValueError, match="x1 must be finite"):
        ntk.empirical_ntk(model, torch.full((3, 4), float("nan"), dtype=D))
    with pytest.raises(ValueError, match="x1 must not be empty"):
        ntk.empirical_ntk(model, torch.zeros(0, 4, dtype=D))
    with pytest.raises(ValueError, match="x must have at least 1 dimension"):
        ntk.jacobian(model, torch.tensor(1.0, dtype=D))
    with pytest.raises(ValueError, match="layout must be one of"):
        ntk.empirical_ntk(model, x, layout="square")
    with pytest.raises(ValueError, match="x2 must have the trailing shape"):
        ntk.empirical_ntk(model, x, torch.randn(2, 5, dtype=D))
    with pytest.raises(ValueError, match="x2 must be finite"):
        ntk.empirical_ntk(model, x, torch.full((2, 4), float("inf"), dtype=D))
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        ntk.jacobian(model, x, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be an int"):
        ntk.jacobian(model, x, chunk_size=1.5)
    frozen = torch.nn.Linear(4, 1).to(D).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        ntk.empirical_ntk(frozen, x)


def test_errors_from_the_model_output():
    x = torch.randn(3, 4, dtype=D)
    with pytest.raises(ValueError, match=r"model output must have shape \(n,\) or \(n, k\)"):
        ntk.empirical_ntk(torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Unflatten(1, (2, 3))).to(D), x)

    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(4, dtype=D))

        def forward(self, z):
            return (z @ self.w).log() * float("nan")

    with pytest.raises(ValueError, match="model output is not finite"):
        ntk.empirical_ntk(Bad(), x)

    class Tuple(torch.nn.Linear):
        def forward(self, z):
            return (super().forward(z),)

    with pytest.raises(TypeError, match="model must return a torch.Tensor"):
        ntk.empirical_ntk(Tuple(4, 1).to(D), x)


def test_errors_ntk_change():
    k = torch.eye(2, dtype=D)
    with pytest.raises(ValueError, match="same shape"):
        ntk.ntk_change(k, torch.eye(3, dtype=D))
    with pytest.raises(ValueError, match="theta_0 must not be the zero kernel"):
        ntk.ntk_change(k, torch.zeros(2, 2, dtype=D))
    with pytest.raises(ValueError, match="theta_t must be finite"):
        ntk.ntk_change(k * float("nan"), k)
    with pytest.raises(TypeError, match="theta_0 must be a torch.Tensor"):
        ntk.ntk_change(k, 1.0)


def test_errors_ntk_mlp_and_layer():
    with pytest.raises(ValueError, match="sizes must have at least 2 entries"):
        ntk.ntk_mlp((3,))
    with pytest.raises(TypeError, match="sizes must be a sequence"):
        ntk.ntk_mlp(3)
    with pytest.raises(TypeError, match="sizes must be an int"):
        ntk.ntk_mlp((3, 2.5, 1))
    with pytest.raises(ValueError, match="sizes must be >= 1"):
        ntk.ntk_mlp((3, 0, 1))
    with pytest.raises(ValueError, match="activation must be one of"):
        ntk.ntk_mlp((3, 4, 1), activation="gelu")
    with pytest.raises(ValueError, match="beta must be a finite number"):
        ntk.NTKLinear(2, 2, beta=-1.0)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        ntk.NTKLinear(2, 2, generator=0)
    with pytest.raises(TypeError, match="dtype must be a floating"):
        ntk.NTKLinear(2, 2, dtype=torch.int64)


def test_errors_kernel_flow():
    theta, v = _psd(3, 0), torch.zeros(3, dtype=D)
    with pytest.raises(ValueError, match="theta must be a square"):
        ntk.kernel_flow(torch.ones(3, 2, dtype=D), v, v, 1.0)
    with pytest.raises(ValueError, match="theta must be symmetric"):
        ntk.kernel_flow(theta + torch.triu(torch.ones(3, 3, dtype=D), 1), v, v, 1.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        ntk.kernel_flow(-theta, v, v, 1.0)
    with pytest.raises(ValueError, match=r"f0 must have shape \(3,\)"):
        ntk.kernel_flow(theta, torch.zeros(4, dtype=D), v, 1.0)
    with pytest.raises(ValueError, match="y must be finite"):
        ntk.kernel_flow(theta, v, v + float("nan"), 1.0)
    with pytest.raises(ValueError, match="t must be >= 0"):
        ntk.kernel_flow(theta, v, v, -1.0)
    with pytest.raises(ValueError, match="t must be finite"):
        ntk.kernel_flow(theta, v, v, float("inf"))
    with pytest.raises(TypeError, match="t must be a finite number"):
        ntk.kernel_flow(theta, v, v, "1")
    with pytest.raises(ValueError, match="t must be a number or a 1-D tensor"):
        ntk.kernel_flow(theta, v, v, torch.ones(2, 2))
