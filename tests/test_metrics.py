"""Metrics against hand-computed values, scikit-learn and the reference CCC formula."""

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score
from transformers import EvalPrediction

from voc2vec.metrics import (
    ccc_loss,
    classification_metrics,
    concordance_correlation_coefficient,
    concordance_correlation_coefficient_torch,
    confusion_matrix,
    make_classification_compute_metrics,
    make_regression_compute_metrics,
    per_class_recall,
    regression_metrics,
    unweighted_average_recall,
)
from voc2vec.plots import plot_confusion_matrix, row_normalize

# 3 classes; rows true, columns predicted:
#   class 0: 4 clips -> 3 right, 1 as class 1
#   class 1: 2 clips -> 1 right, 1 as class 2
#   class 2: 4 clips -> 4 right
Y_TRUE = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
EXPECTED_MATRIX = np.array([[3, 1, 0], [0, 1, 1], [0, 0, 4]])


def reference_ccc(x, y):
    """Lin's CCC written out with population moments, independently of the code under test."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    var_x = sum((xi - mx) ** 2 for xi in x) / n
    var_y = sum((yi - my) ** 2 for yi in y) / n
    cov = sum((xi - mx) * (yi - my) for xi, yi in zip(x, y)) / n
    return 2 * cov / (var_x + var_y + (mx - my) ** 2)


def test_confusion_matrix_by_hand():
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, num_labels=3), EXPECTED_MATRIX)


def test_confusion_matrix_keeps_absent_classes():
    matrix = confusion_matrix([0, 0, 1], [0, 1, 1], num_labels=4)
    assert matrix.shape == (4, 4)
    assert matrix[2:].sum() == 0 and matrix[:, 2:].sum() == 0


def test_classification_metrics_by_hand():
    metrics = classification_metrics(Y_TRUE, Y_PRED, label_names=["laugh", "cry", "sigh"])
    assert metrics["accuracy"] == pytest.approx(8 / 10)
    assert metrics["uar"] == pytest.approx((3 / 4 + 1 / 2 + 4 / 4) / 3)
    # per-class F1: class0 P=3/3 R=3/4; class1 P=1/2 R=1/2; class2 P=4/5 R=1
    f1s = [2 * 1 * 0.75 / 1.75, 0.5, 2 * 0.8 * 1 / 1.8]
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1s))
    assert metrics["recall_laugh"] == pytest.approx(0.75)
    assert metrics["recall_cry"] == pytest.approx(0.5)
    assert metrics["recall_sigh"] == pytest.approx(1.0)


def test_classification_metrics_match_sklearn_on_random_predictions():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, size=200)
    y_pred = rng.integers(0, 5, size=200)
    metrics = classification_metrics(y_true, y_pred)
    assert metrics["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert metrics["uar"] == pytest.approx(recall_score(y_true, y_pred, average="macro"))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    np.testing.assert_allclose(per_class_recall(y_true, y_pred, 5), recall_score(y_true, y_pred, average=None))


def test_uar_differs_from_accuracy_on_imbalanced_data():
    # 90 majority clips, 10 minority clips; always predicting the majority gives 90% accuracy, 50% UAR.
    y_true = [0] * 90 + [1] * 10
    y_pred = [0] * 100
    metrics = classification_metrics(y_true, y_pred)
    assert metrics["accuracy"] == pytest.approx(0.9)
    assert metrics["uar"] == pytest.approx(0.5)


def test_uar_ignores_classes_without_true_clips():
    # class 2 is only predicted, never true: its recall is undefined and must not drag UAR down.
    assert unweighted_average_recall([0, 0, 1, 1], [0, 2, 1, 1]) == pytest.approx((0.5 + 1.0) / 2)
    assert np.isnan(per_class_recall([0, 0, 1, 1], [0, 2, 1, 1], num_labels=3)[2])


def test_union_uar_is_scikit_learns_macro_recall():
    """The paper protocol's UAR: a class only predicted (2) counts with recall 0, as in the seed's scikit-learn call."""
    y_true, y_pred = [0, 0, 1, 1], [0, 2, 1, 1]
    expected = recall_score(y_true, y_pred, average="macro", zero_division=0)
    assert expected == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert unweighted_average_recall(y_true, y_pred, over="union") == pytest.approx(expected)
    assert classification_metrics(y_true, y_pred, uar_over="union")["uar"] == pytest.approx(expected)
    assert classification_metrics(y_true, y_pred)["uar"] == pytest.approx(0.75)  # leak-free mode: present classes


def test_classification_compute_metrics_for_trainer():
    logits = np.eye(3)[Y_PRED] * 5.0
    compute_metrics = make_classification_compute_metrics({0: "laugh", 1: "cry", 2: "sigh"})
    metrics = compute_metrics(EvalPrediction(predictions=(logits, np.zeros(1)), label_ids=np.array(Y_TRUE)))
    assert metrics == pytest.approx(classification_metrics(Y_TRUE, Y_PRED, ["laugh", "cry", "sigh"]))
    assert all(isinstance(value, float) for value in metrics.values())
    assert {"recall_laugh", "recall_cry", "recall_sigh"} <= set(metrics)


def test_ccc_matches_reference_formula():
    rng = np.random.default_rng(1)
    x = rng.normal(size=50)
    y = 0.7 * x + rng.normal(scale=0.5, size=50) + 0.3
    assert concordance_correlation_coefficient(x, y) == pytest.approx(reference_ccc(x, y))
    torch_ccc = concordance_correlation_coefficient_torch(torch.tensor(x), torch.tensor(y))
    assert torch_ccc.item() == pytest.approx(reference_ccc(x, y), rel=1e-5)


def test_ccc_perfect_agreement_and_shifted_copy():
    x = np.linspace(0.0, 1.0, 20)
    assert concordance_correlation_coefficient(x, x) == pytest.approx(1.0)
    shifted = concordance_correlation_coefficient(x, x + 0.5)
    # Pearson correlation is still 1, CCC penalises the offset.
    assert shifted < 1.0
    assert shifted == pytest.approx(reference_ccc(x, x + 0.5))


def test_torch_ccc_per_target_and_loss_gradient():
    torch.manual_seed(0)
    targets = torch.rand(16, 3)
    predictions = torch.rand(16, 3, requires_grad=True)
    per_target = concordance_correlation_coefficient_torch(predictions, targets)
    assert per_target.shape == (3,)
    for column in range(3):
        expected = reference_ccc(predictions[:, column].detach().numpy(), targets[:, column].numpy())
        assert per_target[column].item() == pytest.approx(expected, rel=1e-4, abs=1e-6)

    loss = ccc_loss(predictions, targets)
    loss.backward()
    assert torch.isfinite(predictions.grad).all()
    assert predictions.grad.abs().sum() > 0
    assert ccc_loss(targets, targets).item() == pytest.approx(0.0, abs=1e-5)


def test_torch_ccc_gradient_finite_on_constant_batch():
    predictions = torch.zeros(4, 2, requires_grad=True)
    ccc_loss(predictions, torch.zeros(4, 2)).backward()
    assert torch.isfinite(predictions.grad).all()


def test_regression_metrics_and_compute_metrics():
    rng = np.random.default_rng(2)
    targets = rng.random((30, 2))
    predictions = targets + rng.normal(scale=0.1, size=(30, 2))
    metrics = regression_metrics(predictions, targets, ["valence", "arousal"])
    assert metrics["ccc_valence"] == pytest.approx(reference_ccc(predictions[:, 0], targets[:, 0]))
    assert metrics["ccc_arousal"] == pytest.approx(reference_ccc(predictions[:, 1], targets[:, 1]))
    assert metrics["mean_ccc"] == pytest.approx((metrics["ccc_valence"] + metrics["ccc_arousal"]) / 2)
    assert metrics["mse"] == pytest.approx(np.mean((predictions - targets) ** 2))

    compute_metrics = make_regression_compute_metrics({0: "valence", 1: "arousal"})
    assert compute_metrics(EvalPrediction(predictions=predictions, label_ids=targets)) == pytest.approx(metrics)


def test_confusion_matrix_plot(tmp_path):
    np.testing.assert_allclose(row_normalize(EXPECTED_MATRIX).sum(axis=1), 1.0)
    path = plot_confusion_matrix(EXPECTED_MATRIX, ["laugh", "cry", "sigh"], tmp_path / "plots" / "cm.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="does not match"):
        plot_confusion_matrix(EXPECTED_MATRIX, ["laugh", "cry"], tmp_path / "bad.png")
