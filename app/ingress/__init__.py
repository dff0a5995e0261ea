"""The HTTP edge WeChat calls: verify, decode, persist to Kafka, answer. No state of its own."""
