"""The run folder's writers when several processes write at once (SLURM array tasks that start together)."""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from voc2vec.rundir import write_or_check_run_config, write_or_check_splits


def test_simultaneous_first_writes_of_the_same_run_files_all_succeed(tmp_path):
    """Every array task of `--fold k` jobs writes (or checks) splits.csv and cv_config.json on start: writers of the
    same content at the same moment must all succeed, and leave complete files and no temporary ones."""
    clips = 3000
    table = pd.DataFrame({"path": [f"clips/clip{clip}.wav" for clip in range(clips)], "speaker": [f"s{clip % 40}" for clip in range(clips)],
                          "label": ["cry", "laugh", "sigh"] * (clips // 3), "fold": np.arange(clips) % 10})
    config = {"dataset": "csv", "model_name_or_path": "tiny", "protocol": "speaker-cv", "num_folds": 10, "seed": 42,
              "settings": {"learning_rate": 1e-4, "num_train_epochs": 50}}

    def start_a_task(_):
        write_or_check_splits(tmp_path / "splits.csv", table)
        write_or_check_run_config(tmp_path / "cv_config.json", config)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(start_a_task, range(64)))  # re-raises the first writer's error
    assert pd.read_csv(tmp_path / "splits.csv", keep_default_na=False).equals(table)
    assert json.loads((tmp_path / "cv_config.json").read_text()) == config
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cv_config.json", "splits.csv"]
