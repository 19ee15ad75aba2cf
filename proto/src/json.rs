//! Mesos's JSON encoding (`application/json`) of the generated messages.
//!
//! Mesos does not use the proto3 JSON mapping's names: keys are the exact
//! proto field names (`framework_id`), enums are value names, `bytes` are
//! standard base64, 64-bit integers are bare numbers, and map values are whole
//! messages. Both directions go through [`prost_reflect`] over the descriptors
//! the types were generated from, so every message is covered without
//! hand-written code:
//!
//! * [`to_json`]: writes the fields that are set, with Mesos's names.
//! * [`from_json`]: reads what a master or scheduler writes. It is lenient
//!   where Mesos is strict but no data can be lost: unknown keys are skipped
//!   (Mesos does too, and newer masters add fields), integers may come as
//!   strings, and lowerCamelCase keys are accepted as well.

use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, SerializeOptions};
use std::sync::LazyLock;

static DESCRIPTORS: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(include_bytes!(concat!(env!("OUT_DIR"), "/mesos.fds")).as_slice())
        .expect("the descriptors compiled by build.rs decode")
});

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("{0} is not a Mesos message")]
    UnknownMessage(String),
    #[error("invalid JSON for {message}: {source}")]
    Invalid {
        message: String,
        source: serde_json::Error,
    },
    #[error("JSON for {message} does not fit its protobuf form: {source}")]
    Transcode {
        message: String,
        source: prost::DecodeError,
    },
}

fn descriptor<M: Name>() -> Result<prost_reflect::MessageDescriptor, JsonError> {
    let name = M::full_name();
    DESCRIPTORS
        .get_message_by_name(&name)
        .ok_or(JsonError::UnknownMessage(name))
}

/// `message` in Mesos's JSON, compact, as a master writes it.
pub fn to_json<M: Message + Name>(message: &M) -> Result<Vec<u8>, JsonError> {
    let descriptor = descriptor::<M>()?;
    let transcode = |source| JsonError::Transcode {
        message: M::full_name(),
        source,
    };
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(transcode)?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false);
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    dynamic
        .serialize_with_options(&mut serializer, &options)
        .map_err(|source| JsonError::Invalid {
            message: M::full_name(),
            source,
        })?;
    Ok(out)
}

/// Parses Mesos's JSON form of `M`.
pub fn from_json<M: Message + Name + Default>(json: &[u8]) -> Result<M, JsonError> {
    let descriptor = descriptor::<M>()?;
    let invalid = |source| JsonError::Invalid {
        message: M::full_name(),
        source,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let dynamic = DynamicMessage::deserialize_with_options(descriptor, &mut deserializer, &options)
        .map_err(invalid)?;
    deserializer.end().map_err(invalid)?;
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|source| JsonError::Transcode {
        message: M::full_name(),
        source,
    })
}
