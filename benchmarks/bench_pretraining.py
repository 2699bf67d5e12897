#!/usr/bin/env python
"""Pretraining throughput and peak memory: run_pretraining's loop vs the Hugging Face example's, and the data path.

    python benchmarks/bench_pretraining.py                        # writes benchmarks/results/pretraining.json
    python benchmarks/bench_pretraining.py --sections data_path   # only the data path

Loops. For the tiny config (configs/models/tiny-wav2vec2.json) and the base architecture (`Wav2Vec2Config()`
defaults, random weights, a few steps only), on the demo corpus, it runs side by side:

- naive: the loop of transformers' examples/pytorch/speech-pretraining/run_wav2vec2_pretraining_no_trainer.py:
  random batches of a fixed number of clips padded to the longest, audio decoded on the fly in the main
  process, masks and negatives drawn in the collator, loss divided by masked frames per micro-batch;
- voc2vec: run_pretraining's duration-bucketed batches of clips cropped to the shortest of their batch (no
  padding), filled to a budget of input seconds equal to the naive loop's mean padded batch (the same input
  size per step), and its objective's step (wav2vec 2.0 losses with fairseq's CNN stabilizers, fused AdamW).
  Both decode in the main process (a DataLoader worker would only compete for the two cores here).

Both do the same optimizer work per step (AdamW, clipping, Gumbel temperature). Throughput (audio seconds per
second: audio the model is trained on, padding excluded) is timed with the two loops' steps interleaved in one
process, so load from other processes on a shared machine hits both alike. Peak memory is measured in a
separate short process per loop: max resident set size on CPU, `torch.cuda.max_memory_allocated` on GPU. The
rows report the padded share of the naive batches and the audio share the voc2vec batches drop by cropping.

Data path. run_pretraining's data path (Parquet row -> FLAC decode -> crop -> normalize -> span masks ->
100 negatives, batches of 87.5 s as wav2vec 2.0 base) in one process, over Parquet FLAC shards written by
`voc2vec.mixture.prepare_mixture`: the demo corpus (clips of 0.5-4 s, the worst case: per-clip costs dominate)
and long recordings cut into 10 s segments. Reported per CPU-second of the process (audio seconds per second
of one worker core, whatever the machine's load) and per wall second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (steps measured, warm-up steps, clips per naive batch) per model size
SETTINGS = {"tiny": (20, 2, 8), "base": (2, 1, 4)}


def build_config(size: str):
    from transformers import AutoConfig, Wav2Vec2Config

    return AutoConfig.from_pretrained(ROOT / "configs" / "models" / "tiny-wav2vec2.json") if size == "tiny" else Wav2Vec2Config()


def naive_batches(paths: list[str], batch_size: int, model, seed: int):
    """The HF example's DataCollatorForWav2Vec2Pretraining over random batches, decoding each clip as it comes."""
    from transformers import Wav2Vec2FeatureExtractor
    from transformers.models.wav2vec2.modeling_wav2vec2 import (
        _compute_mask_indices,
        _sample_negative_indices,
    )

    from voc2vec.audio import load_audio

    feature_extractor = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(paths))  # a new random order every pass, as the HF example's shuffling DataLoader
        for start in range(0, len(paths) - batch_size + 1, batch_size):
            audio = [load_audio(paths[index]) for index in order[start : start + batch_size]]
            batch = feature_extractor(audio, sampling_rate=16000, padding="longest", return_tensors="pt")
            frames = int(model._get_feat_extract_output_lengths(batch["input_values"].shape[-1]))
            sub_attention_mask = model._get_feature_vector_attention_mask(frames, batch["attention_mask"])
            mask = _compute_mask_indices((batch_size, frames), 0.65, 10, attention_mask=sub_attention_mask, min_masks=2)
            negatives = _sample_negative_indices((batch_size, frames), model.config.num_negatives, mask_time_indices=mask)
            yield {
                "input_values": batch["input_values"],
                "attention_mask": batch["attention_mask"],
                "mask_time_indices": torch.tensor(mask, dtype=torch.long),
                "sampled_negative_indices": torch.tensor(negatives, dtype=torch.long),
                "audio_seconds": torch.tensor(sum(len(clip) for clip in audio) / 16000),
            }


def voc2vec_objective(config):
    """run_pretraining's wav2vec 2.0 objective with the demo config's options (fairseq's CNN stabilizers on)."""
    from run_pretraining import parse_arguments
    from voc2vec.pretraining.objectives.wav2vec2 import Wav2Vec2Objective

    model_args = parse_arguments([str(ROOT / "configs" / "pretraining" / "demo.yaml")])[0]
    return Wav2Vec2Objective(model_args, config)


def voc2vec_batches(dataset, max_batch_seconds: float, model, seed: int):
    """run_pretraining's data path: bucketed batches, whole clips decoded, cropped to the batch's shortest."""
    from voc2vec.pretraining.batching import (
        DurationBucketBatchSampler,
        MaskedPretrainingCollator,
    )
    from voc2vec.pretraining.data import AudioClipDataset

    sampler = DurationBucketBatchSampler(np.minimum(dataset["duration"], 10.0), max_batch_seconds, num_buckets=10, seed=seed)
    collator = MaskedPretrainingCollator(model.config.conv_kernel, model.config.conv_stride, max_crop_samples=10 * 16000,
                                         num_negatives=model.config.num_negatives, seed=seed)
    loader = torch.utils.data.DataLoader(AudioClipDataset(dataset, "path"), batch_sampler=sampler, collate_fn=collator,
                                         num_workers=0, generator=torch.Generator().manual_seed(seed))
    yield from loader  # each batch's clip_seconds: its clips' (10 s-limited) audio before cropping


def mean_padded_seconds(durations: np.ndarray, batch_size: int, seed: int = 0, trials: int = 2000) -> float:
    """Expected padded seconds of a random batch of `batch_size` clips (batch size x longest clip)."""
    rng = np.random.default_rng(seed)
    return float(np.mean([durations[rng.choice(len(durations), batch_size, replace=False)].max() * batch_size for _ in range(trials)]))


def peak_rss_mib(pid: str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class TimedLoop:
    """One loop's model, optimizer and batches, stepping on demand and timing its own steps."""

    def __init__(self, size: str, loop: str, dataset, batch_size: int, budget: float, device: torch.device):
        from transformers import Wav2Vec2ForPreTraining

        self.loop = loop
        torch.manual_seed(0)  # the same initial weights in both loops
        if loop == "naive":
            self.model = Wav2Vec2ForPreTraining(build_config(size)).to(device).train()
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
            self.batches = naive_batches(dataset["path"], batch_size, self.model, seed=0)
        else:  # as run_pretraining.py builds them
            self.objective = voc2vec_objective(build_config(size))
            self.model = self.objective.build_model().to(device).train()
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01, fused=True)
            self.batches = voc2vec_batches(dataset, budget, self.model, seed=0)
        self.device, self.updates = device, 0
        self.elapsed = self.cpu_seconds = self.audio_seconds = self.input_seconds = self.source_seconds = 0.0

    def step(self, timed: bool) -> None:
        from voc2vec.pretraining.objectives.wav2vec2 import gumbel_temperature

        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        batch = {name: tensor.to(self.device) for name, tensor in next(self.batches).items()}
        seconds = batch.pop("audio_seconds").item()
        source_seconds = batch.pop("clip_seconds").item() if "clip_seconds" in batch else seconds
        if self.loop == "naive":
            self.model.set_gumbel_temperature(gumbel_temperature(self.updates))
            loss = self.model(**batch).loss / batch["mask_time_indices"].sum()
        else:
            self.objective.before_update(self.model, self.updates)
            loss = self.objective.losses(self.model, batch, None)["loss"] / batch["mask_time_indices"].sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
        self.optimizer.step()
        self.optimizer.zero_grad()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.updates += 1
        if timed:
            self.elapsed += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu_start
            self.audio_seconds += seconds
            self.source_seconds += source_seconds
            self.input_seconds += batch["input_values"].numel() / 16000


def setup(size: str):
    from voc2vec.corpora import load_corpus

    steps, warmup, batch_size = SETTINGS[size]
    dataset = load_corpus("demo", verbose=False)
    budget = mean_padded_seconds(np.asarray(dataset["duration"]), batch_size)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return steps, warmup, batch_size, dataset, budget, device


def measure_throughput(size: str) -> list[dict]:
    """Both loops in this process, steps interleaved; audio seconds per second over the timed steps."""
    steps, warmup, batch_size, dataset, budget, device = setup(size)
    loops = {loop: TimedLoop(size, loop, dataset, batch_size, budget, device) for loop in ("naive", "voc2vec")}
    for step in range(warmup + steps):
        for timed_loop in loops.values():
            timed_loop.step(timed=step >= warmup)
    rows = []
    for loop, timed_loop in loops.items():
        rows.append({
            "model": size,
            "loop": loop,
            "device": device.type,
            "steps": steps,
            "audio_seconds_per_second": timed_loop.audio_seconds / timed_loop.elapsed,
            "padded_fraction": 1 - timed_loop.audio_seconds / timed_loop.input_seconds,
            "dropped_by_cropping_fraction": 1 - timed_loop.audio_seconds / timed_loop.source_seconds,
            "mean_batch_audio_seconds": timed_loop.audio_seconds / steps,
            "mean_batch_input_seconds": timed_loop.input_seconds / steps,
            "seconds_per_step": timed_loop.elapsed / steps,
            "audio_seconds_per_cpu_second": timed_loop.audio_seconds / timed_loop.cpu_seconds,
            "cpu_seconds_per_step": timed_loop.cpu_seconds / steps,
            "torch_threads": torch.get_num_threads(),
            **({"clips_per_batch": batch_size} if loop == "naive" else {"max_batch_seconds": budget}),
        })
    return rows


def measure_peak_memory(size: str, loop: str) -> dict:
    """Peak memory of one loop alone over a few steps."""
    _, warmup, batch_size, dataset, budget, device = setup(size)
    timed_loop = TimedLoop(size, loop, dataset, batch_size, budget, device)
    for _ in range(warmup + 1):
        timed_loop.step(timed=False)
    if device.type == "cuda":
        return {"peak_memory_mib": torch.cuda.max_memory_allocated() / 2**20, "peak_memory_kind": "cuda max_memory_allocated"}
    return {"peak_memory_mib": peak_rss_mib(), "peak_memory_kind": "max resident set size of the process"}


def demo_mixture(folder: Path) -> list[str]:
    """The demo corpus (360 clips of 0.5-4 s) as Parquet FLAC shards, written by voc2vec.mixture."""
    from voc2vec.mixture import prepare_mixture, shard_files

    if not (folder / "voc125.json").exists():
        prepare_mixture({"demo": None}, folder, verbose=False)
    return shard_files(folder)


def long_recordings_mixture(folder: Path, recordings: int = 40, seconds: float = 32.0) -> list[str]:
    """Long recordings (demo clips strung together) cut into 10 s segments by voc2vec.mixture: Parquet FLAC shards
    whose rows are as long as the mixture makes them."""
    import soundfile

    from voc2vec.audio import load_audio
    from voc2vec.corpora import load_corpus
    from voc2vec.mixture import prepare_mixture, shard_files

    if not (folder / "mixture" / "voc125.json").exists():
        clips = [load_audio(path) for path in load_corpus("demo", verbose=False)["path"]]
        recordings_dir = folder / "recordings" / "vocalizations"  # the folder loader: one subfolder per class
        recordings_dir.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for number in range(recordings):
            audio = np.concatenate([clips[index] for index in rng.permutation(len(clips))])[: int(seconds * 16000)]
            soundfile.write(recordings_dir / f"recording_{number:03d}.wav", audio, 16000, subtype="PCM_16")
        prepare_mixture({"folder": {"data_dir": str(folder / "recordings")}}, folder / "mixture", verbose=False)
    return shard_files(folder / "mixture")


def measure_data_path(name: str, shards: list[str], max_batches: int) -> dict:
    """Batches of run_pretraining's data path made in this process: audio seconds per CPU-second and per second."""
    from transformers import Wav2Vec2Config

    from voc2vec.pretraining.batching import (
        DurationBucketBatchSampler,
        MaskedPretrainingCollator,
    )
    from voc2vec.pretraining.data import AudioClipDataset, load_pretraining_dataset

    dataset, column = load_pretraining_dataset(train_files=shards)
    durations = np.minimum(np.asarray(dataset["duration"], dtype=np.float64), 10.0)
    sampler = DurationBucketBatchSampler(durations, 87.5, num_buckets=20, seed=0)
    config = Wav2Vec2Config()  # base: 100 negatives
    collator = MaskedPretrainingCollator(config.conv_kernel, config.conv_stride, num_negatives=config.num_negatives, seed=0)
    clips = AudioClipDataset(dataset, column)
    batches = max_batches  # the stream runs over as many epochs as needed
    stream = iter(sampler)
    audio, cpu_start, wall_start = 0.0, time.process_time(), time.perf_counter()
    for _ in range(batches):
        audio += collator(clips.__getitems__(next(stream)))["audio_seconds"].item()  # as the DataLoader calls it
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    return {
        "data": name,
        "shards": len(shards),
        "clips": len(dataset),
        "mean_clip_seconds": float(durations.mean()),
        "batches": batches,
        "audio_seconds": audio,
        "audio_seconds_per_cpu_second": audio / cpu,
        "audio_seconds_per_second": audio / wall,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "pretraining.json"))
    parser.add_argument("--sections", nargs="+", default=["loops", "data_path"], choices=["loops", "data_path"])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=list(SETTINGS))
    parser.add_argument("--data_batches", type=int, default=60, help="data path: batches of 87.5 s measured per mixture")
    parser.add_argument("--mixture_dir", default=None, help="data path: where the benchmark mixtures are written (default: temp)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the loops (default: torch's, one per core); 1 is steadier on a shared machine")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)  # one measurement in a fresh process
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        kind, *rest = args.child
        print(json.dumps(measure_throughput(*rest) if kind == "throughput" else measure_peak_memory(*rest)))
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    def child(*arguments: str):
        threads = ["--threads", str(args.threads)] if args.threads else []
        finished = subprocess.run([sys.executable, __file__, *threads, "--child", *arguments], capture_output=True, text=True, check=True)
        return json.loads(finished.stdout.strip().splitlines()[-1])

    load_at_start = os.getloadavg()
    results, speedups, data_path = [], {}, []
    if "loops" in args.sections:
        for size in args.sizes:
            rows = child("throughput", size)
            for row in rows:
                row.update(child("memory", size, row["loop"]))
                print(json.dumps(row), flush=True)
            results.extend(rows)
        for size in args.sizes:
            naive, ours = (next(row for row in results if row["model"] == size and row["loop"] == loop) for loop in ("naive", "voc2vec"))
            speedups[size] = ours["audio_seconds_per_second"] / naive["audio_seconds_per_second"]
    if "data_path" in args.sections:
        folder = Path(args.mixture_dir or tempfile.mkdtemp(prefix="bench-pretraining-"))
        for name, shards in (("demo corpus clips (0.5-4 s)", demo_mixture(folder / "demo")),
                             ("32 s recordings cut into 10 s segments", long_recordings_mixture(folder / "long"))):
            row = measure_data_path(name, shards, args.data_batches)
            print(json.dumps(row), flush=True)
            data_path.append(row)
    report = {
        "benchmark": "pretraining",
        "corpus": "demo",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg()},
        "torch_threads": args.threads or torch.get_num_threads(),
        "results": results,
        "speedup_audio_seconds_per_second": speedups,
        "data_path": data_path,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(speedups))


if __name__ == "__main__":
    main()
