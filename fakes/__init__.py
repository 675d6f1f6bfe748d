"""Strict fake vendor servers (CRMs, helpdesks) on 127.0.0.1: for the demo, tests and benches."""
