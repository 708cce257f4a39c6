"""Local image builds for the Docker platform (see images/build.py)."""
