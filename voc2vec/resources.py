"""The files voc2vec ships besides its code: the corpus loading scripts (`data/`) and the configs (`configs/`).

In the repository both folders sit beside the package (`data/`, `configs/`), where users and the README
expect them. The wheel installs them inside the package instead (`voc2vec/data/`, `voc2vec/configs/`:
setup.py maps the two folders to these package paths), so that `load_corpus("demo")` and
`python run_cv.py configs/cv/demo.yaml` work from an installed package, outside any checkout.

`shipped_dir("configs")` is that folder wherever it is; `resolve_resource("configs/cv/demo.yaml")` is the file
as the user gave it when it exists (their own edited copy in the working directory wins), else the copy
shipped with voc2vec. Shipped configs name other shipped files the same way (`model_name_or_path:
configs/models/tiny-wav2vec2.json`); `shipped_config_value` resolves such a value wherever the scripts read one.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent
SHIPPED_FOLDERS = ("data", "configs")
SHIPPED_CONFIG_PREFIXES = ("configs/", "./configs/")


def shipped_dir(name: str) -> Path:
    """The shipped folder `name` ("data" or "configs"): inside the installed package, else beside it (a checkout
    or an editable install)."""
    if name not in SHIPPED_FOLDERS:
        raise ValueError(f"voc2vec ships {', '.join(SHIPPED_FOLDERS)}, not {name!r}.")
    installed = PACKAGE_DIR / name
    return installed if installed.is_dir() else CHECKOUT_DIR / name


def resolve_resource(path: str | os.PathLike) -> Path:
    """`path` as given when it exists (relative to the working directory, or absolute); otherwise, for a relative
    path under `configs/` or `data/`, the file shipped with voc2vec when there is one; otherwise `path` unchanged,
    so the caller's own "not found" error names what the user typed.

        resolve_resource("configs/cv/demo.yaml")              # ./configs/cv/demo.yaml, else the installed copy
        resolve_resource("configs/models/tiny-wav2vec2.json")
    """
    given = Path(path).expanduser()
    if given.exists() or given.is_absolute():
        return given
    parts = PurePath(os.path.normpath(given)).parts
    if len(parts) > 1 and parts[0] in SHIPPED_FOLDERS:
        shipped = shipped_dir(parts[0]).joinpath(*parts[1:])
        if shipped.exists():
            return shipped
    return given


def shipped_config_value(value):
    """A config or flag value that names a shipped file (`configs/models/tiny-wav2vec2.json`), as the path of voc2vec's
    copy when the working directory has none; any other value unchanged.

    Only values under `configs/` are touched (a Hub id such as `facebook/wav2vec2-base` never is), and only when the
    shipped copy is a file, so an output folder that happens to be named `configs/...` stays where the user put it.
    """
    if not isinstance(value, str) or not value.startswith(SHIPPED_CONFIG_PREFIXES):
        return value
    resolved = resolve_resource(value)  # the user's own copy in the working directory wins
    return str(resolved) if resolved.is_file() else value
