"""Benchmarks of lib/curvature.py (chapter 4): HVP vs torch.func."""

from __future__ import annotations

import torch

from benchmarks.common import paired_times, row
from lib import curvature, data


def hvp_vs_torch_func():
    """Hessian-vector product of a digits MLP loss (flat parameters), float64."""
    d = data.digits(seed=0)
    X, y = d.x_train.double(), d.y_train
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 10)).double()
    f, theta = curvature.loss_as_function(model, torch.nn.functional.cross_entropy, X, y)
    v = torch.randn_like(theta)

    def peer():
        return torch.func.jvp(torch.func.grad(f), (theta,), (v,))[1]

    def ours():
        return curvature.hvp(f, theta, v)

    agree = torch.allclose(ours(), peer(), rtol=1e-9, atol=1e-12)
    t_ours, t_peer = paired_times(ours, peer, repeats=30)
    return row("curvature.hvp vs torch.func jvp(grad)", t_ours, t_peer, 1.5, agree)


def rows() -> list[dict]:
    return [hvp_vs_torch_func()]
