"""The load gate: locust users driving the SDK and the coordinator, an exact per-phase
latency recorder, and the SLA gate that fails a run whose percentiles break the budgets.

Run it with ``python -m locust --config loadtest/profiles/ci.conf`` (see loadtest/README.md);
the lab (`make lab`) and the `load` tests run it as a subprocess, so locust's gevent
monkey-patching never reaches the process that starts them.
"""
