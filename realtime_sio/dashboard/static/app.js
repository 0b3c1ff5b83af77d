// realtime_sio dashboard: renders the server's snapshot stream (/dashboard/stream, server-sent events).
// Vanilla JS, no dependencies. Data only ever reaches the page through textContent, never innerHTML.
'use strict';

(function () {
  const POINTS = 60; // sparkline width in samples (the server keeps one per second)
  let source = null;

  const $ = (id) => document.getElementById(id);

  function text(id, value) {
    const el = $(id);
    if (el) el.textContent = value;
  }

  function num(value, digits) {
    if (value === null || value === undefined) return '–';
    return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits ?? 0 });
  }

  function ms(value) {
    if (value === null || value === undefined) return '–';
    return value < 10 ? `${num(value, 2)} ms` : `${num(value, 0)} ms`;
  }

  function bytes(value) {
    if (value === null || value === undefined) return '–';
    return `${num(value / (1024 * 1024), 1)} MiB`;
  }

  function duration(seconds) {
    const s = Math.floor(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    const h = Math.floor(s / 3600);
    return h < 48 ? `${h}h ${Math.floor((s % 3600) / 60)}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  function setStreamState(state, label) {
    const el = $('stream-state');
    el.dataset.state = state;
    el.textContent = label;
  }

  // Replace a table body's rows; `cells(row)` returns the cell texts, `key(row)` a stable data-key attribute.
  function fillTable(tableId, emptyId, rows, cells, key) {
    const body = $(tableId).tBodies[0];
    const fresh = document.createDocumentFragment();
    for (const row of rows) {
      const tr = document.createElement('tr');
      tr.dataset.key = key(row);
      for (const [value, cls] of cells(row)) {
        const td = document.createElement('td');
        td.textContent = value;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      fresh.appendChild(tr);
    }
    body.replaceChildren(fresh);
    $(emptyId).hidden = rows.length > 0;
    $(tableId).hidden = rows.length === 0;
  }

  function spark(id, values) {
    const svg = $(id);
    if (!svg) return;
    const max = Math.max(1, ...values);
    const step = values.length > 1 ? 60 / (POINTS - 1) : 0;
    const offset = 60 - step * (values.length - 1);
    const points = values.map((v, i) => `${(offset + i * step).toFixed(2)},${(19 - (v / max) * 18).toFixed(2)}`);
    let line = svg.firstElementChild;
    if (!line) {
      line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
      svg.appendChild(line);
    }
    line.setAttribute('points', points.join(' '));
  }

  function render(s) {
    text('version', `v${s.version}`);
    text('uptime', duration(s.uptime_seconds));
    text('updated', new Date(s.generated_at * 1000).toLocaleTimeString());
    $('draining').hidden = !s.draining;

    const c = s.connections;
    text('connections-open', num(c.open));
    text('connections-websocket', num(c.websocket));
    text('connections-polling', num(c.polling));
    text('connections-pusher', num(c.pusher));
    text('connections-authenticated', num(c.authenticated));
    text('connects-rate', num(c.connects_per_second, 2));
    text('disconnects-rate', num(c.disconnects_per_second, 2));
    text('refused-rate', num(c.refused_per_second, 2));

    const d = s.deliveries;
    text('deliveries-rate', num(d.per_second, 1));
    text('events-rate', num(d.events_per_second, 1));
    text('deliveries-total', num(d.total));
    text('latency-p50', ms(d.latency_p50_ms));
    text('latency-p99', ms(d.latency_p99_ms));
    text('latency-window', d.latency_window_seconds === null ? 'since start' : `last ${num(d.latency_window_seconds)} s`);
    text('felt-p50', ms(d.felt_p50_ms));
    text('felt-p99', ms(d.felt_p99_ms));
    text('felt-over', d.felt_over_target_share === null ? '–' : `${num(d.felt_over_target_share * 100, 1)} %`);
    text('acked-p50', ms(d.acked_p50_ms));
    text('acked-p99', ms(d.acked_p99_ms));
    text('acked-count', num(d.acked_count));

    const redis = $('redis-state');
    redis.textContent = s.redis.state;
    redis.dataset.state = s.redis.state;
    text('rss', bytes(s.process.rss_bytes));

    spark('spark-connections', s.series.connections);
    spark('spark-deliveries', s.series.deliveries_per_second);

    const ch = s.channels;
    text('channels-count', ch.total > ch.rows.length ? `(busiest ${ch.rows.length} of ${num(ch.total)})` : `(${num(ch.total)})`);
    fillTable('channels-table', 'channels-empty', ch.rows, (r) => [
      [r.name, 'name'],
      [r.kind, 'kind'],
      [num(r.subscribers), 'num'],
      [r.presence_members === null ? '' : num(r.presence_members), 'num'],
    ], (r) => r.name);

    const conns = s.recent_connections;
    text('connections-count', c.open > conns.length ? `(${conns.length} of ${num(c.open)})` : `(${num(c.open)})`);
    fillTable('connections-table', 'connections-empty', conns, (r) => [
      [r.sid, 'name'],
      [r.user_id === null ? 'anonymous' : r.user_id, 'name'],
      [r.transport],
      [r.channels.join(', '), 'name'],
    ], (r) => r.sid);

    const e = s.errors;
    text('errors-window', e.window_seconds === null ? '' : `(recent = last ${num(e.window_seconds)} s)`);
    fillTable('errors-table', 'errors-empty', e.rows, (r) => [
      [r.category],
      [r.reason, 'name'],
      [num(r.recent), 'num'],
      [num(r.total), 'num'],
    ], (r) => `${r.category}:${r.reason}`);
  }

  // EventSource reconnects by itself after network errors, but gives up on an HTTP error (e.g. 401 once the
  // session expired, 503 when too many dashboards are open): then ask once whether we are still signed in.
  async function recover() {
    setStreamState('down', 'disconnected — retrying');
    try {
      const res = await fetch('/dashboard/snapshot.json', { credentials: 'same-origin', cache: 'no-store' });
      if (res.status === 401) {
        window.location.reload();
        return;
      }
    } catch (_) {
      // server unreachable: retry below
    }
    setTimeout(connect, 5000);
  }

  function connect() {
    if (source) source.close();
    source = new EventSource('/dashboard/stream');
    source.addEventListener('open', () => setStreamState('live', 'live'));
    source.addEventListener('snapshot', (event) => {
      setStreamState('live', 'live');
      render(JSON.parse(event.data));
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        recover();
      } else {
        setStreamState('down', 'reconnecting…');
      }
    });
  }

  connect();
})();
