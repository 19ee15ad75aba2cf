//! The `stride` binary: parses flags and hands over to `server::run` (the scheduler),
//! `server::run_master` (`stride master`), `server::run_lb` (`stride lb`), the image store
//! (`stride image load`), the zygote or a DOCKER task's executor.

use clap::Parser;
use server::config::{Cli, Command, ImageCommand};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Zygote) => std::process::exit(server::master::zygote::run()),
        Some(Command::DockerExecutor) => {
            std::process::exit(server::master::docker::executor::run())
        }
        Some(Command::Master(args)) => {
            init_logging();
            tokio::runtime::Runtime::new()?.block_on(server::run_master(args))
        }
        Some(Command::Image(ImageCommand::Load {
            file,
            name,
            data_dir,
        })) => {
            let store =
                server::images::ImageStore::new(data_dir.join("images"), &Default::default());
            for reference in store.load_archive(&file, name.as_deref())? {
                println!("loaded {reference}");
            }
            Ok(())
        }
        Some(Command::Lb(args)) => {
            init_logging();
            tokio::runtime::Runtime::new()?.block_on(server::run_lb(args))
        }
        None => {
            init_logging();
            tokio::runtime::Runtime::new()?.block_on(server::run(cli.serve))
        }
    }
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
}
