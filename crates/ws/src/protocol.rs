//! The wire format of SPEC §5: every server message is one JSON text frame
//! `{"type","id","ts","topic"?,"seq"?,"data"}`; client messages are `subscribe`, `unsubscribe`,
//! `ping` and `resume`.

use bytestring::ByteString;
use gad_domain::events::Event;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// A message from the client, once its JSON parsed.
#[derive(Debug, PartialEq)]
pub(crate) enum ClientMessage {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
    Ping,
    Resume(i64),
}

/// Why a client message was not understood; answered with an `error` message.
#[derive(Debug, PartialEq)]
pub(crate) struct ProtocolFault {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ProtocolFault {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: Option<Value>,
    topics: Option<Value>,
    since: Option<Value>,
}

/// The most topics one message may name (a subscription flood is refused, not processed).
const MAX_TOPICS_PER_MESSAGE: usize = 100;

impl ClientMessage {
    pub(crate) fn parse(text: &str) -> Result<Self, ProtocolFault> {
        let raw: Raw = serde_json::from_str(text)
            .map_err(|_| ProtocolFault::new("bad_json", "the message is not a JSON object"))?;
        let kind = match raw.kind {
            Some(Value::String(kind)) => kind,
            _ => return Err(ProtocolFault::new("bad_request", "the message has no \"type\" string")),
        };
        match kind.as_str() {
            "subscribe" => Ok(Self::Subscribe(topics(raw.topics)?)),
            "unsubscribe" => Ok(Self::Unsubscribe(topics(raw.topics)?)),
            "ping" => Ok(Self::Ping),
            "resume" => match raw.since.as_ref().and_then(Value::as_i64) {
                Some(since) if since >= 0 => Ok(Self::Resume(since)),
                _ => Err(ProtocolFault::new("bad_request", "\"since\" must be a sequence number (0 or more)")),
            },
            _ => Err(ProtocolFault::new("unknown_type", "unknown message type")),
        }
    }
}

fn topics(raw: Option<Value>) -> Result<Vec<String>, ProtocolFault> {
    let invalid = || ProtocolFault::new("bad_request", "\"topics\" must be a non-empty array of strings");
    let Some(Value::Array(items)) = raw else {
        return Err(invalid());
    };
    if items.is_empty() {
        return Err(invalid());
    }
    if items.len() > MAX_TOPICS_PER_MESSAGE {
        return Err(ProtocolFault::new(
            "too_many_topics",
            format!("at most {MAX_TOPICS_PER_MESSAGE} topics per message"),
        ));
    }
    items.into_iter().map(|item| if let Value::String(topic) = item { Ok(topic) } else { Err(invalid()) }).collect()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// The server's clock now, as RFC 3339.
pub(crate) fn control_time() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// A server message that is not an event: `connection_ack`, `subscribed`, `pong`, `error`, …
/// `extra` fields go at the top level next to `data` (e.g. `topics` of `subscribed`).
pub(crate) fn control(kind: &str, data: Value, extra: Option<(&str, Value)>) -> ByteString {
    let mut message = serde_json::Map::new();
    message.insert("type".into(), Value::from(kind));
    message.insert("id".into(), Value::from(Uuid::now_v7().to_string()));
    message.insert("ts".into(), Value::from(rfc3339(OffsetDateTime::now_utc())));
    if let Some((key, value)) = extra {
        message.insert(key.to_owned(), value);
    }
    message.insert("data".into(), data);
    ByteString::from(Value::Object(message).to_string())
}

/// `{"type":"error","data":{"code","message"}}`, with the topic concerned when there is one.
pub(crate) fn error(code: &str, message: &str, topic: Option<&str>) -> ByteString {
    let data = match topic {
        Some(topic) => json!({ "code": code, "message": message, "topic": topic }),
        None => json!({ "code": code, "message": message }),
    };
    control("error", data, None)
}

/// An event as delivered on `topic`: built once per event and topic, shared by every
/// connection that receives it. The payload is the stored JSON text, copied verbatim.
pub(crate) fn event(event: &Event, topic: &str) -> ByteString {
    let topic = serde_json::to_string(topic).unwrap_or_else(|_| "null".into());
    let kind = serde_json::to_string(&event.event_type).unwrap_or_else(|_| "null".into());
    ByteString::from(format!(
        r#"{{"type":{kind},"id":"{}","ts":"{}","topic":{topic},"seq":{},"data":{}}}"#,
        event.id,
        rfc3339(event.created_at),
        event.seq,
        event.payload
    ))
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use gad_domain::users::UserId;

    #[test]
    fn client_messages_parse_and_faults_are_named() {
        assert_eq!(ClientMessage::parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(
            ClientMessage::parse(r#"{"type":"subscribe","topics":["tasks","alerts"]}"#),
            Ok(ClientMessage::Subscribe(vec!["tasks".into(), "alerts".into()]))
        );
        assert_eq!(ClientMessage::parse(r#"{"type":"resume","since":42}"#), Ok(ClientMessage::Resume(42)));
        let code = |text: &str| ClientMessage::parse(text).unwrap_err().code;
        assert_eq!(code("not json"), "bad_json");
        assert_eq!(code("[1,2]"), "bad_json");
        assert_eq!(code(r#"{"type":"dance"}"#), "unknown_type");
        assert_eq!(code(r#"{"topics":[]}"#), "bad_request");
        assert_eq!(code(r#"{"type":"subscribe","topics":[]}"#), "bad_request");
        assert_eq!(code(r#"{"type":"subscribe","topics":[1]}"#), "bad_request");
        assert_eq!(code(r#"{"type":"resume","since":-1}"#), "bad_request");
        assert_eq!(code(r#"{"type":"resume","since":"7"}"#), "bad_request");
        let flood = serde_json::json!({"type": "subscribe", "topics": vec!["tasks"; 101]}).to_string();
        assert_eq!(code(&flood), "too_many_topics");
    }

    #[test]
    fn events_are_framed_with_their_payload_verbatim() {
        let event = Event {
            seq: 7,
            id: Uuid::now_v7(),
            event_type: "task.created".into(),
            task_id: None,
            officer_id: None,
            audience: vec![UserId::generate()],
            payload: r#"{"id":"x","title":"Patrol \"north\""}"#.into(),
            created_at: OffsetDateTime::now_utc(),
        };
        let frame: Value = serde_json::from_str(&event_frame(&event)).unwrap();
        assert_eq!(frame["type"], "task.created");
        assert_eq!(frame["topic"], "tasks");
        assert_eq!(frame["seq"], 7);
        assert_eq!(frame["id"], event.id.to_string());
        assert_eq!(frame["data"]["title"], "Patrol \"north\"");
        assert!(OffsetDateTime::parse(frame["ts"].as_str().unwrap(), &Rfc3339).is_ok());
    }

    fn event_frame(event: &Event) -> String {
        super::event(event, "tasks").to_string()
    }

    #[test]
    fn control_messages_carry_type_id_ts_and_data() {
        let frame: Value = serde_json::from_str(&control(
            "subscribed",
            json!({"topics": ["tasks"]}),
            Some(("topics", json!(["tasks"]))),
        ))
        .unwrap();
        assert_eq!(frame["type"], "subscribed");
        assert_eq!(frame["topics"], json!(["tasks"]));
        assert_eq!(frame["data"]["topics"], json!(["tasks"]));
        assert!(Uuid::try_parse(frame["id"].as_str().unwrap()).is_ok());
        let frame: Value = serde_json::from_str(&error("forbidden_topic", "no", Some("tasks"))).unwrap();
        assert_eq!(frame["data"], json!({"code": "forbidden_topic", "message": "no", "topic": "tasks"}));
    }
}
