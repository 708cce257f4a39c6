"""The Seamless bundle's Pulumi program: a catalog of services (plain data) rendered by a
Docker (dev) or Kubernetes (prod) platform. Entry point: `infra/__main__.py`."""
