//! `nonneg serve`.

use super::Context;
use anyhow::{bail, Context as _, Result};
use clap::Args;
use nonneg::serve::{Config, Limits, Server};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A model to serve: `PATH` (named after the file: `mono.safetensors` is `mono`) or
    /// `NAME=PATH`. Repeatable.
    #[arg(long, required = true)]
    pub model: Vec<String>,
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Serve `POST /v1/admin/reload` (and /metrics) on this address only.
    #[arg(long)]
    pub admin_addr: Option<SocketAddr>,
    /// Require `Authorization: Bearer TOKEN` on admin routes; without --admin-addr they are
    /// then served on --addr.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Most rows or raw samples per request.
    #[arg(long, default_value_t = Limits::default().max_rows)]
    pub max_rows: usize,
    /// Per-request time limit in milliseconds (then 503).
    #[arg(long, default_value_t = Limits::default().timeout.as_millis() as u64)]
    pub timeout_ms: u64,
    /// Requests handled at once; more wait for a slot within the time limit.
    #[arg(long, default_value_t = Limits::default().max_concurrent)]
    pub max_concurrent: usize,
}

/// `NAME=PATH` or `PATH` (named after the file stem).
fn parse_model(spec: &str) -> Result<(String, PathBuf)> {
    if let Some((name, path)) = spec.split_once('=') {
        return Ok((name.to_owned(), PathBuf::from(path)));
    }
    let path = PathBuf::from(spec);
    let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
        bail!("the `model` option {spec:?} has no file name to name it by: give NAME=PATH");
    };
    Ok((stem.to_owned(), path))
}

pub fn run(a: &ServeArgs, ctx: &Context) -> Result<ExitCode> {
    let models = a
        .model
        .iter()
        .map(|m| parse_model(m))
        .collect::<Result<Vec<_>>>()?;
    let config = Config {
        models,
        addr: a.addr,
        admin_addr: a.admin_addr,
        admin_token: a.admin_token.clone(),
        limits: Limits {
            max_body_bytes: a.max_body_bytes,
            max_rows: a.max_rows,
            timeout: Duration::from_millis(a.timeout_ms),
            max_concurrent: a.max_concurrent,
        },
    };
    let level = if ctx.quiet {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let server = Server::bind(config).await?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    {
        // The bound addresses, on stdout for scripts (port 0 picks one).
        let mut out = std::io::stdout().lock();
        if let Some(addr) = server.local_addr() {
            writeln!(out, "listening on http://{addr}")?;
        }
        if let Some(addr) = server.admin_addr() {
            writeln!(out, "admin on http://{addr}")?;
        }
        out.flush()?;
    }
    tracing::info!("serving; SIGHUP reloads the models, SIGTERM or Ctrl-C stops");
    let app = server.app();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the models");
            app.reload().await;
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    server.run(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}
