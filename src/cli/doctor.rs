//! `mailkeep doctor [ACCOUNT] [--json]`

use crate::ops::doctor::{doctor_account, doctor_config, DoctorReport, Status};
use crate::ops::OpError;

use super::out::outln;
use super::Globals;

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// The account to check step by step; without one, the config file and every account's settings.
    #[arg(value_name = "ACCOUNT")]
    account: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub async fn run(g: &Globals, args: DoctorArgs) -> Result<i32, OpError> {
    let report = match &args.account {
        None => doctor_config(&g.config_path, &g.store_path),
        Some(name) => match crate::config::Config::load(&g.config_path) {
            Ok(config) => doctor_account(&config, name, &g.store_path).await,
            Err(_) => doctor_config(&g.config_path, &g.store_path),
        },
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        print_report(&report);
    }
    Ok(report.exit_code)
}

fn print_report(r: &DoctorReport) {
    for c in &r.checks {
        let mark = match c.status {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Skipped => "-",
            Status::Fail => "✗",
        };
        // Quota figures worded for people: "1.2 GB of 5.0 GB (24%)".
        let worded = c.storage.map(|u| match c.status {
            Status::Warn => format!("{} — nearly full", super::fmt::describe_storage(&u)),
            _ => super::fmt::describe_storage(&u),
        });
        let mut lines = worded.as_deref().unwrap_or(&c.seen).lines();
        outln!(
            "{mark} {} {}",
            super::pad(c.step.label(), 9),
            lines.next().unwrap_or("")
        );
        for l in lines {
            outln!("            {l}");
        }
        if let Some(fix) = &c.fix {
            let mut lines = fix.lines();
            outln!("  fix:      {}", lines.next().unwrap_or(""));
            for l in lines {
                outln!("            {l}");
            }
        }
    }
    if r.exit_code == 0 {
        let warned = r.checks.iter().any(|c| c.status == Status::Warn);
        outln!(
            "{}",
            if warned {
                "all steps passed, with a warning above"
            } else {
                "all steps passed"
            }
        );
    }
}
