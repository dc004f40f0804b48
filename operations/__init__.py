"""Commands operators run against a deployed copy of the kit (make targets call them)."""
