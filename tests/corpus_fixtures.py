"""Tiny audio files and fixture corpora: real names, real layouts, real sampling rates, a fraction of a second each.

`FIXTURE_CORPORA` holds one writer per corpus, each building that corpus's tree as its owners distribute it
(CORPORA.md) with the awkward cases the loader tests check. The same trees serve twice: each loader must read
its own tree, and the loaders that glob a folder (nnime, freesound_babies, human_voice, singing_database)
must refuse every other corpus's tree.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile


def write_wav(path: str | Path, seconds: float = 0.1, sampling_rate: int = 16000, channels: int = 1, seed: int = 0) -> Path:
    """A short 16-bit file of quiet noise (wav, or flac/... by the extension; stereo when `channels` is 2),
    creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(seed).uniform(-0.1, 0.1, size=(int(seconds * sampling_rate), channels)).astype(np.float32)
    soundfile.write(path, samples if channels > 1 else samples[:, 0], sampling_rate, subtype="PCM_16")
    return path


def write_wavs(root: str | Path, names: list[str], **kwargs) -> list[Path]:
    """`write_wav` for each relative name below `root`."""
    return [write_wav(Path(root) / name, **kwargs) for name in names]


def write_empty(path: str | Path) -> Path:
    """A zero-byte file with an audio extension (an interrupted download)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_corrupt(path: str | Path) -> Path:
    """A file with an audio extension whose bytes are not audio (a truncated or mislabeled download)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(64)))
    return path


def write_csv(path: str | Path, header: list[str], rows: list[list]) -> Path:
    """A small CSV file (values written with str(); no quoting needed for the fixtures)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(value) for value in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- permissions ------------------------------------------------------------------------------------------


class _CapabilityHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapabilitySet(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAPABILITY_VERSION_3 = 0x20080522
_PERMISSION_OVERRIDES = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


@contextlib.contextmanager
def permissions_enforced():
    """File permissions apply inside the block, even when the tests run as root (CI containers often do).

    root reads and writes through chmod 000 and 555 because of two capabilities; they are dropped from the
    thread's effective set here and restored after, so a read-only folder or an unreadable file behaves for the
    code under test as it does for a normal user. Skips the test where the capabilities cannot be changed.
    """
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header, sets = _CapabilityHeader(_CAPABILITY_VERSION_3, 0), (_CapabilitySet * 2)()
    if libc.capget(ctypes.byref(header), sets) != 0:
        pytest.skip("running as root and cannot read this process's capabilities: file permissions cannot be tested")
    saved = sets[0].effective
    sets[0].effective &= ~_PERMISSION_OVERRIDES
    if libc.capset(ctypes.byref(header), sets) != 0:
        pytest.skip("running as root and cannot drop CAP_DAC_OVERRIDE: file permissions cannot be tested")
    try:
        yield
    finally:
        sets[0].effective = saved
        libc.capset(ctypes.byref(header), sets)


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---- fine-tuning corpora ----------------------------------------------------------------------------------


def write_asvp_esd(root: Path) -> Path:
    """ASVP-ESD-Update/{Audio,Bonus}/actor_<N>/ inside a download folder (returned as data_dir)."""
    corpus = root / "download" / "ASVP-ESD-Update"
    write_wavs(corpus / "Audio", [
        "actor_36/03-01-09-01-06-36-02-02-01-39.wav",           # 10 fields
        "actor_101/03-01-05-01-32-101-02-01.wav",                # 8 fields, 3-digit actor
        "actor_19/03-02-04-01-11-19-02-03-01-14-02-77.wav",      # 12 fields, trailing 77 = noisy
        "actor_/03-02-03-01-05-07-02-01-01-13.wav",              # folder named just 'actor_'
        "actor_12/03-02-13-02-05-14-03-01-01-24.wav",            # folder disagrees with field 5
        "actor_12/03-02-17-01-05-12-02-01-01-14.wav",            # code 17: not one of the 13 classes
    ])
    write_wav(corpus / "Audio" / "actor_20" / "03-02-06-01-05-20-02-01-01-16-66.wav", channels=2)  # stereo, 66 = mixed
    write_wavs(corpus / "Bonus", [
        "actor_150/03-02-04-01-52-150-04-01-00-14 -03.wav",      # space before the last field
        "actor_50/03-02-17-01-05-50-04-01-00-14.wav",
        "actor_200/03-02-06-01-05-200-04-01-00-16.wav",
        "actor_200/03-02-05-01-05-200-04-01-00-16.wav",          # 05 is not a babies code
    ], seconds=0.3)
    return root / "download"


CNVVE_CLASSES = ["confirm", "decline", "continuous", "hush", "psst", "ahem"]


def write_cnvve(root: Path) -> Path:
    """The cleaned release: <class>/<file>.wav, two clips per class, inside a wrapper folder."""
    write_wavs(root / "cnvve_cleaned", [f"{name}/{name}_{index}.wav" for name in CNVVE_CLASSES for index in range(2)])
    return root


DONATEACRY_UUID = "0D1AD73E-4C5E-45F3-85C4-9A3CB71E8856"


def write_donateacry(root: Path) -> Path:
    """The clone with its cleaned 5-class folder, one wrapper folder above it; burping/ and tired/ empty."""
    cleaned = root / "donateacry-corpus" / "donateacry_corpus_cleaned_and_updated_data"
    write_wavs(cleaned, [
        f"discomfort/{DONATEACRY_UUID}-1430742197-1.0-m-04-ch.wav",
        f"discomfort/{DONATEACRY_UUID.lower()}-1430742198-1.0-m-04-dc.wav",
        "hungry/643D64AD-B711-469A-AF69-55C0D5D3E30F-1430138495-1.0-f-72-hu.wav",
        "belly_pain/549a46d8-9c84-430e-ade8-97eae2bef787-1430130772-1.0-m-48-bp.wav",
    ], sampling_rate=8000)
    (cleaned / "burping").mkdir()
    (cleaned / "tired").mkdir()
    return root


def write_nonverbal_vocalization(root: Path, layout: str = "NonverbalVocalization") -> Path:
    """OpenSLR's `NonverbalVocalization/<class>/` (or the GitHub copy's `.../dataset/<class>/`), with a stray folder."""
    corpus = root / layout
    write_wavs(corpus, ["coughing/2AV8_4_1_0_44_0_0_0.wav", "coughing/2AV8_4_2_0_44_0_0_0.wav", "laughing/K3P1_12_1_1_23_1_2_0.wav"])
    write_wav(corpus / "teeth-chattering" / "ZZ01_0_1_1_30_0_1_1.wav", channels=2)
    write_wav(corpus / "misc" / "ZZ01_3_1_1_30_0_1_1.wav")  # not a class folder: reported
    # The GitHub copy's metadata JSON is ignored for labels (it says 'sneezing' here; the folder wins).
    (corpus / "Nonverbal_Vocalization_metadata.json").write_text('{"2AV8_4_1_0_44_0_0_0.wav": {"label": "sneezing"}}')
    return root


VIVAE_FULL_SET = ["S01_achievement_low_01.wav", "S01_anger_peak_02.wav", "S11_surprise_moderate_03.wav", "S05_pain_strong_01.wav"]


def write_vivae(root: Path) -> Path:
    write_wavs(root / "VIVAE" / "full_set", VIVAE_FULL_SET, sampling_rate=44100)
    write_wavs(root / "VIVAE" / "core_set", VIVAE_FULL_SET[:2], sampling_rate=44100)  # duplicates: never merged
    return root


HUME_EMOTIONS = ["Awe", "Excitement", "Amusement", "Awkwardness", "Fear", "Horror", "Distress", "Triumph", "Sadness", "Surprise"]
HUME_CULTURE = [f"{country}_{emotion}" for country in ["China", "United States", "South Africa", "Venezuela"] for emotion in HUME_EMOTIONS]
HUME_IDS = {"10119": "Train", "10120": "Train", "10121": "Val", "10122": "Test"}


def write_hume_vb(root: Path, subject_ids: bool = True) -> Path:
    """A-VB's audio/wav/<id>.wav and labels/*.csv (culture columns in another order than the official one)."""
    write_wavs(root / "audio" / "wav", [f"{file_id}.wav" for file_id in HUME_IDS])
    labelled = [file_id for file_id, split in HUME_IDS.items() if split != "Test"]
    info_header = ["File_ID", "Split", "Country"] + ["Subject_ID"] * subject_ids
    write_csv(root / "labels" / "data_info.csv", info_header,
              [[f"[{file_id}]", split, "China", f"sub{int(file_id) % 2}"][: len(info_header)] for file_id, split in HUME_IDS.items()])
    write_csv(root / "labels" / "high_info.csv", ["File_ID", "Split"] + HUME_EMOTIONS,
              [[f"[{file_id}]", HUME_IDS[file_id]] + [index / 10 for index in range(10)] for file_id in labelled])
    write_csv(root / "labels" / "two_info.csv", ["File_ID", "Valence", "Arousal"],
              [[f"[{file_id}]", 0.25, 0.75] for file_id in labelled])
    shuffled = HUME_CULTURE[::-1]  # column order differs between copies: selected by name
    write_csv(root / "labels" / "culture_info.csv", ["File_ID"] + shuffled,
              [[f"[{file_id}]"] + [HUME_CULTURE.index(column) / 100 for column in shuffled] for file_id in labelled])
    write_csv(root / "labels" / "type_info.csv", ["File_ID", "Voc_Type"],
              [[f"[{file_id}]", voc_type] for file_id, voc_type in zip(labelled, ["Laugh", "Cry", "gasp"])] + [["[10122]", ""]])
    return root


def write_folder_corpus(root: Path) -> Path:
    """A user's own corpus for the `folder` loader: class folders, odd names, a stray file, an empty folder."""
    corpus = root / "my corpus"
    write_wavs(corpus, ["laugh/spk 1#take-1.wav", "laugh/spk2#take-1.wav", "sigh/session 2/spk 1#take #3.wav", "cry/spk3#a.flac"],
               sampling_rate=22050)
    write_wav(corpus / "stray.wav")  # in no class folder: reported
    (corpus / "notes").mkdir()       # no audio: not a class
    return corpus


# ---- Voc125 pretraining corpora -----------------------------------------------------------------------------


def write_vocalsound(root: Path) -> Path:
    """The 16 kHz zip, which has no wrapper folder: audio_16k/<spk>_<n>_<class>.wav, datafiles/."""
    for name in ["f0003_0_cough.wav", "m0120_1_throatclearing.wav", "f0003_2_laughter.wav", "f0003_cough.wav", "m0001_0_hiccup.wav"]:
        write_wav(root / "audio_16k" / name, seconds=0.3)
    write_text(root / "datafiles" / "all.json", "{}")
    return root


def write_human_voice(root: Path) -> Path:
    """The clone: data/voices/<singer>/<series>/exports/<mono|stereo>/, names with '#', the series' sources."""
    voices = root / "data" / "voices" / "martin"
    write_wav(voices / "notes" / "exports" / "stereo" / "A#3-2.wav", seconds=0.3, sampling_rate=44100, channels=2)
    write_wav(voices / "notes" / "exports" / "mono" / "A#3-2.wav", seconds=0.3, sampling_rate=44100)
    write_wav(voices / "voyels" / "exports" / "mono" / "_-a-c3.wav", seconds=0.3, sampling_rate=44100)
    write_wav(voices / "notes" / "sources" / "notes.wav", seconds=0.5, sampling_rate=44100)  # the whole recording
    write_text(voices / "notes" / "sources" / "singer.properties", "gender : male\n")
    write_text(root / "README.md", "# human voice dataset")
    return root


def write_nonspeech7k(root: Path) -> Path:
    """train/, test/ and the two metadata CSVs with their differing spellings, one file listed in neither."""
    for name in ["1001_a.wav", "1001_b.wav", "1002_a.wav", "1003_aug.wav", "1004_unlisted.wav"]:
        write_wav(root / "train" / name, seconds=0.3, sampling_rate=32000)
    write_wav(root / "test" / "2001_x.wav", seconds=0.3, sampling_rate=32000)
    write_text(
        root / "metadata of train set .csv",
        "Filename,File ID,Duration in ms,Class ID,Classname,augmentation  id,Augmentation  type\n"
        "1001_a.wav,1001,300,0,breath,0,Orignal\n"
        "1001_b.wav,1001,300,6,yawm,0,Orignal\n"
        "1002_a.wav,1002,300,1,cough,0,Orignal\n"
        "1003_aug.wav,1003,300,1,cough,2,Pitch shift\n",
    )
    write_text(
        root / "metadata of test set.csv",
        "Filename,File_ID,Durationin ms,Class_id,Classname,Augment Id,Augmentation type\n2001_x.wav,2001,300,3,laugh,0,Original\n",
    )
    return root


RECANVO_NAMES = ["200126_2142_00-13-04.06--00-13-04.324.wav", "200127_0900_00-01-02.5--00-01-03.75.wav"]


def write_recanvo(root: Path) -> Path:
    for name in RECANVO_NAMES + ["unlisted.wav"]:
        write_wav(root / name, seconds=0.3, sampling_rate=44100)
    write_text(root / "dataset_file_directory.csv", f"Filename,Participant,Label\n{RECANVO_NAMES[0]},P01,delighted\n{RECANVO_NAMES[1]},P05,selftalk\n")
    return root


def write_singing_database(root: Path) -> Path:
    """monophonic/chinese/<fem_XX|mal_XX>/<pos_N|neg_N>.wav, plus a file in an unconfirmed subfolder."""
    write_wav(root / "monophonic" / "chinese" / "fem_01" / "pos_1.wav", seconds=1.0, sampling_rate=44100)
    write_wav(root / "monophonic" / "chinese" / "mal_02" / "neg_3.wav", seconds=1.0, sampling_rate=44100)
    write_wav(root / "other" / "take.wav", seconds=1.0, sampling_rate=44100)
    return root


TUT_DEVTRAIN_SET = "20b255387a2d0cddc0a3dff5014875e7"


def write_tut_babies(root: Path) -> Path:
    """TUT-rare-sound-events-2017-development/data/{mixture_data,source_data}/ (returned as data_dir)."""
    corpus = root / "TUT-rare-sound-events-2017-development"
    mixtures = corpus / "data" / "mixture_data"
    devtrain = mixtures / "devtrain" / TUT_DEVTRAIN_SET / "audio"
    write_wav(devtrain / "mixture_devtrain_babycry_000_07a75692b15446e9fbf6cf3b3a6da9d3.wav", seconds=0.3, sampling_rate=44100)
    write_wav(devtrain / "mixture_devtrain_glassbreak_000_0f9d35d2d4c3a1e9e3b1c1a7c7e7a9b1.wav", seconds=0.3, sampling_rate=44100)
    write_wav(mixtures / "devtest" / "b1dd0d8a04f6bd7b4bbb8d4d5b3d0ef0" / "audio" / "mixture_devtest_babycry_001_1e2d3c4b5a69788796a5b4c3d2e1f001.wav",
              seconds=0.3, sampling_rate=44100)
    write_wav(mixtures.parent / "source_data" / "events" / "babycry" / "cry.wav", seconds=0.3, sampling_rate=44100)
    return corpus


def write_vocalsketch(root: Path) -> Path:
    corpus = root / "VocalSketchDataSet"
    write_wav(corpus / "vocal_imitations" / "included" / "car horn - 12.wav", seconds=0.3, sampling_rate=44100)
    write_wav(corpus / "vocal_imitations" / "excluded" / "walkie-talkie beep - 13.wav", seconds=0.3, sampling_rate=44100)
    write_wav(corpus / "vocal_imitations" / "included" / "no csv row - 99.wav", seconds=0.3, sampling_rate=44100)
    write_wav(corpus / "sound_recordings" / "car horn.wav", seconds=0.3, sampling_rate=44100)
    write_text(
        corpus / "vocal_imitations.csv",
        "id,filename,stimulus_type,included,participant_id,sound_label\n"
        "12,car horn - 12.wav,sound label,True,p7,car horn\n13,walkie-talkie beep - 13.wav,sound recording,False,p8,walkie-talkie beep\n",
    )
    return corpus


def write_nnime(root: Path) -> Path:
    """No confirmed layout: session and speaker folders, a flac, a file directly in the folder."""
    write_wav(root / "Session01" / "spk_A" / "laugh_01.wav", seconds=0.3)
    write_wav(root / "Session02" / "sigh_02.flac", seconds=0.3)
    write_wav(root / "loose.wav", seconds=0.3)
    return root


def write_freesound_babies(root: Path) -> Path:
    """Freesound download names (a title with '__', a flac), one renamed file and a container libsndfile cannot read."""
    write_wav(root / "cries" / "123456__janedoe__baby crying__loud.wav", seconds=0.3, sampling_rate=44100, channels=2)
    write_wav(root / "98765__sound_guy__giggle.flac", seconds=0.3, sampling_rate=48000)
    write_wav(root / "unnamed.wav", seconds=0.3, sampling_rate=44100)
    write_text(root / "phone.m4a", "not audio libsndfile reads")
    return root


AUDIOSET_CSV = """# Segments csv created Sun Mar  5 10:54:31 2017
# num_ytids=5, num_segs=5, num_unique_labels=5, num_positive_labels=6
# YTID, start_seconds, end_seconds, positive_labels
-0xHkg0pXEk, 30.000, 40.000, "/m/01j3sz,/m/09x0r"
a_b-c_d_e_f, 30.000, 40.000, "/m/01b_21"
laughing123, 0.000, 10.000, "/t/dd00002"
speechonly1, 10.000, 20.000, "/m/09x0r"
"""


def write_audioset(root: Path) -> Path:
    """Clips named by YouTube id in several spellings, and the official segment CSVs."""
    write_text(root / "csv" / "balanced_train_segments.csv", AUDIOSET_CSV)
    write_text(root / "csv" / "eval_segments.csv", AUDIOSET_CSV.splitlines()[0] + "\n# x\n# y\nYYabcdefghi, 0.000, 10.000, \"/m/07plz5l\"\n")
    for name in ["Y-0xHkg0pXEk.wav", "a_b-c_d_e_f_30000_40000.wav", "laughing123_0.000.flac", "speechonly1.wav", "zzzzzzzzzzz.wav", "YYabcdefghi.wav"]:
        write_wav(root / "clips" / name, seconds=0.5, sampling_rate=44100, channels=2)
    return root


def write_demo(root: Path) -> Path:
    """The synthetic demo corpus as `load_corpus("demo", data_dir=...)` generates it (one clip per class)."""
    from voc2vec import synth

    synth.generate_corpus(root, num_speakers=1, clips_per_speaker_per_class=1)
    return root


# ---- the real Donate A Cry copy, counted without the toolkit ------------------------------------------------

DONATEACRY_CLASSES = ["belly_pain", "burping", "discomfort", "hungry", "tired"]


def count_donateacry(clone: Path) -> dict:
    """The real copy's figures from the files themselves (plain pathlib and soundfile, no toolkit code), so
    that tests compare the loader and `stats` with the corpus instead of with their own earlier output:
    wav files per class folder, distinct app installations (the 36-character UUID that starts each name,
    case-folded), sampling rates, and durations from each file's frame count."""
    cleaned = clone / "donateacry_corpus_cleaned_and_updated_data"
    files = {name: sorted(path for path in (cleaned / name).iterdir() if path.suffix.lower() == ".wav") for name in DONATEACRY_CLASSES}
    infos = [soundfile.info(path) for paths in files.values() for path in paths]
    seconds = sum(info.frames / info.samplerate for info in infos)
    return {
        "class_counts": {name: len(paths) for name, paths in files.items()},
        "clips": len(infos),
        "speakers": len({path.name[:36].upper() for paths in files.values() for path in paths}),
        "sampling_rates": sorted({info.samplerate for info in infos}),
        "seconds": seconds,
        "hours": seconds / 3600,
        "mean_seconds": seconds / len(infos),
    }


# Each corpus's tree, by loader name: writer(folder) -> the data_dir to give that loader.
FIXTURE_CORPORA = {
    "asvp_esd": write_asvp_esd,
    "audioset_vocalization": write_audioset,
    "cnvve": write_cnvve,
    "demo": write_demo,
    "donateacry": write_donateacry,
    "folder": write_folder_corpus,
    "freesound_babies": write_freesound_babies,
    "human_voice": write_human_voice,
    "hume_vb": write_hume_vb,
    "nnime": write_nnime,
    "nonspeech7k": write_nonspeech7k,
    "nonverbal_vocalization": write_nonverbal_vocalization,
    "recanvo": write_recanvo,
    "singing_database": write_singing_database,
    "tut_babies": write_tut_babies,
    "vivae": write_vivae,
    "vocalsketch": write_vocalsketch,
    "vocalsound": write_vocalsound,
}
