"""The CI files the stack commits: rendered from the templates in `templates/`, and the next steps it prints."""
