"""The leaf of the project: paths, settings, errors, the data schema and atomic file I/O.

Every other package (``features``, ``models``, ``pipeline``, ``tools``) may import from
here; nothing here imports from them, so the packages import in one direction:
``core <- features, models <- pipeline <- tools``.
"""

import os
import time

#: When the process first imported the project (every stage imports core first): the start of its wall time.
STARTED = time.perf_counter()

# Read once, when scikit-learn or LightGBM first loads libgomp, so it is set here, in the
# package every other one imports first. Idle OpenMP threads then sleep instead of
# spinning, which on a shared 2-core machine made 2-thread fits up to 30x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
