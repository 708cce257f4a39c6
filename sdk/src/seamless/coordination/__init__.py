"""The client side of backfill coordination: the `Coordinator` interface (`interface`), the
wire models shared with the service (`protocol`), the HTTP client (`client`) and its health
check (`health`), the in-process coordinator of the dev profile (`memory`), and holding a
lease while work runs (`leases`). The service itself is `seamless.coordinator`.
"""
