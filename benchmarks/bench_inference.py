"""Inference throughput: `voc2vec classify` against a loop over transformers' pipeline, and `voc2vec detect` on a long
recording (times real time and peak memory against the recording's length).

classify: the same files, the same saved model, the same answers (checked), both ways in one process, alternated so
that any outside load falls on both alike; each way's time includes loading the model. The pipeline gets the arrays
`voc2vec.audio.load_audio` decodes (its own file decoding needs FFmpeg), one recording per call, as its
documentation shows. Three file sets:
- `equal_2s`: 2 s clips (fixed-length segments, as a detector or a corpus of fixed-length clips produces);
- `varied_0.5-4s`: every clip another length (the demo corpus's range), tiny wav2vec 2.0 with group norm: such a
  model's scores depend on padding, so each clip runs alone both ways;
- `varied_0.5-4s_layer_norm`: the same clips, a tiny layer-norm wav2vec 2.0 trained with attention masks (like
  wav2vec 2.0 large-lv60 or WavLM), which `voc2vec classify` batches by sorted length.

detect: a 10-minute and a 1-hour 16 kHz FLAC recording, each in a fresh process: wall time, times real time, peak
resident memory, and the growth of resident memory from before `detect` to its peak.

Thread settings: classify is measured with one torch thread and with torch's default (one per core); detect with one
thread, and the 1-hour recording also with the default. On a machine whose cores other jobs keep busy, torch's
OpenMP threads spin-wait for each other and a multi-threaded run gets several times slower with the others' load
(measured: detect at 87x real time with one thread against 18x with two, in the same minute), so the one-thread
figures are the stable ones there; batching gains more with several threads (a one-clip forward pass does not keep
two threads busy). The load average is recorded with each measurement.

    python benchmarks/bench_inference.py [--output benchmarks/results/inference.json] [--files 200] [--hours 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

ROOT = Path(__file__).resolve().parent.parent
TINY_MODEL = ROOT / "configs" / "models" / "tiny-wav2vec2.json"
LABELS = ["laugh", "cry", "scream", "sigh", "cough", "gasp"]


def save_model(folder: Path, layer_norm: bool) -> Path:
    from transformers import AutoConfig, AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(TINY_MODEL, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                                        label2id={name: index for index, name in enumerate(LABELS)})
    if layer_norm:
        config.update({"feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True})
    AutoModelForAudioClassification.from_config(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=layer_norm).save_pretrained(folder)
    return folder


def write_clips(folder: Path, durations: list[float], seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, seconds in enumerate(durations):
        path = folder / f"clip{index:04d}.wav"
        samples = int(seconds * 16000)
        tone = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 900) * np.arange(samples) / 16000) + 0.05 * rng.standard_normal(samples)
        soundfile.write(path, tone.astype(np.float32), 16000, subtype="PCM_16")
        paths.append(str(path))
    return paths


def time_classify(model_dir: Path, folder: Path, output: Path) -> float:
    from voc2vec.cli import main

    start = time.perf_counter()
    assert main(["classify", str(folder), "--model", str(model_dir), "--output", str(output), "--batch_size", "16", "--quiet",
                 "--threads", str(torch.get_num_threads())]) == 0  # the command sets torch's threads itself
    return time.perf_counter() - start


def time_pipeline_loop(model_dir: Path, paths: list[str]) -> tuple[float, dict]:
    from transformers import pipeline

    from voc2vec.audio import load_audio

    start = time.perf_counter()
    classify = pipeline("audio-classification", model=str(model_dir), device="cpu")
    scores = {}
    for path in paths:
        result = classify({"raw": load_audio(path), "sampling_rate": 16000}, top_k=None)
        scores[path] = {item["label"]: item["score"] for item in result}
    return time.perf_counter() - start, scores


def compare_classify(name: str, model_dir: Path, paths: list[str], work: Path, repeats: int) -> dict:
    import pandas as pd

    toolkit, naive = [], []
    for repeat in range(repeats):  # alternated, so outside load falls on both ways alike
        toolkit.append(time_classify(model_dir, Path(paths[0]).parent, work / f"{name}.csv"))
        seconds, reference = time_pipeline_loop(model_dir, paths)
        naive.append(seconds)
    table = pd.read_csv(work / f"{name}.csv")
    difference = max(abs(row[f"prob_{label}"] - reference[row["path"]][label]) for _, row in table.iterrows() for label in LABELS)
    audio_seconds = sum(soundfile.info(path).duration for path in paths)
    best_toolkit, best_naive = min(toolkit), min(naive)
    return {
        "files": len(paths),
        "audio_seconds": round(audio_seconds, 1),
        "voc2vec_classify_files_per_s": round(len(paths) / best_toolkit, 1),
        "pipeline_loop_files_per_s": round(len(paths) / best_naive, 1),
        "speedup": round(best_naive / best_toolkit, 2),
        "seconds_each_run": {"voc2vec_classify": [round(value, 2) for value in toolkit], "pipeline_loop": [round(value, 2) for value in naive]},
        "max_probability_difference": float(f"{difference:.2e}"),
    }


DETECT_CHILD = """
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[4]))
import voc2vec.cli
from voc2vec.inference import detect, load_classifier
voc2vec.cli.quiet_transformers()
model, feature_extractor = load_classifier(sys.argv[2], "cpu")
def status_mib(field):  # VmHWM, not ru_maxrss: after fork + exec, ru_maxrss still counts the parent's pages
    line = next(line for line in open("/proc/self/status") if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024
before = status_mib("VmRSS")
start = time.perf_counter()
result = detect(sys.argv[1], model, feature_extractor, sys.argv[3], window=2.0, hop=0.5, threshold=0.5, batch_size=16)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "duration": result.duration, "windows": result.windows,
                  "rss_before_detect_mib": before, "peak_rss_mib": status_mib("VmHWM")}))
"""


def write_recording(path: Path, seconds: int, seed: int = 0) -> None:
    """A 16 kHz FLAC of noise with a 1 s tone every 10 s, written a minute at a time."""
    rng = np.random.default_rng(seed)
    with soundfile.SoundFile(path, "w", 16000, 1, format="FLAC", subtype="PCM_16") as sound:
        for minute in range(0, seconds, 60):
            length = min(60, seconds - minute) * 16000
            block = 0.02 * rng.standard_normal(length)
            for second in range(0, length // 16000, 10):
                block[second * 16000 : (second + 1) * 16000] += 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
            sound.write(block.astype(np.float32))


def run_detect(recording: Path, model_dir: Path, output_dir: Path, threads: int) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    load = os.getloadavg()[0]
    result = subprocess.run([sys.executable, "-c", DETECT_CHILD, str(recording), str(model_dir), str(output_dir), str(threads)],
                            capture_output=True, text=True, env=env, check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "recording_seconds": round(measured["duration"], 1),
        "windows": measured["windows"],
        "wall_seconds": round(measured["seconds"], 1),
        "times_real_time": round(measured["duration"] / measured["seconds"], 1),
        "peak_rss_mib": round(measured["peak_rss_mib"], 1),
        "rss_growth_during_detect_mib": round(measured["peak_rss_mib"] - measured["rss_before_detect_mib"], 1),
        "whole_recording_decoded_would_be_mib": round(measured["duration"] * 16000 * 4 / 2**20, 1),
        "torch_threads": threads,
        "load_average_1min_before": round(load, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "inference.json"))
    parser.add_argument("--files", type=int, default=200, help="files per classify set")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each way per set (the best is reported)")
    parser.add_argument("--hours", type=float, default=1.0, help="length of the long recording for detect")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as temporary:
        work = Path(temporary)
        group_norm = save_model(work / "model_group_norm", layer_norm=False)
        layer_norm = save_model(work / "model_layer_norm", layer_norm=True)
        equal = write_clips(work / "equal", [2.0] * args.files)
        varied = write_clips(work / "varied", list(rng.uniform(0.5, 4.0, args.files)))
        classify = {}
        for threads in sorted({1, default_threads}):
            torch.set_num_threads(threads)  # both ways alike (time_classify passes it to the command)
            for name, model, paths in (("equal_2s", group_norm, equal), ("varied_0.5-4s", group_norm, varied),
                                       ("varied_0.5-4s_layer_norm", layer_norm, varied)):
                load = os.getloadavg()[0]
                row = compare_classify(name, model, paths, work, args.repeats)
                row.update(torch_threads=threads, load_average_1min_before=round(load, 2))
                classify[f"{name}_{threads}_thread{'s' if threads > 1 else ''}"] = row
                print(f"classify {name}, {threads} thread(s): {row['voc2vec_classify_files_per_s']} vs "
                      f"{row['pipeline_loop_files_per_s']} files/s ({row['speedup']}x)")

        detect = {}
        long_label = f"{args.hours:g}h"
        for label, seconds in (("10min", 600), (long_label, int(args.hours * 3600))):
            recording = work / f"{label}.flac"
            write_recording(recording, seconds)
            detect[label] = run_detect(recording, group_norm, work / f"detect_{label}", 1)
            print(f"detect {label}: {detect[label]}")
            if label == long_label and default_threads != 1:
                detect[f"{label}_{default_threads}_threads"] = run_detect(recording, group_norm, work / "detect_default", default_threads)
                print(f"detect {label}, {default_threads} threads: {detect[f'{label}_{default_threads}_threads']}")
            recording.unlink()

    result = {
        "what": __doc__.split("\n\n")[0],
        "model": "configs/models/tiny-wav2vec2.json, random weights, 6 classes (the layer-norm variant: feat_extract_norm=layer, "
                 "do_stable_layer_norm, attention mask)",
        "classify": classify,
        "classify_naive_way": "transformers pipeline('audio-classification') called once per file on voc2vec.audio.load_audio arrays",
        "classify_batch_size": 16,
        "detect_settings": {"window_s": 2.0, "hop_s": 0.5, "batch_size": 16, "format": "16 kHz mono FLAC"},
        "detect": detect,
        "conditions": {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, no GPU",
            "torch_default_threads": default_threads,
            "load_average_at_start": [round(value, 2) for value in load_at_start],
            "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "total_seconds": round(time.perf_counter() - started, 1),
        },
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary_output = output.with_suffix(".json.tmp")
    temporary_output.write_text(json.dumps(result, indent=2) + "\n")
    temporary_output.replace(output)
    print(f"written {output}")


if __name__ == "__main__":
    main()
