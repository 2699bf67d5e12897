"""run_pretraining.py under faults and bad input (issue 11): kills during a checkpoint save, resumed metrics,
read-only folders and full disks, and every option checked before any work starts."""

import errno
import json
import logging
import shutil
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import yaml
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run_pretraining
from voc2vec.pretraining import checkpoints
from voc2vec.pretraining.monitoring import MetricsLog

DEMO = str(ROOT / "configs" / "pretraining" / "demo.yaml")
QUICK = ["--max_batch_seconds", "6", "--logging_steps", "1", "--report_to", "none", "--dataloader_num_workers", "0"]
DiskUsage = namedtuple("DiskUsage", "total used free")


def run(output_dir: Path, *flags: str, config: str = DEMO) -> int:
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    return run_pretraining.main([config, "--output_dir", str(output_dir), *QUICK, *flags])


def error_line(captured) -> str:
    """The one `error: ...` line an entry point prints (progress bars share stderr); fails if there is none."""
    lines = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, captured.err[-3000:]
    assert "Traceback" not in captured.err
    return lines[0]


def read_metrics(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_latest_skips_a_checkpoint_whose_save_was_killed_and_says_so(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    original_save_state = Accelerator.save_state
    calls = {"count": 0}

    def killed_during_the_second_save(self, output_dir=None, **kwargs):
        calls["count"] += 1
        if calls["count"] == 2:  # the weights are written, then the process dies
            Path(output_dir).mkdir(parents=True)
            (Path(output_dir) / "model.safetensors").write_bytes(b"half a file")
            raise KeyboardInterrupt
        return original_save_state(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", killed_during_the_second_save)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "--max_train_steps", "4", "--checkpointing_steps", "2")
    monkeypatch.undo()
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4.partial"]
    # an older layout's folder saved in place and cut short: named like a checkpoint, without the last file
    (tmp_path / "checkpoints" / "checkpoint-3").mkdir()
    (tmp_path / "checkpoints" / "checkpoint-3" / "model.safetensors").write_bytes(b"")

    assert run(tmp_path, "--max_train_steps", "5", "--checkpointing_steps", "2", "--resume_from_checkpoint", "latest",
               "--checkpoints_total_limit", "1") == 0
    assert f"skipping {tmp_path / 'checkpoints' / 'checkpoint-4.partial'}" in caplog.text
    assert f"skipping {tmp_path / 'checkpoints' / 'checkpoint-3'}" in caplog.text
    assert f"resumed from {tmp_path / 'checkpoints' / 'checkpoint-2'} at update 2" in caplog.text
    # the new save at update 4 replaced the partial one; the leftovers and, past the limit of 1, checkpoint-2 are gone
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-4"]
    assert [row["update"] for row in read_metrics(tmp_path)] == [1, 2, 3, 4, 5]
    assert (tmp_path / "final" / "model.safetensors").exists()


def test_resuming_from_a_named_incomplete_checkpoint_is_refused(tmp_path, capsys):
    partial = tmp_path / "checkpoints" / "checkpoint-4.partial"
    partial.mkdir(parents=True)
    assert run(tmp_path, "--max_train_steps", "5", "--resume_from_checkpoint", str(partial)) == 2
    error = error_line(capsys.readouterr())
    assert "not completely written" in error and str(partial) in error and "Fix:" in error
    assert run(tmp_path, "--max_train_steps", "5", "--resume_from_checkpoint", str(tmp_path / "nowhere")) == 2
    assert "checkpoint folder not found" in error_line(capsys.readouterr())


@pytest.mark.slow
def test_resumed_metrics_hold_each_update_once(tmp_path, caplog):
    """Killed after update 5 with the last checkpoint at 3: rows 4 and 5 are logged again, so the first ones go."""
    caplog.set_level(logging.INFO)
    assert run(tmp_path, "--max_train_steps", "5", "--checkpointing_steps", "3") == 0
    straight = read_metrics(tmp_path)
    shutil.rmtree(tmp_path / "final")  # as if killed after update 5, before the end
    assert run(tmp_path, "--max_train_steps", "5", "--checkpointing_steps", "3", "--resume_from_checkpoint", "latest") == 0
    rows = read_metrics(tmp_path)
    assert [row["update"] for row in rows] == [1, 2, 3, 4, 5]
    assert "dropped 2 rows logged after update 3" in caplog.text
    for before, after in zip(straight, rows):  # exact resume: the redone updates log the same values
        assert after["loss"] == pytest.approx(before["loss"], rel=1e-5)


def test_metrics_log_drops_rows_through_a_temporary_file(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for update in (1, 2, 3, 4):
        log.write({"update": update, "loss": float(update)})
    assert log.drop_rows_after(2) == 2
    assert [json.loads(line)["update"] for line in log.path.read_text().splitlines()] == [1, 2]
    assert log.drop_rows_after(2) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_an_output_folder_that_cannot_be_created_is_reported_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert run(blocker / "run", "--max_train_steps", "1") == 2
    error = error_line(capsys.readouterr())
    assert f"--output_dir {blocker / 'run'}" in error and "Fix:" in error


@pytest.mark.skipif(not hasattr(sys, "getwindowsversion") and __import__("os").geteuid() == 0,
                    reason="root writes into read-only folders; the check is exercised above through a blocked path")
def test_a_read_only_output_folder_is_reported_as_not_writable(tmp_path, capsys):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        assert run(read_only, "--max_train_steps", "1") == 2
    finally:
        read_only.chmod(0o700)
    error = error_line(capsys.readouterr())
    assert "not writable" in error and str(read_only) in error


def test_an_unwritable_kmeans_cache_is_reported_before_hubert_targets_are_fitted(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = str(ROOT / "configs" / "pretraining" / "demo-hubert.yaml")
    assert run(tmp_path / "run", "--kmeans_cache_dir", str(blocker / "kmeans"), config=config) == 2
    assert "--kmeans_cache_dir" in error_line(capsys.readouterr())
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_full_disk_stops_before_the_checkpoint_and_names_the_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda path: DiskUsage(10**9, 10**9 - 1000, 1000))
    assert run(tmp_path, "--max_train_steps", "4", "--checkpointing_steps", "2") == 2
    error = error_line(capsys.readouterr())
    assert error.startswith("error: no space left on device") and str(tmp_path / "checkpoints") in error
    assert "--resume_from_checkpoint latest" in error
    assert not list((tmp_path / "checkpoints").iterdir()), "no half-written checkpoint"
    assert [row["update"] for row in read_metrics(tmp_path)] == [1, 2]


def test_a_write_that_fails_in_torch_is_diagnosed_as_a_full_disk(tmp_path, monkeypatch, capsys):
    """torch's writer reports a full disk as `basic_ios::clear: iostream error`; the message must say what it is."""
    space = {"free": 10**12}
    monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda path: DiskUsage(10**12, 10**12 - space["free"], space["free"]))

    def disk_fills_up_while_saving(self, output_dir=None, **kwargs):
        Path(output_dir).mkdir(parents=True)
        (Path(output_dir) / "optimizer.bin").write_bytes(b"partial")
        space["free"] = 0
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed\nbasic_ios::clear: iostream error")

    monkeypatch.setattr(Accelerator, "save_state", disk_fills_up_while_saving)
    assert run(tmp_path, "--max_train_steps", "2", "--checkpointing_steps", "2") == 2
    error = error_line(capsys.readouterr())
    assert "no space left on device" in error and str(tmp_path / "checkpoints") in error and "iostream" not in error
    assert not list((tmp_path / "checkpoints").iterdir()), "the partial checkpoint is removed"


def test_a_full_disk_while_logging_names_the_folder(tmp_path, monkeypatch, capsys):
    def no_space(self, row):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(MetricsLog, "write", no_space)
    assert run(tmp_path, "--max_train_steps", "1") == 2
    error = error_line(capsys.readouterr())
    assert error.startswith("error: no space left on device") and f"({tmp_path})" in error


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--learning_rate", "-1e-4"], "--learning_rate"),
        (["--learning_rate", "0"], "--learning_rate"),
        (["--max_batch_seconds", "0"], "--max_batch_seconds"),
        (["--max_train_steps", "-5"], "--max_train_steps"),
        (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps"),
        (["--warmup_ratio", "1.5"], "--warmup_ratio"),
        (["--logging_steps", "0"], "--logging_steps"),
        (["--checkpointing_steps", "0"], "--checkpointing_steps"),
        (["--checkpoints_total_limit", "0"], "--checkpoints_total_limit"),
        (["--max_grad_norm", "0"], "--max_grad_norm"),
        (["--adam_beta2", "1.0"], "--adam_beta2"),
        (["--weight_decay", "-0.1"], "--weight_decay"),
        (["--mixed_precision", "fp32"], "--mixed_precision"),
        (["--report_to", "tensorbord"], "--report_to"),
        (["--mask_time_prob", "1.5"], "--mask_time_prob"),
        (["--mask_time_length", "0"], "--mask_time_length"),
        (["--num_negatives", "0"], "--num_negatives"),
        (["--min_gumbel_temperature", "3"], "--min_gumbel_temperature"),
        (["--gumbel_temperature_decay", "1.5"], "--gumbel_temperature_decay"),
        (["--kmeans_features", "spectrogram"], "--kmeans_features"),
        (["--num_clusters", "1"], "--num_clusters"),
        (["--attn_implementation", "fast"], "--attn_implementation"),
        (["--torch_compile", "--torch_compile_backend", "inductr"], "--torch_compile_backend"),
        (["--feature_grad_mult", "0"], "--feature_grad_mult"),
        (["--feature_penalty_weight", "-1"], "--feature_penalty_weight"),
        (["--layerdrop", "1.0"], "--layerdrop"),
        (["--max_crop_seconds", "0"], "--max_crop_seconds"),
        (["--min_duration_seconds", "20"], "--min_duration_seconds"),
        (["--num_buckets", "0"], "--num_buckets"),
        (["--dataloader_num_workers", "-1"], "--dataloader_num_workers"),
        (["--max_train_clips", "0"], "--max_train_clips"),
        (["--config_name", ""], "--config_name"),
        (["--max_train_steps", "ten"], "ten"),
        (["--learnin_rate", "1e-4"], "learnin_rate"),
    ],
)
def test_bad_options_are_refused_at_parse_time_with_the_fix(tmp_path, capsys, flags, named):
    assert run(tmp_path / "run", "--max_train_steps", "1", *flags) == 2  # one update at most if a check were missing
    error = error_line(capsys.readouterr())
    assert named in error and "Fix:" in error, error
    assert not (tmp_path / "run").exists(), "refused before any work started"


def test_config_file_mistakes_are_refused(tmp_path, capsys):
    no_source = tmp_path / "no-source.yaml"
    no_source.write_text(yaml.safe_dump({"config_name": str(ROOT / "configs" / "models" / "tiny-wav2vec2.json"), "max_train_steps": 1}))
    assert run_pretraining.main([str(no_source), "--output_dir", str(tmp_path / "run")]) == 2
    assert "--dataset_name, --data_dir or --train_files" in error_line(capsys.readouterr())
    with_grid = tmp_path / "grid.yaml"
    with_grid.write_text(Path(DEMO).read_text() + "grid:\n  models: [a]\n")
    assert run_pretraining.main([str(with_grid), "--output_dir", str(tmp_path / "run")]) == 2
    assert "grid" in error_line(capsys.readouterr())
    bert = tmp_path / "bert.json"
    bert.write_text(json.dumps({"model_type": "bert"}))
    assert run(tmp_path / "run", "--config_name", str(bert)) == 2
    assert "pretraining supports hubert, wav2vec2 models, not 'bert'" in error_line(capsys.readouterr())
