"""Trained models on new recordings: classify clips, embed clips, detect vocalizations in long recordings.

Files are read the way the rest of the toolkit reads them (`voc2vec.audio`: libsndfile + soxr, no FFmpeg), and every
clip or window is scored exactly as if it were alone: each is normalized by the feature extractor on its own, and
batches follow `voc2vec.prediction` (only equal-length clips share a batch for group-norm models), so a file gets the
same scores from `voc2vec classify`, from `run_cv.py`'s predictions and from `pipeline("audio-classification")`.

- `classify_files`: files are ordered by their header's length so that clips of equal length meet in the same chunk
  and share batches (beside a GPU, threads decode ahead of the model). Unreadable files are reported and skipped.
- `embed_files`: pooled hidden states (`voc2vec.embeddings`) of any layer or all layers.
- `detect`: sliding windows over a recording of any length, streamed from disk block by block and resampled with
  soxr's streaming resampler, so memory does not grow with the file. Each hop-long stretch of the recording gets the
  mean score of the windows around it; per class, consecutive stretches at or above the threshold form a segment.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch

from voc2vec.audio import (
    NON_FINITE,
    NON_FINITE_FIX,
    TARGET_SAMPLING_RATE,
    UNSUPPORTED_CONTAINERS,
    AudioDecodeError,
    open_error,
    audio_info,
    load_audio,
    to_mono,
)
from voc2vec.collate import AudioCollator
from voc2vec.errors import UserError
from voc2vec.prediction import pads_exactly, predict_logits

# What a folder is searched for. Containers libsndfile cannot read are included so that they are reported (with the
# conversion command) instead of silently ignored.
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".caf", ".au", ".w64"}
AUDIO_EXTENSIONS |= {suffix for suffix in UNSUPPORTED_CONTAINERS if suffix.count(".") == 1}
CHUNK_SAMPLES = 2**24  # decoded audio scored at a time (about 17 minutes at 16 kHz, 64 MiB)
DECODE_AHEAD = 64  # files decoded ahead of the model at most


@dataclass
class SkippedFile:
    path: str
    reason: str


# ---------------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------------


def find_audio_files(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Files named on the command line as they are, and the audio files below every folder named (recursively,
    sorted). A name that does not exist stays in the list: decoding reports it as "file not found"."""
    files: list[str] = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = []
            for directory, subdirs, names in os.walk(item):
                subdirs.sort()
                found += [os.path.join(directory, name) for name in sorted(names) if Path(name).suffix.lower() in AUDIO_EXTENSIONS]
            files += found
        else:
            files.append(item)
    seen = set()
    return [path for path in files if not (path in seen or seen.add(path))]


def decode_ahead(
    paths: Sequence[str], sampling_rate: int, max_seconds: float | None = None, threads: int = 0, ahead: int = DECODE_AHEAD
) -> Iterator[tuple[int, np.ndarray | AudioDecodeError]]:
    """`(position, samples or the AudioDecodeError)` for every path, in order.

    `threads=0` decodes in the calling thread: right on CPU, where decoding is a few percent of the model's time and a
    decoding thread only competes with torch's own threads (it made CPU scoring several times slower). With a GPU,
    `threads` threads decode at most `ahead` files ahead of the model (libsndfile and soxr release the GIL).
    """

    def decode(path: str) -> np.ndarray | AudioDecodeError:
        try:
            return load_audio(path, sampling_rate, duration=max_seconds)
        except AudioDecodeError as error:
            return error

    if threads <= 0:
        for position, path in enumerate(paths):
            yield position, decode(path)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque = deque()
        upcoming = iter(enumerate(paths))
        for position, path in upcoming:
            pending.append((position, pool.submit(decode, path)))
            if len(pending) >= ahead:
                break
        while pending:
            position, future = pending.popleft()
            following = next(upcoming, None)
            if following is not None:
                pending.append((following[0], pool.submit(decode, following[1])))
            yield position, future.result()


def decode_threads_for(device: torch.device | str) -> int:
    """Decoding threads worth running beside the model: none on CPU (see `decode_ahead`), a few beside a GPU."""
    return 0 if torch.device(device).type == "cpu" else min(4, os.cpu_count() or 1)


def length_order(paths: Sequence[str]) -> list[int]:
    """Positions ordered by the length the header announces (unreadable headers first): equal-length clips then meet
    in the same chunk, where they can share a batch."""

    def key(position: int):
        try:
            info = audio_info(paths[position])
            return (info.frames * TARGET_SAMPLING_RATE / info.sampling_rate, position)
        except AudioDecodeError:
            return (-1.0, position)

    return sorted(range(len(paths)), key=key)


def decoded_chunks(
    paths: Sequence[str],
    sampling_rate: int,
    max_seconds: float | None,
    skipped: list[SkippedFile],
    threads: int = 0,
    chunk_samples: int = CHUNK_SAMPLES,
) -> Iterator[list[tuple[int, np.ndarray]]]:
    """Decoded clips `(position in paths, samples)` in chunks of about `chunk_samples`, in header-length order; files
    that fail to decode go to `skipped` instead."""
    order = length_order(paths)
    chunk, samples = [], 0
    for rank, decoded in decode_ahead([paths[position] for position in order], sampling_rate, max_seconds, threads):
        position = order[rank]
        if isinstance(decoded, AudioDecodeError):
            skipped.append(SkippedFile(paths[position], decoded.reason))
            continue
        chunk.append((position, decoded))
        samples += len(decoded)
        if samples >= chunk_samples:
            yield chunk
            chunk, samples = [], 0
    if chunk:
        yield chunk


# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_classifier(model_name_or_path: str | os.PathLike, device: str | None = None):
    """`(model, feature_extractor)` of a saved audio classifier (a folder left by run_cv.py or run_classification.py,
    or a Hub id), in eval mode. A folder that is not a classifier is a `UserError`."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    import voc2vec.heads  # noqa: F401  (registers the voc2vec heads with the Auto classes)

    source = os.fspath(model_name_or_path)
    try:
        model = AutoModelForAudioClassification.from_pretrained(source)
        feature_extractor = AutoFeatureExtractor.from_pretrained(source)
    except (OSError, ValueError, KeyError) as error:
        raise UserError(
            f"cannot load an audio classifier from '{source}': {str(error).strip().splitlines()[0]}", where="--model",
            fix="pass a model folder left by run_cv.py (output_dir/model) or run_classification.py (output_dir), or a Hub id "
            "of an audio-classification model",
        ) from error
    return model.to(device or default_device()).eval(), feature_extractor


def classifier_collator(model, feature_extractor) -> AudioCollator:
    """The collator scoring uses: voc2vec's heads also get each clip's true length (they pool over true frames)."""
    from voc2vec.heads import AudioLSTMHeadConfig

    return AudioCollator(feature_extractor, return_input_lengths=isinstance(model.config, AudioLSTMHeadConfig))


def label_names(model) -> list[str]:
    return [str(model.config.id2label[index]) for index in range(model.config.num_labels)]


def is_regression(model) -> bool:
    return getattr(model.config, "problem_type", None) == "regression"


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {batch_size}", where="--batch_size", fix="pass 1 or more")


# ---------------------------------------------------------------------------------------------------------------------
# classify
# ---------------------------------------------------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(np.asarray(logits, dtype=np.float32)), dim=-1).numpy()


def classification_rows(paths: Sequence[str], outputs: np.ndarray, names: Sequence[str], top_k: int, regression: bool) -> list[dict]:
    """One row per clip: `path`, `label`, `score` (top 1), `label_2`, `score_2`, ... up to `top_k`, then `prob_<class>`
    for every class; a regression model gives `prediction_<target>` instead."""
    rows = []
    for path, output in zip(paths, outputs):
        row = {"path": path}
        if regression:
            row.update({f"prediction_{name}": float(value) for name, value in zip(names, output)})
        else:
            ranked = np.argsort(-output, kind="stable")[:top_k]
            for rank, class_id in enumerate(ranked, start=1):
                suffix = "" if rank == 1 else f"_{rank}"
                row[f"label{suffix}"] = names[class_id]
                row[f"score{suffix}"] = float(output[class_id])
            row.update({f"prob_{name}": float(value) for name, value in zip(names, output)})
        rows.append(row)
    return rows


def classify_files(
    paths: Sequence[str],
    model,
    feature_extractor,
    batch_size: int = 8,
    top_k: int = 1,
    max_seconds: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict], list[SkippedFile]]:
    """Score every file (see `classification_rows` for the row's keys); rows follow `paths`' order, files that cannot
    be decoded are returned as skipped. Probabilities are the softmax of the logits."""
    check_batch_size(batch_size)
    names = label_names(model)
    regression = is_regression(model)
    if not regression and not 1 <= top_k <= len(names):
        raise UserError(f"--top_k must be between 1 and the model's {len(names)} classes, got {top_k}", where="--top_k",
                        fix=f"pass a value from 1 to {len(names)}")
    collator = classifier_collator(model, feature_extractor)
    may_pad = pads_exactly(model.config, feature_extractor)
    outputs: dict[int, np.ndarray] = {}
    skipped: list[SkippedFile] = []
    threads = decode_threads_for(next(model.parameters()).device)
    for chunk in decoded_chunks(paths, feature_extractor.sampling_rate, max_seconds, skipped, threads):
        items = [{"input_values": samples} for _, samples in chunk]
        logits = predict_logits(model, items, collator, [len(samples) for _, samples in chunk], batch_size, may_pad, progress)
        scores = logits if regression else softmax(logits)
        outputs.update({position: row for (position, _), row in zip(chunk, scores)})
    if progress is not None and skipped:
        progress(len(skipped))
    kept = sorted(outputs)
    rows = classification_rows([paths[position] for position in kept], [outputs[position] for position in kept], names, top_k, regression)
    return rows, skipped


def write_rows(path: str | os.PathLike, rows: list[dict], columns: Sequence[str] | None = None) -> None:
    """`.csv` (header `columns`, by default the first row's keys) or `.jsonl` (one JSON object per line), through a
    temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        if path.suffix == ".jsonl":
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(handle, fieldnames=list(columns or (rows[0] if rows else ["path"])))
            writer.writeheader()
            writer.writerows(rows)
    temporary.replace(path)


def write_skipped(output: str | os.PathLike, skipped: list[SkippedFile]) -> Path | None:
    """`<output>.skipped.csv` (path, reason) beside the results when files were skipped; an old one is removed."""
    report = Path(output).with_name(Path(output).name + ".skipped.csv")
    report.unlink(missing_ok=True)
    if not skipped:
        return None
    report.parent.mkdir(parents=True, exist_ok=True)
    with open(report, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "reason"])
        writer.writerows((item.path, item.reason) for item in skipped)
    return report


# ---------------------------------------------------------------------------------------------------------------------
# embed
# ---------------------------------------------------------------------------------------------------------------------


def embed_files(
    paths: Sequence[str],
    encoder,
    feature_extractor,
    layers: Sequence[int],
    pooling: str = "mean",
    batch_size: int = 8,
    max_seconds: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[str], np.ndarray, list[SkippedFile]]:
    """`(kept paths, embeddings (files, layers, dim), skipped)`; rows follow `paths`' order."""
    from voc2vec.embeddings import pooled_hidden_states

    check_batch_size(batch_size)
    collator = AudioCollator(feature_extractor, return_input_lengths=True)
    may_pad = pads_exactly(encoder.config, feature_extractor)
    vectors: dict[int, np.ndarray] = {}
    skipped: list[SkippedFile] = []
    threads = decode_threads_for(next(encoder.parameters()).device)
    for chunk in decoded_chunks(paths, feature_extractor.sampling_rate, max_seconds, skipped, threads):
        items = [{"input_values": samples} for _, samples in chunk]
        pooled = pooled_hidden_states(
            encoder, items, collator, [len(samples) for _, samples in chunk], batch_size, may_pad, layers, pooling, progress
        )
        vectors.update({position: row for (position, _), row in zip(chunk, pooled)})
    if progress is not None and skipped:
        progress(len(skipped))
    kept = sorted(vectors)
    width = encoder.config.hidden_size * (2 if pooling == "mean+std" else 1)
    array = np.stack([vectors[position] for position in kept]) if kept else np.zeros((0, len(layers), width), np.float32)
    return [paths[position] for position in kept], array, skipped


def file_list_path(output: str | os.PathLike) -> Path:
    """The `.npy` output's sibling file list: `embeddings.npy` -> `embeddings.files.txt` (one path per row)."""
    output = Path(output)
    return output.with_name(output.stem + ".files.txt")


def write_embeddings(output: str | os.PathLike, paths: list[str], vectors: np.ndarray, layers: Sequence[int], metadata: dict) -> None:
    """`.npy`: `(files, dim)` for one layer, `(files, layers, dim)` for several, plus `<stem>.files.txt`; `.parquet`:
    a `path` column and one `layer_<i>` list column per layer, with `metadata` in the file's schema metadata."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.stem + ".tmp" + output.suffix)
    if output.suffix == ".npy":
        np.save(temporary, vectors[:, 0] if len(layers) == 1 else vectors)
        listing = file_list_path(output)
        listing_temporary = listing.with_name(listing.name + ".tmp")
        listing_temporary.write_text("".join(f"{path}\n" for path in paths), encoding="utf-8")
        listing_temporary.replace(listing)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        width = vectors.shape[-1]
        columns = {"path": pa.array(paths, pa.string())}
        for column, layer in enumerate(layers):
            flat = pa.array(np.ascontiguousarray(vectors[:, column]).reshape(-1), pa.float32())
            columns[f"layer_{layer}"] = pa.FixedSizeListArray.from_arrays(flat, width)
        table = pa.table(columns).replace_schema_metadata({"voc2vec": json.dumps(metadata)})
        pq.write_table(table, temporary)
    temporary.replace(output)


# ---------------------------------------------------------------------------------------------------------------------
# detect
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Window:
    start: int  # first sample (at the model's sampling rate)
    samples: np.ndarray

    @property
    def end(self) -> int:
        return self.start + len(self.samples)


def stream_windows(
    path: str | os.PathLike, window: int, hop: int, sampling_rate: int = TARGET_SAMPLING_RATE, block_seconds: float = 20.0
) -> Iterator[Window]:
    """Windows of `window` samples every `hop` samples over the whole recording, read block by block and resampled
    with soxr's streaming resampler: memory holds one block and one window, whatever the file's length.

    The recording's end is covered by one last window ending exactly there (`[end - window, end]`, a full-length window
    off the hop grid); a recording shorter than `window` is one window of its own length. Raises `AudioDecodeError`.
    """
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() in UNSUPPORTED_CONTAINERS:
        raise open_error(path, RuntimeError("unsupported container"))
    try:
        sound = soundfile.SoundFile(path)
    except Exception as error:  # libsndfile raises LibsndfileError/RuntimeError/TypeError by format
        raise open_error(path, error) from error
    with sound:
        file_rate = sound.samplerate
        resampler = None if file_rate == sampling_rate else soxr.ResampleStream(file_rate, sampling_rate, 1, dtype="float32", quality="HQ")
        block_frames = max(1, int(block_seconds * file_rate))
        buffer = np.zeros(0, dtype=np.float32)  # samples from `buffer_start` on
        buffer_start = next_start = 0
        last_end = 0
        finished = False
        while not finished:
            try:
                block = sound.read(block_frames, dtype="float32", always_2d=True)
            except Exception as error:
                raise AudioDecodeError(path, f"unreadable or corrupt audio after {(buffer_start + len(buffer)) / sampling_rate:.1f} s ({error})",
                                       fix="re-export or download the file again") from error
            finished = len(block) < block_frames
            samples = to_mono(block) if len(block) else np.zeros(0, dtype=np.float32)
            if not np.isfinite(samples).all():
                raise AudioDecodeError(path, NON_FINITE, fix=NON_FINITE_FIX)
            if resampler is not None:
                samples = resampler.resample_chunk(samples, last=finished)
            buffer = np.concatenate([buffer, samples.astype(np.float32, copy=False)])
            while next_start + window <= buffer_start + len(buffer):
                offset = next_start - buffer_start
                yield Window(next_start, buffer[offset : offset + window].copy())
                last_end = next_start + window
                next_start += hop
            # Keep the last `window` samples: the final window, ending at the recording's end, may reach back into them.
            drop = min(next_start - buffer_start, len(buffer) - window)
            if drop > 0 and not finished:
                buffer, buffer_start = buffer[drop:], buffer_start + drop
        total = buffer_start + len(buffer)
        if total == 0:
            raise AudioDecodeError(path, "zero length: the file holds no samples")
        if total > last_end:  # the end the hop grid did not reach, or a recording shorter than one window
            start = max(0, total - window)
            yield Window(start, buffer[start - buffer_start :].copy())


@dataclass
class DetectionResult:
    duration: float  # seconds
    hop: float
    labels: list[str]
    stretch_scores: np.ndarray  # (stretches, classes): mean score of the windows around each hop-long stretch
    segments: list[dict] = field(default_factory=list)
    windows: int = 0


class StretchScores:
    """Each hop-long stretch `[k * hop, (k + 1) * hop)` of the recording collects the scores of the windows that contain
    its centre; its score is their mean. Grows by a few bytes per stretch (not with the audio)."""

    def __init__(self, hop: int, num_classes: int):
        self.hop = hop
        self.sums = np.zeros((0, num_classes), dtype=np.float64)
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, start: int, end: int, scores: np.ndarray) -> None:
        # centre of stretch k: (k + 1/2) * hop; the window [start, end) holds the centres of stretches first..last
        first = max(0, math.ceil(start / self.hop - 0.5))
        last = math.ceil(end / self.hop - 0.5) - 1
        if last < first:  # a window shorter than one stretch still scores the stretch it lies in
            first = last = start // self.hop
        if last >= len(self.counts):
            grow = max(last + 1, 2 * len(self.counts)) - len(self.counts)
            self.sums = np.concatenate([self.sums, np.zeros((grow, self.sums.shape[1]))])
            self.counts = np.concatenate([self.counts, np.zeros(grow, dtype=np.int64)])
        self.sums[first : last + 1] += scores
        self.counts[first : last + 1] += 1

    def mean(self, total_samples: int) -> np.ndarray:
        """Scores of the stretches whose centre lies in the recording (a last sliver shorter than half a hop has none
        of its own: the stretch before it extends to the end)."""
        stretches = max(1, math.ceil(total_samples / self.hop - 0.5))
        sums = np.zeros((stretches, self.sums.shape[1]))
        counts = np.zeros(stretches, dtype=np.int64)
        kept = min(stretches, len(self.counts))
        sums[:kept], counts[:kept] = self.sums[:kept], self.counts[:kept]
        return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


def merge_segments(stretch_scores: np.ndarray, labels: Sequence[str], hop_seconds: float, duration: float, threshold: float) -> list[dict]:
    """Per class, runs of consecutive stretches whose score is >= `threshold`: `{start, end, label, score}` in seconds,
    `score` being the highest stretch score of the run; sorted by start time, then label."""
    segments = []
    for class_id, label in enumerate(labels):
        above = np.concatenate([[False], stretch_scores[:, class_id] >= threshold, [False]])
        edges = np.flatnonzero(np.diff(above.astype(np.int8)))
        for first, stop in zip(edges[::2], edges[1::2]):
            segments.append({
                "start": round(first * hop_seconds, 3),
                "end": round(duration if stop == len(stretch_scores) else stop * hop_seconds, 3),
                "label": label,
                "score": float(stretch_scores[first:stop, class_id].max()),
            })
    return sorted(segments, key=lambda segment: (segment["start"], segment["label"]))


def detect(
    path: str | os.PathLike,
    model,
    feature_extractor,
    output_dir: str | os.PathLike,
    window: float = 2.0,
    hop: float = 0.5,
    threshold: float = 0.5,
    batch_size: int = 16,
    progress: Callable[[float], None] | None = None,
    plot: bool = True,
) -> DetectionResult:
    """Score windows over `path`, write `scores.csv` (one row per window: start, end, label, score, prob_<class>),
    `segments.csv` (start, end, label, score) and `timeline.png` to `output_dir`; return the result.

    `progress(seconds)` is called with the seconds of audio newly covered after each batch.
    """
    if is_regression(model):
        raise UserError("detect needs a classifier; this model is a regression model", where="--model",
                        fix="use `voc2vec classify` on clips for regression outputs")
    check_batch_size(batch_size)
    if not 0 < hop <= window:
        raise UserError(f"need 0 < --hop <= --window (got --window {window}, --hop {hop}): a longer hop leaves audio unscored",
                        where="--window/--hop", fix="pass a hop of at most the window, e.g. --window 2 --hop 0.5")
    if not 0 <= threshold <= 1:
        raise UserError(f"--threshold is a probability, got {threshold}", where="--threshold", fix="pass a value from 0 to 1")
    rate = feature_extractor.sampling_rate
    window_samples, hop_samples = max(1, round(window * rate)), max(1, round(hop * rate))
    names = label_names(model)
    collator = classifier_collator(model, feature_extractor)
    may_pad = pads_exactly(model.config, feature_extractor)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    scores_path = output_dir / "scores.csv"
    temporary = scores_path.with_name("scores.csv.tmp")
    stretches = StretchScores(hop_samples, len(names))
    covered = 0
    count = 0

    def score(batch: list[Window], writer) -> None:
        nonlocal covered, count
        items = [{"input_values": item.samples} for item in batch]
        probabilities = softmax(predict_logits(model, items, collator, [len(item.samples) for item in batch], batch_size, may_pad))
        for item, row in zip(batch, probabilities):
            stretches.add(item.start, item.end, row)
            best = int(row.argmax())
            writer.writerow([f"{item.start / rate:.3f}", f"{item.end / rate:.3f}", names[best], f"{row[best]:.6f}", *(f"{value:.6f}" for value in row)])
        count += len(batch)
        if progress is not None:
            end = max(item.end for item in batch)
            progress((end - covered) / rate)
            covered = end

    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start", "end", "label", "score", *(f"prob_{name}" for name in names)])
        batch: list[Window] = []
        total_samples = 0
        for item in stream_windows(path, window_samples, hop_samples, rate):
            batch.append(item)
            total_samples = max(total_samples, item.end)
            if len(batch) == batch_size:
                score(batch, writer)
                batch = []
        if batch:
            score(batch, writer)
    temporary.replace(scores_path)

    duration = total_samples / rate
    stretch_scores = stretches.mean(total_samples)
    segments = merge_segments(stretch_scores, names, hop_samples / rate, duration, threshold)
    write_rows(output_dir / "segments.csv", segments, columns=["start", "end", "label", "score"])
    result = DetectionResult(duration, hop_samples / rate, names, stretch_scores, segments, count)
    if plot:
        plot_timeline(result, threshold, output_dir / "timeline.png", title=Path(path).name)
    return result


def plot_timeline(result: DetectionResult, threshold: float, path: str | os.PathLike, title: str = "") -> None:
    """Class scores over time (one line per class), the threshold, and the segments as shaded spans below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale, unit = (3600.0, "h") if result.duration > 3 * 3600 else (60.0, "min") if result.duration > 180 else (1.0, "s")
    times = (np.arange(len(result.stretch_scores)) + 0.5) * result.hop / scale
    colors = plt.get_cmap("tab10" if len(result.labels) <= 10 else "tab20")
    figure, (scores_axis, segments_axis) = plt.subplots(
        2, 1, figsize=(12, 4 + 0.25 * len(result.labels)), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    for class_id, label in enumerate(result.labels):
        scores_axis.plot(times, result.stretch_scores[:, class_id], color=colors(class_id % colors.N), linewidth=0.8, label=label)
    scores_axis.axhline(threshold, color="black", linestyle="--", linewidth=0.8, label=f"threshold {threshold:g}")
    scores_axis.set_ylim(0, 1)
    scores_axis.set_ylabel("score")
    scores_axis.legend(loc="upper right", fontsize="small", ncol=max(1, len(result.labels) // 8))
    scores_axis.set_title(title)
    for segment in result.segments:
        class_id = result.labels.index(segment["label"])
        segments_axis.axvspan(segment["start"] / scale, segment["end"] / scale, ymin=class_id / len(result.labels),
                              ymax=(class_id + 1) / len(result.labels), color=colors(class_id % colors.N))
    segments_axis.set_yticks((np.arange(len(result.labels)) + 0.5) / len(result.labels), result.labels, fontsize="small")
    segments_axis.set_ylim(0, 1)
    segments_axis.set_xlim(0, result.duration / scale)
    segments_axis.set_xlabel(f"time ({unit})")
    figure.tight_layout()
    temporary = Path(path).with_name(Path(path).stem + ".tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)
