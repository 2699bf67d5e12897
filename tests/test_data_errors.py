"""Bad input: wrong folders, broken files, unknown codes, bad loader options. Never silent, never losing good files."""

import importlib
import sys
from pathlib import Path

import pytest

from corpus_fixtures import write_corrupt, write_csv, write_empty, write_wav, write_wavs
from voc2vec.builder import CorpusLayoutError
from voc2vec.corpora import builder_class, load_corpus

# Each loader with a distinctive piece of the layout its error must describe.
LOADERS = {
    "asvp_esd": "Audio/actor_<N>",
    "cnvve": "confirm/ decline/",
    "donateacry": "donateacry_corpus_cleaned_and_updated_data",
    "nonverbal_vocalization": "NonverbalVocalization/<class>",
    "vivae": "full_set/",
    "hume_vb": "labels/data_info.csv",
    "folder": "<class a>/",
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_missing_empty_or_foreign_data_dir_states_the_layout(name, tmp_path, cache_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    foreign = tmp_path / "foreign"  # another corpus entirely: a flat folder of VocalSound-style clips
    write_wav(foreign / "audio_16k" / "f0003_0_cough.wav")
    for data_dir, problem in [(tmp_path / "missing", "does not exist"), (empty, "is empty"), (foreign, "")]:
        if name == "folder" and data_dir == foreign:
            continue  # any folder of subfolders with audio is a valid 'folder' corpus
        with pytest.raises(CorpusLayoutError) as error:
            load_corpus(name, data_dir=data_dir, cache_dir=cache_dir)
        message = str(error.value)
        assert problem in message and "Expected layout" in message and LOADERS[name] in message
    with pytest.raises(CorpusLayoutError, match="no data_dir given"):
        load_corpus(name, cache_dir=cache_dir)


def test_asvp_esd_babies_config_needs_bonus(tmp_path, cache_dir):
    write_wav(tmp_path / "ASVP-ESD-Update" / "Audio" / "actor_1" / "03-01-01-01-01-01-02-01.wav")
    with pytest.raises(CorpusLayoutError, match="no 'Bonus/' folder"):
        load_corpus("asvp_esd", data_dir=tmp_path, config="babies", cache_dir=cache_dir)


def test_vivae_core_set_alone_is_refused(tmp_path, cache_dir):
    write_wav(tmp_path / "VIVAE" / "core_set" / "S01_achievement_low_01.wav")
    with pytest.raises(CorpusLayoutError, match="core_set/ alone is not used"):
        load_corpus("vivae", data_dir=tmp_path, cache_dir=cache_dir)


def test_broken_files_are_skipped_counted_reported_and_printed(tmp_path, cache_dir, capsys):
    actor = tmp_path / "ASVP-ESD-Update" / "Audio" / "actor_36"
    # Sorted order: good, empty, corrupt, unknown code, good: the files around each bad one are kept.
    write_wav(actor / "03-01-01-01-01-36-02-01.wav")
    write_empty(actor / "03-01-02-01-01-36-02-01.wav")
    write_corrupt(actor / "03-01-03-01-01-36-02-01.wav")
    write_wav(actor / "03-01-15-01-01-36-02-01.wav")  # emotion 15: no such code
    write_wav(actor / "03-01-16.wav")                 # too few fields
    write_wav(actor / "03-01-04-01-01-36-02-01-01-01.wav")
    (actor / "03-01-05-01-01-36-02-01.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")  # a container libsndfile cannot read
    dataset, report = load_corpus("asvp_esd", data_dir=tmp_path, cache_dir=cache_dir, return_report=True)
    assert sorted(Path(path).name for path in dataset["path"]) == ["03-01-01-01-01-36-02-01.wav", "03-01-04-01-01-36-02-01-01-01.wav"]
    reasons = {Path(item.path).name: item.reason for item in report.skipped}
    assert report.kept == 2 and len(report.skipped) == 5
    assert "zero-length" in reasons["03-01-02-01-01-36-02-01.wav"]
    assert "corrupt" in reasons["03-01-03-01-01-36-02-01.wav"]
    assert "'15'" in reasons["03-01-15-01-01-36-02-01.wav"]
    assert "3 '-'-separated fields" in reasons["03-01-16.wav"]
    assert "unsupported container" in reasons["03-01-05-01-01-36-02-01.m4a"]
    printed = capsys.readouterr().err
    assert "2 clips kept, 5 skipped" in printed and "03-01-03-01-01-36-02-01.wav" in printed
    # Read back from the cache, the report is the same and printed again.
    _, cached = load_corpus("asvp_esd", data_dir=tmp_path, cache_dir=cache_dir, return_report=True)
    assert cached.skipped == report.skipped and "5 skipped" in capsys.readouterr().err


def test_unknown_codes_and_stray_files_in_other_loaders_are_reported(tmp_path, cache_dir):
    write_wavs(tmp_path / "VIVAE" / "full_set", ["S01_anger_low_01.wav", "S02_boredom_low_01.wav", "S03_fear_peak_02.wav"])
    write_empty(tmp_path / "VIVAE" / "full_set" / "S04_pain_low_01.wav")
    dataset, report = load_corpus("vivae", data_dir=tmp_path, cache_dir=cache_dir, return_report=True, verbose=False)
    assert sorted(dataset["speaker"]) == ["S01", "S03"]
    reasons = {Path(item.path).name: item.reason for item in report.skipped}
    assert set(reasons) == {"S02_boredom_low_01.wav", "S04_pain_low_01.wav"}
    assert reasons["S02_boredom_low_01.wav"].startswith("emotion 'boredom' is not one of")  # its own reason, not the other's
    assert reasons["S04_pain_low_01.wav"].startswith("zero-length file (0 bytes)")


def test_hume_vb_missing_audio_and_columns(tmp_path, cache_dir):
    write_wav(tmp_path / "audio" / "wav" / "1.wav")
    write_csv(tmp_path / "labels" / "data_info.csv", ["File_ID", "Split"], [["[1]", "Train"], ["[2]", "Train"], ["[3]", "Dev"], ["[4]", "Test"]])
    write_csv(tmp_path / "labels" / "two_info.csv", ["File_ID", "Valence", "Arousal"], [["[1]", 0.1, 0.2], ["[2]", 0.3, 0.4]])
    dataset, report = load_corpus("hume_vb", data_dir=tmp_path, config="two", cache_dir=cache_dir, return_report=True, verbose=False)
    assert dataset["file_id"] == ["1"]  # the test split lost its only file: left out, only train remains
    assert {Path(item.path).name: item.reason for item in report.skipped} == {
        "2.wav": "file not found", "3.wav": "Split 'Dev' is not Train, Val or Test", "4.wav": "file not found",
    }
    with pytest.raises(CorpusLayoutError, match=r"lack the columns \['Awe'"):
        load_corpus("hume_vb", data_dir=tmp_path, config="high", cache_dir=cache_dir)


def test_csv_missing_column_names_it_and_the_columns_present(tmp_path, cache_dir):
    write_wav(tmp_path / "a.wav")
    csv_file = write_csv(tmp_path / "ds.csv", ["path", "emotion"], [["a.wav", "happy"]])
    with pytest.raises(ValueError, match=r"no column 'label'; the columns present are \['path', 'emotion'\]\. Name the right column with label_column="):
        load_corpus("csv", data_files=str(csv_file), cache_dir=cache_dir)
    with pytest.raises(ValueError, match="no column 'spk'.*with speaker_column="):
        load_corpus("csv", data_files=str(csv_file), label_column="emotion", speaker_column="spk", cache_dir=cache_dir)
    with pytest.raises(CorpusLayoutError, match="no data_files given"):
        load_corpus("csv", cache_dir=cache_dir)


def test_csv_bad_rows_are_reported(tmp_path, cache_dir):
    write_wavs(tmp_path, ["a.wav", "c.wav"])
    write_corrupt(tmp_path / "b.wav")
    csv_file = write_csv(tmp_path / "ds.csv", ["path", "label"], [
        ["a.wav", "x"], ["b.wav", "y"], ["missing.wav", "y"], ["c.wav", ""], ["a.wav", "x"], ["", "x"], ["c.wav", "y"],
    ])
    dataset, report = load_corpus("csv", data_files=str(csv_file), cache_dir=cache_dir, return_report=True, verbose=False)
    assert [Path(path).name for path in dataset["path"]] == ["a.wav"]
    reasons = [item.reason for item in report.skipped]
    assert any("corrupt" in reason for reason in reasons) and "file not found" in reasons
    assert any("empty 'label' cell" in reason for reason in reasons) and any("listed twice" in reason for reason in reasons)
    assert any("empty 'path' cell" in reason for reason in reasons)


def test_folder_bad_speaker_regex(tmp_path, cache_dir):
    write_wavs(tmp_path, ["laugh/spk1_a.wav", "laugh/other.wav"])
    with pytest.raises(ValueError, match="has no group"):
        load_corpus("folder", data_dir=tmp_path, cache_dir=cache_dir, speaker_regex=r"spk\d")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        load_corpus("folder", data_dir=tmp_path, cache_dir=cache_dir, speaker_regex=r"(spk")
    dataset, report = load_corpus("folder", data_dir=tmp_path, cache_dir=cache_dir, speaker_regex=r"^(spk\d)_", return_report=True, verbose=False)
    assert dataset["speaker"] == ["spk1"]
    assert "does not match 'other'" in report.skipped[0].reason


def test_csv_loader_does_not_shadow_the_standard_library():
    cls = builder_class("csv")
    assert cls.__module__ == "voc2vec_data_csv"
    stdlib_csv = importlib.import_module("csv")
    assert stdlib_csv is sys.modules["csv"] and hasattr(stdlib_csv, "DictReader")
    assert "data" not in Path(stdlib_csv.__file__).parent.name


def test_a_corpus_with_no_usable_file_is_an_error_with_the_report(tmp_path, cache_dir):
    write_empty(tmp_path / "full_set" / "S01_anger_low_01.wav")
    write_corrupt(tmp_path / "full_set" / "S01_anger_low_02.wav")
    with pytest.raises(CorpusLayoutError, match=r"(?s)none of the corpus's files could be used.*0 clips kept, 2 skipped"):
        load_corpus("vivae", data_dir=tmp_path / "full_set", cache_dir=cache_dir, verbose=False)


def test_csv_that_is_not_utf8_or_not_text(tmp_path, cache_dir):
    write_wav(tmp_path / "a.wav")
    (tmp_path / "excel.csv").write_bytes("path,label\na.wav,caf\xe9\n".encode("cp1252"))  # saved by Excel on Windows
    dataset = load_corpus("csv", data_files=str(tmp_path / "excel.csv"), cache_dir=cache_dir)
    assert dataset.features["label"].names == ["caf\xe9"]
    with pytest.raises(ValueError, match="is not a CSV text file"):
        load_corpus("csv", data_files=str(tmp_path / "a.wav"), cache_dir=cache_dir)


def test_folder_of_loose_files_says_how_to_fix_it(tmp_path, cache_dir):
    write_wavs(tmp_path, ["a.wav", "b.flac"])
    with pytest.raises(CorpusLayoutError, match=r"Its 2 audio files lie directly in it: move them into one subfolder per class.*'csv' loader"):
        load_corpus("folder", data_dir=tmp_path, cache_dir=cache_dir)
