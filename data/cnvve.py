"""CNVVE: Dataset of Non-Verbal Voice Expressions, 6 classes of short vocal gestures (voc2vec uses 921 clips).

Download: University of Stuttgart DaRUS, cleaned set `doi:10.18419/darus-3898` (16 kHz), raw set
`doi:10.18419/darus-3897` (950 clips from 42 participants). License: as stated on DaRUS for each record
(CC BY 4.0 at the time of writing); check the record you download.

Quirks handled here:
- The label comes from the class folder, as in the authors' code; the six folders are matched
  case-insensitively and may sit one or more wrapper folders deep (the root is searched for).
- Two layouts: cleaned `<class>/<file>.wav` and raw `<class>/<participant>/<file>.wav`. The raw layout and
  where the participant id lives are unconfirmed, so files are globbed recursively below each class folder
  and the speaker is the first folder between class and file when there is one. Files directly in their
  class folder have no participant id: their speaker is "" and a warning says that folds over them
  cannot be speaker-independent.
"""

import logging
from pathlib import Path

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, find_audio_files, find_corpus_root

logger = logging.getLogger(__name__)

CLASS_NAMES = ["confirm", "decline", "continuous", "hush", "psst", "ahem"]  # the authors' id order


def class_folders(folder: Path) -> dict[str, Path]:
    """The class folders directly inside `folder`, keyed by lower-cased class name."""
    return {child.name.lower(): child for child in folder.iterdir() if child.is_dir() and child.name.lower() in CLASS_NAMES}


class Cnvve(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default", class_names=CLASS_NAMES)]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "CNVVE: non-verbal voice expressions for voice-based interaction (confirm, decline, continuous, hush, psst, ahem)."
    HOMEPAGE = "https://doi.org/10.18419/darus-3898"
    LICENSE = "see the DaRUS record (CC BY 4.0 at the time of writing)"
    EXPECTED_LAYOUT = """
    <data_dir>/                      the unpacked DaRUS download (wrapper folders are fine)
      confirm/ decline/ continuous/ hush/ psst/ ahem/
        *.wav                        cleaned set: no participant id (speaker "")
        <participant>/*.wav          raw set: speaker = the participant folder
    """

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return len(class_folders(folder)) == len(CLASS_NAMES)

    def find_root(self, data_dir: Path) -> Path:
        root = find_corpus_root(data_dir, self.holds_corpus)
        if root is None:
            raise self.layout_error(f"no folder at or below '{data_dir}' holds all six class folders {CLASS_NAMES}.")
        return root

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        folders = class_folders(root)
        files = [path for name in CLASS_NAMES for path in find_audio_files(folders[name])]
        flat = sum(len(path.relative_to(root).parts) == 2 for path in files)
        if flat:
            logger.warning(
                "CNVVE: %d of %d files sit directly in their class folder (cleaned layout), so they have no "
                "participant id: their speaker is empty and folds over them cannot be speaker-independent.",
                flat, len(files),
            )
        return {"train": files}

    def parse(self, path: Path, split: str) -> dict:
        class_folder, *between = path.relative_to(self.root).parts[:-1]
        if class_folder.lower() not in CLASS_NAMES:
            raise SkipFile(f"folder '{class_folder}' is not one of the classes {CLASS_NAMES}")
        return {"label": class_folder.lower(), "speaker": between[0] if between else ""}
