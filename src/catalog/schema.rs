//! The catalog's data model: the serde structs that every catalog TOML file deserializes into.
//!
//! This file is compiled twice: into the binary, and into `build.rs` through `#[path]`, so the
//! build validates the embedded catalog with exactly the code the binary runs. It must therefore
//! depend on nothing but `serde`, `toml` and `std`.
//!
//! Every struct denies unknown keys. Most fields carry `#[serde(default)]` so that an overlay file
//! (`--catalog DIR`) may patch a single field of an existing entity; whether a *merged* entity is
//! complete is checked by `validate.rs`, which knows the required keys of each entity.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How an unknown word is reported: `arch 'sparc' is not valid — use one of: …` (`Invalid`) or
/// `unknown state 'stoped' — did you mean 'stopped'?` (`Unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordError {
    Invalid,
    Unknown,
}

/// The message for a word that is none of `allowed`: the closest one when there is one, else
/// every allowed word.
pub fn word_error(what: &str, word: &str, allowed: &[&str], style: WordError) -> String {
    let close = super::diagnostic::closest(word, allowed.iter().copied());
    match (style, close) {
        (WordError::Invalid, Some(s)) => {
            format!("{what} '{word}' is not valid — did you mean '{s}'?")
        }
        (WordError::Invalid, None) => format!(
            "{what} '{word}' is not valid — use one of: {}",
            allowed.join(", ")
        ),
        (WordError::Unknown, Some(s)) => format!("unknown {what} '{word}' — did you mean '{s}'?"),
        (WordError::Unknown, None) => format!(
            "unknown {what} '{word}' — expected one of: {}",
            allowed.join(", ")
        ),
    }
}

/// A closed set of catalog words as a Rust enum: each variant serializes (and reads back) as
/// its word, the JSON Schema lists the words, and an unknown word is refused by the
/// deserializer itself, at its own key, with the allowed words (`what` names the key's meaning).
macro_rules! word_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal, $style:ident) {
            $( $(#[$vmeta:meta])* $var:ident = $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $var, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// Every word, in declaration order.
            pub const WORDS: &'static [&'static str] = &[$($word),+];

            /// The word as the catalog writes it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $word,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            /// Exactly one of the words (case matters, as in the catalog).
            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| word_error($what, s, $name::WORDS, WordError::$style))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = String::deserialize(d)?;
                word.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

word_enum! {
    /// `[provider] kind`: what the provider sells.
    pub enum ProviderKind ("kind", Invalid) {
        /// Virtual machines.
        Cloud = "cloud",
        /// Dedicated physical servers.
        BareMetal = "bare-metal",
        /// Both.
        Mixed = "mixed",
    }
}

word_enum! {
    /// `[provider] ssh_key`: what `--ssh-key` means at the provider.
    #[derive(Default)]
    pub enum SshKeyMode ("ssh_key mode", Invalid) {
        /// A key stored at the provider, named by its id (registered once by capsule).
        #[default]
        KeyId = "key-id",
        /// The public key text itself, sent with each create.
        PublicKey = "public-key",
        /// None per server: the provider puts its account's keys on every server.
        None = "none",
    }
}

word_enum! {
    /// `[provider.status] state`: where the provider is in its life.
    pub enum LifecycleState ("lifecycle state", Invalid) {
        /// In service.
        Active = "active",
        /// Still works, going away: a warning names `date` and `reason`.
        Deprecated = "deprecated",
        /// Gone: creates are refused, with `reason` and `suggestion`.
        Retired = "retired",
    }
}

impl Lifecycle {
    /// The state's word (`active`); empty when none is declared (which validation refuses).
    pub fn state_name(&self) -> &'static str {
        self.state.map_or("", LifecycleState::as_str)
    }
}

word_enum! {
    /// A CPU architecture, as the catalog spells it.
    pub enum Arch ("arch", Invalid) {
        /// 64-bit Intel and AMD.
        X86_64 = "x86_64",
        /// 64-bit ARM.
        Arm64 = "arm64",
    }
}

word_enum! {
    /// A common node state: what `[api.status]` maps the provider's raw statuses to, and what
    /// steps wait for (`wait_for`) or skip on (`unless`).
    pub enum CommonState ("state", Unknown) {
        /// Being created or changing state.
        Pending = "pending",
        /// Up.
        Running = "running",
        /// Powered off (usually still billed).
        Stopped = "stopped",
        /// Being deleted.
        Deleting = "deleting",
        /// Gone.
        Deleted = "deleted",
        /// Failed at the provider.
        Error = "error",
    }
}

/// One catalog file as written on disk. A file may hold any subset of these sections; files in a
/// folder `catalog/<provider>/` belong to that provider.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileDoc {
    /// `[provider]`: who the provider is and how it bills (one per provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderMeta>,
    /// `[[regions]]`: the places the provider runs servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<Region>,
    /// `[[credentials]]`: the fields of a provider account (token, keys, account region).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialField>,
    /// `[[templates]]`: the server shapes offered, with their prices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<Template>,
    /// `[api]`: how the generic HTTP driver talks to the provider's API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// `[[rates]]`: exchange rates to USD (usually in the catalog's top-level `rates.toml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rates: Vec<Rate>,
    /// `[bootstrap]`: the default user data put on new nodes (usually in the top-level `bootstrap.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<Bootstrap>,
}

/// `[provider]`: who the provider is and how it bills.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderMeta {
    /// The provider id used on the command line (`-p ID`); must equal the folder name.
    #[serde(default)]
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// `cloud`, `bare-metal` or `mixed` (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ProviderKind>,
    /// The provider's web site.
    #[serde(default)]
    pub homepage: String,
    /// ISO 4217 code of the provider's billing currency (`USD`, `EUR`).
    #[serde(default)]
    pub currency: String,
    /// `YYYY-MM-DD` of the price list the templates carry.
    #[serde(default)]
    pub prices_as_of: String,
    /// Where the template prices come from (a pricing page URL, an API call).
    #[serde(default)]
    pub prices_source: String,
    /// `[provider.status]`: whether the provider is active, deprecated or retired.
    #[serde(default)]
    pub status: Lifecycle,
    /// Region slug used when a deploy names none.
    #[serde(default)]
    pub default_region: String,
    /// Hours after which a month is billed at the monthly price (672 for a 28-day cap, 730 …),
    /// or `"none"`: every hour is billed, with no monthly ceiling (no monthly cap).
    /// 0 = not declared (a month costs at most the monthly price).
    #[serde(default, with = "cap_hours")]
    #[schemars(schema_with = "cap_hours_schema")]
    pub monthly_cap_hours: f64,
    /// Allowed range of `price_monthly / price_hourly`; defaults to 600..745.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_ratio: Option<[f64; 2]>,
    /// Largest user-data payload the provider accepts, in bytes (before any base64).
    #[serde(default)]
    pub user_data_max_bytes: u64,
    /// What `--ssh-key` means here: `key-id` (a key stored at the provider), `public-key` (the
    /// key text itself) or `none` (the provider injects account keys itself); default `key-id`.
    #[serde(default)]
    pub ssh_key: SshKeyMode,
    /// The login user of the provider's default image (`capsule openmesh ssh`); default `root`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ssh_user: String,
    /// Default OS image for deploys that name none.
    #[serde(default)]
    pub default_image: String,
    /// Whether a powered-off node is still billed (most providers: yes).
    #[serde(default = "default_true")]
    pub billed_when_stopped: bool,
    /// `[provider.xnode]`: how an xNode (`deploy --xnode`) is put on this provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xnode: Option<ProviderXnode>,
    /// `[[provider.credential_sources]]`: files where the provider's own tools keep credentials,
    /// read when capsule has none of its own (in this order, the first value of a field wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_sources: Vec<CredentialSource>,
}

/// `[[provider.credential_sources]]`: a config file of the provider's official CLI or SDK that
/// holds credentials, and where each catalog credential field is in it.
///
/// A key path is a list of keys joined by `/`: `SECTION/KEY` in an ini file, nested mapping keys
/// in YAML and JSON. `{profile}` in a key stands for the profile (context, user) in use. The
/// default account uses the profile named by `profile_env`, else by `profile_key` in the file,
/// else `default_profile`; an account named with `--account NAME` uses the profile `NAME`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSource {
    /// What the file is, for people (`AWS shared credentials file`).
    #[serde(default)]
    pub name: String,
    /// How the file is written; by default guessed from its extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<SourceFormat>,
    /// Where the file is, the first that exists wins: `~` is the home directory, `${VAR}` an
    /// environment variable (an entry whose variable is unset is skipped).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Environment variables naming the file; the first one set is used instead of `paths`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_env: Vec<String>,
    /// What the tool calls a profile (`profile`, `context`, `user`), for messages.
    #[serde(default)]
    pub profile_word: String,
    /// Environment variables naming the default account's profile (the first non-empty wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile_env: Vec<String>,
    /// Key path of the value, in the file, that names its active profile.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile_key: String,
    /// The profile used when nothing names one; empty: there is none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_profile: String,
    /// Key path that exists when a profile does (`{profile}`, `profiles/{profile}`); a profile
    /// other than `default_profile` is used only when it exists. Empty: the file holds one
    /// profile, used by the default account only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile_path: String,
    /// Credential field → key paths of its value in a profile, the first present wins.
    #[serde(default)]
    pub fields: BTreeMap<String, Vec<String>>,
    /// The same for `default_profile`, where its values live elsewhere (empty: `fields`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub default_fields: BTreeMap<String, Vec<String>>,
}

/// The syntax of a credential source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Ini,
    Yaml,
    Json,
}

impl SourceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Ini => "ini",
            SourceFormat::Yaml => "YAML",
            SourceFormat::Json => "JSON",
        }
    }
}

/// `[provider.xnode]`: the provider's side of an xNode install.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderXnode {
    /// The image the installer runs over (Ubuntu 24.04 x86_64); empty = `default_image`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Template feature → image, for providers whose image name depends on the product kind
    /// (the first feature of the template found here wins over `image`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub image_by_feature: BTreeMap<String, String>,
    /// The operation that reinstalls a node in place with new user data (`openmesh reinstall`);
    /// empty = the provider has none (delete and deploy instead).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reinstall: String,
    /// Why there is no reinstall here, said when one is asked for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub no_reinstall_reason: String,
}

fn default_true() -> bool {
    true
}

impl Default for ProviderMeta {
    fn default() -> Self {
        ProviderMeta {
            id: String::new(),
            name: String::new(),
            kind: None,
            homepage: String::new(),
            currency: String::new(),
            prices_as_of: String::new(),
            prices_source: String::new(),
            status: Lifecycle::default(),
            default_region: String::new(),
            monthly_cap_hours: 0.0,
            monthly_ratio: None,
            user_data_max_bytes: 0,
            ssh_key: SshKeyMode::default(),
            ssh_user: String::new(),
            default_image: String::new(),
            billed_when_stopped: true,
            xnode: None,
            credential_sources: Vec::new(),
        }
    }
}

/// Lifecycle of a provider: `active`, `deprecated` or `retired`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// `active`, `deprecated` or `retired` (a retired provider refuses creates); required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<LifecycleState>,
    /// `YYYY-MM-DD` the state took effect.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub date: String,
    /// Why, in one sentence, shown with the warning or refusal.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What to use instead, shown when a retired provider refuses a create.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suggestion: String,
}

/// `[[regions]]`: a place a provider runs servers.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// User-facing slug (`atlanta`, `nyc3`, `par1`).
    #[serde(default)]
    pub id: String,
    /// The provider's own identifier where it differs (`ATL2`, `fr-par-1`); empty = same as `id`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_id: String,
    /// City or area shown to users.
    #[serde(default)]
    pub city: String,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    pub country: String,
    /// The continent the region is on (`north-america`, `europe`, …; required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continent: Option<Continent>,
}

word_enum! {
    /// `[[regions]] continent`: where a region is, for `--continent`.
    pub enum Continent ("continent", Invalid) {
        /// North and Central America.
        NorthAmerica = "north-america",
        /// South America.
        SouthAmerica = "south-america",
        /// Europe.
        Europe = "europe",
        /// Asia.
        Asia = "asia",
        /// Oceania.
        Oceania = "oceania",
        /// Africa.
        Africa = "africa",
    }
}

impl Region {
    /// The continent's word (`europe`); empty when none is declared (which validation refuses).
    pub fn continent_name(&self) -> &'static str {
        self.continent.map_or("", Continent::as_str)
    }
}

/// `[[credentials]]`: one field of a provider account.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialField {
    /// Field name as used in `credentials.toml` and as the flag `--<name>` (with `_` → `-`).
    #[serde(default)]
    pub name: String,
    /// One line shown by `provider configure` and in errors.
    #[serde(default)]
    pub description: String,
    /// Secrets are redacted everywhere and never reach a template.
    #[serde(default)]
    pub secret: bool,
    /// Whether the account cannot work without this field.
    #[serde(default)]
    pub required: bool,
    /// Environment variables read, first match wins (the provider's official CLI/Terraform names).
    #[serde(default)]
    pub env: Vec<String>,
    /// `true` for the field that `--api-key` fills.
    #[serde(default)]
    pub api_key: bool,
    /// `true` for the account's own region (a region id or the provider's name for it): a
    /// deploy that names no region goes there, and calls scoped to one region use it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub region: bool,
}

/// `[[templates]]`: a server shape at a price.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Globally unique id (`hive-large`).
    #[serde(default)]
    pub id: String,
    /// Owning provider; defaults to the folder the file sits in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
    /// The provider's plan id (`s-4vcpu-8gb`, `c5.xlarge`, `GP1-XS`).
    #[serde(default)]
    pub plan: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Number of vCPUs (or cores on bare metal).
    #[serde(default)]
    pub cpu: u32,
    /// Memory in GB.
    #[serde(default)]
    pub memory_gb: f64,
    /// Local disk in GB.
    #[serde(default)]
    pub storage_gb: f64,
    /// Included monthly transfer in TB (0 = not stated).
    #[serde(default)]
    pub bandwidth_tb: f64,
    /// Transfer is not metered: `bandwidth_tb` is then only the line rate × 730 h, an upper
    /// bound, and listings say "unmetered".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bandwidth_unmetered: bool,
    /// Native currency of the provider.
    #[serde(default)]
    pub price_hourly: f64,
    /// Monthly price in the provider's currency.
    #[serde(default)]
    pub price_monthly: f64,
    /// Region slug → hourly price where it differs from `price_hourly`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub region_prices: BTreeMap<String, f64>,
    /// The provider's `monthly_cap_hours` for this template only (a plan class billed by
    /// another rule, e.g. GPU plans billed per hour with no cap: `"none"`).
    #[serde(
        default,
        with = "cap_hours_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "cap_hours_schema")]
    pub monthly_cap_hours: Option<f64>,
    /// `gpu = { count, model, vram_gb }` for GPU plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
    /// `x86_64` or `arm64` (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Arch>,
    /// Ids of the provider's `[[regions]]` where the template is sold (at least one).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Feature words shown in listings (`gpu` marks a GPU plan).
    #[serde(default)]
    pub features: Vec<String>,
    /// Which API variant creates this template (e.g. a bare-metal plan uses other endpoints than
    /// a VM): names a key of `api.variants`; empty = the provider's main operations.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_variant: String,
}

impl Template {
    /// The architecture's word (`x86_64`); empty when the template declares none (which
    /// validation refuses).
    pub fn arch_name(&self) -> &'static str {
        self.arch.map_or("", Arch::as_str)
    }
}

/// A template's GPU.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// Canonical model name, e.g. `NVIDIA RTX 4090`, `NVIDIA H100`, `NVIDIA Tesla P100`.
    #[serde(default)]
    pub model: String,
    /// Number of GPUs.
    #[serde(default)]
    pub count: u32,
    /// Memory per GPU in GB.
    #[serde(default)]
    pub vram_gb: f64,
}

/// `[[rates]]`: a dated exchange rate to USD.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// ISO 4217 code (`EUR`).
    #[serde(default)]
    pub currency: String,
    /// USD per one unit of `currency`.
    #[serde(default)]
    pub usd: f64,
    /// `YYYY-MM-DD` of the rate.
    #[serde(default)]
    pub as_of: String,
    /// Where the rate comes from.
    #[serde(default)]
    pub source: String,
}

/// `[bootstrap]`: the default xNode user-data, a minijinja template.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    /// The user-data template (minijinja) sent with a deploy that gives no `--user-data`.
    #[serde(default)]
    pub user_data: String,
    /// The bootstrap turns password logins off: a deploy with it and no SSH key is refused
    /// (unless `--no-ssh-key`), as the node would be unreachable.
    #[serde(default)]
    pub disables_password_login: bool,
    /// `[bootstrap.xnode]`: the XnodeOS install (`deploy --xnode`), next to the generic one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xnode: Option<XnodeBootstrap>,
}

/// `[bootstrap.xnode]`: the user data that installs XnodeOS, the values it takes and the rules
/// they must match, which templates can run it, and how to tell that a node is ready.
///
/// Every user value is checked against its pattern and never escaped: the template is plain
/// text, and a value that does not match is refused.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XnodeBootstrap {
    /// Installer release installed when `--xnode-version` is not given (`v1.0.0`).
    #[serde(default)]
    pub version: String,
    /// Installer script URL, a template over `version` (pinned to the same tag).
    #[serde(default)]
    pub installer_url: String,
    /// The user data, a minijinja template rendered as plain text over `owner`, `domain`,
    /// `email`, `version`, `installer_url` (and `name`, `provider`, `region`, `template`).
    #[serde(default)]
    pub user_data: String,
    /// How the owner is accepted and written.
    #[serde(default)]
    pub owner: XnodeOwner,
    /// Patterns (Rust `regex` syntax, anchored) each value must match, with the rule shown when
    /// it does not: keys `owner` (after normalisation), `domain`, `email`, `version`.
    #[serde(default)]
    pub rules: BTreeMap<String, XnodeRule>,
    /// Architectures the installer exists for (`x86_64`).
    #[serde(default)]
    pub arch: Vec<Arch>,
    /// Smallest memory a template may have, in GB.
    #[serde(default)]
    pub min_memory_gb: f64,
    /// Where `min_memory_gb` comes from, shown when a template is refused.
    #[serde(default)]
    pub min_memory_source: String,
    /// What the install does to the disks, said once per deploy.
    #[serde(default)]
    pub disk_warning: String,
    /// The next step printed after a deploy (a template over `ip`, `domain`, `owner`).
    #[serde(default)]
    pub next_step: String,
    /// The readiness ladder.
    #[serde(default)]
    pub probe: XnodeProbe,
}

/// `[bootstrap.xnode.owner]`: an owner address as typed → as the installer wants it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XnodeOwner {
    /// Prefixes accepted on input and stripped (`0x`, `eth:`), compared case-insensitively.
    #[serde(default)]
    pub accept_prefixes: Vec<String>,
    /// Prefix written before the lower-cased rest (`eth:`).
    #[serde(default)]
    pub prefix: String,
}

/// One validation rule.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XnodeRule {
    /// Regular expression the whole value must match.
    #[serde(default)]
    pub pattern: String,
    /// The rule in words (`an Ethereum address: 0x or eth: and 40 hex digits`).
    #[serde(default)]
    pub rule: String,
    /// Longest accepted value in bytes (0 = no limit beyond the pattern).
    #[serde(default)]
    pub max_len: usize,
}

/// `[bootstrap.xnode.probe]`: what an xNode shows on the network as it comes up.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XnodeProbe {
    /// The port that answers while the pre-install OS runs (SSH); closed once the installer runs.
    #[serde(default)]
    pub ssh_port: u16,
    /// The HTTPS port of the installed node.
    #[serde(default)]
    pub https_port: u16,
    /// SNI and `Host` of the management vhost (self-signed: not verified).
    #[serde(default)]
    pub manager_host: String,
    /// Path asked for.
    #[serde(default)]
    pub path: String,
    /// Redirect location prefix of the login gateway (`/xnode-auth`): a redirect there means
    /// the manager is protected; a direct 2xx means it is not.
    #[serde(default)]
    pub auth_location: String,
    /// Seconds between probes.
    #[serde(default)]
    pub interval_seconds: f64,
    /// Seconds for one connection, handshake or HTTP exchange.
    #[serde(default)]
    pub timeout_seconds: f64,
}

// ---------------------------------------------------------------------------------------------
// The API description: everything the generic driver needs to talk to one provider.
// ---------------------------------------------------------------------------------------------

/// `[api.keys]`: the provider's stored SSH keys. `list_keys` lists them (its `node` pointer
/// reaches the list), `create_key` stores one from the variables `key_name` and `public_key`
/// (its `node` pointer reaches the stored key). A local key is matched against the listed ones
/// by its key material (type and base64 blob, what a fingerprint hashes), so it is registered
/// once and reused.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyFields {
    /// Pointer to the key's id in a listed or created key: what `create` takes.
    #[serde(default)]
    pub id: String,
    /// Pointer to the OpenSSH public key text in a listed key.
    #[serde(default)]
    pub public_key: String,
}

/// `[api]`: how to reach and speak to a provider's API.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// Base URL, a minijinja template (`https://ec2.{{ region }}.amazonaws.com`); `region` is the
    /// region's API id. The endpoint override replaces its scheme, host and port; an override
    /// with a path (`http://127.0.0.1:4000/v1`) replaces the base URL's path as well.
    #[serde(default)]
    pub base_url: String,
    /// `true` when the API is per region (URL or path carry the region): listing visits every
    /// region, and a node is addressed as `REGION/ID`.
    #[serde(default)]
    pub regional: bool,
    /// Extra environment variables that override the endpoint (after `CAPSULE_ENDPOINT_<ID>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint_env: Vec<String>,
    /// Response format: `json` (default) or `xml`.
    #[serde(default)]
    pub format: Format,
    /// XML element names whose children are always a list (`item`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xml_list_elements: Vec<String>,
    /// Names of answer fields that hold a secret (a generated root password): wherever such a
    /// field appears in an answer, its value is scrubbed from logs, errors and state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_fields: Vec<String>,
    /// Headers sent on every request (values are templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `[api.auth]`: how requests are authenticated.
    #[serde(default)]
    pub auth: Auth,
    /// `[api.errors]`: how error answers are read.
    #[serde(default)]
    pub errors: ErrorShape,
    /// Common state (`pending`, `running`, `stopped`, `deleting`, `deleted`, `error`) → the
    /// provider's raw status values that mean it (`running = ["active"]`). Matching ignores
    /// case, `-` and `_`.
    #[serde(default)]
    #[schemars(schema_with = "status_map_schema")]
    pub status: BTreeMap<CommonState, Vec<String>>,
    /// How to read a node out of a node object.
    #[serde(default)]
    pub node: NodeFields,
    /// How capsule marks the nodes it creates.
    #[serde(default)]
    pub tagging: Tagging,
    /// The operations; keys: `create`, `list`, `get`, `start`, `stop`, `delete`, `verify`, and any
    /// helper operation named by a step (`poweron`, `action`, …).
    #[serde(default)]
    pub operations: BTreeMap<String, Operation>,
    /// `[api.operation_defaults]`: operation keys shared by the operations named in `apply_to`
    /// (`apply_to = ["start", "stop"]`, `expect = [201]`, `action = { … }`), so a block is
    /// written once. An operation's own keys win; tables (`query`, `headers`, `action`) merge
    /// key by key. Applied after overlays are merged and before the catalog is checked, so an
    /// overlay may patch the defaults or an operation alike.
    #[serde(default, skip_serializing)]
    pub operation_defaults: Option<OperationDefaults>,
    /// Alternative operation sets chosen by a template's `api_variant`; each entry overrides the
    /// named operations only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, BTreeMap<String, Operation>>,
    /// Retry and pacing hints.
    #[serde(default)]
    pub limits: Limits,
    /// How to read the provider's live price list (`catalog refresh`): the items come from the
    /// operation `prices` (paged like `list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<PriceFields>,
    /// How a local public key is registered with the provider once and found again
    /// (`list_keys` / `create_key` operations); absent: keys cannot be registered here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeyFields>,
    /// Templates whose plan is not a live product id (not all digits) are resolved at deploy
    /// time to a product of this listing that is in stock in the region and fits the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_lookup: Option<PlanLookup>,
}

/// `api.format`: how answers are written.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    /// Converted to JSON (`xml_list_elements` are always lists).
    Xml,
}

/// An operation's `encoding`: how its body is sent.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The rendered body, checked to be JSON, sent as `application/json`.
    #[default]
    Json,
    /// The rendered JSON flattened AWS-Query style and form-urlencoded.
    Form,
    /// The rendered template sent as it is, with `content_type`.
    Text,
}

/// `[api.plan_lookup]`: how to find the live product that fits a template in one region.
/// Pointers are relative to one item of the listing; numbers are read from the first number in
/// the text (`"64GB"` → 64, `"16 Cores"` → 16).
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanLookup {
    /// The listing operations, read in order and concatenated (paged like `list`).
    #[serde(default)]
    pub operations: Vec<String>,
    /// The product id sent as the plan.
    #[serde(default)]
    pub id: String,
    /// Pointer to the product's display name.
    #[serde(default)]
    pub name: String,
    /// The provider's region id of the item (compared with the region's `api_id`).
    #[serde(default)]
    pub region: String,
    /// Stock word, and the words that mean "can be ordered now".
    #[serde(default)]
    pub stock: String,
    /// The values of `stock` that mean "can be ordered now".
    #[serde(default)]
    pub in_stock: Vec<String>,
    /// Cores, memory in GB (a unit MB/TB in the text is converted), GPU description.
    #[serde(default)]
    pub cpu: String,
    /// Pointer to the memory (GB).
    #[serde(default)]
    pub memory_gb: String,
    /// Pointer to the GPU description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gpu: String,
    /// Hourly price, plus a per-region extra where the provider adds one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hourly: String,
    /// Pointer to the per-region extra hourly price.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hourly_extra: String,
    /// The default image by product kind: pointer → value → image (`{ "/is_vps" = { "true" =
    /// "Ubuntu 24.04 (VPS)" } }`); used only when the deploy names no image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub image_by: BTreeMap<String, BTreeMap<String, String>>,
}

/// `[api.prices]`: field locations inside one item of the price list.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceFields {
    /// The plan id, matched against templates' `plan`.
    #[serde(default)]
    pub plan: Field,
    /// Hourly and monthly price in the provider's currency.
    #[serde(default)]
    pub hourly: Field,
    /// Monthly price in the provider's currency.
    #[serde(default)]
    pub monthly: Field,
    /// The listing operations that make up the price list, read in order and concatenated
    /// (`["prices", "prices_metal"]`); empty = `["prices"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
    /// Pointer to the list of provider region ids where the plan is sold (`/regions`,
    /// `/locations`); empty = the price list says nothing about regions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regions: String,
    /// Pointer to a boolean: `false` means the plan is sold nowhere right now.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub available: String,
    /// Per-region prices inside the item (Linode `region_prices`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_prices: Option<RegionPriceFields>,
    /// The plan's shape, for `catalog refresh --all-plans` (plans the catalog has no template
    /// for): pointers for `cpu`, `memory_gb`, `storage_gb`, `bandwidth_tb`…
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub specs: BTreeMap<String, Field>,
    /// …and what each read value is divided by to reach the unit (`memory_gb = 1024` for MB).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spec_divisors: BTreeMap<String, f64>,
    /// Operation name → the API variant that creates its plans (`prices_metal = "bare-metal"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, String>,
    /// Read the list once per region (a zone-scoped API): a plan is sold where it is listed.
    #[serde(default)]
    pub per_region: bool,
    /// The list is a map keyed by plan id (`{"servers": {"DEV1-S": {…}}}`): each entry is an
    /// item, its key readable at `/_key`.
    #[serde(default)]
    pub keyed: bool,
    /// Per-region stock, read with `per_region` (a keyed map like the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityFields>,
}

/// `availability = { operation = "availability", value = "/availability", sold = [...] }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityFields {
    /// The operation that returns the per-region stock.
    pub operation: String,
    /// Pointer inside one keyed entry, and the values that mean "can be ordered".
    pub value: String,
    /// The values of `value` that mean "can be ordered".
    pub sold: Vec<String>,
}

/// `region_prices = { list = "/region_prices", region = "/id", hourly = "/hourly" }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionPriceFields {
    /// Pointer to the list of per-region entries.
    pub list: String,
    /// Pointers inside one entry: the provider's region id and the hourly price.
    pub region: String,
    /// Pointer to the hourly price inside one entry.
    pub hourly: String,
}

/// `[api.auth]`: how requests are authenticated, by `scheme`; each scheme has its own keys.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "scheme", rename_all = "lowercase", deny_unknown_fields)]
pub enum Auth {
    /// No scheme declared (a provider without `[api.auth]`); validation asks for one.
    #[default]
    #[serde(rename = "none")]
    Missing,
    /// `Authorization: Bearer <field>`.
    Bearer {
        /// Credential field holding the token.
        field: String,
    },
    /// `<header>: <field>`.
    Header {
        /// Credential field holding the key.
        field: String,
        /// The header that carries it (`X-Auth-Token`).
        header: String,
    },
    /// AWS Signature Version 4.
    Sigv4 {
        /// The service in the credential scope (`ec2`).
        service: String,
        /// Credential fields for the access key id, the secret and the optional session token.
        access_key_field: String,
        /// Credential field holding the secret access key.
        secret_key_field: String,
        /// Credential field holding the optional session token.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        session_token_field: String,
    },
}

impl Auth {
    /// The scheme's name as written in the catalog.
    pub fn scheme(&self) -> &'static str {
        match self {
            Auth::Missing => "none",
            Auth::Bearer { .. } => "bearer",
            Auth::Header { .. } => "header",
            Auth::Sigv4 { .. } => "sigv4",
        }
    }

    /// The credential fields the scheme reads, by key (`field`, `access_key_field`, …); the
    /// optional session token field only when it is set.
    pub fn credential_fields(&self) -> Vec<(&'static str, &str)> {
        match self {
            Auth::Missing => vec![],
            Auth::Bearer { field } | Auth::Header { field, .. } => vec![("field", field)],
            Auth::Sigv4 {
                access_key_field,
                secret_key_field,
                session_token_field,
                ..
            } => {
                let mut v = vec![
                    ("access_key_field", access_key_field.as_str()),
                    ("secret_key_field", secret_key_field.as_str()),
                ];
                if !session_token_field.is_empty() {
                    v.push(("session_token_field", session_token_field.as_str()));
                }
                v
            }
        }
    }
}

/// `[api.errors]`: where an error response keeps its message and code.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorShape {
    /// Pointers tried in order for the human message.
    #[serde(default)]
    pub message: Vec<String>,
    /// Pointers tried in order for a machine code.
    #[serde(default)]
    pub code: Vec<String>,
    /// Error codes that mean "this node does not exist" whatever the HTTP status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_found_codes: Vec<String>,
    /// Error codes that mean "throttled, retry later" whatever the HTTP status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_codes: Vec<String>,
    /// `[[api.errors.refusals]]`: the answers by which the provider documents that it refused a
    /// create for want of capacity, quota or the plan in that place (smart deploy fails over).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<RefusalRule>,
}

/// Why a provider refused a create, as far as failing over cares.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Refusal {
    /// No capacity for the plan in that region now: another region may have it.
    Capacity,
    /// The account's quota or limit is used up: no other region of this provider helps.
    Quota,
    /// The plan is not offered in that region (any more).
    Unavailable,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Capacity => "capacity",
            Refusal::Quota => "quota",
            Refusal::Unavailable => "unavailable",
        }
    }
}

/// One `[[api.errors.refusals]]` rule: an error answer matches when its HTTP status is among
/// `status` (any status when empty) and its code (`[api.errors] code`) is among `codes` or its
/// message contains one of `message_contains` (both compared case-insensitively).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusalRule {
    /// What the refusal means: `capacity`, `quota` or `unavailable`.
    pub reason: Refusal,
    /// Error codes (from `[api.errors] code`) that are this refusal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
    /// HTTP statuses the rule applies to; empty = any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<u16>,
    /// Texts whose presence in the error message makes it this refusal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_contains: Vec<String>,
}

impl RefusalRule {
    /// Whether an error answer (HTTP status, code, message) is this refusal.
    pub fn matches(&self, status: u16, code: Option<&str>, message: &str) -> bool {
        if !self.status.is_empty() && !self.status.contains(&status) {
            return false;
        }
        let by_code = code.is_some_and(|c| self.codes.iter().any(|x| x.eq_ignore_ascii_case(c)));
        let text = message.to_lowercase();
        by_code
            || self
                .message_contains
                .iter()
                .any(|m| !m.is_empty() && text.contains(&m.to_lowercase()))
    }
}

impl ErrorShape {
    /// The refusal an error answer is, by the first matching rule.
    pub fn refusal(&self, status: u16, code: Option<&str>, message: &str) -> Option<Refusal> {
        self.refusals
            .iter()
            .find(|r| r.matches(status, code, message))
            .map(|r| r.reason)
    }
}

/// `[api.node]`: field locations inside one node object (pointers relative to the node).
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeFields {
    /// The node id.
    #[serde(default)]
    pub id: Field,
    /// The node name (label, hostname).
    #[serde(default)]
    pub name: Field,
    /// The raw status, mapped through `[api.status]`.
    #[serde(default)]
    pub status: Field,
    /// The public IPv4 address.
    #[serde(default)]
    pub ipv4: Field,
    /// The creation time (RFC 3339).
    #[serde(default)]
    pub created_at: Field,
    /// The plan (size, type) id.
    #[serde(default)]
    pub plan: Field,
    /// The provider's region id.
    #[serde(default)]
    pub region: Field,
    /// Where the deploy id can be read back (a tag list, a label, a token).
    #[serde(default)]
    pub deploy_id: Field,
}

/// A value to read from a JSON/XML tree: a plain pointer string, or a pick from a list.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Field {
    /// `/droplet/status`. Empty = not available.
    Pointer(String),
    /// The first element of `list` whose sub-fields equal `where`, then `value` inside it.
    Pick(Pick),
    /// Alternatives in order: the first one that yields a value (`[{ list = "", where = …,
    /// value = "/power" }, "/status"]` reads `/power` when the filter holds, else `/status`).
    First(Vec<Field>),
}

impl Default for Field {
    fn default() -> Self {
        Field::Pointer(String::new())
    }
}

/// `{ list = "/networks/v4", where = { "/type" = "public" }, value = "/ip_address" }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pick {
    /// Pointer to the list to search.
    pub list: String,
    /// Pointer (relative to the element) → required value (compared as text; `"true"` matches a
    /// JSON `true`; a value starting with `!` means "not equal"; `~prefix` means "starts with").
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, String>,
    /// Pointer (relative to the matching element) to the value.
    #[serde(default)]
    pub value: String,
}

/// `[api.tagging]`: how the deploy id is attached and found again.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tagging {
    /// The tag value template put on every node capsule creates; the default is
    /// `capsule-{{ deploy_id }}`. Available to templates as `tag`.
    #[serde(default)]
    pub tag: String,
    /// The tag marking "created by capsule" (all capsule nodes share it); available as
    /// `managed_tag`. Default `capsule`.
    #[serde(default)]
    pub managed_tag: String,
    /// `true` when the list operation filters by tag on the server; otherwise capsule filters
    /// the listed nodes itself by reading `node.deploy_id`.
    #[serde(default)]
    pub server_side_filter: bool,
}

/// The deploy tag when `tagging.tag` is not set.
pub const DEFAULT_TAG: &str = "capsule-{{ deploy_id }}";

impl Tagging {
    /// The tag format as its literal text around the deploy id: `("capsule-", "")` for the
    /// default. The format must hold `{{ deploy_id }}` exactly once and nothing else templated,
    /// so that a tag read back from a node gives its deploy id again (resume and sync depend on
    /// it); the error says what is wrong.
    pub fn parts(&self) -> Result<(&str, &str), String> {
        let tpl = if self.tag.is_empty() {
            DEFAULT_TAG
        } else {
            self.tag.as_str()
        };
        let open = tpl
            .find("{{")
            .ok_or_else(|| format!("tag '{tpl}' must contain {{{{ deploy_id }}}}"))?;
        let close = tpl[open..]
            .find("}}")
            .map(|i| open + i)
            .ok_or_else(|| format!("tag '{tpl}' has an unclosed {{{{"))?;
        if tpl[open + 2..close].trim() != "deploy_id" {
            return Err(format!(
                "tag '{tpl}' may template only {{{{ deploy_id }}}}, with literal text around it"
            ));
        }
        let (prefix, suffix) = (&tpl[..open], &tpl[close + 2..]);
        if [prefix, suffix]
            .iter()
            .any(|s| s.contains("{{") || s.contains("{%") || s.contains("}}"))
        {
            return Err(format!(
                "tag '{tpl}' may template only one {{{{ deploy_id }}}}, with literal text around it"
            ));
        }
        if prefix.is_empty() && suffix.is_empty() {
            return Err(format!(
                "tag '{tpl}' needs literal text around {{{{ deploy_id }}}} (e.g. 'capsule-{{{{ deploy_id }}}}'), so capsule's tags can be told from others"
            ));
        }
        Ok((prefix, suffix))
    }

    /// THE deploy tag of a deploy id (`capsule-ab12`), used by the driver's create and lookups,
    /// the inventory, sync and resume alike. An invalid format (refused by catalog validation)
    /// falls back to the default.
    pub fn tag_for(&self, deploy_id: &str) -> String {
        let (prefix, suffix) = self.parts().unwrap_or(("capsule-", ""));
        format!("{prefix}{deploy_id}{suffix}")
    }

    /// The deploy id a tag carries under this format (`capsule-ab12` → `ab12`); `None` for a tag
    /// of another format.
    pub fn deploy_id_in<'t>(&self, tag: &'t str) -> Option<&'t str> {
        let (prefix, suffix) = self.parts().unwrap_or(("capsule-", ""));
        tag.trim()
            .strip_prefix(prefix)?
            .strip_suffix(suffix)
            .filter(|d| !d.is_empty())
    }
}

/// `[api.limits]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Seconds between status polls while waiting.
    #[serde(default)]
    pub poll_seconds: f64,
    /// Response header that says how many seconds until the rate-limit window resets, used
    /// when a 429 carries no `Retry-After`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reset_header: String,
    /// How long a new node may be missing from the API (a 404 while it is provisioned) before
    /// "not found" means deleted; until then it reads as pending.
    #[serde(default)]
    pub hidden_after_create_seconds: f64,
    /// Largest answer body the driver reads, in MB (default 8); a provider whose price list
    /// or listing pages are larger raises it. A larger body is an error, never read in full.
    #[serde(default)]
    pub max_body_mb: f64,
}

/// One HTTP call (plus the steps around it).
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`.
    #[serde(default)]
    pub method: String,
    /// Path template appended to the base URL (`/v2/droplets/{{ id }}`); every value is
    /// percent-encoded as a path segment.
    #[serde(default)]
    pub path: String,
    /// This operation's own base URL, when it is served by another endpoint than `api.base_url`
    /// (a global price list next to a regional API). Empty = `api.base_url`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_url: String,
    /// With `base_url`: the environment variables that override its endpoint, in order (after
    /// `CAPSULE_ENDPOINT_<ID>`, which overrides every operation). `api.endpoint_env` does not
    /// apply to an operation with its own base URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint_env: Vec<String>,
    /// sigv4: the service and region this operation is signed for, when they are not the API's
    /// (`{ service = "pricing", region = "us-east-1" }`). Empty parts keep the API's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<SignAs>,
    /// Query parameters (values are templates; an empty rendered value drops the parameter).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Extra headers for this operation (values are templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Body template. Every `{{ value }}` is JSON-encoded automatically, so the template is JSON
    /// with holes: `{"name": {{ name }}, "tags": {{ [managed_tag, tag] }}}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// `json` (default), `form` (the JSON body flattened AWS-Query style:
    /// `TagSpecification.1.Tag.1.Key=…`, form-urlencoded) or `text` (the rendered template sent
    /// as is with `content_type`).
    #[serde(default)]
    pub encoding: Encoding,
    /// `Content-Type` of a `text` body.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_type: String,
    /// Accepted HTTP statuses; empty = any 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<u16>,
    /// Pointer to the node object in the response (create, get), or to the node list (list).
    /// A `*` segment flattens arrays: `/reservationSet/item/*/instancesSet/item`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// List only: each item at `node` is a JSON document inside a string (`"PriceList":
    /// ["{\"product\": …}"]`), parsed again before it is read. An item that does not parse is
    /// an error, never a skipped item.
    #[serde(default)]
    pub items_are_json: bool,
    /// List only: pagination.
    #[serde(default)]
    pub paging: Paging,
    /// Operations run before this one (`stop` before `delete`), each with its own wait.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<Step>,
    /// Operations run after this one succeeded (`poweron` after `create`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Step>,
    /// Operations that can run only once the node is gone (the volumes a delete leaves behind,
    /// still billed). They are recorded as pending cleanups and run when the node no longer
    /// exists: by `--wait`, the next command on that provider, or `sync`. `each` reads the node
    /// as it was before the operation; `wait_for` and `unless` do not apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleanup: Vec<Step>,
    /// An async action object returned by this call, to poll until done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionPoll>,
}

/// `[api.operation_defaults]`: `apply_to` and any keys of an operation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub struct OperationDefaults {
    /// The operations (keys of `[api.operations]`) that take these keys.
    #[serde(default)]
    pub apply_to: Vec<String>,
    /// Operation keys (`method`, `expect`, `encoding`, `action`, …), checked as an operation.
    #[serde(flatten)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub keys: toml::Table,
}

/// The `[api]` table with `[api.operation_defaults]` written into the operations it names and
/// then removed. `Err` says what is wrong with the defaults (an operation `apply_to` names that
/// does not exist, a key no operation has).
pub fn expand_operation_defaults(api: &mut toml::Table) -> Result<(), String> {
    let Some(raw) = api.remove("operation_defaults") else {
        return Ok(());
    };
    let defaults: OperationDefaults = raw
        .try_into()
        .map_err(|e: toml::de::Error| format!("api.operation_defaults: {}", e.message().trim()))?;
    toml::Value::Table(defaults.keys.clone())
        .try_into::<Operation>()
        .map_err(|e| format!("api.operation_defaults: {}", e.message().trim()))?;
    let mut ops = match api.remove("operations") {
        Some(toml::Value::Table(t)) => t,
        Some(other) => {
            api.insert("operations".into(), other);
            return Ok(());
        }
        None => toml::Table::new(),
    };
    if defaults.apply_to.is_empty() {
        return Err(
            "api.operation_defaults has no `apply_to` — list the operations that take these keys"
                .to_string(),
        );
    }
    for name in &defaults.apply_to {
        let Some(toml::Value::Table(op)) = ops.get_mut(name) else {
            let known: Vec<&str> = ops.keys().map(String::as_str).collect();
            return Err(format!(
                "api.operation_defaults.apply_to names '{name}', which is not an operation of [api.operations] — use one of: {}",
                known.join(", ")
            ));
        };
        let mut merged = defaults.keys.clone();
        overlay_table(&mut merged, std::mem::take(op));
        *op = merged;
    }
    api.insert("operations".into(), toml::Value::Table(ops));
    Ok(())
}

/// `patch` over `base`: tables merge key by key, any other value replaces.
fn overlay_table(base: &mut toml::Table, patch: toml::Table) {
    for (k, v) in patch {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(p)) => overlay_table(b, p),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// `sign = { service = "pricing", region = "us-east-1" }` on an operation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignAs {
    /// The service to sign for (empty = the API's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    /// The region to sign for (empty = the request's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
}

/// A step before/after an operation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Name of the operation to run.
    #[serde(default)]
    pub operation: String,
    /// Common state to wait for after the step (`stopped`); absent = do not wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<CommonState>,
    /// Skip the step when the node is already in one of these common states.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unless: Vec<CommonState>,
    /// A failure of this step does not fail the operation.
    #[serde(default)]
    pub optional: bool,
    /// Extra template variables for the step (`{ power = "poweroff" }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Run the step once per element at this pointer in the node as the `get` operation returned
    /// it before the operation (`/server/volumes/*`), with the element as the variable `item`:
    /// how a delete cleans up the volumes and addresses a provider leaves behind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub each: String,
    /// A minijinja expression over the operation's variables: the step runs only when it is
    /// true (`xnode and not xnode_sg`). Empty = always.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub when: String,
    /// Variables read from the step's answer for the steps and the operation that follow
    /// (`{ xnode_sg = "/DescribeSecurityGroupsResponse/securityGroupInfo/item/0/groupId" }`); a
    /// pointer that finds nothing sets the variable to an empty string.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub save: BTreeMap<String, String>,
}

/// The async action objects to poll (`/action/id` → `GET /v2/actions/{{ action_id }}`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionPoll {
    /// Pointer to the action id in the operation's response, or a list of them: every id found
    /// is followed, in order (`["/action/id", "/next_actions/*/id"]`: an action and the ones
    /// queued after it; a `*` segment reaches every element of a list).
    #[serde(default, with = "one_or_many")]
    #[schemars(schema_with = "one_or_many_schema")]
    pub id: Vec<String>,
    /// Operation that fetches the action (available variable: `action_id`).
    #[serde(default)]
    pub operation: String,
    /// Pointer to the action's status in the fetch response.
    #[serde(default)]
    pub status: String,
    /// Status values that mean the action finished.
    #[serde(default)]
    pub done: Vec<String>,
    /// Status values that mean the action failed.
    #[serde(default)]
    pub failed: Vec<String>,
}

/// `paging = { style = "…", … }` on a list operation: how the next page is asked for. Each
/// style has its own keys; a key of another style, or a style's required key left out, is an
/// error. An overlay that changes `paging` writes the whole table (it replaces the old one).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Paging {
    /// One answer holds the whole list (the default).
    #[default]
    None,
    /// Page numbers 1, 2, … in `page_param`, until `total_pages` pages, `total` items, or a page
    /// shorter than `size` (or an empty one).
    Page {
        /// Query parameter carrying the page number.
        page_param: String,
        /// Query parameter carrying the page size.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        size_param: String,
        /// The page size to ask for (0 = the API's default).
        #[serde(default, skip_serializing_if = "is_zero")]
        size: u32,
        /// Pointer to the number of pages.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        total_pages: String,
        /// Pointer to the total item count, or a response header named as `header:Name`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        total: String,
    },
    /// A full URL of the next page at the pointer `next` (on the API's own origin).
    NextLink {
        /// Pointer to the next page's URL; absent or empty on the last page.
        next: String,
        /// Query parameter carrying the page size.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        size_param: String,
        /// The page size to ask for (0 = the API's default).
        #[serde(default, skip_serializing_if = "is_zero")]
        size: u32,
    },
    /// A cursor at the pointer `next`, sent back as the query parameter `cursor_param`.
    Cursor {
        /// Pointer to the cursor; absent or empty on the last page.
        next: String,
        /// Query parameter that carries the cursor back (default `cursor`).
        #[serde(default = "default_cursor_param")]
        cursor_param: String,
        /// Query parameter carrying the page size.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        size_param: String,
        /// The page size to ask for (0 = the API's default).
        #[serde(default, skip_serializing_if = "is_zero")]
        size: u32,
    },
    /// NextToken style: like `cursor`, but a form body carries the token (and the size).
    Token {
        /// Pointer to the token; absent or empty on the last page.
        next: String,
        /// Parameter that carries the token back (default `cursor`).
        #[serde(default = "default_cursor_param")]
        cursor_param: String,
        /// Query parameter carrying the page size.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        size_param: String,
        /// The page size to ask for (0 = the API's default).
        #[serde(default, skip_serializing_if = "is_zero")]
        size: u32,
    },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn default_cursor_param() -> String {
    "cursor".to_string()
}

impl Paging {
    /// The page-size parameter and the size to ask for, when the style takes one.
    pub fn size(&self) -> Option<(&str, u32)> {
        let (param, size) = match self {
            Paging::None => return None,
            Paging::Page {
                size_param, size, ..
            }
            | Paging::NextLink {
                size_param, size, ..
            }
            | Paging::Cursor {
                size_param, size, ..
            }
            | Paging::Token {
                size_param, size, ..
            } => (size_param, *size),
        };
        (!param.is_empty() && size > 0).then_some((param.as_str(), size))
    }

    /// The pointers (and `header:` forms) the style reads, by key, for validation.
    pub fn pointers(&self) -> Vec<(&'static str, &str)> {
        match self {
            Paging::None => vec![],
            Paging::Page {
                total_pages, total, ..
            } => vec![("total_pages", total_pages), ("total", total)],
            Paging::NextLink { next, .. }
            | Paging::Cursor { next, .. }
            | Paging::Token { next, .. } => vec![("next", next)],
        }
    }
}

/// `monthly_cap_hours`: a number of hours, or `"none"` for "no monthly cap" (`f64::INFINITY`).
/// JSON has no infinity, so the pre-digested catalog carries the word too.
pub mod cap_hours {
    use serde::{de, Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Hours(f64),
        Word(String),
    }

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_infinite() {
            s.serialize_str("none")
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Hours(h) => Ok(h),
            Raw::Word(w) if w.eq_ignore_ascii_case("none") => Ok(f64::INFINITY),
            Raw::Word(w) => Err(de::Error::custom(format!(
                "monthly_cap_hours '{w}' is neither a number of hours nor \"none\""
            ))),
        }
    }
}

/// A list of texts written as one text or as a list (`id = "/action/id"` or
/// `id = ["/action/id", "/next_actions/*/id"]`); always serialized as a list.
pub mod one_or_many {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }

    pub fn serialize<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match Raw::deserialize(d)? {
            Raw::One(one) => vec![one],
            Raw::Many(many) => many,
        })
    }
}

/// JSON Schema of [`cap_hours`]: a number of hours or the word `"none"`.
fn cap_hours_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            { "type": "number", "minimum": 0 },
            { "type": "string", "enum": ["none"] }
        ]
    })
}

/// JSON Schema of `[api.status]`: common states ([`CommonState`]) → lists of raw values.
fn status_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "propertyNames": { "enum": CommonState::WORDS },
        "additionalProperties": { "type": "array", "items": { "type": "string" } }
    })
}

/// JSON Schema of [`one_or_many`]: one text or a list of texts.
fn one_or_many_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            { "type": "string" },
            { "type": "array", "items": { "type": "string" } }
        ]
    })
}

/// [`cap_hours`] for an optional field.
pub mod cap_hours_opt {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(h) => super::cap_hours::serialize(h, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        super::cap_hours::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(text: &str) -> toml::Table {
        let mut doc: toml::Table = toml::from_str(text).unwrap();
        match doc.remove("api") {
            Some(toml::Value::Table(t)) => t,
            _ => panic!("no [api]"),
        }
    }

    #[test]
    fn operation_defaults_fill_the_operations_they_name() {
        let mut t = api(r#"
[api.operation_defaults]
apply_to = ["start", "stop"]
method = "POST"
expect = [201]
query = { a = "1", b = "2" }
action = { id = "/action/id", operation = "get", status = "/s", done = ["ok"] }

[api.operations.start]
path = "/start"
query = { b = "own" }

[api.operations.stop]
path = "/stop"
expect = [202]

[api.operations.get]
method = "GET"
path = "/get"
"#);
        expand_operation_defaults(&mut t).unwrap();
        assert!(!t.contains_key("operation_defaults"));
        let a: Api = toml::Value::Table(t).try_into().unwrap();
        let start = &a.operations["start"];
        assert_eq!(
            (start.method.as_str(), start.expect.as_slice()),
            ("POST", &[201][..])
        );
        assert_eq!(start.query["a"], "1");
        assert_eq!(start.query["b"], "own", "the operation's own key wins");
        assert_eq!(start.action.as_ref().unwrap().id, ["/action/id"]);
        assert_eq!(a.operations["stop"].expect, [202]);
        assert_eq!(a.operations["get"].method, "GET");
        assert!(
            a.operations["get"].action.is_none(),
            "not named in apply_to"
        );
    }

    #[test]
    fn operation_defaults_errors_name_the_problem() {
        let mut t = api("[api.operation_defaults]\napply_to = [\"nope\"]\nmethod = \"GET\"\n[api.operations.get]\npath = \"/\"\n");
        let e = expand_operation_defaults(&mut t).unwrap_err();
        assert!(e.contains("'nope'") && e.contains("use one of: get"), "{e}");
        let mut t = api("[api.operation_defaults]\napply_to = [\"get\"]\nmethd = \"GET\"\n[api.operations.get]\npath = \"/\"\n");
        let e = expand_operation_defaults(&mut t).unwrap_err();
        assert!(e.contains("methd"), "{e}");
        let mut t = api("[api.operation_defaults]\nmethod = \"GET\"\n");
        let e = expand_operation_defaults(&mut t).unwrap_err();
        assert!(e.contains("apply_to"), "{e}");
        let mut t = api("[api.operations.get]\npath = \"/\"\n");
        expand_operation_defaults(&mut t).unwrap();
    }

    #[derive(Debug, Deserialize)]
    struct P {
        paging: Paging,
    }

    #[test]
    fn paging_styles_take_their_own_keys_only() {
        let p = |t: &str| toml::from_str::<P>(t).map(|p| p.paging);
        let e = p(r#"paging = { style = "page" }"#).unwrap_err().to_string();
        assert!(
            e.contains("page_param"),
            "a page style needs its parameter: {e}"
        );
        let e = p(r#"paging = { style = "cursor", next = "/n", page_param = "p" }"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("page_param"), "{e}");
        let e = p(r#"paging = { style = "pages", page_param = "p" }"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("next_link"), "the styles are listed: {e}");
        assert_eq!(
            p(r#"paging = { style = "cursor", next = "/n" }"#).unwrap(),
            Paging::Cursor {
                next: "/n".into(),
                cursor_param: "cursor".into(),
                size_param: String::new(),
                size: 0
            }
        );
        let page =
            p(r#"paging = { style = "page", page_param = "p", size_param = "n", size = 5 }"#)
                .unwrap();
        assert_eq!(page.size(), Some(("n", 5)));
        assert_eq!(Paging::default().size(), None);
        // The pre-digested catalog reads back the same.
        let json = serde_json::to_string(&page).unwrap();
        assert_eq!(serde_json::from_str::<Paging>(&json).unwrap(), page);
    }

    #[test]
    fn catalog_words_are_enums_that_name_the_allowed_words() {
        #[derive(Debug, Deserialize)]
        struct W {
            arch: Arch,
            #[serde(default)]
            unless: Vec<CommonState>,
        }
        let w: W = toml::from_str("arch = \"arm64\"\nunless = [\"stopped\"]").unwrap();
        assert_eq!(
            (w.arch, w.unless),
            (Arch::Arm64, vec![CommonState::Stopped])
        );
        let e = toml::from_str::<W>("arch = \"sparc\"").unwrap_err();
        assert!(
            e.message()
                .contains("arch 'sparc' is not valid — use one of: x86_64, arm64"),
            "{e}"
        );
        let e = toml::from_str::<W>("arch = \"x86_64\"\nunless = [\"stoped\"]").unwrap_err();
        assert!(
            e.message()
                .contains("unknown state 'stoped' — did you mean 'stopped'?"),
            "{e}"
        );
        // Case matters, as in the catalog; the words read back from the pre-digested JSON.
        assert!("Running".parse::<CommonState>().is_err());
        for s in CommonState::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<CommonState>(&json).unwrap(), *s);
        }
        let map: BTreeMap<CommonState, Vec<String>> =
            toml::from_str("running = [\"active\"]").unwrap();
        assert_eq!(map[&CommonState::Running], ["active"]);
        assert!(toml::from_str::<BTreeMap<CommonState, Vec<String>>>("runing = []").is_err());
        assert_eq!(SshKeyMode::default(), SshKeyMode::KeyId);
        assert_eq!(ProviderKind::WORDS, ["cloud", "bare-metal", "mixed"]);
    }

    #[test]
    fn an_action_id_is_one_pointer_or_a_list() {
        let one: ActionPoll = toml::from_str("id = \"/a/id\"").unwrap();
        assert_eq!(one.id, ["/a/id"]);
        let many: ActionPoll = toml::from_str("id = [\"/a/id\", \"/n/*/id\"]").unwrap();
        assert_eq!(many.id, ["/a/id", "/n/*/id"]);
    }
}
