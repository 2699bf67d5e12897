"""Singing Voice Audio Dataset (Black, Li and Tian, ICASSP 2014; Isophonics): a cappella songs of about 3 minutes.

Download: from the Isophonics / C4DM dataset page of the paper. License: as stated on the download page;
check it.

Quirks handled here:
- The documented part is `monophonic/chinese/<fem_XX|mal_XX>/<pos_N|neg_N>.wav` at 44.1 kHz. Other subfolders
  are unconfirmed, so audio is globbed recursively below the corpus root.
- The corpus is recognized by its singer folders (`fem_<n>`, `mal_<n>`) or its `monophonic/` folder: the root
  is the first folder at or below data_dir holding either. A folder without them (Donate A Cry's class
  folders, another corpus) is refused rather than read with its folders counted as singers.
- Speaker = the nearest singer folder; its prefix gives the gender and the folder above it the language. A
  file of the corpus outside any singer folder takes its parent folder as grouping key.
- Songs are long (126 s on average): the Voc125 mixture cuts them into segments of at most 10 s.
"""

import re
from pathlib import Path

import datasets

from voc2vec.builder import VocalizationBuilder, VocalizationConfig, find_corpus_root, subfolders

SINGER_FOLDER = re.compile(r"^(fem|mal)_\w+$", re.IGNORECASE)
GENDERS = {"fem": "female", "mal": "male"}
MONOPHONIC_FOLDER = "monophonic"


class SingingDatabase(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default")]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "Singing Voice Audio Dataset: monophonic a cappella singing by male and female singers."
    HOMEPAGE = "http://isophonics.net/SingingVoiceDataset"
    LICENSE = "see the dataset's download page"
    EXPECTED_LAYOUT = """
    <data_dir>/                      the unpacked download
      monophonic/chinese/<fem_XX|mal_XX>/<pos_N|neg_N>.wav   44.1 kHz songs, one folder per singer (other subfolders: globbed)
    """

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return (folder / MONOPHONIC_FOLDER).is_dir() or any(SINGER_FOLDER.match(child.name) for child in subfolders(folder))

    def find_root(self, data_dir: Path) -> Path:
        root = find_corpus_root(data_dir, self.holds_corpus)
        if root is None:
            raise self.layout_error(f"no singer folder (fem_<n>, mal_<n>) and no {MONOPHONIC_FOLDER}/ folder at or below '{data_dir}'.")
        return root

    def extra_features(self):
        return {"gender": datasets.Value("string"), "language": datasets.Value("string")}

    def parse(self, path: Path, split: str) -> dict:
        folders = path.relative_to(self.root).parts[:-1]
        for depth in range(len(folders) - 1, -1, -1):
            if SINGER_FOLDER.match(folders[depth]):
                singer = folders[depth]
                prefix = singer.split("_", 1)[0].lower()
                return {"speaker": singer, "gender": GENDERS[prefix], "language": folders[depth - 1] if depth else ""}
        return {"speaker": path.parent.name if folders else "", "gender": "", "language": ""}
