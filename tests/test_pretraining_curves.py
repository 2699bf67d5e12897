"""`voc2vec.pretraining.curves`: metrics.jsonl drawn as one PNG, with the healthy ranges of the run's objective."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from accelerate.state import AcceleratorState, GradientState
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run_pretraining
from voc2vec import cli
from voc2vec.pretraining import curves

# What a log row holds besides the curves: its position and the interval's raw counts.
NOT_DRAWN = {"update", "audio_seconds", "masked_frames"}


def write_run(folder, rows, objective=None, max_grad_norm=10.0):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    if objective is not None:
        (folder / "pretraining_run.json").write_text(json.dumps({"objective": objective, "arguments": {"max_grad_norm": max_grad_norm}}))
    return folder


def wav2vec2_rows(count=30, collapse_at=None):
    rows = []
    for update in range(10, 10 * count + 1, 10):
        perplexity = 1.2 if collapse_at and update >= collapse_at else 400.0 - update / 10
        row = {"update": update, "loss": 4.0 - update / 1000, "contrastive_loss": 3.9 - update / 1000,
               "diversity_loss": (640 - perplexity) / 640, "feature_penalty": 0.1, "codevector_perplexity": perplexity,
               "gumbel_temperature": 2.0 * 0.9995**update, "grad_norm": 1.5, "learning_rate": 5e-4 * min(1, update / 100),
               "audio_seconds": 80.0, "audio_seconds_per_second": 950.0, "masked_frames": 3000}
        if collapse_at and update == collapse_at + 20:
            row["warnings"] = [f"update {update}: codevector perplexity 1.20 has stayed below 6.40 ..."]
        rows.append(row)
    return rows


def test_healthy_ranges_follow_the_objective():
    ranges = curves.healthy_ranges({"objective": {"num_negatives": 100, "codebook_size": 640}, "arguments": {"max_grad_norm": 10.0}})
    assert ranges["contrastive_loss"][:2] == (0.0, pytest.approx(math.log(101)))  # chance: 1 in 101 candidates
    assert ranges["codevector_perplexity"][:2] == (pytest.approx(6.4), 640)  # the collapse guard's floor, the ceiling
    assert ranges["diversity_loss"][:2] == (0.0, pytest.approx(0.99))
    assert ranges["grad_norm"][:2] == (1e-7, 10.0)
    hubert = curves.healthy_ranges({"objective": {"num_clusters": 500}})
    assert hubert["masked_prediction_loss"][1] == pytest.approx(math.log(500))
    assert hubert["masked_accuracy"][:2] == (pytest.approx(1 / 500), 1.0)
    assert "grad_norm" not in hubert and "contrastive_loss" not in hubert


@pytest.fixture
def drawn(monkeypatch) -> dict:
    """The last figure `curves` saved, as drawn["figure"]."""
    drawn = {}
    original = curves.Figure.savefig

    def keep_figure(figure, *args, **kwargs):
        drawn["figure"] = figure
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(curves.Figure, "savefig", keep_figure)
    return drawn


def test_curves_draw_every_logged_quantity_with_shaded_ranges_and_warning_marks(tmp_path, drawn):
    run_dir = write_run(tmp_path / "run", wav2vec2_rows(collapse_at=200), {"objective": "wav2vec2", "num_negatives": 100, "codebook_size": 640})
    path = curves.plot_curves(run_dir)
    assert path == run_dir / "curves.png"
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] > 300 and image.shape[1] > 600 and image.std() > 10  # drawn, not blank

    axes = {axis.get_title(): axis for axis in drawn["figure"].axes}
    expected = {"loss (minimized)", "contrastive loss", "diversity loss", "CNN feature penalty", "codevector perplexity",
                "Gumbel temperature", "gradient norm (before clipping)", "learning rate", "throughput (audio s/s)"}
    assert set(axes) == expected, "one panel per logged quantity, none for quantities the run did not log"
    perplexity = axes["codevector perplexity"]
    assert [tuple(line.get_ydata()) for line in perplexity.lines if line.get_linestyle() == ":"] == [(640, 640)], "ceiling"
    assert any(patch.get_label().startswith("healthy") for patch in perplexity.patches)
    for axis in axes.values():  # the warning at update 220 is marked on every panel
        assert any(line.get_linestyle() == "--" and tuple(line.get_xdata()) == (220, 220) for line in axis.lines)
    assert any("220" in text.get_text() for text in drawn["figure"].texts)


def test_curves_command_writes_the_png_where_asked_and_reports_a_missing_run(tmp_path, capsys):
    run_dir = write_run(tmp_path / "hubert", [{"update": 1, "loss": 6.1, "masked_prediction_loss": 6.0, "masked_accuracy": 0.01,
                                               "grad_norm": 2.0, "learning_rate": 1e-5, "audio_seconds_per_second": 10.0}])
    assert curves.main([str(run_dir), "--output", str(tmp_path / "out" / "c.png")]) == 0
    assert (tmp_path / "out" / "c.png").exists()
    assert curves.main([str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: no metrics.jsonl") and "Fix:" in error


@pytest.mark.slow
@pytest.mark.parametrize("config, flags, ranged", [
    ("demo.yaml", [], {"contrastive_loss", "diversity_loss", "codevector_perplexity", "grad_norm"}),
    ("demo-hubert.yaml", ["--num_clusters", "8", "--kmeans_max_fit_clips", "20", "--max_train_clips", "60"],
     {"masked_prediction_loss", "masked_accuracy", "grad_norm"}),
])
def test_a_real_runs_curves_draw_every_logged_quantity_and_shade_its_objectives_ranges(tmp_path, drawn, config, flags, ranged):
    """On the files run_pretraining.py writes: a metric an objective logs under a new name gets no panel, and a
    renamed key of its description (pretraining_run.json) loses its shaded range; both fail here."""
    run_dir = tmp_path / "run"
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    assert run_pretraining.main([str(ROOT / "configs" / "pretraining" / config), "--output_dir", str(run_dir), "--max_train_steps", "2",
                                 "--max_batch_seconds", "6", "--report_to", "none", "--dataloader_num_workers", "0", "--logging_steps", "1",
                                 "--kmeans_cache_dir", str(tmp_path / "kmeans"), *flags]) == 0
    assert cli.main(["curves", str(run_dir)]) == 0
    assert (run_dir / "curves.png").exists()

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = {key for row in rows for key, value in row.items() if isinstance(value, (int, float))} - NOT_DRAWN
    titles = {key: title for key, title, _ in curves.PANELS}
    assert logged <= titles.keys(), f"logged without a panel: {logged - titles.keys()}"
    axes = {axis.get_title(): axis for axis in drawn["figure"].axes}
    assert set(axes) == {titles[key] for key in logged}
    ranges = curves.healthy_ranges(json.loads((run_dir / "pretraining_run.json").read_text()))
    assert set(ranges) == ranged
    for key in ranged:
        assert any(patch.get_label().startswith("healthy") for patch in axes[titles[key]].patches), key
