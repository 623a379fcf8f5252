// Groups: save a change as soon as it is made (rate, switches, auto-approve limit), validated
// by the browser first and by the server always. Without this script each row's Save button
// posts the row's form.
(() => {
  'use strict';
  const table = document.getElementById('groups');
  if (!table) return;
  const token = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  const labels = JSON.parse(table.dataset.labels || '{}');
  // The panel's messages are gettext's: %(name)s placeholders, %% for a percent sign.
  const fmt = (text, values) => (text || '').replace(/%\((\w+)\)s|%%/g,
    (m, k) => (k === undefined ? '%' : k in values ? values[k] : m));
  const FIELDS = ['enabled', 'rate', 'auto_approve', 'auto_approve_max', 'due_limit'];

  // A group without a rate yet (data-rate-set="0"): its empty rate field leaves the rate unset.
  const unsetAndEmpty = (tr, input) => input.name === 'rate' && tr.dataset.rateSet === '0' && !input.value.trim();

  // Once a rate is stored, the row loses its "rate not set" mark and its rate becomes required.
  function rated(tr) {
    tr.dataset.rateSet = '1';
    const rate = tr.querySelector('input[name="rate"]');
    rate.required = true;
    rate.removeAttribute('aria-describedby');
    for (const e of tr.querySelectorAll('.unset, input[name="rate_set"]')) e.remove();
  }

  function value(input) {
    if (input.type === 'checkbox') return input.checked;
    if (input.name === 'auto_approve_max') return input.value.trim() === '' ? 0 : Number(input.value);
    return input.value.trim();
  }

  async function save(tr, patch) {
    const note = tr.querySelector('.saved');
    note.classList.remove('bad');
    note.textContent = labels['groups.saving'];
    try {
      const resp = await fetch('/api/groups/' + encodeURIComponent(tr.dataset.id), {
        method: 'PATCH', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': token },
        body: JSON.stringify(patch),
      });
      if (resp.status === 401) { window.location.href = '/login'; return; }
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        note.classList.add('bad');
        note.textContent = fmt(labels['error.refused'], { reason: body.error || resp.status });
        return;
      }
      // Show what was stored (the server writes rates in their canonical form: 2.3 → 2.30),
      // in the fields this save sent only: another may be being typed into meanwhile.
      const g = body.group;
      const inputs = tr.querySelectorAll('input[name]');
      for (const input of inputs) {
        if (!(input.name in patch) || !(input.name in g)) continue;
        if (input.type === 'checkbox') input.checked = !!g[input.name];
        else input.value = g[input.name] === null ? '' : g[input.name];
      }
      if (g.rate_set) rated(tr);
      note.textContent = labels['groups.saved'];
    } catch (e) {
      note.classList.add('bad');
      note.textContent = labels['error.network'];
    }
  }

  // A value the browser already knows is wrong: said in the row, in place of an earlier "Saved".
  function refuse(tr, input) {
    const note = tr.querySelector('.saved');
    note.classList.add('bad');
    note.textContent = fmt(labels['groups.invalid'], { reason: input.title || input.validationMessage });
    input.reportValidity();
  }

  table.addEventListener('change', (ev) => {
    const input = ev.target;
    const tr = input.closest('tr[data-id]');
    if (!tr || !FIELDS.includes(input.name) || unsetAndEmpty(tr, input)) return;
    if (!input.checkValidity()) { refuse(tr, input); return; }
    save(tr, { [input.name]: value(input) });
  });

  table.addEventListener('submit', (ev) => {
    const form = ev.target;
    const tr = form.closest('tr[data-id]');
    if (!tr) return;
    ev.preventDefault();
    const inputs = [...form.elements].filter((e) => FIELDS.includes(e.name) && !unsetAndEmpty(tr, e));
    for (const input of inputs) if (!input.checkValidity()) { refuse(tr, input); return; }
    save(tr, Object.fromEntries(inputs.map((input) => [input.name, value(input)])));
  });
})();
