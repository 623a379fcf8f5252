// Diamond Bot sandbox chat page. Vanilla JS, no dependencies. All user text goes through
// textContent (never innerHTML): anyone can post anything here.
"use strict";

const POLL_MS = 1000;
const HISTORY = 200;
const BOT_LABEL = "Diamond Bot";
// WhatsApp's limits (the server enforces them; the page only hides what would be refused).
const EDIT_WINDOW_S = 15 * 60;
const DELETE_WINDOW_S = 60 * 60 * 60;
const DELETED_TEXT = "This message was deleted";
const PRESETS = [
  { name: "Rahim Telecom", id: "76210050711676@lid", alt: "8801712345678@s.whatsapp.net" },
  { name: "Karim Games", id: "81234567890123@lid", alt: "8801812345678@s.whatsapp.net" },
  { name: "নুসরাত টপআপ", id: "90817263544332@lid", alt: "8801912345678@s.whatsapp.net" },
  { name: "Shop admin", id: "8801700000001@s.whatsapp.net", alt: "" },
];
const CUSTOM = "custom";

const $ = (id) => document.getElementById(id);
const state = {
  groups: [],
  groupId: localStorage.getItem("sandbox.group") || "",
  messages: [],
  shown: "",  // signature of what is on screen, to skip needless re-renders
  replyTo: null,
  editing: null,  // the message being edited: the compose box sends a PATCH instead of a post
  polling: false,
};

async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  }
  return data;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(err) { $("error").textContent = err ? String(err.message || err) : ""; }

// -- who am I --

function currentUser() {
  const choice = $("user-select").value;
  if (choice === CUSTOM) {
    return { name: $("user-name").value.trim(), id: $("user-id").value.trim(), alt: $("user-alt").value.trim() };
  }
  return PRESETS[Number(choice)] || PRESETS[0];
}

function setupUsers() {
  const select = $("user-select");
  PRESETS.forEach((p, i) => {
    const opt = el("option", "", `${p.name} (${p.id})`);
    opt.value = String(i);
    select.appendChild(opt);
  });
  const custom = el("option", "", "Someone else…");
  custom.value = CUSTOM;
  select.appendChild(custom);
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem("sandbox.user") || "null"); } catch (e) { saved = null; }
  if (saved) {
    select.value = saved.choice;
    $("user-name").value = saved.name || "";
    $("user-id").value = saved.id || "";
    $("user-alt").value = saved.alt || "";
  }
  if (!select.value) select.value = "0";
  const changed = () => {
    $("custom-user").hidden = select.value !== CUSTOM;
    const u = currentUser();
    $("user-summary").textContent = u.id ? `Posting as ${u.name || "(no name)"} · ${u.id}` : "Enter an id to post.";
    localStorage.setItem("sandbox.user", JSON.stringify({ choice: select.value, name: $("user-name").value, id: $("user-id").value, alt: $("user-alt").value }));
    state.shown = "";  // "mine" depends on the user
    render();
  };
  select.addEventListener("change", changed);
  ["user-name", "user-id", "user-alt"].forEach((id) => $(id).addEventListener("input", changed));
  changed();
}

// -- groups --

function renderGroups() {
  const list = $("groups");
  list.replaceChildren();
  for (const g of state.groups) {
    const item = el("li");
    const button = el("button", "", g.name);
    button.type = "button";
    button.title = g.id;
    button.setAttribute("aria-current", g.id === state.groupId ? "true" : "false");
    if (!g.bot_member) button.appendChild(el("span", "no-bot", " · without the bot"));
    button.addEventListener("click", () => selectGroup(g.id));
    item.appendChild(button);
    list.appendChild(item);
  }
  $("no-groups").hidden = state.groups.length > 0;
  const group = state.groups.find((g) => g.id === state.groupId);
  $("chat-title").textContent = group ? group.name : "Choose a group";
  $("chat-id").textContent = group ? group.id : "";
  $("text").disabled = !group;
  $("send").disabled = !group;
  renderGroupTools(group);
}

// Renaming the group and removing or adding the bot's number, as a group admin would.
function renderGroupTools(group) {
  $("group-tools").hidden = !group;
  if (!group) return;
  $("bot-state").textContent = group.bot_member
    ? "The bot is in this group."
    : "The bot is not in this group: it gets nothing written here and cannot write here.";
  $("bot-toggle").textContent = group.bot_member ? "Remove the bot from this group" : "Add the bot to this group";
  $("bot-toggle").className = group.bot_member ? "danger" : "";
  const input = $("rename-name");
  if (input.dataset.group !== group.id) {  // filled once per group, so a poll never undoes typing
    input.dataset.group = group.id;
    input.value = group.name;
  }
}

function selectGroup(id) {
  state.groupId = id;
  state.messages = [];
  state.shown = "";
  state.replyTo = null;
  localStorage.setItem("sandbox.group", id);
  setEditing(null);
  renderReply();
  renderGroups();
  render();
  poll();
}

// -- messages --

function timeOf(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function isMine(m, me) {
  if (m.from_bot || !me.id) return false;
  return [m.sender, m.sender_alt].some((id) => id && (id === me.id || (me.alt && id === me.alt)));
}

function quoteBlock(quotedId, byId) {
  const quoted = byId.get(quotedId);
  const box = el("div", "quote");
  box.appendChild(el("span", "qwho", quoted ? quoted.sender_name || quoted.sender : "Earlier message"));
  const text = el("span", "qtext" + (quoted && quoted.deleted ? " deleted" : ""),
    quoted ? (quoted.deleted ? DELETED_TEXT : quoted.text) : quotedId);
  text.dir = "auto";
  box.appendChild(text);
  return box;
}

function actionButton(label, onClick) {
  const button = el("button", "", label);
  button.type = "button";
  button.addEventListener("click", onClick);
  return button;
}

function messageItem(m, byId, me) {
  const mine = isMine(m, me);
  const item = el("li", "msg" + (m.from_bot ? " bot" : "") + (mine ? " mine" : "") + (m.deleted ? " deleted" : ""));
  item.dataset.id = m.id;
  const who = el("div", "who");
  if (m.from_bot) who.appendChild(el("span", "badge", "BOT"));
  who.appendChild(document.createTextNode(m.sender_name || (m.from_bot ? BOT_LABEL : "")));
  who.appendChild(el("span", "id mono", m.sender));
  item.appendChild(who);
  if (m.quoted_id && !m.deleted) item.appendChild(quoteBlock(m.quoted_id, byId));
  const text = el("div", "text", m.deleted ? DELETED_TEXT : m.text);
  text.dir = "auto";
  item.appendChild(text);
  const meta = el("div", "meta");
  if (!m.deleted) {
    meta.appendChild(actionButton("Reply", () => { setEditing(null); state.replyTo = m; renderReply(); $("text").focus(); }));
    const age = Date.now() / 1000 - m.timestamp;
    if (mine && age <= EDIT_WINDOW_S) meta.appendChild(actionButton("Edit", () => setEditing(m)));
    if (mine && age <= DELETE_WINDOW_S) meta.appendChild(actionButton("Delete", () => deleteMessage(m)));
  }
  if (m.edited) meta.appendChild(el("span", "edited", "Edited"));
  if (m.to_bot === false) meta.appendChild(el("span", "unseen", "Not received by the bot"));
  const time = el("time", "", timeOf(m.timestamp));
  time.dateTime = new Date(m.timestamp * 1000).toISOString();
  meta.appendChild(time);
  item.appendChild(meta);
  return item;
}

// A cheap fingerprint of what history shows: an edit or a delete changes an earlier message
// without adding one, so counting messages is not enough.
function fingerprint(messages) {
  let hash = 0;
  for (const m of messages) {
    const part = `${m.seq}|${m.edited ? 1 : 0}${m.deleted ? 1 : 0}${m.to_bot === false ? 1 : 0}|${m.text}`;
    for (let i = 0; i < part.length; i++) hash = (Math.imul(hash, 31) + part.charCodeAt(i)) | 0;
  }
  return hash;
}

function render() {
  const list = $("messages");
  const minute = Math.floor(Date.now() / 60000);  // the Edit and Delete actions expire with time
  const signature = `${state.groupId}|${state.messages.length}|${fingerprint(state.messages)}|${minute}`;
  if (signature === state.shown) return;
  state.shown = signature;
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const byId = new Map(state.messages.map((m) => [m.id, m]));
  const me = currentUser();
  list.replaceChildren(...state.messages.map((m) => messageItem(m, byId, me)));
  if (!state.messages.length && state.groupId) list.appendChild(el("li", "hint", "No messages yet."));
  if (nearBottom) list.scrollTop = list.scrollHeight;
}

function renderReply() {
  const m = state.replyTo;
  $("reply-bar").hidden = !m;
  $("reply-who").textContent = m ? m.sender_name || m.sender : "";
  $("reply-preview").textContent = m ? m.text : "";
}

function setEditing(m) {
  state.editing = m;
  if (m) {
    state.replyTo = null;
    renderReply();
    $("text").value = m.text;
    $("text").focus();
  } else if (!$("edit-bar").hidden) {
    $("text").value = "";
  }
  $("edit-bar").hidden = !m;
  $("edit-preview").textContent = m ? m.text : "";
  $("send").textContent = m ? "Save" : "Send";
}

// -- status --

function renderStatus(s) {
  const banner = $("banner");
  if (!s) {
    banner.className = "banner banner-unknown";
    banner.textContent = "Sandbox not reachable";
    return;
  }
  banner.className = "banner " + (s.bot_connected ? "banner-ok" : "banner-bad");
  const pending = s.pending_for_bot ? ` · ${s.pending_for_bot} message(s) waiting for the bot` : "";
  banner.textContent = (s.bot_connected ? "Bot connected" : "Bot not connected: messages wait in its offline queue") + pending;
}

async function poll() {
  if (state.polling) return;
  state.polling = true;
  try {
    const [status, groups] = await Promise.all([api("GET", "/api/status"), api("GET", "/api/groups")]);
    renderStatus(status);
    state.groups = groups;
    if (state.groupId && !groups.some((g) => g.id === state.groupId)) state.groupId = "";
    if (!state.groupId && groups.length) state.groupId = groups[0].id;
    renderGroups();
    if (state.groupId) {
      const group = state.groupId;
      const messages = await api("GET", `/api/groups/${encodeURIComponent(group)}/messages?limit=${HISTORY}`);
      if (group === state.groupId) state.messages = messages;
    }
    render();
  } catch (err) {
    renderStatus(null);
  } finally {
    state.polling = false;
  }
}

// -- actions --

async function saveEdit(m, text) {
  const me = currentUser();
  try {
    await api("PATCH", `/api/groups/${encodeURIComponent(state.groupId)}/messages/${encodeURIComponent(m.id)}`,
      { sender: me.id, text });
    setEditing(null);
    showError(null);
    await poll();
  } catch (err) {
    showError(err);
  }
}

async function deleteMessage(m) {
  if (!window.confirm("Delete this message for everyone?")) return;
  const me = currentUser();
  const query = new URLSearchParams({ sender: me.id });
  try {
    await api("DELETE", `/api/groups/${encodeURIComponent(state.groupId)}/messages/${encodeURIComponent(m.id)}?${query}`);
    if (state.editing && state.editing.id === m.id) setEditing(null);
    if (state.replyTo && state.replyTo.id === m.id) { state.replyTo = null; renderReply(); }
    showError(null);
    await poll();
  } catch (err) {
    showError(err);
  }
}

async function sendMessage(event) {
  event.preventDefault();
  const text = $("text").value;
  if (!text.trim() || !state.groupId) return;
  if (state.editing) {
    await saveEdit(state.editing, text);
    return;
  }
  const me = currentUser();
  const body = { sender: me.id, sender_name: me.name, text };
  if (me.alt) body.sender_alt = me.alt;
  if (state.replyTo) body.quoted_id = state.replyTo.id;
  try {
    await api("POST", `/api/groups/${encodeURIComponent(state.groupId)}/messages`, body);
    $("text").value = "";
    state.replyTo = null;
    renderReply();
    showError(null);
    const list = $("messages");
    list.scrollTop = list.scrollHeight;
    await poll();
  } catch (err) {
    showError(err);
  }
}

async function createGroup(event) {
  event.preventDefault();
  const name = $("new-group-name").value.trim();
  if (!name) return;
  try {
    const group = await api("POST", "/api/groups", { name });
    $("new-group-name").value = "";
    showError(null);
    state.groups.push(group);
    selectGroup(group.id);
  } catch (err) {
    showError(err);
  }
}

async function renameGroup(event) {
  event.preventDefault();
  const name = $("rename-name").value.trim();
  if (!name || !state.groupId) return;
  try {
    const group = await api("PATCH", `/api/groups/${encodeURIComponent(state.groupId)}`, { name });
    $("rename-name").value = group.name;
    showError(null);
    await poll();
  } catch (err) {
    showError(err);
  }
}

async function toggleBot() {
  const group = state.groups.find((g) => g.id === state.groupId);
  if (!group) return;
  if (group.bot_member && !window.confirm("Remove the bot's number from this group?")) return;
  try {
    await api("POST", `/api/groups/${encodeURIComponent(group.id)}/bot`, { member: !group.bot_member });
    showError(null);
    await poll();
  } catch (err) {
    showError(err);
  }
}

function renderFaults(f) {
  $("faults-now").textContent = `Pending: ${f.fail_sends} × 503, ${f.rate_limit_sends} × 429`;
}

async function setFaults(event) {
  event.preventDefault();
  try {
    renderFaults(await api("POST", "/api/control/faults", {
      fail_sends: Number($("fail-sends").value) || 0,
      rate_limit_sends: Number($("rate-limit-sends").value) || 0,
    }));
    showError(null);
  } catch (err) {
    showError(err);
  }
}

async function disconnectBot() {
  try {
    const r = await api("POST", "/api/control/disconnect");
    showError(r.disconnected ? null : new Error("The bot was not connected."));
    await poll();
  } catch (err) {
    showError(err);
  }
}

function main() {
  setupUsers();
  $("compose").addEventListener("submit", sendMessage);
  $("text").addEventListener("keydown", (e) => {
    // Enter sends, Shift+Enter breaks the line, as in WhatsApp Web.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) sendMessage(e);
  });
  $("new-group").addEventListener("submit", createGroup);
  $("rename").addEventListener("submit", renameGroup);
  $("bot-toggle").addEventListener("click", toggleBot);
  $("faults").addEventListener("submit", setFaults);
  $("disconnect").addEventListener("click", disconnectBot);
  $("reply-cancel").addEventListener("click", () => { state.replyTo = null; renderReply(); });
  $("edit-cancel").addEventListener("click", () => setEditing(null));
  document.querySelector(".controls").addEventListener("toggle", () => api("GET", "/api/control/faults").then(renderFaults, showError));
  poll();
  setInterval(poll, POLL_MS);
}

document.addEventListener("DOMContentLoaded", main);
