// Payments: show the chosen group's due under the group, fill in the whole due with one click,
// and send the record form once (its button waits while the form is on its way). Without this
// script the form posts as it is, and the server records a form sent twice only once.
(() => {
  'use strict';
  const form = document.getElementById('pay');
  if (!form) return;
  const labels = JSON.parse(form.dataset.labels || '{}');
  // The panel's messages are gettext's: %(name)s placeholders, %% for a percent sign.
  const fmt = (text, values) => (text || '').replace(/%\((\w+)\)s|%%/g,
    (m, k) => (k === undefined ? '%' : k in values ? values[k] : m));
  const group = form.elements.group_id;
  const amount = form.elements.amount;
  const note = document.getElementById('p-due');
  const fill = document.getElementById('p-fill');
  const submit = form.querySelector('button[type="submit"]');
  const submitText = submit.textContent;

  function show() {
    const option = group.selectedOptions[0];
    const d = option ? option.dataset : {};
    note.textContent = d.dueText ? fmt(labels['pay.due_now'], { amount: d.dueText }) : '';
    fill.hidden = !d.fill;
  }

  group.addEventListener('change', show);
  fill.addEventListener('click', () => {
    const option = group.selectedOptions[0];
    if (!option || !option.dataset.fill) return;
    amount.value = option.dataset.fill;
    amount.focus();
  });
  form.addEventListener('submit', (ev) => {
    if (form.dataset.sent) { ev.preventDefault(); return; }
    form.dataset.sent = '1';
    submit.disabled = true;
    submit.textContent = labels['pay.saving'] || submitText;
  });
  // Coming back to the page from the history: the form can be sent again.
  window.addEventListener('pageshow', () => {
    delete form.dataset.sent;
    submit.disabled = false;
    submit.textContent = submitText;
  });
  show();
})();
