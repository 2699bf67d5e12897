"""TUT Rare Sound Events 2017 (DCASE 2017 task 2), baby-cry mixtures: about 30 s each, 44.1 kHz.

Download: Zenodo record 401395, `TUT-rare-sound-events-2017-development.*.zip` (the development set).
License: the TUT development dataset license on the Zenodo record (free for academic research; check it).

Quirks handled here:
- Only the synthetic mixtures are read: `data/mixture_data/{devtrain,devtest}/<hash>/audio/*.wav`, where each
  `<hash>` folder is one set of mixing parameters. The isolated events in `source_data/` are not.
- The class is a '_'-separated field of the file name (`mixture_devtrain_babycry_000_<hash>.wav`); only
  `babycry` mixtures are kept (glass breaks and gunshots are other classes), so the filter is by field,
  not by substring.
- `devtrain` and `devtest` become the `train` and `test` splits; the mixture uses both.
- Mixtures carry no speaker id (the cries are Freesound clips laid over acoustic-scene backgrounds), so the
  grouping key is empty; the parameter folder is kept as `mixture_set`. The label is the class name.
"""

from pathlib import Path

import datasets

from voc2vec.builder import VocalizationBuilder, VocalizationConfig, find_audio_files, split_fields

MIXTURE_FOLDER = "mixture_data"
SPLIT_FOLDERS = {"train": "devtrain", "test": "devtest"}
CLASS_NAME = "babycry"


class TutBabies(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default")]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "TUT Rare Sound Events 2017 development mixtures containing a baby cry."
    HOMEPAGE = "https://zenodo.org/records/401395"
    LICENSE = "TUT Rare Sound Events 2017 development dataset license (see Zenodo record 401395)"
    EXPECTED_LAYOUT = f"""
    <data_dir>/                      the unpacked development set (TUT-rare-sound-events-2017-development/)
      data/{MIXTURE_FOLDER}/devtrain/<hash>/audio/mixture_devtrain_babycry_<n>_<hash>.wav
      data/{MIXTURE_FOLDER}/devtest/<hash>/audio/mixture_devtest_babycry_<n>_<hash>.wav
    """

    def extra_features(self):
        return {"mixture_set": datasets.Value("string")}

    def label_feature(self):
        return datasets.Value("string")

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return (folder / MIXTURE_FOLDER).is_dir()

    def find_root(self, data_dir: Path) -> Path:
        return self.find_named_folder(data_dir, MIXTURE_FOLDER)

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        files = {}
        for split, folder in SPLIT_FOLDERS.items():
            candidates = find_audio_files(root / folder) if (root / folder).is_dir() else []
            files[split] = [
                path for path in candidates if path.parent.name == "audio" and CLASS_NAME in split_fields(path.stem.lower(), "_")
            ]
        return {split: paths for split, paths in files.items() if paths}

    def parse(self, path: Path, split: str) -> dict:
        return {"label": CLASS_NAME, "speaker": "", "mixture_set": path.parent.parent.name}
