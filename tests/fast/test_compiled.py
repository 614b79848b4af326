"""The hot path has no pure-Python copy: each module must be a compiled extension."""

import importlib
import importlib.machinery
from pathlib import Path

import pytest

import gw._fast

# Every .pyx in gw/_fast (setup.py builds each one).
MODULES = sorted(p.stem for p in Path(gw._fast.__file__).parent.glob("*.pyx"))


def test_the_module_list_is_the_whole_hot_path() -> None:
    assert MODULES == [
        "anthropic", "chat", "completions", "convert", "counters", "events", "gemini",
        "messages", "ollama", "openai", "responses", "responses_watch", "rules", "select", "sse",
    ]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_fast_module_is_a_compiled_extension(name: str) -> None:
    module = importlib.import_module(f"gw._fast.{name}")
    assert module.__file__ is not None
    assert module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert not module.__file__.endswith(".py")


def test_importing_the_package_loads_every_module() -> None:
    assert set(MODULES) <= set(vars(gw._fast))
