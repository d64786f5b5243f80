"""Entry point the Pulumi CLI runs for `--policy-pack policy`: it serves the rules to the engine.

The CLI runs this folder as a script with the folder first on `sys.path`; the rules are the
package's (`mlops_ci.policy.rules`), which ships one directory up, beside the program.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from mlops_ci.policy.rules import POLICIES

PolicyPack("mlops-ci", policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
