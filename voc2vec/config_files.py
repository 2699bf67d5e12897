"""YAML / JSON config files as the scripts read them: a mapping of argument names to values, with errors that
name the file and the line. Kept free of heavy imports (no transformers), so light commands such as
`python -m voc2vec.mixture prepare` can use it.
"""

import difflib
import json
from pathlib import Path

import yaml

from voc2vec.errors import UserError
from voc2vec.resources import resolve_resource, shipped_config_value

CONFIG_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def suggestions(names: list[str], known: set[str]) -> str:
    """'did you mean --num_folds?' for each misspelt name that resembles a real argument."""
    hints = []
    for name in names:
        close = difflib.get_close_matches(name.split("=")[0], sorted(known), n=1)
        hints.append(f"{name}: did you mean {close[0]}?" if close else f"{name}: no such argument")
    return "; ".join(hints)


def read_config_file(path: str | Path) -> dict:
    """A YAML or JSON mapping; a missing file, a syntax error (with its line) or a non-mapping is a `UserError`."""
    path = resolve_resource(path)  # configs/... from the working folder, else the copy shipped with voc2vec
    if not path.is_file():
        raise UserError("config file does not exist", where=path, fix="check the path")
    text = path.read_text()
    try:
        config = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise UserError(f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}", where=path,
                        fix="correct the syntax on that line") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UserError(f"invalid YAML{line}: {problem}", where=path, fix="correct the syntax on that line") from error
    if not isinstance(config, dict):
        raise UserError("must hold a mapping of argument names to values", where=path,
                        fix="write one 'name: value' line per argument")
    return with_shipped_files(config)


def with_shipped_files(value):
    """`value` with every string that names a shipped file (`model_name_or_path: configs/models/tiny-wav2vec2.json`, at
    any depth: grid entries too) resolved to voc2vec's copy when the working directory has none, so that a shipped
    config works from an installed package, outside the checkout."""
    if isinstance(value, dict):
        return {key: with_shipped_files(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_shipped_files(item) for item in value]
    return shipped_config_value(value)
