//! What a node name and a record id may hold, wherever they enter (deploy, import, adopt).
//!
//! Node names become hostnames at the providers and are written into files scripts source, so
//! they keep to the hostname alphabet: ASCII letters, digits, `-` and `.`, 1 to 63 characters,
//! starting and ending with a letter or digit, no empty label (`a..b`). Ids are short tokens.

/// Longest node name (one DNS label).
pub const MAX_NAME: usize = 63;
/// Longest deploy or group id (capsule writes 12 hex digits; imports may carry others).
pub const MAX_DEPLOY_ID: usize = 64;
/// Longest provider-side id (UUIDs, numbers, `i-…`, and room to spare).
pub const MAX_PROVIDER_ID: usize = 128;

/// A value as it may be shown in a message: control characters escaped, cut after 40
/// characters (an imported name can be megabytes long).
pub fn shown(value: &str) -> String {
    const KEEP: usize = 40;
    let mut out: String = value
        .chars()
        .take(KEEP)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    let total = value.chars().count();
    if total > KEEP {
        out.push_str(&format!("… ({total} characters)"));
    }
    out
}

/// Why `name` cannot be a node name, as one sentence with the fix; `None` when it can.
pub fn name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let ok = (1..=MAX_NAME).contains(&len)
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && !name.contains("..");
    if ok {
        return None;
    }
    Some(format!(
        "node name '{}' is not a valid hostname — use 1 to {MAX_NAME} letters, digits, '-' or '.', starting and ending with a letter or digit",
        shown(name)
    ))
}

/// Why `id` cannot be a deploy or group id; `None` when it can.
pub fn deploy_id_problem(what: &str, id: &str) -> Option<String> {
    let ok = (1..=MAX_DEPLOY_ID).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!ok).then(|| {
        format!(
            "{what} '{}' is not valid — use 1 to {MAX_DEPLOY_ID} letters, digits, '-', '_' or '.'",
            shown(id)
        )
    })
}

/// Longest account name.
pub const MAX_ACCOUNT: usize = 64;

/// Why `account` cannot be an account name (`--account`, `CAPSULE_ACCOUNT`, an import's
/// `account` column); `None` when it can. Account names become TOML table keys and are the
/// profile names of the official CLIs' config files, so they keep to a token alphabet.
pub fn account_problem(account: &str) -> Option<String> {
    let ok = (1..=MAX_ACCOUNT).contains(&account.len())
        && account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+'));
    (!ok).then(|| {
        format!(
            "account name '{}' is not valid — use 1 to {MAX_ACCOUNT} letters, digits, '-', '_', '.', '@' or '+'",
            shown(account)
        )
    })
}

/// Why `id` cannot be a provider's node id; `None` when it can.
pub fn provider_id_problem(id: &str) -> Option<String> {
    let ok = (1..=MAX_PROVIDER_ID).contains(&id.len()) && id.chars().all(|c| c.is_ascii_graphic());
    (!ok).then(|| {
        format!(
            "provider id '{}' is not valid — use 1 to {MAX_PROVIDER_ID} printable characters without spaces",
            shown(id)
        )
    })
}

/// `raw` made into a valid name: every run of other characters becomes one `-`, the ends are
/// trimmed and the length cut to `max` (for names that come from a provider's listing).
pub fn safe_label(raw: &str, max: usize) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with(['-', '.']) && !out.is_empty() {
            out.push(if c == '.' { '.' } else { '-' });
        }
        if out.len() >= max {
            break;
        }
    }
    let out = out.trim_end_matches(['-', '.']).to_string();
    if out.is_empty() {
        "node".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_only() {
        for good in ["web", "xnode-01", "a.b.c", "Node7", "a"] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "$(touch x)",
            "a b",
            "a\nb",
            "a\0b",
            "-lead",
            "trail-",
            "a..b",
            "ñodo",
            "it's",
            "`id`",
            long.as_str(),
        ] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn shown_is_short_and_escaped() {
        let s = shown(&format!("a\nb{}", "x".repeat(10_000_000)));
        assert!(s.starts_with("a\\nb"), "{s}");
        assert!(s.len() < 100, "{s}");
        assert!(s.ends_with("(10000003 characters)"), "{s}");
    }

    #[test]
    fn safe_labels_are_valid_names() {
        for raw in [
            "$(touch x)",
            "My Server",
            "-a..b-",
            "",
            "ñ",
            &"x".repeat(500),
        ] {
            let l = safe_label(raw, MAX_NAME);
            assert_eq!(name_problem(&l), None, "{raw:?} → {l:?}");
        }
        assert_eq!(safe_label("$(touch x)", MAX_NAME), "touch-x");
        assert_eq!(safe_label("web-1", MAX_NAME), "web-1");
    }

    #[test]
    fn ids() {
        assert_eq!(deploy_id_problem("deploy id", "3f9a0c1b2d4e"), None);
        assert!(deploy_id_problem("deploy id", &"a".repeat(65)).is_some());
        assert!(deploy_id_problem("deploy id", "a b").is_some());
        assert_eq!(provider_id_problem("i-0abc123"), None);
        assert_eq!(
            provider_id_problem("7b6c1a1e-8e6f-4c1a-9f3e-2d5b7c8a9e0f"),
            None
        );
        assert!(provider_id_problem(&"1".repeat(1_000_000)).is_some());
        assert!(provider_id_problem("1\n2").is_some());
        for good in ["default", "prod", "team-b", "me@example.org", "a.b_c+d"] {
            assert_eq!(account_problem(good), None, "{good}");
        }
        for bad in ["", "a b", "a/b", "[x]", "a\nb", &"a".repeat(65)] {
            assert!(account_problem(bad).is_some(), "{bad:?}");
        }
    }
}
