"""The C allocator's thresholds for a serving process: keep freed memory for the next request.

A 1,024-row PredictBatch allocates and frees the same large buffers on every call: the request's
122 KB of rows (the bytes object gRPC and protobuf hand over), onnxruntime's inputs and outputs,
the metric window's 1-3 MB folds. With glibc's defaults a freed block at the top of the heap is
given back to the kernel once the free space there passes the trim threshold (a few MB once its
dynamic thresholds have moved), so the next request faults the same pages in again: on this VM
that cost about 2 µs a page, 500 µs for a 1 MB array, more than copying it. Raising the trim
threshold keeps those pages mapped for reuse; fixing the mmap threshold keeps blocks up to it on
the heap instead of a fresh mapping each time (setting either turns glibc's dynamic adjustment
off, so both are set). The price is resident memory: up to `trim_mb` of freed memory may stay in
the process after a burst of large requests (docs/PERFORMANCE.md has the agent's RSS).

Linux with glibc only (`mallopt`); elsewhere, or when the C library has no `mallopt`, nothing
changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger("sluice")

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: blocks below this come from the heap (glibc's upper bound for it is 32 MB on 64-bit systems)
DEFAULT_MMAP_MB = 16
#: free memory kept at the top of the heap before it is returned to the kernel (measured: 64 MB
#: still returned the pages of a fold to the kernel between folds; 128 MB kept them)
DEFAULT_TRIM_MB = 128


def keep_freed_memory(mmap_mb: int = DEFAULT_MMAP_MB, trim_mb: int = DEFAULT_TRIM_MB) -> bool:
    """Set glibc's mmap and trim thresholds (MB); True when both were set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, mmap_mb << 20)) and bool(mallopt(M_TRIM_THRESHOLD, trim_mb << 20))
    if not done:
        log.warning("could not set the C allocator's thresholds (mallopt refused); serving goes on without")
    return done
