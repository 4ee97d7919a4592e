//! `deploy`, `list`, `status`, `start`, `stop`, `delete` (being written).
use crate::cli::{DeployArgs, ListArgs, NodeArgs};
use crate::context::Ctx;
use std::process::ExitCode;

pub enum Power {
    Start,
    Stop,
}

pub fn deploy(_ctx: &Ctx, _args: &DeployArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`deploy` is not implemented in this build")
}
pub fn list(_ctx: &Ctx, _args: &ListArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`list` is not implemented in this build")
}
pub fn status(_ctx: &Ctx, _args: &NodeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`status` is not implemented in this build")
}
pub fn power(_ctx: &Ctx, _args: &NodeArgs, _p: Power) -> anyhow::Result<ExitCode> {
    anyhow::bail!("power actions are not implemented in this build")
}
pub fn delete(_ctx: &Ctx, _args: &NodeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`delete` is not implemented in this build")
}
