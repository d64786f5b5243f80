"""mlops-ci: one team's DVC remote, CI identity and CI pipeline, as one Pulumi stack.

The program is the package's (`mlops_ci.program.run`), the same a project made from the `pulumi new`
template runs: settings (every problem of the stack file at once, before any resource) → pre-flight
look-ups → the `TeamCi` component → exports (names and URLs only, never key material)."""

from mlops_ci.program import run

run()
