"""Pulumi entry point (`pulumi up --stack dev|prod` runs this file from the project root, so
`infra` below is this checkout's package)."""

from infra.main import main

bundle = main()
