"""A clip's scores never depend on the clips batched with it.

For a group-norm wav2vec 2.0, a HuBERT, a layer-norm wav2vec 2.0 with attention mask, WavLM (base: group norm;
large: layer norm with mask) and data2vec-audio (with mask), with the standard transformers head and the voc2vec
LSTM head: the logits `predict_logits` gives a clip inside a set of longer and
shorter clips equal (1e-4) what a plain feature-extractor + model forward gives the clip alone, the way a user
calls a Hub model on one recording.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForAudioClassification,
    Data2VecAudioConfig,
    Wav2Vec2FeatureExtractor,
    WavLMConfig,
)

from voc2vec.collate import AudioCollator
from voc2vec.heads import AudioLSTMHeadConfig, AudioModelWithLSTMHead
from voc2vec.prediction import evaluation_batches, pads_exactly, predict_logits

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "models"
LABELS = {0: "laugh", 1: "cry", 2: "sigh"}
# Clip lengths in samples: two share a length (they may share a batch), the others are longer or shorter.
LENGTHS = [16000, 4000, 16000, 9000, 2400]


# The sizes of configs/models/tiny-wav2vec2.json, for the families that have no tiny config file.
TINY_SIZES = {
    "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128, "conv_dim": [32] * 7,
    "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4, "hidden_dropout": 0.0, "attention_dropout": 0.0,
    "activation_dropout": 0.0, "feat_proj_dropout": 0.0, "final_dropout": 0.0, "layerdrop": 0.0, "classifier_proj_size": 32,
}
LAYER_NORM = {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True}


def encoder_config(kind: str):
    if kind == "wav2vec2-group":
        return AutoConfig.from_pretrained(CONFIGS / "tiny-wav2vec2.json")
    if kind == "hubert-group":
        return AutoConfig.from_pretrained(CONFIGS / "tiny-hubert.json")
    if kind == "wavlm-group":  # WavLM base / base-plus
        return WavLMConfig(**TINY_SIZES)
    if kind == "wavlm-layer-masked":  # WavLM large
        return WavLMConfig(**TINY_SIZES, **LAYER_NORM)
    if kind == "data2vec-audio-masked":  # data2vec-audio base and large: layer-norm convolutions, trained with masks
        # Its num_conv_pos_embeddings counts convolution layers (5 by default), not the kernel width.
        return Data2VecAudioConfig(**{**TINY_SIZES, "num_conv_pos_embeddings": 5})
    config = AutoConfig.from_pretrained(CONFIGS / "tiny-wav2vec2.json")  # wav2vec 2.0 large-lv60 style
    config.update(LAYER_NORM)
    return config


def feature_extractor_for(config) -> Wav2Vec2FeatureExtractor:
    # As the Hub checkpoints do: an attention mask only for models trained with masks (layer-norm wav2vec 2.0 and
    # WavLM, data2vec-audio).
    masked = getattr(config, "feat_extract_norm", None) == "layer" or config.model_type == "data2vec-audio"
    return Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=masked)


def build(kind: str, head: str):
    torch.manual_seed(0)
    config = encoder_config(kind)
    if head == "lstm":
        model = AudioModelWithLSTMHead(
            AudioLSTMHeadConfig(encoder_config=config, lstm_hidden_size=16, id2label=LABELS,
                                label2id={name: index for index, name in LABELS.items()})
        )
    else:
        config.update({"id2label": LABELS, "label2id": {name: index for index, name in LABELS.items()}})
        model = AutoModelForAudioClassification.from_config(config)
    return model.eval(), feature_extractor_for(config)


def clips():
    rng = np.random.default_rng(3)
    # Different loudness per clip, as in real corpora: per-clip normalization must undo it clip by clip.
    return [(gain * rng.standard_normal(length)).astype(np.float32) for gain, length in zip([0.1, 1.0, 0.5, 2.0, 0.05], LENGTHS)]


def alone(model, feature_extractor, clip) -> np.ndarray:
    """The Hub user's way: one clip, its feature extractor, the model."""
    inputs = feature_extractor(clip, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits[0].numpy()


@pytest.mark.parametrize("head", ["standard", "lstm"])
@pytest.mark.parametrize("kind", ["wav2vec2-group", "hubert-group", "wav2vec2-layer-masked", "wavlm-group",
                                  "wavlm-layer-masked", "data2vec-audio-masked"])
def test_scores_equal_the_clip_scored_alone(kind, head):
    model, feature_extractor = build(kind, head)
    audio = clips()
    collator = AudioCollator(feature_extractor, return_input_lengths=head == "lstm")
    may_pad = pads_exactly(model.config, feature_extractor)
    assert may_pad == kind.endswith("layer-masked")  # data2vec-audio: see test_padding_..._would_change_scores
    batched = predict_logits(model, [{"input_values": clip} for clip in audio], collator, LENGTHS, batch_size=8, may_pad=may_pad)
    for index, clip in enumerate(audio):
        np.testing.assert_allclose(batched[index], alone(model, feature_extractor, clip), atol=1e-4, rtol=0)


@pytest.mark.parametrize("head", ["standard", "lstm"])
def test_layer_norm_model_padded_batch_equals_alone(head):
    """With a mask, padding is exact: a padded batch from the collator gives each clip its own logits."""
    model, feature_extractor = build("wav2vec2-layer-masked", head)
    audio = clips()
    batch = AudioCollator(feature_extractor, return_input_lengths=head == "lstm")([{"input_values": clip} for clip in audio])
    assert batch["input_values"].shape == (len(audio), max(LENGTHS)) and "attention_mask" in batch
    with torch.no_grad():
        logits = model(**batch).logits.numpy()
    for index, clip in enumerate(audio):
        np.testing.assert_allclose(logits[index], alone(model, feature_extractor, clip), atol=1e-4, rtol=0)


def test_collator_normalizes_each_clip_before_padding():
    """A quiet 1 s clip padded beside a loud 7 s clip keeps mean 0 and std 1 over its own samples."""
    feature_extractor = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False)
    rng = np.random.default_rng(0)
    short, long = 0.01 * rng.standard_normal(16000) + 0.3, rng.standard_normal(7 * 16000)
    batch = AudioCollator(feature_extractor)([{"input_values": short}, {"input_values": long}])
    assert "attention_mask" not in batch  # a group-norm model (no mask) is not given one
    values = batch["input_values"][0].numpy()
    assert abs(values[:16000].mean()) < 1e-3 and abs(values[:16000].std() - 1) < 1e-3
    assert np.all(values[16000:] == 0)
    # The feature extractor's own batch call pads first and normalizes over the padding: the bug this replaces.
    naive = feature_extractor([short, long], sampling_rate=16000, padding="longest", return_tensors="np")["input_values"][0]
    assert abs(naive[:16000].std() - 1) > 0.5


def test_group_norm_batches_hold_only_equal_lengths():
    batches = evaluation_batches(LENGTHS, batch_size=8, may_pad=False)
    assert sorted(position for batch in batches for position in batch) == list(range(len(LENGTHS)))
    assert all(len({LENGTHS[position] for position in batch}) == 1 for batch in batches)
    assert [0, 2] in batches  # the two clips of equal length do share one
    padded = evaluation_batches(LENGTHS, batch_size=2, may_pad=True)
    assert [len(batch) for batch in padded] == [2, 2, 1]


@pytest.mark.parametrize("kind", ["wav2vec2-group", "data2vec-audio-masked"])
def test_padding_a_group_norm_batch_would_change_scores(kind):
    """Why equal-length batches: a padded batch of a group-norm model gives the short clip other logits. So does
    data2vec-audio's, even with its attention mask: its positional embedding is a stack of convolutions, and the
    ones after the first see the padded frames (which the first makes non-zero)."""
    model, feature_extractor = build(kind, "standard")
    audio = clips()
    batch = AudioCollator(feature_extractor)([{"input_values": audio[1]}, {"input_values": audio[0]}])
    with torch.no_grad():
        padded = model(**batch).logits[0].numpy()
    assert np.abs(padded - alone(model, feature_extractor, audio[1])).max() > 1e-3


def test_lstm_head_pools_true_frames_of_a_padded_group_norm_batch(monkeypatch):
    """In training, group-norm models get padded batches without a mask: the LSTM head still packs and pools
    over each clip's own frames, from the lengths the collator passes."""
    model, feature_extractor = build("wav2vec2-group", "lstm")
    audio = clips()
    batch = AudioCollator(feature_extractor, return_input_lengths=True)([{"input_values": clip} for clip in audio])
    assert "attention_mask" not in batch
    seen = {}
    original_pool = model.pool

    def recording_pool(frames, lengths):
        seen["lengths"] = lengths
        return original_pool(frames, lengths)

    monkeypatch.setattr(model, "pool", recording_pool)
    with torch.no_grad():
        model(**batch)
    expected = model.encoder._get_feat_extract_output_lengths(torch.tensor(LENGTHS))
    assert seen["lengths"].tolist() == expected.tolist()
    assert seen["lengths"].min() < model.encoder(batch["input_values"]).last_hidden_state.shape[1]  # not all frames
