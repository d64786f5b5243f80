"""End-to-end proof: the CI file and credential of a stack, run against a DVC project, a local
GCS emulator and a token endpoint that verifies the key's signature."""
