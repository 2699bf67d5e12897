"""The run folder: every file name and format a fine-tuning or cross-validation run leaves, in one place.

    output_dir/
      cv_config.json        what the run is (model, corpus, protocol, every setting that changes a fold's result)
      splits.csv            path (relative to the corpus root), speaker, label, fold, and each run's role per clip
      fold_XX/metrics.json  a finished fold (written last: its presence marks the fold done)
      fold_XX/predictions.csv
      fold_XX/failed.json   a failed fold (removed when it is run again)
      fold_XX/logs/         the Trainer's logs (TensorBoard, ...): kept after the fold's checkpoints are deleted
      summary.json, results.md, results.csv, confusion_matrix.png   (voc2vec.results)
      model/                a loadable model (config with label names, safetensors, feature extractor, card)

`run_classification.py` writes the same `metrics.json` and `predictions.csv` into its output folder. Paths in
result files are relative to the corpus root recorded once in `cv_config.json`, so results can be shared and
moved. Every file is written through a temporary name of its own (`write_through_temporary`), so a killed process
never leaves half a file and processes that start together (SLURM array tasks) never trip over each other's.
"""

from __future__ import annotations

import json
import os
import shutil
import traceback
import uuid
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import softmax

from voc2vec.errors import UserError

if TYPE_CHECKING:  # the corpus and model modules pull in datasets and torch; cards and uploads need only the names
    from voc2vec.tasks import TaskCorpus

CV_CONFIG_FILE = "cv_config.json"
SPLITS_FILE = "splits.csv"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
FAILED_FILE = "failed.json"
SUMMARY_FILE = "summary.json"
RESULTS_MARKDOWN_FILE = "results.md"
RESULTS_CSV_FILE = "results.csv"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
MODEL_DIR = "model"
TRAINING_INFO_FILE = "training_info.json"


def fold_dir(output_dir: str | os.PathLike, fold: int) -> Path:
    return Path(output_dir) / f"fold_{fold:02d}"


def is_finished(folder: Path) -> bool:
    return (folder / METRICS_FILE).is_file()


def write_through_temporary(path: Path, write) -> None:
    """`write(temporary)`, then rename it over `path` (atomic): a killed process never leaves half a file behind.
    The temporary name is this call's own, so processes writing the same file at once (SLURM array tasks that
    start together and each write splits.csv) never replace or delete each other's; the last rename wins."""
    path = Path(path)
    temporary = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    write_through_temporary(path, lambda temporary: temporary.write_text(json.dumps(data, indent=2, default=_json_default)))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Not JSON serializable: {type(value).__name__}")


# ---------------------------------------------------------------------------------------------------------------------
# Run identity: splits.csv and cv_config.json
# ---------------------------------------------------------------------------------------------------------------------


def splits_table(corpus: TaskCorpus, assignment: np.ndarray, runs: dict) -> pd.DataFrame:
    """One row per clip: where it is tested (`fold`), and its role (train / validation / test / -) in each run."""
    from voc2vec.tasks import CLASSIFICATION  # here, not at the top: uploads and cards import this module for its names

    table = pd.DataFrame({
        "path": corpus.relative_paths(),
        "speaker": corpus.speakers,
        "label": [corpus.label_names[t] for t in corpus.targets] if corpus.task == CLASSIFICATION else "",
        "fold": assignment,
    })
    for fold, split in runs.items():
        role = np.full(len(assignment), "-", dtype=object)
        role[split.train] = "train"
        role[split.validation] = "validation"
        role[split.test] = "test"  # the paper protocol's validation is its test fold: "test" says it all
        table[f"role_fold_{fold:02d}"] = role
    return table


def write_or_check_splits(path: Path, table: pd.DataFrame) -> None:
    """splits.csv records which clip is tested in which fold; a rerun must find the same folds, or it would mix
    results of different splits."""
    if path.is_file():
        previous = pd.read_csv(path, keep_default_na=False, dtype=str)
        current = table.astype(str)
        same = previous.columns.tolist() == current.columns.tolist() and all(
            previous[column].tolist() == current[column].tolist() for column in ("path", "fold")
        )
        if not same:
            raise UserError(f"{path} holds different folds (another corpus, seed, --num_folds or --protocol)",
                            where=path.parent, fix="use a new --output_dir, or delete that folder to start over")
    write_through_temporary(path, lambda temporary: table.to_csv(temporary, index=False))


def write_or_check_run_config(path: Path, config: dict) -> None:
    """cv_config.json describes the run. A rerun resumes it only with the same model, data and every setting that
    changes a fold's result (`config["settings"]`): otherwise finished folds (skipped) and new ones would be
    averaged together. The differing settings are named."""
    if path.is_file():
        previous = read_json(path)
        identity = {key: config.get(key) for key in ("dataset", "dataset_config", "model_name_or_path", "protocol", "num_folds", "seed")}
        changed = [f"{key}: {previous.get(key)!r} -> {value!r}" for key, value in identity.items() if previous.get(key) != value]
        old_settings, new_settings = previous.get("settings", {}), config.get("settings", {})
        changed += [f"--{key}: {old_settings.get(key)!r} -> {new_settings.get(key)!r}"
                    for key in sorted(set(old_settings) | set(new_settings)) if old_settings.get(key) != new_settings.get(key)]
        if changed:
            raise UserError(f"{path.parent} holds a run with other settings ({'; '.join(changed)})", where=path,
                            fix="rerun with the settings it was started with, use a new --output_dir, or delete that folder to start over")
    write_json(path, config)


# ---------------------------------------------------------------------------------------------------------------------
# A finished fold: predictions, model, metrics
# ---------------------------------------------------------------------------------------------------------------------


def predictions_table(corpus: TaskCorpus, rows: np.ndarray, outputs: np.ndarray) -> pd.DataFrame:
    """One line per scored clip: path, speaker, the truth, the prediction, and class probabilities (or values)."""
    from voc2vec.tasks import CLASSIFICATION

    paths = corpus.relative_paths()
    table = pd.DataFrame({"path": [paths[row] for row in rows], "speaker": [corpus.speakers[row] for row in rows]})
    if corpus.task == CLASSIFICATION:
        probabilities = softmax(np.asarray(outputs, dtype=np.float32), axis=-1)
        table["label"] = [corpus.label_names[class_id] for class_id in corpus.targets[rows]]
        table["prediction"] = [corpus.label_names[class_id] for class_id in np.asarray(outputs).argmax(axis=-1)]
        for class_id, name in enumerate(corpus.label_names):
            table[f"prob_{name}"] = probabilities[:, class_id]
    else:
        for column, name in enumerate(corpus.label_names):
            table[f"label_{name}"] = corpus.targets[rows, column]
            table[f"prediction_{name}"] = outputs[:, column]
    return table


def save_model(model, feature_extractor, directory: Path, info: dict) -> None:
    """A loadable model folder: config (with label names), safetensors weights, feature extractor, and what it was
    trained on. No `training_args.bin` (a pickle): `training_info.json` says what it said."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    feature_extractor.save_pretrained(directory)
    write_json(directory / TRAINING_INFO_FILE, info)


def write_fold_results(folder: Path, metrics: dict, predictions: pd.DataFrame) -> None:
    """predictions.csv first, metrics.json last: its presence marks a finished fold (runs resume by it)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_through_temporary(folder / PREDICTIONS_FILE, lambda temporary: predictions.to_csv(temporary, index=False))
    (folder / FAILED_FILE).unlink(missing_ok=True)
    write_json(folder / METRICS_FILE, metrics)


def record_failure(folder: Path, error: BaseException) -> None:
    """failed.json with the error and traceback; the fold's partial files (checkpoints) are removed so a full disk
    does not make every later fold fail too."""
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / FAILED_FILE, {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()})
    except OSError:  # a full disk may refuse even this; the run's exit code and log still report the failure
        pass


def read_failure(folder: Path) -> str | None:
    path = folder / FAILED_FILE
    return read_json(path)["error"] if path.is_file() else None
