"""`python -m seamless.cli ...`, the same as the `seamless` console script."""

from seamless.cli import main

main()
