"""Delivery latency as users feel it (issue 15): an estimate for every delivery and an exact figure for a sample.

- :mod:`~realtime_sio.latency.estimate`: accepted → written to the socket, plus half the socket's last round trip
  (``engine/round_trip.py``), added to ``realtime_sio_delivery_estimated_seconds`` in bulk once per fan-out;
- :mod:`~realtime_sio.latency.acks`: deliveries sampled at ``DELIVERY_ACK_SAMPLE_RATE`` to clients that opted in
  (the served ``/client/recovery.mjs``) carry an ``ack`` id; the client's ``latency:ack`` closes the loop on the
  server's clock (``realtime_sio_delivery_acknowledged_seconds``).
"""
