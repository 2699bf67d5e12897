"""Faults and bad input in the data layer (issue 11): every file that cannot be used is skipped and reported with
its real reason, every folder that is not the corpus asked for is refused with the layout expected, and an
unwritable cache or a full disk is one line naming the folder, never a traceback."""

import errno
import json
import pickle
import shlex
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile

import voc2vec.cache as cache
from corpus_fixtures import FIXTURE_CORPORA, permissions_enforced, write_donateacry, write_nnime, write_nonverbal_vocalization, write_wav
from voc2vec import corpora
from voc2vec.audio import AudioDecodeError, audio_info, load_audio
from voc2vec.builder import CorpusLayoutError
from voc2vec.corpora import load_corpus
from voc2vec.errors import UserError

DONATEACRY = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "donateacry-corpus"
HUNGRY = "643D64AD-B711-469A-AF69-55C0D5D3E30F-14301384{:02d}-1.0-f-72-hu.wav"  # a valid Donate A Cry name per index


def reasons(report) -> dict[str, str]:
    return {Path(item.path).name: item.reason for item in report.skipped}


# ---- symbolic links -------------------------------------------------------------------------------------


def test_broken_and_looping_links_are_reported_and_the_rest_prepared(tmp_path, cache_dir, capsys):
    root = write_donateacry(tmp_path / "corpus")
    hungry = root / "donateacry-corpus" / "donateacry_corpus_cleaned_and_updated_data" / "hungry"
    (hungry / HUNGRY.format(1)).symlink_to("deleted.wav")             # dangling
    (hungry / HUNGRY.format(2)).symlink_to(HUNGRY.format(3))          # a loop of two links
    (hungry / HUNGRY.format(3)).symlink_to(HUNGRY.format(2))
    (hungry / "up").symlink_to("..")                                  # a folder link back up: never walked

    dataset, report = load_corpus("donateacry", data_dir=root, cache_dir=cache_dir, return_report=True)

    assert len(dataset) == 4 and report.kept == 4
    found = reasons(report)
    assert set(found) == {HUNGRY.format(index) for index in (1, 2, 3)}
    assert found[HUNGRY.format(1)].startswith("broken symbolic link: it points to 'deleted.wav'")
    assert found[HUNGRY.format(2)].startswith("symbolic link loop") and found[HUNGRY.format(3)].startswith("symbolic link loop")
    assert "3 skipped" in capsys.readouterr().err

    # The entry point reports them too, and exits normally.
    assert corpora.main(["stats", "donateacry", "--data_dir", str(root), "--cache_dir", str(cache_dir)]) == 0
    captured = capsys.readouterr()
    assert "| donateacry | 5 |" not in captured.out and "| 4 |" in captured.out and "symbolic link loop" in captured.err

    # A broken link pointed elsewhere (still broken) is prepared again: the report names the new target.
    (hungry / HUNGRY.format(1)).unlink()
    (hungry / HUNGRY.format(1)).symlink_to("moved.wav")
    _, report = load_corpus("donateacry", data_dir=root, cache_dir=cache_dir, return_report=True, verbose=False)
    assert reasons(report)[HUNGRY.format(1)].startswith("broken symbolic link: it points to 'moved.wav'")

    # Mending the dangling link changes the corpus fingerprint: prepared again with the file it now reaches.
    (hungry / HUNGRY.format(1)).unlink()
    write_wav(hungry / "deleted.wav", sampling_rate=8000)  # not a valid Donate A Cry name: reported, the link is read
    (hungry / HUNGRY.format(1)).symlink_to("deleted.wav")
    mended, report = load_corpus("donateacry", data_dir=root, cache_dir=cache_dir, return_report=True, verbose=False)
    assert HUNGRY.format(1) in {Path(path).name for path in mended["path"]}
    assert set(reasons(report)) == {HUNGRY.format(2), HUNGRY.format(3), "deleted.wav"}


def test_the_saved_report_holds_paths_relative_to_the_corpus_folder(tmp_path, cache_dir, capsys):
    root = write_donateacry(tmp_path / "corpus")
    stray = Path("donateacry-corpus/donateacry_corpus_cleaned_and_updated_data/hungry/stray.wav")
    write_wav(root / stray)  # not a Donate A Cry name: skipped
    _, report = load_corpus("donateacry", data_dir=root, cache_dir=cache_dir, return_report=True)

    saved = json.loads(next(Path(cache_dir).rglob(corpora.REPORT_FILE)).read_text())
    assert saved["root"] == str(root.resolve())  # recorded once
    assert [item["path"] for item in saved["skipped"]] == [stray.as_posix()]
    assert f"skipped {root.resolve() / stray}: " in capsys.readouterr().err  # printed whole, to find the file
    _, cached = load_corpus("donateacry", data_dir=root, cache_dir=cache_dir, return_report=True, verbose=False)
    assert cached == report  # read back from the cache as it was made


# ---- float wav holding NaN / Inf --------------------------------------------------------------------------


def write_float(path: Path, samples: np.ndarray, subtype: str = "FLOAT", sampling_rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, sampling_rate, subtype=subtype)
    return path


def test_float_files_with_nan_or_inf_are_skipped_at_preparation(tmp_path, cache_dir):
    clean = np.linspace(-0.5, 0.5, 8000, dtype=np.float32)
    with_nan, with_inf = clean.copy(), clean.copy()
    with_nan[100] = np.nan
    with_inf[-1] = np.inf
    late_nan = np.zeros(200_000, dtype=np.float32)  # past the probe's first block of samples
    late_nan[150_000] = np.nan
    corpus = tmp_path / "corpus"
    write_float(corpus / "laugh" / "clean.wav", clean)
    write_float(corpus / "laugh" / "nan.wav", with_nan)
    write_float(corpus / "cry" / "inf_double.wav", with_inf, subtype="DOUBLE")
    write_float(corpus / "cry" / "late_nan.wav", late_nan)
    write_wav(corpus / "cry" / "pcm.wav")

    dataset, report = load_corpus("folder", data_dir=corpus, cache_dir=cache_dir, return_report=True, verbose=False)

    assert sorted(Path(path).name for path in dataset["path"]) == ["clean.wav", "pcm.wav"]
    assert set(reasons(report)) == {"nan.wav", "inf_double.wav", "late_nan.wav"}
    assert all(reason.startswith("non-finite samples (NaN or Inf). Fix: re-export") for reason in reasons(report).values())
    # What was kept decodes: the run that used to stop after preparation now never meets the bad files.
    decoded = cache.decode_corpus(dataset, cache_dir=tmp_path / "decoded").with_format("numpy")
    assert all(np.isfinite(row["audio"]).all() for row in decoded)


def test_probe_reads_float_files_only(tmp_path, monkeypatch):
    # Integer PCM cannot hold NaN: its probe stays header-only (no sample read), so preparation stays fast.
    pcm = write_wav(tmp_path / "pcm.wav", seconds=1.0)
    floats = write_float(tmp_path / "float.wav", np.zeros(16000, dtype=np.float32))
    reads = []
    original = soundfile.SoundFile.read
    monkeypatch.setattr(soundfile.SoundFile, "read", lambda self, *args, **kwargs: reads.append(self.name) or original(self, *args, **kwargs))
    assert audio_info(pcm).frames == 16000 and reads == []
    assert audio_info(floats).frames == 16000 and reads and set(reads) == {str(floats)}


# ---- permission denied, and ffmpeg's output name -------------------------------------------------------------


def test_unreadable_file_is_reported_as_permission_denied(tmp_path, cache_dir):
    corpus = tmp_path / "corpus"
    write_wav(corpus / "laugh" / "readable.wav")
    locked = write_wav(corpus / "laugh" / "locked.wav")
    locked.chmod(0o000)
    try:
        with permissions_enforced():
            dataset, report = load_corpus("folder", data_dir=corpus, cache_dir=cache_dir, return_report=True, verbose=False)
            with pytest.raises(AudioDecodeError) as caught:
                load_audio(locked)
    finally:
        locked.chmod(0o644)
    assert [Path(path).name for path in dataset["path"]] == ["readable.wav"]
    reason = reasons(report)["locked.wav"]
    assert reason.startswith("permission denied") and "chmod a+r" in reason
    assert "corrupt" not in reason and "ffmpeg" not in reason
    assert str(caught.value).startswith(f"permission denied: the file cannot be read ({locked}). Fix: give read permission")


@pytest.mark.parametrize("name", ["clip.wav", "my clip's take.WAV", "phone.m4a"])
def test_suggested_ffmpeg_command_never_writes_onto_its_input(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    with pytest.raises(AudioDecodeError) as caught:
        audio_info(path)
    command = str(caught.value).split("`")[1]
    words = shlex.split(command)  # quoted so that a path with spaces or quotes survives the shell
    assert words[:3] == ["ffmpeg", "-i", str(path)]
    output = Path(words[-1])
    assert output != path and output.parent == path.parent and output.suffix == ".wav"


# ---- loaders that glob a folder must recognize their corpus -------------------------------------------------

GLOBBING_LOADERS = ["freesound_babies", "human_voice", "nnime", "singing_database"]
# nnime cannot tell a user's own class folders from NNIME (its layout is unconfirmed; any folder of audio may be it).
INDISTINGUISHABLE = {("nnime", "folder")}


@pytest.mark.parametrize("other", sorted(FIXTURE_CORPORA))
@pytest.mark.parametrize("loader", GLOBBING_LOADERS)
def test_globbing_loaders_refuse_other_corpora(loader, other, tmp_path, cache_dir):
    if loader == other or (loader, other) in INDISTINGUISHABLE:
        pytest.skip("the loader's own tree, or one it cannot tell apart")
    data_dir = FIXTURE_CORPORA[other](tmp_path / other)
    with pytest.raises(CorpusLayoutError) as caught:
        load_corpus(loader, data_dir=data_dir, cache_dir=cache_dir, verbose=False)
    message = str(caught.value)
    assert message.startswith(f"{loader}: ") and f"(data_dir {data_dir})" in message
    assert f"Expected layout for '{loader}'" in message


@pytest.mark.skipif(not DONATEACRY.is_dir(), reason=f"real Donate A Cry copy not found at {DONATEACRY} (../shared beside the repo)")
@pytest.mark.parametrize("loader", GLOBBING_LOADERS)
def test_globbing_loaders_refuse_the_real_donateacry_copy(loader, cache_dir):
    with pytest.raises(CorpusLayoutError, match=f"Expected layout for '{loader}'"):
        load_corpus(loader, data_dir=DONATEACRY, cache_dir=cache_dir, verbose=False)


def test_nnime_names_the_corpus_it_found(tmp_path, cache_dir):
    with pytest.raises(CorpusLayoutError, match=r"holds another corpus, donateacry \(at '.*donateacry_corpus_cleaned_and_updated_data'\)"):
        load_corpus("nnime", data_dir=write_donateacry(tmp_path / "cries"), cache_dir=cache_dir)
    # A partial OpenSLR copy (three class folders, no metadata file) is still recognized by its hyphenated names.
    partial = write_nonverbal_vocalization(tmp_path / "nonverbal")
    (partial / "NonverbalVocalization" / "Nonverbal_Vocalization_metadata.json").unlink()
    with pytest.raises(CorpusLayoutError, match="holds another corpus, nonverbal_vocalization"):
        load_corpus("nnime", data_dir=partial, cache_dir=cache_dir)


# ---- unwritable caches and full disks -------------------------------------------------------------------------


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_read_only_corpus_cache_dir_is_named(tmp_path, read_only, capsys):
    corpus = write_nnime(tmp_path / "nnime")
    with permissions_enforced():
        with pytest.raises(UserError) as caught:
            load_corpus("nnime", data_dir=corpus, cache_dir=read_only)
        assert corpora.main(["stats", "nnime", "--data_dir", str(corpus), "--cache_dir", str(read_only)]) == 2
    assert "not writable" in str(caught.value) and f"cache_dir {read_only}" in str(caught.value)
    printed = capsys.readouterr().err
    assert printed.startswith("error: not writable") and str(read_only) in printed and "Traceback" not in printed


def test_read_only_datasets_cache_is_named(tmp_path, read_only, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", read_only)
    with permissions_enforced(), pytest.raises(UserError, match=f"not writable.*HF_DATASETS_CACHE {read_only}"):
        load_corpus("nnime", data_dir=write_nnime(tmp_path / "nnime"))


def test_read_only_voc2vec_cache_is_named(tmp_path, read_only, monkeypatch, cache_dir):
    dataset = load_corpus("nnime", data_dir=write_nnime(tmp_path / "nnime"), cache_dir=cache_dir)
    monkeypatch.setattr(cache, "DEFAULT_CACHE_DIR", read_only / "decoded")
    with permissions_enforced(), pytest.raises(UserError, match="not writable.*VOC2VEC_CACHE"):
        cache.decode_corpus(dataset)


def disk_full_after(calls: int):
    """A stand-in for a writer method that fails as a full disk does once `calls` writes went through."""
    count = {"writes": 0}

    def write(original):
        def failing(self, *args, **kwargs):
            count["writes"] += 1
            if count["writes"] > calls:
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(self, *args, **kwargs)
        return failing

    return write


def test_full_disk_while_preparing_names_the_cache(tmp_path, cache_dir, monkeypatch):
    corpus = write_nnime(tmp_path / "nnime")
    original = datasets.arrow_writer.ArrowWriter.write_table
    monkeypatch.setattr(datasets.arrow_writer.ArrowWriter, "write_table", disk_full_after(0)(original))
    with pytest.raises(UserError) as caught:
        load_corpus("nnime", data_dir=corpus, cache_dir=cache_dir)
    assert str(caught.value).startswith(f"no space left on device ({cache_dir})")
    monkeypatch.setattr(datasets.arrow_writer.ArrowWriter, "write_table", original)
    assert len(load_corpus("nnime", data_dir=corpus, cache_dir=cache_dir)) == 3  # once there is space, it prepares


def test_full_disk_while_decoding_names_the_cache_and_keeps_finished_shards(tmp_path, cache_dir, monkeypatch):
    dataset = load_corpus("nnime", data_dir=write_nnime(tmp_path / "nnime"), cache_dir=cache_dir)
    monkeypatch.setattr(cache, "CLIPS_PER_SHARD", 1)  # 3 clips, 3 shards
    original = datasets.arrow_writer.ArrowWriter.write_table
    monkeypatch.setattr(datasets.arrow_writer.ArrowWriter, "write_table", disk_full_after(1)(original))
    with pytest.raises(UserError) as caught:
        cache.decode_corpus(dataset, cache_dir=tmp_path / "decoded")
    assert str(caught.value).startswith(f"no space left on device ({tmp_path / 'decoded'})")
    monkeypatch.setattr(datasets.arrow_writer.ArrowWriter, "write_table", original)
    decoded_paths = []
    monkeypatch.setattr(cache, "load_audio", lambda path, *a, **k: decoded_paths.append(path) or load_audio(path, *a, **k))
    assert len(cache.decode_corpus(dataset, cache_dir=tmp_path / "decoded")) == 3
    assert decoded_paths == dataset["path"][1:]  # the first shard was finished before the disk filled


# ---- the error convention ------------------------------------------------------------------------------------------


def test_data_errors_follow_the_one_convention(tmp_path, cache_dir):
    with pytest.raises(CorpusLayoutError) as caught:
        load_corpus("vivae", data_dir=tmp_path / "missing", cache_dir=cache_dir)
    error = caught.value
    # A UserError printed 'what (where). Fix: how', still a FileNotFoundError for old except sites, and intact
    # after a trip through a worker process.
    assert isinstance(error, UserError) and isinstance(error, FileNotFoundError) and isinstance(error, ValueError)
    assert str(error).startswith(f"vivae: data_dir '{tmp_path / 'missing'}' does not exist or is not a folder (data_dir {tmp_path / 'missing'}). Fix: ")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)

    with pytest.raises(AudioDecodeError) as caught:
        load_audio(write_wav(tmp_path / "empty.wav", seconds=0.0))
    decode_error = caught.value
    assert isinstance(decode_error, UserError) and isinstance(decode_error, ValueError)
    assert str(decode_error) == f"zero length: the file holds no samples ({tmp_path / 'empty.wav'})."
    copy = pickle.loads(pickle.dumps(decode_error))
    assert (copy.path, copy.reason, str(copy)) == (decode_error.path, decode_error.reason, str(decode_error))
