"""NonSpeech7k: 7 classes of human non-speech sounds (breath, cough, crying, laugh, screaming, sneeze, yawn).

Download: Zenodo record 6967442 (Rashid et al., IET Signal Processing 2023): `train.zip`, `test.zip`,
`metadata of train set .csv`, `metadata of test set.csv`. License: as stated on the Zenodo record; check it.

Quirks handled here:
- `train.zip` and `test.zip` unpack to flat `train/` and `test/` folders: they become the `train` and
  `test` splits (the mixture uses both).
- The two metadata CSVs are named differently (`metadata of train set .csv` has a space before the dot) and
  spell their headers differently (`File ID` / `File_ID`, `Class ID` / `Class_id`, `Augmentation  type` /
  `Augmentation type`, ...): CSVs are found by their `metadata of` prefix and the split word in the name,
  and column names are compared with case, spaces and underscores removed.
- The label is the CSV's class name (the flat folders carry none); the train CSV's misspelling `yawm` is read
  as `yawn`. A file the CSV does not list, or lists with another class, is skipped and reported.
- The release itself holds augmented copies of source clips (the CSVs' augmentation type: `Original`,
  misspelled `Orignal` in the train CSV, or a method such as `Pitch shift`). They are part of the published
  7k set and the paper's 6,983 clips count them, so every listed file is kept; the type is the
  `augmentation` column for users who want originals only.
- There are no speaker ids; clips cut from one source recording, and their augmented copies, share the file
  name's leading numeric source id, which is the grouping key (so one recording never spans folds).
"""

import re
from pathlib import Path

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, find_audio_files, find_corpus_root, read_csv_table

CLASS_NAMES = ["breath", "cough", "crying", "laugh", "screaming", "sneeze", "yawn"]
CLASS_SPELLINGS = {"yawm": "yawn"}
SPLITS = ("train", "test")
LEADING_NUMBER = re.compile(r"\d+")


def column_key(name: str) -> str:
    """'File ID', 'File_ID' and 'file id ' all become 'fileid'."""
    return "".join(character for character in name.lower() if character.isalnum())


def metadata_csvs(root: Path) -> dict[str, Path]:
    """The metadata CSV of each split, found by prefix and split word whatever the spacing of the name."""
    found = {}
    for path in sorted(root.glob("*.csv")):
        key = column_key(path.stem)
        if key.startswith("metadataof"):
            found.update({split: path for split in SPLITS if split in key})
    return found


class NonSpeech7k(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default", class_names=CLASS_NAMES)]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "NonSpeech7k: breath, cough, crying, laugh, screaming, sneeze and yawn clips from web recordings."
    HOMEPAGE = "https://zenodo.org/records/6967442"
    LICENSE = "see Zenodo record 6967442"
    EXPECTED_LAYOUT = """
    <data_dir>/                      the Zenodo files, zips unpacked in place
      train/*.wav  test/*.wav        32 kHz mono, names start with the numeric source id
      metadata of train set .csv     (space before the dot)
      metadata of test set.csv
    """

    def extra_features(self):
        return {"augmentation": datasets.Value("string")}

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return any((folder / split).is_dir() for split in SPLITS) and bool(metadata_csvs(folder))

    def find_root(self, data_dir: Path) -> Path:
        root = find_corpus_root(data_dir, self.holds_corpus)
        if root is None:
            raise self.layout_error(f"no folder at or below '{data_dir}' holds train/ or test/ next to the 'metadata of ... set.csv' files.")
        return root

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        self.rows = {}  # (split, file name) -> CSV row with normalized column names, read by parse
        for split, csv_path in metadata_csvs(root).items():
            for row in read_csv_table(csv_path)[1]:
                row = {column_key(name): value for name, value in row.items()}
                self.rows[(split, row.get("filename", ""))] = row
        files = {split: find_audio_files(root / split) if (root / split).is_dir() else [] for split in SPLITS}
        return {split: paths for split, paths in files.items() if paths}

    def parse(self, path: Path, split: str) -> dict:
        row = self.rows.get((split, path.name))
        if row is None:
            raise SkipFile(f"not listed in the {split} metadata CSV")
        label = row.get("classname", "").lower()
        label = CLASS_SPELLINGS.get(label, label)
        if label not in CLASS_NAMES:
            raise SkipFile(f"class '{label}' is not one of {CLASS_NAMES}")
        source_id = LEADING_NUMBER.match(path.stem)
        augmentation = row.get("augmentationtype", "")
        if augmentation.lower().startswith("orig"):  # 'Original', or the train CSV's 'Orignal'
            augmentation = "original"
        return {"label": label, "speaker": source_id.group() if source_id else row.get("fileid", ""), "augmentation": augmentation}
