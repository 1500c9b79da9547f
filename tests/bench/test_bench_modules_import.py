"""Every benchmark script imports: most benchmarks are too slow for the suite,
so an example's refactor that moves a name they use would otherwise surface
only when someone runs them."""

import importlib
import pathlib

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench"
MODULES = sorted(path.stem for path in BENCH.glob("*.py") if path.stem != "__init__")


def test_the_benchmarks_are_found():
    assert "bench_serving" in MODULES and "bench_translation" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_module_imports(name):
    module = importlib.import_module(f"bench.{name}")
    assert module.__name__ == f"bench.{name}"
