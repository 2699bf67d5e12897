"""Feature baselines in the model's place, and one table of every method: openSMILE features equal openSMILE's own on
the clip a model sees, a grid mixes openSMILE, probed and fine-tuned rows on the same splits and every number in it
(per fold, mean ± std, pooled) equals scikit-learn's on the written predictions; openSMILE gets the paper's MLP head
by default and the feature cache serves another head; emotion2vec
names its install when FunASR is missing and goes through FunASR's interface when it is there."""

import importlib.machinery
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import opensmile
import pandas as pd
import pytest
import torch
import yaml
from cv_fixtures import TINY_MODEL, write_tone_corpus
from sklearn.metrics import accuracy_score, f1_score, recall_score

import run_cv
from voc2vec.arguments import DataArguments, ModelArguments
from voc2vec.audio import load_audio
from voc2vec.baselines import extractors, heads
from voc2vec.baselines.extractors import corpus_features
from voc2vec.cache import decode_corpus
from voc2vec.corpora import load_corpus
from voc2vec.models import check_model_source

DONATEACRY = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "donateacry-corpus"


@pytest.fixture(scope="module")
def tone_csv(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tones"))


def opensmile_features_of(dataset, tmp_path, max_duration):
    data_args = DataArguments(dataset_name="csv", max_duration=max_duration, corpus_cache_dir=str(tmp_path))
    model_args = ModelArguments(model_name_or_path="opensmile:eGeMAPSv02")
    config, stand_in = check_model_source(model_args)
    assert config is None and stand_in.sampling_rate == 16000
    decoded = decode_corpus(dataset, cache_dir=tmp_path / "decoded")
    return corpus_features(model_args, data_args, decoded, stand_in, config, seed=0).values


def opensmile_alone(path, max_duration):
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
    audio = load_audio(path, 16000)[: int(max_duration * 16000)]
    return smile.process_signal(audio, 16000).to_numpy()[0]


def test_opensmile_features_are_openSMILEs_own_of_the_evaluated_crop(tone_csv, tmp_path):
    dataset = load_corpus("csv", data_files=str(tone_csv), cache_dir=str(tmp_path))
    values = opensmile_features_of(dataset, tmp_path, max_duration=0.4)  # crops the 0.5 and 0.6 s clips
    assert values.shape == (36, 1, 88)
    for row in (0, 7, 35):
        np.testing.assert_allclose(values[row, 0], opensmile_alone(dataset[row]["path"], 0.4), rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(not DONATEACRY.is_dir(), reason=f"the real Donate A Cry copy is not at {DONATEACRY}")
def test_opensmile_on_real_8khz_donateacry_clips(tmp_path):
    dataset = load_corpus("donateacry", data_dir=str(DONATEACRY), cache_dir=str(tmp_path)).select([0, 150, 300, 456])
    values = opensmile_features_of(dataset, tmp_path, max_duration=7.0)
    for row in range(4):
        np.testing.assert_allclose(values[row, 0], opensmile_alone(dataset[row]["path"], 7.0), rtol=1e-5, atol=1e-4)


def sklearn_scores(table: pd.DataFrame, uar_over: str = "present") -> dict:
    labels = sorted(set(table["label"])) if uar_over == "present" else None
    return {
        "uar": recall_score(table["label"], table["prediction"], labels=labels, average="macro", zero_division=0),
        "accuracy": accuracy_score(table["label"], table["prediction"]),
        "macro_f1": f1_score(table["label"], table["prediction"], average="macro", zero_division=0),
    }


def check_run_against_sklearn(run_dir: Path) -> dict:
    """Every fold's scores, the mean ± std and the pooled scores of a run, recomputed with scikit-learn from the
    predictions.csv files; returns the summary."""
    summary = json.loads((run_dir / "summary.json").read_text())
    tables = []
    for entry in summary["per_fold"]:
        table = pd.read_csv(run_dir / f"fold_{entry['fold']:02d}" / "predictions.csv", keep_default_na=False)
        probabilities = table[[f"prob_{name}" for name in summary["label_names"]]].to_numpy()
        assert table["prediction"].tolist() == [summary["label_names"][index] for index in probabilities.argmax(axis=1)]
        for name, value in sklearn_scores(table).items():
            assert entry[name] == pytest.approx(value, abs=1e-9), (run_dir, entry["fold"], name)
        tables.append(table)
    for name in ("uar", "accuracy", "macro_f1"):
        per_fold = [entry[name] for entry in summary["per_fold"]]
        assert summary["mean"][name] == pytest.approx(np.mean(per_fold), abs=1e-12)
        assert summary["std"][name] == pytest.approx(np.std(per_fold), abs=1e-12)  # population std (the default)
    pooled = sklearn_scores(pd.concat(tables))
    assert {name: summary["pooled"][name] for name in pooled} == pytest.approx(pooled, abs=1e-9)
    return summary


@pytest.mark.slow
def test_one_table_of_opensmile_probed_and_fine_tuned_rows_checked_against_sklearn(tone_csv, tmp_path):
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({
        "dataset_name": "csv", "speaker_column": "speaker", "num_folds": 2, "validation_fraction": 0.5, "max_duration": 0.5,
        "num_train_epochs": 5, "print_results": False, "disable_tqdm": True, "dataloader_pin_memory": False,
        "per_device_train_batch_size": 8,
        "grid": {
            "models": {
                "eGeMAPS": {"model_name_or_path": "opensmile:eGeMAPSv02"},  # the paper's MLP head by default
                "tiny-probed": {"model_name_or_path": TINY_MODEL, "method": "probe", "probe_layer": "last"},
                "tiny-fine-tuned": {"model_name_or_path": TINY_MODEL, "num_train_epochs": 1, "learning_rate": 1e-3, "warmup_steps": 0},
            },
            "datasets": {"tones": {"data_files": [str(tone_csv)]}},
        },
    }))
    grid = tmp_path / "grid"
    assert run_cv.main([str(config), "--output_dir", str(grid), "--corpus_cache_dir", str(tmp_path / "cache")]) == 0
    rows = pd.read_csv(grid / "grid_results.csv")
    markdown = (grid / "grid_results.md").read_text().splitlines()
    assert markdown[0] == "| model | method | tones UAR | tones Acc | tones F1 |"
    methods = {"eGeMAPS": "openSMILE eGeMAPSv02 (mlp)", "tiny-probed": "probed last layer (linear, mean)", "tiny-fine-tuned": "fine-tuned"}
    for index, (name, method) in enumerate(methods.items()):
        summary = check_run_against_sklearn(grid / name / "tones")
        assert summary["method"] == method and markdown[2 + index].startswith(f"| {name} | {method} | ")
        assert rows.loc[index, "model"] == name and rows.loc[index, "method"] == method
        for metric in ("uar", "accuracy", "macro_f1"):
            assert rows.loc[index, f"tones/{metric}_mean"] == pytest.approx(summary["mean"][metric], abs=1e-12)
            assert rows.loc[index, f"tones/{metric}_std"] == pytest.approx(summary["std"][metric], abs=1e-12)
            assert rows.loc[index, f"tones/pooled_{metric}"] == pytest.approx(summary["pooled"][metric], abs=1e-12)
        uar = f"{100 * summary['mean']['uar']:.1f} ± {100 * summary['std']['uar']:.1f}"
        assert markdown[2 + index].split(" | ")[2] == uar
    pooled_table = markdown[markdown.index("Pooled over all test predictions of all folds (the summed confusion matrix), in %:") + 2:]
    assert pooled_table[0] == markdown[0]
    for index, name in enumerate(methods):
        pooled = json.loads((grid / name / "tones" / "summary.json").read_text())["pooled"]
        cells = [f"{100 * pooled[metric]:.1f}" for metric in ("uar", "accuracy", "macro_f1")]
        assert pooled_table[2 + index] == f"| {name} | {methods[name]} | {' | '.join(cells)} |"
    check_same_splits([grid / name / "tones" for name in methods])
    assert (grid / "tiny-fine-tuned" / "tones" / "model" / "config.json").is_file()  # fine-tuning keeps fold 0's model
    assert not (grid / "eGeMAPS" / "tones" / "model").exists()


@pytest.mark.slow
@pytest.mark.skipif(not DONATEACRY.is_dir(), reason=f"the real Donate A Cry copy is not at {DONATEACRY}")
def test_one_table_on_the_real_donateacry_corpus_checked_against_sklearn(tmp_path):
    """The issue's check on real data: openSMILE, probed and fine-tuned rows of one grid on the real 8 kHz Donate A Cry
    copy (457 clips, 221 app installations as speakers), every number equal to scikit-learn's on the predictions.
    Half-second crops and 2 folds keep it short; configs/cv/baselines-donateacry-tiny.yaml is the full run."""
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({
        "dataset_name": "donateacry", "data_dir": str(DONATEACRY), "num_folds": 2, "validation_fraction": 0.2,
        "max_duration": 0.5, "num_train_epochs": 3, "print_results": False, "disable_tqdm": True,
        "dataloader_pin_memory": False, "final_model": "none",
        "grid": {
            "models": {
                "eGeMAPS": {"model_name_or_path": "opensmile:eGeMAPSv02"},
                "tiny-probed": {"model_name_or_path": TINY_MODEL, "method": "probe", "probe_layer": "weighted"},
                "tiny-fine-tuned": {"model_name_or_path": TINY_MODEL, "num_train_epochs": 1, "learning_rate": 1e-3},
            },
            "datasets": {"donateacry": {"dataset_name": "donateacry"}},
        },
    }))
    grid = tmp_path / "grid"
    assert run_cv.main([str(config), "--output_dir", str(grid), "--corpus_cache_dir", str(tmp_path / "cache")]) == 0
    rows = pd.read_csv(grid / "grid_results.csv")
    assert rows["method"].tolist() == ["openSMILE eGeMAPSv02 (mlp)", "probed weighted layers (linear, mean)", "fine-tuned"]
    for index, name in enumerate(("eGeMAPS", "tiny-probed", "tiny-fine-tuned")):
        summary = check_run_against_sklearn(grid / name / "donateacry")
        assert rows.loc[index, "donateacry/uar_mean"] == pytest.approx(summary["mean"]["uar"], abs=1e-12)
        assert rows.loc[index, "donateacry/pooled_uar"] == pytest.approx(summary["pooled"]["uar"], abs=1e-12)
    check_same_splits([grid / name / "donateacry" for name in ("eGeMAPS", "tiny-probed", "tiny-fine-tuned")])
    splits = pd.read_csv(grid / "eGeMAPS" / "donateacry" / "splits.csv", keep_default_na=False)
    assert len(splits) == 457 and splits.groupby("speaker")["fold"].nunique().max() == 1  # speaker-disjoint folds


def check_same_splits(run_dirs: list[Path]) -> None:
    """Every method of a grid row was trained, validated and tested on the same clips: one splits.csv, and each
    fold's predictions.csv scores the same clips in the same order."""
    reference = (run_dirs[0] / "splits.csv").read_text()
    assert "role_fold_01" in reference.splitlines()[0]
    for run_dir in run_dirs[1:]:
        assert (run_dir / "splits.csv").read_text() == reference, run_dir
    splits = pd.read_csv(run_dirs[0] / "splits.csv", keep_default_na=False)
    for fold in sorted(set(splits["fold"])):
        tested = splits.loc[splits[f"role_fold_{fold:02d}"] == "test", ["path", "speaker", "label"]].values.tolist()
        assert tested
        for run_dir in run_dirs:
            predictions = pd.read_csv(run_dir / f"fold_{fold:02d}" / "predictions.csv", keep_default_na=False)
            assert predictions[["path", "speaker", "label"]].values.tolist() == tested, (run_dir, fold)


def opensmile_flags(tone_csv, output_dir, cache_dir, *extra):
    return ["--model_name_or_path", "opensmile:eGeMAPSv02", "--dataset_name", "csv", "--data_files", str(tone_csv),
            "--speaker_column", "speaker", "--num_folds", "2", "--validation_fraction", "0.5", "--print_results", "false",
            "--output_dir", str(output_dir), "--corpus_cache_dir", str(cache_dir), "--num_train_epochs", "5", *extra]


def test_opensmile_gets_the_papers_mlp_head_and_logreg_reads_the_cached_features(tone_csv, tmp_path, monkeypatch):
    # No --probe_head: the paper's "two linear layers with ReLU" for a feature baseline.
    trained_heads = []

    class RecordedProbeHead(heads.ProbeHead):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trained_heads.append(self.head)

    monkeypatch.setattr(heads, "ProbeHead", RecordedProbeHead)
    assert run_cv.main(opensmile_flags(tone_csv, tmp_path / "mlp", tmp_path / "cache")) == 0
    assert len(trained_heads) == 2  # one per fold
    for head in trained_heads:
        assert isinstance(head, torch.nn.Sequential) and [type(layer).__name__ for layer in head] == ["Linear", "ReLU", "Linear"]
        assert head[0].in_features == 88 and head[0].out_features == 256 and head[2].out_features == 3
    fold = json.loads((tmp_path / "mlp" / "fold_00" / "metrics.json").read_text())
    assert fold["method"] == "openSMILE eGeMAPSv02 (mlp)" and fold["probe"]["head"] == "mlp"
    assert "2-layer MLP (hidden 256, ReLU)" in fold["head"]
    assert json.loads((tmp_path / "mlp" / "summary.json").read_text())["method"] == "openSMILE eGeMAPSv02 (mlp)"
    assert json.loads((tmp_path / "mlp" / "cv_config.json").read_text())["settings"]["probe_head"] == "mlp"

    def no_extraction(self, clips, lengths, rows):
        raise AssertionError("openSMILE ran although the features are cached")

    monkeypatch.setattr(extractors.OpenSmileFeatures, "compute", no_extraction)
    assert run_cv.main(opensmile_flags(tone_csv, tmp_path / "logreg", tmp_path / "cache", "--probe_head", "logreg")) == 0
    fold = json.loads((tmp_path / "logreg" / "fold_01" / "metrics.json").read_text())
    assert fold["method"] == "openSMILE eGeMAPSv02 (logreg)" and fold["probe"]["features_computed_clips"] == 0
    assert "logistic regression" in fold["head"] and fold["validation"]["C"] in (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
    check_run_against_sklearn(tmp_path / "logreg")


def test_unknown_opensmile_set_stops_before_decoding(tone_csv, tmp_path, capsys):
    flags = opensmile_flags(tone_csv, tmp_path / "run", tmp_path / "cache")
    flags[1] = "opensmile:eGeMAPS_v2"
    assert run_cv.main(flags) == 2
    error = capsys.readouterr().err
    assert "unknown openSMILE feature set 'eGeMAPS_v2'" in error and "opensmile:eGeMAPSv02" in error
    assert not (tmp_path / "cache" / "decoded").exists()


def emotion2vec_flags(tone_csv, tmp_path):
    flags = opensmile_flags(tone_csv, tmp_path / "e2v", tmp_path / "cache")
    flags[1] = "emotion2vec:iic/emotion2vec_base"
    return flags


def test_emotion2vec_without_funasr_names_the_install(tone_csv, tmp_path, capsys, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "funasr" else real_find_spec(name, *args))
    assert run_cv.main(emotion2vec_flags(tone_csv, tmp_path)) == 2
    assert "pip install 'voc2vec[emotion2vec]'" in capsys.readouterr().err


def test_emotion2vec_goes_through_funasr(tone_csv, tmp_path, monkeypatch):
    """A stand-in `funasr` with FunASR's interface (`AutoModel(model=...).generate(audio, granularity=...,
    extract_embedding=True)` -> `[{"feats": vector}]`): what the toolkit passes and how it uses the answer."""
    calls = []

    class AutoModel:
        def __init__(self, model, **kwargs):
            calls.append(("load", model))

        def generate(self, audio, granularity, extract_embedding, **kwargs):
            calls.append(("generate", len(audio), granularity, extract_embedding))
            return [{"feats": np.array([audio.std(), np.abs(np.diff(audio)).mean(), len(audio) / 16000], dtype=np.float32)}]

    funasr = types.ModuleType("funasr")
    funasr.AutoModel, funasr.__version__ = AutoModel, "0.0-test"
    funasr.__spec__ = importlib.machinery.ModuleSpec("funasr", None)
    monkeypatch.setitem(sys.modules, "funasr", funasr)
    assert run_cv.main(emotion2vec_flags(tone_csv, tmp_path) + ["--max_duration", "0.4", "--num_train_epochs", "100",
                                                                "--early_stopping_patience", "20"]) == 0
    assert calls[0] == ("load", "iic/emotion2vec_base") and len(calls) == 1 + 36  # loaded once, one call per clip
    assert all(call[1] <= 0.4 * 16000 and call[2:] == ("utterance", True) for call in calls[1:])
    summary = check_run_against_sklearn(tmp_path / "e2v")
    assert summary["method"] == "emotion2vec iic/emotion2vec_base (mlp)"  # the paper's head, by default
    assert summary["mean"]["uar"] > 0.5  # the stand-in's features (noise level, zero crossings) separate the tones
