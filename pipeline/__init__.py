"""The stages of the DSG17 pipeline (build_features, select, train, submit, evaluate, report)
and the data layer under them (``pipeline.data``).  Paths, settings and I/O live in ``core``."""

import core  # noqa: F401  (sets OMP_WAIT_POLICY before any library loads libgomp)
