//! capsule's integration tests: one test target, one module per area.

mod catalog;
mod credentials;
mod deploy;
mod mocks;
mod providers;
mod readme;
mod report;
mod state;
mod support;
