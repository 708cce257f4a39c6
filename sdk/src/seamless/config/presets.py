"""SLA and conformance presets: the packaged `presets.yaml` or the file named by
`seamless.presets_file` (relative paths resolve against the config file's directory).

A preset name that the file does not define is an error, never a silent default: QMTL's own
maximal template names an `enterprise` SLA preset that exists nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seamless.config import safe_yaml
from seamless.config.model import ConfigIssue, ResolvedSection, SeamlessConfig, suggest
from seamless.errors import PresetError, YamlLimitError

PACKAGED_PRESETS = "presets.yaml"


class SlaPolicyPreset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    total_deadline_ms: int | None = Field(default=None, ge=0)
    max_wait_storage_ms: int | None = Field(default=None, ge=0)
    max_wait_backfill_ms: int | None = Field(default=None, ge=0)
    max_wait_live_ms: int | None = Field(default=None, ge=0)
    retry_backoff_ms: int | None = Field(default=None, ge=0)
    max_sync_gap_bars: int | None = Field(default=None, ge=0)
    min_coverage: float | None = Field(default=None, ge=0, le=1)
    max_lag_seconds: float | None = Field(default=None, ge=0)
    on_violation: Literal["fail_fast", "partial_fill", "hold"] = "fail_fast"


class SlaPreset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    policy: SlaPolicyPreset


class SchemaField(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    dtype: str = Field(min_length=1)


class ConformanceSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: tuple[SchemaField, ...] = ()


class ConformancePreset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    partial_ok: bool = False
    interval_ms: int | None = Field(default=None, gt=0)
    schema_: ConformanceSchema = Field(default_factory=ConformanceSchema, alias="schema")


class PresetsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    sla_presets: dict[str, SlaPreset] = Field(default_factory=dict)
    conformance_presets: dict[str, ConformancePreset] = Field(default_factory=dict)


@dataclass(frozen=True)
class Presets:
    """The presets of one file, and which file that was (for messages)."""

    origin: str
    sla: Mapping[str, SlaPreset]
    conformance: Mapping[str, ConformancePreset]

    def sla_policy(self, name: str) -> SlaPolicyPreset:
        if name not in self.sla:
            raise PresetError(
                _unknown("sla_preset", name, list(self.sla), self.origin),
                key="seamless.sla_preset",
                source=self.origin,
                expected="one of " + ", ".join(self.sla),
            )
        return self.sla[name].policy

    def conformance_preset(self, name: str) -> ConformancePreset:
        if name not in self.conformance:
            raise PresetError(
                _unknown("conformance_preset", name, list(self.conformance), self.origin),
                key="seamless.conformance_preset",
                source=self.origin,
                expected="one of " + ", ".join(self.conformance),
            )
        return self.conformance[name]


def _unknown(key: str, name: str, known: list[str], origin: str) -> str:
    hint = suggest(name, known)
    did_you_mean = f"; did you mean {hint!r}?" if hint else ""
    return f"seamless.{key} = {name!r}: no such preset in {origin}{did_you_mean}"


def resolve_presets_path(presets_file: str, config_dir: Path | None) -> Path:
    path = Path(presets_file).expanduser()
    if not path.is_absolute() and config_dir is not None:
        path = config_dir / path
    return path


def packaged_presets() -> Presets:
    text = resources.files("seamless.config").joinpath(PACKAGED_PRESETS).read_text(encoding="utf-8")
    return parse_presets(text, origin=f"the packaged {PACKAGED_PRESETS}")


def load_presets(presets_file: str | None = None, config_dir: Path | None = None) -> Presets:
    """Presets from `presets_file` (resolved against `config_dir`), else the packaged ones."""
    if presets_file is None:
        return packaged_presets()
    path = resolve_presets_path(presets_file, config_dir)
    try:
        text = path.read_text(encoding="utf-8")
    # ValueError: a path the OS cannot take at all (an embedded NUL byte).
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else str(exc)
        raise PresetError(
            f"seamless.presets_file = {presets_file!r}: cannot read {path} ({reason})",
            key="seamless.presets_file",
            source=str(path),
            expected="a readable presets YAML file (relative paths: to the config file)",
        ) from None
    return parse_presets(text, origin=str(path))


def parse_presets(text: str, *, origin: str) -> Presets:
    expected = "a mapping with sla_presets and conformance_presets, like the packaged file"
    try:
        data: Any = safe_yaml.load(text)
    except YamlLimitError as exc:
        raise PresetError(
            f"presets file {origin}: {exc}",
            key="seamless.presets_file",
            source=origin,
            expected=expected,
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PresetError(
            f"presets file {origin}: not valid YAML{where}; expected {expected}",
            key="seamless.presets_file",
            source=origin,
            expected=expected,
        ) from None
    try:
        parsed = PresetsFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ()))
        raise PresetError(
            f"presets file {origin}: {where or 'top level'}: {error['msg']}; expected {expected}",
            key="seamless.presets_file",
            source=origin,
            expected=expected,
        ) from None
    return Presets(origin=origin, sla=parsed.sla_presets, conformance=parsed.conformance_presets)


def preset_issues(
    settings: SeamlessConfig, resolved: ResolvedSection, config_dir: Path | None
) -> list[ConfigIssue]:
    """Problems with presets_file, sla_preset and conformance_preset (dangling names)."""
    try:
        presets = load_presets(settings.presets_file, config_dir)
    except PresetError as exc:
        return [
            ConfigIssue(
                key="presets_file",
                source=resolved.source_of("presets_file"),
                problem=str(exc),
                expected=exc.expected,
            )
        ]
    issues: list[ConfigIssue] = []
    for key, name, known in (
        ("sla_preset", settings.sla_preset, list(presets.sla)),
        ("conformance_preset", settings.conformance_preset, list(presets.conformance)),
    ):
        if name not in known:
            issues.append(
                ConfigIssue(
                    key=key,
                    source=resolved.source_of(key),
                    problem=f"no such preset in {presets.origin}",
                    expected="one of " + ", ".join(repr(k) for k in known),
                    value=repr(name),
                    suggestion=suggest(name, known),
                )
            )
    return issues
