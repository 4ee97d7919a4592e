//! The command line, as clap derive structs. No I/O and no logic here: `commands` reads these.

use crate::complete::{node_names, provider_ids, region_ids, template_ids};
use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCandidates;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "capsule",
    version,
    about = "See every provider's server templates side by side, deploy the cheapest that fits, and keep a record of every node.",
    propagate_version = true,
    after_help = "Examples:
  capsule openmesh                                  # getting started
  capsule openmesh templates --min-cpu 4 --min-memory 8
  capsule -o json openmesh providers
  capsule completions bash > ~/.local/share/bash-completion/completions/capsule"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: TopCommand,
}

impl Cli {
    /// Whether the command reads providers' price lists page by page (`catalog refresh`): a
    /// long run that frees much memory as it goes, where the allocator should give it back.
    pub fn streams_price_lists(&self) -> bool {
        matches!(
            &self.command,
            TopCommand::Openmesh(o)
                if matches!(&o.command, Some(Command::Catalog(CatalogCommand::Refresh { .. })))
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Provider templates, deploys and node records for OpenMesh xNodes.
    #[command(
        name = "openmesh",
        visible_alias = "om",
        after_help = "Examples:
  capsule openmesh                                  # a short getting-started
  capsule openmesh providers
  capsule om templates --gpu"
    )]
    Openmesh(Box<Openmesh>),
    /// Print a shell completion script (it completes template ids, providers, regions and
    /// node names by asking capsule as you type).
    #[command(after_help = "Examples:
  capsule completions bash > ~/.local/share/bash-completion/completions/capsule
  capsule completions zsh > \"${fpath[1]}/_capsule\"
  capsule completions fish > ~/.config/fish/completions/capsule.fish")]
    Completions {
        /// The shell to register with.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write man pages (capsule.1, capsule-openmesh.1, one per subcommand) into DIR.
    #[command(after_help = "Examples:
  capsule man ./man && man ./man/capsule-openmesh-deploy.1
  capsule man /usr/local/share/man/man1             # as root")]
    Man {
        /// Directory to write the `.1` files into (created if missing).
        dir: PathBuf,
    },
}

/// Shells `capsule completions` can register with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU Bash.
    Bash,
    /// Elvish.
    Elvish,
    /// fish.
    Fish,
    /// PowerShell.
    Powershell,
    /// Z shell.
    Zsh,
}

impl Shell {
    /// The name clap_complete knows the shell by.
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Elvish => "elvish",
            Shell::Fish => "fish",
            Shell::Powershell => "powershell",
            Shell::Zsh => "zsh",
        }
    }
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
    /// The provider account to use (`default` unless named; `provider configure P --account NAME`
    /// stores one). A node remembers its account: commands on it use that one.
    #[arg(long, global = true, env = "CAPSULE_ACCOUNT", value_name = "NAME", help_heading = GLOBAL)]
    pub account: Option<String>,
    /// Answer yes to confirmations (required off a terminal for deploys and deletes).
    #[arg(short = 'y', long, global = true, help_heading = GLOBAL)]
    pub yes: bool,
    /// Seconds to wait for a TCP connection to a provider.
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECS", help_heading = GLOBAL, value_parser = crate::context::timeout_secs_value)]
    pub connect_timeout: f64,
    /// Seconds one API request may take in all.
    #[arg(long, global = true, default_value_t = 60.0, value_name = "SECS", help_heading = GLOBAL, value_parser = crate::context::timeout_secs_value)]
    pub request_timeout: f64,
    /// Ignore the refreshed prices in $CAPSULE_HOME/catalog/ (use the embedded catalog, and
    /// --catalog if given).
    #[arg(long, global = true)]
    pub embedded_only: bool,
    /// Where the node record lives: a postgres://USER@HOST/DB URL a team shares, or a SQLite
    /// file (default: CAPSULE_STATE, else `state` in $CAPSULE_HOME/config.toml, else
    /// $CAPSULE_HOME/state.db). Keep the password in PGPASSWORD or ~/.pgpass.
    #[arg(long, global = true, value_name = "URL|FILE", help_heading = GLOBAL)]
    pub state: Option<String>,
    /// Prices older than this are announced on stderr when a command prices or selects
    /// (30d by default; e.g. 7d, 90d).
    #[arg(
        long,
        global = true,
        env = "CAPSULE_STALE_AFTER",
        value_name = "AGE",
        default_value = "30d",
        value_parser = crate::duration::parse
    )]
    pub stale_after: std::time::Duration,
}

/// A CPU architecture: the catalog's own enum, read on the command line in the catalog's
/// spelling (`amd64` and `aarch64` are accepted too).
pub use crate::catalog::schema::Arch;

impl ValueEnum for Arch {
    fn value_variants<'a>() -> &'a [Self] {
        Arch::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Arch::X86_64 => PossibleValue::new(self.as_str())
                .aliases(["amd64", "x86-64", "x64"])
                .help("64-bit Intel and AMD (also written amd64)"),
            Arch::Arm64 => PossibleValue::new(self.as_str())
                .aliases(["aarch64", "arm"])
                .help("64-bit ARM (also written aarch64)"),
        })
    }
}

/// A continent: the catalog's own enum, read on the command line in any case.
pub use crate::catalog::schema::Continent;

impl ValueEnum for Continent {
    fn value_variants<'a>() -> &'a [Self] {
        Continent::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let name = self
            .as_str()
            .split('-')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect::<Vec<_>>()
            .join(" ");
        Some(clap::builder::PossibleValue::new(self.as_str()).help(format!("regions in {name}")))
    }
}

/// Help heading of the options every command takes.
pub const GLOBAL: &str = "Global options";
/// Help heading of the output options every command takes.
pub const OUTPUT: &str = "Output options";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people (fitted to the terminal).
    Table,
    /// The documented JSON schema.
    Json,
    /// Comma-separated values with a header row.
    Csv,
    /// The JSON data as YAML.
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Only on a terminal, and never when NO_COLOR is set.
    Auto,
    /// Always, even into a pipe.
    Always,
    /// Never.
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
    #[command(after_help = "Examples:
  capsule openmesh providers
  capsule openmesh providers -o json --columns id,status,price_hourly_min_usd
  capsule openmesh providers --wide")]
    Providers,
    /// Configure, show, verify or remove a provider account.
    #[command(after_help = include_str!("../docs/help/provider.txt"))]
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// List templates, with filters and sorting.
    #[command(after_help = include_str!("../docs/help/templates.txt"))]
    Templates(TemplateFilter),
    /// Show one template.
    #[command(after_help = "Examples:
  capsule openmesh template show hive-large
  capsule openmesh template show scw-dev1-m -o yaml")]
    #[command(subcommand)]
    Template(TemplateCommand),
    /// List regions.
    #[command(after_help = include_str!("../docs/help/regions.txt"))]
    Regions(RegionsArgs),
    /// Compare templates side by side; the cheapest is highlighted.
    #[command(after_help = include_str!("../docs/help/compare.txt"))]
    Compare(CompareArgs),
    /// Deploy a node: name a provider and template, or give constraints and let capsule pick.
    #[command(after_help = include_str!("../docs/help/deploy.txt"))]
    Deploy(Box<DeployArgs>),
    /// List live nodes at the providers (only capsule's, or --all).
    #[command(after_help = include_str!("../docs/help/list.txt"))]
    List(ListArgs),
    /// Show a node's live status (with --probe, an xNode's readiness stage).
    #[command(after_help = include_str!("../docs/help/status.txt"))]
    Status(StatusArgs),
    /// Power nodes on.
    #[command(after_help = include_str!("../docs/help/start.txt"))]
    Start(BulkArgs),
    /// Power nodes off (most providers still bill them).
    #[command(after_help = "Examples:
  capsule openmesh stop my-node --wait
  capsule openmesh stop --name 'web-*' --yes")]
    Stop(BulkArgs),
    /// Delete nodes (billing stops).
    #[command(after_help = include_str!("../docs/help/delete.txt"))]
    Delete(BulkArgs),
    /// Reinstall a node in place as an xNode (wipes its disks), where the provider can.
    #[command(after_help = include_str!("../docs/help/reinstall.txt"))]
    Reinstall(Box<ReinstallArgs>),
    /// The local record of nodes.
    #[command(after_help = include_str!("../docs/help/inventory.txt"))]
    Inventory(InventoryArgs),
    /// Deployment and lifecycle history.
    #[command(after_help = "Examples:
  capsule openmesh history --since 7d
  capsule openmesh history --node my-node -o json
  capsule openmesh history clean --older-than 90d --dry-run")]
    History(HistoryArgs),
    /// Cost report from the prices paid.
    #[command(after_help = "Examples:
  capsule openmesh cost
  capsule openmesh cost --by template --since 2024-05-01
  capsule openmesh cost --by day --since 30d
  capsule openmesh cost --by month -o csv")]
    Cost(CostArgs),
    /// Open an SSH session on a node (or run a command: `ssh NODE -- uptime`) with the system
    /// `ssh`, the node's address and the provider's login user.
    #[command(after_help = "Examples:
  capsule openmesh ssh my-node
  capsule openmesh ssh my-node -- uptime
  capsule openmesh ssh aws:us-east-1/i-0abc123 -i ~/.ssh/work_ed25519")]
    Ssh(SshArgs),
    /// Delete the nodes whose `deploy --ttl` ran out (asks first; `--yes` for cron).
    #[command(after_help = "Examples:
  capsule openmesh reap --dry-run
  capsule openmesh reap --yes
  capsule openmesh reap --yes --wait --timeout 15m")]
    Reap(ReapArgs),
    /// Compare the local record with the providers: orphans, ghosts, drift.
    #[command(after_help = "Examples:
  capsule openmesh sync
  capsule openmesh sync --adopt --forget
  capsule openmesh sync --exit-code -q || echo \"the record and the providers differ\"")]
    Sync(SyncArgs),
    /// Validate, export or refresh catalogs.
    #[command(after_help = "Examples:
  capsule openmesh catalog validate ./my-catalog
  capsule openmesh catalog export ./out
  capsule openmesh catalog refresh --out ./prices")]
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Where the node record lives (a SQLite file, or a PostgreSQL server a team shares): show
    /// it, or copy it to another store.
    #[command(after_help = "Examples:
  capsule openmesh state info
  capsule openmesh state migrate --to postgres://ann@db.example:5432/capsule?sslmode=verify-full
  capsule openmesh --state postgres://ann@db.example/capsule state migrate --to ./state-copy.db")]
    #[command(subcommand)]
    State(StateCommand),
    /// Write a self-contained HTML report: prices, value, cost over time, fleet, price dates.
    #[command(after_help = "Examples:
  capsule openmesh report --html report.html
  capsule openmesh report --html report.html --min-cpu 2 --min-memory 4 --since 2024-05-01
  capsule openmesh report --html - --gpu > gpus.html")]
    Report(ReportArgs),
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// The backend, its location (password redacted), the schema version and the counts.
    #[command(after_help = "Examples:
  capsule openmesh state info
  capsule openmesh state info -o json
  CAPSULE_STATE=postgres://ann@db.example/capsule capsule openmesh state info")]
    Info,
    /// Copy every node, event and timeline into an empty store, verified by counts and
    /// checksums; the source is left as it is.
    #[command(after_help = "Examples:
  capsule openmesh state migrate --to postgres://ann@db.example:5432/capsule?sslmode=verify-full
  capsule openmesh --state postgres://ann@db.example/capsule state migrate --to ./state-copy.db")]
    Migrate {
        /// The destination: a postgres://USER@HOST/DB URL, or a new SQLite file.
        #[arg(long, value_name = "URL|FILE")]
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write the report to FILE (`-` = stdout): one offline HTML file.
    #[arg(long, value_name = "FILE")]
    pub html: String,
    /// The templates shown, as `templates` takes them (and the cheapest fit among them).
    #[command(flatten)]
    pub filter: TemplateFilter,
    /// Cost window start (YYYY-MM-DD, RFC 3339 or `30d`); default: 30 days ago, at midnight UTC.
    #[arg(long)]
    pub since: Option<String>,
    /// Cost window end; default: now.
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Store credentials for a provider (flags after NAME set the provider's other fields,
    /// e.g. `--project-id ID`).
    #[command(after_help = include_str!("../docs/help/provider-configure.txt"))]
    Configure(ConfigureArgs),
    /// Show where each credential field comes from (secrets redacted).
    #[command(after_help = include_str!("../docs/help/provider-show.txt"))]
    Show {
        /// Provider id (see `capsule openmesh providers`).
        #[arg(add = ArgValueCandidates::new(provider_ids))]
        name: String,
    },
    /// Check credentials against each provider's API (default: every configured provider).
    #[command(after_help = include_str!("../docs/help/provider-verify.txt"))]
    Verify {
        /// Provider ids to check (default: every configured provider).
        #[arg(add = ArgValueCandidates::new(provider_ids))]
        names: Vec<String>,
    },
    /// Remove a provider's stored credentials.
    #[command(after_help = include_str!("../docs/help/provider-remove.txt"))]
    Remove {
        /// Provider id whose stored credentials go.
        #[arg(add = ArgValueCandidates::new(provider_ids))]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// Provider id (see `capsule openmesh providers`).
    #[arg(add = ArgValueCandidates::new(provider_ids))]
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
    /// The provider's own fields as `--field-name VALUE` (see `provider show NAME`).
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
    #[arg(long = "provider", short = 'p', value_name = "ID", add = ArgValueCandidates::new(provider_ids))]
    pub providers: Vec<String>,
    /// Only templates offered in this region.
    #[arg(long, add = ArgValueCandidates::new(region_ids))]
    pub region: Option<String>,
    /// Only templates offered on this continent.
    #[arg(long, value_enum, ignore_case = true)]
    pub continent: Option<Continent>,
    #[command(flatten)]
    pub size: MinSize,
    /// Highest hourly price in USD.
    #[arg(long, value_name = "USD", value_parser = crate::context::amount_value)]
    pub max_price: Option<f64>,
    /// Highest monthly price in USD.
    #[arg(long, value_name = "USD", value_parser = crate::context::amount_value)]
    pub max_monthly: Option<f64>,
    /// `x86_64` or `arm64`.
    #[arg(long, value_enum, ignore_case = true)]
    pub arch: Option<Arch>,
    /// Sort order.
    #[arg(long, value_enum, default_value_t = SortKey::Price)]
    pub sort: SortKey,
    /// Show at most N templates.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Include the templates of retired providers (left out otherwise).
    #[arg(long)]
    pub include_retired: bool,
    /// Only the curated templates of the embedded catalog (not the plans `catalog refresh
    /// --all-plans` added).
    #[arg(long)]
    pub curated: bool,
}

/// The least a machine must have: `templates` filters by it and a smart `deploy` picks by it.
#[derive(Debug, Args, Clone, Copy, Default, PartialEq)]
pub struct MinSize {
    /// At least N vCPUs.
    #[arg(long, value_name = "N")]
    pub min_cpu: Option<u32>,
    /// At least this much memory, in GB.
    #[arg(long, value_name = "GB", value_parser = crate::context::amount_value)]
    pub min_memory: Option<f64>,
    /// At least this much disk, in GB.
    #[arg(long, value_name = "GB", value_parser = crate::context::amount_value)]
    pub min_storage: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SortKey {
    /// Cheapest first (USD per hour).
    #[default]
    Price,
    /// Fewest vCPUs first.
    Cpu,
    /// Least memory first.
    Memory,
    /// Cheapest vCPU first.
    PricePerCpu,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Everything about one template.
    #[command(after_help = "Examples:
  capsule openmesh template show hive-large
  capsule openmesh template show scw-dev1-m -o yaml")]
    Show {
        /// Template id (see `capsule openmesh templates`).
        #[arg(add = ArgValueCandidates::new(template_ids))]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct RegionsArgs {
    /// Only these providers (repeatable).
    #[arg(long = "provider", short = 'p', value_name = "ID", add = ArgValueCandidates::new(provider_ids))]
    pub providers: Vec<String>,
    /// Only regions on this continent (europe, north-america, …).
    #[arg(long, value_enum, ignore_case = true)]
    pub continent: Option<Continent>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Template ids to put side by side.
    #[arg(required = true, num_args = 1.., add = ArgValueCandidates::new(template_ids))]
    pub ids: Vec<String>,
    /// Allow templates of retired providers.
    #[arg(long)]
    pub include_retired: bool,
    /// Draw bar charts (price per hour, per vCPU) sized to the terminal instead of the table.
    #[arg(long)]
    pub chart: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DeployArgs {
    /// Provider to deploy on (with --template: the manual form).
    #[arg(long = "provider", short = 'p', value_name = "ID", add = ArgValueCandidates::new(provider_ids))]
    pub providers: Vec<String>,
    /// Template id (the manual form; constraints like --min-cpu pick one instead).
    #[arg(long, short = 't', add = ArgValueCandidates::new(template_ids), conflicts_with_all = ["min_cpu", "min_memory", "min_storage", "gpu", "budget", "max_monthly", "exclude_provider", "arch"])]
    pub template: Option<String>,
    /// Region slug; default: the cheapest region within --continent/--country, else the
    /// provider's default.
    #[arg(long, short = 'r', add = ArgValueCandidates::new(region_ids))]
    pub region: Option<String>,
    /// Node name (fleets: NAME-01, NAME-02, …).
    #[arg(long, short = 'n', conflicts_with = "name_prefix")]
    pub name: Option<String>,
    /// Name prefix for fleets.
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Option<String>,
    /// OS image (provider slug/id); default: the provider's default image.
    #[arg(long)]
    pub image: Option<String>,
    /// SSH key, the same on every provider: a public key file (registered with the provider
    /// once where it stores keys), or the NAME or ID of a key stored there (repeatable).
    /// Default: ~/.ssh/id_ed25519.pub, else ~/.ssh/id_rsa.pub, when present.
    #[arg(long = "ssh-key", value_name = "PATH|NAME|ID")]
    pub ssh_keys: Vec<String>,
    /// Deploy with no SSH key even though the bootstrap turns password logins off (no default
    /// key either; an explicit --ssh-key still counts).
    #[arg(long, env = "CAPSULE_NO_SSH_KEY", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_ssh_key: bool,
    /// cloud-init user data file; default: the catalog's xNode bootstrap.
    #[arg(long, value_name = "FILE", conflicts_with = "xnode")]
    pub user_data: Option<PathBuf>,
    /// Send no user data at all.
    #[arg(long, conflicts_with_all = ["user_data", "xnode"])]
    pub no_user_data: bool,

    // --- smart selection
    #[command(flatten)]
    pub size: MinSize,
    /// A GPU, optionally a model and count: `--gpu`, `--gpu h100`, `--gpu rtx4090:2`.
    #[arg(long, value_name = "MODEL[:COUNT]", num_args = 0..=1, default_missing_value = "")]
    pub gpu: Option<String>,
    /// Highest hourly price in USD.
    #[arg(long, value_name = "USD/H", value_parser = crate::context::amount_value)]
    pub budget: Option<f64>,
    /// Highest monthly price in USD.
    #[arg(long, value_name = "USD", value_parser = crate::context::amount_value)]
    pub max_monthly: Option<f64>,
    /// Never pick these providers (repeatable).
    #[arg(long, value_name = "ID", add = ArgValueCandidates::new(provider_ids))]
    pub exclude_provider: Vec<String>,
    /// Only regions on this continent (europe, north-america, …).
    #[arg(long, value_enum, ignore_case = true)]
    pub continent: Option<Continent>,
    /// ISO country code (US, DE, …).
    #[arg(long)]
    pub country: Option<String>,
    /// `x86_64` or `arm64`.
    #[arg(long, value_enum, ignore_case = true)]
    pub arch: Option<Arch>,
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
    /// Stop at the first create a provider refuses for capacity, quota or availability
    /// instead of moving the node to the next region or offer (smart deploy).
    #[arg(long)]
    pub no_failover: bool,
    /// Distribute a fleet over the cheapest feasible regions or providers.
    #[arg(long, value_enum)]
    pub spread: Option<Spread>,
    /// Wait until each node runs with a public IPv4.
    #[arg(long)]
    pub wait: bool,
    /// Also wait until port 22 answers.
    #[arg(long)]
    pub wait_ssh: bool,
    /// Longest wait, with a unit: `10m`, `90s` (default 10m; 45m with --wait-ready).
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub timeout: Option<std::time::Duration>,
    /// Expire the nodes after this long (`8h`, `2d`): `list` and `inventory` show the time
    /// left, and `capsule openmesh reap` deletes them once it ran out.
    #[arg(long, value_name = "DURATION", conflicts_with = "resume", value_parser = crate::duration::parse)]
    pub ttl: Option<std::time::Duration>,
    /// Complete an interrupted fleet deploy without duplicates.
    #[arg(long, value_name = "DEPLOY_ID")]
    pub resume: Option<String>,

    // --- xNode
    #[command(flatten)]
    pub xnode: XnodeArgs,
}

/// The xNode options of `deploy` and `reinstall`.
#[derive(Debug, Args, Clone, Default)]
pub struct XnodeArgs {
    /// Install XnodeOS (an OpenMesh xNode) with the catalog's pinned installer instead of the
    /// generic bootstrap.
    #[arg(long)]
    pub xnode: bool,
    /// The wallet that owns the xNode and may log in: 0x… or eth:… with 40 hex digits.
    #[arg(long, value_name = "ADDR", requires = "xnode")]
    pub owner: Option<String>,
    /// Install without an owner: the node's management API is then open to anyone.
    #[arg(long, requires = "xnode", conflicts_with = "owner")]
    pub no_owner: bool,
    /// A hostname whose A record points at the node (for its ACME certificate).
    #[arg(long, value_name = "HOSTNAME", requires = "xnode")]
    pub domain: Option<String>,
    /// ACME contact address.
    #[arg(long, value_name = "ADDRESS", requires = "xnode")]
    pub email: Option<String>,
    /// Installer release tag; default: the catalog's pinned one.
    #[arg(long, value_name = "TAG", requires = "xnode")]
    pub xnode_version: Option<String>,
    /// Wait until each xNode is ready (the readiness ladder), bounded by --timeout.
    #[arg(long, requires = "xnode")]
    pub wait_ready: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Probe an xNode's readiness over the network (TLS, login gateway, certificate).
    #[arg(long)]
    pub probe: bool,
}

#[derive(Debug, Args)]
pub struct ReinstallArgs {
    /// `PROVIDER:ID`, `PROVIDER:REGION/ID`, or a node name from the inventory.
    pub node: String,
    #[command(flatten)]
    pub xnode: XnodeArgs,
    /// Longest wait (power off, readiness), e.g. `45m`.
    #[arg(long, default_value = "45m", value_parser = crate::duration::parse)]
    pub timeout: std::time::Duration,
    /// Print the requests; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Spread {
    /// Over the cheapest feasible regions.
    Region,
    /// Over the cheapest feasible providers.
    Provider,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only these providers (repeatable).
    #[arg(long = "provider", short = 'p', value_name = "ID", add = ArgValueCandidates::new(provider_ids))]
    pub providers: Vec<String>,
    /// Every node on the accounts, not only capsule's.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// `PROVIDER:ID`, `PROVIDER:REGION/ID`, or a node name from the inventory.
    #[arg(add = ArgValueCandidates::new(node_names))]
    pub node: String,
    /// Wait until the node reaches the state (start/stop/delete).
    #[arg(long)]
    pub wait: bool,
    /// Longest wait, with a unit: `10m`, `90s`.
    #[arg(long, default_value = "10m", value_parser = crate::duration::parse)]
    pub timeout: std::time::Duration,
}

/// Nodes to start, stop or delete: named, or selected from the inventory.
#[derive(Debug, Args, Clone, Default)]
pub struct BulkArgs {
    /// `PROVIDER:ID`, `PROVIDER:REGION/ID`, or node names from the inventory.
    #[arg(value_name = "NODE", add = ArgValueCandidates::new(node_names))]
    pub nodes: Vec<String>,
    /// Every live node of a fleet (the group id `deploy` printed).
    #[arg(long, value_name = "GROUP_ID")]
    pub group: Option<String>,
    /// Live recorded nodes whose name matches this glob, e.g. `web-*`.
    #[arg(long, value_name = "GLOB")]
    pub name: Option<String>,
    /// Only nodes at this provider (with --all: every live recorded node there).
    #[arg(long, short = 'p', value_name = "ID", add = ArgValueCandidates::new(provider_ids))]
    pub provider: Option<String>,
    /// With --provider: every live node capsule recorded at that provider.
    #[arg(long, requires = "provider")]
    pub all: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
}

/// How the lifecycle requests of `start`, `stop`, `delete` and `reap` run: whether each waits
/// for its node, for how long, and how many are in flight at once.
#[derive(Debug, Args, Clone, Default)]
pub struct BatchArgs {
    /// Wait until each node reaches the state (and, for delete, until its cleanups ran).
    #[arg(long)]
    pub wait: bool,
    /// Longest wait, e.g. `10m`.
    #[arg(long, default_value = "10m", value_parser = crate::duration::parse)]
    pub timeout: std::time::Duration,
    /// Most requests in flight at once.
    #[arg(long, default_value_t = 8, value_name = "K")]
    pub parallel: usize,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// `PROVIDER:ID`, `PROVIDER:REGION/ID`, or a node name from the inventory.
    pub node: String,
    /// Private key to log in with (default: ~/.ssh/id_ed25519, else ~/.ssh/id_rsa, when present).
    #[arg(long, short = 'i', value_name = "PATH")]
    pub identity: Option<PathBuf>,
    /// Log in as this user instead of the provider's default.
    #[arg(long, short = 'l')]
    pub user: Option<String>,
    /// A command to run instead of a shell (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
#[command(mut_arg("wait", |a| a.help("Wait until each node is gone (and its cleanups ran)")))]
pub struct ReapArgs {
    /// List the expired nodes; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
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
    /// Only these providers (repeatable).
    #[arg(long = "provider", short = 'p', value_name = "ID", add = ArgValueCandidates::new(provider_ids))]
    pub providers: Vec<String>,
    /// Only nodes in this region.
    #[arg(long, add = ArgValueCandidates::new(region_ids))]
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
    #[command(after_help = "Examples:
  capsule openmesh inventory list --status running
  capsule openmesh inventory list --all --name 'web-*' -o json")]
    List(InventoryFilter),
    /// One node's record and its history.
    #[command(after_help = include_str!("../docs/help/inventory-show.txt"))]
    Show {
        /// A node name, `PROVIDER:ID` or a deploy id.
        #[arg(add = ArgValueCandidates::new(node_names))]
        node: String,
    },
    /// Counts and run rates.
    #[command(after_help = include_str!("../docs/help/inventory-stats.txt"))]
    Stats(InventoryFilter),
    /// Work left for after a delete (volumes that keep billing), not done yet.
    #[command(after_help = "Examples:
  capsule openmesh inventory cleanups
  capsule openmesh inventory cleanups -o json")]
    Cleanups,
    /// Write the inventory as CSV or JSON (`-` = stdout).
    #[command(after_help = "Examples:
  capsule openmesh inventory export nodes.csv
  capsule openmesh inventory export -o json > nodes.json
  capsule openmesh inventory export backup.dat --format json")]
    Export {
        /// Where to write (`-`: standard output).
        #[arg(default_value = "-")]
        file: String,
        /// Default: from the file's extension (`.json`, `.csv`), else from -o, else CSV.
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
    },
    /// Read nodes from a CSV or JSON export; all rows or none.
    #[command(after_help = "Examples:
  capsule openmesh inventory import nodes.csv --dry-run
  capsule openmesh inventory import nodes.json")]
    Import {
        /// The CSV or JSON file to read.
        file: PathBuf,
        /// Default: from the file's extension (`.json`), else CSV.
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
        /// Check the file and report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array of node objects.
    Json,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
    /// Only this node (name or PROVIDER:ID).
    #[arg(long, add = ArgValueCandidates::new(node_names))]
    pub node: Option<String>,
    /// Only events since DATE (YYYY-MM-DD or RFC 3339) or a duration ago (`7d`, `12h`).
    #[arg(long)]
    pub since: Option<String>,
    /// Show at most N events, newest first.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Remove old events (never those of live nodes); asks first unless --yes.
    #[command(after_help = "Examples:
  capsule openmesh history clean --older-than 90d --dry-run
  capsule openmesh history clean --older-than 30d --yes")]
    Clean {
        /// An age with a unit: `30d`, `12h`, `2w`.
        #[arg(long, value_name = "AGE", value_parser = crate::duration::parse)]
        older_than: std::time::Duration,
        /// Count what would go; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// From DATE (YYYY-MM-DD or RFC 3339) or a duration ago (`30d`); default: the first record.
    #[arg(long)]
    pub since: Option<String>,
    /// Until DATE (YYYY-MM-DD or RFC 3339) or a duration ago; default: now.
    #[arg(long)]
    pub until: Option<String>,
    /// Rows per group (provider, region, template, node) or per time bucket (day, week, month).
    #[arg(long, value_enum, default_value_t = CostGroup::Provider)]
    pub by: CostGroup,
    /// With --by day (or no --by): draw daily spend as bars stacked by provider, sized to the
    /// terminal (default window: the last 30 days).
    #[arg(long)]
    pub chart: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CostGroup {
    /// One row per provider.
    Provider,
    /// One row per region.
    Region,
    /// One row per template.
    Template,
    /// One row per node.
    Node,
    /// Cost over time: one row per UTC day.
    Day,
    /// Cost over time: one row per week (Monday to Monday, UTC).
    Week,
    /// Cost over time: one row per calendar month (UTC).
    Month,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only these providers (repeatable; a provider without credentials is then a failure).
    #[arg(long = "provider", short = 'p', value_name = "ID", add = ArgValueCandidates::new(provider_ids))]
    pub providers: Vec<String>,
    /// Record orphans (capsule-tagged nodes missing from the inventory).
    #[arg(long)]
    pub adopt: bool,
    /// Mark ghosts (recorded nodes gone from the provider) deleted.
    #[arg(long)]
    pub forget: bool,
    /// Exit 2 when drift, orphans or ghosts were found (0: in sync, 1: a provider failed).
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Check a catalog directory without using it.
    #[command(after_help = "Examples:
  capsule openmesh catalog validate ./my-catalog
  capsule openmesh catalog validate ./my-catalog -o json")]
    Validate {
        /// The overlay directory to check.
        dir: PathBuf,
    },
    /// Write the effective catalog (embedded + --catalog) as TOML files.
    #[command(after_help = "Examples:
  capsule openmesh catalog export ./out
  capsule openmesh --catalog ./overlay catalog export ./merged")]
    Export {
        /// Where to write the TOML files.
        dir: PathBuf,
    },
    /// Read live prices from the providers' APIs into $CAPSULE_HOME/catalog/, which every
    /// command then uses (all or nothing: a failed refresh changes nothing). With --out, write
    /// the changes as an overlay directory to review instead.
    #[command(after_help = include_str!("../docs/help/catalog-refresh.txt"))]
    Refresh {
        /// Write `<provider>/prices.toml` overlay files here instead of the refreshed layer.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Only these providers (default: every configured provider with a price list).
        #[arg(long = "provider", short = 'p', value_name = "ID", add = ArgValueCandidates::new(provider_ids))]
        providers: Vec<String>,
        /// Also add every plan the providers sell as a template (id `PROVIDER-PLAN`), which
        /// listing, compare and smart deploy then choose from.
        #[arg(long)]
        all_plans: bool,
    },
    /// Each provider's prices: their date, age and source, and whether they are refreshed.
    #[command(after_help = "Examples:
  capsule openmesh catalog status
  capsule openmesh catalog status -o json")]
    Status,
    /// Print the JSON Schema of catalog files (generated from capsule's own catalog types);
    /// with --write, write it and the Markdown catalog reference into a directory.
    #[command(after_help = "Examples:
  capsule openmesh catalog schema > catalog.schema.json
  capsule openmesh catalog schema --write docs")]
    Schema {
        /// Write `catalog.schema.json` and `catalog.md` (the key reference) into DIR instead of
        /// printing the schema.
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
    /// Write a synthetic catalog with N templates (for benchmarks; the `dev` feature).
    #[cfg(feature = "dev")]
    #[command(hide = true)]
    Generate {
        /// Where to write the synthetic provider.
        dir: PathBuf,
        /// How many templates.
        #[arg(long, default_value_t = 1000)]
        templates: usize,
    },
}
