"""The leaf of the project: paths, settings, errors, the data schema and atomic file I/O.

Every other package (``features``, ``models``, ``pipeline``, ``tools``) may import from
here; nothing here imports from them, so the packages import in one direction:
``core <- features, models <- pipeline <- tools``.
"""

import os
import platform
import time

#: When the process first imported the project (every stage imports core first): the start of its wall time.
STARTED = time.perf_counter()

# Read once, when scikit-learn or LightGBM first loads libgomp, so it is set here, in the
# package every other one imports first. Idle OpenMP threads then sleep instead of
# spinning, which on a shared 2-core machine made 2-thread fits up to 30x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _cpu_has_avx2(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU's flags (the first ``flags`` line of ``cpuinfo``) name AVX2; False where unreadable."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx2" in line.partition(":")[2].split()
    except OSError:
        pass
    return False


#: The OpenBLAS kernels every x86-64 CPU with AVX2 can run.
OPENBLAS_KERNELS = "Haswell"


def _cpu_runs_pinned_kernels() -> bool:
    """Whether this CPU is one the pin is for: x86-64 with AVX2."""
    return platform.machine().lower() in ("x86_64", "amd64") and _cpu_has_avx2()


# OpenBLAS (under numpy and scipy) picks its kernels by the CPU it finds when it loads: SkylakeX on
# an Intel AVX-512 CPU, Haswell on an AMD EPYC. Their sums round differently in the last bits, and
# the fits carry that into the submission: the default demo gave md5 049c9277... with the SkylakeX
# kernels and dbf81672... with the Haswell ones, the same code and data on one machine. Pinned to
# the AVX2 kernels on every x86-64 CPU that has them, same data and seed give the same bytes across
# such machines. Read when OpenBLAS loads, so set here, before any module imports numpy; an
# OPENBLAS_CORETYPE in the environment wins (and then /proc/cpuinfo is not read: a stage's child
# processes inherit the pin).
if "OPENBLAS_CORETYPE" not in os.environ and _cpu_runs_pinned_kernels():
    os.environ["OPENBLAS_CORETYPE"] = OPENBLAS_KERNELS
