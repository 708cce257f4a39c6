"""Bar stores: where backfilled bars are kept and fetches read them from.

`BarStore` is the interface; `MemoryBarStore` serves dev and unit tests, `QuestDBBarStore`
is the production backend (columnar reads over ``/exp?fmt=parquet`` with the PostgreSQL wire
as fallback, bulk ILP/HTTP writes into a WAL table that de-duplicates on
``(ts, node_id, bar_interval, lease_token)``; reads serve the highest lease token per bar).
"""

from seamless.data.storage.base import BarStore, to_bar_frame
from seamless.data.storage.memory import MemoryBarStore
from seamless.data.storage.questdb import QuestDBBarStore

__all__ = ["BarStore", "MemoryBarStore", "QuestDBBarStore", "to_bar_frame"]
