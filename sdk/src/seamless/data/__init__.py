"""The data path: how a strategy's window of bars is served.

`provider` (the Seamless Data Provider) answers a fetch from its cache, then `storage`
(QuestDB), then a `backfill` of the missing `coverage` through a `fetcher` under a lease,
then the `live` feed; every phase is timed against the `sla`, every frame from outside
passes `conformance` (and the `schema_registry` stage), and `artifacts` publishes what was
served. `bars` is the frame schema they all speak.
"""
