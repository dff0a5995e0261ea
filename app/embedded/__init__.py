"""Launchers for the embedded stack: a Kafka-protocol broker and tritonserver from wheels.

Used by `wxstream up` and the integration tests; never in production, where
`WXSTREAM_KAFKA_URL` and `WXSTREAM_TRITON_URL` point at real clusters.
"""
