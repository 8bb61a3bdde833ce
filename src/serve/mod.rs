//! `nonneg serve`: an HTTP scoring service (tokio + axum) for mail and file pipelines.
//!
//! Routes: `POST /v1/models/{name}/score` (JSON rows), `POST /v1/models/{name}/score/raw`
//! (a raw email or file, or multipart of many), `GET /v1/models`, `/healthz`, `/readyz`,
//! `/metrics` (Prometheus text), and `POST /v1/admin/reload` on a separate admin address
//! or behind a bearer token. Scores are bit for bit those of `nonneg predict`: the same
//! [`Model::logits`](crate::model::Model::logits) and featurizer, the same matrix kind.
//!
//! Modules: [`state`] (models behind atomic pointers, reload), [`rows`] and [`raw`]
//! (request bodies to features), [`routes`] (handlers), [`info`] (model descriptions),
//! [`metrics`], [`error`] (4xx JSON errors).

pub mod error;
mod info;
pub mod metrics;
mod raw;
mod routes;
mod rows;
pub mod state;

use crate::error::{Error, Result};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use error::ApiError;
use metrics::Metrics;
use state::{Registry, ReloadOutcome};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Per-request limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body in bytes (JSON, raw sample or whole multipart body).
    pub max_body_bytes: usize,
    /// Most rows (or multipart samples) in one request.
    pub max_rows: usize,
    /// Time from arrival to response, waiting for a slot included; then 503.
    pub timeout: Duration,
    /// Requests handled at once; more wait (within `timeout`).
    pub max_concurrent: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 10 << 20,
            max_rows: 10_000,
            timeout: Duration::from_secs(10),
            max_concurrent: 256,
        }
    }
}

/// What to serve and where.
#[derive(Clone, Debug)]
pub struct Config {
    /// `(name, model file)`; names appear in URLs and metrics.
    pub models: Vec<(String, PathBuf)>,
    pub addr: SocketAddr,
    /// Serve the admin routes here only (e.g. a loopback port).
    pub admin_addr: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` on admin routes. With no admin address the
    /// admin routes are on the main address only when a token is set.
    pub admin_token: Option<String>,
    pub limits: Limits,
}

/// State shared by every handler.
pub struct App {
    pub registry: Registry,
    pub metrics: Metrics,
    pub limits: Limits,
    admin_token: Option<String>,
    permits: Semaphore,
    shutting_down: AtomicBool,
}

impl App {
    /// Re-reads every model file (what SIGHUP and `POST /v1/admin/reload` do).
    pub async fn reload(&self) -> Vec<ReloadOutcome> {
        self.registry.reload(&self.metrics).await
    }
}

/// A bound, not yet running server.
pub struct Server {
    app: Arc<App>,
    listener: TcpListener,
    admin: Option<TcpListener>,
}

impl Server {
    /// Loads and certifies every model, then binds the addresses (port 0: any free port).
    pub async fn bind(config: Config) -> Result<Server> {
        let l = &config.limits;
        if l.max_body_bytes == 0 || l.max_rows == 0 || l.max_concurrent == 0 || l.timeout.is_zero()
        {
            return Err(Error::invalid(format!(
                "every limit must be above 0, got {l:?}"
            )));
        }
        if config.admin_token.as_deref() == Some("") {
            return Err(Error::invalid("the `admin_token` option must not be empty"));
        }
        let registry = Registry::load(&config.models)?;
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| Error::invalid(format!("cannot listen on {addr}: {e}")))
        };
        let listener = bind(config.addr).await?;
        let admin = match config.admin_addr {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let app = App {
            registry,
            metrics: Metrics::default(),
            permits: Semaphore::new(config.limits.max_concurrent),
            limits: config.limits,
            admin_token: config.admin_token,
            shutting_down: AtomicBool::new(false),
        };
        Ok(Server {
            app: Arc::new(app),
            listener,
            admin,
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, marks itself not ready
    /// and finishes the requests in flight.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let (tx, rx) = watch::channel(false);
        let app = self.app.clone();
        tokio::spawn(async move {
            shutdown.await;
            app.shutting_down.store(true, Ordering::Relaxed);
            tracing::info!("shutting down: finishing requests in flight");
            let _ = tx.send(true);
        });
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|&stop| stop).await;
        };
        let public_admin = self.admin.is_none() && self.app.admin_token.is_some();
        let main = axum::serve(self.listener, router(&self.app, public_admin))
            .with_graceful_shutdown(stopped(rx.clone()));
        let io = |e: std::io::Error| Error::invalid(format!("server failed: {e}"));
        match self.admin {
            Some(admin) => {
                let admin =
                    axum::serve(admin, admin_router(&self.app)).with_graceful_shutdown(stopped(rx));
                tokio::try_join!(async { main.await }, async { admin.await }).map_err(io)?;
            }
            None => main.await.map_err(io)?,
        }
        Ok(())
    }
}

fn router(app: &Arc<App>, with_admin: bool) -> Router {
    let mut r = Router::new()
        .route("/v1/models", get(routes::models))
        .route("/v1/models/{name}/score", post(routes::score))
        .route("/v1/models/{name}/score/raw", post(routes::score_raw))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics));
    if with_admin {
        r = r.route("/v1/admin/reload", post(routes::reload));
    }
    finish(r, app)
}

fn admin_router(app: &Arc<App>) -> Router {
    let r = Router::new()
        .route("/v1/admin/reload", post(routes::reload))
        .route("/metrics", get(routes::metrics));
    finish(r, app)
}

fn finish(r: Router<Arc<App>>, app: &Arc<App>) -> Router {
    r.route_layer(middleware::from_fn_with_state(app.clone(), guard))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(app.limits.max_body_bytes))
        .with_state(app.clone())
}

/// Concurrency slot, deadline and metrics around every routed request.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let limits = &app.limits;
    let work = async {
        match app.permits.acquire().await {
            Ok(_slot) => next.run(req).await,
            Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server", "shutting down")
                .into_response(),
        }
    };
    let response = match tokio::time::timeout(limits.timeout, work).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request",
            format!(
                "no response within {} ms (the request timeout)",
                limits.timeout.as_millis()
            ),
        )
        .into_response(),
    };
    app.metrics
        .record_request(&route, response.status().as_u16(), start.elapsed());
    response
}
