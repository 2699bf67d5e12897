"""The task corpus: a loader's clips with what a run needs per clip (target, speaker, official split).

`load_task_corpus` prepares the corpus's metadata (no audio decoded yet) and checks that it has a usable label
before anything else runs; `decode_task_corpus` decodes every clip once to the model's rate (memory-mapped
Arrow), so no epoch or fold reads the original files again.

Row order is the loader's: the folder-based loaders list files sorted by path, the `csv` loader keeps the CSV's
row order (the seed repository's `path,emotion` CSVs give the seed's folds clip for clip; a row the loader skips,
e.g. an unreadable file, shifts the rows after it), and official splits are concatenated train, validation,
test. Folds are computed on this order, so the same corpus and seed always give the same folds.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from voc2vec.cache import decode_corpus
from voc2vec.corpora import builder_class, load_corpus
from voc2vec.errors import UserError
from voc2vec.folds import drop_rare_classes

logger = logging.getLogger(__name__)

CLASSIFICATION = "classification"
REGRESSION = "regression"
SPLIT_NAMES = {"train": "train", "val": "validation", "valid": "validation", "validation": "validation", "test": "test"}


@dataclass
class TaskCorpus:
    """A corpus ready for one task: all official splits in one dataset, row-aligned label arrays.

    `targets` holds class ids (classification) or a `(clips, targets)` float array (regression); `label_names`
    the class names or the target names. `official_splits` is the per-clip split name ("train", "validation",
    "test") when the corpus ships official splits, else None. `test_labels_withheld` is True when its test split
    has no labels (A-VB): results then come from the official validation split. `root` is the folder clip paths
    are stored relative to in result files (None: paths as they are).
    """

    name: str
    dataset: datasets.Dataset
    task: str
    label_names: list[str]
    targets: np.ndarray
    speakers: list[str]
    official_splits: np.ndarray | None = None
    test_labels_withheld: bool = False
    root: str | None = None

    @property
    def stratify_labels(self) -> np.ndarray:
        """What folds are stratified by: the class, or nothing (one pseudo-class) for regression."""
        return self.targets if self.task == CLASSIFICATION else np.zeros(len(self.targets), dtype=np.int64)

    @property
    def paths(self) -> list[str]:
        return self.dataset["path"]

    def relative_paths(self) -> list[str]:
        """Clip paths relative to `root` (as written in splits.csv and predictions.csv), so results can be moved."""
        if not self.root:
            return list(self.paths)
        root = Path(self.root)
        relative = []
        for path in self.paths:
            try:
                relative.append(Path(path).relative_to(root).as_posix())
            except ValueError:  # a csv loader path outside the root stays absolute
                relative.append(path)
        return relative

    def class_names(self, classes) -> str:
        """Classes by name for messages (regression has one pseudo-class: every clip)."""
        if self.task != CLASSIFICATION:
            return "the corpus"
        return ", ".join(f"'{self.label_names[int(index)]}'" for index in classes)


def corpus_target_columns(data_args, features: datasets.Features) -> list[str] | None:
    """The float columns to regress: given explicitly, or the corpus config's targets when it has no class label."""
    if data_args.target_columns:
        return list(data_args.target_columns)
    if "label" in features:
        return None
    config_name = data_args.dataset_config_name
    for config in getattr(builder_class(data_args.dataset_name), "BUILDER_CONFIGS", []):
        if (config_name is None or config.name == config_name) and getattr(config, "target_columns", None):
            return list(config.target_columns)
    return None


def corpus_root(data_args, dataset: datasets.Dataset) -> str | None:
    """The folder clip paths are relative to: `--audio_root`, the corpus folder, or the CSV's folder."""
    for candidate in (data_args.audio_root, data_args.data_dir):
        if candidate:
            return str(Path(candidate).expanduser().resolve())
    if data_args.data_files:
        return str(Path(data_args.data_files[0]).expanduser().resolve().parent)
    paths = [path for path in dataset["path"][:1000] if path]
    if paths:  # the demo corpus lives in the cache: its common folder
        return os.path.commonpath(paths) if len(paths) > 1 else str(Path(paths[0]).parent)
    return None


def load_task_corpus(data_args) -> TaskCorpus:
    """Prepare the corpus's metadata (no audio decoded yet) and check that it has what the task needs."""
    try:
        loaded = load_corpus(
            data_args.dataset_name,
            data_dir=data_args.data_dir,
            config=data_args.dataset_config_name,
            cache_dir=data_args.corpus_cache_dir,
            **data_args.loader_options(),
        )
    except UserError:
        raise
    except ValueError as error:  # a loader's refusal of its options (a missing CSV column, a bad regex, ...)
        raise UserError(str(error).rstrip("."), where=f"--dataset_name {data_args.dataset_name}",
                        fix="see the loader's options in data/" + data_args.dataset_name + ".py") from error
    official_splits = None
    if isinstance(loaded, datasets.DatasetDict):
        parts = {SPLIT_NAMES.get(name.lower(), name.lower()): part for name, part in loaded.items()}
        unknown = set(parts) - {"train", "validation", "test"}
        if unknown or "train" not in parts:
            raise UserError(f"unexpected official splits {sorted(loaded)}", where=data_args.dataset_name,
                            fix="name the splits train/validation/test")
        dataset = datasets.concatenate_datasets(list(parts.values()))
        official_splits = np.concatenate([[name] * len(part) for name, part in parts.items()])
    else:
        dataset = loaded

    features = dataset.features
    target_columns = corpus_target_columns(data_args, features)
    speakers = [speaker or "" for speaker in dataset["speaker"]] if "speaker" in features else [""] * len(dataset)
    if target_columns:
        missing = [column for column in target_columns if column not in features]
        if missing:
            raise UserError(f"target column(s) {missing} not in corpus '{data_args.dataset_name}' (columns: {list(features)})",
                            where="--target_columns", fix="name columns the corpus has")
        # pd.to_numeric: the csv loader keeps extra columns as strings; empty or unparsable cells become NaN.
        targets = np.stack(
            [pd.to_numeric(pd.Series(dataset[column]), errors="coerce").to_numpy(np.float32) for column in target_columns], axis=1
        )
        task, label_names = REGRESSION, target_columns
        labelled = ~np.isnan(targets).any(axis=1)
    else:
        if "label" not in features or not isinstance(features["label"], datasets.ClassLabel):
            raise UserError(
                f"corpus '{data_args.dataset_name}' has no class label column (columns: {list(features)})",
                where="--label_column", fix="name it with --label_column (csv loader), or give --target_columns for regression",
            )
        targets = np.asarray(dataset["label"], dtype=np.int64)
        task, label_names = CLASSIFICATION, list(features["label"].names)
        labelled = targets >= 0

    test_labels_withheld = False
    if official_splits is not None:
        test_rows = official_splits == "test"
        test_labels_withheld = not test_rows.any() or not labelled[test_rows].any()
        if test_labels_withheld:
            logger.warning("The official test split has no labels: results are computed on the official validation split.")
    corpus = TaskCorpus(data_args.dataset_name, dataset, task, label_names, targets, speakers, official_splits,
                        test_labels_withheld, corpus_root(data_args, dataset))
    if not labelled.all():
        # Withheld test clips cannot be scored, and train/validation clips without a label cannot be learnt from.
        logger.warning("Leaving out %d clips without a label.", (~labelled).sum())
        corpus = keep_rows(corpus, np.flatnonzero(labelled))
    if task == CLASSIFICATION and data_args.min_clips_per_class > 0:
        corpus = keep_rows(corpus, drop_rare_classes(corpus.targets, data_args.min_clips_per_class), relabel=True)
    if len(corpus.targets) == 0:
        raise UserError(f"corpus '{data_args.dataset_name}' has no labelled clip", where=data_args.data_dir or data_args.dataset_name,
                        fix="check --data_dir and the label column")
    return corpus


def keep_rows(corpus: TaskCorpus, rows: np.ndarray, relabel: bool = False) -> TaskCorpus:
    """The corpus restricted to `rows`; `relabel` renumbers the remaining classes 0..n-1 (after dropping classes)."""
    targets, label_names = corpus.targets[rows], corpus.label_names
    if relabel and corpus.task == CLASSIFICATION:
        kept_classes = np.unique(targets)
        label_names = [corpus.label_names[class_id] for class_id in kept_classes]
        targets = np.searchsorted(kept_classes, targets)
    return dataclasses.replace(
        corpus,
        dataset=corpus.dataset.select(rows),
        targets=targets,
        label_names=label_names,
        speakers=[corpus.speakers[row] for row in rows],
        official_splits=None if corpus.official_splits is None else corpus.official_splits[rows],
    )


def decode_task_corpus(corpus: TaskCorpus, sampling_rate: int, corpus_cache_dir: str | None = None) -> datasets.Dataset:
    """Every clip decoded once to the model's rate (memory-mapped Arrow); no epoch or fold reads the files again."""
    cache_dir = Path(corpus_cache_dir) / "decoded" if corpus_cache_dir else None
    return decode_corpus(corpus.dataset, sampling_rate=sampling_rate, cache_dir=cache_dir)
