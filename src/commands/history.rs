//! `history` (being written).
use crate::cli::HistoryArgs;
use crate::context::Ctx;
use std::process::ExitCode;

pub fn run(_ctx: &Ctx, _args: HistoryArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`history` is not implemented in this build")
}
