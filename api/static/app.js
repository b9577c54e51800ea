// cpkmon control room — vanilla ES module, no build step, no external requests.
// Every piece of data reaches the DOM through textContent / setAttribute (never innerHTML).

import {
  ACK, ALARM, ALARM_ACK, ALARM_KINDS, ALARM_OOS, ALARM_RESOLUTION, ALARM_SHELVE, ALARM_SOURCE, ALARM_STATES, ALERT,
  ALERT_TYPES, CAUSE, CHARACTERISTIC, CONTROL, CRITERION, GRADE, HISTOGRAM, KPIS, LEVELS, LIMITING, POINT, RATE, ROW,
  SEVERITIES, STABILITY, STATES, STATION, STATUS, TARGETS, TOP_SOURCE, VIOLATION,
} from './fields.js';

const API = '/api/v1';
const KEY_STORE = 'cpkmon.apiKey';
const SVG_NS = 'http://www.w3.org/2000/svg';

// SPEC §5 ladder (names are the contract; the status document may carry name_zh, this is the fallback) and
// every document field name the page reads come from the document model (cpkmon/alerts/model.py), generated
// into fields.js: `doc[STATUS.cpk]` rather than `doc.cpk`, so a renamed field fails a test, not the page.

// Nelson tests (SPEC §4.1, Minitab defaults).
const RULES = {
  1: 'one point beyond 3σ',
  2: '9 in a row on one side',
  3: '6 in a row increasing or decreasing',
  4: '14 in a row alternating',
  5: '2 of 3 beyond 2σ, same side',
  6: '4 of 5 beyond 1σ, same side',
  7: '15 in a row within 1σ',
  8: '8 in a row beyond 1σ, either side',
};

const CHARTS = {
  xbar_r: { x: 'X̄', r: 'R', name: 'X̄–R' },
  xbar_s: { x: 'X̄', r: 'S', name: 'X̄–S' },
  i_mr: { x: 'I', r: 'MR', name: 'I–MR' },
};

const state = {
  lines: new Map(), // line -> list row (GET /lines or SSE status)
  details: new Map(), // line -> status document (GET /lines/{line})
  alerts: [], // newest first
  alertIds: new Set(),
  open: null, // line whose detail is shown
  fetching: new Map(), // line -> {busy, again}
};

// ---------------------------------------------------------------------------------------------- DOM helpers

function append(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return el;
}

function h(tag, attrs, ...kids) {
  return append(setAttrs(document.createElement(tag), attrs), kids);
}

function s(tag, attrs, ...kids) {
  return append(setAttrs(document.createElementNS(SVG_NS, tag), attrs), kids);
}

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------- formatting

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const fmt = (v, d = 2) => (isNum(v) ? v.toFixed(d) : '—');
const pct = (v, d = 1) => (isNum(v) ? `${(v * 100).toFixed(d)} %` : '—');
const sig = (v) => (isNum(v) ? `${v.toFixed(2)}σ` : v === Infinity ? '∞' : '—');
const int = (v) => (isNum(v) ? Math.round(v).toLocaleString('en-US') : '—');

function dpmo(v) {
  if (!isNum(v)) return '—';
  if (v >= 100) return int(v);
  return v.toPrecision(3);
}

/** Decimals that show a measurement to about 1/100 of its spread. */
function decimalsFor(spread) {
  if (!isNum(spread) || spread <= 0) return 4;
  return Math.max(0, Math.min(7, Math.ceil(-Math.log10(spread)) + 1));
}

function parseTime(t) {
  if (t == null) return null;
  const d = typeof t === 'number' ? new Date(t > 1e11 ? t : t * 1000) : new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

const pad = (n) => String(n).padStart(2, '0');

function clock(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function when(t) {
  const d = parseTime(t);
  if (!d) return '—';
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? clock(d) : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`;
}

function timeEl(t, cls) {
  const d = parseTime(t);
  return h('time', { class: cls, datetime: d ? d.toISOString() : null, title: d ? d.toISOString() : null }, when(t));
}

function levelInfo(grade) {
  if (!grade || !isNum(grade[GRADE.level])) return null;
  const base = LEVELS.find((l) => l.level === grade[GRADE.level]) || {};
  return {
    level: grade[GRADE.level],
    name: grade[GRADE.name] || base.name || `level ${grade[GRADE.level]}`,
    zh: grade[GRADE.name_zh] || grade.chinese || base.zh || '',
  };
}

const CRITERIA = {
  cpk: { label: 'Cpk', f: (v) => fmt(v), cmp: '≥' },
  line_cpk: { label: 'Cpk', f: (v) => fmt(v), cmp: '≥' },
  rty: { label: 'RTY', f: (v) => pct(v), cmp: '≥' },
  sigma_level: { label: 'σ level', f: sig, cmp: '≥' },
  dpmo: { label: 'DPMO', f: dpmo, cmp: '≤' },
  internal_loss_rate: { label: 'internal loss', f: (v) => pct(v, 2), cmp: '<' },
  internal_loss: { label: 'internal loss', f: (v) => pct(v, 2), cmp: '<' },
  external_loss_rate: { label: 'external loss', f: (v) => pct(v, 2), cmp: '<' },
  external_loss: { label: 'external loss', f: (v) => pct(v, 2), cmp: '<' },
  [STABILITY]: { label: 'stability', f: (v) => (v === true ? 'stable' : v === false ? 'unstable' : String(v ?? '—')), cmp: '' },
};

function criterion(name) {
  return CRITERIA[name] || { label: String(name ?? '—').replaceAll('_', ' '), f: (v) => (isNum(v) ? fmt(v, 3) : String(v ?? '—')), cmp: '≥' };
}

/** "Cpk 1.21 at bore_diameter · needs ≥ 1.33" as DOM nodes. */
function limitingNodes(lim) {
  if (!lim || !lim[LIMITING.criterion]) return [h('span', { class: 'muted' }, 'no limiting criterion')];
  const c = criterion(lim[LIMITING.criterion]);
  const out = [h('span', { class: 'lim-crit' }, c.label), ' ', h('span', { class: 'lim-val' }, c.f(lim[LIMITING.value]))];
  if (lim[LIMITING.subject]) out.push(' at ', h('span', { class: 'lim-subj' }, String(lim[LIMITING.subject])));
  if (lim[LIMITING.threshold] != null) out.push(h('span', { class: 'lim-need' }, ` · needs ${c.cmp} ${c.f(lim[LIMITING.threshold])}`.replace('  ', ' ')));
  return out;
}

function gradeBadge(grade, size = '') {
  const g = levelInfo(grade);
  if (!g) {
    return h('div', { class: `grade-badge lvl-none ${size}`, 'data-grade-level': 'none' },
      h('span', { class: 'g-level' }, '–'),
      h('span', { class: 'g-names' }, h('span', { class: 'g-name' }, 'no grade'), h('span', { class: 'g-zh' }, '未评级')));
  }
  return h('div', { class: `grade-badge lvl-${g.level} ${size}`, 'data-grade-level': g.level },
    h('span', { class: 'g-level' }, String(g.level)),
    h('span', { class: 'g-names' }, h('span', { class: 'g-name' }, g.name), h('span', { class: 'g-zh', lang: 'zh' }, g.zh)));
}

function gradeChip(grade) {
  const g = levelInfo(grade);
  if (!g) return h('span', { class: 'chip lvl-none' }, 'no grade');
  return h('span', { class: `chip lvl-${g.level}` }, `${g.level} ${g.name}`);
}

function stability(detail) {
  if (!detail || !Array.isArray(detail[STATUS.characteristics])) return null;
  const flags = detail[STATUS.characteristics].map((c) => c[CHARACTERISTIC.stable]);
  if (flags.some((f) => f === false)) return 'unstable';
  if (flags.some((f) => f === true)) return 'stable';
  return 'pending';
}

function stabilityPill(st) {
  const text = { stable: 'stable', unstable: 'unstable', pending: 'no baseline' }[st];
  if (!text) return null;
  return h('span', { class: `pill stab-${st}`, 'data-stability': st }, text);
}

// ---------------------------------------------------------------------------------------------- HTTP

async function getJSON(path) {
  const r = await fetch(API + path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

// ---------------------------------------------------------------------------------------------- tiles

function sortedLines() {
  return [...state.lines.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

function renderTile(line) {
  const row = state.lines.get(line);
  const detail = state.details.get(line);
  const g = levelInfo(row[ROW.grade]);
  const lim = detail ? detail[STATUS.limiting] : undefined;
  const tile = h('article', {
    class: `tile lvl-${g ? g.level : 'none'}${state.open === line ? ' open' : ''}`,
    'data-line': line,
    'data-grade-level': g ? g.level : 'none',
    tabindex: 0,
    role: 'button',
    'aria-pressed': state.open === line ? 'true' : 'false',
    'aria-label': `line ${line}, ${g ? `grade ${g.level} ${g.name}` : 'no grade'}`,
    onclick: () => toggleLine(line),
    onkeydown: (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        toggleLine(line);
      }
    },
  },
  h('div', { class: 'tile-head' }, h('h3', { class: 'tile-line', title: line }, line), stabilityPill(stability(detail))),
  gradeBadge(row[ROW.grade]),
  h('dl', { class: 'metrics' },
    h('div', { class: 'm m-cpk' }, h('dt', {}, 'Cpk'), h('dd', {}, fmt(row[ROW.cpk]))),
    h('div', { class: 'm m-rty' }, h('dt', {}, 'RTY'), h('dd', {}, pct(row[ROW.rty]))),
    h('div', { class: 'm m-sigma' }, h('dt', {}, 'σ level'), h('dd', {}, sig(row[ROW.sigma_level])))),
  h('p', { class: 'limiting' }, lim === undefined ? h('span', { class: 'muted' }, '…') : limitingNodes(lim)),
  h('p', { class: 'updated' }, 'updated ', timeEl(row[ROW.updated_at])));
  const old = document.querySelector(`.tile[data-line="${CSS.escape(line)}"]`);
  if (old) {
    if (old.classList.contains('flash')) tile.classList.add('flash');
    const hadFocus = document.activeElement === old;
    old.replaceWith(tile);
    if (hadFocus) tile.focus({ preventScroll: true });
  } else {
    const tiles = $('tiles');
    const order = sortedLines();
    const next = order.slice(order.indexOf(line) + 1).map((l) => tiles.querySelector(`.tile[data-line="${CSS.escape(l)}"]`)).find(Boolean);
    tiles.insertBefore(tile, next || null);
  }
  $('tiles-empty').hidden = state.lines.size > 0;
  return tile;
}

function flashTile(line) {
  const tile = document.querySelector(`.tile[data-line="${CSS.escape(line)}"]`);
  if (!tile) return;
  tile.classList.remove('flash');
  void tile.offsetWidth; // restart the animation
  tile.classList.add('flash');
  setTimeout(() => tile.classList.remove('flash'), 2500);
}

// ---------------------------------------------------------------------------------------------- line detail

function toggleLine(line) {
  openLine(state.open === line ? null : line);
}

function openLine(line) {
  const prev = state.open;
  state.open = line;
  for (const l of [prev, line]) if (l && state.lines.has(l)) renderTile(l);
  // With a line open the tiles shrink to a strip (the overview stays in sight, the charts get the room).
  $('tiles').classList.toggle('compact', Boolean(line));
  const target = line ? `#line=${encodeURIComponent(line)}` : '';
  if (location.hash !== target) history.replaceState(null, '', target || location.pathname + location.search);
  if (!line) {
    $('detail').hidden = true;
    $('detail').replaceChildren();
    return;
  }
  if (state.details.has(line)) renderDetail(line);
  else {
    $('detail').hidden = false;
    $('detail').replaceChildren(h('p', { class: 'loading' }, `loading ${line}…`));
  }
  refreshDetail(line);
  requestAnimationFrame(() => { // bring the detail into view only when it would open out of sight
    if ($('detail').getBoundingClientRect().top > window.innerHeight * 0.6) $('detail').scrollIntoView({ block: 'start', behavior: 'smooth' });
  });
}

function fetchState(line) {
  if (!state.fetching.has(line)) state.fetching.set(line, { busy: false, again: false, last: 0, timer: null });
  return state.fetching.get(line);
}

// A status event refetches the line's detail (limiting criterion, stability, charts), coalesced: the open line
// at most once a second, the others at most every 5 s, so a busy plant does not flood the API.
function scheduleDetail(line) {
  const f = fetchState(line);
  if (f.timer) return;
  const gap = state.open === line ? 1000 : 5000;
  f.timer = setTimeout(() => {
    f.timer = null;
    refreshDetail(line);
  }, Math.max(0, f.last + gap - Date.now()));
}

async function refreshDetail(line) {
  const f = fetchState(line);
  if (f.busy) {
    f.again = true;
    return;
  }
  f.busy = true;
  f.last = Date.now();
  try {
    const doc = await getJSON(`/lines/${encodeURIComponent(line)}`);
    state.details.set(line, doc);
    const row = state.lines.get(line) || {};
    state.lines.set(line, { ...row, line, grade: doc[STATUS.grade], cpk: doc[STATUS.cpk], rty: doc[STATUS.rty], sigma_level: doc[STATUS.sigma_level], updated_at: doc[STATUS.updated_at] ?? row[ROW.updated_at] });
    renderTile(line);
    if (state.open === line) renderDetail(line);
  } catch (err) {
    if (state.open === line && !state.details.has(line)) $('detail').replaceChildren(h('p', { class: 'error' }, String(err.message || err)));
  } finally {
    f.busy = false;
    if (f.again) {
      f.again = false;
      setTimeout(() => refreshDetail(line), 150);
    }
  }
}

function metric(label, value, cls = '') {
  return h('div', { class: `m ${cls}` }, h('dt', {}, label), h('dd', {}, value));
}

function renderDetail(line) {
  const doc = state.details.get(line);
  const box = $('detail');
  if (!doc) return;
  const chars = Array.isArray(doc[STATUS.characteristics]) ? doc[STATUS.characteristics] : [];
  const stations = Array.isArray(doc[STATUS.stations]) ? doc[STATUS.stations] : [];
  const criteria = Array.isArray(doc[STATUS.criteria]) ? doc[STATUS.criteria] : [];
  const view = h('div', { class: 'detail-inner', 'data-line': line },
    h('header', { class: 'detail-head' },
      h('h2', { class: 'detail-title' }, h('span', { class: 'muted' }, 'line '), line),
      gradeBadge(doc[STATUS.grade], 'big'),
      h('div', { class: 'detail-limiting' },
        h('div', {}, h('span', { class: 'muted' }, 'limiting '), limitingNodes(doc[STATUS.limiting])),
        h('div', { class: 'muted small' }, 'updated ', timeEl(doc[STATUS.updated_at]), ` · ${chars.length} characteristic${chars.length === 1 ? '' : 's'} · ${stations.length} station${stations.length === 1 ? '' : 's'}`)),
      h('button', { type: 'button', class: 'close', title: 'close (Esc)', 'aria-label': 'close line detail', onclick: () => openLine(null) }, '✕')),
    h('dl', { class: 'metrics wide' },
      metric('Cpk', fmt(doc[STATUS.cpk])),
      metric('RTY', pct(doc[STATUS.rty])),
      metric('σ level', sig(doc[STATUS.sigma_level])),
      metric('DPMO', dpmo(doc[STATUS.dpmo])),
      metric('internal loss', pct(doc[STATUS.internal_loss_rate], 2)),
      metric('external loss', pct(doc[STATUS.external_loss_rate], 2))),
    h('div', { class: 'chars' }, chars.length ? chars.map(charCard) : h('p', { class: 'empty' }, 'No characteristic has data yet.')),
    h('div', { class: 'detail-grid' },
      criteriaTable(criteria),
      stationsBlock(stations)));
  box.hidden = false;
  box.replaceChildren(view);
}

function criteriaTable(criteria) {
  if (!criteria.length) return h('section', { class: 'criteria' }, h('h3', {}, 'Criteria'), h('p', { class: 'muted' }, '—'));
  return h('section', { class: 'criteria' }, h('h3', {}, 'Criteria'),
    h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'criterion'), h('th', { class: 'num' }, 'value'), h('th', {}, 'subject'),
        h('th', {}, 'meets'), h('th', { class: 'num' }, 'next level needs'))),
      h('tbody', {}, criteria.map((c) => {
        const k = criterion(c[CRITERION.criterion]);
        const assessed = c[CRITERION.assessed] !== false;
        const met = isNum(c[CRITERION.met_level]) ? LEVELS.find((l) => l.level === c[CRITERION.met_level]) : null;
        return h('tr', { class: assessed ? '' : 'not-assessed' },
          h('td', {}, k.label),
          h('td', { class: 'num' }, assessed ? k.f(c[CRITERION.value]) : 'not assessed'),
          h('td', {}, c[CRITERION.subject] == null ? '—' : String(c[CRITERION.subject])),
          h('td', {}, met ? h('span', { class: `chip lvl-${met.level}` }, `${met.level} ${met.name}`) : '—'),
          h('td', { class: 'num' }, c[CRITERION.next_threshold] == null ? '—' : `${k.cmp} ${k.f(c[CRITERION.next_threshold])}`));
      }))));
}

function stationsBlock(stations) {
  return h('section', { class: 'stations' }, h('h3', {}, 'First-pass yield by station'),
    stations.length
      ? h('ol', { class: 'fpy' }, stations.map((st) => {
        const y = st[STATION.first_pass_yield];
        const w = isNum(y) ? Math.max(0, Math.min(1, y)) : 0;
        const fill = h('span', { class: `fpy-fill ${isNum(y) && y < 0.9 ? 'bad' : isNum(y) && y < 0.97 ? 'warn' : 'good'}` });
        fill.style.width = `${(w * 100).toFixed(2)}%`; // CSSOM, allowed by the page's CSP (no inline style attributes)
        return h('li', { class: 'fpy-row', 'data-station': st[STATION.station] },
          h('span', { class: 'fpy-name' }, String(st[STATION.station])),
          h('span', { class: 'fpy-bar', role: 'img', 'aria-label': `FPY ${pct(y)}` }, fill),
          h('span', { class: 'fpy-val' }, pct(y)),
          h('span', { class: 'fpy-units muted' }, `${int(st[STATION.units])} units · ${int(st[STATION.units_total])} total`));
      }))
      : h('p', { class: 'muted' }, 'No inspections yet.'));
}

function charCard(c) {
  const ch = CHARTS[c[CHARACTERISTIC.control]?.[CONTROL.chart]] || (c[CHARACTERISTIC.subgroup_size] === 1 ? CHARTS.i_mr : CHARTS.xbar_r);
  const points = Array.isArray(c[CHARACTERISTIC.points]) ? c[CHARACTERISTIC.points] : [];
  const violations = Array.isArray(c[CHARACTERISTIC.violations]) ? c[CHARACTERISTIC.violations] : [];
  const dec = decimalsFor(c[CHARACTERISTIC.sigma_overall] || c[CHARACTERISTIC.sigma_within] || (isNum(c[CHARACTERISTIC.usl]) && isNum(c[CHARACTERISTIC.lsl]) ? (c[CHARACTERISTIC.usl] - c[CHARACTERISTIC.lsl]) / 6 : null));
  const st = c[CHARACTERISTIC.stable] === false ? 'unstable' : c[CHARACTERISTIC.stable] === true ? 'stable' : 'pending';
  const insufficient = c[CHARACTERISTIC.state] === STATES.INSUFFICIENT_DATA;
  // Which chart a rule fired on comes from the violations; a point's own `rules` is the fallback for points
  // whose violations have aged out of the list.
  const rViol = new Set(violations.filter((v) => v[VIOLATION.chart] === 'r').map((v) => v[VIOLATION.seq]));
  const xViol = new Map();
  for (const v of violations) {
    if (v[VIOLATION.chart] === 'r') continue;
    if (!xViol.has(v[VIOLATION.seq])) xViol.set(v[VIOLATION.seq], []);
    if (!xViol.get(v[VIOLATION.seq]).includes(v[VIOLATION.rule])) xViol.get(v[VIOLATION.seq]).push(v[VIOLATION.rule]);
  }
  const listed = new Set(violations.map((v) => v[VIOLATION.seq]));
  const xRules = (p) => xViol.get(p[POINT.seq]) || (listed.has(p[POINT.seq]) ? [] : Array.isArray(p[POINT.rules]) ? p[POINT.rules] : []);
  const ci = Array.isArray(c[CHARACTERISTIC.cpk_ci]) ? c[CHARACTERISTIC.cpk_ci] : null;
  const ctl = c[CHARACTERISTIC.control] || {};
  return h('article', { class: 'char', 'data-characteristic': c[CHARACTERISTIC.characteristic] },
    h('header', { class: 'char-head' },
      h('h3', {}, String(c[CHARACTERISTIC.characteristic]), c[CHARACTERISTIC.station] ? h('span', { class: 'muted' }, ` @ ${c[CHARACTERISTIC.station]}`) : null),
      h('span', { class: 'pill chart-kind' }, ch.name),
      stabilityPill(st),
      insufficient ? h('span', { class: 'pill insufficient' }, `insufficient data · ${int(c[CHARACTERISTIC.subgroups])} subgroups`) : null,
      h('span', { class: 'char-spec muted' }, `spec ${fmt(c[CHARACTERISTIC.lsl], dec)} … ${fmt(c[CHARACTERISTIC.usl], dec)}${isNum(c[CHARACTERISTIC.target]) ? ` · target ${fmt(c[CHARACTERISTIC.target], dec)}` : ''}`)),
    h('dl', { class: 'indices' },
      metric('Cp', fmt(c[CHARACTERISTIC.cp])),
      metric('Cpk', fmt(c[CHARACTERISTIC.cpk]), 'key'),
      metric('95 % CI', ci && isNum(ci[0]) ? `${fmt(ci[0])} – ${fmt(ci[1])}` : '—'),
      metric('Pp', fmt(c[CHARACTERISTIC.pp])),
      metric('Ppk', fmt(c[CHARACTERISTIC.ppk]), 'key'),
      metric('Cpm', fmt(c[CHARACTERISTIC.cpm])),
      metric('mean', fmt(c[CHARACTERISTIC.mean], dec)),
      metric('σ within', fmt(c[CHARACTERISTIC.sigma_within], dec + 1)),
      metric('σ overall', fmt(c[CHARACTERISTIC.sigma_overall], dec + 1)),
      metric('n', int(c[CHARACTERISTIC.n]))),
    h('div', { class: 'char-charts' },
      h('figure', { class: 'cc' },
        controlChart({
          kind: 'x', label: `${ch.x} chart`, points, value: (p) => p[POINT.x],
          center: ctl[CONTROL.center], ucl: ctl[CONTROL.ucl], lcl: ctl[CONTROL.lcl], lsl: c[CHARACTERISTIC.lsl], usl: c[CHARACTERISTIC.usl], target: c[CHARACTERISTIC.target],
          marked: (p) => xRules(p).length > 0, rules: xRules, dec, height: 220,
        }),
        controlChart({
          kind: 'r', label: `${ch.r} chart`, points, value: (p) => p[POINT.r],
          center: ctl[CONTROL.range_center], ucl: ctl[CONTROL.range_ucl], lcl: ctl[CONTROL.range_lcl],
          marked: (p) => rViol.has(p[POINT.seq]), rules: () => [1], dec: dec + 1, height: 130,
        })),
      h('figure', { class: 'hist' }, histogram(c, dec))),
    violationsList(violations, ch, dec));
}

/** The most recent violations, one row per plotted point and chart (rules that fired together are grouped). */
function violationsList(violations, ch, dec) {
  if (!violations.length) return null;
  const groups = new Map();
  for (const v of violations) {
    const k = `${v[VIOLATION.seq]}/${v[VIOLATION.chart]}`;
    if (!groups.has(k)) groups.set(k, { ...v, rules: [] });
    const g = groups.get(k);
    if (!g.rules.includes(v[VIOLATION.rule])) g.rules.push(v[VIOLATION.rule]);
    if (v[VIOLATION.rule] === 1) g.limit = v[VIOLATION.limit];
  }
  const recent = [...groups.values()].sort((a, b) => (b.seq ?? 0) - (a.seq ?? 0)).slice(0, 4);
  const more = groups.size - recent.length;
  return h('ul', { class: 'violations' },
    recent.map((v) => h('li', {},
      h('b', {}, `${v[VIOLATION.chart] === 'r' ? ch.r : ch.x} `), `subgroup ${v[VIOLATION.subgroup] ?? v[VIOLATION.seq]} `,
      v.rules.sort((a, b) => a - b).map((r, i) => [i ? ', ' : '', h('span', { class: 'v-rule' }, `rule ${r}`), ` ${RULES[r] || ''}`]),
      h('span', { class: 'muted' }, ` · value ${fmt(v[VIOLATION.value], dec)}${isNum(v[VIOLATION.limit]) ? ` vs ${fmt(v[VIOLATION.limit], dec)}` : ''} · `), timeEl(v[VIOLATION.event_time]))),
    more > 0 ? h('li', { class: 'muted' }, `… and ${more} earlier`) : null);
}

// ---------------------------------------------------------------------------------------------- SVG charts

function niceTicks(lo, hi, count = 5) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** The fewest decimals that show every tick exactly (a step of 0.025 needs 3). */
function tickDecimals(ticks) {
  if (ticks.length < 2) return 3;
  const step = Math.abs(ticks[1] - ticks[0]);
  for (let d = 0; d < 9; d += 1) {
    const scaled = step * 10 ** d;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) return d;
  }
  return 9;
}

/** An X̄/I (kind 'x') or R/S/MR (kind 'r') chart: points over sequence, centre line, control and spec limits. */
function controlChart(o) {
  const W = 620;
  const H = o.height;
  const m = { l: 58, r: 104, t: 24, b: 28 };
  const pts = o.points.filter((p) => isNum(o.value(p)));
  const svg = s('svg', { class: `chart chart-${o.kind}`, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${o.label}, ${pts.length} points`, 'data-points': pts.length });
  svg.append(s('text', { class: 'ch-title', x: m.l, y: 15 }, o.label));
  if (!pts.length) {
    svg.append(s('text', { class: 'ch-empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no points yet'));
    return svg;
  }
  const vals = pts.map(o.value);
  const lims = [o.center, o.ucl, o.lcl].filter(isNum);
  let lo = Math.min(...vals, ...lims);
  let hi = Math.max(...vals, ...lims);
  if (!(hi > lo)) {
    const d = Math.abs(hi) * 0.01 || 1;
    lo -= d;
    hi += d;
  }
  // Spec limits are drawn when they are within reach; otherwise an arrow at the edge says where they are.
  const span = hi - lo;
  const specs = [];
  const offscale = [];
  for (const [name, v] of [['LSL', o.lsl], ['USL', o.usl]]) {
    if (!isNum(v)) continue;
    if (v >= lo - span && v <= hi + span) {
      specs.push([name, v]);
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    } else offscale.push([name, v]);
  }
  const pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  const x = (i) => m.l + (pts.length === 1 ? (W - m.l - m.r) / 2 : (i * (W - m.l - m.r)) / (pts.length - 1));
  const y = (v) => m.t + (H - m.t - m.b) * (1 - (v - lo) / (hi - lo));

  const grid = s('g', { class: 'grid' });
  const ticks = niceTicks(lo, hi, H > 200 ? 5 : 3);
  const td = tickDecimals(ticks);
  for (const t of ticks) {
    grid.append(s('line', { x1: m.l, x2: W - m.r, y1: y(t), y2: y(t) }));
    grid.append(s('text', { class: 'tick', x: m.l - 8, y: y(t) + 4, 'text-anchor': 'end' }, t.toFixed(td)));
  }
  svg.append(grid);

  if (isNum(o.ucl) && isNum(o.lcl)) {
    svg.append(s('rect', { class: 'ctl-band', x: m.l, width: W - m.l - m.r, y: y(o.ucl), height: Math.max(0, y(o.lcl) - y(o.ucl)) }));
  }
  const hline = (v, cls, name) => {
    svg.append(s('line', { class: cls, x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
    svg.append(s('text', { class: `lbl ${cls}`, x: W - m.r + 6, y: y(v) + 4 }, `${name} ${fmt(v, o.dec)}`));
  };
  for (const [name, v] of specs) hline(v, 'spec', name);
  if (o.kind === 'x' && isNum(o.target) && o.target > lo && o.target < hi && !specs.some(([, v]) => Math.abs(y(v) - y(o.target)) < 12)) {
    svg.append(s('line', { class: 'target', x1: m.l, x2: W - m.r, y1: y(o.target), y2: y(o.target) }));
  }
  // Labels of lines closer than a text line are nudged apart.
  const labelled = [];
  for (const [v, cls, name] of [[o.ucl, 'ucl', 'UCL'], [o.center, 'center', 'CL'], [o.lcl, 'lcl', 'LCL']]) {
    if (!isNum(v)) continue;
    svg.append(s('line', { class: cls, x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
    let ly = y(v) + 4;
    for (const other of labelled) if (Math.abs(other - ly) < 13) ly = other + 13;
    labelled.push(ly);
    svg.append(s('text', { class: `lbl ${cls}`, x: W - m.r + 6, y: ly }, `${name} ${fmt(v, o.dec)}`));
  }
  if (offscale.length) { // far outside the data: named in the title row instead of squashing the chart
    svg.append(s('text', { class: 'lbl spec offscale', x: W - m.r, y: 15, 'text-anchor': 'end' },
      `${offscale.map(([name, v]) => `${v > hi ? '▲' : '▼'} ${name} ${fmt(v, o.dec)}`).join('   ')}  (off scale)`));
  }

  svg.append(s('polyline', { class: 'series', points: pts.map((p, i) => `${x(i).toFixed(1)},${y(o.value(p)).toFixed(1)}`).join(' ') }));
  const dots = s('g', { class: 'dots' });
  let prevTag = '';
  pts.forEach((p, i) => {
    const bad = o.marked(p);
    const cx = x(i);
    const cy = y(o.value(p));
    const dot = s('circle', { class: bad ? 'pt violation' : 'pt', cx: cx.toFixed(1), cy: cy.toFixed(1), r: bad ? 5.5 : 3.6, 'data-seq': p[POINT.seq] },
      s('title', {}, `#${p[POINT.seq]} · subgroup ${p[POINT.subgroup] ?? ''} · ${when(p[POINT.event_time])} · n=${p[POINT.n] ?? ''} · ${o.kind === 'x' ? 'x' : 'r'}=${fmt(o.value(p), o.dec)}${bad ? ` · rule ${o.rules(p).join(', ')}` : ''}`));
    dots.append(dot);
    const tag = bad && o.kind === 'x' ? o.rules(p).join(',') : '';
    if (tag && tag !== prevTag) { // label a run of points with the same rules once, at its start
      dots.append(s('text', { class: 'rule-tag', x: cx, y: cy < m.t + 18 ? cy + 18 : cy - 9, 'text-anchor': 'middle' }, tag));
    }
    prevTag = tag;
  });
  svg.append(dots);

  // x axis: first, middle and last point with their event time.
  const axis = s('g', { class: 'xaxis' });
  const idx = [...new Set([0, Math.floor((pts.length - 1) / 2), pts.length - 1])];
  for (const i of idx) {
    const d = parseTime(pts[i].event_time);
    axis.append(s('text', { class: 'tick', x: x(i), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === pts.length - 1 ? 'end' : 'middle' },
      `#${pts[i].seq}${d ? ` · ${clock(d)}` : ''}`));
  }
  svg.append(axis);
  return svg;
}

function normalPdf(v, mu, sd) {
  const z = (v - mu) / sd;
  return Math.exp(-0.5 * z * z) / (sd * Math.sqrt(2 * Math.PI));
}

/**
 * Capability histogram (Minitab's): the individual values of the capability window, binned by the worker
 * (`c.histogram`: edges, counts, n, below_lsl, above_usl), under the normal curves of σ within and σ overall
 * scaled to counts (n · bin width · pdf), with the spec limits and the out-of-spec counts. Subgroup means are
 * not used: their spread is σ/√n, so bars of means under curves of individuals mislead.
 */
function histogram(c, dec) {
  const W = 380;
  const H = 350;
  const m = { l: 14, r: 14, t: 50, b: 62 };
  const hg = c[CHARACTERISTIC.histogram] && typeof c[CHARACTERISTIC.histogram] === 'object' ? c[CHARACTERISTIC.histogram] : null;
  const edges = hg && Array.isArray(hg[HISTOGRAM.edges]) ? hg[HISTOGRAM.edges].filter(isNum) : [];
  const counts = hg && Array.isArray(hg[HISTOGRAM.counts]) ? hg[HISTOGRAM.counts].map((v) => (isNum(v) ? v : 0)) : [];
  const ok = edges.length >= 2 && counts.length === edges.length - 1;
  const n = ok ? counts.reduce((a, b) => a + b, 0) : 0;
  const svg = s('svg', { class: 'histogram', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'capability histogram of individual values', 'data-values': n, 'data-bins': ok ? counts.length : 0 });
  svg.append(s('text', { class: 'ch-title', x: m.l, y: 16 }, 'Capability'));
  if (!ok || !n) {
    svg.append(s('text', { class: 'ch-empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no values yet'));
    return svg;
  }
  const first = edges[0];
  const last = edges[edges.length - 1];
  const mu = isNum(c[CHARACTERISTIC.mean]) ? c[CHARACTERISTIC.mean] : (first + last) / 2;
  const sw = isNum(c[CHARACTERISTIC.sigma_within]) && c[CHARACTERISTIC.sigma_within] > 0 ? c[CHARACTERISTIC.sigma_within] : null;
  const so = isNum(c[CHARACTERISTIC.sigma_overall]) && c[CHARACTERISTIC.sigma_overall] > 0 ? c[CHARACTERISTIC.sigma_overall] : null;
  const wide = Math.max(sw || 0, so || 0);
  const candidates = [first, last, c[CHARACTERISTIC.lsl], c[CHARACTERISTIC.usl], c[CHARACTERISTIC.target]].filter(isNum);
  if (wide) candidates.push(mu - 3.5 * wide, mu + 3.5 * wide);
  let lo = Math.min(...candidates);
  let hi = Math.max(...candidates);
  const padX = (hi - lo) * 0.04;
  lo -= padX;
  hi += padX;

  const bw = isNum(hg[HISTOGRAM.bin_width]) && hg[HISTOGRAM.bin_width] > 0 ? hg[HISTOGRAM.bin_width] : (last - first) / counts.length;
  const scale = n * bw; // density → expected count per bin
  const curves = [];
  if (sw) curves.push(['within', sw]);
  if (so) curves.push(['overall', so]);
  let ymax = Math.max(...counts);
  for (const [, sd] of curves) ymax = Math.max(ymax, normalPdf(mu, mu, sd) * scale);
  ymax *= 1.12;

  const x = (v) => m.l + ((v - lo) / (hi - lo)) * (W - m.l - m.r);
  const y = (v) => m.t + (H - m.t - m.b) * (1 - v / ymax);
  const base = y(0);

  // out-of-spec regions
  if (isNum(c[CHARACTERISTIC.lsl]) && c[CHARACTERISTIC.lsl] > lo) svg.append(s('rect', { class: 'oos', x: m.l, y: m.t, width: x(c[CHARACTERISTIC.lsl]) - m.l, height: base - m.t }));
  if (isNum(c[CHARACTERISTIC.usl]) && c[CHARACTERISTIC.usl] < hi) svg.append(s('rect', { class: 'oos', x: x(c[CHARACTERISTIC.usl]), y: m.t, width: W - m.r - x(c[CHARACTERISTIC.usl]), height: base - m.t }));

  // the worker puts the spec limits on bin edges, so a bar is wholly in or wholly out of spec
  const bars = s('g', { class: 'bars' });
  counts.forEach((k, i) => {
    if (!k) return;
    const a = edges[i];
    const b = edges[i + 1];
    const out = (isNum(c[CHARACTERISTIC.lsl]) && b <= c[CHARACTERISTIC.lsl]) || (isNum(c[CHARACTERISTIC.usl]) && a >= c[CHARACTERISTIC.usl]);
    bars.append(s('rect', { class: out ? 'bar out' : 'bar', x: x(a) + 0.5, y: y(k), width: Math.max(1, x(b) - x(a) - 1), height: base - y(k), 'data-count': k },
      s('title', {}, `${fmt(a, dec)} – ${fmt(b, dec)}: ${k}${out ? ' (out of spec)' : ''}`)));
  });
  svg.append(bars);

  for (const [name, sd] of curves) {
    const path = [];
    for (let i = 0; i <= 160; i += 1) {
      const v = lo + ((hi - lo) * i) / 160;
      path.push(`${i ? 'L' : 'M'}${x(v).toFixed(1)},${y(normalPdf(v, mu, sd) * scale).toFixed(1)}`);
    }
    svg.append(s('path', { class: `curve curve-${name}`, d: path.join('') }));
  }

  const vline = (v, cls, name, row) => {
    if (!isNum(v) || v < lo || v > hi) return;
    svg.append(s('line', { class: cls, x1: x(v), x2: x(v), y1: m.t - 4, y2: base }));
    const px = x(v);
    const anchor = px < m.l + 45 ? 'start' : px > W - m.r - 45 ? 'end' : 'middle';
    svg.append(s('text', { class: `lbl ${cls}`, x: px, y: m.t - 8 - row * 13, 'text-anchor': anchor }, `${name} ${fmt(v, dec)}`));
  };
  vline(c[CHARACTERISTIC.lsl], 'spec', 'LSL', 0);
  vline(c[CHARACTERISTIC.usl], 'spec', 'USL', 0);
  vline(c[CHARACTERISTIC.target], 'target', 'T', 1);

  // values beyond the limits, counted by the worker (a value on a limit is in spec)
  const oosText = [];
  if (isNum(hg[HISTOGRAM.below_lsl])) oosText.push(`< LSL ${hg[HISTOGRAM.below_lsl]}`);
  if (isNum(hg[HISTOGRAM.above_usl])) oosText.push(`> USL ${hg[HISTOGRAM.above_usl]}`);
  if (oosText.length) {
    const bad = (hg[HISTOGRAM.below_lsl] || 0) + (hg[HISTOGRAM.above_usl] || 0) > 0;
    svg.append(s('text', { class: `oos-count${bad ? ' bad' : ''}`, x: W - m.r, y: 16, 'text-anchor': 'end', 'data-below': isNum(hg[HISTOGRAM.below_lsl]) ? hg[HISTOGRAM.below_lsl] : '', 'data-above': isNum(hg[HISTOGRAM.above_usl]) ? hg[HISTOGRAM.above_usl] : '' }, oosText.join(' · ')));
  }

  svg.append(s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: base, y2: base }));
  const ticks = niceTicks(lo, hi, 5);
  const td = tickDecimals(ticks);
  for (const t of ticks) {
    svg.append(s('line', { class: 'axis', x1: x(t), x2: x(t), y1: base, y2: base + 4 }));
    svg.append(s('text', { class: 'tick', x: x(t), y: base + 17, 'text-anchor': 'middle' }, t.toFixed(td)));
  }
  svg.append(s('text', { class: 'axis-label', x: (m.l + W - m.r) / 2, y: H - 22, 'text-anchor': 'middle' }, `individual values · n = ${n}`));
  const legend = s('g', { class: 'legend' });
  let lx = m.l;
  const ly = H - 6;
  legend.append(s('rect', { class: 'bar', x: lx, y: ly - 9, width: 12, height: 10 }));
  legend.append(s('text', { x: lx + 16, y: ly }, 'values'));
  lx += 62;
  for (const [name] of curves) {
    legend.append(s('line', { class: `curve curve-${name}`, x1: lx, x2: lx + 22, y1: ly - 4, y2: ly - 4 }));
    legend.append(s('text', { x: lx + 26, y: ly }, `N(μ, σ ${name})`));
    lx += 138;
  }
  svg.append(legend);
  return svg;
}

// ---------------------------------------------------------------------------------------------- alerts

function ackOf(a) {
  if (!a) return null;
  const src = [a[ALERT.ack], a.acknowledged, a.acknowledgement].find((v) => v && typeof v === 'object') || a;
  const by = src[ACK.by] ?? src.who ?? src.user ?? src.acked_by ?? src.ack_by ?? src.acknowledged_by;
  const at = src[ACK.at] ?? src.when ?? src.acked_at ?? src.ack_at ?? src.acknowledged_at ?? src.time;
  if (by == null && at == null) return null;
  return { by, at, comment: src[ACK.comment] ?? null };
}

function alertTitle(a) {
  return { [ALERT_TYPES.GRADE_DEGRADED]: 'grade degraded', [ALERT_TYPES.GRADE_RECOVERED]: 'grade recovered', [ALERT_TYPES.OUT_OF_CONTROL]: 'out of control' }[a[ALERT.type]] || String(a[ALERT.type] || 'alert').replaceAll('_', ' ');
}

function alertBody(a) {
  if (a[ALERT.type] === ALERT_TYPES.GRADE_DEGRADED || a[ALERT.type] === ALERT_TYPES.GRADE_RECOVERED || a[ALERT.from_grade] || a[ALERT.to_grade]) {
    return [
      h('p', { class: 'a-grades' }, gradeChip(a[ALERT.from_grade]), h('span', { class: 'arrow', 'aria-label': 'to' }, ' → '), gradeChip(a[ALERT.to_grade])),
      h('p', { class: 'a-detail' }, limitingNodes(a[ALERT.limiting])),
      h('p', { class: 'a-metrics muted' }, `Cpk ${fmt(a[ALERT.cpk])} · RTY ${pct(a[ALERT.rty])} · ${sig(a[ALERT.sigma_level])}`),
    ];
  }
  if (a[ALERT.type] === ALERT_TYPES.OUT_OF_CONTROL || a[ALERT.rule] != null) {
    const kind = state.details.get(a[ALERT.line])?.[STATUS.characteristics]?.find((c) => c[CHARACTERISTIC.characteristic] === a[ALERT.characteristic])?.[CHARACTERISTIC.control]?.[CONTROL.chart];
    const names = CHARTS[kind];
    const chart = a[ALERT.chart] === 'r' ? `${names ? names.r : 'range'} chart` : a[ALERT.chart] === 'x' ? `${names ? names.x : 'X̄/I'} chart` : `${a[ALERT.chart] ?? ''} chart`;
    return [
      h('p', { class: 'a-detail' }, h('b', {}, String(a[ALERT.characteristic] ?? '')), a[ALERT.station] ? ` @ ${a[ALERT.station]}` : '',
        ' — ', h('span', { class: 'v-rule' }, `rule ${a[ALERT.rule]}`), ` ${RULES[a[ALERT.rule]] || ''} on ${chart}`),
      h('p', { class: 'a-metrics muted' }, `value ${isNum(a[ALERT.value]) ? a[ALERT.value].toPrecision(6) : '—'}${isNum(a[ALERT.limit]) ? ` vs limit ${a[ALERT.limit].toPrecision(6)}` : ''} · subgroup ${a[ALERT.subgroup] ?? '—'}`),
    ];
  }
  return [h('p', { class: 'a-detail' }, JSON.stringify(a))];
}

function renderAlert(a, fresh = false) {
  const ack = ackOf(a);
  const li = h('li', { class: `alert type-${String(a[ALERT.type] || 'other').replace(/[^a-z_]/gi, '')}${ack ? ' acked' : ''}${fresh ? ' fresh' : ''}`, 'data-alert-id': a[ALERT.alert_id], 'data-line': a[ALERT.line] },
    h('div', { class: 'a-head' },
      h('span', { class: 'a-type' }, alertTitle(a)),
      h('button', { type: 'button', class: 'a-line link', title: 'open this line', onclick: () => state.lines.has(a[ALERT.line]) && openLine(a[ALERT.line]) }, String(a[ALERT.line] ?? '')),
      timeEl(a[ALERT.event_time] ?? a[ALERT.detected_at], 'a-time')),
    alertBody(a),
    h('div', { class: 'a-foot' },
      ack
        ? h('span', { class: 'ack-info' }, '✓ acknowledged', ack[ACK.by] != null ? ` by ${ack[ACK.by]}` : '', ack[ACK.at] != null ? [' · ', timeEl(ack[ACK.at])] : '',
          ack[ACK.comment] ? h('span', { class: 'ack-comment' }, ` — ${ack[ACK.comment]}`) : null)
        : h('button', { type: 'button', class: 'ack-btn', onclick: (e) => acknowledge(a[ALERT.alert_id], e.currentTarget) }, 'Acknowledge')));
  return li;
}

function renderAlerts() {
  $('alerts').replaceChildren(...state.alerts.map((a) => renderAlert(a, a._fresh)));
  updateAlertCount();
}

function updateAlertCount() {
  const open = state.alerts.filter((a) => !ackOf(a)).length;
  $('alert-count').textContent = state.alerts.length ? `${open} open · ${state.alerts.length}` : '';
  $('alerts-empty').hidden = state.alerts.length > 0;
}

function alertKey(a) {
  const t = parseTime(a[ALERT.detected_at] ?? a[ALERT.event_time]);
  return t ? t.getTime() : 0;
}

function addAlert(a, live) {
  if (!a || !a.alert_id) return;
  if (state.alertIds.has(a.alert_id)) {
    const i = state.alerts.findIndex((x) => x.alert_id === a.alert_id);
    if (i >= 0 && ackOf(a) && !ackOf(state.alerts[i])) {
      state.alerts[i] = { ...state.alerts[i], ...a };
      replaceAlert(state.alerts[i]);
    }
    return;
  }
  state.alertIds.add(a.alert_id);
  if (live) {
    a._fresh = true;
    state.alerts.unshift(a);
    $('alerts').prepend(renderAlert(a, true));
    setTimeout(() => {
      a._fresh = false;
      document.querySelector(`.alert[data-alert-id="${CSS.escape(a.alert_id)}"]`)?.classList.remove('fresh');
    }, 8000);
    if (a.line && state.lines.has(a.line)) flashTile(a.line);
  } else {
    state.alerts.push(a);
  }
  if (state.alerts.length > 500) {
    for (const old of state.alerts.splice(500)) state.alertIds.delete(old.alert_id);
    renderAlerts();
  }
  updateAlertCount();
}

function replaceAlert(a) {
  const old = document.querySelector(`.alert[data-alert-id="${CSS.escape(a.alert_id)}"]`);
  if (old) old.replaceWith(renderAlert(a));
  updateAlertCount();
}

async function loadAlerts() {
  // Page through the log (oldest first) and keep the newest 100 (the list shows newest first).
  let items = [];
  let cursor = null;
  for (let page = 0; page < 50; page += 1) {
    const q = new URLSearchParams({ limit: '100' });
    if (cursor != null) q.set('since', cursor);
    const body = await getJSON(`/alerts?${q}`);
    const got = Array.isArray(body) ? body : body.items || [];
    items = items.concat(got).slice(-100);
    if (Array.isArray(body) || !got.length || body.next == null || body.next === cursor || got.length < 100) break;
    cursor = body.next;
  }
  const known = new Map(state.alerts.map((a) => [a.alert_id, a]));
  const merged = items.map((a) => ({ ...(known.get(a.alert_id) || {}), ...a }));
  for (const a of state.alerts) if (!merged.some((m) => m.alert_id === a.alert_id)) merged.push(a);
  merged.sort((p, q) => alertKey(q) - alertKey(p));
  state.alerts = merged.slice(0, 500);
  state.alertIds = new Set(state.alerts.map((a) => a.alert_id));
  renderAlerts();
}

// ---------------------------------------------------------------------------------------------- acknowledge

let keyResolve = null;

function askKey(message = '') {
  const form = $('key-form');
  form.hidden = false;
  $('key-msg').textContent = message;
  $('key-input').value = localStorage.getItem(KEY_STORE) || '';
  $('key-input').focus();
  return new Promise((resolve) => {
    if (keyResolve) keyResolve(null);
    keyResolve = resolve;
  });
}

function closeKeyForm(value) {
  $('key-form').hidden = true;
  $('key-msg').textContent = '';
  const r = keyResolve;
  keyResolve = null;
  if (r) r(value);
}

async function acknowledge(alertId, btn) {
  let key = localStorage.getItem(KEY_STORE);
  if (!key) key = await askKey('Enter the API key to acknowledge alerts.');
  if (!key) return;
  const li = btn.closest('.alert');
  btn.disabled = true;
  btn.textContent = 'acknowledging…';
  try {
    const r = await fetch(`${API}/alerts/${encodeURIComponent(alertId)}/ack`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' },
    });
    if (r.status === 401 || r.status === 403) {
      localStorage.removeItem(KEY_STORE);
      btn.disabled = false;
      btn.textContent = 'Acknowledge';
      const again = await askKey(`The key was rejected (HTTP ${r.status}). Enter a valid API key.`);
      if (again) acknowledge(alertId, btn);
      return;
    }
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    let body = {};
    try {
      body = await r.json();
    } catch {
      body = {};
    }
    const i = state.alerts.findIndex((a) => a.alert_id === alertId);
    const ack = ackOf(body) || { by: null, at: new Date().toISOString() };
    if (i >= 0) {
      state.alerts[i] = { ...state.alerts[i], ack };
      replaceAlert(state.alerts[i]);
    }
  } catch (err) {
    btn.disabled = false;
    btn.textContent = 'Acknowledge';
    li?.querySelector('.a-error')?.remove();
    li?.querySelector('.a-foot')?.append(h('span', { class: 'a-error' }, `ack failed: ${err.message || err}`));
  }
}

// ---------------------------------------------------------------------------------------------- live updates

const conn = { es: null, backoff: 1000, timer: null, everOpen: false };

function setConn(st, text) {
  const el = $('conn');
  el.dataset.state = st;
  el.textContent = text || st;
}

function removeLine(line) {
  state.lines.delete(line);
  state.details.delete(line);
  document.querySelector(`.tile[data-line="${CSS.escape(line)}"]`)?.remove();
  clearTimeout(state.fetching.get(line)?.timer);
  state.fetching.delete(line);
  if (state.open === line) openLine(null);
  $('tiles-empty').hidden = state.lines.size > 0;
}

function onStatus(row) {
  if (!row || !row[ROW.line]) return;
  if (row.removed) {
    removeLine(row[ROW.line]);
    return;
  }
  const prev = state.lines.get(row[ROW.line]);
  state.lines.set(row[ROW.line], { ...(prev || {}), ...row });
  renderTile(row[ROW.line]);
  if (prev && prev[ROW.grade]?.[GRADE.level] !== row[ROW.grade]?.[GRADE.level]) flashTile(row[ROW.line]);
  scheduleDetail(row[ROW.line]);
}

function parse(ev) {
  try {
    return JSON.parse(ev.data);
  } catch {
    return null;
  }
}

function connect() {
  clearTimeout(conn.timer);
  if (conn.es) conn.es.close();
  setConn(conn.everOpen ? 'reconnecting' : 'connecting', conn.everOpen ? 'reconnecting…' : 'connecting…');
  const es = new EventSource(`${API}/alerts/stream`);
  conn.es = es;
  es.addEventListener('open', () => {
    const resync = conn.everOpen;
    conn.everOpen = true;
    conn.backoff = 1000;
    setConn('live', 'live');
    if (resync) loadAll(); // catch up on what was missed while disconnected
  });
  es.addEventListener('alert', (ev) => addAlert(parse(ev), true));
  es.addEventListener('status', (ev) => onStatus(parse(ev)));
  es.addEventListener('ack', (ev) => {
    const d = parse(ev);
    if (d && d.alert_id) addAlert({ alert_id: d.alert_id, ack: ackOf(d) }, false);
  });
  es.addEventListener('message', (ev) => {
    const d = parse(ev);
    if (d && d.alert_id) addAlert(d, true);
    else if (d && d.line && 'grade' in d) onStatus(d);
  });
  es.addEventListener('error', () => {
    es.close();
    if (conn.es !== es) return;
    setConn('reconnecting', `reconnecting in ${Math.round(conn.backoff / 1000)} s`);
    conn.timer = setTimeout(connect, conn.backoff);
    conn.backoff = Math.min(conn.backoff * 2, 30000);
  });
}

async function loadLines() {
  const rows = await getJSON('/lines');
  for (const row of Array.isArray(rows) ? rows : rows.items || []) {
    state.lines.set(row[ROW.line], { ...(state.lines.get(row[ROW.line]) || {}), ...row });
    renderTile(row[ROW.line]);
  }
  $('tiles-empty').hidden = state.lines.size > 0;
  await Promise.all([...state.lines.keys()].map((l) => refreshDetail(l)));
}

async function loadAll() {
  const results = await Promise.allSettled([loadLines(), loadAlerts()]);
  if (results[0].status === 'fulfilled' && results[1].status === 'fulfilled') renderAlerts(); // chart names
  const failed = results.find((r) => r.status === 'rejected');
  if (failed && conn.es?.readyState !== EventSource.OPEN) setConn('error', 'API unreachable');
  document.body.dataset.ready = 'true';
}

// ---------------------------------------------------------------------------------------------- alarms (ISA-18.2)
// The alarm panel polls GET /api/v1/alarms (there is no alarm stream) and reconciles the DOM by alarm id: a row
// is rebuilt only when its document changed, moved when its state changed, left alone otherwise, so a refresh of
// hundreds of alarms costs a few milliseconds and never steals the operator's focus or selection.

const GROUPS = [ // display order: what needs the operator first
  [ALARM_STATES.UNACK, 'Unacknowledged'],
  [ALARM_STATES.RTN_UNACK, 'Returned, unacknowledged'],
  [ALARM_STATES.ACKED, 'Acknowledged'],
  [ALARM_STATES.SHELVED, 'Shelved'],
  [ALARM_STATES.OUT_OF_SERVICE, 'Out of service'],
  [ALARM_STATES.NORMAL, 'Normal (returned)'],
];
const GROUP_PAGE = 50; // rows rendered per group until "show more"
const ALARM_POLL_MS = 3000;
const KPI_POLL_MS = 5000;
const SEV_RANK = { [SEVERITIES.HIGH]: 0, [SEVERITIES.MEDIUM]: 1, [SEVERITIES.LOW]: 2 };

const alarmUi = {
  alarms: new Map(), // alarm_id -> alarm document
  rows: new Map(), // alarm_id -> {tr, sig}
  groups: new Map(), // state -> {section, toggle, body, tbody, count, more}
  order: [], // rendered alarm ids, display order (j/k)
  sel: null,
  collapsed: new Set([ALARM_STATES.NORMAL]),
  limits: new Map(), // state -> rows shown
  causes: [],
  form: null, // {kind, id}
  busy: false,
  loaded: false,
  histLine: null,
  histBusy: false,
  lines: '',
};

/** What an operator may do to an alarm in its state (the API checks again: 409/422 are shown). */
function allowed(doc) {
  const st = doc[ALARM.state];
  return {
    ack: st === ALARM_STATES.UNACK || st === ALARM_STATES.RTN_UNACK,
    shelve: st !== ALARM_STATES.OUT_OF_SERVICE,
    unshelve: st === ALARM_STATES.SHELVED,
    resolve: doc[ALARM.ack] != null,
    'out-of-service': st !== ALARM_STATES.OUT_OF_SERVICE,
    'in-service': st === ALARM_STATES.OUT_OF_SERVICE,
  };
}

const ACTIONS = [ // [kind, button label, shortcut]
  ['ack', 'Ack', 'a'], ['shelve', 'Shelve', 's'], ['unshelve', 'Unshelve', 'u'], ['resolve', 'Resolve', 'r'],
  ['out-of-service', 'Out of svc', 'o'], ['in-service', 'In svc', 'i'],
];
const ACTION_NAMES = {
  ack: 'Acknowledge', shelve: 'Shelve', unshelve: 'Unshelve', resolve: 'Resolve', 'out-of-service': 'Take out of service', 'in-service': 'Return to service',
};
const ACTION_DONE = {
  ack: 'acknowledged', shelve: 'shelved', unshelve: 'unshelved', resolve: 'resolved', 'out-of-service': 'taken out of service', 'in-service': 'returned to service',
};

function sourceName(doc) {
  const src = doc[ALARM.source] || {};
  return src[ALARM_SOURCE.kind] === ALARM_KINDS.GRADE ? 'grade' : String(src[ALARM_SOURCE.characteristic] ?? '?');
}

function alarmLabel(doc) {
  return `${doc[ALARM.line]} · ${sourceName(doc)}`;
}

function causeName(code) {
  const c = alarmUi.causes.find((x) => x[CAUSE.code] === code);
  if (!c) return code;
  return c[CAUSE.name_zh] ? `${c[CAUSE.name]} · ${c[CAUSE.name_zh]}` : c[CAUSE.name];
}

function conditionCell(doc) {
  const src = doc[ALARM.source] || {};
  if (src[ALARM_SOURCE.kind] === ALARM_KINDS.GRADE) {
    return [gradeChip(doc[ALARM.from_grade]), h('span', { class: 'arrow' }, ' → '), gradeChip(doc[ALARM.to_grade])];
  }
  const rules = Array.isArray(doc[ALARM.rules]) ? doc[ALARM.rules] : [];
  return [
    rules.length ? h('span', { class: 'v-rule', title: rules.map((r) => `${r}: ${RULES[r] || ''}`).join('\n') }, `rule${rules.length > 1 ? 's' : ''} ${rules.join(', ')}`) : h('span', { class: 'muted' }, '—'),
    isNum(doc[ALARM.value]) ? h('span', { class: 'muted small' }, ` · ${doc[ALARM.value].toPrecision(5)}${isNum(doc[ALARM.limit]) ? ` vs ${doc[ALARM.limit].toPrecision(5)}` : ''}`) : null,
  ];
}

/** The operator's side of the occurrence: cause and comment of the ack, corrective action, shelving or
 * removal from service — each on its own line, only when present. */
function operatorCell(doc) {
  const out = [];
  const ack = doc[ALARM.ack];
  if (ack) {
    out.push(h('div', { class: 'c-ack' }, h('span', { class: 'op-k' }, 'cause '),
      ack[ALARM_ACK.cause] ? h('span', { class: 'a-cause', 'data-cause': ack[ALARM_ACK.cause] }, causeName(ack[ALARM_ACK.cause])) : h('span', { class: 'muted' }, 'none'),
      ack[ALARM_ACK.comment] ? h('span', { class: 'a-comment' }, ` — ${ack[ALARM_ACK.comment]}`) : null,
      ack[ALARM_ACK.by] ? h('span', { class: 'muted small by' }, ` (${ack[ALARM_ACK.by]})`) : null));
  }
  const res = doc[ALARM.resolution];
  if (res) {
    out.push(h('div', { class: 'c-res' }, h('span', { class: 'op-k' }, 'action '), h('span', { class: 'a-action' }, String(res[ALARM_RESOLUTION.action] ?? 'resolved')),
      res[ALARM_RESOLUTION.by] ? h('span', { class: 'muted small by' }, ` (${res[ALARM_RESOLUTION.by]})`) : null));
  }
  const sh = doc[ALARM.shelve];
  if (sh) {
    out.push(h('div', { class: 'c-supp' }, h('span', { class: 'op-k' }, 'shelved until '), timeEl(sh[ALARM_SHELVE.until], 'a-until'),
      sh[ALARM_SHELVE.reason] ? h('span', { class: 'a-reason' }, ` — ${sh[ALARM_SHELVE.reason]}`) : null));
  }
  const oos = doc[ALARM.out_of_service];
  if (oos) {
    out.push(h('div', { class: 'c-supp' }, h('span', { class: 'op-k' }, 'out of service'),
      oos[ALARM_OOS.reason] ? h('span', { class: 'a-reason' }, ` — ${oos[ALARM_OOS.reason]}`) : null));
  }
  return out.length ? out : h('span', { class: 'muted' }, '—');
}

function buildRow(doc) {
  const id = doc[ALARM.alarm_id];
  const ok = allowed(doc);
  const sev = String(doc[ALARM.severity] || 'none').replace(/[^a-z]/gi, '');
  const tr = h('tr', {
    class: `arow sev-${sev}${doc[ALARM.active] ? ' active' : ''}`, 'data-alarm-id': id, 'data-state': doc[ALARM.state], 'data-line': doc[ALARM.line],
    tabindex: -1, 'aria-selected': 'false', 'aria-label': `${alarmLabel(doc)}, ${doc[ALARM.state]}, severity ${doc[ALARM.severity] || 'none'}`,
    onclick: (e) => { if (!e.target.closest('button')) selectAlarm(id, false); },
    onfocus: () => { if (alarmUi.sel !== id) selectAlarm(id, false); }, // Tab to a row selects it
  },
  h('td', { class: 'c-line' }, String(doc[ALARM.line] ?? '')),
  h('td', { class: 'c-source', title: `${doc[ALARM.source]?.[ALARM_SOURCE.kind] ?? ''} alarm` }, h('b', {}, sourceName(doc))),
  h('td', { class: 'c-sev' }, h('span', { class: `sev sev-${sev}` }, String(doc[ALARM.severity] ?? '—'))),
  h('td', { class: 'c-cond' }, conditionCell(doc)),
  h('td', { class: 'c-since' }, timeEl(doc[ALARM.activated_at])),
  h('td', { class: 'c-react', title: 're-activations within this occurrence' }, doc[ALARM.reactivations] ? `×${doc[ALARM.reactivations]}` : '—'),
  h('td', { class: 'c-op' }, operatorCell(doc)),
  h('td', { class: 'c-acts' }, ACTIONS.map(([kind, label, key]) => h('button', {
    type: 'button', class: `act act-${kind}`, 'data-act': kind, disabled: !ok[kind], title: `${ACTION_NAMES[kind]} (${key})`,
    'aria-label': `${ACTION_NAMES[kind]} ${alarmLabel(doc)}`, onclick: () => { selectAlarm(id, false); startAction(kind, id); },
  }, label))));
  return tr;
}

function ensureGroup(st, title) {
  let g = alarmUi.groups.get(st);
  if (g) return g;
  const bodyId = `ag-${st}`;
  const toggle = h('button', { type: 'button', class: 'agroup-toggle', 'aria-expanded': 'true', 'aria-controls': bodyId, onclick: () => toggleGroup(st) });
  const count = h('span', { class: 'agroup-count' }, '0');
  append(toggle, [h('span', { class: 'caret', 'aria-hidden': 'true' }), ` ${title} `, count]);
  const tbody = h('tbody');
  const more = h('button', { type: 'button', class: 'ghost more', hidden: true, onclick: () => showMore(st) }, 'show more');
  const table = h('table', { class: 'alarm-table' },
    h('thead', {}, h('tr', {}, ['Line', 'Source', 'Sev.', 'Condition', 'Since', 'React.', 'Cause · action · shelving', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  const body = h('div', { class: 'agroup-body', id: bodyId }, table, more);
  const section = h('section', { class: `agroup st-${st}`, 'data-state': st }, h('h3', { class: 'agroup-head' }, toggle), body);
  $('alarm-groups').append(section);
  g = { section, toggle, body, tbody, count, more };
  alarmUi.groups.set(st, g);
  return g;
}

function toggleGroup(st) {
  if (alarmUi.collapsed.has(st)) alarmUi.collapsed.delete(st);
  else alarmUi.collapsed.add(st);
  renderAlarms();
}

function showMore(st) {
  alarmUi.limits.set(st, (alarmUi.limits.get(st) || GROUP_PAGE) + 4 * GROUP_PAGE);
  renderAlarms();
}

function alarmMatches(doc, line, st, text) {
  if (line && doc[ALARM.line] !== line) return false;
  if (st && doc[ALARM.state] !== st) return false;
  if (!text) return true;
  const ack = doc[ALARM.ack] || {};
  const hay = [doc[ALARM.line], sourceName(doc), doc[ALARM.source]?.[ALARM_SOURCE.kind], doc[ALARM.severity], doc[ALARM.state],
    ack[ALARM_ACK.cause], ack[ALARM_ACK.cause] ? causeName(ack[ALARM_ACK.cause]) : '', ack[ALARM_ACK.comment], doc[ALARM.resolution]?.[ALARM_RESOLUTION.action],
    doc[ALARM.shelve]?.[ALARM_SHELVE.reason], doc[ALARM.out_of_service]?.[ALARM_OOS.reason]].join(' ').toLowerCase();
  return text.split(/\s+/).every((w) => hay.includes(w));
}

function byUrgency(a, b) {
  const s = (SEV_RANK[a[ALARM.severity]] ?? 3) - (SEV_RANK[b[ALARM.severity]] ?? 3);
  if (s) return s;
  const ta = parseTime(a[ALARM.activated_at])?.getTime() ?? 0;
  const tb = parseTime(b[ALARM.activated_at])?.getTime() ?? 0;
  return tb - ta || String(a[ALARM.alarm_id]).localeCompare(String(b[ALARM.alarm_id]));
}

function renderAlarms() {
  const t0 = performance.now();
  const line = $('af-line').value;
  const stFilter = $('af-state').value;
  const text = $('af-text').value.trim().toLowerCase();
  const buckets = new Map(GROUPS.map(([st]) => [st, []]));
  for (const doc of alarmUi.alarms.values()) {
    if (!alarmMatches(doc, line, stFilter, text)) continue;
    (buckets.get(doc[ALARM.state]) || buckets.get(ALARM_STATES.NORMAL)).push(doc);
  }
  $('alarm-groups').classList.toggle('single', Boolean(stFilter));
  const focused = document.activeElement;
  const order = [];
  let shownTotal = 0;
  for (const [st, title] of GROUPS) {
    const g = ensureGroup(st, title);
    const list = buckets.get(st).sort(byUrgency);
    g.count.textContent = String(list.length);
    g.section.hidden = Boolean(stFilter && stFilter !== st) || (st === ALARM_STATES.NORMAL && !list.length);
    const collapsed = alarmUi.collapsed.has(st);
    g.toggle.setAttribute('aria-expanded', collapsed ? 'false' : 'true');
    g.body.hidden = collapsed;
    g.section.classList.toggle('empty-group', !list.length);
    if (collapsed) continue; // its rows stay as they were until it is opened
    const limit = alarmUi.limits.get(st) || GROUP_PAGE;
    const shown = list.slice(0, limit);
    let cursor = g.tbody.firstChild;
    for (const doc of shown) {
      const id = doc[ALARM.alarm_id];
      const sig = JSON.stringify(doc);
      let r = alarmUi.rows.get(id);
      if (!r || r.sig !== sig) {
        const tr = buildRow(doc);
        if (r) {
          const hadFocus = r.tr.contains(focused);
          if (r.tr === cursor) {
            r.tr.replaceWith(tr);
            cursor = tr;
          } else r.tr.remove();
          if (hadFocus) requestAnimationFrame(() => tr.focus({ preventScroll: true }));
        }
        r = { tr, sig };
        alarmUi.rows.set(id, r);
      }
      if (r.tr === cursor) cursor = cursor.nextSibling;
      else g.tbody.insertBefore(r.tr, cursor);
      order.push(id);
    }
    while (cursor) { // rows no longer in this group (moved, filtered out, beyond the limit)
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    shownTotal += shown.length;
    g.more.hidden = list.length <= limit;
    g.more.textContent = `show ${Math.min(4 * GROUP_PAGE, list.length - limit)} more (${list.length - limit} not shown)`;
  }
  for (const id of alarmUi.rows.keys()) if (!alarmUi.alarms.has(id)) alarmUi.rows.delete(id);
  alarmUi.order = order;
  markSelection();
  const all = [...alarmUi.alarms.values()];
  const unack = all.filter((d) => d[ALARM.state] === ALARM_STATES.UNACK || d[ALARM.state] === ALARM_STATES.RTN_UNACK).length;
  const standing = all.filter((d) => d[ALARM.state] !== ALARM_STATES.NORMAL).length;
  $('alarm-count').textContent = all.length ? `${unack} unacknowledged · ${standing} standing · ${shownTotal} shown` : '';
  $('alarms-empty').hidden = all.length > 0;
  const ms = performance.now() - t0;
  alarmUi.lastRenderMs = ms;
  document.body.dataset.alarmRenderMs = ms.toFixed(2);
  if (alarmUi.alarms.size && !document.body.dataset.alarmFirstRenderMs) document.body.dataset.alarmFirstRenderMs = ms.toFixed(2);
  if (ms > (Number(document.body.dataset.alarmMaxRenderMs) || 0)) document.body.dataset.alarmMaxRenderMs = ms.toFixed(2);
  document.body.dataset.alarmRenders = String((Number(document.body.dataset.alarmRenders) || 0) + 1);
  document.body.dataset.alarmRows = String(shownTotal);
}

function markSelection() {
  let tabbable = alarmUi.sel && alarmUi.order.includes(alarmUi.sel) ? alarmUi.sel : alarmUi.order[0];
  if (!tabbable) tabbable = null;
  for (const [id, r] of alarmUi.rows) {
    const sel = id === alarmUi.sel;
    if (r.tr.classList.contains('selected') !== sel) {
      r.tr.classList.toggle('selected', sel);
      r.tr.setAttribute('aria-selected', sel ? 'true' : 'false');
    }
    const ti = id === tabbable ? '0' : '-1';
    if (r.tr.getAttribute('tabindex') !== ti) r.tr.setAttribute('tabindex', ti);
  }
}

function selectAlarm(id, focus = true) {
  alarmUi.sel = id;
  markSelection();
  const r = alarmUi.rows.get(id);
  if (r && focus) {
    r.tr.focus({ preventScroll: true });
    r.tr.scrollIntoView({ block: 'nearest' });
  }
  const doc = alarmUi.alarms.get(id);
  if (doc && doc[ALARM.line] !== alarmUi.histLine) loadHistory(doc[ALARM.line]);
}

function moveSelection(step) {
  const order = alarmUi.order;
  if (!order.length) return;
  const i = order.indexOf(alarmUi.sel);
  const next = i < 0 ? (step > 0 ? 0 : order.length - 1) : Math.max(0, Math.min(order.length - 1, i + step));
  selectAlarm(order[next]);
}

async function refreshAlarms() {
  if (alarmUi.busy) return;
  alarmUi.busy = true;
  try {
    const docs = await getJSON('/alarms');
    const fresh = new Map();
    for (const d of Array.isArray(docs) ? docs : []) fresh.set(d[ALARM.alarm_id], d);
    alarmUi.alarms = fresh;
    updateLineFilter();
    renderAlarms();
    alarmUi.loaded = true;
    document.body.dataset.alarmsReady = 'true';
  } catch (err) {
    if (!alarmUi.loaded) $('alarm-msg').textContent = `alarms unavailable: ${err.message || err}`;
  } finally {
    alarmUi.busy = false;
  }
}

function updateLineFilter() {
  const lines = [...new Set([...alarmUi.alarms.values()].map((d) => d[ALARM.line]))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const key = lines.join('\n');
  if (key === alarmUi.lines) return;
  alarmUi.lines = key;
  const sel = $('af-line');
  const cur = sel.value;
  sel.replaceChildren(h('option', { value: '' }, 'all lines'), ...lines.map((l) => h('option', { value: l }, l)));
  sel.value = lines.includes(cur) ? cur : '';
}

async function loadCauses() {
  try {
    alarmUi.causes = await getJSON('/causes');
  } catch {
    return;
  }
  $('ack-cause').replaceChildren(h('option', { value: '' }, '— choose a cause —'), ...alarmUi.causes.map((c) => h('option', { value: c[CAUSE.code] },
    `${c[CAUSE.name]}${c[CAUSE.name_zh] ? ` · ${c[CAUSE.name_zh]}` : ''} (${c[CAUSE.code]})`)));
}

// --- actions

function closeAlarmForm(refocus = true) {
  const f = alarmUi.form;
  alarmUi.form = null;
  $('alarm-action').hidden = true;
  for (const form of document.querySelectorAll('.alarm-form')) form.hidden = true;
  if (refocus && f) alarmUi.rows.get(f.id)?.tr.focus({ preventScroll: true });
}

function startAction(kind, id) {
  const doc = alarmUi.alarms.get(id);
  if (!doc) return;
  if (!allowed(doc)[kind]) {
    $('alarm-msg').textContent = `${alarmLabel(doc)}: cannot ${kind.replaceAll('-', ' ')} an alarm in state ${doc[ALARM.state]}`;
    return;
  }
  if (kind === 'unshelve' || kind === 'in-service') {
    operateAlarm(kind, id, null);
    return;
  }
  closeAlarmForm(false);
  const form = $(`f-${kind}`);
  alarmUi.form = { kind, id };
  $(`f-${kind}-target`).textContent = `${{ ack: 'Acknowledge', shelve: 'Shelve', resolve: 'Resolve', 'out-of-service': 'Take out of service' }[kind]}: ${alarmLabel(doc)} (${doc[ALARM.state]})`;
  form.querySelector('.form-error').textContent = '';
  form.reset();
  $('alarm-action').hidden = false;
  form.hidden = false;
  form.querySelector('select, input').focus();
}

function formBody(kind, form) {
  const v = (name) => form.elements[name].value.trim();
  if (kind === 'ack') return { cause: v('cause') || null, comment: v('comment') || null };
  if (kind === 'shelve') return { minutes: Number(v('minutes')), reason: v('reason') || null };
  if (kind === 'resolve') return { action: v('action') || null };
  return { reason: v('reason') || null };
}

async function problemText(r) {
  try {
    const p = await r.json();
    const detail = p.detail || p.title || `HTTP ${r.status}`;
    return `${detail}${p.reason ? ` [${p.reason}]` : ''} (HTTP ${r.status})`;
  } catch {
    return `HTTP ${r.status}`;
  }
}

async function operateAlarm(kind, id, body) {
  const doc = alarmUi.alarms.get(id);
  const form = kind === 'unshelve' || kind === 'in-service' ? null : $(`f-${kind}`);
  const say = (msg) => {
    if (form && !form.hidden) form.querySelector('.form-error').textContent = msg;
    $('alarm-msg').textContent = msg;
  };
  let key = localStorage.getItem(KEY_STORE);
  if (!key) key = await askKey('Enter the API key to operate alarms.');
  if (!key) return false;
  let r;
  try {
    r = await fetch(`${API}/alarms/${encodeURIComponent(id)}/${kind}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, Accept: 'application/json', 'Content-Type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    });
  } catch (err) {
    say(`${kind} failed: ${err.message || err}`);
    return false;
  }
  if (r.status === 401 || r.status === 403) {
    localStorage.removeItem(KEY_STORE);
    const again = await askKey(`The key was rejected (HTTP ${r.status}). Enter a valid API key.`);
    return again ? operateAlarm(kind, id, body) : false;
  }
  if (!r.ok) { // 409: the state does not allow it; 422: the request is wrong (e.g. a cause is required)
    say(`${doc ? alarmLabel(doc) : id}: refused — ${await problemText(r)}`);
    return false;
  }
  const after = await r.json();
  alarmUi.alarms.set(id, after);
  if (form) closeAlarmForm(false);
  renderAlarms();
  $('alarm-msg').textContent = `${alarmLabel(after)} ${ACTION_DONE[kind]} → ${after[ALARM.state]}`;
  if (alarmUi.collapsed.has(after[ALARM.state])) toggleGroup(after[ALARM.state]);
  selectAlarm(id);
  if (after[ALARM.line] === alarmUi.histLine) loadHistory(after[ALARM.line], true);
  refreshKpis(); // unacknowledged count, time to acknowledge
  return true;
}

function onAlarmSubmit(e) {
  e.preventDefault();
  const f = alarmUi.form;
  if (!f) return;
  const form = e.currentTarget;
  const btn = form.querySelector('button[type="submit"]');
  btn.disabled = true;
  operateAlarm(f.kind, f.id, formBody(f.kind, form)).finally(() => { btn.disabled = false; });
}

function inField(el) {
  return el && (el.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName));
}

function onAlarmKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t.closest?.('.alarm-form') && e.key === 'Enter' && t.tagName === 'SELECT') { // Enter submits from a select too
    e.preventDefault();
    t.form.requestSubmit();
    return;
  }
  if (inField(t) || !$('key-form').hidden) return;
  const inList = Boolean(t.closest?.('#alarm-groups'));
  const keys = { j: 1, k: -1 };
  if (inList) Object.assign(keys, { ArrowDown: 1, ArrowUp: -1 });
  if (e.key in keys) {
    e.preventDefault();
    moveSelection(keys[e.key]);
    return;
  }
  if (e.key === '/') {
    e.preventDefault();
    $('af-text').focus();
    return;
  }
  const act = ACTIONS.find(([, , k]) => k === e.key);
  if (act && alarmUi.sel && alarmUi.alarms.has(alarmUi.sel)) {
    e.preventDefault();
    startAction(act[0], alarmUi.sel);
  }
}

// --- KPIs

function ageText(s) {
  if (!isNum(s)) return '—';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function rateTone(v, t) {
  if (!isNum(v)) return '';
  if (v <= t[TARGETS.per_10min]) return 'good';
  if (v <= t[TARGETS.per_10min_max]) return 'warn';
  return 'bad';
}

function kpi(label, value, tone, target, name) {
  return h('div', { class: `kpi ${tone ? `tone-${tone}` : ''}`, 'data-kpi': name },
    h('dt', {}, label), h('dd', {}, h('span', { class: 'kpi-v' }, value), target ? h('span', { class: 'kpi-t muted small' }, ` ${target}`) : null));
}

function ttaSummary(k) {
  const n = k[KPIS.tta_count];
  if (!n) return { text: '—', median: null };
  const bounds = k[KPIS.tta_buckets];
  const counts = k[KPIS.tta_counts];
  const i = counts.findIndex((c) => c >= n / 2);
  const median = i >= 0 && i < bounds.length ? `≤ ${ageText(bounds[i])}` : `> ${ageText(bounds[bounds.length - 1])}`;
  const i5 = bounds.indexOf(300);
  const within5 = i5 >= 0 ? counts[i5] / n : null;
  return { text: `${n} acks · mean ${ageText(k[KPIS.tta_sum] / n)} · median ${median}`, within5 };
}

function renderKpis(k) {
  const t = k[KPIS.targets];
  const p = k[KPIS.plant];
  const tta = ttaSummary(k);
  const flood = p[RATE.in_flood];
  const floodFrac = p[RATE.flood_fraction];
  const plant = h('dl', { class: 'kpi-grid' },
    kpi('plant alarms / 10 min', int(p[RATE.alarms_10min]), rateTone(p[RATE.alarms_10min], t), `target ~${t[TARGETS.per_10min]}, ≤ ${t[TARGETS.per_10min_max]}`, 'plant-rate'),
    kpi('mean / 10 min', isNum(p[RATE.mean_per_10min]) ? p[RATE.mean_per_10min].toFixed(2) : '—', rateTone(p[RATE.mean_per_10min], t), 'long-run', 'plant-mean'),
    kpi('time in flood', `${pct(floodFrac)}${flood ? ' · FLOOD' : ''}`, flood ? 'bad' : isNum(floodFrac) && floodFrac >= t[TARGETS.flood_fraction] ? 'warn' : 'good', `< ${pct(t[TARGETS.flood_fraction], 0)} (> ${t[TARGETS.flood_threshold]}/10 min)`, 'flood'),
    kpi('chattering', int(k[KPIS.chattering].length), k[KPIS.chattering].length ? 'bad' : 'good', `none (${t[TARGETS.chatter_count]} in ${t[TARGETS.chatter_window_s]} s)`, 'chattering'),
    kpi('stale (> 24 h)', int(k[KPIS.stale].length), k[KPIS.stale].length ? 'warn' : 'good', 'none', 'stale'),
    kpi('unacknowledged', `${int(p[RATE.unack])} · oldest ${ageText(p[RATE.unack_oldest_age])}`, p[RATE.unack] ? 'warn' : 'good', '', 'unack'),
    kpi('time to acknowledge', tta.text, '', isNum(tta.within5) ? `${pct(tta.within5, 0)} within 5 min` : '', 'tta'));
  const lines = Object.entries(k[KPIS.lines] || {}).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  const perLine = h('table', { class: 'kpi-lines' },
    h('thead', {}, h('tr', {}, ['line', '/10 min', 'mean', 'unack', 'oldest', 'chatter', 'stale'].map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, lines.map(([ln, r]) => h('tr', { 'data-line': ln },
      h('th', { scope: 'row' }, ln),
      h('td', { class: `tone-${rateTone(r[RATE.alarms_10min], t)}`, 'data-kpi': 'line-rate' }, int(r[RATE.alarms_10min])),
      h('td', { class: `tone-${rateTone(r[RATE.mean_per_10min], t)}` }, isNum(r[RATE.mean_per_10min]) ? r[RATE.mean_per_10min].toFixed(2) : '—'),
      h('td', {}, int(r[RATE.unack])),
      h('td', {}, ageText(r[RATE.unack_oldest_age])),
      h('td', {}, int(r[RATE.chattering])),
      h('td', {}, int(r[RATE.stale]))))));
  const top = k[KPIS.top] || [];
  const total = isNum(k[KPIS.top10_share]) && k[KPIS.top10_share] > 0 ? Math.round(top.reduce((a, x) => a + x[TOP_SOURCE.activations], 0) / k[KPIS.top10_share]) : 0;
  const topList = h('ol', { class: 'kpi-top' }, top.map((x) => h('li', { 'data-alarm-id': x[TOP_SOURCE.alarm_id] },
    h('span', {}, `${x[TOP_SOURCE.line]} · ${x[TOP_SOURCE.characteristic] ?? x[TOP_SOURCE.source]}`),
    h('span', { class: 'muted' }, ` ${x[TOP_SOURCE.activations]}`))));
  $('kpi-body').replaceChildren(
    h('div', { class: 'kpi-col' }, h('h4', {}, 'plant'), plant),
    h('div', { class: 'kpi-col' }, h('h4', {}, 'per line'), perLine),
    h('div', { class: 'kpi-col' }, h('h4', {}, 'top 10 sources ', h('span', { class: 'muted small' }, isNum(k[KPIS.top10_share]) ? `${pct(k[KPIS.top10_share], 0)} of ${total} activations` : '')), topList));
}

async function refreshKpis() {
  try {
    renderKpis(await getJSON('/alarms/kpis'));
  } catch (err) {
    $('kpi-body').replaceChildren(h('p', { class: 'muted' }, `KPIs unavailable: ${err.message || err}`));
  }
}

// --- the selected line's alarm history: its alerts (the event history) and the audit records of its alarms

async function pageAll(path, maxPages) {
  let items = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page += 1) {
    const q = new URLSearchParams(path.params);
    q.set('limit', '1000');
    if (cursor != null) q.set('since', cursor);
    const body = await getJSON(`${path.base}?${q}`);
    const got = body.items || [];
    items = items.concat(got);
    if (!got.length || body.next == null || body.next === cursor || got.length < 1000) break;
    cursor = body.next;
  }
  return items;
}

async function loadHistory(line, force = false) {
  if (!line) return;
  if (line === alarmUi.histLine && !force && alarmUi.histBusy) return;
  alarmUi.histLine = line;
  alarmUi.histBusy = true;
  $('hist-title').textContent = `History · ${line}`;
  try {
    const ids = new Set([...alarmUi.alarms.values()].filter((d) => d[ALARM.line] === line).map((d) => d[ALARM.alarm_id]));
    const [alerts, audit] = await Promise.all([
      pageAll({ base: '/alerts', params: { line } }, 20),
      pageAll({ base: '/audit', params: {} }, 5).catch(() => []),
    ]);
    if (alarmUi.histLine !== line) return;
    const rows = [];
    for (const a of alerts) {
      rows.push({ t: parseTime(a[ALERT.detected_at] ?? a[ALERT.event_time]), kind: 'alert', node: [h('span', { class: `h-kind type-${String(a[ALERT.type]).replace(/[^a-z_]/gi, '')}` }, alertTitle(a)),
        ' ', a[ALERT.characteristic] ? h('b', {}, String(a[ALERT.characteristic])) : null, a[ALERT.rule] != null ? ` rule ${a[ALERT.rule]}` : '',
        a[ALERT.to_grade] ? [' ', gradeChip(a[ALERT.from_grade]), ' → ', gradeChip(a[ALERT.to_grade])] : null] });
    }
    for (const rec of audit) {
      if (!ids.has(rec.subject)) continue;
      const ev = rec.after?.event || {};
      const doc = alarmUi.alarms.get(rec.subject);
      const detail = [ev.cause ? causeName(ev.cause) : null, ev.comment, ev.action, ev.reason, ev.until ? `until ${when(ev.until)}` : null].filter(Boolean).join(' — ');
      rows.push({ t: parseTime(rec.at), kind: 'audit', node: [h('span', { class: 'h-kind h-op' }, String(rec.what).replace('alarm.', '').replaceAll('_', ' ')),
        ' ', h('b', {}, doc ? sourceName(doc) : rec.subject.slice(0, 8)), ` by ${rec.who}`, detail ? h('span', { class: 'muted' }, ` — ${detail}`) : null] });
    }
    rows.sort((a, b) => (b.t?.getTime() ?? 0) - (a.t?.getTime() ?? 0));
    $('hist-list').replaceChildren(...rows.slice(0, 40).map((r) => h('li', { class: `hist-${r.kind}` }, h('time', { class: 'muted small', datetime: r.t ? r.t.toISOString() : null }, r.t ? when(r.t.toISOString()) : '—'), ' ', r.node)));
    $('hist-empty').hidden = rows.length > 0;
    $('hist-empty').textContent = 'No alerts or operator actions for this line yet.';
  } catch (err) {
    $('hist-list').replaceChildren(h('li', { class: 'error' }, String(err.message || err)));
  } finally {
    alarmUi.histBusy = false;
  }
}

function bootAlarms() {
  $('af-state').append(...GROUPS.map(([st, title]) => h('option', { value: st }, title)));
  for (const id of ['af-line', 'af-state']) $(id).addEventListener('change', () => renderAlarms());
  $('af-text').addEventListener('input', () => renderAlarms());
  $('alarm-filter').addEventListener('submit', (e) => e.preventDefault());
  for (const form of document.querySelectorAll('.alarm-form')) {
    form.addEventListener('submit', onAlarmSubmit);
    form.querySelector('.form-cancel').addEventListener('click', () => closeAlarmForm());
  }
  document.addEventListener('keydown', onAlarmKey);
  loadCauses();
  refreshAlarms();
  refreshKpis();
  setInterval(refreshAlarms, ALARM_POLL_MS);
  setInterval(refreshKpis, KPI_POLL_MS);
  setInterval(() => { if (alarmUi.histLine) loadHistory(alarmUi.histLine, true); }, 4 * ALARM_POLL_MS);
}

// ---------------------------------------------------------------------------------------------- boot

function renderLadder() {
  $('ladder').replaceChildren(...LEVELS.map((l) => h('li', { class: `chip lvl-${l.level}`, title: `level ${l.level}` },
    h('b', {}, String(l.level)), ` ${l.name} `, h('span', { lang: 'zh' }, l.zh))));
}

function tickClock() {
  const d = new Date();
  $('clock').textContent = clock(d);
  $('clock').setAttribute('datetime', d.toISOString());
}

function lineFromHash() {
  const m = /^#line=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function boot() {
  renderLadder();
  tickClock();
  setInterval(tickClock, 1000);
  $('key-btn').addEventListener('click', () => askKey(localStorage.getItem(KEY_STORE) ? 'A key is saved in this browser.' : ''));
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('key-input').value.trim();
    if (!v) {
      $('key-msg').textContent = 'The key is empty.';
      return;
    }
    localStorage.setItem(KEY_STORE, v);
    closeKeyForm(v);
  });
  $('key-cancel').addEventListener('click', () => closeKeyForm(null));
  $('key-clear').addEventListener('click', () => {
    localStorage.removeItem(KEY_STORE);
    $('key-input').value = '';
    $('key-msg').textContent = 'Key forgotten.';
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (!$('key-form').hidden) closeKeyForm(null);
    else if (alarmUi.form) closeAlarmForm();
    else if (state.open) openLine(null);
  });
  window.addEventListener('hashchange', () => {
    const l = lineFromHash();
    if (l !== state.open) openLine(l);
  });
  loadAll().then(() => {
    const l = lineFromHash();
    if (l) openLine(l);
  });
  connect();
  bootAlarms();
}

boot();
