"""The dispatcher's frame reader: whatever pieces the bytes arrive in, whole messages come out
in order, and it never blocks on a worker that stopped half-way."""

from __future__ import annotations

import select
import socket
import threading
from multiprocessing.reduction import ForkingPickler

import pytest

from routilux_kernel.executors.process.frames import CHUNK, FrameReader, send_message


def frame(message: object) -> bytes:
    body = bytes(ForkingPickler.dumps(message))
    return len(body).to_bytes(4, "big") + body


@pytest.fixture
def pair():
    driver, worker = socket.socketpair()
    yield driver, worker
    driver.close()
    worker.close()


def test_messages_in_one_write_come_out_together_in_order(pair) -> None:
    driver, worker = pair
    worker.sendall(frame(("done", 1)) + frame(("effects", 2, b"x" * 100)) + frame(("done", 3)))

    messages, closed = FrameReader(driver).read()

    assert messages == [("done", 1), ("effects", 2, b"x" * 100), ("done", 3)]
    assert not closed


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 20])
def test_a_message_cut_anywhere_waits_for_its_rest(pair, cut: int) -> None:
    driver, worker = pair
    reader = FrameReader(driver)
    data = frame(("done", 7, "result")) + frame(("ready", 99))
    worker.sendall(data[:cut])
    assert reader.read() == ([], False)  # nothing whole yet, and no blocking

    worker.sendall(data[cut:])

    assert reader.read() == ([("done", 7, "result"), ("ready", 99)], False)


def test_a_message_larger_than_a_read_is_filled_in_place_across_reads(pair) -> None:
    driver, worker = pair
    reader = FrameReader(driver)
    big = ("done", 1, b"\x01" * (3 * CHUNK + 17))
    data = frame(big) + frame(("done", 2))
    worker.sendall(data[: CHUNK + 10])
    assert reader.read() == ([], False)

    # From a thread: the rest may not fit the socket's buffer until the reader drains it.
    sender = threading.Thread(target=worker.sendall, args=(data[CHUNK + 10 :],))
    sender.start()
    messages: list[object] = []
    while len(messages) < 2:
        select.select([driver], [], [], 10)
        got, closed = reader.read()
        messages += got
        assert not closed
    sender.join(10)

    assert messages == [big, ("done", 2)]


def test_the_read_budget_leaves_the_rest_for_the_next_wake_up(pair) -> None:
    driver, worker = pair
    reader = FrameReader(driver)
    worker.sendall(b"".join(frame(("done", n, b"y" * 1000)) for n in range(10)))

    first, _ = reader.read(budget=2500)  # two and a half messages' worth
    rest, _ = reader.read()

    assert [m[1] for m in first] == [0, 1]
    assert [m[1] for m in first + rest] == list(range(10))


def test_a_closed_worker_end_is_reported_after_its_last_messages(pair) -> None:
    driver, worker = pair
    send_message(worker, ("done", 5, "last"))
    worker.close()
    reader = FrameReader(driver)

    # The dispatcher reads again when its wait says the socket is readable (as it stays at
    # its end): the message first, then the end.
    first, closed = reader.read()
    messages = first
    while not closed:
        more, closed = reader.read()
        messages += more

    assert messages == [("done", 5, "last")]
    assert first == [("done", 5, "last")]


def test_everything_is_read_before_the_end_when_the_budget_is_lifted(pair) -> None:
    driver, worker = pair
    for n in range(3):
        send_message(worker, ("done", n))
    worker.close()

    assert FrameReader(driver).read(budget=None) == ([("done", 0), ("done", 1), ("done", 2)], True)
