"""Inference on new recordings: classify (as scored alone, = pipeline("audio-classification")), streamed windows, detect."""

import csv
import json
import math
import tracemalloc

import numpy as np
import pytest
import soundfile
import torch
from transformers import PretrainedConfig, pipeline

from model_fixtures import LABELS, feature_extractor_for, save_classifier, write_audio, write_clips
from voc2vec.audio import load_audio
from voc2vec.errors import UserError
from voc2vec.inference import (
    StretchScores,
    classify_files,
    detect,
    find_audio_files,
    load_classifier,
    merge_segments,
    stream_windows,
    write_rows,
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    write_clips(folder)
    (folder / "broken.wav").write_bytes(b"RIFF not really a wav file")
    (folder / "notes.txt").write_text("not audio, not listed")
    return folder


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return save_classifier(tmp_path_factory.mktemp("model"))


def pipeline_probabilities(model_dir, path) -> dict:
    """The reference: transformers' pipeline on the decoded array, one recording at a time."""
    classify = pipeline("audio-classification", model=str(model_dir), device="cpu")
    return {item["label"]: item["score"] for item in classify({"raw": load_audio(path), "sampling_rate": 16000}, top_k=None)}


def test_folders_are_searched_recursively_for_audio_only(clips):
    paths = find_audio_files([clips])
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert names == ["a.wav", "b.wav", "broken.wav", "c.wav", "d.flac", "e.wav", "f.wav", "g.wav"]
    assert find_audio_files([clips / "a.wav", clips / "a.wav"]) == [str(clips / "a.wav")]


@pytest.mark.parametrize("head", ["standard", "lstm"])
def test_classify_gives_each_file_the_pipelines_scores_alone(clips, tmp_path, head):
    model_dir = classifier_dir_for(tmp_path, head)
    model, feature_extractor = load_classifier(model_dir, "cpu")
    paths = find_audio_files([clips])
    rows, skipped = classify_files(paths, model, feature_extractor, batch_size=4, top_k=2)

    assert [row["path"] for row in rows] == [path for path in paths if not path.endswith("broken.wav")]  # input order
    assert [item.path for item in skipped] == [str(clips / "broken.wav")]
    classify = pipeline("audio-classification", model=str(model_dir), device="cpu")
    for row in rows:
        expected = {item["label"]: item["score"] for item in classify({"raw": load_audio(row["path"]), "sampling_rate": 16000}, top_k=None)}
        assert list(row) == ["path", "label", "score", "label_2", "score_2"] + [f"prob_{name}" for name in LABELS]
        np.testing.assert_allclose([row[f"prob_{name}"] for name in LABELS], [expected[name] for name in LABELS], atol=1e-5)
        ranked = sorted(expected, key=expected.get, reverse=True)
        assert (row["label"], row["label_2"]) == (ranked[0], ranked[1])
        assert row["score"] == pytest.approx(expected[ranked[0]], abs=1e-5)


def classifier_dir_for(tmp_path, head):
    import voc2vec.heads  # noqa: F401  (the pipeline loads voc2vec's head through the Auto classes)

    return save_classifier(tmp_path / head, head=head)


def test_layer_norm_model_batches_sorted_lengths_and_still_matches_alone(clips, tmp_path):
    model_dir = save_classifier(tmp_path / "layer", layer_norm=True)
    model, feature_extractor = load_classifier(model_dir, "cpu")
    paths = [path for path in find_audio_files([clips]) if not path.endswith("broken.wav")]
    rows, _ = classify_files(paths, model, feature_extractor, batch_size=8)
    for row in rows:
        expected = pipeline_probabilities(model_dir, row["path"])
        np.testing.assert_allclose([row[f"prob_{name}"] for name in LABELS], [expected[name] for name in LABELS], atol=1e-4)


def test_regression_model_writes_one_value_per_target(clips, tmp_path):
    model_dir = save_classifier(tmp_path / "regression", labels=["valence", "arousal"], regression=True)
    model, feature_extractor = load_classifier(model_dir, "cpu")
    rows, _ = classify_files([str(clips / "a.wav")], model, feature_extractor)
    inputs = feature_extractor(load_audio(clips / "a.wav"), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs).logits[0].numpy()
    assert list(rows[0]) == ["path", "prediction_valence", "prediction_arousal"]
    np.testing.assert_allclose([rows[0]["prediction_valence"], rows[0]["prediction_arousal"]], expected, atol=1e-5)


def test_top_k_beyond_the_classes_is_a_user_error(clips, classifier_dir):
    model, feature_extractor = load_classifier(classifier_dir, "cpu")
    with pytest.raises(UserError, match="--top_k"):
        classify_files([str(clips / "a.wav")], model, feature_extractor, top_k=4)


def test_loading_a_folder_that_is_not_a_model_names_the_fix(tmp_path):
    with pytest.raises(UserError, match="cannot load an audio classifier.*Fix: pass a model folder"):
        load_classifier(tmp_path, "cpu")


def test_csv_and_jsonl_hold_the_same_rows(tmp_path):
    rows = [{"path": "a, b.wav", "label": "cry", "score": 0.5, "prob_cry": 0.5}]
    write_rows(tmp_path / "out.csv", rows)
    write_rows(tmp_path / "out.jsonl", rows)
    with open(tmp_path / "out.csv", newline="") as handle:
        from_csv = list(csv.DictReader(handle))
    from_jsonl = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert from_csv == [{key: str(value) for key, value in rows[0].items()}]
    assert from_jsonl == rows
    assert not list(tmp_path.glob("*.tmp"))


# ---- streamed windows ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds, rate, channels, block_seconds", [
    (5.3, 44100, 2, 0.37),  # resampled, blocks that do not align with windows
    (4.0, 16000, 1, 0.37),  # the hop grid ends exactly at the end
    (4.05, 16000, 1, 0.5),  # the last block is short: the end window reaches back into audio read before it
    (0.7, 8000, 1, 0.37),  # shorter than one window
])
def test_streamed_windows_are_the_decoded_file_cut_into_windows(tmp_path, seconds, rate, channels, block_seconds):
    path = write_audio(tmp_path / "long.wav", seconds, rate, channels)
    whole = load_audio(path)
    window, hop = 16000, 4000
    windows = list(stream_windows(path, window, hop, block_seconds=block_seconds))
    expected_starts = list(range(0, len(whole) - window + 1, hop))
    if not expected_starts or expected_starts[-1] + window < len(whole):
        expected_starts.append(max(0, len(whole) - window))  # the last window ends at the recording's end
    assert [item.start for item in windows] == expected_starts
    for item in windows:
        assert len(item.samples) == min(window, len(whole))
        np.testing.assert_allclose(item.samples, whole[item.start : item.start + window], atol=1e-5)
    assert windows[-1].end == len(whole)


def test_streaming_holds_a_block_and_a_window_not_the_recording(tmp_path):
    path = tmp_path / "ten_minutes.wav"
    rate = 16000
    with soundfile.SoundFile(path, "w", rate, 1, subtype="PCM_16") as sound:
        for _ in range(10):
            sound.write(np.full(60 * rate, 0.1, dtype=np.float32))
    decoded_bytes = 600 * rate * 4
    tracemalloc.start()
    count = sum(1 for _ in stream_windows(path, 2 * rate, rate, block_seconds=5))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 599
    assert peak < decoded_bytes / 20, f"peak {peak / 2**20:.1f} MiB while streaming a {decoded_bytes / 2**20:.0f} MiB recording"


# ---- detect ------------------------------------------------------------------------------------------------------------


def test_stretch_scores_average_the_windows_around_each_stretch():
    stretches = StretchScores(hop=10, num_classes=1)
    stretches.add(0, 20, np.array([1.0]))  # centres 5, 15
    stretches.add(10, 30, np.array([0.0]))  # centres 15, 25
    stretches.add(17, 37, np.array([0.5]))  # a last window off the grid: centres 25, 35
    np.testing.assert_allclose(stretches.mean(37)[:, 0], [1.0, 0.5, 0.25, 0.5])


def test_segments_are_runs_above_the_threshold_per_class():
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.7], [0.6, 0.9], [0.1, 0.95]], dtype=np.float32)
    segments = merge_segments(scores, ["laugh", "cry"], hop_seconds=0.5, duration=2.3, threshold=0.6)
    assert segments == [
        {"start": 0.0, "end": 1.0, "label": "laugh", "score": pytest.approx(0.9)},
        {"start": 1.0, "end": 2.3, "label": "cry", "score": pytest.approx(0.95)},  # the last run reaches the end
        {"start": 1.5, "end": 2.0, "label": "laugh", "score": pytest.approx(0.6)},
    ]


class LoudnessClassifier(torch.nn.Module):
    """A stand-in classifier whose answer we know: "loud" where the window's RMS is high, else "quiet"."""

    def __init__(self):
        super().__init__()
        self.config = PretrainedConfig(id2label={0: "quiet", 1: "loud"}, label2id={"quiet": 0, "loud": 1})
        self.scale = torch.nn.Parameter(torch.tensor(60.0))

    def forward(self, input_values, attention_mask=None):
        rms = input_values.pow(2).mean(dim=-1).sqrt()
        loud = self.scale * (rms - 0.1)
        return type("Output", (), {"logits": torch.stack([-loud, loud], dim=-1)})()


def test_detect_finds_the_loud_part_and_writes_its_three_files(tmp_path):
    rate = 16000
    quiet, loud = 0.01 * np.ones(10 * rate), 0.5 * np.ones(3 * rate)
    samples = np.concatenate([quiet[: 4 * rate], loud, quiet[: 5 * rate]]).astype(np.float32)  # loud from 4 to 7 s, 12 s long
    soundfile.write(tmp_path / "recording.flac", samples, rate)
    result = detect(tmp_path / "recording.flac", LoudnessClassifier(), feature_extractor_for(normalize=False), tmp_path,
                    window=1.0, hop=0.25, threshold=0.5, batch_size=8)

    with open(tmp_path / "segments.csv", newline="") as handle:
        segments = list(csv.DictReader(handle))
    loud_segments = [row for row in segments if row["label"] == "loud"]
    assert len(loud_segments) == 1
    assert float(loud_segments[0]["start"]) == pytest.approx(4.0, abs=0.5)
    assert float(loud_segments[0]["end"]) == pytest.approx(7.0, abs=0.5)
    assert [row["label"] for row in segments if float(row["end"]) <= 4.0] == ["quiet"]
    assert set(segments[0]) == {"start", "end", "label", "score"}

    with open(tmp_path / "scores.csv", newline="") as handle:
        windows = list(csv.DictReader(handle))
    assert len(windows) == result.windows == math.floor((12 - 1.0) / 0.25) + 1
    assert list(windows[0]) == ["start", "end", "label", "score", "prob_quiet", "prob_loud"]
    assert (windows[20]["start"], windows[20]["end"], windows[20]["label"]) == ("5.000", "6.000", "loud")
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.duration == pytest.approx(12.0)


def test_detect_windows_are_scored_as_alone_by_a_real_model(tmp_path, classifier_dir):
    path = write_audio(tmp_path / "rec.wav", 3.3, 44100)
    model, feature_extractor = load_classifier(classifier_dir, "cpu")
    detect(path, model, feature_extractor, tmp_path, window=1.0, hop=0.5, threshold=0.0, batch_size=3, plot=False)
    with open(tmp_path / "scores.csv", newline="") as handle:
        windows = list(csv.DictReader(handle))
    whole = load_audio(path)
    for row in (windows[0], windows[3], windows[-1]):  # a batch's first, a later batch, the end window
        start = round(float(row["start"]) * 16000)
        expected = pipeline("audio-classification", model=str(classifier_dir), device="cpu")(
            {"raw": whole[start : start + 16000], "sampling_rate": 16000}, top_k=None)
        for item in expected:
            assert float(row[f"prob_{item['label']}"]) == pytest.approx(item["score"], abs=1e-4)
    with open(tmp_path / "segments.csv", newline="") as handle:
        segments = list(csv.DictReader(handle))
    # threshold 0: every class is one segment over the whole recording
    assert sorted((row["label"], row["start"], row["end"]) for row in segments) == sorted(
        (label, "0.0", f"{len(whole) / 16000:.1f}") for label in LABELS)


def test_detect_refuses_a_hop_longer_than_the_window(tmp_path, classifier_dir):
    path = write_audio(tmp_path / "rec.wav", 1.0)
    model, feature_extractor = load_classifier(classifier_dir, "cpu")
    with pytest.raises(UserError, match="--hop"):
        detect(path, model, feature_extractor, tmp_path, window=1.0, hop=2.0)


def test_streaming_refuses_non_finite_samples_and_unsupported_containers(tmp_path):
    samples = np.zeros(48000, dtype=np.float32)
    samples[30000] = np.nan
    soundfile.write(tmp_path / "nan.wav", samples, 16000, subtype="FLOAT")
    with pytest.raises(UserError, match="non-finite"):
        list(stream_windows(tmp_path / "nan.wav", 16000, 8000, block_seconds=0.5))
    (tmp_path / "phone.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    with pytest.raises(UserError, match="unsupported container.*ffmpeg"):
        list(stream_windows(tmp_path / "phone.m4a", 16000, 8000))
