//! Tolerant parsing of every example response in the OpenAI spec (tests/fixtures is a copy of
//! the fine-tuning and files part of openai/openai-openapi). The spec's examples are written
//! by hand: `{ ... }` placeholders, trailing commas, Python's `None`; they are normalized to
//! JSON first, the way a reader would read them.

use ftguard::provider::payload::{FileMeta, parse_events, parse_job, parse_job_page};
use serde_json::Value;

fn normalize(example: &str) -> Value {
    let s = regex::Regex::new(r",\s*\{\s*\.\.\.\s*\}")
        .unwrap()
        .replace_all(example, "");
    let s = regex::Regex::new(r",(\s*[}\]])")
        .unwrap()
        .replace_all(&s, "$1");
    let s = regex::Regex::new(r":\s*None\b")
        .unwrap()
        .replace_all(&s, ": null");
    let s = regex::Regex::new(r#"("|\d|true|false|null)(\s*\n\s*")"#)
        .unwrap()
        .replace_all(&s, "$1,$2");
    serde_json::from_str(&s)
        .unwrap_or_else(|e| panic!("example is not JSON even after normalizing ({e}):\n{s}"))
}

fn spec() -> serde_yaml::Value {
    serde_yaml::from_str(include_str!("../fixtures/openai-fine-tuning.yaml")).unwrap()
}

/// (path, method, response example) for every example in the spec.
fn path_examples() -> Vec<(String, String, String)> {
    let spec = spec();
    let mut out = Vec::new();
    for (p, ops) in spec["paths"].as_mapping().unwrap() {
        for (m, op) in ops.as_mapping().unwrap() {
            let ex = &op["x-oaiMeta"]["examples"];
            let items: Vec<&serde_yaml::Value> = match ex {
                serde_yaml::Value::Sequence(s) => s.iter().collect(),
                serde_yaml::Value::Mapping(_) => vec![ex],
                _ => vec![],
            };
            for it in items {
                if let Some(r) = it["response"].as_str() {
                    out.push((
                        p.as_str().unwrap().to_owned(),
                        m.as_str().unwrap().to_owned(),
                        r.to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn every_job_example_parses_with_its_fields() {
    let mut jobs = 0;
    for (path, method, example) in path_examples() {
        let v = normalize(&example);
        let job_answer = (path.starts_with("/fine_tuning/jobs")
            && method == "post"
            && !path.ends_with("checkpoints"))
            || path == "/fine_tuning/jobs/{fine_tuning_job_id}";
        if job_answer {
            let job = parse_job(v.clone()).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert_eq!(job.id.as_str(), v["id"].as_str().unwrap(), "{path}");
            assert_eq!(job.status.as_str(), v["status"].as_str().unwrap(), "{path}");
            assert_eq!(job.created_at, v["created_at"].as_i64().unwrap(), "{path}");
            assert_eq!(job.trained_tokens, v["trained_tokens"].as_i64(), "{path}");
            assert_eq!(job.raw_value(), v, "raw payload is kept verbatim");
            jobs += 1;
        }
    }
    // create (6 examples), retrieve, cancel, pause, resume.
    assert_eq!(jobs, 10);
}

#[test]
fn the_list_example_parses_as_a_page() {
    let (_, _, ex) = path_examples()
        .into_iter()
        .find(|(p, m, _)| p == "/fine_tuning/jobs" && m == "get")
        .unwrap();
    let page = parse_job_page(normalize(&ex)).unwrap();
    assert!(page.has_more);
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.jobs[0].status.as_str(), "queued");
    assert_eq!(
        page.jobs[0].metadata.get("key").map(String::as_str),
        Some("value")
    );
    assert!(page.rejected.is_empty());
}

#[test]
fn the_events_and_file_examples_parse() {
    let ex = path_examples();
    let (_, _, events) = ex.iter().find(|(p, _, _)| p.ends_with("/events")).unwrap();
    let events = parse_events(&normalize(events)).unwrap();
    assert!(!events.is_empty());
    let (_, _, file) = ex
        .iter()
        .find(|(p, m, _)| p == "/files/{file_id}" && m == "get")
        .unwrap();
    let meta: FileMeta = serde_json::from_value(normalize(file)).unwrap();
    assert!(meta.id.starts_with("file-"));
    assert!(meta.bytes.unwrap() > 0);
}

#[test]
fn the_schema_level_job_example_parses() {
    let spec = spec();
    let ex = spec["components"]["schemas"]["FineTuningJob"]["x-oaiMeta"]["example"]
        .as_str()
        .unwrap();
    let job = parse_job(normalize(ex)).unwrap();
    assert_eq!(job.resolved_epochs(), Some(4.0));
    assert_eq!(job.method.as_deref(), Some("supervised"));
}
