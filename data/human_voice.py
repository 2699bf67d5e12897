"""Human Voice Dataset (vocobox): 179 short sung notes and vowels by one singer, 44.1 kHz.

Download: `git clone https://github.com/vocobox/human-voice-dataset`. License: MIT.

Quirks handled here:
- The clips are the exports of each recorded series: `data/voices/<singer>/<series>/exports/<version>/*.wav`
  (series `notes` and `voyels` today; versions `mono` and `stereo`), 179 wav files in all. The series' whole
  recordings and Audacity projects under `sources/` are not clips: a wav there is reported and skipped.
- The layout is recognized by that `voices/<singer>/<series>/exports/` structure, so another corpus's folder
  (Donate A Cry's class folders, NonVerbal Vocalization's) is refused instead of read as "human voice" clips.
- Names hold `#` for sharp notes (e.g. `A#3-2.wav`): paths are used as they are, never parsed as URLs or
  split on `#`; the name without extension is kept as `item`.
- Speaker = the singer folder (`martin`): one singer recorded everything so far, so folds cannot be
  speaker-independent within this corpus; singers added later get their own key.
- The set holds mono and stereo copies at 44.1 kHz; both are kept (the paper's 179 counts both), and audio
  is mixed to mono and resampled to 16 kHz when decoded.
"""

from pathlib import Path

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, find_audio_files, find_corpus_root

VOICES_FOLDER = "voices"
EXPORTS_FOLDER = "exports"


def holds_singers(voices: Path) -> bool:
    """`voices/` as the repository has it: <singer>/<series>/exports/ folders inside."""
    return any(voices.glob(f"*/*/{EXPORTS_FOLDER}"))


class HumanVoice(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default")]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "Human Voice Dataset: sung notes and vowels by a single singer (vocobox)."
    HOMEPAGE = "https://github.com/vocobox/human-voice-dataset"
    LICENSE = "MIT"
    EXPECTED_LAYOUT = """
    <data_dir>/                      the clone of github.com/vocobox/human-voice-dataset (or its data/voices/ folder)
      data/voices/<singer>/<series>/exports/<mono|stereo>/*.wav   179 files, 44.1 kHz, e.g. martin/notes/exports/mono/A#3-2.wav
    """

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return holds_singers(folder / VOICES_FOLDER)

    def extra_features(self):
        return {"item": datasets.Value("string")}

    def find_root(self, data_dir: Path) -> Path:
        if data_dir.name == VOICES_FOLDER and holds_singers(data_dir):
            return data_dir
        parent = find_corpus_root(data_dir, self.holds_corpus)
        if parent is None:
            raise self.layout_error(f"no {VOICES_FOLDER}/<singer>/<series>/{EXPORTS_FOLDER}/ folder at or below '{data_dir}'.")
        return parent / VOICES_FOLDER

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        return {"train": [path for path in find_audio_files(root) if path.suffix.lower() == ".wav"]}

    def parse(self, path: Path, split: str) -> dict:
        folders = path.relative_to(self.root).parts[:-1]  # singer, series, exports, version
        if len(folders) < 3 or folders[2] != EXPORTS_FOLDER:
            raise SkipFile(f"not an exported clip ({VOICES_FOLDER}/<singer>/<series>/{EXPORTS_FOLDER}/...): whole recordings are not clips")
        return {"speaker": folders[0], "item": path.stem}
