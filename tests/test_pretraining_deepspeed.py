"""run_pretraining.py under `accelerate launch` with DeepSpeed ZeRO-2 on the CPU: finite loss, loadable checkpoint.

Slow the first time on a machine: DeepSpeed compiles its CPU communication op (about 3 minutes on 2 cores),
then caches it under ~/.cache/torch_extensions.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

deepspeed = pytest.importorskip("deepspeed")


@pytest.mark.slow
def test_deepspeed_zero2_runs_and_checkpoints(tmp_path):
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from safetensors.torch import load_file
    from transformers import AutoModelForAudioClassification

    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    command = [
        accelerate, "launch", "--config_file", str(ROOT / "configs" / "accelerate" / "deepspeed_zero2_cpu.yaml"),
        str(ROOT / "run_pretraining.py"), str(ROOT / "configs" / "pretraining" / "demo.yaml"),
        "--output_dir", str(tmp_path), "--max_train_steps", "3", "--gradient_accumulation_steps", "2",
        "--checkpointing_steps", "3", "--logging_steps", "1", "--max_batch_seconds", "6",
        "--report_to", "none", "--dataloader_num_workers", "0",
    ]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900, check=False)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-5000:]

    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["update"] for row in rows] == [1, 2, 3]
    assert all(math.isfinite(row["loss"]) and math.isfinite(row["grad_norm"]) for row in rows)

    checkpoint = tmp_path / "checkpoints" / "checkpoint-3"
    weights = get_fp32_state_dict_from_zero_checkpoint(str(checkpoint), tag="pytorch_model")
    exported = load_file(tmp_path / "final" / "model.safetensors")
    assert weights.keys() == exported.keys()
    for name, tensor in exported.items():
        torch.testing.assert_close(weights[name].float(), tensor, msg=name)
    # The export loads as a classifier's encoder with the trained weights (only the new head is random).
    classifier = AutoModelForAudioClassification.from_pretrained(tmp_path / "final", num_labels=6).state_dict()
    encoder = [name for name in exported if name.startswith("wav2vec2.")]  # the pretraining head stays behind
    shared = [name for name in encoder if name in classifier]
    assert len(encoder) > 40 and shared == encoder
    for name in shared:
        torch.testing.assert_close(classifier[name], exported[name], msg=name)
