//! The HTTP side of the exporter (hyper): `/metrics`, `/stats`, `/healthz` and `/readyz`
//! from the last build.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;

use super::{prometheus::to_prometheus_text, Published, READY_WITHIN};

/// How long a client may take to send its request head: a client dripping header lines
/// cannot hold a connection open.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may live, whatever the client does.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// Serves `/metrics` and `/stats` (GET and HEAD) from the last build, `/healthz` (the
/// server answers) and `/readyz` (builds are coming), until the task is dropped. HTTP is hyper's: one request per connection, deadlines on the head and on
/// the connection.
pub(crate) async fn serve(listener: tokio::net::TcpListener, published: Arc<Mutex<Published>>) {
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // At most MAX_CONNECTIONS at a time: further ones wait in the listen queue, not
        // holding a file descriptor (a thousand idle clients must not take the process's
        // last ones).
        let Ok(permit) = open.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors (or another transient error): accepting again at
                // once would spin; wait for connections to close.
                log::warn!("metrics: accept failed: {e}; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let published = published.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&req, &published);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, connection).await;
            drop(permit);
        });
    }
}

/// The answer to one request (hyper leaves out the body of a HEAD answer).
fn respond<B>(req: &hyper::Request<B>, published: &Mutex<Published>) -> hyper::Response<Full<Bytes>> {
    use hyper::{header, Method, StatusCode};
    let reply = |status: StatusCode, ctype: &str, body: String| {
        let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = header::HeaderValue::from_str(ctype) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET or HEAD only\n".into());
        r.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let openmetrics = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("application/openmetrics-text")));
    let p = published.lock().expect("no thread panicked holding the published metrics");
    match req.uri().path() {
        "/metrics" if openmetrics => {
            reply(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", p.text.clone())
        }
        "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", to_prometheus_text(&p.text)),
        "/stats" => reply(StatusCode::OK, "application/json", p.stats.clone()),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => match p.built.map(|t| t.elapsed()) {
            Some(age) if age <= READY_WITHIN => reply(StatusCode::OK, "text/plain", "ready\n".into()),
            Some(age) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: the counters were last exported {} s ago\n", age.as_secs()),
            ),
            None => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready: nothing exported yet\n".into()),
        },
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "try /metrics, /stats, /healthz or /readyz\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// `/healthz` answers while the server runs; `/readyz` only while builds keep coming.
    #[test]
    fn readiness_follows_the_builds_and_health_the_server() {
        let status = |path: &str, built: Option<Instant>| {
            let published = Mutex::new(Published { built, ..Published::default() });
            let req = hyper::Request::get(path).body(()).unwrap();
            respond(&req, &published).status().as_u16()
        };
        let stale = Instant::now().checked_sub(READY_WITHIN * 2);
        assert_eq!(status("/healthz", None), 200);
        assert_eq!(status("/readyz", None), 503, "nothing built yet");
        assert_eq!(status("/readyz", Some(Instant::now())), 200);
        assert_eq!(status("/readyz", stale), 503, "builds stopped");
        assert_eq!(status("/nothing", None), 404);
    }
}
