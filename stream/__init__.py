"""Faust app and agents: thin glue between Kafka topics and the pure core."""
