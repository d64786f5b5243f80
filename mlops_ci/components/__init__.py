"""mlops-ci components: one ComponentResource per concern."""
