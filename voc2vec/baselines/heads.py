"""Probing heads: what is trained on frozen features, one per fold, with early stopping on the validation split.

Features come as `(clips, layers, dim)`. Each (layer, dimension) is standardized with the training clips' mean and
standard deviation (the scale of hidden states differs by orders of magnitude from layer to layer, and openSMILE
mixes Hz with dB), then:

- `--probe_layer weighted`: a learned softmax-weighted sum of the layers (SUPERB's featurizer): one weight per
  layer, trained with the head by the same optimizer; the weights of the best epoch are reported;
- `--probe_layer k` / `last`: that layer alone;

then the head: `linear` (one linear layer; the default for an encoder's layers, as SUPERB probes), `mlp` (two
linear layers with a ReLU between them, hidden size 256, the voc2vec paper's head for its openSMILE and emotion2vec
baselines, and their default) or `logreg` (scikit-learn's multinomial logistic regression on one layer, its inverse
regularization strength C chosen on the validation split; classification only).

The torch heads train with AdamW at `--learning_rate`, batches of `--per_device_train_batch_size`, up to
`--num_train_epochs` epochs, and the loss of fine-tuning (`voc2vec.losses.TaskLoss`: class-weighted cross-entropy,
CCC or MSE). After every epoch the validation split is scored with the metric that picks fine-tuning's best epoch;
the best epoch's weights are kept, and training stops after `--early_stopping_patience` epochs without improvement.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from transformers import EvalPrediction

from voc2vec.losses import TaskLoss
from voc2vec.tasks import CLASSIFICATION

MLP_HIDDEN_SIZE = 256
LOGREG_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


@dataclass
class ProbeTraining:
    """How one probe is trained (from the run's arguments)."""

    head: str  # "linear" | "mlp" | "logreg"
    layer: int | None  # None: learned weighted sum of all layers
    task: str
    num_outputs: int
    metric: str  # the validation metric that picks the best epoch
    greater_is_better: bool
    compute_metrics: Callable[[EvalPrediction], dict]
    class_weights: list[float] | None = None
    regression_loss: str = "ccc"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 16
    max_epochs: int = 50
    patience: int = 5  # 0: never stop early
    seed: int = 42


@dataclass
class TrainedProbe:
    test_outputs: np.ndarray  # logits (log-probabilities for logreg) or regression values, in split.test order
    validation: dict  # the best epoch's validation metrics
    epochs_trained: int
    best_epoch: int
    description: str
    layer_weights: list[float] | None = None
    history: list[dict] = field(default_factory=list)


class ProbeHead(nn.Module):
    """Standardization, then the weighted layer sum (or the one layer given), then a linear or MLP head."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor, num_outputs: int, kind: str, weighted: bool):
        super().__init__()
        self.register_buffer("mean", mean)  # (layers, dim), from the training clips
        self.register_buffer("scale", scale)
        num_layers, dim = mean.shape
        self.layer_logits = nn.Parameter(torch.zeros(num_layers)) if weighted else None
        if kind == "mlp":
            self.head = nn.Sequential(nn.Linear(dim, MLP_HIDDEN_SIZE), nn.ReLU(), nn.Linear(MLP_HIDDEN_SIZE, num_outputs))
        else:
            self.head = nn.Linear(dim, num_outputs)

    def layer_weights(self) -> torch.Tensor | None:
        return None if self.layer_logits is None else torch.softmax(self.layer_logits, dim=0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = (features - self.mean) / self.scale
        if self.layer_logits is None:
            pooled = features[:, 0]
        else:
            pooled = (self.layer_weights()[None, :, None] * features).sum(dim=1)
        return self.head(pooled)


def standardization(train_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (layer, dim) mean and std of the training clips; a constant feature keeps scale 1 (no division by 0)."""
    mean = train_features.mean(axis=0)
    std = train_features.std(axis=0)
    return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


def select_layers(features: np.ndarray, rows: np.ndarray, layer: int | None) -> np.ndarray:
    """`features[rows]` as float32 in memory, only the chosen layer when one is given; non-finite values (openSMILE
    on a near-silent clip) become 0."""
    chosen = features[rows] if layer is None else features[rows][:, [layer]]
    return np.nan_to_num(np.asarray(chosen, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def train_probe(features: np.ndarray, targets: np.ndarray, split, training: ProbeTraining) -> TrainedProbe:
    """Train on `split.train`, choose the best epoch (or C) on `split.validation`, score `split.test` once."""
    parts = {name: select_layers(features, getattr(split, name), training.layer) for name in ("train", "validation", "test")}
    labels = {name: targets[getattr(split, name)] for name in ("train", "validation", "test")}
    with one_thread():
        if training.head == "logreg":
            return train_logistic_regression(parts, labels, training)
        return train_torch_head(parts, labels, training)


def describe(training: ProbeTraining, num_layers: int, dim: int) -> str:
    if num_layers == 1 and training.layer is None:
        layers = "one feature vector per clip"  # openSMILE, emotion2vec
    else:
        layers = f"softmax-weighted sum of {num_layers} layers" if training.layer is None else f"layer {training.layer}"
    head = {
        "linear": "linear",
        "mlp": f"2-layer MLP (hidden {MLP_HIDDEN_SIZE}, ReLU)",
        "logreg": "logistic regression (C chosen on validation)",
    }[training.head]
    return f"standardized {dim}-d features, {layers}, {head}"


def is_better(value: float, best: float | None, greater_is_better: bool) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value > best if greater_is_better else value < best


def validation_scores(outputs: np.ndarray, labels: np.ndarray, training: ProbeTraining, loss: TaskLoss) -> dict:
    if not len(labels):
        return {}
    scores = training.compute_metrics(EvalPrediction(predictions=outputs, label_ids=labels))
    scores["loss"] = float(loss({"logits": torch.from_numpy(outputs)}, torch.from_numpy(labels)))
    return scores


def as_label_tensor(labels: np.ndarray, task: str) -> torch.Tensor:
    return torch.from_numpy(labels.astype(np.int64) if task == CLASSIFICATION else labels.astype(np.float32))


@contextlib.contextmanager
def one_thread():
    """Run a probe's small matrix products on one thread (torch's and the BLAS pools alike): on 2 shared cores the
    thread pools spent far longer synchronizing than computing (30 epochs of a linear head: 9.7 s vs 1.4 s; six
    logistic regressions on 317 clips x 768 features: 3.1 s vs 0.14 s; measured)."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def train_torch_head(parts: dict, labels: dict, training: ProbeTraining) -> TrainedProbe:
    torch.manual_seed(training.seed)
    generator = torch.Generator().manual_seed(training.seed)
    mean, scale = standardization(parts["train"])
    head = ProbeHead(torch.from_numpy(mean), torch.from_numpy(scale), training.num_outputs, training.head,
                     weighted=training.layer is None and mean.shape[0] > 1)
    optimizer = torch.optim.AdamW(head.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay)
    loss = TaskLoss(training.task, training.class_weights, training.regression_loss)
    inputs = {name: torch.from_numpy(values) for name, values in parts.items()}
    train_labels = as_label_tensor(labels["train"], training.task)

    best_value, best_state, best_epoch, best_scores, history, epochs_without_gain = None, None, 0, {}, [], 0
    epoch = 0
    for epoch in range(1, training.max_epochs + 1):
        head.train()
        epoch_losses = []
        for positions in training_batches(len(train_labels), training.batch_size, generator):
            batch_loss = loss({"logits": head(inputs["train"][positions])}, train_labels[positions])
            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()
            epoch_losses.append(batch_loss.item())
        head.eval()
        with torch.no_grad():
            outputs = head(inputs["validation"]).numpy()
        scores = validation_scores(outputs, labels["validation"], training, loss)
        history.append({"epoch": epoch, "train_loss": float(np.mean(epoch_losses))} | {key: scores[key] for key in (training.metric, "loss") if key in scores})
        value = scores.get(training.metric)
        if best_state is None or is_better(value, best_value, training.greater_is_better):
            best_value, best_state, best_epoch, best_scores = value, copy.deepcopy(head.state_dict()), epoch, scores
            epochs_without_gain = 0
        else:
            epochs_without_gain += 1
            if training.patience and epochs_without_gain >= training.patience:
                break
    head.load_state_dict(best_state)
    head.eval()
    with torch.no_grad():
        test_outputs = head(inputs["test"]).numpy()
    weights = head.layer_weights()
    return TrainedProbe(
        test_outputs=test_outputs,
        validation=best_scores | {"epoch": best_epoch},
        epochs_trained=epoch,
        best_epoch=best_epoch,
        description=describe(training, mean.shape[0], mean.shape[1]),
        layer_weights=None if weights is None else weights.detach().numpy().round(6).tolist(),
        history=history,
    )


def training_batches(num_clips: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch in batches; a last batch of one clip joins the one before (CCC needs two clips)."""
    order = torch.randperm(num_clips, generator=generator)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2:
        last = batches.pop()
        batches[-1] = torch.cat([batches[-1], last])
    return batches


def train_logistic_regression(parts: dict, labels: dict, training: ProbeTraining) -> TrainedProbe:
    from sklearn.linear_model import LogisticRegression

    mean, scale = standardization(parts["train"])
    inputs = {name: ((values - mean) / scale)[:, 0] for name, values in parts.items()}
    loss = TaskLoss(training.task, training.class_weights, training.regression_loss)
    best_value, best_model, best_scores, history = None, None, {}, []
    for index, c in enumerate(LOGREG_C_GRID, start=1):
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced" if training.class_weights is not None else None)
        model.fit(inputs["train"], labels["train"])
        scores = validation_scores(log_probabilities(model, inputs["validation"], training.num_outputs), labels["validation"], training, loss)
        history.append({"C": c} | {key: scores[key] for key in (training.metric, "loss") if key in scores})
        if best_model is None or is_better(scores.get(training.metric), best_value, training.greater_is_better):
            best_value, best_model, best_scores = scores.get(training.metric), model, scores | {"C": c}
    return TrainedProbe(
        test_outputs=log_probabilities(best_model, inputs["test"], training.num_outputs),
        validation=best_scores,
        epochs_trained=len(LOGREG_C_GRID),
        best_epoch=LOGREG_C_GRID.index(best_scores["C"]) + 1,
        description=describe(training, 1, mean.shape[1]),
        history=history,
    )


def log_probabilities(model, inputs: np.ndarray, num_classes: int) -> np.ndarray:
    """`(clips, num_classes)` log-probabilities (usable as logits), with every class of the task as a column even
    when the training part lacked some (those get a very low score)."""
    outputs = np.full((len(inputs), num_classes), -1e4, dtype=np.float32)
    if len(inputs):
        outputs[:, model.classes_] = model.predict_log_proba(inputs)
    return outputs
