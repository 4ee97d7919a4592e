//! Provider credentials: resolved values for one provider account.
//!
//! Resolution (flag > environment > `$CAPSULE_HOME/credentials.toml`) and the file store live
//! here too; the driver only sees a resolved [`Credentials`].

use crate::secret::Secret;
use std::collections::BTreeMap;

/// Resolved credential fields of one provider, by catalog field name.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    values: BTreeMap<String, Secret>,
    /// Field names that are not secret (project id, default region): these reach templates.
    public: Vec<String>,
}

impl Credentials {
    pub fn new() -> Credentials {
        Credentials::default()
    }

    /// Set a field; `secret = false` makes it visible to request templates as `account.<name>`.
    pub fn set(&mut self, name: &str, value: Secret, secret: bool) {
        if !secret && !self.public.iter().any(|p| p == name) {
            self.public.push(name.to_string());
        }
        self.values.insert(name.to_string(), value);
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.values.get(name).filter(|v| !v.is_empty())
    }

    /// Non-secret fields, for request templates (`account.project_id`).
    pub fn public_fields(&self) -> BTreeMap<String, String> {
        self.public
            .iter()
            .filter_map(|n| self.values.get(n).map(|v| (n.clone(), v.expose().to_string())))
            .collect()
    }
}
