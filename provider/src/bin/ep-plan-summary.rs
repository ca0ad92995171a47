//! `ep-plan-summary [PLAN_JSON]`: what a Terraform plan changes in Elastic
//! Path terms. Reads the output of `terraform show -json PLANFILE` from the
//! file given or from standard input.

#![forbid(unsafe_code)]

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() == 1 && args[0] == "--version" {
        println!(
            "ep-plan-summary {}",
            ep_imagebuild::build_info::version_line()
        );
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "-h" || a == "--help") || args.len() > 1 {
        eprintln!("usage: ep-plan-summary [PLAN_JSON]   (the output of `terraform show -json PLANFILE`; stdin when omitted)");
        return ExitCode::from(if args.len() > 1 { 2 } else { 0 });
    }
    let text = match args.first() {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}")),
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map(|_| s)
                .map_err(|e| format!("cannot read standard input: {e}"))
        }
    };
    let summary = text.and_then(|t| {
        terraform_provider_ep::plan_summary::summarise(&t).map_err(|e| e.to_string())
    });
    match summary {
        Ok(s) => {
            print!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ep-plan-summary: {e}");
            ExitCode::from(1)
        }
    }
}
