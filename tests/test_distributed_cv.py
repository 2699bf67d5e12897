"""run_cv.py under torchrun with 2 CPU processes (gloo): folds (of one run, or of every cell of a grid) shared across
processes, and data-parallel folds; every file written once, by the rank that should (rank 0 for run-level files).

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
import yaml

from cv_fixtures import TINY_MODEL, fast_training_flags, write_tone_corpus

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

# Runs a script's main() as the launcher starts it, recording which rank wrote which run-folder file (every writer of
# voc2vec/rundir.py and voc2vec/results.py goes through rundir.write_through_temporary), and failing the folds in
# `failing_folds` wherever they run (as a crash on one GPU would).
LAUNCHED_SCRIPT = """
import os, sys
sys.path.insert(0, {root!r})
rank = os.environ["RANK"]  # read now: folds mode removes the launcher's variables
import voc2vec.rundir
real_write = voc2vec.rundir.write_through_temporary
def recorded_write(path, write):
    real_write(path, write)
    with open(os.path.join({writes!r}, "rank" + rank + ".log"), "a") as log:
        log.write(os.path.relpath(path, {output_dir!r}) + "\\n")
voc2vec.rundir.write_through_temporary = recorded_write
import voc2vec.results
import {script} as script
assert voc2vec.results.write_through_temporary is recorded_write
real_run_split = script.run_split
def failing_run_split(*args, extra_metadata=None, **kwargs):
    if extra_metadata and extra_metadata["fold"] in {failing_folds!r}:
        raise RuntimeError("simulated failure of fold " + str(extra_metadata["fold"]))
    return real_run_split(*args, extra_metadata=extra_metadata, **kwargs)
script.run_split = failing_run_split
sys.exit(script.main())
"""


def launched(tmp_path, name, output_dir, script="run_cv", failing_folds=()):
    """The wrapper script (LAUNCHED_SCRIPT) for one launch, and the folder its per-rank write logs go to."""
    writes = tmp_path / f"writes-{name}"
    writes.mkdir()
    path = tmp_path / f"launched-{name}.py"
    path.write_text(LAUNCHED_SCRIPT.format(root=str(ROOT), writes=str(writes), output_dir=str(output_dir), script=script,
                                           failing_folds=list(failing_folds)))
    return path, writes


def writers(writes) -> dict[str, list[int]]:
    """Each run-folder file written (relative to the output folder) -> the rank of each write of it."""
    files = {}
    for log in sorted(writes.glob("rank*.log")):
        for line in log.read_text().splitlines():
            files.setdefault(line, []).append(int(log.stem.removeprefix("rank")))
    return files


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


def fold_files(fold: int) -> list[str]:
    return [f"fold_{fold:02d}/predictions.csv", f"fold_{fold:02d}/metrics.json"]


RESULT_FILES = ["summary.json", "results.md", "results.csv"]


def test_folds_shared_across_processes_equal_one_process(corpus, tmp_path):
    csv_path, cache = corpus
    reference = tmp_path / "reference"
    result = run([sys.executable, "run_cv.py", *cv_argv(csv_path, reference, cache)])
    assert result.returncode == 0, result.stderr[-3000:]

    # Two processes, fold 1 failing: rank 0 reports it and the run exits non-zero, with no mean.
    shared = tmp_path / "shared"
    script, writes = launched(tmp_path, "failing", shared, failing_folds=[1])
    result = torchrun(script, cv_argv(csv_path, shared, cache))
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-3000:]
    assert fold_ranks(log) == {0: [0], 1: [1], 2: [0]}  # each fold once, round robin
    assert "simulated failure of fold 1" in json.loads((shared / "fold_01" / "failed.json").read_text())["error"]
    assert re.search(r"\[rank 0\].*2 of 3 folds finished; failed: \[1\]", log)
    assert "mean" not in json.loads((shared / "summary.json").read_text())
    assert log.count("| fold | UAR |") == 0  # nothing printed as a result
    # Every file written once: the run-level files by rank 0, each fold's by the rank that ran it.
    expected = {"splits.csv": [0], "cv_config.json": [0], "summary.json": [0], "model/training_info.json": [0],
                "fold_01/failed.json": [1], **{name: [0] for name in fold_files(0) + fold_files(2)}}
    assert writers(writes) == expected

    # The same command resumes: only fold 1 runs (on rank 0, the first pending fold), rank 0 merges and prints once.
    script, writes = launched(tmp_path, "resumed", shared)
    result = torchrun(script, cv_argv(csv_path, shared, cache))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert fold_ranks(log) == {1: [0]}
    assert log.count("| **mean ± std** |") == 1
    assert writers(writes) == {name: [0] for name in ["splits.csv", "cv_config.json", *fold_files(1), *RESULT_FILES]}
    summary, expected = (json.loads((folder / "summary.json").read_text()) for folder in (shared, reference))
    assert summary["per_fold"] == expected["per_fold"] and summary["pooled"] == expected["pooled"]
    assert pd.read_csv(shared / "splits.csv").equals(pd.read_csv(reference / "splits.csv"))
    assert sorted(path.name for path in shared.iterdir()) == sorted(path.name for path in reference.iterdir())
    assert not list(shared.rglob("*.tmp"))


def grid_ranks(log: str) -> dict[tuple[str, str, int], list[int]]:
    """(model, dataset, fold) -> the ranks that logged running it ('[rank 1]: grid: tiny on tones-2, fold 0 on rank 1')."""
    ranks = {}
    for rank, model, dataset, fold in re.findall(r"\[rank (\d)\]: grid: (\S+) on (\S+), fold (\d+) on rank \1\b", log):
        ranks.setdefault((model, dataset, int(fold)), []).append(int(rank))
    return ranks


def test_a_grid_shares_all_its_folds_across_processes_and_equals_one_process(corpus, tmp_path):
    csv_path, cache = corpus
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({
        "dataset_name": "csv", "speaker_column": "speaker", "validation_fraction": 0.5, "print_results": False,
        "grid": {"models": {"tiny": TINY_MODEL},
                 "datasets": {"tones-3": {"data_files": [str(csv_path)], "num_folds": 3},
                              "tones-2": {"data_files": [str(csv_path)], "num_folds": 2}}},
    }, sort_keys=False))  # the grid's order is the config's
    reference = tmp_path / "reference"
    one_process = run([sys.executable, "run_cv.py", str(config), *fast_training_flags(reference, cache)])
    assert one_process.returncode == 0, one_process.stderr[-3000:]

    shared = tmp_path / "shared"
    script, writes = launched(tmp_path, "grid", shared)
    result = torchrun(script, [str(config), *fast_training_flags(shared, cache)])
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    # The 5 folds of both cells shared out as one list, round robin: tones-2's fold 0 goes to rank 1, as it would not
    # if each cell's folds were shared out on their own.
    owners = {("tiny", "tones-3", 0): 0, ("tiny", "tones-3", 1): 1, ("tiny", "tones-3", 2): 0,
              ("tiny", "tones-2", 0): 1, ("tiny", "tones-2", 1): 0}
    assert grid_ranks(log) == {pair: [rank] for pair, rank in owners.items()}
    expected = {"grid_results.md": [0], "grid_results.csv": [0]}
    for (_, dataset, fold), rank in owners.items():
        cell = f"tiny/{dataset}"
        expected |= {f"{cell}/{name}": [0] for name in ["splits.csv", "cv_config.json", *RESULT_FILES]}
        expected |= {f"{cell}/{name}": [rank] for name in fold_files(fold) + (["model/training_info.json"] if fold == 0 else [])}
    assert writers(writes) == expected
    # One table, printed once by rank 0, equal to the one-process run's.
    table = (shared / "grid_results.md").read_text()
    assert table == (reference / "grid_results.md").read_text() and result.stdout.count(table) == 1
    assert result.stdout.count("| model | method |") == one_process.stdout.count("| model | method |") == 2
    assert (shared / "grid_results.csv").read_text() == (reference / "grid_results.csv").read_text()
    for dataset in ("tones-3", "tones-2"):
        summary, expected = (json.loads((folder / "tiny" / dataset / "summary.json").read_text()) for folder in (shared, reference))
        assert summary["complete"] and summary["per_fold"] == expected["per_fold"] and summary["pooled"] == expected["pooled"]


def test_one_fold_data_parallel_on_all_processes(corpus, tmp_path):
    csv_path, cache = corpus
    output_dir = tmp_path / "ddp"
    script, writes = launched(tmp_path, "ddp", output_dir)
    result = torchrun(script, cv_argv(csv_path, output_dir, cache, "--distribute", "ddp", "--use_cpu", "true",
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
    # Rank 1 trained every fold but wrote nothing; rank 0 wrote every file once.
    assert writers(writes) == {name: [0] for name in ["splits.csv", "cv_config.json", *fold_files(0), "model/training_info.json",
                                                      *fold_files(1), *RESULT_FILES]}


def test_run_classification_under_a_launcher_trains_data_parallel(corpus, tmp_path):
    csv_path, cache = corpus
    output_dir = tmp_path / "single"
    argv = ["--dataset_name", "csv", "--data_files", str(csv_path), "--speaker_column", "speaker", "--test_fraction", "0.25",
            "--validation_fraction", "0.34", "--use_cpu", "true", *fast_training_flags(output_dir, cache)]
    script, writes = launched(tmp_path, "single", output_dir, script="run_classification")
    result = torchrun(script, argv)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in log
    assert len(re.findall(r"epoch 1: train loss", log)) == 2 and log.count("model, metrics.json and predictions.csv written") == 1
    assert writers(writes) == {"training_info.json": [0], "predictions.csv": [0], "metrics.json": [0]}  # rank 0 alone
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["num_clips"]["test"] == len(pd.read_csv(output_dir / "predictions.csv"))
