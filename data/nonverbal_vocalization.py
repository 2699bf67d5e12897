"""NonVerbal Vocalization (Deeply Inc.): 16 classes of non-verbal sounds, 16 kHz mono.

Download: OpenSLR 99, `NonverbalVocalization.tgz` (unpacks to `NonverbalVocalization/<class>/*.wav`), or the
GitHub copy `git clone https://github.com/deeplyinc/Nonverbal-Vocalization-Dataset` (`dataset/<class>/*.wav`
plus `dataset/Nonverbal_Vocalization_metadata.json`). License: CC BY-NC-ND 4.0.

Quirks handled here:
- Both layouts are accepted: the root is the first folder at or below data_dir holding any of the 16
  hyphenated class folders (`NonverbalVocalization/`, `dataset/`, or data_dir itself).
- The label comes from the class folder. The metadata JSON is not used for labels, and the class field of
  the file name is kept only as `class_field`; a file in a folder that is not a class is skipped and reported.
- File name `{speaker}_{class}_{trial}_{sex}_{age}_{location}_{quality}_{noise}`, split on '_' and stripped;
  the speaker is the leading 4-character code. Fields a name lacks are left empty. The coding of sex,
  location, quality and noise is not documented by the owners: the raw values are kept.
- The GitHub copy holds 727 clips and the paper counts 800 (the OpenSLR release): no count is assumed.
"""

import logging
from pathlib import Path

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, find_corpus_root, split_fields

logger = logging.getLogger(__name__)

CLASS_NAMES = [
    "teeth-chattering", "teeth-grinding", "tongue-clicking", "nose-blowing", "coughing", "yawning",
    "throat-clearing", "sighing", "lip-popping", "lip-smacking", "panting", "crying", "laughing", "sneezing",
    "moaning", "screaming",
]  # index = the class field of the file names
NAME_FIELDS = ["speaker", "class_field", "trial", "sex", "age", "location", "quality", "noise"]
METADATA_JSON = "Nonverbal_Vocalization_metadata.json"  # beside the class folders in the GitHub copy


class NonverbalVocalization(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default", class_names=CLASS_NAMES)]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "Nonverbal Vocalization dataset by Deeply Inc.: 16 classes of human non-verbal sounds."
    HOMEPAGE = "https://www.openslr.org/99/"
    LICENSE = "CC BY-NC-ND 4.0"
    EXPECTED_LAYOUT = """
    <data_dir>/                      OpenSLR 99 or the GitHub clone
      NonverbalVocalization/<class>/*.wav          (OpenSLR: NonverbalVocalization.tgz)
      or dataset/<class>/*.wav                     (GitHub: deeplyinc/Nonverbal-Vocalization-Dataset)
    <class> is one of: """ + " ".join(CLASS_NAMES) + """
    File names: {speaker}_{class}_{trial}_{sex}_{age}_{location}_{quality}_{noise}.wav, e.g. 2AV8_4_1_0_44_0_0_0.wav
    """

    def extra_features(self):
        return {name: datasets.Value("string") for name in NAME_FIELDS[1:]}

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        # Stricter than find_root (any one class folder): 'crying' or 'laughing' alone is found in other corpora,
        # the hyphenated names ('teeth-chattering', 'lip-popping', ...) and the GitHub copy's metadata file are not.
        if (folder / METADATA_JSON).is_file():
            return True
        present = [name for name in CLASS_NAMES if (folder / name).is_dir()]
        return any("-" in name for name in present) or len(present) >= len(CLASS_NAMES) // 2

    def find_root(self, data_dir: Path) -> Path:
        root = find_corpus_root(data_dir, lambda folder: any((folder / name).is_dir() for name in CLASS_NAMES))
        if root is None:
            raise self.layout_error(f"no folder at or below '{data_dir}' holds any of the 16 class folders.")
        missing = [name for name in CLASS_NAMES if not (root / name).is_dir()]
        if missing:
            logger.warning("NonVerbal Vocalization: no class folder for %s under '%s'.", ", ".join(missing), root)
        return root

    def parse(self, path: Path, split: str) -> dict:
        class_folder = path.relative_to(self.root).parts[0]
        if class_folder not in CLASS_NAMES:
            raise SkipFile(f"'{class_folder}' is not one of the 16 class folders")
        fields = split_fields(path.stem, "_")
        values = dict(zip(NAME_FIELDS, fields + [""] * (len(NAME_FIELDS) - len(fields))))
        return {"label": class_folder, **values}
