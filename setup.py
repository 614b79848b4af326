"""Builds the Cython hot path in gw/_fast (the only implementation of it)."""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

# Every .pyx in gw/_fast is a module of its own.
MODULES = sorted(p.stem for p in Path(__file__).parent.joinpath("gw", "_fast").glob("*.pyx"))

extensions = [Extension(f"gw._fast.{name}", [f"gw/_fast/{name}.pyx"]) for name in MODULES]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        annotate="GW_ANNOTATE" in os.environ,
        compiler_directives={"embedsignature": True},
    ),
)
