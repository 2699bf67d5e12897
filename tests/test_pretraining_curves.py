"""`voc2vec.pretraining.curves`: metrics.jsonl drawn as one PNG, with the healthy ranges of the run's objective."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from voc2vec.pretraining import curves


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


def test_curves_draw_every_logged_quantity_with_shaded_ranges_and_warning_marks(tmp_path, monkeypatch):
    run_dir = write_run(tmp_path / "run", wav2vec2_rows(collapse_at=200), {"objective": "wav2vec2", "num_negatives": 100, "codebook_size": 640})
    drawn = {}
    original = curves.Figure.savefig

    def keep_figure(figure, *args, **kwargs):
        drawn["figure"] = figure
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(curves.Figure, "savefig", keep_figure)
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
