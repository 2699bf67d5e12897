"""The LSTM head on a tiny random wav2vec 2.0: padding, pooling modes, saving/loading, losses."""

import pytest
import torch
from transformers import (
    AutoModelForAudioClassification,
    Wav2Vec2Config,
    Wav2Vec2ForSequenceClassification,
    Wav2Vec2Model,
)

from voc2vec.heads import (
    AudioLSTMHeadConfig,
    AudioModelWithLSTMHead,
    balanced_class_weights,
    ccc_loss_func,
    make_weighted_cross_entropy_loss_func,
)
from voc2vec.metrics import ccc_loss

LABELS = {0: "laugh", 1: "cry", 2: "sigh"}


def tiny_encoder_config(**overrides):
    # "layer" feature-extractor norm normalises each frame on its own, so a clip's frames do not depend on how
    # much padding follows it (the "group" norm of wav2vec2-base normalises over time, padding included).
    kwargs = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        conv_bias=True,
        feat_extract_norm="layer",
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=8,
    )
    kwargs.update(overrides)
    return Wav2Vec2Config(**kwargs)


def tiny_head_model(**config_overrides):
    torch.manual_seed(0)
    kwargs = dict(
        encoder_config=tiny_encoder_config(),
        lstm_hidden_size=16,
        id2label=LABELS,
        label2id={name: index for index, name in LABELS.items()},
    )
    kwargs.update(config_overrides)
    return AudioModelWithLSTMHead(AudioLSTMHeadConfig(**kwargs)).eval()


def padded_batch():
    """Two clips, the second half as long and zero-padded, plus the second clip on its own."""
    torch.manual_seed(1)
    long_clip, short_clip = torch.randn(1600), torch.randn(800)
    input_values = torch.zeros(2, 1600)
    input_values[0], input_values[1, :800] = long_clip, short_clip
    attention_mask = torch.zeros(2, 1600, dtype=torch.long)
    attention_mask[0], attention_mask[1, :800] = 1, 1
    return input_values, attention_mask, short_clip[None]


@pytest.mark.parametrize("pooling", ["first", "last", "max", "mean"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
def test_padding_does_not_change_the_prediction(pooling, bidirectional):
    # Bidirectional: the backward pass would start in the padding unless the sequences are packed.
    model = tiny_head_model(pooling=pooling, lstm_bidirectional=bidirectional)
    input_values, attention_mask, short_clip = padded_batch()
    with torch.no_grad():
        batch_logits = model(input_values, attention_mask=attention_mask).logits
        alone_logits = model(short_clip, attention_mask=torch.ones_like(short_clip, dtype=torch.long)).logits
        # Without the mask the padding would count as signal: the prediction must then differ.
        unmasked_logits = model(input_values).logits
    assert batch_logits.shape == (2, 3)
    torch.testing.assert_close(batch_logits[1], alone_logits[0], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(unmasked_logits[1], alone_logits[0], atol=1e-5)


def test_pooling_without_lstm_is_the_plain_linear_head():
    model = tiny_head_model(lstm_num_layers=0, pooling="mean")
    assert model.lstm is None and model.output.in_features == 32
    input_values, attention_mask, short_clip = padded_batch()
    with torch.no_grad():
        batch_logits = model(input_values, attention_mask=attention_mask).logits
        alone_logits = model(short_clip).logits
    torch.testing.assert_close(batch_logits[1], alone_logits[0], atol=1e-5, rtol=1e-4)


def test_save_and_load_through_auto_class(tmp_path):
    model = tiny_head_model(pooling="last", lstm_bidirectional=True)
    input_values, attention_mask, _ = padded_batch()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, AudioModelWithLSTMHead)
    assert loaded.config.id2label == LABELS
    assert loaded.config.pooling == "last" and loaded.config.lstm_bidirectional
    assert loaded.config.encoder_config.hidden_size == 32
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(input_values, attention_mask=attention_mask).logits,
            model(input_values, attention_mask=attention_mask).logits,
            rtol=0,
            atol=0,
        )


def test_classification_loss_uses_class_weights():
    input_values, attention_mask, _ = padded_batch()
    labels = torch.tensor([0, 2])
    plain = tiny_head_model()
    weighted = tiny_head_model(class_weights=[1.0, 1.0, 5.0])
    with torch.no_grad():
        logits = plain(input_values, attention_mask=attention_mask).logits
        plain_loss = plain(input_values, attention_mask=attention_mask, labels=labels).loss
        weighted_loss = weighted(input_values, attention_mask=attention_mask, labels=labels).loss
    weights = torch.tensor([1.0, 1.0, 5.0])
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=weights)
    torch.testing.assert_close(weighted_loss, expected)
    assert not torch.isclose(plain_loss, weighted_loss)


def test_ccc_regression_backward():
    model = tiny_head_model(
        problem_type="regression",
        regression_loss="ccc",
        id2label={0: "valence", 1: "arousal"},
        label2id={"valence": 0, "arousal": 1},
    ).train()
    torch.manual_seed(2)
    input_values = torch.randn(4, 1200)
    targets = torch.rand(4, 2)
    output = model(input_values, labels=targets)
    assert output.logits.shape == (4, 2)
    torch.testing.assert_close(output.loss, ccc_loss(output.logits, targets))
    output.loss.backward()
    gradients = [p.grad for p in model.parameters() if p.grad is not None]
    # The loss reaches both the LSTM and the encoder.
    assert model.lstm.weight_ih_l0.grad is not None
    assert model.encoder.encoder.layers[0].attention.q_proj.weight.grad is not None
    assert all(torch.isfinite(gradient).all() for gradient in gradients)


def test_mse_regression_loss():
    model = tiny_head_model(
        problem_type="regression", regression_loss="mse", id2label={0: "arousal"}, label2id={"arousal": 0}
    )
    targets = torch.rand(2, 1)
    input_values, attention_mask, _ = padded_batch()
    output = model(input_values, attention_mask=attention_mask, labels=targets)
    torch.testing.assert_close(output.loss, torch.nn.functional.mse_loss(output.logits, targets))


def test_config_rejects_unknown_options():
    with pytest.raises(ValueError, match="pooling"):
        AudioLSTMHeadConfig(encoder_config=tiny_encoder_config(), pooling="attention")
    with pytest.raises(ValueError, match="regression_loss"):
        AudioLSTMHeadConfig(encoder_config=tiny_encoder_config(), regression_loss="l1")
    with pytest.raises(ValueError, match="class weights"):
        AudioLSTMHeadConfig(encoder_config=tiny_encoder_config(), id2label=LABELS, class_weights=[1.0, 2.0])


def test_loss_funcs_for_builtin_heads():
    torch.manual_seed(3)
    model = Wav2Vec2ForSequenceClassification(tiny_encoder_config(num_labels=2)).eval()
    outputs = model(torch.randn(3, 1200))
    targets = torch.rand(3, 2)
    torch.testing.assert_close(ccc_loss_func(outputs, targets), ccc_loss(outputs.logits, targets))

    # An absent class gets weight 0; present ones n_clips / (n_present_classes * clips_of_class).
    assert balanced_class_weights([0, 0, 0, 1], num_labels=3) == pytest.approx([4 / (2 * 3), 4 / (2 * 1), 0.0])
    weights = balanced_class_weights([0, 0, 0, 1], num_labels=2)
    labels = torch.tensor([0, 1, 1])
    loss = make_weighted_cross_entropy_loss_func(weights)(outputs, labels, num_items_in_batch=3)
    expected = torch.nn.functional.cross_entropy(outputs.logits, labels, weight=torch.tensor(weights))
    torch.testing.assert_close(loss, expected)


def test_from_encoder_pretrained_keeps_the_encoder_weights(tmp_path):
    torch.manual_seed(4)
    encoder = Wav2Vec2Model(tiny_encoder_config())
    encoder.save_pretrained(tmp_path)
    model = AudioModelWithLSTMHead.from_encoder_pretrained(str(tmp_path), id2label=LABELS, lstm_hidden_size=16)
    for name, tensor in encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    assert model.config.num_labels == 3 and model.output.in_features == 16
