//! Driver tests against a local HTTP server.
