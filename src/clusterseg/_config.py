"""Shared behaviour of the frozen config dataclasses (DSCConfig, LNSNetConfig, ...)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C")


def check_option_names(cls: type, options: dict[str, Any], what: str) -> None:
    """TypeError naming every option that is not a field of the dataclass ``cls``."""
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise TypeError(f"unknown {what} options: {unknown}; {cls.__name__} has "
                        f"{sorted(f.name for f in dataclasses.fields(cls))}")


class OptionsMixin:
    """``Config.with_options(config, **options)``: a copy with some fields replaced, unknown names refused."""

    _what = "config"

    @classmethod
    def with_options(cls: type[C], config: C | None = None, **options: Any) -> C:
        check_option_names(cls, options, cls._what)
        return dataclasses.replace(config or cls(), **options)
