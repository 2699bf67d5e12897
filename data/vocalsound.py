"""VocalSound: 21,024 recordings of six non-speech vocal sounds from 3,365 speakers (Gong et al., ICASSP 2022).

Download: the 16 kHz release `vs_release_16k.zip` linked from https://github.com/YuanGongND/vocalsound.
License: CC BY-SA 4.0.

Quirks handled here:
- The zip has no wrapper folder: `audio_16k/`, `datafiles/` and `meta/` unpack straight into data_dir, so the
  loader looks for the `audio_16k/` folder (at data_dir or a few levels below) rather than a corpus folder.
- File name `<speaker>_<n>_<class>` (e.g. `f0003_0_cough.wav`), split on '_' and stripped. The speaker is the
  first token; its leading letter is the speaker's gender (f/m). The class is the last token, and
  `throatclearing` is written as one token, so a name has exactly three fields; other names are skipped.
- The paper's Table I counts 20,985 clips where the release has 21,024 files: the files the paper left out
  are not documented, so every readable file is kept and the difference is left visible in the counts.
"""

from pathlib import Path

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, split_fields

CLASS_NAMES = ["laughter", "sigh", "cough", "throatclearing", "sneeze", "sniff"]
AUDIO_FOLDER = "audio_16k"
GENDERS = {"f": "female", "m": "male"}


class VocalSound(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default", class_names=CLASS_NAMES)]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "VocalSound: laughter, sighs, coughs, throat clearing, sneezes and sniffs from 3,365 crowd-sourced speakers."
    HOMEPAGE = "https://github.com/YuanGongND/vocalsound"
    LICENSE = "CC BY-SA 4.0"
    EXPECTED_LAYOUT = f"""
    <data_dir>/                      the unpacked 16 kHz zip (it has no wrapper folder of its own)
      {AUDIO_FOLDER}/<speaker>_<n>_<class>.wav   21,024 files, e.g. f0003_0_cough.wav
      datafiles/{{all,tr,val,te}}.json  meta/       not read
    """

    def extra_features(self):
        return {"gender": datasets.Value("string")}

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return (folder / AUDIO_FOLDER).is_dir()

    def find_root(self, data_dir: Path) -> Path:
        return self.find_named_folder(data_dir, AUDIO_FOLDER)

    def parse(self, path: Path, split: str) -> dict:
        fields = split_fields(path.stem, "_")
        if len(fields) != 3:
            raise SkipFile(f"file name has {len(fields)} '_'-separated fields, expected speaker_n_class")
        speaker, _index, label = fields
        if label.lower() not in CLASS_NAMES:
            raise SkipFile(f"class '{label}' is not one of {CLASS_NAMES}")
        return {"label": label.lower(), "speaker": speaker.lower(), "gender": GENDERS.get(speaker[:1].lower(), "")}
