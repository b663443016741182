"""Builds the compiled core; everything else lives in pyproject.toml.

Knobs (environment variables):
  CAXTON_METER_DEBUG=1      -O0 -g, C assertions on, debug information kept
  CAXTON_METER_SANITIZE=asan|ubsan   build the core with a sanitizer (symbols kept)

Otherwise the core is built -O3 and, on Linux, linked stripped (-s): the
interpreter's own CFLAGS carry -g, which made the wheel's core 7.6 MB
instead of about 1 MB.
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
    elif not debug and sys.platform.startswith("linux"):
        extra_link_args += ["-s"]

core = Extension(
    "caxton_meter._core",
    # the vendored HTTP/1.1 parser of the network targets (MIT; its licence
    # and upstream commit beside it)
    sources=["src/caxton_meter/_core.pyx",
             "src/caxton_meter/includes/picohttpparser/picohttpparser.c"],
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
