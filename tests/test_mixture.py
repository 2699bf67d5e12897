"""The Voc125 mixture: segmentation rule, Parquet shards, resume, Table I, Dataset / IterableDataset readers."""

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile

from voc2vec import mixture
from voc2vec.mixture import SegmentRule, decode_segment, load_mixture, mixture_table, prepare_mixture, segment_bounds

# A corpus read with the nnime loader (every audio file below data_dir, speaker = folder): durations chosen
# to exercise every branch of the segment rule, at rates and channel counts the real corpora have.
SOURCE_FILES = {
    "spk1/long_35s.wav": (35.0, 8000, 1),  # -> 10, 10, 10, 5
    "spk1/long_31s.flac": (31.0, 22050, 2),  # -> 10, 10, 10 (1 s remainder dropped)
    "spk2/short_1.2s.wav": (1.2, 44100, 2),  # -> 1.2 (a whole short clip is kept)
    "spk2/tiny_0.1s.wav": (0.1, 16000, 1),  # -> nothing (below min_clip_seconds)
}
EXPECTED_SEGMENTS = 4 + 3 + 1


def test_segment_bounds_rule():
    assert segment_bounds(35.0) == [(0.0, 10.0), (10.0, 10.0), (20.0, 10.0), (30.0, 5.0)]
    assert segment_bounds(31.0) == [(0.0, 10.0), (10.0, 10.0), (20.0, 10.0)]
    assert segment_bounds(30.0) == [(0.0, 10.0), (10.0, 10.0), (20.0, 10.0)]
    assert segment_bounds(12.0) == [(0.0, 10.0), (10.0, 2.0)]
    assert segment_bounds(10.0) == [(0.0, 10.0)]
    assert segment_bounds(1.2) == [(0.0, 1.2)]
    assert segment_bounds(0.1) == []
    strict = SegmentRule(max_segment_seconds=4.0, min_segment_seconds=3.0, min_clip_seconds=1.5)
    assert segment_bounds(10.0, strict) == [(0.0, 4.0), (4.0, 4.0)] and segment_bounds(1.2, strict) == []


@pytest.fixture(scope="module")
def source_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("nnime_corpus")
    rng = np.random.default_rng(0)
    for relative, (seconds, rate, channels) in SOURCE_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = (0.1 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)
        soundfile.write(path, samples if channels > 1 else samples[:, 0], rate)
    return root


def prepare(source_corpus, output_dir, tmp_path, **kwargs):
    kwargs.setdefault("shard_hours", 25 / 3600)  # about one source file per shard: several shards to resume
    return prepare_mixture({"nnime": {"data_dir": str(source_corpus)}}, output_dir, cache_dir=tmp_path / "cache", verbose=False, **kwargs)


def read_rows(output_dir):
    return [row for path in mixture.shard_files(output_dir) for row in pq.read_table(path).to_pylist()]


def shard_stats(output_dir):
    return {path.name: path.stat().st_mtime_ns for path in Path(output_dir).glob("*.parquet")}


def test_written_segments_follow_the_rule(source_corpus, tmp_path):
    output_dir = tmp_path / "voc125"
    prepare(source_corpus, output_dir, tmp_path, num_proc=2)
    rows = read_rows(output_dir)
    by_file = {}
    for row in rows:
        by_file.setdefault(row["source_path"], []).append((row["offset"], round(row["duration"], 3)))
    assert by_file == {
        "spk1/long_35s.wav": [(0.0, 10.0), (10.0, 10.0), (20.0, 10.0), (30.0, 5.0)],
        "spk1/long_31s.flac": [(0.0, 10.0), (10.0, 10.0), (20.0, 10.0)],
        "spk2/short_1.2s.wav": [(0.0, 1.2)],
    }
    assert {row["corpus"] for row in rows} == {"nnime"} and {row["speaker"] for row in rows} == {"spk1", "spk2"}
    audio = decode_segment(rows[0])
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) == 10 * 16000
    assert soundfile.info(__import__("io").BytesIO(rows[0]["audio"])).format == "FLAC"


def test_table_one_is_read_from_the_written_shards(source_corpus, tmp_path, capsys):
    output_dir = tmp_path / "voc125"
    rows = prepare(source_corpus, output_dir, tmp_path)
    seconds = 35 + 30 + 1.2
    nnime, total = rows
    assert (nnime["corpus"], nnime["clips"], nnime["segments"]) == ("nnime", 3, EXPECTED_SEGMENTS)
    assert nnime["hours"] == pytest.approx(seconds / 3600, abs=1e-4)
    assert nnime["mean_clip_seconds"] == pytest.approx(seconds / 3, abs=1e-3)
    assert total["corpus"] == "total" and total["segments"] == EXPECTED_SEGMENTS
    # Drop a shard behind the manifest's back: the table follows the files, not the plan.
    first = mixture.shard_files(output_dir)[0]
    written = pq.read_table(first, columns=["duration"]).column("duration").to_pylist()
    remaining = [name for name in mixture.shard_files(output_dir)[1:]]
    reduced = mixture_table(output_dir, [Path(name).name for name in remaining])
    assert reduced[0]["segments"] == EXPECTED_SEGMENTS - len(written)
    mixture.main(["stats", str(output_dir)])
    assert "| nnime | 0.02 | 3 | 22.07 | 8 |" in capsys.readouterr().out


def test_rerun_skips_finished_shards_and_writes_the_rest(source_corpus, tmp_path, monkeypatch):
    output_dir = tmp_path / "voc125"
    prepare(source_corpus, output_dir, tmp_path)
    before = shard_stats(output_dir)
    assert len(before) == 3
    lost = sorted(before)[1]
    (output_dir / lost).unlink()
    (output_dir / f"{sorted(before)[2]}.tmp-99999").write_bytes(b"half a shard")  # an interrupted writer's leftovers
    (output_dir / "nnime-00000-of-00009-0123456789.parquet").write_bytes(b"old plan")  # a shard of an older plan
    (output_dir / "notes.parquet").write_bytes(b"the user's own file")  # not named like a shard: left alone
    written = []
    original = mixture.write_shard
    monkeypatch.setattr(mixture, "write_shard", lambda shard, *args: written.append(shard.name) or original(shard, *args))
    prepare(source_corpus, output_dir, tmp_path)
    after = shard_stats(output_dir)
    assert written == [lost] and (output_dir / "notes.parquet").exists()
    after.pop("notes.parquet")
    assert set(after) == set(before) and all(after[name] == before[name] for name in before if name != lost)
    assert not [path for path in output_dir.iterdir() if ".tmp-" in path.name]
    rows = read_rows(output_dir)
    assert len(rows) == EXPECTED_SEGMENTS == len({(row["source_path"], row["offset"]) for row in rows})


def test_interrupted_run_resumes_without_duplicates(source_corpus, tmp_path, monkeypatch):
    output_dir = tmp_path / "voc125"
    original = mixture.load_audio

    def failing_load_audio(path, *args, **kwargs):
        if "short_1.2s" in os.fspath(path):
            raise KeyboardInterrupt  # the job is killed while writing the shard of this file
        return original(path, *args, **kwargs)

    monkeypatch.setattr(mixture, "load_audio", failing_load_audio)
    with pytest.raises(KeyboardInterrupt):
        prepare(source_corpus, output_dir, tmp_path, num_proc=1)
    finished = shard_stats(output_dir)
    assert len(finished) == 2  # the shards before the failing one are complete and under their final names
    assert not [path for path in output_dir.iterdir() if ".tmp-" in path.name]
    assert not (output_dir / mixture.MANIFEST_NAME).exists()
    monkeypatch.setattr(mixture, "load_audio", original)
    prepare(source_corpus, output_dir, tmp_path, num_proc=2)
    after = shard_stats(output_dir)
    assert len(after) == 3 and all(after[name] == finished[name] for name in finished)
    rows = read_rows(output_dir)
    assert len(rows) == EXPECTED_SEGMENTS == len({(row["source_path"], row["offset"]) for row in rows})


def test_dataset_and_iterable_dataset_readers(source_corpus, tmp_path):
    output_dir = tmp_path / "voc125"
    prepare_mixture(
        {"nnime": {"data_dir": str(source_corpus)}, "demo": {"num_speakers": 1, "clips_per_speaker_per_class": 1}, "vocalsound": {"data_dir": str(tmp_path / "absent")}},
        output_dir,
        cache_dir=tmp_path / "cache",
        verbose=False,
    )
    dataset = load_mixture(output_dir, cache_dir=tmp_path / "hf_cache")
    assert set(dataset.column_names) == {"corpus", "source_path", "offset", "duration", "speaker", "audio"}
    assert len(dataset) == EXPECTED_SEGMENTS + 6 and set(dataset["corpus"]) == {"nnime", "demo"}
    row = dataset[len(dataset) - 1]
    assert len(decode_segment(row)) == pytest.approx(row["duration"] * 16000, abs=1)
    streamed = load_mixture(output_dir, streaming=True)
    count = 0
    for row in streamed:
        count += 1
        assert decode_segment(row).dtype == np.float32
    assert count == len(dataset)


def test_command_line_prepare(source_corpus, tmp_path, capsys):
    config = tmp_path / "voc125.yaml"
    config.write_text(
        f"output_dir: {tmp_path / 'from_config'}\nnum_proc: 1\nshard_hours: 1.0\ncache_dir: {tmp_path / 'cache'}\n"
        f"corpora:\n  nnime:\n    data_dir: {source_corpus}\n  vocalsound:\n    data_dir: $VOC125_TEST_MISSING/vocalsound\n"
    )
    mixture.main(["prepare", str(config), "--output_dir", str(tmp_path / "cli")])
    captured = capsys.readouterr()
    assert "| nnime |" in captured.out and "| total |" in captured.out
    assert "leaving out vocalsound" in captured.err
    assert len(mixture.shard_files(tmp_path / "cli")) == 1 and not (tmp_path / "from_config").exists()


def test_lengths_exactly_at_the_thresholds_are_kept(tmp_path):
    # Whole clips of exactly min_clip_seconds (0.2 s) are kept, one sample less is dropped; a remainder of exactly
    # min_segment_seconds (2 s) after the 10 s windows is kept, one sample less is dropped. Through the real path:
    # the loader's float32 durations, the plan, the written shards.
    corpus = tmp_path / "boundary"
    lengths = {  # name: (samples, rate)
        "spk/clip_0.2s_16k.wav": (3200, 16000),
        "spk/clip_0.2s_44k.wav": (8820, 44100),
        "spk/clip_0.2s_minus_one.wav": (3199, 16000),
        "spk/long_12s.wav": (192000, 16000),
        "spk/long_12s_minus_one.wav": (191999, 16000),
    }
    for name, (samples, rate) in lengths.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(corpus / name, np.full(samples, 0.1, dtype=np.float32), rate)
    output_dir = tmp_path / "voc125"
    prepare_mixture({"nnime": {"data_dir": str(corpus)}}, output_dir, cache_dir=tmp_path / "cache", verbose=False)
    segments = {}
    for row in read_rows(output_dir):
        segments.setdefault(row["source_path"], []).append((row["offset"], round(row["duration"], 4)))
    assert segments == {
        "spk/clip_0.2s_16k.wav": [(0.0, 0.2)],
        "spk/clip_0.2s_44k.wav": [(0.0, 0.2)],
        "spk/long_12s.wav": [(0.0, 10.0), (10.0, 2.0)],
        "spk/long_12s_minus_one.wav": [(0.0, 10.0)],
    }
