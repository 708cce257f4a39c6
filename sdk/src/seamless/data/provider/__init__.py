"""The Seamless Data Provider: `provider` (the `fetch` API and what it owns), `models` (what a
fetch takes and gives), `pipeline` (one fetch, stage by stage, with explicit state) and
`cache` (complete answers kept for a while)."""

from seamless.data.provider.models import FetchMetadata, FetchResult, Strategy, validate_request
from seamless.data.provider.provider import SeamlessDataProvider

__all__ = ["FetchMetadata", "FetchResult", "SeamlessDataProvider", "Strategy", "validate_request"]
