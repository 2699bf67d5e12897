"""The README's claims about the main job: the Quickstart config runs and leaves every output the README lists,
and training reads the decode-once cache, never the original audio files."""

import json

import numpy as np
import pytest
import soundfile
from huggingface_hub import ModelCard
from transformers import AutoModelForAudioClassification, pipeline

import run_cv
import voc2vec.audio
from cv_fixtures import fast_training_flags, write_tone_corpus

pytestmark = pytest.mark.slow


def test_quickstart_config_writes_every_output_the_readme_lists(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(run_cv.__file__.rsplit("/", 1)[0])  # the README runs it from the repository root
    output_dir = tmp_path / "demo-cv"
    # The Quickstart's own config; only the number of folds and epochs shrunk to keep the test short.
    assert run_cv.main(["configs/cv/demo.yaml", "--num_folds", "2", "--num_train_epochs", "1", "--output_dir", str(output_dir),
                        "--corpus_cache_dir", str(tmp_path / "cache")]) == 0
    summary = json.loads((output_dir / "summary.json").read_text())
    assert summary["complete"] and summary["dataset"] == "demo" and len(summary["label_names"]) == 6
    # The table the Quickstart prints: a row per fold and mean ± std, in %, the numbers of summary.json.
    printed = capsys.readouterr().out.splitlines()
    metrics = ("uar", "accuracy", "macro_f1")
    assert "| fold | UAR | Acc | F1 |" in printed
    for fold in summary["per_fold"]:
        assert f"| {fold['fold']} | " + " | ".join(f"{100 * fold[name]:.1f}" for name in metrics) + " |" in printed
    mean_std = [f"{100 * summary['mean'][name]:.1f} ± {100 * summary['std'][name]:.1f}" for name in metrics]
    assert "| **mean ± std** | " + " | ".join(mean_std) + " |" in printed
    assert "| **pooled** | " + " | ".join(f"{100 * summary['pooled'][name]:.1f}" for name in metrics) + " |" in printed
    assert any(line.startswith(f"Model: {output_dir / 'model'} (fold 0's best model") for line in printed)
    assert "mean ± std" in (output_dir / "results.md").read_text() and (output_dir / "results.csv").is_file()
    assert (output_dir / "confusion_matrix.png").stat().st_size > 1000
    for fold in range(2):
        assert (output_dir / f"fold_{fold:02d}" / "predictions.csv").is_file()
    model_dir = output_dir / "model"
    model = AutoModelForAudioClassification.from_pretrained(model_dir)
    assert sorted(model.config.id2label.values()) == sorted(summary["label_names"])
    scores = pipeline("audio-classification", model=str(model_dir))({"raw": np.zeros(16000, np.float32), "sampling_rate": 16000})
    assert {score["label"] for score in scores} <= set(summary["label_names"])
    # The model card, every model-index value read from summary.json.
    card = ModelCard.load(model_dir / "README.md")
    assert card.data.pipeline_tag == "audio-classification" and card.data.library_name == "transformers"
    results = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert results == {name: summary["mean"][name] for name in ("uar", "accuracy", "macro_f1")}
    assert all("speaker-cv" in result.metric_name and "2 folds" in result.metric_name for result in card.data.eval_results)


def test_training_never_opens_an_original_audio_file_after_decoding(tmp_path, monkeypatch):
    tone_csv = write_tone_corpus(tmp_path / "tones")
    real_decode = run_cv.decode

    def decode_then_forbid_audio_files(*args, **kwargs):
        decoded = real_decode(*args, **kwargs)

        def forbidden(*args, **kwargs):
            raise AssertionError(f"an original audio file was opened after decoding: {args[:1]}")

        for module, name in ((soundfile, "SoundFile"), (soundfile, "read"), (soundfile, "info"), (voc2vec.audio, "load_audio")):
            monkeypatch.setattr(module, name, forbidden)
        return decoded

    monkeypatch.setattr(run_cv, "decode", decode_then_forbid_audio_files)
    argv = ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker", "--num_folds", "2",
            "--validation_fraction", "0.5", "--num_train_epochs", "2", *fast_training_flags(tmp_path / "run", tmp_path / "cache")]
    assert run_cv.main(argv) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["complete"]
