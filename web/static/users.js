// Users: ask before removing someone or resetting their password (each logs them out at once).
// Without this script the forms post as they are.
(() => {
  'use strict';
  const table = document.getElementById('users');
  if (!table) return;
  const labels = JSON.parse(table.dataset.labels || '{}');
  const fmt = (text, values) => (text || '').replace(/%\((\w+)\)s|%%/g,
    (m, k) => (k === undefined ? '%' : k in values ? values[k] : m));
  table.addEventListener('submit', (ev) => {
    const form = ev.target;
    const name = form.closest('tr[data-name]').dataset.name;
    const key = form.classList.contains('remove') ? 'confirm.remove' : form.classList.contains('reset') ? 'confirm.reset' : '';
    if (key && !window.confirm(fmt(labels[key], { name }))) ev.preventDefault();
  });
})();
