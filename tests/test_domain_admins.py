"""Who the shop's admins are, and were (domain/admins.py): authority judged when a message was sent."""

from __future__ import annotations

import pytest

from domain.admins import AdminRoster, Tenure

ADMINS = ("8801712345678", "76210050711676@lid", "8801911111111@s.whatsapp.net")


def always(*admins: str) -> AdminRoster:
    return AdminRoster(tuple(Tenure(a, 0.0) for a in admins))


@pytest.mark.parametrize(
    ("sender", "alt", "admin"),
    [
        ("76210050711676@lid", "", True),  # by LID
        ("76210050711676@LID", "", True),
        ("99999999999999@lid", "8801712345678@s.whatsapp.net", True),  # LID unknown, phone listed
        ("8801712345678@s.whatsapp.net", "", True),  # phone JID against bare phone digits
        ("8801712345678:12@s.whatsapp.net", "", True),  # with a device suffix
        ("8801911111111@s.whatsapp.net", "", True),  # against a phone JID entry
        ("55555555555555@lid", "8801911111111@s.whatsapp.net", True),
        ("8801700000000@s.whatsapp.net", "76210050711676@lid", True),  # alt is the LID
        ("8801700000000@s.whatsapp.net", "", False),
        ("99999999999999@lid", "", False),
        ("", "", False),
        ("8801712345678", "", False),  # bare digits: not a JID we get, and ambiguous
        ("8801712345678@g.us", "", False),
        ("abc@lid", "", False),
    ],
)
def test_is_admin(sender: str, alt: str, admin: bool) -> None:
    assert always(*ADMINS).is_admin(sender, alt, 100.0) is admin


def test_lid_digits_are_never_a_phone_number() -> None:
    # The trap: a LID whose digits equal an admin's phone number is someone else.
    assert not always("76210050711676").is_admin("76210050711676@lid", "", 1.0)
    assert not always("76210050711676@s.whatsapp.net").is_admin("76210050711676@lid", "", 1.0)
    assert not always("+76210050711676").is_admin("76210050711676@lid", "", 1.0)
    # and the other way round: a phone JID does not match a LID entry with the same digits
    assert not always("76210050711676@lid").is_admin("76210050711676@s.whatsapp.net", "", 1.0)
    # the same people, matched by the right form
    assert always("76210050711676@lid").is_admin("76210050711676@lid", "", 1.0)
    assert always("76210050711676").is_admin("76210050711676@s.whatsapp.net", "", 1.0)


def test_unnormalised_entries_and_no_admins() -> None:
    assert always(" +880 1712-345678 ").is_admin("8801712345678@s.whatsapp.net", "", 1.0)
    assert always(" 76210050711676@Lid ").is_admin("76210050711676@lid", "", 1.0)
    assert not AdminRoster().is_admin("76210050711676@lid", "", 1.0)
    assert not always("", "garbage", "@lid", "@s.whatsapp.net").is_admin("8801712345678@s.whatsapp.net", "", 1.0)


PHONE = "8801711111111"
SENDER = "76210050711690@lid"
ALT = f"{PHONE}@s.whatsapp.net"


def test_authority_is_judged_when_the_message_was_written() -> None:
    roster = AdminRoster().with_admins([], 100.0, "config")  # the first start: no admins
    roster = roster.with_admins([PHONE], 500.0, "config")  # a later start adds one
    assert not roster.is_admin(SENDER, ALT, 499.9)  # written before: not an admin then
    assert roster.is_admin(SENDER, ALT, 500.0)
    roster = roster.with_admins([], 900.0, "config")  # removed again
    assert roster.is_admin(SENDER, ALT, 899.0)  # written while an admin: still counts
    assert not roster.is_admin(SENDER, ALT, 900.0)
    assert roster.current() == []


def test_keeping_the_same_admins_changes_nothing() -> None:
    roster = AdminRoster().with_admins([PHONE, "76210050711676@lid"], 10.0, "config")
    assert roster.with_admins([f"+{PHONE}", "76210050711676@lid"], 20.0, "config") == roster
    assert roster.current() == [PHONE, "76210050711676@lid"]
    # a readded admin gets a second tenure; the gap stays a gap
    again = roster.with_admins([], 30.0, "config").with_admins([PHONE], 40.0, "config")
    assert [(t.who, t.since, t.until) for t in again.tenures] == [
        (PHONE, 10.0, 30.0), ("76210050711676@lid", 10.0, 30.0), (PHONE, 40.0, None)]
    assert not again.is_admin(SENDER, ALT, 35.0) and again.is_admin(SENDER, ALT, 41.0)


def test_entries_that_name_nobody_are_not_kept() -> None:
    assert AdminRoster().with_admins(["", "garbage", PHONE], 1.0, "config").current() == [PHONE]


def test_stored_form_round_trips_and_bad_records_are_refused() -> None:
    roster = AdminRoster().with_admins([PHONE], 10.0, "config").with_admins([], 20.0, "admin:owner")
    assert AdminRoster.from_record(roster.to_record()) == roster
    for bad in ({"who": PHONE}, [{"who": PHONE, "since": "yesterday"}], [{"since": 1.0}],
                [{"who": PHONE, "since": 1.0, "until": float("nan")}]):
        with pytest.raises(ValueError):
            AdminRoster.from_record(bad)
