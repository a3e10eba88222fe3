//! `provisioner`: the dezky provisioner binary. Wires the API
//! (`dezky-api`), the controller (`dezky-controller`) and the upstream
//! simulators (`dezky-simulators`) into the subcommands of DESIGN §2.

mod config;
mod database;
mod run;
mod telemetry;
mod upstreams;

use clap::Parser;

use crate::config::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logging(cli.log.log_format);
    let prometheus = telemetry::init_metrics()?;
    match cli.command {
        Command::Serve(args) => run::serve(args, prometheus).await,
        Command::Api(args) => run::api(args, prometheus).await,
        Command::Controller(args) => run::controller(args, prometheus).await,
        Command::Demo(_) | Command::Simulate(_) => anyhow::bail!("not yet available"),
    }
}
