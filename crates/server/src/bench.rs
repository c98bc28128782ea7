//! Benchmark programs (figures printed, not timed tests).

#[derive(clap::Subcommand)]
pub enum BenchCommand {}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {}
}
