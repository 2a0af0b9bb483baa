"""A Stream's first event goes out before the run's nodes take the event loop."""

import os
import uuid

import pytest

from conftest import GRAPHS_CONFIG, scratch_database
from support.helpers import TIMEOUT, open_gate, stream_request, to_dict
from support.replicas import Replica

pytestmark = pytest.mark.replicas  # a server process of its own: a node here holds its event loop


async def test_the_first_event_arrives_while_the_first_node_holds_the_event_loop(admin_dsn, database_url):
    """A node that holds the event loop (a synchronous client called from async code) starts only
    once the call's first event is on its way: the caller has the run's id while the node runs.
    The node waits, holding the loop, for a gate the test opens on that first event; had the node
    run first, the event would have waited for it, and the node would have given up."""
    # database_url: the session database holds the gates
    with scratch_database(admin_dsn) as dsn:
        replica = await Replica("r", dsn, GRAPHS_CONFIG).start()
        try:
            gate = f"first-event-{uuid.uuid4()}"
            call = replica.runs.Stream(stream_request(["updates"], assistant_id="culprit_first",
                                                      input={"log": [], "hold_until_gate": gate}), timeout=TIMEOUT)
            responses = aiter(call)
            first = (await anext(responses)).event
            assert first.HasField("metadata") and first.metadata.run_id
            open_gate(os.environ["GRAPHRUN_TEST_DSN"], gate)
            events = [first] + [response.event async for response in responses]
            assert to_dict(events[-1].end.state.values)["log"] == ["culprit saw the gate"]
        finally:
            await replica.close()
