//! capsule: see every provider's server templates side by side, deploy the cheapest that fits,
//! and keep a record of every node.
//!
//! Flow: `cli` (clap) → `context` (catalog, output style) → `catalog` / `select` / `driver` /
//! `state` (plain data, no printing) → `commands` (orchestration) → `render` (tables, JSON, CSV)
//! → `error` (exit codes); `messages` writes every note and warning on stderr.

pub mod atomic_file;
pub mod catalog;
pub mod chart;
pub mod cli;
pub mod commands;
pub mod complete;
pub mod context;
pub mod credentials;
pub mod date;
pub mod driver;
pub mod duration;
pub mod engine;
pub mod error;
pub mod explain;
pub mod input_file;
pub mod messages;
pub mod probe;
pub mod render;
pub mod report;
pub mod secret;
pub mod select;
pub mod state;
pub mod tls;
