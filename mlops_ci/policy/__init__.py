"""The policy pack's rules (the pack itself, `policy/` of a project, serves them to the engine)."""
