// Orders list and order page: one-click actions (a confirmation before cancel and delete), and on
// the list, live rows from the server-sent events of /api/events. Without this script the same
// buttons post the page's form and the server asks for the confirmation instead.
(() => {
  'use strict';
  const token = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  const msg = document.getElementById('msg');
  const table = document.getElementById('orders');
  const holder = table || document.querySelector('.order-acts');
  if (!holder) return;
  const labels = JSON.parse(holder.dataset.labels || '{}');
  // The panel's messages are gettext's: %(name)s placeholders, %% for a percent sign.
  const fmt = (text, values) => (text || '').replace(/%\((\w+)\)s|%%/g,
    (m, k) => (k === undefined ? '%' : k in values ? values[k] : m));
  const say = (text, bad) => {
    if (!msg) return;
    msg.textContent = text;
    msg.classList.toggle('bad', !!bad);
  };
  // Every change of an order adds to its `changes` (an undo too): an answer older than what the
  // row shows (data-v, set by the first update after the page loaded) is ignored.

  let upsert = () => {};
  // Undo until data-until (the server's ms).
  const skew = (Number(holder.dataset.now) || Date.now()) - Date.now();
  const late = (b) => b.dataset.until <= Date.now() + skew;
  setInterval(() => document.querySelectorAll('[value="undo"]').forEach((b) => { if (late(b)) b.hidden = true; }), 5000);

  document.addEventListener('click', async (ev) => {
    const button = ev.target.closest('button[name="action"]');
    const owner = button && button.closest('[data-id]');
    if (!owner) return;
    ev.preventDefault();
    const id = owner.dataset.id;
    const action = button.value;
    if ((action === 'cancel' || action === 'delete') && !window.confirm(fmt(labels['confirm.' + action], { id }))) return;
    button.disabled = true;
    try {
      const resp = await fetch('/api/orders/' + encodeURIComponent(id) + '/' + action, {
        method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': token },
      });
      if (resp.status === 401) { window.location.href = '/login'; return; }
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        say(fmt(labels['error.refused'], { reason: body.error || resp.status }), true);
        if (action === 'undo') button.hidden = true; // the window has passed
        return;
      }
      say(fmt(labels['action.done.' + action], { id }));
      if (table) upsert(body.order); else window.location.reload();
    } catch (e) {
      say(labels['error.network'], true);
    } finally {
      button.disabled = false;
    }
  });

  if (!table) return;

  // --- the live table ---------------------------------------------------------------------------
  const tbody = table.tBodies[0];
  const template = document.getElementById('row-tpl').content.firstElementChild;
  const empty = document.getElementById('empty');
  const live = document.getElementById('live');
  const count = document.querySelector('[data-total]');
  const d = table.dataset;
  const allowed = JSON.parse(d.allowed || '{}');
  const statuses = d.status ? d.status.split(',') : [];
  const needle = (d.q || '').toLowerCase();
  const offset = Number(d.offset) || 0;
  const limit = Number(d.limit) || 25;
  let total = Number(d.total) || 0;

  // The API gives times with the shop's offset: the local date and time are in the text.
  const when = (iso) => (iso ? iso.slice(0, 10) + ' ' + iso.slice(11, 16) : '—');
  // As domain.money.taka writes money: from five digits on in lakh/crore groups (৳1,00,000).
  const grouped = (text) => {
    const [whole, fraction] = text.split('.');
    const sign = whole.startsWith('-') ? '-' : '';
    const digits = sign ? whole.slice(1) : whole;
    if (digits.length < 5) return text;
    const parts = [digits.slice(-3)];
    for (let head = digits.slice(0, -3); head; head = head.slice(0, -2)) parts.unshift(head.slice(-2));
    return sign + parts.join(',') + (fraction ? '.' + fraction : '');
  };
  const taka = (a) => (a == null ? '—' : '৳' + grouped(a.endsWith('.00') ? a.slice(0, -3) : a));

  function matches(o) {
    if (statuses.length && !statuses.includes(o.status)) return false;
    if (d.group && o.group_id !== d.group) return false;
    const day = (o.created_at || '').slice(0, 10); // the filter form sends dates
    if (d.since && day < d.since.slice(0, 10)) return false;
    if (d.until && day > d.until.slice(0, 10)) return false;
    if (needle) {
      // The fields the server searches (storage.queries._TEXT_FIELDS).
      const fields = [o.id, o.user_id, o.user_alt, o.user_name, o.player_id, o.group_name, o.message_id, o.group_id];
      if (!fields.some((v) => String(v || '').toLowerCase().includes(needle))) return false;
    }
    return true;
  }

  // Cells by position, as the server's row macro writes them.
  function row(o) {
    const tr = template.cloneNode(true);
    tr.dataset.id = o.id;
    tr.dataset.status = o.status;
    tr.dataset.v = o.changes;
    const c = tr.cells;
    const link = c[0].querySelector('a');
    link.href = '/orders/' + encodeURIComponent(o.id);
    link.textContent = o.id;
    c[0].querySelector('.tag').hidden = !o.recovered;
    const time = c[1].querySelector('time');
    time.dateTime = o.created_at || '';
    time.textContent = when(o.created_at);
    c[2].textContent = o.group_name;
    const small = document.createElement('small');
    small.textContent = o.user_id;
    c[3].replaceChildren(document.createTextNode(o.user_name || ''), small);
    c[4].textContent = o.player_id || '—';
    c[5].textContent = o.diamonds;
    c[6].textContent = taka(o.amount);
    const badge = c[7].querySelector('.st');
    badge.className = 'st st-' + o.status;
    badge.textContent = labels['status.' + o.status] || o.status;
    c[8].textContent = o.check_count;
    c[9].replaceChildren(...(o.issues || []).map((issue) => {
      const span = document.createElement('span');
      span.className = 'issue';
      span.textContent = labels['issue.' + issue] || issue;
      return span;
    }));
    const ok = allowed[o.status] || [];
    for (const b of c[10].querySelectorAll('button')) {
      b.setAttribute('formaction', '/orders/' + encodeURIComponent(o.id));
      if (b.value === 'undo') {
        b.dataset.until = (d.undo && /^(appr|compl)/.test(o.status) && Date.parse(o.approved_at) + d.undo * 1000) || '';
        b.hidden = late(b);
      } else b.hidden = !ok.includes(b.value);
    }
    return tr;
  }

  function showCount() {
    const rows = tbody.rows.length;
    count.textContent = total && rows
      ? fmt(labels['orders.range'], { first: offset + 1, last: offset + rows, total })
      : fmt(labels['orders.count'], { total });
    empty.hidden = rows > 0;
  }

  let resyncTimer = 0;
  const later = () => { clearTimeout(resyncTimer); resyncTimer = setTimeout(resync, 1000); };

  async function resync() {
    const params = new URLSearchParams();
    for (const k of ['status', 'group', 'q', 'since', 'until']) if (d[k]) params.set(k, d[k]);
    params.set('limit', limit);
    params.set('offset', offset);
    try {
      const resp = await fetch('/api/orders?' + params, { credentials: 'same-origin' });
      if (resp.status === 401) { window.location.href = '/login'; return; }
      if (!resp.ok) return;
      const data = await resp.json();
      tbody.replaceChildren(...data.orders.map(row));
      total = data.total;
      showCount();
    } catch (e) { /* offline: the next event or reconnect tries again */ }
  }

  upsert = (o) => {
    if (!o || !o.id) return;
    const old = tbody.querySelector('tr[data-id="' + CSS.escape(o.id) + '"]');
    if (old) {
      if (old.dataset.v && o.changes < Number(old.dataset.v)) return; // an older answer
      if (matches(o)) {
        const tr = row(o);
        if (old.dataset.status !== o.status) tr.classList.add('changed');
        old.replaceWith(tr);
      } else {
        old.remove();
        total = Math.max(0, total - 1);
        if (total > offset + tbody.rows.length) later(); // pull the next order up
      }
    } else if (matches(o) && offset === 0) {
      // Newest first: find its place by the time it was posted.
      const created = o.created_at || '';
      const next = [...tbody.rows].find((r) => r.cells[1].firstElementChild.dateTime < created);
      if (!next && tbody.rows.length >= limit) { later(); return; } // belongs to a later page, or not
      const tr = row(o);
      tr.classList.add('changed');
      tbody.insertBefore(tr, next || null);
      total += 1;
      while (tbody.rows.length > limit) tbody.deleteRow(-1);
    }
    showCount();
  };

  let source = null;
  let failures = 0;
  const startedAt = performance.now();
  const state = (s) => {
    live.dataset.state = s;
    live.textContent = labels['orders.' + s] || s;
  };

  function connect() {
    source = new EventSource('/api/events');
    source.addEventListener('open', () => {
      // After a gap (or a slow first load) changes may have been missed: reload the rows.
      const missed = failures > 0 || performance.now() - startedAt > 5000;
      failures = 0;
      state('live');
      if (missed) resync();
    });
    source.addEventListener('error', () => {
      failures += 1;
      state('reconnecting');
      // EventSource retries by itself unless the server refused the stream (logged out, down).
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        resync();  // logged out (here or in another tab): its fetch goes to the login page
        setTimeout(connect, Math.min(30000, 2000 * failures));
      }
    });
    source.addEventListener('order', (ev) => upsert(JSON.parse(ev.data)));
    source.addEventListener('resync', resync);
  }

  connect();
  window.addEventListener('pagehide', () => source && source.close());
})();
