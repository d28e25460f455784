//! `sctp-user`: the sctp-xdp controller.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use aya::programs::XdpMode;
use clap::{Parser, Subcommand, ValueEnum};

use sctp_user::{
    bench, inspect,
    program::{LoadOptions, XdpSctp},
    report,
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
    /// Attach the XDP program to an interface and report what it counts until Ctrl-C.
    Run {
        /// Interface to attach to.
        #[arg(long)]
        iface: String,
        /// XDP attach mode.
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        mode: Mode,
        /// Seconds between reports on stdout (0: only at exit).
        #[arg(long, default_value_t = 0)]
        interval: u64,
        #[command(flatten)]
        load: LoadArgs,
    },
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
        Command::Inspect { pcap, format, load } => {
            let replay = inspect::replay(&pcap, load.options())?;
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
            println!("{:<28} {:>10} {:>8}", "class", "ns/packet", "x empty");
            println!("{:<28} {:>10.1} {:>8.2}", "empty XDP program", r.baseline_ns, 1.0);
            for (name, ns) in &r.classes {
                println!("{name:<28} {ns:>10.1} {:>8.2}", ns / r.baseline_ns);
            }
            if let Some(path) = json {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, serde_json::to_string_pretty(&r)?)?;
            }
            Ok(())
        }
        Command::Run {
            iface,
            mode,
            interval,
            load,
        } => {
            let mut prog = XdpSctp::load(load.options())?;
            let mode = match mode {
                Mode::Auto => XdpMode::Default,
                Mode::Native => XdpMode::Driver,
                Mode::Generic => XdpMode::Skb,
            };
            prog.attach(&iface, mode)?;
            eprintln!("sctp-user: XDP attached to {iface}; Ctrl-C to detach and exit");
            wait_for_signal(interval, || {
                print!("{}", report::to_table(&prog.snapshot()?));
                Ok(())
            })?;
            print!("{}", report::to_table(&prog.snapshot()?));
            Ok(())
        }
    }
}

/// Blocks until SIGINT or SIGTERM, calling `tick` every `interval` seconds (if non-zero).
fn wait_for_signal(interval: u64, mut tick: impl FnMut() -> Result<()>) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    extern "C" fn on_signal(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let mut waited = 0u64;
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 100;
        if interval > 0 && waited >= interval * 1000 {
            waited = 0;
            tick()?;
        }
    }
    Ok(())
}
