"""Faust tables (RocksDB stores, changelog topics): their declarations, and the small
pure rules of what a table's value holds (a session's turns, a window's rate count, a
mailbox's items). The agents own the logic that reads and writes them."""
