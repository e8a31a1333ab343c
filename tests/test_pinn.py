"""Tests of lib/pinn.py against closed forms, torch.func and hand-written references."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import pinn

D = torch.float64


def _points(n: int = 16, seed: int = 0, dtype=D):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, generator=g, dtype=dtype) * 2 * math.pi,
            torch.rand(n, generator=g, dtype=dtype))


def _net(seed: int = 0, **kw):
    return pinn.FieldMLP(width=12, depth=2, generator=torch.Generator().manual_seed(seed), dtype=D, **kw)


# ------------------------------------------------------------------ input derivatives

def test_partials_of_sin_cos_match_closed_form():
    x, t = _points()
    p = pinn.partials(lambda x, t: torch.sin(x) * torch.cos(t), x, t)
    torch.testing.assert_close(p.u, torch.sin(x) * torch.cos(t))
    torch.testing.assert_close(p.u_x, torch.cos(x) * torch.cos(t))
    torch.testing.assert_close(p.u_t, -torch.sin(x) * torch.sin(t))
    torch.testing.assert_close(p.u_xx, -torch.sin(x) * torch.cos(t))
    assert pinn.partials(lambda x, t: x * t, x, t, second_order=False).u_xx is None


@pytest.mark.parametrize("order, ref", [(1, lambda x: 2 * torch.cos(2 * x)), (2, lambda x: -4 * torch.sin(2 * x)),
                                        (3, lambda x: -8 * torch.cos(2 * x))])
def test_input_derivative_orders(order, ref):
    x = torch.linspace(-2, 2, 9, dtype=D).reshape(3, 3).requires_grad_(True)
    d = pinn.input_derivative(torch.sin(2 * x), x, order=order)
    assert d.shape == x.shape
    torch.testing.assert_close(d, ref(x.detach()))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=1, max_size=5), st.integers(1, 4))
def test_input_derivative_of_polynomials(coeffs, order):
    x = torch.linspace(-1.5, 1.5, 7, dtype=D, requires_grad=True)
    y = sum(a * x**k for k, a in enumerate(coeffs))
    ref = sum(a * math.perm(k, order) * x.detach() ** (k - order)
              for k, a in enumerate(coeffs) if k >= order)
    d = pinn.input_derivative(y if isinstance(y, torch.Tensor) else y + 0 * x, x, order=order)
    torch.testing.assert_close(d, ref + torch.zeros_like(d), atol=1e-9, rtol=1e-9)


def test_partials_of_a_network_match_torch_func():
    net = _net(1)
    x, t = _points(10, seed=2)
    p = pinn.partials(net, x, t)
    u1 = lambda xi, ti: net(xi.reshape(1), ti.reshape(1)).reshape(())  # noqa: E731
    u_x = torch.func.vmap(torch.func.grad(u1, argnums=0))(x, t)
    u_t = torch.func.vmap(torch.func.grad(u1, argnums=1))(x, t)
    u_xx = torch.func.vmap(torch.func.grad(torch.func.grad(u1, argnums=0), argnums=0))(x, t)
    torch.testing.assert_close(p.u_x, u_x)
    torch.testing.assert_close(p.u_t, u_t)
    torch.testing.assert_close(p.u_xx, u_xx)


def test_derivatives_keep_the_graph_for_training():
    # d/dtheta of mean(u_x^2) through partials equals the same through torch.func
    net = _net(3)
    x, t = _points(8, seed=4)
    loss = pinn.partials(net, x, t, second_order=False).u_x.square().mean()
    grads = torch.autograd.grad(loss, list(net.parameters()), allow_unused=True)  # the last bias: unused
    params = dict(net.named_parameters())

    def loss_of(pr):
        u1 = lambda xi, ti: torch.func.functional_call(net, pr, (xi.reshape(1), ti.reshape(1))).reshape(())  # noqa
        return torch.func.vmap(torch.func.grad(u1))(x, t).square().mean()

    ref = torch.func.grad(loss_of)(params)
    for g, name in zip(grads, params):
        torch.testing.assert_close(torch.zeros_like(ref[name]) if g is None else g, ref[name])
    assert grads[-1] is None and torch.equal(ref["biases.2"], torch.zeros(1, dtype=D))


def test_input_derivative_of_constant_and_unrelated_values_is_zero():
    x = torch.ones(4, dtype=D, requires_grad=True)
    other = torch.ones(4, dtype=D, requires_grad=True)
    for y in (torch.full((4,), 2.0, dtype=D), other * 3, 5 * x):
        d2 = pinn.input_derivative(y, x, order=2)
        assert torch.equal(d2, torch.zeros(4, dtype=D))
    p = pinn.partials(lambda x, t: torch.ones_like(x), *_points(3))
    assert torch.equal(p.u_x, torch.zeros(3, dtype=D)) and torch.equal(p.u_xx, torch.zeros(3, dtype=D))


def test_partials_accepts_trailing_one_and_grids():
    x, t = torch.meshgrid(torch.linspace(0, 1, 4, dtype=D), torch.linspace(0, 1, 3, dtype=D), indexing="ij")
    p = pinn.partials(lambda x, t: (x**2 * t).unsqueeze(-1), x, t)
    assert p.u.shape == (4, 3)
    torch.testing.assert_close(p.u_xx, 2 * t)
    with torch.no_grad():  # works inside no_grad too
        torch.testing.assert_close(pinn.partials(lambda x, t: x**2 * t, x, t).u_x, 2 * x * t)


# ------------------------------------------------------------------ residuals and the loss

@pytest.mark.parametrize("c", [0.0, 1.0, -2.5, 30.0])
def test_advection_residual_vanishes_on_travelling_waves(c):
    x, t = _points(32, seed=5)
    for u0 in (torch.sin, lambda z: torch.exp(-((z - 3) ** 2)), lambda z: torch.cos(3 * z) + z**2):
        r = pinn.advection_residual(lambda x, t: u0(x - c * t), x, t, c)
        assert r.shape == x.shape
        torch.testing.assert_close(r, torch.zeros_like(r), atol=1e-10 * (1 + abs(c)), rtol=0)
    wrong = pinn.advection_residual(lambda x, t: torch.sin(x - c * t), x, t, c + 1)
    torch.testing.assert_close(wrong, torch.cos(x - c * t))  # u_t + (c+1) u_x = u_x


def test_heat_residual_vanishes_on_decaying_modes():
    x, t = _points(32, seed=6)
    nu, k = 0.3, 2.0
    exact = lambda x, t: torch.exp(-nu * k**2 * t) * torch.sin(k * x)  # noqa: E731
    r = pinn.heat_residual(exact, x, t, nu)
    torch.testing.assert_close(r, torch.zeros_like(r), atol=1e-12, rtol=0)
    r = pinn.heat_residual(lambda x, t: torch.sin(k * x), x, t, nu)  # steady profile: r = nu k^2 sin
    torch.testing.assert_close(r, nu * k**2 * torch.sin(k * x))


def test_pinn_loss_terms_and_gradient():
    net = _net(7)
    x, t = _points(20, seed=8)
    r = pinn.advection_residual(net, x, t, 2.0)
    x0 = torch.linspace(0, 2 * math.pi, 11, dtype=D)
    e0 = net(x0, torch.zeros_like(x0)) - torch.sin(x0)
    tb = torch.linspace(0, 1, 5, dtype=D)
    eb = net(torch.zeros_like(tb), tb) - net(torch.full_like(tb, 2 * math.pi), tb)
    loss = pinn.pinn_loss(r, e0, eb, w_initial=3.0, w_boundary=0.5)
    ref = r.pow(2).mean() + 3 * e0.pow(2).mean() + 0.5 * eb.pow(2).mean()
    torch.testing.assert_close(loss.total, ref)
    torch.testing.assert_close(loss.residual, r.pow(2).mean().detach())
    assert not loss.initial.requires_grad and loss.total.requires_grad
    loss.total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    only = pinn.pinn_loss(torch.tensor([3.0, 4.0]))
    assert only.total.item() == 12.5 and only.initial.item() == 0 and only.boundary.item() == 0


# ------------------------------------------------------------------ networks and hard constraints

def test_field_mlp_periodic_features_make_u_periodic():
    net = _net(9, period=2 * math.pi, harmonics=3)
    x, t = _points(25, seed=10)
    torch.testing.assert_close(net(x, t), net(x + 2 * math.pi, t), atol=1e-12, rtol=0)
    torch.testing.assert_close(net(x, t), net(x - 6 * math.pi, t), atol=1e-12, rtol=0)
    feats = pinn.periodic_features(x, 2 * math.pi, 3)
    assert feats.shape == (25, 6)
    torch.testing.assert_close(feats[:, 1], torch.sin(2 * x))
    torch.testing.assert_close(feats[:, 5], torch.cos(3 * x))


def test_field_mlp_rescaling_initialisation_and_determinism():
    a = _net(11, x_range=(0.0, 2 * math.pi), t_range=(0.0, 1.0))
    b = _net(11, x_range=(0.0, 2 * math.pi), t_range=(0.0, 1.0))
    plain = _net(11)
    x, t = _points(6, seed=12)
    torch.testing.assert_close(a(x, t), b(x, t), atol=0, rtol=0)
    torch.testing.assert_close(a(x, t), plain(x / math.pi - 1, 2 * t - 1))
    w0 = plain.weights[0]
    assert w0.shape == (12, 2) and w0.abs().max() <= math.sqrt(6 / 14)
    assert all(torch.equal(bias, torch.zeros_like(bias)) for bias in plain.biases)
    assert sum(p.numel() for p in plain.parameters()) == 2 * 12 + 12 + 12 * 12 + 12 + 12 + 1
    assert pinn.FieldMLP(activation="relu")(torch.zeros(3), torch.zeros(3)).shape == (3,)


def test_initial_condition_ansatz_is_exact_at_t0():
    net = _net(13, period=2 * math.pi)
    u0 = lambda x: torch.sin(x) + 0.5 * torch.cos(3 * x)  # noqa: E731
    u = pinn.InitialConditionAnsatz(net, u0)
    x = torch.linspace(0, 2 * math.pi, 50, dtype=D)
    assert torch.equal(u(x, torch.zeros_like(x)), u0(x))  # exactly, not approximately
    u1 = pinn.InitialConditionAnsatz(net, u0, t0=0.25)
    assert torch.equal(u1(x, torch.full_like(x, 0.25)), u0(x))
    x, t = _points(9, seed=14)
    torch.testing.assert_close(u(x, t), u0(x) + t * net(x, t))
    assert set(dict(u.named_parameters())) == {"net." + n for n, _ in net.named_parameters()}
    r = pinn.advection_residual(u, x, t, 1.0)  # trainable through the ansatz
    (g,) = torch.autograd.grad(r.square().mean(), [net.weights[0]])
    assert torch.isfinite(g).all() and g.abs().sum() > 0


# ------------------------------------------------------------------ SIREN

def test_siren_bounds_and_weight_ranges():
    assert pinn.siren_bound(4, first=True) == 0.25
    assert pinn.siren_bound(256) == pytest.approx(math.sqrt(6 / 256) / 30)
    assert pinn.siren_bound(64, omega_0=10.0) == pytest.approx(math.sqrt(6 / 64) / 10)
    s = pinn.Siren(2, 128, 3, generator=torch.Generator().manual_seed(0), dtype=D)
    for layer, a in zip(s.layers, [0.5, math.sqrt(6 / 128) / 30, math.sqrt(6 / 128) / 30]):
        for p in (layer.weight, layer.bias):
            assert p.abs().max() <= a
        assert layer.weight.abs().max() > 0.95 * a          # uniform over the whole range
        var = layer.weight.var().item()
        assert abs(var - a * a / 3) < 0.15 * a * a / 3      # variance of U(-a, a)
    assert s.weight.abs().max() <= math.sqrt(6 / 128) / 30


def _ks(sorted_values: torch.Tensor, cdf) -> float:
    n = sorted_values.numel()
    emp = torch.arange(1, n + 1, dtype=D) / n
    return float((cdf(sorted_values) - emp).abs().max())


def test_siren_activation_statistics_follow_the_paper():
    # Sitzmann et al. 2020, sec. 3.2: with inputs uniform on [-1, 1], each hidden sine receives a
    # (nearly) standard normal argument, and its output is (nearly) arcsine distributed, at any depth.
    # Exactly: Var z_{l+1} = 1 - exp(-2 Var z_l) + 2/n, whose fixed point is 0.80 (std 0.89).
    n = 256
    s = pinn.Siren(1, n, 6, generator=torch.Generator().manual_seed(1), dtype=D)
    x = torch.linspace(-1, 1, 2048, dtype=D)[:, None]
    with torch.no_grad():
        zs = [z.reshape(-1) for z in s.pre_activations(x)]
    arcsine = lambda y: 0.5 + torch.asin(y) / math.pi  # noqa: E731
    normal = lambda z: 0.5 * (1 + torch.erf(z / math.sqrt(2)))  # noqa: E731
    assert zs[0].std() > 10  # the first layer spans many periods
    assert _ks(torch.sin(zs[0]).sort().values, arcsine) < 0.02
    for prev, z in zip(zs[:-1], zs[1:]):
        var_pred = 1 - math.exp(-2 * prev.var().item()) + 2 / n if prev is not zs[0] else \
            2 * torch.sin(prev).var().item() + 2 / n
        assert abs(z.var().item() - var_pred) < 0.08 * var_pred
        assert 0.85 < z.std().item() < 1.05 and abs(z.mean().item()) < 0.1
        assert _ks((z / z.std()).sort().values, normal) < 0.05
        assert _ks(torch.sin(z).sort().values, arcsine) < 0.1


def test_siren_derivative_is_a_sine_network():
    layer = pinn.SineLayer(1, 8, omega_0=30.0, first=True, generator=torch.Generator().manual_seed(2), dtype=D)
    x = torch.linspace(-1, 1, 11, dtype=D).reshape(-1, 1).requires_grad_(True)
    y = layer(x)
    jac = torch.stack([torch.autograd.grad(y[:, j].sum(), x, retain_graph=True)[0][:, 0] for j in range(8)], 1)
    z = layer.pre_activation(x).detach()
    torch.testing.assert_close(jac, 30 * torch.sin(z + math.pi / 2) * layer.weight[:, 0].detach())


def test_siren_fits_and_differentiates_a_sine():
    torch.manual_seed(0)
    s = pinn.Siren(1, 32, 2, generator=torch.Generator().manual_seed(3), dtype=D)
    x = torch.linspace(-1, 1, 100, dtype=D)[:, None]
    opt = torch.optim.Adam(s.parameters(), lr=1e-3)
    for _ in range(600):
        opt.zero_grad()
        loss = (s(x) - torch.sin(3 * x)).square().mean()
        loss.backward()
        opt.step()
    xg = x.clone().requires_grad_(True)
    du = pinn.input_derivative(s(xg), xg)
    assert pinn.relative_l2(du, 3 * torch.cos(3 * x)) < 0.1


def test_relative_l2():
    a = torch.tensor([3.0, 4.0])
    assert pinn.relative_l2(a, a).item() == 0
    assert pinn.relative_l2(torch.zeros(2), a).item() == pytest.approx(1.0)
    assert pinn.relative_l2(a + torch.tensor([0.5, 0.0]), a).item() == pytest.approx(0.1)


# ------------------------------------------------------------------ bad input

GOOD_U = lambda x, t: torch.sin(x) * t  # noqa: E731


@pytest.mark.parametrize("call, err, match", [
    (lambda: pinn.input_derivative(torch.ones(3), torch.ones(3)), ValueError, "require grad"),
    (lambda: pinn.input_derivative(torch.ones(2), torch.ones(3, requires_grad=True)), ValueError, "shape of x"),
    (lambda: pinn.input_derivative(torch.ones(3), torch.ones(3, requires_grad=True), order=0), ValueError, "order"),
    (lambda: pinn.input_derivative(torch.ones(3), torch.ones(3, requires_grad=True), order=2.0), TypeError, "order"),
    (lambda: pinn.input_derivative(torch.ones(3), torch.ones(3, requires_grad=True), order=10**400),
     ValueError, "order"),
    (lambda: pinn.input_derivative([1.0], torch.ones(1, requires_grad=True)), TypeError, "y must be"),
    (lambda: pinn.input_derivative(torch.tensor([math.nan]), torch.ones(1, requires_grad=True)), ValueError, "y"),
    (lambda: pinn.input_derivative(torch.ones(1), torch.ones(1, dtype=torch.long)), TypeError, "x must have"),
    (lambda: pinn.partials("u", torch.ones(2), torch.ones(2)), TypeError, "u must be callable"),
    (lambda: pinn.partials(GOOD_U, torch.ones(2), torch.ones(3)), ValueError, "same shape"),
    (lambda: pinn.partials(GOOD_U, torch.ones(2), torch.ones(2, dtype=D)), TypeError, "share dtype"),
    (lambda: pinn.partials(GOOD_U, torch.ones(0), torch.ones(0)), ValueError, "x must have at least"),
    (lambda: pinn.partials(GOOD_U, torch.tensor([math.inf]), torch.ones(1)), ValueError, "x must be finite"),
    (lambda: pinn.partials(lambda x, t: x[:1], torch.ones(2), torch.ones(2)), ValueError, "one value per point"),
    (lambda: pinn.partials(lambda x, t: x * math.nan, torch.ones(2), torch.ones(2)), ValueError, "u returned"),
    (lambda: pinn.partials(lambda x, t: "u", torch.ones(2), torch.ones(2)), TypeError, "u must return"),
    (lambda: pinn.partials(lambda x, t: torch.sqrt(x), torch.zeros(2), torch.ones(2)), ValueError, "u_x"),
    (lambda: pinn.partials(GOOD_U, torch.ones(2), torch.ones(2), second_order=1), TypeError, "second_order"),
    (lambda: pinn.advection_residual(GOOD_U, torch.ones(2), torch.ones(2), math.nan), ValueError, "c must be"),
    (lambda: pinn.advection_residual(GOOD_U, torch.ones(2), torch.ones(2), "1"), TypeError, "c must be"),
    (lambda: pinn.advection_residual(GOOD_U, torch.ones(2), torch.ones(2), 1e300), ValueError, "c="),
    (lambda: pinn.heat_residual(GOOD_U, torch.ones(2), torch.ones(2), -1.0), ValueError, "nu must be >= 0"),
    (lambda: pinn.pinn_loss(torch.ones(2), torch.ones(2), w_initial=-1), ValueError, "w_initial"),
    (lambda: pinn.pinn_loss(torch.ones(2), torch.ones(0)), ValueError, "initial"),
    (lambda: pinn.pinn_loss(torch.ones(2), boundary=[0.0]), TypeError, "boundary"),
    (lambda: pinn.pinn_loss(torch.full((2,), 300.0, dtype=torch.float16)), ValueError, "overflow"),
    (lambda: pinn.periodic_features(torch.ones(2), 0.0), ValueError, "period must be positive"),
    (lambda: pinn.periodic_features(torch.ones(2), 1.0, harmonics=0), ValueError, "harmonics"),
    (lambda: pinn.FieldMLP(width=0), ValueError, "width"),
    (lambda: pinn.FieldMLP(activation="sigmoid"), ValueError, "activation"),
    (lambda: pinn.FieldMLP(x_range=(1.0, 0.0)), ValueError, "x_range"),
    (lambda: pinn.FieldMLP(x_range=(0.0, 1.0), period=1.0), ValueError, "not both"),
    (lambda: pinn.FieldMLP(dtype=torch.int64), TypeError, "dtype"),
    (lambda: pinn.FieldMLP(generator=0), TypeError, "generator"),
    (lambda: pinn.FieldMLP()(torch.ones(2, dtype=D), torch.ones(2, dtype=D)), TypeError, "module's dtype"),
    (lambda: pinn.FieldMLP()(torch.ones(2), torch.ones(3)), ValueError, "same shape"),
    (lambda: pinn.InitialConditionAnsatz(GOOD_U, torch.sin), TypeError, "net must be"),
    (lambda: pinn.InitialConditionAnsatz(pinn.FieldMLP(), None), TypeError, "u0 must be callable"),
    (lambda: pinn.InitialConditionAnsatz(pinn.FieldMLP(), lambda x: x[:1])(torch.ones(2), torch.ones(2)),
     ValueError, "u0 must return"),
    (lambda: pinn.siren_bound(0), ValueError, "fan_in"),
    (lambda: pinn.siren_bound(3, omega_0=0.0), ValueError, "omega_0"),
    (lambda: pinn.siren_bound(3, first="yes"), TypeError, "first"),
    (lambda: pinn.SineLayer(2, 3)(torch.ones(4, 3)), ValueError, r"\(\.\.\., 2\)"),
    (lambda: pinn.SineLayer(2, 3)(torch.ones(())), ValueError, "x must have shape"),
    (lambda: pinn.Siren(hidden_layers=0), ValueError, "hidden_layers"),
    (lambda: pinn.Siren()(torch.tensor([[math.nan]])), ValueError, "x must be finite"),
    (lambda: pinn.relative_l2(torch.ones(2), torch.zeros(2)), ValueError, "exact must not be all zero"),
    (lambda: pinn.relative_l2(torch.ones(2), torch.ones(3)), ValueError, "shape of exact"),
    (lambda: pinn.relative_l2(torch.ones(2, dtype=torch.float16), torch.full((2,), 1e-30)), ValueError, "exact"),
])
def test_bad_input_is_refused_by_name(call, err, match):
    with pytest.raises(err, match=match):
        call()


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([None, "x", 1.5, [1.0], torch.ones(2, dtype=torch.long), torch.ones(2, dtype=torch.bool),
                        torch.ones(2, dtype=torch.complex64), torch.tensor([math.nan, 1.0])]),
       st.sampled_from(["x", "t"]))
def test_every_point_argument_is_checked(bad, which):
    good = torch.ones(2)
    args = {"x": good, "t": good, which: bad}
    for fn in (lambda: pinn.partials(GOOD_U, args["x"], args["t"]),
               lambda: pinn.advection_residual(GOOD_U, args["x"], args["t"], 1.0),
               lambda: pinn.heat_residual(GOOD_U, args["x"], args["t"], 1.0),
               lambda: pinn.FieldMLP()(args["x"], args["t"])):
        with pytest.raises((TypeError, ValueError), match=which):
            fn()


def test_user_function_errors_reach_the_caller():
    class Boom(Exception):
        pass

    def boom(x, t):
        raise Boom("user code failed")

    with pytest.raises(Boom):
        pinn.partials(boom, torch.ones(2), torch.ones(2))


def test_half_precision_is_handled_or_refused():
    x = torch.linspace(0, 1, 5, dtype=torch.bfloat16)
    p = pinn.partials(lambda x, t: x * x * t, x, x)
    assert p.u_x.dtype == torch.bfloat16 and torch.isfinite(p.u_xx).all()
    net = pinn.FieldMLP(width=4, depth=1, dtype=torch.float16)
    assert net(x.half(), x.half()).dtype == torch.float16
