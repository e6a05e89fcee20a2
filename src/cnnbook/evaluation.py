"""Measuring a trained classifier: probabilities, confusion matrix, per-class report,
confident mistakes, calibration and top-k predictions.

Everything here works on arrays (labels, probabilities) or calls an already
trained model (its ``predict``, or the model itself); nothing trains.
TensorFlow is never imported: a model is used only through those calls.

The code lives in four modules by idea, all imported back here
(``evaluation.accuracy`` works everywhere):

* :mod:`cnnbook.predictions` — calling a model: probabilities, labels,
  test-time views, ensemble members, throughput;
* :mod:`cnnbook.metrics` — scoring predictions: accuracy, votes, top-k,
  confusion matrix, per-class report, confident mistakes, calibration;
* :mod:`cnnbook.significance` — is a difference real: Wilson interval,
  McNemar's test, verdict wording;
* :mod:`cnnbook.tables` — :class:`Table`, history and report tables.
"""

from __future__ import annotations

from .metrics import (
    Calibration,
    accuracy,
    calibration,
    classification_report,
    confusion_matrix,
    ensemble_accuracies,
    ensemble_average,
    majority_vote,
    most_confident_mistakes,
    top_k,
)
from .predictions import (
    VIEWS,
    choose_views,
    images_per_second,
    member_probabilities,
    predict_labels,
    predict_proba,
    predict_views,
)
from .significance import (
    VERDICTS,
    McNemar,
    accuracy_interval,
    change_beyond_noise,
    mcnemar,
    verdict,
)
from .tables import Table, history_table, report_table

__all__ = [
    "Calibration",
    "McNemar",
    "Table",
    "VERDICTS",
    "VIEWS",
    "accuracy",
    "accuracy_interval",
    "calibration",
    "change_beyond_noise",
    "choose_views",
    "classification_report",
    "confusion_matrix",
    "ensemble_accuracies",
    "ensemble_average",
    "images_per_second",
    "majority_vote",
    "mcnemar",
    "member_probabilities",
    "most_confident_mistakes",
    "predict_labels",
    "predict_proba",
    "predict_views",
    "history_table",
    "report_table",
    "top_k",
    "verdict",
]
