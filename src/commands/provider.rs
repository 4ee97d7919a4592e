//! `provider configure|show|verify|remove` (being written).
use crate::cli::ProviderCommand;
use crate::context::Ctx;
use std::process::ExitCode;

pub fn run(_ctx: &Ctx, _cmd: ProviderCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`provider` subcommands are not implemented in this build")
}
