"""Benchmarks of lib/ode.py (chapter 12): odeint and odeint_adjoint vs torchdiffeq 0.2.5.

The problems are the lab's: a small MLP vector field (2-64-64-2, tanh, float32) on a
batch of 256 two-dimensional states over t in [0, 1], and the Van der Pol oscillator
(mu = 1, float64) over [0, 10] with 11 output times. Each row runs ours and torchdiffeq
on the same inputs with the same method and rtol/atol (or the same fixed steps), checks
that they agree and that ours is at least as accurate (error against a tight-tolerance
reference solution within 1.5x of torchdiffeq's, or below the tolerance), counts function
evaluations (ours must use no more), and times both alternately (``paired_times``).
Bound: 1.5x torchdiffeq's time. A last row measures the peak memory saved for backward
(``lib.numerics.SavedTensorTracker``) as fixed RK4 steps grow from 10 to 1000: flat for
the adjoint (bound 1.1x), growing at least 20x for backprop through the solver.
"""

from __future__ import annotations

import torch

from benchmarks.common import paired_times, row
from lib import numerics, ode

BOUND = 1.5


class _Counted(torch.nn.Module):
    """Wraps a vector field and counts its evaluations (both solvers get the same wrapper)."""

    def __init__(self, field: torch.nn.Module):
        super().__init__()
        self.field, self.n = field, 0

    def forward(self, t, y):
        self.n += 1
        return self.field(t, y)


class _MLP(torch.nn.Module):
    def __init__(self, width: int = 64, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.Tanh(), torch.nn.Linear(width, width),
                                       torch.nn.Tanh(), torch.nn.Linear(width, 2))

    def forward(self, t, y):
        return self.net(y)


class _VanDerPol(torch.nn.Module):
    def __init__(self, mu: float = 1.0):
        super().__init__()
        self.mu = mu

    def forward(self, t, y):
        x, v = y[..., 0], y[..., 1]
        return torch.stack([v, self.mu * (1 - x * x) * v - x], dim=-1)


def _mlp_problem():
    y0 = torch.randn(256, 2, generator=torch.Generator().manual_seed(1))
    return _Counted(_MLP()), y0, torch.tensor([0.0, 1.0])


def _vdp_problem():
    return _Counted(_VanDerPol()), torch.tensor([2.0, 0.0], dtype=torch.float64), torch.linspace(0, 10, 11,
                                                                                                   dtype=torch.float64)


def _reference(field, y0, t):
    with torch.no_grad():  # float64, tight tolerance: the "true" solution
        return ode.odeint(field, y0.double(), t.double(), rtol=1e-12, atol=1e-14).to(y0.dtype)


def _nfe(field, fn) -> tuple[int, object]:
    field.n = 0
    out = fn()
    return field.n, out


def solve_row(name, problem, method, rtol=1e-6, atol=1e-8, steps=None) -> dict:
    """No-grad solve (the sampling use of Part VI)."""
    import torchdiffeq

    field, y0, t = problem()
    ref = _reference(_as_double(field), y0, t)
    h = None if steps is None else float(t[-1] - t[0]) / steps
    kw = dict(method=method, rtol=rtol, atol=atol)

    def ours():
        with torch.no_grad():
            return ode.odeint(field, y0, t, step_size=h, **kw)

    def peer():
        with torch.no_grad():
            return torchdiffeq.odeint(field, y0, t, options=None if h is None else dict(step_size=h), **kw)

    n_ours, y_ours = _nfe(field, ours)
    n_peer, y_peer = _nfe(field, peer)
    e_ours, e_peer = (y_ours - ref).abs().max().item(), (y_peer - ref).abs().max().item()
    agree = e_ours <= max(BOUND * e_peer, 10 * atol) and n_ours <= n_peer
    t_ours, t_peer = paired_times(ours, peer, repeats=15)
    return row(name, t_ours, t_peer, BOUND, agree,
               note=f"NFE {n_ours} vs {n_peer}; max error {e_ours:.1e} vs {e_peer:.1e}")


def _as_double(field: _Counted) -> _Counted:
    import copy

    return _Counted(copy.deepcopy(field.field).double())


def adjoint_row(name, method, rtol=1e-6, atol=1e-8, steps=None) -> dict:
    """Forward solve + backward pass of a loss at the final time, gradients w.r.t. y0 and the MLP."""
    import torchdiffeq

    field, y0, t = _mlp_problem()
    params = list(field.parameters())
    h = None if steps is None else 1.0 / steps
    kw = dict(method=method, rtol=rtol, atol=atol)

    def run(solver, **extra):
        for p in params:
            p.grad = None
        y = y0.clone().requires_grad_(True)
        out = solver(field, y, t, **kw, **extra)
        (out[-1] ** 2).sum().backward()
        return torch.cat([y.grad.reshape(-1)] + [p.grad.reshape(-1) for p in params])

    def ours():
        return run(ode.odeint_adjoint, step_size=h)

    def peer():
        return run(torchdiffeq.odeint_adjoint, options=None if h is None else dict(step_size=h))

    n_ours, g_ours = _nfe(field, ours)
    n_peer, g_peer = _nfe(field, peer)
    # reference: backprop through a tight float64 solve
    ref_field = _as_double(field)
    y = y0.double().requires_grad_(True)
    (ode.odeint(ref_field, y, t.double(), rtol=1e-12, atol=1e-14)[-1] ** 2).sum().backward()
    g_ref = torch.cat([y.grad.reshape(-1)] + [p.grad.reshape(-1) for p in ref_field.parameters()]).float()
    e_ours = ((g_ours - g_ref).norm() / g_ref.norm()).item()
    e_peer = ((g_peer - g_ref).norm() / g_ref.norm()).item()
    agree = e_ours <= max(BOUND * e_peer, 10 * rtol) and n_ours <= n_peer
    t_ours, t_peer = paired_times(ours, peer, repeats=10)
    return row(name, t_ours, t_peer, BOUND, agree,
               note=f"NFE (forward + backward) {n_ours} vs {n_peer}; gradient rel. error {e_ours:.1e} vs {e_peer:.1e}")


def memory_row() -> dict:
    """Peak bytes saved for backward, N fixed RK4 steps, loss at t = 1: adjoint flat, direct linear."""
    field, y0, t = _mlp_problem()
    peaks = {}
    for name, solver in (("direct", ode.odeint), ("adjoint", ode.odeint_adjoint)):
        for n in (10, 100, 1000):
            y = y0[:64].clone().requires_grad_(True)
            with numerics.SavedTensorTracker() as tracker:
                (solver(field, y, t, method="rk4", step_size=1 / n)[-1] ** 2).sum().backward()
            peaks[name, n] = tracker.peak_bytes
    flat = peaks["adjoint", 1000] / peaks["adjoint", 10]
    growth = peaks["direct", 1000] / peaks["direct", 10]
    return {"row": "ode.odeint_adjoint peak saved memory, 1000 vs 10 RK4 steps", "ours_s": None,
            "peer_s": None, "ratio": flat, "bound": 1.1, "agree": growth > 20, "ok": flat <= 1.1 and growth > 20,
            "note": (f"adjoint {peaks['adjoint', 10] / 1024:.0f} -> {peaks['adjoint', 1000] / 1024:.0f} KiB; "
                     f"backprop through the solver {peaks['direct', 10] / 1024:.0f} -> "
                     f"{peaks['direct', 1000] / 1024:.0f} KiB ({growth:.0f}x)")}


def rows() -> list[dict]:
    return [
        solve_row("ode.odeint dopri5 vs torchdiffeq, MLP field, 256 states", _mlp_problem, "dopri5"),
        solve_row("ode.odeint dopri5 vs torchdiffeq, Van der Pol, 11 times", _vdp_problem, "dopri5",
                  rtol=1e-8, atol=1e-10),
        solve_row("ode.odeint rk4 (50 steps) vs torchdiffeq, MLP field", _mlp_problem, "rk4", steps=50),
        adjoint_row("ode.odeint_adjoint dopri5 fwd+bwd vs torchdiffeq, MLP", "dopri5"),
        adjoint_row("ode.odeint_adjoint rk4 (50 steps) fwd+bwd vs torchdiffeq", "rk4", steps=50),
        memory_row(),
    ]
