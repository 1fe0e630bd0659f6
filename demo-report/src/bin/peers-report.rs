//! `peers-report`: the table, figures and chart of a `benches/peers` run, from each contender's
//! timeline (`run-timeline`) and event counts (`demo-report`), all measured the same way
//! ([`demo_report::peers`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Writes peers.md, peers.json and peers.png of a benches/peers run, and prints the table.
#[derive(Parser)]
#[command(version, long_about = None)]
struct Cli {
    /// The run's folder: one subfolder per contender, with timeline.jsonl and summary.json.
    #[arg(long)]
    out: PathBuf,
    /// The contenders, in the order of the table and the chart (their subfolders' names).
    #[arg(required = true)]
    contenders: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match demo_report::write_peers(&cli.out, &cli.contenders) {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
