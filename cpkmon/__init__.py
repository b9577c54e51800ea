"""cpkmon: a Kafka-native streaming process-capability monitor."""

__version__ = "0.1.0"
