"""The Pusher Channels protocol 7 (pusher-js, Laravel Echo reverb/pusher broadcasters) on /app/{key} (issue 12)."""
