"""A Streamlit browser tab without the browser: the app's WebSocket protocol, spoken directly.

A load test of thirty Chromium pages on a small server would measure the browsers, not the
server. A tab's whole conversation with Streamlit is protobuf over `/_stcore/stream`: it sends
a BackMsg `rerun_script` (the page by name, the URL's query string) and reads ForwardMsgs until
`script_finished`; an `st.fragment(run_every=...)` announces itself with `auto_rerun`, and the
tab then asks for that fragment alone on the interval. This module does exactly that, and
times each rerun.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

# script_finished values that end a rerun; FINISHED_EARLY_FOR_RERUN is not one (st.rerun()
# or a deep link's enter_app() starts the next run, which the tab keeps waiting for).
DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
FAILED = {ForwardMsg.FINISHED_WITH_COMPILE_ERROR}
RERUN_TIMEOUT_S = 60.0  # a rerun slower than this counts as failed (and the tab moves on)


@dataclass
class Rerun:
    """One rerun as the tab saw it: "page" (whole script) or "fragment" (a live panel)."""

    kind: str
    sent: float  # time.time() when the request left
    seconds: float  # until the rerun's script_finished
    errors: list[str] = field(default_factory=list)  # exception types the page showed

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class RunTracker:
    """What a tab keeps from the ForwardMsgs of one rerun, and of the runs before it."""

    page_hash: str = ""
    fragments: dict[str, float] = field(default_factory=dict)  # live fragment id -> interval s
    cached: set[str] = field(default_factory=set)  # message hashes the tab could reuse
    errors: list[str] = field(default_factory=list)

    def feed(self, msg: ForwardMsg) -> bool:
        """Take in one message; True once it ends the rerun in progress."""
        if msg.metadata.cacheable and msg.hash:
            self.cached.add(msg.hash)
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.page_hash = msg.new_session.page_script_hash
            if not msg.metadata.run.fragment_ids:  # a whole-script run drops every timer
                self.fragments.clear()
        elif kind == "auto_rerun":
            self.fragments[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                self.fragments.pop(fragment_id, None)
        elif kind == "delta" and msg.delta.new_element.WhichOneof("type") == "exception":
            self.errors.append(msg.delta.new_element.exception.type or "exception")
        elif kind == "session_event" and msg.session_event.HasField(
                "script_compilation_exception"):
            self.errors.append(msg.session_event.script_compilation_exception.type)
        elif kind == "script_finished":
            if msg.script_finished in FAILED:
                self.errors.append("script failed to compile")
            return msg.script_finished in DONE | FAILED
        return False


def rerun_request(tracker: RunTracker, page: str, query: str,
                  fragment_id: str | None = None) -> bytes:
    """The BackMsg a browser sends: the page by name the first time, by hash afterwards."""
    back = BackMsg()
    state = back.rerun_script
    state.query_string = query
    state.page_name = page
    state.page_script_hash = tracker.page_hash
    state.cached_message_hashes.extend(sorted(tracker.cached))
    if fragment_id:
        state.fragment_id = fragment_id
        state.is_auto_rerun = True
    return back.SerializeToString()


class PageSession:
    """One simulated browser tab on one page of the app at `url`, with `query` in its address."""

    def __init__(self, url: str, page: str, query: str = "") -> None:
        self.stream = url.replace("http://", "ws://", 1) + "/_stcore/stream"
        self.origin, self.page, self.query = url, page, query
        self.tracker = RunTracker()
        self.reruns: list[Rerun] = []
        self._socket: websockets.ClientConnection | None = None

    async def open(self) -> None:
        # No keepalive pings: a browser sends none, and a busy server answering one late would
        # make the client drop the connection.
        self._socket = await websockets.connect(
            self.stream, subprotocols=["streamlit"], origin=self.origin, max_size=None,
            open_timeout=RERUN_TIMEOUT_S, ping_interval=None)

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()

    async def rerun(self, fragment_id: str | None = None) -> Rerun:
        """The whole page, or one fragment of it (as the browser's timer asks for a live one)."""
        self.tracker.errors = []
        sent, start = time.time(), time.perf_counter()
        try:
            await self._socket.send(rerun_request(self.tracker, self.page, self.query,
                                                  fragment_id))
            await asyncio.wait_for(self._read_until_finished(), RERUN_TIMEOUT_S)
        except TimeoutError:
            self.tracker.errors.append(f"no script_finished within {RERUN_TIMEOUT_S:.0f} s")
        except websockets.ConnectionClosed as closed:
            self.tracker.errors.append(f"connection closed ({closed})")
            self.tracker.fragments.clear()  # nothing more to poll on this tab
        record = Rerun("fragment" if fragment_id else "page", sent,
                       time.perf_counter() - start, list(self.tracker.errors))
        self.reruns.append(record)
        return record

    async def _read_until_finished(self) -> None:
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await self._socket.recv())
            if self.tracker.feed(msg):
                return

    async def watch(self, until: asyncio.Event) -> None:
        """Rerun the page's live fragment on its own interval, as the browser's timer does
        (sooner never: a slow rerun delays the next), until `until` is set or the page has no
        live fragment left; a browser then waits for a click, and so does this tab."""
        while self.tracker.fragments and not until.is_set():
            fragment_id, every = next(iter(self.tracker.fragments.items()))
            record = await self.rerun(fragment_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), max(0.0, every - record.seconds))

    def watching(self) -> tuple[float, float] | None:
        """The wall times between which this tab kept rerunning a live fragment."""
        live = [rerun for rerun in self.reruns if rerun.kind == "fragment"]
        if not live:
            return None
        return live[0].sent, live[-1].sent + live[-1].seconds
