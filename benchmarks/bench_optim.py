"""Benchmarks of lib/optim.py (chapter 6): one optimiser step vs torch.optim's for-loop path.

The parameters are those of a 784-1024-256-10 MLP (1.07M parameters, float32) with
fixed random gradients; ours and torch's (``foreach=False``, its single-tensor loop)
each own a copy. Both first take one step from the same state and must agree; then
their step times are measured alternately (``paired_times``). Bound: 2x.
"""

from __future__ import annotations

import torch

from benchmarks.common import paired_times, row
from lib import optim

_SHAPES = [(1024, 784), (1024,), (256, 1024), (256,), (10, 256), (10,)]


def _params_and_grads(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=g) * 0.05 for s in _SHAPES]
    grads = [torch.randn(s, generator=g) * 1e-2 for s in _SHAPES]
    return params, grads


def _pair(ours_cls, peer_cls, **kwargs):
    params, grads = _params_and_grads()
    mine = [p.clone().requires_grad_(True) for p in params]
    theirs = [p.clone().requires_grad_(True) for p in params]
    for a, b, g in zip(mine, theirs, grads):
        a.grad, b.grad = g.clone(), g.clone()
    ours = ours_cls(mine, **kwargs)
    peer = peer_cls(theirs, foreach=False, **kwargs)
    ours.step()
    peer.step()
    agree = all(torch.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(mine, theirs))
    return ours, peer, agree, sum(p.numel() for p in params)


def step_vs_torch(name: str, ours_cls, peer_cls, **kwargs) -> dict:
    ours, peer, agree, n = _pair(ours_cls, peer_cls, **kwargs)
    t_ours, t_peer = paired_times(ours.step, peer.step, repeats=40)
    return row(f"optim.{name} step vs torch.optim (foreach=False), {n / 1e6:.2f}M params",
               t_ours, t_peer, 2.0, agree)


def rows() -> list[dict]:
    return [
        step_vs_torch("Adam", optim.Adam, torch.optim.Adam, lr=1e-3),
        step_vs_torch("AdamW", optim.AdamW, torch.optim.AdamW, lr=1e-3, weight_decay=1e-2),
        step_vs_torch("SGD momentum 0.9", optim.SGD, torch.optim.SGD, lr=1e-2, momentum=0.9),
    ]
