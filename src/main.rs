//! `provisioner`: the dezky provisioner binary. Wires the API
//! (`dezky-api`), the controller (`dezky-controller`) and the upstream
//! simulators (`dezky-simulators`) into the subcommands of DESIGN §2, and
//! mounts the command-line client (`dezky-cli`: `tenants`, `login`,
//! `logout`), whose exit codes (0 ok, 1 failure, 2 usage) it passes on.

mod config;
mod database;
mod demo;
mod migrate;
mod periodic;
mod run;
mod simulate;
mod telemetry;
mod trim;
mod upstreams;

use std::process::ExitCode;

use clap::Parser;

use crate::config::{Cli, Command, LogArgs, ServerCommand};

#[tokio::main]
async fn main() -> ExitCode {
    // A command line clap cannot parse exits with 2 (usage) right here.
    let cli = Cli::parse();
    match cli.command {
        Command::Client(command) => dezky_cli::run(command).await,
        Command::Server(command) => match server(command, cli.log).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("Error: {error:?}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The server commands, with logging and metrics.
async fn server(command: ServerCommand, log: LogArgs) -> anyhow::Result<()> {
    // The demo narrates on stdout; only problems should interrupt it.
    let default_log = match command {
        ServerCommand::Demo(_) | ServerCommand::Migrate(_) => "warn",
        _ => "info",
    };
    telemetry::init_logging(log.log_format, default_log);
    let prometheus = telemetry::init_metrics()?;
    trim::spawn();
    match command {
        ServerCommand::Serve(args) => run::serve(args, prometheus).await,
        ServerCommand::Api(args) => run::api(args, prometheus).await,
        ServerCommand::Controller(args) => run::controller(args, prometheus).await,
        ServerCommand::Demo(args) => demo::demo(args, prometheus).await,
        ServerCommand::Simulate(args) => simulate::simulate(args).await,
        ServerCommand::Migrate(args) => migrate::migrate(args).await,
        ServerCommand::Openapi(args) => {
            let document = dezky_api::openapi::document(&args.plan_quotas);
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
    }
}
