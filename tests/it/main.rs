//! capsule's integration tests: one test target, one module per area.

mod accounts;
mod aws_refresh;
mod catalog;
mod catalog_docs;
mod credentials;
mod deploy;
mod failover;
mod fleet_ops;
mod hostile_input;
mod hostile_net;
mod in_doubt;
mod live_catalog;
mod mocks;
mod output;
mod providers;
mod readme;
mod report;
mod schemas;
mod state;
mod support;
mod team_concurrency;
mod team_state;
mod team_tls;
mod xnode;
