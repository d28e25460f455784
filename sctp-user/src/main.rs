//! `sctp-user`: the sctp-xdp controller. Parses the command line and hands it to the
//! subcommand's module in `cmd`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sctp_user::cmd;

#[derive(Parser)]
#[command(name = "sctp-user", version, about = "XDP-accelerated SCTP inspector and fast path")]
struct Cli {
    /// More messages on stderr (-v: debug, -vv: trace); `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Inspect(cmd::inspect::Args),
    Rules(cmd::rules::Args),
    Bench(cmd::bench::Args),
    Client(cmd::client::Args),
    Flood(cmd::flood::Args),
    Top(cmd::top::Args),
    Run(Box<cmd::run::Args>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => log::LevelFilter::Info,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .parse_default_env()
        .format(|buf, record| {
            use std::io::Write as _;
            match record.level() {
                log::Level::Info => writeln!(buf, "sctp-user: {}", record.args()),
                log::Level::Warn => writeln!(buf, "sctp-user: warning: {}", record.args()),
                level => writeln!(buf, "sctp-user: {}: {}", level.as_str().to_lowercase(), record.args()),
            }
        })
        .init();
    if matches!(cli.command, Command::Inspect(_) | Command::Rules(_) | Command::Bench(_)) {
        sctp_user::sys::stdout::end_quietly_when_closed();
    }
    let result = match cli.command {
        Command::Inspect(a) => cmd::inspect::run(&a),
        Command::Rules(a) => cmd::rules::run(&a),
        Command::Bench(a) => cmd::bench::run(&a),
        Command::Client(a) => cmd::client::run(a),
        Command::Flood(a) => cmd::flood::run(&a),
        Command::Top(a) => cmd::top::run(&a),
        Command::Run(a) => cmd::run::run(*a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sctp-user: {e:#}");
            ExitCode::FAILURE
        }
    }
}
