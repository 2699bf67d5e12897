"""The paper's Figure 1: `voc2vec.tsne.main` maps each model's pooled embeddings (one panel per model) from the probing
cache, writes the PNG and the coordinates, and refuses what it cannot draw."""

import sys

import numpy as np
import pandas as pd
import pytest
from cv_fixtures import TINY_MODEL, write_tone_corpus
from PIL import Image

from voc2vec import tsne
from voc2vec.baselines import extractors


@pytest.fixture(scope="module")
def tone_csv(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tones"))


def map_flags(tone_csv, tmp_path, *extra):
    return ["--model", f"tiny={TINY_MODEL}", "opensmile:eGeMAPSv02", "--dataset_name", "csv", "--data_files", str(tone_csv),
            "--corpus_cache_dir", str(tmp_path / "cache"), "--max_duration", "0.5", "--perplexity", "5",
            "--output", str(tmp_path / "figure.png"), *extra]


@pytest.mark.slow
def test_one_panel_per_model_from_the_cache(tone_csv, tmp_path, monkeypatch):
    assert tsne.main(map_flags(tone_csv, tmp_path)) == 0
    coordinates = pd.read_csv(tmp_path / "figure.csv")
    assert list(coordinates.columns) == ["path", "label", "model", "x", "y"]
    assert coordinates.groupby("model").size().to_dict() == {"opensmile:eGeMAPSv02": 36, "tiny": 36}
    assert np.isfinite(coordinates[["x", "y"]].to_numpy()).all()
    assert set(coordinates["label"]) == {"low", "mid", "high"}
    width, height = Image.open(tmp_path / "figure.png").size
    assert width > 1.8 * height  # two panels side by side and the legend
    # openSMILE's features separate the three pitch bands: each clip's nearest neighbour on the map shares its class.
    points = coordinates[coordinates["model"] == "opensmile:eGeMAPSv02"]
    xy = points[["x", "y"]].to_numpy()
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(len(xy)) * 1e9
    assert (points["label"].to_numpy()[distances.argmin(axis=1)] == points["label"].to_numpy()).mean() > 0.8

    # A second figure (another layer, a subset) reads every model's features from the cache.
    def no_computation(*args, **kwargs):
        raise AssertionError("features computed again")

    monkeypatch.setattr(extractors.EncoderFeatures, "compute", no_computation)
    monkeypatch.setattr(extractors.OpenSmileFeatures, "compute", no_computation)
    assert tsne.main(map_flags(tone_csv, tmp_path, "--layer", "0", "--max_clips", "12")) == 0
    subset = pd.read_csv(tmp_path / "figure.csv")
    assert len(subset) == 24 and subset[subset["model"] == "tiny"]["label"].value_counts().tolist() == [4, 4, 4]


def test_umap_without_umap_learn_names_the_install(tone_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    assert tsne.main(map_flags(tone_csv, tmp_path, "--projection", "umap")) == 2
    assert "pip install umap-learn" in capsys.readouterr().err


def test_bad_layer_and_output_are_refused(tone_csv, tmp_path, capsys):
    assert tsne.main(map_flags(tone_csv, tmp_path, "--layer", "7")) == 2
    assert "layer 7 does not exist" in capsys.readouterr().err
    assert tsne.main(map_flags(tone_csv, tmp_path, "--output", str(tmp_path / "figure.pdf"))) == 2
    assert "must be a .png file" in capsys.readouterr().err
