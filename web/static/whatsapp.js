// WhatsApp: keep the connection state current; while pairing, show the QR code (refreshed, as
// WhatsApp rotates it) or the pairing code; re-pair after a confirmation.
(() => {
  'use strict';
  const box = document.getElementById('wa');
  if (!box) return;
  const token = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  const labels = JSON.parse(box.dataset.labels || '{}');
  const tones = JSON.parse(box.dataset.tones || '{}');
  const api = box.dataset.api;
  const qrUrl = box.dataset.qr;
  const msg = document.getElementById('msg');
  const $ = (id) => document.getElementById(id);
  const when = (iso) => (iso ? iso.slice(0, 10) + ' ' + iso.slice(11, 19) : '');
  const say = (text, bad) => {
    msg.textContent = text || '';
    msg.classList.toggle('bad', !!bad);
  };

  function show(state, detail, queued, paused) {
    const pill = $('wa-state');
    pill.textContent = labels['gateway.' + state] || state;
    pill.closest('[data-tone]').dataset.tone = tones[state] || 'warn';
    $('wa-detail').textContent = detail || '';
    $('wa-detail-row').hidden = !detail;
    $('wa-queued').textContent = queued;
    $('wa-paused').textContent = when(paused);
    $('wa-paused-row').hidden = !paused;
  }

  function pairing(w) {
    const pair = $('pair');
    if (!pair) return;
    pair.hidden = w.state !== 'pairing';
    const qr = w.state === 'pairing' && w.qr_available && qrUrl;
    $('pair-qr').hidden = !qr;
    if (qr) $('qr').src = qrUrl + '?t=' + Date.now();
    $('pair-code').hidden = !w.pair_code;
    $('code').textContent = w.pair_code || '';
    $('pair-expires').textContent = w.expires_at ? labels['wa.pair.expires'] + ': ' + when(w.expires_at)
      : (w.state === 'pairing' && !qr && !w.pair_code ? labels['wa.pair.waiting'] : '');
  }

  let timer = 0;

  async function poll() {
    clearTimeout(timer);
    let delay = 10000;
    try {
      const resp = await fetch(api || '/api/status', { credentials: 'same-origin' });
      if (resp.status === 401) { window.location.href = '/login'; return; }
      if (!resp.ok) throw new Error(String(resp.status));
      const data = await resp.json();
      if (api) {
        show(data.state, data.detail, data.queued, data.paused_until);
        pairing(data);
        if (data.state === 'pairing') delay = 3000; // codes rotate every 20–60 s
      } else {
        const g = data.gateway || {};
        show(g.state, '', g.queued || 0, g.paused_until);
      }
      if (msg.classList.contains('bad')) say('');
    } catch (e) {
      say(labels['wa.unreachable'], true);
    }
    if (!document.hidden) timer = setTimeout(poll, delay);
  }

  const repair = $('repair');
  if (repair) {
    repair.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!window.confirm(labels['wa.repair.confirm'])) return;
      try {
        const resp = await fetch(repair.action, {
          method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': token },
        });
        const body = await resp.json().catch(() => ({}));
        if (!resp.ok) say((labels['error.refused'] || '%(reason)s').replace('%(reason)s', body.error || resp.status), true);
        else say(labels['wa.repair.started']);
        poll();
      } catch (e) {
        say(labels['error.network'], true);
      }
    });
  }

  timer = setTimeout(poll, api ? 1000 : 10000);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });
})();
