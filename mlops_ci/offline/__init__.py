"""Offline evaluation of the stack: the same program as `pulumi up`, against Pulumi's mocks."""
