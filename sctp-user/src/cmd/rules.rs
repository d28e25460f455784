//! `sctp-user rules show|apply`: the rules of a running instance, through its pins.

use std::{fmt::Write as _, path::PathBuf};

use anyhow::{bail, Result};
use clap::Subcommand;

use super::Format;
use crate::{
    bpf::{self, Pinned},
    rules::{self, RuleArgs},
    sys::{bpffs::default_pin_dir, iface::interface_name},
};

/// Show or change the rules of a running instance (its pinned maps), without detaching it.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// The active rules and the packets each dropped since it was applied.
    Show {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Replace the rules with those of a TOML file (and any rule flags), atomically: a
    /// packet is judged by the old set or the new one, never a mix. An empty file or
    /// --clear removes every rule.
    Apply {
        #[command(flatten)]
        target: Target,
        /// Remove every rule (instead of a file or rule flags).
        #[arg(long)]
        clear: bool,
        #[command(flatten)]
        rules: Box<RuleArgs>,
    },
}

/// Which running instance.
#[derive(clap::Args)]
struct Target {
    /// The interface the instance runs on (its maps are pinned under
    /// /sys/fs/bpf/sctp-xdp/IFACE, or .../sctp-xdp/netns/NAME/IFACE in a namespace).
    #[arg(long, required_unless_present = "pin_dir", value_parser = interface_name)]
    iface: Option<String>,
    /// The instance's --pin-dir.
    #[arg(long)]
    pin_dir: Option<PathBuf>,
}

impl Target {
    fn dir(&self) -> Result<PathBuf> {
        match &self.pin_dir {
            Some(dir) => Ok(dir.clone()),
            None => default_pin_dir(self.iface.as_deref().unwrap_or_default()),
        }
    }
}

pub fn run(args: &Args) -> Result<()> {
    match &args.action {
        Action::Show { target, format } => {
            let maps = Pinned::open(&target.dir()?)?;
            let (active, _) = rules::hits(&maps, &bpf::maps::global(&maps)?)?;
            let learning = rules::learning_left(&maps)?;
            let mut report = match format {
                Format::Json => {
                    serde_json::to_string_pretty(&serde_json::json!({
                        "rules": active,
                        "vtag_learning_left_s": learning.map(|d| d.as_secs_f64()),
                    }))? + "\n"
                }
                Format::Table => rules::show_table(&active),
            };
            if let (Format::Table, Some(left)) = (format, learning) {
                writeln!(report, "validate-vtag learns unknown tags for {:.0} s more", left.as_secs_f64())?;
            }
            super::print(&report)?;
        }
        Action::Apply { target, clear, rules } => {
            match (clear, rules.is_empty()) {
                (true, false) => bail!("--clear removes every rule: give it without a rules file or rule flags"),
                (false, true) => bail!(
                    "nothing to apply: give --rules FILE or rule flags (--clear, or an empty file, removes every rule)"
                ),
                _ => {}
            }
            let compiled = rules::compile(&rules.config()?)?;
            let mut maps = Pinned::open(&target.dir()?)?;
            rules::apply(&mut maps, &compiled)?;
            let (active, _) = rules::hits(&maps, &bpf::maps::global(&maps)?)?;
            log::info!("{} rule(s) active", active.len());
            super::print(&rules::show_table(&active))?;
        }
    }
    Ok(())
}
