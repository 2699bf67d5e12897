"""What the real pretraining loop does, observed from outside it (issue 13): run_pretraining.main runs, the batches
its collator made and the gradients its optimizer received are recorded, and compared with what the README says:
loss normalization over the whole accumulation window, gradient clipping, the warmup-then-linear-decay schedule,
interval means in the log rows, batches without padding, a frozen CNN that stays frozen, fairseq's CNN gradient
scale, and an export that fine-tunes through run_cv.py."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file
from torch.optim.optimizer import register_optimizer_step_pre_hook
from transformers import AutoConfig, Wav2Vec2FeatureExtractor, Wav2Vec2ForPreTraining

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run_pretraining
from voc2vec.pretraining.batching import MaskedPretrainingCollator
from voc2vec.pretraining.objectives import objective_for

CONFIGS = ROOT / "configs" / "pretraining"
QUICK = ["--max_batch_seconds", "6", "--logging_steps", "1", "--report_to", "none", "--dataloader_num_workers", "0",
         "--checkpointing_steps", "1000"]


def argv(config: str, output_dir: Path, *flags: str) -> list[str]:
    return [str(CONFIGS / config), "--output_dir", str(output_dir), *QUICK, *flags]


def run(arguments: list[str]) -> int:
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    return run_pretraining.main(arguments)


def read_metrics(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def collated(monkeypatch) -> list[dict]:
    """Every batch the loop's collator makes, in order (the loader runs in this process: no workers), with the
    lengths of its clips before they were made equal (`clip_samples`: each limited to the maximum crop)."""
    batches = []
    make_batch = MaskedPretrainingCollator.__call__

    def recording(self, examples):
        batch = make_batch(self, examples)
        batches.append({name: tensor.clone() for name, tensor in batch.items()})
        batches[-1]["clip_samples"] = np.array([min(len(example["audio"]), self.max_crop_samples) for example in examples])
        return batch

    monkeypatch.setattr(MaskedPretrainingCollator, "__call__", recording)
    return batches


@pytest.fixture
def optimizer_steps():
    """At every optimizer step of the loop: the parameters it updates, their gradients, and its learning rate."""
    steps = []

    def record(optimizer, args, kwargs):
        parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
        steps.append({
            "values": [parameter.detach().clone() for parameter in parameters],
            "grads": [parameter.grad.detach().clone() for parameter in parameters],
            "learning_rate": optimizer.param_groups[0]["lr"],
        })

    handle = register_optimizer_step_pre_hook(record)
    yield steps
    handle.remove()


@pytest.mark.slow
def test_the_loop_normalizes_by_the_masked_frames_of_the_whole_accumulation_window(tmp_path, collated, optimizer_steps):
    """One update of 3 accumulated micro-batches must follow the gradient of (sum of their summed losses) / (their
    masked frames), not the mean of per-micro-batch means. HuBERT: deterministic given the batch (no Gumbel noise)."""
    arguments = argv("demo-hubert.yaml", tmp_path / "run", "--num_clusters", "8", "--kmeans_max_fit_clips", "20",
                     "--max_train_clips", "60", "--kmeans_cache_dir", str(tmp_path / "kmeans"), "--max_train_steps", "1",
                     "--gradient_accumulation_steps", "3", "--max_grad_norm", "1e9")
    assert run(arguments) == 0
    micro_batches, step = collated[:3], optimizer_steps[0]
    masked = [int(batch["mask_time_indices"].sum()) for batch in micro_batches]
    assert len(set(masked)) > 1, "micro-batches with different masked counts, so the two normalizations differ"

    # the documented objective, computed from the same starting weights and batches, outside the loop
    objective = objective_for(run_pretraining.parse_arguments(arguments)[0])
    model = objective.build_model().train()
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    with torch.no_grad():
        for parameter, value in zip(parameters, step["values"], strict=True):
            parameter.copy_(value)

    def gradients(loss):
        model.zero_grad()
        loss.backward()
        return [parameter.grad.clone() for parameter in parameters]

    summed = [objective.losses(model, batch, None)["loss"] for batch in micro_batches]
    expected = gradients(sum(summed) / sum(masked))
    for name_and_grad, reference in zip(zip([n for n, p in model.named_parameters() if p.requires_grad], step["grads"]), expected):
        name, actual = name_and_grad
        torch.testing.assert_close(actual, reference, rtol=1e-4, atol=1e-7, msg=name)
    summed = [objective.losses(model, batch, None)["loss"] for batch in micro_batches]
    per_micro_batch = gradients(sum(loss / count for loss, count in zip(summed, masked)) / 3)
    assert not all(torch.allclose(a, b, rtol=1e-3) for a, b in zip(expected, per_micro_batch)), "the test can tell them apart"


def test_gradients_are_clipped_to_max_grad_norm(tmp_path, optimizer_steps):
    assert run(argv("demo.yaml", tmp_path, "--max_train_steps", "2", "--max_grad_norm", "0.05")) == 0
    rows = read_metrics(tmp_path)
    for row, step in zip(rows, optimizer_steps, strict=True):
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(grad) for grad in step["grads"]])).item()
        assert row["grad_norm"] > 0.05, "the logged norm is the one before clipping"
        assert norm == pytest.approx(0.05, rel=1e-3), "the step received the clipped gradients"


@pytest.mark.slow
def test_learning_rate_warms_up_linearly_then_decays_linearly_to_zero(tmp_path, optimizer_steps):
    assert run(argv("demo.yaml", tmp_path, "--max_train_steps", "7", "--warmup_ratio", "0.45", "--learning_rate", "1e-3")) == 0
    peak, warmup, total = 1e-3, 3, 7
    # update k (counted from 1) runs at the rate of step k - 1: 0, 1/3, 2/3 of the peak, the peak, then down to 1/4
    expected = [peak * step / warmup if step < warmup else peak * (total - step) / (total - warmup) for step in range(total)]
    assert [row["learning_rate"] for row in read_metrics(tmp_path)] == pytest.approx(expected, abs=1e-12)
    assert [step["learning_rate"] for step in optimizer_steps] == pytest.approx(expected, abs=1e-12), "what AdamW used"


@pytest.mark.slow
def test_log_rows_are_means_over_the_interval_and_batches_hold_no_padding(tmp_path, collated):
    assert run(argv("demo.yaml", tmp_path / "every", "--max_train_steps", "3")) == 0
    batches = list(collated)
    assert run(argv("demo.yaml", tmp_path / "third", "--max_train_steps", "3", "--logging_steps", "3")) == 0
    every, (third,) = read_metrics(tmp_path / "every"), read_metrics(tmp_path / "third")
    frames = [row["masked_frames"] for row in every]
    assert third["update"] == 3 and third["masked_frames"] == sum(frames)
    assert third["audio_seconds"] == pytest.approx(sum(row["audio_seconds"] for row in every))
    for key in ("loss", "contrastive_loss", "diversity_loss", "feature_penalty"):  # means weighted by masked frames
        assert third[key] == pytest.approx(sum(row[key] * count for row, count in zip(every, frames)) / sum(frames), rel=1e-6), key
    assert third["codevector_perplexity"] == pytest.approx(np.mean([row["codevector_perplexity"] for row in every]), rel=1e-6)
    assert third["grad_norm"] == pytest.approx(np.mean([row["grad_norm"] for row in every]), rel=1e-6)
    assert third["learning_rate"] == every[-1]["learning_rate"]
    # every sample the model saw was audio: clips cropped to one length, no padding, no attention mask
    assert len(batches) == 3
    for batch, row in zip(batches, every):
        assert "attention_mask" not in batch
        assert batch["input_values"].numel() == round(batch["audio_seconds"].item() * 16000)
        assert batch["audio_seconds"].item() == pytest.approx(row["audio_seconds"])


def test_pad_to_longest_brings_back_padded_batches(tmp_path, collated):
    assert run(argv("demo.yaml", tmp_path, "--max_train_steps", "1", "--pad_to_longest")) == 0
    (batch,) = collated
    lengths = batch["attention_mask"].sum(dim=1)
    assert lengths.max() == batch["input_values"].shape[1] and lengths.min() < lengths.max(), "clips of several lengths"
    assert batch["audio_seconds"].item() * 16000 == pytest.approx(lengths.sum().item())
    (row,) = read_metrics(tmp_path)
    assert row["audio_seconds"] == pytest.approx(batch["audio_seconds"].item())
    assert row["padding_share"] == pytest.approx(1 - lengths.sum().item() / batch["attention_mask"].numel()), "the zeros trained on"
    assert json.loads((tmp_path / "pretraining_run.json").read_text())["batch_lengths"]["equalized_by"] == "padding to the longest clip"


def test_the_audio_cropping_drops_and_the_padding_it_replaces_are_recorded(tmp_path, collated):
    assert run(argv("demo.yaml", tmp_path, "--max_train_steps", "2")) == 0
    rows = read_metrics(tmp_path)
    for batch, row in zip(collated, rows, strict=True):
        clips = batch["clip_samples"]
        assert clips.min() < clips.max(), "clips of several lengths, so both shares are above 0"
        assert batch["input_values"].numel() == len(clips) * clips.min(), "cropped to the shortest"
        assert row["dropped_by_cropping"] == pytest.approx(1 - batch["input_values"].numel() / clips.sum())
        assert row["padding_share"] == pytest.approx(1 - clips.sum() / (len(clips) * clips.max()))
    # the run's files: the same two shares over the first epoch's batches, and which one the run paid
    planned = json.loads((tmp_path / "pretraining_run.json").read_text())["batch_lengths"]
    assert planned == json.loads((tmp_path / "final" / "training_info.json").read_text())["batch_lengths"]
    assert planned["equalized_by"] == "cropping to the shortest clip"
    assert 0 < planned["dropped_by_cropping"] < 0.2 and 0 < planned["padding_share"] < 0.2


@pytest.fixture
def attention_masks(monkeypatch) -> list:
    """The attention_mask argument of every forward call of the wav2vec 2.0 pretraining model."""
    received = []
    forward = Wav2Vec2ForPreTraining.forward

    def recording(self, *args, **kwargs):
        mask = kwargs.get("attention_mask")
        received.append(None if mask is None else mask.clone())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(Wav2Vec2ForPreTraining, "forward", recording)
    return received


def test_group_norm_models_never_get_an_attention_mask_even_when_padded(tmp_path, collated, attention_masks):
    """wav2vec2-base's group norm over time must not see a mask it would misuse: padding goes in unmasked, as in
    transformers' own convention (its feature extractor returns no mask for these models)."""
    assert run(argv("demo.yaml", tmp_path, "--max_train_steps", "1", "--pad_to_longest")) == 0
    assert "attention_mask" in collated[0], "the batch was padded"
    assert attention_masks == [None]


@pytest.mark.slow
def test_layer_norm_models_get_the_padding_mask(tmp_path, collated, attention_masks):
    config = json.loads((ROOT / "configs" / "models" / "tiny-wav2vec2.json").read_text())
    config_file = tmp_path / "layer-norm.json"
    config_file.write_text(json.dumps(config | {"feat_extract_norm": "layer"}))
    arguments = argv("demo.yaml", tmp_path / "padded", "--config_name", str(config_file), "--max_train_steps", "1")
    assert run([*arguments, "--pad_to_longest"]) == 0
    (batch,), (mask,) = collated, attention_masks
    assert mask is not None and torch.equal(mask, batch["attention_mask"])
    collated.clear(), attention_masks.clear()
    assert run(argv("demo.yaml", tmp_path / "cropped", "--config_name", str(config_file), "--max_train_steps", "1")) == 0
    assert attention_masks == [None], "cropped batches hold no padding to mask"


def feature_encoder_gradients(feature_grad_mult: float):
    arguments = argv("demo.yaml", Path("unused"), "--feature_grad_mult", str(feature_grad_mult), "--feature_penalty_weight", "10")
    objective = objective_for(run_pretraining.parse_arguments(arguments)[0])
    torch.manual_seed(0)
    model = objective.build_model().train()
    rng = np.random.default_rng(0)
    examples = [{"audio": rng.standard_normal(16000).astype(np.float32), "clip_index": index, "batch_number": 0} for index in range(2)]
    batch = MaskedPretrainingCollator(objective.config.conv_kernel, objective.config.conv_stride, num_negatives=objective.num_negatives)(examples)
    torch.manual_seed(1)  # the same Gumbel noise in both models
    objective.losses(model, batch, None)["loss"].backward()
    return {name: parameter.grad.clone() for name, parameter in model.named_parameters() if parameter.grad is not None}


def test_feature_grad_mult_scales_the_cnn_gradient_and_nothing_else():
    plain, scaled = feature_encoder_gradients(1.0), feature_encoder_gradients(0.1)
    assert plain.keys() == scaled.keys()
    cnn = [name for name in plain if name.startswith("wav2vec2.feature_extractor.")]
    assert cnn and len(cnn) < len(plain)
    for name in plain:
        factor = 0.1 if name in cnn else 1.0
        # summation order differs a little between the two backward passes: tolerance relative to the largest entry
        torch.testing.assert_close(scaled[name], factor * plain[name], rtol=1e-3, atol=1e-4 * factor * plain[name].abs().max().item(), msg=name)


def test_feature_penalty_is_the_mean_squared_cnn_output_counted_per_masked_frame():
    """fairseq: features_pen = mean of the squared CNN output, added as weight x pen x masked frames to the summed loss."""
    objective = objective_for(run_pretraining.parse_arguments(argv("demo.yaml", Path("unused")))[0])
    torch.manual_seed(0)
    model = objective.build_model().train()
    rng = np.random.default_rng(0)
    examples = [{"audio": rng.standard_normal(16000).astype(np.float32), "clip_index": index, "batch_number": 0} for index in range(2)]
    batch = MaskedPretrainingCollator(objective.config.conv_kernel, objective.config.conv_stride, num_negatives=objective.num_negatives)(examples)
    torch.manual_seed(1)
    terms = objective.losses(model, batch, None)
    with torch.no_grad():
        penalty = model.wav2vec2.feature_extractor(batch["input_values"]).pow(2).mean()
    masked = batch["mask_time_indices"].sum()
    torch.testing.assert_close(terms["feature_penalty"].detach(), penalty * masked, rtol=1e-5, atol=0)
    weighted = terms["contrastive_loss"] + 0.1 * terms["diversity_loss"] + 10 * penalty * masked  # the demo config's weights
    torch.testing.assert_close(terms["loss"].detach(), weighted.detach(), rtol=1e-5, atol=0)


def test_a_frozen_feature_encoder_does_not_change(tmp_path):
    initial = tmp_path / "initial"
    torch.manual_seed(0)
    Wav2Vec2ForPreTraining(AutoConfig.from_pretrained(ROOT / "configs" / "models" / "tiny-wav2vec2.json")).save_pretrained(initial)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(initial)
    assert run(argv("demo.yaml", tmp_path / "run", "--model_name_or_path", str(initial), "--freeze_feature_encoder",
                    "--max_train_steps", "3", "--learning_rate", "1e-2")) == 0
    before, after = load_file(initial / "model.safetensors"), load_file(tmp_path / "run" / "final" / "model.safetensors")
    cnn = [name for name in before if name.startswith("wav2vec2.feature_extractor.")]
    assert cnn
    for name in cnn:  # not trained, and no weight decay either
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=0, msg=name)
    assert not torch.equal(after["wav2vec2.encoder.layers.0.attention.q_proj.weight"], before["wav2vec2.encoder.layers.0.attention.q_proj.weight"])


@pytest.mark.slow
def test_an_exported_encoder_fine_tunes_through_run_cv(tmp_path):
    import run_cv

    assert run(argv("demo.yaml", tmp_path / "pretraining", "--max_train_steps", "2")) == 0
    final = tmp_path / "pretraining" / "final"
    output_dir = tmp_path / "cv"
    code = run_cv.main([
        "--model_name_or_path", str(final), "--dataset_name", "demo", "--num_folds", "2", "--num_train_epochs", "1",
        "--output_dir", str(output_dir), "--max_duration", "1.0", "--per_device_train_batch_size", "16",
    ])
    assert code == 0
    assert (output_dir / "summary.json").exists()
    # fold 0's model was fine-tuned from the export: its CNN (frozen in fine-tuning) is the exported one
    exported = load_file(final / "model.safetensors")
    fine_tuned = load_file(next((output_dir / "model").glob("*.safetensors")))
    cnn = [name for name in fine_tuned if name.startswith("wav2vec2.feature_extractor.")]
    assert cnn
    for name in cnn:
        torch.testing.assert_close(fine_tuned[name], exported[name], msg=name)


@pytest.mark.slow
def test_torch_compile_trains_batches_of_new_lengths_with_one_compilation(tmp_path, collated):
    """--torch_compile compiles with dynamic shapes: every batch has its own length and clip count (cropped to its
    shortest clip), and static shapes would recompile for each. Tested with dynamo's eager backend: the graphs and
    guards are dynamo's, the same as under inductor, whose code generation takes minutes on a CPU."""
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    torch._dynamo.reset()
    try:
        assert run(argv("demo.yaml", tmp_path, "--max_train_steps", "2", "--torch_compile", "--torch_compile_backend", "eager")) == 0
        assert len({tuple(batch["input_values"].shape) for batch in collated}) == 2, "two batch shapes"
        compiled = _debug_get_cache_entry_list(Wav2Vec2ForPreTraining.forward.__code__)
        assert len(compiled) == 1, "one compilation serves every length (and every Gumbel temperature)"
    finally:
        torch._dynamo.reset()
    assert len(read_metrics(tmp_path)) == 2
    # the export names the weights as the model does, not as torch.compile's wrapper ("_orig_mod.")
    exported = load_file(tmp_path / "final" / "model.safetensors")
    expected = Wav2Vec2ForPreTraining(AutoConfig.from_pretrained(ROOT / "configs" / "models" / "tiny-wav2vec2.json")).state_dict()
    assert exported.keys() == expected.keys()
