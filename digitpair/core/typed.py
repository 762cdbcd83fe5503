"""One checker for config-like data, whatever it is read from: config.json and run records (JSON),
study files (TOML), summary.csv cells and `--set KEY=VALUE` (text), and `RunConfig` itself.

A value fits a field when it has the type the dataclass declares: `true` is never a number (to
Python it is an int), an integer is a number, a union takes any of its members, a Literal its
values, a list checks each item, a nested dataclass is read from a table. A value that does not fit
is a `ValueError` in one wording: "epochs = 'ten': a whole number expected", its place named as the
caller gives it."""

from __future__ import annotations

import dataclasses
import reprlib
import types
import typing

NONE = type(None)
KINDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "a table",
    NONE: "null",
}
BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def kinds(hint) -> list:
    """The types a hint allows: each member of a union (`float | None`), or the one."""
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    return list(typing.get_args(hint)) if union else [hint]


def expected(hint) -> str:
    """'a number or null': what a field of type `hint` takes, in words."""

    def words(kind) -> str:
        if dataclasses.is_dataclass(kind):
            return "a table"
        if typing.get_origin(kind) is typing.Literal:
            return " or ".join(repr(v) for v in typing.get_args(kind))
        return KINDS[typing.get_origin(kind) or kind]

    return " or ".join(dict.fromkeys(words(k) for k in kinds(hint)))


def mismatch(name: str, value, hint) -> ValueError:
    return ValueError(f"{name} = {reprlib.repr(value)}: {expected(hint)} expected")


def fits(value, kind: type) -> bool:
    """Whether `value` is of the plain type `kind` (bool, int, float, str, list, dict, None)."""
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    return isinstance(value, (int, float) if kind is float else kind)


def check(value, hint, name: str, absent: tuple = (None,)):
    """`value` if it fits `hint`, with nested dataclasses (`from_mapping`, fields that may be
    `absent` as there) and list items read and checked too."""
    for kind in kinds(hint):
        if dataclasses.is_dataclass(kind) and isinstance(value, dict):
            return from_mapping(kind, value, f"{name}.", absent)
        if typing.get_origin(kind) is list and isinstance(value, list):
            (item,) = typing.get_args(kind)
            return [check(v, item, f"{name}[{i}]", absent) for i, v in enumerate(value)]
        if typing.get_origin(kind) is typing.Literal and value in typing.get_args(kind):
            return value
        if typing.get_origin(kind) is None and fits(value, kind):
            return value
    raise mismatch(name, value, hint)


def from_text(text: str, hint, name: str):
    """A field's value from text (a CSV cell, `--set`): '' is null where the field takes null."""
    allowed = kinds(hint)
    if text == "" and NONE in allowed:
        return None
    for kind in allowed:
        if kind is bool and text.lower() in BOOLEANS:
            return BOOLEANS[text.lower()]
        if kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                continue
        if kind is str or (
            typing.get_origin(kind) is typing.Literal and text in typing.get_args(kind)
        ):
            return text
    raise mismatch(name, text, hint)


def from_mapping(cls, mapping: dict, where: str = "", absent: tuple = (None,)):
    """A dataclass `cls` from a table, every field checked (`check`): a field may be absent only
    where its default is one of `absent` (what the data says "not recorded" with); a key that is no
    field is not read. The class's own checks (RunConfig's ranges and choices) run as it is
    built."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        name = f"{where}{f.name}"
        if f.name not in mapping:
            if f.default not in absent:
                raise ValueError(f"{name} is missing")
            continue
        hint = hints[f.name]
        if f.default is None:  # where absence means "not recorded", null is no value of the field's
            hint = typing.Union[tuple(k for k in kinds(hint) if k is not NONE)]
        values[f.name] = check(mapping[f.name], hint, name, absent)
    try:
        return cls(**values)
    except ValueError as e:
        raise ValueError(f"{where.rstrip('.')}: {e}" if where else str(e)) from None
