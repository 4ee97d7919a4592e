//! capsule's integration tests: one test target, one module per area.

mod catalog;
mod credentials;
mod deploy;
mod in_doubt;
mod mocks;
mod providers;
mod readme;
mod state;
mod support;
