//! capsule's integration tests: one test target, one module per area.

mod credentials;
mod support;
