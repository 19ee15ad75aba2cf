//! The JSON codec against `tests/data/TEST_VECTORS.json`: every vector's JSON body must
//! decode to exactly the message its protobuf bytes hold, and what we write must read back
//! the same and use only Mesos's snake_case field names. The JSON stream captured from a real
//! 1.11.0 master must decode as well.

use prost::{Message, Name};
use proto::json::{from_json, to_json};
use proto::mesos::v1::scheduler as s;
use serde_json::Value;
use std::fmt::Debug;
use std::path::PathBuf;

fn vectors_file() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/TEST_VECTORS.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Every object key in `value`, recursively.
fn keys(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                out.push(key.clone());
                keys(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| keys(item, out)),
        _ => {}
    }
}

fn check<M: Message + Name + Default + PartialEq + Debug>(name: &str, vector: &Value) {
    let expected = M::decode(unhex(vector["protobuf_hex"].as_str().unwrap()).as_slice()).unwrap();
    let json = serde_json::to_vec(&vector["json"]).unwrap();
    let decoded: M = from_json(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(decoded, expected, "{name}: JSON and protobuf differ");

    let written = to_json(&expected).unwrap();
    let reread: M = from_json(&written).unwrap();
    assert_eq!(reread, expected, "{name}: our JSON does not read back");
    let mut names = Vec::new();
    keys(&serde_json::from_slice(&written).unwrap(), &mut names);
    // Map keys (TaskInfo.limits: "cpus", "mem") are data, not field names; all are lowercase.
    assert!(
        names
            .iter()
            .all(|key| !key.chars().any(|c| c.is_ascii_uppercase())),
        "{name}: camelCase key in {}",
        String::from_utf8_lossy(&written)
    );
}

#[test]
fn every_vector_json_decodes_to_its_protobuf_and_back() {
    let file = vectors_file();
    let vectors = file["vectors"].as_array().unwrap();
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        match vector["message"].as_str().unwrap() {
            "mesos.v1.scheduler.Call" => check::<s::Call>(name, vector),
            "mesos.v1.scheduler.Event" => check::<s::Event>(name, vector),
            other => panic!("{name}: unexpected message {other}"),
        }
    }
}

#[test]
fn captured_real_master_json_stream_decodes() {
    let file = vectors_file();
    let captured = &file["captured_real_master_1_11_0"];
    let json_stream = captured["json_stream"].as_array().unwrap();
    let protobuf_stream = captured["protobuf_stream"].as_array().unwrap();
    let types = |events: Vec<s::Event>| events.iter().map(|e| e.r#type()).collect::<Vec<_>>();
    let from_json_records: Vec<s::Event> = json_stream
        .iter()
        .map(|entry| from_json(entry[1].as_str().unwrap().as_bytes()).unwrap())
        .collect();
    let from_protobuf: Vec<s::Event> = protobuf_stream
        .iter()
        .map(|entry| s::Event::decode(unhex(entry[1].as_str().unwrap()).as_slice()).unwrap())
        .collect();
    // The JSON capture ran a little longer: one more HEARTBEAT at its end.
    let json_types = types(from_json_records.clone());
    assert_eq!(json_types[..8], types(from_protobuf)[..]);
    assert_eq!(json_types[8..], [s::event::Type::Heartbeat]);
    let subscribed = from_json_records[0].subscribed.as_ref().unwrap();
    assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
    // The master writes `{}` for an enum value its own schema lacks: read as absent.
    let capabilities = &subscribed.master_info.as_ref().unwrap().capabilities;
    assert!(!capabilities.is_empty());
}

#[test]
fn invalid_json_is_an_error_not_a_panic() {
    for body in [&b"{"[..], b"[]", b"{\"type\": {}}", b"{} trailing"] {
        assert!(
            from_json::<s::Call>(body).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
