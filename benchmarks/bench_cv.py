#!/usr/bin/env python
"""Wall time of the demo cross-validation, done the toolkit's way and the seed repo's way, on the same folds.

    python benchmarks/bench_cv.py                   # every fold of configs/cv/demo.yaml, both ways
    python benchmarks/bench_cv.py --num_folds 2     # only the first 2 of its folds (a few minutes)
    python benchmarks/bench_cv.py --num_folds 1 -- --num_train_epochs 6    # flags after -- override the config
    python benchmarks/bench_cv.py --num_folds 3 -- --max_duration 4.0      # equal inputs (whole demo clips)

With `--max_duration 4.0` (the demo's longest clip) both ways see every clip whole, so the metrics should agree
and the speedup is the data path alone (decode once + padding to the batch's longest clip instead of 7 s);
with the demo config's 1.5 s training windows the toolkit also trains on less audio per step.

The toolkit's way: clips decoded once into memory-mapped Arrow (`decode_corpus`), random windows of the config's
`max_duration`, batches padded to their longest clip. The seed's way: every clip read again with librosa each
time it is used (every epoch, every evaluation) and cut or zero-padded to 7 s. Same model, folds, seed,
optimizer and epochs; both run in this process, fold by fold, one way then the other. Writes benchmarks/results/cv.json with the
total and per-fold wall time (data preparation, training, evaluation) and the test metrics of each way.
"""

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import torch
from transformers import Wav2Vec2Config

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

import run_cv  # noqa: E402
import voc2vec.finetune  # noqa: E402
from voc2vec.arguments import parse_arguments  # noqa: E402
from voc2vec.collate import AudioClips, AudioCollator  # noqa: E402
from voc2vec.evaluation import decode, plan_evaluation, run_split  # noqa: E402
from voc2vec.models import build_model  # noqa: E402
from voc2vec.prediction import predict_logits  # noqa: E402

SEED_CLIP_SECONDS = 7.0


class LibrosaClipsEveryEpoch(torch.utils.data.Dataset):
    """The seed's data path: `librosa.load(path, sr=16000)` on every access, then cut or zero-pad to 7 s.

    Same constructor as `voc2vec.collate.AudioClips`, so `finetune` runs unchanged with it; the decoded dataset
    is used only for its `path` column."""

    def __init__(self, decoded, targets, indices, max_samples=None, random_crop=False, pad_to_max=False):
        self.paths = decoded["path"]
        self.targets = targets
        self.indices = np.asarray(indices, dtype=np.int64)
        self.length = int(SEED_CLIP_SECONDS * 16000)

    def __len__(self):
        return len(self.indices)

    def lengths(self):
        return np.full(len(self.indices), self.length)

    def __getitem__(self, position):
        row = int(self.indices[position])
        audio, _ = librosa.load(self.paths[row], sr=16000, mono=True)
        audio = audio[: self.length] if len(audio) >= self.length else np.pad(audio, (0, self.length - len(audio)))
        return {"input_values": audio.astype(np.float32), "labels": self.targets[row]}


def run_fold(plan, decoded, fold, args, output_dir: Path) -> dict:
    model_args, data_args, training_args = args
    started, cpu_started = time.perf_counter(), time.process_time()
    metrics = run_split(plan, decoded, plan.runs[fold], model_args, data_args, training_args, output_dir / f"fold_{fold:02d}",
                        extra_metadata={"fold": fold}, log_prefix=f"fold {fold}: ")
    return {
        "fold": fold,
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,  # less sensitive than wall time to other jobs on the machine
        "seconds": metrics["timing_seconds"],
        "epochs_trained": metrics["epochs_trained"],
        "test": {key: metrics["test"][key] for key in ("uar", "accuracy", "macro_f1")},
    }


def evaluation_cost(plan, decoded, model_args, data_args, batch_size: int, repeats: int = 3, max_clips: int | None = None) -> dict:
    """Seconds to score the corpus's whole clips (no crop: the most varied lengths) three ways, with fold 0's
    freshly built model: equal-length batches (exact, what the toolkit does for group-norm models), batches
    sorted by length and padded (not exact for group-norm models), and batches in corpus order padded to their
    longest clip (the usual way, not exact either). Best of `repeats`; `max_clips`: an evenly spaced subset."""
    model = build_model(model_args, plan.corpus, plan.model_config).eval()
    rows = np.arange(len(plan.corpus.targets))
    if max_clips and max_clips < len(rows):
        rows = rows[np.linspace(0, len(rows) - 1, max_clips).astype(int)]
    clips = AudioClips(decoded, plan.corpus.targets, rows)
    lengths = clips.lengths()
    collator = AudioCollator(plan.feature_extractor)
    ways = {"equal_length_batches_exact": ("sorted", False), "sorted_padded_batches": ("sorted", True),
            "corpus_order_padded_batches": ("order", True)}
    seconds, outputs = {}, {}
    for name, (order, may_pad) in ways.items():
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            if order == "sorted":
                outputs[name] = predict_logits(model, clips, collator, lengths, batch_size, may_pad)
            else:
                with torch.no_grad():
                    outputs[name] = np.concatenate([
                        model(**{key: value for key, value in collator([clips[i] for i in range(start, min(start + batch_size, len(rows)))]).items()
                                 if key != "labels"}).logits.numpy()
                        for start in range(0, len(rows), batch_size)])
            best = min(best, time.perf_counter() - started)
        seconds[name] = best
    alone = outputs["equal_length_batches_exact"]
    return {
        "clips": len(rows),
        "audio_seconds": float(lengths.sum() / plan.feature_extractor.sampling_rate),
        "distinct_lengths": int(len(np.unique(lengths))),
        "batch_size": batch_size,
        "seconds": seconds,
        "cost_of_exact_vs_corpus_order": seconds["equal_length_batches_exact"] / seconds["corpus_order_padded_batches"],
        "max_logit_difference_from_alone": {name: float(np.abs(value - alone).max()) for name, value in outputs.items()},
    }


def summarize(per_fold: list[dict], preparation_seconds: float) -> dict:
    return {
        "wall_seconds": preparation_seconds + sum(fold["wall_seconds"] for fold in per_fold),
        "cpu_seconds_in_folds": sum(fold["cpu_seconds"] for fold in per_fold),
        "preparation_seconds": preparation_seconds,
        "per_fold": per_fold,
        "mean_test": {key: float(np.mean([fold["test"][key] for fold in per_fold])) for key in ("uar", "accuracy", "macro_f1")},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPOSITORY / "configs" / "cv" / "demo.yaml"))
    parser.add_argument("--num_folds", type=int, default=None, help="run only the first N folds of the config's folds")
    parser.add_argument("--evaluation_only", action="store_true",
                        help="only measure the cost of batch-independent evaluation (no training)")
    parser.add_argument("--wav2vec2_base", action="store_true",
                        help="use a wav2vec 2.0 base-sized model (transformers' Wav2Vec2Config defaults, random weights)")
    parser.add_argument("--max_clips", type=int, default=None, help="--evaluation_only: score an evenly spaced subset")
    parser.add_argument("--repeats", type=int, default=3, help="--evaluation_only: best of this many runs per way")
    parser.add_argument("--output", default=None, help="JSON file (default: benchmarks/results/cv.json or cv_evaluation.json)")
    parser.add_argument("overrides", nargs="*", help="run_cv flags (after --) that override the config, for both ways")
    options = parser.parse_args()
    default_name = "cv_evaluation.json" if options.evaluation_only else "cv.json"
    output = Path(options.output or REPOSITORY / "benchmarks" / "results" / default_name)

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        overrides = list(options.overrides)
        if options.wav2vec2_base:
            base_config = scratch / "wav2vec2-base.json"
            base_config.write_text(Wav2Vec2Config().to_json_string())
            overrides += ["--model_name_or_path", str(base_config), "--config_overrides", "{}"]
        model_args, data_args, protocol_args, cv_args, training_args, _ = parse_arguments(
            run_cv.ARGUMENT_TYPES,
            [options.config, *overrides, "--output_dir", str(scratch / "run"), "--corpus_cache_dir", str(scratch / "cache")],
        )
        # Preparation, the toolkit's way: read the corpus's metadata, make the folds, decode every clip once.
        started = time.perf_counter()
        plan = plan_evaluation(model_args, data_args, protocol_args, training_args, single_split=False)
        decoded = decode(plan, data_args)
        toolkit_preparation = time.perf_counter() - started
        report = {"config": options.config, "overrides": options.overrides,
                  "model": "wav2vec 2.0 base config, random weights" if options.wav2vec2_base else model_args.model_name_or_path,
                  "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                              "python": platform.python_version()}}
        if options.evaluation_only:
            report["benchmark"] = "cost of scoring every clip exactly as alone (equal-length batches) vs padded batches"
            report["evaluation"] = evaluation_cost(plan, decoded, model_args, data_args, training_args.per_device_eval_batch_size,
                                                   options.repeats, options.max_clips)
            write_report(output, report, report["evaluation"])
            return

        folds_to_run = sorted(plan.runs)[: options.num_folds or len(plan.runs)]
        # The seed's way has no decode step: librosa reads every clip on every access, every clip is 7 s.
        seed_data_args = dataclasses.replace(data_args, max_duration=SEED_CLIP_SECONDS, pad_to_max_duration=True, random_crop=False)
        # Fold by fold, one way then the other, so that both meet the same load from other jobs on the machine.
        toolkit_folds, seed_folds = [], []
        for fold in folds_to_run:
            voc2vec.finetune.AudioClips = AudioClips
            toolkit_folds.append(run_fold(plan, decoded, fold, (model_args, data_args, training_args), scratch / "toolkit"))
            voc2vec.finetune.AudioClips = LibrosaClipsEveryEpoch
            seed_folds.append(run_fold(plan, plan.corpus.dataset, fold, (model_args, seed_data_args, training_args), scratch / "seed"))
            print(f"fold {fold}: toolkit {toolkit_folds[-1]['wall_seconds']:.1f} s, seed's way {seed_folds[-1]['wall_seconds']:.1f} s", flush=True)
        voc2vec.finetune.AudioClips = AudioClips
        toolkit = summarize(toolkit_folds, toolkit_preparation)
        seed = summarize(seed_folds, 0.0)

    report.update({
        "benchmark": "demo cross-validation: toolkit (decode once, dynamic padding) vs seed (librosa every epoch, 7 s padding)",
        "folds_run": folds_to_run,
        "of_num_folds": len(plan.runs),
        "epochs_max": training_args.num_train_epochs,
        "toolkit": toolkit,
        "seed_way": seed,
        "speedup": seed["wall_seconds"] / toolkit["wall_seconds"],
        "speedup_cpu_time": seed["cpu_seconds_in_folds"] / toolkit["cpu_seconds_in_folds"],
        "uar_difference": toolkit["mean_test"]["uar"] - seed["mean_test"]["uar"],
    })
    write_report(output, report, {key: report[key] for key in ("folds_run", "speedup", "speedup_cpu_time", "uar_difference")}
                 | {"toolkit_seconds": toolkit["wall_seconds"], "seed_seconds": seed["wall_seconds"],
                    "toolkit_uar": toolkit["mean_test"]["uar"], "seed_uar": seed["mean_test"]["uar"]})


def write_report(output: Path, report: dict, headline: dict) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(json.dumps(headline, indent=2))


if __name__ == "__main__":
    main()
