"""Benchmarks of lib/diffusion.py (chapter 23): the DDIM sampling loop vs diffusers' DDIMScheduler.

Both loops drive the same noise predictor (the lab's ``lib.denoiser.ResidualMLP``, width 256,
3 blocks, 10 classes, trained for 400 steps on the digits so that its samples have the scale of
the data) from the same initial noise, with the same betas, eta = 0, the same
"leading" timesteps, ``clip_sample=False`` and ``set_alpha_to_one=True`` (our last step goes to
``abar = 1``). Agreement is checked in float64 (the model cast to float64; diffusers, which
computes ``alphas_cumprod`` in float32 from the betas, is handed our float64 values so both do the
same arithmetic) to 1e-5, and in float32 relative to the samples' scale (rounding, amplified by the
network over the steps) to 1e-5; times are float32. Rows: the lab's schedule (T = 100, 20 steps, 256 digits-sized samples) and
Ho et al.'s (T = 1000, 50 steps). Each checks that the samples agree to 1e-5 and times both
alternately (``paired_times``). Bound: 1.2x diffusers' time.
"""

from __future__ import annotations

import torch

from benchmarks.common import paired_times, row
from lib import denoiser, diffusion

BOUND = 1.2


_MODELS: dict = {}


def _model(schedule: diffusion.NoiseSchedule) -> torch.nn.Module:
    """The lab's network, briefly trained (400 steps) on the digits so its samples are digit-sized."""
    key = (schedule.T, schedule.betas[0].item(), schedule.betas[-1].item())
    if key not in _MODELS:
        from lib import data

        torch.manual_seed(0)
        split = data.digits(pixel_range="symmetric")
        net = denoiser.ResidualMLP(dim=64, width=256, depth=3, num_classes=10)
        _MODELS[key], _ = denoiser.train_denoiser(net, split.x_train, schedule, labels=split.y_train, steps=400,
                                                  lr=2e-3, p_uncond=0.2, ema_decay=0.0,
                                                  generator=torch.Generator().manual_seed(0))
    return _MODELS[key]


def ddim_row(T: int, beta_start: float, beta_end: float, steps: int, batch: int = 256) -> dict:
    import copy

    from diffusers import DDIMScheduler

    schedule = diffusion.NoiseSchedule.linear(T, beta_start, beta_end)
    net = _model(schedule)
    net64 = copy.deepcopy(net).double()
    g = torch.Generator().manual_seed(1)
    x_T = torch.randn(batch, 64, generator=g)
    labels = torch.randint(0, 10, (batch,), generator=g)

    def scheduler(dtype):
        sched = DDIMScheduler(num_train_timesteps=T, trained_betas=schedule.betas.numpy(), clip_sample=False,
                              set_alpha_to_one=True, timestep_spacing="leading", prediction_type="epsilon")
        if dtype == torch.float64:  # diffusers computes abar in float32: hand it the float64 values
            sched.alphas_cumprod = schedule.alphas_cumprod.clone()
        return sched

    def ours(model=net, x=x_T):
        with torch.no_grad():
            return diffusion.ddim_sample(model, x, schedule, steps, labels=labels)

    def peer(model=net, x=x_T, sched=scheduler(torch.float32)):
        with torch.no_grad():
            sched.set_timesteps(steps)
            for t in sched.timesteps:
                eps = model(x, torch.full((batch,), float(t), dtype=x.dtype), labels)
                x = sched.step(eps, t, x, eta=0.0).prev_sample
            return x

    err64 = (ours(net64, x_T.double()) - peer(net64, x_T.double(), scheduler(torch.float64))).abs().max().item()
    a, b = ours(), peer()
    err32 = ((a - b).abs().max() / b.abs().max().clamp_min(1.0)).item()
    t_ours, t_peer = paired_times(ours, peer, repeats=15)
    return row(f"diffusion.ddim_sample vs diffusers DDIMScheduler, T={T}, {steps} steps, batch {batch}",
               t_ours, t_peer, BOUND, err64 <= 1e-5 and err32 <= 1e-5,
               note=(f"max |difference| {err64:.1e} in float64 (bound 1e-5), {err32:.1e} relative in float32 "
                     "(timed in float32)"))


def rows() -> list[dict]:
    return [ddim_row(100, 1e-3, 0.2, 20), ddim_row(1000, 1e-4, 0.02, 50)]
