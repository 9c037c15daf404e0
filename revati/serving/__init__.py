"""Serving under load in virtual time: the load generator, its request log and the metrics."""
