//! `ssh NODE [-- CMD…]`: the system `ssh` with the node's public address, the login user of the
//! provider's default image (catalog `ssh_user`, default `root`) and the user's key. capsule
//! prints nothing of its own on success; ssh's exit status is the command's.

use super::nodes;
use crate::cli::SshArgs;
use crate::context::Ctx;
use crate::driver::NodeState;
use crate::error::bad_input;
use std::path::PathBuf;
use std::process::ExitCode;

/// The private key next to the default public key (`~/.ssh/id_ed25519`, else `id_rsa`).
fn default_identity() -> Option<PathBuf> {
    super::sshkeys::default_public_key()
        .map(|p| p.with_extension(""))
        .filter(|p| p.is_file())
}

pub fn run(ctx: &Ctx, args: &SshArgs) -> anyhow::Result<ExitCode> {
    let store = nodes::open_store(ctx)?;
    let (node_ref, record) = nodes::resolve_node(ctx, store.as_ref(), &args.node)?;
    let p = ctx.provider(&node_ref.provider)?;
    // XnodeOS has no SSH once installed (shared/reference/xnode.md): say so, do not try.
    if let Some(r) = &record {
        if super::xnode::recorded_stages(store.as_ref())?.contains_key(&r.deploy_id) {
            return Err(bad_input(format!(
                "node '{}' is an xNode: XnodeOS runs no SSH server after its install — manage it through its xnode-manager (https on port 443)",
                args.node
            )));
        }
    }
    // The recorded address, else a fresh look at the provider.
    let mut ip = record.as_ref().and_then(|r| r.ipv4.clone());
    if record.as_ref().is_some_and(|r| !r.is_live()) {
        return Err(bad_input(format!(
            "node '{}' was deleted — nothing to log in to",
            args.node
        )));
    }
    if ip.is_none() {
        let account = super::nodes::account_of(ctx, record.as_ref());
        let driver = ctx.driver_for(&node_ref.provider, account)?;
        let rt = ctx.runtime()?;
        let n = rt
            .block_on(driver.get(&node_ref))
            .map_err(anyhow::Error::new)?;
        if n.state == NodeState::Deleted {
            return Err(anyhow::anyhow!(
                "node {} not found at {}",
                node_ref.id,
                node_ref.provider
            ));
        }
        ip = n.ipv4;
    }
    let Some(ip) = ip else {
        return Err(anyhow::anyhow!(
            "node '{}' has no public IPv4 yet — wait for it (`capsule openmesh status {}`) and try again",
            args.node,
            args.node
        ));
    };
    let user = args
        .user
        .clone()
        .or_else(|| Some(p.meta.ssh_user.clone()).filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "root".to_string());
    let identity = match &args.identity {
        Some(path) if !path.is_file() => {
            return Err(bad_input(format!(
                "--identity {}: no such file — pass the private key that matches the key the node was deployed with",
                path.display()
            )))
        }
        Some(path) => Some(path.clone()),
        None => default_identity(),
    };
    let mut cmd = std::process::Command::new("ssh");
    if let Some(i) = &identity {
        cmd.arg("-i").arg(i);
    }
    cmd.arg("-o").arg("StrictHostKeyChecking=accept-new");
    cmd.arg(format!("{user}@{ip}"));
    if !args.command.is_empty() {
        cmd.arg("--");
        cmd.args(&args.command);
    }
    let status = cmd.status().map_err(|e| {
        anyhow::anyhow!(
            "cannot run the system `ssh` ({e}) — install OpenSSH's client and try again"
        )
    })?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::from(1),
    })
}
