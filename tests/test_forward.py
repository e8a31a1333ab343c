"""Tests of lib/forward.py against closed forms, torch.func and torch.autograd."""

import math

import pytest
import torch

from lib import forward as fw
from lib.forward import Dual


# ------------------------------------------------------------------ dual numbers

def test_dual_arithmetic_closed_forms():
    x = Dual(2.0, 1.0)
    assert (x * x).tangent == 4.0
    assert (3 * x + 1).primal == 7.0 and (3 * x + 1).tangent == 3.0
    assert (1 / x).tangent == pytest.approx(-0.25)
    assert (x / 4).tangent == pytest.approx(0.25)
    assert (5 - x).tangent == -1.0 and (x - 5).tangent == 1.0
    assert (x**3).tangent == pytest.approx(12.0)
    assert (x**0).tangent == 0.0
    assert (2**x).tangent == pytest.approx(4 * math.log(2))  # d/dx 2^x
    assert (x**x).tangent == pytest.approx(4 * (math.log(2) + 1))  # d/dx x^x
    assert (-x).tangent == -1.0


@pytest.mark.parametrize("name,f,df", [
    ("sin", math.sin, math.cos), ("cos", math.cos, lambda a: -math.sin(a)),
    ("exp", math.exp, math.exp), ("log", math.log, lambda a: 1 / a),
    ("tanh", math.tanh, lambda a: 1 - math.tanh(a) ** 2), ("sqrt", math.sqrt, lambda a: 0.5 / math.sqrt(a)),
])
def test_dual_functions(name, f, df):
    value, deriv = fw.derivative(getattr(fw, name), 0.7)
    assert value == pytest.approx(f(0.7), rel=1e-15)
    assert deriv == pytest.approx(df(0.7), rel=1e-15)
    assert getattr(fw, name)(0.7) == pytest.approx(f(0.7))  # plain numbers pass through


def test_derivative_matches_autograd_on_a_program():
    def f(x):
        y = fw.sin(x) * x**2 + fw.exp(x / 3)
        return fw.log(y * y + 1) / (1 + fw.tanh(x) ** 2) + fw.sqrt(x * x + 2)

    def f_torch(x):
        y = torch.sin(x) * x**2 + torch.exp(x / 3)
        return torch.log(y * y + 1) / (1 + torch.tanh(x) ** 2) + torch.sqrt(x * x + 2)

    for a in (-1.3, 0.2, 2.5):
        xt = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        (ref,) = torch.autograd.grad(f_torch(xt), xt)
        value, deriv = fw.derivative(f, a)
        assert value == pytest.approx(f_torch(xt).item(), rel=1e-13)
        assert deriv == pytest.approx(ref.item(), rel=1e-12)


def test_derivative_of_constant_function():
    assert fw.derivative(lambda x: 3.0, 1.0) == (3.0, 0.0)


def test_dual_errors():
    with pytest.raises(TypeError, match="str"):
        Dual(1.0) + "a"
    with pytest.raises(TypeError, match="primal"):
        Dual("1")
    with pytest.raises(ValueError, match="positive"):
        fw.log(Dual(-1.0, 1.0))
    with pytest.raises(ZeroDivisionError):
        Dual(1.0) / Dual(0.0, 1.0)
    with pytest.raises(TypeError, match="number or Dual"):
        fw.sin("x")
    with pytest.raises(TypeError, match="real number"):
        fw.derivative(fw.sin, "x")


# ------------------------------------------------------------------ tensors

def _f(x):
    A = torch.arange(12.0, dtype=x.dtype).reshape(3, 4) / 10
    return torch.tanh(A @ x.reshape(4)) * (x**2).sum() + torch.sin(x.reshape(4)[:3])


def test_jvp_matches_torch_func():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, generator=g, dtype=torch.float64)
    v = torch.randn(2, 2, generator=g, dtype=torch.float64)
    out, tangent = fw.jvp(_f, x, v)
    ref_out, ref_tangent = torch.func.jvp(_f, (x,), (v,))
    assert torch.allclose(out, ref_out, atol=1e-14)
    assert torch.allclose(tangent, ref_tangent, atol=1e-12)
    # and against the dense Jacobian from reverse mode
    J = torch.autograd.functional.jacobian(_f, x).reshape(3, 4)
    assert torch.allclose(tangent, J @ v.reshape(4), atol=1e-12)


def test_vjp_matches_autograd_and_transpose_identity():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, generator=g, dtype=torch.float64)
    v = torch.randn(2, 2, generator=g, dtype=torch.float64)
    u = torch.randn(3, generator=g, dtype=torch.float64)
    _, Jt_u = fw.vjp(_f, x, u)
    _, ref = torch.func.vjp(_f, x)
    assert torch.allclose(Jt_u, ref(u)[0], atol=1e-12)
    # <u, J v> == <J^T u, v>
    _, Jv = fw.jvp(_f, x, v)
    assert torch.dot(u, Jv) == pytest.approx(torch.dot(Jt_u.reshape(-1), v.reshape(-1)).item(), rel=1e-12)


def test_jacobians_forward_and_reverse_agree():
    x = torch.randn(2, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ref = torch.autograd.functional.jacobian(_f, x)
    assert torch.allclose(fw.jacobian_forward(_f, x), ref, atol=1e-12)
    assert torch.allclose(fw.jacobian_reverse(_f, x), ref, atol=1e-12)
    assert fw.jacobian_forward(_f, x).shape == (3, 2, 2)


def test_jvp_of_function_independent_of_x():
    out, tangent = fw.jvp(lambda x: torch.ones(3, dtype=x.dtype), torch.ones(2), torch.ones(2))
    assert torch.equal(tangent, torch.zeros(3))
    _, g = fw.vjp(lambda x: torch.ones(3, dtype=x.dtype), torch.ones(2), torch.ones(3))
    assert torch.equal(g, torch.zeros(2))


def test_forward_gradient_unbiased_with_predicted_variance():
    # f(x) = 0.5 ||A x||^2 has gradient A^T A x; mean of many estimates -> gradient,
    # and the per-sample squared error averages (n + 1) ||grad||^2.
    n = 6
    g = torch.Generator().manual_seed(3)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    x = torch.randn(n, generator=g, dtype=torch.float64)
    f = lambda x: 0.5 * ((A @ x) ** 2).sum()  # noqa: E731
    grad = A.T @ A @ x
    samples = torch.stack([fw.forward_gradient(f, x, generator=g) for _ in range(4000)])
    mean_err = (samples.mean(0) - grad).norm() / grad.norm()
    assert mean_err < 0.1  # standard error ~ sqrt((n+1)/4000) ~ 0.04
    mse = ((samples - grad) ** 2).sum(1).mean() / grad.norm() ** 2
    assert abs(mse.item() - (n + 1)) < 0.1 * (n + 1)
    # averaging k directions divides the error by k
    avg = torch.stack([fw.forward_gradient(f, x, n_samples=8, generator=g) for _ in range(1000)])
    mse8 = ((avg - grad) ** 2).sum(1).mean() / grad.norm() ** 2
    assert abs(mse8.item() - (n + 1) / 8) < 0.15 * (n + 1) / 8


def test_forward_gradient_deterministic_with_generator():
    f = lambda x: (x**3).sum()  # noqa: E731
    x = torch.ones(4)
    a = fw.forward_gradient(f, x, n_samples=3, generator=torch.Generator().manual_seed(7))
    b = fw.forward_gradient(f, x, n_samples=3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.shape == x.shape


def test_tensor_errors():
    x = torch.ones(3)
    with pytest.raises(ValueError, match=r"shape of x \(3,\)"):
        fw.jvp(torch.sin, x, torch.ones(2))
    with pytest.raises(TypeError, match="floating"):
        fw.jvp(torch.sin, torch.ones(3, dtype=torch.long), torch.ones(3, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensors"):
        fw.jvp(torch.sin, [1.0], torch.ones(1))
    with pytest.raises(ValueError, match="output shape"):
        fw.vjp(torch.sin, x, torch.ones(2))
    with pytest.raises(ValueError, match="n_samples"):
        fw.forward_gradient(lambda x: x.sum(), x, n_samples=0)
    with pytest.raises(ValueError, match="scalar"):
        fw.forward_gradient(torch.sin, x)
    with pytest.raises(TypeError, match="floating"):
        fw.jacobian_reverse(torch.sin, torch.ones(2, dtype=torch.long))


# ------------------------------------------------------------------ found by tests/test_fuzz.py

def test_dual_refuses_nan_overflow_and_domain_errors():
    with pytest.raises(ValueError, match="Dual primal must not be NaN"):
        Dual(math.nan)
    with pytest.raises(ValueError, match="Dual primal must be finite, got inf"):
        Dual(math.inf, 1.0)
    with pytest.raises(ValueError, match="Dual tangent must not be NaN"):
        Dual(1.0, math.nan)
    with pytest.raises(ValueError, match="must fit a float64"):
        Dual(10**400)
    with pytest.raises(ValueError, match="Dual primal must be finite"):
        Dual(1e200) * Dual(1e200)
    with pytest.raises(ValueError, match=r"negative base \(-1.0\) needs an integer exponent"):
        Dual(-1.0, 1.0) ** 0.5
    with pytest.raises(ValueError, match="overflows float64"):
        Dual(1e200, 1.0) ** 2
    with pytest.raises(ValueError, match=r"exp\(1000.0\) overflows float64"):
        fw.exp(Dual(1000.0, 1.0))
    with pytest.raises(ValueError, match="sin argument must not be NaN"):
        fw.sin(math.nan)
    assert fw.sqrt(Dual(0.0, 1.0)).tangent == math.inf  # an infinite slope is the right answer


def test_derivative_refuses_non_finite_x_and_bad_f():
    with pytest.raises(ValueError, match="x must be finite"):
        fw.derivative(fw.sin, math.inf)
    with pytest.raises(ValueError, match="f returned a non-finite value"):
        fw.derivative(lambda d: math.nan, 1.0)
    with pytest.raises(TypeError, match="f must return a Dual or a real number, got str"):
        fw.derivative(lambda d: "a", 1.0)
    with pytest.raises(TypeError, match="f must be callable"):
        fw.derivative("sin", 1.0)


def test_tensor_functions_refuse_non_finite_and_bad_types():
    x = torch.ones(3)
    with pytest.raises(ValueError, match="x must be finite, got a tensor with 1 NaN entries"):
        fw.jvp(torch.sin, torch.tensor([1.0, math.nan]), torch.ones(2))
    with pytest.raises(ValueError, match="v must be finite"):
        fw.jvp(torch.sin, x, torch.full((3,), math.inf))
    with pytest.raises(TypeError, match="v must have a floating dtype"):
        fw.jvp(torch.sin, x, torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="f returned a non-finite value at x"):
        fw.jvp(lambda x: x * math.nan, x, x)
    with pytest.raises(ValueError, match="derivative of f along v is not finite"):
        fw.jvp(lambda x: x.sqrt(), torch.zeros(3), x)
    with pytest.raises(ValueError, match="u must be finite"):
        fw.vjp(torch.sin, x, torch.full((3,), math.nan))
    with pytest.raises(TypeError, match="f must return a tensor, got str"):
        fw.vjp(lambda x: "y", x, x)
    with pytest.raises(TypeError, match="f must return a tensor, got list"):
        fw.jacobian_reverse(lambda x: [x], x)
    with pytest.raises(ValueError, match="x must be finite"):
        fw.jacobian_forward(torch.sin, torch.tensor([math.inf]))
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got str"):
        fw.forward_gradient(lambda x: x.sum(), x, generator="seed")


def test_jacobians_of_edge_cases():
    x = torch.tensor(0.3, dtype=torch.float64)
    assert fw.jacobian_forward(torch.sin, x).item() == pytest.approx(math.cos(0.3))
    assert fw.jacobian_reverse(torch.sin, x).item() == pytest.approx(math.cos(0.3))
    const = lambda x: torch.ones(2, dtype=x.dtype)  # noqa: E731 (does not depend on x)
    assert torch.equal(fw.jacobian_reverse(const, torch.ones(3)), torch.zeros(2, 3))
    assert fw.jacobian_forward(lambda x: x * 2, torch.ones(0)).shape == (0, 0)
    assert fw.jacobian_reverse(lambda x: x * 2, torch.ones(0)).shape == (0, 0)
