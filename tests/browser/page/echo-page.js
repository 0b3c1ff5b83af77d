// A Laravel application page, reduced to Echo: connects with the options in the query string and records what it
// sees in window.rt (read by the scenarios) and in the DOM (for people looking at a failure screenshot).
//
// Query: server (Echo host), token (bearerToken), transports (comma list), tryAll (1 = tryAllTransports),
// private / public / presence (channel names, without prefix), event (listened name, default .OrderShipped).
'use strict';

(function () {
  const q = new URLSearchParams(window.location.search);
  const rt = {
    events: [],
    log: [],
    connectErrors: [],
    subscriptionErrors: [],
    members: {},
    connected: false,
    connects: 0,
    reconnects: 0,
    socketIds: [],
    upgrades: [],
    upgradeErrors: 0,
  };
  window.rt = rt;

  const $ = (id) => document.getElementById(id);
  function note(kind, detail) {
    const entry = { t: Math.round(performance.now()), kind, detail };
    rt.log.push(entry);
    const li = document.createElement('li');
    li.textContent = `${entry.t} ms ${kind} ${detail === undefined ? '' : JSON.stringify(detail)}`;
    $('log').appendChild(li);
  }
  function setStatus(text) {
    $('status').textContent = text;
  }

  const options = { broadcaster: 'socket.io', host: q.get('server'), client: window.io };
  if (q.get('token')) options.bearerToken = q.get('token');
  if (q.get('transports')) options.transports = q.get('transports').split(',');
  if (q.get('tryAll') === '1') options.tryAllTransports = true;

  const echo = new window.Echo.default(options);
  window.echo = echo;
  const socket = echo.connector.socket;

  const transportName = () => (socket.io.engine && socket.io.engine.transport ? socket.io.engine.transport.name : null);

  function watchEngine() {
    const engine = socket.io.engine;
    if (!engine || engine.__rtWatched) return;
    engine.__rtWatched = true;
    engine.on('upgrade', (t) => {
      rt.upgrades.push(t.name);
      $('transport').textContent = t.name;
      note('upgrade', t.name);
    });
    engine.on('upgradeError', (err) => {
      rt.upgradeErrors += 1;
      note('upgrade_error', String(err && err.message));
    });
  }

  socket.io.on('open', watchEngine); // before the engine probes for an upgrade
  socket.on('connect', () => {
    rt.connected = true;
    rt.connects += 1;
    rt.socketIds.push(socket.id);
    watchEngine();
    $('socket-id').textContent = socket.id;
    $('transport').textContent = transportName();
    setStatus('connected');
    note('connect', { id: socket.id, transport: transportName() });
  });
  socket.on('disconnect', (reason) => {
    rt.connected = false;
    setStatus('disconnected');
    note('disconnect', reason);
  });
  socket.on('connect_error', (err) => {
    rt.connectErrors.push({ message: String(err && err.message), data: (err && err.data) || null });
    setStatus('connect error');
    note('connect_error', String(err && err.message));
  });
  socket.on('subscription_error', (channel, status, payload) => {
    rt.subscriptionErrors.push({ channel, status, payload });
    note('subscription_error', { channel, status });
  });
  socket.io.on('reconnect', (attempt) => {
    rt.reconnects += 1;
    note('reconnect', attempt);
  });

  const eventName = q.get('event') || '.OrderShipped';
  function record(channel) {
    return (data) => {
      rt.events.push({ channel, event: eventName, data });
      const li = document.createElement('li');
      li.textContent = `${channel} ${eventName} ${JSON.stringify(data)}`;
      $('events').appendChild(li);
    };
  }
  if (q.get('private')) echo.private(q.get('private')).listen(eventName, record(`private-${q.get('private')}`));
  if (q.get('public')) echo.channel(q.get('public')).listen(eventName, record(q.get('public')));
  if (q.get('presence')) {
    const name = `presence-${q.get('presence')}`;
    echo.join(q.get('presence'))
      .here((users) => { rt.members[name] = users; })
      .listen(eventName, record(name));
  }

  // Resolves once the server has handled everything this socket sent before: the server handles one socket's
  // events in order, so the ping's ack means Echo's subscribe packets (sent earlier) were processed.
  rt.ready = () => socket.timeout(5000).emitWithAck('ping');
  rt.state = () => ({
    connected: rt.connected,
    connects: rt.connects,
    reconnects: rt.reconnects,
    socketIds: rt.socketIds,
    socketId: socket.id || null,
    echoSocketId: echo.socketId() || null,
    transport: transportName(),
    upgrades: rt.upgrades,
    upgradeErrors: rt.upgradeErrors,
    events: rt.events,
    connectErrors: rt.connectErrors,
    subscriptionErrors: rt.subscriptionErrors,
    members: rt.members,
    log: rt.log,
  });
  setStatus('connecting');
})();
