# Copyright (c) OpenMMLab. All rights reserved.
import importlib
from typing import Callable, Dict


def lazy_getattr(package: str, table: Dict[str, str]) -> Callable:
    """A module ``__getattr__`` (PEP 562) importing names on first access.

    Lets a package keep light imports (numpy-only tools) while exporting
    names whose modules import torch / mmengine.

    Args:
        package (str): The package's ``__name__``.
        table (dict[str, str]): Public name -> relative module defining it.

    Returns:
        Callable: The ``__getattr__`` to assign in the package.
    """

    def __getattr__(name: str):
        if name not in table:
            raise AttributeError(
                f'module {package!r} has no attribute {name!r}')
        module = importlib.import_module(table[name], package)
        value = getattr(module, name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__
