"""One fine-tuning run on one split: train on `split.train`, pick the best epoch on `split.validation`, score
`split.test` once. No file I/O of its own (the Trainer's temporary checkpoints aside): `voc2vec.rundir` writes
the results.

What makes the numbers trustworthy lives here:
- every loss is `voc2vec.losses.TaskLoss`, normalized over the whole update, so gradient accumulation and several
  processes give the update of one large batch (CCC over all the update's predictions at once);
- validation and test batches never pad group-norm models (`voc2vec.prediction`): every clip is scored as alone;
- training batches do not pad them either: batches of clips of similar length (`--length_grouping`), each clip cut
  to a random window as long as its batch's shortest (`--pad_to_longest false`, the default for models that cannot
  pad exactly). A group-norm model trained on padded batches learns from the padding (its group norm, attention and
  the standard head's mean see the zeros) and then meets none when scored: on the demo corpus with whole 0.5-4 s
  clips it scored at chance (test UAR 0.18 over 3 folds; 0.39 with cropped batches). Models with an attention mask
  and a layer-norm encoder pad exactly, so their batches pad. The share of each epoch's training audio that padding
  added or cropping dropped is logged and kept in the results.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import EarlyStoppingCallback, PrinterCallback, ProgressCallback, Trainer, TrainerCallback, set_seed

from voc2vec.collate import AudioClips, AudioCollator, LengthGroupedBatchSampler, padding_counts
from voc2vec.errors import UserError
from voc2vec.heads import balanced_class_weights
from voc2vec.losses import TaskLoss
from voc2vec.metrics import make_classification_compute_metrics, make_regression_compute_metrics
from voc2vec.models import build_model, head_description
from voc2vec.prediction import evaluation_batches, fixed_size_features, pads_exactly, predict_logits
from voc2vec.tasks import CLASSIFICATION, REGRESSION, TaskCorpus

logger = logging.getLogger(__name__)

CLASSIFICATION_METRICS = ("uar", "accuracy", "macro_f1")
LOWER_IS_BETTER_METRICS = ("loss", "mse")


@dataclass
class Split:
    """Row indices of one run: `train` fits, `validation` picks the best epoch, `test` is scored once."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    evaluated_on: str  # says in the reports what the test scores are scores of


@dataclass
class FineTuningResult:
    """What one run produced: the best model, the test clips' outputs (logits or regression values, in
    `split.test` order) and how training went."""

    model: torch.nn.Module
    test_outputs: np.ndarray
    head: str
    validation: dict
    epochs_trained: int
    best_checkpoint_step: int | None
    padded_share: list[float]
    timing_seconds: dict = field(default_factory=dict)
    cropped_share: list[float] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------------
# The Trainer
# ---------------------------------------------------------------------------------------------------------------------


class FineTuningTrainer(Trainer):
    """`Trainer` with the update-normalized `TaskLoss`, batch-independent evaluation, length-grouped training batches
    and the padded (or cropped) share of the training audio logged.

    Args (besides the Trainer's, whose `data_collator` makes the training batches):
        task_loss: the loss (also passed on as `compute_loss_func`).
        may_pad_evaluation: whether evaluation batches may pad (see `voc2vec.prediction.pads_exactly`).
        eval_collator: makes the validation batches (never crops).
        length_grouping: training batches from random groups of this many batches' worth of clips sorted by length
            (`voc2vec.collate.length_grouped_batches`); 0: the Trainer's own random batches.
    """

    def __init__(self, *args, task_loss: TaskLoss, may_pad_evaluation: bool, eval_collator: AudioCollator,
                 length_grouping: int = 0, **kwargs):
        super().__init__(*args, compute_loss_func=task_loss, **kwargs)
        self.task_loss = task_loss
        self.may_pad_evaluation = may_pad_evaluation
        self.eval_collator = eval_collator
        self.length_grouping = length_grouping
        model = self.accelerator.unwrap_model(self.model)
        self.model_takes_input_lengths = "input_lengths" in inspect.signature(model.forward).parameters
        self.padding_counts = np.zeros(3, dtype=np.int64)  # true, padded, cropped samples since the last log
        self.update_size = 1
        self.pending_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    # -- loss normalization over the whole update ------------------------------------------------------------------

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        self.update_size = len(batch_samples)
        normalizer = self.task_loss.update_normalizer([batch["labels"] for batch in batch_samples])
        if normalizer is None:
            return None
        normalizer = normalizer.to(device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            normalizer = self.accelerator.gather(normalizer).sum()
        return normalizer

    def _model_inputs(self, inputs: dict) -> dict:
        """Drop `input_lengths` for models that do not take it (the plain transformers heads)."""
        if not self.model_takes_input_lengths:
            inputs = {name: value for name, value in inputs.items() if name != "input_lengths"}
        return inputs

    def training_step(self, model, inputs, num_items_in_batch=None):
        # Samples for waveform models, feature frames for spectrogram models (Whisper's `input_features`).
        cropped = inputs.pop("cropped_samples", None)
        self.padding_counts += (*padding_counts(inputs, fixed_size_features(self.processing_class)),
                                0 if cropped is None else int(cropped.sum()))
        inputs = self._model_inputs(inputs)
        if self.task_loss.is_batch_statistic and (self.update_size > 1 or self.args.world_size > 1):
            return self.batch_statistic_step(model, inputs)
        return super().training_step(model, inputs, num_items_in_batch)

    def batch_statistic_step(self, model, inputs) -> torch.Tensor:
        """CCC of the whole update: keep each micro-batch's outputs (and graph) until the update's last one, gather
        the outputs of all processes, then one backward. Accumulation then saves no activation memory with this
        loss: the price of optimizing the batch's CCC rather than the mean of its micro-batches' CCCs."""
        model.train()
        inputs = self._prepare_inputs(inputs)
        labels = inputs.pop("labels")
        with self.compute_loss_context_manager():
            logits = model(**inputs).logits
        self.pending_outputs.append((logits, labels))
        if len(self.pending_outputs) < self.update_size:
            return torch.zeros((), device=logits.device)
        logits = torch.cat([output for output, _ in self.pending_outputs])
        labels = torch.cat([label for _, label in self.pending_outputs])
        self.pending_outputs = []
        if self.args.world_size > 1:
            import torch.distributed.nn.functional as distributed

            logits = torch.cat(distributed.all_gather(logits))
            labels = torch.cat(self.accelerator.gather(labels).split(len(labels)))
        loss = self.task_loss({"logits": logits}, labels)
        # DDP averages gradients over processes; the gathered loss is already the whole batch's.
        self.accelerator.backward(loss * self.args.world_size)
        return loss.detach()

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        return super().prediction_step(model, self._model_inputs(inputs), prediction_loss_only, ignore_keys)

    # -- training batches of clips of similar length ---------------------------------------------------------------

    def get_train_dataloader(self) -> DataLoader:
        if self.length_grouping <= 0:
            return super().get_train_dataloader()
        dataset = self.train_dataset
        sampler = LengthGroupedBatchSampler(dataset.lengths(), self._train_batch_size, self.length_grouping, self.args.seed,
                                            accumulation=self.args.gradient_accumulation_steps)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                            num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory)
        return self.accelerator.prepare(loader)

    # -- evaluation without padding for group-norm models ----------------------------------------------------------

    def get_eval_dataloader(self, eval_dataset=None) -> DataLoader:
        dataset = eval_dataset if eval_dataset is not None and not isinstance(eval_dataset, str) else self.eval_dataset
        batches = evaluation_batches(dataset.lengths(), self.args.eval_batch_size, self.may_pad_evaluation)
        loader = DataLoader(dataset, batch_sampler=batches, collate_fn=self.eval_collator,
                            num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory)
        if self.args.world_size > 1:
            # Sharding variable-size batches over ranks would pad the last shards with repeated clips. Every rank
            # scores every clip instead: the gathered outputs then hold each clip once per rank, which leaves UAR,
            # accuracy, F1, CCC and MSE exactly as they are (validation sets are small).
            return loader
        return self.accelerator.prepare(loader)

    # -- the padded share of the training audio, logged with the training loss -------------------------------------

    def log(self, logs: dict, *args, **kwargs) -> None:
        true, padded, cropped = (int(count) for count in self.padding_counts)
        if "loss" in logs and true:
            logs["padded_share"] = round(padded / (true + padded), 4)  # of the model's input
            logs["cropped_share"] = round(cropped / (true + cropped), 4)  # of the clips' audio
            self.padding_counts[:] = 0
        super().log(logs, *args, **kwargs)


class EpochLogCallback(TrainerCallback):
    """One line per evaluation (epoch, training loss, padded or cropped share, validation metric) instead of raw dicts."""

    def __init__(self, metric_name: str, prefix: str = ""):
        self.metric_name = metric_name
        self.prefix = prefix
        self.last_training_log: dict = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.last_training_log = logs
        if f"eval_{self.metric_name}" in logs:
            loss = self.last_training_log.get("loss")
            logger.info(
                "%sepoch %d: train loss %s (padded share %s, cropped share %s), validation loss %.4f, validation %s %.4f",
                self.prefix, round(state.epoch or 0), "-" if loss is None else f"{loss:.4f}",
                self.last_training_log.get("padded_share", "-"), self.last_training_log.get("cropped_share", "-"),
                logs.get("eval_loss", float("nan")), self.metric_name, logs[f"eval_{self.metric_name}"],
            )


# ---------------------------------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------------------------------


def best_model_metric(training_args, corpus: TaskCorpus) -> str:
    """The validation metric that picks the best epoch, checked against what this task's evaluation reports
    (call it before training: a misspelt name would otherwise fail at the end of the first epoch)."""
    metric = (training_args.metric_for_best_model or "loss").removeprefix("eval_")
    if corpus.task == REGRESSION:
        if metric in CLASSIFICATION_METRICS:
            return "mean_ccc"  # the A-VB score; the classification default does not exist here
        reported = ["mean_ccc", "mse", *(f"ccc_{name}" for name in corpus.label_names)]
    else:
        reported = [*CLASSIFICATION_METRICS, *(f"recall_{name}" for name in corpus.label_names)]
    if metric not in ["loss", *reported]:
        raise UserError(f"{metric!r} is not a validation metric of {corpus.task} on {corpus.name}",
                        where="--metric_for_best_model", fix=f"use one of {['loss', *reported]}")
    return metric


def training_arguments_for(training_args, checkpoint_dir: Path, corpus: TaskCorpus):
    """A copy of the training arguments that checkpoints under `checkpoint_dir` (deleted after the run) and
    selects by a metric of the task."""
    metric = best_model_metric(training_args, corpus)
    return dataclasses.replace(
        training_args,
        output_dir=str(checkpoint_dir),
        metric_for_best_model=metric,
        # Set here, not inferred: TrainingArguments takes every metric not ending in "loss" as higher-is-better,
        # which would keep the epoch with the *largest* MSE.
        greater_is_better=metric not in LOWER_IS_BETTER_METRICS,
        # The run's folder reports to the user; the Trainer never pushes fold checkpoints to the Hub.
        push_to_hub=False,
    )


def clips_for(decoded: datasets.Dataset, corpus: TaskCorpus, split: Split, data_args, sampling_rate: int) -> dict:
    max_samples = int(data_args.max_duration * sampling_rate) if data_args.max_duration else None
    return {
        name: AudioClips(decoded, corpus.targets, rows, max_samples=max_samples,
                         random_crop=data_args.random_crop and name == "train", pad_to_max=data_args.pad_to_max_duration)
        for name, rows in (("train", split.train), ("validation", split.validation), ("test", split.test))
    }


def finetune(
    corpus: TaskCorpus,
    decoded: datasets.Dataset,
    split: Split,
    model_args,
    data_args,
    training_args,
    feature_extractor,
    model_config,
    work_dir: str | Path,
    uar_over: str = "present",
    log_prefix: str = "",
    callbacks: list[TrainerCallback] | None = None,
) -> FineTuningResult:
    """Train on `split.train`, choose the best epoch on `split.validation`, score `split.test` once.

    `work_dir` holds the Trainer's checkpoints while training (deleted at the end) and its logs
    (`work_dir/logs`, kept: TensorBoard and other trackers write there). `uar_over` is how validation UAR is
    computed ("present" classes, or the "union" of true and predicted classes as the seed's scikit-learn call).
    `callbacks` are added to the Trainer's (e.g. to watch gradients or log elsewhere).
    """
    work_dir = Path(work_dir)
    set_seed(training_args.seed)  # the same model initialization for a fold whichever order folds run in
    class_weights = None
    if corpus.task == CLASSIFICATION and model_args.class_weighted_loss:
        class_weights = balanced_class_weights(corpus.targets[split.train], len(corpus.label_names))
    model = build_model(model_args, corpus, model_config)
    clips = clips_for(decoded, corpus, split, data_args, feature_extractor.sampling_rate)
    args = training_arguments_for(training_args, work_dir / "checkpoints", corpus)
    if corpus.task == CLASSIFICATION:
        compute_metrics = make_classification_compute_metrics(model.config.id2label, uar_over=uar_over)
    else:
        compute_metrics = make_regression_compute_metrics(corpus.label_names)
    callbacks = [EpochLogCallback(args.metric_for_best_model, log_prefix), *(callbacks or [])]
    if model_args.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=model_args.early_stopping_patience))
    may_pad = pads_exactly(model.config, feature_extractor)
    pad_training = may_pad if data_args.pad_to_longest is None else data_args.pad_to_longest
    trainer = FineTuningTrainer(
        model=model,
        args=args,
        data_collator=AudioCollator(feature_extractor, return_input_lengths=True, crop_to_shortest=not pad_training),
        eval_collator=AudioCollator(feature_extractor, return_input_lengths=True),
        length_grouping=data_args.length_grouping,
        train_dataset=clips["train"],
        eval_dataset=clips["validation"],
        processing_class=feature_extractor,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        task_loss=TaskLoss(corpus.task, class_weights, model_args.regression_loss),
        may_pad_evaluation=may_pad,
    )
    keep_tracker_logs(trainer, work_dir / "logs")
    trainer.remove_callback(PrinterCallback)  # our one line per epoch replaces its raw dicts
    if args.disable_tqdm:
        trainer.remove_callback(ProgressCallback)

    training_started = time.perf_counter()
    try:
        trainer.train()
        trainer.accelerator.wait_for_everyone()  # every rank has loaded the best checkpoint before it is deleted
    finally:
        if trainer.is_world_process_zero():
            shutil.rmtree(args.output_dir, ignore_errors=True)  # a failed run leaves no checkpoints to fill the disk
    training_seconds = time.perf_counter() - training_started

    evaluation_started = time.perf_counter()
    test_collator = AudioCollator(feature_extractor, return_input_lengths=trainer.model_takes_input_lengths)
    test_outputs = predict_logits(trainer.model, clips["test"], test_collator, clips["test"].lengths(),
                                  args.eval_batch_size, may_pad)
    evaluation_seconds = time.perf_counter() - evaluation_started
    return FineTuningResult(
        model=trainer.model,
        test_outputs=test_outputs,
        head=head_description(trainer.model),
        validation=best_validation_metrics(trainer),
        epochs_trained=round(trainer.state.epoch or 0),
        best_checkpoint_step=checkpoint_step(trainer.state.best_model_checkpoint),
        padded_share=[entry["padded_share"] for entry in trainer.state.log_history if "padded_share" in entry],
        cropped_share=[entry["cropped_share"] for entry in trainer.state.log_history if "cropped_share" in entry],
        timing_seconds={"training": training_seconds, "evaluation": evaluation_seconds},
    )


def keep_tracker_logs(trainer: Trainer, logs_dir: Path) -> None:
    """TensorBoard writes under the Trainer's output_dir by default, i.e. into the checkpoint folder deleted after
    the run: point it at the run's own folder instead (unless TENSORBOARD_LOGGING_DIR says otherwise)."""
    for callback in trainer.callback_handler.callbacks:
        if type(callback).__name__ == "TensorBoardCallback" and callback.logging_dir is None:
            callback.logging_dir = str(logs_dir)


def best_validation_metrics(trainer: Trainer) -> dict:
    """The validation metrics of the epoch the best model comes from (the last evaluation when none was kept)."""
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    best_step = checkpoint_step(trainer.state.best_model_checkpoint)
    chosen = next((entry for entry in evaluations if entry.get("step") == best_step), evaluations[-1] if evaluations else {})
    return {key.removeprefix("eval_"): value for key, value in chosen.items() if key.startswith("eval_") and "runtime" not in key
            and "per_second" not in key} | ({"epoch": chosen["epoch"]} if "epoch" in chosen else {})


def checkpoint_step(checkpoint: str | None) -> int | None:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None
