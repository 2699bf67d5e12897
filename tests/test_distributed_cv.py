"""run_cv.py under torchrun with 2 CPU processes (gloo): folds shared across processes, and data-parallel folds.

Every run here is a subprocess with one intra-op thread, so the reference single-process run and the two-process
runs do the same floating-point arithmetic and must give the same scores.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cv_fixtures import fast_training_flags, write_tone_corpus

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

# Fails fold 1 wherever it runs (as a crash on one GPU would), then runs run_cv as usual.
FAILING_FOLD_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import run_cv
real_run_split = run_cv.run_split
def fail_fold_1(*args, extra_metadata, **kwargs):
    if extra_metadata["fold"] == 1:
        raise RuntimeError("simulated failure of fold 1")
    return real_run_split(*args, extra_metadata=extra_metadata, **kwargs)
run_cv.run_split = fail_fold_1
sys.exit(run_cv.main())
"""


def run(command, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, **kwargs)


def torchrun(script, argv):
    return run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), *argv])


def cv_argv(csv_path, output_dir, cache_dir, *extra):
    return ["--dataset_name", "csv", "--data_files", str(csv_path), "--speaker_column", "speaker", "--num_folds", "3",
            "--validation_fraction", "0.5", *fast_training_flags(output_dir, cache_dir), *extra]


def fold_ranks(log: str) -> dict[int, list[int]]:
    """fold -> the ranks that logged training it ('fold 1 on rank 1: 9 train, ...')."""
    ranks = {}
    for fold, rank in re.findall(r"fold (\d+) on rank (\d+): \d+ train", log):
        ranks.setdefault(int(fold), []).append(int(rank))
    return ranks


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    return write_tone_corpus(root / "tones"), root / "cache"


def test_folds_shared_across_processes_equal_one_process(corpus, tmp_path):
    csv_path, cache = corpus
    reference = tmp_path / "reference"
    result = run([sys.executable, "run_cv.py", *cv_argv(csv_path, reference, cache)])
    assert result.returncode == 0, result.stderr[-3000:]

    # Two processes, fold 1 failing: rank 0 reports it and the run exits non-zero, with no mean.
    failing = tmp_path / "failing.py"
    failing.write_text(FAILING_FOLD_SCRIPT.format(root=str(ROOT)))
    shared = tmp_path / "shared"
    result = torchrun(failing, cv_argv(csv_path, shared, cache))
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-3000:]
    assert fold_ranks(log) == {0: [0], 1: [1], 2: [0]}  # each fold once, round robin
    assert "simulated failure of fold 1" in json.loads((shared / "fold_01" / "failed.json").read_text())["error"]
    assert re.search(r"\[rank 0\].*2 of 3 folds finished; failed: \[1\]", log)
    assert "mean" not in json.loads((shared / "summary.json").read_text())
    assert log.count("| fold | UAR |") == 0  # nothing printed as a result

    # The same command resumes: only fold 1 runs (on rank 0, the first pending fold), rank 0 merges and prints once.
    result = torchrun(ROOT / "run_cv.py", cv_argv(csv_path, shared, cache))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert fold_ranks(log) == {1: [0]}
    assert log.count("| **mean ± std** |") == 1
    summary, expected = (json.loads((folder / "summary.json").read_text()) for folder in (shared, reference))
    assert summary["per_fold"] == expected["per_fold"] and summary["pooled"] == expected["pooled"]
    assert pd.read_csv(shared / "splits.csv").equals(pd.read_csv(reference / "splits.csv"))
    assert sorted(path.name for path in shared.iterdir()) == sorted(path.name for path in reference.iterdir())
    assert not list(shared.rglob("*.tmp"))


def test_one_fold_data_parallel_on_all_processes(corpus, tmp_path):
    csv_path, cache = corpus
    output_dir = tmp_path / "ddp"
    result = torchrun(ROOT / "run_cv.py", cv_argv(csv_path, output_dir, cache, "--distribute", "ddp", "--use_cpu", "true",
                                                  "--num_folds", "2", "--per_device_train_batch_size", "4"))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert {fold: sorted(ranks) for fold, ranks in fold_ranks(log).items()} == {0: [0, 1], 1: [0, 1]}  # every fold on both
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in log  # the Trainer really ran data-parallel
    # Both ranks trained the same model: the same validation score on each, logged once per rank.
    validation = re.findall(r"\[rank (\d)\]: fold 0: epoch 1: .*validation uar ([\d.]+)", log)
    assert len(validation) == 2 and validation[0][1] == validation[1][1]
    summary = json.loads((output_dir / "summary.json").read_text())
    assert summary["complete"] and len(summary["per_fold"]) == 2
    assert log.count("| **mean ± std** |") == 1


def test_run_classification_under_a_launcher_trains_data_parallel(corpus, tmp_path):
    csv_path, cache = corpus
    output_dir = tmp_path / "single"
    argv = ["--dataset_name", "csv", "--data_files", str(csv_path), "--speaker_column", "speaker", "--test_fraction", "0.25",
            "--validation_fraction", "0.34", "--use_cpu", "true", *fast_training_flags(output_dir, cache)]
    result = torchrun(ROOT / "run_classification.py", argv)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in log
    assert len(re.findall(r"epoch 1: train loss", log)) == 2 and log.count("model, metrics.json and predictions.csv written") == 1
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["num_clips"]["test"] == len(pd.read_csv(output_dir / "predictions.csv"))
