"""Evaluation protocols: which clips train, which pick the best epoch, which are scored.

Each protocol is one small class:

- `check(corpus)`: can it run on this corpus? Called before any audio is decoded; errors name its own flags.
- `declared`: the settings it fixes (e.g. the seed's 7 s crop). `apply_declared_settings` applies them as
  defaults; a user flag that contradicts one is an error naming both, never silently overridden.
- `assign(corpus)`: the test fold of every clip (an int per clip for k-fold protocols, a split name for
  single-split ones), what `splits.csv` records.
- `splits(corpus, assignment)`: the named runs, `{fold: Split(train, validation, test)}`.

To add a protocol: write a class here (subclass `Protocol`), add it to `PROTOCOLS` and to
`voc2vec.arguments.PROTOCOL_NAMES`, and give it a test in tests/test_protocols.py.
"""

from __future__ import annotations

import abc
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from voc2vec.errors import UserError
from voc2vec.finetune import Split
from voc2vec.folds import (
    check_fold_inputs,
    count_distinct_speakers,
    inner_validation_split,
    paper_folds,
    speaker_folds,
    train_test_indices,
)
from voc2vec.tasks import CLASSIFICATION, TaskCorpus

logger = logging.getLogger(__name__)


class Protocol(abc.ABC):
    """The interface (see the module docstring). Subclasses set `name`, `note` and what they need."""

    name: ClassVar[str]
    note: ClassVar[str]  # what the reports say about the scores
    # (argument group, field) -> value this protocol fixes; groups are "model", "data", "protocol", "training".
    declared: ClassVar[dict[tuple[str, str], object]] = {}
    # Per-fold UAR over the classes present in the fold, or the union of true and predicted (scikit-learn's default).
    uar_over: ClassVar[str] = "present"
    single_split: ClassVar[bool] = False

    def __init__(self, protocol_args, seed: int):
        self.args = protocol_args
        self.seed = seed

    def check(self, corpus: TaskCorpus) -> None:
        """Raise a `UserError` naming the option to change when this protocol cannot run on `corpus`."""

    @abc.abstractmethod
    def assign(self, corpus: TaskCorpus) -> np.ndarray:
        """The test fold (int) or split name (str) of every clip."""

    @abc.abstractmethod
    def splits(self, corpus: TaskCorpus, assignment: np.ndarray) -> dict[int, Split]:
        """The runs of this protocol: `{fold: Split}`."""

    def describe(self, corpus: TaskCorpus, assignment: np.ndarray) -> str:
        """How the folds were made, for the reports."""
        return self.note

    # -- helpers shared by the protocols that carve validation out of their training part ---------------------------

    def inner_split(self, corpus: TaskCorpus, train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A stratified, speaker-disjoint validation part of `train_rows`.

        A class rarer than the split's parts (Donate A Cry's 8 burps) may get no validation clip: validation UAR then
        averages over the other classes, which is logged. A class left with no training clip at all stops the run.
        """
        fraction = self.args.validation_fraction
        try:
            fit_rows, validation_rows = inner_validation_split(
                train_rows, corpus.stratify_labels, corpus.speakers, validation_fraction=fraction, seed=self.seed
            )
        except ValueError as error:  # scikit-learn's "n_splits=10 cannot be greater than the number of members ..."
            parts = max(2, int(round(1.0 / fraction)))
            classes, counts = np.unique(corpus.stratify_labels[train_rows], return_counts=True)
            listing = ", ".join(f"{corpus.class_names([label])} {count}" for label, count in zip(classes, counts))
            raise UserError(
                f"the training part is too small for a 1/{parts} validation split (clips per class: {listing}; "
                f"scikit-learn: {error})", where=f"--validation_fraction {fraction}",
                fix=f"raise --validation_fraction (to at least {1 / max(2, counts.max()):.2f}), or use fewer folds",
            ) from error
        train_classes = set(corpus.stratify_labels[train_rows].tolist())
        without_training = sorted(train_classes - set(corpus.stratify_labels[fit_rows].tolist()))
        if without_training:
            raise UserError(
                f"the validation split takes every training clip of {corpus.class_names(without_training)} (their "
                "speakers all fell into it)", where="--validation_fraction",
                fix="lower --validation_fraction, change --seed, or drop rare classes with --min_clips_per_class",
            )
        without_validation = sorted(train_classes - set(corpus.stratify_labels[validation_rows].tolist()))
        if without_validation:
            logger.warning(
                "No validation clip of %s (too rare for a 1/%d split): early stopping uses the other classes. Raise "
                "--validation_fraction to include them.",
                corpus.class_names(without_validation), max(2, int(round(1.0 / fraction))),
            )
        return fit_rows, validation_rows

    def carved_split(self, corpus: TaskCorpus, train_rows: np.ndarray, test_rows: np.ndarray, evaluated_on: str) -> Split:
        fit_rows, validation_rows = self.inner_split(corpus, train_rows)
        return Split(fit_rows, validation_rows, test_rows, evaluated_on)

    def k_fold_splits(self, corpus: TaskCorpus, assignment: np.ndarray) -> dict[int, Split]:
        runs = {}
        for fold in sorted(set(assignment.tolist())):
            train_rows, test_rows = train_test_indices(assignment, fold)
            runs[fold] = self.carved_split(corpus, train_rows, test_rows,
                                           f"fold {fold} (scored once; best epoch chosen on an inner validation split)")
        return runs


class SpeakerCV(Protocol):
    """k folds stratified by label and grouped by speaker; validation carved from the training folds."""

    name = "speaker-cv"
    note = "leak-free: best epoch chosen on a validation split carved from the training folds; test fold scored once."

    def check(self, corpus: TaskCorpus) -> None:
        labels = [corpus.label_names[t] for t in corpus.targets] if corpus.task == CLASSIFICATION else corpus.stratify_labels
        try:  # names, so errors say 'burping', not 1
            check_fold_inputs(labels, self.args.num_folds, corpus.speakers, self.args.group_by_speaker)
        except ValueError as error:
            raise UserError(str(error).rstrip("."), where=f"--protocol {self.name}") from error

    def assign(self, corpus: TaskCorpus) -> np.ndarray:
        return speaker_folds(corpus.stratify_labels, corpus.speakers, self.args.num_folds, self.seed, self.args.group_by_speaker)

    def splits(self, corpus: TaskCorpus, assignment: np.ndarray) -> dict[int, Split]:
        return self.k_fold_splits(corpus, assignment)

    def describe(self, corpus: TaskCorpus, assignment: np.ndarray) -> str:
        if speaker_disjoint(corpus.speakers, assignment):
            return f"stratified, speaker-disjoint ({count_distinct_speakers(corpus.speakers)} speakers)"
        return "stratified, NOT speaker-disjoint (the corpus has no or too few speakers)"


class PaperCV(Protocol):
    """The seed repository's protocol, exactly: its folds, its model selection on the test fold, its settings."""

    name = "voc2vec-paper"
    note = (
        "the seed repo's protocol: seeded random folds (not stratified, not speaker-independent), the held-out fold "
        "also chose the best checkpoint (by macro-F1), every clip cut or zero-padded to 7 s then normalized, "
        "class-weighted cross-entropy, CNN encoder trained, UAR as scikit-learn's macro recall. Optimistic; only for "
        "comparison with the voc2vec paper's Table IV."
    )
    declared = {
        ("data", "max_duration"): 7.0,
        ("data", "pad_to_max_duration"): True,
        ("data", "random_crop"): False,
        ("data", "length_grouping"): 0,  # the seed's Trainer drew plain random batches
        ("data", "pad_to_longest"): True,  # of clips all 7 s long: nothing is padded or cropped
        ("model", "class_weighted_loss"): True,
        ("model", "freeze_feature_encoder"): False,
        ("training", "metric_for_best_model"): "macro_f1",
    }
    uar_over = "union"

    def check(self, corpus: TaskCorpus) -> None:
        if len(corpus.targets) < self.args.num_folds:
            raise UserError(f"cannot cut {len(corpus.targets)} clips into {self.args.num_folds} folds",
                            where="--num_folds", fix=f"pass at most {len(corpus.targets)}")

    def assign(self, corpus: TaskCorpus) -> np.ndarray:
        return paper_folds(len(corpus.targets), self.args.num_folds, self.seed)

    def splits(self, corpus: TaskCorpus, assignment: np.ndarray) -> dict[int, Split]:
        runs = {}
        for fold in range(self.args.num_folds):
            train_rows, test_rows = train_test_indices(assignment, fold)
            runs[fold] = Split(train_rows, test_rows, test_rows, f"fold {fold} (also used for model selection: {self.name} protocol)")
        return runs

    def describe(self, corpus: TaskCorpus, assignment: np.ndarray) -> str:
        return "seeded random folds (Python's random.shuffle, seed as given; the seed repo's)"


class Official(Protocol):
    """The corpus's own Train/Val/Test. With the test labels withheld (A-VB), Val is scored and early stopping uses
    a speaker-disjoint part of Train, so the scored clips still never pick the model."""

    name = "official"
    note = "the corpus's official train/validation/test split."
    single_split = True

    def check(self, corpus: TaskCorpus) -> None:
        if corpus.official_splits is None:
            raise UserError(f"corpus '{corpus.name}' has no official splits", where="--protocol official",
                            fix="use --protocol speaker-cv or holdout")

    def assign(self, corpus: TaskCorpus) -> np.ndarray:
        return np.asarray(corpus.official_splits, dtype=object)

    def splits(self, corpus: TaskCorpus, assignment: np.ndarray) -> dict[int, Split]:
        train_rows = np.flatnonzero(assignment == "train")
        validation_rows = np.flatnonzero(assignment == "validation")
        test_rows = np.flatnonzero(assignment == "test")
        if corpus.test_labels_withheld:
            return {0: self.carved_split(corpus, train_rows, validation_rows,
                                         "official validation split (official test labels withheld)")}
        if not len(validation_rows):
            return {0: self.carved_split(corpus, train_rows, test_rows, "official test split")}
        return {0: Split(train_rows, validation_rows, test_rows, "official test split")}

    def describe(self, corpus: TaskCorpus, assignment: np.ndarray) -> str:
        return "the corpus's official split"


class Holdout(Protocol):
    """One stratified, speaker-disjoint test part (`--test_fraction`), validation carved from the rest."""

    name = "holdout"
    note = "one held-out test part (speaker-disjoint when the corpus has speakers), scored once."
    single_split = True

    @property
    def num_parts(self) -> int:
        return max(2, int(round(1.0 / self.args.test_fraction)))

    def check(self, corpus: TaskCorpus) -> None:
        if corpus.task != CLASSIFICATION:
            return
        clips_per_class = np.bincount(corpus.targets, minlength=len(corpus.label_names))
        rare = [class_id for class_id, count in enumerate(clips_per_class) if 0 < count < self.num_parts]
        if rare:
            fewest = int(clips_per_class[rare].min())
            raise_fraction = f"raise --test_fraction to at least {1 / fewest:.2f}, or " if fewest >= 2 else ""
            raise UserError(
                f"{corpus.class_names(rare)} has fewer than {self.num_parts} clips (fewest: {fewest}), too few for a "
                f"stratified 1/{self.num_parts} test part", where=f"--test_fraction {self.args.test_fraction}",
                fix=f"{raise_fraction}drop rare classes with --min_clips_per_class {self.num_parts}",
            )

    def assign(self, corpus: TaskCorpus) -> np.ndarray:
        parts = speaker_folds(corpus.stratify_labels, corpus.speakers, self.num_parts, self.seed, self.args.group_by_speaker)
        return np.where(parts == 0, "test", "train").astype(object)

    def splits(self, corpus: TaskCorpus, assignment: np.ndarray) -> dict[int, Split]:
        return {0: self.carved_split(corpus, np.flatnonzero(assignment == "train"), np.flatnonzero(assignment == "test"),
                                     "held-out test part (speaker-disjoint when the corpus has speakers)")}

    def describe(self, corpus: TaskCorpus, assignment: np.ndarray) -> str:
        grouped = "speaker-disjoint" if speaker_disjoint(corpus.speakers, np.where(assignment == "test", 0, 1)) else "not speaker-disjoint"
        return f"one stratified {grouped} 1/{self.num_parts} test part"


class LeaveOneSpeakerOut(Protocol):
    """One fold per speaker: each speaker's clips are tested by a model that never heard that speaker."""

    name = "leave-one-speaker-out"
    note = ("leave-one-speaker-out: each fold tests one speaker; the best epoch is chosen on a validation split of the "
            "other speakers. Per-fold scores cover one speaker's classes only: read the pooled metrics.")

    def check(self, corpus: TaskCorpus) -> None:
        missing = [row for row, speaker in enumerate(corpus.speakers) if not speaker]
        if missing:
            raise UserError(f"{len(missing)} clips have no speaker id (e.g. {corpus.paths[missing[0]]})",
                            where=f"--protocol {self.name}",
                            fix="give the loader a speaker column or --speaker_regex, or use --protocol speaker-cv")
        if count_distinct_speakers(corpus.speakers) < 2:
            raise UserError("needs at least 2 speakers", where=f"--protocol {self.name}", fix="use --protocol holdout")
        if "num_folds" in getattr(self.args, "explicit_fields", ()):
            logger.info("--protocol %s: --num_folds %d is ignored (one fold per speaker).", self.name, self.args.num_folds)

    def assign(self, corpus: TaskCorpus) -> np.ndarray:
        speakers = sorted(set(corpus.speakers))
        fold_of = {speaker: fold for fold, speaker in enumerate(speakers)}
        return np.asarray([fold_of[speaker] for speaker in corpus.speakers], dtype=np.int64)

    def splits(self, corpus: TaskCorpus, assignment: np.ndarray) -> dict[int, Split]:
        return self.k_fold_splits(corpus, assignment)

    def describe(self, corpus: TaskCorpus, assignment: np.ndarray) -> str:
        return f"one fold per speaker ({count_distinct_speakers(corpus.speakers)} speakers)"


class SplitsCsv(Protocol):
    """Your folds: `--splits_csv FILE` with a `path` column and a `fold` (k-fold, validation carved from the
    training folds) or `split` column (train / validation / test; validation carved from train when absent)."""

    name = "splits-csv"
    note = "the user's own splits from --splits_csv."
    one_split_only = False  # set for run_classification.py, which trains one split: a 'fold' column is refused

    def read(self, corpus: TaskCorpus) -> pd.DataFrame:
        path = self.args.splits_csv
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "path" not in table.columns or not ({"fold", "split"} & set(table.columns)):
            raise UserError(f"needs a 'path' column and a 'fold' or 'split' column (columns: {list(table.columns)})",
                            where=path, fix="rename the columns")
        return table

    def assign(self, corpus: TaskCorpus) -> np.ndarray:
        table = self.read(corpus)
        column = "fold" if "fold" in table.columns else "split"
        given = dict(zip(table["path"].map(normalize_path), table[column].str.strip()))
        relative = [normalize_path(path) for path in corpus.relative_paths()]
        absolute = [normalize_path(path) for path in corpus.paths]
        values, missing = [], []
        for rel, abs_path in zip(relative, absolute):
            value = given.get(rel, given.get(abs_path))
            if value is None:
                missing.append(rel)
            values.append(value)
        unknown = sorted(set(given) - set(relative) - set(absolute))
        if unknown:
            raise UserError(f"{len(unknown)} paths are not clips of corpus '{corpus.name}' (e.g. {unknown[:3]})",
                            where=self.args.splits_csv,
                            fix=f"write paths relative to {corpus.root or 'the corpus folder'} or absolute")
        if missing:
            raise UserError(f"{len(missing)} clips of the corpus are not listed (e.g. {missing[:3]})",
                            where=self.args.splits_csv, fix="list every clip with its fold or split")
        if column == "split":
            values = [SPLIT_ALIASES.get(value.lower(), value) for value in values]
            wrong = sorted(set(values) - {"train", "validation", "test"})
            if wrong or "test" not in values or "train" not in values:
                raise UserError(f"split values must be train, validation and test, got {sorted(set(values))}",
                                where=self.args.splits_csv, fix="use train/validation/test")
            return np.asarray(values, dtype=object)
        if self.one_split_only:
            raise UserError("a 'fold' column makes several folds, run_classification.py trains one split",
                            where=self.args.splits_csv,
                            fix="give a 'split' column (train/validation/test), or use run_cv.py (--fold k for one fold)")
        return number_folds(values, self.args.splits_csv)

    def check(self, corpus: TaskCorpus) -> None:
        self.assign(corpus)

    def splits(self, corpus: TaskCorpus, assignment: np.ndarray) -> dict[int, Split]:
        if assignment.dtype == object:  # train / validation / test
            test_rows = np.flatnonzero(assignment == "test")
            validation_rows = np.flatnonzero(assignment == "validation")
            if len(validation_rows):
                return {0: Split(np.flatnonzero(assignment == "train"), validation_rows, test_rows, "the given test split")}
            return {0: self.carved_split(corpus, np.flatnonzero(assignment == "train"), test_rows, "the given test split")}
        return self.k_fold_splits(corpus, assignment)

    def describe(self, corpus: TaskCorpus, assignment: np.ndarray) -> str:
        return f"folds from {Path(self.args.splits_csv).name}"


SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation"}
PROTOCOLS: dict[str, type[Protocol]] = {
    protocol.name: protocol for protocol in (SpeakerCV, PaperCV, Official, Holdout, LeaveOneSpeakerOut, SplitsCsv)
}


def number_folds(values: list[str], source: str) -> np.ndarray:
    """Fold numbers 0..k-1 for the given fold values, in sorted order: EmoBox-style lists count from 1, others name
    their folds ("Session1", ...), and the run folders and the merge count folds from 0."""
    try:
        keys = [int(value) for value in values]
    except ValueError:  # named folds
        keys = values
    given = sorted(set(keys))
    if given != list(range(len(given))):
        logger.info("Folds of %s numbered 0..%d in sorted order: %s", source, len(given) - 1,
                    {number: value for number, value in enumerate(given)})
    number_of = {value: number for number, value in enumerate(given)}
    return np.asarray([number_of[key] for key in keys], dtype=np.int64)


def normalize_path(path: str) -> str:
    return Path(path.strip()).as_posix().removeprefix("./")


def speaker_disjoint(speakers: list[str], folds: np.ndarray) -> bool:
    """True when no speaker id appears in two folds (checked on the folds themselves, whatever made them)."""
    fold_of = {}
    for speaker, fold in zip(speakers, folds):
        if speaker and fold_of.setdefault(speaker, fold) != fold:
            return False
    return any(speakers)


def resolve_protocol(protocol_args, corpus: TaskCorpus, seed: int, single_split: bool) -> Protocol:
    """The protocol object for `--protocol` ('auto': official when the corpus has official splits, else k-fold
    speaker CV for run_cv.py or a holdout split for run_classification.py)."""
    name = protocol_args.protocol
    if name == "auto":
        name = "official" if corpus.official_splits is not None else ("holdout" if single_split else "speaker-cv")
        if name == "official":
            logger.info("%s has official splits: evaluating on them (--protocol official).", corpus.name)
    protocol = PROTOCOLS[name](protocol_args, seed)
    if isinstance(protocol, SplitsCsv):
        protocol.one_split_only = single_split  # a 'split' column: one run; a 'fold' column: run_cv.py only
    elif single_split and not protocol.single_split:
        raise UserError(f"--protocol {name} makes several folds, run_classification.py trains one split",
                        where="--protocol", fix="use run_cv.py (with --fold k for one fold), or --protocol holdout")
    return protocol


ARGUMENT_GROUPS = ("model", "data", "protocol", "training")


def apply_declared_settings(protocol: Protocol, arguments: dict) -> list[str]:
    """Set the protocol's declared settings on the argument dataclasses (`arguments[group]`); a setting the user
    gave explicitly with another value is an error naming both. Returns what was set, for the log."""
    applied = []
    for (group, name), value in protocol.declared.items():
        target = arguments[group]
        current = getattr(target, name)
        if current == value:
            continue
        if name in getattr(target, "explicit_fields", ()):
            raise UserError(f"--protocol {protocol.name} fixes --{name} {value}, but --{name} {current} was given",
                            where=f"--{name}", fix=f"drop --{name}, or use another --protocol")
        setattr(target, name, value)
        applied.append(f"--{name} {value}")
    return applied
