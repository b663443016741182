# cython: language_level=3, embedsignature=True
"""The compiled core of caxton_meter.

One extension module, built from the parts included below: the clock, the
HDR histogram and its codec, the interval recorder, the timer, the
WebAssembly runtime (wasmtime's C API), the agents of each kind, the agent
router, the load loops and the network targets' loop.
C declarations live in _core.pxd and includes/.
"""
cimport cython
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t, uintptr_t, INT64_MAX, INT64_MIN
from libc.stdlib cimport calloc, malloc, realloc, free
from libc.string cimport memset, memcpy, memcmp, memmove, memchr
from libc.math cimport sqrt, fabs, floor
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.buffer cimport PyBuffer_FillInfo, PyBUF_WRITABLE
from cpython.exc cimport PyErr_Occurred, PyErr_Clear, PyErr_CheckSignals
from cpython.long cimport PyLong_CheckExact

cdef extern from "Python.h":
    # declared without Cython's error check: _int64 turns OverflowError into
    # a ValueError that names the argument
    long long _PyLong_AsLongLong_noexc "PyLong_AsLongLong"(object)

from cm_system cimport *
from cm_net cimport *

from operator import index as _index
import math


class CaxtonMeterError(Exception):
    """The root of every error caxton_meter raises on purpose.  Each error
    also keeps the builtin base it had (ValueError, LookupError, ...), so
    ``except ValueError`` goes on working; ``except CaxtonMeterError`` catches
    them all."""


include "_clock.pxi"
include "_histogram.pxi"
include "_recorder.pxi"
include "_timer.pxi"
include "_wasm.pxi"
include "_agents.pxi"
include "_router.pxi"
include "_load.pxi"
include "_net.pxi"
