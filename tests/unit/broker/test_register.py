"""The register of children living away from home: keyed pseudonyms, and an end that later messages about
the same placement cannot undo."""

from __future__ import annotations

from broker.register import Register


def test_a_started_message_arriving_after_the_end_does_not_reopen_the_placement(tmp_path):
    register = Register(tmp_path / "register.db", b"k" * 32)
    child = register.pseudonym("la-886", "C1")
    register.record_many([("placement-ended", child, "la-886", "SC900001", "2026-02-01", "2026-02-20", "m2"),
                          ("placement-started", child, "la-886", "SC900001", "2026-02-01", None, "m1")])
    assert register.children_at("SC900001", "2026-03-01") == {}
    assert register.children_at("SC900001", "2026-02-10") == {"la-886": [child]}


def test_pseudonyms_are_stable_per_key_and_differ_between_keys(tmp_path):
    one = Register(tmp_path / "a.db", b"a" * 32)
    two = Register(tmp_path / "b.db", b"b" * 32)
    assert one.pseudonym("la-886", "C1") == one.pseudonym("la-886", "C1")
    assert one.pseudonym("la-886", "C1") != two.pseudonym("la-886", "C1")
    assert one.pseudonym("la-886", "C1") != one.pseudonym("la-371", "C1")
    assert "C1" not in one.pseudonym("la-886", "C1")
