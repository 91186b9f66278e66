//! `strata`: a Kafka-compatible log broker with tiered storage.

mod broker;
mod bucket;
mod cli;
mod cli_security;
mod clock;
mod config;
mod error;
mod group;
mod handlers;
mod internal_log;
mod kafka_keys;
mod lake;
mod lake_cli;
mod log_cleaner;
mod meta;
mod metrics;
mod recompress;
mod records;
mod security;
mod send;
mod server;
mod tasks;
mod topic;
mod txn;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use strata_tiering::{CacheLimits, ChunkCache, RemoteStore};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::bucket::startup::StartMode;
use crate::bucket::{BucketState, Role};
use crate::config::BrokerConfig;

/// A Kafka-compatible log broker. Kafka clients connect unchanged.
/// Without a subcommand it runs the broker.
#[derive(Parser, Debug)]
#[command(name = "strata", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on for Kafka clients (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "ADDR")]
    listen: SocketAddr,
    /// Host and port clients are told to connect to (default: the listen address).
    #[arg(long, value_name = "HOST:PORT")]
    advertised_listener: Option<String>,
    /// Directory for partitions and metadata.
    #[arg(long, default_value = "./data", value_name = "DIR")]
    data_dir: PathBuf,
    /// A Kafka-style properties file of broker configs.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A broker config under Kafka's name, e.g. --set num.partitions=3 (repeatable; wins over --config).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Address of the Prometheus endpoint, GET /metrics (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9644", value_name = "ADDR")]
    metrics_listen: SocketAddr,
    /// Object store for the cold tier (file:///dir, s3://bucket/prefix, gs://..., az://...);
    /// same as --set remote.log.storage.url=URL. Default: DATA_DIR/remote.
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
    /// Restore an empty data directory from the bucket (its catalogue,
    /// manifests and group offsets) before serving.
    #[arg(long, conflicts_with = "read_replica")]
    restore: bool,
    /// Serve the topics of the primary whose bucket --remote names, read
    /// only, from the bucket and this broker's own cache.
    #[arg(long)]
    read_replica: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Look at the topics of a running broker.
    Topics {
        #[command(subcommand)]
        action: TopicsCommand,
    },
    /// Look at the object store a broker writes to.
    Bucket {
        #[command(subcommand)]
        action: BucketCommand,
    },
    /// A topic's lake view (its Iceberg table) and the handoff to the stream.
    Lake {
        #[command(subcommand)]
        action: LakeCommand,
    },
    /// SCRAM users in a data directory, for the first administrator before
    /// the broker starts (as `kafka-storage format --add-scram` does).
    Users {
        #[command(subcommand)]
        action: UsersCommand,
    },
}

#[derive(Subcommand, Debug)]
enum UsersCommand {
    /// Adds (or replaces) a user's SCRAM credential; the password is read
    /// from the first line of standard input and never stored, only its
    /// salted keys. Run it while the broker is stopped.
    Add {
        /// The user name (its principal is User:NAME).
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// The iteration count, from 4096 to 16384.
        #[arg(long, default_value_t = 4096)]
        iterations: i32,
        /// The broker's data directory.
        #[arg(long, default_value = "./data", value_name = "DIR")]
        data_dir: PathBuf,
    },
}

/// Where `strata lake` finds the table and the stream.
#[derive(clap::Args, Debug)]
struct LakeTarget {
    /// The topic.
    topic: String,
    /// The broker serving the stream (host:port; the first of a list).
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "ADDR")]
    bootstrap: String,
    /// The broker's object store (file:///dir, s3://bucket/prefix, ...); by
    /// default the local store of --data-dir.
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
    /// The broker's data directory, whose local store holds the table
    /// without --remote.
    #[arg(long, default_value = "./data", value_name = "DIR")]
    data_dir: PathBuf,
    /// Client security settings (security.protocol, sasl.*, ssl.*), as
    /// Kafka's tools take them.
    #[arg(long, value_name = "FILE")]
    command_config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum LakeCommand {
    /// The newest snapshot, and per partition its end offset (exclusive),
    /// its lake watermark (greatest event time) and the lag behind the stream.
    Status {
        #[command(flatten)]
        target: LakeTarget,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Commits a consumer group's offsets at a snapshot's end offsets, so
    /// that a job that read the table up to that snapshot continues in the
    /// stream at the next record. The group must have no active members.
    Handoff {
        #[command(flatten)]
        target: LakeTarget,
        /// The consumer group.
        #[arg(long)]
        group: String,
        /// The snapshot id (the newest without it).
        #[arg(long)]
        snapshot: Option<i64>,
    },
}

#[derive(Subcommand, Debug)]
enum BucketCommand {
    /// List objects no manifest references (orphans), objects a manifest
    /// references that are missing, and segments whose size differs from
    /// their manifest's. Exits with 1 when it found anything.
    Check {
        /// The object store (file:///dir, s3://bucket/prefix, ...); by
        /// default the local store of --data-dir.
        #[arg(long, value_name = "URL")]
        remote: Option<String>,
        /// The data directory whose local store to check, without --remote.
        #[arg(long, default_value = "./data", value_name = "DIR")]
        data_dir: PathBuf,
        /// Delete the orphans older than --grace-secs.
        #[arg(long)]
        repair: bool,
        /// Orphans younger than this are left alone by --repair: a segment
        /// uploaded just before its manifest's copy is written looks like one.
        #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
        grace_secs: u64,
    },
}

#[derive(Subcommand, Debug)]
enum TopicsCommand {
    /// Per partition: log start, local (hot-tier) start, last tiered offset,
    /// high watermark, bytes in each tier, the records not yet uploaded,
    /// and for compacted topics the cleaner's state.
    Describe {
        /// The broker to ask (host:port; the first of a comma-separated list).
        #[arg(long, default_value = "127.0.0.1:9092", value_name = "ADDR")]
        bootstrap: String,
        /// One topic; every topic when omitted.
        topic: Option<String>,
        /// The broker's metrics endpoint (host:port), for the cleaner's
        /// state of compacted topics.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
        /// Client security settings (security.protocol, sasl.*, ssl.*), as
        /// Kafka's tools take them.
        #[arg(long, value_name = "FILE")]
        command_config: Option<PathBuf>,
    },
}

fn build_config(cli: &Cli) -> anyhow::Result<BrokerConfig> {
    let mut config = BrokerConfig::default();
    if let Some(path) = &cli.config {
        config.load_properties(path)?;
    }
    for kv in &cli.set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("--set {kv:?}: expected KEY=VALUE"))?;
        config.set(k, v).with_context(|| format!("--set {kv}"))?;
    }
    if let Some(url) = &cli.remote {
        config
            .set("remote.log.storage.url", url)
            .context("--remote")?;
    }
    Ok(config)
}

fn advertised(cli: &Cli, bound: SocketAddr) -> anyhow::Result<(String, i32)> {
    if let Some(al) = &cli.advertised_listener {
        let (host, port) = al
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("--advertised-listener {al:?}: expected HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| anyhow!("--advertised-listener {al:?}: bad port"))?;
        if host.is_empty() {
            bail!("--advertised-listener {al:?}: empty host");
        }
        return Ok((
            host.trim_matches(|c| c == '[' || c == ']').to_string(),
            port as i32,
        ));
    }
    if bound.ip().is_unspecified() {
        warn!("listening on all interfaces: advertising localhost; set --advertised-listener for remote clients");
    }
    Ok(advertised_of(bound))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Bucket {
        action:
            BucketCommand::Check {
                remote,
                data_dir,
                repair,
                grace_secs,
            },
    }) = &cli.command
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let clean = runtime.block_on(bucket::check_cli::run(
            remote.as_deref(),
            data_dir,
            *repair,
            Duration::from_secs(*grace_secs),
        ))?;
        std::process::exit(if clean { 0 } else { 1 });
    }
    if let Some(Command::Users {
        action:
            UsersCommand::Add {
                name,
                mechanism,
                iterations,
                data_dir,
            },
    }) = &cli.command
    {
        return add_user(name, mechanism, *iterations, data_dir);
    }
    if let Some(Command::Lake { action }) = &cli.command {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let target = |t: &'_ LakeTarget| -> anyhow::Result<(RemoteStore, String)> {
            let store = match &t.remote {
                Some(url) => RemoteStore::open(url)?,
                None => RemoteStore::local(&t.data_dir.join("remote"))?,
            };
            Ok((store, cli::first_bootstrap(&t.bootstrap)?.to_string()))
        };
        return runtime.block_on(async {
            match action {
                LakeCommand::Status { target: t, json } => {
                    let (store, bootstrap) = target(t)?;
                    lake_cli::status(
                        lake_cli::Target {
                            store,
                            bootstrap: &bootstrap,
                            security: cli_security::ClientSecurity::load(
                                t.command_config.as_deref(),
                            )?,
                            topic: &t.topic,
                        },
                        *json,
                    )
                    .await
                }
                LakeCommand::Handoff {
                    target: t,
                    group,
                    snapshot,
                } => {
                    let (store, bootstrap) = target(t)?;
                    lake_cli::handoff(
                        lake_cli::Target {
                            store,
                            bootstrap: &bootstrap,
                            security: cli_security::ClientSecurity::load(
                                t.command_config.as_deref(),
                            )?,
                            topic: &t.topic,
                        },
                        group,
                        *snapshot,
                    )
                    .await
                }
            }
        });
    }
    if let Some(Command::Topics {
        action:
            TopicsCommand::Describe {
                bootstrap,
                topic,
                metrics,
                command_config,
            },
    }) = &cli.command
    {
        return cli::topics_describe(
            cli::first_bootstrap(bootstrap)?,
            &cli_security::ClientSecurity::load(command_config.as_deref())?,
            topic.as_deref(),
            metrics.as_deref(),
        );
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = build_config(&cli)?;
    let read_replica = config.value("remote.log.read.replica");
    if !read_replica.is_empty() {
        bucket::follower::Endpoint::parse(&read_replica)
            .map_err(|e| anyhow!("remote.log.read.replica: {e}"))?;
    }
    let ignored = config.without_effect();
    if !ignored.is_empty() {
        info!(
            keys = ?ignored.keys().collect::<Vec<_>>(),
            "Kafka broker configs accepted without effect on a single node"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let background = background_runtime("strata-background")?;
    // The lake's translation has a thread of its own: encoding a commit's
    // Parquet files takes seconds of CPU, which must not hold up uploads.
    let lake = background_runtime("strata-lake")?;
    let result = runtime.block_on(run(
        cli,
        config,
        background.handle().clone(),
        lake.handle().clone(),
    ));
    background.shutdown_background();
    lake.shutdown_background();
    result
}

/// A runtime of background passes (uploads, remote deletions, retention;
/// the lake's translation). Its threads, workers and blocking pool alike,
/// run at nice 10:
/// a segment upload copies megabytes at a time, and on a small machine it
/// must yield the CPU to appends and fetches on the hot tail rather than
/// compete with them as an equal.
fn background_runtime(name: &'static str) -> std::io::Result<tokio::runtime::Runtime> {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .on_thread_start(|| {
            // 24 on the crate's 0-99 scale is nice 10 under SCHED_OTHER.
            let priority = ThreadPriorityValue::try_from(24u8).expect("within 0-99");
            let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
            if let Err(e) = set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(priority),
                policy,
            ) {
                warn!(error = ?e, "cannot lower the priority of a background thread");
            }
        })
        .enable_all()
        .build()
}

async fn run(
    cli: Cli,
    config: BrokerConfig,
    background: tokio::runtime::Handle,
    lake: tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let (endpoints, bound, (host, port)) = bind_listeners(&cli, &config).await?;
    let metrics_listener = TcpListener::bind(cli.metrics_listen)
        .await
        .with_context(|| format!("cannot listen for metrics on {}", cli.metrics_listen))?;
    let metrics_bound = metrics_listener.local_addr()?;
    let metrics_handle = metrics::install()?;

    let data_dir = cli.data_dir.clone();
    let remote = open_remote(&config, &data_dir).await?;
    // The cache directory is emptied and created on a blocking thread.
    let cache = {
        let dir = data_dir.join("cache");
        let limits = CacheLimits {
            max_bytes: config.i64("remote.log.reader.cache.bytes") as u64,
            chunk_bytes: config.i64("remote.log.reader.chunk.bytes") as u64,
            max_inflight: config.i64("remote.log.reader.max.inflight.gets") as usize,
            readahead_max_bytes: config.i64("remote.log.reader.readahead.max.bytes") as u64,
        };
        tokio::task::spawn_blocking(move || ChunkCache::new(dir, limits)).await??
    };
    let mode = if cli.read_replica {
        StartMode::ReadReplica
    } else {
        StartMode::Primary {
            restore: cli.restore,
        }
    };
    let prepared = bucket::startup::prepare(mode, &data_dir, &remote, &config).await?;
    if let (Role::ReadReplica, Some(catalogue)) = (prepared.role, &prepared.catalogue) {
        bucket::replica::prepare_replica(&remote, &data_dir, catalogue, &config).await?;
    }
    let bucket_state = BucketState::new(prepared.role, prepared.instance, prepared.generation);
    let tls = endpoints.iter().any(|e| e.listener.protocol.tls());
    let sasl = endpoints.iter().any(|e| e.listener.protocol.sasl());
    let security = {
        let (config, data_dir) = (config.clone(), data_dir.clone());
        tokio::task::spawn_blocking(move || security::Security::open(&data_dir, &config, tls))
            .await?
            .context("security settings")?
    };
    if sasl {
        let configured = config.value("sasl.enabled.mechanisms");
        let not_offered: Vec<&str> = configured
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty() && !security.mechanisms.iter().any(|o| o == m))
            .collect();
        if security.mechanisms.is_empty() {
            bail!(
                "sasl.enabled.mechanisms={configured:?}: a SASL listener needs one of {}",
                security::sasl::OFFERED_MECHANISMS.join(", ")
            );
        }
        if !not_offered.is_empty() {
            warn!(
                mechanisms = ?not_offered,
                "sasl.enabled.mechanisms names mechanisms Strata does not offer; SASL listeners offer the others"
            );
        }
    }
    let broker = {
        let (advertised, data_dir) = ((host.clone(), port), data_dir.clone());
        tokio::task::spawn_blocking(move || {
            Broker::open(
                config,
                &data_dir,
                advertised,
                remote,
                cache,
                bucket_state,
                security,
            )
        })
        .await??
    };
    let mut broker = broker;
    broker.listen = Some(bound);
    let broker = Arc::new(broker);
    if prepared.restored.is_some() {
        if let Some(snapshot) = broker.read_offsets_snapshot().await {
            let b = Arc::clone(&broker);
            tokio::task::spawn_blocking(move || b.restore_group_offsets(&snapshot)).await?;
        }
    }
    if prepared.role == Role::ReadReplica {
        broker.follow_lease().await;
    }
    if prepared.role == Role::Primary {
        // The lease is taken before the broker serves, and the removal of
        // topics deleted before a restart goes on.
        Arc::clone(&broker).renew_lease().await;
        let b = Arc::clone(&broker);
        tokio::task::spawn_blocking(move || b.resume_remote_deletions()).await??;
    }
    info!(data_dir = %data_dir.display(), node_id = broker.node_id, role = ?prepared.role, "broker ready");

    let (stop_tx, stop_rx) = watch::channel(false);
    broker.ensure_cleaner_threads();
    match prepared.role {
        Role::Primary => {
            spawn_periodic(
                &background,
                &broker,
                "log.retention.check.interval.ms",
                stop_rx.clone(),
                |b| Box::pin(b.retention_pass()),
            );
            spawn_periodic(
                &background,
                &broker,
                "remote.log.manager.task.interval.ms",
                stop_rx.clone(),
                |b| Box::pin(b.upload_pass()),
            );
            spawn_periodic(
                &lake,
                &broker,
                "lake.translation.interval.ms",
                stop_rx.clone(),
                |b| Box::pin(b.lake_pass()),
            );
            let lease_ms = broker.config().i64("remote.log.owner.lease.ms").max(4) as u64;
            spawn_every(
                &background,
                &broker,
                Duration::from_millis(lease_ms / 4),
                stop_rx.clone(),
                |b| Box::pin(b.renew_lease()),
            );
        }
        Role::ReadReplica => spawn_periodic(
            &background,
            &broker,
            "remote.log.replica.refresh.ms",
            stop_rx.clone(),
            |b| Box::pin(b.refresh_replica()),
        ),
    }
    if broker.security.tls.is_some() {
        spawn_periodic(
            &background,
            &broker,
            "ssl.reload.interval.ms",
            stop_rx.clone(),
            |b| {
                Box::pin(async move {
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Some(tls) = &b.security.tls {
                            tls.reload_if_changed();
                        }
                    })
                    .await;
                })
            },
        );
    }
    let foreground = tokio::runtime::Handle::current();
    spawn_periodic(
        &foreground,
        &broker,
        "group.session.check.interval.ms",
        stop_rx.clone(),
        |b| {
            Box::pin(async move {
                b.groups.expire();
                let _ = tokio::task::spawn_blocking(move || b.groups.expire_offsets()).await;
            })
        },
    );
    spawn_periodic(
        &foreground,
        &broker,
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        stop_rx.clone(),
        |b| {
            Box::pin(async move {
                let _ = tokio::task::spawn_blocking(move || b.txns.expire(&*b)).await;
            })
        },
    );
    spawn_periodic(
        &foreground,
        &broker,
        "log.flush.scheduler.interval.ms",
        stop_rx.clone(),
        |b| {
            Box::pin(async move {
                let _ = tokio::task::spawn_blocking(move || b.flush_due()).await;
            })
        },
    );

    server::announce(bound, (&host, port));
    metrics::announce(metrics_bound);
    let named: Vec<_> = endpoints
        .iter()
        .map(|e| {
            (
                e.listener.name.clone(),
                e.listener.protocol.name(),
                e.socket.local_addr().expect("bound"),
            )
        })
        .collect();
    server::announce_listeners(&named, !broker.config().value("listeners").is_empty());
    tokio::spawn(metrics::serve(
        Arc::clone(&broker),
        metrics_handle,
        metrics_listener,
        stop_rx.clone(),
    ));
    let server = tokio::spawn(server::serve(Arc::clone(&broker), endpoints, stop_rx));

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => info!(signal = "SIGTERM", "shutting down"),
        _ = int.recv() => info!(signal = "SIGINT", "shutting down"),
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    broker.release_lease().await;
    let b = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || b.shutdown()).await??;
    Ok(())
}

/// Binds every listener: those of `listeners` when it is set, else the one
/// PLAINTEXT listener of `--listen`. Returns them, the first one's bound
/// address, and the first one's advertised address (the broker's own in
/// the bucket's lease and anywhere no listener is known).
async fn bind_listeners(
    cli: &Cli,
    config: &BrokerConfig,
) -> anyhow::Result<(Vec<server::Endpoint>, SocketAddr, (String, i32))> {
    use security::listeners::{parse, ListenerSpec, SecurityProtocol};
    let configured = config.value("listeners");
    let specs = if configured.trim().is_empty() {
        vec![ListenerSpec {
            name: "PLAINTEXT".into(),
            protocol: SecurityProtocol::Plaintext,
            host: cli.listen.ip().to_string(),
            port: cli.listen.port(),
            advertised: None,
        }]
    } else {
        parse(
            &configured,
            &config.value("advertised.listeners"),
            &config.value("listener.security.protocol.map"),
        )
        .map_err(|e| anyhow!(e))?
    };
    // A copied KRaft server.properties names its controller listeners among
    // `listeners`; a single Strata node has no controller quorum to serve
    // on them, so they are not bound.
    let controller_names = config.value("controller.listener.names");
    let controller: Vec<&str> = controller_names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let mut endpoints = Vec::new();
    let mut first = None;
    for spec in specs {
        if controller.contains(&spec.name.as_str()) {
            info!(listener = %spec.name, "a controller listener (controller.listener.names): not bound, as a single node has no controller quorum");
            continue;
        }
        let host = if spec.host.is_empty() {
            "0.0.0.0".to_string()
        } else {
            spec.host.clone()
        };
        let socket = TcpListener::bind((host.as_str(), spec.port))
            .await
            .with_context(|| format!("cannot listen on {host}:{} ({})", spec.port, spec.name))?;
        let bound = socket.local_addr()?;
        let (advertised_host, advertised_port) =
            match (&spec.advertised, configured.trim().is_empty()) {
                (Some((h, p)), _) => (
                    h.clone(),
                    if *p == 0 {
                        bound.port() as i32
                    } else {
                        *p as i32
                    },
                ),
                (None, true) => advertised(cli, bound)?,
                (None, false) => advertised_of(bound),
            };
        first.get_or_insert((bound, (advertised_host.clone(), advertised_port)));
        endpoints.push(server::Endpoint {
            socket,
            listener: Arc::new(security::Listener {
                name: spec.name,
                protocol: spec.protocol,
                advertised_host,
                advertised_port,
            }),
        });
    }
    let (bound, advertised) = first.ok_or_else(|| anyhow!("listeners: no listener"))?;
    Ok((endpoints, bound, advertised))
}

/// `strata users add`: stores a SCRAM credential for `name` in
/// `data_dir`, the password read from standard input.
fn add_user(
    name: &str,
    mechanism: &str,
    iterations: i32,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    use security::scram::{Credential, Mechanism, MAX_ITERATIONS, MIN_ITERATIONS};
    let m = Mechanism::from_name(mechanism).ok_or_else(|| {
        anyhow!("--mechanism {mechanism}: expected SCRAM-SHA-256 or SCRAM-SHA-512")
    })?;
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        bail!("--iterations {iterations}: must be from {MIN_ITERATIONS} to {MAX_ITERATIONS}");
    }
    if name.is_empty() {
        bail!("the user name must not be empty");
    }
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on standard input");
    }
    let mut users = security::load_users(data_dir)?;
    users
        .entry(name.to_string())
        .or_default()
        .insert(m, Credential::new(m, password.as_bytes(), iterations));
    security::save_users(data_dir, &users)?;
    println!("added {} credentials for user {name}", m.name());
    Ok(())
}

/// The address a listener of `listeners` advertises when
/// `advertised.listeners` does not name it.
fn advertised_of(bound: SocketAddr) -> (String, i32) {
    let host = if bound.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        bound.ip().to_string()
    };
    (host, bound.port() as i32)
}

/// A background pass run by [`spawn_periodic`].
type PeriodicJob = fn(Arc<Broker>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `job` on `runtime` every `interval_key` milliseconds until
/// shutdown, one run at a time.
fn spawn_periodic(
    runtime: &tokio::runtime::Handle,
    broker: &Arc<Broker>,
    interval_key: &str,
    stop: watch::Receiver<bool>,
    job: PeriodicJob,
) {
    let period = Duration::from_millis(broker.config().i64(interval_key).max(1) as u64);
    spawn_every(runtime, broker, period, stop, job)
}

/// Runs `job` on `runtime` every `period` until shutdown, one run at a time.
fn spawn_every(
    runtime: &tokio::runtime::Handle,
    broker: &Arc<Broker>,
    period: Duration,
    mut stop: watch::Receiver<bool>,
    job: PeriodicJob,
) {
    let broker = Arc::clone(broker);
    runtime.spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
            }
            job(Arc::clone(&broker)).await;
        }
    });
}

/// Opens the cold tier's object store and checks that it answers, so that
/// a wrong URL or an unreachable store stops start-up with a clear message.
async fn open_remote(
    config: &BrokerConfig,
    data_dir: &std::path::Path,
) -> anyhow::Result<RemoteStore> {
    let url = config.value("remote.log.storage.url");
    let store = if url.is_empty() {
        let dir = data_dir.join("remote");
        tokio::task::spawn_blocking(move || RemoteStore::local(&dir)).await??
    } else {
        RemoteStore::open(&url)?
    };
    match tokio::time::timeout(Duration::from_secs(15), store.check()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => bail!("the remote store {} does not answer: {e}", store.url),
        Err(_) => bail!("the remote store {} did not answer within 15 s", store.url),
    }
    info!(url = %store.url, "remote storage");
    Ok(store)
}
