"""Cross-validation summaries merged from fold files with fixed scores: mean and the standard deviation the summary
names (population, ddof=0, by default as the paper reports; sample on request), in summary.json, results.md and
results.csv."""

import csv
import math

import numpy as np
import pytest

from voc2vec.results import merge_folds, spread, spread_rows
from voc2vec.rundir import CV_CONFIG_FILE, METRICS_FILE, fold_dir, write_json

CCC = [0.2, 0.4, 0.9]  # mean 0.5; squared deviations 0.09 + 0.01 + 0.16 = 0.26
POPULATION_STD = math.sqrt(0.26 / 3)  # 0.2944
SAMPLE_STD = math.sqrt(0.26 / 2)  # 0.3606


def test_spread_is_the_named_standard_deviation():
    assert spread(CCC, "population") == pytest.approx(POPULATION_STD, abs=1e-12)
    assert spread(CCC, "sample") == pytest.approx(SAMPLE_STD, abs=1e-12)
    assert spread([0.7], "sample") == 0.0  # one fold: no spread (not NaN)
    rows = spread_rows(np.array([[0.2, 1.0], [0.4, 1.0], [0.9, 1.0]]), "population")
    assert rows == pytest.approx([POPULATION_STD, 0.0], abs=1e-12)


def merged_run(output_dir, std_kind):
    """A finished regression run of three folds with the scores CCC (and MSE = CCC / 10), merged from its files."""
    write_json(output_dir / CV_CONFIG_FILE, {
        "dataset": "fixture", "dataset_config": None, "model_name_or_path": "tiny", "protocol": "speaker-cv",
        "protocol_note": None, "num_folds": len(CCC), "fold_kind": "fixture folds", "seed": 42, "std_kind": std_kind,
    })
    for fold, value in enumerate(CCC):
        fold_dir(output_dir, fold).mkdir(parents=True)
        write_json(fold_dir(output_dir, fold) / METRICS_FILE, {
            "task": "regression", "head": "mean-pool + linear", "label_names": ["Valence"], "evaluated_on": "fixture",
            "test": {"mean_ccc": value, "mse": value / 10},
        })
    return merge_folds(output_dir)


@pytest.mark.parametrize("std_kind, std, shown", [
    ("population", POPULATION_STD, "| **mean ± std** | 50.0 ± 29.4 | 0.0500 ± 0.0294 |"),
    ("sample", SAMPLE_STD, "| **mean ± std** | 50.0 ± 36.1 | 0.0500 ± 0.0361 |"),
])
def test_merged_summary_reports_the_declared_std_over_folds(tmp_path, std_kind, std, shown):
    summary = merged_run(tmp_path, std_kind)
    assert summary["complete"] and [fold["fold"] for fold in summary["per_fold"]] == [0, 1, 2]
    assert summary["mean"]["mean_ccc"] == pytest.approx(0.5, abs=1e-12)
    assert summary["std"]["mean_ccc"] == pytest.approx(std, abs=1e-12)
    assert summary["std"]["mse"] == pytest.approx(std / 10, abs=1e-12)
    assert summary["std_type"] == f"{std_kind} standard deviation over folds (ddof={0 if std_kind == 'population' else 1})"
    markdown = (tmp_path / "results.md").read_text()
    assert shown in markdown.splitlines() and summary["std_type"] in markdown
    rows = {row[0]: row[1:] for row in csv.reader((tmp_path / "results.csv").open())}
    assert float(rows[f"std ({std_kind})"][0]) == pytest.approx(std, abs=1e-12)
