"""Training and evaluation inputs: random training windows reach every start, evaluation takes the start, the
attention mask goes only to models trained with one (as their feature extractor says), training batches cropped to
their shortest clip hold no padding, and length-grouped batches pad little while their membership keeps changing."""

import datasets
import numpy as np
import torch

from cv_fixtures import TINY_MODEL
from voc2vec.arguments import ModelArguments
from voc2vec.collate import AudioClips, AudioCollator, LengthGroupedBatchSampler, crop_to_shortest, length_grouped_batches
from voc2vec.models import check_model_source


def decoded(*clips):
    return datasets.Dataset.from_dict({"audio": [np.asarray(clip, dtype=np.float32) for clip in clips]})


def test_random_training_windows_can_start_anywhere_including_the_last_sample():
    clips = AudioClips(decoded(np.arange(10)), np.array([0]), [0], max_samples=8, random_crop=True)
    torch.manual_seed(0)
    starts = {int(clips[0]["input_values"][0]) for _ in range(300)}
    assert starts == {0, 1, 2}  # 10 samples, 8-sample windows: the window ending at the last sample is drawn too
    evaluation = AudioClips(decoded(np.arange(10)), np.array([0]), [0], max_samples=8, random_crop=False)
    assert evaluation[0]["input_values"].tolist() == list(range(8)) and evaluation.lengths().tolist() == [8]


def test_pad_to_max_gives_fixed_length_clips_padded_before_normalization():
    clips = AudioClips(decoded(np.ones(5), np.arange(12)), np.array([0, 1]), [0, 1], max_samples=8, pad_to_max=True)
    assert [len(clips[index]["input_values"]) for index in range(2)] == [8, 8]
    assert clips[0]["input_values"][5:].tolist() == [0, 0, 0] and clips.lengths().tolist() == [8, 8]


def test_attention_mask_only_for_models_trained_with_one():
    audio = [{"input_values": np.random.default_rng(0).standard_normal(length).astype(np.float32)} for length in (4000, 6000)]
    _, group_norm = check_model_source(ModelArguments(model_name_or_path=TINY_MODEL))
    assert "attention_mask" not in AudioCollator(group_norm)(audio)  # wav2vec 2.0 base style: trained without masks
    layer = '{"feat_extract_norm": "layer", "do_stable_layer_norm": true}'
    _, layer_norm = check_model_source(ModelArguments(model_name_or_path=TINY_MODEL, config_overrides=layer))
    batch = AudioCollator(layer_norm, return_input_lengths=True)(audio)
    assert batch["attention_mask"].sum(dim=-1).tolist() == [4000, 6000] == batch["input_lengths"].tolist()


def test_cropped_training_batches_hold_no_padding_and_windows_reach_every_start():
    clips = [np.arange(length, dtype=np.float32) for length in (4000, 4003, 4001)]
    torch.manual_seed(0)
    starts = set()
    for _ in range(200):
        cropped, dropped = crop_to_shortest([{"input_values": clip, "labels": 0} for clip in clips], multiple=1)
        assert [len(item["input_values"]) for item in cropped] == [4000] * 3 and dropped.tolist() == [0, 3, 1]
        window = cropped[1]["input_values"]
        assert np.array_equal(window, np.arange(window[0], window[0] + 4000))  # one piece of the clip, in order
        starts.add(int(window[0]))
    assert starts == {0, 1, 2, 3}  # the 4003-sample clip's window may end at its last sample
    _, group_norm = check_model_source(ModelArguments(model_name_or_path=TINY_MODEL))
    # The collator rounds the window down to a multiple of 0.1 s (1600 samples), so that batches share a few shapes.
    batch = AudioCollator(group_norm, return_input_lengths=True, crop_to_shortest=True)([{"input_values": clip} for clip in clips])
    assert batch["input_values"].shape == (3, 3200) and batch["input_lengths"].tolist() == [3200] * 3
    assert batch["cropped_samples"].tolist() == [800, 803, 801]
    short = AudioCollator(group_norm, crop_to_shortest=True)([{"input_values": clip[:1000]} for clip in clips])
    assert short["input_values"].shape == (3, 1000)  # shorter than 0.1 s: the shortest clip whole
    np.testing.assert_allclose(batch["input_values"].std(dim=-1, unbiased=False).numpy(), 1, atol=1e-3)  # each normalized alone
    padded = AudioCollator(group_norm, return_input_lengths=True)([{"input_values": clip} for clip in clips])
    assert padded["input_values"].shape == (3, 4003) and "cropped_samples" not in padded


def padded_share(batches, lengths):
    return 1 - sum(lengths[batch].sum() for batch in batches) / sum(len(batch) * lengths[batch].max() for batch in batches)


def test_length_grouped_training_batches_pad_little_and_still_mix():
    lengths = np.random.default_rng(0).integers(8000, 64000, size=300)  # 0.5-4 s clips
    sampler = LengthGroupedBatchSampler(lengths, batch_size=16, group_batches=8, seed=42)
    first, second = list(sampler), list(sampler)  # two epochs
    for epoch in (first, second):
        assert sorted(position for batch in epoch for position in batch) == list(range(300))  # every clip once
        assert len(epoch) == len(sampler) and max(len(batch) for batch in epoch) == 16
    random_batches = length_grouped_batches(lengths, 16, 0, np.random.default_rng(42))
    assert padded_share(first, lengths) < 0.1 < 0.3 < padded_share(random_batches, lengths)
    assert {frozenset(batch) for batch in first} != {frozenset(batch) for batch in second}  # membership changes
    assert list(LengthGroupedBatchSampler(lengths, 16, 8, 42)) == first  # a function of (seed, epoch)


def test_an_update_holds_the_same_clips_however_it_is_split_into_accumulation_steps():
    lengths = np.random.default_rng(1).integers(8000, 64000, size=96)  # whole updates of 8
    one_step = length_grouped_batches(lengths, 8, 4, np.random.default_rng(3))
    two_steps = length_grouped_batches(lengths, 4, 4, np.random.default_rng(3), accumulation=2)
    assert [set(batch) for batch in one_step] == [set(two_steps[2 * k]) | set(two_steps[2 * k + 1]) for k in range(len(one_step))]
