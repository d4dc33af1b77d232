"""What can be sent to a worker: cloudpickle with routine-aware rules, and the pre-flight check.

cloudpickle pickles closures, lambdas and classes of ``__main__`` by value, so logic written
inline works on remote executors. A routine's activation policy and error handler are used
only by the driver's scheduler and are left behind. loguru's logger goes by reference, so
logic logs through the worker's own sinks instead of a copy of the driver's.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routilux_kernel.core.errors import ExecutorError
from routilux_kernel.core.lazy_logger import load_loguru

if TYPE_CHECKING:
    from routilux_kernel.core.routine import Routine


#: Routine attributes only the driver uses (scheduling); never shipped to workers.
_DRIVER_ONLY = ("_activation_policy", "_error_handler")

#: How a routine's private attributes are named in pre-flight messages.
_ROUTINE_LABELS = {"_logic": "logic (set_logic)", "_config": "config"}

_pickler_class: type | None = None


def require_cloudpickle() -> Any:
    """The cloudpickle module, or an ExecutorError saying how to install it."""
    try:
        import cloudpickle
    except ImportError:
        raise ExecutorError(
            "remote executors (process, dask) need cloudpickle, which is not installed: "
            "pip install cloudpickle (from a checkout: pip install -e '.[process]')"
        ) from None
    return cloudpickle


def _pickler() -> type:
    """cloudpickle's Pickler, taught to leave a routine's driver-only attributes behind."""
    global _pickler_class
    if _pickler_class is None:
        from routilux_kernel.core.routine import Routine

        base = require_cloudpickle().Pickler

        class RemotePickler(base):  # type: ignore[misc, valid-type]
            def reducer_override(self, obj: Any) -> Any:
                if _is_process_logger(obj):
                    # By value, loguru would copy the driver's sinks into the worker.
                    return (_worker_logger, (obj._options,))
                if isinstance(obj, Routine) and type(obj).__getstate__ is object.__getstate__:
                    state = dict(obj.__dict__)
                    for name in _DRIVER_ONLY:
                        if name in state:
                            state[name] = None
                    return (_new_routine, (type(obj),), state)
                return super().reducer_override(obj)

        _pickler_class = RemotePickler
    return _pickler_class


def _new_routine(cls: Any) -> Any:
    return cls.__new__(cls)


def _is_process_logger(obj: Any) -> bool:
    """Whether ``obj`` is the process-wide loguru logger or one bound from it (sharing its
    core, the sinks). No such logger exists until loguru was imported, and importing it only
    to answer no would cost every worker 50 ms at start."""
    global _logger_class
    logger_class = _logger_class
    if logger_class is None:
        # While another thread imports loguru, its module is in sys.modules without the
        # class yet: then no instance of it exists either.
        logger_class = getattr(sys.modules.get("loguru._logger"), "Logger", None)
        if logger_class is None:
            return False
        _logger_class = logger_class  # called for every object pickled: looked up once
    return isinstance(obj, logger_class) and getattr(obj, "_core", None) is getattr(
        load_loguru(), "_core", None
    )


_logger_class: type | None = None


def _worker_logger(options: tuple[Any, ...]) -> Any:
    """The receiving process's own loguru logger, with the sender's bound options."""
    from loguru._logger import Logger

    return Logger(load_loguru()._core, *options)


def dumps(obj: Any, skip: frozenset[int] = frozenset()) -> bytes:
    """Pickle with cloudpickle (closures and ``__main__`` classes go by value).

    Objects whose ``id`` is in ``skip`` are left out (for probing parts of a routine).
    """
    buffer = io.BytesIO()
    pickler = _pickler()(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    if skip:
        pickler.persistent_id = lambda obj: id(obj) if id(obj) in skip else None
    pickler.dump(obj)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    return require_cloudpickle().loads(data)


#: Argument types that hold no reference to code: the C pickler writes them as cloudpickle would.
_PLAIN_ARGUMENTS = frozenset({bytes, str, int, float, bool, type(None)})
#: Callables already classified: True when pickled by their importable name.
_by_reference: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def dumps_call(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """Pickle ``(fn, args)`` for a worker, which reads it with :func:`loads`.

    The kernel's own remote calls are an importable function and plain arguments (the
    activation already pickled to bytes): the C pickler writes exactly what cloudpickle
    would for them, at a fraction of the cost. Anything else goes through :func:`dumps`.
    """
    if all(type(arg) in _PLAIN_ARGUMENTS for arg in args) and _pickled_by_reference(fn):
        return pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
    return dumps((fn, args))


def _pickled_by_reference(fn: Any) -> bool:
    try:
        return _by_reference[fn]
    except (KeyError, TypeError):  # TypeError: not weakly referenceable (never cached)
        pass
    from cloudpickle.cloudpickle import _should_pickle_by_reference

    try:
        found = bool(_should_pickle_by_reference(fn))
    except Exception:  # noqa: BLE001 - not a function or class cloudpickle knows: by value
        found = False
    try:
        _by_reference[fn] = found
    except TypeError:
        pass
    return found


def pickling_problems(routine: Routine, routine_id: str) -> list[str]:
    """Why ``routine`` cannot be sent to a worker: one line per culprit, [] if it can.

    Walks the routine's attributes, the closure cells, globals and defaults of its logic,
    and containers, down to the values that refuse to pickle.
    """
    try:
        dumps(routine)
        return []
    except Exception as exc:
        failure = exc
    problems: list[str] = []
    _find_culprits(routine, f"routine {routine_id!r}:", frozenset({id(routine)}), problems, 0)
    if not problems:
        problems.append(
            f"routine {routine_id!r} cannot be pickled: {type(failure).__name__}: {failure}"
        )
    return problems


def _find_culprits(
    obj: Any, path: str, ancestors: frozenset[int], problems: list[str], depth: int
) -> bool:
    found = False
    for label, child in _parts_of(obj):
        if id(child) in ancestors:
            continue
        try:
            dumps(child, skip=ancestors)
            continue
        except Exception as exc:
            error = exc
        where = f"{path} {label}"
        inner = depth < 8 and _find_culprits(
            child, f"{where} ->", ancestors | {id(child)}, problems, depth + 1
        )
        if not inner:
            kind = f"{type(child).__module__}.{type(child).__qualname__}"
            problems.append(f"{where} ({kind}) cannot be pickled: {error}")
        found = True
    return found


def _parts_of(obj: Any) -> list[tuple[str, Any]]:
    """The labelled values that pickling ``obj`` would pickle in turn."""
    from routilux_kernel.core.routine import Routine

    if isinstance(obj, types.MethodType):
        return [("bound to", obj.__self__), ("method", obj.__func__)]
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        parts = [
            (f"closure variable {name!r}", cell.cell_contents)
            for name, cell in zip(code.co_freevars, obj.__closure__ or (), strict=False)
            if _cell_filled(cell)
        ]
        names = set(code.co_names)
        for const in code.co_consts:  # names used by nested functions and comprehensions
            if isinstance(const, types.CodeType):
                names.update(const.co_names)
        parts += [
            (f"global {n!r}", obj.__globals__[n]) for n in sorted(names) if n in obj.__globals__
        ]
        parts += [(f"default {i}", v) for i, v in enumerate(obj.__defaults__ or ())]
        return parts
    if isinstance(obj, dict):
        return [(f"[{key!r}]", value) for key, value in obj.items()]
    if isinstance(obj, list | tuple | set | frozenset):
        return [(f"[{index}]", value) for index, value in enumerate(obj)]
    if isinstance(obj, type) and _sent_by_value(obj):  # its attributes travel with it
        return [
            (f"class attribute {name!r}", value)
            for name, value in vars(obj).items()
            if not (name.startswith("__") and name.endswith("__"))
        ]
    if isinstance(obj, type | types.ModuleType) or _is_stdlib(type(obj)):
        return []  # the object itself is the culprit a user can act on, not its internals
    attributes = getattr(obj, "__dict__", None)
    if not isinstance(attributes, dict):
        return []
    parts = []
    if _sent_by_value(type(obj)):  # a class of __main__ or local to a function
        parts.append((f"class {type(obj).__qualname__}", type(obj)))
    for name, value in attributes.items():
        if isinstance(obj, Routine) and name in _DRIVER_ONLY:
            continue
        label = _ROUTINE_LABELS.get(name) if isinstance(obj, Routine) else None
        parts.append((label or f"attribute {name!r}", value))
    return parts


def _sent_by_value(kind: type) -> bool:
    """True when cloudpickle pickles the class itself (with its attributes), not its name."""
    try:
        from cloudpickle.cloudpickle import _should_pickle_by_reference
    except ImportError:  # pragma: no cover - a cloudpickle without it: no class walk
        return False
    try:
        return not _should_pickle_by_reference(kind)
    except Exception:  # noqa: BLE001 - a class it cannot classify is not walked
        return False


def _is_stdlib(kind: type) -> bool:
    return kind.__module__.partition(".")[0].lstrip("_") in sys.stdlib_module_names


def _cell_filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True
