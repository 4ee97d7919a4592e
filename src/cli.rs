//! The command line, as clap derive structs. No I/O and no logic here: `commands` reads these.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "capsule",
    version,
    about = "See every provider's server templates side by side, deploy the cheapest that fits, and keep a record of every node.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: TopCommand,
}

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Provider templates, deploys and node records for OpenMesh xNodes.
    #[command(name = "openmesh", visible_alias = "om")]
    Openmesh(Box<Openmesh>),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Options that every command accepts, before or after `openmesh` and the subcommand.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Layer a directory of catalog TOML files over the embedded catalog.
    #[arg(long, global = true, env = "CAPSULE_CATALOG", value_name = "DIR", help_heading = GLOBAL)]
    pub catalog: Option<PathBuf>,
    /// Output format of listings (default from CAPSULE_OUTPUT, else table).
    #[arg(short, long, global = true, value_enum, env = "CAPSULE_OUTPUT", default_value_t = OutputFormat::Table, help_heading = OUTPUT)]
    pub output: OutputFormat,
    /// Colour: auto (only on a terminal, never under NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, help_heading = OUTPUT)]
    pub color: ColorChoice,
    /// Only the ids of a listing, one per line (input for other commands).
    #[arg(short, long, global = true, help_heading = OUTPUT)]
    pub quiet: bool,
    /// Leave out the header line of tables and CSV.
    #[arg(long, global = true, help_heading = OUTPUT)]
    pub no_header: bool,
    /// Only these columns, named by their JSON keys, in this order (e.g. `id,cpu,price_hourly_usd`).
    #[arg(long, global = true, value_delimiter = ',', value_name = "KEYS", help_heading = OUTPUT)]
    pub columns: Option<Vec<String>>,
    /// Every column of a table, even wider than the terminal.
    #[arg(long, global = true, help_heading = OUTPUT)]
    pub wide: bool,
    /// Log each API request to stderr (-vv adds headers and bodies; secrets are redacted).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,
    /// Answer yes to confirmations (required off a terminal for deploys and deletes).
    #[arg(short = 'y', long, global = true, help_heading = GLOBAL)]
    pub yes: bool,
    /// Seconds to wait for a TCP connection to a provider.
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECS", help_heading = GLOBAL, value_parser = crate::context::timeout_secs_value)]
    pub connect_timeout: f64,
    /// Seconds one API request may take in all.
    #[arg(long, global = true, default_value_t = 60.0, value_name = "SECS", help_heading = GLOBAL, value_parser = crate::context::timeout_secs_value)]
    pub request_timeout: f64,
}

/// Help heading of the options every command takes.
pub const GLOBAL: &str = "Global options";
/// Help heading of the output options every command takes.
pub const OUTPUT: &str = "Output options";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct Openmesh {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the providers: templates, regions, price range, GPUs, status, credentials.
    Providers,
    /// Configure, show, verify or remove a provider account.
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// List templates, with filters and sorting.
    Templates(TemplateFilter),
    /// Show one template.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// List regions.
    Regions(RegionsArgs),
    /// Compare templates side by side; the cheapest is highlighted.
    Compare(CompareArgs),
    /// Deploy a node: name a provider and template, or give constraints and let capsule pick.
    Deploy(Box<DeployArgs>),
    /// List live nodes at the providers (only capsule's, or --all).
    List(ListArgs),
    /// Show a node's live status.
    Status(NodeArgs),
    /// Power nodes on.
    Start(BulkArgs),
    /// Power nodes off (most providers still bill them).
    Stop(BulkArgs),
    /// Delete nodes (billing stops).
    Delete(BulkArgs),
    /// The local record of nodes.
    Inventory(InventoryArgs),
    /// Deployment and lifecycle history.
    History(HistoryArgs),
    /// Cost report from the prices paid.
    Cost(CostArgs),
    /// Compare the local record with the providers: orphans, ghosts, drift.
    Sync(SyncArgs),
    /// Validate, export or refresh catalogs.
    #[command(subcommand)]
    Catalog(CatalogCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Store credentials for a provider (flags after NAME set the provider's other fields,
    /// e.g. `--project-id ID`).
    Configure(ConfigureArgs),
    /// Show where each credential field comes from (secrets redacted).
    Show { name: String },
    /// Check credentials against each provider's API (default: every configured provider).
    Verify { names: Vec<String> },
    /// Remove a provider's stored credentials.
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    pub name: String,
    /// The provider's main secret (API token / key).
    #[arg(long, value_name = "KEY", conflicts_with = "api_key_stdin")]
    pub api_key: Option<String>,
    /// Read the main secret from stdin (keeps it out of shell history).
    #[arg(long)]
    pub api_key_stdin: bool,
    /// Verify the credentials against the provider before saving.
    #[arg(long)]
    pub verify: bool,
    /// Other fields the provider declares, as `--field-name VALUE` or `--set field=value`.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub extra: Vec<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct TemplateFilter {
    /// Only templates with a GPU.
    #[arg(long)]
    pub gpu: bool,
    /// Only this GPU model (substring match, e.g. `h100`, `4090`).
    #[arg(long, value_name = "MODEL")]
    pub gpu_model: Option<String>,
    /// Only these providers (repeatable).
    #[arg(long = "provider", short = 'p', value_name = "ID")]
    pub providers: Vec<String>,
    /// Only templates offered in this region.
    #[arg(long)]
    pub region: Option<String>,
    /// Only templates offered on this continent.
    #[arg(long)]
    pub continent: Option<String>,
    #[arg(long, value_name = "N")]
    pub min_cpu: Option<u32>,
    #[arg(long, value_name = "GB")]
    pub min_memory: Option<f64>,
    #[arg(long, value_name = "GB")]
    pub min_storage: Option<f64>,
    /// Highest hourly price in USD.
    #[arg(long, value_name = "USD")]
    pub max_price: Option<f64>,
    /// Highest monthly price in USD.
    #[arg(long, value_name = "USD")]
    pub max_monthly: Option<f64>,
    /// `x86_64` or `arm64`.
    #[arg(long)]
    pub arch: Option<String>,
    /// Sort order.
    #[arg(long, value_enum, default_value_t = SortKey::Price)]
    pub sort: SortKey,
    /// Show at most N templates.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SortKey {
    #[default]
    Price,
    Cpu,
    Memory,
    PricePerCpu,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Everything about one template.
    Show { id: String },
}

#[derive(Debug, Args)]
pub struct RegionsArgs {
    #[arg(long = "provider", short = 'p', value_name = "ID")]
    pub providers: Vec<String>,
    #[arg(long)]
    pub continent: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[arg(required = true, num_args = 1..)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DeployArgs {
    /// Provider to deploy on (with --template: the manual form).
    #[arg(long = "provider", short = 'p', value_name = "ID")]
    pub providers: Vec<String>,
    /// Template id (the manual form).
    #[arg(long, short = 't')]
    pub template: Option<String>,
    /// Region slug; default: the cheapest region within --continent/--country, else the
    /// provider's default.
    #[arg(long, short = 'r')]
    pub region: Option<String>,
    /// Node name (fleets: NAME-01, NAME-02, …).
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// Name prefix for fleets.
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Option<String>,
    /// OS image (provider slug/id); default: the provider's default image.
    #[arg(long)]
    pub image: Option<String>,
    /// SSH key: a public-key file or a provider key id, as the provider expects (repeatable).
    #[arg(long = "ssh-key", value_name = "KEY")]
    pub ssh_keys: Vec<String>,
    /// cloud-init user data file; default: the catalog's xNode bootstrap.
    #[arg(long, value_name = "FILE")]
    pub user_data: Option<PathBuf>,
    /// Send no user data at all.
    #[arg(long, conflicts_with = "user_data")]
    pub no_user_data: bool,

    // --- smart selection
    #[arg(long, value_name = "N")]
    pub min_cpu: Option<u32>,
    #[arg(long, value_name = "GB")]
    pub min_memory: Option<f64>,
    #[arg(long, value_name = "GB")]
    pub min_storage: Option<f64>,
    /// A GPU, optionally a model and count: `--gpu`, `--gpu h100`, `--gpu rtx4090:2`.
    #[arg(long, value_name = "MODEL[:COUNT]", num_args = 0..=1, default_missing_value = "")]
    pub gpu: Option<String>,
    /// Highest hourly price in USD.
    #[arg(long, value_name = "USD/H")]
    pub budget: Option<f64>,
    /// Highest monthly price in USD.
    #[arg(long, value_name = "USD")]
    pub max_monthly: Option<f64>,
    /// Never pick these providers (repeatable).
    #[arg(long, value_name = "ID")]
    pub exclude_provider: Vec<String>,
    #[arg(long)]
    pub continent: Option<String>,
    /// ISO country code (US, DE, …).
    #[arg(long)]
    pub country: Option<String>,
    #[arg(long)]
    pub arch: Option<String>,
    /// Plan with providers that have no credentials too.
    #[arg(long)]
    pub include_unconfigured: bool,
    /// Show why the choice was made (always shown for smart deploys).
    #[arg(long)]
    pub explain: bool,

    // --- execution
    /// Print the plan and the exact requests; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Number of nodes.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub count: u32,
    /// Most creates in flight at once.
    #[arg(long, default_value_t = 10, value_name = "K")]
    pub parallel: usize,
    /// Distribute a fleet over the cheapest feasible regions or providers.
    #[arg(long, value_enum)]
    pub spread: Option<Spread>,
    /// Wait until each node runs with a public IPv4.
    #[arg(long)]
    pub wait: bool,
    /// Also wait until port 22 answers.
    #[arg(long)]
    pub wait_ssh: bool,
    /// Longest wait, e.g. `10m`, `90s`.
    #[arg(long, default_value = "10m", value_parser = crate::context::duration_value)]
    pub timeout: std::time::Duration,
    /// Complete an interrupted fleet deploy without duplicates.
    #[arg(long, value_name = "DEPLOY_ID")]
    pub resume: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Spread {
    Region,
    Provider,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long = "provider", short = 'p', value_name = "ID")]
    pub providers: Vec<String>,
    /// Every node on the accounts, not only capsule's.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// `PROVIDER:ID`, `PROVIDER:REGION/ID`, or a node name from the inventory.
    pub node: String,
    /// Wait until the node reaches the state (start/stop/delete).
    #[arg(long)]
    pub wait: bool,
    /// Longest wait, e.g. `10m`.
    #[arg(long, default_value = "10m", value_parser = crate::context::duration_value)]
    pub timeout: std::time::Duration,
}

/// Nodes to start, stop or delete: named, or selected from the inventory.
#[derive(Debug, Args, Clone, Default)]
pub struct BulkArgs {
    /// `PROVIDER:ID`, `PROVIDER:REGION/ID`, or node names from the inventory.
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Every live node of a fleet (the group id `deploy` printed).
    #[arg(long, value_name = "GROUP_ID")]
    pub group: Option<String>,
    /// Live recorded nodes whose name matches this glob, e.g. `web-*`.
    #[arg(long, value_name = "GLOB")]
    pub name: Option<String>,
    /// Only nodes at this provider (with --all: every live recorded node there).
    #[arg(long, short = 'p', value_name = "ID")]
    pub provider: Option<String>,
    /// With --provider: every live node capsule recorded at that provider.
    #[arg(long, requires = "provider")]
    pub all: bool,
    /// Wait until each node reaches the state (and, for delete, until its cleanups ran).
    #[arg(long)]
    pub wait: bool,
    /// Longest wait, e.g. `10m`.
    #[arg(long, default_value = "10m", value_parser = crate::context::duration_value)]
    pub timeout: std::time::Duration,
    /// Most requests in flight at once.
    #[arg(long, default_value_t = 8, value_name = "K")]
    pub parallel: usize,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[command(subcommand)]
    pub command: Option<InventoryCommand>,
    #[command(flatten)]
    pub filter: InventoryFilter,
}

#[derive(Debug, Args, Clone, Default)]
pub struct InventoryFilter {
    #[arg(long = "provider", short = 'p', value_name = "ID")]
    pub providers: Vec<String>,
    #[arg(long)]
    pub region: Option<String>,
    /// pending, running, stopped, deleting, deleted, error (repeatable).
    #[arg(long = "status")]
    pub statuses: Vec<String>,
    /// Node name glob, e.g. `web-*`.
    #[arg(long)]
    pub name: Option<String>,
    /// Include deleted nodes.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// List recorded nodes.
    List(InventoryFilter),
    /// One node's record and its history.
    Show { node: String },
    /// Counts and run rates.
    Stats(InventoryFilter),
    /// Work left for after a delete (volumes that keep billing), not done yet.
    Cleanups,
    /// Write the inventory as CSV or JSON (`-` = stdout).
    Export {
        #[arg(default_value = "-")]
        file: String,
        /// Default: from the file's extension (`.json`, `.csv`), else from -o, else CSV.
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
    },
    /// Read nodes from a CSV or JSON export; all rows or none.
    Import {
        file: PathBuf,
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
    /// Only this node (name or PROVIDER:ID).
    #[arg(long)]
    pub node: Option<String>,
    /// Only events since DATE (YYYY-MM-DD or RFC 3339) or a duration ago (`7d`, `12h`).
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Remove old events (never those of live nodes).
    Clean {
        /// e.g. `30d`.
        #[arg(long, value_name = "AGE")]
        older_than: String,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct CostArgs {
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value_t = CostGroup::Provider)]
    pub by: CostGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CostGroup {
    Provider,
    Region,
    Template,
    Node,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[arg(long = "provider", short = 'p', value_name = "ID")]
    pub providers: Vec<String>,
    /// Record orphans (capsule-tagged nodes missing from the inventory).
    #[arg(long)]
    pub adopt: bool,
    /// Mark ghosts (recorded nodes gone from the provider) deleted.
    #[arg(long)]
    pub forget: bool,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Check a catalog directory without using it.
    Validate { dir: PathBuf },
    /// Write the effective catalog (embedded + --catalog) as TOML files.
    Export { dir: PathBuf },
    /// Read live prices from the providers' APIs and write the changes as an overlay directory
    /// (use it with --catalog, or review and copy it into catalog/).
    Refresh {
        /// Where to write `<provider>/prices.toml`.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Only these providers (default: every configured provider with a price list).
        #[arg(long = "provider", short = 'p', value_name = "ID")]
        providers: Vec<String>,
    },
    /// Write a synthetic catalog with N templates (for benchmarks).
    #[command(hide = true)]
    Generate {
        dir: PathBuf,
        #[arg(long, default_value_t = 1000)]
        templates: usize,
    },
}
