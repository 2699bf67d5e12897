"""Expected failures, and the one place where every entry point reports them.

A `UserError` is a failure the user can fix (bad input, a wrong setting, a read-only folder, a full disk). Entry
points print it as one line, `error: <what> (<where>). Fix: <how>`, and exit with code 2; they never show a
traceback for it. Anything else is a bug and keeps its traceback.

    from voc2vec.errors import UserError, exit_on_user_error

    @exit_on_user_error
    def main(argv=None) -> int:
        ...
        raise UserError("--num_folds must be at least 2, got 1", where="--num_folds", fix="pass --num_folds 2 or more")

`os_error_to_user_error` turns the operating system's "no space left" / "permission denied" / "read-only file
system" into a `UserError` that names the folder, so a full disk never surfaces as `basic_ios::clear` or a bare
`OSError` (`os_errors_as_user_errors` does it for a block of work, such as a fold). `check_writable_dir` finds an
unwritable output or cache folder before any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

EXIT_USER_ERROR = 2


class UserError(ValueError):
    """A failure the user can fix: `what` went wrong, `where` (a file, folder or option), and the `fix`.

    A `ValueError`, so code that validates with `except ValueError` keeps working.
    """

    def __init__(self, what: str, where: str | os.PathLike | None = None, fix: str | None = None):
        self.what = what.rstrip(". ")
        self.where = None if where is None else str(where)
        self.fix = None if fix is None else fix.rstrip(". ")
        super().__init__(self.message())

    def message(self) -> str:
        text = self.what + (f" ({self.where})" if self.where else "") + "."
        return text + (f" Fix: {self.fix}." if self.fix else "")


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception class that is an expected, user-fixable failure (imported lazily: some pull in torch)."""
    types: list[type[BaseException]] = [UserError]
    try:
        from voc2vec.builder import CorpusLayoutError  # a FileNotFoundError, so not a UserError subclass

        types.append(CorpusLayoutError)
    except ImportError:  # pragma: no cover - a stripped-down install
        pass
    return tuple(types)


def os_error_to_user_error(error: OSError, path: str | os.PathLike | None = None) -> UserError | None:
    """A `UserError` for the OS errors users cause and can fix (full disk, no permission); None for the others."""
    where = path or error.filename
    folder = Path(where).parent if where and not Path(where).is_dir() else where
    if error.errno == errno.ENOSPC or "No space left" in str(error):
        return UserError("no space left on device", where=folder, fix="free disk space or write to another folder")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError("not writable (permission denied or read-only)", where=folder,
                         fix="choose a folder you can write to, or change its permissions")
    return None


@contextlib.contextmanager
def os_errors_as_user_errors(folder: str | os.PathLike) -> Iterator[None]:
    """Within the block, a full disk or a refused write is a `UserError` naming the file's folder (or `folder`, when
    the error names no file): "no space left on device (<folder>)", not a bare `[Errno 28]`. Other errors pass."""
    try:
        yield
    except OSError as error:
        converted = None if isinstance(error, UserError) else os_error_to_user_error(error, None if error.filename else folder)
        if converted is None:
            raise
        raise converted from error


def check_writable_dir(path: str | os.PathLike, option: str) -> Path:
    """Check that files can be written in `path` (or, while it does not exist yet, in its nearest existing parent,
    without creating anything); raise a `UserError` naming `option` and the folder otherwise."""
    path = Path(path).expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{existing} is a file, not a folder", where=f"{option} {path}", fix="choose another folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".voc2vec-write-check-"):
            pass
    except OSError as error:
        converted = os_error_to_user_error(error, existing / "x")
        what = converted.what if converted else f"cannot write there ({error.strerror or error})"
        raise UserError(what, where=f"{option} {path}", fix="choose a folder you can write to") from error
    return path


def exit_on_user_error(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a script's `main`: a `UserError` (or a full disk / unwritable folder) becomes `error: ...` on stderr
    and exit code 2; every other exception propagates with its traceback."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except user_error_types() as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USER_ERROR
        except OSError as error:
            converted = os_error_to_user_error(error)
            if converted is None:
                raise
            print(f"error: {converted}", file=sys.stderr)
            return EXIT_USER_ERROR

    return wrapped
