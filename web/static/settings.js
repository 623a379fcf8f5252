// Settings: each chat text's preview follows what is typed, with the same example values and
// the same rules as the server's (web/chat_texts.py): {name} is filled in, {{ and }} are braces,
// a placeholder the text does not offer is pointed out. A text named in the address opens.
(() => {
  'use strict';
  const section = document.getElementById('texts');
  if (!section) return;
  const samples = JSON.parse(section.dataset.samples || '{}');
  const labels = JSON.parse(section.dataset.labels || '{}');
  const fmt = (text, values) => (text || '').replace(/%\((\w+)\)s|%%/g,
    (m, k) => (k === undefined ? '%' : k in values ? values[k] : m));
  const TOKEN = /\{\{|\}\}|\{(\w*)\}/g;

  function render(text, values) {
    return text.replace(TOKEN, (token, name) => {
      if (token === '{{' || token === '}}') return token[0];
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : token;
    });
  }

  function update(form) {
    const area = form.elements.text;
    const offered = JSON.parse(form.dataset.placeholders || '[]');
    form.querySelector('.preview').textContent = render(area.value, samples[form.dataset.lang] || {});
    const unknown = [...area.value.matchAll(TOKEN)].map((m) => m[1]).filter((n) => n !== undefined && !offered.includes(n));
    const warn = form.querySelector('[data-warn]');
    const problems = unknown.map((n) => fmt(labels['settings.unknown'], { name: '{' + n + '}' }));
    if (!area.value.trim()) problems.push(labels['settings.empty']);
    warn.textContent = problems.join(' ');
    warn.hidden = problems.length === 0;
  }

  section.addEventListener('input', (ev) => {
    const form = ev.target.closest('form.textform');
    if (form && ev.target.name === 'text') update(form);
  });
  const opened = location.hash && document.getElementById(location.hash.slice(1));
  if (opened && opened.tagName === 'DETAILS') opened.open = true;
})();
