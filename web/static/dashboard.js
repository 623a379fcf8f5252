// Dashboard: every few seconds, copy the figures of /api/dashboard into the page. The server
// writes every figure (`display`), its colour (`tones`) and the charts' bars (`chart_view`);
// this script only copies them. It rests while the tab is hidden.
(() => {
  'use strict';
  const main = document.querySelector('main.dash');
  if (!main) return;
  // Closing the shop asks first, showing the notice every group will get (without this script
  // the server asks on a page of its own).
  main.addEventListener('submit', (ev) => {
    const form = ev.target;
    if (!form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) { ev.preventDefault(); return; }
    form.elements.confirm.value = 'yes';
  });
  const every = (Number(main.dataset.refresh) || 10) * 1000;
  let lastOk = '';
  let timer = 0;

  function chart(svg, view, summary) {
    const rects = svg.querySelectorAll('.bars rect');
    const xl = svg.querySelectorAll('.xl text');
    view.bars.forEach((b, i) => {
      const r = rects[i];
      if (!r) return;
      r.setAttribute('x', b.x);
      r.setAttribute('y', b.y);
      r.setAttribute('width', b.w);
      r.setAttribute('height', b.h);
      r.querySelector('title').textContent = b.title;
      if (xl[i]) {
        xl[i].setAttribute('x', b.cx);
        xl[i].textContent = b.label;
      }
    });
    svg.querySelectorAll('.yl text').forEach((t, i) => { if (view.ticks[i]) t.textContent = view.ticks[i].label; });
    if (summary) summary.textContent = view.summary;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const resp = await fetch('/api/dashboard', { credentials: 'same-origin' });
      if (resp.status === 401) { window.location.href = '/login'; return; }
      if (!resp.ok) throw new Error(String(resp.status));
      const data = await resp.json();
      for (const el of main.querySelectorAll('[data-k]')) {
        const text = data.display[el.dataset.k];
        if (text !== undefined && el.textContent !== text) el.textContent = text;
      }
      for (const el of main.querySelectorAll('[data-tone-k]')) {
        const tone = data.tones[el.dataset.toneK];
        if (tone) el.dataset.tone = tone;
      }
      if (data.shop) {
        // The shop may have closed itself (its stock ran out): the card follows, its button too.
        const state = document.getElementById('shop-state');
        if (state) {
          state.classList.toggle('state-open', data.shop.open);
          state.classList.toggle('state-closed', !data.shop.open);
        }
        for (const form of main.querySelectorAll('form[data-shop]')) {
          form.hidden = (form.dataset.shop === 'close') !== data.shop.open;
        }
      }
      for (const svg of main.querySelectorAll('svg[data-chart]')) {
        const name = svg.dataset.chart;
        if (data.chart_view[name]) chart(svg, data.chart_view[name], main.querySelector('[data-sum="' + name + '"]'));
      }
      lastOk = (data.generated_at || '').slice(11, 19);
      main.classList.remove('stale');
    } catch (e) {
      const note = main.querySelector('[data-k="updated"]');
      if (note) note.textContent = (main.dataset.stale || '').replace('%(time)s', lastOk);
      main.classList.add('stale');
    } finally {
      if (!document.hidden) timer = setTimeout(refresh, every);
    }
  }

  lastOk = (main.dataset.generated || '').slice(11, 19);
  timer = setTimeout(refresh, every);
  document.addEventListener('visibilitychange', () => {
    clearTimeout(timer);
    if (!document.hidden) refresh();
  });
})();
