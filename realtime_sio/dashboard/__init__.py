"""The operator dashboard at ``/dashboard``: live connections, channels, deliveries and errors over server-sent events.

Off unless ``REALTIME_SIO_DASHBOARD_TOKEN`` is set. ``routes`` serves and guards it, ``feed`` samples the server,
``snapshot`` turns samples and socket state into the JSON the page renders, ``stream`` pushes it once a second.
"""
