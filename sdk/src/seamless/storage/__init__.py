"""Bar stores: where backfilled bars are kept and fetches read them from.

`BarStore` is the interface; `MemoryBarStore` serves dev and unit tests, `QuestDBBarStore`
is the production backend (PostgreSQL-wire reads, ILP writes into a WAL table that
de-duplicates on ``(ts, node_id, bar_interval)``).
"""

from seamless.storage.base import BarStore, to_bar_frame
from seamless.storage.memory import MemoryBarStore
from seamless.storage.questdb import QuestDBBarStore

__all__ = ["BarStore", "MemoryBarStore", "QuestDBBarStore", "to_bar_frame"]
