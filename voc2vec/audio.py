"""Audio decoding without FFmpeg: libsndfile (soundfile) to read, soxr to resample.

datasets' `Audio` feature decodes only through torchcodec + system FFmpeg, which do not match the CPU
torch this project pins, and torchaudio's wheels fail beside it. libsndfile reads everything the
vocalization corpora ship (wav in any bit depth, flac, ogg vorbis/opus, mp3, aiff, caf), so every file
in the toolkit goes through `load_audio`, and every failure becomes one `AudioDecodeError` that names
the file and the fix.

`audio_info` is the probe corpus preparation runs on every file. It reads the header only, except for
files stored as floating-point samples: those are the only ones that can hold NaN or Inf, which pass every
header check and would stop a training run much later, so their samples are read and checked once here.
Integer PCM, FLAC and the lossy codecs cannot hold non-finite values and stay header-only.
"""

from __future__ import annotations

import errno
import io
import os
import shlex
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr

from voc2vec.errors import UserError

TARGET_SAMPLING_RATE = 16000

# Containers libsndfile cannot open; users meet them in phone recordings and web downloads.
UNSUPPORTED_CONTAINERS = {".3gp", ".3g2", ".m4a", ".mp4", ".aac", ".webm", ".wma", ".amr", ".opus.mp4"}
# Sample formats that can hold NaN/Inf: files stored this way have their samples checked by `audio_info`.
FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
PROBE_BLOCK_FRAMES = 1 << 16  # the float check reads this many frames at a time, so long files cost no memory


class AudioDecodeError(UserError):
    """A file that cannot be turned into samples: `what` went wrong (`reason`), the file (`where`), the `fix`.

    Printed as `<reason> (<path>). Fix: <how>` like every `UserError`; corpus reports list `reason` (which
    carries the fix) beside the path. A `ValueError`, as before.
    """

    def __init__(self, path: str | os.PathLike, reason: str, fix: str | None = None):
        self.path = os.fspath(path)
        super().__init__(reason, where=self.path, fix=fix)

    @property
    def reason(self) -> str:
        return self.what + (f". Fix: {self.fix}" if self.fix else "")

    def __reduce__(self):  # rebuilt from its parts in worker processes (the default would pass the message as path)
        return type(self), (self.path, self.what, self.fix)


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says, read without decoding the samples."""

    sampling_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sampling_rate if self.sampling_rate else 0.0


def converted_path(path: str) -> str:
    """Where a converted copy of `path` goes: beside it, as wav, never onto the input itself."""
    stem, extension = os.path.splitext(path)
    return f"{stem}-converted.wav" if extension.lower() == ".wav" else f"{stem}.wav"


def conversion_command(path: str) -> str:
    return f"ffmpeg -i {shlex.quote(path)} -ac 1 -ar 16000 {shlex.quote(converted_path(path))}"


def _unopenable(path: str) -> AudioDecodeError | None:
    """Why the operating system will not open `path` at all (missing, broken link, link loop, no permission)."""
    try:
        with open(path, "rb"):
            return None
    except FileNotFoundError:
        if os.path.islink(path):
            return AudioDecodeError(path, f"broken symbolic link: it points to '{os.readlink(path)}', which does not exist",
                                    fix="point the link at the file, or remove it")
        return AudioDecodeError(path, "file not found")
    except PermissionError:
        return AudioDecodeError(path, "permission denied: the file cannot be read",
                                fix=f"give read permission (chmod a+r {shlex.quote(path)}) or run as a user who can read it")
    except IsADirectoryError:
        return AudioDecodeError(path, "a folder, not an audio file")
    except OSError as error:
        if error.errno == errno.ELOOP:
            return AudioDecodeError(path, "symbolic link loop: the link points back to itself through other links",
                                    fix="point the link at a real file, or remove it")
        return AudioDecodeError(path, f"cannot be opened ({error.strerror or error})")


def open_error(path: str, error: Exception) -> AudioDecodeError:
    """The one error for a file libsndfile could not open, with the reason a user can act on."""
    unopenable = _unopenable(path)
    if unopenable is not None:
        return unopenable
    extension = os.path.splitext(path)[1].lower()
    if extension in UNSUPPORTED_CONTAINERS:
        return AudioDecodeError(path, f"unsupported container '{extension}' (libsndfile cannot read it)",
                                fix=f"convert it, e.g. `{conversion_command(path)}` (wav, flac, ogg, mp3, aiff and caf are read directly)")
    if os.path.getsize(path) == 0:
        return AudioDecodeError(path, "zero-length file (0 bytes)", fix="download or copy the file again")
    # libsndfile says "Error opening '<path>': <problem>."; the path is already in the message.
    detail = str(error).split("': ", 1)[-1].rstrip(". ") if str(error).startswith("Error opening") else str(error)
    return AudioDecodeError(path, f"unreadable or corrupt audio ({detail})",
                            fix=f"if the file plays elsewhere, convert it to a new file, e.g. `{conversion_command(path)}`, "
                            "and use that; otherwise download it again")


NON_FINITE = "non-finite samples (NaN or Inf)"
NON_FINITE_FIX = "re-export the file (its floating-point samples hold NaN or Inf), or remove it"


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Sampling rate, channels and length, cheap enough to probe whole corpora: the header only, plus a read of
    the samples of floating-point files, which alone can hold NaN/Inf (raised as `AudioDecodeError`)."""
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() in UNSUPPORTED_CONTAINERS:
        raise open_error(path, RuntimeError("unsupported container"))
    try:
        with soundfile.SoundFile(path) as sound:
            info = AudioInfo(sampling_rate=int(sound.samplerate), channels=int(sound.channels), frames=int(sound.frames))
            finite = sound.subtype not in FLOAT_SUBTYPES or _all_finite(sound)
    except Exception as error:  # libsndfile raises LibsndfileError/RuntimeError/TypeError by format
        raise open_error(path, error) from error
    if info.frames <= 0:
        raise AudioDecodeError(path, "zero length: the file holds no samples")
    if not finite:
        raise AudioDecodeError(path, NON_FINITE, fix=NON_FINITE_FIX)
    return info


def _all_finite(sound: soundfile.SoundFile) -> bool:
    """Whether every sample of an open file is finite, read block by block (stops at the first bad block)."""
    while True:
        block = sound.read(PROBE_BLOCK_FRAMES, dtype="float32")
        if not block.size:
            return True
        if not np.isfinite(block).all():
            return False


def resample(audio: np.ndarray, orig_sampling_rate: int, sampling_rate: int) -> np.ndarray:
    """soxr's high-quality resampler; a no-op when the rates already match."""
    if orig_sampling_rate == sampling_rate:
        return audio
    return soxr.resample(audio, orig_sampling_rate, sampling_rate, quality="HQ").astype(np.float32, copy=False)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) to (frames,). Averaging keeps the level of a centred stereo source; some corpora ship
    stereo copies."""
    return samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]


def decode_audio_bytes(data: bytes, sampling_rate: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Encoded audio held in memory (a mixture shard's FLAC cell, any libsndfile format) as float32 mono."""
    samples, file_sampling_rate = soundfile.read(io.BytesIO(bytes(data)), dtype="float32", always_2d=True)
    return np.ascontiguousarray(resample(to_mono(samples), file_sampling_rate, sampling_rate))


def load_audio(
    path: str | os.PathLike,
    sampling_rate: int | None = TARGET_SAMPLING_RATE,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Decode `path` to float32 mono in [-1, 1] at `sampling_rate` (None keeps the file's own rate).

    `offset` and `duration` (seconds) read only a window, seeking in the file instead of decoding it all.
    Raises `AudioDecodeError` for a missing, empty, corrupt, unsupported or non-finite file.
    """
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() in UNSUPPORTED_CONTAINERS:
        raise open_error(path, RuntimeError("unsupported container"))
    try:
        # One open for header and samples: for short clips the open is a large part of the cost.
        with soundfile.SoundFile(path) as sound:
            file_sampling_rate = sound.samplerate
            start = int(round(offset * file_sampling_rate))
            frames = -1 if duration is None else int(round(duration * file_sampling_rate))
            if start:
                sound.seek(start)
            samples = sound.read(frames, dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile raises LibsndfileError/RuntimeError/TypeError by format
        raise open_error(path, error) from error
    if samples.size == 0:
        raise AudioDecodeError(path, "zero length: no samples in the requested window" if start else "zero length: the file holds no samples")
    audio = to_mono(samples)
    if not np.isfinite(audio).all():
        raise AudioDecodeError(path, NON_FINITE, fix=NON_FINITE_FIX)
    if sampling_rate is None:
        return np.ascontiguousarray(audio)
    return np.ascontiguousarray(resample(audio, file_sampling_rate, sampling_rate))
