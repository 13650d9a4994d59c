//! Shared helpers for the workspace-level benches and end-to-end tests.
