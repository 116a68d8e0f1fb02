"""Phase 5: points predictions from several systems, one module per system.

* ``baseline``   (``moving_average``): the player's recent average;
* ``matchup``    (``matchup_adjusted``): that average times the composite factors;
* ``regression`` (``regression``): a linear model trained walk-forward on earlier games;
* ``ensemble``   (``ensemble``): a fixed weighted average of the three.

``calls`` turns a number into OVER / UNDER / PASS with a confidence; ``stage`` runs it all
chunk by chunk (``run_predict``), on inputs ``inputs`` reads once per stage, writing through
``changes`` (change-only writes against the current rows read before the first chunk).
"""
from .stage import (PROCESSOR, SYSTEM_IDS, SYSTEM_VERSIONS, TABLE, PredictError, PredictResult, chunk_dates,
                    predict_frame, prediction_mix, run_predict)

__all__ = ["PROCESSOR", "SYSTEM_IDS", "SYSTEM_VERSIONS", "TABLE", "PredictError", "PredictResult", "chunk_dates",
           "predict_frame", "prediction_mix", "run_predict"]
