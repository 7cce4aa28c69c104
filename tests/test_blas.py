"""The BLAS kernels are pinned before numpy loads, so the same data and seed give the same bytes across CPUs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import core
from core import config

X86_AVX2 = core._cpu_runs_pinned_kernels()

_PROBE = (
    "import os; import {entry}; import numpy, scipy.linalg, threadpoolctl; "
    "archs = sorted({{d.get('architecture') for d in threadpoolctl.threadpool_info() if d['internal_api'] == 'openblas'}}); "
    "print(os.environ.get('OPENBLAS_CORETYPE'), *archs)"
)


def _probe(entry: str, **extra: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"} | extra
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(entry=entry)],
        cwd=config.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_avx2_is_read_from_the_cpu_flags(tmp_path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\nflags\t\t: fpu\n")
    assert core._cpu_has_avx2(str(info)) is True
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx512f\n")  # AVX and AVX-512 words, no avx2
    assert core._cpu_has_avx2(str(info)) is False
    info.write_text("processor\t: 0\n")
    assert core._cpu_has_avx2(str(info)) is False
    assert core._cpu_has_avx2(str(tmp_path / "missing")) is False


@pytest.mark.skipif(not X86_AVX2, reason="the pin applies to x86-64 CPUs with AVX2 only")
@pytest.mark.parametrize("entry", ["pipeline", "models", "tools"])
def test_every_entry_package_loads_openblas_with_the_pinned_kernels(entry: str) -> None:
    # numpy's and scipy's OpenBLAS both: a stage that imports the package first gets the AVX2 kernels
    assert _probe(entry) == [core.OPENBLAS_KERNELS] * 2


@pytest.mark.skipif(not X86_AVX2, reason="the pin applies to x86-64 CPUs with AVX2 only")
def test_the_users_own_choice_of_kernels_wins() -> None:
    assert _probe("pipeline", OPENBLAS_CORETYPE="Sandybridge") == ["Sandybridge"] * 2
