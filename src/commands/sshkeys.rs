//! `--ssh-key PATH|NAME|ID` the same way on every provider.
//!
//! A value that names a file (it has a `/`, starts with `~` or `.`, or ends in `.pub`) must be
//! an OpenSSH public key file: a missing one is bad input, never sent as a key id. Where the
//! provider stores keys (`[api.keys]`) the file's key is registered once and found again by its
//! key material; where it takes key text (`ssh_key = "public-key"`) the text is sent. Any other
//! value is a key NAME or ID the provider already stores. With no `--ssh-key`, the user's
//! `~/.ssh/id_ed25519.pub` (else `id_rsa.pub`) is used when present; a deploy with no key whose
//! bootstrap turns password logins off is refused unless `--no-ssh-key`.

use crate::catalog::ProviderEntry;
use crate::cli::DeployArgs;
use crate::context::Ctx;
use crate::error::bad_input;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Where a key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A local public key file (`default`: picked because no `--ssh-key` was given).
    File {
        path: PathBuf,
        text: String,
        default: bool,
    },
    /// A key the provider stores, by name or id.
    Ref(String),
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `~/x` → `$HOME/x`.
fn expand(text: &str) -> PathBuf {
    match (text.strip_prefix("~/"), home()) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(text),
    }
}

fn looks_like_path(text: &str) -> bool {
    text.contains('/') || text.starts_with('~') || text.starts_with('.') || text.ends_with(".pub")
}

/// The user's default public key: `~/.ssh/id_ed25519.pub`, else `~/.ssh/id_rsa.pub`.
pub fn default_public_key() -> Option<PathBuf> {
    let h = home()?;
    ["id_ed25519.pub", "id_rsa.pub"]
        .iter()
        .map(|f| h.join(".ssh").join(f))
        .find(|p| p.is_file())
}

fn read_public_key(path: &Path, shown: &str) -> anyhow::Result<String> {
    if !path.exists() {
        return Err(bad_input(format!(
            "--ssh-key {shown}: no such file — pass an existing public key file (e.g. ~/.ssh/id_ed25519.pub), or the NAME or ID of a key stored at the provider"
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("cannot read --ssh-key {shown}: {e}")))?;
    let text = text.trim().to_string();
    if crate::driver::key_material(&text).is_none()
        || !(text.starts_with("ssh-") || text.starts_with("ecdsa-"))
    {
        return Err(bad_input(format!(
            "--ssh-key {shown} is not an OpenSSH public key — pass the .pub file, not the private key"
        )));
    }
    Ok(text)
}

/// The keys a deploy uses, checked before anything is sent.
pub fn sources(ctx: &Ctx, args: &DeployArgs) -> anyhow::Result<Vec<KeySource>> {
    let mut out = Vec::new();
    for k in &args.ssh_keys {
        if looks_like_path(k) {
            let path = expand(k);
            let text = read_public_key(&path, k)?;
            out.push(KeySource::File {
                path,
                text,
                default: false,
            });
        } else {
            out.push(KeySource::Ref(k.clone()));
        }
    }
    if out.is_empty() && !args.no_ssh_key {
        if let Some(path) = default_public_key() {
            let text = read_public_key(&path, &path.display().to_string())?;
            out.push(KeySource::File {
                path,
                text,
                default: true,
            });
        }
    }
    let bootstrap = args.user_data.is_none()
        && !args.no_user_data
        && !ctx.catalog.bootstrap.user_data.is_empty();
    if out.is_empty()
        && !args.no_ssh_key
        && bootstrap
        && ctx.catalog.bootstrap.disables_password_login
    {
        return Err(bad_input(
            "no SSH key: the default bootstrap turns password logins off, so the node would be unreachable — pass --ssh-key PATH|NAME|ID, create ~/.ssh/id_ed25519.pub, or pass --no-ssh-key",
        ));
    }
    Ok(out)
}

/// Keys registered by this process: `(provider, region, key type + blob)` → the provider's id.
type Registered = Mutex<HashMap<(String, String, String), String>>;

fn registered() -> &'static Registered {
    static CACHE: OnceLock<Registered> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A stable name for a registered key: `capsule-` and the end of its blob.
fn key_name(text: &str) -> String {
    let blob = crate::driver::key_material(text)
        .map(|(_, b)| b)
        .unwrap_or_default();
    let tail: String = blob
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .take(12)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("capsule-{tail}")
}

/// The `ssh_keys` a create request at `p` in `region` carries, keys registered with `account`'s
/// credentials. A dry run registers nothing and shows `<registered from PATH>` instead of the id.
pub fn for_provider(
    ctx: &Ctx,
    args: &DeployArgs,
    account: &str,
    p: &ProviderEntry,
    region: &str,
) -> anyhow::Result<Vec<String>> {
    let id = p.id();
    let mut out = Vec::new();
    for k in sources(ctx, args)? {
        use crate::catalog::schema::SshKeyMode;
        match (p.meta.ssh_key, k) {
            (SshKeyMode::PublicKey, KeySource::File { text, .. }) => out.push(text),
            (SshKeyMode::PublicKey, KeySource::Ref(r)) => {
                if !(r.starts_with("ssh-") || r.starts_with("ecdsa-")) {
                    return Err(bad_input(format!(
                        "--ssh-key {r}: {id} stores no keys by name — pass a public key file (.pub)"
                    )));
                }
                out.push(r);
            }
            (SshKeyMode::None, KeySource::File { default: true, .. }) => {}
            (SshKeyMode::None, k) => {
                let shown = match k {
                    KeySource::File { path, .. } => path.display().to_string(),
                    KeySource::Ref(r) => r,
                };
                return Err(bad_input(format!(
                    "--ssh-key {shown}: {id} puts the SSH keys of its account or project on every server and takes none per server (its key store is not part of the API capsule drives) — add the key there and drop --ssh-key"
                )));
            }
            (_, KeySource::Ref(r)) => out.push(r),
            (
                _,
                KeySource::File {
                    path,
                    text,
                    default,
                },
            ) => {
                if p.api.keys.is_none() {
                    if default {
                        continue;
                    }
                    return Err(bad_input(format!(
                        "--ssh-key {}: {id} takes the id of a key stored at the provider and capsule cannot store one there — upload the key and pass its id",
                        path.display()
                    )));
                }
                if args.dry_run {
                    out.push(format!("<registered from {}>", path.display()));
                    continue;
                }
                let material = crate::driver::key_material(&text)
                    .map(|(t, b)| format!("{t} {b}"))
                    .unwrap_or_default();
                let cache_key = (format!("{id}\u{0}{account}"), region.to_string(), material);
                let cached = registered()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&cache_key)
                    .cloned();
                let key_id = match cached {
                    Some(k) => k,
                    None => {
                        let driver = ctx.driver_for(id, account)?;
                        let rt = ctx.runtime()?;
                        let k = rt
                            .block_on(driver.ensure_key(&key_name(&text), &text, Some(region)))
                            .map_err(anyhow::Error::new)?;
                        registered()
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(cache_key, k.clone());
                        k
                    }
                };
                out.push(key_id);
            }
        }
    }
    Ok(out)
}
