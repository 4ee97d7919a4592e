//! `inventory` (being written).
use crate::cli::InventoryArgs;
use crate::context::Ctx;
use std::process::ExitCode;

pub fn run(_ctx: &Ctx, _args: InventoryArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`inventory` is not implemented in this build")
}
