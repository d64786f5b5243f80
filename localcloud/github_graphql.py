"""GitHub's GraphQL API (`POST /graphql`) as far as the provider asks it here: a repository's
branch protection rules (upstream `dataSourceGithubBranchProtectionRulesRead`, githubv4). Queries run
with graphql-core against GitHub's own schema (npm `@octokit/graphql-schema`, `schema.json`): a query
the schema does not allow is refused as GitHub refuses it, and the answer has the schema's shape.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, GraphQLSchema, build_client_schema, graphql_sync  # pyright: ignore[reportUnknownVariableType]

from localcloud import platform

if TYPE_CHECKING:
    from localcloud.github_api import Api

SCHEMA = Path(__file__).resolve().parent.parent / "node_modules" / "@octokit" / "graphql-schema" / "schema.json"


@functools.cache
def schema(path: Path = SCHEMA) -> GraphQLSchema:
    """GitHub's schema (introspection result); `npm ci` installs it."""
    document = json.loads(path.read_text())
    return build_client_schema(document.get("data", document), assume_valid=True)


class GraphQL:
    def __init__(self, api: Api) -> None:
        self.api = api

    def repository(self, info: Any, owner: str, name: str, **_: Any) -> dict[str, Any]:
        """`repository(owner:, name:)`: GitHub answers a missing one with a NOT_FOUND error and null."""
        entry = platform.find_repository(self.api.cloud, "github", f"{owner}/{name}")
        if entry is None:
            raise GraphQLError(
                f"Could not resolve to a Repository with the name '{owner}/{name}'.", extensions={"type": "NOT_FOUND"}
            )
        patterns = sorted(dict(entry.get("protectedBranches", {})))

        def rules(info: Any, first: int | None = None, after: str | None = None, **_: Any) -> dict[str, Any]:
            start = int(after) if after else 0
            shown = patterns[start : start + (first or 100)]
            end = start + len(shown)
            return {
                "nodes": [{"pattern": pattern} for pattern in shown],
                "totalCount": len(patterns),
                "pageInfo": {
                    "endCursor": str(end) if shown else None,
                    "hasNextPage": end < len(patterns),
                    "hasPreviousPage": start > 0,
                },
            }

        return {"id": f"R_local{entry['id']}", "name": name, "nameWithOwner": entry["path"], "branchProtectionRules": rules}

    def execute(self, body: dict[str, Any]) -> dict[str, Any]:
        """GitHub's answer: `data`, and `errors` with GitHub's `type` beside the message."""
        result = graphql_sync(
            schema(),
            str(body.get("query") or ""),
            root_value={"repository": self.repository},
            variable_values=body.get("variables") or {},
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [_github_error(error) for error in result.errors]
        return answer


def _github_error(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = {key: value for key, value in error.formatted.items() if key != "extensions"}
    extensions: dict[str, Any] = dict(error.extensions or {})
    return {"type": extensions.get("type", "INVALID_QUERY"), **formatted}
