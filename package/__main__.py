"""The mlops-ci component package's provider: hosts `mlops-ci:index:TeamCi` for programs in other
languages, its schema inferred by Pulumi from the component's type annotations
(pulumi.provider.experimental, as `component_provider_host` does), from this checkout's source."""

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: this package is its source

import pulumi
from pulumi.errors import InputPropertiesError
from pulumi.provider import main
from pulumi.provider.experimental.analyzer import ComponentDefinition
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.provider import ConstructResult
from pulumi.provider.server import ComponentInitError

from mlops_ci import __version__
from mlops_ci.components.package import TeamCi


class Provider(ComponentProvider):
    """Pulumi's component provider, except that a configuration or pre-flight error reaches the
    program as its one message (every problem listed), not as a Python traceback."""

    def map_inputs(self, inputs: pulumi.Inputs, component_def: ComponentDefinition) -> pulumi.Inputs:
        """Pulumi's mapping drops an input the schema does not name (`bucketname`, `pythonversion`):
        refused here, every one in one error, with the names the component takes."""
        unknown = sorted(set(inputs) - set(component_def.inputs))
        if unknown:
            raise InputPropertiesError(
                f"{component_def.name}: unknown inputs {', '.join(map(repr, unknown))};"
                f" the inputs are {', '.join(sorted(component_def.inputs))}",
                [],
            )
        return super().map_inputs(inputs, component_def)

    def construct(
        self, name: str, resource_type: str, inputs: pulumi.Inputs, options: pulumi.ResourceOptions | None = None
    ) -> ConstructResult:
        try:
            return super().construct(name, resource_type, inputs, options)
        except ComponentInitError as error:
            if isinstance(error.inner, pulumi.RunError):
                raise InputPropertiesError(str(error.inner), []) from None
            raise


def serve(args: list[Any]) -> None:
    main(Provider([TeamCi], "mlops-ci", version=__version__), args)


if __name__ == "__main__":
    serve(sys.argv[1:])
