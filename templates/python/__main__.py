"""${PROJECT}: one ML team's DVC remote, CI identity and CI pipeline, as one Pulumi stack (mlops-ci).

`run()` is the whole program: the settings (every problem of the stack's mlops-ci:, gcp: and
github:/gitlab: keys at once, before any resource) → the pre-flight look-ups → the `TeamCi`
component → the exports (names and URLs only, never key material)."""

from mlops_ci.program import run

run()
