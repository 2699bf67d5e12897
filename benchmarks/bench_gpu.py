#!/usr/bin/env python
"""Pretraining and fine-tuning speed on one accelerator: throughput, model FLOPs utilization, peak memory, and the
data loader's throughput with 0, 2 and 4 workers.

    python benchmarks/bench_gpu.py --output benchmarks/results/gpu.json      # a CUDA machine: base models, bf16 (~2-8 min)
    python benchmarks/bench_gpu.py --tiny --output /tmp/gpu-tiny.json         # CPU (CI): tiny configs, a few steps, seconds

Every measurement is one JSON row with `audio_seconds_per_second` and `mfu`:

- pretraining: wav2vec 2.0 base (`Wav2Vec2Config()`) and HuBERT base (`HubertConfig()`) with random weights, built
  and run through run_pretraining's objectives (fairseq's from-scratch stabilizers on, layerdrop off so that every
  counted layer runs), batches from its collator (equal-length crops, span masks, negatives), fused AdamW with
  gradient clipping; bf16 autocast and SDPA attention on GPUs, optionally `--compile`;
- fine-tuning: `*ForSequenceClassification` of the same encoders with the CNN frozen (run_cv.py's default), batches
  of 16 clips of 7 s (the paper's crop);
- loader: run_pretraining's data path (AudioClipDataset + bucketed batches + collator in DataLoader workers) over
  Parquet FLAC shards written by `voc2vec.mixture.prepare_mixture` from the demo corpus (`mfu` is null there).

MFU = model FLOPs per second / the device's peak. Model FLOPs come from the config (voc2vec.pretraining.flops: 2 per
multiply-add of the matrix products and convolutions, a training step = 3 forward passes, a frozen CNN 1). The peak
is the dense bf16 (fp16 where the GPU has no bf16) tensor-core figure of NVIDIA's datasheets for the device name
(`PEAK_FLOPS`); for a device not in the table, and on CPU, it is measured: the FLOP rate of a large matrix product
in the benchmark's precision, and the row says so (`peak_flops_source`). Steps are timed between two device
synchronizations; on CUDA one extra step runs under `torch.cuda.set_sync_debug_mode` to count how often a step
makes the host wait for the device (`host_syncs_per_step`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Dense (no sparsity) tensor-core peaks in FLOP/s, bf16 with fp32 accumulation (fp16 for V100 and T4), from
# NVIDIA's datasheets. Matched against torch.cuda.get_device_name() in this order (first substring wins).
PEAK_FLOPS = (
    ("H200 NVL", 835e12),
    ("H200", 989e12),
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM ("NVIDIA H100 80GB HBM3")
    ("GH200", 989e12),
    ("A100", 312e12),
    ("A10", 125e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("RTX A6000", 154.8e12),  # the voc2vec paper's GPUs
    ("RTX 4090", 165.2e12),
    ("RTX 3090", 71e12),
    ("V100", 125e12),
    ("T4", 65e12),
)


def device_peak_flops(device: torch.device, dtype: torch.dtype) -> tuple[float, str]:
    """(peak FLOP/s, where the figure comes from) for `device`."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, flops in PEAK_FLOPS:
            if key in name:
                return flops, f"datasheet ({key})"
    return measured_matmul_flops(device, dtype), f"measured: {dtype} matrix product on {device.type}"


def measured_matmul_flops(device: torch.device, dtype: torch.dtype) -> float:
    size = 8192 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    synchronize(device)
    repeats = 20 if device.type == "cuda" else 5
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max_memory_allocated of this measurement"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "max resident set size of the process so far"


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def model_config(name: str, tiny: bool):
    from transformers import AutoConfig, HubertConfig, Wav2Vec2Config

    if tiny:
        return AutoConfig.from_pretrained(ROOT / "configs" / "models" / f"tiny-{name}.json")
    return Wav2Vec2Config() if name == "wav2vec2" else HubertConfig()  # the defaults are the base architectures


def build_objective(config, attn_implementation: str, num_clusters: int):
    """The objective run_pretraining.py would build from this config (saved to a file, loaded the same way)."""
    from run_pretraining import ModelArguments
    from voc2vec.pretraining.objectives import objective_for

    folder = Path(tempfile.mkdtemp(prefix="bench-gpu-config-"))
    config.layerdrop = 0.0  # every layer runs, as the FLOPs count them
    config.save_pretrained(folder)
    args = ModelArguments(config_name=str(folder), attn_implementation=attn_implementation, feature_grad_mult=0.1,
                          feature_penalty_weight=10.0, num_clusters=num_clusters, hubert_projection_dim=256)
    return objective_for(args)


def pretraining_batches(objective, batch_clips: int, clip_samples: int, count: int) -> list[dict]:
    """Batches as run_pretraining's collator makes them (equal-length crops, masks, negatives, labels)."""
    from voc2vec.pretraining.batching import MaskedPretrainingCollator
    from voc2vec.pretraining.masking import conv_output_lengths

    config = objective.config
    collator = MaskedPretrainingCollator(config.conv_kernel, config.conv_stride, max_crop_samples=clip_samples,
                                         num_negatives=objective.num_negatives, seed=0,
                                         mask_prob=0.8 if objective.model_type == "hubert" else 0.65)
    frames = int(conv_output_lengths(clip_samples, config.conv_kernel, config.conv_stride))
    rng = np.random.default_rng(0)
    batches = []
    for number in range(count):
        examples = []
        for index in range(batch_clips):
            example = {"audio": (0.1 * rng.standard_normal(clip_samples)).astype(np.float32), "clip_index": index, "batch_number": number}
            if objective.model_type == "hubert":
                example["labels"] = rng.integers(0, objective.args.num_clusters, frames).astype(np.int16)
            examples.append(example)
        batches.append(collator(examples))
    return batches


def count_host_syncs(step, batch: dict, device: torch.device) -> int | None:
    """How often one step makes the host wait for the device (CUDA's sync debug mode warns at each); None on CPU."""
    if device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step(batch)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(warning.message) for warning in caught)


def timed_steps(step, batches: list[dict], device: torch.device, warmup: int, steps: int) -> tuple[float, int | None]:
    """Seconds for `steps` steps after `warmup` untimed ones, between two synchronizations; and the host syncs of a step."""
    on_device = [{name: tensor.to(device) for name, tensor in batch.items()} for batch in batches]
    for index in range(warmup):
        step(on_device[index % len(on_device)])
    host_syncs = count_host_syncs(step, on_device[0], device)
    synchronize(device)
    start = time.perf_counter()
    for index in range(steps):
        step(on_device[index % len(on_device)])
    synchronize(device)
    return time.perf_counter() - start, host_syncs


def autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def measure_pretraining(name: str, settings: argparse.Namespace, device: torch.device, dtype: torch.dtype, peak: tuple[float, str]) -> dict:
    from voc2vec.pretraining.flops import training_step_flops

    objective = build_objective(model_config(name, settings.tiny), settings.attn_implementation, settings.num_clusters)
    clip_samples = int(settings.clip_seconds * 16000)
    batches = pretraining_batches(objective, settings.batch_clips, clip_samples, count=4)
    reset_peak_memory(device)
    model = objective.build_model().to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01, fused=True)
    forward = torch.compile(model) if settings.compile else model

    def step(batch):
        objective.before_update(model, 0)
        with autocast(device, dtype):
            losses = objective.losses(forward, batch, None)
        # the loop's normalization: summed loss over the batch's masked frames
        (losses["loss"] / batch["mask_time_indices"].sum().clamp(min=1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    elapsed, host_syncs = timed_steps(step, batches, device, settings.warmup, settings.steps)
    flops = training_step_flops(objective.config, settings.batch_clips, clip_samples, objective.model_type,
                                num_clusters=settings.num_clusters)
    return result_row("pretraining", name, settings, device, dtype, peak, elapsed, flops,
                      audio_seconds=settings.batch_clips * settings.clip_seconds, host_syncs=host_syncs)


def measure_finetuning(name: str, settings: argparse.Namespace, device: torch.device, dtype: torch.dtype, peak: tuple[float, str]) -> dict:
    from transformers import AutoModelForAudioClassification

    from voc2vec.pretraining.flops import training_step_flops

    config = model_config(name, settings.tiny)
    config.num_labels, config.layerdrop = 6, 0.0
    config._attn_implementation = settings.attn_implementation
    reset_peak_memory(device)
    model = AutoModelForAudioClassification.from_config(config).to(device).train()
    model.freeze_feature_encoder()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    forward = torch.compile(model) if settings.compile else model
    clip_samples = int(settings.finetune_clip_seconds * 16000)
    rng = np.random.default_rng(0)
    batches = [{"input_values": torch.from_numpy((0.1 * rng.standard_normal((settings.finetune_batch_clips, clip_samples))).astype(np.float32)),
                "labels": torch.from_numpy(rng.integers(0, 6, settings.finetune_batch_clips))} for _ in range(4)]

    def step(batch):
        with autocast(device, dtype):
            loss = forward(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    elapsed, host_syncs = timed_steps(step, batches, device, settings.warmup, settings.steps)
    flops = training_step_flops(config, settings.finetune_batch_clips, clip_samples, "classification", frozen_feature_encoder=True)
    return result_row("finetuning", name, settings, device, dtype, peak, elapsed, flops,
                      audio_seconds=settings.finetune_batch_clips * settings.finetune_clip_seconds, host_syncs=host_syncs)


def result_row(kind, name, settings, device, dtype, peak, elapsed, flops_per_step, audio_seconds, host_syncs) -> dict:
    memory, memory_kind = peak_memory_mib(device)
    achieved = flops_per_step * settings.steps / elapsed
    return {
        "measurement": kind,
        "model": f"{name}-{'tiny' if settings.tiny else 'base'}",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "dtype": str(dtype).removeprefix("torch."),
        "attn_implementation": settings.attn_implementation,
        "compile": settings.compile,
        "steps": settings.steps,
        "audio_seconds_per_step": audio_seconds,
        "seconds_per_step": elapsed / settings.steps,
        "audio_seconds_per_second": audio_seconds * settings.steps / elapsed,
        "model_flops_per_step": flops_per_step,
        "achieved_tflops": achieved / 1e12,
        "peak_tflops": peak[0] / 1e12,
        "peak_flops_source": peak[1],
        "mfu": achieved / peak[0],
        "peak_memory_mib": memory,
        "peak_memory_kind": memory_kind,
        "host_syncs_per_step": host_syncs,  # transformers' own (boolean masking, `if neg_is_pos.any()`), CUDA only
    }


def demo_mixture(folder: Path) -> list[str]:
    """Parquet FLAC shards of the demo corpus, as `python -m voc2vec.mixture prepare` writes them."""
    from voc2vec.mixture import prepare_mixture, shard_files

    if not (folder / "voc125.json").exists():
        prepare_mixture({"demo": None}, folder, verbose=False)
    return shard_files(folder)


def measure_loader(workers: int, shards: list[str], settings: argparse.Namespace, device: torch.device) -> dict:
    """run_pretraining's data path (decoding, cropping, normalizing, masks, negatives) in `workers` processes."""
    from voc2vec.pretraining.batching import (
        DurationBucketBatchSampler,
        MaskedPretrainingCollator,
    )
    from voc2vec.pretraining.data import AudioClipDataset, load_pretraining_dataset

    dataset, column = load_pretraining_dataset(train_files=shards)
    durations = np.minimum(np.asarray(dataset["duration"], dtype=np.float64), 10.0)
    sampler = DurationBucketBatchSampler(durations, settings.loader_batch_seconds, num_buckets=20, seed=0)
    config = model_config("wav2vec2", tiny=False)
    collator = MaskedPretrainingCollator(config.conv_kernel, config.conv_stride, num_negatives=100, seed=0)
    loader = torch.utils.data.DataLoader(AudioClipDataset(dataset, column), batch_sampler=sampler, collate_fn=collator,
                                         num_workers=workers, pin_memory=device.type == "cuda")
    start = time.perf_counter()
    batches = iter(loader)
    first = next(batches)  # workers started, first batch decoded
    steady_start, audio = time.perf_counter(), 0.0
    for _ in range(settings.loader_batches):
        audio += float(next(batches)["audio_seconds"])
    elapsed = time.perf_counter() - steady_start
    del batches, first
    return {
        "measurement": "loader",
        "model": "wav2vec2-base collator (100 negatives)",
        "workers": workers,
        "cores_used": max(workers, 1),
        "batches": settings.loader_batches,
        "batch_seconds": settings.loader_batch_seconds,
        "mean_clip_seconds": float(durations.mean()),
        "first_batch_seconds": steady_start - start,
        "audio_seconds_per_second": audio / elapsed,
        "audio_seconds_per_second_per_core": audio / elapsed / max(workers, 1),
        "mfu": None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "gpu.json"))
    parser.add_argument("--tiny", action="store_true", help="tiny configs and a few small steps (CPU, CI)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models (compilation is not timed)")
    parser.add_argument("--attn_implementation", default="sdpa", choices=["eager", "sdpa", "flash_attention_2"])
    parser.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                        help="auto: bf16 on GPUs that have it, else fp16; fp32 on CPU")
    parser.add_argument("--models", nargs="+", default=["wav2vec2", "hubert"], choices=["wav2vec2", "hubert"])
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20, tiny 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5, tiny 1)")
    parser.add_argument("--batch_clips", type=int, default=None, help="pretraining clips per batch (default 8, tiny 2)")
    parser.add_argument("--clip_seconds", type=float, default=None, help="pretraining clip length (default 10, tiny 1)")
    parser.add_argument("--num_clusters", type=int, default=500, help="HuBERT targets")
    parser.add_argument("--loader_workers", type=int, nargs="*", default=[0, 2, 4])
    parser.add_argument("--loader_batches", type=int, default=None, help="batches timed per loader setting (default 40, tiny 3)")
    parser.add_argument("--loader_batch_seconds", type=float, default=87.5, help="audio seconds per loader batch")
    parser.add_argument("--mixture_dir", default=None, help="where the demo mixture's shards are written (default: a temp folder)")
    settings = parser.parse_args(argv)
    tiny = settings.tiny
    defaults = {"steps": (20, 3), "warmup": (5, 1), "batch_clips": (8, 2), "clip_seconds": (10.0, 1.0), "loader_batches": (40, 3)}
    for name, (full, small) in defaults.items():
        if getattr(settings, name) is None:
            setattr(settings, name, small if tiny else full)
    settings.finetune_batch_clips, settings.finetune_clip_seconds = (2, 1.0) if tiny else (16, 7.0)
    if tiny:
        settings.loader_batch_seconds = min(settings.loader_batch_seconds, 20.0)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if settings.dtype == "auto":
        dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if device.type == "cuda" else torch.float32
    else:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[settings.dtype]
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    peak = device_peak_flops(device, dtype)
    print(f"device: {device}, {settings.attn_implementation}, {dtype}, peak {peak[0] / 1e12:.1f} TFLOP/s ({peak[1]})", flush=True)

    results = []
    for name in settings.models:
        for measure in (measure_pretraining, measure_finetuning):
            row = measure(name, settings, device, dtype, peak)
            print(json.dumps(row), flush=True)
            results.append(row)
    mixture_dir = Path(settings.mixture_dir or tempfile.mkdtemp(prefix="bench-gpu-mixture-"))
    shards = demo_mixture(mixture_dir)
    for workers in settings.loader_workers:
        row = measure_loader(workers, shards, settings, device)
        print(json.dumps(row), flush=True)
        results.append(row)

    report = {
        "benchmark": "gpu",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "device": results[0]["device"] if results else str(device),
                    "load_average_at_end": os.getloadavg()},
        "settings": {key: value for key, value in vars(settings).items() if key != "output"},
        "results": results,
    }
    if device.type != "cuda":  # so that a CPU file is never quoted as a GPU figure
        report["note"] = (f"CPU smoke measurement ({'tiny configs' if tiny else 'base configs'}), not a GPU figure: it shows "
                          "that the script runs; throughput and MFU of a GPU come only from a run on one")
    Path(settings.output).parent.mkdir(parents=True, exist_ok=True)
    Path(settings.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
