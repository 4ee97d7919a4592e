//! capsule's integration tests: one test target, one module per area.

mod catalog;
mod credentials;
mod mocks;
mod state;
mod support;
