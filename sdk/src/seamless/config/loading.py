"""Loading a `seamless` section: the model's checks, then the presets it names. Apart from
`model.py` because the preset checks need both the model and `presets.py`, which itself
builds on the model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seamless.config.model import (
    DEFAULT_SOURCE,
    SeamlessConfig,
    issues_error,
    parse_section,
    read_document,
    resolve_section,
)
from seamless.config.presets import preset_issues


@dataclass(frozen=True)
class LoadedConfig:
    """A validated section, where each value came from, and the directory relative paths
    (presets_file) resolve against."""

    settings: SeamlessConfig
    sources: Mapping[str, str]
    config_dir: Path | None

    def source_of(self, key: str) -> str:
        return self.sources.get(key, DEFAULT_SOURCE)


def load_section(
    section: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    source: str = "config",
    config_dir: Path | None = None,
) -> LoadedConfig:
    """Validate a section given as values (e.g. Pulumi stack config); ConfigError if bad.

    Checks presets too: a dangling sla_preset/conformance_preset name is an error.
    """
    resolved = resolve_section(section, env, source=source)
    settings = parse_section(resolved)
    issues = preset_issues(settings, resolved, config_dir)
    if issues:
        raise issues_error(issues)
    return LoadedConfig(settings=settings, sources=dict(resolved.sources), config_dir=config_dir)


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Load the `seamless` section of a YAML file, apply env overrides, validate it."""
    document = read_document(path)
    return load_section(
        document.seamless_section(),
        env=env,
        source=str(path),
        config_dir=document.directory,
    )
