"""``EntityId``: the address of a durable entity."""

from functools import total_ordering

from ._model import WitEntityId


@total_ordering
class EntityId:
    """The address of an entity: its name and its key.

    Names are case-insensitive: the name is lowercased, as Durable Functions does, so
    ``EntityId("Counter", "k") == EntityId("counter", "k")``. Keys are case-sensitive. Ids
    order by name, then key; that is the order in which ``lock_entities`` takes its locks.
    Shown as ``@name@key``.
    """

    __slots__ = ("_name", "_key")

    def __init__(self, name: str, key: str):
        """The entity named ``name`` (lowercased) with key ``key``."""
        self._name = str(name).lower()
        self._key = str(key)

    @property
    def name(self) -> str:
        """The entity's name, lowercased."""
        return self._name

    @property
    def key(self) -> str:
        """The entity's key."""
        return self._key

    def _to_wit(self) -> WitEntityId:
        return WitEntityId(self._name, self._key)

    def __eq__(self, other) -> bool:
        if not isinstance(other, EntityId):
            return NotImplemented
        return (self._name, self._key) == (other._name, other._key)

    def __lt__(self, other) -> bool:
        if not isinstance(other, EntityId):
            return NotImplemented
        return (self._name, self._key) < (other._name, other._key)

    def __hash__(self) -> int:
        return hash((self._name, self._key))

    def __str__(self) -> str:
        return f"@{self._name}@{self._key}"

    def __repr__(self) -> str:
        return f"EntityId({self._name!r}, {self._key!r})"
