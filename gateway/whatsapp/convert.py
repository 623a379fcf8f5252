"""neonize events as the bot's chat world: ChatMessage, GroupInfo, and the edits and deletes the
bot must recognise without ever taking them for orders. Pure functions, no I/O.

What neonize 0.5.2 delivers (checked in its Go encoder, goneonize/utils/encoder.go):
`Message.Info.Timestamp` is `UnixMilli()`; every JID field is filled, an absent one as an empty
JID (`User == ""`); `Message.Message` is whatsmeow's unwrapped message (ephemeral and view-once
wrappers removed), so an edit arrives as a `protocolMessage` of type MESSAGE_EDIT and a delete
as one of type REVOKE, whose own text reads as empty.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from neonize.proto import Neonize_pb2 as neonize_proto
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

from domain.chat import ChatMessage, GroupInfo, GroupsChange, Source

GROUP_SERVER = "g.us"


class ChangeKind(enum.Enum):
    """What a message does to an earlier one."""

    EDIT = "edit"
    REVOKE = "revoke"  # "delete for everyone"


# whatsmeow's MessageInfo.Edit ("edit attribute") values.
EDIT_ATTRIBUTES = {"1": ChangeKind.EDIT, "3": ChangeKind.EDIT, "7": ChangeKind.REVOKE, "8": ChangeKind.REVOKE}
_JID_TEXT = re.compile(r"^(?P<user>[^@:.]*)(?:\.\d+)?(?::\d+)?@(?P<server>[^@]+)$")
# Messages whose content is another message: unwrapped before reading the text (history sync
# delivers them wrapped; live messages come unwrapped from whatsmeow already).
_WRAPPERS = ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension",
             "deviceSentMessage", "documentWithCaptionMessage")


@dataclass(frozen=True, slots=True)
class MessageChange:
    """An edit or delete of an earlier group message. Never a new message: it reaches the bot
    only as a ChatMessage with `edits` or `revokes` set (see change_message)."""

    kind: ChangeKind
    group_id: str
    message_id: str  # the message edited or deleted ("" when WhatsApp did not say)
    by: str  # who edited or deleted it
    new_text: str  # an edit's new text ("" for a delete, or an edit that is not text)
    timestamp: float


# -- ids and times -----------------------------------------------------------------------------


def jid_text(jid: neonize_proto.JID) -> str:
    """A JID as "user@server" without device or agent; "" for an empty JID."""
    if not jid.User:
        return ""
    return f"{jid.User}@{jid.Server}"


def plain_id(text: str) -> str:
    """A JID string without device or agent ("7621:5@lid" is "7621@lid"); other text unchanged."""
    match = _JID_TEXT.match(text.strip())
    return f"{match['user']}@{match['server']}" if match else text.strip()


def parse_jid(text: str) -> neonize_proto.JID:
    """A "user@server" string as a neonize JID; raises ValueError for anything else."""
    user, at, server = plain_id(text).partition("@")
    if not at or not user or not server or "@" in server:
        raise ValueError(f"not a WhatsApp id: {text!r}")
    return neonize_proto.JID(User=user, Server=server, RawAgent=0, Device=0, Integrator=0, IsEmpty=False)


def to_seconds(value: float) -> float:
    """A timestamp in seconds, whether it came in seconds, milliseconds, micro- or nanoseconds."""
    value = float(value)
    for limit, scale in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
        if abs(value) >= limit:
            return value / scale
    return value


# -- message content ---------------------------------------------------------------------------


def unwrap(message: wa.Message) -> wa.Message:
    """The innermost message of ephemeral, view-once and similar wrappers."""
    for _ in range(4):
        for name in _WRAPPERS:
            wrapper = getattr(message, name)
            if message.HasField(name) and wrapper.HasField("message"):
                message = wrapper.message
                break
        else:
            return message
    return message


def text_of(message: wa.Message) -> str | None:
    """The text of a text message; None for anything else (media, reactions, protocol messages)."""
    if message.HasField("conversation"):
        return message.conversation
    if message.HasField("extendedTextMessage"):
        return message.extendedTextMessage.text
    return None


def quoted_id_of(message: wa.Message) -> str:
    """The id of the message this one replies to, or ""."""
    if message.HasField("extendedTextMessage"):
        return message.extendedTextMessage.contextInfo.stanzaID
    return ""


def change_of(ev: neonize_proto.Message) -> MessageChange | None:
    """The edit or delete a message event carries, or None if it is an ordinary message.

    The hook for acting on edits and deletes: the transport calls it before anything else, so
    such an event never reaches the order path, whatever its text reads as."""
    info = ev.Info
    inner = unwrap(ev.Message)
    protocol = inner.protocolMessage if inner.HasField("protocolMessage") else None
    kind = EDIT_ATTRIBUTES.get(info.Edit)
    if protocol is not None:
        if protocol.type == wa.ProtocolMessage.REVOKE:
            kind = ChangeKind.REVOKE
        elif protocol.type == wa.ProtocolMessage.MESSAGE_EDIT:
            kind = ChangeKind.EDIT
    if ev.IsEdit or inner.HasField("editedMessage"):
        kind = kind or ChangeKind.EDIT
    if kind is None:
        return None
    target = protocol.key.ID if protocol is not None else ""
    new_text = ""
    if kind is ChangeKind.EDIT and protocol is not None and protocol.HasField("editedMessage"):
        new_text = text_of(unwrap(protocol.editedMessage)) or ""
    source = info.MessageSource
    return MessageChange(kind=kind, group_id=jid_text(source.Chat), message_id=target,
                         by=jid_text(source.Sender), new_text=new_text, timestamp=to_seconds(info.Timestamp))


def is_group(chat: str) -> bool:
    return chat.endswith("@" + GROUP_SERVER)


def accepts_changes(sink: Any) -> bool:
    """Whether a TransportSink reads `ChatMessage.edits` and `revokes` (it says so with a class
    attribute `accepts_changes = True`). One that does not would take an edit's new text for a new
    message, a new order: it is given no edits and no deletes."""
    return getattr(sink, "accepts_changes", False) is True


def _senders(src: Any) -> tuple[str, str] | None:
    """(sender, its other form or "") of a message; None when it names no sender and is not ours."""
    sender = jid_text(src.Sender)
    if not sender and not src.IsFromMe:
        return None
    alt = jid_text(src.SenderAlt)
    return sender, "" if alt == sender else alt


def change_message(ev: neonize_proto.Message, change: MessageChange, group_name: str,
                   source: Source) -> ChatMessage | None:
    """A group message's edit or delete (`change_of(ev)`) as a ChatMessage with `edits` or
    `revokes` naming the changed message: the change's own id and time, its sender normalised as
    for any message, the new text for an edit and "" for a delete.

    None for a chat that is not a group, for a change that does not say which message it changes,
    and for an edit whose new content is not text (a caption): with neither `edits` nor `revokes`
    set, its text would read as a new message."""
    edit = change.kind is ChangeKind.EDIT
    if not change.message_id or (edit and not change.new_text):
        return None
    return _group_message(ev, group_name, source, text=change.new_text if edit else "", timestamp=change.timestamp,
                          edits=change.message_id if edit else "", revokes="" if edit else change.message_id)


def chat_message(ev: neonize_proto.Message, group_name: str, source: Source) -> ChatMessage | None:
    """A group text message as a ChatMessage; None for a chat that is not a group, a message that
    is not text, or an edit or delete (see change_of)."""
    if change_of(ev) is not None:
        return None
    content = unwrap(ev.Message)
    text = text_of(content)
    if text is None:
        return None
    return _group_message(ev, group_name, source, text=text, timestamp=to_seconds(ev.Info.Timestamp),
                          quoted_id=quoted_id_of(content))


def _group_message(ev: neonize_proto.Message, group_name: str, source: Source, **content: Any) -> ChatMessage | None:
    """A message event as a ChatMessage with `content` (text, time, quote or change): None for a
    chat that is not a group, a message without id, or one that names no sender and is not ours."""
    info = ev.Info
    src = info.MessageSource
    chat = jid_text(src.Chat)
    if not src.IsGroup or not is_group(chat) or not info.ID:
        return None
    senders = _senders(src)
    if senders is None:
        return None
    return ChatMessage(group_id=chat, group_name=group_name, message_id=info.ID, sender=senders[0],
                       sender_alt=senders[1], sender_name=info.Pushname, from_me=src.IsFromMe, source=source,
                       **content)


# -- history sync ------------------------------------------------------------------------------


def history_group_names(data: Any) -> dict[str, str]:
    """Group names a HistorySync carries (`HistorySync.Data`)."""
    names = {}
    for conv in data.conversations:
        name = conv.name or conv.displayName
        if is_group(conv.ID) and name:
            names[conv.ID] = name
    return names


def history_messages(data: Any, names: Mapping[str, str]) -> list[ChatMessage]:
    """The group text messages of a HistorySync (`HistorySync.Data`), as Source.HISTORY, oldest
    first. Edits, deletes, system messages and non-text are left out; the GroupActor applies
    `history.max_age` and the watermark."""
    messages: list[ChatMessage] = []
    for conv in data.conversations:
        if not is_group(conv.ID):
            continue
        name = conv.name or conv.displayName or names.get(conv.ID, "")
        for item in conv.messages:
            if not item.HasField("message"):
                continue
            message = _history_message(conv.ID, name, item.message)
            if message is not None:
                messages.append(message)
    messages.sort(key=lambda m: m.timestamp)
    return messages


def _history_message(group_id: str, group_name: str, web: Any) -> ChatMessage | None:
    """One WebMessageInfo of a group conversation, or None if it is not a plain text message."""
    key = web.key
    if not key.ID or web.messageStubType or not web.HasField("message"):
        return None
    content = unwrap(web.message)
    if content.HasField("protocolMessage") or content.HasField("editedMessage"):
        return None
    text = text_of(content)
    if text is None:
        return None
    sender = plain_id(web.participant or key.participant)
    if not sender and not key.fromMe:
        return None
    return ChatMessage(
        group_id=group_id,
        group_name=group_name,
        message_id=key.ID,
        sender=sender,
        sender_alt="",
        sender_name=web.pushName,
        text=text,
        timestamp=to_seconds(web.messageTimestamp),
        from_me=key.fromMe,
        source=Source.HISTORY,
        quoted_id=quoted_id_of(content),
    )


# -- groups and the bot's own ids --------------------------------------------------------------


def group_infos(groups: Iterable[neonize_proto.GroupInfo]) -> list[GroupInfo]:
    """The result of `get_joined_groups()` as GroupInfo."""
    return [GroupInfo(jid_text(g.JID), g.GroupName.Name) for g in groups if jid_text(g.JID)]


def group_change(ev: Any, own: frozenset[str]) -> GroupsChange | None:
    """What a JoinedGroup or GroupInfo event says of the groups the bot's number (`own`: its
    phone JID and LID) is in: joined (added, or by an invite; a name when the event carries
    one), renamed, or gone (removed, left from the phone, or the group deleted). None when it
    says nothing of that (another member came or went, a new description …).

    neonize 0.5.2 has no event of its own for leaving: whatsmeow reports the bot's own leave or
    removal as a GroupInfo whose Leave names it, and a deleted group by its Delete."""
    if isinstance(ev, neonize_proto.JoinedGroup):
        gid = jid_text(ev.GroupInfo.JID)
        return GroupsChange(present=(GroupInfo(gid, ev.GroupInfo.GroupName.Name),)) if gid else None
    if not isinstance(ev, neonize_proto.GroupInfoEvent) or not jid_text(ev.JID):
        return None
    gid = jid_text(ev.JID)
    if (ev.HasField("Delete") and ev.Delete.Deleted) or own & {jid_text(j) for j in ev.Leave}:
        return GroupsChange(gone=(gid,))
    name = ev.Name.Name if ev.HasField("Name") else ""
    if name or own & {jid_text(j) for j in ev.Join}:
        return GroupsChange(present=(GroupInfo(gid, name),))
    return None


def group_of(ev: Any) -> str:
    """The group a JoinedGroup or GroupInfo event is about ("" if it names none)."""
    if isinstance(ev, neonize_proto.JoinedGroup):
        return jid_text(ev.GroupInfo.JID)
    return jid_text(ev.JID) if isinstance(ev, neonize_proto.GroupInfoEvent) else ""


def with_changes(groups: Iterable[GroupInfo], changes: Iterable[GroupsChange]) -> list[GroupInfo]:
    """A fetched group list with the joins, renames and leaves that came while it was being
    fetched applied on top (the list may be older than they are)."""
    current = {g.group_id: g.name for g in groups}
    for change in changes:
        if change.complete:
            current = {}
        for info in change.present:
            current[info.group_id] = info.name or current.get(info.group_id, "")
        for gid in change.gone:
            current.pop(gid, None)
    return [GroupInfo(gid, name) for gid, name in current.items()]


def own_ids(device: neonize_proto.Device | None) -> frozenset[str]:
    """The bot's own ids (phone JID and LID, without device) from neonize's `client.me`."""
    if device is None:
        return frozenset()
    return frozenset(i for i in (jid_text(device.JID), jid_text(device.LID)) if i)
