"""The engine: bytes to messages and back for every protocol (frame codec, connection, upgrade router, the Engine.IO
socket). Imports nothing above it."""
