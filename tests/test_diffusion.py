"""Tests of lib/diffusion.py: schedules against closed forms and diffusers, samplers against exact
solutions for Gaussian data, the probability-flow ODE against lib.ode and a closed form, exact BDIA
inversion, and every error path."""

import math

import pytest
import torch

from lib import diffusion as D
from lib.denoiser import GaussianEps

F64 = torch.float64


def _schedule(T=100):
    return D.NoiseSchedule.linear(T, 0.1 / T, 20 / T)  # the lab's schedule at T = 100


class MixtureEps:
    """Exact E[eps | x_t] for x0 ~ (1/2) N(mu, s^2 I) + (1/2) N(-mu, s^2 I), by autograd of log p_t."""

    def __init__(self, schedule, mu, s=0.3):
        self.schedule, self.mu, self.s = schedule, mu, s

    def __call__(self, x, t, labels=None):
        ab = 1 / (1 + self.schedule.sigma_at(t.to(x.dtype)) ** 2)
        ab = ab.view((-1,) + (1,) * (x.ndim - 1))
        var = ab * self.s ** 2 + 1 - ab
        with torch.enable_grad():
            z = x.detach().requires_grad_(True)
            logp = torch.stack([-((z - ab.sqrt() * m) ** 2).flatten(1).sum(1) / (2 * var.flatten())
                                for m in (self.mu, -self.mu)]).logsumexp(0)
            (score,) = torch.autograd.grad(logp.sum(), z)
        return -(1 - ab).sqrt() * score


# ------------------------------------------------------------------ schedules

def test_linear_schedule_closed_form():
    s = D.NoiseSchedule.linear(1000)
    i = torch.arange(1000, dtype=F64)
    betas = 1e-4 + (0.02 - 1e-4) * i / 999
    assert s.betas.dtype == F64 and s.betas.shape == (1000,) and s.T == 1000
    torch.testing.assert_close(s.betas, betas, rtol=0, atol=1e-15)
    torch.testing.assert_close(s.alphas, 1 - betas)
    abar = torch.tensor([math.prod(1 - b for b in betas[: k + 1].tolist()) for k in range(0, 1000, 97)], dtype=F64)
    torch.testing.assert_close(s.alphas_cumprod[::97], abar, rtol=1e-12, atol=0)
    torch.testing.assert_close(s.sigmas, ((1 - s.alphas_cumprod) / s.alphas_cumprod).sqrt())


def test_cosine_schedule_closed_form():
    T, s_ = 1000, 0.008
    s = D.NoiseSchedule.cosine(T)
    f = lambda t: math.cos((t / T + s_) / (1 + s_) * math.pi / 2) ** 2
    abar = torch.tensor([f(t + 1) / f(0) for t in range(T)], dtype=F64)
    uncapped = s.betas < 0.999
    assert uncapped.sum() >= T - 2 and not bool(uncapped[-1])  # only the very end hits the cap
    torch.testing.assert_close(s.alphas_cumprod[uncapped], abar[uncapped], rtol=1e-10, atol=1e-14)
    assert s.betas.max().item() == pytest.approx(0.999)
    capped = D.NoiseSchedule.cosine(50, max_beta=0.1)
    assert capped.betas.max().item() == pytest.approx(0.1)


@pytest.mark.parametrize("T", [100, 1000])
def test_schedules_match_diffusers(T):
    diffusers = pytest.importorskip("diffusers")
    for ours, kind, kw in ((D.NoiseSchedule.linear(T), "linear", {}),
                           (D.NoiseSchedule.linear(T, 1e-3, 0.2), "linear", dict(beta_start=1e-3, beta_end=0.2)),
                           (D.NoiseSchedule.cosine(T), "squaredcos_cap_v2", {})):
        for cls in (diffusers.DDPMScheduler, diffusers.DDIMScheduler):
            theirs = cls(num_train_timesteps=T, beta_schedule=kind, **kw)
            torch.testing.assert_close(ours.betas, theirs.betas.double(), rtol=1e-6, atol=1e-8)
            torch.testing.assert_close(ours.alphas_cumprod, theirs.alphas_cumprod.double(), rtol=2e-5, atol=1e-8)


def test_sigma_interpolation_is_exact_on_the_grid_and_inverts():
    s = _schedule()
    t = torch.arange(100, dtype=F64)
    torch.testing.assert_close(s.sigma_at(t), s.sigmas, rtol=1e-12, atol=0)
    u = torch.linspace(0, 99, 777, dtype=F64)
    torch.testing.assert_close(s.t_of_sigma(s.sigma_at(u)), u, rtol=0, atol=1e-9)
    assert bool((s.sigma_at(u).diff() > 0).all())
    assert s.abar(-1) == 1.0 and s.abar(0) == pytest.approx(1 - 1e-3)


def test_schedule_errors():
    with pytest.raises(ValueError, match="betas must lie in"):
        D.NoiseSchedule(torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="betas must be finite"):
        D.NoiseSchedule(torch.tensor([0.1, math.nan]))
    with pytest.raises(ValueError, match="at least 2"):
        D.NoiseSchedule(torch.tensor([0.1]))
    with pytest.raises(TypeError, match="betas"):
        D.NoiseSchedule("0.1")
    with pytest.raises(ValueError, match="beta_start <= beta_end"):
        D.NoiseSchedule.linear(10, 0.2, 0.1)
    with pytest.raises(TypeError, match="T must be an int"):
        D.NoiseSchedule.linear(10.0)
    with pytest.raises(ValueError, match="max_beta"):
        D.NoiseSchedule.cosine(10, max_beta=1.0)
    with pytest.raises(ValueError, match="s must be >= 0"):
        D.NoiseSchedule.cosine(10, s=-0.1)
    with pytest.raises(ValueError, match="t must be in"):
        _schedule().abar(100)


# ------------------------------------------------------------------ forward process

def test_q_sample_formula_and_moments():
    s = _schedule()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 3, dtype=F64, generator=g)
    noise = torch.randn(4, 3, dtype=F64, generator=g)
    t = torch.tensor([0, 5, 50, 99])
    ab = s.alphas_cumprod[t][:, None]
    torch.testing.assert_close(D.q_sample(x0, t, s, noise), ab.sqrt() * x0 + (1 - ab).sqrt() * noise)
    torch.testing.assert_close(D.q_sample(x0, 50, s, noise), D.q_sample(x0, torch.full((4,), 50), s, noise))
    # moments over many draws: mean sqrt(abar) x0, variance 1 - abar
    x0 = torch.full((200_000, 1), 2.0, dtype=F64)
    xt = D.q_sample(x0, 30, s, generator=torch.Generator().manual_seed(1))
    ab = s.abar(30)
    assert abs(xt.mean().item() - 2 * math.sqrt(ab)) < 4 * math.sqrt((1 - ab) / 2e5)
    assert xt.var().item() == pytest.approx(1 - ab, rel=0.01)


def test_predict_x0_inverts_q_sample_and_score_matches_autograd():
    s = _schedule()
    g = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(5, 2, dtype=F64, generator=g), torch.randn(5, 2, dtype=F64, generator=g)
    xt = D.q_sample(x0, 40, s, noise)
    torch.testing.assert_close(D.predict_x0(xt, noise, 40, s), x0)
    # Gaussian data N(m, v): the score of p_t, from autograd of its log-density, is -eps* / sqrt(1 - abar)
    m, std = 0.7, 0.4
    model = GaussianEps(s, m, std)
    for t in (0, 10, 60, 99):
        ab = s.abar(t)
        z = torch.randn(6, 2, dtype=F64, generator=g).requires_grad_(True)
        logp = -((z - math.sqrt(ab) * m) ** 2).sum() / (2 * (ab * std ** 2 + 1 - ab))
        (score,) = torch.autograd.grad(logp, z)
        eps = model(z.detach(), torch.full((6,), float(t), dtype=F64))
        torch.testing.assert_close(D.eps_to_score(eps, t, s), score, rtol=1e-10, atol=1e-12)


def test_diffusion_loss_matches_manual_computation_and_drops_labels():
    s = _schedule()
    seen = {}

    def model(x, t, labels=None):
        seen["t"], seen["labels"], seen["x"] = t, labels, x
        return 0.5 * x

    x0 = torch.randn(64, 3, generator=torch.Generator().manual_seed(3))
    labels = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(4))
    loss = D.diffusion_loss(model, x0, s, labels=labels, p_uncond=0.0, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    t = torch.randint(0, 100, (64,), generator=g)
    noise = torch.randn(64, 3, generator=g)
    xt = D.q_sample(x0, t, s, noise)
    torch.testing.assert_close(seen["x"], xt)
    torch.testing.assert_close(seen["t"], t.float())
    assert torch.equal(seen["labels"], labels)
    torch.testing.assert_close(loss, ((0.5 * xt - noise) ** 2).mean())
    D.diffusion_loss(model, x0, s, labels=labels, p_uncond=1.0)
    assert bool((seen["labels"] == D.NULL_LABEL).all())
    D.diffusion_loss(model, x0, s, labels=labels, p_uncond=0.5, generator=torch.Generator().manual_seed(6))
    dropped = (seen["labels"] == D.NULL_LABEL).float().mean().item()
    assert 0.3 < dropped < 0.7 and torch.equal(seen["labels"][seen["labels"] >= 0], labels[seen["labels"] >= 0])
    w = torch.tensor(0.5, requires_grad=True)
    D.diffusion_loss(lambda x, t: w * x, x0, s).backward()
    assert w.grad is not None and math.isfinite(w.grad.item())


# ------------------------------------------------------------------ DDIM and the probability-flow ODE

def test_ddim_timesteps_match_diffusers():
    diffusers = pytest.importorskip("diffusers")
    for T, n in ((100, 20), (1000, 50), (100, 7), (100, 100), (10, 3)):
        for spacing in ("leading", "trailing", "linspace"):
            sched = diffusers.DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing)
            sched.set_timesteps(n)
            assert D.ddim_timesteps(T, n, spacing).tolist() == sched.timesteps.tolist(), (T, n, spacing)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_ddim_timesteps_are_steps_distinct_decreasing_times(spacing):
    """Every (T, steps): exactly ``steps`` distinct times in [0, T-1], decreasing (found by fuzzing:
    ``arange(T, 0, -T/steps)`` has one entry too many when rounding leaves ~1e-15 above 0, T=21, 15)."""
    for T in range(2, 120):
        for n in range(1, T + 1):
            ts = D.ddim_timesteps(T, n, spacing)
            assert ts.shape == (n,) and int(ts.min()) >= 0 and int(ts.max()) <= T - 1, (T, n)
            assert bool((ts.diff() < 0).all()), (T, n, ts)
    assert D.ddim_timesteps(21, 15, "trailing").tolist() == [20, 19, 17, 16, 14, 13, 12, 10, 9, 7, 6, 5, 3, 2, 0]


def test_ddim_step_is_exact_for_a_point_mass():
    """For data at a single point m, eps* is constant along ODE paths: one DDIM step lands on m."""
    s = _schedule()
    m = torch.tensor([0.3, -1.2], dtype=F64)
    model = GaussianEps(s, m, 0.0)
    x = torch.randn(7, 2, dtype=F64, generator=torch.Generator().manual_seed(7))
    for t in (99, 50, 3):
        eps = model(x, torch.full((7,), float(t), dtype=F64))
        torch.testing.assert_close(D.ddim_step(x, eps, t, -1, s), m.expand(7, 2), rtol=0, atol=1e-12)
    for n in (1, 3, 20):
        torch.testing.assert_close(D.ddim_sample(model, x, s, n), m.expand(7, 2), rtol=0, atol=1e-11)


def test_ddim_converges_to_the_exact_ode_solution_at_first_order():
    """Gaussian data N(m, s^2): DDIM along t = T-1, ..., 0 vs the closed-form probability-flow map."""
    sch = D.NoiseSchedule.linear(1000)
    model = GaussianEps(sch, 0.5, 0.3)
    x = torch.randn(50, 2, dtype=F64, generator=torch.Generator().manual_seed(8))
    exact = model.ode_solution(x, sch.sigmas[999].item(), sch.sigmas[0].item())
    errors = []
    for stride in (1, 10):
        ts = list(range(999, -1, -stride))
        if ts[-1] != 0:
            ts.append(0)
        y = x
        for t, tp in zip(ts[:-1], ts[1:]):
            y = D.ddim_step(y, model(y, torch.full((50,), float(t), dtype=F64)), t, tp, sch)
        errors.append((y - exact).abs().max().item())
    assert errors[0] < 1e-2
    assert 5 < errors[1] / errors[0] < 20, errors  # first order: error ~ step size
    # the ODE through lib.ode meets the closed form at the tolerance
    ode = D.probability_flow_ode(model, x, sch, t_from=999, t_to=0, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ode, exact, rtol=0, atol=1e-7)
    # ...in both directions: encoding undoes decoding
    back = D.probability_flow_ode(model, ode, sch, t_from=0, t_to=999, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-6)


def test_ddim_with_many_steps_approaches_the_ode_for_a_nonlinear_field():
    s = _schedule()
    model = MixtureEps(s, torch.tensor([1.0, -0.5], dtype=F64))
    x = torch.randn(40, 2, dtype=F64, generator=torch.Generator().manual_seed(9))
    x = x * s.sigmas[99].item() / math.sqrt(1 + s.sigmas[99].item() ** 2)  # x_T ~ the prior's scale
    ode = D.probability_flow_ode(model, x, s, t_from=99, rtol=1e-9, atol=1e-9)
    errs = [(D.ddim_sample(model, x, s, n, spacing="linspace") - ode).abs().max().item() for n in (10, 100)]
    assert errs[1] < 0.05 and errs[1] < errs[0] / 5, errs  # first order
    # the samples end near the two modes +-mu
    d = torch.stack([(ode - m).norm(dim=1) for m in (model.mu, -model.mu)]).min(0).values
    assert d.max().item() < 1.5


def test_ddim_sample_matches_diffusers():
    diffusers = pytest.importorskip("diffusers")
    s = _schedule()
    model = MixtureEps(s, torch.tensor([1.0, -0.5, 0.2]))
    sched = diffusers.DDIMScheduler(num_train_timesteps=100, trained_betas=s.betas.numpy(), clip_sample=False,
                                    set_alpha_to_one=True, timestep_spacing="leading")
    sched.set_timesteps(20)
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(10))
    y = x
    for t in sched.timesteps:
        y = sched.step(model(y, torch.full((16,), float(t))), t, y, eta=0.0).prev_sample
    ours, traj = D.ddim_sample(model, x, s, 20, return_trajectory=True)
    torch.testing.assert_close(ours, y, rtol=0, atol=1e-5)
    assert traj.shape == (21, 16, 3) and torch.equal(traj[0], x) and torch.equal(traj[-1], ours)


def test_ddim_eta_one_is_the_ddpm_step():
    s = _schedule()
    g = torch.Generator().manual_seed(11)
    x, eps, z = (torch.randn(5, 4, dtype=F64, generator=g) for _ in range(3))
    for t in (99, 40, 1, 0):
        torch.testing.assert_close(D.ddim_step(x, eps, t, t - 1, s, eta=1.0, noise=z),
                                   D.ddpm_step(x, eps, t, s, noise=z), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ DDPM

def _ddpm_moments(s, m, std, variance):
    """Exact output moments of DDPM with the exact eps for N(m, std^2) data, from x_T ~ N(0, 1).

    eps*(x) = k (x - sqrt(abar) m) is linear, so x <- c_x x + c_eps eps*(x) + sigma z maps a Gaussian
    to a Gaussian: mean <- a mean + c, var <- a^2 var + sigma^2."""
    mean, var = 0.0, 1.0
    for t in range(s.T - 1, -1, -1):
        ab, beta = s.abar(t), s.betas[t].item()
        k = math.sqrt(1 - ab) / (ab * std ** 2 + 1 - ab)
        c_x, c_eps = 1 / math.sqrt(1 - beta), -beta / math.sqrt((1 - ab) * (1 - beta))
        a, c = c_x + c_eps * k, -c_eps * k * math.sqrt(ab) * m
        noise = 0.0 if t == 0 else (beta * (1 - s.abar(t - 1)) / (1 - ab) if variance == "small" else beta)
        mean, var = a * mean + c, a * a * var + noise
    return mean, var


def test_ddpm_on_gaussian_data_gives_the_right_moments():
    s = _schedule()
    m, std, n = 0.5, 0.3, 40_000
    model = GaussianEps(s, m, std)
    x_T = torch.randn(n, 1, dtype=F64, generator=torch.Generator().manual_seed(12))
    for variance in ("small", "large"):
        x0 = D.ddpm_sample(model, x_T, s, variance=variance, generator=torch.Generator().manual_seed(13))
        mean, var = _ddpm_moments(s, m, std, variance)
        assert abs(x0.mean().item() - mean) < 4 * math.sqrt(var / n)
        assert x0.var().item() == pytest.approx(var, rel=0.03)
        assert mean == pytest.approx(m, abs=1e-4)
    # the true reverse variance lies between beta_tilde ("small") and beta ("large") (Ho et al. 2020,
    # sec. 3.2), so the two bracket the data variance, and both approach it as T grows
    for sch in (s, D.NoiseSchedule.linear(1000), D.NoiseSchedule.cosine(1000)):
        small, large = _ddpm_moments(sch, m, std, "small")[1], _ddpm_moments(sch, m, std, "large")[1]
        assert small < std ** 2 < large
    assert abs(_ddpm_moments(D.NoiseSchedule.linear(1000), m, std, "small")[1] - std ** 2) < 0.03 * std ** 2
    x0_large, traj = D.ddpm_sample(model, x_T[:100], s, variance="large", return_trajectory=True,
                                   generator=torch.Generator().manual_seed(14))
    assert traj.shape == (101, 100, 1) and torch.equal(traj[-1], x0_large)


def test_ddpm_step_formula():
    s = _schedule()
    g = torch.Generator().manual_seed(15)
    x, eps, z = (torch.randn(3, 2, dtype=F64, generator=g) for _ in range(3))
    t = 30
    beta, ab, ab_prev = s.betas[t].item(), s.abar(t), s.abar(t - 1)
    mean = (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
    torch.testing.assert_close(D.ddpm_step(x, eps, t, s, noise=z), mean + math.sqrt(beta * (1 - ab_prev) / (1 - ab)) * z)
    torch.testing.assert_close(D.ddpm_step(x, eps, t, s, noise=z, variance="large"), mean + math.sqrt(beta) * z)
    torch.testing.assert_close(D.ddpm_step(x, eps, 0, s, noise=z), D.predict_x0(x, eps, 0, s))


# ------------------------------------------------------------------ inversion

@pytest.mark.parametrize("dtype,tol", [(F64, 1e-11), (torch.float32, 1e-4)])
def test_bdia_round_trip_is_exact(dtype, tol):
    s = _schedule()
    model = MixtureEps(s, torch.tensor([1.0, -0.5, 0.25], dtype=dtype))
    x0 = torch.randn(32, 3, dtype=dtype, generator=torch.Generator().manual_seed(16))
    for steps in (1, 2, 10, 50):
        z_T, z_next = D.bdia_invert(model, x0, s, steps)
        back, traj = D.bdia_sample(model, z_T, s, steps, x_next=z_next, return_trajectory=True)
        assert (back - x0).abs().max().item() < tol, steps
        assert traj.shape == (steps + 1 if steps > 1 else 2, 32, 3)
    # DDIM inversion is only approximate: its round trip error is orders of magnitude larger
    ddim_err = (D.ddim_sample(model, D.ddim_invert(model, x0, s, 10), s, 10) - x0).abs().max().item()
    assert ddim_err > 1e3 * max((back - x0).abs().max().item(), tol / 1e3)


def test_bdia_without_a_pair_starts_with_ddim_and_ddim_invert_trajectory():
    s = _schedule()
    model = GaussianEps(s, 0.2, 0.0)  # a point mass: every method lands exactly on it
    x = torch.randn(4, 2, dtype=F64, generator=torch.Generator().manual_seed(17))
    torch.testing.assert_close(D.bdia_sample(model, x, s, 10), torch.full((4, 2), 0.2, dtype=F64))
    x0 = torch.randn(4, 2, dtype=F64)
    z, traj = D.ddim_invert(model, x0, s, 5, return_trajectory=True)
    assert traj.shape == (6, 4, 2) and torch.equal(traj[0], x0) and torch.equal(traj[-1], z)


def test_labels_reach_the_model():
    s = _schedule()
    got = []

    def model(x, t, labels=None):
        got.append(labels)
        return torch.zeros_like(x)

    x = torch.randn(3, 2)
    y = torch.tensor([0, -1, 4])
    for fn in (lambda: D.ddim_sample(model, x, s, 2, labels=y), lambda: D.ddpm_sample(model, x, s, labels=y),
               lambda: D.bdia_sample(model, x, s, 3, labels=y), lambda: D.ddim_invert(model, x, s, 2, labels=y),
               lambda: D.probability_flow_ode(model, x, s, labels=y, method="euler", step_size=50.0)):
        got.clear()
        fn()
        assert got and all(g is y for g in got)
    got.clear()
    D.ddim_sample(model, x, s, 2)
    assert got == [None, None]


# ------------------------------------------------------------------ errors

def test_bad_input():
    s = _schedule()
    x = torch.randn(3, 2)
    model = GaussianEps(s)
    with pytest.raises(TypeError, match="schedule must be a NoiseSchedule"):
        D.ddim_sample(model, x, "linear", 10)
    with pytest.raises(ValueError, match="x_T must be finite"):
        D.ddim_sample(model, torch.full((3, 2), math.nan), s, 10)
    with pytest.raises(TypeError, match="x_T must be float32 or float64"):
        D.ddim_sample(model, torch.ones(3, 2, dtype=torch.int64), s, 10)
    with pytest.raises(ValueError, match="steps must be <= T"):
        D.ddim_sample(model, x, s, 101)
    with pytest.raises(ValueError, match="spacing must be one of"):
        D.ddim_sample(model, x, s, 10, spacing="uniform")
    with pytest.raises(ValueError, match="eta must be >= 0"):
        D.ddim_sample(model, x, s, 10, eta=-1.0)
    with pytest.raises(TypeError, match="model must be callable"):
        D.ddim_sample("unet", x, s, 10)
    with pytest.raises(ValueError, match="model must return eps of x_t's shape"):
        D.ddim_sample(lambda x, t: x[:, :1], x, s, 10)
    with pytest.raises(TypeError, match="model must return a floating torch.Tensor"):
        D.ddpm_sample(lambda x, t: "eps", x, s)
    with pytest.raises(ValueError, match="non-finite"):
        D.ddim_sample(lambda x, t: x * math.nan, x, s, 10)
    with pytest.raises(TypeError, match="labels must be None or an int64 tensor"):
        D.ddim_sample(model, x, s, 10, labels=torch.zeros(3))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        D.ddim_sample(model, x, s, 10, labels=torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="labels must be >= -1"):
        D.ddim_sample(model, x, s, 10, labels=torch.tensor([0, -2, 1]))
    with pytest.raises(ValueError, match="t and t_prev must differ"):
        D.ddim_step(x, x, 5, 5, s)
    with pytest.raises(ValueError, match="eta > 0 needs t_prev < t"):
        D.ddim_step(x, x, 5, 9, s, eta=0.5)
    with pytest.raises(ValueError, match="t_prev must be in"):
        D.ddim_step(x, x, 5, -2, s)
    with pytest.raises(ValueError, match="eps must have the shape of x"):
        D.ddim_step(x, x[:2], 5, 4, s)
    with pytest.raises(ValueError, match="either noise or generator"):
        D.ddpm_step(x, x, 5, s, noise=x, generator=torch.Generator())
    with pytest.raises(ValueError, match="variance must be"):
        D.ddpm_step(x, x, 5, s, variance="fixed")
    with pytest.raises(ValueError, match="t must lie in"):
        D.q_sample(x, torch.tensor([0, 1, 100]), s)
    with pytest.raises(TypeError, match="t must be an int or an integer tensor"):
        D.q_sample(x, torch.tensor([0.0, 1.0, 2.0]), s)
    with pytest.raises(ValueError, match=r"t must have shape \(3,\)"):
        D.q_sample(x, torch.tensor([0, 1]), s)
    with pytest.raises(ValueError, match="t must be in"):
        D.predict_x0(x, x, -1, s)
    with pytest.raises(ValueError, match="p_uncond must be in"):
        D.diffusion_loss(model, x, s, p_uncond=1.5)
    with pytest.raises(ValueError, match="model must return eps of x_t.s shape"):
        D.diffusion_loss(lambda x, t: x.sum(), x, s)
    with pytest.raises(ValueError, match="the loss is not finite"):
        D.diffusion_loss(lambda x, t: x * math.inf, x, s)
    with pytest.raises(ValueError, match="t_to must be -1"):
        D.probability_flow_ode(model, x, s, t_to=-0.5)
    with pytest.raises(ValueError, match="t_from and t_to must differ"):
        D.probability_flow_ode(model, x, s, t_from=10, t_to=10)
    with pytest.raises(ValueError, match="x_next must have the shape of x"):
        D.bdia_sample(model, x, s, 5, x_next=x[:1])
    with pytest.raises(ValueError, match="std must be >= 0"):
        GaussianEps(s, 0.0, -1.0)
