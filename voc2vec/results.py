"""Cross-validation results from files: per-fold metrics merged into a summary, tables and a confusion matrix.

Every fold writes `fold_XX/metrics.json` when it finishes (or `fold_XX/failed.json` when it fails), so results
can be merged by any process after folds ran anywhere: `merge_folds` never averages over fewer folds than were
planned; a missing or failed fold makes the summary incomplete and the caller exits non-zero.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd

from voc2vec.metrics import classification_metrics
from voc2vec.plots import plot_confusion_matrix, plot_layer_weights
from voc2vec.rundir import (
    CV_CONFIG_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    SUMMARY_FILE,
    fold_dir,
    read_failure,
    read_json,
    write_json,
    write_through_temporary,
)
from voc2vec.tasks import CLASSIFICATION

POOLED_METRICS = ("uar", "accuracy", "macro_f1")
CLASSIFICATION_COLUMNS = {"uar": "UAR", "accuracy": "Acc", "macro_f1": "F1"}
REGRESSION_COLUMNS = {"mean_ccc": "CCC", "mse": "MSE"}


UAR_DEFINITIONS = {
    "present": "per-fold UAR: mean recall over the classes present in the fold's test clips",
    "union": "per-fold UAR: scikit-learn's recall_score(average='macro'), over the union of true and predicted "
             "classes (a class predicted but absent from the fold counts as 0), as the seed repository",
}


class IncompleteResults(RuntimeError):
    """Some folds are missing or failed: no mean is reported."""


def headline_metrics(task: str) -> dict[str, str]:
    return CLASSIFICATION_COLUMNS if task == CLASSIFICATION else REGRESSION_COLUMNS


def read_folds(output_dir: str | Path, num_folds: int) -> tuple[dict[int, dict], dict[int, str], list[int]]:
    """`(finished, failed, missing)`: metrics of the finished folds, the error of the failed ones, and the rest."""
    finished, failed, missing = {}, {}, []
    for fold in range(num_folds):
        folder = fold_dir(output_dir, fold)
        if (folder / METRICS_FILE).is_file():
            finished[fold] = read_json(folder / METRICS_FILE)
        elif (error := read_failure(folder)) is not None:
            failed[fold] = error
        else:
            missing.append(fold)
    return finished, failed, missing


def pooled_metrics(output_dir: Path, folds: list[int], label_names: list[str], uar_over: str) -> dict:
    """UAR, accuracy and macro-F1 over every test prediction of every fold (the summed confusion matrix), read back
    from the written predictions.csv files."""
    tables = [pd.read_csv(fold_dir(output_dir, fold) / PREDICTIONS_FILE, keep_default_na=False, dtype={"label": str, "prediction": str})
              for fold in folds]
    table = pd.concat(tables, ignore_index=True)
    class_id = {name: index for index, name in enumerate(label_names)}
    y_true = table["label"].map(class_id).to_numpy()
    y_pred = table["prediction"].map(class_id).to_numpy()
    metrics = classification_metrics(y_true, y_pred, uar_over=uar_over)
    return {name: metrics[name] for name in POOLED_METRICS} | {"num_clips": len(table)}


def spread(values: list[float], std: str) -> float:
    """Standard deviation over folds: population (ddof=0, as the paper reports) or sample (ddof=1)."""
    if len(values) < 2:
        return 0.0
    return float(np.std(values, ddof=0 if std == "population" else 1))


def spread_rows(values: np.ndarray, std: str) -> np.ndarray:
    """`spread` of each column of a `(folds, values)` array."""
    if len(values) < 2:
        return np.zeros(values.shape[1])
    return np.std(values, axis=0, ddof=0 if std == "population" else 1)


def merge_folds(output_dir: str | Path) -> dict:
    """Summarize every planned fold of a run from its files; writes summary.json, results.md, results.csv and the
    summed confusion matrix PNG. Raises `IncompleteResults` (after writing an incomplete summary) when folds are
    missing or failed."""
    output_dir = Path(output_dir)
    config_path = output_dir / CV_CONFIG_FILE
    if not config_path.is_file():
        raise IncompleteResults(f"{output_dir} holds no {CV_CONFIG_FILE}: no cross-validation was started there.")
    config = read_json(config_path)
    finished, failed, missing = read_folds(output_dir, config["num_folds"])
    summary = {**config, "complete": not failed and not missing}
    if failed or missing:
        summary.update(failed_folds=failed, missing_folds=missing, finished_folds=sorted(finished))
        write_json(output_dir / SUMMARY_FILE, summary)
        raise IncompleteResults(
            f"{len(finished)} of {config['num_folds']} folds finished"
            + (f"; failed: {sorted(failed)} (see fold_XX/failed.json)" if failed else "")
            + (f"; not run: {missing}" if missing else "")
            + ". No mean is reported over fewer folds. Rerun the same command to run only the unfinished folds."
        )

    folds = [finished[fold] for fold in sorted(finished)]
    task = folds[0]["task"]
    per_fold = [{"fold": fold, **finished[fold]["test"]} for fold in sorted(finished)]
    metric_names = [name for name in folds[0]["test"] if all(name in fold["test"] for fold in folds)]
    values = {name: [fold["test"][name] for fold in folds] for name in metric_names}
    summary.update(
        task=task,
        method=folds[0].get("method", "fine-tuned"),
        head=folds[0]["head"],
        label_names=folds[0]["label_names"],
        evaluated_on=[fold["evaluated_on"] for fold in folds],
        std_type=f"{config['std_kind']} standard deviation over folds (ddof={0 if config['std_kind'] == 'population' else 1})",
        mean={name: float(np.mean(series)) for name, series in values.items()},
        std={name: spread(series, config["std_kind"]) for name, series in values.items()},
        per_fold=per_fold,
        timing_seconds={
            stage: [fold.get("timing_seconds", {}).get(stage) for fold in folds]
            for stage in ("data", "features", "training", "evaluation")
            if any(stage in fold.get("timing_seconds", {}) for fold in folds)
        },
    )
    layer_weights = [fold["probe"]["layer_weights"] for fold in folds if (fold.get("probe") or {}).get("layer_weights")]
    if layer_weights:  # a probe's learned softmax weights over the encoder's layers, per fold
        weights = np.asarray(layer_weights)
        summary["layer_weights"] = {"per_fold": weights.tolist(), "mean": weights.mean(axis=0).tolist(),
                                    "std": spread_rows(weights, config["std_kind"]).tolist()}
        plot_layer_weights(weights, output_dir / "layer_weights.png",
                           title=f"{config['dataset']}: {config['model_name_or_path']}\nlearned layer weights, {len(layer_weights)} folds")
    if task == CLASSIFICATION:
        uar_over = config.get("uar_over", "present")
        summary["uar_definition"] = UAR_DEFINITIONS[uar_over]
        summary["pooled"] = pooled_metrics(output_dir, sorted(finished), summary["label_names"], uar_over)
        matrix = np.sum([np.asarray(fold["confusion_matrix"]) for fold in folds], axis=0)
        summary["confusion_matrix_summed_over_folds"] = matrix.tolist()
        plot_confusion_matrix(
            matrix, summary["label_names"], output_dir / "confusion_matrix.png",
            title=f"{config['dataset']}: {len(folds)} folds summed",
        )
    write_json(output_dir / SUMMARY_FILE, summary)
    write_through_temporary(output_dir / "results.md", lambda temporary: temporary.write_text(results_markdown(summary)))
    write_results_csv(output_dir / "results.csv", summary)
    return summary


def percent(value: float) -> str:
    return "nan" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def mean_std(summary: dict, metric: str) -> str:
    """`72.3 ± 2.1` in percent for classification scores and CCC; raw numbers for MSE."""
    mean, std = summary["mean"].get(metric), summary["std"].get(metric)
    if mean is None:
        return "-"
    if metric == "mse":
        return f"{mean:.4f} ± {std:.4f}"
    return f"{percent(mean)} ± {percent(std)}"


def layer_weights_line(weights: list[float]) -> str:
    mean = ", ".join(f"{weight:.3f}" for weight in weights)
    return f"- learned layer weights (mean over folds, hidden state 0 first): {mean} (layer_weights.png)"


def results_markdown(summary: dict) -> str:
    """One run's table: a row per fold, then mean ± std; the protocol and the std used are stated above it."""
    columns = headline_metrics(summary["task"])
    lines = [
        f"# {summary['dataset']}: {summary['model_name_or_path']}",
        "",
        f"- protocol: **{summary['protocol']}**" + (f" — {summary['protocol_note']}" if summary.get("protocol_note") else ""),
        f"- folds: {summary['num_folds']} ({summary['fold_kind']}); seed {summary['seed']}",
        f"- method: {summary.get('method', 'fine-tuned')}; head: {summary['head']}",
        *([layer_weights_line(summary["layer_weights"]["mean"])] if summary.get("layer_weights") else []),
        f"- scores in %, mean ± {summary['std_type']}",
        *([(f"- {summary['uar_definition']}; pooled: over all {summary['pooled']['num_clips']} test predictions of all "
            "folds (the summed confusion matrix)")] if summary.get("pooled") else []),
        "",
        "| fold | " + " | ".join(columns.values()) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for fold in summary["per_fold"]:
        cells = [(f"{fold[name]:.4f}" if name == "mse" else percent(fold[name])) for name in columns]
        lines.append(f"| {fold['fold']} | " + " | ".join(cells) + " |")
    lines.append("| **mean ± std** | " + " | ".join(mean_std(summary, name) for name in columns) + " |")
    if summary.get("pooled"):
        lines.append("| **pooled** | " + " | ".join(percent(summary["pooled"][name]) for name in columns) + " |")
    return "\n".join(lines) + "\n"


def write_results_csv(path: Path, summary: dict) -> None:
    metrics = [name for name in summary["mean"]]
    rows = [["fold", *metrics]]
    rows += [[fold["fold"], *(fold.get(name, "") for name in metrics)] for fold in summary["per_fold"]]
    rows.append(["mean", *(summary["mean"][name] for name in metrics)])
    rows.append([f"std ({summary['std_kind']})", *(summary["std"][name] for name in metrics)])
    if summary.get("pooled"):
        rows.append(["pooled", *(summary["pooled"].get(name, "") for name in metrics)])
    write_through_temporary(path, lambda temporary: write_csv_rows(temporary, rows))


def write_csv_rows(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows(rows)


# ---------------------------------------------------------------------------------------------------------------------
# Model x dataset grids (the paper's Table IV)
# ---------------------------------------------------------------------------------------------------------------------


def row_method(summaries: dict, model: str, datasets: list[str]) -> str:
    """What a grid row is (fine-tuned, probed layer k, weighted layers, an openSMILE set), from its runs' summaries."""
    methods = sorted({summary.get("method", "fine-tuned") for dataset in datasets if (summary := summaries.get((model, dataset)))})
    return " / ".join(methods) or "-"


def grid_tables(summaries: dict[tuple[str, str], dict | None], models: list[str], datasets: list[str]) -> tuple[str, list[list]]:
    """Rows models, columns the row's method then datasets x (UAR, Acc, F1) as mean ± std, like the paper's Table IV.

    `summaries[(model, dataset)]` is a run's summary, or None for a run that failed. Returns the Markdown table
    (then the pooled metrics in a second table of the same shape) and the CSV rows (mean and std in separate
    columns, then the pooled metrics).
    """
    task = next((summary["task"] for summary in summaries.values() if summary), CLASSIFICATION)
    columns = headline_metrics(task)
    header = ["model", "method"] + [f"{dataset} {label}" for dataset in datasets for label in columns.values()]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---|" * (len(header) - 1)]
    csv_rows = [["model", "method"] + [f"{dataset}/{name}_{kind}" for dataset in datasets for name in columns for kind in ("mean", "std")]]
    pooled = task == CLASSIFICATION
    if pooled:
        csv_rows[0] += [f"{dataset}/pooled_{name}" for dataset in datasets for name in columns]
    pooled_lines = ["| " + " | ".join(header) + " |", "|---|" + "---|" * (len(header) - 1)]
    for model in models:
        method = row_method(summaries, model, datasets)
        cells, csv_row, pooled_cells = [model, method], [model, method], [model, method]
        for dataset in datasets:
            summary = summaries.get((model, dataset))
            for name in columns:
                cells.append(mean_std(summary, name) if summary else "failed")
                csv_row += [summary["mean"].get(name), summary["std"].get(name)] if summary else ["", ""]
                pooled_cells.append(percent(summary["pooled"][name]) if summary and summary.get("pooled") else "-")
        if pooled:
            csv_row += [summary["pooled"][name] if summary and summary.get("pooled") else ""
                        for dataset in datasets for summary in [summaries.get((model, dataset))] for name in columns]
        lines.append("| " + " | ".join(cells) + " |")
        pooled_lines.append("| " + " | ".join(pooled_cells) + " |")
        csv_rows.append(csv_row)
    std_types = {summary["std_type"] for summary in summaries.values() if summary}
    note = f"\nScores in %, mean ± {' / '.join(sorted(std_types)) or 'standard deviation over folds'}.\n"
    if pooled:
        note += "\nPooled over all test predictions of all folds (the summed confusion matrix), in %:\n\n" + "\n".join(pooled_lines) + "\n"
    return "\n".join(lines) + "\n" + note, csv_rows


def write_grid(output_dir: str | Path, summaries: dict, models: list[str], datasets: list[str]) -> str:
    markdown, csv_rows = grid_tables(summaries, models, datasets)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_through_temporary(output_dir / "grid_results.md", lambda temporary: temporary.write_text(markdown))
    write_through_temporary(output_dir / "grid_results.csv", lambda temporary: write_csv_rows(temporary, csv_rows))
    return markdown
