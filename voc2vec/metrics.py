"""Evaluation metrics for classification and regression, computed with scikit-learn and numpy.

Classification follows the voc2vec paper: accuracy, macro-F1 and UAR (unweighted average recall, i.e. the
mean of the per-class recalls), plus per-class recall and the confusion matrix for error analysis.
Regression follows the A-VB challenge: the concordance correlation coefficient (CCC) per target and its mean.

CCC is implemented once for numpy (`concordance_correlation_coefficient`) and once for torch
(`concordance_correlation_coefficient_torch`, differentiable, used by `ccc_loss`); both use population
moments, as the reference formula does.

The `make_*_compute_metrics` factories return functions that the Hugging Face `Trainer` accepts as
`compute_metrics` (an `EvalPrediction` in, a flat `dict[str, float]` out).
"""

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix
from transformers import EvalPrediction

# ---------------------------------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------------------------------


UAR_CLASS_SETS = ("present", "union")


def unweighted_average_recall(y_true: Sequence[int], y_pred: Sequence[int], over: str = "present") -> float:
    """Mean recall over a set of classes (UAR, also called balanced accuracy or macro recall).

    `over="present"` (the toolkit's per-fold UAR): the classes present in `y_true`. A class that occurs only in
    `y_pred` is left out: its recall is undefined (no true clip), and counting it as 0 would punish a fold for a
    class it happens not to contain. `over="union"`: scikit-learn's `recall_score(average="macro")` default, the
    union of true and predicted classes, a predicted-only class counting as 0; the seed repository's (and so the
    paper's) UAR.
    """
    if over not in UAR_CLASS_SETS:
        raise ValueError(f"over must be one of {UAR_CLASS_SETS}, got {over!r}.")
    labels = np.unique(np.asarray(y_true)) if over == "present" else None
    return float(recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def per_class_recall(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> np.ndarray:
    """Recall of each class id `0 .. num_labels - 1`; a class with no true clip gets NaN (undefined, not 0)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    recalls = np.full(num_labels, np.nan)
    for class_id in range(num_labels):
        is_class = y_true == class_id
        if is_class.any():
            recalls[class_id] = float(np.mean(y_pred[is_class] == class_id))
    return recalls


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> np.ndarray:
    """Counts matrix of shape `(num_labels, num_labels)`: rows are true classes, columns predicted classes.

    All `num_labels` classes get a row and a column even when a fold lacks some, so matrices of different folds
    can be summed.
    """
    return sklearn_confusion_matrix(y_true, y_pred, labels=np.arange(num_labels))


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str] | None = None, uar_over: str = "present"
) -> dict[str, float]:
    """Accuracy, UAR, macro-F1 and (when `label_names` is given) per-class recall as `recall_<name>`.

    UAR averages over the classes `uar_over` names (see `unweighted_average_recall`). Macro-F1 averages over the
    classes seen in `y_true` or `y_pred` (scikit-learn's default, as in the seed repo). A class without true clips
    gets no `recall_<name>` entry rather than a fake 0.
    """
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "uar": unweighted_average_recall(y_true, y_pred, over=uar_over),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }
    if label_names is not None:
        recalls = per_class_recall(y_true, y_pred, num_labels=len(label_names))
        for name, recall in zip(label_names, recalls):
            if not np.isnan(recall):
                metrics[f"recall_{name}"] = float(recall)
    return metrics


def _first_array(predictions) -> np.ndarray:
    """Models may return `(logits, hidden_states, ...)`; the logits always come first."""
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    return np.asarray(predictions)


def make_classification_compute_metrics(
    id2label: Mapping[int, str], uar_over: str = "present"
) -> Callable[[EvalPrediction], dict[str, float]]:
    """Build a `compute_metrics` for `Trainer`: logits -> argmax -> `classification_metrics` with label names.

    Args:
        id2label: the model config's `id2label` (class id -> label name); names key the per-class recalls.
        uar_over: the classes UAR averages over ("present" or "union", see `unweighted_average_recall`).
    """
    label_names = [id2label[class_id] for class_id in sorted(int(key) for key in id2label)]

    def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
        logits = _first_array(eval_prediction.predictions)
        y_pred = logits.argmax(axis=-1)
        y_true = np.asarray(eval_prediction.label_ids).reshape(-1)
        return classification_metrics(y_true, y_pred, label_names, uar_over=uar_over)

    return compute_metrics


# ---------------------------------------------------------------------------------------------------------------------
# Regression: concordance correlation coefficient
# ---------------------------------------------------------------------------------------------------------------------


def concordance_correlation_coefficient(x: Sequence[float], y: Sequence[float]) -> float:
    """Lin's CCC of two 1-D series: `2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2)`.

    Population moments (divide by n), as in Lin (1989) and the A-VB/ExVo baselines. Two identical constant series
    give 0/0 and therefore NaN: CCC is undefined there.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"CCC needs two 1-D series of equal length, got shapes {x.shape} and {y.shape}.")
    mean_x, mean_y = x.mean(), y.mean()
    covariance = np.mean((x - mean_x) * (y - mean_y))
    denominator = x.var() + y.var() + (mean_x - mean_y) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(2.0 * covariance / denominator)


def concordance_correlation_coefficient_torch(
    predictions: torch.Tensor, targets: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Differentiable CCC per target column: inputs `(batch,)` or `(batch, num_targets)`, output `(num_targets,)`.

    Same formula as `concordance_correlation_coefficient`; `eps` in the denominator keeps the gradient finite
    when a batch's predictions and targets are both constant.
    """
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape.")
    if predictions.dim() == 1:
        predictions, targets = predictions.unsqueeze(-1), targets.unsqueeze(-1)
    predictions = predictions.float()
    targets = targets.float()
    mean_pred, mean_target = predictions.mean(dim=0), targets.mean(dim=0)
    covariance = ((predictions - mean_pred) * (targets - mean_target)).mean(dim=0)
    var_pred = predictions.var(dim=0, unbiased=False)
    var_target = targets.var(dim=0, unbiased=False)
    return 2.0 * covariance / (var_pred + var_target + (mean_pred - mean_target) ** 2 + eps)


def ccc_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """`1 - mean CCC over targets`: 0 for perfect agreement, up to 2 for perfect anti-agreement."""
    return 1.0 - concordance_correlation_coefficient_torch(predictions, targets).mean()


def regression_metrics(
    predictions: np.ndarray, targets: np.ndarray, target_names: Sequence[str] | None = None
) -> dict[str, float]:
    """CCC per target (`ccc_<name>`), their mean (`mean_ccc`, the A-VB score) and the mean squared error (`mse`).

    Args:
        predictions, targets: arrays of shape `(num_clips,)` or `(num_clips, num_targets)`.
        target_names: one name per target column; defaults to the column indices.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if predictions.ndim == 1:
        predictions, targets = predictions[:, None], targets[:, None]
    if target_names is None:
        target_names = [str(column) for column in range(targets.shape[1])]
    if len(target_names) != targets.shape[1]:
        raise ValueError(f"{len(target_names)} target names for {targets.shape[1]} target columns.")

    metrics = {}
    for column, name in enumerate(target_names):
        metrics[f"ccc_{name}"] = concordance_correlation_coefficient(predictions[:, column], targets[:, column])
    metrics["mean_ccc"] = float(np.mean([metrics[f"ccc_{name}"] for name in target_names]))
    metrics["mse"] = float(np.mean((predictions - targets) ** 2))
    return metrics


def make_regression_compute_metrics(
    target_names: Sequence[str] | Mapping[int, str],
) -> Callable[[EvalPrediction], dict[str, float]]:
    """Build a `compute_metrics` for `Trainer` on multi-output regression (`ccc_<name>`, `mean_ccc`, `mse`).

    Args:
        target_names: one name per output column, as a list or as the config's `id2label`.
    """
    if isinstance(target_names, Mapping):
        target_names = [target_names[column] for column in sorted(int(key) for key in target_names)]
    target_names = list(target_names)

    def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
        predictions = _first_array(eval_prediction.predictions).reshape(-1, len(target_names))
        targets = np.asarray(eval_prediction.label_ids).reshape(-1, len(target_names))
        return regression_metrics(predictions, targets, target_names)

    return compute_metrics
