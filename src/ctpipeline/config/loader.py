"""The one way every ctpipeline YAML file is read and every validation error is worded.

* :func:`read_yaml` reads a file into a mapping: a missing or unreadable file, invalid YAML (with line and
  column), a key given twice in one mapping, or anything but a mapping at the top level is a
  :class:`~ctpipeline.errors.ConfigError` naming the file.
* :func:`did_you_mean` is the single "did you mean" hint (``difflib``) used for keys, names and methods.
* :func:`validation_problems` turns a pydantic ``ValidationError`` into ``(key path, reason)`` pairs, with the
  hint for a misspelled key drawn from the fields valid at that place of the model.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ctpipeline.errors import ConfigError


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of `choices`, or ``""``."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (PyYAML silently keeps the last)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file; ConfigError naming the file otherwise."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "file not found") from None
    except IsADirectoryError:
        raise ConfigError(str(p), "is a directory, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(p), f"not valid YAML: {where}{reason}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(p), "the file must hold a YAML mapping (key: value pairs) at the top level")
    return data


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names valid at `loc`'s parent, to suggest a fix for a misspelled key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):  # an item of a list of sections (promotion.slices.0, notifications.1)
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        ann = fields[part].annotation
        current = next(
            (a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if current is None:
            return []
    return [k for k, f in getattr(current, "model_fields", {}).items() if not f.exclude]


def validation_problems(err: ValidationError, model: type[BaseModel]) -> list[tuple[str, str]]:
    """``(key.path, reason)`` for each error; unknown keys get a "did you mean" from `model`'s fields."""
    problems: list[tuple[str, str]] = []
    for e in err.errors(include_url=False, include_input=False, include_context=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-after")))
        where = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            known = _known_keys(model, loc)
            hint = did_you_mean(str(loc[-1]), known) or (f"; allowed: {', '.join(known)}" if known else "")
            problems.append((where, f"unknown key{hint}"))
        else:
            problems.append((where, e["msg"].removeprefix("Value error, ")))
    return problems


def load_model(path: str | Path, model: type[BaseModel], extra: dict[str, Any] | None = None) -> Any:
    """Read `path` and validate it into `model` (plus `extra` fields that are not in the YAML)."""
    data = read_yaml(path)
    try:
        return model.model_validate({**data, **(extra or {})})
    except ValidationError as err:
        raise ConfigError(str(path), validation_problems(err, model)) from None
