//! Admission control: past the number of requests the server can work on at
//! once, a request waits a short while for a place, and past the places to
//! wait in it is refused at once with 503 and `Retry-After`. Refusing early
//! keeps the admitted requests' latency, and keeps a flood from ending in
//! requests that time out waiting for a database connection. Every admitted
//! request also has a deadline; past it the request is stopped and answered
//! 503.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::Error;

/// How much work the API takes on at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Requests worked on at once (`API_MAX_IN_FLIGHT`): four per core by
    /// default. The work is the CPU's and PostgreSQL's: more at once only
    /// makes each one slower (measured in `docs/benchmarks.md`). `airsync
    /// serve` also keeps it within the database pool, so that an admitted
    /// request finds a connection.
    pub in_flight: usize,
    /// Requests that may wait for a place (`API_MAX_QUEUED`); more are
    /// refused at once.
    pub queued: usize,
    /// How long a request waits for a place before it is refused.
    pub queue_wait: Duration,
    /// How long an admitted request may take, its body included
    /// (`API_REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Duration,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        AdmissionLimits {
            in_flight: 4 * cores,
            queued: 16 * cores,
            queue_wait: Duration::from_millis(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The places of [`AdmissionLimits`], and what happened to requests.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    working: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    refused: AtomicU64,
    timed_out: AtomicU64,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Admission {
        Admission {
            limits,
            working: Arc::new(Semaphore::new(limits.in_flight.max(1))),
            waiting: Arc::new(Semaphore::new(limits.queued)),
            refused: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        }
    }

    /// Requests refused as too many so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Admitted requests stopped at their deadline so far.
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }

    fn refuse(&self) -> Response {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Error::Overloaded {
            retry_after_secs: 1,
        }
        .into_response()
    }
}

/// The middleware: admits, queues briefly or refuses each request, and
/// stops an admitted one at its deadline.
pub async fn admit(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    let place = match admission.working.clone().try_acquire_owned() {
        Ok(place) => place,
        Err(_) => {
            let Ok(_waiting) = admission.waiting.try_acquire() else {
                return admission.refuse();
            };
            let waited = tokio::time::timeout(
                admission.limits.queue_wait,
                admission.working.clone().acquire_owned(),
            )
            .await;
            match waited {
                Ok(Ok(place)) => place,
                _ => return admission.refuse(),
            }
        }
    };
    let answered = tokio::time::timeout(admission.limits.request_timeout, next.run(request)).await;
    drop(place);
    match answered {
        Ok(response) => response,
        Err(_) => {
            admission.timed_out.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                timeout_secs = admission.limits.request_timeout.as_secs_f64(),
                "request stopped at its deadline"
            );
            Error::TimedOut.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use tokio::sync::Notify;
    use tower_service::Service as _;

    use super::*;

    /// A router whose `/hold` answers only once `release` is notified.
    fn app(limits: AdmissionLimits, release: Arc<Notify>) -> (Router, Arc<Admission>) {
        let admission = Arc::new(Admission::new(limits));
        let router = Router::new()
            .route(
                "/hold",
                get(move || {
                    let release = release.clone();
                    async move {
                        release.notified().await;
                        "released"
                    }
                }),
            )
            .route("/quick", get(|| async { "quick" }))
            .layer(axum::middleware::from_fn_with_state(
                admission.clone(),
                admit,
            ));
        (router, admission)
    }

    async fn get_status(router: &Router, path: &str) -> Response {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        router.clone().call(request).await.unwrap()
    }

    #[tokio::test]
    async fn past_the_places_to_work_and_wait_a_request_gets_503_with_retry_after() {
        let release = Arc::new(Notify::new());
        let limits = AdmissionLimits {
            in_flight: 1,
            queued: 1,
            queue_wait: Duration::from_millis(20),
            request_timeout: Duration::from_secs(600),
        };
        let (router, admission) = app(limits, release.clone());
        let held = tokio::spawn({
            let router = router.clone();
            async move { get_status(&router, "/hold").await }
        });
        while admission.working.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // The one place is taken: a request waits its while, then is refused.
        let refused = get_status(&router, "/quick").await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        assert_eq!(admission.refused(), 1);
        release.notify_one();
        assert_eq!(held.await.unwrap().status(), StatusCode::OK);
        // With the place free again, requests are admitted.
        assert_eq!(get_status(&router, "/quick").await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_request_waiting_for_a_place_gets_it_when_one_comes_free() {
        let release = Arc::new(Notify::new());
        let limits = AdmissionLimits {
            in_flight: 1,
            queued: 1,
            queue_wait: Duration::from_secs(600),
            request_timeout: Duration::from_secs(600),
        };
        let (router, admission) = app(limits, release.clone());
        let held = tokio::spawn({
            let router = router.clone();
            async move { get_status(&router, "/hold").await }
        });
        while admission.working.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let waiting = tokio::spawn({
            let router = router.clone();
            async move { get_status(&router, "/quick").await }
        });
        while admission.waiting.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // The one place to wait is taken too: refused without waiting.
        let refused = get_status(&router, "/quick").await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        release.notify_one();
        assert_eq!(held.await.unwrap().status(), StatusCode::OK);
        assert_eq!(waiting.await.unwrap().status(), StatusCode::OK);
        assert_eq!(admission.refused(), 1);
    }

    #[tokio::test]
    async fn an_admitted_request_past_its_deadline_is_stopped_with_503() {
        let limits = AdmissionLimits {
            request_timeout: Duration::from_millis(50),
            ..AdmissionLimits::default()
        };
        let (router, admission) = app(limits, Arc::new(Notify::new()));
        let stopped = get_status(&router, "/hold").await;
        assert_eq!(stopped.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(stopped.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(admission.timed_out(), 1);
        // Its place was given back.
        assert_eq!(admission.working.available_permits(), limits.in_flight);
    }
}
