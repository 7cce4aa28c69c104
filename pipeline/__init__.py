"""Stage CLIs and shared plumbing of the DSG17 pipeline (config, data contract, I/O)."""

import os

# Read once, when scikit-learn or LightGBM first loads libgomp, so it is set here: every
# stage CLI imports this package first. Idle OpenMP threads then sleep instead of
# spinning, which on a shared 2-core machine made 2-thread fits up to 30x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
