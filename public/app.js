// smsgate's web pages: log in, send (with a live counter from the gateway's own codec, or a template with one input
// per variable and a live preview the gateway renders), history, SIMs and modems, and for admins users, tokens and
// SIM settings. Plain ES modules, no bundler. Every piece of text that comes from the server is put into the page
// with textContent, never as HTML.
import { countSegments } from '/codec/pdu/index.js';

const $ = (selector) => document.querySelector(selector);
let me = null;
/** Messages sent from this page, polled until they settle. */
const sentIds = [];
let pollTimer = null;
let historyBefore = null;
let simsCache = [];
let templatesCache = [];
let previewTimer = null;
/** Only the newest preview's answer is shown (answers may come back out of order). */
let previewSeq = 0;

const FINAL = ['sent', 'delivered', 'undelivered', 'failed', 'cancelled', 'unknown'];

/** Builds an element: attributes, then children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'className') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.description ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { 'X-Requested-With': 'smsgate' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/api/v1${path}`, init);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && path !== '/session') showLogin();
    throw new ApiError(response.status, data);
  }
  return data;
}

function flash(text) {
  const box = $('#flash');
  box.textContent = text;
  box.hidden = !text;
}

function showError(selector, error) {
  const node = $(selector);
  if (!error) {
    node.hidden = true;
    node.textContent = '';
    return;
  }
  let text = error.message;
  if (error.body?.invalid?.length) text += ` — ${error.body.invalid.map((i) => `${i.input}: ${i.reason}`).join('; ')}`;
  node.textContent = text;
  node.hidden = false;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
const simName = (sim) => (sim ? sim.label || sim.number || `SIM ${sim.id}` : '—');

function detailOf(m) {
  if (m.error) return `${m.error.code}: ${m.error.meaning}`;
  return m.reason ?? '';
}

// ---- pages

const PAGES = ['send', 'history', 'inbox', 'sims', 'admin'];

function showLogin() {
  me = null;
  $('#nav').hidden = true;
  for (const p of PAGES) $(`#page-${p}`).hidden = true;
  $('#page-login').hidden = false;
}

async function route() {
  if (!me) return;
  let page = location.hash.replace('#', '') || 'send';
  if (!PAGES.includes(page) || (page === 'admin' && me.role !== 'admin')) page = 'send';
  $('#page-login').hidden = true;
  for (const p of PAGES) $(`#page-${p}`).hidden = p !== page;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#${page}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  flash('');
  try {
    if (page === 'send') await Promise.all([loadSimChoices(), loadTemplates()]);
    if (page === 'history') await loadHistory(true);
    if (page === 'inbox') await loadInbox(true);
    if (page === 'sims') await loadSims();
    if (page === 'admin') await loadAdmin();
  } catch (error) {
    flash(error.message);
  }
}

function loggedIn(user) {
  me = user;
  $('#nav').hidden = false;
  $('#nav-admin').hidden = user.role !== 'admin';
  $('#whoami').textContent = `${user.name} (${user.role})`;
  route();
}

// ---- login

$('#login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const { user } = await api('POST', '/session', { login: form.get('login'), password: form.get('password') });
    showError('#login-error', null);
    event.target.reset();
    loggedIn(user);
  } catch (error) {
    showError('#login-error', error);
  }
});

$('#logout').addEventListener('click', async () => {
  await api('DELETE', '/session').catch(() => undefined);
  showLogin();
});

// ---- send

function updateCounter() {
  const text = $('#send-text').value;
  const out = $('#counter');
  if (text === '') {
    out.textContent = '0 characters · GSM-7, 0 parts';
    return;
  }
  const count = countSegments(text);
  const characters = [...text.normalize('NFC')].length;
  const encoding = count.encoding === 'gsm7' ? 'GSM-7' : 'UCS-2';
  const unit = count.encoding === 'gsm7' ? 'characters' : 'UCS-2 units';
  out.textContent = `${characters} characters · ${encoding}, ${count.parts} part${count.parts === 1 ? '' : 's'} · ${count.remaining} ${unit} left in this part`;
}
$('#send-text').addEventListener('input', updateCounter);

async function loadSimChoices() {
  const { sims } = await api('GET', '/sims');
  simsCache = sims;
  const select = $('#send-sim');
  const chosen = select.value;
  select.replaceChildren(el('option', { value: '' }, 'any of mine'), ...sims.map((s) => el('option', { value: s.id }, `${simName(s)} (${s.operator ?? 'no operator'})`)));
  select.value = chosen;
}

// ---- templates: the picker, one input per variable, the preview, and saving the text as a template

const encodingName = (encoding) => (encoding === 'gsm7' ? 'GSM-7' : 'UCS-2');

function templateLabel(t) {
  if (t.shared) return `${t.name} (shared)`;
  if (me && t.user_id !== me.id) return `${t.name} (user ${t.user_id})`;
  return t.name;
}

async function loadTemplates(selectId) {
  const { templates } = await api('GET', '/templates');
  templatesCache = templates;
  const select = $('#send-template');
  const chosen = selectId === undefined ? select.value : String(selectId);
  select.replaceChildren(el('option', { value: '' }, 'none: type the text below'), ...templates.map((t) => el('option', { value: t.id }, templateLabel(t))));
  select.value = templates.some((t) => String(t.id) === chosen) ? chosen : '';
  $('#template-shared-label').hidden = me?.role !== 'admin';
  templateChosen();
}

function chosenTemplate() {
  return templatesCache.find((t) => String(t.id) === $('#send-template').value) ?? null;
}

/** The variables typed in; an empty input is left out (the preview then names it as missing). */
function templateVars() {
  const vars = {};
  for (const input of document.querySelectorAll('#template-var-inputs input')) if (input.value !== '') vars[input.dataset.var] = input.value;
  return vars;
}

function templateChosen() {
  const t = chosenTemplate();
  $('#text-box').hidden = t !== null;
  $('#send-text').required = t === null;
  $('#template-box').hidden = t === null;
  $('#template-form').hidden = t !== null;
  if (!t) return;
  const typed = templateVars();
  const inputs = t.variables.map((name) =>
    el('label', {}, name, el('input', { 'data-var': name, value: typed[name] ?? '', autocomplete: 'off', oninput: () => schedulePreview(250) })),
  );
  $('#template-var-inputs').replaceChildren(...(inputs.length ? inputs : [el('p', { className: 'muted' }, 'This template uses no variables.')]));
  schedulePreview(0);
}
$('#send-template').addEventListener('change', templateChosen);

function schedulePreview(delay) {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(updatePreview, delay);
}

async function updatePreview() {
  const t = chosenTemplate();
  if (!t) return;
  const seq = ++previewSeq;
  try {
    const p = await api('POST', '/templates/preview', { template: t.id, vars: templateVars() });
    if (seq !== previewSeq) return;
    showError('#preview-error', null);
    $('#preview-text').textContent = p.text;
    const unit = p.encoding === 'gsm7' ? 'characters' : 'UCS-2 units';
    $('#preview-count').textContent = `${p.characters} characters · ${encodingName(p.encoding)}, ${p.parts} part${p.parts === 1 ? '' : 's'} · ${p.remaining} ${unit} left in this part`;
  } catch (error) {
    if (seq !== previewSeq) return;
    $('#preview-text').textContent = '';
    $('#preview-count').textContent = '';
    showError('#preview-error', error);
  }
}

$('#template-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const shared = me?.role === 'admin' && $('#template-shared').checked;
    const created = await api('POST', '/templates', { name: $('#template-name').value, body: $('#send-text').value, shared });
    showError('#template-error', null);
    event.target.reset();
    flash(`Template "${created.name}" saved.`);
    await loadTemplates(created.id);
  } catch (error) {
    showError('#template-error', error);
  }
});

$('#send-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = $('#send-button');
  button.disabled = true;
  const template = chosenTemplate();
  const body = {
    to: $('#send-to').value,
    flash: $('#send-flash').checked,
    attempts: Number($('#send-attempts').value) || undefined,
  };
  if (template) {
    body.template = template.id;
    body.vars = templateVars();
  } else body.text = $('#send-text').value;
  if ($('#send-replace').value) body.replace_id = Number($('#send-replace').value);
  if ($('#send-sim').value) body.sim = $('#send-sim').value;
  try {
    const { messages } = await api('POST', '/messages', body);
    showError('#send-error', null);
    for (const m of messages) sentIds.unshift(m.id);
    renderSent(messages);
    if (!template) {
      $('#send-text').value = '';
      updateCounter();
    }
    pollSent();
  } catch (error) {
    showError('#send-error', error);
  } finally {
    button.disabled = false;
  }
});

const sentRows = new Map();

function messageRow(m, withText, actions) {
  return el(
    'tr',
    { 'data-id': m.id, 'data-state': m.state },
    el('td', {}, String(m.id)),
    withText ? el('td', {}, when(m.created_at)) : null,
    el('td', {}, m.to),
    withText ? el('td', { className: 'text' }, m.text) : null,
    el('td', { className: `state state-${m.state}` }, m.state),
    el('td', {}, `${m.parts} (${m.encoding === 'gsm7' ? 'GSM-7' : 'UCS-2'})`),
    el('td', {}, simName(m.sim)),
    el('td', { className: 'text' }, detailOf(m)),
    actions ? el('td', {}, actions) : null,
  );
}

function renderSent(messages) {
  const tbody = $('#sent-table tbody');
  for (const m of messages) {
    const row = messageRow(m, false);
    const old = sentRows.get(m.id);
    if (old) old.replaceWith(row);
    else tbody.prepend(row);
    sentRows.set(m.id, row);
  }
  $('#sent-table').hidden = false;
  $('#sent-title').hidden = false;
}

function pollSent() {
  if (pollTimer) return;
  pollTimer = setInterval(async () => {
    const open = sentIds.filter((id) => !FINAL.includes(sentRows.get(id)?.dataset.state));
    if (open.length === 0 || !me) {
      clearInterval(pollTimer);
      pollTimer = null;
      return;
    }
    try {
      const messages = await Promise.all(open.slice(0, 50).map((id) => api('GET', `/messages/${id}`)));
      renderSent(messages);
    } catch {
      // The next tick tries again.
    }
  }, 1000);
}

// ---- history

async function loadHistory(fresh) {
  const form = new FormData($('#history-form'));
  const params = new URLSearchParams({ limit: '50' });
  for (const key of ['to', 'state']) if (form.get(key)) params.set(key, form.get(key));
  if (form.get('since')) params.set('since', new Date(`${form.get('since')}T00:00:00`).toISOString());
  if (form.get('until')) {
    const end = new Date(`${form.get('until')}T00:00:00`);
    end.setDate(end.getDate() + 1);
    params.set('until', end.toISOString());
  }
  if (fresh) historyBefore = null;
  if (historyBefore) params.set('before', String(historyBefore));
  const { messages, next_before: next } = await api('GET', `/messages?${params}`);
  const tbody = $('#history-table tbody');
  if (fresh) tbody.replaceChildren();
  for (const m of messages) {
    const cancel =
      m.state === 'queued'
        ? el('button', { type: 'button', className: 'secondary', onclick: () => cancelMessage(m.id) }, 'Cancel')
        : null;
    tbody.append(messageRow(m, true, cancel));
  }
  historyBefore = next;
  $('#history-more').hidden = next === null;
}

// ---- inbox

let inboxBefore = null;

async function loadInbox(fresh) {
  const form = new FormData($('#inbox-form'));
  const params = new URLSearchParams({ limit: '50' });
  for (const key of ['from', 'sim']) if (form.get(key)) params.set(key, form.get(key));
  if (fresh) {
    inboxBefore = null;
    const { sims } = await api('GET', '/sims');
    const select = $('#inbox-sim');
    const chosen = select.value;
    select.replaceChildren(el('option', { value: '' }, 'any'), ...sims.map((x) => el('option', { value: String(x.id), selected: String(x.id) === chosen }, simName(x))));
  }
  if (inboxBefore) params.set('before', String(inboxBefore));
  const { messages, next_before: next } = await api('GET', `/inbox?${params}`);
  const tbody = $('#inbox-table tbody');
  if (fresh) tbody.replaceChildren();
  for (const m of messages) {
    tbody.append(
      el(
        'tr',
        { 'data-inbox': m.id },
        el('td', {}, String(m.id)),
        el('td', {}, when(m.received_at)),
        el('td', {}, m.from),
        el('td', { className: 'text' }, m.text),
        el('td', {}, simName(m.sim)),
        el('td', {}, m.complete ? String(m.parts) : el('span', { className: 'bad', title: 'incomplete: parts never came' }, `${m.parts_received} of ${m.parts}`)),
        el('td', {}, m.sent_at ? when(m.sent_at) : '—'),
      ),
    );
  }
  if (fresh && messages.length === 0) tbody.append(el('tr', {}, el('td', { colSpan: 7, className: 'muted' }, 'Nothing received yet.')));
  inboxBefore = next;
  $('#inbox-more').hidden = next === null;
}

$('#inbox-form').addEventListener('submit', (event) => {
  event.preventDefault();
  loadInbox(true).catch((error) => flash(error.message));
});
$('#inbox-more').addEventListener('click', () => loadInbox(false).catch((error) => flash(error.message)));

async function cancelMessage(id) {
  try {
    await api('DELETE', `/messages/${id}`);
    flash(`Message ${id} cancelled.`);
  } catch (error) {
    flash(error.message);
  }
  await loadHistory(true);
}

$('#history-form').addEventListener('submit', (event) => {
  event.preventDefault();
  loadHistory(true).catch((error) => flash(error.message));
});
$('#history-more').addEventListener('click', () => loadHistory(false).catch((error) => flash(error.message)));

// ---- SIMs and modems

function quotaBar(used, quota) {
  if (quota === null || quota === undefined) return el('span', {}, `${used} parts used (no quota)`);
  return el('span', {}, el('progress', { max: Math.max(quota, 1), value: Math.min(used, quota) }), `${used} of ${quota} parts used, ${Math.max(0, quota - used)} left`);
}

async function loadSims() {
  const [{ sims }, { channels }] = await Promise.all([api('GET', '/sims'), api('GET', '/channels')]);
  simsCache = sims;
  const list = $('#sims-list');
  const cards = sims.map((s) => {
    const mine = channels.filter((c) => c.sim?.id === s.id);
    return el(
      'article',
      { className: 'card', 'data-sim': s.id },
      el('h3', {}, simName(s), s.enabled ? null : el('span', { className: 'bad' }, ' (disabled)')),
      el(
        'dl',
        {},
        el('dt', {}, 'Number'), el('dd', {}, s.number ?? '—'),
        el('dt', {}, 'Operator'), el('dd', {}, s.operator ?? '—'),
        el('dt', {}, 'Quota'), el('dd', {}, quotaBar(s.quota_used + s.quota_reserved, s.monthly_quota)),
        el('dt', {}, 'Period'), el('dd', {}, `from ${s.period} (billing day ${s.billing_day})`),
        el('dt', {}, 'Quiet hours'), el('dd', {}, s.quiet_start && s.quiet_end ? `${s.quiet_start}–${s.quiet_end}` : 'none'),
        el('dt', {}, 'Balance'),
        el(
          'dd',
          {},
          s.balance ?? '—',
          s.balance_at ? el('span', { className: 'muted' }, ` (${when(s.balance_at)})`) : null,
          s.paused_reason ? el('div', { className: 'bad' }, `paused: ${s.paused_reason}`) : null,
          ' ',
          el('button', { type: 'button', className: 'secondary', onclick: () => checkBalance(s) }, 'Check now'),
        ),
        ...mine.flatMap((c) => [
          el('dt', {}, 'Modem'),
          el(
            'dd',
            {},
            el('span', { className: c.healthy ? 'good' : 'bad' }, c.healthy ? 'healthy' : 'unhealthy'),
            ` · ${c.port}${c.box ? ` on ${c.box}` : ''} · ${c.signal_dbm === null ? 'signal ?' : `${c.signal_dbm} dBm`} · ${c.registration ?? '?'}${c.busy ? ' · sending' : ''}${c.attached ? '' : ' · not attached'}`,
            c.last_error ? el('div', { className: 'bad' }, `last error: ${c.last_error}`) : null,
          ),
        ]),
      ),
    );
  });
  list.replaceChildren(...(cards.length ? cards : [el('p', { className: 'muted' }, 'No SIM is assigned to you yet.')]));
}
async function checkBalance(s) {
  flash(`Asking the balance of ${simName(s)}…`);
  try {
    const r = await api('POST', `/sims/${s.id}/balance`);
    flash(r.amount === null ? `${simName(s)}: no balance read (${r.error})` : `${simName(s)}: ${r.amount}${r.currency ? ` ${r.currency}` : ''}${r.is_low ? ` — below ${r.low}` : ''}`);
    await loadSims();
  } catch (error) {
    flash(error.message);
  }
}

$('#sims-refresh').addEventListener('click', () => loadSims().catch((error) => flash(error.message)));

// ---- admin

let usersCache = [];

async function loadAdmin() {
  const [{ users }, { sims }] = await Promise.all([api('GET', '/users'), api('GET', '/sims')]);
  usersCache = users;
  const tbody = $('#users-table tbody');
  tbody.replaceChildren(
    ...users.map((u) =>
      el(
        'tr',
        { 'data-user': u.name },
        el('td', {}, String(u.id)),
        el('td', {}, u.name),
        el('td', {}, u.role),
        el('td', {}, u.disabled ? 'disabled' : 'active'),
        el(
          'td',
          {},
          el('button', { type: 'button', className: 'secondary', onclick: () => patchUser(u.id, { disabled: !u.disabled }) }, u.disabled ? 'Enable' : 'Disable'),
          ' ',
          el('button', { type: 'button', className: 'secondary', onclick: () => newPasswordFor(u) }, 'Set password'),
        ),
      ),
    ),
  );
  const tokenUser = $('#token-user');
  const chosen = tokenUser.value;
  tokenUser.replaceChildren(...users.map((u) => el('option', { value: u.id }, u.name)));
  tokenUser.value = chosen || String(me.id);
  await loadTokens();
  $('#sim-settings').replaceChildren(...sims.map(simSettingsForm));
  const ussdSim = $('#ussd-sim');
  const ussdChosen = ussdSim.value;
  ussdSim.replaceChildren(...sims.map((x) => el('option', { value: String(x.id) }, simName(x))));
  if (ussdChosen) ussdSim.value = ussdChosen;
}

async function patchUser(id, patch) {
  try {
    await api('PATCH', `/users/${id}`, patch);
    flash('Saved.');
  } catch (error) {
    flash(error.message);
  }
  await loadAdmin();
}

function newPasswordFor(user) {
  const password = window.prompt(`New password for ${user.name} (at least 8 characters)`);
  if (password) patchUser(user.id, { password });
}

$('#user-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await api('POST', '/users', { name: form.get('name'), password: form.get('password'), role: form.get('role') });
    event.target.reset();
    flash('User added.');
    await loadAdmin();
  } catch (error) {
    flash(error.message);
  }
});

async function loadTokens() {
  const userId = $('#token-user').value;
  const { tokens } = await api('GET', `/tokens?user_id=${encodeURIComponent(userId)}`);
  $('#tokens-table tbody').replaceChildren(
    ...tokens.map((t) =>
      el(
        'tr',
        {},
        el('td', {}, String(t.id)),
        el('td', {}, t.label ?? '—'),
        el('td', {}, when(t.created_at)),
        el('td', {}, when(t.last_used_at)),
        el('td', {}, when(t.revoked_at)),
        el('td', {}, t.revoked_at ? null : el('button', { type: 'button', className: 'secondary', onclick: () => revokeToken(t.id) }, 'Revoke')),
      ),
    ),
  );
}
$('#token-user').addEventListener('change', () => loadTokens().catch((error) => flash(error.message)));

async function revokeToken(id) {
  try {
    await api('DELETE', `/tokens/${id}`);
  } catch (error) {
    flash(error.message);
  }
  await loadTokens();
}

$('#token-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const created = await api('POST', '/tokens', { user_id: Number(form.get('user_id')), label: form.get('label') || undefined });
    const box = $('#token-new');
    box.replaceChildren('New token (shown once, copy it now): ', el('code', {}, created.token));
    box.hidden = false;
    await loadTokens();
  } catch (error) {
    flash(error.message);
  }
});

function simSettingsForm(s) {
  const field = (label, name, value, attrs = {}) => el('label', {}, label, el('input', { name, value: value ?? '', ...attrs }));
  const owners = el(
    'fieldset',
    {},
    el('legend', {}, 'Owners'),
    ...usersCache.map((u) =>
      el('label', { className: 'inline' }, el('input', { type: 'checkbox', name: 'owner', value: u.id, checked: (s.owners ?? []).includes(u.id) }), u.name),
    ),
  );
  const form = el(
    'form',
    { className: 'card stack', 'data-sim': s.id },
    el('h3', {}, `${simName(s)} · IMSI ${s.imsi}`),
    field('Label', 'label', s.label),
    field('Monthly quota (parts, empty = unlimited)', 'monthly_quota', s.monthly_quota, { type: 'number', min: 0 }),
    field('Billing day', 'billing_day', s.billing_day, { type: 'number', min: 1, max: 28 }),
    field('Pacing (ms between messages)', 'pacing_ms', s.pacing_ms, { type: 'number', min: 0 }),
    field('Quiet from (HH:MM)', 'quiet_start', s.quiet_start, { pattern: '([01][0-9]|2[0-3]):[0-5][0-9]' }),
    field('Quiet until (HH:MM)', 'quiet_end', s.quiet_end, { pattern: '([01][0-9]|2[0-3]):[0-5][0-9]' }),
    el('label', { className: 'inline' }, el('input', { type: 'checkbox', name: 'enabled', checked: s.enabled }), 'Enabled'),
    field('Balance USSD code (empty = the config default)', 'balance_ussd', s.balance_ussd, { pattern: '[0-9*#+]{1,160}' }),
    field('Balance pattern (regular expression, empty = built-in)', 'balance_pattern', s.balance_pattern),
    field('Low balance below', 'balance_low', s.balance_low, { inputmode: 'decimal' }),
    el('label', { className: 'inline' }, el('input', { type: 'checkbox', name: 'balance_pause', checked: s.balance_pause }), 'Pause the SIM when its balance is low'),
    owners,
    el('button', { type: 'submit' }, 'Save'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const text = (name) => (data.get(name) === '' ? null : data.get(name));
    const patch = {
      label: text('label'),
      monthly_quota: text('monthly_quota') === null ? null : Number(data.get('monthly_quota')),
      billing_day: Number(data.get('billing_day')),
      pacing_ms: Number(data.get('pacing_ms')),
      quiet_start: text('quiet_start'),
      quiet_end: text('quiet_end'),
      enabled: data.get('enabled') === 'on',
      balance_ussd: text('balance_ussd'),
      balance_pattern: text('balance_pattern'),
      balance_low: text('balance_low'),
      balance_pause: data.get('balance_pause') === 'on',
      owners: data.getAll('owner').map(Number),
    };
    try {
      await api('PATCH', `/sims/${s.id}`, patch);
      flash(`${simName(s)} saved.`);
    } catch (error) {
      flash(error.message);
    }
  });
  return form;
}

$('#ussd-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = new FormData(event.target);
  const out = $('#ussd-answer');
  out.hidden = false;
  out.textContent = `${data.get('code')} …`;
  try {
    const r = await api('POST', `/sims/${data.get('sim')}/ussd`, { code: data.get('code') });
    out.textContent = `${r.code} → ${r.status}\n${r.text ?? ''}`;
  } catch (error) {
    out.textContent = error.message;
  }
});

// ---- start

window.addEventListener('hashchange', route);
updateCounter();
api('GET', '/session').then(
  ({ user }) => loggedIn(user),
  () => showLogin(),
);
