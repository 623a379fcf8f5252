"""Chat commands (`done`, `.rate 2.30`, `.paid 500 bkash TRX123`, `.due` …): one dispatch table.

Each row of `_TABLE` is a pattern and a builder; adding a command is adding a row. Orders (`.10`)
are never commands: they stay with domain.parsing. Who may run what is decided with `is_admin`
and `needs_admin`; what a command does is the caller's (the GroupActor's) business.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterable, Optional, Union

from domain.money import MoneyError, parse_rate
from domain.payments import MAX_REFERENCE, METHODS, PaymentError, check_amount, check_reference, parse_method


@dataclass(frozen=True, slots=True)
class Approve:
    target_id: str  # the quoted message: the order's, or the bot's receipt of it


@dataclass(frozen=True, slots=True)
class Cancel:
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


Command = Union[Approve, Cancel, SetRate, RecordPaid, ListPending, ShowDue, Help, ConfirmDuplicate, CommandError]

ADMIN_ONLY: frozenset[type] = frozenset({Approve, Cancel, SetRate, RecordPaid, ListPending})


# Admin commands that are plainly commands (a dot and a name): a reseller who writes one is told
# it is for admins. "done" or "ok" from a reseller is only chat and gets no answer.
SAYS_ADMIN_ONLY: frozenset[type] = frozenset({SetRate, RecordPaid, ListPending})


def tell_not_admin(command: Command) -> bool:
    """Whether a non-admin writing it is told it is for admins (instead of silence)."""
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
_TRAILING = "!.।"  # a reply word may end in ! or . (or the Bengali full stop)


def _reply_text(text: str) -> str:
    """A short reply reduced for comparison: NFC, lower case, no invisibles or trailing ! . ।"""
    return unicodedata.normalize("NFC", text.translate(_INVISIBLE)).strip().rstrip(_TRAILING).strip().casefold()


def _words(*words: str) -> re.Pattern[str]:
    """A pattern for exactly one of the words (matched against `_reply_text`)."""
    return re.compile("|".join(re.escape(_reply_text(w)) for w in words), re.IGNORECASE)


def _dot(name: str) -> re.Pattern[str]:
    """A pattern for `.name` and its arguments (group 1): a space, digit, ৳ or mark must follow the name."""
    return re.compile(rf"\.{name}(?=$|[\s0-9০-৯৳!?.,:])\s*(.*)", re.IGNORECASE | re.DOTALL)


_Builder = Callable[[re.Match[str], str], Optional[Command]]


@dataclass(frozen=True, slots=True)
class _Row:
    pattern: re.Pattern[str]
    build: _Builder  # (match, quoted_id) -> the command, or None when it is just chat
    reply_word: bool = False  # matched against the whole reduced text, not the raw text
    bare_error: bool = False  # a reply word that, sent without a reply, earns a CommandError


def _replying(kind: Callable[[str], Command], error: CommandError | None = None) -> _Builder:
    """A builder for a reply word: the command on the quoted message, else `error` (or None: chat)."""
    def build(match: re.Match[str], quoted_id: str) -> Command | None:
        return kind(quoted_id) if quoted_id else error
    return build


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


_TABLE: tuple[_Row, ...] = (
    _Row(_words("done", "ডান"), _replying(Approve, CommandError(
        "Reply done to the order to approve it", "অনুমোদন করতে অর্ডারের উত্তরে done লিখুন", Approve)),
        reply_word=True, bare_error=True),
    _Row(_words("ok", "okay", "✅", "হয়েছে"), _replying(Approve), reply_word=True),
    _Row(_words("cancel", "বাতিল"), _replying(Cancel, CommandError(
        "Reply cancel to the order to cancel it", "বাতিল করতে অর্ডারের উত্তরে cancel লিখুন", Cancel)),
        reply_word=True, bare_error=True),
    _Row(_words("yes", "y", "হ্যাঁ", "হা"), _replying(ConfirmDuplicate), reply_word=True),
    _Row(_dot("rate"), _set_rate),
    _Row(_dot("paid"), _record_paid),
    _Row(_dot("pending"), _plain(ListPending)),
    _Row(_dot("due"), _plain(ShowDue)),
    _Row(_dot("help"), _plain(Help)),
)


def _matches(text: str) -> Iterable[tuple[_Row, re.Match[str]]]:
    """The rows matching a text, in table order."""
    if len(text) > MAX_COMMAND_LENGTH:
        return
    stripped = text.strip()
    reply = _reply_text(stripped) if len(stripped) <= 40 else None
    for row in _TABLE:
        if row.reply_word:
            match = row.pattern.fullmatch(reply) if reply is not None else None
        else:
            match = row.pattern.fullmatch(stripped)
        if match is not None:
            yield row, match


def parse_command(text: str, quoted_id: str) -> Command | None:
    """The command a message gives, a CommandError if it is one written wrongly, or None (chat)."""
    for row, match in _matches(text):
        return row.build(match, quoted_id)
    return None


def looks_like_command(text: str, quoted_id: str) -> bool:
    """Cheap test the gateway uses to decide which messages to record: true when parse_command acts."""
    for row, _ in _matches(text):
        return not row.reply_word or bool(quoted_id) or row.bare_error
    return False


# ---------------------------------------------------------------------------------------------
# Who is an admin

_PHONE_SERVERS = ("s.whatsapp.net", "c.us")


def _identity(jid: str) -> tuple[str, str] | None:
    """("lid" | "phone", digits) of a sender JID; a device suffix ("…:12@…") is dropped."""
    user, at, server = jid.strip().partition("@")
    user = user.partition(":")[0]
    if not at or not user.isdigit() or not user.isascii():
        return None
    server = server.lower()
    if server == "lid":
        return "lid", user
    if server in _PHONE_SERVERS:
        return "phone", user
    return None


def _admin_identity(entry: str) -> tuple[str, str] | None:
    """An admins entry as ("lid" | "phone", digits): bare digits (a leading + or spaces allowed) are a phone."""
    if "@" in entry:
        return _identity(entry)
    digits = re.sub(r"[\s+\-()]", "", entry)
    return ("phone", digits) if digits.isdigit() and digits.isascii() else None


def is_admin(sender: str, sender_alt: str, admins: Iterable[str]) -> bool:
    """Whether the sender (or its other form) is listed; LIDs match LID entries only, phones phone entries."""
    senders = {i for i in map(_identity, (sender, sender_alt)) if i is not None}
    return bool(senders) and any(_admin_identity(a) in senders for a in admins)
