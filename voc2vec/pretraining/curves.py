"""A pretraining run's `metrics.jsonl` drawn as one PNG, with healthy ranges shaded and guard warnings marked.

    python -m voc2vec.pretraining.curves outputs/demo-pretraining                 # -> outputs/demo-pretraining/curves.png
    python -m voc2vec.pretraining.curves outputs/demo-pretraining --output c.png

One panel per logged quantity against updates: each loss term, codevector perplexity (with the codebook size as
its ceiling), masked-prediction accuracy, Gumbel temperature, gradient norm (with the clipping norm), learning
rate, throughput, and what equal-length batches cost either way (the audio cropping to the shortest clip drops,
the zeros padding to the longest adds; pretraining_run.json says which the run did). Where a range is known to be
healthy it is shaded green:

- contrastive loss below chance, ln(1 + negatives): an untrained model cannot tell the true quantized frame from
  the distractors; HuBERT's masked-prediction loss below ln(clusters), accuracy above 1 / clusters;
- codevector perplexity between 1% of the codebook (the collapse guard's floor) and the codebook size, and the
  diversity loss that mirrors it, (codebook - perplexity) / codebook, below 0.99;
- gradient norm between the vanishing-gradient guard (1e-7) and the clipping norm (above it every update is
  clipped: a learning rate too high for the batch).

These are the ranges the run's own guards and chance levels define, not targets: a run can sit inside all of
them and still learn little, but a curve leaving one is where to look first. Red dashed lines mark the updates
at which a collapse guard warned (the `warnings` of metrics.jsonl rows).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from voc2vec.errors import UserError, exit_on_user_error
from voc2vec.pretraining.monitoring import (
    COLLAPSED_PERPLEXITY_FRACTION,
    VANISHING_GRAD_NORM,
)

RUN_FILE = "pretraining_run.json"  # written by run_pretraining.py next to metrics.jsonl
PANELS = (  # (metrics.jsonl key, panel title, log-scale y)
    ("loss", "loss (minimized)", False),
    ("contrastive_loss", "contrastive loss", False),
    ("diversity_loss", "diversity loss", False),
    ("masked_prediction_loss", "masked-prediction loss", False),
    ("feature_penalty", "CNN feature penalty", True),
    ("codevector_perplexity", "codevector perplexity", False),
    ("masked_accuracy", "masked-prediction accuracy", False),
    ("gumbel_temperature", "Gumbel temperature", False),
    ("grad_norm", "gradient norm (before clipping)", True),
    ("learning_rate", "learning rate", False),
    ("audio_seconds_per_second", "throughput (audio s/s)", False),
    ("dropped_by_cropping", "share of the audio cropping drops", False),
    ("padding_share", "share of the input padding fills", False),
)


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise UserError("no metrics.jsonl in the folder", where=run_dir, fix="give the output_dir of a run_pretraining.py run")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise UserError("metrics.jsonl has no rows yet", where=path, fix="wait for the run's first logging step")
    return rows


def read_run_description(run_dir: str | Path) -> dict:
    path = Path(run_dir) / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def healthy_ranges(run: dict) -> dict[str, tuple[float, float, str]]:
    """(low, high, what it means) per metrics key, from what the run description says about the objective."""
    objective, arguments = run.get("objective", {}), run.get("arguments", {})
    ranges: dict[str, tuple[float, float, str]] = {}
    if objective.get("num_negatives"):
        chance = math.log(1 + objective["num_negatives"])
        ranges["contrastive_loss"] = (0.0, chance, f"below chance, ln(1 + {objective['num_negatives']} negatives)")
    if objective.get("codebook_size"):
        size = objective["codebook_size"]
        ranges["codevector_perplexity"] = (COLLAPSED_PERPLEXITY_FRACTION * size, size, "codebook in use")
        ranges["diversity_loss"] = (0.0, 1 - COLLAPSED_PERPLEXITY_FRACTION, "codebook in use")
    if objective.get("num_clusters"):
        clusters = objective["num_clusters"]
        ranges["masked_prediction_loss"] = (0.0, math.log(clusters), f"below chance, ln({clusters} clusters)")
        ranges["masked_accuracy"] = (1 / clusters, 1.0, f"above chance, 1/{clusters}")
    if arguments.get("max_grad_norm"):
        ranges["grad_norm"] = (VANISHING_GRAD_NORM, float(arguments["max_grad_norm"]), "not vanishing, not clipped")
    return ranges


def plot_curves(run_dir: str | Path, output_png: str | Path | None = None) -> Path:
    """Draw `run_dir/metrics.jsonl` as one PNG (default `run_dir/curves.png`) and return its path."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    run = read_run_description(run_dir)
    ranges = healthy_ranges(run)
    codebook_size = run.get("objective", {}).get("codebook_size")
    panels = [(key, title, log) for key, title, log in PANELS if any(row.get(key) is not None for row in rows)]
    warned_at = [row["update"] for row in rows if row.get("warnings")]

    columns = 3
    grid_rows = max(1, math.ceil(len(panels) / columns))
    figure = Figure(figsize=(5 * columns, 3.2 * grid_rows), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{run_dir.name}: {run.get('objective', {}).get('objective', 'pretraining')}, {len(rows)} log rows")
    for index, (key, title, log_scale) in enumerate(panels):
        axes = figure.add_subplot(grid_rows, columns, index + 1)
        points = [(row["update"], row[key]) for row in rows if row.get(key) is not None]
        updates, values = zip(*points)
        axes.plot(updates, values, color="tab:blue", linewidth=1.2, marker="." if len(points) < 50 else None)
        if key in ranges:
            low, high, meaning = ranges[key]
            axes.axhspan(low, high, color="tab:green", alpha=0.12, label=f"healthy: {meaning}")
        if key == "codevector_perplexity" and codebook_size:
            axes.axhline(codebook_size, color="black", linestyle=":", linewidth=1, label=f"codebook size {codebook_size}")
        for update in warned_at:
            axes.axvline(update, color="tab:red", linestyle="--", linewidth=1)
        if log_scale and min(values) > 0:
            axes.set_yscale("log")
        if key in ranges:  # the curve stays readable: the band may span far more, so only its nearby edges count
            axes.set_ylim(*_limits(values, ranges[key][:2], log_scale and min(values) > 0))
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("update", fontsize=8)
        axes.tick_params(labelsize=8)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7, loc="best")
    if warned_at:
        figure.text(0.01, 0.005, f"red dashed: collapse-guard warnings at updates {', '.join(map(str, warned_at[:10]))}"
                    + (" ..." if len(warned_at) > 10 else ""), color="tab:red", fontsize=8)
    output_png = Path(output_png) if output_png else run_dir / "curves.png"
    output_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_png, dpi=110)
    return output_png


def _limits(values, band: tuple[float, float], log_scale: bool) -> tuple[float, float]:
    """y limits around the data, stretched to a band edge that lies near it (within 100x on a log axis, within
    twice the data's spread or a fifth of its level on a linear one)."""
    low, high = min(values), max(values)
    if log_scale:
        for edge in band:
            if edge > 0 and max(edge, low) / min(edge, low) <= 100 or max(edge, high) / min(edge, high) <= 100:
                low, high = min(low, edge), max(high, edge)
        return low / 1.5, high * 1.5
    reach = 2 * max(high - low, 0.1 * abs(high), 1e-12)
    for edge in band:
        if low - reach <= edge <= high + reach:
            low, high = min(low, edge), max(high, edge)
    margin = 0.08 * (high - low or abs(high) or 1.0)
    return low - margin, high + margin


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw a pretraining run's metrics.jsonl as one PNG.")
    parser.add_argument("run_dir", help="run_pretraining.py's output_dir (holds metrics.jsonl)")
    parser.add_argument("--output", default=None, help="PNG to write (default: RUN_DIR/curves.png)")
    args = parser.parse_args(argv)
    print(plot_curves(args.run_dir, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
