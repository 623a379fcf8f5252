"""Outbound: the message to send, built here (a reply quotes the order message from what the
order stored, so it works after a restart), and neonize's send errors mapped to a SendOutcome."""

from __future__ import annotations

import logging
import re
from typing import Any

from neonize.proto import Neonize_pb2 as neonize_proto
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

from domain.chat import OutboundText, Quote, SendOutcome
from gateway.whatsapp.convert import GROUP_SERVER, jid_text, parse_jid, to_seconds

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


def reply_context(quote: Quote) -> wa.ContextInfo:
    """What makes a message a reply: the quoted message's id, its sender (without device) and its
    text. Raises ValueError if the sender is not a WhatsApp id."""
    return wa.ContextInfo(stanzaID=quote.message_id, participant=jid_text(parse_jid(quote.sender)),
                          quotedMessage=wa.Message(conversation=quote.text))


def build_message(request: OutboundText) -> wa.Message:
    """The message to send: the text as it is, quoting `request.quote` when there is one.

    Built here rather than with neonize's build_reply_message, which turns every "@<digits>" of
    the text into a mention and looks every "@<id>@g.us" up on the network."""
    if request.quote is not None and request.quote.message_id:
        try:
            context = reply_context(request.quote)
        except ValueError as e:
            # Better the text without its quote than no text at all.
            log.warning("sending %s without its quote: %s", request.request_id, e)
        else:
            return wa.Message(extendedTextMessage=wa.ExtendedTextMessage(text=request.text, contextInfo=context))
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
