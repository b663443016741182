"""Builds the compiled core; everything else lives in pyproject.toml.

Knobs (environment variables):
  CAXTON_METER_DEBUG=1      -O0 -g, C assertions on
  CAXTON_METER_SANITIZE=asan|ubsan   build the core with a sanitizer
"""
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("CAXTON_METER_DEBUG") == "1"
sanitize = os.environ.get("CAXTON_METER_SANITIZE", "")

extra_compile_args = []
extra_link_args = []
define_macros = []
if sys.platform != "win32":
    extra_compile_args += ["-O0", "-g", "-UNDEBUG"] if debug else ["-O3"]
    if sanitize:
        flag = {"asan": "address", "ubsan": "undefined"}[sanitize]
        extra_compile_args += [f"-fsanitize={flag}", "-fno-omit-frame-pointer"]
        extra_link_args += [f"-fsanitize={flag}"]

core = Extension(
    "caxton_meter._core",
    sources=["src/caxton_meter/_core.pyx"],
    include_dirs=["src/caxton_meter/includes"],
    define_macros=define_macros,
    extra_compile_args=extra_compile_args,
    extra_link_args=extra_link_args,
)

setup(
    ext_modules=cythonize(
        [core],
        compiler_directives={"language_level": 3, "embedsignature": True},
        include_path=["src/caxton_meter/includes"],
    ),
)
