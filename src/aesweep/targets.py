"""What a config's ``_target_`` names, checked before any work: that it imports, and that
the config's arguments fit its signature (names, required ones, simple types).

Hydra's own ``instantiate`` builds it later, in the job; this module only reads the
target's signature, so that a misspelt argument of a user's network fails in the sweep's
first second with one line, not after the other jobs trained.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from aesweep.errors import InputError

_MISSING = object()


def resolve(key: str, path: object) -> Any:
    """The object a dotted ``path`` (``package.module.name``) names, imported.

    Raises
    ------
    InputError
        ``key=path``: not a dotted path, or it does not import.
    """
    if not isinstance(path, str) or "." not in path:
        raise InputError(f"{key}={path!r} must be a dotted path such as package.module.function")
    parts = path.split(".")
    # The longest prefix that is a module is the module, the rest attributes of it: how
    # Hydra's instantiate reads a path (package.module.Class.factory too).
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found = importlib.import_module(module_name)
            break
        except ModuleNotFoundError as err:
            if err.name == module_name and cut > 1:
                continue  # no module of that name: the one above, then an attribute
            raise InputError(
                f"{key}={path!r} cannot be imported ({err}); is its module on the Python path?"
            ) from err
        except ImportError as err:
            raise InputError(f"{key}={path!r} cannot be imported ({err})") from err
    owner = f"module {module_name}"
    for attribute in parts[cut:]:
        if not hasattr(found, attribute):
            raise InputError(f"{key}={path!r}: {owner} has no {attribute!r}")
        found = getattr(found, attribute)
        owner = f"{owner.removeprefix('module ')}.{attribute}"
    return found


def check_call(key: str, config: Mapping[str, Any]) -> Any:
    """Resolve ``config["_target_"]`` and check the other keys against its signature.

    ``key`` names the config node in messages (``arch.model``). Keys that start with ``_``
    are Hydra's own (``_partial_``, ``_convert_``). Returns the target.

    Raises
    ------
    InputError
        One line naming the key and value: an unknown or missing argument, or a value of
        another type than the parameter's annotation.
    """
    if "_target_" not in config:
        raise InputError(f"{key}._target_ is missing: name the function or class to build")
    target = resolve(f"{key}._target_", config["_target_"])
    name = config["_target_"]
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return target  # a builtin without a signature: Hydra's call is the check
    arguments = {k: v for k, v in config.items() if not k.startswith("_")}
    parameters = signature.parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    named = [
        n for n, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    for argument, value in arguments.items():
        if argument not in parameters and not takes_any:
            raise InputError(
                f"{key}.{argument}={value!r}: {name} has no argument {argument!r} "
                f"(it takes {', '.join(named) or 'none'})"
            )
    for parameter in parameters.values():
        required = parameter.default is parameter.empty and parameter.kind in (
            parameter.POSITIONAL_OR_KEYWORD,
            parameter.KEYWORD_ONLY,
        )
        if required and parameter.name not in arguments:
            raise InputError(f"{key}.{parameter.name} is missing: {name} needs it")
    hints = _hints(target, parameters)
    for argument, value in arguments.items():
        hint = hints.get(argument, _MISSING)
        if hint is not _MISSING and _fits(value, hint) is False:
            raise InputError(
                f"{key}.{argument}={value!r}: {name} takes {argument}: {_hint_name(hint)}"
            )
    return target


def _hints(target: Any, parameters: Mapping[str, inspect.Parameter]) -> dict[str, Any]:
    """Each parameter's annotation, evaluated where it can be (a string annotation under
    ``from __future__ import annotations`` may name a type imported only for type checkers:
    that one is left out)."""
    function = target.__init__ if inspect.isclass(target) else target
    namespace = getattr(inspect.unwrap(function), "__globals__", {})
    hints = {}
    for name, parameter in parameters.items():
        annotation = parameter.annotation
        if annotation is parameter.empty:
            continue
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, dict(namespace))  # noqa: S307 - the user's own code
            except Exception:  # noqa: BLE001 - a name only type checkers import
                continue
        hints[name] = annotation
    return hints


def _fits(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` is of type ``hint``; None where this simple check cannot tell."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        answers = [_fits(value, arg) for arg in typing.get_args(hint)]
        return True if True in answers else (None if None in answers else False)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is None or hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        return isinstance(value, list | tuple)
    if inspect.isclass(hint) and issubclass(hint, Enum):
        return value in {m.value for m in hint} or isinstance(value, hint)
    return None


def _hint_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
