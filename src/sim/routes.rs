//! The simulator's HTTP surface. One handler dispatches on the path so every request is
//! recorded and can meet an injected fault.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Endpoint, Fault, Request, State};

pub(crate) fn router(state: Arc<Mutex<State>>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            date_header,
        ))
        .with_state(state)
}

/// Every answer carries the simulator's time in `Date`, as an API's does: a simulator whose
/// clock was advanced (`Sim::advance`) is ahead of ftguard's, like a real API and a machine
/// whose clock drifted.
async fn date_header(AxState(state): AxState<Arc<Mutex<State>>>, mut resp: Response) -> Response {
    let now = state.lock().unwrap_or_else(|p| p.into_inner()).now();
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0).unsigned_abs());
    if let Ok(v) = httpdate::fmt_http_date(at).parse() {
        resp.headers_mut().insert(axum::http::header::DATE, v);
    }
    resp
}

fn error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}))).into_response()
}

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri
        .path()
        .strip_prefix("/v1")
        .unwrap_or(uri.path())
        .to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let endpoint = match (method.as_str(), segs.as_slice()) {
        ("GET", ["fine_tuning", "jobs"]) => Some(Endpoint::List),
        ("GET", ["fine_tuning", "jobs", _]) => Some(Endpoint::Retrieve),
        ("GET", ["fine_tuning", "jobs", _, "events"]) => Some(Endpoint::Events),
        ("GET", ["fine_tuning", "jobs", _, "checkpoints"]) => Some(Endpoint::Checkpoints),
        ("POST", ["fine_tuning", "jobs", _, "cancel"]) => Some(Endpoint::Cancel),
        ("POST", ["fine_tuning", "jobs", _, "pause"]) => Some(Endpoint::Pause),
        ("POST", ["fine_tuning", "jobs", _, "resume"]) => Some(Endpoint::Pause),
        ("GET", ["files", _]) => Some(Endpoint::File),
        ("GET", ["files", _, "content"]) => Some(Endpoint::FileContent),
        _ => None,
    };
    let fault = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        if !s.forget_requests {
            s.requests.push(Request {
                at_ms: crate::model::time::now_ms(),
                method: method.to_string(),
                path: path.clone(),
                query: query.clone(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                    .collect(),
            });
        }
        if let Some((name, want)) = &s.required_header
            && headers.get(name.as_str()).and_then(|v| v.to_str().ok()) != Some(want.as_str())
        {
            return error(401, "Incorrect API key provided");
        }
        (
            endpoint.and_then(|e| s.faults.get_mut(&e).and_then(|q| q.pop_front())),
            s.latency,
        )
    };
    let (fault, latency) = fault;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let Some(endpoint) = endpoint else {
        return error(404, &format!("Unknown request URL: {method} {path}"));
    };
    let mut apply_then = None;
    match fault {
        Some(Fault::Status(code)) => return error(code, "simulated failure"),
        Some(Fault::RateLimited(secs)) => {
            let mut r = error(429, "Rate limit reached");
            if let Ok(v) = secs.to_string().parse() {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
        Some(Fault::Html(code)) => {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            return (
                code,
                [("content-type", "text/html")],
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
                .into_response();
        }
        Some(Fault::Truncated) => {
            return (
                [("content-type", "application/json")],
                "{\"object\":\"list\",\"data\":[{\"id\":\"ftjob-tr",
            )
                .into_response();
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Reset) => {
            let broken = futures_util::stream::iter([Err::<Vec<u8>, _>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "simulated reset",
            ))]);
            return Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(broken))
                .unwrap_or_else(|_| error(500, "reset"));
        }
        Some(Fault::ApplyThenDelay(d)) => {
            let resp = answer(&state, endpoint, &segs, &query);
            tokio::time::sleep(d).await;
            return resp;
        }
        Some(Fault::ApplyThen(code)) => apply_then = Some(code),
        None => {}
    }
    let resp = answer(&state, endpoint, &segs, &query);
    match apply_then {
        Some(code) => error(code, "simulated failure after applying"),
        None => resp,
    }
}

fn answer(state: &Arc<Mutex<State>>, endpoint: Endpoint, segs: &[&str], query: &str) -> Response {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let now = s.now();
    let id = match endpoint {
        Endpoint::File | Endpoint::FileContent => segs.get(1),
        _ => segs.get(2),
    }
    .copied()
    .unwrap_or("");
    match endpoint {
        Endpoint::List => {
            let limit = query_param(query, "limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(20)
                .clamp(1, 100);
            // Kept sorted newest first between requests: 100,000 jobs page without re-sorting.
            if !s.sorted {
                s.jobs
                    .sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
                if s.oldest_first {
                    s.jobs.reverse();
                }
                s.sorted = true;
            }
            let jobs = &s.jobs;
            let start = match query_param(query, "after") {
                Some(_) if s.stuck_cursor => 0,
                Some(after) => jobs
                    .iter()
                    .position(|j| j.id == after)
                    .map_or(jobs.len(), |p| p + 1),
                None => 0,
            };
            let page: Vec<Value> = jobs
                .iter()
                .skip(start)
                .take(limit)
                .map(|j| j.to_json(now))
                .collect();
            let has_more = start + page.len() < jobs.len() || s.stuck_cursor;
            ok(json!({"object": "list", "data": page, "has_more": has_more}))
        }
        Endpoint::Retrieve => match s.jobs.iter().find(|j| j.id == id) {
            Some(j) => ok(j.to_json(now)),
            None => error(404, &format!("Could not find fine-tune job: {id}")),
        },
        Endpoint::Events => match s.jobs.iter().find(|j| j.id == id) {
            // A job with a loss curve: a metrics event per step, newest first, paged by `after`.
            Some(j) if j.curve.is_some() => {
                let limit = query_param(query, "limit")
                    .and_then(|l| l.parse::<i64>().ok())
                    .unwrap_or(20)
                    .clamp(1, 100);
                let done = j.steps_done(now);
                let prefix = format!("ftevent-{}-", j.id);
                let top = match query_param(query, "after") {
                    Some(a) => a
                        .strip_prefix(prefix.as_str())
                        .and_then(|n| n.parse::<i64>().ok())
                        .map_or(0, |n| n - 1),
                    None => done,
                }
                .min(done);
                let bottom = (top - limit).max(0);
                let data: Vec<Value> = (bottom + 1..=top)
                    .rev()
                    .filter_map(|step| j.metrics_event(step))
                    .collect();
                ok(json!({"object": "list", "data": data, "has_more": bottom > 0}))
            }
            Some(j) => {
                let limit = query_param(query, "limit")
                    .and_then(|l| l.parse::<usize>().ok())
                    .unwrap_or(20);
                let steps = j.step_times(now);
                let total = steps.len();
                let data: Vec<Value> = steps
                    .iter()
                    .enumerate()
                    .rev()
                    .take(limit)
                    .map(|(i, t)| json!({"object": "fine_tuning.job.event", "id": format!("ftevent-{}-{}", j.id, i + 1), "created_at": t, "level": "info",
                        "message": format!("Step {}/{}", i + 1, total), "type": "metrics", "data": {"step": i + 1, "train_loss": 1.0 / (i as f64 + 2.0)}}))
                    .collect();
                ok(json!({"object": "list", "data": data, "has_more": total > limit}))
            }
            None => error(404, &format!("Could not find fine-tune job: {id}")),
        },
        Endpoint::Checkpoints => match s.jobs.iter().find(|j| j.id == id) {
            Some(j) => ok(json!({"object": "list", "data": j.checkpoints(now), "has_more": false})),
            None => error(404, &format!("Could not find fine-tune job: {id}")),
        },
        Endpoint::Cancel => {
            let Some(j) = s.jobs.iter_mut().find(|j| j.id == id) else {
                return error(404, &format!("Could not find fine-tune job: {id}"));
            };
            if j.is_terminal(now) {
                return error(400, "Job has already completed.");
            }
            j.cancelled_at = Some(now);
            j.paused_at = None;
            ok(j.to_json(now))
        }
        Endpoint::Pause => {
            let resume = segs.get(3) == Some(&"resume");
            let Some(j) = s.jobs.iter_mut().find(|j| j.id == id) else {
                return error(404, &format!("Could not find fine-tune job: {id}"));
            };
            if resume {
                if j.paused_at.take().is_none() {
                    return error(400, "Job is not paused.");
                }
                return ok(j.to_json(now));
            }
            if j.status(now) != "running" || j.step_times(now).is_empty() {
                return error(400, "Job cannot be paused before it has trained a step.");
            }
            j.paused_at = Some(now);
            ok(j.to_json(now))
        }
        Endpoint::File => match s.files.get(id) {
            Some(f) => ok(
                json!({"object": "file", "id": id, "bytes": f.len(), "created_at": now, "filename": format!("{id}.jsonl"), "purpose": "fine-tune", "status": "processed"}),
            ),
            None => error(404, &format!("No such File object: {id}")),
        },
        Endpoint::FileContent => match s.files.get(id).cloned() {
            Some(f) => {
                drop(s);
                // Stream in chunks, as a real server would for a large file.
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    f.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
                Response::builder()
                    .header("content-type", "application/octet-stream")
                    .body(Body::from_stream(futures_util::stream::iter(chunks)))
                    .unwrap_or_else(|_| error(500, "stream"))
            }
            None => error(404, &format!("No such File object: {id}")),
        },
    }
}
