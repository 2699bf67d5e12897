"""The ten Voc125 pretraining corpus loaders, each on a tiny fixture tree in the corpus's real layout.

The trees (tests/corpus_fixtures.py) are short wav/flac files at each corpus's real sampling rate (stereo
where the corpus ships stereo); every corpus is prepared into a per-test cache_dir.
"""

from pathlib import Path

import datasets
import pytest

from corpus_fixtures import (
    RECANVO_NAMES, TUT_DEVTRAIN_SET, write_audioset, write_freesound_babies, write_human_voice, write_nnime, write_nonspeech7k,
    write_recanvo, write_singing_database, write_tut_babies, write_vocalsketch, write_vocalsound,
)
from voc2vec.corpora import load_corpus


def prepare(name, data_dir, tmp_path, **kwargs):
    return load_corpus(name, data_dir=data_dir, cache_dir=tmp_path / "cache", return_report=True, verbose=False, **kwargs)


def rows_by_name(dataset):
    return {Path(row["path"]).name: row for row in dataset}


def test_vocalsound(tmp_path):
    dataset, report = prepare("vocalsound", write_vocalsound(tmp_path / "vocalsound"), tmp_path)
    rows = rows_by_name(dataset)
    assert sorted(rows) == ["f0003_0_cough.wav", "f0003_2_laughter.wav", "m0120_1_throatclearing.wav"]
    label = dataset.features["label"]
    assert label.int2str(rows["m0120_1_throatclearing.wav"]["label"]) == "throatclearing"
    assert rows["f0003_0_cough.wav"]["speaker"] == "f0003" and rows["m0120_1_throatclearing.wav"]["gender"] == "male"
    assert {Path(item.path).name for item in report.skipped} == {"f0003_cough.wav", "m0001_0_hiccup.wav"}


def test_human_voice_exports_with_sharp_names_and_stereo(tmp_path):
    dataset, report = prepare("human_voice", write_human_voice(tmp_path / "human-voice-dataset"), tmp_path)
    assert sorted(Path(path).relative_to(tmp_path / "human-voice-dataset" / "data" / "voices").as_posix() for path in dataset["path"]) == [
        "martin/notes/exports/mono/A#3-2.wav", "martin/notes/exports/stereo/A#3-2.wav", "martin/voyels/exports/mono/_-a-c3.wav",
    ]
    assert sorted(dataset["item"]) == ["A#3-2", "A#3-2", "_-a-c3"]
    assert set(dataset["speaker"]) == {"martin"} and set(dataset["sampling_rate"]) == {44100}
    assert "label" not in dataset.features
    # The series' whole recording under sources/ is not a clip: reported, not read.
    assert [Path(item.path).name for item in report.skipped] == ["notes.wav"] and "not an exported clip" in report.skipped[0].reason
    # Pointed at data/voices/ itself, the same clips.
    again, _ = prepare("human_voice", tmp_path / "human-voice-dataset" / "data" / "voices", tmp_path)
    assert sorted(again["path"]) == sorted(dataset["path"])


def test_nonspeech7k_two_csv_spellings(tmp_path):
    splits, report = prepare("nonspeech7k", write_nonspeech7k(tmp_path / "nonspeech7k"), tmp_path)
    assert isinstance(splits, datasets.DatasetDict) and set(splits) == {"train", "test"}
    train = rows_by_name(splits["train"])
    # The augmented copy is part of the release (the paper's count includes it): kept, marked, grouped with its source.
    assert sorted(train) == ["1001_a.wav", "1001_b.wav", "1002_a.wav", "1003_aug.wav"]
    names = splits["train"].features["label"]
    assert names.int2str(train["1001_b.wav"]["label"]) == "yawn" and names.int2str(train["1003_aug.wav"]["label"]) == "cough"
    assert train["1001_a.wav"]["speaker"] == train["1001_b.wav"]["speaker"] == "1001" and train["1003_aug.wav"]["speaker"] == "1003"
    assert (train["1001_a.wav"]["augmentation"], train["1003_aug.wav"]["augmentation"]) == ("original", "Pitch shift")
    assert splits["test"][0]["augmentation"] == "original"
    assert splits["test"][0]["speaker"] == "2001" and splits["test"].features["label"].int2str(splits["test"][0]["label"]) == "laugh"
    assert [Path(item.path).name for item in report.skipped] == ["1004_unlisted.wav"]


def test_recanvo_csv(tmp_path):
    names = RECANVO_NAMES
    dataset, report = prepare("recanvo", write_recanvo(tmp_path / "ReCANVo"), tmp_path)
    rows = rows_by_name(dataset)
    assert rows[names[0]]["speaker"] == "P01" and rows[names[0]]["label"] == "delighted"
    assert rows[names[1]]["label"] == "selftalk" and dataset.features["label"] == datasets.Value("string")
    assert [Path(item.path).name for item in report.skipped] == ["unlisted.wav"]


def test_singing_database_speaker_is_singer_folder(tmp_path):
    dataset, _ = prepare("singing_database", write_singing_database(tmp_path / "singing"), tmp_path)
    rows = rows_by_name(dataset)
    assert (rows["pos_1.wav"]["speaker"], rows["pos_1.wav"]["gender"], rows["pos_1.wav"]["language"]) == ("fem_01", "female", "chinese")
    assert rows["neg_3.wav"]["speaker"] == "mal_02" and rows["take.wav"]["speaker"] == "other"


def test_tut_babies_mixtures_only(tmp_path):
    splits, _ = prepare("tut_babies", write_tut_babies(tmp_path), tmp_path)
    assert {split: len(part) for split, part in splits.items()} == {"train": 1, "test": 1}
    assert splits["train"][0]["label"] == "babycry" and splits["train"][0]["mixture_set"] == TUT_DEVTRAIN_SET


def test_vocalsketch_imitations_only(tmp_path):
    dataset, report = prepare("vocalsketch", write_vocalsketch(tmp_path), tmp_path)
    rows = rows_by_name(dataset)
    assert sorted(rows) == ["car horn - 12.wav", "walkie-talkie beep - 13.wav"]
    assert (rows["car horn - 12.wav"]["label"], rows["car horn - 12.wav"]["speaker"], rows["car horn - 12.wav"]["included"]) == ("car horn", "p7", True)
    assert rows["walkie-talkie beep - 13.wav"]["label"] == "walkie-talkie beep" and not rows["walkie-talkie beep - 13.wav"]["included"]
    assert not any("sound_recordings" in path for path in dataset["path"])
    assert [Path(item.path).name for item in report.skipped] == ["no csv row - 99.wav"]


def test_nnime_globs_recursively(tmp_path):
    dataset, _ = prepare("nnime", write_nnime(tmp_path / "nnime"), tmp_path)
    assert sorted(dataset["speaker"]) == ["", "Session01/spk_A", "Session02"]


def test_freesound_babies_user_is_speaker(tmp_path):
    dataset, report = prepare("freesound_babies", write_freesound_babies(tmp_path / "freesound"), tmp_path)
    rows = rows_by_name(dataset)
    first = rows["123456__janedoe__baby crying__loud.wav"]
    assert (first["speaker"], first["freesound_id"], first["title"]) == ("janedoe", "123456", "baby crying__loud")
    assert rows["98765__sound_guy__giggle.flac"]["speaker"] == "sound_guy" and rows["unnamed.wav"]["speaker"] == ""
    assert [Path(item.path).name for item in report.skipped] == ["phone.m4a"]


def test_audioset_vocalization_filters_and_matches_ytids(tmp_path):
    dataset, report = prepare("audioset_vocalization", write_audioset(tmp_path / "audioset"), tmp_path)
    rows = {row["speaker"]: row for row in dataset}
    # speechonly1 carries no vocalization class: left out; zzzzzzzzzzz is in no CSV: skipped and reported.
    assert sorted(rows) == ["-0xHkg0pXEk", "YYabcdefghi", "a_b-c_d_e_f", "laughing123"]
    assert rows["YYabcdefghi"]["labels"] == ["Sigh"]  # a YTID that itself starts with 'Y'
    assert rows["-0xHkg0pXEk"]["labels"] == ["Laughter"] and rows["-0xHkg0pXEk"]["positive_labels"] == "/m/01j3sz,/m/09x0r"
    assert rows["a_b-c_d_e_f"]["labels"] == ["Cough"] and rows["laughing123"]["labels"] == ["Baby cry, infant cry"]
    assert [Path(item.path).name for item in report.skipped] == ["zzzzzzzzzzz.wav"]


def test_audioset_vocalization_classes_override(tmp_path):
    root = write_audioset(tmp_path / "audioset")
    dataset, _ = prepare("audioset_vocalization", root, tmp_path, classes=["Cough", "/m/09x0r"])
    assert sorted(dataset["speaker"]) == ["-0xHkg0pXEk", "a_b-c_d_e_f", "speechonly1"]
    with pytest.raises(ValueError, match="neither an ontology MID"):
        prepare("audioset_vocalization", root, tmp_path, classes=["Not a class"])
