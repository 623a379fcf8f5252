"""Chat commands and who may give them (domain/commands.py)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from domain import commands
from domain.commands import (
    ADMIN_ONLY,
    Approve,
    Cancel,
    Command,
    CommandError,
    ConfirmDuplicate,
    Help,
    ListPending,
    RecordPaid,
    SetRate,
    ShowDue,
    Undo,
    looks_like_command,
    needs_admin,
    parse_command,
)
from domain.parsing import parse_order

Q = "3EB0QUOTED"  # the id of the message replied to
D = Decimal


# --- reply words ---------------------------------------------------------------------------

EXPLICIT_APPROVE = ["done", "Done", "DONE", " done ", "done!", "Done.", "done!!", "ডান", "ডান!",
                    # what admins evidently mean (issue 10): marks, emoji, courtesies around the word
                    "Done ✅", "done.", "done ✅✅", "✅ done", "Done bhai", "done ভাই!", "done, thanks", "dn"]
IMPLICIT_APPROVE = ["ok", "OK", "Ok!", "okay", "Okay.", "✅", "✅️", "হয়েছে", "হয়েছে।", "ok ভাই", "OK vai",
                    "okk", "✅✅", "👍", "ok thanks", "হয়ে গেছে", "দিয়ে দিছি ভাই", "ওকে", "sent ✅"]
APPROVE_WORDS = EXPLICIT_APPROVE + IMPLICIT_APPROVE
CANCEL_WORDS = ["cancel", "Cancel", "CANCEL!", " cancel. ", "বাতিল", "বাতিল।", "cancelled", "cancel ভাই", "❌"]
YES_WORDS = ["yes", "Yes", "YES!", "y", "Y", "হ্যাঁ", "হ্যাঁ।", "হা"]


@pytest.mark.parametrize("text", EXPLICIT_APPROVE)
def test_explicit_approve_words_as_replies(text: str) -> None:
    assert parse_command(text, Q) == Approve(Q, explicit=True)


@pytest.mark.parametrize("text", IMPLICIT_APPROVE)
def test_casual_approve_words_as_replies(text: str) -> None:
    # An admin means "approved"; from a reseller it is only chat (no "admins only" answer).
    assert parse_command(text, Q) == Approve(Q, explicit=False)


@pytest.mark.parametrize("text", CANCEL_WORDS)
def test_cancel_words_as_replies(text: str) -> None:
    assert parse_command(text, Q) == Cancel(Q, explicit=text != "❌")


@pytest.mark.parametrize("text", ["ভুল", "wrong", "Undo", "ভুল ভাই", "wrong!", "oops"])
def test_undo_words_as_replies(text: str) -> None:
    assert parse_command(text, Q) == Undo(Q)
    assert parse_command(text, "") is None  # not a reply: chat


@pytest.mark.parametrize("text", YES_WORDS)
def test_yes_words_confirm_a_duplicate(text: str) -> None:
    assert parse_command(text, Q) == ConfirmDuplicate(Q)


@pytest.mark.parametrize("text", ["ok", "OK", "okay", "✅", "হয়েছে", "yes", "y", "হ্যাঁ", "হা", "ok ভাই", "👍"])
def test_casual_words_outside_a_reply_are_chat(text: str) -> None:
    assert parse_command(text, "") is None
    assert not looks_like_command(text, "")


@pytest.mark.parametrize(("text", "kind"), [("done", Approve), ("Done!", Approve), ("ডান", Approve),
                                            ("cancel", Cancel), ("বাতিল", Cancel)])
def test_command_words_outside_a_reply_say_how(text: str, kind: type) -> None:
    result = parse_command(text, "")
    assert isinstance(result, CommandError) and result.command is kind
    assert "reply" in result.message.lower() and "উত্তরে" in result.bn
    assert needs_admin(result)  # only an admin is told


@pytest.mark.parametrize("text", ["done it", "is it done?", "d o n e", "yes!?", "no", "ok, .10", "yeah",
                                  "হয়েছে?", "done ❌", "ok cancel", "thanks", "ভাই", "payment done",
                                  "done " + "ভাই " * 20])
def test_reply_words_must_make_the_whole_message(text: str) -> None:
    # Anything but reply words and courtesies, a question, a mix of meanings, or a long text is chat.
    assert parse_command(text, Q) is None


# --- dot commands --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (".rate 2.30", SetRate(D("2.30"))),
        (".rate 2.3", SetRate(D("2.30"))),
        (".RATE 100", SetRate(D("100.00"))),
        ("  .rate   0.335  ", SetRate(D("0.335"))),
        (".rate ১০০", SetRate(D("100.00"))),
        (".rate ২.৩০", SetRate(D("2.30"))),
        (".rate ৳2.35", SetRate(D("2.35"))),
        (".rate2.30", SetRate(D("2.30"))),
        (".paid 500 bkash TRX123", RecordPaid(D("500.00"), "bkash", "TRX123")),
        (".paid 500 bKash trx123", RecordPaid(D("500.00"), "bkash", "trx123")),  # the reference keeps its case
        (".PAID 23.50 nagad", RecordPaid(D("23.50"), "nagad", "")),
        (".paid ৫০০ বিকাশ 8N7A6B", RecordPaid(D("500.00"), "bkash", "8N7A6B")),
        (".paid 500 নগদ 01712", RecordPaid(D("500.00"), "nagad", "01712")),
        (".paid 500 নগদ টাকা", RecordPaid(D("500.00"), "cash", "")),
        (".paid 500 নগদ টাকা from Karim", RecordPaid(D("500.00"), "cash", "from Karim")),
        (".paid 1,000 bank transfer DBBL 778", RecordPaid(D("1000.00"), "bank", "DBBL 778")),
        (".paid ৳750 cash", RecordPaid(D("750.00"), "cash", "")),
        (".paid 0.10 rocket R1", RecordPaid(D("0.10"), "rocket", "R1")),
        (".paid 500 cash thanks a lot", RecordPaid(D("500.00"), "cash", "thanks a lot")),
        (".pending", ListPending()),
        (".Pending", ListPending()),
        (".due", ShowDue()),
        (" .DUE ", ShowDue()),
        (".help", Help()),
        (".help please", Help()),
        (".due?", ShowDue()),
    ],
)
def test_dot_commands(text: str, expected: Command) -> None:
    assert parse_command(text, "") == expected
    assert parse_command(text, Q) == expected  # a reply changes nothing


@pytest.mark.parametrize(
    ("text", "kind", "says"),
    [
        (".rate", SetRate, "Write the new rate"),
        (".rate abc", SetRate, "not understood"),
        (".rate 0", SetRate, "not understood"),
        (".rate -2", SetRate, "not understood"),
        (".rate 2.300001", SetRate, "not understood"),
        (".rate 2,30", SetRate, "not understood"),
        (".rate 1e3", SetRate, "not understood"),  # a typo, not ৳1000 a diamond
        (".rate १०", SetRate, "not understood"),
        (".paid", RecordPaid, "amount and the method"),
        (".paid 1e2 cash", RecordPaid, "Amount not understood"),
        (".paid   ", RecordPaid, "amount and the method"),
        (".paid bkash 500", RecordPaid, "Amount not understood"),
        (".paid 0 bkash", RecordPaid, "more than 0"),
        (".paid -5 bkash", RecordPaid, "more than 0"),
        (".paid 10.005 cash", RecordPaid, "two decimal places"),
        (".paid 99999999 cash", RecordPaid, "at most 1,00,00,000"),
        (".paid 500", RecordPaid, "Which method?"),
        (".paid 500 TRX123", RecordPaid, "Unknown method 'TRX123'"),
        (".paid 500 visa 1234", RecordPaid, "Unknown method 'visa'"),
        (".paid 500 bkash " + "X" * 101, RecordPaid, "Reference too long"),
    ],
)
def test_malformed_commands(text: str, kind: type, says: str) -> None:
    result = parse_command(text, "")
    assert isinstance(result, CommandError), result
    assert result.command is kind
    assert says in result.message
    assert result.bn and result.bn != result.message
    assert result.in_language("bn") == result.bn and result.in_language("en") == result.message
    assert ".rate 2.30" in result.message if kind is SetRate else ".paid 500 bkash TRX123" in result.message


def test_paid_method_errors_list_the_methods() -> None:
    for text in (".paid 500", ".paid 500 visa"):
        result = parse_command(text, "")
        assert isinstance(result, CommandError)
        assert "bkash, nagad, rocket, bank, cash, other" in result.message
        assert "bkash, nagad, rocket, bank, cash, other" in result.bn


@pytest.mark.parametrize("text", [".rates", ".ratex 2", ".paidx", ".dues", ".helpme", ".pendings", ". due",
                                  "due", "rate 2.30", "paid 500 bkash", "..due", "x .due",
                                  ".due\u09be", ".dueé", ".rate_2"])
def test_near_misses_are_chat(text: str) -> None:
    assert parse_command(text, "") is None
    assert not looks_like_command(text, "")


# --- orders are never commands -------------------------------------------------------------

ORDERS = [".10", ".1", ".100", ".১০", " .10 ", ".0", ".-5", ".1e3", ".99999999999", ". 10", ".+5", ".10.5", ".১০০০০"]


@pytest.mark.parametrize("text", ORDERS)
def test_order_texts_are_never_commands(text: str) -> None:
    assert parse_order(text, 1, 100_000) is not None  # parsing's: an order or an order-looking text
    assert parse_command(text, "") is None and parse_command(text, Q) is None
    assert not looks_like_command(text, "") and not looks_like_command(text, Q)


# --- looks_like_command agrees with parse_command -------------------------------------------

CORPUS = (APPROVE_WORDS + CANCEL_WORDS + YES_WORDS + ORDERS + [
    "", " ", "hello", "ok thanks", "done done", "payment done", ".rate 2.30", ".rate", ".rate x", ".paid 5 cash",
    ".paid", ".paid x", ".pending", ".due", ".help", ".dues", "দাম কত?", "ভাই অর্ডার দিলাম", "✅✅", "👍", ".", "..",
    "!", "done\n.10", ".due\n", ".rate\n2.30", "y" * 50, "ok" + " " * 5000, ".help " + "x" * 2000, "\u200d",
])


def _mutations(rng: random.Random, text: str) -> str:
    """A random variant: case, padding, a trailing mark or a random character inserted."""
    choice = rng.randrange(5)
    if choice == 0:
        return text.upper()
    if choice == 1:
        return " " * rng.randrange(3) + text + " " * rng.randrange(3)
    if choice == 2:
        return text + rng.choice(["!", ".", "।", "?", "!!", ""])
    if choice == 3 and text:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice("a.1 ৳✅\u200c") + text[i:]
    return text


def test_looks_like_command_agrees_with_parse_command() -> None:
    rng = random.Random(5)
    table = CORPUS + [_mutations(rng, rng.choice(CORPUS)) for _ in range(5000)]
    for text in table:
        for quoted in ("", Q):
            assert looks_like_command(text, quoted) == (parse_command(text, quoted) is not None), (text, quoted)


def test_very_long_texts_are_not_commands() -> None:
    assert parse_command(".paid 500 cash " + "x" * commands.MAX_COMMAND_LENGTH, "") is None
    assert not looks_like_command("done" + " " * 10_000, Q)


# --- who needs to be an admin ---------------------------------------------------------------


def test_admin_only_commands() -> None:
    assert ADMIN_ONLY == frozenset({Approve, Cancel, Undo, SetRate, RecordPaid, ListPending})
    for cmd in (Approve(Q), Cancel(Q), SetRate(D("2.30")), RecordPaid(D("1.00"), "cash", ""), ListPending(),
                CommandError("x", "", SetRate), CommandError("x", "", RecordPaid)):
        assert needs_admin(cmd)
    for cmd in (ShowDue(), Help(), ConfirmDuplicate(Q), CommandError("x")):
        assert not needs_admin(cmd)


def test_commands_are_frozen() -> None:
    with pytest.raises(AttributeError):
        SetRate(D("1")).rate = D("2")  # type: ignore[misc]
