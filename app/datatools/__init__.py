"""The data teams' command-line tools: `wxstream topics`, `tail` and `replay`.

Synchronous kafka-python clients, one module per command; the records, time ranges and
offset tables they work with are pure and tested on their own.
"""
