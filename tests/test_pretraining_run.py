"""End-to-end runs of run_pretraining.py on the demo corpus with tiny models: resume, export, TensorBoard, HuBERT,
the non-finite stop."""

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    HubertModel,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForPreTraining,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run_pretraining
from voc2vec.errors import UserError
from voc2vec.pretraining import kmeans_targets
from voc2vec.pretraining.objectives import objective_for

# Small and quick: 6 s of audio per micro-batch, no trackers unless a test asks.
QUICK = ["--max_batch_seconds", "6", "--logging_steps", "1", "--report_to", "none", "--dataloader_num_workers", "0"]


def run(config: str, output_dir: Path, *flags: str) -> int:
    """main() in this process; accelerate keeps process-wide state, reset so each run starts clean."""
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    return run_pretraining.main([str(ROOT / "configs" / "pretraining" / config), "--output_dir", str(output_dir), *QUICK, *flags])


# HuBERT on the demo corpus with targets fitted in a second or two
HUBERT_QUICK = ["--num_clusters", "8", "--kmeans_max_fit_clips", "20", "--max_train_clips", "60"]


def read_metrics(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def tensorboard_scalars(output_dir: Path) -> dict[str, dict[int, float]]:
    """Every scalar the TensorBoard event files of the run hold, read back: {tag: {step: value}}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, dict[int, float]] = {}
    for folder in {path.parent for path in (output_dir / "runs").rglob("events.out.tfevents*")}:
        events = EventAccumulator(str(folder))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            scalars.setdefault(tag, {}).update({event.step: event.value for event in events.Scalars(tag)})
    return scalars


def test_yaml_then_flags(tmp_path):
    model_args, data_args, training_args = run_pretraining.parse_arguments(
        [str(ROOT / "configs" / "pretraining" / "voc2vec.yaml"), "--max_train_steps", "7", "--output_dir", str(tmp_path)]
    )
    assert training_args.max_train_steps == 7 and training_args.output_dir == str(tmp_path)
    assert training_args.learning_rate == 5e-4 and training_args.warmup_ratio == 0.08
    assert model_args.mask_time_prob == 0.65 and data_args.max_crop_seconds == 10.0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"learning_rat": 1.0}))
    with pytest.raises(UserError) as caught:
        run_pretraining.parse_arguments([str(bad)])
    # The message names the misspelt key, the file that holds it and the argument it resembles.
    assert "learning_rat" in str(caught.value) and str(bad) in str(caught.value)
    assert "did you mean learning_rate" in str(caught.value)


def test_auto_mixed_precision_under_accelerate_launch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")  # what `accelerate launch` writes for a DeepSpeed config
    assert run_pretraining.resolve_mixed_precision("auto") == "bf16"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")  # the accelerate config names one: keep it
    assert run_pretraining.resolve_mixed_precision("auto") is None
    assert run_pretraining.resolve_mixed_precision("no") == "no"
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run_pretraining.resolve_mixed_precision("auto") == "no"


def test_paper_configs_parse():
    # the folder `python -m voc2vec.mixture prepare configs/voc125.yaml` writes when given no --output_dir
    mixture_dir = yaml.safe_load((ROOT / "configs" / "voc125.yaml").read_text())["output_dir"]
    for name in ("voc2vec", "voc2vec-as-pt", "voc2vec-ls-pt", "voc2vec-hubert-ls-pt", "demo", "demo-hubert"):
        model_args, data_args, training_args = run_pretraining.parse_arguments([str(ROOT / "configs" / "pretraining" / f"{name}.yaml")])
        assert model_args.num_clusters > 0
        if not name.startswith("demo"):
            assert training_args.max_train_steps == 400_000 and training_args.learning_rate == 5e-4
            assert training_args.warmup_ratio == 0.08 and data_args.max_crop_seconds == 10.0
            assert data_args.train_files == [mixture_dir], name
        # fairseq's stabilizers in the configs that train from scratch, not in those that continue a checkpoint
        from_scratch = model_args.model_name_or_path is None
        assert (model_args.feature_grad_mult, model_args.feature_penalty_weight) == ((0.1, 10.0) if from_scratch else (1.0, 0.0)), name
        assert not data_args.pad_to_longest, name


@pytest.mark.parametrize("config", ["demo.yaml", "demo-hubert.yaml"])
def test_pretraining_models_use_sdpa_attention_unless_told_otherwise(tmp_path, config):
    for flags, expected in (([], "sdpa"), (["--attn_implementation", "eager"], "eager")):
        objective = objective_for(run_pretraining.parse_arguments([str(ROOT / "configs" / "pretraining" / config), *flags])[0])
        model = objective.build_model()
        assert objective.encoder(model).config._attn_implementation == expected, flags
        objective.exported_model(model).save_pretrained(tmp_path / "checkpoint")  # and when continuing a checkpoint
        continued = objective_for(run_pretraining.parse_arguments(
            [str(ROOT / "configs" / "pretraining" / config), "--model_name_or_path", str(tmp_path / "checkpoint"), *flags])[0])
        assert continued.encoder(continued.build_model()).config._attn_implementation == expected, flags


@pytest.mark.slow
@pytest.mark.parametrize("config", ["demo.yaml", "demo-hubert.yaml"])
def test_bf16_autocast_runs_the_transformer_in_bf16_and_keeps_losses_and_weights_in_float32(tmp_path, monkeypatch, config):
    """--mixed_precision bf16 on the CPU (autocast, as on GPUs): every loss term (contrastive, diversity, HuBERT's
    cross-entropy, the feature penalty) is float32, the metrics are finite and the export is float32."""
    layer_dtypes, term_dtypes = [], []

    def recording_objective(args):
        objective = objective_for(args)
        build_model, losses = objective.build_model, objective.losses

        def recording_build_model():
            model = build_model()
            last_layer = objective.encoder(model).encoder.layers[-1]
            last_layer.register_forward_hook(lambda module, inputs, output: layer_dtypes.append(
                (output if isinstance(output, torch.Tensor) else output[0]).dtype))
            return model

        def recording_losses(*args):
            terms = losses(*args)
            term_dtypes.append({name: value.dtype for name, value in terms.items()})
            return terms

        objective.build_model, objective.losses = recording_build_model, recording_losses
        return objective

    monkeypatch.setattr(run_pretraining, "objective_for", recording_objective)
    flags = [*HUBERT_QUICK, "--kmeans_cache_dir", str(tmp_path / "kmeans")] if "hubert" in config else []
    assert run(config, tmp_path / "run", "--mixed_precision", "bf16", "--max_train_steps", "2", "--layerdrop", "0", *flags) == 0
    assert layer_dtypes and set(layer_dtypes) == {torch.bfloat16}, "autocast was on"
    assert len(term_dtypes) == 2 and "feature_penalty" in term_dtypes[0]
    for terms in term_dtypes:
        assert set(terms.values()) == {torch.float32}, terms
    for row in read_metrics(tmp_path / "run"):
        assert all(math.isfinite(value) for value in row.values() if isinstance(value, float)), row
    assert {tensor.dtype for tensor in load_file(tmp_path / "run" / "final" / "model.safetensors").values()} == {torch.float32}


def test_hubert_mfcc_targets_are_computed_on_the_raw_waveform(tmp_path, monkeypatch):
    """fairseq computes HuBERT's MFCC targets on the waveform as read, while the model sees each clip normalized:
    normalizing first would shift c0 by a per-clip constant (its loudness) and change the clusters."""
    decoded, featurized = [], []
    decode, mfcc_features = run_pretraining.decode_audio_value, kmeans_targets.mfcc_features
    monkeypatch.setattr(run_pretraining, "decode_audio_value", lambda value: decoded.append(decode(value)) or decoded[-1])
    monkeypatch.setattr(kmeans_targets, "mfcc_features", lambda audio, *args: featurized.append(audio.copy()) or mfcc_features(audio, *args))
    assert run("demo-hubert.yaml", tmp_path / "run", *HUBERT_QUICK, "--kmeans_cache_dir", str(tmp_path / "kmeans"), "--max_train_steps", "0") == 0
    assert run_pretraining.Wav2Vec2FeatureExtractor.from_pretrained(tmp_path / "run" / "final").do_normalize, "the model sees normalized clips"
    assert len(featurized) == len(decoded) > 20
    for audio, clip in zip(featurized, decoded):
        np.testing.assert_array_equal(audio, clip)
    assert any(abs(clip.std() - 1) > 0.1 for clip in decoded), "normalized clips would differ"


@pytest.mark.slow
def test_resume_gives_the_same_weights_and_exports_a_loadable_encoder(tmp_path):
    """6 updates straight == 3 updates, stop, resume from the checkpoint, 3 more (with accumulation and a worker)."""
    flags = ["--max_train_steps", "6", "--gradient_accumulation_steps", "2", "--checkpointing_steps", "3", "--dataloader_num_workers", "1"]
    straight = tmp_path / "straight"
    assert run("demo.yaml", straight, *flags, "--report_to", "tensorboard") == 0
    final = straight / "final"

    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(straight / "checkpoints" / "checkpoint-3", resumed / "checkpoints" / "checkpoint-3")
    assert run("demo.yaml", resumed, *flags, "--resume_from_checkpoint", "latest") == 0
    resumed_final = resumed / "final"

    expected, actual = load_file(final / "model.safetensors"), load_file(resumed_final / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)
    assert [row["update"] for row in read_metrics(resumed)] == [4, 5, 6]
    straight_rows = read_metrics(straight)
    assert read_metrics(resumed)[0]["loss"] == pytest.approx(straight_rows[3]["loss"], rel=1e-5)

    # metrics.jsonl carries what the issue lists (the from-scratch demo config has fairseq's feature penalty on),
    # and TensorBoard got the same scalars at the same steps
    keys = ("loss", "contrastive_loss", "diversity_loss", "feature_penalty", "codevector_perplexity", "grad_norm",
            "learning_rate", "gumbel_temperature", "audio_seconds", "audio_seconds_per_second", "masked_frames")
    for key in keys:
        assert all(math.isfinite(row[key]) for row in straight_rows), key
    scalars = tensorboard_scalars(straight)
    for key in keys:
        assert scalars[key] == pytest.approx({row["update"]: row[key] for row in straight_rows}, rel=1e-6), key
    # the logged loss is the sum of its weighted terms (contrastive + 0.1 diversity + 10 feature penalty)
    for row in straight_rows:
        weighted = row["contrastive_loss"] + 0.1 * row["diversity_loss"] + 10 * row["feature_penalty"]
        assert row["loss"] == pytest.approx(weighted, rel=1e-6)
    assert sorted(path.name for path in (straight / "checkpoints").iterdir()) == ["checkpoint-3", "checkpoint-6"]

    # the export is what fine-tuning loads, with the run's summary and its model card, and no pickle
    assert (final / "model.safetensors").exists() and (final / "preprocessor_config.json").exists()
    info = json.loads((final / "training_info.json").read_text())
    assert info["updates"] == 6 and info["last_metrics"] == straight_rows[-1] and info["objective"]["objective"] == "wav2vec2"
    assert info["training_hyperparameters"]["learning_rate"] == 5e-4
    assert "self-supervision" in (final / "README.md").read_text()
    assert not list(final.glob("*.bin"))
    classifier = AutoModelForAudioClassification.from_pretrained(final, num_labels=6)
    pretrained = Wav2Vec2ForPreTraining.from_pretrained(final)
    torch.testing.assert_close(classifier.wav2vec2.encoder.layers[1].feed_forward.output_dense.weight,
                               pretrained.wav2vec2.encoder.layers[1].feed_forward.output_dense.weight)
    assert AutoFeatureExtractor.from_pretrained(final).do_normalize
    with torch.no_grad():
        assert classifier(torch.randn(1, 16000)).logits.shape == (1, 6)


@pytest.mark.slow
def test_hubert_continued_pretraining_exports_a_plain_hubert_model(tmp_path):
    """A tiny HuBERT 'checkpoint' continued with layer-1 k-means targets; the export loads for classification."""
    initial = tmp_path / "initial"
    HubertModel(AutoConfig.from_pretrained(ROOT / "configs" / "models" / "tiny-hubert.json")).save_pretrained(initial)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(initial)
    output_dir = tmp_path / "run"
    flags = ["--model_name_or_path", str(initial), "--config_name", "", "--kmeans_features", "layer", "--kmeans_layer", "1",
             "--num_clusters", "20", "--kmeans_max_fit_clips", "20", "--kmeans_cache_dir", str(tmp_path / "kmeans"),
             "--max_train_clips", "40", "--max_train_steps", "3", "--checkpointing_steps", "3"]
    assert run("demo-hubert.yaml", output_dir, *flags) == 0
    final = output_dir / "final"
    assert len(list((tmp_path / "kmeans").glob("kmeans-*.npz"))) == 1
    rows = read_metrics(output_dir)
    assert all(math.isfinite(row["loss"]) and 0 <= row["masked_accuracy"] <= 1 for row in rows)
    assert rows[0]["masked_prediction_loss"] == pytest.approx(math.log(20), rel=0.3)  # untrained head: near-uniform over 20 clusters
    for row in rows:  # the demo config trains from scratch: fairseq's feature penalty (weight 10) is its own term
        assert row["loss"] == pytest.approx(row["masked_prediction_loss"] + 10 * row["feature_penalty"], rel=1e-6)
    assert json.loads((final / "config.json").read_text())["architectures"] == ["HubertModel"]
    classifier = AutoModelForAudioClassification.from_pretrained(final, num_labels=6)
    encoder = HubertModel.from_pretrained(final)
    torch.testing.assert_close(classifier.hubert.masked_spec_embed, encoder.masked_spec_embed)
    assert not torch.equal(encoder.masked_spec_embed, HubertModel.from_pretrained(initial).masked_spec_embed), "trained"
    # the export is the trained encoder: every weight equals the last checkpoint's (which also holds the head)
    trained = load_file(output_dir / "checkpoints" / "checkpoint-3" / "model.safetensors")
    exported = load_file(final / "model.safetensors")
    assert exported.keys() == {name.removeprefix("hubert.") for name in trained if name.startswith("hubert.")}
    assert any(name.startswith("head.") for name in trained)
    for name, tensor in exported.items():
        torch.testing.assert_close(tensor, trained[f"hubert.{name}"], msg=name)


@pytest.mark.slow
def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, caplog):
    original_forward = Wav2Vec2ForPreTraining.forward
    calls = {"count": 0}

    def forward_that_diverges_at_the_fifth_update(self, *args, **kwargs):
        output = original_forward(self, *args, **kwargs)
        calls["count"] += 1
        if calls["count"] >= 5:  # the objective computes the loss from these
            output.projected_states = output.projected_states * float("nan")
        return output

    monkeypatch.setattr(Wav2Vec2ForPreTraining, "forward", forward_that_diverges_at_the_fifth_update)
    assert run("demo.yaml", tmp_path, "--max_train_steps", "8", "--checkpointing_steps", "2") == 3
    assert "loss is not finite at update 5" in caplog.text and "checkpoint-4" in caplog.text
    assert (tmp_path / "checkpoints" / "checkpoint-4" / "model.safetensors").exists()
    assert not (tmp_path / "final").exists()
    weights = load_file(tmp_path / "checkpoints" / "checkpoint-4" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


@pytest.mark.slow
def test_nan_gradients_with_a_finite_loss_stop_the_run_before_anything_is_saved(tmp_path, monkeypatch, caplog):
    original_forward = Wav2Vec2ForPreTraining.forward
    calls = {"count": 0}

    def forward_with_nan_gradients_at_the_third_update(self, *args, **kwargs):
        output = original_forward(self, *args, **kwargs)
        calls["count"] += 1
        if calls["count"] >= 3:  # sqrt(0) = 0 adds nothing to the loss; its gradient 0 * inf is NaN
            output.projected_states = output.projected_states + (0.0 * self.wav2vec2.masked_spec_embed.sum()).sqrt()
        return output

    monkeypatch.setattr(Wav2Vec2ForPreTraining, "forward", forward_with_nan_gradients_at_the_third_update)
    # saved every 2 updates, logged every 5: the loop first looks at update 4, and stops before its checkpoint
    assert run("demo.yaml", tmp_path, "--max_train_steps", "8", "--checkpointing_steps", "2", "--logging_steps", "5") == 3
    assert "gradient norm is not finite at update 3" in caplog.text and "checkpoint-2" in caplog.text
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-2"]
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "final").exists()
    weights = load_file(tmp_path / "checkpoints" / "checkpoint-2" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def test_push_to_hub_uploads_final_with_its_encoder_card(tmp_path, monkeypatch):
    import voc2vec.hub
    from huggingface_hub import ModelCard

    pushed = []
    monkeypatch.setattr(voc2vec.hub, "push_model", lambda folder, repo_id, **kwargs: pushed.append((Path(folder), repo_id)) or repo_id)
    assert run("demo.yaml", tmp_path, "--max_train_steps", "2", "--push_to_hub", "--hub_model_id", "my-org/voc2vec-demo") == 0
    assert pushed == [(tmp_path / "final", "my-org/voc2vec-demo")]
    card = ModelCard.load(tmp_path / "final" / "README.md")
    assert card.data.pipeline_tag == "feature-extraction" and "no trained head" in card.text.lower()
    assert run_pretraining.main([str(ROOT / "configs" / "pretraining" / "demo.yaml"), "--push_to_hub"]) == 2  # no repository named
