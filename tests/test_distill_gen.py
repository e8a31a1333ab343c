"""Tests of lib/distill_gen.py against independent references: Gaussian data, whose
probability-flow ODE map is affine in closed form (a GaussianEps of the test), exact teachers
and exact consistency functions, closed-form KL divergences between Gaussians and their
finite differences, torch.optim.Adam, and every error path."""

import copy
import math

import pytest
import torch
from torch import nn

from lib import diffusion as D
from lib import distill_gen as dg

F64 = torch.float64
SCHED = D.NoiseSchedule.linear(32, 3e-3, 0.3)
MEAN, STD = 0.7, 0.5  # the Gaussian data model N(MEAN, STD^2 I)


class GaussEps:
    """The exact noise predictor E[eps | x_t] of data N(mean, std^2 I): sigma (xbar - mean) / (std^2 + sigma^2)."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, x, t, labels=None):
        sig = SCHED.sigma_at(t.to(x.dtype)).view(-1, *([1] * (x.ndim - 1)))
        return sig * (x * (1 + sig ** 2).sqrt() - self.mean) / (self.std ** 2 + sig ** 2)


TEACHER = GaussEps(MEAN, STD)


def _sigma(t: int) -> float:
    return 0.0 if t < 0 else float(SCHED.sigmas[t])


def exact_step(x, t, t_prev):
    """The exact probability-flow ODE map of Gaussian data from time t to t_prev: in xbar = x sqrt(1 + sigma^2),
    xbar - mean scales by sqrt((std^2 + sigma^2) / (std^2 + sigma_from^2))."""
    s_from, s_to = _sigma(t), _sigma(t_prev)
    xbar = MEAN + (x * math.sqrt(1 + s_from ** 2) - MEAN) * math.sqrt((STD ** 2 + s_to ** 2) / (STD ** 2 + s_from ** 2))
    return xbar / math.sqrt(1 + s_to ** 2)


class ExactConsistency:
    """The consistency function of the exact ODE, f(x, t) = ODE(x, sigma_t -> 0), as a noise predictor."""

    def __call__(self, x, t, labels=None):
        sig = SCHED.sigma_at(t.to(x.dtype)).view(-1, *([1] * (x.ndim - 1)))
        xbar = x * (1 + sig ** 2).sqrt()
        f = MEAN + (xbar - MEAN) * (STD ** 2 / (STD ** 2 + sig ** 2)).sqrt()
        return (xbar - f) / sig


def _x(n=64, d=2, seed=0):
    return MEAN + STD * torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


# ------------------------------------------------------------------ direct regression

def test_teacher_pairs_runs_the_sampler_in_chunks_without_gradients():
    z = torch.randn(10, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    sampler = lambda u: exact_step(u, SCHED.T - 1, -1)  # noqa: E731
    z_all, x_all = dg.teacher_pairs(sampler, z)
    z_ch, x_ch = dg.teacher_pairs(sampler, z, batch_size=3)
    torch.testing.assert_close(x_all, sampler(z))
    torch.testing.assert_close(x_ch, x_all, rtol=0, atol=0)
    assert z_all is not None and torch.equal(z_ch, z)
    w = torch.ones(2, dtype=F64, requires_grad=True)
    _, x = dg.teacher_pairs(lambda u: u * w, z)
    assert not x.requires_grad


def test_ddim_many_steps_approach_the_affine_ode_map():
    """The teacher's sampler of Gaussian data converges (first order) to the closed-form affine map."""
    z = torch.randn(200, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    _, x_exact = dg.teacher_pairs(lambda u: exact_step(u, SCHED.T - 1, -1), z)
    err = {n: (dg.teacher_pairs(lambda u: D.ddim_sample(TEACHER, u, SCHED, n, spacing="trailing"), z)[1]
               - x_exact).abs().max().item() for n in (8, 32)}
    assert err[32] < 0.15 and err[32] < 0.5 * err[8], err


def test_regression_distillation_recovers_the_affine_teacher_map():
    """For Gaussian data the teacher's ODE map is affine; a linear student fitted by regression recovers it."""
    z = torch.randn(512, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    z, x = dg.teacher_pairs(lambda u: exact_step(u, SCHED.T - 1, -1), z)
    sig = _sigma(SCHED.T - 1)
    slope = math.sqrt(1 + sig ** 2) * STD / math.sqrt(STD ** 2 + sig ** 2)  # x = MEAN + slope z - MEAN c
    intercept = MEAN * (1 - STD / math.sqrt(STD ** 2 + sig ** 2))
    torch.testing.assert_close(x, slope * z + intercept)
    torch.manual_seed(0)
    G = nn.Linear(2, 2).double()
    losses, _ = dg.fit(G, lambda k: dg.regression_loss(G, z, x), 1500, lr=0.05)
    assert losses[-1] < 1e-10
    torch.testing.assert_close(G.weight.detach(), slope * torch.eye(2, dtype=F64), rtol=0, atol=1e-5)
    torch.testing.assert_close(G.bias.detach(), torch.full((2,), intercept, dtype=F64), rtol=0, atol=1e-5)


def test_regression_loss_is_the_mean_squared_error():
    z, x = _x(8, seed=4), _x(8, seed=5)
    G = lambda u: 2 * u  # noqa: E731
    assert dg.regression_loss(G, z, x).item() == pytest.approx(((2 * z - x) ** 2).mean().item(), rel=1e-14)


# ------------------------------------------------------------------ the DDIM solver

def test_ddim_solver_chains_to_ddim_sample():
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(6), dtype=F64)
    step = dg.ddim_solver(TEACHER, SCHED)
    ts = D.ddim_timesteps(SCHED.T, 4, "trailing").tolist() + [-1]
    x = z
    for t, t_prev in zip(ts[:-1], ts[1:]):
        x = step(x, t, t_prev)
    torch.testing.assert_close(x, D.ddim_sample(TEACHER, z, SCHED, 4, spacing="trailing"), rtol=1e-13, atol=1e-13)


# ------------------------------------------------------------------ progressive distillation

class AffineStudent(nn.Module):
    """x0_hat(x, t) = A[t] x + c[t] per timestep (scalars): exact for a linear Gaussian teacher."""

    def __init__(self, A=None, c=None):
        super().__init__()
        self.A = nn.Parameter(torch.zeros(SCHED.T, dtype=F64) if A is None else A)
        self.c = nn.Parameter(torch.zeros(SCHED.T, dtype=F64) if c is None else c)

    def forward(self, x, t, labels=None):
        k = t.round().long()
        ab = SCHED.alphas_cumprod[k].view(-1, 1)
        x0 = self.A[k].view(-1, 1) * x + self.c[k].view(-1, 1)
        return (x - ab.sqrt() * x0) / (1 - ab).sqrt()


def _closed_form_student(teacher_step, steps):
    """The affine student whose one DDIM step equals two teacher steps (solved from the linear teacher)."""
    ts = D.ddim_timesteps(SCHED.T, 2 * steps, "trailing").tolist() + [-1]
    A, c = torch.zeros(SCHED.T, dtype=F64), torch.zeros(SCHED.T, dtype=F64)
    for i in range(steps):
        t, t_mid, t_next = ts[2 * i], ts[2 * i + 1], ts[2 * i + 2]
        x = torch.tensor([[0.0], [1.0]], dtype=F64)
        y = teacher_step(teacher_step(x, t, t_mid), t_mid, t_next)
        p, q = (y[1] - y[0]).item(), y[0].item()  # x_next = p x_t + q
        a, s = math.sqrt(SCHED.abar(t)), math.sqrt(1 - SCHED.abar(t))
        a2, s2 = math.sqrt(SCHED.abar(t_next)), math.sqrt(1 - SCHED.abar(t_next))
        # one DDIM step: x_next = a2 x0 + s2 (x_t - a x0) / s  =>  x0 = (x_next - (s2/s) x_t) / (a2 - (s2/s) a)
        A[t], c[t] = (p - s2 / s) / (a2 - s2 / s * a), q / (a2 - s2 / s * a)
    return AffineStudent(A, c)


@pytest.mark.parametrize("teacher_step", [exact_step, dg.ddim_solver(TEACHER, SCHED)], ids=["exact ODE", "DDIM"])
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_progressive_distillation_of_a_linear_teacher_is_exact(teacher_step, steps):
    student = _closed_form_student(teacher_step, steps)
    x0 = _x(32, d=1, seed=7)
    for i in range(steps):
        assert dg.progressive_distillation_loss(student, teacher_step, x0, SCHED, steps, i=i,
                                                generator=torch.Generator().manual_seed(i)).item() < 1e-20
    # the student's N-step sampler reproduces the teacher's 2N steps
    z = torch.randn(16, 1, generator=torch.Generator().manual_seed(8), dtype=F64)
    ts = D.ddim_timesteps(SCHED.T, 2 * steps, "trailing").tolist() + [-1]
    want = z
    for t, t_prev in zip(ts[:-1], ts[1:]):
        want = teacher_step(want, t, t_prev)
    got = D.ddim_sample(student, z, SCHED, steps, spacing="trailing")
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_progressive_distillation_by_gradient_descent_reaches_the_closed_form():
    """Halving 4 -> 2 steps of the DDIM teacher: Adam on the loss finds the exact affine student."""
    teacher_step = dg.ddim_solver(TEACHER, SCHED)
    exact = _closed_form_student(teacher_step, 2)
    student = AffineStudent()
    gen = torch.Generator().manual_seed(9)
    x0 = _x(256, d=1, seed=10)
    dg.fit(student, lambda k: dg.progressive_distillation_loss(student, teacher_step, x0, SCHED, 2, i=k % 2,
                                                               generator=gen), 1500, lr=0.02)
    ts = D.ddim_timesteps(SCHED.T, 2, "trailing")
    torch.testing.assert_close(student.A.detach()[ts], exact.A.detach()[ts], rtol=0, atol=2e-3)
    torch.testing.assert_close(student.c.detach()[ts], exact.c.detach()[ts], rtol=0, atol=2e-3)


def test_progressive_target_is_the_clean_sample_one_ddim_step_needs():
    """Reference by hand: with the student = teacher, the loss is the weighted gap to that target."""
    teacher_step = dg.ddim_solver(TEACHER, SCHED)
    x0, noise = _x(16, seed=11), torch.randn(16, 2, generator=torch.Generator().manual_seed(12), dtype=F64)
    ts = D.ddim_timesteps(SCHED.T, 4, "trailing").tolist() + [-1]
    t, t_mid, t_next = ts[0], ts[1], ts[2]
    x_t = D.q_sample(x0, t, SCHED, noise)
    x_next = teacher_step(teacher_step(x_t, t, t_mid), t_mid, t_next)
    eps_t = TEACHER(x_t, torch.full((16,), float(t), dtype=F64))
    x0_hat = D.predict_x0(x_t, eps_t, t, SCHED)
    # target: the x0 for which D.ddim_step lands on x_next; solve the 1-D affine relation numerically
    a_ = D.ddim_step(x_t, (x_t - math.sqrt(SCHED.abar(t)) * torch.zeros_like(x_t)) / math.sqrt(1 - SCHED.abar(t)),
                     t, t_next, SCHED)
    b_ = D.ddim_step(x_t, (x_t - math.sqrt(SCHED.abar(t)) * torch.ones_like(x_t)) / math.sqrt(1 - SCHED.abar(t)),
                     t, t_next, SCHED)
    target = (x_next - a_) / (b_ - a_)
    snr = SCHED.abar(t) / (1 - SCHED.abar(t))
    want = max(snr, 1.0) * ((x0_hat - target) ** 2).mean()
    got = dg.progressive_distillation_loss(TEACHER, teacher_step, x0, SCHED, 2, i=0, noise=noise)
    assert got.item() == pytest.approx(want.item(), rel=1e-10)


def test_progressive_distillation_needs_nested_grids():
    with pytest.raises(ValueError, match="nest"):
        dg.progressive_distillation_loss(TEACHER, exact_step, _x(4), D.NoiseSchedule.linear(30, 1e-3, 0.2), 4,
                                         spacing="linspace", i=0)
    with pytest.raises(ValueError, match="steps"):
        dg.progressive_distillation_loss(TEACHER, exact_step, _x(4), SCHED, 17)


# ------------------------------------------------------------------ consistency distillation

@pytest.mark.parametrize("steps", [1, 3, 8])
def test_consistency_loss_vanishes_for_the_exact_consistency_function(steps):
    f = ExactConsistency()
    x0 = _x(32, seed=13)
    for n in range(steps):
        loss = dg.consistency_distillation_loss(f, exact_step, x0, SCHED, steps, n=n,
                                                generator=torch.Generator().manual_seed(n))
        assert loss.item() < 1e-20
    wrong = dg.consistency_distillation_loss(TEACHER, exact_step, x0, SCHED, steps, n=0,
                                             generator=torch.Generator().manual_seed(0))
    assert wrong.item() > 1e-6  # the teacher's one-step guess E[x0 | x_t] is not on its own ODE


def test_consistency_loss_vanishes_for_the_ddim_chain():
    """With a DDIM teacher the exact consistency function is the teacher's DDIM chain down the grid."""
    steps = 4
    ts = D.ddim_timesteps(SCHED.T, steps, "trailing").tolist() + [-1]

    def chain(x, t, labels=None):
        k = ts.index(int(t[0]))
        y = x
        for a, b in zip(ts[k:-1], ts[k + 1:]):
            y = D.ddim_step(y, TEACHER(y, torch.full_like(t, float(a))), a, b, SCHED)
        ab = SCHED.abar(int(t[0]))
        return (x - math.sqrt(ab) * y) / math.sqrt(1 - ab)  # the noise predictor whose x0-guess is y

    step = dg.ddim_solver(TEACHER, SCHED)
    for n in range(steps):
        loss = dg.consistency_distillation_loss(chain, step, _x(16, seed=14), SCHED, steps, n=n,
                                                generator=torch.Generator().manual_seed(n))
        assert loss.item() < 1e-20


def test_consistency_loss_by_hand_and_gradient_only_through_the_student():
    steps, n = 4, 1
    ts = D.ddim_timesteps(SCHED.T, steps, "trailing").tolist() + [-1]
    t, t_prev = ts[n], ts[n + 1]
    x0, noise = _x(16, seed=15), torch.randn(16, 2, generator=torch.Generator().manual_seed(16), dtype=F64)
    student = AffineStudent(torch.full((SCHED.T,), 0.5, dtype=F64), torch.full((SCHED.T,), 0.1, dtype=F64))
    target = copy.deepcopy(student)
    x_t = D.q_sample(x0, t, SCHED, noise)
    x_prev = exact_step(x_t, t, t_prev)
    want = ((0.5 * x_t + 0.1 - (0.5 * x_prev + 0.1)) ** 2).mean()
    loss = dg.consistency_distillation_loss(student, exact_step, x0, SCHED, steps, n=n, noise=noise, target=target)
    assert loss.item() == pytest.approx(want.item(), rel=1e-10)
    loss.backward()
    assert student.A.grad is not None and target.A.grad is None
    same = dg.consistency_distillation_loss(student, exact_step, x0, SCHED, steps, n=n, noise=noise)
    assert same.item() == pytest.approx(loss.item(), rel=1e-14)  # target=None: the student, without gradient
    last = dg.consistency_distillation_loss(student, exact_step, x0, SCHED, steps, n=steps - 1, noise=noise)
    x_t = D.q_sample(x0, ts[-2], SCHED, noise)
    assert last.item() == pytest.approx(((0.5 * x_t + 0.1 - exact_step(x_t, ts[-2], -1)) ** 2).mean().item(),
                                        rel=1e-10)  # boundary: f(x, -1) = x


# ------------------------------------------------------------------ distribution matching

class Affine(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a = nn.Parameter(torch.as_tensor(a, dtype=F64).clone())
        self.b = nn.Parameter(torch.as_tensor(b, dtype=F64).clone())

    def forward(self, z):
        return z @ self.a.T + self.b if self.a.ndim == 2 else self.a * z + self.b


def _kl_1d(m1, v1, m2, v2):
    return 0.5 * (math.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)


def test_distribution_matching_gradient_vanishes_when_the_generator_matches_the_data():
    rot = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=F64)  # G(z) = STD R z + MEAN has the data's law
    G = Affine(STD * rot, torch.full((2,), MEAN, dtype=F64))
    fake = GaussEps(MEAN, STD)  # the exact score of G's noised samples
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(17), dtype=F64)
    for weighting in ("kl", "dmd"):
        t = torch.randint(0, SCHED.T, (64,), generator=torch.Generator().manual_seed(18))
        loss = dg.distribution_matching_loss(G, TEACHER, fake, z, SCHED, t, weighting=weighting,
                                             generator=torch.Generator().manual_seed(19))
        G.zero_grad()
        loss.backward()
        assert loss.item() == 0.0
        assert G.a.grad.abs().max() == 0 and G.b.grad.abs().max() == 0


@pytest.mark.parametrize("t", [0, 10, 25, 31])
def test_distribution_matching_gradient_is_the_gradient_of_the_kl(t):
    """1-D: G(z) = a z + b, data N(MEAN, STD^2). KL(q_t || p_t) in closed form, differentiated by central
    differences; the surrogate's gradient with exact scores, averaged over the four points (z, noise) in
    {-1, 1}^2 (which reproduce every moment up to order 2, so the average is the exact expectation)."""
    a, b = 1.3, -0.4
    ab = SCHED.abar(t)

    def kl(a_, b_):
        return _kl_1d(math.sqrt(ab) * b_, ab * a_ ** 2 + 1 - ab, math.sqrt(ab) * MEAN, ab * STD ** 2 + 1 - ab)

    h = 1e-6
    want = torch.tensor([(kl(a + h, b) - kl(a - h, b)) / (2 * h), (kl(a, b + h) - kl(a, b - h)) / (2 * h)], dtype=F64)
    G = Affine(a, b)
    z = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]], dtype=F64)
    noise = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]], dtype=F64)
    fake = GaussEps(b, abs(a))  # exact score of q_t, with no gradient through it
    loss = dg.distribution_matching_loss(G, TEACHER, fake, z, SCHED, t, noise=noise)
    loss.backward()
    got = torch.stack([G.a.grad, G.b.grad])
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-8)
    assert want.abs().max() > 1e-3  # a real gradient, not a vacuous zero


def test_dmd_weighting_points_each_sample_along_the_kl_direction():
    z = torch.randn(32, 2, generator=torch.Generator().manual_seed(20), dtype=F64)
    noise = torch.randn(32, 2, generator=torch.Generator().manual_seed(21), dtype=F64)
    t = torch.randint(1, SCHED.T, (32,), generator=torch.Generator().manual_seed(22))
    fake = GaussEps(-0.2, 1.1)
    grads = {}
    for weighting in ("kl", "dmd"):
        shift = torch.zeros(32, 2, dtype=F64, requires_grad=True)  # G(z) = z + shift: d loss / d shift_b = g_b / B
        dg.distribution_matching_loss(lambda u: u + shift, TEACHER, fake, z, SCHED, t, weighting=weighting,
                                      noise=noise).backward()
        grads[weighting] = shift.grad
    ratio = (grads["dmd"] * grads["kl"]).sum(1) / (grads["kl"] ** 2).sum(1)
    cos = (grads["dmd"] * grads["kl"]).sum(1) / (grads["dmd"].norm(dim=1) * grads["kl"].norm(dim=1))
    assert bool((ratio > 0).all()) and bool((cos > 1 - 1e-12).all())


def test_distribution_matching_per_sample_times_match_single_times():
    G = Affine(torch.eye(2, dtype=F64) * 0.9, torch.zeros(2, dtype=F64))
    fake = GaussEps(0.0, 0.9)
    z, noise = _x(8, seed=23), torch.randn(8, 2, generator=torch.Generator().manual_seed(24), dtype=F64)
    t = torch.tensor([3, 3, 3, 3, 20, 20, 20, 20])
    whole = dg.distribution_matching_loss(G, TEACHER, fake, z, SCHED, t, noise=noise)
    parts = [dg.distribution_matching_loss(G, TEACHER, fake, z[k:k + 4], SCHED, tt, noise=noise[k:k + 4])
             for k, tt in ((0, 3), (4, 20))]
    assert whole.item() == pytest.approx(sum(p.item() for p in parts) / 2, rel=1e-12)


class GaussianFake(nn.Module):
    """A learnable Gaussian noise predictor: GaussianEps with its mean and log-std as parameters."""

    def __init__(self, dim=1):
        super().__init__()
        self.m = nn.Parameter(torch.zeros(dim, dtype=F64))
        self.log_s = nn.Parameter(torch.zeros(dim, dtype=F64))

    def forward(self, x, t, labels=None):
        sig = SCHED.sigma_at(t.to(x.dtype)).view(-1, 1)
        xbar = x * (1 + sig ** 2).sqrt()
        return sig * (xbar - self.m) / (torch.exp(2 * self.log_s) + sig ** 2)


def test_train_distribution_matching_moves_the_generator_to_the_data():
    torch.manual_seed(0)
    G = Affine(0.3, 1.5)
    fake = GaussianFake()
    z_eval = torch.randn(1000, 1, generator=torch.Generator().manual_seed(25), dtype=F64)
    lg, lf, snaps = dg.train_distribution_matching(G, TEACHER, fake, SCHED, (1,), 300, batch_size=128, lr=0.05,
                                                   lr_fake=0.05, fake_steps=2, weighting="kl", every=100,
                                                   snapshot=lambda: G(z_eval),
                                                   generator=torch.Generator().manual_seed(26))
    assert len(lg) == len(lf) == 300 and [k for k, _ in snaps] == [0, 100, 200, 300]
    assert abs(G.b.item() - MEAN) < 0.05 and abs(abs(G.a.item()) - STD) < 0.05, (G.a.item(), G.b.item())
    assert abs(snaps[-1][1].mean().item() - MEAN) < 0.05 and abs(snaps[0][1].mean().item() - 1.5) < 0.05


# ------------------------------------------------------------------ fit

def test_fit_is_adam_with_cosine_decay_and_takes_snapshots():
    torch.manual_seed(0)
    net = nn.Linear(3, 1).double()
    ref = copy.deepcopy(net)
    X = torch.randn(20, 3, generator=torch.Generator().manual_seed(27), dtype=F64)
    y = X.sum(1, keepdim=True)
    losses, snaps = dg.fit(net, lambda k: ((net(X) - y) ** 2).mean(), 10, lr=0.1, every=4,
                           snapshot=lambda: net.weight)
    opt = torch.optim.Adam(ref.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / 10)))
    for _ in range(10):
        opt.zero_grad()
        ((ref(X) - y) ** 2).mean().backward()
        opt.step()
        sched.step()
    torch.testing.assert_close(net.weight, ref.weight, rtol=1e-12, atol=1e-12)
    assert [k for k, _ in snaps] == [0, 4, 8, 10] and len(losses) == 10
    torch.testing.assert_close(snaps[-1][1], net.weight.detach())


# ------------------------------------------------------------------ errors

def test_errors():
    x0, step = _x(4), exact_step
    with pytest.raises(TypeError, match="sampler"):
        dg.teacher_pairs("ddim", x0)
    with pytest.raises(ValueError, match="sampler"):
        dg.teacher_pairs(lambda u: u[:, :1], x0)
    with pytest.raises(ValueError, match="sampler"):
        dg.teacher_pairs(lambda u: u * math.nan, x0)
    with pytest.raises(ValueError, match="noise"):
        dg.teacher_pairs(lambda u: u, torch.full((2, 2), math.inf))
    with pytest.raises(TypeError, match="noise"):
        dg.teacher_pairs(lambda u: u, torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="batch_size"):
        dg.teacher_pairs(lambda u: u, x0, batch_size=0)
    with pytest.raises(ValueError, match="z and x"):
        dg.regression_loss(lambda u: u, x0, x0[:2])
    with pytest.raises(ValueError, match="G"):
        dg.regression_loss(lambda u: u[:, :1], x0, x0)
    with pytest.raises(TypeError, match="model"):
        dg.ddim_solver(None, SCHED)
    with pytest.raises(TypeError, match="schedule"):
        dg.ddim_solver(TEACHER, "linear")
    with pytest.raises(ValueError, match="t"):
        dg.ddim_solver(TEACHER, SCHED)(x0, 40, 3)
    with pytest.raises(ValueError, match="model"):
        dg.ddim_solver(lambda x, t: x[:1], SCHED)(x0, 5, 3)
    for loss in (dg.progressive_distillation_loss, dg.consistency_distillation_loss):
        with pytest.raises(TypeError, match="student"):
            loss(3, step, x0, SCHED, 2)
        with pytest.raises(TypeError, match="teacher_step"):
            loss(TEACHER, None, x0, SCHED, 2)
        with pytest.raises(ValueError, match="teacher_step"):
            loss(TEACHER, lambda x, t, s: x[:1], x0, SCHED, 2)
        with pytest.raises(ValueError, match="teacher_step"):
            loss(TEACHER, lambda x, t, s: x * math.nan, x0, SCHED, 2)
        with pytest.raises(ValueError, match="student"):
            loss(lambda x, t: x * math.inf, step, x0, SCHED, 2)
        with pytest.raises(ValueError, match="noise or generator"):
            loss(TEACHER, step, x0, SCHED, 2, noise=x0, generator=torch.Generator())
        with pytest.raises(ValueError, match="noise"):
            loss(TEACHER, step, x0, SCHED, 2, noise=x0[:2])
        with pytest.raises(ValueError, match="steps"):
            loss(TEACHER, step, x0, SCHED, 0)
        with pytest.raises(TypeError, match="x0"):
            loss(TEACHER, step, [[1.0]], SCHED, 2)
        with pytest.raises(TypeError, match="generator"):
            loss(TEACHER, step, x0, SCHED, 2, generator=0)
        with pytest.raises(ValueError, match="spacing"):
            loss(TEACHER, step, x0, SCHED, 2, spacing="log")
    with pytest.raises(ValueError, match="i"):
        dg.progressive_distillation_loss(TEACHER, step, x0, SCHED, 2, i=2)
    with pytest.raises(ValueError, match="n"):
        dg.consistency_distillation_loss(TEACHER, step, x0, SCHED, 2, n=-1)
    with pytest.raises(TypeError, match="target"):
        dg.consistency_distillation_loss(TEACHER, step, x0, SCHED, 2, target="ema")
    G = lambda u: u  # noqa: E731
    with pytest.raises(ValueError, match="weighting"):
        dg.distribution_matching_loss(G, TEACHER, TEACHER, x0, SCHED, 3, weighting="fkl")
    with pytest.raises(ValueError, match="t"):
        dg.distribution_matching_loss(G, TEACHER, TEACHER, x0, SCHED, SCHED.T)
    with pytest.raises(ValueError, match="t"):
        dg.distribution_matching_loss(G, TEACHER, TEACHER, x0, SCHED, torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="t"):
        dg.distribution_matching_loss(G, TEACHER, TEACHER, x0, SCHED, torch.ones(4))
    with pytest.raises(ValueError, match="G"):
        dg.distribution_matching_loss(lambda u: u[:2], TEACHER, TEACHER, x0, SCHED, 3)
    with pytest.raises(TypeError, match="G"):
        dg.distribution_matching_loss(lambda u: "x", TEACHER, TEACHER, x0, SCHED, 3)
    with pytest.raises(ValueError, match="fake_eps"):
        dg.distribution_matching_loss(G, TEACHER, lambda x, t: x * math.nan, x0, SCHED, 3)
    with pytest.raises(ValueError, match="real_eps"):
        dg.distribution_matching_loss(G, lambda x, t: x[:, :1], TEACHER, x0, SCHED, 3)
    net = nn.Linear(2, 2).double()
    with pytest.raises(TypeError, match="module"):
        dg.fit(lambda u: u, lambda k: net(x0).sum(), 3)
    with pytest.raises(ValueError, match="loss_fn"):
        dg.fit(net, lambda k: net(x0), 3)
    with pytest.raises(ValueError, match="loss_fn"):
        dg.fit(net, lambda k: net(x0).sum() * math.nan, 3)
    with pytest.raises(ValueError, match="snapshot"):
        dg.fit(net, lambda k: net(x0).sum(), 3, every=1)
    with pytest.raises(ValueError, match="snapshot"):
        dg.fit(net, lambda k: net(x0).sum(), 3, every=1, snapshot=lambda: torch.tensor(math.nan))
    with pytest.raises(ValueError, match="lr"):
        dg.fit(net, lambda k: net(x0).sum(), 3, lr=0.0)
    with pytest.raises(ValueError, match="no trainable"):
        dg.fit(nn.ReLU(), lambda k: net(x0).sum(), 3)
    fake = GaussianFake(2)
    with pytest.raises(TypeError, match="z_shape"):
        dg.train_distribution_matching(net, TEACHER, fake, SCHED, 2, 3)
    with pytest.raises(ValueError, match="t_range"):
        dg.train_distribution_matching(net, TEACHER, fake, SCHED, (2,), 3, t_range=(10, 5))
    with pytest.raises(ValueError, match="t_range"):
        dg.train_distribution_matching(net, TEACHER, fake, SCHED, (2,), 3, t_range=(0, SCHED.T))
    with pytest.raises(TypeError, match="fake_eps"):
        dg.train_distribution_matching(net, TEACHER, TEACHER, SCHED, (2,), 3)
    with pytest.raises(ValueError, match="fake_steps"):
        dg.train_distribution_matching(net, TEACHER, fake, SCHED, (2,), 3, fake_steps=0)
    class FirstRow(nn.Linear):
        def forward(self, z):
            return super().forward(z)[:1]

    with pytest.raises(ValueError, match="G"):
        dg.train_distribution_matching(FirstRow(2, 2).double(), TEACHER, fake, SCHED, (2,), 3)
