"""Derive: from valid parsed settings to `Settings`, the names left empty derived from the stack.

A derived name always satisfies the rules it is checked against when set (a property test tries
every stack name the CLI accepts): odd characters become `-`, and a short hash of the exact stack
name is added whenever the name had to change or be shortened, so two stacks never collide.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from mlops_ci.settings.model import Settings, digest, field_name
from mlops_ci.settings.parse import PROJECT, Parsed
from mlops_ci.settings.rules import bucket_name_problem


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _fit(prefix: str, stack: str, suffix: str, limit: int) -> str:
    """`prefix + slug(stack) + suffix`, shortened to `limit`; a hash of the exact stack name
    is added whenever the slug is not the stack name itself, so distinct stacks never collide."""
    slug = _slug(stack)
    candidate = f"{prefix}{slug}{suffix}"
    if slug == stack and len(candidate) <= limit:
        return candidate
    hashed = digest(stack)
    room = limit - len(prefix) - len(suffix) - len(hashed) - 1
    head = slug[:room].rstrip("-")  # room >= 14: no prefix is long (a project id has at most 30 characters)
    return f"{prefix}{head}-{hashed}{suffix}" if head else f"{prefix}{hashed}{suffix}"


def derive_bucket_name(gcp_project: str, stack: str) -> str:
    """`<project>-<stack>-dvc`, or, where that breaks a bucket rule (a stack named like Google, a
    project starting with goog), the first valid of the same with hashes in place of names."""
    readable = _fit(f"{gcp_project}-", stack, "-dvc", 63)
    hashed = (f"dvc-{digest(f'{gcp_project}/{stack}/{n}')}{digest(stack)}" for n in itertools.count())
    return next(name for name in itertools.chain([readable, f"dvc-{readable}"[:63]], hashed) if not bucket_name_problem(name))


def derive_service_account_id(stack: str, project: str = PROJECT) -> str:
    """`dvc-ci-<stack>`; in a project not named mlops-ci, `dvc-ci-<project>-<stack>-<hash>`: service
    accounts carry no labels, so two projects' stacks `dev` in one Google Cloud project need two names."""
    return _fit("dvc-ci-", stack if project == PROJECT else f"{project}/{stack}", "", 30)


def derive(parsed: Parsed) -> Settings:
    """`Settings` of a configuration `validate` found no problem with."""
    platform = parsed.platform
    assert platform is not None  # a missing or unknown platform is a problem of validate
    texts = dict(parsed.texts)
    texts["ciFile"] = parsed.ci_file
    texts["bucketName"] = texts["existingBucket"] or texts["bucketName"] or derive_bucket_name(parsed.gcp_project, parsed.stack)
    texts["serviceAccountId"] = texts["serviceAccountId"] or derive_service_account_id(parsed.stack, parsed.project)
    fields: dict[str, Any] = {field_name(name): parsed.flags.get(name, text) for name, text in texts.items()}
    fields["platform"] = platform
    # The rules checked each value against its field's type (enums included).
    return Settings(
        gcp_project=parsed.gcp_project,
        stack=parsed.stack,
        platform_url=parsed.platform_url,
        defaulted=parsed.defaulted,
        pulumi_project=parsed.project,
        **fields,
    )
