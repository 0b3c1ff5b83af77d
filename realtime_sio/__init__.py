"""realtime_sio: a Laravel Echo-compatible Socket.IO server (python-socketio on aiohttp) that replaces Laravel Reverb."""

__version__ = "0.1.0"
