//! `sctp-user inspect`: replay a capture and print what the parser counted.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::{Format, LoadArgs};
use crate::{
    doc::{AssociationDoc, CaptureDoc, ChecksumsDoc, CountersDoc, FlowDoc, InspectHead, MessageDoc},
    replay::{self, engine::Kind, Replay},
    report::{html, messages, table},
    rules::{self, RuleArgs},
    snapshot::busiest,
};

/// Flows the table shows unless `--top` says otherwise.
const TABLE_TOP: usize = 20;

/// Replay a capture through the parser and the rules, on the capture's own clock.
#[derive(clap::Args)]
pub struct Args {
    /// Capture file: pcap or pcapng (gzip- or zstd-compressed too); Ethernet, Linux cooked
    /// SLL/SLL2, raw IP or BSD loopback. `-` reads standard input (a pipe or a FIFO works:
    /// the file is read once, in order, as it comes).
    #[arg(long)]
    pcap: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// `host`: the parser and rules compiled for this machine (no root). `kernel`: the XDP
    /// program itself, through `BPF_PROG_TEST_RUN` (needs root). Both give the same answer.
    #[arg(long, value_enum, default_value_t = Kind::Host)]
    engine: Kind,
    /// Show the N busiest associations and flows (the table shows 20 by default, the
    /// JSON every one).
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// The table lists flows (one per direction and tag) after the associations.
    #[arg(long)]
    flows: bool,
    /// Threads of the host engine [default: one per core, one for a file under 16 MiB];
    /// associations are spread over them and the result is the same as on one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Also write an HTML report to FILE: summary, chunk mix, and for the busiest
    /// associations their TSN graph, round trips and throughput over time.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Do not check the SCTP checksums (`CRC32c`) of the packets.
    #[arg(long)]
    no_checksum: bool,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    rules: RuleArgs,
}

pub fn run(args: &Args) -> Result<()> {
    let rules = rules::compile(&args.rules.config()?)?;
    let opts = replay::Options {
        engine: args.engine,
        load: args.load.options(),
        checksums: !args.no_checksum,
        threads: args.threads.map_or_else(|| default_threads(&args.pcap), usize::from),
        trace: args.html.is_some(),
    };
    // A report that cannot be written says so before the replay, not after.
    if let Some(path) = &args.html {
        File::create(path).with_context(|| format!("--html: cannot write {}", path.display()))?;
    }
    let replay = replay::replay(&args.pcap, &opts, &rules)?;
    if let (Some(path), Some(traces)) = (&args.html, &replay.traces) {
        let title = args.pcap.file_name().map_or_else(|| "standard input".into(), |n| n.to_string_lossy());
        std::fs::write(path, html::render(&replay, traces, &title)?)
            .with_context(|| format!("--html: cannot write {}", path.display()))?;
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    match args.format {
        Format::Json => write_json(&mut out, &replay, args.top.unwrap_or(usize::MAX)),
        Format::Table => write_table(&mut out, &replay, args.top.unwrap_or(TABLE_TOP), args.flows),
    }
    .and_then(|()| Ok(out.flush()?))
    .context(super::TO_STDOUT)
}

/// A file this small replays faster on one thread than it takes to start more.
const ONE_THREAD_BELOW: u64 = 16 << 20;

/// One thread per core, but one for a small file.
fn default_threads(pcap: &Path) -> usize {
    let small = std::fs::metadata(pcap).is_ok_and(|m| m.is_file() && m.len() < ONE_THREAD_BELOW);
    if small {
        1
    } else {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    }
}

/// Nanoseconds as seconds, for people (a microsecond's precision is plenty).
fn seconds(ns: u64) -> f64 {
    Duration::from_nanos(ns).as_secs_f64()
}

/// The document's head: the counters, and what the replay knows besides them (the engine,
/// the capture, the checksums).
fn inspect_head(r: &Replay) -> InspectHead {
    let read = &r.read;
    let (first, last) = r.span_ns.unwrap_or_default();
    InspectHead {
        counters: CountersDoc::of(&r.snapshot, r.unreplayed()),
        engine: r.engine.name().into(),
        threads: r.threads,
        damaged: read.damaged.clone(),
        capture: CaptureDoc {
            records: read.records,
            skipped_blocks: read.skipped_blocks,
            unsupported_link: read.unsupported_link,
            timestamps_backwards: read.ts_backwards,
            first_ns: r.span_ns.map(|_| first),
            last_ns: r.span_ns.map(|_| last),
            duration_s: seconds(last - first),
        },
        checksums: r.checksums.as_ref().map(|c| ChecksumsDoc {
            checked: c.checked,
            bad: c.bad,
            unverifiable: c.unverifiable,
        }),
        associations_total: r.associations.iter().count(),
        associations_untracked_packets: r.associations.untracked,
        messages: MessageDoc::list(&r.messages),
        messages_malformed: r.messages.malformed.iter().map(|(why, n)| ((*why).to_string(), *n)).collect(),
        messages_untabled: r.messages.untabled,
    }
}

/// The JSON object ([`crate::doc::InspectDoc`]), written as it is made: the flows one at a
/// time, so that a capture of a million flows does not build a million-element document
/// first.
fn write_json(out: &mut dyn Write, r: &Replay, top: usize) -> Result<()> {
    let Value::Object(head) = serde_json::to_value(inspect_head(r))? else {
        unreachable!("a struct serializes as an object")
    };
    write!(out, "{{")?;
    for (k, v) in &head {
        write!(out, "{}:{v},", Value::from(k.as_str()))?;
    }
    write!(out, "\"associations\":[")?;
    for (i, (_, a)) in r.associations.busiest(top).into_iter().enumerate() {
        write!(out, "{}{}", if i > 0 { "," } else { "" }, serde_json::to_string(&AssociationDoc::of(a))?)?;
    }
    write!(out, "],\"flows\":[")?;
    for (i, (k, f)) in busiest(&r.snapshot.flows, top).enumerate() {
        let mut flow = FlowDoc::of(*k, f);
        if let Some(c) = &r.checksums {
            flow.bad_checksums = Some(c.bad_by_flow.get(k).copied().unwrap_or(0));
        }
        write!(out, "{}{}", if i > 0 { "," } else { "" }, serde_json::to_string(&flow)?)?;
    }
    writeln!(out, "]}}")?;
    Ok(())
}

fn write_table(out: &mut dyn Write, r: &Replay, top: usize, flows: bool) -> Result<()> {
    write!(out, "{}", r.associations.table(top))?;
    write!(out, "{}", table::to_table(&r.snapshot, if flows { top } else { 0 }))?;
    write!(out, "{}", messages::to_table(&MessageDoc::list(&r.messages)))?;
    if let Some((first, last)) = r.span_ns {
        writeln!(
            out,
            "capture: {} record(s) over {:.3} s ({} engine)",
            r.read.records,
            seconds(last - first),
            r.engine.name()
        )?;
    }
    if let Some(c) = &r.checksums {
        writeln!(out, "checksums: {} checked, {} bad, {} not checkable (cut short)", c.checked, c.bad, c.unverifiable)?;
    }
    let notes = [
        (r.too_short, "frame(s) shorter than an Ethernet header were not replayed"),
        (r.too_large, "frame(s) larger than the kernel's test run takes were not replayed"),
        (r.read.unsupported_link, "frame(s) of a link type inspect cannot read were skipped"),
        (r.read.skipped_blocks, "pcapng block(s) without packets were skipped"),
        (r.read.ts_backwards, "frame(s) stamped earlier than a frame before them (replayed at the latest time seen)"),
    ];
    for (n, what) in notes.iter().filter(|(n, _)| *n > 0) {
        writeln!(out, "{n} {what}")?;
    }
    if let Some(d) = &r.read.damaged {
        writeln!(out, "capture {d}")?;
    }
    Ok(())
}
