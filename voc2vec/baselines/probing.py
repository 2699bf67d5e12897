"""Probing: a small head trained per fold on frozen features, with `finetune`'s signature and result.

`voc2vec.evaluation.run_split` calls `probe` for `--method probe` and for a feature baseline in the model's place
(`opensmile:<set>`, `emotion2vec:<id>`). The features of every clip come from the cache
(`voc2vec.baselines.extractors.corpus_features`: one pass over the corpus for all folds, heads and layers), the head
trains on `split.train` with early stopping on `split.validation` by fine-tuning's best-epoch metric
(`voc2vec.finetune.best_model_metric`), the same UAR definition, and scores `split.test` once. The outputs go
through the same metrics, predictions.csv, summaries and tables as fine-tuning's.

The head's learning rate is `--learning_rate` when given, else `PROBE_LEARNING_RATE` (1e-2): fine-tuning's default
(1e-4, for a 95 M-parameter encoder) barely moves a head of a few thousand weights, or the softmax layer weights,
in the few hundred steps a small corpus gives (measured on the demo corpus and a synthetic one-informative-layer
probe; see tests/test_probing.py). metrics.json records the rate used.

Nothing is saved as a model: a probe is the frozen encoder (already on disk or on the Hub) plus a head of a few
thousand weights trained on one fold's training part. `metrics.json` records what the head learned instead
(`probe.layer_weights` for the weighted sum, the best epoch, the feature cache).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from voc2vec.baselines.extractors import corpus_features
from voc2vec.baselines.heads import ProbeTraining, train_probe
from voc2vec.baselines.sources import feature_baseline_kind, resolve_probe_head
from voc2vec.finetune import (
    LOWER_IS_BETTER_METRICS,
    FineTuningResult,
    Split,
    best_model_metric,
)
from voc2vec.heads import balanced_class_weights
from voc2vec.metrics import (
    make_classification_compute_metrics,
    make_regression_compute_metrics,
)
from voc2vec.models import probe_layer_index
from voc2vec.tasks import CLASSIFICATION, TaskCorpus

logger = logging.getLogger(__name__)


PROBE_LEARNING_RATE = 1e-2


def probe_learning_rate(training_args) -> float:
    """`--learning_rate` when the user gave it (flag or config file), else probing's own default."""
    if "learning_rate" in getattr(training_args, "explicit_fields", ()):
        return training_args.learning_rate
    return PROBE_LEARNING_RATE


@dataclass
class ProbingResult(FineTuningResult):
    """`FineTuningResult` (model None) plus what metrics.json reports about the probe (`report["probe"]`)."""

    report: dict = field(default_factory=dict)


def probe(
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
) -> ProbingResult:
    """Train a probe on `split.train`, choose its best epoch on `split.validation`, score `split.test` once."""
    head = resolve_probe_head(model_args, corpus.task)  # as planned (plan_evaluation resolved it already)
    metric = best_model_metric(training_args, corpus)
    features = corpus_features(model_args, data_args, decoded, feature_extractor, model_config, training_args.seed,
                               training_args.per_device_eval_batch_size, training_args.device, log_prefix)
    num_layers = features.values.shape[1]
    layer = None if num_layers == 1 else probe_layer_index(model_args.probe_layer, num_layers)
    if corpus.task == CLASSIFICATION:
        compute_metrics = make_classification_compute_metrics(dict(enumerate(corpus.label_names)), uar_over=uar_over)
    else:
        compute_metrics = make_regression_compute_metrics(corpus.label_names)
    training = ProbeTraining(
        head=head,
        layer=layer,
        task=corpus.task,
        num_outputs=len(corpus.label_names),
        metric=metric,
        greater_is_better=metric not in LOWER_IS_BETTER_METRICS,
        compute_metrics=compute_metrics,
        class_weights=balanced_class_weights(corpus.targets[split.train], len(corpus.label_names))
        if corpus.task == CLASSIFICATION and model_args.class_weighted_loss else None,
        regression_loss=model_args.regression_loss,
        learning_rate=probe_learning_rate(training_args),
        weight_decay=training_args.weight_decay,
        batch_size=training_args.per_device_train_batch_size,
        max_epochs=max(1, math.ceil(training_args.num_train_epochs)),
        patience=model_args.early_stopping_patience,
        seed=training_args.seed,
    )
    started = time.perf_counter()
    trained = train_probe(features.values, corpus.targets, split, training)
    training_seconds = time.perf_counter() - started
    logger.info("%sprobe: best epoch %d of %d, validation %s %.4f", log_prefix, trained.best_epoch, trained.epochs_trained,
                metric, trained.validation.get(metric, float("nan")))
    return ProbingResult(
        model=None,
        test_outputs=trained.test_outputs,
        head=trained.description,
        validation=trained.validation,
        epochs_trained=trained.epochs_trained,
        best_checkpoint_step=None,
        padded_share=[],  # no training batch is padded: the head reads one pooled vector per clip
        timing_seconds={"features": features.seconds, "training": training_seconds},
        report={"probe": {
            "source": "features" if feature_baseline_kind(model_args.model_name_or_path) else "encoder",
            "layer": "weighted" if layer is None and num_layers > 1 else layer,
            "layer_names": features.layer_names,
            "layer_weights": trained.layer_weights,
            "head": head,
            "pooling": model_args.probe_pooling,
            "learning_rate": training.learning_rate,
            "feature_dim": int(features.values.shape[2]),
            "best_epoch": trained.best_epoch,
            "history": trained.history,
            "feature_cache": str(features.cache_folder),
            "features_computed_clips": features.computed_rows,
        }},
    )
