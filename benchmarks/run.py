"""Side-by-side benchmarks of `lib` against established implementations.

    make bench            # installs the peers (benchmarks/requirements.txt), then runs this

Each row runs ours and the peer in the same process on the same inputs, checks
that they agree, and reports the median time of repeated runs and the ratio
ours / peer against the bound the book sets (README, "Performance"). Rows for
modules that do not exist yet are listed as pending. The table is printed and
written to ``_build/bench.json``; the exit status is 1 when a bound is missed
or two implementations disagree.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lib  # noqa: E402  (sets one torch thread, as in the labs)
from lib import autodiff, curvature, data  # noqa: E402


def _median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _paired_times(ours, peer, repeats: int, warmup: int = 3) -> tuple[float, float]:
    """Alternate the two so that both see the same machine load."""
    for _ in range(warmup):
        ours(), peer()
    a, b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter(); ours(); t1 = time.perf_counter(); peer(); t2 = time.perf_counter()
        a.append(t1 - t0)
        b.append(t2 - t1)
    return statistics.median(a), statistics.median(b)


def row(name, ours_s, peer_s, bound, agree, note="", ratio=None):
    ratio = ours_s / peer_s if ratio is None else ratio
    return {"row": name, "ours_s": ours_s, "peer_s": peer_s, "ratio": ratio, "bound": bound,
            "agree": bool(agree), "ok": bool(agree) and ratio <= bound, "note": note}


# ---------------------------------------------------------------- rows

def value_vs_micrograd():
    """Scalar MLP 4-16-16-1 on 16 points, forward + backward, same weights in both engines."""
    from micrograd.engine import Value as MgValue

    rng = random.Random(0)
    sizes = [4, 16, 16, 1]
    weights = [[[rng.uniform(-1, 1) for _ in range(nin)] for _ in range(nout)] for nin, nout in zip(sizes, sizes[1:])]
    X = [[rng.uniform(-1, 1) for _ in range(4)] for _ in range(16)]
    y = [rng.choice([-1.0, 1.0]) for _ in range(16)]

    def build(Value):
        params = [[[Value(w) for w in neuron] for neuron in layer] for layer in weights]
        loss = Value(0.0)
        for xi, yi in zip(X, y):
            h = [Value(v) for v in xi]
            for li, layer in enumerate(params):
                out = [sum((w * a for w, a in zip(neuron, h)), Value(0.0)) for neuron in layer]
                h = [o.relu() for o in out] if li < len(params) - 1 else out
            loss = loss + (h[0] - yi) * (h[0] - yi)
        return loss, [w for layer in params for neuron in layer for w in neuron]

    def run(Value):
        loss, ws = build(Value)
        loss.backward()
        return loss.data, [w.grad for w in ws]

    ours, theirs = run(autodiff.Value), run(MgValue)
    agree = abs(ours[0] - theirs[0]) < 1e-9 and max(abs(a - b) for a, b in zip(ours[1], theirs[1])) < 1e-9
    t_ours, t_peer = _paired_times(lambda: run(autodiff.Value), lambda: run(MgValue), repeats=15)
    return row("autodiff.Value vs micrograd (scalar MLP fwd+bwd)", t_ours, t_peer, 1.0, agree)


def _digits_batch(batch=256):
    d = data.digits(seed=0)
    return d.x_train[:batch].numpy(), d.y_train[:batch].numpy()


def tensor_vs_torch():
    """One SGD training step of a 64-128-128-10 MLP on 256 digits, float32, one thread."""
    xb, yb = _digits_batch()
    net = autodiff.MLP([64, 128, 128, 10], seed=0)
    tnet = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                               torch.nn.ReLU(), torch.nn.Linear(128, 10))
    with torch.no_grad():  # same weights: ours are (in, out), torch's (out, in)
        for lin, (W, b) in zip([m for m in tnet if isinstance(m, torch.nn.Linear)], zip(net.weights, net.biases)):
            lin.weight.copy_(torch.tensor(W.data.T))
            lin.bias.copy_(torch.tensor(b.data))
    txb, tyb = torch.tensor(xb), torch.tensor(yb)
    loss = autodiff.cross_entropy(net(xb), yb)
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(tnet(txb), tyb)
    tloss.backward()
    agree = abs(float(loss.data) - tloss.item()) < 1e-5 and np.allclose(
        net.weights[0].grad, tnet[0].weight.grad.numpy().T, atol=1e-5)
    opt = torch.optim.SGD(tnet.parameters(), lr=0.01)

    def ours():
        l = autodiff.cross_entropy(net(xb), yb)
        l.backward()
        autodiff.sgd_step(net.parameters(), 0.01)

    def peer():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(tnet(txb), tyb).backward()
        opt.step()

    t_ours, t_peer = _paired_times(ours, peer, repeats=60)
    return row("autodiff.Tensor vs torch (MLP training step)", t_ours, t_peer, 3.0, agree)


def cheap_gradient():
    """(function + gradient) / function time for the same MLP loss, ours and torch's."""
    xb, yb = _digits_batch()
    net = autodiff.MLP([64, 256, 256, 10], seed=0)
    tnet = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                               torch.nn.ReLU(), torch.nn.Linear(256, 10))
    txb, tyb = torch.tensor(xb), torch.tensor(yb)

    def ours_f():
        autodiff.cross_entropy(net(xb), yb)

    def ours_fg():
        autodiff.cross_entropy(net(xb), yb).backward()

    def torch_f():
        with torch.no_grad():
            torch.nn.functional.cross_entropy(tnet(txb), tyb)

    def torch_fg():
        torch.nn.functional.cross_entropy(tnet(txb), tyb).backward()

    f_ours, fg_ours = _paired_times(ours_f, ours_fg, repeats=40)
    f_torch, fg_torch = _paired_times(torch_f, torch_fg, repeats=40)
    ours_ratio, torch_ratio = fg_ours / f_ours, fg_torch / f_torch
    return row("cheap-gradient ratio (grad+f)/f: ours | torch", fg_ours, fg_torch, 5.0, True,
               note=f"ours {ours_ratio:.2f}, torch {torch_ratio:.2f} (bound applies to ours)", ratio=ours_ratio)


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
    t_ours, t_peer = _paired_times(ours, peer, repeats=30)
    return row("curvature.hvp vs torch.func jvp(grad)", t_ours, t_peer, 1.5, agree)


PENDING = [
    ("optim Adam/AdamW/SGD-momentum step vs torch.optim (1M parameters)", 2.0, "lib/optim.py (Part II)"),
    ("ode.odeint rk4/dopri5 and odeint_adjoint vs torchdiffeq", 1.5, "lib/ode.py (Part III)"),
    ("diffusion DDIM loop vs diffusers DDIMScheduler", 1.2, "lib/diffusion.py (Part VI)"),
]


def lab_memory_rows():
    """Peak kernel memory and time of each lab, from the last `make test` (conftest.py)."""
    path = ROOT / "_build" / "lab_times.json"
    if not path.exists():
        return []
    rows = []
    for slug, rec in json.loads(path.read_text()).items():
        mb = rec.get("peak_rss_mb")
        if mb is not None:
            rows.append({"row": f"lab {slug}: peak memory / 2 GB", "ours_s": None, "peer_s": None,
                         "ratio": mb / 2048.0, "bound": 1.0, "agree": True, "ok": mb <= 2048.0,
                         "note": f"{mb:.0f} MB, {rec['seconds']:.1f} s (last make test)"})
    return rows


def main() -> int:
    rows = []
    for bench in (value_vs_micrograd, tensor_vs_torch, cheap_gradient, hvp_vs_torch_func):
        try:
            rows.append(bench())
        except ImportError as err:
            rows.append({"row": bench.__doc__.splitlines()[0], "ok": False, "note": f"peer missing: {err}"})
    for name, bound, module in PENDING:
        rows.append({"row": name, "bound": bound, "ok": None, "note": f"pending: {module} not written yet"})
    rows += lab_memory_rows()

    print(f"{'benchmark':<62} {'ours':>10} {'peer':>10} {'ratio':>7} {'bound':>6}  result")
    for r in rows:
        ours = f"{1e3 * r['ours_s']:.2f}ms" if r.get("ours_s") is not None else ""
        peer = f"{1e3 * r['peer_s']:.2f}ms" if r.get("peer_s") is not None else ""
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else ""
        bound = f"{r['bound']:g}" if r.get("bound") is not None else ""
        result = "pending" if r["ok"] is None else ("ok" if r["ok"] else ("DISAGREE" if not r.get("agree", True) else "MISSED"))
        print(f"{r['row']:<62} {ours:>10} {peer:>10} {ratio:>7} {bound:>6}  {result}  {r.get('note', '')}")
    out = ROOT / "_build" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"torch": torch.__version__, "numpy": np.__version__, "threads": torch.get_num_threads(),
               "python": sys.version.split()[0]}
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if all(r["ok"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
