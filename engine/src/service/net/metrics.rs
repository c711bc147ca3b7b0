//! A network server's metrics, in the Prometheus text format, and its health check,
//! over plain HTTP/1.1 on their own address (`--metrics`; bind it to a private
//! interface: the figures are counts, never shares or session contents).
//!
//! `GET /metrics` answers every counter and gauge below; `GET /health` answers 200
//! `ok` while the server is linked with the other parties and 503 with the reason
//! otherwise. Anything else is 404. A request has 5 s and 4 KiB to arrive; the
//! connection closes after the answer.

use super::server::Gate;
use crate::service::Stats;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upper bounds (seconds) of the request-latency histogram's buckets.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0];

/// Why a connection or request was refused, for the refusal counters.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refusal {
    /// Over the connection limit.
    Connections,
    /// No TLS handshake and hello within the deadline, or a failed one.
    Handshake,
    /// A hello or certificate that is refused (unknown machine, wrong role, shutting down).
    Hello,
    /// A malformed request (the connection is closed).
    Malformed,
    /// A request refused by the session layer (limits, unknown sessions, …).
    Request,
}

const REFUSALS: [(Refusal, &str); 5] = [
    (Refusal::Connections, "connections"),
    (Refusal::Handshake, "handshake"),
    (Refusal::Hello, "hello"),
    (Refusal::Malformed, "malformed"),
    (Refusal::Request, "request"),
];

/// Counters of a network server's front end.
#[derive(Debug, Default)]
pub(crate) struct NetStats {
    /// Client connections open.
    pub(crate) connections: AtomicU64,
    refusals: [AtomicU64; 5],
    /// Requests answered, by latency bucket (the last: above every bound).
    latency: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of the answered requests' latencies, in microseconds.
    latency_us: AtomicU64,
    /// Push requests answered.
    pushes: AtomicU64,
}

impl NetStats {
    pub(crate) fn refused(&self, why: Refusal) {
        self.refusals[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Records a push request's latency at this server (arrival to answer).
    pub(crate) fn push_answered(&self, seconds: f64) {
        let i = BUCKETS.iter().position(|&b| seconds <= b).unwrap_or(BUCKETS.len());
        self.latency[i].fetch_add(1, Ordering::Relaxed);
        self.latency_us.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.pushes.fetch_add(1, Ordering::Relaxed);
    }
}

/// The text of `GET /metrics`.
pub(crate) fn render(party: usize, stats: &Stats, net: &NetStats, gate: &Gate) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP pmsm_{name} {help}\n# TYPE pmsm_{name} {kind}\npmsm_{name}{{party=\"{party}\"}} {value}"
        );
    };
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    metric("sessions", "gauge", "Sessions open at this server.", get(&stats.sessions));
    metric("waves_total", "counter", "Waves (lookup rounds across sessions) finished.", get(&stats.waves));
    metric("lookups_total", "counter", "Lookups finished.", get(&stats.lookups));
    metric("transitions_total", "counter", "Transitions applied.", get(&stats.transitions));
    metric("pushes_total", "counter", "Pushes taken.", get(&stats.pushes));
    metric("evicted_total", "counter", "Sessions evicted for idleness.", get(&stats.evicted));
    metric("pool_correlations", "gauge", "Correlations ready in this server's pools.", get(&stats.pool_ready));
    metric("store_commits_total", "counter", "Session store commits (0 without --store).", get(&stats.commits));
    metric("store_committed_sessions_total", "counter", "Sessions written by them.", get(&stats.committed_sessions));
    metric("store_commit_microseconds_total", "counter", "Time spent committing.", get(&stats.commit_micros));
    metric("connections", "gauge", "Client connections open.", get(&net.connections));
    metric("linked", "gauge", "1 while the links to the other parties are up.", u64::from(gate.generation().is_some()));
    metric("generation", "gauge", "Times the links were made since start (0: never).", gate.generation().unwrap_or(0));
    let _ = writeln!(out, "# HELP pmsm_refusals_total Connections and requests refused, by reason.");
    let _ = writeln!(out, "# TYPE pmsm_refusals_total counter");
    for (r, name) in REFUSALS {
        let _ = writeln!(
            out,
            "pmsm_refusals_total{{party=\"{party}\",reason=\"{name}\"}} {}",
            get(&net.refusals[r as usize])
        );
    }
    let _ = writeln!(out, "# HELP pmsm_push_seconds Push requests at this server, arrival to answer.");
    let _ = writeln!(out, "# TYPE pmsm_push_seconds histogram");
    let mut cumulative = 0;
    for (i, b) in BUCKETS.iter().enumerate() {
        cumulative += get(&net.latency[i]);
        let _ = writeln!(out, "pmsm_push_seconds_bucket{{party=\"{party}\",le=\"{b}\"}} {cumulative}");
    }
    cumulative += get(&net.latency[BUCKETS.len()]);
    let _ = writeln!(out, "pmsm_push_seconds_bucket{{party=\"{party}\",le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "pmsm_push_seconds_sum{{party=\"{party}\"}} {}", get(&net.latency_us) as f64 / 1e6);
    let _ = writeln!(out, "pmsm_push_seconds_count{{party=\"{party}\"}} {}", get(&net.pushes));
    out
}

/// Serves `/metrics` and `/health` on `listener` until the runtime stops.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    party: usize,
    stats: Arc<Stats>,
    net: Arc<NetStats>,
    gate: Arc<Gate>,
) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (stats, net, gate) = (Arc::clone(&stats), Arc::clone(&net), Arc::clone(&gate));
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return false,
                        Ok(k) => n += k,
                    }
                }
                true
            })
            .await;
            if read != Ok(true) {
                return;
            }
            let line = String::from_utf8_lossy(&buf[..n]);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match (line.starts_with("GET "), path) {
                (true, "/metrics") => ("200 OK", render(party, &stats, &net, &gate)),
                (true, "/health") => match gate.health() {
                    Ok(()) => ("200 OK", "ok\n".to_string()),
                    Err(why) => ("503 Service Unavailable", format!("{why}\n")),
                },
                _ => ("404 Not Found", "not found: try /metrics or /health\n".to_string()),
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_cumulative_buckets() {
        let net = NetStats::default();
        for s in [0.0001, 0.003, 0.003, 10.0] {
            net.push_answered(s);
        }
        net.refused(Refusal::Handshake);
        let gate = Gate::down("waiting");
        let text = render(1, &Stats::default(), &net, &gate);
        assert!(text.contains("pmsm_push_seconds_bucket{party=\"1\",le=\"0.0005\"} 1"), "{text}");
        assert!(text.contains("pmsm_push_seconds_bucket{party=\"1\",le=\"0.005\"} 3"), "{text}");
        assert!(text.contains("pmsm_push_seconds_bucket{party=\"1\",le=\"+Inf\"} 4"), "{text}");
        assert!(text.contains("pmsm_push_seconds_count{party=\"1\"} 4"), "{text}");
        assert!(text.contains("pmsm_refusals_total{party=\"1\",reason=\"handshake\"} 1"), "{text}");
        assert!(text.contains("pmsm_linked{party=\"1\"} 0"), "{text}");
    }
}
