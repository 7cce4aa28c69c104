"""Models of the bake-off: the registry (``models.registry``), their settings
(``models.params``) and the Optuna tuning of LightGBM (``models.tuning``).

Fitted artifacts go to ``models/artifacts`` (see core.config.MODELS_DIR).
"""

import core  # noqa: F401  (sets OMP_WAIT_POLICY before scikit-learn or LightGBM load libgomp)
