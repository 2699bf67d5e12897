"""Fold assignment for k-fold cross-validation.

Two protocols:

* `speaker_folds`: the leak-free default. Folds are stratified by label and grouped by speaker (no speaker
  appears in two folds), with a logged fallback to plain stratified folds when the corpus has no (or too few)
  speakers. `inner_validation_split` then carves a speaker-disjoint, stratified validation set out of the
  training folds, so early stopping and checkpoint choice never see the test fold.
* `paper_folds`: the seed repo's protocol, reproduced exactly so numbers compare with the voc2vec paper's
  Table IV: a seeded random shuffle of the rows cut into consecutive folds, not stratified, not grouped.

Every function returns plain numpy arrays: a fold index per clip (`folds[i]` is the test fold of clip `i`),
or arrays of clip indices. `train_test_indices` turns a fold assignment into the two index sets of one fold.

Inputs are checked before any training (`check_fold_inputs`), with errors that say how to fix them.
"""

import logging
import random
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

logger = logging.getLogger(__name__)

GroupBySpeaker = Literal["auto", "required", "never"]
GROUP_BY_SPEAKER_MODES = ("auto", "required", "never")


# ---------------------------------------------------------------------------------------------------------------------
# Input checks and rare classes
# ---------------------------------------------------------------------------------------------------------------------


def _is_missing(speaker) -> bool:
    return speaker is None or (isinstance(speaker, float) and np.isnan(speaker)) or str(speaker).strip() == ""


def has_speakers(speakers: Sequence | None) -> bool:
    """True when at least one clip has a speaker id (None, NaN and empty strings count as missing)."""
    return speakers is not None and any(not _is_missing(speaker) for speaker in speakers)


def count_distinct_speakers(speakers: Sequence | None) -> int:
    if speakers is None:
        return 0
    return len({str(speaker) for speaker in speakers if not _is_missing(speaker)})


def _speaker_groups(speakers: Sequence) -> np.ndarray:
    """Integer group id per clip. Clips without a speaker each get a group of their own: nothing ties them to
    another clip, so any fold is fine for them."""
    group_of_speaker: dict[str, int] = {}
    groups = np.empty(len(speakers), dtype=np.int64)
    num_missing = 0
    for index, speaker in enumerate(speakers):
        if _is_missing(speaker):
            key = f"__no_speaker_{index}"
            num_missing += 1
        else:
            key = f"speaker:{speaker}"
        groups[index] = group_of_speaker.setdefault(key, len(group_of_speaker))
    if num_missing:
        logger.warning(
            "%d of %d clips have no speaker id; each is treated as its own speaker.", num_missing, len(groups)
        )
    return groups


def check_fold_inputs(
    labels: Sequence,
    num_folds: int,
    speakers: Sequence | None = None,
    group_by_speaker: GroupBySpeaker = "auto",
) -> None:
    """Raise a `ValueError` that names the fix when stratified (speaker) folds cannot be built.

    Checks: at least 2 folds; `speakers` aligned with `labels`; a known `group_by_speaker` mode; every class has at
    least `num_folds` clips (otherwise some test fold lacks the class and stratification fails); and, when
    `group_by_speaker="required"`, that the corpus has at least `num_folds` distinct speakers.
    """
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}.")
    if group_by_speaker not in GROUP_BY_SPEAKER_MODES:
        raise ValueError(f"group_by_speaker must be one of {GROUP_BY_SPEAKER_MODES}, got {group_by_speaker!r}.")
    if speakers is not None and len(speakers) != len(labels):
        raise ValueError(f"Got {len(speakers)} speaker ids for {len(labels)} labels: they must be aligned per clip.")

    clips_per_class = Counter(labels)
    rare_classes = sorted(
        ((label, count) for label, count in clips_per_class.items() if count < num_folds), key=lambda item: item[1]
    )
    if rare_classes:
        listing = ", ".join(f"{label!r} has {count} clip{'s' if count != 1 else ''}" for label, count in rare_classes)
        fewest = rare_classes[0][1]
        lower_folds = f"lower --num_folds (to at most {fewest})" if fewest >= 2 else "lower --num_folds"
        raise ValueError(
            f"Cannot build {num_folds} stratified folds: {listing}, fewer than the {num_folds} folds, so some test "
            f"folds would miss the class. Fixes: {lower_folds}, drop rare classes with --min_clips_per_class "
            f"{num_folds}, or use the seed paper's unstratified protocol (--protocol voc2vec-paper)."
        )

    if group_by_speaker == "required":
        num_speakers = count_distinct_speakers(speakers)
        if num_speakers == 0:
            raise ValueError(
                "Speaker-grouped folds were required (group_by_speaker='required') but this corpus has no speaker "
                "ids. Fix: use group_by_speaker='auto' (falls back to stratified folds and logs it) or 'never', or "
                "give the loader a speaker column."
            )
        if num_speakers < num_folds:
            raise ValueError(
                f"Speaker-grouped folds were required (group_by_speaker='required') but the corpus has only "
                f"{num_speakers} distinct speakers for {num_folds} folds. Fix: lower --num_folds to at most "
                f"{num_speakers}, or use group_by_speaker='auto' / 'never'."
            )


def drop_rare_classes(labels: Sequence, min_clips_per_class: int) -> np.ndarray:
    """Indices of the clips to keep after dropping classes with fewer than `min_clips_per_class` clips.

    Logs each dropped class and its count, so a smaller label set never goes unnoticed.
    Use the returned indices to select rows (e.g. `dataset.select(keep)`), then rebuild the label map.
    """
    labels = np.asarray(labels)
    clips_per_class = Counter(labels.tolist())
    dropped = {label: count for label, count in clips_per_class.items() if count < min_clips_per_class}
    for label, count in sorted(dropped.items(), key=lambda item: item[1]):
        logger.warning("Dropping class %r: %d clip(s) < min_clips_per_class=%d.", label, count, min_clips_per_class)
    if dropped:
        logger.warning(
            "Dropped %d of %d classes (%d clips); %d classes remain.",
            len(dropped), len(clips_per_class), sum(dropped.values()), len(clips_per_class) - len(dropped),
        )
    keep = ~np.isin(labels, list(dropped)) if dropped else np.ones(len(labels), dtype=bool)
    return np.flatnonzero(keep)


# ---------------------------------------------------------------------------------------------------------------------
# Leak-free protocol
# ---------------------------------------------------------------------------------------------------------------------


def _stratified_folds(labels: np.ndarray, groups: np.ndarray | None, num_folds: int, seed: int) -> np.ndarray:
    """Fold index per clip from scikit-learn's stratified splitters (grouped when `groups` is given)."""
    folds = np.full(len(labels), -1, dtype=np.int64)
    if groups is None:
        splitter = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(labels)), labels)
    else:
        splitter = StratifiedGroupKFold(n_splits=num_folds, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(labels)), labels, groups)
    for fold, (_, test_indices) in enumerate(splits):
        folds[test_indices] = fold
    return folds


def speaker_folds(
    labels: Sequence,
    speakers: Sequence | None,
    num_folds: int = 10,
    seed: int = 42,
    group_by_speaker: GroupBySpeaker = "auto",
) -> np.ndarray:
    """Assign each clip a test fold, stratified by label and grouped by speaker.

    Args:
        labels: one class label per clip (ids or names).
        speakers: one speaker id per clip, or None when the corpus has none.
        num_folds: number of folds; every class needs at least this many clips.
        seed: shuffles scikit-learn's `StratifiedGroupKFold` / `StratifiedKFold`; same seed, same folds.
        group_by_speaker: "auto" groups by speaker when there are at least `num_folds` distinct speakers and
            otherwise falls back to `StratifiedKFold` with a warning; "required" raises instead of falling back;
            "never" always uses `StratifiedKFold` (logged, since the folds then may share speakers).

    Returns:
        `np.ndarray` of shape `(num_clips,)` with the fold (0 .. num_folds - 1) in which each clip is tested.
    """
    check_fold_inputs(labels, num_folds, speakers, group_by_speaker)
    labels = np.asarray(labels)
    num_speakers = count_distinct_speakers(speakers)

    if group_by_speaker == "never":
        logger.info("Speaker grouping disabled (group_by_speaker='never'): using StratifiedKFold.")
        groups = None
    elif num_speakers == 0:
        logger.warning("No speaker ids in this corpus: falling back to StratifiedKFold (folds may share speakers).")
        groups = None
    elif num_speakers < num_folds:
        logger.warning(
            "Only %d distinct speakers for %d folds: falling back to StratifiedKFold (folds may share speakers).",
            num_speakers, num_folds,
        )
        groups = None
    else:
        groups = _speaker_groups(speakers)

    return _stratified_folds(labels, groups, num_folds, seed)


def inner_validation_split(
    train_indices: Sequence[int],
    labels: Sequence,
    speakers: Sequence | None = None,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> tuple[np.ndarray, np.ndarray]:
    """Carve a stratified, speaker-disjoint validation set out of the training folds.

    The training clips are split into `round(1 / validation_fraction)` stratified (and, with speakers, grouped)
    parts and the first part becomes the validation set. Without speakers, or with fewer distinct speakers in the
    training part than parts, the split is stratified only (logged).

    Args:
        train_indices: indices (into `labels` / `speakers`) of the clips in the training folds.
        labels: one label per clip of the whole corpus.
        speakers: one speaker id per clip of the whole corpus, or None.
        validation_fraction: approximate share of the training clips to hold out, in (0, 0.5].
        seed: shuffling seed; same seed, same split.

    Returns:
        `(fit_indices, validation_indices)`, both indices into the whole corpus, disjoint, and together equal
        to `train_indices`.
    """
    if not 0.0 < validation_fraction <= 0.5:
        raise ValueError(f"validation_fraction must be in (0, 0.5], got {validation_fraction}.")
    train_indices = np.asarray(train_indices, dtype=np.int64)
    train_labels = np.asarray(labels)[train_indices]
    num_parts = max(2, int(round(1.0 / validation_fraction)))

    train_speakers = None if speakers is None else [speakers[index] for index in train_indices]
    num_speakers = count_distinct_speakers(train_speakers)
    if num_speakers >= num_parts:
        groups = _speaker_groups(train_speakers)
    else:
        if num_speakers > 0:
            logger.warning(
                "Only %d distinct speakers in the training folds for a 1/%d validation split: the validation set "
                "is stratified but may share speakers with the training part.", num_speakers, num_parts,
            )
        else:
            logger.info("No speaker ids: the inner validation split is stratified only.")
        # One group per clip makes StratifiedGroupKFold a plain stratified split that tolerates rare classes.
        groups = np.arange(len(train_indices))

    splitter = StratifiedGroupKFold(n_splits=num_parts, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # A class rarer than the parts is expected here (only one part is used); callers report it by name.
        warnings.filterwarnings("ignore", message="The least populated class in y has only", category=UserWarning)
        fit_part, validation_part = next(splitter.split(np.zeros(len(train_indices)), train_labels, groups))
    return np.sort(train_indices[fit_part]), np.sort(train_indices[validation_part])


# ---------------------------------------------------------------------------------------------------------------------
# Seed paper protocol
# ---------------------------------------------------------------------------------------------------------------------


def paper_folds(num_rows: int, num_folds: int = 10, seed: int = 42) -> np.ndarray:
    """The voc2vec seed repo's folds: a seeded shuffle of the rows, cut into consecutive folds.

    The seed script shuffles with Python's own generator, `random.seed(seed); idx = list(range(n));
    random.shuffle(idx)`, over the rows of its CSV in file order; fold k is `idx[k*(n//10):(k+1)*(n//10)]` and the
    last fold takes the remainder. `random.Random(seed).shuffle` is that same generator and algorithm (numpy's
    `RandomState(seed).permutation` would give other folds). Not stratified and not grouped by speaker: in the
    seed protocol the test fold also picks the best checkpoint, so these numbers are optimistic and only meant for
    comparison with the paper.

    Returns:
        `np.ndarray` of shape `(num_rows,)` with the test fold of each row (in the CSV's original row order).
    """
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}.")
    if num_rows < num_folds:
        raise ValueError(f"Cannot cut {num_rows} rows into {num_folds} non-empty folds; lower --num_folds.")
    shuffled_rows = list(range(num_rows))
    random.Random(seed).shuffle(shuffled_rows)
    fold_size = num_rows // num_folds
    folds = np.empty(num_rows, dtype=np.int64)
    for fold in range(num_folds):
        end = (fold + 1) * fold_size if fold < num_folds - 1 else num_rows
        folds[shuffled_rows[fold * fold_size : end]] = fold
    return folds


def train_test_indices(folds: Sequence[int], test_fold: int) -> tuple[np.ndarray, np.ndarray]:
    """`(train_indices, test_indices)` of one fold of a fold assignment (as returned by the functions above)."""
    folds = np.asarray(folds)
    if test_fold not in set(folds.tolist()):
        raise ValueError(f"Fold {test_fold} is not in this fold assignment (folds {sorted(set(folds.tolist()))}).")
    return np.flatnonzero(folds != test_fold), np.flatnonzero(folds == test_fold)
