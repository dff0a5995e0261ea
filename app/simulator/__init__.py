"""A WeChat simulator on loopback, for development, tests and benchmarks.

It plays WeChat's side: its API (access tokens, customer-service messages) with WeChat's
rules and errcodes, a callback sender that delivers users' messages to the ingress with
WeChat's timing and retries, and a record of what every user received by either path.

    state = SimState.of(accounts)                      # state.py
    async with ApiServer(state) as server:             # server.py; wechat_api_url = server.url
        report = await drive(state, ingress_url, TrafficPlan(rate=20, count=100))  # traffic.py
        state.recorder.received(account, openid)       # what that user saw, in order

Modules: clock (simulated time), config (accounts, limits), errcodes, tokens, users
(reply window and count), faults (injection), recorder, stats, state (all of it
together), api (/cgi-bin/ endpoints), control (/_sim/ endpoints), server (app factory and
runner), population (users, message mix), messages (XML fields, MsgIds), callbacks (one
delivery with WeChat's retries), traffic (open-loop schedule), report (counts, latency),
command (`wxstream simulate`).

Import from the modules; this package imports nothing, so the CLI starts fast.
"""
