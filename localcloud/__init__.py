"""mlops-ci's local cloud: the `gcp`, `github` and `gitlab` resource plugins the real Pulumi
engine runs in tests, and the local components their side effects land in (a GCS emulator, a
token endpoint, bare git repositories, a CI variable store), under `$MLOPS_CI_LOCAL`."""
