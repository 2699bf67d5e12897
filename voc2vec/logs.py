"""Console logging for the entry points (run_*.py, voc2vec tsne/stats).

``logging.basicConfig(force=True)`` would also remove handlers that are not ours (pytest's caplog, a notebook's,
an application's that calls ``main()``), and plain ``basicConfig`` keeps the first call's handler: a second
``main()`` in the same process then logs through a handler bound to a stream that may be closed by now. We replace
only the handler an earlier call installed, and add ours unless another handler already writes to ``sys.stderr``:
a capture handler (pytest's caplog, a log file) does not show the user anything, so ours still prints.
"""
from __future__ import annotations

import logging
import sys

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _EntryPointHandler(logging.StreamHandler):
    """The handler ``configure_logging`` installs, told apart from anyone else's by its class."""


def _prints_to_stderr(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stderr


def configure_logging(level: int = logging.INFO, fmt: str = DEFAULT_FORMAT, quiet_libraries: bool = False) -> None:
    """Log to the current ``sys.stderr`` at ``level``; ``quiet_libraries``: transformers and accelerate at WARNING."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _EntryPointHandler)]:
        root.removeHandler(handler)
    if not any(_prints_to_stderr(h) for h in root.handlers):  # an application's console handler: don't print twice
        handler = _EntryPointHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(fmt))
        root.addHandler(handler)
    root.setLevel(level)
    if quiet_libraries:
        import transformers

        transformers.utils.logging.set_verbosity_warning()
        logging.getLogger("accelerate").setLevel(logging.WARNING)  # its per-evaluation gather notes are noise here
