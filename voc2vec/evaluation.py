"""The evaluation path `run_cv.py` and `run_classification.py` share: plan a run, then run each of its splits.

`plan_evaluation` does everything that can fail on bad input before any audio is decoded or model trained: the
corpus and its labels, the protocol (its declared settings applied, its feasibility checked), every split of every
fold, and the model's config and feature extractor. `run_split` trains one split and writes its files
(`voc2vec.rundir`); `run_classification.py` is the one-split case, `run_cv.py` loops over folds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from voc2vec.baselines.sources import resolve_probe_head
from voc2vec.errors import UserError, os_errors_as_user_errors
from voc2vec.finetune import Split, best_model_metric, finetune
from voc2vec.metrics import classification_metrics, confusion_matrix, regression_metrics
from voc2vec.models import check_model_source, method_description
from voc2vec.protocols import Protocol, apply_declared_settings, resolve_protocol
from voc2vec.rundir import predictions_table, save_model, write_fold_results
from voc2vec.tasks import CLASSIFICATION, TaskCorpus, decode_task_corpus, load_task_corpus

logger = logging.getLogger(__name__)

# Training arguments that change a fold's result, and so are part of a run's identity (cv_config.json). Logging,
# output, evaluation batch size (scores are batch-independent), hub settings and speed-only settings (torch_compile,
# gradient checkpointing, data loader workers) are not; tf32 is, as fp16 and bf16 are: it lowers matmul precision.
RESULT_TRAINING_SETTINGS = (
    "seed", "data_seed", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "warmup_steps", "lr_scheduler_type", "lr_scheduler_kwargs", "weight_decay",
    "adam_beta1", "adam_beta2", "adam_epsilon", "optim", "optim_args", "max_grad_norm", "metric_for_best_model",
    "eval_strategy", "eval_delay", "save_strategy", "load_best_model_at_end", "label_smoothing_factor", "fp16", "bf16",
    "tf32", "full_determinism", "dataloader_drop_last", "train_sampling_strategy",
)
# Settings that count only under a strategy: which steps are evaluated (early stopping and the best checkpoint) and
# saved (only a saved step can be the best checkpoint). Under "epoch" they do nothing, and may change on resume.
STEP_SETTINGS = {"eval_steps": "eval_strategy", "save_steps": "save_strategy"}
# Model/data/protocol fields that name where things are rather than what is computed.
LOCATION_FIELDS = ("data_dir", "data_files", "audio_root", "corpus_cache_dir", "model_cache_dir", "splits_csv")


FEATURE_BASELINES = ("opensmile", "emotion2vec")


def is_feature_baseline(model_name_or_path: str) -> bool:
    """`opensmile:eGeMAPSv02`, `emotion2vec:<hub id>`: features that take the model's place, always probed."""
    return model_name_or_path.split(":", 1)[0] in FEATURE_BASELINES


@dataclass
class EvaluationPlan:
    """Everything a run needs, checked: the corpus, the protocol and its runs, the model's config."""

    corpus: TaskCorpus
    protocol: Protocol
    assignment: np.ndarray  # the test fold (or split name) of every clip
    runs: dict[int, Split]
    model_config: object
    feature_extractor: object
    fold_kind: str
    settings: dict  # every setting that changes a fold's result

    @property
    def keeps_model(self) -> bool:
        """Fine-tuning leaves a loadable model; a probe (a frozen encoder plus a small head) leaves none."""
        return self.settings.get("method") == "finetune" and not is_feature_baseline(self.settings["model_name_or_path"])


def plan_evaluation(model_args, data_args, protocol_args, training_args, single_split: bool) -> EvaluationPlan:
    """Load the labels, choose the protocol and its splits and check the model before any audio is decoded."""
    corpus = load_task_corpus(data_args)
    protocol = resolve_protocol(protocol_args, corpus, training_args.seed, single_split)
    applied = apply_declared_settings(
        protocol, {"model": model_args, "data": data_args, "protocol": protocol_args, "training": training_args}
    )
    if applied:
        logger.info("--protocol %s sets %s.", protocol.name, ", ".join(applied))
    best_model_metric(training_args, corpus)
    protocol.check(corpus)
    assignment = protocol.assign(corpus)
    runs = protocol.splits(corpus, assignment)
    model_config, feature_extractor = check_model_source(model_args)
    model_args.probe_head = resolve_probe_head(model_args, corpus.task)  # its default depends on the source
    probing = model_args.method == "probe" or is_feature_baseline(model_args.model_name_or_path)
    if probing and training_args.push_to_hub:
        raise UserError("a probe keeps no model to publish (a frozen encoder plus a small head)", where="--push_to_hub",
                        fix="drop --push_to_hub, or fine-tune (--method finetune)")
    return EvaluationPlan(corpus, protocol, assignment, runs, model_config, feature_extractor,
                          protocol.describe(corpus, assignment), result_settings(model_args, data_args, protocol_args, training_args))


def result_settings(model_args, data_args, protocol_args, training_args) -> dict:
    """The settings that change a fold's result, by option name (compared when a run resumes)."""
    settings = {}
    for arguments in (model_args, data_args, protocol_args):
        for field in dataclasses.fields(arguments):
            if field.name not in LOCATION_FIELDS:
                settings[field.name] = getattr(arguments, field.name)
    for name in RESULT_TRAINING_SETTINGS:
        settings[name] = setting_value(training_args, name)
    for name, strategy in STEP_SETTINGS.items():
        settings[name] = getattr(training_args, name) if setting_value(training_args, strategy) == "steps" else None
    return settings


def setting_value(training_args, name: str):
    value = getattr(training_args, name)
    return value.value if hasattr(value, "value") else value  # enums as their names


def decode(plan: EvaluationPlan, data_args) -> datasets.Dataset:
    """Decode every clip once (16 kHz float32, memory-mapped); no epoch or fold reads the original files again."""
    return decode_task_corpus(plan.corpus, plan.feature_extractor.sampling_rate, data_args.corpus_cache_dir)


def run_split(
    plan: EvaluationPlan,
    decoded: datasets.Dataset,
    split: Split,
    model_args,
    data_args,
    training_args,
    folder: Path,
    save_model_dir: Path | None = None,
    extra_metadata: dict | None = None,
    log_prefix: str = "",
    write_files: bool = True,
) -> dict:
    """Train and score one split; write `predictions.csv`, the model if asked, and `metrics.json` (last) to `folder`
    (`write_files=False`: the other ranks of a data-parallel run, which train alongside rank 0 but write nothing)."""
    corpus = plan.corpus
    started = time.perf_counter()
    if model_args.method == "finetune" and not is_feature_baseline(model_args.model_name_or_path):
        train = finetune
    else:
        from voc2vec.baselines import probe as train  # frozen encoders and feature baselines (voc2vec/baselines/)
    with os_errors_as_user_errors(folder):  # a full disk in a fold: "no space left" and the folder, in failed.json too
        result = train(corpus, decoded, split, model_args, data_args, training_args, plan.feature_extractor,
                       plan.model_config, work_dir=folder, uar_over=plan.protocol.uar_over, log_prefix=log_prefix)
    metrics = {
        "task": corpus.task,
        "dataset": corpus.name,
        "model_name_or_path": model_args.model_name_or_path,
        "method": method_description(model_args),
        "head": result.head,
        "protocol": plan.protocol.name,
        "evaluated_on": split.evaluated_on,
        "label_names": corpus.label_names,
        "num_clips": {"train": len(split.train), "validation": len(split.validation), "test": len(split.test)},
        "validation": result.validation,
        "epochs_trained": result.epochs_trained,
        "best_checkpoint_step": result.best_checkpoint_step,
        "padded_share_of_training_audio": result.padded_share,
        "cropped_share_of_training_audio": result.cropped_share,
        "timing_seconds": result.timing_seconds | {"total": time.perf_counter() - started},
        **getattr(result, "report", {}),  # probing: learned layer weights, best epoch, feature cache
        **(extra_metadata or {}),
    }
    outputs = result.test_outputs
    if corpus.task == CLASSIFICATION:
        y_true, y_pred = corpus.targets[split.test], outputs.argmax(axis=-1)
        metrics["test"] = classification_metrics(y_true, y_pred, corpus.label_names, uar_over=plan.protocol.uar_over)
        metrics["confusion_matrix"] = confusion_matrix(y_true, y_pred, len(corpus.label_names)).tolist()
    else:
        metrics["test"] = regression_metrics(outputs, corpus.targets[split.test], corpus.label_names)
    if not write_files:
        return metrics
    if save_model_dir is not None and result.model is None:
        logger.info("%sa probe keeps no model (the frozen encoder plus a small head): %s is not written.", log_prefix, save_model_dir)
    elif save_model_dir is not None:
        info = {key: metrics[key] for key in ("dataset", "model_name_or_path", "method", "head", "protocol", "evaluated_on", "num_clips", "test")}
        info["training_hyperparameters"] = run_hyperparameters(model_args, data_args, training_args)
        with os_errors_as_user_errors(save_model_dir):
            save_model(result.model, plan.feature_extractor, Path(save_model_dir), info | (extra_metadata or {}))
        metrics["saved_model"] = str(save_model_dir)
    with os_errors_as_user_errors(folder):
        write_fold_results(folder, metrics, predictions_table(corpus, split.test, outputs))
    return metrics


def run_hyperparameters(model_args, data_args, training_args) -> dict:
    """What a model card lists about how the model was trained (never a token)."""
    from voc2vec.cards import training_hyperparameters

    return {**training_hyperparameters(model_args), **training_hyperparameters(data_args), **training_hyperparameters(training_args)}


def publish_model(model_dir: Path, results: Path, model_args, data_args, training_args) -> None:
    """The model folder's card (`README.md`, every number read from `results`), and its upload to the Hub with
    `--push_to_hub --hub_model_id ORG/NAME` (token from huggingface_hub's login or HF_TOKEN)."""
    from voc2vec.cards import write_classifier_card
    from voc2vec.hub import push_model, warn_if_hub_token_given

    warn_if_hub_token_given(training_args)
    repo_id = training_args.hub_model_id if training_args.push_to_hub else None
    card = write_classifier_card(model_dir, results, run_hyperparameters(model_args, data_args, training_args), repo_id=repo_id)
    logger.info("model card: %s", card)
    if repo_id:
        logger.info("published: %s", push_model(model_dir, repo_id, private=training_args.hub_private_repo))


def headline(metrics: dict) -> dict:
    """The test scores a log line shows."""
    return {key: round(value, 4) for key, value in metrics["test"].items() if key in ("uar", "accuracy", "macro_f1", "mean_ccc")}
