//! `sctp-user run`: attach the XDP program, run the echo server, feed XDP's DATA events
//! into the join and its packet summaries into the association table, export, report,
//! and on SIGINT/SIGTERM shut down gracefully and detach.

use std::{
    collections::HashSet,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anyhow::{Context as _, Result};
use aya::{
    maps::{HashMap, MapData},
    programs::XdpMode,
};
use sctp_common::abi::FlowKey;
use tokio::signal::unix::SignalKind;

use super::{parse_listen, LoadArgs, Mode};
use crate::{
    assoc::{
        live::LiveAssociations,
        messages::{Matched, ANSWER_TIMEOUT_NS},
        Association, Associations,
    },
    bpf::{
        events::{drain_events, drain_summaries, Withdrawals},
        maps::{data_events_lost, packet_events_lost, responses},
        LoadOptions, XdpSctp, LINEAR_FRAME_MAX,
    },
    doc::{AssociationDoc, SnapshotDoc, TableSummaryDoc, Unreplayed},
    echo::{self, EchoConfig, EchoState},
    export::{http, ExportConfig, Exporter},
    join::{self, Wire},
    report::table,
    rules::{self, Compiled, RuleArgs},
    snapshot::Snapshot,
    sys::{
        bpffs::{default_pin_dir, prepare_pin_dir, state_file, InstanceLock},
        clock::monotonic_ns,
        iface::{index_of, interface_name, lookup_index, mtu, require_interface},
        privilege::{require, LOAD},
    },
};

/// How often XDP's events are drained into the join (the 1 MiB ring holds ~26,000 DATA
/// events) and the association table (the 4 MiB ring, ~50,000 one-chunk packets).
const EVENT_DRAIN_INTERVAL: Duration = Duration::from_millis(20);

/// Rows the final report's tables list, of flows and of associations (the JSON report
/// has every one): a stop with a full table prints a page, not a hundred thousand lines.
const REPORT_ROWS: usize = 50;

/// Events held back while their table is busy (an export is reading it): past this, the
/// drain waits for the table instead, and the kernel's ring holds the rest.
const MAX_PENDING: usize = 1 << 15;

/// Events drained from a ring and not yet handed to their table.
struct Pending<T>(Vec<T>);

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T> Pending<T> {
    /// Hands `new`, after any held back, to `ingest` on `table`: at once if the table is
    /// free, or if it must (`last`, or too many held back); else they wait for the next
    /// round.
    fn feed<X>(&mut self, new: Vec<T>, table: &Mutex<X>, last: bool, ingest: impl FnOnce(&mut X, &[T])) {
        if self.0.is_empty() {
            self.0 = new;
        } else {
            self.0.extend(new);
        }
        if self.0.is_empty() {
            return;
        }
        let mut guard = match table.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::WouldBlock) if !last && self.0.len() < MAX_PENDING => return,
            Err(_) => table.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        };
        ingest(&mut guard, &self.0);
        self.0.clear();
    }
}

/// The attached interfaces, checked once a second: a deleted (or replaced) one takes its
/// XDP program with it, noticed by its index changing.
struct Watched {
    ifaces: Vec<(String, u32)>,
    /// The lookup itself is failing (out of file descriptors, say): warned once.
    failing: AtomicBool,
}

impl Watched {
    fn new(names: &[String], indexes: &[u32]) -> Self {
        Self { ifaces: names.iter().cloned().zip(indexes.iter().copied()).collect(), failing: AtomicBool::new(false) }
    }

    /// The first interface gone. A lookup that fails (EMFILE) says nothing of the
    /// interface: it is logged once, and the interface kept.
    fn gone(&self) -> Option<String> {
        for (name, index) in &self.ifaces {
            match lookup_index(name) {
                Ok(Some(i)) if i == *index => {}
                Ok(_) => return Some(name.clone()),
                Err(e) => {
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        log::warn!("cannot check interface {name} ({e}); still attached, checking again each second");
                    }
                    return None;
                }
            }
        }
        if self.failing.swap(false, Ordering::Relaxed) {
            log::info!("interfaces checked again");
        }
        None
    }
}

/// Attach the XDP program to an interface and, unless --no-echo, run the one-to-many
/// SCTP echo server; report what XDP saw joined with what the application received.
#[derive(clap::Args)]
pub struct Args {
    /// Interface to attach to; repeat (or separate with commas) for several (one instance,
    /// counters shared, the association table across them: a multi-homed peer's paths on
    /// two links make one association).
    #[arg(long, required = true, value_delimiter = ',', value_parser = interface_name)]
    iface: Vec<String>,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    mode: Mode,
    /// Echo server address (repeat for a multi-homed endpoint: one port, several addresses).
    #[arg(long, value_parser = parse_listen, default_value = "0.0.0.0:36412")]
    listen: Vec<SocketAddr>,
    #[command(flatten)]
    parts: Parts,
    /// Largest message accepted; a bigger one aborts its association.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    max_message: u64,
    /// Echoes queued per association while the send buffer is full (more are shed).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    queue_limit: u64,
    /// Streams offered in each direction.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    streams: u16,
    /// Seconds between reports on stdout (0: only at exit).
    #[arg(long, default_value_t = 0)]
    interval: u64,
    /// Write the final report (echo, join, XDP counters) to this file as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics and JSON at /stats.
    #[arg(long, value_parser = parse_listen, default_value = "127.0.0.1:9464")]
    metrics: SocketAddr,
    /// Do not serve metrics.
    #[arg(long)]
    no_metrics: bool,
    /// This node's name in /stats and in the `target_info` metric (default: the host name).
    #[arg(long, env = "NODE_NAME", value_parser = parse_node_name)]
    node_name: Option<String>,
    /// Flows exported with labels of their own (the rest are summed as flow="other"),
    /// and the busiest flows listed in /stats (with the number in the table).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=1000))]
    top_flows: u64,
    /// bpffs directory for the counter maps, reused across restarts
    /// (default: /sys/fs/bpf/sctp-xdp/IFACE, the first --iface).
    #[arg(long)]
    pin_dir: Option<PathBuf>,
    /// Do not pin: counters start from zero at every start.
    #[arg(long, conflicts_with = "pin_dir")]
    no_pin: bool,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    rules: RuleArgs,
}

/// What runs besides the XDP program.
#[derive(clap::Args)]
struct Parts {
    /// Inspect only: no echo server (works on kernels without SCTP).
    #[arg(long)]
    no_echo: bool,
    /// Keep no association table: XDP then sends no packet summaries to user space (it
    /// saves their cost per packet; /stats then has no associations).
    #[arg(long)]
    no_associations: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        iface,
        mode,
        listen,
        parts: Parts { no_echo, no_associations },
        max_message,
        queue_limit,
        streams,
        interval,
        report,
        metrics,
        no_metrics,
        node_name,
        top_flows,
        pin_dir,
        no_pin,
        load,
        rules,
    } = args;
    // Ranges are checked by clap; these only change the type.
    let (top_flows, max_message, queue_limit) =
        (usize::try_from(top_flows)?, usize::try_from(max_message)?, usize::try_from(queue_limit)?);
    let rules = rules::compile(&rules.config()?)?;
    serve(&RunOptions {
        rules,
        // The host name is read only when something exports it.
        metrics: (!no_metrics)
            .then(|| {
                anyhow::Ok(ExportConfig {
                    listen: metrics,
                    top_flows,
                    state_file: None,
                    node: node_name.map_or_else(host_name, Ok)?,
                })
            })
            .transpose()?,
        pins: match (no_pin, pin_dir) {
            (true, _) => Pins::Off,
            (false, Some(dir)) => Pins::At(dir),
            (false, None) => Pins::Default,
        },
        load: load.options(),
        ifaces: iface,
        mode: match mode {
            Mode::Auto => XdpMode::Default,
            Mode::Native => XdpMode::Driver,
            Mode::Generic => XdpMode::Skb,
        },
        echo: (!no_echo).then(|| EchoConfig { listen, max_message, queue_limit, streams, ..EchoConfig::default() }),
        associations: !no_associations,
        interval,
        report,
    })
}

/// A node name: what Prometheus labels and dashboards can show as is.
fn parse_node_name(s: &str) -> Result<String, String> {
    let fits = !s.is_empty() && s.len() <= 253 && s.chars().all(|c| c.is_ascii_graphic());
    if fits {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?}: a node name is 1 to 253 printable characters without spaces"))
    }
}

/// The host name (uname's nodename), the default node name.
fn host_name() -> Result<String> {
    // SAFETY: uname fills a zeroed utsname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&raw mut u) } != 0 {
        anyhow::bail!("cannot read the host name ({}): pass --node-name", std::io::Error::last_os_error());
    }
    // SAFETY: uname NUL-terminates nodename.
    let name = unsafe { std::ffi::CStr::from_ptr(u.nodename.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

/// Where `run` pins its maps.
enum Pins {
    Off,
    /// Found (or mounted) once the echo socket is up: the SCTP check comes first.
    Default,
    At(PathBuf),
}

/// What `run` was asked to do.
struct RunOptions {
    /// At least one, each once.
    ifaces: Vec<String>,
    mode: XdpMode,
    /// What to load (its pin directory comes from `pins`).
    load: LoadOptions,
    pins: Pins,
    /// The echo server, or `None` for inspection only (`--no-echo`).
    echo: Option<EchoConfig>,
    /// Keep the association table (not `--no-associations`).
    associations: bool,
    /// Seconds between reports (0: only at exit).
    interval: u64,
    /// Where to write the final report as JSON.
    report: Option<PathBuf>,
    /// The Prometheus / JSON exporter.
    metrics: Option<ExportConfig>,
    /// The rules to start with (`sctp-user rules apply` changes them later).
    rules: Compiled,
}

/// Writes the pairs of the associations met mid-way that the table knows to the kernel
/// (`abi::maps::MIDWAY`), each once while it is in the table: their round trips are
/// timed from then on.
struct MidwayPairs {
    map: HashMap<MapData, FlowKey, u32>,
    written: HashSet<FlowKey>,
}

impl MidwayPairs {
    fn new(map: HashMap<MapData, FlowKey, u32>) -> Self {
        Self { map, written: HashSet::new() }
    }

    /// A pair the kernel refused is tried again at the next call. (A full map evicts its
    /// oldest pair, which is not written again: that association's round trips stop.)
    fn write(&mut self, table: &Associations) {
        let mut written = HashSet::new();
        for (key, partner) in table.iter().filter_map(Association::midway_pairs).flatten() {
            if !self.written.contains(&key) {
                if let Err(e) = self.map.insert(key, partner, 0) {
                    log::debug!("pairing an association met mid-way: {e}");
                    continue;
                }
            }
            written.insert(key);
        }
        self.written = written;
    }
}

/// Prints a table of the run: standard output closed or full is said, and the run goes
/// on (its counters are exported anyway).
fn show(table: &str) {
    if let Err(e) = super::print(table) {
        log::warn!("{e:#}");
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "a run from start to stop, in order: bind, load, attach, serve, detach, report"
)]
fn serve(opts: &RunOptions) -> Result<()> {
    require(LOAD)?;
    for (i, iface) in opts.ifaces.iter().enumerate() {
        if opts.ifaces[..i].contains(iface) {
            anyhow::bail!("--iface {iface} is given twice: name each interface once");
        }
        require_interface(iface)?;
    }
    let ifaces = opts.ifaces.join(",");
    // The socket first: on a kernel without SCTP this is the one-line error, before any
    // XDP is attached.
    let sock = opts.echo.as_ref().map(echo::bind).transpose()?;
    let metrics_listener = match &opts.metrics {
        Some(m) => Some(
            std::net::TcpListener::bind(m.listen)
                .with_context(|| format!("--metrics {}: cannot listen there", m.listen))?,
        ),
        None => None,
    };
    let pin_dir = match &opts.pins {
        Pins::Off => None,
        Pins::Default => Some(default_pin_dir(&opts.ifaces[0])?),
        Pins::At(dir) => Some(dir.clone()),
    };
    // Before anything is loaded, read or written: a second instance on the same pins is
    // refused.
    let _instance = match &pin_dir {
        Some(dir) => {
            prepare_pin_dir(dir)?;
            Some(InstanceLock::take(dir)?)
        }
        None => None,
    };
    let metrics = opts.metrics.clone().map(|m| ExportConfig { state_file: pin_dir.as_deref().map(state_file), ..m });
    if let Some(state) = metrics.as_ref().and_then(|m| m.state_file.as_ref()).and_then(|f| f.parent()) {
        std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
    }
    let mut exporter = metrics.map(Exporter::new).transpose()?;
    // Frames of a jumbo MTU arrive in fragments: the multi-buffer variant reads them whole.
    let jumbo = opts.ifaces.iter().any(|i| mtu(i).is_some_and(|m| m as usize + 14 > LINEAR_FRAME_MAX));
    let load = LoadOptions { pin_dir, multi_buffer: jumbo, ..opts.load.clone() };
    let mut prog = XdpSctp::load(&load)?;
    // Before attaching: no packet is judged without the rules asked for.
    rules::apply(&mut prog, &opts.rules)?;
    for iface in &opts.ifaces {
        prog.attach(iface, opts.mode)?;
    }
    if let Some(why) = prog.egress_missing() {
        if opts.rules.validates_tags() {
            anyhow::bail!("{why}: --validate-vtag needs it to learn this host's own associations");
        }
        log::warn!("{why}; rules with validate-vtag would drop this host's own associations");
    }
    prog.set_events(sock.is_some(), opts.associations)?;
    let data_ring = sock.is_some().then(|| prog.take_data_events()).transpose()?;
    let packet_ring = opts.associations.then(|| prog.take_packet_events()).transpose()?;
    let midway = Mutex::new(opts.associations.then(|| prog.take_midway().map(MidwayPairs::new)).transpose()?);
    let diameter = Mutex::new((prog.take_pending()?, Matched::default()));
    // An interface deleted (or replaced) takes its XDP program with it: noticed by its
    // index changing.
    let indexes = opts.ifaces.iter().map(|i| index_of(i)).collect::<Result<Vec<u32>>>()?;
    let live = Arc::new(Mutex::new(LiveAssociations::new(indexes.iter().copied().zip(opts.ifaces.iter().cloned()))));
    match &opts.echo {
        Some(cfg) => log::info!("XDP attached to {ifaces}; echo server on {:?}; Ctrl-C to stop", cfg.listen),
        None => log::info!("XDP attached to {ifaces} (no echo server); Ctrl-C to stop"),
    }
    let state = Arc::new(Mutex::new(EchoState::default()));
    let wire = Arc::new(Mutex::new(Wire::default()));
    let local_port = opts.echo.as_ref().map_or(0, |c| c.listen[0].port());
    let sock_echo = opts.echo.is_some();
    let interfaces = Watched::new(&opts.ifaces, &indexes);
    // The loop below (export, interface checks) runs on this thread; the metrics and echo
    // servers on the runtime's two workers: building the export of a large table holds
    // up neither.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let lost_interface = rt.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let server = sock.map(|sock| {
            let cfg = opts.echo.clone().unwrap();
            tokio::spawn(echo::serve(sock, cfg, state.clone(), stopped, Duration::from_secs(5)))
        });
        // The rings are drained on a thread of their own: an export building a large
        // table, or a slow scrape, never keeps them from being emptied in time.
        let draining = Arc::new(AtomicBool::new(true));
        let reader = {
            let (wire, live, draining) = (wire.clone(), live.clone(), draining.clone());
            let (mut data_ring, mut packet_ring) = (data_ring, packet_ring);
            std::thread::Builder::new().name("sctp-drain".into()).spawn(move || {
                let mut events = Pending::default();
                let mut withdrawals = Withdrawals::default();
                let mut summaries = Pending::default();
                // The program does not wake us per event: drain on a timer instead.
                loop {
                    let last = !draining.load(Ordering::Relaxed);
                    if let Some(ring) = &mut data_ring {
                        // The clock first: every withdrawal sent before it is in this drain.
                        let now = monotonic_ns();
                        let settled = withdrawals.settle(drain_events(ring), now, last);
                        events.feed(settled, &wire, last, |w, all| all.iter().for_each(|e| w.ingest(e)));
                    }
                    if let Some(ring) = &mut packet_ring {
                        summaries.feed(drain_summaries(ring), &live, last, LiveAssociations::ingest);
                    }
                    if last {
                        return;
                    }
                    std::thread::sleep(EVENT_DRAIN_INTERVAL);
                }
            })?
        };
        let export = |exporter: &mut Option<Exporter>, prog: &XdpSctp| -> Result<()> {
            let now = monotonic_ns();
            let mut assocs = live.lock().unwrap();
            if !opts.associations && exporter.is_none() {
                return Ok(());
            }
            let snap = Snapshot::take(prog)?;
            let egress = Snapshot::take_egress(prog)?;
            let matched = {
                let mut d = diameter.lock().unwrap();
                let (pending, matched) = &mut *d;
                for key in pending.sweep(now, ANSWER_TIMEOUT_NS) {
                    matched.unanswered(key);
                }
                matched.responses = responses(prog)?;
                matched.clone()
            };
            if opts.associations {
                assocs.lost = packet_events_lost(prog)?;
                // Counted in the kernel; the summaries gave the structure (a direction
                // seen both arriving and leaving, forwarded, is taken as it arrived).
                assocs.table.overlay(&|k| snap.flows.get(k).or_else(|| egress.flows.get(k)));
                assocs.table.set_answers(&matched);
                assocs.expire(now);
                if let Some(m) = midway.lock().unwrap().as_mut() {
                    m.write(&assocs.table);
                }
            }
            if let Some(exp) = exporter {
                let st = state.lock().unwrap();
                let mut w = wire.lock().unwrap();
                w.events_lost = data_events_lost(prog)?;
                exp.build(
                    &snap,
                    &egress,
                    sock_echo.then_some((&*st, &*w, local_port)),
                    opts.associations.then_some(&*assocs),
                    &matched,
                    now,
                )?;
            }
            Ok(())
        };
        export(&mut exporter, &prog)?;
        // Served from the first build on: the server runs on a worker at once, and a
        // scrape before that build would see nothing (counters "vanished").
        if let (Some(listener), Some(exp)) = (metrics_listener, exporter.as_ref()) {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            log::info!("metrics on http://{}/metrics and /stats", listener.local_addr()?);
            tokio::spawn(http::serve(listener, exp.published.clone()));
        }
        let mut every_second = tokio::time::interval(Duration::from_secs(1));
        let mut sigint = tokio::signal::unix::signal(SignalKind::interrupt())?;
        let mut sigterm = tokio::signal::unix::signal(SignalKind::terminate())?;
        let mut tick = tokio::time::interval(Duration::from_secs(opts.interval.max(1)));
        tick.tick().await;
        let lost_interface = loop {
            tokio::select! {
                _ = sigint.recv() => break None,
                _ = sigterm.recv() => break None,
                _ = tick.tick(), if opts.interval > 0 => show(&table::to_table(&Snapshot::take(&prog)?, usize::MAX)),
                _ = every_second.tick() => {
                    if let Some(gone) = interfaces.gone() {
                        log::error!("{gone} was deleted or replaced: its XDP program went with it; stopping");
                        break Some(gone);
                    }
                    export(&mut exporter, &prog)?;
                }
            }
        };
        log::info!("stopping: shutting associations down gracefully");
        let _ = stop_tx.send(true);
        if let Some(s) = server {
            s.await.context("echo server task")??;
        }
        draining.store(false, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || reader.join()).await;
        export(&mut exporter, &prog)?;
        anyhow::Ok(lost_interface)
    })?;
    let snapshot = Snapshot::take(&prog)?;
    let egress_snapshot = opts.report.is_some().then(|| Snapshot::take_egress(&prog)).transpose()?;
    drop(prog); // detaches
    log::info!("XDP detached from {ifaces}");
    show(&table::to_table(&snapshot, REPORT_ROWS));
    let live = live.lock().unwrap();
    if opts.associations {
        show(&live.table.table(REPORT_ROWS));
    }
    // Everything, for the JSON report only (a full table takes seconds to write out).
    let egress = egress_snapshot.map(|e| SnapshotDoc::of(&e, Unreplayed::default(), usize::MAX));
    let associations = (opts.associations && opts.report.is_some())
        .then(|| (AssociationDoc::busiest_live(&live, usize::MAX), TableSummaryDoc::of(&live)));
    if opts.echo.is_some() {
        let st = state.lock().unwrap();
        let joined =
            join::join(local_port, &st, &wire.lock().unwrap(), &snapshot.flows, opts.associations.then_some(&*live));
        show(&join::to_table(&joined, &st.stats));
        if let Some(path) = &opts.report {
            let doc = serde_json::json!({
                "echo": st.stats,
                "join": joined,
                "xdp": SnapshotDoc::of(&snapshot, Unreplayed::default(), usize::MAX),
                "egress": egress,
                "associations": associations.as_ref().map(|a| &a.0),
                "associations_summary": associations.as_ref().map(|a| &a.1),
            });
            std::fs::write(path, serde_json::to_string_pretty(&doc)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    } else if let Some(path) = &opts.report {
        let mut doc = serde_json::to_value(SnapshotDoc::of(&snapshot, Unreplayed::default(), usize::MAX))?;
        doc["egress"] = serde_json::to_value(egress)?;
        if let Some((list, summary)) = associations {
            doc["associations"] = serde_json::to_value(list)?;
            doc["associations_summary"] = serde_json::to_value(summary)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    if let Some(iface) = lost_interface {
        anyhow::bail!(
            "{iface} disappeared while attached (deleted or replaced): start sctp-user run again once it is back"
        );
    }
    Ok(())
}
