"""Builds the Cython hot path in gw/_fast (the only implementation of it)."""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

MODULES = ("sse", "select", "convert")

extensions = [Extension(f"gw._fast.{name}", [f"gw/_fast/{name}.pyx"]) for name in MODULES]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        annotate="GW_ANNOTATE" in os.environ,
        compiler_directives={"embedsignature": True},
    ),
)
