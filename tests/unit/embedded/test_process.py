"""A component that fails to start says why: the first error of this run, then its last lines."""

from __future__ import annotations

import pytest

from app.embedded.process import ComponentError, ManagedProcess


def test_a_component_that_exits_while_starting_names_the_first_error_of_this_run(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text("[ERROR] an old run's failure\n")
    script = 'echo starting; echo "[ERROR] OSError: address already in use"; for i in $(seq 20); do echo noise $i; done; exit 3'
    proc = ManagedProcess("worker", ["sh", "-c", script], log).start()

    with pytest.raises(ComponentError) as caught:
        proc.wait_ready(lambda: False, timeout=10)
    proc.stop()

    message = str(caught.value)
    assert message.startswith("worker exited with rc=3 while starting")
    assert "--- first error in" in message and "[ERROR] OSError: address already in use" in message
    assert "noise 20" in message and "noise 1\n" not in message
    assert "an old run's failure" not in message
