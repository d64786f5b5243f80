"""The mlops-ci policy pack: guardrails every team's stack must pass (`pulumi preview --policy-pack policy`)."""
