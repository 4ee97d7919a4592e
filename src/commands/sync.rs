//! `sync` (being written).
use crate::cli::SyncArgs;
use crate::context::Ctx;
use std::process::ExitCode;

pub fn run(_ctx: &Ctx, _args: &SyncArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`sync` is not implemented in this build")
}
