#!/usr/bin/env python
"""What probing costs against fine-tuning, what the feature cache saves, and how fast openSMILE extracts.

    python benchmarks/bench_probing.py                                   # the demo corpus, 5 folds
    python benchmarks/bench_probing.py --dataset_name donateacry --data_dir ../shared/corpora/donateacry-corpus \\
        --num_folds 8 --validation_fraction 0.2 --max_duration 3 --num_train_epochs 5 --threads 1
    # a wav2vec 2.0 base-sized encoder (random weights): where the cache matters; no fine-tuning on a CPU
    python benchmarks/bench_probing.py ... --label donateacry-base-size --skip_fine_tuning \\
        --config_overrides '{"hidden_size": 768, "num_hidden_layers": 12, ...}'

On one corpus and its folds (speaker-grouped, the same for every run), with one model (default: the demo's tiny
random wav2vec 2.0 with a narrow conv encoder, `configs/cv/demo.yaml`'s model):

1. probing with 3 heads (weighted layers + linear, weighted layers + MLP, last layer + logistic regression) from a
   cold feature cache: the first run computes every clip's pooled hidden states, the next two read them;
2. the same 3 probes again from the warm cache (no forward pass);
3. fine-tuning the same model on the same folds (`run_cv.py`'s defaults for the rest, early stopping);
4. openSMILE eGeMAPSv02 and ComParE_2016 functionals over whole clips, in times real time (one process).

Every run goes through `run_cv.main`; the corpus is decoded once beforehand, so no run pays for decoding. Wall and
CPU seconds of this process are recorded (the machine may be shared: the load average is recorded too), and the
test UAR of each run, so the speed is read next to what it buys. Writes benchmarks/results/probing.json (one entry
per corpus; a rerun replaces that corpus's entry).
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

import run_cv
from voc2vec.arguments import DataArguments
from voc2vec.baselines.extractors import OpenSmileFeatures
from voc2vec.collate import AudioClips
from voc2vec.tasks import decode_task_corpus, load_task_corpus

TINY_MODEL = str(REPOSITORY / "configs" / "models" / "tiny-wav2vec2.json")
TINY_OVERRIDES = '{"conv_dim": [16, 16, 16, 16, 16, 16, 16]}'
HEADS = [("linear", "weighted"), ("mlp", "weighted"), ("logreg", "last")]


def timed(argv: list[str]) -> dict:
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    code = run_cv.main(argv)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if code != 0:
        raise SystemExit(f"run_cv failed ({code}): {' '.join(argv)}")
    output_dir = Path(argv[argv.index("--output_dir") + 1])
    summary = json.loads((output_dir / "summary.json").read_text())
    return {"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "load_average_at_start": round(load, 2),
            "method": summary["method"], "test_uar_mean": round(summary["mean"]["uar"], 4),
            "test_uar_pooled": round(summary["pooled"]["uar"], 4),
            "feature_seconds_per_fold": summary["timing_seconds"].get("features")}


def opensmile_speed(data_args, max_clips: int) -> dict:
    corpus = load_task_corpus(data_args)
    decoded = decode_task_corpus(corpus, 16000, data_args.corpus_cache_dir)
    rows = np.arange(min(max_clips, len(decoded)))
    clips = AudioClips(decoded, None, rows)  # whole clips
    audio_seconds = float(clips.lengths().sum() / 16000)
    speeds = {}
    for feature_set in ("eGeMAPSv02", "ComParE_2016"):
        extractor = OpenSmileFeatures(feature_set)
        extractor.compute(clips, None, rows[:1])  # load openSMILE's configuration before timing
        wall = time.perf_counter()
        extractor.compute(clips, None, np.arange(len(rows)))
        wall = time.perf_counter() - wall
        speeds[feature_set] = {"clips": len(rows), "audio_seconds": round(audio_seconds, 1), "wall_seconds": round(wall, 2),
                               "times_real_time": round(audio_seconds / wall, 1)}
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_name", default="demo")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--num_folds", type=int, default=5)
    parser.add_argument("--validation_fraction", type=float, default=0.1)
    parser.add_argument("--max_duration", type=float, default=1.5, help="Seconds of each clip (probing and fine-tuning alike).")
    parser.add_argument("--num_train_epochs", type=int, default=20, help="Fine-tuning's and the probes' epoch limit.")
    parser.add_argument("--model", default=TINY_MODEL)
    parser.add_argument("--config_overrides", default=TINY_OVERRIDES)
    parser.add_argument("--opensmile_clips", type=int, default=200, help="Clips timed for openSMILE.")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for every run (default: torch's); 1 is fairer on a machine shared with other jobs.")
    parser.add_argument("--skip_fine_tuning", action="store_true", help="Only the probes (a model too large to fine-tune here).")
    parser.add_argument("--label", default=None, help="The entry's name in the JSON (default: the corpus name).")
    parser.add_argument("--output", default=str(REPOSITORY / "benchmarks" / "results" / "probing.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    work = Path(tempfile.mkdtemp(prefix="bench-probing-"))
    cache = work / "cache"
    common = ["--dataset_name", args.dataset_name, "--num_folds", str(args.num_folds), "--validation_fraction",
              str(args.validation_fraction), "--max_duration", str(args.max_duration), "--corpus_cache_dir", str(cache),
              "--num_train_epochs", str(args.num_train_epochs), "--early_stopping_patience", "6", "--seed", "42",
              "--print_results", "false", "--disable_tqdm", "true", "--dataloader_pin_memory", "false",
              "--final_model", "none", "--model_name_or_path", args.model]
    if args.data_dir:
        common += ["--data_dir", args.data_dir]
    if args.config_overrides:
        common += ["--config_overrides", args.config_overrides]
    data_args = DataArguments(dataset_name=args.dataset_name, data_dir=args.data_dir, corpus_cache_dir=str(cache))
    corpus = load_task_corpus(data_args)
    decoded = decode_task_corpus(corpus, 16000, str(cache))  # decoded once: no run below pays for it
    audio_hours = sum(len(clip) for clip in decoded.with_format("numpy")["audio"]) / 16000 / 3600

    def probes(label: str) -> list[dict]:
        return [{"head": head, "layer": layer, **timed(common + ["--method", "probe", "--probe_head", head, "--probe_layer", layer,
                                                                 "--output_dir", str(work / f"{label}-{head}")])}
                for head, layer in HEADS]

    cold = probes("cold")
    warm = probes("warm")
    fine_tuning = None
    if not args.skip_fine_tuning:
        fine_tuning = timed(common + ["--freeze_feature_encoder", "false", "--learning_rate", "0.003", "--warmup_steps", "0.1",
                                      "--output_dir", str(work / "finetune")])
    cold_total = sum(run["wall_seconds"] for run in cold)
    warm_total = sum(run["wall_seconds"] for run in warm)
    entry = {
        "corpus": args.dataset_name,
        "clips": len(decoded),
        "audio_hours": round(audio_hours, 3),
        "folds": args.num_folds,
        "max_duration_seconds": args.max_duration,
        "epoch_limit": args.num_train_epochs,
        "model": Path(args.model).name if args.model.endswith(".json") else args.model,
        "config_overrides": args.config_overrides,
        "probe_3_heads_cold_cache": {"total_wall_seconds": round(cold_total, 2), "runs": cold},
        "probe_3_heads_warm_cache": {"total_wall_seconds": round(warm_total, 2), "runs": warm},
        "fine_tuning_same_folds": fine_tuning,
        "cold_over_warm": round(cold_total / warm_total, 2),
        "fine_tuning_over_3_warm_probes": round(fine_tuning["wall_seconds"] / warm_total, 2) if fine_tuning else None,
        "fine_tuning_over_3_cold_probes": round(fine_tuning["wall_seconds"] / cold_total, 2) if fine_tuning else None,
        "opensmile_functionals": opensmile_speed(data_args, args.opensmile_clips),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version()},
    }
    output = Path(args.output)
    results = json.loads(output.read_text()) if output.is_file() else {}
    results[args.label or args.dataset_name] = entry
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(entry, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
