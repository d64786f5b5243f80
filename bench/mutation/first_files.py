"""pytest plugin of the constants' runs (`-p bench.mutation.first_files`): the test files named by `--first`, in
that order, run before the rest of the tier, which keeps pytest's order. Naming a file on the command line before
its directory does not do it: pytest 8 collects the file once, in the directory's order."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--first", action="append", default=[], help="a test file to run before the others (repeatable)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    first: list[str] = config.option.first  # `--first`'s values, a list (its default) of strings
    rank = {file: index for index, file in enumerate(dict.fromkeys(first))}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest in pytest's order
