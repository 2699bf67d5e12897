"""Protocols through the public path (`plan_evaluation` on parsed arguments, no training): which clips train,
which pick the best epoch, which are scored, and the settings each protocol declares."""

import logging
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import run_cv
from cv_fixtures import TINY_MODEL, write_hume_vb_corpus, write_tone_corpus
from voc2vec.arguments import parse_arguments
from voc2vec.errors import UserError
from voc2vec.evaluation import plan_evaluation
from voc2vec.folds import paper_folds


@pytest.fixture(scope="module")
def tone_csv(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tones"), num_speakers=6)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def plan(tone_csv, cache, *flags, single_split=False):
    argv = ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker", "--model_name_or_path",
            TINY_MODEL, "--corpus_cache_dir", str(cache), "--output_dir", str(cache / "unused"), *flags]
    model_args, data_args, protocol_args, _, training_args, _ = parse_arguments(run_cv.ARGUMENT_TYPES, argv)
    result = plan_evaluation(model_args, data_args, protocol_args, training_args, single_split=single_split)
    return result, model_args, data_args, training_args


def speakers_of(corpus, rows):
    return {corpus.speakers[row] for row in rows}


def test_speaker_cv_validation_is_carved_from_training_folds_never_the_test_fold(tone_csv, cache):
    result, *_ = plan(tone_csv, cache, "--num_folds", "3", "--validation_fraction", "0.25")
    corpus = result.corpus
    assert sorted(result.runs) == [0, 1, 2]
    tested = np.concatenate([split.test for split in result.runs.values()])
    assert sorted(tested.tolist()) == list(range(len(corpus.targets)))  # every clip tested exactly once
    for fold, split in result.runs.items():
        assert np.array_equal(split.test, np.flatnonzero(result.assignment == fold))
        assert len(split.validation) and not set(split.validation) & set(split.test)
        assert sorted([*split.train, *split.validation, *split.test]) == list(range(len(corpus.targets)))
        # Speaker-disjoint three ways: no test speaker is trained on or picks the epoch.
        train, validation, test = (speakers_of(corpus, rows) for rows in (split.train, split.validation, split.test))
        assert not train & test and not validation & test and not train & validation
    assert result.protocol.uar_over == "present" and "speaker-disjoint" in result.fold_kind


def test_paper_protocol_is_the_seed_scripts(tone_csv, cache):
    result, model_args, data_args, training_args = plan(tone_csv, cache, "--protocol", "voc2vec-paper", "--num_folds", "3")
    assert result.assignment.tolist() == paper_folds(len(result.corpus.targets), 3, 42).tolist()
    for fold, split in result.runs.items():
        assert np.array_equal(split.validation, split.test)  # the test fold also picks the checkpoint
        assert np.array_equal(split.test, np.flatnonzero(result.assignment == fold))
    # The seed's settings, applied as declared defaults.
    assert data_args.max_duration == 7.0 and data_args.pad_to_max_duration and not data_args.random_crop
    assert not model_args.freeze_feature_encoder and model_args.class_weighted_loss
    assert training_args.metric_for_best_model == "macro_f1" and result.protocol.uar_over == "union"


def test_paper_folds_follow_the_csv_row_order(tone_csv, cache):
    """The seed's folds come from its CSV's row order: the csv loader keeps that order (not sorted by path), so
    fold k holds the clips the seed's `random.shuffle` puts there, clip for clip."""
    rows = pd.read_csv(tone_csv).sample(frac=1, random_state=3)  # rows out of path order
    shuffled = tone_csv.with_name("shuffled.csv")
    rows.to_csv(shuffled, index=False)
    result, *_ = plan(shuffled, cache, "--protocol", "voc2vec-paper")
    assert [Path(path).name for path in result.corpus.paths] == [Path(path).name for path in rows["path"]]
    n = len(rows)
    order = list(range(n))
    random.seed(42)
    random.shuffle(order)
    size = n // 10
    expected = np.empty(n, dtype=int)
    for fold in range(10):
        expected[order[fold * size : (fold + 1) * size if fold < 9 else n]] = fold
    assert result.assignment.tolist() == expected.tolist()


@pytest.mark.parametrize("flag, value", [("--max_duration", "3"), ("--metric_for_best_model", "uar"),
                                         ("--freeze_feature_encoder", "true"), ("--no_class_weighted_loss", None)])
def test_a_flag_contradicting_the_paper_protocol_is_refused(tone_csv, cache, flag, value):
    flags = ["--protocol", "voc2vec-paper", "--num_folds", "3", flag] + ([value] if value else [])
    with pytest.raises(UserError) as caught:
        plan(tone_csv, cache, *flags)
    name = flag.removeprefix("--no_").removeprefix("--")
    assert "--protocol voc2vec-paper" in str(caught.value) and f"--{name}" in str(caught.value)


def test_a_flag_agreeing_with_the_paper_protocol_is_fine(tone_csv, cache):
    result, _, data_args, _ = plan(tone_csv, cache, "--protocol", "voc2vec-paper", "--num_folds", "3", "--max_duration", "7")
    assert data_args.max_duration == 7.0 and result.protocol.name == "voc2vec-paper"


def test_leave_one_speaker_out(tone_csv, cache, caplog):
    with caplog.at_level(logging.INFO):
        result, *_ = plan(tone_csv, cache, "--protocol", "leave-one-speaker-out", "--num_folds", "3")
    corpus = result.corpus
    assert len(result.runs) == 6  # one fold per speaker, whatever --num_folds says
    assert "--num_folds 3 is ignored" in caplog.text
    for split in result.runs.values():
        assert len(speakers_of(corpus, split.test)) == 1
        assert not speakers_of(corpus, split.test) & speakers_of(corpus, [*split.train, *split.validation])


def test_holdout_is_one_speaker_disjoint_split(tone_csv, cache):
    result, *_ = plan(tone_csv, cache, "--test_fraction", "0.34", single_split=True)
    assert result.protocol.name == "holdout" and list(result.runs) == [0]
    split = result.runs[0]
    corpus = result.corpus
    assert not speakers_of(corpus, split.test) & speakers_of(corpus, [*split.train, *split.validation])
    with pytest.raises(UserError, match="run_classification.py trains one split"):
        plan(tone_csv, cache, "--protocol", "speaker-cv", single_split=True)


def write_splits(path, corpus_csv, column, values):
    rows = pd.read_csv(corpus_csv)
    pd.DataFrame({"path": rows["path"], column: values(rows)}).to_csv(path, index=False)
    return path


def test_user_folds_from_a_csv(tone_csv, cache, tmp_path):
    folds = write_splits(tmp_path / "folds.csv", tone_csv, "fold", lambda rows: rows["speaker"].str[-1].astype(int) % 2)
    with pytest.raises(UserError) as caught:  # 9 clips per class in a training half: too few for 1/10 validation
        plan(tone_csv, cache, "--splits_csv", str(folds))
    assert "--validation_fraction 0.1" in str(caught.value) and "'high' 9" in str(caught.value)
    result, *_ = plan(tone_csv, cache, "--splits_csv", str(folds), "--validation_fraction", "0.34")
    assert result.protocol.name == "splits-csv" and sorted(result.runs) == [0, 1]
    expected = pd.read_csv(folds)["fold"].to_numpy()
    assert result.assignment.tolist() == expected.tolist()  # the clips keep the CSV's order here
    for fold, split in result.runs.items():
        assert np.array_equal(split.test, np.flatnonzero(expected == fold)) and len(split.validation)


def test_user_folds_counted_from_one_become_folds_0_to_k_minus_1(tone_csv, cache, tmp_path):
    """EmoBox's fold lists count from 1: the run's folds (its fold_XX folders, the merge) count from 0."""
    folds = write_splits(tmp_path / "folds.csv", tone_csv, "fold", lambda rows: rows["speaker"].str[-1].astype(int) % 3 + 1)
    result, *_ = plan(tone_csv, cache, "--splits_csv", str(folds), "--validation_fraction", "0.5")
    given = pd.read_csv(folds)["fold"].to_numpy()
    assert sorted(result.runs) == [0, 1, 2] and result.assignment.tolist() == (given - 1).tolist()
    for fold, split in result.runs.items():
        assert np.array_equal(split.test, np.flatnonzero(given == fold + 1))


def test_run_classification_refuses_a_fold_column(tone_csv, cache, tmp_path):
    folds = write_splits(tmp_path / "folds.csv", tone_csv, "fold", lambda rows: rows["speaker"].str[-1].astype(int) % 2)
    with pytest.raises(UserError, match="'fold' column makes several folds") as caught:
        plan(tone_csv, cache, "--splits_csv", str(folds), "--validation_fraction", "0.34", single_split=True)
    assert str(folds) in str(caught.value) and "'split' column" in str(caught.value)


def test_every_protocol_is_a_choice_of_the_protocol_option():
    """Adding a protocol is a class in voc2vec/protocols.py plus its name in the parser's choices: both lists agree."""
    from voc2vec.arguments import PROTOCOL_NAMES
    from voc2vec.protocols import PROTOCOLS

    assert set(PROTOCOL_NAMES) == {"auto", *PROTOCOLS}


def test_user_train_validation_test_from_a_csv(tone_csv, cache, tmp_path):
    names = {0: "train", 1: "train", 2: "train", 3: "val", 4: "test", 5: "test"}
    splits = write_splits(tmp_path / "split.csv", tone_csv, "split", lambda rows: rows["speaker"].str[-1].astype(int).map(names))
    result, *_ = plan(tone_csv, cache, "--splits_csv", str(splits), single_split=True)
    split = result.runs[0]
    assert speakers_of(result.corpus, split.validation) == {"spk3"} and speakers_of(result.corpus, split.test) == {"spk4", "spk5"}


def test_user_folds_must_list_every_clip_and_nothing_else(tone_csv, cache, tmp_path):
    rows = pd.read_csv(tone_csv)
    unknown = tmp_path / "unknown.csv"
    pd.DataFrame({"path": [*rows["path"], "clips/nope_1.wav", "clips/nope_2.wav"], "fold": [0, 1] * (len(rows) // 2 + 1)}).to_csv(unknown, index=False)
    with pytest.raises(UserError) as caught:
        plan(tone_csv, cache, "--splits_csv", str(unknown))
    assert "2 paths are not clips" in str(caught.value) and "clips/nope_1.wav" in str(caught.value) and str(unknown) in str(caught.value)
    missing = tmp_path / "missing.csv"
    rows.iloc[:-3].assign(fold=0).loc[:, ["path", "fold"]].to_csv(missing, index=False)
    with pytest.raises(UserError, match="3 clips of the corpus are not listed"):
        plan(tone_csv, cache, "--splits_csv", str(missing))


def test_official_split_of_hume_vb_and_its_absence(tone_csv, cache, tmp_path):
    data_dir = write_hume_vb_corpus(tmp_path / "hume_vb")
    argv = ["--dataset_name", "hume_vb", "--dataset_config_name", "two", "--data_dir", str(data_dir), "--model_name_or_path",
            TINY_MODEL, "--corpus_cache_dir", str(cache), "--output_dir", str(tmp_path / "x")]
    model_args, data_args, protocol_args, _, training_args, _ = parse_arguments(run_cv.ARGUMENT_TYPES, argv)
    result = plan_evaluation(model_args, data_args, protocol_args, training_args, single_split=False)
    assert result.protocol.name == "official" and list(result.runs) == [0]  # 'auto' picks the official split
    split = result.runs[0]
    assert (result.assignment[split.test] == "validation").all()  # test labels withheld: Val is scored
    assert set(result.assignment[[*split.train, *split.validation]]) == {"train"}  # early stopping on part of Train
    with pytest.raises(UserError, match="has no official splits"):
        plan(tone_csv, cache, "--protocol", "official")
