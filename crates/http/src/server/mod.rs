//! Assembles the actix servers: the API listener with the full middleware stack, and the
//! optional private metrics listener. Signals are the app's business (`disable_signals`): it
//! stops the servers gracefully through their handles.

use std::net::{TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use gad_domain::settings;
use serde::{Deserialize, Serialize};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::extract::{json_config, path_config, query_config};
use crate::middleware::{
    BodyDeadline, RequestSpan, SecurityHeaders, ServedMethods, body_deadline, error_envelope, record_metrics,
    request_id,
};
use crate::openapi::{OpenApiJson, document};
use crate::rate_limit::{RateLimitPolicy, rate_limit};
use crate::routes::{self, MetricsExposure};
use crate::state::Services;
use crate::state::{AppState, MetricsEndpoint};

/// The `http` section of the configuration: how the API listener behaves.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// `host:port` of the API listener (`GAD_BIND`).
    pub bind: String,
    /// Largest accepted request body in bytes (413 beyond).
    #[serde(rename = "body_limit_bytes")]
    pub body_limit: usize,
    /// How long a client may take to send a request body (408 beyond).
    #[serde(rename = "body_read_timeout_ms", with = "settings::millis")]
    pub body_read_timeout: Duration,
    /// Origins allowed to call the API from a browser; empty allows none.
    pub cors_allowed_origins: Vec<String>,
    /// Send `Strict-Transport-Security` (the service is reached over TLS).
    pub hsts: bool,
    /// How long in-flight requests may take to finish after a stop.
    #[serde(rename = "shutdown_timeout_s", with = "settings::seconds")]
    pub shutdown_timeout: Duration,
    /// Worker threads; `None` uses one per core.
    pub workers: Option<usize>,
}

impl HttpSettings {
    /// The worker threads the API server runs: as configured, else one per core.
    pub fn worker_threads(&self) -> usize {
        self.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
    }

    /// Everything wrong with this section; `deployed` environments accept https origins only.
    pub fn problems(&self, deployed: bool, environment: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_socket_address(&self.bind) {
            problems.push(format!("GAD_BIND must be host:port, not {:?}", self.bind));
        }
        if self.body_limit == 0 || self.body_read_timeout.is_zero() {
            problems.push("http.body_limit_bytes and http.body_read_timeout_ms must be positive".into());
        }
        for origin in &self.cors_allowed_origins {
            if origin == "*" {
                problems.push("http.cors_allowed_origins must list origins; \"*\" is refused".into());
            } else if !is_origin(origin) {
                problems.push(format!("CORS origin {origin:?} must be scheme://host[:port] with http or https"));
            } else if deployed && origin.starts_with("http://") {
                problems.push(format!("CORS origin {origin:?} must use https in {environment}"));
            }
        }
        problems
    }
}

/// Whether `bind` resolves to an address to listen on.
pub fn is_socket_address(bind: &str) -> bool {
    bind.to_socket_addrs().is_ok_and(|mut addrs| addrs.next().is_some())
}

/// `scheme://host[:port]` exactly, as browsers send it in `Origin`.
fn is_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")) else {
        return false;
    };
    let (host, port) = rest.rsplit_once(':').map_or((rest, None), |(host, port)| (host, Some(port)));
    !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']'))
        && port.is_none_or(|port| port.parse::<u16>().is_ok())
}

/// Routes and shared data that another crate (the WebSocket service) adds to the API listener,
/// behind the same middleware stack.
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// Everything the API's app factory needs, built once and shared by every worker.
#[derive(Clone)]
struct Shared {
    state: web::Data<AppState>,
    rate_limits: web::Data<RateLimitPolicy>,
    metrics: web::Data<MetricsEndpoint>,
    exposure: web::Data<MetricsExposure>,
    security: web::Data<SecurityHeaders>,
    openapi: web::Data<OpenApiJson>,
    body_deadline: web::Data<BodyDeadline>,
    served_methods: web::Data<ServedMethods>,
    body_limit: usize,
    cors_allowed_origins: Vec<String>,
    /// The resources' ports, and what other crates add (the WebSocket service).
    routes: ExtraRoutes,
}

impl Shared {
    fn new(
        state: AppState,
        rate_limits: RateLimitPolicy,
        metrics: MetricsEndpoint,
        settings: &HttpSettings,
        routes: ExtraRoutes,
    ) -> std::io::Result<Self> {
        let document = document();
        let served_methods = ServedMethods::from_document(&document);
        let openapi = serde_json::to_string(&document).map_err(std::io::Error::other)?;
        Ok(Self {
            state: web::Data::new(state),
            rate_limits: web::Data::new(rate_limits),
            exposure: web::Data::new(MetricsExposure::ApiListener { separate_listener: metrics.has_own_listener() }),
            metrics: web::Data::new(metrics),
            security: web::Data::new(SecurityHeaders { hsts: settings.hsts }),
            openapi: web::Data::new(OpenApiJson(openapi)),
            body_deadline: web::Data::new(BodyDeadline(settings.body_read_timeout)),
            served_methods: web::Data::new(served_methods),
            body_limit: settings.body_limit,
            cors_allowed_origins: settings.cors_allowed_origins.clone(),
            routes,
        })
    }
}

/// The API application: every route behind the full middleware stack.
fn api_app(
    shared: Shared,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let extra = shared.routes;
    App::new()
        .into_utoipa_app()
        .configure(routes::configure)
        .into_app()
        .configure(|cfg| extra(cfg))
        .app_data(shared.rate_limits)
        .service(SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/api/v1/openapi.json")))
        .route("/docs", web::get().to(docs_entry))
        .app_data(shared.state)
        .app_data(shared.metrics)
        .app_data(shared.exposure)
        .app_data(shared.security)
        .app_data(shared.openapi)
        .app_data(shared.body_deadline)
        .app_data(shared.served_methods)
        .app_data(json_config(shared.body_limit))
        .app_data(web::PayloadConfig::new(shared.body_limit))
        .app_data(query_config())
        .app_data(path_config())
        .wrap(from_fn(body_deadline))
        .wrap(from_fn(rate_limit))
        .wrap(from_fn(record_metrics))
        .wrap(TracingLogger::<RequestSpan>::new())
        .wrap(from_fn(error_envelope))
        .wrap(from_fn(SecurityHeaders::apply))
        .wrap(from_fn(request_id))
        // Outermost: answers preflights itself and never fails a request it passes on.
        .wrap(cors(&shared.cors_allowed_origins))
}

/// The API server on `listener`, serving `services` and the `extra` routes (the WebSocket
/// service) behind the same middleware. It is not started until awaited (or spawned).
pub fn api_server(
    listener: TcpListener,
    state: AppState,
    services: Services,
    metrics: MetricsEndpoint,
    settings: &HttpSettings,
    extra: ExtraRoutes,
) -> std::io::Result<Server> {
    let rate_limits = services.rate_limits.clone();
    let services = web::Data::new(services);
    let routes: ExtraRoutes = Arc::new(move |cfg| {
        cfg.app_data(services.clone());
        extra(cfg);
    });
    let shared = Shared::new(state, rate_limits, metrics, settings, routes)?;
    let server = HttpServer::new(move || api_app(shared.clone()))
        // Small writes (WebSocket frames, short responses) leave at once instead of waiting for
        // the peer's delayed ACK (Nagle).
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .workers(settings.worker_threads());
    Ok(server.listen(listener)?.run())
}

/// `/docs` answers 200 itself (clients that do not follow redirects see a page) and sends
/// browsers on to `/docs/`, where the UI's relative asset paths resolve.
async fn docs_entry() -> actix_web::HttpResponse {
    const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>GAD API</title>\
        <meta http-equiv=\"refresh\" content=\"0; url=/docs/\"></head>\
        <body><a href=\"/docs/\">GAD API documentation</a></body></html>";
    actix_web::HttpResponse::Ok().content_type("text/html; charset=utf-8").body(PAGE)
}

/// The private metrics listener: `/metrics` only, no token.
pub fn metrics_server(listener: TcpListener, metrics: &MetricsEndpoint) -> std::io::Result<Server> {
    let metrics = web::Data::new(metrics.unguarded());
    let exposure = web::Data::new(MetricsExposure::PrivateListener);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .app_data(exposure.clone())
            .configure(routes::configure_metrics_only)
            .wrap(from_fn(error_envelope))
            .wrap(from_fn(request_id))
    })
    .disable_signals()
    .workers(1)
    .listen(listener)?
    .run())
}

/// Browsers may call from the configured origins only. Other origins are not refused outright
/// (same-origin and non-browser clients send `Origin` too); they get no CORS headers, so a
/// browser withholds the response from the calling page.
fn cors(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .block_on_origin_mismatch(false)
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("x-cache"),
            header::HeaderName::from_static("ratelimit-limit"),
            header::HeaderName::from_static("ratelimit-remaining"),
            header::HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(3600);
    origins.iter().fold(cors, |cors, origin| cors.allowed_origin(origin))
}

#[cfg(test)]
mod tests;
