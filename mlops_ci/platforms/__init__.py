"""The CI platforms, registered once. Adding one: a module implementing `Platform`, its
template, an entry here, its tests and a stack file."""

from __future__ import annotations

from collections.abc import Mapping

from mlops_ci.platforms.base import DeliveryArgs, Platform
from mlops_ci.platforms.github import GITHUB
from mlops_ci.platforms.gitlab import GITLAB

PLATFORMS: Mapping[str, Platform] = {platform.name: platform for platform in (GITHUB, GITLAB)}

__all__ = ["PLATFORMS", "DeliveryArgs", "Platform"]
