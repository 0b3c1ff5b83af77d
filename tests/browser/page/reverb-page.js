// A Laravel application page as a Reverb frontend has it: Echo with broadcaster "reverb" on pusher-js, configured
// from the query string as VITE_REVERB_* would configure it. Records what it sees in window.rt (read by the
// scenarios) and in the DOM (for people looking at a failure screenshot).
//
// Query: key (REVERB_APP_KEY), host, port (REVERB_HOST / REVERB_PORT: realtime_sio), user (the logged-in user the
// page's /broadcasting/auth sees, as a Bearer user-<id> header), public / private (channel names, private without its
// prefix), event (listened name, default .OrderShipped).
'use strict';

(function () {
  const q = new URLSearchParams(window.location.search);
  const rt = { events: [], log: [], errors: [], subscribed: [], states: [], connected: false };
  window.rt = rt;

  const $ = (id) => document.getElementById(id);
  function note(kind, detail) {
    const entry = { t: Math.round(performance.now()), kind, detail };
    rt.log.push(entry);
    const li = document.createElement('li');
    li.textContent = `${entry.t} ms ${kind} ${detail === undefined ? '' : JSON.stringify(detail)}`;
    $('log').appendChild(li);
  }

  const port = Number(q.get('port'));
  const echo = new window.Echo.default({
    broadcaster: 'reverb',
    key: q.get('key'),
    wsHost: q.get('host'),
    wsPort: port,
    wssPort: port,
    forceTLS: false,
    enabledTransports: ['ws', 'wss'],
    Pusher: window.Pusher,
    authEndpoint: '/broadcasting/auth', // the page's own Laravel app
    auth: { headers: { Authorization: `Bearer user-${q.get('user')}` } },
  });
  window.echo = echo;
  const connection = echo.connector.pusher.connection;
  connection.bind('state_change', ({ current }) => {
    rt.states.push(current);
    rt.connected = current === 'connected';
    $('status').textContent = current;
    if (rt.connected) $('socket-id').textContent = echo.socketId();
    note('state', current);
  });
  connection.bind('error', (err) => {
    rt.errors.push({ kind: 'connection', error: JSON.parse(JSON.stringify(err || null)) });
    note('connection_error');
  });

  const eventName = q.get('event') || '.OrderShipped';
  function watch(channel, name) {
    channel
      .subscribed(() => {
        rt.subscribed.push(name);
        note('subscribed', name);
      })
      .error((err) => {
        rt.errors.push({ kind: 'subscription', channel: name, error: JSON.parse(JSON.stringify(err || null)) });
        note('subscription_error', name);
      })
      .listen(eventName, (data) => {
        rt.events.push({ channel: name, event: eventName, data });
        const li = document.createElement('li');
        li.textContent = `${name} ${eventName} ${JSON.stringify(data)}`;
        $('events').appendChild(li);
      });
  }
  if (q.get('public')) watch(echo.channel(q.get('public')), q.get('public'));
  if (q.get('private')) watch(echo.private(q.get('private')), `private-${q.get('private')}`);

  rt.state = () => ({
    connected: rt.connected,
    states: rt.states,
    socketId: echo.socketId() || null,
    subscribed: rt.subscribed,
    events: rt.events,
    errors: rt.errors,
    log: rt.log,
  });
  $('status').textContent = 'connecting';
})();
