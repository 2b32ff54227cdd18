//! The `overdracht` command line: a thin shell over the library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use overdracht::batch::{self, Origin, Progress, Rejects, Sink, Summary};
use overdracht::convert::{ConvertOptions, OutputKind};
use overdracht::diagnostics::printable;
use overdracht::source::Format;

/// mimalloc: conversion allocates many small JSON values; against glibc malloc it measured
/// faster single-threaded and scales better across `--jobs` (see README "Performance").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Medical-data handover for Dutch GZSP care: GP and paediatrician records to FHIR R4 nl-core.
#[derive(Parser)]
#[command(name = "overdracht", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert records (FHIR STU3/R4 JSON, flat JSON, NHG Professional Summary XML) to FHIR R4 nl-core.
    ///
    /// Exit status: 0 all converted, 1 some records rejected, 2 usage or I/O error.
    Convert(ConvertArgs),
    /// Run the HTTP API (handovers, $convert, $validate) with an embedded database.
    ///
    /// Zero configuration: a SQLite file and a demo signing key are created in the data
    /// directory on first start. Settings: --config FILE or OVERDRACHT_* variables
    /// (see docs/configuration.md); the flags below win.
    Serve(ServeArgs),
    /// Mint a bearer token with the local demo key (development and tests only).
    ///
    /// Refuses when the service is configured with real token issuers.
    Token(TokenArgs),
    /// Validate FHIR R4 JSON (files, directories, NDJSON, or -) against R4 and the profiles each resource claims.
    ///
    /// Exit status: 0 valid, 1 invalid, 2 usage or I/O error.
    Validate(ValidateArgs),
    /// Deliver transaction Bundles (files, directories, NDJSON from `convert`, or -) to a receiving FHIR server.
    ///
    /// Retries timeouts, connection errors, 429 and 5xx with backoff; falls back to a batch where
    /// the server refuses transactions. Bundles not delivered go to the dead-letter file (--rejects)
    /// with the reason. Exit status: 0 all delivered, 1 some not delivered, 2 usage or I/O error.
    Deliver(DeliverArgs),
    /// Operate the delivery outbox of `serve`: list deliveries, retry dead letters, drop deliveries.
    ///
    /// Retries and drops are recorded in the delivery history (who, when, why).
    /// Exit status: 0 done, 1 a named delivery was not found (or not in a state that allows it), 2 usage or I/O error.
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// The NEN 7513 audit trail: verify its hash chain, print its head, export it.
    ///
    /// Exit status of verify: 0 intact, 1 tampered, 2 usage or I/O error.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The contracting evidence report for the health insurer: agreements, team access, teams and
    /// their lead practitioners, handovers, reads, denials, break-the-glass reviews, audit chain.
    ///
    /// Reads the database of `serve` (same --data-dir/--config) and the agreements of
    /// policy.agreements_dir (or the built-in examples with --demo). Recorded as a `report` audit
    /// entry. Fields of the JSON and the page: docs/report.md. Exit status: 0 done, 1 the audit trail is not intact, 2 usage or I/O error.
    Report(ReportArgs),
}

#[derive(Args)]
struct ReportArgs {
    /// First day, YYYY-MM-DD (Europe/Amsterdam), inclusive [default: twelve months before --to]
    #[arg(long)]
    from: Option<String>,
    /// Last day, YYYY-MM-DD, inclusive [default: today]
    #[arg(long)]
    to: Option<String>,
    /// html (one self-contained page) or json [default: html when --out ends in .html, else json]
    #[arg(long, value_parser = ["html", "json"])]
    format: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The GZSP provider (URA) [default: the only receiver in the agreements]
    #[arg(long)]
    provider: Option<String>,
    /// Your UZI number, recorded in the audit entry (the OS user name is recorded always).
    #[arg(long)]
    operator: Option<String>,
    /// Use the example agreements built into the binary, as `serve --demo` does.
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Subcommand)]
enum OutboxAction {
    /// List deliveries: those not yet delivered, or --state ..., or --all.
    List {
        /// Only deliveries in this state (repeatable): queued, in-flight, retrying, delivered, dead-letter.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Every delivery, delivered ones included.
        #[arg(long, conflicts_with = "states")]
        all: bool,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Queue deliveries again (dead letters, or waiting ones), due now, with a fresh count of attempts.
    Retry {
        /// Handover ids.
        #[arg(required = true)]
        handovers: Vec<String>,
        /// Who does this (recorded) [default: $USER].
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a delivery that will not be made (e.g. the receiver has the data another way); recorded.
    Drop {
        /// Handover id.
        handover: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
        /// Who does this (recorded) [default: $USER].
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and report the first entry that was changed, removed, inserted or reordered.
    Verify {
        /// An externally anchored head, SEQ:HASH as `audit head` printed it (repeatable): the
        /// entry at SEQ must still have HASH (catches a rewritten tail).
        #[arg(long = "anchor")]
        anchors: Vec<overdracht::audit::chain::Anchor>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the chain head (SEQ:HASH, time) for anchoring outside overdracht.
    Head {
        /// As JSON ({"count", "hash", "updated_at"}).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write the entries as NDJSON AuditEvents (IHE BALP), oldest first. Recorded as an Export entry.
    Export {
        /// From this date (YYYY-MM-DD, UTC) or date-time with offset, inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Up to this date or date-time, exclusive.
        #[arg(long)]
        to: Option<String>,
        /// Only this patient's entries (BSN).
        #[arg(long)]
        patient: Option<String>,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the flagged entries (break-the-glass) nobody has reviewed yet. Recorded as an audit query.
    Flagged {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Record a privacy officer's review of a flagged entry (an audit entry of its own; entries are never changed).
    Review {
        /// The id of the flagged entry (as `audit flagged` lists it).
        entry: String,
        /// justified or not-justified.
        #[arg(long)]
        conclusion: overdracht::audit::review::Conclusion,
        /// What was found (no clinical content).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Args)]
struct DeliverArgs {
    /// Input files or directories (*.json: one Bundle each; *.ndjson: one Bundle per line), or -.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The FHIR base URL to deliver to (the transaction is POSTed to it).
    #[arg(long, required_unless_present = "targets", conflicts_with = "targets")]
    target: Option<String>,
    /// A bearer token for --target.
    #[arg(long, env = "OVERDRACHT_DELIVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A delivery targets file (see examples/delivery-targets.json); use with --receiver.
    #[arg(long, requires = "receiver")]
    targets: Option<PathBuf>,
    /// The receiving provider's URA number: picks its target from --targets.
    #[arg(long, requires = "targets")]
    receiver: Option<String>,
    /// Number of Bundles delivered at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Where Bundles that were not delivered are kept, with their reasons (NDJSON).
    #[arg(long, default_value = "overdracht-deliver-rejects.ndjson")]
    rejects: PathBuf,
    /// Attempts per Bundle before it is given up (default: the target's, else 10).
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Seconds a request may take (default: the target's, else 60).
    #[arg(long)]
    timeout: Option<f64>,
    /// Milliseconds to wait after the first failed attempt; doubles per attempt (default: the target's, else 1000).
    #[arg(long)]
    backoff_ms: Option<u64>,
}

#[derive(Args)]
struct ValidateArgs {
    /// Input files or directories (*.json, *.ndjson), or - for standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Also validate against this profile (canonical URL).
    #[arg(long)]
    profile: Option<String>,
    /// A FHIR package folder or .tgz to load profiles from (repeatable), e.g. nictiz.fhir.nl.r4.nl-core.
    #[arg(long = "package")]
    packages: Vec<PathBuf>,
    /// How to report an extension whose definition is not loaded: information (the HL7 validator's
    /// default), warning, error or ignore.
    #[arg(long, default_value = "information")]
    unknown_extensions: overdracht::validate::UnknownExtensions,
}

#[derive(Args)]
struct StoreArgs {
    /// Directory of the database and the demo key [env: OVERDRACHT_DATA_DIR] [default: ./overdracht-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Configuration file (TOML, or JSON if it ends in .json) [env: OVERDRACHT_CONFIG]
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [env: OVERDRACHT_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    store: StoreArgs,
    /// Print a ready-to-use demo token and a curl line that posts an example handover.
    /// Without configured token issuers, this trusts the local demo key.
    #[arg(long)]
    demo: bool,
    /// Trust the local demo key although no token issuer is configured (insecure: for
    /// demonstrations and tests only) [env: OVERDRACHT_INSECURE_TRUST_DEMO_KEY]
    #[arg(long)]
    insecure_trust_demo_key: bool,
}

#[derive(Args)]
struct TokenArgs {
    /// UZI number of the person (or of a HIS's server certificate).
    #[arg(long)]
    uzi: String,
    /// UZI role code, e.g. 01.015 (GP), 01.047 (SO), 01.056 (AVG).
    #[arg(long)]
    role: String,
    /// URA number of the organisation (8 digits).
    #[arg(long)]
    ura: String,
    /// Purpose of use (HL7 v3 PurposeOfUse): TREAT, COC, ETREAT, ...
    #[arg(long, default_value = "TREAT")]
    purpose: String,
    /// Lifetime of the token in minutes.
    #[arg(long, default_value_t = 60)]
    ttl_minutes: i64,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
struct ConvertArgs {
    /// Input files or directories (*.json, *.xml, *.ndjson; searched recursively), or - for standard input.
    /// NDJSON inputs hold one record per line.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Force the input format instead of detecting it.
    #[arg(long = "from", value_enum)]
    from: Option<Format>,
    /// Output: a directory (one file per record) or a file; standard output if absent.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output shape: a transaction Bundle per record, or NDJSON resources.
    #[arg(long, value_enum, default_value = "bundle")]
    output: OutputKind,
    /// Number of records converted in parallel (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Where rejected records are kept, with their reasons (NDJSON).
    #[arg(long, default_value = "overdracht-rejects.ndjson")]
    rejects: PathBuf,
    /// The sender's identity used in resource ids, e.g. `agb-z|01990140` (default: from the record).
    #[arg(long)]
    sender: Option<String>,
    /// Pretty-print Bundles.
    #[arg(long)]
    pretty: bool,
    /// Print every warning about unmapped source data, not only the counts (clinical
    /// leftovers are always printed).
    #[arg(long, short)]
    verbose: bool,
    /// Reject a record that leaves clinical source elements unmapped.
    #[arg(long)]
    strict: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Convert(args) => finish(run_convert(args)),
        Command::Validate(args) => finish(run_validate(args)),
        Command::Deliver(args) => finish(run_deliver(args)),
        Command::Outbox { action } => finish(run_outbox(action)),
        Command::Serve(args) => finish(run_serve(args).map(|()| ExitCode::SUCCESS)),
        Command::Token(args) => finish(run_token(args).map(|()| ExitCode::SUCCESS)),
        Command::Audit(cmd) => finish(run_audit(cmd)),
        Command::Report(args) => finish(run_report(args)),
    }
}

/// Usage and I/O errors: one readable line, exit status 2.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("overdracht: {}", printable(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

fn run_validate(a: ValidateArgs) -> anyhow::Result<ExitCode> {
    use overdracht::validate::{validate_files, Validator};
    let loaded;
    let v = if a.packages.is_empty() {
        Validator::embedded()
    } else {
        loaded = Validator::with_packages(&a.packages)?;
        &loaded
    };
    let v = &v.with_settings(overdracht::validate::Settings { unknown_extensions: a.unknown_extensions });
    if let Some(p) = &a.profile {
        if !v.knows_profile(p) {
            anyhow::bail!("unknown profile {p}: add the package that defines it with --package");
        }
    }
    let files = batch::expand_inputs(&a.inputs)?;
    if files.is_empty() {
        anyhow::bail!("no input files found (looked for *.json, *.ndjson)");
    }
    let (mut valid, mut invalid) = (0usize, 0usize);
    for f in validate_files(v, &files, a.profile.as_deref())? {
        if f.outcome.has_errors() {
            invalid += 1;
        } else {
            valid += 1;
        }
        for i in &f.outcome.issues {
            // A finding names the record's own elements and values: shown, not obeyed.
            println!("{}", printable(&format!("{}: {i}", f.location())));
        }
    }
    eprintln!("valid {valid}, invalid {invalid}");
    Ok(if invalid > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn settings(store: &StoreArgs) -> anyhow::Result<overdracht::config::Settings> {
    Ok(overdracht::config::Settings::load_with_data_dir(store.config.as_deref(), store.data_dir.as_deref())?)
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = settings(&args.store)?;
    if let Some(l) = args.listen {
        settings.listen = l;
    }
    if args.demo {
        overdracht::api::demo::configure(&mut settings);
    }
    if args.insecure_trust_demo_key {
        settings.auth.insecure_trust_demo_key = true;
    }
    overdracht::telemetry::init(&settings.log, settings.log_format, std::io::stderr);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let app = overdracht::api::Application::build(&settings).await?;
        let addr = app.addr();
        tracing::info!(%addr, data_dir = %settings.data_dir.display(), "overdracht is listening");
        if args.demo {
            match overdracht::api::demo::walkthrough(&settings, addr) {
                Ok(text) => print!("{text}"),
                Err(e) => eprintln!("overdracht: --demo: {e}"),
            }
        }
        app.run_until_stopped(overdracht::api::startup::shutdown_signal()).await?;
        Ok(())
    })
}

fn run_outbox(action: OutboxAction) -> anyhow::Result<ExitCode> {
    use overdracht::deliver::outbox::{self, State};
    let store_args = match &action {
        OutboxAction::List { store, .. } | OutboxAction::Retry { store, .. } | OutboxAction::Drop { store, .. } => {
            store
        }
    };
    let settings = settings(store_args)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let store = overdracht::store::Store::open(&settings.database_url(), 1).await?;
        let code = match action {
            OutboxAction::List { states, all, json, .. } => {
                let wanted = State::selection(&states, all).map_err(anyhow::Error::msg)?;
                let rows = outbox::list(&store, &wanted).await?;
                for e in &rows {
                    if json {
                        println!("{}", serde_json::to_string(e)?);
                    } else {
                        println!("{}", e.line());
                    }
                }
                eprintln!("{}", outbox::counts_line(&outbox::counts(&store).await?));
                ExitCode::SUCCESS
            }
            OutboxAction::Retry { handovers, actor: a, .. } => {
                let mut missing = 0;
                for h in &handovers {
                    if outbox::retry(&store, h, &outbox::operator(a.as_deref())).await? {
                        eprintln!("queued again: {h}");
                    } else {
                        eprintln!("not retried: {h} (no such delivery, or delivered or in flight)");
                        missing += 1;
                    }
                }
                if missing > 0 {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
            OutboxAction::Drop { handover, reason, actor: a, .. } => {
                if outbox::drop(&store, &handover, &outbox::operator(a.as_deref()), &reason).await? {
                    eprintln!("dropped: {handover} (recorded in the delivery history)");
                    ExitCode::SUCCESS
                } else {
                    eprintln!("not dropped: {handover} (no such delivery, or in flight)");
                    ExitCode::from(1)
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}

/// Opens the existing database of these settings (never creates one).
async fn open_existing_store(args: &StoreArgs) -> anyhow::Result<overdracht::store::Store> {
    Ok(overdracht::store::Store::open(&settings(args)?.existing_database_url()?, 2).await?)
}

fn run_report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    use overdracht::report;
    let mut settings = settings(&a.store)?;
    if a.demo && settings.policy.agreements_dir.is_none() {
        settings.policy.demo_examples = true;
    }
    let access =
        overdracht::policy::loaded::Loaded::from_settings(&settings.policy, overdracht::api::demo::agreements)?;
    let today = overdracht::policy::today();
    let period = report::Period::parse(a.from.as_deref(), a.to.as_deref(), today)?;
    let provider = match a.provider {
        Some(p) => p,
        None => report::default_provider(&access.agreements)?,
    };
    let html = report::html_wanted(a.format.as_deref(), a.out.as_deref());
    if !report::names_receiver(&access.agreements, &provider) {
        eprintln!("overdracht: warning: no loaded agreement names URA {provider} as receiver; check --provider");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (text, intact) = rt.block_on(async {
        let store = open_existing_store(&a.store).await?;
        let sources = report::Sources { store: &store, agreements: &access.agreements, policy: &access.engine };
        let made = report::made_by_operator(sources, &provider, period, today, html, a.operator.as_deref()).await;
        store.close().await;
        anyhow::Ok(made?)
    })?;
    match &a.out {
        Some(p) => {
            report::save(p, &text)?;
            eprintln!("report written to {}", p.display());
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    if !intact {
        eprintln!(
            "overdracht: the audit trail is NOT intact (see the report's last section; `overdracht audit verify`)"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    use overdracht::audit;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        match cmd {
            AuditCommand::Verify { anchors, store } => {
                let store = open_existing_store(&store).await?;
                let report = audit::verify(&store, &anchors).await?;
                store.close().await;
                println!("{}", report.summary());
                Ok(if report.problem.is_none() { ExitCode::SUCCESS } else { ExitCode::from(1) })
            }
            AuditCommand::Head { json, store } => {
                let store = open_existing_store(&store).await?;
                let head = audit::head(&store).await?;
                store.close().await;
                if json {
                    println!("{}", serde_json::to_string(&head)?);
                } else {
                    println!("{}", head.line());
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Export { from, to, patient, out, store } => {
                let client = audit::command_line_client("audit export");
                let x = audit::export::Export::of_options(from.as_deref(), to.as_deref(), patient.as_deref(), client)
                    .map_err(anyhow::Error::msg)?;
                let store = open_existing_store(&store).await?;
                let mut sink: Box<dyn Write> = match &out {
                    Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
                    None => Box::new(std::io::BufWriter::new(std::io::stdout())),
                };
                let n = audit::export::export(&store, &x, &mut sink).await;
                store.close().await;
                eprintln!("exported {} audit events", n?);
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Flagged { store } => {
                let store = open_existing_store(&store).await?;
                let pending =
                    audit::review::pending_listed_by(&store, audit::command_line_client("audit flagged")).await?;
                store.close().await;
                for p in &pending {
                    println!("{}", audit::review::pending_line(p));
                }
                eprintln!("{} flagged entries to review", pending.len());
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Review { entry, conclusion, note, store } => {
                let store = open_existing_store(&store).await?;
                let new = audit::review::NewReview {
                    entry_id: &entry,
                    conclusion,
                    note: note.as_deref(),
                    reviewer: None,
                    client: Some(audit::command_line_client("audit review")),
                    request_id: None,
                };
                let result = audit::review::review(&store, &new).await;
                store.close().await;
                match result {
                    Ok(id) => {
                        println!(
                            "review recorded: entry {entry} {conclusion} (review entry {}, position {})",
                            id.id, id.seq
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(audit::review::ReviewError::Audit(e)) => Err(e.into()),
                    Err(e) => {
                        eprintln!("overdracht: {}", printable(&e.to_string()));
                        Ok(ExitCode::from(1))
                    }
                }
            }
        }
    })
}

fn run_token(args: TokenArgs) -> anyhow::Result<()> {
    let settings = settings(&args.store)?;
    let token = overdracht::api::auth::mint_demo_token(
        &settings,
        &overdracht::api::auth::TokenRequest {
            uzi: args.uzi,
            uzi_role: args.role,
            ura: args.ura,
            purpose_of_use: args.purpose,
            ttl_seconds: args.ttl_minutes.saturating_mul(60),
        },
    )?;
    println!("{token}");
    Ok(())
}

fn run_convert(args: ConvertArgs) -> anyhow::Result<ExitCode> {
    let files = batch::expand_inputs(&args.inputs)?;
    if files.is_empty() {
        anyhow::bail!("no input files found (looked for *.json, *.xml, *.ndjson)");
    }
    let sink = Sink::for_out(args.out.as_deref())?;
    let opts = ConvertOptions {
        format: args.from,
        sender: args.sender.clone(),
        output: args.output,
        strict: args.strict,
        ..Default::default()
    };
    let jobs = args.jobs.unwrap_or_else(batch::default_jobs);
    let mut rejects = Rejects::new(args.rejects.clone());
    let mut progress = Reporter::new(args.verbose);
    let summary = batch::run(&files, &opts, jobs, sink, &mut rejects, args.pretty, &mut progress)?;
    if rejects.used() {
        eprintln!("rejected records and their reasons are in {}", rejects.path().display());
    }
    Ok(if summary.rejected > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn run_deliver(a: DeliverArgs) -> anyhow::Result<ExitCode> {
    use overdracht::deliver::{push, FhirClient, Target};
    let mut target =
        Target::of_options(a.target.as_deref(), a.token.as_deref(), a.targets.as_deref(), a.receiver.as_deref())?;
    if let Some(n) = a.max_attempts {
        target.max_attempts = n.max(1);
    }
    if let Some(s) = a.timeout {
        target.request_timeout_ms = (s * 1000.0) as u64;
    }
    if let Some(ms) = a.backoff_ms {
        target.backoff.initial_ms = ms;
    }
    let files = batch::expand_inputs(&a.inputs)?;
    if files.is_empty() {
        anyhow::bail!("no input files found (looked for *.json, *.ndjson)");
    }
    target.check()?;
    let client = std::sync::Arc::new(FhirClient::new(&target)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut dead = push::DeadLetters::new(a.rejects.clone());
    let mut progress = Reporter::new(false);
    let summary = runtime.block_on(push::push(&files, client, a.jobs, &mut dead, &mut progress))?;
    if dead.used() {
        eprintln!("Bundles not delivered and their reasons are in {}", dead.path().display());
    }
    Ok(if summary.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Progress on a terminal (a bar), plain lines otherwise; problems one line each.
struct Reporter {
    bar: Option<ProgressBar>,
    verbose: bool,
}

impl Reporter {
    fn new(verbose: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {pos} records ({per_sec}) {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Reporter { bar, verbose }
    }

    /// One line on standard error. Lines hold text from outside (element names and values of
    /// a record, a receiving server's reasons): it is shown, never obeyed by the terminal.
    fn line(&self, s: &str) {
        let s = &printable(s);
        match &self.bar {
            Some(b) => b.println(s),
            None => {
                let _ = writeln!(std::io::stderr(), "{s}");
            }
        }
    }
}

impl Progress for Reporter {
    fn record_done(&mut self, origin: &Origin, result: &batch::Outcome) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        for l in result.lines(origin, self.verbose) {
            self.line(&l);
        }
    }

    fn finish(&mut self, s: &Summary, elapsed: Duration) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        self.line(&s.line(elapsed, self.verbose));
    }
}

impl overdracht::deliver::push::PushProgress for Reporter {
    fn done(&mut self, origin: &Origin, d: &overdracht::deliver::Delivery) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        if let Err(f) = &d.result {
            self.line(&format!("not delivered {origin}: {f}"));
        }
    }

    fn finish(&mut self, s: &overdracht::deliver::push::PushSummary, elapsed: Duration) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        self.line(&s.line(elapsed));
    }
}
