//! The `sweep` command line: parse, then one call per command (see `commands`).

mod cli;
mod commands;
mod output;

use clap::Parser;
use cli::{BenchCommand, Cli, Command, DataCommand, DbCommand};
use std::process::ExitCode;

fn main() -> ExitCode {
    sweep_core::protocol::set_build_commit(env!("SWEEP_GIT_COMMIT"));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(e),
    };
    init_tracing(cli.verbose, matches!(cli.command, Command::Worker { .. }));
    let result = match cli.command {
        Command::Run(args) => commands::run(args),
        Command::Agent(args) => commands::agent(args),
        Command::Slurm(args) => commands::slurm(args),
        Command::Serve(args) => commands::serve(args),
        Command::Db(DbCommand::Copy { from, to, sweep }) => {
            commands::db_copy(&from, &to, sweep.as_deref())
        }
        Command::Data(DataCommand::Check { path, format }) => commands::data_check(&path, format),
        Command::Data(DataCommand::Synth {
            path,
            cases,
            size,
            classes,
            per_patient,
            seed,
        }) => commands::data_synth(
            &path,
            sweep_data::synthetic::Synthetic {
                cases,
                size,
                classes,
                per_group: per_patient,
                seed,
            },
        ),
        Command::Plan { file, set, format } => commands::plan(&file, &set, format),
        Command::Status { sweep, db } => commands::status(&db.db, sweep.as_deref()),
        Command::Replay { sweep, db, json } => commands::replay(&db.db, &sweep, json),
        Command::Report(args) => commands::report(args),
        Command::Show {
            job,
            db,
            images,
            format,
        } => commands::show(&db.db, &job, images, format),
        Command::Compare(args) => commands::compare(args),
        Command::Plot(args) => commands::plot(args),
        Command::Predict(args) => commands::predict(args),
        Command::Evaluate(args) => commands::evaluate(args),
        Command::Export(args) => commands::export(args),
        Command::Bench(BenchCommand::Train(args)) => commands::bench_train(args),
        Command::Bench(BenchCommand::Predict(args)) => commands::bench_predict(args),
        Command::Bench(BenchCommand::Serve(args)) => commands::bench_serve(args),
        Command::Bench(BenchCommand::Search(args)) => commands::bench_search(args),
        Command::Bench(BenchCommand::Proposal(args)) => commands::bench_proposal(args),
        Command::Bench(BenchCommand::Data {
            cases,
            size,
            steps,
            dir,
        }) => commands::bench_data(cases, size, steps, dir),
        Command::Bench(BenchCommand::Orchestrator {
            jobs,
            workers,
            agents,
            db,
        }) => commands::bench_orchestrator(jobs, workers, &agents, db),
        Command::Doctor { device, json } => commands::doctor(device, json),
        Command::Worker { ticket } => commands::worker(&ticket),
    };
    match result {
        Ok(code) => code,
        // A closed pipe (`sweep report | head`) ends the command quietly, as ripgrep does.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version as clap prints them; a bad argument as one line, with any password in
/// a URL it quotes cut out (clap repeats the value as given).
fn parse_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = sweep_core::store::location::redact_urls(&e.render().to_string());
    match e.kind() {
        ErrorKind::ValueValidation => eprintln!("{}", text.lines().next().unwrap_or_default()),
        _ => eprint!("{text}"),
    }
    ExitCode::from(2)
}

fn init_tracing(verbose: u8, worker: bool) {
    let default = match (worker, verbose) {
        (true, _) => "warn",
        // sqlx logs every PostgreSQL notice ("relation ... already exists, skipping") at info.
        (false, 0) => "info,sqlx=warn",
        (false, 1) => "info,sqlx=warn,sweep=debug,sweep_core=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
