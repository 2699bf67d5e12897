"""Pooled embeddings: the hidden states of each clip alone, averaged over its true frames, whatever its batch mates."""

import numpy as np
import pytest
import torch
from transformers import AutoModel

from model_fixtures import encoder_config, feature_extractor_for, save_classifier
from voc2vec.embeddings import embed_clips, load_encoder, select_layers


def clips_of(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(length)).astype(np.float32) for length in lengths]


def alone(encoder, feature_extractor, clip, layer):
    """The reference, computed directly: the encoder on the clip alone, its hidden state averaged over all frames."""
    inputs = feature_extractor(clip, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**inputs, output_hidden_states=True).hidden_states[layer][0]
    return hidden.mean(dim=0).numpy(), hidden.std(dim=0, unbiased=False).numpy()


@pytest.mark.parametrize("layer_norm", [False, True], ids=["group-norm", "layer-norm-with-mask"])
def test_embeddings_equal_each_clip_embedded_alone(layer_norm):
    torch.manual_seed(0)
    encoder = AutoModel.from_config(encoder_config(layer_norm)).eval()
    feature_extractor = feature_extractor_for(layer_norm)
    clips = clips_of([12000, 16000, 12000, 20000, 9000, 16000])  # some equal lengths share batches
    vectors = embed_clips(encoder, feature_extractor, clips, layers="all", pooling="mean+std", batch_size=4)
    assert vectors.shape == (6, 3, 128)  # 2 layers + the transformer's input; mean and std of 64 dims
    for index, clip in enumerate(clips):
        for layer in range(3):
            mean, std = alone(encoder, feature_extractor, clip, layer)
            np.testing.assert_allclose(vectors[index, layer, :64], mean, atol=2e-4)
            np.testing.assert_allclose(vectors[index, layer, 64:], std, atol=2e-4)


def test_a_padded_batch_pools_true_frames_only():
    # A layer-norm model with attention mask is batched with padding: the padded frames must not enter the mean.
    torch.manual_seed(0)
    encoder = AutoModel.from_config(encoder_config(layer_norm=True)).eval()
    feature_extractor = feature_extractor_for(layer_norm=True)
    short, long = clips_of([8000, 24000], seed=3)
    batched = embed_clips(encoder, feature_extractor, [short, long], layers="last", batch_size=2)
    np.testing.assert_allclose(batched[0, 0], alone(encoder, feature_extractor, short, -1)[0], atol=2e-4)


def test_layers_are_chosen_by_name_index_or_list():
    assert select_layers("all", 13) == list(range(13))
    assert select_layers("last", 13) == [12]
    assert select_layers(None, 13) == [12]
    assert select_layers("0,6,12", 13) == [0, 6, 12]
    assert select_layers(-1, 13) == [12]
    with pytest.raises(ValueError, match="hidden states 0..12"):
        select_layers("13", 13)
    with pytest.raises(ValueError, match="comma-separated"):
        select_layers("middle", 13)


@pytest.mark.parametrize("head", ["standard", "lstm"])
def test_a_classifier_folder_gives_its_own_encoder(tmp_path, head):
    from transformers import AutoModelForAudioClassification

    folder = save_classifier(tmp_path / head, head=head)
    encoder, feature_extractor = load_encoder(folder)
    classifier = AutoModelForAudioClassification.from_pretrained(folder).eval()
    own_encoder = classifier.encoder if head == "lstm" else classifier.wav2vec2
    clip = clips_of([16000])[0]
    np.testing.assert_allclose(
        embed_clips(encoder, feature_extractor, [clip])[0, 0], alone(own_encoder, feature_extractor, clip, -1)[0], atol=1e-5
    )
