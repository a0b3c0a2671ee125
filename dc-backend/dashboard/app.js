// Mistore operations dashboard: plain JavaScript, served by mistore-dc from
// its own binary, talking only to the DC's admin API (/api/...). Every DOM
// node is built with textContent (no HTML from data). The admin token is
// given once as #token=... (never sent to the server in a URL) or typed in,
// and kept in this tab's sessionStorage.
'use strict';

(function () {
  const TOKEN_KEY = 'mistore-admin-token';
  const REFRESH_MS = 2000;
  const main = document.getElementById('main');
  const statusEl = document.getElementById('status');

  // ---- helpers ----------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'style') Object.assign(el.style, v);
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  function fmtBytes(n) {
    if (n === undefined || n === null) return '-';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }
  function fmtNum(n, digits) {
    if (n === undefined || n === null) return '-';
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    return Number(n).toFixed(digits === undefined ? 0 : digits);
  }
  function fmtDuration(s) {
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' d';
  }
  function fmtTime(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString([], { hour12: false });
  }
  function badge(text, cls) {
    return h('span', { class: 'badge ' + (cls || text) }, text.replace('_', ' '));
  }
  // A region's redundancy state, told apart from the POP's health.
  function redundancyBadge(state) {
    const label = { full: 'fully redundant', placing: 'placing fragments', degraded: 'fragments missing',
      repairing: 'repairing', at_risk: 'data at risk', unknown: 'redundancy unknown' }[state] || state;
    const b = badge(label, state);
    b.title = 'redundancy of the region\'s fragments: ' + state.replace('_', ' ');
    b.dataset.redundancy = state;
    return b;
  }
  function stateBar(counts) {
    const total = Math.max(1, counts.total || 0);
    const bar = h('div', { class: 'bar', title: counts.up + ' up, ' + counts.lost + ' lost, ' + counts.unknown + ' unknown' });
    for (const k of ['up', 'lost', 'unknown']) {
      if (counts[k] > 0) bar.append(h('span', { class: k, style: { width: (100 * counts[k] / total) + '%' } }));
    }
    return bar;
  }
  function fillBar(fraction, cls) {
    const f = Math.max(0, Math.min(1, fraction || 0));
    return h('div', { class: 'bar' }, h('span', { class: cls || 'fill', style: { width: (100 * f) + '%' } }));
  }
  // A region's repair state (from its POP's summary): chunks below k+m, and
  // the repair queue's progress since it began, bytes left and ETA.
  function repairLine(p) {
    const r = p.repair;
    if (!r) return null;
    const below = p.chunks_below_redundancy || 0;
    const text = r.state === 'repairing'
      ? 'repairing ' + fmtNum(r.queue_chunks + r.in_flight_chunks) + ' chunks, ' + fmtBytes(r.queue_bytes) + ' left, ETA ' + fmtDuration(Math.ceil(r.eta_s || 0))
      : r.state === 'waiting' ? 'waiting: gateways within their grace period'
        : r.state === 'idle' ? 'no repair needed' : 'unknown';
    return h('div', { class: 'repair', 'data-repair-state': r.state, 'data-below': below },
      h('span', { class: 'redundancy-count' + (below ? ' bad' : '') }, fmtNum(below) + ' chunks below full redundancy'),
      ' · ', badge(r.state), ' ', text,
      r.state === 'repairing' ? fillBar(r.progress, 'fill') : null);
  }

  function facts(pairs) {
    return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  }
  function setStatus(kind, text) {
    statusEl.className = 'status' + (kind === 'error' ? ' error' : '');
    statusEl.textContent = text;
  }

  // ---- the API ----------------------------------------------------------
  class AuthError extends Error {}

  function takeTokenFromHash() {
    const m = location.hash.match(/[#&?]token=([^&]+)/);
    if (!m) return;
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search + '#/');
  }

  async function api(path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw new AuthError('no token');
    const r = await fetch('/api' + path, {
      headers: { Authorization: 'Bearer ' + token },
      cache: 'no-store',
    });
    if (r.status === 401) throw new AuthError('token refused');
    const body = await r.json();
    if (!r.ok && r.status !== 404) throw new Error(body.error || r.statusText);
    body.httpStatus = r.status;
    return body;
  }

  // ---- plots (canvas) ---------------------------------------------------
  const pendingPlots = [];

  function plotBox(title, series, fmt) {
    const canvas = h('canvas', { width: 400, height: 130 });
    pendingPlots.push({ canvas, series, fmt });
    return h('div', { class: 'plot' },
      h('h3', null, title),
      canvas,
      h('div', { class: 'legend' }, series.map(s => [h('i', { style: { background: s.color } }), s.name])));
  }

  function drawPlots() {
    while (pendingPlots.length) {
      const p = pendingPlots.shift();
      drawPlot(p.canvas, p.series, p.fmt);
    }
  }

  function drawPlot(canvas, series, fmt) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 400, hgt = canvas.clientHeight || 130;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hgt * dpr);
    const ctx = canvas.getContext('2d');
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, w, hgt);
    const left = 52, right = 8, top = 8, bottom = 18;
    const pw = w - left - right, ph = hgt - top - bottom;
    const all = series.flatMap(s => s.points.map(p => p[1]));
    const times = series.flatMap(s => s.points.map(p => p[0]));
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#667085';
    if (!times.length) {
      ctx.fillText('no samples yet', left, top + ph / 2);
      return;
    }
    let ymax = Math.max(...all, 0);
    if (ymax <= 0) ymax = 1;
    ymax *= 1.1;
    const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
    const x = t => left + pw * (t - t0) / (t1 - t0);
    const y = v => top + ph - ph * v / ymax;
    ctx.strokeStyle = '#e6e8ec';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let i = 0; i <= 3; i++) {
      const v = ymax * i / 3;
      ctx.beginPath();
      ctx.moveTo(left, y(v));
      ctx.lineTo(left + pw, y(v));
      ctx.stroke();
      ctx.fillText(fmt(v), left - 4, y(v));
    }
    ctx.textBaseline = 'top';
    ctx.textAlign = 'left';
    ctx.fillText(fmtTime(t0), left, top + ph + 4);
    ctx.textAlign = 'right';
    ctx.fillText(fmtTime(t1), left + pw, top + ph + 4);
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      s.points.forEach((p, i) => (i ? ctx.lineTo(x(p[0]), y(p[1])) : ctx.moveTo(x(p[0]), y(p[1]))));
      ctx.stroke();
    }
  }

  function historyPlots(samples) {
    const pts = key => samples.map(s => [s.t, s[key]]);
    return h('div', { class: 'plots' },
      plotBox('Requests per second (all POPs)', [
        { name: 'requests/s', color: '#2f6fde', points: pts('rps') },
        { name: 'errors/s', color: '#d64545', points: pts('eps') }], v => fmtNum(v, v < 10 ? 1 : 0)),
      plotBox('Mean request latency (ms)', [
        { name: 'latency', color: '#8a4fd1', points: pts('lat_ms') }], v => fmtNum(v, v < 10 ? 1 : 0)),
      plotBox('Gateways', [
        { name: 'connected', color: '#2e9d5b', points: pts('up') },
        { name: 'lost', color: '#d64545', points: pts('lost') }], v => fmtNum(v, v < 10 ? 1 : 0)),
      plotBox('Free fragment space on connected gateways', [
        { name: 'free', color: '#2f6fde', points: pts('free') }], fmtBytes));
  }

  // ---- views ------------------------------------------------------------
  function tile(value, label, cls) {
    return h('div', { class: 'tile ' + (cls || '') }, h('div', { class: 'v' }, value), h('div', { class: 'k' }, label));
  }

  function gatewayTiles(pop) {
    const small = pop.gateways.length > 48;
    return h('div', { class: 'gw-grid' }, pop.gateways.map(g =>
      h('a', {
        class: 'gw gw-' + g.state + (small ? ' small' : ''),
        href: '#/gateway/' + g.id,
        title: 'gateway ' + g.id + ': ' + g.state + ', ' + fmtBytes(g.free) + ' free',
        'data-gateway-id': g.id,
        'data-state': g.state,
      }, String(g.id))));
  }

  function popCard(p) {
    const c = p.gateway_counts;
    return h('article', {
      class: 'pop health-' + p.health,
      'data-pop-id': p.pop_id, 'data-health': p.health, 'data-region': p.region,
    },
      h('header', null,
        h('a', { class: 'pop-name', href: '#/pop/' + p.pop_id }, 'POP ' + p.pop_id),
        h('span', { class: 'region' }, 'region ' + p.region),
        badge(p.health), redundancyBadge(p.redundancy)),
      stateBar(c),
      repairLine(p),
      facts([
        ['gateways', c.up + ' up' + (c.lost ? ', ' + c.lost + ' lost' : '') + (c.unknown ? ', ' + c.unknown + ' unknown' : '') + ' of ' + c.total],
        ['free space', fmtBytes(p.store_bytes_free)],
        ['erasure code', p.k ? p.k + ' + ' + p.m : '-'],
        ['placement', p.placements_in_flight + ' in flight, ' + p.placement_queue + ' queued'],
        ['requests', p.requests_per_s === undefined ? '-' : fmtNum(p.requests_per_s, 1) + '/s, ' + fmtNum(p.latency_ms, 1) + ' ms'],
        !p.reporting && ['report', p.report_age_ms < 0 ? 'never reported' : 'last ' + fmtDuration(Math.round(p.report_age_ms / 1000)) + ' ago'],
      ]),
      p.gateways ? gatewayTiles(p)
        : h('p', null, fmtNum(c.total) + ' gateways: ', h('a', { href: '#/pop/' + p.pop_id }, 'list them')));
  }

  function eventList(events) {
    if (!events.length) return h('p', { class: 'empty' }, 'no events yet');
    return h('ul', { class: 'events' }, events.map(e => h('li', { class: 'ev-' + e.kind, 'data-kind': e.kind },
      h('time', null, fmtTime(e.t)),
      e.kind.replace(/_/g, ' '),
      e.pop ? [' ', h('a', { href: '#/pop/' + e.pop }, 'POP ' + e.pop)] : null,
      e.gateway ? [' ', h('a', { href: '#/gateway/' + e.gateway }, 'gateway ' + e.gateway)] : null,
      e.about_pop ? [' about ', h('a', { href: '#/pop/' + e.about_pop }, 'POP ' + e.about_pop)] : null,
      e.detail ? ' (' + e.detail + ')' : null)));
  }

  async function viewOverview() {
    const [ov, hist, ev] = await Promise.all([api('/overview'), api('/history'), api('/events?limit=15')]);
    const t = ov.totals;
    const health = ov.pops.map(p => p.health);
    const root = h('div', { class: 'overview', 'data-view': 'overview' },
      h('div', { class: 'tiles' },
        tile(t.pops_up + ' / ' + t.pops, 'POPs up', t.pops_up < t.pops ? 'bad' : 'ok'),
        tile(fmtNum(t.gateways_up), 'gateways connected', 'ok'),
        tile(fmtNum(t.gateways_lost), 'gateways lost', t.gateways_lost ? 'bad' : ''),
        tile(fmtNum(t.gateways_unknown), 'gateways not reported', t.gateways_unknown ? 'warn' : ''),
        tile(health.filter(x => x === 'degraded' || x === 'critical').length, 'regions degraded',
          health.some(x => x === 'critical') ? 'bad' : health.some(x => x === 'degraded') ? 'warn' : ''),
        tile(fmtNum(t.chunks_below_redundancy || 0), 'chunks below full redundancy (' + (t.regions_below_redundancy || 0) + ' regions)',
          t.chunks_below_redundancy ? 'bad' : 'ok'),
        tile(fmtNum(t.repair_queue_chunks || 0), 'chunks in repair queues (' + fmtBytes(t.repair_queue_bytes || 0) + ')',
          t.repair_queue_chunks ? 'warn' : ''),
        tile(fmtNum(t.objects), 'objects (' + fmtBytes(t.object_bytes) + ')'),
        tile(fmtNum(t.subscribers), 'subscribers with data'),
        tile(ov.dc.map_epoch, 'cluster map epoch')),
      historyPlots(hist.samples),
      h('div', { class: 'cols' },
        h('section', { class: 'hier' },
          h('div', { class: 'dc-node', 'data-node': 'dc' }, 'DC', h('small', null, 'mistore-dc ' + ov.dc.version + ', up ' + fmtDuration(ov.dc.uptime_s))),
          h('div', { class: 'hier-lines' }),
          ov.pops.length ? h('div', { class: 'pops' }, ov.pops.map(popCard)) : h('p', { class: 'empty' }, 'no POP has registered yet')),
        h('section', { class: 'panel' }, h('h3', null, 'Recent events'), eventList(ev.events))));
    return root;
  }

  function parseQuery(q) {
    const out = {};
    for (const part of (q || '').split('&')) {
      if (!part) continue;
      const [k, v] = part.split('=');
      out[decodeURIComponent(k)] = decodeURIComponent(v || '');
    }
    return out;
  }

  async function viewPop(id, query) {
    const state = query.state || '';
    const offset = Number(query.offset || 0);
    const limit = 200;
    const p = await api('/pops/' + encodeURIComponent(id) + '?limit=' + limit + '&offset=' + offset + (state ? '&state=' + state : ''));
    if (p.httpStatus === 404) return h('p', { class: 'empty' }, 'No POP ' + id + '.');
    const maxFree = Math.max(1, ...p.gateways.map(g => g.store_bytes_free));
    const link = (st, off) => '#/pop/' + id + '?state=' + st + '&offset=' + off;
    const pts = key => p.history.map(s => [s.t, s[key]]);
    return h('div', { 'data-view': 'pop', 'data-pop-id': p.pop_id },
      h('h2', null, 'POP ' + p.pop_id + ' ', h('span', { class: 'region' }, 'region ' + p.region + ' at ' + p.addr), ' ', badge(p.health), ' ', redundancyBadge(p.redundancy)),
      repairLine(p), h('a', { href: '#/events?pop=' + p.pop_id }, 'events of this POP'),
      h('div', { class: 'cols' },
        h('div', { class: 'panel' }, facts([
          ['state', p.up ? (p.reporting ? 'up, reporting' : 'up, not reporting') : 'down'],
          ['version', p.version || '-'],
          ['uptime', fmtDuration(p.uptime_s)],
          ['map epoch', p.map_epoch],
          ['erasure code', p.k + ' data + ' + p.m + ' parity fragments'],
          ['placement', p.placements_in_flight + ' in flight, ' + p.placement_queue + ' queued'],
          ['coding jobs', p.jobs_in_flight + ' running, ' + p.jobs_queued + ' waiting'],
          ['locks', p.lock_objects + ' objects locked here, ' + p.entry_locks_held + ' held for clients'],
          ['requests', fmtNum(p.requests_total) + ' served, ' + fmtNum(p.request_errors_total) + ' errors'],
          ['traffic', fmtBytes(p.received_bytes_total) + ' in, ' + fmtBytes(p.sent_bytes_total) + ' out'],
        ])),
        h('div', { class: 'plots' },
          plotBox('Requests per second', [{ name: 'requests/s', color: '#2f6fde', points: pts('rps') }], v => fmtNum(v, 1)),
          plotBox('Gateways', [{ name: 'connected', color: '#2e9d5b', points: pts('up') },
            { name: 'lost', color: '#d64545', points: pts('lost') }], v => fmtNum(v, 1)))),
      h('h3', null, 'Gateways'),
      h('div', { class: 'filters' }, [['', 'all'], ['up', 'connected'], ['lost', 'lost'], ['unknown', 'unknown']].map(([st, label]) =>
        h('button', { class: st === state ? 'on' : '', onclick: () => { location.hash = link(st, 0); } }, label))),
      h('table', { class: 'gateways' },
        h('thead', null, h('tr', null, ['gateway', 'state', 'for', 'subscriber', 'free space', '', 'fragments stored'].map(x => h('th', null, x)))),
        h('tbody', null, p.gateways.map(g => h('tr', { 'data-gateway-id': g.id, 'data-state': g.state },
          h('td', null, h('a', { href: '#/gateway/' + g.id }, String(g.id))),
          h('td', null, badge(g.state)),
          h('td', null, fmtDuration(g.state_for_s)),
          h('td', null, g.subscriber),
          h('td', { class: 'num' }, fmtBytes(g.store_bytes_free)),
          h('td', null, fillBar(g.store_bytes_free / maxFree)),
          h('td', { class: 'num' }, fmtNum(g.fragments_stored) + ' (' + fmtBytes(g.fragment_bytes_stored) + ')'))))),
      h('div', { class: 'pager' },
        offset > 0 ? h('button', { onclick: () => { location.hash = link(state, Math.max(0, offset - limit)); } }, 'previous') : null,
        h('span', null, p.gateways_matched ? (offset + 1) + '-' + Math.min(offset + limit, p.gateways_matched) + ' of ' + p.gateways_matched : 'none'),
        offset + limit < p.gateways_matched ? h('button', { onclick: () => { location.hash = link(state, offset + limit); } }, 'next') : null));
  }

  async function viewGateway(id) {
    const g = await api('/gateways/' + encodeURIComponent(id));
    if (g.httpStatus === 404) return h('p', { class: 'empty', 'data-view': 'gateway' }, 'No POP has reported gateway ' + id + '.');
    return h('div', { 'data-view': 'gateway', 'data-gateway-id': g.id, 'data-state': g.state },
      h('h2', null, 'Gateway ' + g.id + ' ', badge(g.state)),
      h('div', { class: 'cols' },
        h('div', { class: 'panel' }, facts([
          ['POP', h('a', { href: '#/pop/' + g.pop_id }, 'POP ' + g.pop_id + ' (region ' + g.region + ')')],
          ['state', g.state + ' for ' + fmtDuration(g.state_for_s)],
          ['subscriber', g.subscriber],
          ['free space', fmtBytes(g.store_bytes_free) + ' (at registration)'],
          ['fragments stored', fmtNum(g.fragments_stored) + ' (' + fmtBytes(g.fragment_bytes_stored) + ') since its POP started'],
        ])),
        h('div', { class: 'panel' }, h('h3', null, 'Events'), eventList(g.events))));
  }

  async function viewObject(hex) {
    const o = await api('/objects/' + encodeURIComponent(hex));
    if (o.error) return h('p', { class: 'error-box' }, o.error);
    return h('div', { 'data-view': 'object' },
      h('h2', null, 'Object ' + o.oid),
      o.in_catalog ? null : h('p', { class: 'empty' }, 'Not in the catalog (no version reported yet).'),
      h('div', { class: 'cols' },
        h('div', { class: 'panel' }, facts([
          o.in_catalog && ['subscriber', o.subscriber],
          o.in_catalog && ['latest version', o.latest_version],
          o.in_catalog && ['size', fmtBytes(o.size_bytes)],
          ['created by', h('a', { href: '#/gateway/' + o.creating_gateway }, 'gateway ' + o.creating_gateway) ],
          ['creation counter', o.creation_counter],
        ]), h('p', { class: 'empty' }, o.note)),
        h('div', { class: 'panel' }, h('h3', null, 'Replicas'),
          h('table', null, h('tbody', null, o.replicas.map(r => h('tr', null,
            h('td', null, r.role), h('td', null, h('a', { href: '#/pop/' + r.pop_id }, 'POP ' + r.pop_id)),
            h('td', null, r.region || ''), h('td', null, badge(r.health)), h('td', null, r.redundancy ? redundancyBadge(r.redundancy) : '')))))),
        h('div', { class: 'panel' }, h('h3', null, 'Versions'),
          o.versions.length ? h('ul', null, o.versions.map(v => h('li', null, 'version ' + v.version + (v.latest ? ' (latest)' : '')))) : h('p', { class: 'empty' }, 'none'))));
  }

  // The event log, newest first; filter by kind, POP, gateway and time
  // (kept in the URL: #/events?kind=gateway_lost&hours=24).
  async function viewEvents(query) {
    const params = new URLSearchParams();
    params.set('limit', '500');
    if (query.kind) params.set('kind', query.kind);
    if (query.pop) params.set('pop', query.pop);
    if (query.gateway) params.set('gateway', query.gateway);
    if (query.hours) params.set('since', String(Date.now() - Number(query.hours) * 3600e3));
    const ev = await api('/events?' + params.toString());
    if (ev.error) return h('p', { class: 'error-box' }, ev.error);
    const go = changes => {
      const q = Object.assign({}, query, changes);
      location.hash = '#/events?' + Object.entries(q).filter(([, v]) => v).map(([k, v]) => k + '=' + encodeURIComponent(v)).join('&');
    };
    const kind = h('select', { 'aria-label': 'event kind', onchange: e => go({ kind: e.target.value }) },
      h('option', { value: '' }, 'every kind'),
      (ev.kinds || []).map(k => h('option', { value: k, selected: k === query.kind }, k.replace(/_/g, ' '))));
    const hours = h('select', { 'aria-label': 'since', onchange: e => go({ hours: e.target.value }) },
      [['', 'any time'], ['1', 'last hour'], ['24', 'last day'], ['168', 'last week']].map(([v, l]) =>
        h('option', { value: v, selected: v === (query.hours || '') }, l)));
    return h('div', { 'data-view': 'events' }, h('h2', null, 'Event log'),
      h('div', { class: 'filters' }, kind, hours,
        query.pop ? h('button', { onclick: () => go({ pop: '' }) }, 'POP ' + query.pop + ' ×') : null,
        query.gateway ? h('button', { onclick: () => go({ gateway: '' }) }, 'gateway ' + query.gateway + ' ×') : null,
        h('span', null, ev.events.length + ' shown')),
      h('div', { class: 'panel' }, eventList(ev.events)));
  }

  async function viewSubscribers() {
    const s = await api('/subscribers?limit=200');
    const max = Math.max(1, ...s.subscribers.map(x => x.bytes));
    return h('div', { 'data-view': 'subscribers' }, h('h2', null, 'Usage per subscriber'),
      s.subscribers.length ? h('table', null,
        h('thead', null, h('tr', null, ['subscriber', 'objects', 'bytes', '', 'gateways'].map(x => h('th', null, x)))),
        h('tbody', null, s.subscribers.map(u => h('tr', null,
          h('td', null, u.subscriber), h('td', { class: 'num' }, fmtNum(u.objects)),
          h('td', { class: 'num' }, fmtBytes(u.bytes)), h('td', null, fillBar(u.bytes / max)),
          h('td', null, u.gateways_up + ' of ' + u.gateways + ' connected')))))
        : h('p', { class: 'empty' }, 'no objects stored yet'));
  }

  // One row per region (aggregated by its POP), worst first: thousands of
  // gateways per region stay one line; the POP page drills down.
  async function viewRepairs() {
    const [r, ev] = await Promise.all([api('/repairs'),
      api('/events?limit=20&kind=gateway_lost,gateway_returned,repair_started,repair_finished,fragments_bad')]);
    const rank = { at_risk: 0, repairing: 1, degraded: 2, placing: 3, unknown: 4, full: 5 };
    const rows = r.regions.slice().sort((a, b) => (rank[a.redundancy] - rank[b.redundancy]) || (b.chunks_below_redundancy - a.chunks_below_redundancy));
    const t = r.totals;
    return h('div', { 'data-view': 'repairs' }, h('h2', null, 'Redundancy and repair'),
      h('div', { class: 'tiles' },
        tile(fmtNum(t.chunks_below_redundancy), 'chunks below full redundancy', t.chunks_below_redundancy ? 'bad' : 'ok'),
        tile(fmtNum(t.repair_queue_chunks), 'chunks in repair queues', t.repair_queue_chunks ? 'warn' : ''),
        tile(fmtBytes(t.repair_queue_bytes), 'repair traffic left'),
        tile(t.repair_queue_chunks ? fmtDuration(Math.ceil(t.repair_eta_s_max)) : '-', 'longest ETA')),
      h('table', { class: 'repairs' },
        h('thead', null, h('tr', null, ['POP', 'region', 'redundancy', 'below k+m', 'repair', 'progress', 'queued', 'bytes left', 'ETA', 'repaired', 'gateways suspected / lost / disconnected'].map(x => h('th', null, x)))),
        h('tbody', null, rows.map(x => h('tr', { 'data-pop-id': x.pop_id, 'data-redundancy': x.redundancy, 'data-below': x.chunks_below_redundancy, 'data-repair-state': x.repair.state },
          h('td', null, h('a', { href: '#/pop/' + x.pop_id }, 'POP ' + x.pop_id)), h('td', null, x.region),
          h('td', null, redundancyBadge(x.redundancy)),
          h('td', { class: 'num' }, fmtNum(x.chunks_below_redundancy)),
          h('td', null, badge(x.repair.state)),
          h('td', null, x.repair.state === 'repairing' ? fillBar(x.repair.progress, 'fill') : ''),
          h('td', { class: 'num' }, fmtNum(x.repair.queue_chunks + x.repair.in_flight_chunks)),
          h('td', { class: 'num' }, fmtBytes(x.repair.queue_bytes)),
          h('td', { class: 'num' }, x.repair.state === 'repairing' ? fmtDuration(Math.ceil(x.repair.eta_s)) : '-'),
          h('td', { class: 'num' }, fmtNum(x.repair.repaired_chunks_total) + ' chunks, ' + fmtBytes(x.repair.repair_bytes_total)),
          h('td', { class: 'num' }, x.detector.suspected + ' / ' + x.detector.lost + ' / ' + x.gateways_disconnected + ' of ' + x.gateways))))),
      h('p', { class: 'empty' }, r.note),
      h('section', { class: 'panel' }, h('h3', null, 'Losses and repairs'), eventList(ev.events),
        h('a', { href: '#/events?kind=repair_finished' }, 'all repairs')));
  }

  function viewLogin(message) {
    const input = h('input', { type: 'password', placeholder: 'admin token', 'aria-label': 'admin token' });
    return h('div', { class: 'panel login', 'data-view': 'login' },
      h('h2', null, 'Admin token'),
      h('p', null, 'The dashboard reads the DC admin API, which needs the admin token (the DC\'s admin_token_file).'),
      message ? h('p', { class: 'error-box' }, message) : null,
      h('form', { onsubmit: e => { e.preventDefault(); sessionStorage.setItem(TOKEN_KEY, input.value.trim()); refresh(true); } },
        input, h('button', { type: 'submit' }, 'Open')));
  }

  // ---- routing and refresh ----------------------------------------------
  function route() {
    const hash = location.hash.replace(/^#/, '') || '/';
    const [path, query] = hash.split('?');
    const parts = path.split('/').filter(Boolean);
    const q = parseQuery(query);
    let nav = 'overview', view = () => viewOverview();
    if (parts[0] === 'pop' && parts[1]) { view = () => viewPop(parts[1], q); }
    else if (parts[0] === 'gateway' && parts[1]) { view = () => viewGateway(parts[1]); }
    else if (parts[0] === 'object' && parts[1]) { view = () => viewObject(parts[1]); }
    else if (parts[0] === 'events') { nav = 'events'; view = () => viewEvents(q); }
    else if (parts[0] === 'subscribers') { nav = 'subscribers'; view = viewSubscribers; }
    else if (parts[0] === 'repairs') { nav = 'repairs'; view = viewRepairs; }
    for (const a of document.querySelectorAll('header nav a'))
      a.classList.toggle('active', a.dataset.nav === nav);
    return { key: hash, view };
  }

  let busy = false, shownKey = null, rendered = 0, authFailed = false;
  async function refresh(force) {
    if (busy) return;
    if (authFailed && !force) return;
    busy = true;
    const { key, view } = route();
    pendingPlots.length = 0;  // plot boxes register while the view is built
    try {
      const node = await view();
      if (route().key !== key) return;  // navigated meanwhile; the next refresh renders
      const y = shownKey === key ? window.scrollY : 0;
      main.replaceChildren(node);
      drawPlots();  // now that the canvases have their sizes
      window.scrollTo(0, y);
      shownKey = key;
      authFailed = false;
      rendered++;
      document.body.dataset.rendered = String(rendered);
      setStatus('ok', 'updated ' + fmtTime(Date.now()));
    } catch (e) {
      if (e instanceof AuthError) {
        authFailed = true;
        sessionStorage.removeItem(TOKEN_KEY);
        main.replaceChildren(viewLogin(e.message === 'no token' ? '' : 'The DC refused that token.'));
        shownKey = null;
        setStatus('error', 'admin token needed');
      } else {
        setStatus('error', 'DC unreachable or error: ' + e.message);
      }
    } finally {
      busy = false;
    }
  }

  document.getElementById('find').addEventListener('submit', e => {
    e.preventDefault();
    const q = document.getElementById('find-q').value.trim().toLowerCase();
    if (/^[0-9a-f]{32}$/.test(q)) location.hash = '#/object/' + q;
    else if (/^(gw)?\d+$/.test(q) && (q.startsWith('gw') || Number(q) >= 1000)) location.hash = '#/gateway/' + q.replace('gw', '');
    else if (/^(pop)?\d+$/.test(q)) location.hash = '#/pop/' + q.replace('pop', '');
    else setStatus('error', 'enter a gateway id, a POP id or a 32-digit object id');
  });

  takeTokenFromHash();
  window.addEventListener('hashchange', () => { takeTokenFromHash(); refresh(true); });
  window.addEventListener('resize', () => { shownKey = null; refresh(); });
  refresh(true);
  setInterval(refresh, REFRESH_MS);
})();
