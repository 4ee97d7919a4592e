//! SSH keys stored at a provider (`[api.keys]`, operations `list_keys` and `create_key`): a
//! local public key is registered once and found again by its key material, so `--ssh-key
//! PATH` means the same on every provider that stores keys.

use super::error::{DriverError, ErrorKind};
use super::tree;
use super::Driver;
use base64::Engine as _;
use serde_json::Value;

/// The part of an OpenSSH public key a fingerprint hashes: its type and base64 blob (the
/// comment is not part of the key).
pub fn key_material(text: &str) -> Option<(String, String)> {
    let mut words = text.split_whitespace();
    let kind = words.next()?;
    let blob = words.next()?;
    Some((kind.to_string(), blob.to_string()))
}

impl Driver {
    /// Whether the catalog says how to register keys here.
    pub fn stores_keys(&self) -> bool {
        self.inner.provider.api.keys.is_some()
    }

    /// The provider's id of this public key: an already stored key with the same material, or
    /// a new one stored under `name`. `region` matters where keys are regional.
    pub async fn ensure_key(
        &self,
        name: &str,
        public_key: &str,
        region: Option<&str>,
    ) -> Result<String, DriverError> {
        let fields = self.inner.provider.api.keys.clone().ok_or_else(|| {
            DriverError::new(
                &self.inner.id,
                ErrorKind::Refused,
                "the catalog declares no way to store SSH keys here ([api.keys])",
            )
        })?;
        let ours = key_material(public_key).ok_or_else(|| {
            DriverError::new(
                &self.inner.id,
                ErrorKind::Refused,
                "not an OpenSSH public key",
            )
        })?;
        let region = if self.inner.provider.api.regional {
            region
        } else {
            None
        };
        let mut ctx = Value::Object(self.base_ctx(region));
        let listed = self.items("list_keys", "", &ctx).await?;
        for k in &listed {
            let text = tree::text_at(k, &fields.public_key).unwrap_or_default();
            if key_material(&text).as_ref() == Some(&ours) {
                if let Some(id) = tree::text_at(k, &fields.id).filter(|s| !s.is_empty()) {
                    self.log(1, &format!("SSH key found as {id}"));
                    return Ok(id);
                }
            }
        }
        if let Value::Object(m) = &mut ctx {
            m.insert("key_name".into(), name.into());
            m.insert("public_key".into(), public_key.trim().into());
            m.insert(
                "public_key_b64".into(),
                base64::engine::general_purpose::STANDARD
                    .encode(public_key.trim())
                    .into(),
            );
        }
        let resp = self.call_plain("", "create_key", &ctx).await?;
        let op = self
            .op("", "create_key")
            .map(|o| o.node.clone())
            .unwrap_or_default();
        let stored = if op.is_empty() {
            &resp.value
        } else {
            resp.value.pointer(&op).unwrap_or(&Value::Null)
        };
        tree::text_at(stored, &fields.id)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                DriverError::new(
                    &self.inner.id,
                    ErrorKind::Api,
                    "the stored SSH key came back without an id",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_material_ignores_the_comment() {
        assert_eq!(
            super::key_material("ssh-ed25519 AAAAC3Nz me@host"),
            super::key_material("ssh-ed25519   AAAAC3Nz\n")
        );
        assert_ne!(
            super::key_material("ssh-ed25519 AAAAC3Nz"),
            super::key_material("ssh-ed25519 AAAAC3Ny")
        );
        assert!(super::key_material("garbage").is_none());
    }
}
