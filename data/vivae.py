"""VIVAE: Variably Intense Vocalizations of Affect and Emotion, 1,085 non-speech vocalizations in 6 classes.

Download: Zenodo record 4066235, `VIVAE.zip` -> `VIVAE/full_set/*.wav` and `VIVAE/core_set/*.wav`.
License: CC BY-NC 4.0 (reported).

Quirks handled here:
- Only `full_set/` is read (1,085 files). `core_set/` holds 480 duplicates of full_set files and is never
  merged; a data_dir holding only `core_set/` is refused.
- File name `<speaker>_<emotion>_<intensity>_<item>` (e.g. `S01_achievement_low_01.wav`), split on '_' and
  stripped. The label is the emotion field (the corpus has no class folders); an emotion outside the six is
  skipped and reported. Speakers are S01-S11; intensity (low, moderate, strong, peak) and item are kept.
- The sample rate is unconfirmed: the base class records each file's own rate and audio is resampled on load.
"""

from pathlib import Path

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, split_fields

CLASS_NAMES = ["achievement", "anger", "fear", "pain", "pleasure", "surprise"]
FULL_SET = "full_set"


class Vivae(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default", class_names=CLASS_NAMES)]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "VIVAE: non-speech vocalizations of three positive and three negative affective states at four intensities."
    HOMEPAGE = "https://zenodo.org/records/4066235"
    LICENSE = "CC BY-NC 4.0"
    EXPECTED_LAYOUT = f"""
    <data_dir>/                      the unpacked VIVAE.zip (or the VIVAE folder, or full_set itself)
      VIVAE/
        {FULL_SET}/*.wav             1,085 files: <speaker>_<emotion>_<intensity>_<item>.wav (the set used)
        core_set/*.wav               480 duplicates of full_set files: ignored
    """

    def extra_features(self):
        return {"intensity": datasets.Value("string"), "item": datasets.Value("string")}

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return (folder / FULL_SET).is_dir() or (folder / "core_set").is_dir()

    def find_root(self, data_dir: Path) -> Path:
        return self.find_named_folder(data_dir, FULL_SET, note=" (core_set/ alone is not used)")

    def parse(self, path: Path, split: str) -> dict:
        fields = split_fields(path.stem, "_")
        if len(fields) != 4:
            raise SkipFile(f"file name has {len(fields)} '_'-separated fields, expected speaker_emotion_intensity_item")
        speaker, emotion, intensity, item = fields
        if emotion.lower() not in CLASS_NAMES:
            raise SkipFile(f"emotion '{emotion}' is not one of {CLASS_NAMES}")
        return {"label": emotion.lower(), "speaker": speaker.upper(), "intensity": intensity.lower(), "item": item}
