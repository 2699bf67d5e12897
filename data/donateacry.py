"""Donate A Cry: 457 infant cries in 5 classes, 8 kHz mono, from the Donate-a-Cry mobile app.

Download: `git clone https://github.com/gveres/donateacry-corpus` (ODbL 1.0 / DbCL 1.0). The 5-class set is
`donateacry_corpus_cleaned_and_updated_data/` with one folder per class.

Quirks handled here:
- The label comes from the folder, not the filename's reason code: `discomfort/` holds 7 files coded `ch`
  (cold/hot), which the cleaned release merged into discomfort. The reason code is kept as a column.
- The file name is `<app-install UUID>-<epoch>-<app version>-<m|f>-<age code>-<reason code>`; the UUID has
  hyphens of its own, so the name is split from the right. The UUID identifies an app installation, the
  nearest thing to a speaker the corpus has (221 distinct in the 457 clips); case is normalized.
"""

from pathlib import Path

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, find_audio_files, find_corpus_root, split_fields

CLASS_NAMES = ["belly_pain", "burping", "discomfort", "hungry", "tired"]
CLEANED_FOLDER = "donateacry_corpus_cleaned_and_updated_data"
GENDERS = {"m": "male", "f": "female"}


class DonateACry(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default", class_names=CLASS_NAMES)]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "Donate A Cry corpus, cleaned and updated 5-class version (infant cry reasons)."
    HOMEPAGE = "https://github.com/gveres/donateacry-corpus"
    LICENSE = "ODbL 1.0 / DbCL 1.0"
    EXPECTED_LAYOUT = f"""
    <data_dir>/                      the clone of github.com/gveres/donateacry-corpus (or the folder itself)
      {CLEANED_FOLDER}/
        belly_pain/*.wav  burping/*.wav  discomfort/*.wav  hungry/*.wav  tired/*.wav
    """

    def extra_features(self):
        return {
            "gender": datasets.Value("string"),
            "age_code": datasets.Value("string"),
            "reason_code": datasets.Value("string"),
        }

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return all((folder / name).is_dir() for name in CLASS_NAMES)

    def find_root(self, data_dir: Path) -> Path:
        # The clone, the cleaned folder itself, or either inside a wrapper folder (Kaggle mirrors add one).
        root = find_corpus_root(data_dir, self.holds_corpus)
        if root is None:
            raise self.layout_error(f"no folder at or below '{data_dir}' holds {CLEANED_FOLDER}/ or the class folders {CLASS_NAMES}.")
        return root

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        # Only the five class folders: the repository also has the raw, uncleaned recordings elsewhere.
        return {"train": [path for name in CLASS_NAMES for path in find_audio_files(root / name)]}

    def parse(self, path: Path, split: str) -> dict:
        fields = split_fields(path.stem, "-")
        if len(fields) < 10:
            raise SkipFile(f"file name has {len(fields)} '-'-separated fields, expected UUID(5)-epoch-version-gender-age-reason")
        *uuid, _epoch, _version, gender, age_code, reason_code = fields[:5] + fields[-5:]
        return {
            "label": path.parent.name,
            "speaker": "-".join(uuid).upper(),
            "gender": GENDERS.get(gender.lower(), gender),
            "age_code": age_code,
            "reason_code": reason_code,
        }
