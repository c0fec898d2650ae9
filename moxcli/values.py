"""Value classes as `@dataclass` declares them, made without the dataclasses module (start-up).

Importing dataclasses (it imports inspect, ast, dis, tokenize) costs about 7 ms, and each
class it makes about 0.5 ms more (it compiles six methods and computes a signature for the
docstring): 25 classes on the path of `moxcli verifydata` were half of its start-up beyond
bare Python (docs/development.md, Start-up). Here a class costs one small compiled
`__init__`; equality, hashing, repr and immutability are shared methods.

Modules write ``from moxcli.values import dataclass, field`` and declare their classes as
before. Type checkers see the real `dataclasses.dataclass` (so fields, defaults and
constructor calls are checked as before); at run time the decorator below makes a class
with the same behaviour for what moxcli uses: fields in annotation order with defaults and
``field(default=..., default_factory=..., repr=...)``, keyword or positional construction,
``__eq__`` by value within the same class, ``frozen=True`` (assignment raises
AttributeError, hashable by value) or mutable (unhashable, as a dataclass with eq),
``slots=True`` (a new class with ``__slots__``, as dataclasses makes it), a repr like the
dataclass's, and ``__match_args__``. Not supported, and refused when declared:
``__post_init__``, ``order``, ``kw_only``, ``InitVar``/``ClassVar`` fields and inheritance
from another value class. ``replace(obj, **changes)``, ``fields(cls)`` and ``asdict(obj)``
stand in for the dataclasses functions.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs start-up
if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
    from dataclasses import field as field
    from typing import Any, TypeVar

    T = TypeVar("T")
else:
    __all__ = ["asdict", "dataclass", "field", "fields", "replace"]

    _MISSING = object()

    class _Field:
        __slots__ = ("default", "default_factory", "repr")

        def __init__(self, default: Any, default_factory: Any, repr: bool) -> None:
            self.default = default
            self.default_factory = default_factory
            self.repr = repr

    def field(*, default: Any = _MISSING, default_factory: Any = _MISSING, repr: bool = True) -> Any:
        """A field's default (or a factory called for each new object) and whether repr shows it."""
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        return _Field(default, default_factory, repr)

    def dataclass(cls: Any = None, /, *, frozen: bool = False, slots: bool = False) -> Any:
        """``@dataclass``, ``@dataclass(frozen=True, slots=True)``: see the module docstring."""
        if cls is None:
            return lambda c: _make(c, frozen, slots)
        return _make(cls, frozen, slots)

    def _make(cls: Any, frozen: bool, slots: bool) -> Any:
        for base in cls.__mro__[1:]:
            if "__value_fields__" in base.__dict__:
                raise TypeError(f"{cls.__qualname__}: value classes do not inherit fields")
        if "__post_init__" in cls.__dict__:
            raise TypeError(f"{cls.__qualname__}: __post_init__ is not supported")
        names: list[str] = []
        params: list[str] = []
        body: list[str] = []
        env: dict[str, Any] = {"_MISSING": _MISSING}
        shown: list[str] = []
        defaulted = False
        # The class's own annotations (inspect.get_annotations would import inspect: the cost avoided here).
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
            if "ClassVar" in str(annotation) or "InitVar" in str(annotation):
                raise TypeError(f"{cls.__qualname__}.{name}: ClassVar and InitVar are not supported")
            spec = cls.__dict__.get(name, _MISSING)
            if not isinstance(spec, _Field):
                spec = _Field(spec, _MISSING, True)
            if name in cls.__dict__:
                delattr(cls, name)
            if spec.default is not _MISSING and not slots:
                setattr(cls, name, spec.default)  # as dataclasses: the default is a class attribute
            if spec.default_factory is not _MISSING:
                defaulted = True
                env[f"_factory_{name}"] = spec.default_factory
                params.append(f"{name}=_MISSING")
                value = f"_factory_{name}() if {name} is _MISSING else {name}"
            elif spec.default is not _MISSING:
                defaulted = True
                env[f"_default_{name}"] = spec.default
                params.append(f"{name}=_default_{name}")
                value = name
            else:
                if defaulted:
                    raise TypeError(f"{cls.__qualname__}: non-default argument {name!r} follows default argument")
                params.append(name)
                value = name
            names.append(name)
            if spec.repr:
                shown.append(name)
            if not slots:
                body.append(f"    _d[{name!r}] = {value}")
            elif frozen:
                body.append(f"    _set(self, {name!r}, {value})")
            else:
                body.append(f"    self.{name} = {value}")
        if slots:
            ns = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
            ns["__slots__"] = tuple(names)
            qualname = cls.__qualname__
            cls = type(cls)(cls.__name__, cls.__bases__, ns)
            cls.__qualname__ = qualname
            env["_set"] = object.__setattr__
        start = "    pass\n" if slots else "    _d = self.__dict__\n"
        source = f"def __init__(self, {', '.join(params)}):\n{start}" + "\n".join(body)
        exec(source, env)  # one small function per class: the only code generated
        init = env["__init__"]
        init.__qualname__ = f"{cls.__qualname__}.__init__"
        cls.__init__ = init
        cls.__value_fields__ = tuple(names)
        cls.__value_repr__ = tuple(shown)
        cls.__match_args__ = tuple(names)
        cls.__eq__ = _eq
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = _repr
        if frozen:
            cls.__setattr__ = _frozen_setattr
            cls.__delattr__ = _frozen_delattr
            if "__hash__" not in cls.__dict__:
                cls.__hash__ = _hash
            if slots:  # pickle and copy set slot state with setattr otherwise
                cls.__getstate__ = _values
                cls.__setstate__ = _set_state
        elif "__hash__" not in cls.__dict__:
            cls.__hash__ = None  # mutable with value equality: unhashable, as a dataclass
        return cls

    def _values(obj: Any) -> tuple[Any, ...]:
        return tuple([getattr(obj, n) for n in obj.__value_fields__])

    def _set_state(obj: Any, state: tuple[Any, ...]) -> None:
        for name, value in zip(obj.__value_fields__, state, strict=True):
            object.__setattr__(obj, name, value)

    def _eq(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    def _hash(self: Any) -> int:
        return hash(_values(self))

    def _repr(self: Any) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__value_repr__)
        return f"{self.__class__.__qualname__}({shown})"

    def _frozen_setattr(self: Any, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def _frozen_delattr(self: Any, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")


def fields(cls: type) -> tuple[str, ...]:
    """The field names of a value class, in order (dataclasses.fields, names only)."""
    return cls.__value_fields__  # type: ignore[attr-defined]


def replace(obj: T, **changes: Any) -> T:
    """A copy of ``obj`` with some fields changed (dataclasses.replace)."""
    names = type(obj).__value_fields__  # type: ignore[attr-defined]
    unknown = set(changes) - set(names)
    if unknown:
        raise TypeError(f"{type(obj).__qualname__} has no field {sorted(unknown)[0]!r}")
    return type(obj)(**{n: changes[n] if n in changes else getattr(obj, n) for n in names})


def asdict(obj: Any) -> Any:
    """A value object as a dict, recursively through value objects, lists, tuples and dicts;
    other values deep-copied (dataclasses.asdict)."""
    names = getattr(type(obj), "__value_fields__", None)
    if names is not None:
        return {n: asdict(getattr(obj, n)) for n in names}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a named tuple: positional
        return type(obj)(*[asdict(v) for v in obj])
    if isinstance(obj, (list, tuple)):
        return type(obj)(asdict(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((asdict(k), asdict(v)) for k, v in obj.items())
    import copy

    return copy.deepcopy(obj)
