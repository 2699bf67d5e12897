"""Decode + resample throughput of `load_audio`, and read speed of the decode-once cache.

For each format the corpora ship (8 kHz wav as Donate A Cry, 44.1 kHz stereo wav as the Human Voice
Dataset, flac, ogg vorbis) it writes test clips, then times `load_audio(path, 16000)` against the naive
way, `librosa.load(path, sr=16000)`, in the same run on the same files, on one core. Throughput is given
as times real time (seconds of audio per second of wall time). The cache part times one pass over a
decoded corpus against decoding its original files again, as an epoch of fine-tuning would.

The probe part times what corpus preparation runs on every file, `audio_info`, against a header-only read
(`soundfile.info`, what the probe did before it checked floating-point files for NaN/Inf): on the real Donate
A Cry copy (16-bit PCM: still header-only) and on a folder of float32 wav files (their samples are read).

    python benchmarks/bench_audio.py [--output benchmarks/results/audio.json] [--seconds 120] [--probe_only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target says

import librosa
import numpy as np
import soundfile

from voc2vec.audio import audio_info, load_audio
from voc2vec.cache import decode_corpus
from voc2vec.corpora import load_corpus

FORMATS = {
    "wav_8k_mono": {"rate": 8000, "channels": 1, "suffix": ".wav", "options": {"subtype": "PCM_16"}},
    "wav_44k_stereo": {"rate": 44100, "channels": 2, "suffix": ".wav", "options": {"subtype": "PCM_16"}},
    "flac_44k_mono": {"rate": 44100, "channels": 1, "suffix": ".flac", "options": {}},
    "ogg_vorbis_44k_mono": {"rate": 44100, "channels": 1, "suffix": ".ogg", "options": {"subtype": "VORBIS"}},
}
CLIP_SECONDS = 7.0  # a Donate A Cry clip
DONATEACRY = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "donateacry-corpus" / "donateacry_corpus_cleaned_and_updated_data"


def write_clips(folder: Path, spec: dict, total_seconds: float, rng: np.random.Generator) -> list[Path]:
    paths = []
    for index in range(max(1, int(total_seconds / CLIP_SECONDS))):
        frames = int(spec["rate"] * CLIP_SECONDS)
        noise = rng.normal(0, 0.1, (frames, spec["channels"])).astype(np.float32).squeeze()
        path = folder / f"clip{index:04d}{spec['suffix']}"
        soundfile.write(path, noise, spec["rate"], **spec["options"])
        paths.append(path)
    return paths


def times_real_time(decode, paths: list[Path], audio_seconds: float, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for path in paths:
            decode(path)
        best = min(best, time.perf_counter() - start)
    return audio_seconds / best


def bench_formats(folder: Path, total_seconds: float) -> dict:
    rng = np.random.default_rng(0)
    results = {}
    for name, spec in FORMATS.items():
        subfolder = folder / name
        subfolder.mkdir()
        paths = write_clips(subfolder, spec, total_seconds, rng)
        audio_seconds = len(paths) * CLIP_SECONDS
        voc2vec_speed = times_real_time(lambda p: load_audio(p, 16000), paths, audio_seconds)
        librosa_speed = times_real_time(lambda p: librosa.load(p, sr=16000, mono=True), paths, audio_seconds)
        results[name] = {
            "audio_seconds": audio_seconds,
            "load_audio_x_real_time": round(voc2vec_speed, 1),
            "librosa_load_x_real_time": round(librosa_speed, 1),
            "speedup_vs_librosa": round(voc2vec_speed / librosa_speed, 2),
        }
        print(f"{name:22s} load_audio {voc2vec_speed:8.0f}x real time   librosa.load {librosa_speed:8.0f}x")
    return results


def bench_cache(folder: Path, total_seconds: float) -> dict:
    """One epoch over the decode-once cache against decoding the originals again."""
    corpus = folder / "cries"
    spec = FORMATS["wav_8k_mono"]
    rng = np.random.default_rng(1)
    for class_name in ["belly_pain", "burping", "discomfort", "hungry", "tired"]:
        (corpus / class_name).mkdir(parents=True)
    clips = max(5, int(total_seconds / CLIP_SECONDS))
    for index in range(clips):
        class_name = sorted(os.listdir(corpus))[index % 5]
        noise = rng.normal(0, 0.1, int(spec["rate"] * CLIP_SECONDS)).astype(np.float32)
        name = f"{index:08d}-0000-4000-8000-000000000000-1430000000-1.0-m-04-hu.wav"
        soundfile.write(corpus / class_name / name, noise, spec["rate"])
    dataset = load_corpus("donateacry", data_dir=corpus, cache_dir=folder / "hf", verbose=False)

    start = time.perf_counter()
    decoded = decode_corpus(dataset, cache_dir=folder / "decoded")
    build_seconds = time.perf_counter() - start

    def read_epoch():
        start = time.perf_counter()
        total = sum(len(row["audio"]) for row in decoded.with_format("numpy"))
        return time.perf_counter() - start, total

    read_epoch()  # page cache warm, as in every epoch after the first
    read_seconds, samples = min(read_epoch() for _ in range(3))
    start = time.perf_counter()
    for path in dataset["path"]:
        load_audio(path, 16000)
    redecode_seconds = time.perf_counter() - start
    audio_seconds = samples / 16000
    print(f"cache: epoch read {audio_seconds / read_seconds:.0f}x real time, re-decoding {audio_seconds / redecode_seconds:.0f}x")
    return {
        "clips": len(dataset),
        "audio_seconds": audio_seconds,
        "cache_build_seconds": round(build_seconds, 3),
        "cache_epoch_read_x_real_time": round(audio_seconds / read_seconds, 1),
        "redecode_epoch_x_real_time": round(audio_seconds / redecode_seconds, 1),
        "speedup_vs_redecode": round(redecode_seconds / read_seconds, 2),
    }


def time_probe(probe, paths: list[Path], repeats: int = 3) -> float:
    """Best wall time of probing every file once (the page cache is warm after the first pass, as for a rerun)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for path in paths:
            probe(path)
        best = min(best, time.perf_counter() - start)
    return best


def probe_row(paths: list[Path]) -> dict:
    audio_seconds = sum(soundfile.info(path).duration for path in paths)
    header = time_probe(soundfile.info, paths)
    probe = time_probe(audio_info, paths)
    print(f"probe of {len(paths)} files: header only {1000 * header / len(paths):.3f} ms/file, audio_info {1000 * probe / len(paths):.3f} ms/file")
    return {
        "files": len(paths),
        "audio_seconds": round(audio_seconds, 1),
        "header_only_ms_per_file": round(1000 * header / len(paths), 3),
        "audio_info_ms_per_file": round(1000 * probe / len(paths), 3),
        "audio_info_x_real_time": round(audio_seconds / probe, 1),
        "slowdown_vs_header_only": round(probe / header, 2),
    }


def bench_probe(folder: Path, clips: int) -> dict:
    """Preparation's per-file probe: header-only for integer PCM, a full read of floating-point files."""
    results = {}
    if DONATEACRY.is_dir():
        results["donateacry_real_copy_pcm16_8k"] = probe_row(sorted(DONATEACRY.rglob("*.wav")))
    rng = np.random.default_rng(2)
    floats = folder / "float_wavs"
    floats.mkdir()
    for index in range(clips):
        soundfile.write(floats / f"clip{index:04d}.wav", rng.normal(0, 0.1, int(16000 * CLIP_SECONDS)).astype(np.float32), 16000, subtype="FLOAT")
    results["float32_wav_16k_7s"] = probe_row(sorted(floats.glob("*.wav")))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="benchmarks/results/audio.json")
    parser.add_argument("--seconds", type=float, default=210.0, help="audio seconds per format")
    parser.add_argument("--probe_only", action="store_true", help="measure only the probe; keep the other results in --output")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        if args.probe_only and Path(args.output).is_file():
            results = json.loads(Path(args.output).read_text())
        else:
            results = {
                "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version(), "threads": 1},
                "target": "load_audio >= 300x real time on one core for 8 kHz wav to 16 kHz",
                "formats": bench_formats(folder, args.seconds),
                "cache": bench_cache(folder, args.seconds * 4),
            }
            results["target_met"] = results["formats"]["wav_8k_mono"]["load_audio_x_real_time"] >= 300
        results["probe"] = bench_probe(folder, clips=max(5, int(args.seconds * 4 / CLIP_SECONDS)))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
