"""Training and evaluation inputs: random training windows reach every start, evaluation takes the start, and the
attention mask goes only to models trained with one (as their feature extractor says)."""

import datasets
import numpy as np
import torch

from cv_fixtures import TINY_MODEL
from voc2vec.arguments import ModelArguments
from voc2vec.collate import AudioClips, AudioCollator
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
