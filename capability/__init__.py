"""Pure process-capability statistics: subgroups, rolling windows, estimators, indices, control charts, yield.

Imports nothing from Kafka, Faust, FastAPI or Prometheus (an import-linter contract in CI).
"""
