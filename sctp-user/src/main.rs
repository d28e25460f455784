//! `sctp-user`: the sctp-xdp controller.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::Result;
use aya::programs::XdpMode;
use clap::{Parser, Subcommand, ValueEnum};

use sctp_user::{
    bench, client, controller, echo::EchoConfig, inspect, metrics, program::LoadOptions, report, rules,
    rules::RuleArgs, top,
};

#[derive(Parser)]
#[command(name = "sctp-user", version, about = "XDP-accelerated SCTP inspector and fast path")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a pcap/pcapng file through the XDP program (BPF_PROG_TEST_RUN; needs root).
    Inspect {
        /// Capture file: pcap or pcapng; Ethernet, Linux cooked SLL/SLL2 or raw IP.
        #[arg(long)]
        pcap: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Show or change the rules of a running instance (its pinned maps), without
    /// detaching it.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Measure the program's cost per packet class against an empty XDP program
    /// (BPF_PROG_TEST_RUN; needs root).
    Bench {
        /// Runs per measurement inside the kernel.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Measurements per class (the median is reported).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
        rounds: u64,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Load generator and test client: N associations against an echo server, every echo
    /// checked; prints throughput and latency percentiles (JSON with --format json).
    Client {
        /// The echo server (ADDR:PORT; IPv6 as [ADDR]:PORT).
        #[arg(long, value_parser = controller::parse_listen)]
        connect: SocketAddr,
        /// Associations, each on its own one-to-many socket.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        associations: u64,
        /// Streams used per association.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        streams: u16,
        /// Message sizes in bytes, used in turn (comma-separated; at least 16).
        #[arg(long, value_delimiter = ',', default_value = "1024")]
        size: Vec<usize>,
        /// PPIDs, used in turn (comma-separated; e.g. 18 S1AP, 60 NGAP, 46 Diameter, 3 M3UA).
        #[arg(long, value_delimiter = ',', default_value = "18")]
        ppid: Vec<u32>,
        /// Share of messages sent unordered, 0 to 1.
        #[arg(long, default_value_t = 0.0)]
        unordered: f64,
        /// Messages per association.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        messages: u64,
        /// Messages in flight per association (closed loop).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        window: u64,
        /// Messages per second per association (default: as fast as the window allows).
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds without progress before an association is given up.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Send a crafted INIT flood out of an interface, from many source addresses (for
    /// benchmarks and for trying --init-rate and --deny-src; needs root).
    Flood {
        /// Interface to send from.
        #[arg(long)]
        iface: String,
        /// Destination (IPv4 ADDR:PORT).
        #[arg(long, default_value = "198.18.0.2:36412")]
        to: std::net::SocketAddrV4,
        /// MAC address of the receiving interface.
        #[arg(long, value_parser = sctp_user::flood::parse_mac)]
        dst_mac: [u8; 6],
        /// First source address; the next --sources - 1 addresses follow it.
        #[arg(long, default_value = "198.18.100.1")]
        from: std::net::Ipv4Addr,
        /// Source addresses used in turn.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
        sources: u32,
        /// INIT packets to send.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
    },
    /// A live table of a running instance (its --metrics address), refreshed every second.
    Top {
        /// Where the running `sctp-user run` serves metrics.
        #[arg(long, value_parser = controller::parse_listen, default_value = "127.0.0.1:9464")]
        metrics: SocketAddr,
    },
    /// Attach the XDP program to an interface and, unless --no-echo, run the one-to-many
    /// SCTP echo server; report what XDP saw joined with what the application received.
    Run {
        /// Interface to attach to.
        #[arg(long)]
        iface: String,
        /// XDP attach mode.
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        mode: Mode,
        /// Echo server address (repeat for a multi-homed endpoint: one port, several addresses).
        #[arg(long, value_parser = controller::parse_listen, default_value = "0.0.0.0:36412")]
        listen: Vec<SocketAddr>,
        /// Inspect only: no echo server (works on kernels without SCTP).
        #[arg(long)]
        no_echo: bool,
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
        #[arg(long, value_parser = controller::parse_listen, default_value = "127.0.0.1:9464")]
        metrics: SocketAddr,
        /// Do not serve metrics.
        #[arg(long)]
        no_metrics: bool,
        /// Flows exported with labels of their own (the rest are summed as flow="other").
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=1000))]
        top_flows: u64,
        /// bpffs directory for the counter maps, reused across restarts
        /// (default: /sys/fs/bpf/sctp-xdp/IFACE).
        #[arg(long)]
        pin_dir: Option<PathBuf>,
        /// Do not pin: counters start from zero at every start.
        #[arg(long, conflicts_with = "pin_dir")]
        no_pin: bool,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        rules: RuleArgs,
    },
}

#[derive(Subcommand)]
enum RulesAction {
    /// The active rules and the packets each dropped since it was applied.
    Show {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Replace the rules with those of a TOML file (and any rule flags), atomically: a
    /// packet is judged by the old set or the new one, never a mix. An empty file
    /// removes every rule.
    Apply {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        rules: Box<RuleArgs>,
    },
}

/// Which running instance.
#[derive(clap::Args)]
struct Target {
    /// The interface the instance runs on (its maps are pinned under
    /// /sys/fs/bpf/sctp-xdp/IFACE).
    #[arg(long, required_unless_present = "pin_dir")]
    iface: Option<String>,
    /// The instance's --pin-dir.
    #[arg(long)]
    pin_dir: Option<PathBuf>,
}

impl Target {
    fn dir(&self) -> PathBuf {
        self.pin_dir
            .clone()
            .unwrap_or_else(|| default_pin_dir(self.iface.as_deref().unwrap_or_default()))
    }
}

fn default_pin_dir(iface: &str) -> PathBuf {
    PathBuf::from("/sys/fs/bpf/sctp-xdp").join(iface)
}

#[derive(clap::Args)]
struct LoadArgs {
    /// Capacity of the per-flow LRU map (least recently seen flows are evicted).
    #[arg(long, default_value_t = 16384, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    flow_capacity: u32,
}

impl LoadArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions {
            flow_capacity: self.flow_capacity,
            pin_dir: None,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Let the kernel choose (native when the driver supports it).
    Auto,
    /// Native (driver) XDP.
    Native,
    /// Generic (skb) XDP: works everywhere, slower.
    Generic,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sctp-user: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect {
            pcap,
            format,
            load,
            rules,
        } => {
            let rules = rules::compile(&rules.config()?)?;
            let replay = inspect::replay(&pcap, load.options(), &rules)?;
            match format {
                Format::Json => println!("{}", report::to_json(&replay.snapshot, replay.too_short)),
                Format::Table => {
                    print!("{}", report::to_table(&replay.snapshot));
                    if replay.too_short > 0 {
                        println!(
                            "{} frame(s) shorter than an Ethernet header were not replayed",
                            replay.too_short
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Bench { repeat, rounds, json } => {
            let r = bench::run(repeat, rounds as usize)?;
            println!(
                "load: {:.0} ms; verifier processed {} instructions",
                r.load_ms,
                r.verified_instructions
                    .map_or_else(|| "an unknown number of".into(), |n| n.to_string())
            );
            println!("{:<28} {:>10} {:>8}", "class", "ns/packet", "x empty");
            println!("{:<28} {:>10.1} {:>8.2}", "empty XDP program", r.baseline_ns, 1.0);
            for (name, ns) in &r.classes {
                println!("{name:<28} {ns:>10.1} {:>8.2}", ns / r.baseline_ns);
            }
            println!(
                "\n{:<36} {:<16} {:>10} {:>10} {:>9}",
                "rule (packet passes)", "packet", "rule ns", "parser ns", "x parser"
            );
            for c in &r.rules {
                println!(
                    "{:<36} {:<16} {:>10.1} {:>10.1} {:>9.2}",
                    c.rule,
                    c.packet,
                    c.rule_ns,
                    c.parser_ns,
                    c.rule_ns / c.parser_ns
                );
            }
            if let Some(path) = json {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, serde_json::to_string_pretty(&r)?)?;
            }
            Ok(())
        }
        Command::Top { metrics } => top::run(metrics),
        Command::Flood {
            iface,
            to,
            dst_mac,
            from,
            sources,
            count,
        } => {
            let took = sctp_user::flood::run(&sctp_user::flood::Flood {
                iface,
                dst: *to.ip(),
                dst_port: to.port(),
                dst_mac,
                first_source: from,
                sources,
                count,
            })?;
            println!(
                "sent {count} INIT packets in {:.3} s ({:.0} packets/s)",
                took.as_secs_f64(),
                count as f64 / took.as_secs_f64()
            );
            Ok(())
        }
        Command::Rules { action } => match action {
            RulesAction::Show { target, format } => {
                let maps = rules::Pinned::open(&target.dir())?;
                let (active, _) = rules::hits(&maps)?;
                match format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&active)?),
                    Format::Table => print!("{}", rules::show_table(&active)),
                }
                Ok(())
            }
            RulesAction::Apply { target, rules } => {
                let compiled = rules::compile(&rules.config()?)?;
                let mut maps = rules::Pinned::open(&target.dir())?;
                rules::apply(&mut maps, &compiled)?;
                let (active, _) = rules::hits(&maps)?;
                eprintln!("sctp-user: {} rule(s) active", active.len());
                print!("{}", rules::show_table(&active));
                Ok(())
            }
        },
        Command::Client {
            connect,
            associations,
            streams,
            size,
            ppid,
            unordered,
            messages,
            window,
            rate,
            timeout,
            format,
        } => {
            if !(0.0..=1.0).contains(&unordered) {
                anyhow::bail!("--unordered must be between 0 and 1");
            }
            if rate.is_some_and(|r| r <= 0.0 || !r.is_finite()) {
                anyhow::bail!("--rate must be a positive number of messages per second");
            }
            let cfg = client::ClientConfig {
                connect,
                associations: associations as usize,
                streams,
                sizes: size,
                ppids: ppid,
                unordered,
                messages,
                window: window as usize,
                rate,
                timeout: std::time::Duration::from_secs(timeout),
            };
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let r = rt.block_on(client::run(cfg))?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&r)?),
                Format::Table => println!(
                    "{} associations: {} sent, {} echoed ({} bytes), {} mismatched in {:.2} s: {:.0} messages/s; latency us p50 {:.0} p90 {:.0} p99 {:.0} max {:.0}",
                    r.associations, r.sent, r.echoed, r.bytes_echoed, r.mismatches, r.elapsed_s, r.messages_per_s,
                    r.latency_us.p50, r.latency_us.p90, r.latency_us.p99, r.latency_us.max
                ),
            }
            for f in r.failures.iter().take(20) {
                eprintln!("sctp-user client: {f}");
            }
            anyhow::ensure!(
                r.failures.is_empty() && r.mismatches == 0 && r.echoed == r.sent,
                "the run had failures (see above)"
            );
            Ok(())
        }
        Command::Run {
            iface,
            mode,
            listen,
            no_echo,
            max_message,
            queue_limit,
            streams,
            interval,
            report,
            metrics,
            no_metrics,
            top_flows,
            pin_dir,
            no_pin,
            load,
            rules,
        } => controller::run(controller::RunOptions {
            rules: rules::compile(&rules.config()?)?,
            metrics: (!no_metrics).then(|| metrics::ExportConfig {
                listen: metrics,
                top_flows: top_flows as usize,
                state_file: (!no_pin).then(|| PathBuf::from("/run/sctp-xdp").join(format!("{iface}.json"))),
            }),
            load: LoadOptions {
                pin_dir: (!no_pin).then(|| pin_dir.unwrap_or_else(|| default_pin_dir(&iface))),
                ..load.options()
            },
            iface,
            mode: match mode {
                Mode::Auto => XdpMode::Default,
                Mode::Native => XdpMode::Driver,
                Mode::Generic => XdpMode::Skb,
            },
            echo: (!no_echo).then(|| EchoConfig {
                listen,
                max_message: max_message as usize,
                queue_limit: queue_limit as usize,
                streams,
                ..EchoConfig::default()
            }),
            interval,
            report,
        }),
    }
}
