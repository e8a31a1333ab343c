"""Every public name of every ``lib`` module is fuzzed by one of the ``tests/test_fuzz*.py`` files.

Each fuzz file keeps a ``FUZZED`` registry, ``{module: {public name: the test that
fuzzes it}}``. This test gathers them and compares, module by module, with the
module's ``__all__``: a new public function without a fuzz test, a fuzz entry for a
name that no longer exists, or a new ``lib`` module nobody fuzzes fails here.
"""

import importlib
import pkgutil
from pathlib import Path

import pytest

import lib

HERE = Path(__file__).parent
FUZZ_FILES = sorted(p.stem for p in HERE.glob("test_fuzz*.py") if p.stem != Path(__file__).stem)
MODULES = sorted(m.name for m in pkgutil.iter_modules(lib.__path__) if not m.name.startswith("_"))


def _registry() -> dict:
    merged: dict = {}
    for stem in FUZZ_FILES:
        module = importlib.import_module(f"tests.{stem}")
        for target, names in module.FUZZED.items():
            merged.setdefault(target.__name__, {}).update(names)
    return merged


REGISTRY = _registry()


def test_there_are_fuzz_files():
    assert "test_fuzz" in FUZZ_FILES and len(MODULES) >= 10


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_is_fuzzed(name):
    module = importlib.import_module(f"lib.{name}")
    assert hasattr(module, "__all__"), f"lib.{name} has no __all__"
    fuzzed = REGISTRY.get(module.__name__, {})
    missing = sorted(set(module.__all__) - set(fuzzed))
    stale = sorted(set(fuzzed) - set(module.__all__))
    assert not missing and not stale, f"lib.{name}: public names without a fuzz test {missing}, stale {stale}"
    assert all(callable(test) for test in fuzzed.values())
