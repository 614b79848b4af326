"""HTTP endpoints; each module is one family of routes."""
