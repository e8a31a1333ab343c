"""Side-by-side benchmarks of `lib` against established implementations.

    make bench            # installs the peers (benchmarks/requirements.txt), then runs this

Each ``benchmarks/bench_<module>.py`` has a ``rows()`` function returning table
rows (``benchmarks/common.py``): ours and the peer run in the same process on
the same inputs, are checked to agree, and their median times give the ratio
ours / peer, held against the bound the book sets. ``PENDING`` lists rows for
modules not written yet. The table also reports each lab's peak memory and time
from the last ``make test``. It is printed and written to ``_build/bench.json``;
the exit status is 1 when a bound is missed or two implementations disagree.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import lib  # noqa: E402,F401  (one torch thread, as in the labs)

# rows whose lib module does not exist yet; a part's issue replaces its line
# with a benchmarks/bench_<module>.py
PENDING: list[dict] = []  # every row of the issue has its module now


def lab_memory_rows() -> list[dict]:
    """Peak kernel memory and time of each lab, from the last `make test` (conftest.py)."""
    path = ROOT / "_build" / "lab_times.json"
    if not path.exists():
        return [{"row": "labs: peak memory", "ok": None, "note": "run `make test` first"}]
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
    for path in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        module = importlib.import_module(f"benchmarks.{path.stem}")
        try:
            rows += module.rows()
        except ImportError as err:
            rows.append({"row": path.stem, "ok": False, "note": f"peer missing: {err} (run `make bench`)"})
    rows += PENDING + lab_memory_rows()

    print(f"{'benchmark':<62} {'ours':>10} {'peer':>10} {'ratio':>7} {'bound':>6}  result")
    for r in rows:
        ours = f"{1e3 * r['ours_s']:.2f}ms" if r.get("ours_s") is not None else ""
        peer = f"{1e3 * r['peer_s']:.2f}ms" if r.get("peer_s") is not None else ""
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else ""
        bound = f"{r['bound']:g}" if r.get("bound") is not None else ""
        result = ("pending" if r["ok"] is None else "ok" if r["ok"]
                  else "DISAGREE" if not r.get("agree", True) else "MISSED")
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
