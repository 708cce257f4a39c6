"""Settings: the `seamless` config section (`model`), loading it with its presets
(`loading`, `presets`), bounded YAML (`safe_yaml`), and validating a section or a QMTL
service's config against the servers it names (`validation`, `service_validation`).
"""
