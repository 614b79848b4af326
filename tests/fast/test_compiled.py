"""The hot path has no pure-Python copy: each module must be a compiled extension."""

import importlib
import importlib.machinery

import pytest


@pytest.mark.parametrize("name", ["sse", "select", "convert"])
def test_fast_module_is_a_compiled_extension(name: str) -> None:
    module = importlib.import_module(f"gw._fast.{name}")
    assert module.__file__ is not None
    assert module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert not module.__file__.endswith(".py")


def test_importing_the_package_loads_all_three_modules() -> None:
    import gw._fast

    assert {"sse", "select", "convert"} <= set(vars(gw._fast))
