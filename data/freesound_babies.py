"""FreeSound babies: baby vocalization recordings gathered from freesound.org (23.42 h, 1,450 clips in voc2vec).

Download: there is no canonical release; gather the clips from https://freesound.org (e.g. with its API,
searching baby cry / laugh / babble tags). License: per file, the Creative Commons license its uploader
chose (CC0, CC BY or CC BY-NC); keep Freesound's attribution with the files.

Quirks handled here:
- The folder layout is unconfirmed, so every audio file below data_dir is read recursively (wav, flac, mp3,
  ogg, aiff; containers libsndfile cannot read are reported as skipped).
- Freesound's download names are `<id>__<user>__<title>.<ext>`: split on the first two '__' (titles may hold
  more), speaker = the uploader (one user's recordings are usually the same baby or session), and the
  numeric sound id and title are kept. Other names are kept with an empty speaker and id.
- Those names are how the corpus is recognized: a folder in which fewer than half of the audio files are
  named so (another corpus, e.g. Donate A Cry's `<UUID>-<epoch>-...` files) is refused.
- Recordings are long (58 s on average): the Voc125 mixture cuts them into segments of at most 10 s.
"""

from pathlib import Path

import datasets

from voc2vec.builder import AUDIO_EXTENSIONS, VocalizationBuilder, VocalizationConfig, find_audio_files

NAME_SEPARATOR = "__"


def freesound_fields(stem: str) -> tuple[str, str, str] | None:
    """(sound id, user, title) of a Freesound download name, None for any other name."""
    fields = [field.strip() for field in stem.split(NAME_SEPARATOR, 2)]
    return tuple(fields) if len(fields) == 3 and fields[0].isdigit() else None


def mostly_freesound_names(stems: list[str]) -> bool:
    """At least half of the names are Freesound download names: how a folder of Freesound downloads is recognized."""
    return sum(freesound_fields(stem) is not None for stem in stems) * 2 >= len(stems)


class FreesoundBabies(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default")]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "Baby vocalizations (cries, laughs, babbling) collected from freesound.org."
    HOMEPAGE = "https://freesound.org"
    LICENSE = "per file: the uploader's Creative Commons license (CC0, CC BY, CC BY-NC)"
    EXPECTED_LAYOUT = """
    <data_dir>/                      your Freesound downloads (any folder structure)
      **/<id>__<user>__<title>.<wav|flac|mp3|ogg|aiff>
    """

    def extra_features(self):
        return {"freesound_id": datasets.Value("string"), "title": datasets.Value("string")}

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        # Read by loaders that cannot recognize their own corpus (nnime): a folder of mostly Freesound names.
        try:
            names = [child.stem for child in folder.iterdir() if child.suffix.lower() in AUDIO_EXTENSIONS and child.is_file()]
        except OSError:
            return False
        return bool(names) and mostly_freesound_names(names)

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        files = find_audio_files(root)
        others = [path for path in files if freesound_fields(path.stem) is None]
        if not mostly_freesound_names([path.stem for path in files]):
            raise self.layout_error(
                f"{len(others)} of the {len(files)} audio files at or below '{root}' are not named like Freesound downloads "
                f"(<id>__<user>__<title>.<ext>), e.g. '{others[0].relative_to(root)}': this is not a folder of Freesound downloads."
            )
        return {"train": files}

    def parse(self, path: Path, split: str) -> dict:
        fields = freesound_fields(path.stem)
        if fields is not None:
            sound_id, user, title = fields
            return {"speaker": user, "freesound_id": sound_id, "title": title}
        return {"speaker": "", "freesound_id": "", "title": path.stem}
