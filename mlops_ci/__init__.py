"""mlops-ci: one ML team's DVC remote on Google Cloud Storage, its CI identity and its CI pipeline
(GitHub Actions or GitLab CI), as one Pulumi stack."""

# The release: the wheel's version (pyproject.toml reads it), named in CHANGELOG.md and in the
# first line of every job script the stack commits (`.mlops-ci/<stack>.py`).
__version__ = "0.1.0"
