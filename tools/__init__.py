"""Development tools beside the stages: benchmark, clean, an independent generator and the baseline."""

import core  # noqa: F401  (pins the BLAS kernels and OMP_WAIT_POLICY before numpy loads)
