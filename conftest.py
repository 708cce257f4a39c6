# The real-server fixtures (Redis, QuestDB, MinIO, toxiproxy, ...) for every test directory.
pytest_plugins = ["lab.fixtures"]
