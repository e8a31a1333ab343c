"""Tests of lib/flows.py against closed forms, lib.score's mixture score, lib.ode.odeint and autograd."""

import math

import pytest
import torch

from lib import flows as F
from lib import ode, score

D = torch.float64
RING = 4.0 * torch.stack([torch.cos(2 * math.pi * torch.arange(8, dtype=D) / 8),
                          torch.sin(2 * math.pi * torch.arange(8, dtype=D) / 8)], 1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spd(d: int = 2, seed: int = 0) -> torch.Tensor:
    """A symmetric positive definite matrix: x1 = A x0 is the optimal (straight) coupling of two Gaussians."""
    b = torch.randn(d, d, generator=_gen(seed), dtype=D)
    return b @ b.T / d + 0.5 * torch.eye(d, dtype=D)


def _affine_velocity(a: torch.Tensor):
    """The exact velocity of the straight coupling x1 = A x0: v(x, t) = (A - I)((1 - t) I + t A)^(-1) x."""
    eye = torch.eye(a.shape[0], dtype=D)

    def v(x, t):
        m = (1 - t)[:, None, None] * eye + t[:, None, None] * a                # (B, d, d)
        return torch.linalg.solve(m, x.unsqueeze(-1)).squeeze(-1) @ (a - eye).T
    return v


def _rotation(x, t):
    return torch.stack([-x[:, 1], x[:, 0]], 1)


# ---------------------------------------------------------------- interpolants and the loss

@pytest.mark.parametrize("interpolant", ["linear", "trig"])
def test_interpolate_endpoints_and_time_derivative(interpolant):
    g = _gen(0)
    x0, x1 = torch.randn(5, 3, generator=g, dtype=D), torch.randn(5, 3, generator=g, dtype=D)
    for t, end in ((0.0, x0), (1.0, x1)):
        x_t, _ = F.interpolate(x0, x1, t, interpolant)
        torch.testing.assert_close(x_t, end, atol=1e-12, rtol=0)
    t = torch.rand(5, generator=g, dtype=D)
    x_t, dx = F.interpolate(x0, x1, t, interpolant)
    # the time derivative by forward-mode autodiff, one sample at a time
    jac = torch.func.jacfwd(lambda s: F.interpolate(x0, x1, s, interpolant)[0])(t)   # (5, 3, 5)
    torch.testing.assert_close(dx, torch.einsum("bdb->bd", jac), atol=1e-12, rtol=0)
    if interpolant == "linear":
        torch.testing.assert_close(x_t, (1 - t)[:, None] * x0 + t[:, None] * x1)
        torch.testing.assert_close(dx, x1 - x0)
    else:
        torch.testing.assert_close(x_t, torch.cos(math.pi * t / 2)[:, None] * x0 + torch.sin(math.pi * t / 2)[:, None] * x1)


def test_loss_is_zero_for_the_exact_velocity_of_a_known_coupling():
    g = _gen(1)
    x0, c = torch.randn(64, 2, generator=g, dtype=D), torch.tensor([1.5, -0.5], dtype=D)
    constant = lambda x, t: c.expand_as(x)
    assert F.flow_matching_loss(constant, x0, x0 + c, generator=g).item() == pytest.approx(0.0, abs=1e-24)
    a = _spd()
    assert F.flow_matching_loss(_affine_velocity(a), x0, x0 @ a.T, generator=g).item() < 1e-20
    # and it is the mean squared error, summed over coordinates, for a given t
    t = torch.rand(64, generator=g, dtype=D)
    v = lambda x, s: torch.sin(x) * s[:, None]
    x_t = (1 - t)[:, None] * x0 + t[:, None] * (x0 + c)
    manual = ((v(x_t, t) - c) ** 2).sum(1).mean()
    torch.testing.assert_close(F.flow_matching_loss(v, x0, x0 + c, t), manual)


@pytest.mark.parametrize("interpolant", ["linear", "trig"])
def test_the_conditional_expectation_minimises_the_loss(interpolant):
    """L(v* + delta) - L(v*) = E |delta|^2: the cross term vanishes because v* = E[target | x_t]."""
    n, g = 400_000, _gen(2)
    x0 = torch.randn(n, 2, generator=g, dtype=D)
    x1 = RING[torch.randint(0, 8, (n,), generator=g)] + 0.3 * torch.randn(n, 2, generator=g, dtype=D)
    t = torch.rand(n, generator=g, dtype=D)
    v_star = F.MixtureVelocity(RING, 0.3, interpolant=interpolant)
    delta = lambda x, s: 0.5 * torch.sin(x) + s[:, None]
    base = F.flow_matching_loss(v_star, x0, x1, t, interpolant)
    bumped = F.flow_matching_loss(lambda x, s: v_star(x, s) + delta(x, s), x0, x1, t, interpolant)
    x_t, _ = F.interpolate(x0, x1, t, interpolant)
    expected = delta(x_t, t).square().sum(1).mean()
    assert abs((bumped - base) - expected).item() < 0.02 * expected.item()


@pytest.mark.parametrize("interpolant", ["linear", "trig"])
def test_mixture_velocity_matches_the_score_formula(interpolant):
    """v = a' E[x0|x] + b' (x - a E[x0|x]) / b with E[x0 | x_t] = -a grad log p_t (Tweedie)."""
    g = _gen(3)
    weights = torch.tensor([1.0, 2, 0, 1, 3, 1, 1, 1], dtype=D)
    v = F.MixtureVelocity(RING, 0.4, weights=weights, interpolant=interpolant)
    for t in (0.05, 0.3, 0.7, 1.0):
        x = 3 * torch.randn(50, 2, generator=g, dtype=D)
        tt = torch.tensor(t, dtype=D)
        a, b = (1 - t, t) if interpolant == "linear" else (math.cos(math.pi * t / 2), math.sin(math.pi * t / 2))
        da, db = (-1.0, 1.0) if interpolant == "linear" else (-math.pi / 2 * b, math.pi / 2 * a)
        s = score.gmm_score(x, b * RING, b * 0.4, weights, sigma=a)
        e0 = -a * s
        ref = da * e0 + db * (x - a * e0) / b
        torch.testing.assert_close(v(x, tt), ref, atol=1e-9, rtol=1e-9)
    x = torch.randn(10, 2, generator=g, dtype=D)   # at t = 0, x_t = x0 and E[x1 | x0] = E[x1]
    mean = (weights[:, None] * RING).sum(0) / weights.sum()
    expected = mean - x if interpolant == "linear" else math.pi / 2 * mean.expand_as(x)
    torch.testing.assert_close(v(x, 0.0), expected, atol=1e-12, rtol=0)


# ---------------------------------------------------------------- marginals and transport costs

def test_rectified_flow_between_gaussians_is_the_optimal_map_and_lowers_the_cost():
    """N(0, I) -> N(m, s^2 I), independent coupling: the flow of E[x1 - x0 | x_t] is x -> m + s x (OT)."""
    m, s, d = torch.tensor([[2.0, -1.0, 0.5]], dtype=D), 0.6, 3
    v = F.MixtureVelocity(m, s)
    x0 = torch.randn(4000, d, generator=_gen(4), dtype=D)
    func = lambda t, y: v(y, t.expand(y.shape[0]))
    z1 = ode.odeint(func, x0, torch.tensor([0.0, 1.0], dtype=D), rtol=1e-10, atol=1e-10)[-1]
    torch.testing.assert_close(z1, m + s * x0, atol=1e-7, rtol=0)
    x1 = m + s * torch.randn(4000, d, generator=_gen(5), dtype=D)
    independent = F.transport_cost(x0, x1).item()
    assert independent == pytest.approx(d * (1 + s * s) + m.square().sum().item(), rel=0.03)
    rectified = F.transport_cost(x0, z1).item()
    assert rectified == pytest.approx(d * (1 - s) ** 2 + m.square().sum().item(), rel=0.03)
    assert rectified == pytest.approx(independent - 2 * d * s, rel=0.03)  # the OT cost: 2 d s lower


def test_flow_preserves_a_1d_mixture_marginal():
    """In 1-D the flow map is monotone, hence the quantile map F1^-1(Phi(x0)): F1(Z1) = Phi(x0)."""
    means, s, w = torch.tensor([[-2.0], [1.0], [3.0]], dtype=D), 0.5, torch.tensor([0.5, 0.3, 0.2], dtype=D)
    v = F.MixtureVelocity(means, s, weights=w)
    x0 = torch.linspace(-2.5, 2.5, 41, dtype=D)[:, None]
    z1 = ode.odeint(lambda t, y: v(y, t.expand(y.shape[0])), x0, torch.tensor([0.0, 1.0], dtype=D),
                    rtol=1e-10, atol=1e-10)[-1]
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=D), torch.tensor(1.0, dtype=D))
    cdf1 = (w * normal.cdf((z1 - means.T) / s)).sum(1)
    torch.testing.assert_close(cdf1, normal.cdf(x0[:, 0]), atol=1e-6, rtol=0)
    assert bool((z1.diff(dim=0) > 0).all())  # trajectories never cross


def test_transport_cost_closed_forms():
    g = _gen(6)
    x0 = torch.randn(100, 4, generator=g, dtype=D)
    c = torch.tensor([1.0, -2.0, 0.0, 2.0], dtype=D)
    assert F.transport_cost(x0, x0 + c).item() == pytest.approx(9.0, rel=1e-12)
    assert F.transport_cost(x0, x0).item() == 0.0
    ref = ((x0[:, None] - x0[None]) ** 2).sum(-1).diagonal(1).mean()  # pairs (i, i+1) by brute force
    assert F.transport_cost(x0[:-1], x0[1:]).item() == pytest.approx(ref.item(), rel=1e-12)


def test_gradients_flow_through_the_points():
    g = _gen(14)
    x0 = torch.randn(6, 2, generator=g, dtype=D, requires_grad=True)
    x1 = torch.randn(6, 2, generator=g, dtype=D, requires_grad=True)
    (grad1,) = torch.autograd.grad(F.transport_cost(x0, x1), x1)
    torch.testing.assert_close(grad1, 2 * (x1 - x0).detach() / 6)
    x_t, _ = F.interpolate(x0, x1, 0.25)
    (grad0,) = torch.autograd.grad(x_t.sum(), x0)
    torch.testing.assert_close(grad0, torch.full_like(grad0, 0.75))
    assert torch.autograd.gradcheck(lambda a: F.sample(_rotation, a, 3, "heun"), (x0,))


# ---------------------------------------------------------------- samplers and straightness

def test_one_euler_step_is_exact_for_straight_flows():
    g = _gen(7)
    x0, c = torch.randn(20, 2, generator=g, dtype=D), torch.tensor([3.0, -1.0], dtype=D)
    assert torch.equal(F.sample(lambda x, t: c.expand_as(x), x0, 1), x0 + c)
    a = _spd(2, seed=1)
    v = _affine_velocity(a)
    for method in ("euler", "heun"):
        for steps in (1, 3):
            torch.testing.assert_close(F.sample(v, x0, steps, method), x0 @ a.T, atol=1e-12, rtol=0)
    # a curved flow is not integrated exactly by one step
    assert (F.sample(_rotation, x0, 1) - F.sample(_rotation, x0, 200, "heun")).abs().max() > 0.1


def test_heun_is_second_order_and_euler_first_against_odeint():
    v = F.MixtureVelocity(RING, 0.5)
    x0 = torch.randn(64, 2, generator=_gen(8), dtype=D)
    ref = ode.odeint(lambda t, y: v(y, t.expand(y.shape[0])), x0, torch.tensor([0.0, 1.0], dtype=D),
                     rtol=1e-11, atol=1e-11)[-1]
    steps = torch.tensor([16, 32, 64, 128, 256], dtype=D)
    for method, order in (("euler", 1), ("heun", 2)):
        err = torch.tensor([(F.sample(v, x0, int(n), method) - ref).norm().item() for n in steps], dtype=D)
        a = torch.stack([torch.log(steps), torch.ones_like(steps)], 1)
        fit = torch.linalg.lstsq(a, torch.log(err)[:, None]).solution[0, 0].item()
        assert fit == pytest.approx(-order, abs=0.2), (method, fit, err)


def test_sample_trajectory_and_backwards_integration():
    v = F.MixtureVelocity(RING, 0.5)
    x0 = torch.randn(30, 2, generator=_gen(9), dtype=D)
    x1, path = F.sample(v, x0, 50, "heun", return_trajectory=True)
    assert path.shape == (51, 30, 2) and torch.equal(path[0], x0) and torch.equal(path[-1], x1)
    back = F.sample(v, x1, 400, "heun", t_start=1.0, t_end=0.0)
    torch.testing.assert_close(back, x0, atol=2e-3, rtol=0)
    half = F.sample(v, x0, 25, "heun", t_end=0.5)
    torch.testing.assert_close(F.sample(v, half, 25, "heun", t_start=0.5), x1, atol=1e-12, rtol=0)


def test_straightness_zero_for_straight_positive_for_curved_closed_form():
    g = _gen(10)
    x0 = torch.randn(200, 2, generator=g, dtype=D)
    assert F.straightness(lambda x, t: torch.ones_like(x), x0, 10).item() == pytest.approx(0.0, abs=1e-24)
    assert F.straightness(_affine_velocity(_spd(2, 2)), x0, 50).item() < 1e-20
    # rotation z(t) = R(t) z0 at unit angular speed: S = E|z0|^2 (2 cos 1 - 1)
    s = F.straightness(_rotation, x0, 1000, "heun").item()
    assert s == pytest.approx(x0.square().sum(1).mean().item() * (2 * math.cos(1.0) - 1), rel=1e-5)
    # straight lines run at varying speed (v = x: z(t) = e^t z0) are not straight in Liu et al.'s sense
    assert F.straightness(lambda x, t: x, x0, 200, "heun").item() > 0.01


# ---------------------------------------------------------------- the network, training and reflow

def test_velocity_mlp_shapes_and_time_broadcast():
    net = F.VelocityMLP()
    assert sum(p.numel() for p in net.parameters()) == 3 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 2 + 2
    x = torch.randn(7, 2)
    out = net(x, torch.full((7,), 0.3))
    assert out.shape == (7, 2)
    torch.testing.assert_close(net(x, 0.3), out)
    torch.testing.assert_close(net(x, torch.tensor(0.3)), out)
    assert F.VelocityMLP(dim=3, width=8, depth=1)(torch.randn(2, 3), 0.0).shape == (2, 3)


def test_training_fits_a_straight_coupling_and_reflow_leaves_it_unchanged():
    torch.manual_seed(0)
    g = _gen(11)
    x0 = torch.randn(2048, 2, generator=g)
    c = torch.tensor([2.0, -1.0])
    net, losses = F.train_rectified_flow(F.VelocityMLP(width=32, depth=2), x0, x0 + c, coupling="paired",
                                         steps=300, batch_size=256, lr=3e-3, generator=g)
    assert len(losses) == 300 and sum(losses[-20:]) / 20 < 1e-2 < losses[0]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    new, x1, relosses = F.reflow(net, x0, ode_steps=10, steps=50, batch_size=256, lr=1e-4, generator=g)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the old model is untouched
    assert (x1 - (x0 + c)).square().sum(1).mean().sqrt().item() < 0.05  # RMS over the pairs
    assert F.transport_cost(x0, x1).item() == pytest.approx(F.transport_cost(x0, x0 + c).item(), rel=0.01)
    assert F.straightness(net, x0[:256], 20).item() < 0.01  # vs 0.08 for a unit rotation
    with torch.no_grad():
        assert (F.sample(new, x0, 1) - (x0 + c)).square().sum(1).mean().sqrt().item() < 0.15
    assert new is not net and len(relosses) == 50


def test_training_is_deterministic_given_the_generator_and_learns_from_noise():
    x1 = RING.float()[torch.arange(256) % 8]
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        _, losses = F.train_rectified_flow(F.VelocityMLP(width=16, depth=2), None, x1, steps=60,
                                           batch_size=64, lr=1e-2, generator=_gen(12))
        runs.append(losses)
    assert runs[0] == runs[1]
    assert sum(runs[0][-10:]) < sum(runs[0][:10])
    # independent coupling from a fixed pool of x0 also runs
    _, losses = F.train_rectified_flow(F.VelocityMLP(width=8, depth=1), torch.randn(100, 2), x1, steps=3,
                                       batch_size=8, generator=_gen(13))
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)


# ---------------------------------------------------------------- bad input

def test_bad_input():
    x = torch.randn(4, 2, dtype=D)
    v = F.MixtureVelocity(RING, 0.3)
    with pytest.raises(TypeError, match="x0 must be a torch.Tensor"):
        F.interpolate([[0.0, 1.0]], x, 0.5)
    with pytest.raises(ValueError, match=r"x1 must have shape \(B, d\)"):
        F.interpolate(x, x[0], 0.5)
    with pytest.raises(ValueError, match="same shape"):
        F.interpolate(x, x[:3], 0.5)
    with pytest.raises(ValueError, match="share dtype"):
        F.interpolate(x, x.float(), 0.5)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.interpolate(x.long(), x.long(), 0.5)
    with pytest.raises(ValueError, match="x0 must be finite"):
        F.interpolate(x * math.nan, x, 0.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        F.interpolate(x, x, 1.5)
    with pytest.raises(ValueError, match="t must be a finite number"):
        F.interpolate(x, x, math.nan)
    with pytest.raises(ValueError, match="t must be a number or have shape"):
        F.interpolate(x, x, torch.zeros(3, dtype=D))
    with pytest.raises(ValueError, match="interpolant must be one of"):
        F.interpolate(x, x, 0.5, "cubic")
    with pytest.raises(TypeError, match="v must be callable"):
        F.flow_matching_loss("v", x, x)
    with pytest.raises(ValueError, match="v must return a tensor of the points' shape"):
        F.flow_matching_loss(lambda a, t: a[:, :1], x, x)
    with pytest.raises(TypeError, match="v must return a torch.Tensor"):
        F.flow_matching_loss(lambda a, t: 1.0, x, x)
    with pytest.raises(TypeError, match="v must return torch.float64"):
        F.flow_matching_loss(lambda a, t: a.float(), x, x)
    with pytest.raises(ValueError, match="v returned non-finite"):
        F.flow_matching_loss(lambda a, t: a * math.inf, x, x)
    with pytest.raises(ValueError, match=r"t must be None or a tensor of shape \(4,\)"):
        F.flow_matching_loss(v, x, x, t=0.5)
    with pytest.raises(TypeError, match="generator must be None or a torch.Generator"):
        F.flow_matching_loss(v, x, x, generator=0)
    with pytest.raises(TypeError, match="means must be a floating torch.Tensor"):
        F.MixtureVelocity([[0.0, 1.0]], 0.3)
    with pytest.raises(ValueError, match="std must be a positive"):
        F.MixtureVelocity(RING, 0.0)
    with pytest.raises(ValueError, match=r"weights must have shape \(8,\)"):
        F.MixtureVelocity(RING, 0.3, weights=torch.ones(3))
    with pytest.raises(ValueError, match="weights must be non-negative"):
        F.MixtureVelocity(RING, 0.3, weights=-torch.ones(8))
    with pytest.raises(ValueError, match="x must have 2 coordinates"):
        v(torch.zeros(3, 5), 0.5)
    with pytest.raises(ValueError, match="width must be"):
        F.VelocityMLP(width=0)
    with pytest.raises(TypeError, match="depth must be an int"):
        F.VelocityMLP(depth=2.0)
    net = F.VelocityMLP()
    with pytest.raises(ValueError, match=r"x must be a torch.float32 tensor of shape \(B, 2\)"):
        net(x, 0.5)
    with pytest.raises(ValueError, match="t must be a number or a floating tensor"):
        net(x.float(), torch.zeros(3))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        F.train_rectified_flow(v, None, x)
    with pytest.raises(ValueError, match="coupling='paired' needs the pairs' x0"):
        F.train_rectified_flow(net, None, x.float(), coupling="paired")
    with pytest.raises(ValueError, match="coupling='paired' needs as many x0 as x1"):
        F.train_rectified_flow(net, x.float()[:3], x.float(), coupling="paired")
    with pytest.raises(ValueError, match="coupling must be one of"):
        F.train_rectified_flow(net, x.float(), x.float(), coupling="ot")
    with pytest.raises(ValueError, match="steps must be"):
        F.train_rectified_flow(net, None, x.float(), steps=0)
    with pytest.raises(ValueError, match="lr must be a positive"):
        F.train_rectified_flow(net, None, x.float(), lr=-1.0)
    with pytest.raises(ValueError, match="x0 must have 2 coordinates"):
        F.train_rectified_flow(net, torch.zeros(4, 3), x.float())
    with pytest.raises(ValueError, match="x1 must have the model's dtype and device"):
        F.train_rectified_flow(net, None, x)
    with pytest.raises(ValueError, match="x0 must have the model's dtype and device"):
        F.reflow(net, x)

    class Blowup(torch.nn.Module):
        def __init__(self, out_dim=2):
            super().__init__()
            self.w, self.out_dim = torch.nn.Parameter(torch.ones(())), out_dim

        def forward(self, a, t):
            return a[:, :self.out_dim] * self.w * math.inf

    with pytest.raises(ValueError, match="training loss became non-finite .* lower lr"):
        F.train_rectified_flow(Blowup(), None, x.float(), steps=3, batch_size=4)
    with pytest.raises(ValueError, match="model must return a tensor of the points' shape"):
        F.train_rectified_flow(Blowup(1), None, x.float(), steps=3, batch_size=4)
    with pytest.raises(ValueError, match="model returned non-finite"):
        F.reflow(Blowup(), x.float(), ode_steps=2, steps=1)
    with pytest.raises(ValueError, match="method must be one of"):
        F.sample(v, x, 2, "rk4")
    with pytest.raises(ValueError, match=r"steps must be in \[1, "):
        F.sample(v, x, 0)
    with pytest.raises(ValueError, match="t_start and t_end must differ"):
        F.sample(v, x, 2, t_start=0.5, t_end=0.5)
    with pytest.raises(ValueError, match=r"t_end must lie in \[0, 1\]"):
        F.sample(v, x, 2, t_end=2.0)
    with pytest.raises(TypeError, match="return_trajectory must be a bool"):
        F.sample(v, x, 2, return_trajectory=1)
    with pytest.raises(ValueError, match="v returned non-finite"):
        F.sample(lambda a, t: a * 1e300, x, 3)
    with pytest.raises(ValueError, match="ode_steps must be"):
        F.reflow(net, x.float(), ode_steps=0)
    with pytest.raises(TypeError, match="v must be callable"):
        F.straightness(None, x)
    with pytest.raises(ValueError, match="x1 must be finite"):
        F.transport_cost(x, x * math.inf)
