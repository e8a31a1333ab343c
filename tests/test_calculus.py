"""Tests of lib/calculus.py against closed forms and torch.autograd."""

import math

import pytest
import torch

from lib import calculus



@pytest.fixture(autouse=True)
def float64_default():
    """These tests compare derivatives to 1e-9 and beyond: float64 throughout."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def f_scalar(x):
    return (torch.sin(x) * x**2).sum() + torch.exp(x[..., 0]).sum() * 0.5


def f_scalar_grad(x):
    g = torch.cos(x) * x**2 + 2 * x * torch.sin(x)
    g[..., 0] += 0.5 * torch.exp(x[..., 0])
    return g


@pytest.mark.parametrize("shape", [(1,), (4,), (2, 3)])
def test_central_difference_matches_closed_form(shape):
    x = torch.linspace(-1.3, 2.1, math.prod(shape)).reshape(shape)
    g = calculus.finite_difference(f_scalar, x)
    assert g.shape == x.shape
    assert torch.allclose(g, f_scalar_grad(x), atol=1e-9, rtol=1e-9)


def test_forward_difference_is_first_order():
    # error of the forward difference ~ h f''(x)/2: halves when h halves
    f = lambda x: torch.exp(x).sum()  # noqa: E731
    x = torch.tensor([0.3])
    exact = math.exp(0.3)
    e1 = abs(calculus.finite_difference(f, x, h=1e-3, scheme="forward").item() - exact)
    e2 = abs(calculus.finite_difference(f, x, h=5e-4, scheme="forward").item() - exact)
    assert 1.9 < e1 / e2 < 2.1
    assert abs(e1 - 1e-3 * exact / 2) < 1e-3 * e1 * 10


def test_central_difference_is_second_order():
    f = lambda x: torch.exp(x).sum()  # noqa: E731
    x = torch.tensor([0.3])
    exact = math.exp(0.3)
    e1 = abs(calculus.finite_difference(f, x, h=1e-2).item() - exact)
    e2 = abs(calculus.finite_difference(f, x, h=5e-3).item() - exact)
    assert 3.9 < e1 / e2 < 4.1  # h^2 f'''/6 with f''' = exp


def test_default_step():
    eps = torch.finfo(torch.float64).eps
    assert calculus.default_step(torch.float64, "central") == pytest.approx(eps ** (1 / 3))
    assert calculus.default_step(torch.float32, "forward") == pytest.approx(torch.finfo(torch.float32).eps ** 0.5)
    with pytest.raises(ValueError, match="scheme"):
        calculus.default_step(torch.float64, "backward")


def test_complex_step_reaches_machine_precision():
    f = lambda x: (torch.exp(x) / torch.sqrt(torch.sin(x) ** 3 + torch.cos(x) ** 3)).sum()  # noqa: E731
    x = torch.tensor([1.5], requires_grad=True)
    (ref,) = torch.autograd.grad(f(x), x)
    g = calculus.complex_step(f, x.detach())
    assert g.dtype == torch.float64
    assert abs(g.item() - ref.item()) <= 4 * torch.finfo(torch.float64).eps * abs(ref.item())


def test_complex_step_shape_and_float32():
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    g = calculus.complex_step(lambda z: (z**3).sum(), x)
    assert torch.allclose(g, 3 * x**2, rtol=1e-14)
    g32 = calculus.complex_step(lambda z: (z**3).sum(), x.float())
    assert g32.dtype == torch.float32 and torch.allclose(g32, 3 * x.float() ** 2, rtol=1e-6)


def test_complex_step_rejects_non_analytic():
    with pytest.raises(TypeError, match="complex"):
        calculus.complex_step(lambda z: z.real.sum(), torch.ones(2))


def test_jacobian_fd_matches_autograd():
    A = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    f = lambda x: torch.tanh(A @ x.reshape(-1)) * x.sum()  # noqa: E731
    x = torch.randn(2, 2, generator=torch.Generator().manual_seed(2))
    J = calculus.jacobian_fd(f, x)
    ref = torch.autograd.functional.jacobian(f, x)
    assert J.shape == ref.shape == (3, 2, 2)
    assert torch.allclose(J, ref, atol=1e-9)
    Jf = calculus.jacobian_fd(f, x, scheme="forward")
    assert torch.allclose(Jf, ref, atol=1e-6)


def test_gradcheck_passes_correct_and_catches_wrong_backward():
    x = torch.randn(5, generator=torch.Generator().manual_seed(3))
    report = calculus.gradcheck(lambda x: (x * torch.sin(x)).sum(), x)
    assert report.ok and report.max_abs_error < 1e-8

    class BadSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # wrong: should be 2x

    report = calculus.gradcheck(lambda x: BadSquare.apply(x).sum(), x)
    assert not report.ok
    i = report.index[0]
    assert report.autograd == pytest.approx(x[i].item())
    assert report.numeric == pytest.approx(2 * x[i].item(), rel=1e-6)
    assert "MISMATCH" in str(report)


def test_gradcheck_vector_valued():
    x = torch.randn(3, generator=torch.Generator().manual_seed(4))
    report = calculus.gradcheck(lambda x: torch.stack([x.prod(), x.sum() ** 2]), x)
    assert report.ok and report.index[0] in (0, 1)


@pytest.mark.parametrize("fn", [calculus.finite_difference, calculus.complex_step, calculus.jacobian_fd,
                                calculus.gradcheck])
def test_bad_x(fn):
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn(lambda x: x.sum(), [1.0, 2.0])
    with pytest.raises(TypeError, match="floating"):
        fn(lambda x: x.sum(), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="at least one element"):
        fn(lambda x: x.sum(), torch.tensor([]))


def test_bad_arguments():
    x = torch.ones(2)
    with pytest.raises(ValueError, match="scheme"):
        calculus.finite_difference(lambda x: x.sum(), x, scheme="backward")
    with pytest.raises(ValueError, match="positive"):
        calculus.finite_difference(lambda x: x.sum(), x, h=0.0)
    with pytest.raises(ValueError, match="positive"):
        calculus.complex_step(lambda x: x.sum(), x, h=-1e-20)
    with pytest.raises(ValueError, match="scalar"):
        calculus.finite_difference(lambda x: x * 2, x)
    with pytest.raises(ValueError, match="atol"):
        calculus.gradcheck(lambda x: x.sum(), x, atol=-1)
    with pytest.raises(ValueError, match="depend"):
        calculus.gradcheck(lambda x: torch.ones(()), x)
    with pytest.raises(ValueError, match="output shape"):
        calculus.jacobian_fd(lambda x: x[: int(x[0].item() > 1) + 1], x)


def test_step_lost_to_rounding_is_refused():
    with pytest.raises(ValueError, match="lost to rounding"):
        calculus.finite_difference(lambda x: x.sum(), torch.tensor([1.5]), h=1e-17)
    with pytest.raises(ValueError, match="lost to rounding"):
        calculus.jacobian_fd(lambda x: x * 2, torch.tensor([1.5]), h=1e-17, scheme="forward")


# ------------------------------------------------------------------ found by tests/test_fuzz.py

def test_refuses_non_finite_input_and_output():
    f = lambda x: x.sum()  # noqa: E731
    with pytest.raises(ValueError, match=r"x must be finite, got a tensor with 1 NaN and 1 inf entries"):
        calculus.finite_difference(f, torch.tensor([math.nan, math.inf, 1.0]))
    with pytest.raises(ValueError, match="x must be finite"):
        calculus.gradcheck(f, torch.tensor([1.0, -math.inf]))
    with pytest.raises(ValueError, match="f returned a non-finite value at x"):
        calculus.jacobian_fd(lambda x: x * math.nan, torch.ones(2))
    with pytest.raises(ValueError, match=r"f returned a non-finite value at x \+ i h e_0"):
        calculus.complex_step(lambda x: (x * 0).sum() + math.inf, torch.ones(2))
    with pytest.raises(ValueError, match="gradcheck: f returned a non-finite value"):
        calculus.gradcheck(lambda x: x.sum() * math.nan, torch.ones(2))
    with pytest.raises(ValueError, match="autograd's derivative of f is not finite"):
        calculus.gradcheck(lambda x: x.abs().sqrt().sum(), torch.tensor([0.0, 1.0]))


def test_refuses_bad_steps_tolerances_and_dtypes():
    f = lambda x: x.sum()  # noqa: E731
    with pytest.raises(ValueError, match="positive finite"):
        calculus.finite_difference(f, torch.ones(2), h=math.inf)
    with pytest.raises(ValueError, match="positive finite"):
        calculus.complex_step(f, torch.ones(2), h=10**400)
    with pytest.raises(ValueError, match=r"h=1e-300 is not representable in torch.float32"):
        calculus.complex_step(f, torch.ones(2, dtype=torch.float32), h=1e-300)
    with pytest.raises(ValueError, match="rtol must be a non-negative finite number, got nan"):
        calculus.gradcheck(f, torch.ones(2), rtol=math.nan)
    with pytest.raises(TypeError, match="f must return a tensor, got str"):
        calculus.finite_difference(lambda x: "f", torch.ones(2))
    with pytest.raises(TypeError, match="dtype must be a real floating torch.dtype, got torch.int64"):
        calculus.default_step(torch.int64)
    with pytest.raises(TypeError, match="dtype must be a real floating"):
        calculus.default_step(None)


def test_gradcheck_report_checks_its_fields():
    with pytest.raises(TypeError, match="ok must be a bool"):
        calculus.GradcheckReport(1, 0.0, 0.0, (), 0.0, 0.0)
    with pytest.raises(ValueError, match="max_abs_error must be non-negative, got nan"):
        calculus.GradcheckReport(True, math.nan, 0.0, (), 0.0, 0.0)
    with pytest.raises(TypeError, match="index must be a tuple of ints"):
        calculus.GradcheckReport(True, 0.0, 0.0, [0], 0.0, 0.0)
    assert calculus.GradcheckReport(False, 1.0, math.inf, (0,), 1.0, 0.0).max_rel_error == math.inf


def test_zero_dim_x():
    x = torch.tensor(0.7)
    assert calculus.jacobian_fd(torch.sin, x).shape == ()
    assert calculus.finite_difference(torch.sin, x).item() == pytest.approx(math.cos(0.7), rel=1e-8)
    report = calculus.gradcheck(torch.sin, x)
    assert report.ok and report.index == ()
