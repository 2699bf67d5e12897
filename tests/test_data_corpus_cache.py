"""The prepared-corpus cache is keyed by the corpus on disk and by its loader (README: "a changed file re-prepares
a corpus; a changed loader re-prepares it"): each key part is changed alone and must lead to a new preparation."""

import inspect
import os
import shutil
from pathlib import Path

import numpy as np
import soundfile

from voc2vec.corpora import builder_class, load_corpus


def write_clip(path: Path, frames: int, sampling_rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.full(frames, 0.1, dtype=np.float32), sampling_rate, subtype="PCM_16")
    return path


def durations(dataset) -> dict[str, float]:
    return {Path(row["path"]).name: round(row["duration"], 4) for row in dataset}


def test_same_name_other_size_same_mtime_is_prepared_again(tmp_path):
    clip = write_clip(tmp_path / "corpus" / "spk" / "a.wav", 8000, 16000)
    write_clip(tmp_path / "corpus" / "spk" / "b.wav", 8000, 16000)
    first = load_corpus("nnime", data_dir=tmp_path / "corpus", cache_dir=tmp_path / "cache")
    assert durations(first) == {"a.wav": 0.5, "b.wav": 0.5}
    stat = clip.stat()
    write_clip(clip, 16000, 16000)  # a re-download: other length, and (as copies often keep it) the old mtime
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert clip.stat().st_size != stat.st_size and clip.stat().st_mtime_ns == stat.st_mtime_ns
    again = load_corpus("nnime", data_dir=tmp_path / "corpus", cache_dir=tmp_path / "cache")
    assert durations(again) == {"a.wav": 1.0, "b.wav": 0.5}


def test_same_name_same_size_other_mtime_is_prepared_again(tmp_path):
    clip = write_clip(tmp_path / "corpus" / "spk" / "a.wav", 8000, 16000)
    first = load_corpus("nnime", data_dir=tmp_path / "corpus", cache_dir=tmp_path / "cache")
    assert durations(first) == {"a.wav": 0.5} and first["sampling_rate"] == [16000]
    stat = clip.stat()
    write_clip(clip, 8000, 8000)  # same frames, other rate: the same number of bytes, twice as long
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert clip.stat().st_size == stat.st_size
    again = load_corpus("nnime", data_dir=tmp_path / "corpus", cache_dir=tmp_path / "cache")
    assert durations(again) == {"a.wav": 1.0} and again["sampling_rate"] == [8000]


def test_unchanged_corpus_is_read_back_without_preparing(tmp_path):
    write_clip(tmp_path / "corpus" / "spk" / "a.wav", 8000, 16000)
    first = load_corpus("nnime", data_dir=tmp_path / "corpus", cache_dir=tmp_path / "cache")
    again = load_corpus("nnime", data_dir=tmp_path / "corpus", cache_dir=tmp_path / "cache")
    assert again.cache_files == first.cache_files


def test_cache_inside_the_corpus_folder_does_not_change_its_key(tmp_path):
    write_clip(tmp_path / "corpus" / "spk" / "a.wav", 8000, 16000)
    first = load_corpus("nnime", data_dir=tmp_path / "corpus", cache_dir=tmp_path / "corpus" / ".cache")
    again = load_corpus("nnime", data_dir=tmp_path / "corpus", cache_dir=tmp_path / "corpus" / ".cache")
    assert again.cache_files == first.cache_files


def test_edited_loader_is_prepared_again(tmp_path):
    write_clip(tmp_path / "corpus" / "session1" / "a.wav", 8000, 16000)
    script = tmp_path / "scripts" / "nnime_edited.py"
    script.parent.mkdir()
    shutil.copy(inspect.getfile(builder_class("nnime")), script)
    first = load_corpus(str(script), data_dir=tmp_path / "corpus", cache_dir=tmp_path / "cache")
    assert first["speaker"] == ["session1"]
    source = script.read_text()
    edited = source.replace('return {"speaker": "" if folder == Path(".") else folder.as_posix()}',
                            'return {"speaker": "" if folder == Path(".") else folder.as_posix().upper()}')
    assert edited != source
    script.write_text(edited)
    again = load_corpus(str(script), data_dir=tmp_path / "corpus", cache_dir=tmp_path / "cache")
    assert again["speaker"] == ["SESSION1"]
