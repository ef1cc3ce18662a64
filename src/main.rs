//! The `stox` command line: `run`, `check-config`, `doctor`, `map`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use stox::config::Config;

#[derive(Parser, Debug)]
#[command(
    name = "stox",
    version,
    about = "SIP <-> XMPP gateway (XEP-0114 component, IETF STOX)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway.
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = "component.toml")]
        config: PathBuf,
    },
    /// Validate a configuration file and print every problem.
    CheckConfig {
        /// Configuration file.
        #[arg(long, short, default_value = "component.toml")]
        config: PathBuf,
    },
    /// Check a configuration against this machine and the XMPP server: component handshake,
    /// SIP/MSRP sockets, DNS, state directory. Exit status 1 if anything FAILed.
    Doctor {
        /// Configuration file.
        #[arg(long, short, default_value = "component.toml")]
        config: PathBuf,
        /// Seconds each network step (connect, stream header, handshake answer) may take.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Translate a SIP/SIPS/IM/PRES URI to a JID, or a JID to a SIP URI.
    Map {
        /// Configuration file (for the domains).
        #[arg(long, short, default_value = "component.toml")]
        config: PathBuf,
        /// The address to translate, e.g. sip:bob@other.org or romeo@sip.example.com.
        address: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => match run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stox: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::CheckConfig { config } => {
            let problems = match Config::load(&config) {
                Ok(c) => {
                    for w in c.safety_warnings(&config) {
                        println!("{}: warning: {w}", config.display());
                    }
                    c.validate()
                }
                Err(e) => vec![e],
            };
            if problems.is_empty() {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            } else {
                for p in &problems {
                    println!("{}: {p}", config.display());
                }
                ExitCode::FAILURE
            }
        }
        Command::Doctor { config, timeout } => doctor(config, timeout),
        Command::Map { config, address } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("stox: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match cfg.address_map().translate(&address) {
                Ok(s) => {
                    println!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("stox: cannot translate {address:?}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn doctor(config: PathBuf, timeout: u64) -> ExitCode {
    let opts = stox::doctor::Options {
        component_timeout: std::time::Duration::from_secs(timeout.max(1)),
        ..Default::default()
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stox: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let checks = rt.block_on(stox::doctor::run(&config, &opts));
    for c in &checks {
        println!("{c}");
    }
    // Do not wait for resolver tasks still retrying in the background.
    rt.shutdown_background();
    if stox::doctor::any_failed(&checks) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn run(config: PathBuf) -> anyhow::Result<()> {
    let cfg = Config::load(&config).map_err(anyhow::Error::msg)?;
    stox::ops::log::init(&cfg.log);
    for w in cfg.safety_warnings(&config) {
        tracing::warn!("{w}");
    }
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let gw = stox::app::Gateway::start_from(&cfg, Some(config)).await?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = hup.recv() => {
                    // The outcome is logged by the router (applied / needs a restart / refused).
                    let _ = gw.reload().await;
                }
            }
        }
        tracing::info!("signal received, shutting down");
        gw.stop().await;
        Ok(())
    })
}
