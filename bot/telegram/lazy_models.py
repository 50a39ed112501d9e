"""aiogram imported with its Bot API models built when first used, not all at import.

aiogram declares its 450-odd types with pydantic's `defer_build`, then builds every one at
import: `aiogram/types/__init__.py` rebuilds each with a namespace that resolves the names
their annotations import only for type checkers. That is ≈ 110 MB of validators and
serializers in pydantic-core (aiogram issue 1513), most of the bot's memory, for a few dozen
models it ever meets. `import_aiogram` skips those rebuilds and gives each aiogram module the
names its models' annotations use, so pydantic builds a model (with what it contains) the
first time it validates or dumps one, from whatever model asks for it first: an Update, a
method, a method's `Response[...]`.

Call it before anything imports aiogram. If aiogram is already imported, or no longer
rebuilds its types this way, nothing changes and every model is built at import as before.
"""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any

from pydantic import BaseModel

_NAME = re.compile(r"[A-Za-z_]\w*")


def import_aiogram() -> None:
    if "aiogram" in sys.modules:
        return
    namespace: dict[str, Any] | None = None  # the one aiogram passes to each type's rebuild
    rebuild = BaseModel.__dict__["model_rebuild"]

    def keep_namespace(
        cls: type[BaseModel], *, _types_namespace: dict[str, Any] | None = None, **kwargs: Any
    ) -> bool | None:
        nonlocal namespace
        if _types_namespace is None or not cls.__module__.startswith("aiogram.types."):
            # Any other rebuild (pydantic's own, of generic models) goes on as it would.
            return rebuild.__func__(cls, _types_namespace=_types_namespace, **kwargs)
        namespace = _types_namespace
        return None

    BaseModel.model_rebuild = classmethod(keep_namespace)  # type: ignore[method-assign,assignment]
    try:
        importlib.import_module("aiogram")
    finally:
        BaseModel.model_rebuild = rebuild  # type: ignore[method-assign]
    if namespace is not None:
        _resolvable(namespace)


def _resolvable(namespace: dict[str, Any]) -> None:
    """Puts in each aiogram module the names its models' annotations use that it imports only
    for type checkers: pydantic looks them up in the module of the model it builds."""
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("aiogram."):
            continue
        names = vars(module)
        for model in list(names.values()):
            if not _declared_here(model, module_name):
                continue
            for annotation in _annotations(model):
                for name in _NAME.findall(annotation):
                    if name in namespace:
                        names.setdefault(name, namespace[name])


def _annotations(model: type[BaseModel]) -> list[str]:
    """A model's own annotations and those it inherits, which pydantic resolves again in the
    module of the model it builds."""
    return [
        annotation
        for cls in model.__mro__
        for annotation in vars(cls).get("__annotations__", {}).values()
        if isinstance(annotation, str)
    ]


def _declared_here(value: object, module_name: str) -> bool:
    return (
        isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == module_name
        and not value.__pydantic_complete__
    )
