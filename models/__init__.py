"""Models of the bake-off: the registry (``models.registry``), their settings
(``models.params``) and the Optuna tuning of LightGBM (``models.tuning``).

Fitted artifacts go to ``models/artifacts`` (see pipeline.config.MODELS_DIR).
"""

import os

# Set before scikit-learn or LightGBM first load libgomp (it reads this once): idle
# OpenMP threads then sleep instead of spinning, which on a shared 2-core machine made
# 2-thread fits up to 30x slower.  The stage CLIs set it too, before their own imports.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
