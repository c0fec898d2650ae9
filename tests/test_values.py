"""moxcli.values: classes declared with its `dataclass` behave as the real dataclasses would
(equality, hashing, repr, immutability, defaults, construction errors), made without the
dataclasses module (start-up, issue 13)."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from moxcli import values


def _declare(decorate, field):
    """The same class bodies, declared with a given decorator and field function."""

    @decorate(frozen=True)
    class Point:
        x: int
        y: int = 0
        tags: tuple[str, ...] = ()

    @decorate
    class Bag:
        name: str
        items: list[int] = field(default_factory=list)
        secret: str | None = field(default=None, repr=False)

        @property
        def size(self) -> int:
            return len(self.items)

    @decorate(frozen=True)
    class Empty:
        pass

    @decorate(slots=True)
    class Slotted:
        name: str
        points: list[Point] = field(default_factory=list)
        count: int = 0

    @decorate(frozen=True, slots=True)
    class FrozenSlotted:
        a: int
        b: tuple[int, ...] = (1,)

    return Point, Bag, Empty, Slotted, FrozenSlotted


REAL = _declare(dataclasses.dataclass, dataclasses.field)
OURS = _declare(values.dataclass, values.field)
# Module-level classes for pickle (which finds a class by its qualified name).
Pickled = values.dataclass(frozen=True)(type("Pickled", (), {"__annotations__": {"a": "int"}, "__module__": __name__}))
PickledSlots = values.dataclass(frozen=True, slots=True)(
    type("PickledSlots", (), {"__annotations__": {"a": "int", "b": "str"}, "__module__": __name__})
)


CALLS = [
    ((1,), {}),
    ((1, 2), {}),
    ((), {"x": 1, "y": 2, "tags": ("a",)}),
    ((1,), {"tags": ("a", "b")}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS, ids=repr)
def test_frozen_class_behaves_as_the_dataclass(args, kwargs):
    real, ours = REAL[0](*args, **kwargs), OURS[0](*args, **kwargs)
    assert repr(ours) == repr(real)
    assert (ours.x, ours.y, ours.tags) == (real.x, real.y, real.tags)
    assert ours == OURS[0](*args, **kwargs) and hash(ours) == hash(OURS[0](*args, **kwargs))
    assert ours != OURS[0](99) and hash(ours) == hash((ours.x, ours.y, ours.tags))
    assert (ours == real) is False  # another class: NotImplemented both ways, as between two dataclasses
    with pytest.raises(AttributeError):
        ours.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del ours.y  # type: ignore[misc]
    assert OURS[0].__match_args__ == REAL[0].__match_args__ == ("x", "y", "tags")
    point = OURS[0]
    match ours:
        case point(x, y):
            assert (x, y) == (real.x, real.y)
        case _:
            pytest.fail("no match")


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, (), 4), {}), ((1,), {"x": 2}), ((1,), {"z": 2})],
    ids=repr,
)
def test_bad_construction_raises_type_error_as_the_dataclass(args, kwargs):
    with pytest.raises(TypeError):
        REAL[0](*args, **kwargs)
    with pytest.raises(TypeError):
        OURS[0](*args, **kwargs)


def test_mutable_class_behaves_as_the_dataclass():
    real, ours = REAL[1]("a"), OURS[1]("a")
    assert repr(ours) == repr(real) == "_declare.<locals>.Bag(name='a', items=[])"
    ours.items.append(1)
    assert OURS[1]("b").items == [] and ours.size == 1  # a new list for each object
    ours.name = "c"
    assert ours == OURS[1]("c", [1]) and ours != OURS[1]("c", [2])
    assert ours != OURS[1]("c", [1], "x") and REAL[1]("c", [1]) != REAL[1]("c", [1], "x")  # repr=False still compares
    assert OURS[1].__hash__ is None and REAL[1].__hash__ is None
    with pytest.raises(TypeError):
        hash(ours)
    assert OURS[1]("a", secret="x").secret == "x" and OURS[1].secret is None  # the default is a class attribute
    assert not hasattr(OURS[1], "items") and not hasattr(REAL[1], "items")  # a factory's is not


def test_class_without_fields():
    assert OURS[2]() == OURS[2]() and repr(OURS[2]()) == repr(REAL[2]()) == "_declare.<locals>.Empty()"
    with pytest.raises(TypeError):
        OURS[2](1)


def test_slots_classes_behave_as_the_dataclasses():
    real, ours = REAL[3]("n", [REAL[0](1)]), OURS[3]("n", [OURS[0](1)])
    assert repr(ours) == repr(real)
    assert not hasattr(ours, "__dict__") and OURS[3].__slots__ == REAL[3].__slots__ == ("name", "points", "count")
    ours.count += 1
    assert ours == OURS[3]("n", [OURS[0](1)], 1) and OURS[3].__hash__ is None
    with pytest.raises(AttributeError):
        ours.other = 1  # type: ignore[attr-defined]
    assert values.asdict(ours) == dataclasses.asdict(REAL[3]("n", [REAL[0](1)], 1))
    frozen = OURS[4](2)
    assert repr(frozen) == repr(REAL[4](2)) and hash(frozen) == hash(OURS[4](2)) and frozen.b == (1,)
    with pytest.raises(AttributeError):
        frozen.a = 3  # type: ignore[misc]
    assert copy.copy(frozen) == frozen and copy.deepcopy(frozen) == frozen
    assert pickle.loads(pickle.dumps(PickledSlots(1, "x"))) == PickledSlots(1, "x")


def test_asdict_is_the_dataclasses_one():
    real = REAL[1]("a", [1, 2], "s")
    real.items.append(REAL[0](3, tags=("t",)))  # type: ignore[arg-type]
    ours = OURS[1]("a", [1, 2], "s")
    ours.items.append(OURS[0](3, tags=("t",)))  # type: ignore[arg-type]
    got = values.asdict(ours)
    assert got == dataclasses.asdict(real)
    assert got["items"] is not ours.items  # copies, not the object's own lists


def test_replace_fields_copy_and_pickle():
    p = OURS[0](1, tags=("t",))
    assert values.replace(p, y=5) == OURS[0](1, 5, ("t",))
    assert p == OURS[0](1, 0, ("t",))
    with pytest.raises(TypeError):
        values.replace(p, z=1)
    assert values.fields(OURS[0]) == tuple(f.name for f in dataclasses.fields(REAL[0]))
    assert copy.copy(p) == p and copy.deepcopy(p) == p
    assert pickle.loads(pickle.dumps(Pickled(3))) == Pickled(3)


@pytest.mark.parametrize(
    "body",
    [
        "class C:\n    a: int = 1\n    b: int\n",
        "class C:\n    a: int\n    def __post_init__(self): pass\n",
        "class C:\n    a: ClassVar[int] = 1\n",
        "class B:\n    a: int\nB = dataclass(B)\nclass C(B):\n    b: int\n",
    ],
    ids=["default-order", "post-init", "classvar", "inherited"],
)
def test_what_is_not_supported_is_refused(body):
    ns: dict[str, object] = {"dataclass": values.dataclass, "ClassVar": object}
    with pytest.raises(TypeError):
        exec(body.replace("class C", "@dataclass\nclass C"), ns)


def test_no_dataclasses_module_at_run_time():
    """The point of it: declaring classes loads neither dataclasses nor inspect."""
    code = (
        "import sys\nfrom moxcli.values import dataclass, field\n"
        "@dataclass(frozen=True)\nclass A:\n    x: int = field(default_factory=int)\n"
        "print(A(), sorted(m for m in ('dataclasses', 'inspect', 'typing') if m in sys.modules))"
    )
    root = str(Path(__file__).resolve().parent.parent)
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env={"PYTHONPATH": root})
    assert r.stdout.strip() == "A(x=0) []", r.stderr
