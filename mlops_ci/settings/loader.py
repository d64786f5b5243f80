"""Typed, validated stack settings, driven by the schema Pulumi.yaml declares (`mlops_ci.settings.schema`).

`load_settings()` parses the configuration the Pulumi CLI hands the program (declared defaults
already merged in), validates every rule, and raises one `ConfigError` listing every problem
before the program registers any resource; then derives the names left empty.
"""

from __future__ import annotations

import pulumi

from mlops_ci.settings.derive import derive
from mlops_ci.settings.model import ACCESS_ROLES, Access, ConfigError, Settings
from mlops_ci.settings.parse import config_variable_problem, parse
from mlops_ci.settings.validate import validate

__all__ = ["ACCESS_ROLES", "Access", "ConfigError", "Settings", "load_settings"]


def load_settings(stack: str | None = None) -> Settings:
    """Parse, validate and derive the settings of `stack` (by default the Pulumi stack running the
    program) from the config; raise `ConfigError` with every problem."""
    unreadable = config_variable_problem()
    if unreadable:  # no other key can be read: the one problem
        raise ConfigError(pulumi.get_stack() if stack is None else stack, [unreadable])
    parsed = parse(stack)
    problems = validate(parsed)
    if problems:
        raise ConfigError(parsed.stack, problems)
    return derive(parsed)
