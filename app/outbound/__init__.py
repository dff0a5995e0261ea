"""Delivering replies to users through WeChat's customer-service API.

Pure parts (splitting long replies, what to do on each errcode, the delivery state of a
reply) sit beside the I/O (the API client and its access-token cache); the Faust agent
that drives them is `agents.outbound`.
"""
