"""Fold properties: speaker-disjoint, each clip tested once, stratified, deterministic; the paper protocol; errors."""

import logging
import random

import numpy as np
import pytest

from voc2vec.folds import (
    check_fold_inputs,
    drop_rare_classes,
    inner_validation_split,
    paper_folds,
    speaker_folds,
    train_test_indices,
)


def make_corpus(num_speakers=40, seed=0):
    """Imbalanced 3-class corpus: every speaker records 3-8 clips, classes in proportion 60/30/10."""
    rng = np.random.default_rng(seed)
    labels, speakers = [], []
    for speaker in range(num_speakers):
        for _ in range(rng.integers(3, 9)):
            labels.append(str(rng.choice(["laugh", "cry", "sigh"], p=[0.6, 0.3, 0.1])))
            speakers.append(f"spk{speaker:02d}")
    return np.array(labels), np.array(speakers)


LABELS, SPEAKERS = make_corpus()


def test_speaker_folds_are_speaker_disjoint_and_cover_every_clip_once():
    folds = speaker_folds(LABELS, SPEAKERS, num_folds=5, seed=0)
    assert folds.shape == (len(LABELS),)
    # Every clip has exactly one test fold, and every fold is used.
    assert set(folds.tolist()) == set(range(5))
    tested = np.concatenate([train_test_indices(folds, fold)[1] for fold in range(5)])
    np.testing.assert_array_equal(np.sort(tested), np.arange(len(LABELS)))
    # No speaker in two folds.
    for speaker in np.unique(SPEAKERS):
        assert len(set(folds[SPEAKERS == speaker].tolist())) == 1, speaker


def test_speaker_folds_keep_label_proportions():
    folds = speaker_folds(LABELS, SPEAKERS, num_folds=5, seed=0)
    overall = {label: np.mean(LABELS == label) for label in np.unique(LABELS)}
    for fold in range(5):
        fold_labels = LABELS[folds == fold]
        for label, share in overall.items():
            assert abs(np.mean(fold_labels == label) - share) < 0.06, (fold, label)


def test_speaker_folds_are_deterministic_per_seed():
    first = speaker_folds(LABELS, SPEAKERS, num_folds=5, seed=7)
    np.testing.assert_array_equal(first, speaker_folds(LABELS, SPEAKERS, num_folds=5, seed=7))
    assert not np.array_equal(first, speaker_folds(LABELS, SPEAKERS, num_folds=5, seed=8))


def test_fallback_to_stratified_folds_is_logged_without_speakers(caplog):
    with caplog.at_level(logging.WARNING, logger="voc2vec.folds"):
        folds = speaker_folds(LABELS, None, num_folds=5, seed=0)
    assert "No speaker ids" in caplog.text and "StratifiedKFold" in caplog.text
    # Plain stratification: every fold gets each class within one clip of its share.
    for label in np.unique(LABELS):
        per_fold = [np.sum((folds == fold) & (LABELS == label)) for fold in range(5)]
        assert max(per_fold) - min(per_fold) <= 1


def test_fallback_is_logged_with_too_few_speakers(caplog):
    labels = np.array(["a", "b"] * 10)
    speakers = np.array(["s1", "s2", "s3"] * 6 + ["s1", "s2"])
    with caplog.at_level(logging.WARNING, logger="voc2vec.folds"):
        folds = speaker_folds(labels, speakers, num_folds=5, seed=0)
    assert "Only 3 distinct speakers" in caplog.text
    assert set(folds.tolist()) == set(range(5))


def test_never_group_by_speaker_uses_stratified_folds(caplog):
    with caplog.at_level(logging.INFO, logger="voc2vec.folds"):
        speaker_folds(LABELS, SPEAKERS, num_folds=5, seed=0, group_by_speaker="never")
    assert "group_by_speaker='never'" in caplog.text


def test_inner_validation_is_disjoint_and_speaker_disjoint():
    folds = speaker_folds(LABELS, SPEAKERS, num_folds=5, seed=0)
    train, test = train_test_indices(folds, test_fold=2)
    fit, validation = inner_validation_split(train, LABELS, SPEAKERS, validation_fraction=0.2, seed=0)
    assert len(validation) > 0 and len(fit) > 0
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, validation])), np.sort(train))
    assert not set(validation) & set(test)
    assert not set(SPEAKERS[validation]) & set(SPEAKERS[fit])
    assert not set(SPEAKERS[validation]) & set(SPEAKERS[test])
    # Stratified: every class is represented in the validation set.
    assert set(LABELS[validation]) == set(LABELS)
    # Deterministic.
    again = inner_validation_split(train, LABELS, SPEAKERS, validation_fraction=0.2, seed=0)
    np.testing.assert_array_equal(validation, again[1])


def test_inner_validation_without_speakers_is_stratified():
    train = np.arange(0, len(LABELS), 2)
    fit, validation = inner_validation_split(train, LABELS, None, validation_fraction=0.25, seed=3)
    assert not set(fit) & set(validation)
    assert abs(len(validation) / len(train) - 0.25) < 0.05
    for label in np.unique(LABELS):
        share_train = np.mean(LABELS[train] == label)
        assert abs(np.mean(LABELS[validation] == label) - share_train) < 0.05


def expected_seed_folds(num_rows, num_folds, seed):
    """The seed script's procedure, written out as it is there: Python's generator shuffles the row indices,
    then fold k takes positions [k * n//10, (k+1) * n//10) of the shuffle, the last fold the rest."""
    random.seed(seed)
    shuffled = list(range(num_rows))
    random.shuffle(shuffled)
    size = num_rows // num_folds
    chunks = [shuffled[k * size : (k + 1) * size] for k in range(num_folds - 1)]
    chunks.append(shuffled[(num_folds - 1) * size :])
    return chunks


@pytest.mark.parametrize("num_rows", [457, 1085, 100])
def test_paper_folds_reproduce_the_seed_protocol(num_rows):
    folds = paper_folds(num_rows)
    for fold, expected_rows in enumerate(expected_seed_folds(num_rows, 10, 42)):
        np.testing.assert_array_equal(np.flatnonzero(folds == fold), np.sort(expected_rows))
    sizes = np.bincount(folds)
    assert (sizes[:-1] == num_rows // 10).all()
    assert sizes[-1] == num_rows - 9 * (num_rows // 10)


def test_paper_folds_golden_vector():
    """Computed once with the seed's procedure (random.seed(42); random.shuffle(list(range(23))), 10 folds), and
    frozen: any change of generator or slicing changes this vector."""
    golden = [9, 5, 1, 9, 8, 2, 4, 9, 9, 5, 7, 6, 3, 2, 1, 0, 0, 3, 8, 6, 9, 7, 4]
    assert paper_folds(23, 10, 42).tolist() == golden


def test_paper_folds_are_not_numpys_permutation():
    """numpy's RandomState(42) shuffle (what pandas' sample(random_state=42) does) gives other folds."""
    numpy_shuffle = np.random.RandomState(42).permutation(457)
    assert np.flatnonzero(paper_folds(457) == 0).tolist() != np.sort(numpy_shuffle[:45]).tolist()


def test_class_with_too_few_clips_raises_a_clear_error():
    labels = ["laugh"] * 20 + ["cry"] * 20 + ["burp"] * 3
    with pytest.raises(ValueError) as error:
        speaker_folds(labels, None, num_folds=5)
    message = str(error.value)
    assert "'burp' has 3 clips" in message
    assert "--num_folds" in message and "--min_clips_per_class" in message and "--protocol voc2vec-paper" in message


def test_required_speaker_grouping_without_speakers_raises():
    with pytest.raises(ValueError, match="no speaker ids.*group_by_speaker='auto'"):
        speaker_folds(LABELS, None, num_folds=5, group_by_speaker="required")
    with pytest.raises(ValueError, match="no speaker ids"):
        check_fold_inputs(LABELS, 5, [None] * len(LABELS), group_by_speaker="required")
    with pytest.raises(ValueError, match="only 2 distinct speakers"):
        check_fold_inputs(["a", "b"] * 10, 5, ["s1", "s2"] * 10, group_by_speaker="required")


def test_other_bad_inputs_raise():
    with pytest.raises(ValueError, match="aligned"):
        speaker_folds(LABELS, SPEAKERS[:-1], num_folds=5)
    with pytest.raises(ValueError, match="group_by_speaker must be"):
        speaker_folds(LABELS, SPEAKERS, num_folds=5, group_by_speaker="yes")
    with pytest.raises(ValueError, match="at least 2"):
        paper_folds(100, num_folds=1)
    with pytest.raises(ValueError, match="validation_fraction"):
        inner_validation_split([0, 1, 2], LABELS, None, validation_fraction=0.9)


def test_drop_rare_classes_logs_and_keeps_the_rest(caplog):
    labels = ["laugh"] * 12 + ["cry"] * 10 + ["burp"] * 2 + ["sneeze"] * 1
    with caplog.at_level(logging.WARNING, logger="voc2vec.folds"):
        keep = drop_rare_classes(labels, min_clips_per_class=10)
    np.testing.assert_array_equal(keep, np.arange(22))
    assert "'burp': 2 clip(s)" in caplog.text and "'sneeze': 1 clip(s)" in caplog.text
    # Once dropped, the folds build.
    assert speaker_folds(np.array(labels)[keep], None, num_folds=10).max() == 9
