"""Faust table declarations (RocksDB stores, changelog topics). Declarations only: the
agents own the logic that reads and writes them."""
