"""What an operator meets on a real number, each reproduced through neonize's own code: a pairing
that shows no QR code, WhatsApp refusing an outdated client, a send that never returns, re-pair
while not connected, the session database read many times, a session that cannot end at exit."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
from neonize.exc import NeonizeError
from neonize.proto import Neonize_pb2 as N

from domain.chat import ConnectionState, OutboundText
from domain.clock import FakeClock
from gateway.whatsapp.calls import Gate, Halted, NoSession
from gateway.whatsapp.ops import NeonizeOps
from gateway.whatsapp.transport import REPAIR_WAIT, SILENT_WAIT
from tests.sinks import wait_for
from tests.test_whatsapp_support import (
    GROUP,
    FakeOps,
    GoSendOps,
    GoSessionOps,
    Made,
    clock,  # noqa: F401  (fixture)
    connect,
    connected,
    event,
    make,  # noqa: F401  (fixture)
    no_threads_left,  # noqa: F401  (autouse fixture)
    push,
    push_login_status,
    push_qr,
)

ROOT = Path(__file__).parent.parent


@pytest.fixture
def caplog_warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="gateway.whatsapp")
    return caplog


# --- pairing that never hangs silently ----------------------------------------------------------


def test_a_pairing_attempt_that_shows_no_qr_code_ends_with_a_message_and_backs_off(
        make: Callable[..., Made], clock: FakeClock, caplog_warnings: pytest.LogCaptureFixture) -> None:
    transport, sink, ops = make(FakeOps(paired=False))
    wait_for(lambda: ops.running, "a session")
    assert transport.state is ConnectionState.PAIRING and not transport.detail.qr
    clock.advance(SILENT_WAIT - 1)
    time.sleep(0.1)
    assert ops.ends == 0  # still within the deadline
    clock.advance(2)
    wait_for(lambda: transport.state is ConnectionState.RECONNECTING, "the attempt given up")
    message = transport.detail.message
    assert f"no QR code within {SILENT_WAIT:.0f} s" in message and "next try in" in message
    assert "no QR code" in caplog_warnings.text
    wait_for(lambda: ops.ends == 1 and ops.sessions == 2, "a new attempt after the backoff")
    push_qr(transport.client, "2@code")  # this one works
    wait_for(lambda: transport.detail.qr == "2@code", "the QR code")


def test_a_paired_session_that_never_connects_is_ended_too(make: Callable[..., Made], clock: FakeClock) -> None:
    transport, sink, ops = make(FakeOps(paired=True))
    wait_for(lambda: ops.running, "a session")
    clock.advance(SILENT_WAIT + 1)
    wait_for(lambda: transport.state is ConnectionState.RECONNECTING, "the session given up")
    assert "did not confirm the connection" in transport.detail.message
    wait_for(lambda: ops.sessions == 2, "a new session")


def test_the_login_status_reaches_the_transport_through_neonizes_connect(make: Callable[..., Made]) -> None:
    """neonize 0.5.2's connect() hands `__onLoginStatus` to Go, which only print()ed it: the
    status comes through, and a client too old for WhatsApp stops with what to do."""
    ops = GoSessionOps(paired=False)
    transport, sink, _ = make(ops)
    wait_for(ops.go.session_up.is_set, "neonize's connect() in its Go library")
    ops.go.ignore_stop = True  # as after a QR channel ends: the Go side waits for a device id
    try:
        ops.go.login_status("err-client-outdated")
        wait_for(lambda: transport.state is ConnectionState.STOPPED, "stopped")
        message = transport.detail.message
        assert "outdated" in message and "neonize 0.5.2" in message
        assert "setup.cfg" in message and "pip install" in message and "Upgrading neonize" in message
        wait_for(lambda: "Stop" in ops.go.calls, "the session asked to end")
    finally:
        ops.go.release()
    wait_for(lambda: transport._session is None, "the session over")
    assert ops.go.sessions == 1  # no new attempt: a new neonize is needed first


def test_a_405_on_a_paired_session_says_what_to_do(make: Callable[..., Made],
                                                   caplog_warnings: pytest.LogCaptureFixture) -> None:
    transport, sink, ops = connected(make())
    push(transport.client, N.ConnectFailure(Reason=N.ConnectFailureReason.CLIENT_OUTDATED, Message="",
                                            Raw=N.Node(Tag="failure")))
    wait_for(lambda: transport.state is ConnectionState.STOPPED, "stopped")
    assert "outdated (405)" in transport.detail.message and "Upgrading neonize" in caplog_warnings.text
    wait_for(lambda: ops.ends == 1, "the session ended")


@pytest.mark.parametrize("status", ["timeout", "err-unexpected-state", "error"])
def test_a_pairing_attempt_that_fails_before_its_first_code_is_tried_again(
        make: Callable[..., Made], status: str) -> None:
    transport, sink, ops = make(FakeOps(paired=False))
    wait_for(lambda: ops.running, "a session")
    push_login_status(transport.client, status)
    wait_for(lambda: transport.state is ConnectionState.RECONNECTING, "the attempt given up")
    assert f"login status: {status}" in transport.detail.message and "next try in" in transport.detail.message
    wait_for(lambda: ops.sessions == 2 and ops.running == 2, "a new attempt")
    assert transport.state is ConnectionState.PAIRING


def test_codes_that_ran_out_start_a_new_attempt_at_once(make: Callable[..., Made]) -> None:
    transport, sink, ops = make(FakeOps(paired=False))
    wait_for(lambda: ops.running, "a session")
    push_qr(transport.client, "2@code")
    wait_for(lambda: transport.detail.qr == "2@code", "the QR code")
    push_login_status(transport.client, "timeout")  # whatsmeow used up the attempt's codes
    wait_for(lambda: ops.sessions == 2 and ops.running == 2, "a new attempt, without waiting for the expiry")
    assert transport.state is ConnectionState.PAIRING and not transport.detail.qr


def test_a_scan_by_a_phone_that_cannot_link_says_so(make: Callable[..., Made]) -> None:
    transport, sink, ops = make(FakeOps(paired=False))
    wait_for(lambda: ops.running, "a session")
    push_qr(transport.client, "2@code")
    push_login_status(transport.client, "err-scanned-without-multidevice")
    wait_for(lambda: "update WhatsApp" in transport.detail.message, "the advice")
    assert transport.detail.qr == "2@code" and ops.sessions == 1  # the attempt goes on


def test_a_successful_login_status_shows_the_login(make: Callable[..., Made]) -> None:
    transport, sink, ops = make(FakeOps(paired=False))
    wait_for(lambda: ops.running, "a session")
    push_qr(transport.client, "2@code")
    push_login_status(transport.client, "success")
    wait_for(lambda: transport.state is ConnectionState.CONNECTING, "logging in")
    assert transport.detail.message == "paired; logging in"


# --- sends that cannot stall the transport ------------------------------------------------------


def stalled(made: Made) -> Made:
    """A connected transport whose send is inside neonize's send_message, waiting for an answer."""
    transport, sink, ops = connected(made)
    ops.go.answer_sends.clear()
    transport.send(OutboundText("r1", GROUP, "hello"))
    wait_for(lambda: ops.go.sent, "the send inside neonize")
    return transport, sink, ops


def test_a_send_that_never_returns_does_not_block_stop(make: Callable[..., Made]) -> None:
    transport, sink, ops = stalled(make(GoSendOps()))
    try:
        began = time.monotonic()
        transport.stop()
        took = time.monotonic() - began
        assert took < 3.0, f"stop waited {took:.1f} s behind a send"
        assert ops.ends == 1  # the session really ended
        assert [(o.request_id, o.ok, o.error) for o in sink.outcomes] == [("r1", False, "transport stopped")]
    finally:
        ops.go.release()


def test_a_send_without_an_answer_times_out_and_later_sends_do_not_pile_up(make: Callable[..., Made]) -> None:
    transport, sink, ops = make(GoSendOps())
    transport.send_timeout = 0.05
    stalled((transport, sink, ops))
    try:
        wait_for(lambda: sink.outcomes, "the first outcome")
        [late] = sink.outcomes
        assert (late.ok, late.retryable) == (False, True) and "did not answer the send" in late.error
        transport.send(OutboundText("r2", GROUP, "again"))
        wait_for(lambda: len(sink.outcomes) == 2, "the second outcome")
        assert "earlier send" in sink.outcomes[1].error and len(ops.go.sent) == 1  # not handed to neonize
    finally:
        ops.go.answer_sends.set()
    wait_for(lambda: ops.go.calls.count("SendMessage") == 1 and transport._unanswered_send.finished, "the answer")
    transport.send(OutboundText("r3", GROUP, "now"))
    wait_for(lambda: len(sink.outcomes) == 3, "the third outcome")
    assert sink.outcomes[2].ok


def test_a_ban_during_a_stalled_send_ends_the_session_at_once(make: Callable[..., Made]) -> None:
    transport, sink, ops = stalled(make(GoSendOps()))
    try:
        push(transport.client, event("temporary_ban"))
        wait_for(lambda: transport.state is ConnectionState.BANNED and ops.ends == 1, "the session ended", timeout=3)
    finally:
        ops.go.release()


def test_re_pair_during_a_stalled_send_logs_out_at_once(make: Callable[..., Made]) -> None:
    transport, sink, ops = stalled(make(GoSendOps()))
    try:
        transport.repair()
        wait_for(lambda: ops.logouts == 1 and ops.running == 2, "logged out and pairing again", timeout=3)
    finally:
        ops.go.release()


def test_ending_a_session_waits_for_a_call_only_while_it_may_read_neonizes_client_table() -> None:
    """A Go map read during a write ends the process: Stop waits for a call's first moments
    (its lookup), never for its network wait."""
    gate = Gate(grace=0.2)
    gate.open()
    release, started = threading.Event(), []

    def send() -> None:
        started.append(time.monotonic())
        release.wait()

    caller = threading.Thread(target=lambda: pytest.raises(Halted, gate.call, send, 30, "send"))
    caller.start()
    try:
        wait_for(lambda: started, "the call")
        gate.settle()
        settled = time.monotonic()
        assert settled >= started[0] + 0.2 - 0.01  # held back while the call may read the table
        assert not release.is_set() and caller.is_alive()  # ... but not until it returns
        with pytest.raises(NoSession):
            gate.call(lambda: None, 1, "send")  # closed: nothing new starts
        gate.open()
        gate.settle()
        assert time.monotonic() - settled < 0.2 + 0.5  # an old call holds nothing back
    finally:
        gate.halt()  # the waiting caller returns at once (Halted)
        caller.join(5)
        release.set()
    assert not caller.is_alive()


# --- re-pair while not connected ---------------------------------------------------------------


def refused(made: Made) -> Made:
    """A transport whose sessions fail at once (no network), reconnecting."""
    transport, sink, ops = made
    wait_for(lambda: transport.state is ConnectionState.RECONNECTING, "reconnecting")
    return made


def failing_ops() -> FakeOps:
    ops = FakeOps()
    ops.fail_connect = [NeonizeError("no network")] * 3
    return ops


def test_re_pair_while_not_connected_connects_first_to_log_the_old_device_out(make: Callable[..., Made]) -> None:
    transport, sink, ops = refused(make(failing_ops()))
    transport.repair()
    wait_for(lambda: ops.running, "a session to log out with")
    wait_for(lambda: "log the old device out first" in transport.detail.message, "what it does")
    assert ops.logouts == 0 and ops.discarded == 0
    connect(transport.client)
    wait_for(lambda: ops.logouts == 1, "the old device logged out")
    wait_for(lambda: transport.state is ConnectionState.PAIRING and ops.running, "a new pairing attempt")
    assert ops.discarded == 0  # whatsmeow deleted the logged-out device itself
    assert not transport.detail.message  # nothing left for the operator to do


def test_re_pair_that_cannot_reach_whatsapp_says_to_remove_the_device_by_hand(
        make: Callable[..., Made], clock: FakeClock, caplog_warnings: pytest.LogCaptureFixture) -> None:
    ops = FakeOps()
    ops.fail_connect = [NeonizeError("no network")] * 1000
    transport, sink, _ = refused(make(ops))
    transport.repair()
    wait_for(lambda: ops.sessions >= 3, "tries to connect")
    assert ops.discarded == 0
    ops.fail_connect.clear()
    clock.advance(REPAIR_WAIT + 1)
    wait_for(lambda: ops.discarded == 1, "the session moved aside")
    wait_for(lambda: transport.state is ConnectionState.PAIRING, "pairing")
    assert ops.logouts == 0
    assert "could not be reached" in transport.detail.message and "Linked devices" in transport.detail.message
    assert "Linked devices" in caplog_warnings.text


def test_re_pair_during_a_ban_does_not_connect_and_says_why(make: Callable[..., Made]) -> None:
    transport, sink, ops = connected(make())
    push(transport.client, event("temporary_ban"))
    wait_for(lambda: transport.state is ConnectionState.BANNED and not ops.running, "banned")
    transport.repair()
    wait_for(lambda: ops.discarded == 1 and ops.running == 2, "pairing again")
    assert ops.logouts == 0 and "during the ban" in transport.detail.message


# --- the session database ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whatsmeow_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty session database as whatsmeow creates it (in another process: neonize's reader
    leaves its handle open)."""
    path = tmp_path_factory.mktemp("schema") / "session.sqlite3"
    code = "import sys; from neonize.client import ClientFactory; ClientFactory.get_all_devices_from_db(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, timeout=60)
    return path


KEY_SIZES = (32, 32, 32, 64, 32, 16, 64, 32, 64)  # the keys' lengths whatsmeow's schema checks


def session_db(tmp_path: Path, schema: Path, push_name: str | None) -> str:
    """A copy of the schema, holding one device with `push_name` (None: no device)."""
    path = tmp_path / "session.sqlite3"
    shutil.copy(schema, path)
    if push_name is not None:
        with sqlite3.connect(path) as db:
            db.execute(
                "INSERT INTO whatsmeow_device (jid, lid, registration_id, noise_key, identity_key, signed_pre_key,"
                " signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details, adv_account_sig,"
                " adv_account_sig_key, adv_device_sig, platform, business_name, push_name)"
                " VALUES (?, ?, 1, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 'android', '', ?)",
                ("8801900000001:12@s.whatsapp.net", "100000000000001:12@lid", *(b"k" * n for n in KEY_SIZES),
                 push_name))
        db.close()
    return str(path)


def open_handles(path: str) -> int:
    """This process's open file descriptors on `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path):
                count += 1
        except OSError:
            pass
    return count


def test_has_session_leaves_no_handle_open(tmp_path: Path, whatsmeow_schema: Path) -> None:
    db = session_db(tmp_path, whatsmeow_schema, "Rahim Store")
    ops = NeonizeOps()
    before = open_handles(db)
    assert [ops.has_session(db) for _ in range(50)] == [True] * 50
    assert open_handles(db) == before


def test_a_push_name_with_a_comma_is_still_a_session(tmp_path: Path, whatsmeow_schema: Path) -> None:
    assert NeonizeOps().has_session(session_db(tmp_path, whatsmeow_schema, "Rahim, Diamonds & Co")) is True


def test_has_session_without_a_device_or_a_database(tmp_path: Path, whatsmeow_schema: Path) -> None:
    ops = NeonizeOps()
    assert ops.has_session(session_db(tmp_path, whatsmeow_schema, None)) is False  # set up, never paired
    assert ops.has_session(str(tmp_path / "missing.sqlite3")) is False
    assert not (tmp_path / "missing.sqlite3").exists()  # reading creates nothing
    (tmp_path / "empty.sqlite3").write_bytes(b"")
    assert ops.has_session(str(tmp_path / "empty.sqlite3")) is False
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database at all" * 100)
    assert ops.has_session(str(tmp_path / "junk.sqlite3")) is None  # cannot tell
    assert ops.has_session("postgres://bot@localhost/whatsapp") is None


# --- a session that cannot end never holds up the exit -------------------------------------------


ABANDON = textwrap.dedent("""
    import sys, threading, time
    from gateway.whatsapp.ops import NeonizeOps

    class StuckGo:  # neonize's Go library in its FetchMe wait: Neonize() never returns, Stop() is ignored
        def __init__(self):
            self.inside = threading.Event()
        def Neonize(self, *args):
            self.inside.set()
            threading.Event().wait()
        def Stop(self, uuid):
            pass

    ops = NeonizeOps()
    client = ops.new_client(sys.argv[1], lambda status: None)
    go = client._NewClient__client = StuckGo()
    session = threading.Thread(target=ops.run, args=(client,), daemon=True)  # as the transport's session thread
    session.start()
    go.inside.wait(30)
    workers = [t for t in threading.enumerate() if t.name == client.uuid.decode()]
    ops.end(client)
    ops.abandon(client)
    print(len(workers), flush=True)
""")


def test_an_abandoned_session_does_not_hold_up_the_exit(tmp_path: Path) -> None:
    """neonize's connect() runs the Go session on a worker thread of its own; one that never
    ends must not keep the gateway's process from exiting, on any Python version."""
    run = subprocess.run([sys.executable, "-c", ABANDON, str(tmp_path / "s.sqlite3")], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert (run.returncode, run.stdout.strip()) == (0, "1"), run.stderr  # one worker, left behind
