"""Chat commands (`done`, `.rate 2.30`, `.paid 500 bkash TRX123`, `.due` …): one dispatch table.

Each row of `_TABLE` is a pattern and a builder; adding a command is adding a row. Orders (`.10`)
are never commands: they stay with domain.parsing. Who may run what is decided with `needs_admin`
and the shop's admin roster (domain.admins); what a command does is the desk's business
(domain.desk).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Optional, Union

from domain.money import MoneyError, parse_rate
from domain.payments import MAX_REFERENCE, METHODS, PaymentError, check_amount, check_reference, parse_method


@dataclass(frozen=True, slots=True)
class Approve:
    target_id: str  # the quoted message: the order's, or the bot's receipt of it
    # Plainly a command ("done"): someone who may not give it is told so. "ok" or ✅ from a
    # reseller is only chat and gets no answer.
    explicit: bool = True


@dataclass(frozen=True, slots=True)
class Cancel:
    target_id: str
    explicit: bool = True


@dataclass(frozen=True, slots=True)
class Undo:
    """"ভুল" / "wrong" / "undo" as a reply to an order, its delivery, or the "done" that approved it."""

    target_id: str


@dataclass(frozen=True, slots=True)
class SetRate:
    rate: Decimal


@dataclass(frozen=True, slots=True)
class RecordPaid:
    amount: Decimal
    method: str  # one of domain.payments.METHODS
    reference: str


@dataclass(frozen=True, slots=True)
class ListPending:
    pass


@dataclass(frozen=True, slots=True)
class ShowDue:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class ConfirmDuplicate:
    target_id: str  # the quoted message: the bot's duplicate question


@dataclass(frozen=True, slots=True)
class CommandError:
    """A recognised command written wrongly; `message` is English, `bn` the Bengali reply."""

    message: str
    bn: str = ""
    command: type | None = None  # the command it was meant to be (decides who is answered)

    def in_language(self, language: str) -> str:
        """The message in the bot's language ("bn" or "en")."""
        return self.bn if language == "bn" and self.bn else self.message


Command = Union[Approve, Cancel, Undo, SetRate, RecordPaid, ListPending, ShowDue, Help, ConfirmDuplicate,
                CommandError]

ADMIN_ONLY: frozenset[type] = frozenset({Approve, Cancel, Undo, SetRate, RecordPaid, ListPending})


# Admin commands that are plainly commands (a dot and a name): a reseller who writes one is told
# it is for admins. "done" or "ok" from a reseller is only chat and gets no answer.
SAYS_ADMIN_ONLY: frozenset[type] = frozenset({SetRate, RecordPaid, ListPending})


def tell_not_admin(command: Command) -> bool:
    """Whether a non-admin writing it is told it is for admins (instead of silence)."""
    if isinstance(command, (Approve, Cancel)):
        return command.explicit
    if isinstance(command, Undo):
        return True
    kind = command.command if isinstance(command, CommandError) else type(command)
    return kind in SAYS_ADMIN_ONLY


def needs_admin(command: Command) -> bool:
    """Whether only an admin may run it (or be told how to write it)."""
    kind = command.command if isinstance(command, CommandError) else type(command)
    return kind in ADMIN_ONLY


# ---------------------------------------------------------------------------------------------
# The table

# Longer texts are never commands (and are not worth normalising).
MAX_COMMAND_LENGTH = 1000
_BENGALI_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
# Invisible characters keyboards add: variation selector (✅️), zero-width (non-)joiners, BOM.
_INVISIBLE = str.maketrans("", "", "\ufe0f\u200b\u200c\u200d\ufeff")


class _Meaning(enum.Enum):
    APPROVE = "approve"
    CANCEL = "cancel"
    YES = "yes"
    UNDO = "undo"
    COURTESY = "courtesy"  # "ভাই", "thanks": said around a reply word, means nothing by itself


# What each word of a short reply means, and whether it is plainly a command (explicit): a
# reseller who writes an explicit word is told it is for admins; "ok" or 👍 is only chat.
_REPLY_WORDS: dict[str, tuple[_Meaning, bool]] = {
    **dict.fromkeys(("done", "ডান", "dn"), (_Meaning.APPROVE, True)),
    **dict.fromkeys(("ok", "okay", "okey", "okk", "ওকে", "হয়েছে", "হয়ে", "গেছে", "দেওয়া", "দিয়ে", "দিছি",
                     "দিয়েছি", "দিলাম", "complete", "completed", "sent", "✅", "✔", "☑", "👍", "👌"),
                    (_Meaning.APPROVE, False)),
    **dict.fromkeys(("cancel", "cancelled", "canceled", "বাতিল"), (_Meaning.CANCEL, True)),
    **dict.fromkeys(("❌", "✖"), (_Meaning.CANCEL, False)),
    **dict.fromkeys(("yes", "y", "হ্যাঁ", "হ্যা", "হা", "ha", "haa"), (_Meaning.YES, False)),
    **dict.fromkeys(("undo", "wrong", "ভুল", "vul", "bhul", "oops"), (_Meaning.UNDO, True)),
    **dict.fromkeys(("ভাই", "ভাইয়া", "vai", "bhai", "bhaiya", "bro", "boss", "sir", "dada", "দাদা", "আপু", "apu",
                     "thanks", "thank", "you", "ty", "ধন্যবাদ", "please", "pls", "plz", "ji", "জি"),
                    (_Meaning.COURTESY, False)),
}
_SYMBOLS = "✅✔☑👍👌❌✖"
_MARKS = re.compile(r"[.,!।;:]+")
MAX_REPLY_LENGTH = 60  # a reply word with a few courtesies; longer replies are conversation


def _reply_meaning(text: str) -> tuple[_Meaning, bool] | None:
    """What a short reply means (APPROVE, CANCEL or YES) and whether it is explicit; None: chat.

    Every word must be a reply word or a courtesy, all of one meaning ("Done ✅", "ok ভাই",
    "done."); a question ("done?") or a mix ("done ❌") is chat."""
    if len(text) > MAX_REPLY_LENGTH:
        return None
    reduced = unicodedata.normalize("NFC", text.translate(_INVISIBLE)).casefold()
    if "?" in reduced:
        return None
    for symbol in _SYMBOLS:
        if symbol in reduced:
            reduced = reduced.replace(symbol, f" {symbol} ")
    meanings = [_REPLY_WORDS.get(word) for word in _MARKS.sub(" ", reduced).split()]
    if not meanings or None in meanings:
        return None
    said = [m for m in meanings if m is not None and m[0] is not _Meaning.COURTESY]
    if not said or len({m for m, _ in said}) != 1:
        return None
    return said[0][0], any(explicit for _, explicit in said)


def _dot(name: str) -> re.Pattern[str]:
    """A pattern for `.name` and its arguments (group 1): a space, digit, ৳ or mark must follow the name."""
    return re.compile(rf"\.{name}(?=$|[\s0-9০-৯৳!?.,:])\s*(.*)", re.IGNORECASE | re.DOTALL)


_Builder = Callable[[re.Match[str], str], Optional[Command]]


@dataclass(frozen=True, slots=True)
class _Row:
    pattern: re.Pattern[str]
    build: _Builder  # (match, quoted_id) -> the command, or None when it is just chat


def _plain(kind: Callable[[], Command]) -> _Builder:
    """A builder for a command without arguments (anything after it is ignored)."""
    return lambda match, quoted_id: kind()


def _set_rate(match: re.Match[str], quoted_id: str) -> Command:
    """`.rate 2.30` (Bengali digits and a ৳ sign allowed)."""
    arg = match.group(1).strip().translate(_BENGALI_DIGITS).strip("৳").strip()
    if not arg:
        return CommandError("Write the new rate. Example: .rate 2.30", "নতুন রেট লিখুন। উদাহরণ: .rate 2.30", SetRate)
    try:
        return SetRate(parse_rate(arg))
    except MoneyError as e:
        return CommandError(f"Rate not understood ({e}). Example: .rate 2.30",
                            "রেট বোঝা যায়নি। উদাহরণ: .rate 2.30", SetRate)


_PAID_EXAMPLE = ".paid 500 bkash TRX123"
_METHOD_LIST = ", ".join(METHODS)


def _paid_error(en: str, bn: str) -> CommandError:
    """A `.paid` error, with an example of the command appended."""
    return CommandError(f"{en}. Example: {_PAID_EXAMPLE}", f"{bn}। উদাহরণ: {_PAID_EXAMPLE}", RecordPaid)


def _amount_word(word: str) -> str:
    """An amount as typed ("৫০০", "1,000", "৳500") as a decimal string."""
    return word.translate(_BENGALI_DIGITS).strip("৳").replace(",", "")


def _record_paid(match: re.Match[str], quoted_id: str) -> Command:
    """`.paid AMOUNT METHOD [REFERENCE…]`; the method may be two words ("নগদ টাকা", "bank transfer")."""
    words = match.group(1).split()
    if not words:
        return _paid_error("Write the amount and the method", "টাকার পরিমাণ ও মাধ্যম লিখুন")
    try:
        amount = check_amount(_amount_word(words[0]))
    except PaymentError as e:
        return _paid_error(f"Amount not understood ({str(e).removeprefix('amount: ')})", "টাকার পরিমাণ বোঝা যায়নি")
    if len(words) == 1:
        return _paid_error(f"Which method? ({_METHOD_LIST})", f"কোন মাধ্যমে? ({_METHOD_LIST})")
    for n in (2, 1):  # the longer spelling first: "নগদ টাকা" is cash, "নগদ" Nagad
        if len(words) < 1 + n:
            continue
        try:
            method = parse_method(" ".join(words[1:1 + n]))
        except PaymentError:
            continue
        reference = " ".join(words[1 + n:])
        try:
            reference = check_reference(reference)
        except PaymentError:
            if len(reference) > MAX_REFERENCE:
                return _paid_error(f"Reference too long (at most {MAX_REFERENCE} characters)",
                                   f"রেফারেন্স খুব লম্বা (সর্বোচ্চ {MAX_REFERENCE} অক্ষর)")
            return _paid_error("Reference has invisible characters", "রেফারেন্সে অদৃশ্য অক্ষর আছে")
        return RecordPaid(amount, method, reference)
    shown = words[1][:30]
    return _paid_error(f"Unknown method {shown!r} (use {_METHOD_LIST})",
                       f"অজানা মাধ্যম '{shown}' ({_METHOD_LIST})")


# Dot commands; reply words are read by `_reply_meaning`.
_TABLE: tuple[_Row, ...] = (
    _Row(_dot("rate"), _set_rate),
    _Row(_dot("paid"), _record_paid),
    _Row(_dot("pending"), _plain(ListPending)),
    _Row(_dot("due"), _plain(ShowDue)),
    _Row(_dot("help"), _plain(Help)),
)

# An explicit reply word sent without replying to anything: how to use it (said to admins).
_BARE = {
    _Meaning.APPROVE: CommandError("Reply done to the order to approve it",
                                   "অনুমোদন করতে অর্ডারের উত্তরে done লিখুন", Approve),
    _Meaning.CANCEL: CommandError("Reply cancel to the order to cancel it",
                                  "বাতিল করতে অর্ডারের উত্তরে cancel লিখুন", Cancel),
}


def parse_command(text: str, quoted_id: str) -> Command | None:
    """The command a message gives, a CommandError if it is one written wrongly, or None (chat)."""
    if len(text) > MAX_COMMAND_LENGTH:
        return None
    stripped = text.strip()
    reply = _reply_meaning(stripped)
    if reply is not None:
        meaning, explicit = reply
        if not quoted_id:
            return _BARE.get(meaning) if explicit else None
        if meaning is _Meaning.APPROVE:
            return Approve(quoted_id, explicit)
        if meaning is _Meaning.CANCEL:
            return Cancel(quoted_id, explicit)
        if meaning is _Meaning.UNDO:
            return Undo(quoted_id)
        return ConfirmDuplicate(quoted_id)
    for row in _TABLE:
        match = row.pattern.fullmatch(stripped)
        if match is not None:
            return row.build(match, quoted_id)
    return None


def looks_like_command(text: str, quoted_id: str) -> bool:
    """The gateway's test of which messages to record: true when parse_command acts."""
    return parse_command(text, quoted_id) is not None
