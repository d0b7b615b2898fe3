"""The one codec for everything that crosses into a backend: cattrs unstructure + msgpack.

Backends store bytes and never decode them, so every backend (ours or a user's) stores the same bytes
and needs no codec of its own. What round-trips, exactly:

- ``None``, ``bool``, ``str``, ``bytes`` (``bytearray``/``memoryview`` come back as ``bytes``),
  ``float`` (64-bit; ``nan``, ``inf`` and ``-0.0`` keep their bits), ``list`` and ``dict``.
- ``int`` of any size. Within msgpack's native range (``-2**63 .. 2**64-1``) it is a plain msgpack int;
  past it, an extension value (code 2) holding the signed big-endian bytes, so huge ints round-trip
  exactly instead of failing (other msgpack readers see an opaque extension value, not a number).
- ``tuple`` is stored as a msgpack array and comes back as a ``list`` (msgpack has one sequence type).
- attrs classes registered with :meth:`Codec.register`: an extension value (code 1) carrying the
  registered name and the cattrs-unstructured fields; decoding structures the same class again, so typed
  fields (enums, nested attrs classes, tuples) come back as their declared types.

Anything else (a ``set``, a ``datetime``, an unregistered class) raises ``TypeError`` naming the state
key and the path inside the value, instead of a msgpack error from deep inside the packer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs
import cattrs
import msgpack
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from ._task_record import TaskRecord

__all__ = [
    "Codec",
    "decode",
    "decode_task_record",
    "default_codec",
    "encode",
    "encode_task_record",
    "register",
]

T = TypeVar("T")

#: msgpack extension code of a registered attrs instance: payload is msgpack ``[name, fields]``.
EXT_ATTRS: Final = 1
#: msgpack extension code of an int past 64 bits: payload is the signed big-endian two's complement.
EXT_BIGINT: Final = 2

_NATIVE_LEAVES: Final = (type(None), bool, int, float, str, bytes, bytearray, memoryview)


class Codec:
    """A cattrs converter plus the registry of attrs classes that round-trip as themselves.

    One instance (``default_codec``) serves the whole process through the module functions
    ``encode``/``decode``/``register``; a test that wants its own registry makes its own ``Codec``.
    """

    def __init__(self) -> None:
        self.converter: Final = cattrs.Converter()
        self._by_name: dict[str, type[Any]] = {}
        self._by_class: dict[type[Any], str] = {}
        # A field typed ``object`` holds any codec value as decoded (registered instances included).
        # (A predicate, not ``register_structure_hook(object, ...)``: that would shadow every class.)
        self.converter.register_structure_hook_func(lambda t: t is object, lambda value, _type: value)

    # -- registration ------------------------------------------------------------------------------

    def register(self, cls: type[T], *, name: str | None = None) -> type[T]:
        registered = cls
        """Make instances of the attrs class ``cls`` round-trip as ``cls``; usable as a decorator.

        ``name`` (default ``module.QualName``) is what is stored, so keep it stable across releases
        or values written by an old process will not decode in a new one.
        """
        if not attrs.has(cls):  # a TypeGuard: it narrows cls, hence `registered`
            raise TypeError(f"{cls!r} is not an attrs class; only attrs classes can be registered")
        name = name or f"{cls.__module__}.{cls.__qualname__}"
        known = self._by_name.get(name)
        if known is not None and known is not cls:
            raise ValueError(f"codec name {name!r} is already registered for {known!r}")
        self._by_name[name] = cls
        self._by_class[cls] = name
        base_unstructure = make_dict_unstructure_fn(cls, self.converter)
        base_structure = make_dict_structure_fn(cls, self.converter)

        def unstructure(obj: Any) -> msgpack.ExtType:
            # Nested registered instances are already ExtTypes here, so msgpack packs them natively.
            payload = msgpack.packb([name, base_unstructure(obj)], default=self._default)
            return msgpack.ExtType(EXT_ATTRS, payload)

        def structure(value: Any, _type: Any) -> Any:
            # A nested registered field was already decoded into an instance by the ext hook.
            if isinstance(value, cls):
                return value
            return base_structure(value, cls)

        self.converter.register_unstructure_hook(cls, unstructure)
        self.converter.register_structure_hook(cls, structure)
        return registered

    def is_registered(self, cls: type[Any]) -> bool:
        return cls in self._by_class

    # -- values ------------------------------------------------------------------------------------

    def encode(self, value: Any, *, key: str | None = None) -> bytes:
        """Serialize ``value``; ``key`` (the state key) only improves the error message."""
        try:
            data: bytes = msgpack.packb(value, default=self._default)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(self._explain(value, key, exc)) from exc
        return data

    def decode(self, data: bytes) -> Any:
        """The value ``encode`` was given (tuples come back as lists)."""
        return msgpack.unpackb(data, ext_hook=self._ext_hook, strict_map_key=False)

    def _default(self, obj: Any) -> Any:
        """msgpack calls this for anything it cannot pack natively (and for ints past 64 bits)."""
        if isinstance(obj, int) and not isinstance(obj, bool):
            length = (obj.bit_length() + 8) // 8
            return msgpack.ExtType(EXT_BIGINT, int(obj).to_bytes(length, "big", signed=True))
        if type(obj) in self._by_class:
            return self.converter.unstructure(obj)
        if attrs.has(type(obj)):
            raise TypeError(
                f"attrs class {type(obj).__qualname__} is not registered with the codec:"
                " call mcpvisor.backends.register(cls) once at import time"
            )
        raise TypeError(f"cannot serialize an object of type {type(obj).__qualname__}")

    def _ext_hook(self, code: int, payload: bytes) -> Any:
        if code == EXT_BIGINT:
            return int.from_bytes(payload, "big", signed=True)
        if code == EXT_ATTRS:
            name, fields = msgpack.unpackb(payload, ext_hook=self._ext_hook, strict_map_key=False)
            cls = self._by_name.get(name)
            if cls is None:
                raise ValueError(
                    f"stored value is a {name!r}, which is not registered with this codec:"
                    " register the class before reading values written with it"
                )
            return self.converter.structure(fields, cls)
        raise ValueError(f"unknown msgpack extension code {code} in a stored value")

    def _explain(self, value: Any, key: str | None, exc: BaseException) -> str:
        where = f"value for key {key!r}" if key is not None else "value"
        path, culprit = self._find_culprit(value, "")
        if culprit is None:
            return f"{where} is not serializable: {exc}"
        inside = f" at {path}" if path else ""
        return (
            f"{where} is not serializable{inside}: {type(culprit).__qualname__} is not supported"
            " (use None, bool, int, float, str, bytes, list, dict or a registered attrs class;"
            " or keep it request-local with serializable=False)"
        )

    def _find_culprit(self, value: Any, path: str) -> tuple[str, Any]:
        """The first unserializable leaf and its path, for the error message only (not a hot path)."""
        if isinstance(value, _NATIVE_LEAVES):
            return path, None
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, _NATIVE_LEAVES):
                    return f"{path}[{k!r}] (as a dict key)", k
                found = self._find_culprit(v, f"{path}[{k!r}]")
                if found[1] is not None:
                    return found
            return path, None
        if isinstance(value, list | tuple):
            for i, v in enumerate(value):
                found = self._find_culprit(v, f"{path}[{i}]")
                if found[1] is not None:
                    return found
            return path, None
        if type(value) in self._by_class:
            for field in attrs.fields(type(value)):
                item = getattr(value, field.name)
                try:
                    msgpack.packb(self.converter.unstructure(item), default=self._default)
                except (TypeError, ValueError, OverflowError):
                    return self._find_culprit(item, f"{path}.{field.name}")
            return path, None
        return path, value

    # -- task records ------------------------------------------------------------------------------

    def encode_task_record(self, record: TaskRecord) -> bytes:
        """A ``TaskRecord`` as one blob, for a backend that stores records whole."""
        data: bytes = msgpack.packb(self.converter.unstructure(record))
        return data

    def decode_task_record(self, data: bytes) -> TaskRecord:
        return self.converter.structure(msgpack.unpackb(data), TaskRecord)


#: The process-wide codec the runtime uses.
default_codec: Final = Codec()

encode: Final[Callable[..., bytes]] = default_codec.encode
decode: Final[Callable[[bytes], Any]] = default_codec.decode
encode_task_record: Final[Callable[[TaskRecord], bytes]] = default_codec.encode_task_record
decode_task_record: Final[Callable[[bytes], TaskRecord]] = default_codec.decode_task_record


@functools.wraps(default_codec.register)
def register(cls: type[T], *, name: str | None = None) -> type[T]:
    """Register an attrs class with the process-wide codec (see :meth:`Codec.register`)."""
    return default_codec.register(cls, name=name)
