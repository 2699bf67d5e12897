"""benchmarks/bench_gpu.py on the CPU with tiny configs (what CI can run), and the FLOPs formula its MFU rests on."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    AutoConfig,
    HubertModel,
    Wav2Vec2ForPreTraining,
    Wav2Vec2ForSequenceClassification,
)

from voc2vec.pretraining.flops import forward_flops, training_step_flops
from voc2vec.pretraining.masking import compute_span_mask, sample_negatives
from voc2vec.pretraining.objectives.hubert import HubertForMaskedPretraining

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "configs" / "models"


def tiny_config(name: str):
    config = AutoConfig.from_pretrained(MODELS / f"tiny-{name}.json")
    config._attn_implementation = "eager"  # attention as matrix products, which FlopCounterMode counts on the CPU
    return config


def counted_forward_flops(model, *args, **kwargs) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*args, **kwargs)
    return counter.get_total_flops()


@pytest.mark.parametrize("seconds", [1.0, 2.5])
def test_flops_formula_matches_pytorchs_flop_counter(seconds):
    """Forward passes only: PyTorch's counter overcounts the backward of grouped convolutions (the positional
    embedding), while a training step is 3 forward passes by the formula's convention."""
    samples = int(seconds * 16000)
    inputs = torch.randn(2, samples)
    config = tiny_config("wav2vec2")
    frames = int(Wav2Vec2ForPreTraining(config)._get_feat_extract_output_lengths(samples))
    mask = compute_span_mask(np.array([frames, frames]), frames, 0.65, 10, 2, seed=0)
    negatives = torch.from_numpy(sample_negatives(mask, config.num_negatives, seed=1).astype(np.int64))
    counted = counted_forward_flops(Wav2Vec2ForPreTraining(config).eval(), inputs, mask_time_indices=torch.from_numpy(mask),
                                    sampled_negative_indices=negatives)
    assert 2 * sum(forward_flops(config, samples, "wav2vec2")) == pytest.approx(counted, rel=0.01)

    hubert_config = tiny_config("hubert")
    labels = torch.randint(0, 50, (2, frames))
    counted = counted_forward_flops(HubertForMaskedPretraining(HubertModel(hubert_config), 50, 64).eval(), inputs, labels=labels,
                                    mask_time_indices=torch.from_numpy(mask))
    assert 2 * sum(forward_flops(hubert_config, samples, "hubert", num_clusters=50, hubert_projection_dim=64)) == pytest.approx(counted, rel=0.01)

    config.num_labels = 6
    counted = counted_forward_flops(Wav2Vec2ForSequenceClassification(config).eval(), inputs)
    assert 2 * sum(forward_flops(config, samples, "classification")) == pytest.approx(counted, rel=0.01)
    # a step is 3 forward passes; a frozen CNN runs forward only
    cnn, rest = forward_flops(config, samples, "classification")
    assert training_step_flops(config, 2, samples, "classification", frozen_feature_encoder=True) == 2 * (cnn + 3 * rest)
    assert training_step_flops(config, 2, samples, "classification") == 2 * 3 * (cnn + rest)


@pytest.mark.slow
def test_bench_gpu_runs_on_the_cpu_with_tiny_configs(tmp_path):
    output = tmp_path / "gpu-tiny.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--tiny", "--output", str(output),
               "--loader_workers", "0", "2", "--mixture_dir", str(tmp_path / "mixture")]
    finished = subprocess.run(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600, check=False)
    assert finished.returncode == 0, finished.stderr[-4000:]
    report = json.loads(output.read_text())
    rows = report["results"]
    kinds = [(row["measurement"], row.get("model"), row.get("workers")) for row in rows]
    assert kinds == [
        ("pretraining", "wav2vec2-tiny", None), ("finetuning", "wav2vec2-tiny", None),
        ("pretraining", "hubert-tiny", None), ("finetuning", "hubert-tiny", None),
        ("loader", "wav2vec2-base collator (100 negatives)", 0), ("loader", "wav2vec2-base collator (100 negatives)", 2),
    ]
    for row in rows:
        assert "audio_seconds_per_second" in row and "mfu" in row
        assert row["audio_seconds_per_second"] > 0
        if row["measurement"] == "loader":
            assert row["mfu"] is None
            assert row["audio_seconds_per_second_per_core"] == pytest.approx(row["audio_seconds_per_second"] / max(row["workers"], 1))
        else:
            assert 0 < row["mfu"] and np.isfinite(row["mfu"])
            assert row["mfu"] == pytest.approx(row["achieved_tflops"] / row["peak_tflops"])
            assert row["achieved_tflops"] * 1e12 == pytest.approx(row["model_flops_per_step"] / row["seconds_per_step"])
            assert row["peak_flops_source"].startswith("measured")  # no datasheet peak for a CPU
            assert row["audio_seconds_per_second"] == pytest.approx(row["audio_seconds_per_step"] / row["seconds_per_step"])
