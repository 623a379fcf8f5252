"""Outbound: a reply built with neonize's own builders, quoting the order message from what the
order stored (so it works after a restart), and neonize's send errors mapped to a SendOutcome."""

from __future__ import annotations

import logging
import re
from typing import Any

from neonize.proto import Neonize_pb2 as neonize_proto
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

from domain.chat import OutboundText, Quote, SendOutcome
from gateway.whatsapp.convert import GROUP_SERVER, parse_jid, to_seconds

log = logging.getLogger(__name__)

# The server asked us to slow down: pause all sending (whatsmeow: "server returned error 429",
# IQ errors "info query returned status 429: rate-overlimit").
_RATE_LIMITED = re.compile(r"\b429\b|rate-?overlimit|overlimit|too many requests", re.IGNORECASE)
_STATUS = re.compile(r"(?:server returned error|returned status|status code|error code)\s*:?\s*(\d{3})\b",
                     re.IGNORECASE)
# Sending it again cannot help: a malformed address, a group the number is not in.
_PERMANENT = re.compile(r"invalid jid|unknown server|not a whatsapp id|bad.?request|not-acceptable|forbidden|"
                        r"item-not-found|not-authorized|gone\b", re.IGNORECASE)


def group_jid(group_id: str) -> neonize_proto.JID:
    """The JID of a group chat; raises ValueError if the id is not "<digits>@g.us"."""
    jid = parse_jid(group_id)
    if jid.Server != GROUP_SERVER:
        raise ValueError(f"not a group id: {group_id!r}")
    return jid


def quoted_message(group_id: str, quote: Quote) -> neonize_proto.Message:
    """The quoted order message as neonize's reply builder reads it (id, sender, chat, text),
    rebuilt from the stored Quote. SenderAlt stays unset: the builder would prefer it."""
    source = neonize_proto.MessageSource(Chat=group_jid(group_id), Sender=parse_jid(quote.sender),
                                         IsGroup=True, IsFromMe=False)
    return neonize_proto.Message(Info=neonize_proto.MessageInfo(ID=quote.message_id, MessageSource=source),
                                 Message=wa.Message(conversation=quote.text))


def build_message(client: Any, request: OutboundText) -> wa.Message:
    """The message to send: a reply quoting `request.quote` (neonize's build_reply_message sets
    the stanza id, the participant and the quoted text), or plain text."""
    if request.quote is not None and request.quote.message_id:
        try:
            quoted = quoted_message(request.group_id, request.quote)
        except ValueError as e:
            # Better the text without its quote than no text at all.
            log.warning("sending %s without its quote: %s", request.request_id, e)
        else:
            return client.build_reply_message(request.text, quoted)
    return wa.Message(conversation=request.text)


def sent(request_id: str, response: Any, now: float) -> SendOutcome:
    """A successful send's outcome from neonize's SendResponse."""
    timestamp = to_seconds(response.Timestamp) if getattr(response, "Timestamp", 0) else now
    return SendOutcome(request_id, True, message_id=str(response.ID), timestamp=timestamp)


def failed(request_id: str, error: BaseException | str) -> SendOutcome:
    """A failed send's outcome: rate limits pause all sending; transient errors are retryable."""
    text = str(error) or type(error).__name__
    if _RATE_LIMITED.search(text):
        return SendOutcome(request_id, False, error=text, retryable=True, rate_limited=True)
    status = _STATUS.search(text)
    if status is not None:
        code = int(status.group(1))
        return SendOutcome(request_id, False, error=text, retryable=code >= 500 or code == 408)
    if _PERMANENT.search(text):
        return SendOutcome(request_id, False, error=text, retryable=False)
    # Everything else (not connected, timeouts, network trouble, the unknown) is worth another
    # try: a missed delivery is worse than a rare duplicate.
    return SendOutcome(request_id, False, error=text, retryable=True)
