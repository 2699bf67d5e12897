"""The Voc125 pretraining mixture: any subset of the ten Voc125 corpora as 16 kHz mono segments in Parquet.

    python -m voc2vec.mixture prepare configs/voc125.yaml [--output_dir DIR] [--num_proc N] [--corpora a,b]
    python -m voc2vec.mixture stats DIR          # Table I again, read from the written shards

What `prepare_mixture` does, corpus by corpus:
1. Lists the corpus with its loader (`load_corpus`, so files are probed once and unreadable ones reported);
   a corpus whose data_dir is not on disk is left out and said so. Corpora that need no data_dir are
   accepted without one: `demo` (data/demo.py, generated audio) builds a small mixture for tests and the demo.
2. Cuts every file into segments (`segment_bounds`): consecutive windows of `max_segment_seconds` (10 s)
   from the start. The rule for what is too short:
   - a file no longer than the maximum is one segment, kept whole if it lasts at least `min_clip_seconds`
     (0.2 s: ten 20 ms frames, the shortest input that holds one wav2vec 2.0 mask span). Short clips are
     complete vocalizations, and several corpora (ReCANVo, HumanVoice, NNIME) average about 1-2 s;
   - the remainder after the full windows of a longer file is kept if it lasts at least
     `min_segment_seconds` (2 s) and dropped otherwise: it is a fragment cut mid-sound. Merging it into the
     previous window is impossible without exceeding the maximum, so it is never merged.
   So a 35 s file gives 10, 10, 10, 5 s; a 31 s file gives 10, 10, 10 s; a 1.2 s clip gives 1.2 s. Lengths are
   compared in whole samples at the mixture's rate, so a clip of exactly 0.2 s (or a remainder of exactly 2 s)
   is kept whatever float rounding its stored duration went through.
3. Groups the files into shards of about `shard_hours` of audio (never across corpora) and writes each shard
   as one Parquet file, segments decoded to 16 kHz mono (channels averaged, soxr resampling) and stored as
   16-bit FLAC bytes, in row groups of `ROWS_PER_GROUP` segments so that readers stream a shard in small
   pieces. Workers (`num_proc`) take whole shards; each holds one row group in memory, never a corpus.
4. Resumes: a shard is written to `<name>.tmp-<pid>` and renamed when complete; its name carries a digest
   of its plan (files, durations, segment rule), so a rerun skips every shard already on disk, writes only
   the rest, and never duplicates a segment. The folder holds one mixture: shards of an older plan (other
   settings, changed corpus files, or corpora left out of this run) and leftover temporary files are
   removed, so `*.parquet` in it is always one mixture. Only one `prepare` may write to a folder at a time.
5. Writes `voc125.json` (settings, corpora, shard list, Table I) last, and prints Table I computed from the
   written shards' columns (not from the plan).

Mistakes in the config are refused before any work, each as one line `error: <what> (<file: key>). Fix: <how>`
with exit code 2: a missing file, a YAML error (with its line), an unknown key at the top or in a corpus (with a
did-you-mean), a value of the wrong kind (`num_proc: four`, a list where a mapping belongs), an unknown corpus or
config, an empty data_dir, a data_dir that holds another corpus, a read-only output or cache folder. A disk that
fills while shards are written stops the run with "no space left" and the folder; the finished shards stay.

Columns: `corpus` (str), `source_path` (str, relative to the corpus's data_dir), `offset` (float64 s in the
source), `duration` (float32 s of the segment), `speaker` (str, "" when none), `audio` (binary: FLAC,
16 kHz, mono, 16-bit). Read with `load_mixture` and decode rows with `decode_segment`.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import io
import json
import multiprocessing
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile

from voc2vec.audio import TARGET_SAMPLING_RATE, AudioDecodeError, decode_audio_bytes, load_audio
from voc2vec.corpora import builder_class, corpus_names, load_corpus
from voc2vec.config_files import read_config_file
from voc2vec.errors import UserError, check_writable_dir, exit_on_user_error, os_error_to_user_error

FORMAT_VERSION = 1  # bump when the stored layout changes: every shard name changes with it
MANIFEST_NAME = "voc125.json"
ROWS_PER_GROUP = 64
DEFAULT_MAX_SEGMENT_SECONDS = 10.0
DEFAULT_MIN_SEGMENT_SECONDS = 2.0
DEFAULT_MIN_CLIP_SECONDS = 0.2
DEFAULT_SHARD_HOURS = 1.0

# The Voc125 corpora in the order of the paper's Table I (the order shards and the table follow).
VOC125_CORPORA = [
    "audioset_vocalization",
    "freesound_babies",
    "human_voice",
    "nnime",
    "nonspeech7k",
    "recanvo",
    "singing_database",
    "tut_babies",
    "vocalsketch",
    "vocalsound",
]

SCHEMA = pa.schema(
    [
        ("corpus", pa.string()),
        ("source_path", pa.string()),
        ("offset", pa.float64()),
        ("duration", pa.float32()),
        ("speaker", pa.string()),
        ("audio", pa.binary()),
    ]
)
METADATA_COLUMNS = ["corpus", "source_path", "offset", "duration", "speaker"]
SHARD_NAME = re.compile(r"[\w.-]+-\d{5}-of-\d{5}-[0-9a-f]{10}\.parquet")


# ---- segmentation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentRule:
    """How files are cut into segments (see the module docstring); part of every shard's digest."""

    max_segment_seconds: float = DEFAULT_MAX_SEGMENT_SECONDS
    min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS
    min_clip_seconds: float = DEFAULT_MIN_CLIP_SECONDS
    sampling_rate: int = TARGET_SAMPLING_RATE


def segment_bounds(duration: float, rule: SegmentRule = SegmentRule()) -> list[tuple[float, float]]:
    """(offset, length) in seconds of the segments a file of `duration` seconds gives under `rule`.

    Counted in whole samples at `rule.sampling_rate`: durations come from the corpus's float32 column, so
    a clip of exactly 0.2 s may read 0.19999999 s or 0.20000001 s; in samples it is 3200 either way, and the
    thresholds hold exactly at their boundary.
    """
    samples = _samples(duration, rule)
    max_samples, min_segment, min_clip = (_samples(seconds, rule) for seconds in (rule.max_segment_seconds, rule.min_segment_seconds, rule.min_clip_seconds))
    if samples <= max_samples:
        return [(0.0, float(duration))] if samples >= min_clip else []
    full, remainder = divmod(samples, max_samples)
    bounds = [(index * rule.max_segment_seconds, rule.max_segment_seconds) for index in range(full)]
    if remainder >= min_segment:
        bounds.append((full * rule.max_segment_seconds, remainder / rule.sampling_rate))
    return bounds


def _samples(seconds: float, rule: SegmentRule) -> int:
    return int(round(seconds * rule.sampling_rate))


# ---- planning ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    corpus: str
    path: str  # absolute, for reading
    source_path: str  # relative to the corpus's data_dir, for the written column
    speaker: str
    duration: float


@dataclass
class ShardPlan:
    corpus: str
    index: int
    num_shards: int
    files: list[SourceFile]
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.corpus}-{self.index:05d}-of-{self.num_shards:05d}-{self.digest}.parquet"


def _relative(path: str, root: str | None) -> str:
    if root:
        relative = os.path.relpath(path, root)
        if not relative.startswith(".."):
            return Path(relative).as_posix()
    return path


def list_sources(corpus: str, options: Mapping[str, Any], cache_dir: str | os.PathLike | None = None) -> list[SourceFile]:
    """Every file of one corpus with its speaker and duration, via the corpus's loader (all splits).

    `options` holds `data_dir` and the loader's config kwargs (e.g. `classes` for audioset_vocalization,
    `seed` / `num_speakers` / `clips_per_speaker_per_class` for the synthetic `demo`, which has no data_dir).
    """
    options = dict(options)
    data_dir = options.pop("data_dir", None)
    config = options.pop("config", None)
    prepared = load_corpus(corpus, data_dir=data_dir, config=config, cache_dir=cache_dir, **options)
    splits = prepared.values() if isinstance(prepared, datasets.DatasetDict) else [prepared]
    columns = [split.select_columns(["path", "speaker", "duration"]).to_dict() for split in splits]
    paths = [path for part in columns for path in part["path"]]
    # source_path is relative to data_dir (or, for a generated corpus, to the folder holding its files),
    # so shards carry no user's home directory and stay valid when a corpus folder moves.
    root = os.fspath(Path(data_dir).expanduser().resolve()) if data_dir else (os.path.commonpath(paths) if len(paths) > 1 else None)
    return [
        SourceFile(corpus, path, _relative(path, root), speaker or "", float(duration))
        for part in columns
        for path, speaker, duration in zip(part["path"], part["speaker"], part["duration"])
    ]


def plan_shards(files: list[SourceFile], rule: SegmentRule, shard_hours: float) -> list[ShardPlan]:
    """Consecutive files of one corpus in shards of about `shard_hours` of kept audio, each with its digest."""
    limit = shard_hours * 3600
    groups: list[list[SourceFile]] = []
    seconds = limit  # start a new group at the first file
    for source in files:
        kept = sum(length for _, length in segment_bounds(source.duration, rule))
        if not kept:
            continue
        if seconds >= limit:
            groups.append([])
            seconds = 0.0
        groups[-1].append(source)
        seconds += kept
    shards = []
    for index, group in enumerate(groups):
        shard = ShardPlan(group[0].corpus, index, len(groups), group)
        # Absolute paths stay out of the digest: moving a corpus folder does not invalidate its shards.
        listing = [(source.source_path, source.speaker, source.duration) for source in group]
        digest = hashlib.sha256(json.dumps([FORMAT_VERSION, asdict(rule), shard.name, listing]).encode())
        shard.digest = digest.hexdigest()[:10]
        shards.append(shard)
    return shards


# ---- writing ----------------------------------------------------------------------------------------


def encode_flac(audio: np.ndarray, sampling_rate: int) -> bytes:
    buffer = io.BytesIO()
    # libsndfile wraps rather than clips out-of-range floats when converting to 16-bit: clip first.
    soundfile.write(buffer, np.clip(audio, -1.0, 1.0), sampling_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def shard_segments(shard: ShardPlan, rule: SegmentRule, skipped: list[str]) -> Iterator[dict]:
    """The shard's rows, one segment at a time (a file that fails to decode is recorded in `skipped`)."""
    for source in shard.files:
        for offset, length in segment_bounds(source.duration, rule):
            try:
                audio = load_audio(source.path, rule.sampling_rate, offset=offset, duration=length)
            except AudioDecodeError as error:
                skipped.append(f"{source.path} at {offset:.1f} s: {error.reason}")
                continue
            yield {
                "corpus": source.corpus,
                "source_path": source.source_path,
                "offset": offset,
                "duration": len(audio) / rule.sampling_rate,
                "speaker": source.speaker,
                "audio": encode_flac(audio, rule.sampling_rate),
            }


def write_shard(shard: ShardPlan, rule: SegmentRule, output_dir: str | os.PathLike) -> tuple[str, int, list[str]]:
    """Write one shard under a temporary name and rename it when complete: (name, segments, skipped)."""
    final = Path(output_dir) / shard.name
    temporary = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    skipped: list[str] = []
    count = 0
    writer = pq.ParquetWriter(temporary, SCHEMA, compression={"audio": "NONE", **{name: "ZSTD" for name in METADATA_COLUMNS}})
    try:
        batch: list[dict] = []
        for row in shard_segments(shard, rule, skipped):
            batch.append(row)
            if len(batch) == ROWS_PER_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=SCHEMA))
                count += len(batch)
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=SCHEMA))
            count += len(batch)
        writer.close()
        os.replace(temporary, final)
    except BaseException as error:
        writer.close()
        temporary.unlink(missing_ok=True)
        converted = os_error_to_user_error(error, output_dir) if isinstance(error, OSError) else None
        if converted is not None:  # a full disk: the finished shards stay, a rerun resumes after space is freed
            raise converted from error
        raise
    return shard.name, count, skipped


def _write_shard_job(job: tuple[ShardPlan, SegmentRule, str]) -> tuple[str, int, list[str]]:
    return write_shard(*job)


def is_finished(path: Path) -> bool:
    """A shard on disk under its final name is complete (it was renamed last); a damaged one is rewritten."""
    try:
        pq.read_metadata(path)
        return True
    except (OSError, pa.ArrowException):
        return False


def prepare_mixture(
    sources: Mapping[str, Mapping[str, Any] | str | None],
    output_dir: str | os.PathLike,
    num_proc: int = 1,
    max_segment_seconds: float = DEFAULT_MAX_SEGMENT_SECONDS,
    min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS,
    min_clip_seconds: float = DEFAULT_MIN_CLIP_SECONDS,
    shard_hours: float = DEFAULT_SHARD_HOURS,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = True,
) -> list[dict]:
    """Write the mixture of `sources` ({corpus: {"data_dir": ..., loader kwargs} or a data_dir string}) to
    `output_dir` as Parquet shards; resumable (see the module docstring). Returns Table I's rows."""
    log = (lambda message: print(message, file=sys.stderr)) if verbose else (lambda message: None)
    rule = SegmentRule(max_segment_seconds, min_segment_seconds, min_clip_seconds)
    if not 0 < min_clip_seconds <= max_segment_seconds or min_segment_seconds > max_segment_seconds:
        raise UserError("the segment rule needs 0 < min_clip_seconds <= max_segment_seconds and min_segment_seconds <= max_segment_seconds",
                        where=f"max_segment_seconds {max_segment_seconds}, min_segment_seconds {min_segment_seconds}, min_clip_seconds {min_clip_seconds}",
                        fix="change those settings")
    if not isinstance(sources, Mapping):
        raise UserError(f"corpora: a {type(sources).__name__} where a mapping belongs", where="corpora",
                        fix="give one 'name: {data_dir: ...}' entry per corpus")
    sources = {corpus: corpus_options(corpus, options) for corpus, options in sources.items()}  # every mistake before any work
    output_dir = check_writable_dir(output_dir, "output_dir")

    shards, corpora, absent = [], {}, []
    for corpus, options in sources.items():
        data_dir = options.get("data_dir")
        if data_dir is not None and not os.path.isdir(data_dir):
            unset = " (it uses an environment variable that is not set)" if "$" in data_dir else ""
            log(f"voc125: leaving out {corpus}: data_dir '{data_dir}' is not on disk{unset}")
            absent.append(data_dir)
            continue
        files = list_sources(corpus, options, cache_dir)
        corpus_shards = plan_shards(files, rule, shard_hours)
        log(f"voc125: {corpus}: {len(files)} files in {len(corpus_shards)} shards")
        corpora[corpus] = {key: value for key, value in options.items() if key != "data_dir"} | {"data_dir": data_dir}
        shards += corpus_shards
    if not shards:
        raise UserError(
            "none of the corpora given is on disk, or none has a file long enough: nothing to write",
            where=", ".join(absent) if absent else "corpora",
            fix="download the corpora and point their data_dir at them (set VOC2VEC_DATA for configs/voc125.yaml)",
        )

    output_dir.mkdir(parents=True, exist_ok=True)
    # The folder holds one mixture: the manifest goes first (it is rewritten when every shard is there), and
    # shards of another plan are removed, so globbing `*.parquet` never mixes two plans. Only files named
    # like this module's shards are touched.
    (output_dir / MANIFEST_NAME).unlink(missing_ok=True)
    planned = {shard.name for shard in shards}
    for path in sorted(output_dir.iterdir()):
        stale_shard = SHARD_NAME.fullmatch(path.name) is not None and path.name not in planned
        temporary = ".tmp-" in path.name and SHARD_NAME.fullmatch(path.name.split(".tmp-")[0]) is not None
        if stale_shard or temporary:
            log(f"voc125: removing {path.name} ({'shard of an earlier plan' if stale_shard else 'unfinished temporary file'})")
            path.unlink()
    pending = [shard for shard in shards if not is_finished(output_dir / shard.name)]
    log(f"voc125: {len(shards) - len(pending)} of {len(shards)} shards already written; writing {len(pending)}")
    jobs = [(shard, rule, os.fspath(output_dir)) for shard in pending]
    if num_proc > 1 and len(jobs) > 1:
        with multiprocessing.get_context().Pool(min(num_proc, len(jobs))) as pool:
            results = pool.imap_unordered(_write_shard_job, jobs)
            for name, count, skipped in results:
                _report_shard(log, name, count, skipped)
    else:
        for job in jobs:
            _report_shard(log, *_write_shard_job(job))

    files = [shard.name for shard in shards]
    rows = mixture_table(output_dir, files)
    manifest = {
        "format_version": FORMAT_VERSION,
        "sampling_rate": rule.sampling_rate,
        "codec": "flac/PCM_16",
        "segment_rule": asdict(rule),
        "shard_hours": shard_hours,
        "corpora": corpora,
        "shards": files,
        "table": rows,
    }
    temporary = output_dir / f"{MANIFEST_NAME}.tmp-{os.getpid()}"
    temporary.write_text(json.dumps(manifest, indent=1))
    os.replace(temporary, output_dir / MANIFEST_NAME)
    if verbose:
        print(format_table(rows))
    return rows


def corpus_options(corpus: str, options: Mapping[str, Any] | str | os.PathLike | None) -> dict:
    """One corpus's entry of the config as load_corpus options ({"data_dir": ..., loader keys}), or a `UserError`
    naming the corpus and key: an unknown corpus, a list or number where a mapping belongs, a misspelt key, an
    empty data_dir. data_dir gets ~ and $VARIABLES expanded."""
    where = f"corpora: {corpus}"
    if corpus not in corpus_names():
        raise UserError(f"unknown corpus '{corpus}'", where=where,
                        fix=f"{_did_you_mean(corpus, corpus_names())}use one of {', '.join(VOC125_CORPORA)} (or demo)")
    if isinstance(options, (str, os.PathLike)):
        options = {"data_dir": options}
    elif options is None:
        options = {}
    elif not isinstance(options, Mapping):
        raise UserError(f"a {type(options).__name__} where a mapping belongs", where=where,
                        fix=f"write '{corpus}: {{data_dir: <folder>}}' (or '{corpus}: <folder>')")
    options = dict(options)
    cls = builder_class(corpus)
    known = {"data_dir", "config"} | {item.name for item in dataclasses.fields(cls.BUILDER_CONFIG_CLASS)} - {"name", "version", "description"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserError(f"unknown key(s) {', '.join(map(str, unknown))}", where=where,
                        fix=f"{' '.join(_did_you_mean(key, known) for key in unknown)}the keys {corpus} takes are {', '.join(sorted(known))}")
    configs = [config.name for config in cls.BUILDER_CONFIGS]
    if options.get("config") is not None and configs and options["config"] not in configs:
        raise UserError(f"config '{options['config']}' does not exist", where=f"{where}: config",
                        fix=f"{_did_you_mean(options['config'], configs)}the configs of {corpus} are {', '.join(configs)}")
    data_dir = options.get("data_dir")
    if data_dir is None or (isinstance(data_dir, str) and not data_dir.strip()):
        if cls.REQUIRES_DATA_DIR:
            raise UserError("data_dir is empty", where=where, fix=f"give the folder {corpus} was unpacked into, or leave the corpus out")
        options.pop("data_dir", None)
    elif not isinstance(data_dir, (str, os.PathLike)):
        raise UserError(f"data_dir is a {type(data_dir).__name__}, not a folder name", where=where, fix="give one folder")
    else:
        options["data_dir"] = os.path.expandvars(os.path.expanduser(os.fspath(data_dir)))
        if os.path.exists(options["data_dir"]) and not os.path.isdir(options["data_dir"]):
            raise UserError("data_dir is a file, not a folder", where=f"{where}: data_dir {options['data_dir']}",
                            fix="give the folder the corpus was unpacked into")
    return options


def _did_you_mean(name: str, known) -> str:
    close = difflib.get_close_matches(str(name), sorted(map(str, known)), n=1)
    return f"'{name}': did you mean '{close[0]}'? " if close else ""


def _report_shard(log, name: str, count: int, skipped: list[str]) -> None:
    log(f"voc125: wrote {name} ({count} segments)")
    for item in skipped:
        log(f"  skipped {item}")


# ---- reading ----------------------------------------------------------------------------------------


def shard_files(output_dir: str | os.PathLike) -> list[str]:
    """The shard paths of a finished mixture, in order, from its manifest."""
    manifest_path = Path(output_dir) / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} not found: run `python -m voc2vec.mixture prepare` to completion first.")
    manifest = json.loads(manifest_path.read_text())
    return [os.fspath(Path(output_dir) / name) for name in manifest["shards"]]


def load_mixture(output_dir: str | os.PathLike, streaming: bool = False, cache_dir: str | os.PathLike | None = None):
    """The mixture as a memory-mapped `datasets.Dataset` (converted to Arrow once in the datasets cache), or,
    with `streaming=True`, an `IterableDataset` that reads the shards directly (one shard per worker/node:
    use `datasets.distributed.split_dataset_by_node`). Columns as in the module docstring."""
    files = shard_files(output_dir)
    return datasets.load_dataset(
        "parquet", data_files={"train": files}, split="train", streaming=streaming, cache_dir=os.fspath(cache_dir) if cache_dir else None
    )


def decode_segment(row: Mapping[str, Any]) -> np.ndarray:
    """A mixture row's audio as float32 mono samples at 16 kHz."""
    return decode_audio_bytes(row["audio"])


# ---- Table I ----------------------------------------------------------------------------------------


def mixture_table(output_dir: str | os.PathLike, files: Iterable[str] | None = None) -> list[dict]:
    """Table I from the written shards' metadata columns (audio is not read): per corpus and in total,
    hours, clips (distinct source files), segments, mean clip duration (kept seconds per clip) and mean
    segment duration."""
    files = [Path(output_dir) / name for name in files] if files is not None else [Path(path) for path in shard_files(output_dir)]
    seconds: dict[str, float] = {}
    clips: dict[str, set] = {}
    segments: dict[str, int] = {}
    for path in files:
        table = pq.read_table(path, columns=["corpus", "source_path", "duration"]).to_pydict()
        for corpus, source_path, duration in zip(table["corpus"], table["source_path"], table["duration"]):
            seconds[corpus] = seconds.get(corpus, 0.0) + duration
            clips.setdefault(corpus, set()).add(source_path)
            segments[corpus] = segments.get(corpus, 0) + 1
    order = [name for name in VOC125_CORPORA if name in seconds] + sorted(set(seconds) - set(VOC125_CORPORA))
    rows = [_table_row(name, seconds[name], len(clips[name]), segments[name]) for name in order]
    rows.append(_table_row("total", sum(seconds.values()), sum(len(paths) for paths in clips.values()), sum(segments.values())))
    return rows


def _table_row(corpus: str, seconds: float, clips: int, segments: int) -> dict:
    return {
        "corpus": corpus,
        "hours": round(seconds / 3600, 4),
        "clips": clips,
        "segments": segments,
        "mean_clip_seconds": round(seconds / clips, 3) if clips else 0.0,
        "mean_segment_seconds": round(seconds / segments, 3) if segments else 0.0,
    }


def format_table(rows: list[dict]) -> str:
    lines = ["| corpus | hours | clips | avg s | segments | avg segment s |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {row['corpus']} | {row['hours']:.2f} | {row['clips']} | {row['mean_clip_seconds']:.2f} | {row['segments']} | {row['mean_segment_seconds']:.2f} |"
        for row in rows
    ]
    return "\n".join(lines)


# ---- command line -----------------------------------------------------------------------------------


SETTINGS = {  # the config's top-level keys besides corpora, with the kind of value each takes
    "output_dir": str,
    "cache_dir": str,
    "num_proc": int,
    "max_segment_seconds": float,
    "min_segment_seconds": float,
    "min_clip_seconds": float,
    "shard_hours": float,
}


def read_config(path: str | os.PathLike) -> dict:
    """The mixture config, checked: a missing file, a YAML error, an unknown or misspelt key, or a value of the
    wrong kind is a `UserError` naming the file and key. Corpus entries are checked by `corpus_options`."""
    config = read_config_file(path)
    unknown = sorted(set(config) - set(SETTINGS) - {"corpora"})
    if unknown:
        known = set(SETTINGS) | {"corpora"}
        raise UserError(f"unknown key(s) {', '.join(map(str, unknown))}", where=path,
                        fix=f"{' '.join(_did_you_mean(key, known) for key in unknown)}the keys are {', '.join(sorted(known))}")
    if not isinstance(config.get("corpora"), Mapping):
        found = "no 'corpora:'" if config.get("corpora") is None else f"a {type(config['corpora']).__name__}"
        raise UserError(f"corpora: {found} where a mapping of corpus name to {{data_dir: ...}} belongs", where=path,
                        fix="write 'corpora:' followed by one indented 'name: {data_dir: <folder>}' line per corpus")
    for key, kind in SETTINGS.items():
        value = config.get(key)
        if value is None:
            continue
        if kind is str and not isinstance(value, str):
            raise UserError(f"{key}: a {type(value).__name__} where a folder name belongs", where=path, fix=f"write '{key}: <folder>'")
        if kind in (int, float):
            number = isinstance(value, int if kind is int else (int, float)) and not isinstance(value, bool)
            if not number or value <= 0:
                what = "a whole number" if kind is int else "a number"
                raise UserError(f"{key} must be {what} above 0, got {value!r}", where=path, fix=f"e.g. '{key}: {4 if kind is int else 1.0}'")
    return config


@exit_on_user_error
def main(argv: list[str] | None = None, prog: str = "python -m voc2vec.mixture") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="write (or resume writing) the mixture described by a YAML config")
    prepare.add_argument("config", help="YAML file: corpora (name -> data_dir and loader options) and settings, e.g. configs/voc125.yaml")
    prepare.add_argument("--output_dir", help="where the shards go (overrides the config's output_dir)")
    prepare.add_argument("--num_proc", type=int, help="parallel shard writers (overrides the config)")
    prepare.add_argument("--corpora", help="comma-separated subset of the config's corpora: the folder then holds the mixture of these only")
    prepare.add_argument("--cache_dir", help="datasets cache for the corpus listings (overrides the config)")
    stats = commands.add_parser("stats", help="print Table I of a written mixture")
    stats.add_argument("output_dir")
    args = parser.parse_args(argv)
    if args.command == "stats":
        try:
            print(format_table(mixture_table(args.output_dir)))
        except FileNotFoundError as error:
            raise UserError("no finished mixture there (voc125.json is written last)", where=args.output_dir,
                            fix="run `python -m voc2vec.mixture prepare` to completion first") from error
        return 0
    config = read_config(args.config)
    sources = config["corpora"]
    if args.corpora:
        wanted = [name.strip() for name in args.corpora.split(",") if name.strip()]
        unknown = sorted(set(wanted) - set(sources))
        if unknown:
            raise UserError(f"--corpora: {', '.join(unknown)} not in the config", where=args.config,
                            fix=f"choose among {', '.join(sources)}")
        sources = {name: sources[name] for name in wanted}
    if args.num_proc is not None and args.num_proc < 1:
        raise UserError(f"--num_proc must be at least 1, got {args.num_proc}", where="--num_proc", fix="pass --num_proc 1 or more")
    output_dir = os.path.expandvars(os.path.expanduser(args.output_dir or config.get("output_dir") or ""))
    if not output_dir or "$" in output_dir:
        raise UserError(f"no usable output_dir ('{output_dir}')", where=args.config,
                        fix="set output_dir in the config, pass --output_dir, or set the environment variables it uses")
    settings = {key: config[key] for key in ("max_segment_seconds", "min_segment_seconds", "min_clip_seconds", "shard_hours") if config.get(key) is not None}
    cache_dir = args.cache_dir or config.get("cache_dir")
    prepare_mixture(
        sources,
        output_dir,
        num_proc=args.num_proc or config.get("num_proc") or 1,
        cache_dir=os.path.expandvars(os.path.expanduser(cache_dir)) if cache_dir else None,
        **settings,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
