"""VocalSketch: vocal imitations of everyday sounds, instruments and synthesizers by crowd workers.

Download: `git clone https://github.com/interactiveaudiolab/VocalSketchDataSet` (also Zenodo record 1251982).
License: as stated in the repository / Zenodo record; check it.

Quirks handled here:
- Only the imitations are read: `vocal_imitations/included/` and `vocal_imitations/excluded/` (the authors'
  inclusion criteria; both are human vocalizations, so both are kept and the folder is the `included`
  column). `sound_recordings/` holds the non-vocal reference sounds and is never read.
- Names are `<label> - <id>.wav` with spaces (and possibly hyphens inside the label): the label is the text
  before the last ' - ', and `vocal_imitations.csv`'s `sound_label` when the name does not have that shape.
- The speaker is `participant_id` from `vocal_imitations.csv`, matched by `filename`; an imitation the CSV
  does not list is skipped and reported. The label is kept as a string (hundreds of sound concepts).
"""

from pathlib import Path

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, find_audio_files, find_corpus_root, read_csv_table

IMITATIONS = "vocal_imitations"
METADATA_CSV = "vocal_imitations.csv"
SUBSETS = ("included", "excluded")
LABEL_SEPARATOR = " - "


class VocalSketch(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default")]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "VocalSketch: vocal imitations of sound concepts (imitations only, never the reference recordings)."
    HOMEPAGE = "https://github.com/interactiveaudiolab/VocalSketchDataSet"
    LICENSE = "see the repository / Zenodo record 1251982"
    EXPECTED_LAYOUT = f"""
    <data_dir>/                      the clone of VocalSketchDataSet (or the unpacked Zenodo archive)
      {METADATA_CSV}            filename -> participant_id, sound_label, ...
      {IMITATIONS}/included/<label> - <id>.wav
      {IMITATIONS}/excluded/<label> - <id>.wav
      sound_recordings/              reference sounds: never read
    """

    def extra_features(self):
        return {"included": datasets.Value("bool")}

    def label_feature(self):
        return datasets.Value("string")

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return (folder / IMITATIONS).is_dir() and (folder / METADATA_CSV).is_file()

    def find_root(self, data_dir: Path) -> Path:
        root = find_corpus_root(data_dir, self.holds_corpus)
        if root is None:
            raise self.layout_error(f"no folder at or below '{data_dir}' holds both {IMITATIONS}/ and {METADATA_CSV}.")
        return root

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        self.rows = {row.get("filename", ""): row for row in read_csv_table(root / METADATA_CSV)[1]}
        return {"train": [path for subset in SUBSETS if (root / IMITATIONS / subset).is_dir() for path in find_audio_files(root / IMITATIONS / subset)]}

    def parse(self, path: Path, split: str) -> dict:
        row = self.rows.get(path.name)
        if row is None:
            raise SkipFile(f"not listed in {METADATA_CSV}")
        label = path.stem.rsplit(LABEL_SEPARATOR, 1)[0].strip() if LABEL_SEPARATOR in path.stem else row.get("sound_label", "")
        return {"label": label, "speaker": row.get("participant_id", ""), "included": path.parent.name == "included"}
