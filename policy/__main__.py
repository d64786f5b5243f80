"""Entry point the Pulumi CLI runs for `--policy-pack policy`: it serves the rules to the engine.

The CLI runs this folder as a script with the folder first on `sys.path`, hence the top-level
`rules` import; tests and the offline check import `policy.rules` instead.
"""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import POLICIES

PolicyPack("mlops-ci", policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
