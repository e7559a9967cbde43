"""The HTTP server every `chorus run` has, and what operators read from it."""
