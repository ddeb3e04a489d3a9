"""The composer's UUIDs: text exactly as the uuid module writes it, and never the same one twice, even from two
processes forked from one (a large adapter run builds messages in forked workers)."""

from __future__ import annotations

import os
import uuid

import pytest

from standard import compose

NAMESPACE = uuid.UUID("6f1c2a8e-5b1d-4c57-9a0e-3d2f8b7c9e41")


def test_a_random_uuid_is_a_version_4_uuid_written_as_the_uuid_module_writes_it():
    made = [compose.random_uuid() for _ in range(1000)]
    assert len(set(made)) == 1000
    for text in made:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


@pytest.mark.parametrize("name", ["", "la-886|start|C1|2026-02-01|SC900001|ab12", "é ü 中"])
def test_a_name_uuid_is_the_uuid_modules_version_5(name):
    assert compose.name_uuid(NAMESPACE, name) == str(uuid.uuid5(NAMESPACE, name))


def uuids_from_parent_and_forked_child(count: int = 50) -> tuple[list[str], list[str]]:
    compose.random_uuid()  # the parent holds random bytes not yet used when it forks
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its UUIDs, then leave at once
        os.write(write, "\n".join(compose.random_uuid() for _ in range(count)).encode())
        os._exit(0)
    os.close(write)
    parent = [compose.random_uuid() for _ in range(count)]
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = pipe.read().split("\n")
    return parent, child


def test_a_forked_process_never_makes_its_parents_uuids():
    parent, child = uuids_from_parent_and_forked_child()
    assert len(child) == 50 and not set(parent) & set(child)


def test_the_check_catches_a_child_that_keeps_its_parents_random_bytes(monkeypatch):
    kept = bytearray(os.urandom(16 * 256))
    monkeypatch.setattr(compose, "_random_bytes", kept)  # a buffer no fork hook clears
    parent, child = uuids_from_parent_and_forked_child()
    assert set(parent) & set(child)
