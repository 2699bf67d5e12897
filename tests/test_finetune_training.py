"""The fine-tuning update itself, through the real `finetune()` and its Trainer: gradient accumulation gives the
update of one large batch (weighted cross-entropy, MSE, CCC), gradients are clipped, the learning rate follows
the warmup-then-linear-decay schedule the README promises, and the best epoch is chosen on the validation rows alone."""

import dataclasses

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

import run_cv
from cv_fixtures import TINY_MODEL, write_hume_vb_corpus, write_tone_corpus
from voc2vec.arguments import parse_arguments
from voc2vec.evaluation import decode, plan_evaluation
from voc2vec.finetune import finetune

pytestmark = pytest.mark.slow
NO_SPEC_AUGMENT = '{"apply_spec_augment": false}'  # random time masks would differ between one call and two


class GradientRecorder(TrainerCallback):
    """The gradients the optimizer is about to apply (after clipping), and the learning rate of each step."""

    def __init__(self):
        self.gradients, self.learning_rates, self.grad_norms = [], [], []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.gradients.append({name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "learning_rate" in logs:
            self.learning_rates.append(logs["learning_rate"])
            self.grad_norms.append(logs.get("grad_norm"))


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    return {"tones": write_tone_corpus(root / "tones"), "hume_vb": write_hume_vb_corpus(root / "hume_vb")}


def prepared(corpora, cache, task, *flags):
    """Parsed arguments, plan and decoded corpus, as run_cv.py makes them; fold 0's split."""
    if task == "classification":  # every tone clip cut to its first 0.3 s: equal lengths, so no padding differs
        corpus_flags = ["--dataset_name", "csv", "--data_files", str(corpora["tones"]), "--speaker_column", "speaker",
                        "--max_duration", "0.3", "--no_random_crop", "--num_folds", "2", "--validation_fraction", "0.5"]
    else:  # A-VB "two": valence and arousal, every clip 0.4 s
        corpus_flags = ["--dataset_name", "hume_vb", "--dataset_config_name", "two", "--data_dir", str(corpora["hume_vb"])]
    argv = [*corpus_flags, "--model_name_or_path", TINY_MODEL, "--config_overrides", NO_SPEC_AUGMENT,
            "--corpus_cache_dir", str(cache), "--output_dir", str(cache / "unused"), "--disable_tqdm", "true",
            "--dataloader_pin_memory", "false", *flags]
    model_args, data_args, protocol_args, _, training_args, _ = parse_arguments(run_cv.ARGUMENT_TYPES, argv)
    plan = plan_evaluation(model_args, data_args, protocol_args, training_args, single_split=False)
    return plan, decode(plan, data_args), model_args, data_args, training_args


def one_update(corpora, tmp_path, task, batch_size, accumulation, *flags):
    plan, decoded, model_args, data_args, training_args = prepared(corpora, tmp_path / "cache", task, *flags)
    training_args = dataclasses.replace(training_args, per_device_train_batch_size=batch_size,
                                        gradient_accumulation_steps=accumulation, max_steps=1, max_grad_norm=0.0,
                                        learning_rate=1e-3, warmup_steps=0)
    recorder = GradientRecorder()
    finetune(plan.corpus, decoded, plan.runs[0], model_args, data_args, training_args, plan.feature_extractor,
             plan.model_config, work_dir=tmp_path / f"work-{batch_size}x{accumulation}", callbacks=[recorder])
    assert len(recorder.gradients) == 1
    return recorder.gradients[0]


@pytest.mark.parametrize("task, loss_flags", [
    ("classification", ["--class_weighted_loss", "true"]),   # weighted cross-entropy, standard transformers head
    ("regression", ["--regression_loss", "mse"]),            # voc2vec head
    ("regression", ["--regression_loss", "ccc"]),            # a statistic of the whole batch
])
def test_accumulation_gives_the_update_of_one_large_batch(corpora, tmp_path, task, loss_flags):
    large = one_update(corpora, tmp_path, task, 8, 1, *loss_flags)
    accumulated = one_update(corpora, tmp_path, task, 4, 2, *loss_flags)
    assert large.keys() == accumulated.keys() and len(large) > 10
    for name, gradient in large.items():
        torch.testing.assert_close(accumulated[name], gradient, rtol=1e-4, atol=1e-7, msg=name)
    assert any(gradient.abs().sum() > 0 for gradient in large.values())


def test_gradients_are_clipped_and_the_learning_rate_warms_up_then_decays(corpora, tmp_path):
    plan, decoded, model_args, data_args, training_args = prepared(corpora, tmp_path / "cache", "classification")
    training_args = dataclasses.replace(training_args, per_device_train_batch_size=2, num_train_epochs=2, learning_rate=0.01,
                                        warmup_steps=3, max_grad_norm=1e-3, logging_strategy="steps", logging_steps=1)
    recorder = GradientRecorder()
    finetune(plan.corpus, decoded, plan.runs[0], model_args, data_args, training_args, plan.feature_extractor,
             plan.model_config, work_dir=tmp_path / "work", callbacks=[recorder])
    total = len(recorder.gradients)
    assert total == 2 * int(np.ceil(len(plan.runs[0].train) / 2))
    for gradients, raw_norm in zip(recorder.gradients, recorder.grad_norms):
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gradients.values()]))
        assert raw_norm > 1e-3 and norm <= 1e-3 * (1 + 1e-4)  # the logged pre-clip norm was above the bound
    # transformers' linear schedule: the learning rate of update k (from 0) is peak * k / warmup during warmup,
    # then peak * (total - k) / (total - warmup).
    expected = [0.01 * (k / 3 if k < 3 else (total - k) / (total - 3)) for k in range(total)]
    np.testing.assert_allclose(recorder.learning_rates, expected, rtol=1e-6, atol=1e-12)


class EvaluatedRows(TrainerCallback):
    """The corpus rows of each evaluation the Trainer runs: the scores that pick the best epoch and stop early."""

    def __init__(self):
        self.rows = []

    def on_evaluate(self, args, state, control, eval_dataloader=None, **kwargs):
        self.rows.append(sorted(eval_dataloader.dataset.indices.tolist()))


def test_the_best_epoch_is_chosen_on_the_validation_rows_never_on_the_test_fold(corpora, tmp_path):
    plan, decoded, model_args, data_args, training_args = prepared(corpora, tmp_path / "cache", "classification")
    training_args = dataclasses.replace(training_args, num_train_epochs=1, learning_rate=1e-3, warmup_steps=0)
    split = plan.runs[0]
    assert len(split.validation) and not set(split.validation) & set(split.test)  # a leak-free fold to begin with
    recorder = EvaluatedRows()
    result = finetune(plan.corpus, decoded, split, model_args, data_args, training_args, plan.feature_extractor,
                      plan.model_config, work_dir=tmp_path / "work", callbacks=[recorder])
    assert recorder.rows == [sorted(split.validation.tolist())]  # the epoch's evaluation: those rows and only those
    assert result.test_outputs.shape[0] == len(split.test)  # the test fold is scored once, at the end


LAYER_NORM = '{"feat_extract_norm": "layer", "do_stable_layer_norm": true, "conv_bias": true, "apply_spec_augment": false}'


@pytest.mark.parametrize("flags, padded, cropped", [
    ([], False, True),                                        # group norm: cropped to each batch's shortest clip
    (["--pad_to_longest", "true"], True, False),              # asked for: padded to the longest
    (["--config_overrides", LAYER_NORM], True, False),        # layer norm with attention masks: pads exactly
], ids=["group-norm-default", "group-norm-padded", "layer-norm-default"])
def test_training_batches_are_cropped_for_models_that_cannot_pad_exactly(corpora, tmp_path, flags, padded, cropped):
    """Whole tone clips of 0.3-0.6 s: a group-norm model never sees padding in training (as when it is scored);
    the shares logged per epoch (and written to metrics.json) are those of the batches it really trained on."""
    plan, decoded, model_args, data_args, training_args = prepared(corpora, tmp_path / "cache", "classification",
                                                                   "--max_duration", "0", *flags)
    if "--config_overrides" in flags:  # the layer-norm model's extractor returns the attention mask it was trained with
        plan.feature_extractor.return_attention_mask = True
    training_args = dataclasses.replace(training_args, per_device_train_batch_size=4, num_train_epochs=2)
    result = finetune(plan.corpus, decoded, plan.runs[0], model_args, data_args, training_args, plan.feature_extractor,
                      plan.model_config, work_dir=tmp_path / "work")
    assert len(result.padded_share) == len(result.cropped_share) == 2
    assert all(share > 0.05 for share in (result.padded_share if padded else result.cropped_share))
    assert all(share == 0 for share in (result.cropped_share if padded else result.padded_share))
