"""What a probe reads: one feature array per clip of the corpus, `(clips, layers, dim)`, from the on-disk cache.

Every clip is seen as fine-tuning's evaluation sees it: its first `--max_duration` seconds (zero-padded to it with
`--pad_to_max_duration`), decoded once at 16 kHz. The sources:

- an encoder (`--method probe`): every hidden state (the input to the first transformer layer, then each layer's
  output) pooled over the clip's true frames, mean or mean and std, with `voc2vec.embeddings.pooled_hidden_states`,
  the function `voc2vec embed` uses, so a clip's vector does not depend on its batch mates;
- `opensmile:<set>`: openSMILE's functionals of the clip (one 'layer');
- `emotion2vec:<id>`: FunASR emotion2vec's utterance embedding (one 'layer'; `voc2vec.baselines.emotion2vec`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from voc2vec.baselines.feature_cache import FeatureCache, feature_cache_root
from voc2vec.baselines.sources import feature_baseline_argument, feature_baseline_kind
from voc2vec.collate import AudioClips, AudioCollator
from voc2vec.embeddings import TRUE_FRAMES_RULE
from voc2vec.models import is_config_file, load_encoder, num_hidden_states
from voc2vec.prediction import pads_exactly

logger = logging.getLogger(__name__)

POOLING_NAMES = {"mean": "mean", "mean_std": "mean+std"}  # --probe_pooling -> voc2vec.embeddings


@dataclass
class CorpusFeatures:
    """Features of every clip of a decoded corpus (row order), and where they came from."""

    values: np.ndarray  # (clips, layers, dim) float32, possibly memory-mapped
    layer_names: list[str]
    computed_rows: int  # 0 when everything came from the cache
    seconds: float
    cache_folder: Path


class ClipView:
    """Rows `rows` of an `AudioClips` view as a sequence (what `pooled_hidden_states` indexes)."""

    def __init__(self, clips: AudioClips, rows: np.ndarray):
        self.clips, self.rows = clips, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position: int) -> dict:
        return self.clips[int(self.rows[position])]


class EncoderFeatures:
    """Pooled hidden states of every layer of a transformers audio encoder."""

    def __init__(self, model_args, config, feature_extractor, seed: int, batch_size: int, device):
        self.model_args, self.config, self.feature_extractor = model_args, config, feature_extractor
        self.seed, self.batch_size, self.device = seed, batch_size, device
        self.pooling = POOLING_NAMES[model_args.probe_pooling]
        self.encoder = None  # loaded on the first cache miss only: a warm cache never loads the weights

    def identity(self) -> dict:
        source = self.model_args.model_name_or_path
        return {
            "kind": "encoder",
            "model": source,
            "revision": model_revision(source, self.config),
            "config": digest(self.config.to_json_string(use_diff=False)),
            "feature_extractor": digest(self.feature_extractor.to_json_string()),
            "pooling": self.pooling,
            "pooled_over": TRUE_FRAMES_RULE,
            # A config file means random weights: drawn from the seed.
            "seed": self.seed if is_config_file(source) else None,
        }

    def layer_names(self) -> list[str]:
        return [f"hidden state {index}" for index in range(num_hidden_states(self.config))]

    def compute(self, clips: AudioClips, lengths: np.ndarray, rows: np.ndarray) -> np.ndarray:
        from voc2vec.embeddings import pooled_hidden_states

        if self.encoder is None:
            self.encoder = load_encoder(self.model_args, self.config, self.seed).to(self.device)
        collator = AudioCollator(self.feature_extractor, return_input_lengths=True)
        return pooled_hidden_states(
            self.encoder, ClipView(clips, rows), collator, lengths[rows], self.batch_size,
            pads_exactly(self.encoder.config, self.feature_extractor), list(range(num_hidden_states(self.config))),
            self.pooling,
        )


class OpenSmileFeatures:
    """openSMILE functionals (eGeMAPSv02: 88, ComParE_2016: 6,373 per clip)."""

    def __init__(self, feature_set: str):
        self.feature_set = feature_set
        self.smile = None

    def identity(self) -> dict:
        import opensmile

        return {"kind": "opensmile", "feature_set": self.feature_set, "level": "Functionals", "opensmile": opensmile.__version__}

    def layer_names(self) -> list[str]:
        return [f"openSMILE {self.feature_set} functionals"]

    def compute(self, clips: AudioClips, lengths: np.ndarray, rows: np.ndarray) -> np.ndarray:
        import opensmile

        if self.smile is None:
            self.smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, self.feature_set),
                                         feature_level=opensmile.FeatureLevel.Functionals)
        vectors = [self.smile.process_signal(clips[int(row)]["input_values"], 16000).to_numpy(np.float32)[0] for row in rows]
        return np.stack(vectors)[:, None, :]


def feature_source(model_args, config, feature_extractor, seed: int, batch_size: int, device):
    kind = feature_baseline_kind(model_args.model_name_or_path)
    if kind == "opensmile":
        return OpenSmileFeatures(feature_baseline_argument(model_args.model_name_or_path))
    if kind == "emotion2vec":
        from voc2vec.baselines.emotion2vec import Emotion2vecFeatures

        return Emotion2vecFeatures(feature_baseline_argument(model_args.model_name_or_path), device)
    return EncoderFeatures(model_args, config, feature_extractor, seed, batch_size, device)


def corpus_features(
    model_args, data_args, decoded: datasets.Dataset, feature_extractor, model_config, seed: int, batch_size: int = 16,
    device="cpu", log_prefix: str = "",
) -> CorpusFeatures:
    """The features of every clip of `decoded` (see the module docstring), from the cache or computed into it."""
    started = time.perf_counter()
    sampling_rate = feature_extractor.sampling_rate
    max_samples = int(data_args.max_duration * sampling_rate) if data_args.max_duration else None
    clips = AudioClips(decoded, None, np.arange(len(decoded)), max_samples=max_samples, random_crop=False,
                       pad_to_max=data_args.pad_to_max_duration)
    source = feature_source(model_args, model_config, feature_extractor, seed, batch_size, device)
    cache = FeatureCache(feature_cache_root(data_args.corpus_cache_dir), {
        **source.identity(),
        "corpus": decoded._fingerprint,
        "num_clips": len(decoded),
        "sampling_rate": sampling_rate,
        "max_duration": data_args.max_duration,
        "pad_to_max_duration": data_args.pad_to_max_duration,
    })
    lengths = None if cache.is_complete(len(decoded)) else clips.lengths()
    if lengths is not None:
        logger.info("%sfeatures of %s: computing %d clips into %s", log_prefix, model_args.model_name_or_path,
                    len(decoded), cache.folder)
    values, computed = cache.load_or_compute(len(decoded), lambda rows: source.compute(clips, lengths, rows))
    if not computed:
        logger.info("%sfeatures of %s read from the cache %s", log_prefix, model_args.model_name_or_path, cache.folder)
    return CorpusFeatures(values, source.layer_names(), computed, time.perf_counter() - started, cache.folder)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_revision(source: str, config) -> str | None:
    """What identifies the weights: the Hub commit, or the size and modification time of a local folder's weight
    files (a retrained model in the same folder gets new features); None for a config file (random weights)."""
    if is_config_file(source):
        return None
    folder = Path(source)
    if folder.is_dir():
        files = sorted(path for pattern in ("*.safetensors", "*.bin", "*.pt") for path in folder.glob(pattern))
        return digest("|".join(f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in files))
    return getattr(config, "_commit_hash", None)  # set by transformers for Hub checkpoints
