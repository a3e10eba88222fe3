//! `provisioner`: the dezky provisioner binary. Wires the API
//! (`dezky-api`), the controller (`dezky-controller`) and the upstream
//! simulators (`dezky-simulators`) into the subcommands of DESIGN §2.

mod config;
mod database;
mod demo;
mod run;
mod simulate;
mod telemetry;
mod upstreams;

use clap::Parser;

use crate::config::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo narrates on stdout; only problems should interrupt it.
    let default_log = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    telemetry::init_logging(cli.log.log_format, default_log);
    let prometheus = telemetry::init_metrics()?;
    match cli.command {
        Command::Serve(args) => run::serve(args, prometheus).await,
        Command::Api(args) => run::api(args, prometheus).await,
        Command::Controller(args) => run::controller(args, prometheus).await,
        Command::Demo(args) => demo::demo(args, prometheus).await,
        Command::Simulate(args) => simulate::simulate(args).await,
        Command::Openapi(args) => {
            let document = dezky_api::openapi::document(&args.plan_quotas);
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
    }
}
