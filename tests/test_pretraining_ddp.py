"""run_pretraining.py on two CPU processes (torchrun, gloo): the multi-GPU path without GPUs.

With layerdrop each process skips different transformer layers, so DDP must not wait for their gradients; the
main process alone writes metrics.jsonl, one row per logging step, with the audio of both processes.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState, GradientState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run_pretraining

FLAGS = ["--max_batch_seconds", "6", "--logging_steps", "1", "--report_to", "none", "--dataloader_num_workers", "0",
         "--layerdrop", "0.5", "--checkpointing_steps", "1000"]


def read_metrics(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_with_layerdrop_log_one_row_per_update_with_both_processes_audio(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    config = str(ROOT / "configs" / "pretraining" / "demo.yaml")
    command = [torchrun, "--standalone", "--nproc_per_node", "2", str(ROOT / "run_pretraining.py"), config,
               "--output_dir", str(tmp_path / "ddp"), "--max_train_steps", "3", *FLAGS]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-5000:]
    rows = read_metrics(tmp_path / "ddp")
    assert [row["update"] for row in rows] == [1, 2, 3], "one row per logging step, from the main process only"
    assert (tmp_path / "ddp" / "final" / "model.safetensors").exists()

    # Each process takes every second batch of the same stream, so update k of the two processes consumes the
    # batches of updates 2k-1 and 2k of one process: the row must count the audio and masked frames of both.
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    assert run_pretraining.main([config, "--output_dir", str(tmp_path / "single"), "--max_train_steps", "6", *FLAGS]) == 0
    single = read_metrics(tmp_path / "single")
    for row, first, second in zip(rows, single[0::2], single[1::2], strict=True):
        assert row["audio_seconds"] == pytest.approx(first["audio_seconds"] + second["audio_seconds"])
        assert row["masked_frames"] == first["masked_frames"] + second["masked_frames"]
        assert row["audio_seconds_per_second"] > 0
        # the loss is the mean over both processes' masked frames, made of its weighted terms
        assert row["loss"] == pytest.approx(row["contrastive_loss"] + 0.1 * row["diversity_loss"] + 10 * row["feature_penalty"], rel=1e-6)
