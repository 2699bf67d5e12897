"""HuBERT frame targets: k-means clusters of MFCCs (fresh model) or of a layer of the initial model.

Fitting k-means over a sample and labelling every clip is the slow, one-off part of HuBERT pretraining, so
the result is cached on disk under a key made of everything it depends on (feature source and recipe, layer,
k, the sample, the data's fingerprint, and whether the teacher sees normalized clips) and reused by every later
run, resume, or process. Labels are stored per clip at the model's 50 Hz frame rate, for whole clips; crops
take the labels at the same frames.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets
import kaldi_native_fbank
import numpy as np
import torch
from sklearn.cluster import MiniBatchKMeans

from voc2vec.errors import UserError
from voc2vec.pretraining.data import normalize_audio

logger = logging.getLogger(__name__)


# What the MFCC targets are computed with; part of the cache key, so targets of another recipe are never reused
# (earlier versions computed them on per-clip normalized audio).
MFCC_RECIPE = "kaldi-mfcc13-no-energy+deltas+delta-deltas/raw-waveform"


@dataclass(frozen=True)
class KMeansTargetSpec:
    """Everything the targets depend on; its hash names the cache file."""

    features: str  # "mfcc" or "layer"
    model_name_or_path: str | None  # the teacher model, for "layer"
    layer: int  # transformer layer whose output is clustered (hidden_states[layer]), for "layer"
    num_clusters: int
    max_fit_clips: int  # clips sampled to fit k-means
    data_fingerprint: str
    seed: int = 0
    normalized_audio: bool = True  # the teacher sees clips normalized per clip (the feature extractor's do_normalize), for "layer"
    mfcc_recipe: str = MFCC_RECIPE

    def cache_key(self) -> str:
        fields = asdict(self)
        if self.features == "mfcc":  # no teacher involved, raw audio: the same MFCC targets serve any model
            fields.update(model_name_or_path=None, layer=None, normalized_audio=None)
        else:
            fields.update(mfcc_recipe=None)
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]


def kaldi_mfcc(audio: np.ndarray, sampling_rate: int = 16000) -> np.ndarray:
    """(frames, 13) Kaldi MFCCs at 100 Hz, as fairseq's HuBERT recipe computes them.

    fairseq's `examples/hubert/simple_kmeans/dump_mfcc_feature.py` calls torchaudio's
    `compliance.kaldi.mfcc(waveform, sample_frequency=16000, use_energy=False)` on the waveform as read from the
    file ([-1, 1] samples, not normalized: a clip's loudness is part of c0, as in Kaldi): 25 ms
    Povey windows every 10 ms without centering (snip_edges), pre-emphasis 0.97, DC offset removed, 23 mel
    bins from 20 Hz, 13 cepstra with c0 kept (use_energy=False) and a cepstral lifter of 22, no dither.
    kaldi-native-fbank is the same Kaldi code without torchaudio (whose wheels do not work here); its
    default dither is set to 0 as torchaudio's, so targets are deterministic.
    """
    options = kaldi_native_fbank.MfccOptions()
    options.frame_opts.samp_freq = sampling_rate
    options.frame_opts.dither = 0.0
    options.use_energy = False
    computer = kaldi_native_fbank.OnlineMfcc(options)
    computer.accept_waveform(sampling_rate, np.ascontiguousarray(audio, dtype=np.float32))
    computer.input_finished()
    if computer.num_frames_ready == 0:
        return np.zeros((0, options.num_ceps), dtype=np.float32)
    return np.array([computer.get_frame(index) for index in range(computer.num_frames_ready)], dtype=np.float32)


def deltas(features: np.ndarray) -> np.ndarray:
    """torchaudio's `functional.compute_deltas` (window of 5 frames, edge frames repeated) along axis 0:
    (2 (x[t+2] - x[t-2]) + (x[t+1] - x[t-1])) / 10, the slope of the least-squares line through 5 frames."""
    padded = np.pad(features, ((2, 2), (0, 0)), mode="edge")
    return (2 * (padded[4:] - padded[:-4]) + (padded[3:-1] - padded[1:-3])) / 10


def mfcc_features(audio: np.ndarray, sampling_rate: int = 16000) -> np.ndarray:
    """(frames, 39) Kaldi MFCCs, deltas and delta-deltas (fairseq's HuBERT iteration 1), one row per 20 ms frame.

    The 100 Hz frames are computed without centering, so Kaldi frame 2t spans samples [320 t, 320 t + 400):
    exactly the receptive field of model frame t. Keeping every second row aligns them with the 50 Hz model
    frames, which is what fairseq does with its 100 Hz labels (`label_rate: 100`, every second label used).
    """
    mfcc = kaldi_mfcc(audio, sampling_rate)
    first_order = deltas(mfcc)
    return np.concatenate([mfcc, first_order, deltas(first_order)], axis=1)[::2].astype(np.float32)


def layer_features(model: torch.nn.Module, audio: np.ndarray, layer: int) -> np.ndarray:
    """(frames, hidden) output of transformer layer `layer` of a wav2vec 2.0 / HuBERT encoder."""
    device = next(model.parameters()).device
    with torch.no_grad():
        inputs = torch.from_numpy(audio)[None].to(device)
        hidden_states = model(inputs, output_hidden_states=True).hidden_states
    return hidden_states[layer][0].float().cpu().numpy()


def kmeans_frame_targets(
    dataset: datasets.Dataset,
    decode: Callable[[int], np.ndarray],
    spec: KMeansTargetSpec,
    cache_dir: str | os.PathLike,
    teacher: torch.nn.Module | None = None,
    fit: bool = True,
) -> tuple[list[np.ndarray], Path]:
    """Per-clip int16 cluster labels at 50 Hz, from the cache when there, else fitted and cached.

    `decode(i)` gives clip i as decoded, [-1, 1] samples: MFCCs are computed on it as it is (as fairseq does), a
    teacher layer on it normalized per clip when `spec.normalized_audio` (as the model sees it). `teacher` is the
    initial encoder, required for `spec.features == "layer"`. With `fit=False` the targets must already be
    cached: every process of a run must train on the same labels, the ones the main process fitted.
    Returns the labels and the cache file.
    """
    cache_file = Path(cache_dir).expanduser() / f"kmeans-{spec.cache_key()}.npz"
    if cache_file.exists():
        logger.info("k-means targets from cache %s", cache_file)
        return _read_labels(cache_file), cache_file
    if not fit:
        raise UserError(
            "k-means targets not found: the main process writes them there, and this process cannot see them",
            where=cache_file,
            fix="on several machines, set --kmeans_cache_dir to a folder that all of them see",
        )
    if spec.features == "layer" and teacher is None:
        raise ValueError("k-means on a model layer needs the initial model as teacher")
    teacher_was_training = teacher.training if teacher is not None else False
    if teacher is not None:
        teacher.eval()

    def features(index: int) -> np.ndarray:
        audio = decode(index)
        if spec.features == "mfcc":
            return mfcc_features(audio)
        return layer_features(teacher, normalize_audio(audio) if spec.normalized_audio else audio, spec.layer)

    rng = np.random.default_rng(spec.seed)
    fit_clips = rng.permutation(len(dataset))[: spec.max_fit_clips]
    logger.info("fitting k-means (k=%d) on %s features of %d clips", spec.num_clusters, spec.features, len(fit_clips))
    fit_features = np.concatenate([features(int(index)) for index in fit_clips])
    # fairseq's HuBERT recipe (simple_kmeans/learn_kmeans.py), with 3 initialisations instead of 20:
    # k-means++ on a large sample varies little between them, and each costs a full pass
    kmeans = MiniBatchKMeans(
        n_clusters=spec.num_clusters, init="k-means++", max_iter=100, batch_size=10000, tol=0.0,
        max_no_improvement=100, n_init=3, reassignment_ratio=0.0, random_state=spec.seed,
    )
    kmeans.fit(fit_features)
    labels = [kmeans.predict(features(index)).astype(np.int16) for index in range(len(dataset))]
    if teacher is not None:
        teacher.train(teacher_was_training)

    cache_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache_file.with_suffix(f".tmp-{os.getpid()}.npz")
    np.savez(
        temporary,
        labels=np.concatenate(labels),
        offsets=np.cumsum([0] + [len(clip) for clip in labels]),
        cluster_centers=kmeans.cluster_centers_,
        spec=json.dumps(asdict(spec)),
    )
    os.replace(temporary, cache_file)  # atomic: a process that sees the file sees all of it
    return labels, cache_file


def _read_labels(cache_file: Path) -> list[np.ndarray]:
    with np.load(cache_file) as stored:
        labels, offsets = stored["labels"], stored["offsets"]
    return [labels[start:stop] for start, stop in itertools.pairwise(offsets)]
