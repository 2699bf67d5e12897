"""Every corpus loader on a fixture corpus with its real naming scheme, rates and awkward cases (CORPORA.md)."""

import logging
import math
from collections import Counter
from pathlib import Path

import pytest
import soundfile

from corpus_fixtures import (
    DONATEACRY_UUID, count_donateacry, HUME_CULTURE, HUME_EMOTIONS, VIVAE_FULL_SET, write_asvp_esd, write_cnvve, write_csv, write_donateacry,
    write_folder_corpus, write_hume_vb, write_nonverbal_vocalization, write_vivae, write_wavs,
)
from voc2vec.audio import load_audio
from voc2vec.corpora import load_corpus

DONATEACRY = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "donateacry-corpus"


def labels_of(dataset) -> list[str]:
    return [dataset.features["label"].int2str(index) for index in dataset["label"]]


def by_name(dataset) -> dict[str, dict]:
    return {Path(row["path"]).name: row for row in dataset}


# ---- ASVP-ESD -----------------------------------------------------------------------------------------


@pytest.fixture
def asvp_dir(tmp_path):
    return write_asvp_esd(tmp_path)


def test_asvp_esd_default(asvp_dir, cache_dir):
    dataset, report = load_corpus("asvp_esd", data_dir=asvp_dir, cache_dir=cache_dir, return_report=True)
    rows = by_name(dataset)
    assert len(dataset) == 6 and dataset.features["label"].num_classes == 13
    assert dataset.features["label"].names[0] == "boredom/sigh" and dataset.features["label"].names[-1] == "breath"
    excited = rows["03-01-09-01-06-36-02-02-01-39.wav"]
    assert (excited["speaker"], excited["vocal_channel"], excited["age"], excited["language"], excited["subcode"]) == ("36", "speech", "20-64", "01", "39")
    short = rows["03-01-05-01-32-101-02-01.wav"]
    assert (short["speaker"], short["statement"], short["language"], short["condition"]) == ("101", "32", "", "")
    noisy = rows["03-02-04-01-11-19-02-03-01-14-02-77.wav"]
    assert (noisy["condition"], noisy["subcode"], noisy["further_codes"], noisy["speaker"]) == ("noisy", "14", "02", "19")
    assert rows["03-02-03-01-05-07-02-01-01-13.wav"]["speaker"] == "7"
    assert rows["03-02-03-01-05-07-02-01-01-13.wav"]["actor_folder"] == "actor_"
    disagree = rows["03-02-13-02-05-14-03-01-01-24.wav"]
    assert (disagree["speaker"], disagree["actor_folder"], disagree["intensity"], disagree["age"]) == ("14", "actor_12", "02", "<20")
    assert rows["03-02-06-01-05-20-02-01-01-16-66.wav"]["condition"] == "mixed voices"
    assert sorted(labels_of(dataset)) == sorted(["excited", "angry/grunt/frustration", "sad/cry", "happy/laugh/gaggle", "breath", "fearful/scream/panic"])
    assert [Path(item.path).name for item in report.skipped] == ["03-02-17-01-05-12-02-01-01-14.wav"]
    assert "17" in report.skipped[0].reason


def test_asvp_esd_babies(asvp_dir, cache_dir):
    dataset, report = load_corpus("asvp_esd", data_dir=asvp_dir, config="babies", cache_dir=cache_dir, return_report=True)
    assert dataset.features["label"].names == ["boredom/sigh", "neutral/calm", "happy/laugh/gaggle", "sad/cry", "fearful/scream/panic", "pain/groan", "17"]
    rows = by_name(dataset)
    assert len(dataset) == 3
    spaced = rows["03-02-04-01-52-150-04-01-00-14 -03.wav"]
    assert (spaced["speaker"], spaced["age"], spaced["subcode"], spaced["further_codes"]) == ("150", "baby", "14", "03")
    assert Counter(labels_of(dataset)) == {"sad/cry": 1, "17": 1, "fearful/scream/panic": 1}
    assert {row["speaker"] for row in dataset} == {"50", "150", "200"}
    assert [Path(item.path).name for item in report.skipped] == ["03-02-05-01-05-200-04-01-00-16.wav"]


# ---- CNVVE --------------------------------------------------------------------------------------------


def test_cnvve_cleaned_layout_has_no_speaker_and_says_so(tmp_path, cache_dir, caplog):
    names = ["confirm", "decline", "continuous", "hush", "psst", "ahem"]
    with caplog.at_level(logging.WARNING):
        dataset = load_corpus("cnvve", data_dir=write_cnvve(tmp_path), cache_dir=cache_dir)
    assert dataset.features["label"].names == names
    assert Counter(labels_of(dataset)) == {name: 2 for name in names}
    assert set(dataset["speaker"]) == {""}
    assert "no participant id" in caplog.text


def test_cnvve_raw_layout_takes_the_participant_folder(tmp_path, cache_dir):
    names = ["confirm", "decline", "continuous", "Hush", "psst", "ahem"]  # folder case does not matter
    write_wavs(tmp_path, [f"{name}/P{index:02d}/{index}.wav" for name in names for index in (1, 2)], sampling_rate=44100, channels=2)
    dataset = load_corpus("cnvve", data_dir=tmp_path, cache_dir=cache_dir)
    assert Counter(zip(labels_of(dataset), dataset["speaker"]))[("hush", "P02")] == 1
    assert set(dataset["speaker"]) == {"P01", "P02"} and set(dataset["sampling_rate"]) == {44100}


# ---- Donate A Cry (fixture; the real copy is tested below) -----------------------------------------------


def test_donateacry_ch_files_in_discomfort(tmp_path, cache_dir):
    dataset = load_corpus("donateacry", data_dir=write_donateacry(tmp_path), cache_dir=cache_dir)  # one wrapper folder above the clone
    rows = by_name(dataset)
    ch = rows[f"{DONATEACRY_UUID}-1430742197-1.0-m-04-ch.wav"]
    assert (dataset.features["label"].int2str(ch["label"]), ch["reason_code"], ch["gender"]) == ("discomfort", "ch", "male")
    assert Counter(labels_of(dataset)) == {"discomfort": 2, "hungry": 1, "belly_pain": 1}
    assert len(set(dataset["speaker"])) == 3  # the UUID, case-normalized


@pytest.mark.skipif(not DONATEACRY.is_dir(), reason=f"real Donate A Cry copy not found at {DONATEACRY} (expected ../shared/corpora beside the repo)")
def test_real_donateacry_copy(cache_dir):
    dataset, report = load_corpus("donateacry", data_dir=DONATEACRY, cache_dir=cache_dir, return_report=True)
    counted = count_donateacry(DONATEACRY)  # from the files, without the loader
    assert not report.skipped and len(dataset) == counted["clips"]
    assert Counter(labels_of(dataset)) == counted["class_counts"]
    assert len(set(dataset["speaker"])) == counted["speakers"]
    assert sorted(set(dataset["sampling_rate"])) == counted["sampling_rates"]
    assert sum(dataset["duration"]) == pytest.approx(counted["seconds"], rel=1e-6)
    # ... and the copy is the release CORPORA.md describes (457 clips, 221 installations, 8 kHz).
    assert counted["class_counts"] == {"belly_pain": 16, "burping": 8, "discomfort": 27, "hungry": 382, "tired": 24}
    assert (counted["clips"], counted["speakers"], counted["sampling_rates"]) == (457, 221, [8000])
    row = dataset[0]
    audio = load_audio(row["path"])
    assert audio.ndim == 1 and abs(len(audio) - soundfile.info(row["path"]).frames * 2) <= 2  # 8 kHz -> 16 kHz


# ---- NonVerbal Vocalization -------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["NonverbalVocalization", "Nonverbal-Vocalization-Dataset/dataset"])
def test_nonverbal_vocalization_both_layouts(layout, tmp_path, cache_dir):
    data_dir = write_nonverbal_vocalization(tmp_path, layout)
    dataset, report = load_corpus("nonverbal_vocalization", data_dir=data_dir, cache_dir=cache_dir, return_report=True)
    assert dataset.features["label"].num_classes == 16 and dataset.features["label"].names[4] == "coughing"
    rows = by_name(dataset)
    assert Counter(labels_of(dataset)) == {"coughing": 2, "laughing": 1, "teeth-chattering": 1}
    laugh = rows["K3P1_12_1_1_23_1_2_0.wav"]
    assert (laugh["speaker"], laugh["class_field"], laugh["trial"], laugh["sex"], laugh["age"], laugh["quality"]) == ("K3P1", "12", "1", "1", "23", "2")
    assert [Path(item.path).parent.name for item in report.skipped] == ["misc"]


# ---- VIVAE ----------------------------------------------------------------------------------------------


def test_vivae_reads_full_set_only(tmp_path, cache_dir):
    dataset = load_corpus("vivae", data_dir=write_vivae(tmp_path), cache_dir=cache_dir)  # core_set/ holds duplicates: never merged
    assert len(dataset) == len(VIVAE_FULL_SET) and all("/full_set/" in path for path in dataset["path"])
    assert Counter(labels_of(dataset)) == {"achievement": 1, "anger": 1, "surprise": 1, "pain": 1}
    row = by_name(dataset)["S01_anger_peak_02.wav"]
    assert (row["speaker"], row["intensity"], row["item"]) == ("S01", "peak", "02")
    assert set(dataset["speaker"]) == {"S01", "S05", "S11"}


# ---- HUME-VB ----------------------------------------------------------------------------------------------

def test_hume_vb_configs_and_official_splits(tmp_path, cache_dir):
    write_hume_vb(tmp_path / "A-VB")
    high = load_corpus("hume_vb", data_dir=tmp_path, cache_dir=cache_dir)
    assert {split: len(part) for split, part in high.items()} == {"train": 2, "validation": 1, "test": 1}
    train = by_name(high["train"])["10119.wav"]
    assert [train[name] for name in HUME_EMOTIONS] == pytest.approx([index / 10 for index in range(10)])
    assert train["file_id"] == "10119" and train["speaker"] == "sub1" and train["country"] == "China"
    assert train["United States_Fear"] == pytest.approx(HUME_CULTURE.index("United States_Fear") / 100)
    assert train["Valence"] == pytest.approx(0.25) and train["voc_type"] == "Laugh"
    test_row = high["test"][0]
    assert all(math.isnan(test_row[name]) for name in HUME_EMOTIONS + HUME_CULTURE + ["Valence", "Arousal"])

    two = load_corpus("hume_vb", data_dir=tmp_path, config="two", cache_dir=cache_dir)
    assert two["validation"][0]["Arousal"] == pytest.approx(0.75)
    culture = load_corpus("hume_vb", data_dir=tmp_path, config="culture", cache_dir=cache_dir)
    assert [culture["train"][0][name] for name in HUME_CULTURE] == pytest.approx([index / 100 for index in range(40)])

    types = load_corpus("hume_vb", data_dir=tmp_path, config="type", cache_dir=cache_dir)
    assert types["train"].features["label"].names == ["Gasp", "Laugh", "Cry", "Scream", "Grunt", "Groan", "Pant", "Other"]
    assert labels_of(types["train"]) == ["Laugh", "Cry"] and labels_of(types["validation"]) == ["Gasp"]  # case of the CSV cell ignored
    assert types["test"][0]["label"] == -1 and "Awe" in types["test"].column_names


def test_hume_vb_without_subject_ids_warns(tmp_path, cache_dir, caplog):
    write_hume_vb(tmp_path, subject_ids=False)
    with caplog.at_level(logging.WARNING):
        dataset = load_corpus("hume_vb", data_dir=tmp_path, config="two", cache_dir=cache_dir)
    assert set(dataset["train"]["speaker"]) == {""}
    assert "no Subject_ID column" in caplog.text


# ---- folder and csv: the user's own data -------------------------------------------------------------------


def test_folder_loader_with_odd_names_and_speaker_regex(tmp_path, cache_dir):
    corpus = write_folder_corpus(tmp_path)
    dataset, report = load_corpus("folder", data_dir=corpus, cache_dir=cache_dir, return_report=True,
                                  speaker_regex=r"^(?P<speaker>[^#]+)#")
    assert dataset.features["label"].names == ["cry", "laugh", "sigh"]
    assert Counter(zip(labels_of(dataset), dataset["speaker"])) == {("laugh", "spk 1"): 1, ("laugh", "spk2"): 1, ("sigh", "spk 1"): 1, ("cry", "spk3"): 1}
    assert [Path(item.path).name for item in report.skipped] == ["stray.wav"]

    plain = load_corpus("folder", data_dir=corpus, cache_dir=cache_dir, speaker_regex=r"spk ?(\d)")
    assert sorted(plain["speaker"]) == ["1", "1", "2", "3"]
    no_speakers = load_corpus("folder", data_dir=corpus, cache_dir=cache_dir)
    assert set(no_speakers["speaker"]) == {""}


def test_csv_loader_seed_format_relative_paths(tmp_path, cache_dir):
    write_wavs(tmp_path / "clips", ["a.wav", "b.wav", "c.wav"])
    write_csv(tmp_path / "meta" / "ds.csv", ["path", "emotion", "duration"], [["../clips/a.wav", "happy", 1], ["../clips/b.wav", "sad", 2], ["../clips/c.wav", "happy", 3]])
    dataset = load_corpus("csv", data_files=str(tmp_path / "meta" / "ds.csv"), label_column="emotion", cache_dir=cache_dir)
    assert dataset.features["label"].names == ["happy", "sad"]
    assert labels_of(dataset) == ["happy", "sad", "happy"]
    assert dataset["csv_duration"] == ["1", "2", "3"]  # a clashing column is kept under a prefix
    assert dataset[0]["path"] == str(tmp_path / "clips" / "a.wav")


def test_csv_loader_splits_speakers_audio_root_numeric_labels(tmp_path, cache_dir):
    write_wavs(tmp_path / "audio", ["x1.wav", "x2.wav", "x3.wav"], sampling_rate=8000)
    write_csv(tmp_path / "train.csv", ["file", "class", "who", "note"], [["x1.wav", 10, "s1", "ok"], ["x2.wav", 9, "s2", ""]])
    write_csv(tmp_path / "test.csv", ["file", "class", "who", "note"], [["x3.wav", 2, "s3", "late"]])
    dataset = load_corpus("csv", data_files={"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv")},
                          path_column="file", label_column="class", speaker_column="who", audio_root=str(tmp_path / "audio"),
                          cache_dir=cache_dir)
    assert dataset["train"].features["label"].names == ["2", "9", "10"]  # integers sort numerically
    assert labels_of(dataset["train"]) == ["10", "9"] and dataset["train"]["speaker"] == ["s1", "s2"]
    assert dataset["test"]["note"] == ["late"] and dataset["test"]["sampling_rate"] == [8000]
