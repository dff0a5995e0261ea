"""Events a worker has fetched stay queued when Faust resumes a flow that was not suspended."""

from __future__ import annotations

import asyncio

from mode.utils.queues import FlowControlQueue

from app.faust_app import App, KeepingFlowControl


def queue_of(flow: KeepingFlowControl) -> FlowControlQueue:
    return FlowControlQueue(flow_control=flow, clear_on_resume=True)


def test_resuming_a_running_flow_keeps_the_queued_events():
    flow = KeepingFlowControl()
    flow.resume()
    queue = queue_of(flow)
    queue.put_nowait("fetched")
    flow.resume()  # what recovery does once more after the stream partitions resumed
    assert queue.qsize() == 1


def test_resuming_after_a_suspension_empties_the_queues():
    flow = KeepingFlowControl()
    flow.resume()
    queue = queue_of(flow)
    queue.put_nowait("fetched before the rebalance")
    flow.suspend()
    flow.resume()
    assert queue.qsize() == 0
    assert flow.is_active()


def test_the_first_resume_opens_the_flow():
    flow = KeepingFlowControl()
    assert not flow.is_active()
    flow.resume()
    assert flow.is_active()


def test_the_worker_app_uses_it():
    async def build():
        return App("flow-control-test", store="memory://", web_enabled=False)

    app = asyncio.run(build())
    assert isinstance(app.flow_control, KeepingFlowControl)
