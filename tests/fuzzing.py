"""Shared machinery of the fuzz tests (``tests/test_fuzz*.py``): arguments with verdicts.

The rule (the project's reliability issue): on any input, a public function of
``lib`` either returns a well-formed result (right type and shape, correct where
a reference is cheap, and without NaN, or inf where inf is not the right
answer, when its inputs were finite), or raises ``ValueError`` or ``TypeError``
whose message names the offending argument or what was expected. Never a
crash deep inside torch or NumPy, never a NaN passed on quietly; NaN and inf
inputs of an acceptable type are refused with ``ValueError``.

Every argument is drawn as an :class:`Arg`, a value with a verdict: ``OK``
(valid: the call must not refuse it), ``MAYBE`` (unusual but legal: accepted and
checked, or refused by name) or ``BAD`` (must be refused). :func:`expect` runs
the call and holds it to the rule. ``tests/test_fuzz_coverage.py`` checks that
every public name of every ``lib`` module is fuzzed by one of these files.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

OK, MAYBE, BAD = "ok", "maybe", "bad"
EXAMPLES = int(os.environ.get("LIB_FUZZ_EXAMPLES", "75"))  # raise it for a deeper search
FUZZ = settings(max_examples=EXAMPLES, deadline=None,  # same examples everywhere unless LIB_FUZZ_RANDOM (conftest)
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
QUICK = settings(FUZZ, max_examples=max(1, EXAMPLES * 5 // 8))  # for the slower functions


class Boom(Exception):
    """Raised by the user functions of the pools; must reach the caller unchanged."""


@dataclass
class Arg:
    value: Any
    verdict: str = OK
    words: tuple = ()        # one of them names this argument in an error message (default: its name)
    nonfinite: bool = False  # NaN/inf of an acceptable type: refused with ValueError, not TypeError
    raises: bool = False     # a user function that raises Boom
    note: str = ""           # what it is, for failure messages
    kind: str = ""           # which member of a pool

    def __repr__(self) -> str:
        text = self.note or _short(self.value)
        return f"{text}[{self.verdict}{', non-finite' if self.nonfinite else ''}]"


def _short(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)} {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"ndarray{value.shape} {value.dtype}"
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _names(message: str, words) -> bool:
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(w)}(?![A-Za-z0-9_])", message, re.IGNORECASE)
               for w in words)


def expect(call: Callable, args: dict[str, Arg], check: Callable | None = None, also=()) -> Any:
    """Call ``call(**values)`` and hold it to the rule. Returns the result, or None if refused.

    ``check(out)`` is run on an accepted result; ``also``: further exception types
    that this call may raise (with the same message rule).
    """
    for name, a in args.items():
        a.words = a.words or (name,)
    values = {k: a.value for k, a in args.items()}
    suspects = [a for a in args.values() if a.verdict != OK]
    must_fail = [k for k, a in args.items() if a.verdict == BAD]
    where = ", ".join(f"{k}={a!r}" for k, a in args.items())
    try:
        out = call(**values)
    except Boom:
        assert any(a.raises for a in args.values()), f"Boom without a raising function: {where}"
        return None
    except (ValueError, TypeError, *also) as err:
        msg = f"{type(err).__name__}: {err}"
        assert suspects, f"valid input refused: {msg}\n  {where}"
        assert any(_names(str(err), a.words) for a in suspects), (
            f"the message names none of {[a.words for a in suspects]}: {msg}\n  {where}")
        if all(a.nonfinite for a in suspects):
            assert isinstance(err, ValueError), f"a non-finite input must give ValueError: {msg}\n  {where}"
        return None
    assert not must_fail, f"accepted bad input {must_fail}: {where}"
    if check is not None:
        check(out)
    return out


def finite(t) -> bool:
    if isinstance(t, torch.Tensor):
        return bool(torch.isfinite(t).all())
    return bool(np.all(np.isfinite(t)))


def assert_finite(t, what="result"):
    assert finite(t), f"{what} has non-finite entries from finite input: {t}"


# ---------------------------------------------------------------- pools

SHAPES = [(), (1,), (3,), (2, 2), (0,), (2, 0)]
FLOAT_DTYPES = {torch.float64: OK, torch.float32: OK, torch.float16: MAYBE, torch.bfloat16: MAYBE,
                torch.int64: BAD, torch.bool: BAD, torch.complex64: BAD}
NON_TENSORS = [None, "x", [1.0, 2.0], 1.5, True, {"a": 1}, np.ones(2)]
SPECIALS = [None] * 6 + ["nan", "inf", "-inf", "big", "tiny"]
SPECIAL_VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "big": 1e6, "tiny": 1e-30}


def draw_tensor(data, shapes=SHAPES, dtypes=None, lo=-3.0, hi=3.0, specials=True,
                empty=MAYBE, non_tensors=NON_TENSORS, shape_verdict=None, name="x") -> Arg:
    """A tensor argument: shape, dtype and values drawn, with NaN/inf/huge entries now and then.

    Verdict: the worst of dtype (``dtypes``), shape (``shape_verdict(shape)``),
    emptiness (``empty``) and values (NaN/inf: BAD, big: MAYBE).
    """
    dtypes = FLOAT_DTYPES if dtypes is None else dtypes
    if non_tensors and data.draw(st.integers(0, 9), label=f"{name} kind") == 0:
        value = data.draw(st.sampled_from(non_tensors), label=name)
        return Arg(value, BAD, note=f"{type(value).__name__} {_short(value)}")
    shape = data.draw(st.sampled_from(shapes), label=f"{name} shape")
    dtype = data.draw(st.sampled_from(list(dtypes)), label=f"{name} dtype")
    n = math.prod(shape)
    vals = data.draw(st.lists(st.floats(lo, hi), min_size=n, max_size=n), label=f"{name} values")
    special = data.draw(st.sampled_from(SPECIALS), label=f"{name} special") if n and specials else None
    if special:
        vals[data.draw(st.integers(0, n - 1))] = SPECIAL_VALUES[special]
    t = torch.tensor(vals, dtype=torch.float64).reshape(shape)
    if dtype == torch.bool:
        t = t > 0
    elif not dtype.is_floating_point and not dtype.is_complex:
        t = torch.nan_to_num(t).round().clamp(-100, 100).to(dtype)
    else:
        t = t.to(dtype)
    verdicts = [dtypes[dtype]]
    verdicts.append(shape_verdict(shape) if shape_verdict else OK)
    if n == 0:
        verdicts.append(empty)
    nonfinite = False
    if (dtype.is_floating_point or dtype.is_complex) and not finite(t):
        verdicts.append(BAD)
        nonfinite = dtypes[dtype] == OK and BAD not in verdicts[1:-1]
    elif special == "big":
        verdicts.append(MAYBE)
    verdict = BAD if BAD in verdicts else MAYBE if MAYBE in verdicts else OK
    words = (name, "finite", "overflow") if special == "big" else ()
    return Arg(t, verdict, words=words, nonfinite=nonfinite,
               note=f"tensor{tuple(shape)} {dtype}{' ' + special if special else ''}")


def small(t: torch.Tensor, bound: float = 3.0) -> bool:
    """Entries of moderate size, where reference values are meaningful to compare."""
    return t.numel() == 0 or float(t.abs().max()) <= bound


HUGE = 10**400  # a Python int beyond float64 and int64


def draw_number(data, name, ok, bad=(), maybe=(), nonfinite=(math.nan, math.inf, -math.inf),
                wrong=(None, "1", [1.0], True), huge=BAD) -> Arg:
    """A scalar argument from the valid strategy ``ok`` or from the bad/maybe lists.

    ``huge``: the verdict on :data:`HUGE` (None: not drawn, as for loop counts)."""
    choice = data.draw(st.integers(0, 5), label=f"{name} kind")
    if choice <= 1 or not (bad or maybe or nonfinite or wrong):
        return Arg(data.draw(ok, label=name))
    pool = [(v, BAD, False) for v in bad] + [(v, MAYBE, False) for v in maybe]
    pool += [(HUGE, huge, False)] if huge and HUGE not in bad else []
    pool += [(v, BAD, True) for v in nonfinite] + [(v, BAD, False) for v in wrong]
    value, verdict, nonfin = data.draw(st.sampled_from(pool), label=name)
    return Arg(value, verdict, nonfinite=nonfin)


def f_good(x):
    return (torch.sin(x) * x * x).sum()


def grad_good(x):
    x = x.double()
    return torch.cos(x) * x * x + 2 * x * torch.sin(x)


def hess_diag_good(x):
    x = x.double()
    return -torch.sin(x) * x * x + 4 * x * torch.cos(x) + 2 * torch.sin(x)


def _boom(*args):
    raise Boom("the user's function failed")


F_POOL = {
    "good": f_good,
    "vector": lambda x: 2 * x,
    "const": lambda x: torch.ones((), dtype=x.dtype),
    "nan": lambda x: (x * 0).sum() + math.nan,
    "inf": lambda x: (x * 0).sum() + math.inf,
    "str": lambda x: "not a tensor",
    "boom": _boom,
}


def draw_f(data, verdicts: dict, name="f", words=()) -> Arg:
    """A user function from :data:`F_POOL` with the verdict ``verdicts[kind]``."""
    kind = data.draw(st.sampled_from(list(F_POOL) + ["not callable"]), label=name)
    if kind == "not callable":
        return Arg("f", BAD, note="not callable", kind=kind, words=(name, "callable") + words)
    verdict = verdicts.get(kind, BAD)
    return Arg(F_POOL[kind], verdict, nonfinite=kind in ("nan", "inf"), raises=kind == "boom",
               note=f"{name}:{kind}", kind=kind, words=(name,) + words)


# ---------------------------------------------------------------- common argument pools

DTYPE_ARGS = [(None, OK), (torch.float64, OK), (torch.float32, OK), (torch.float16, MAYBE),
              (torch.int64, BAD), ("float64", BAD)]
DEVICE_ARGS = [(None, OK), ("cpu", OK), (torch.device("cpu"), OK), ("gpu", BAD), (0, BAD), ("meta", BAD)] + (
    [] if torch.cuda.is_available() else [("cuda", BAD)])

DEVICE_DATA = [(None, OK), ("cpu", OK), (torch.device("cpu"), OK), ("gpu", BAD), (1, BAD), ("meta", BAD)] + (
    [] if torch.cuda.is_available() else [("cuda:0", BAD)])
SEED = dict(ok=st.integers(0, 2**40), bad=(-1, 2**64), wrong=(None, 1.5, "0", True), nonfinite=())
SIZE = dict(bad=(0, -5, 2**64, 10**30), wrong=(None, 2.0, "10", True), nonfinite=())


def _checked_generator(data):
    return Arg(*data.draw(st.sampled_from([(None, OK), ("generator", OK), ("seed", BAD), (0, BAD)])))


def _gen(arg):
    if arg.value == "generator":
        arg.value = torch.Generator().manual_seed(0)
    return arg


# ---------------------------------------------------------------- table-driven fuzzing
#
# For functions whose arguments are easiest described by a valid value and a list
# of values that must be refused: :func:`mutated` draws a call in which none, one
# or two arguments are replaced by a bad (or unusual) value, and :func:`expect`
# holds the call to the rule as for the hand-drawn arguments above.

class Fresh:
    """A value made anew for every draw (tensors are mutable; hypothesis replays draws)."""

    def __init__(self, make: Callable[[], Any], note: str = ""):
        self.make, self.note = make, note

    def __repr__(self) -> str:
        return self.note or "fresh"


@dataclass
class Param:
    """One argument of a table-driven fuzz: ``make()`` a valid value; ``bad``/``maybe`` alternatives."""

    make: Callable[[], Any]
    bad: Sequence = ()
    maybe: Sequence = ()
    words: tuple = ()


def _is_nonfinite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
        return not finite(value)
    return False


def mutated(data, params: dict, max_bad: int = 2) -> dict:
    """Arguments for one call: each valid, except up to ``max_bad`` drawn from their ``bad``/``maybe`` lists."""
    names = [n for n, p in params.items() if p.bad or p.maybe]
    k = data.draw(st.integers(0, min(max_bad, len(names))), label="how many bad")
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=k, max_size=k, unique=True),
                       label="which") if k else []
    args = {}
    for name, p in params.items():
        if name not in chosen:
            args[name] = Arg(p.make(), OK, words=p.words or (name,))
            continue
        pool = [(i, BAD) for i in range(len(p.bad))] + [(len(p.bad) + i, MAYBE) for i in range(len(p.maybe))]
        i, verdict = data.draw(st.sampled_from(pool), label=name)
        raw = (list(p.bad) + list(p.maybe))[i]
        value = raw.make() if isinstance(raw, Fresh) else raw
        args[name] = Arg(value, verdict, words=p.words or (name,), nonfinite=_is_nonfinite(value),
                         raises=value is _boom or (isinstance(value, tuple) and _boom in value), note=repr(raw) if isinstance(raw, Fresh) else "")
    return args


def tensor_bads(make: Callable[[], torch.Tensor], wrong_shapes: Sequence = (), optional: bool = False) -> list:
    """The usual refusals for a floating tensor argument: NaN, inf, integer dtype, not a tensor, wrong shapes.

    ``optional``: None is a valid value (not refused)."""
    def poisoned(v):
        def mk():
            t = make().detach().clone()
            t[(0,) * t.dim()] = v
            return t
        return mk
    out = [Fresh(poisoned(math.nan), "nan entry"), Fresh(poisoned(math.inf), "inf entry"),
           Fresh(lambda: make().detach().round().to(torch.int64), "int64 tensor"), "x", [1.0, 2.0]]
    out += [] if optional else [None]
    out += [Fresh(lambda s=s: torch.zeros(s, dtype=torch.float64), f"zeros{tuple(s)}") for s in wrong_shapes]
    return out


NUMBER_WRONG = (None, "1", [1.0], True)


def positive_bads(zero_ok: bool = False) -> list:
    """Refusals for a positive real number (``zero_ok``: for a non-negative one)."""
    return ([] if zero_ok else [0.0]) + [-1.0, math.nan, math.inf, *NUMBER_WRONG]


def count_bads(low: int = 1) -> list:
    """Refusals for an integer count that must be >= ``low``."""
    return [low - 1, -5, 1.5, "3", None, True]


def all_finite(out) -> None:
    """Every tensor or float in ``out`` (nested in tuples, lists, dicts, dataclasses) is finite."""
    if isinstance(out, torch.Tensor):
        if out.is_floating_point() or out.is_complex():
            assert finite(out), f"non-finite result {_short(out)}"
    elif isinstance(out, float):
        assert math.isfinite(out), f"non-finite result {out}"
    elif isinstance(out, (tuple, list)):
        for o in out:
            all_finite(o)
    elif isinstance(out, dict):
        for o in out.values():
            all_finite(o)
    elif hasattr(out, "__dataclass_fields__"):
        for name in out.__dataclass_fields__:
            all_finite(getattr(out, name))
