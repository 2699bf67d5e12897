"""The fine-tuning loss, one object for every head and task, normalized over the whole update.

A `Trainer` step may be split into N accumulation micro-batches and P processes. The update must be the one a
single batch of all those clips would give: transformers 5 hands a `compute_loss_func` the number of items in the
whole update (`num_items_in_batch`, summed over micro-batches and processes) and then trusts the returned loss
to be normalized by it (it no longer divides by the accumulation steps). So each loss here is a *sum* over the
micro-batch divided by the update's normalizer, `update_normalizer` computes that normalizer from the update's
labels, and `voc2vec.finetune.FineTuningTrainer` hands it to the Trainer in place of its token count:

- cross-entropy, optionally class-weighted: `sum_i w[y_i] * CE_i / sum_i w[y_i]` over the update, which is
  PyTorch's weighted mean over one large batch (unweighted: all `w = 1`);
- mean squared error: `sum of squared errors / (clips x targets)`;
- CCC (`1 - mean CCC over targets`) is a statistic of the whole batch, not a sum over clips: the trainer computes
  it over all the update's predictions at once (see `FineTuningTrainer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from voc2vec.metrics import ccc_loss
from voc2vec.tasks import CLASSIFICATION


class TaskLoss:
    """`Trainer(compute_loss_func=TaskLoss(...))`: weighted cross-entropy, MSE or CCC (see the module docstring)."""

    def __init__(self, task: str, class_weights: Sequence[float] | None = None, regression_loss: str = "ccc"):
        self.task = task
        self.kind = "cross_entropy" if task == CLASSIFICATION else regression_loss
        self.class_weights = None if class_weights is None else torch.tensor(list(class_weights), dtype=torch.float32)

    @property
    def is_batch_statistic(self) -> bool:
        """True for CCC: the loss of an update cannot be summed from its micro-batches."""
        return self.kind == "ccc"

    def update_normalizer(self, labels: Sequence[torch.Tensor]) -> torch.Tensor | None:
        """What the summed loss of an update is divided by, from the labels of its micro-batches."""
        if self.is_batch_statistic:
            return None
        labels = torch.cat([label.reshape(len(label), -1) if label.dim() > 1 else label for label in labels])
        if self.kind == "cross_entropy":
            if self.class_weights is None:
                return torch.tensor(float(len(labels)))
            return self.class_weights[labels.long().cpu()].sum()
        return torch.tensor(float(labels.numel()))

    def __call__(self, outputs, labels: torch.Tensor, num_items_in_batch: torch.Tensor | float | None = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        if self.kind == "ccc":
            return ccc_loss(logits, labels.to(logits.dtype).view_as(logits))
        if self.kind == "cross_entropy":
            weight = None if self.class_weights is None else self.class_weights.to(device=logits.device, dtype=logits.dtype)
            summed = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), weight=weight, reduction="sum")
            if num_items_in_batch is None:  # one batch on its own (evaluation): its own normalizer
                num_items_in_batch = self.update_normalizer([labels])
        else:
            summed = nn.functional.mse_loss(logits, labels.to(logits.dtype).view_as(logits), reduction="sum")
            if num_items_in_batch is None:
                num_items_in_batch = labels.numel()
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(device=logits.device, dtype=logits.dtype)
        return summed / num_items_in_batch
