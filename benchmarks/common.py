"""Helpers shared by the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import dataclasses


def parse_set(items: list[str], options_cls: type) -> dict:
    """['key=value', ...] -> {key: value} typed like the dataclass field's default."""
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(
                f"--set {item}: expected KEY=VALUE with KEY one of {', '.join(fields)}"
            )
        kind = type(fields[key].default)
        out[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return out
