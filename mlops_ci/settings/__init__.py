"""The stack's settings: the config schema (declared once), the rules, the stack file as written, the loader."""
