//! `cost` (being written).
use crate::cli::CostArgs;
use crate::context::Ctx;
use std::process::ExitCode;

pub fn run(_ctx: &Ctx, _args: &CostArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`cost` is not implemented in this build")
}
