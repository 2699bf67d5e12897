"""Synthetic demo corpus: 6 vocalization classes from 12 synthetic speakers, generated locally from a seed.

No download: `voc2vec.synth.generate_corpus` writes 16 kHz 16-bit wav files (laugh, cry, scream, sigh,
cough, gasp; 360 clips of 0.5-4 s by default, most under 2.5 s) the first time the corpus is loaded. It is the
embedded default for the README's cross-validation job and for tests, sized so a tiny model's 10-fold
speaker-grouped CV fits in minutes on 2 CPU cores. MFCC statistics with logistic regression score well above
chance and well below 100% on it, so a broken pipeline and a working one look different.

Quirks handled here:
- The audio lives in `<datasets cache>/voc2vec_demo_audio/<seed, speakers, clips, synth version>/`, or in
  `data_dir` when one is given. Generation is idempotent (a manifest written last marks a finished corpus),
  and is re-checked before every load, so an Arrow cache never points at wav files that were deleted.
- Label and speaker come from the file name `<speaker>_<class>_<NNN>.wav` (the class folder agrees).
- `seed`, `num_speakers` and `clips_per_speaker_per_class` are config fields:
  `load_corpus("demo", seed=1)` gives a different corpus with its own cache entry.
"""

from dataclasses import dataclass
from pathlib import Path

import datasets

from voc2vec import synth
from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, find_audio_files, split_fields


@dataclass
class DemoConfig(VocalizationConfig):
    """The demo corpus's generation parameters (the defaults give 12 x 6 x 5 = 360 clips)."""

    seed: int = 0
    num_speakers: int = synth.DEFAULT_NUM_SPEAKERS
    clips_per_speaker_per_class: int = 5


class Demo(VocalizationBuilder):
    BUILDER_CONFIG_CLASS = DemoConfig
    # The version keys the Arrow cache: a synthesizer change must not reuse one prepared from the old audio.
    BUILDER_CONFIGS = [
        DemoConfig(name="default", version=datasets.Version(f"1.0.{synth.SYNTH_VERSION}"), class_names=synth.CLASS_NAMES)
    ]
    DEFAULT_CONFIG_NAME = "default"
    REQUIRES_DATA_DIR = False
    DESCRIPTION = "Synthetic non-verbal vocalizations (laugh, cry, scream, sigh, cough, gasp) from a seeded source-filter synthesizer."
    LICENSE = "Apache-2.0"
    EXPECTED_LAYOUT = """
    nothing to download: the clips are generated on first use into
      <data_dir or datasets cache>/.../<class>/<speaker>_<class>_<NNN>.wav   plus manifest.json
    """

    def audio_dir(self) -> Path:
        """Where this configuration's wav files are generated."""
        if self.config.data_dir:
            return Path(self.config.data_dir).expanduser()
        variant = (
            f"seed{self.config.seed}_spk{self.config.num_speakers}"
            f"_clips{self.config.clips_per_speaker_per_class}_v{synth.SYNTH_VERSION}"
        )
        return Path(self._cache_dir_root) / "voc2vec_demo_audio" / variant

    def generate_audio(self) -> Path:
        """Generate the wav files unless a finished corpus with these parameters is already there."""
        folder = self.audio_dir()
        synth.generate_corpus(
            folder,
            seed=self.config.seed,
            num_speakers=self.config.num_speakers,
            clips_per_speaker_per_class=self.config.clips_per_speaker_per_class,
        )
        return folder

    def download_and_prepare(self, *args, **kwargs):
        # Checked on every load, not only on the first prepare, so a cleaned-up audio folder is rebuilt
        # behind an Arrow cache that still lists its paths.
        self.generate_audio()
        return super().download_and_prepare(*args, **kwargs)

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return all((folder / name).is_dir() for name in synth.CLASS_NAMES)

    def find_root(self, data_dir: Path | None) -> Path:
        return self.generate_audio()

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        # Only the class folders: a data_dir given by the user may hold other audio beside the corpus.
        return {"train": [path for name in synth.CLASS_NAMES for path in find_audio_files(root / name)]}

    def parse(self, path: Path, split: str) -> dict:
        fields = split_fields(path.stem, "_")
        if len(fields) != 3 or fields[1] not in synth.CLASS_NAMES:
            raise SkipFile(f"file name is not <speaker>_<class>_<NNN> with a class in {synth.CLASS_NAMES}")
        speaker, class_name, _ = fields
        return {"label": class_name, "speaker": speaker}
