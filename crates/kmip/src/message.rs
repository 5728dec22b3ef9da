//! The few KMIP messages we speak: DiscoverVersions and Query to check a server, and what ONTAP
//! needs to keep a key on it (Register of a 256-bit AES key with ONTAP's custom attributes,
//! Locate by them, Get Attributes, Get, Revoke, Destroy), and the responses to them. Tag and enumeration values are those of the KMIP 1.x specification.

use std::fmt;

use crate::ttlv::{Item, Value};

/// Tags of the KMIP specification, with the codec that carries them.
pub use crate::ttlv::tag;

const CREDENTIAL_TYPE_USERNAME_AND_PASSWORD: u32 = 0x01;

/// A KMIP protocol version, such as 1.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProtocolVersion {
    pub major: i32,
    pub minor: i32,
}

impl ProtocolVersion {
    /// The version our requests are written in: DiscoverVersions and Query exist since 1.1 and
    /// 1.0, and every server we know answers 1.2.
    pub const REQUEST: ProtocolVersion = ProtocolVersion { major: 1, minor: 2 };

    fn to_item(self) -> Item {
        Item::new(
            tag::PROTOCOL_VERSION,
            Value::Structure(vec![
                Item::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(self.major)),
                Item::new(tag::PROTOCOL_VERSION_MINOR, Value::Integer(self.minor)),
            ]),
        )
    }

    fn from_item(item: &Item) -> Result<Self, ParseError> {
        Ok(ProtocolVersion {
            major: integer(item, tag::PROTOCOL_VERSION_MAJOR, "Protocol Version Major")?,
            minor: integer(item, tag::PROTOCOL_VERSION_MINOR, "Protocol Version Minor")?,
        })
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A Username and Password credential. Its Debug output never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credential {
    fn to_item(&self) -> Item {
        Item::new(
            tag::CREDENTIAL,
            Value::Structure(vec![
                Item::new(
                    tag::CREDENTIAL_TYPE,
                    Value::Enumeration(CREDENTIAL_TYPE_USERNAME_AND_PASSWORD),
                ),
                Item::new(
                    tag::CREDENTIAL_VALUE,
                    Value::Structure(vec![
                        Item::new(tag::USERNAME, Value::TextString(self.username.clone())),
                        Item::new(tag::PASSWORD, Value::TextString(self.password.clone())),
                    ]),
                ),
            ]),
        )
    }
}

/// The operations we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Register = 0x03,
    Locate = 0x08,
    Get = 0x0A,
    GetAttributes = 0x0B,
    Revoke = 0x13,
    Destroy = 0x14,
    Query = 0x18,
    DiscoverVersions = 0x1E,
}

/// Enumeration values of the key we store.
const OBJECT_TYPE_SYMMETRIC_KEY: u32 = 0x02;
const KEY_FORMAT_RAW: u32 = 0x01;
const ALGORITHM_AES: u32 = 0x03;
const USAGE_ENCRYPT_DECRYPT: i32 = 0x04 | 0x08;
/// Revocation Reason Code "Cessation of Operation": the key is no longer needed.
const CESSATION_OF_OPERATION: u32 = 0x05;

/// What a Query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryFunction {
    Operations = 0x01,
    Objects = 0x02,
    ServerInformation = 0x03,
}

/// A KMIP 1.x custom attribute with a Text String value: a name of the client's own (`x-`...),
/// as ONTAP names its keys (`x-NETAPP-KeyId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomAttribute {
    pub name: String,
    pub value: String,
}

impl CustomAttribute {
    pub fn new(name: &str, value: &str) -> CustomAttribute {
        CustomAttribute {
            name: name.to_string(),
            value: value.to_string(),
        }
    }
}

/// One batch item of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Which of these versions does the server speak? Empty: all it speaks.
    DiscoverVersions(Vec<ProtocolVersion>),
    Query(Vec<QueryFunction>),
    /// Store this AES key (raw bytes) with these attributes; the answer gives its unique
    /// identifier.
    Register {
        key: Vec<u8>,
        attributes: Vec<CustomAttribute>,
    },
    /// The unique identifiers of the objects with all these attributes.
    Locate {
        attributes: Vec<CustomAttribute>,
    },
    Get {
        id: String,
    },
    /// These attributes of an object (by name).
    GetAttributes {
        id: String,
        names: Vec<String>,
    },
    Revoke {
        id: String,
    },
    Destroy {
        id: String,
    },
}

impl Request {
    fn operation(&self) -> Operation {
        match self {
            Request::DiscoverVersions(_) => Operation::DiscoverVersions,
            Request::Query(_) => Operation::Query,
            Request::Register { .. } => Operation::Register,
            Request::Locate { .. } => Operation::Locate,
            Request::Get { .. } => Operation::Get,
            Request::GetAttributes { .. } => Operation::GetAttributes,
            Request::Revoke { .. } => Operation::Revoke,
            Request::Destroy { .. } => Operation::Destroy,
        }
    }

    fn payload(&self) -> Vec<Item> {
        match self {
            Request::DiscoverVersions(versions) => versions.iter().map(|v| v.to_item()).collect(),
            Request::Query(functions) => functions
                .iter()
                .map(|f| Item::new(tag::QUERY_FUNCTION, Value::Enumeration(*f as u32)))
                .collect(),
            Request::Register { key, attributes } => vec![
                Item::new(
                    tag::OBJECT_TYPE,
                    Value::Enumeration(OBJECT_TYPE_SYMMETRIC_KEY),
                ),
                Item::new(
                    tag::TEMPLATE_ATTRIBUTE,
                    Value::Structure(
                        std::iter::once(attribute(
                            "Cryptographic Usage Mask",
                            Value::Integer(USAGE_ENCRYPT_DECRYPT),
                        ))
                        .chain(attributes.iter().map(custom_attribute))
                        .collect(),
                    ),
                ),
                aes_key(key),
            ],
            Request::Locate { attributes } => attributes.iter().map(custom_attribute).collect(),
            Request::Get { id } | Request::Destroy { id } => vec![unique_identifier(id)],
            Request::GetAttributes { id, names } => std::iter::once(unique_identifier(id))
                .chain(
                    names
                        .iter()
                        .map(|n| Item::new(tag::ATTRIBUTE_NAME, Value::TextString(n.clone()))),
                )
                .collect(),
            Request::Revoke { id } => vec![
                unique_identifier(id),
                Item::new(
                    tag::REVOCATION_REASON,
                    Value::Structure(vec![Item::new(
                        tag::REVOCATION_REASON_CODE,
                        Value::Enumeration(CESSATION_OF_OPERATION),
                    )]),
                ),
            ],
        }
    }

    fn to_batch_item(&self) -> Item {
        Item::new(
            tag::BATCH_ITEM,
            Value::Structure(vec![
                Item::new(tag::OPERATION, Value::Enumeration(self.operation() as u32)),
                Item::new(tag::REQUEST_PAYLOAD, Value::Structure(self.payload())),
            ]),
        )
    }
}

fn attribute(name: &str, value: Value) -> Item {
    Item::new(
        tag::ATTRIBUTE,
        Value::Structure(vec![
            Item::new(tag::ATTRIBUTE_NAME, Value::TextString(name.to_string())),
            Item::new(tag::ATTRIBUTE_VALUE, value),
        ]),
    )
}

fn custom_attribute(custom: &CustomAttribute) -> Item {
    attribute(&custom.name, Value::TextString(custom.value.clone()))
}

fn unique_identifier(id: &str) -> Item {
    Item::new(tag::UNIQUE_IDENTIFIER, Value::TextString(id.to_string()))
}

fn aes_key(key: &[u8]) -> Item {
    let bits = i32::try_from(key.len() * 8).unwrap_or(i32::MAX);
    Item::new(
        tag::SYMMETRIC_KEY,
        Value::Structure(vec![Item::new(
            tag::KEY_BLOCK,
            Value::Structure(vec![
                Item::new(tag::KEY_FORMAT_TYPE, Value::Enumeration(KEY_FORMAT_RAW)),
                Item::new(
                    tag::KEY_VALUE,
                    Value::Structure(vec![Item::new(
                        tag::KEY_MATERIAL,
                        Value::ByteString(key.to_vec()),
                    )]),
                ),
                Item::new(
                    tag::CRYPTOGRAPHIC_ALGORITHM,
                    Value::Enumeration(ALGORITHM_AES),
                ),
                Item::new(tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)),
            ]),
        )]),
    )
}

/// Encodes a request message holding `batch`, authenticated by `credential` when given.
pub fn encode_request(batch: &[Request], credential: Option<&Credential>) -> Vec<u8> {
    let mut header = vec![ProtocolVersion::REQUEST.to_item()];
    if let Some(credential) = credential {
        header.push(Item::new(
            tag::AUTHENTICATION,
            Value::Structure(vec![credential.to_item()]),
        ));
    }
    let count = i32::try_from(batch.len()).unwrap_or(i32::MAX);
    header.push(Item::new(tag::BATCH_COUNT, Value::Integer(count)));
    let mut message = vec![Item::new(tag::REQUEST_HEADER, Value::Structure(header))];
    message.extend(batch.iter().map(Request::to_batch_item));
    Item::new(tag::REQUEST_MESSAGE, Value::Structure(message)).to_bytes()
}

/// Result Status of a batch item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultStatus {
    Success,
    OperationFailed,
    OperationPending,
    OperationUndone,
    Other(u32),
}

impl From<u32> for ResultStatus {
    fn from(value: u32) -> Self {
        match value {
            0 => ResultStatus::Success,
            1 => ResultStatus::OperationFailed,
            2 => ResultStatus::OperationPending,
            3 => ResultStatus::OperationUndone,
            other => ResultStatus::Other(other),
        }
    }
}

impl fmt::Display for ResultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultStatus::Success => f.write_str("Success"),
            ResultStatus::OperationFailed => f.write_str("Operation Failed"),
            ResultStatus::OperationPending => f.write_str("Operation Pending"),
            ResultStatus::OperationUndone => f.write_str("Operation Undone"),
            ResultStatus::Other(v) => write!(f, "status 0x{v:X}"),
        }
    }
}

/// The name of a Result Reason value (KMIP 1.4, section 9.1.3.2.29).
pub fn result_reason_name(reason: u32) -> String {
    let name = match reason {
        0x01 => "Item Not Found",
        0x02 => "Response Too Large",
        0x03 => "Authentication Not Successful",
        0x04 => "Invalid Message",
        0x05 => "Operation Not Supported",
        0x06 => "Missing Data",
        0x07 => "Invalid Field",
        0x08 => "Feature Not Supported",
        0x09 => "Operation Canceled By Requester",
        0x0A => "Cryptographic Failure",
        0x0B => "Illegal Operation",
        0x0C => "Permission Denied",
        0x0D => "Object Archived",
        0x0E => "Index Out of Bounds",
        0x0F => "Application Namespace Not Supported",
        0x10 => "Key Format Type Not Supported",
        0x11 => "Key Compression Type Not Supported",
        0x12 => "Encoding Option Error",
        0x13 => "Key Value Not Present",
        0x14 => "Attestation Required",
        0x15 => "Attestation Failed",
        0x16 => "Sensitive",
        0x17 => "Not Extractable",
        0x18 => "Object Already Exists",
        0x100 => "General Failure",
        other => return format!("reason 0x{other:X}"),
    };
    name.to_string()
}

/// The result of one batch item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchResult {
    pub operation: Option<u32>,
    pub status: ResultStatus,
    pub reason: Option<u32>,
    pub message: Option<String>,
    pub payload: Option<Item>,
}

impl BatchResult {
    fn from_item(item: &Item) -> Result<Self, ParseError> {
        let status = item
            .child(tag::RESULT_STATUS)
            .and_then(enumeration)
            .ok_or(ParseError::Missing("Result Status"))?;
        Ok(BatchResult {
            operation: item.child(tag::OPERATION).and_then(enumeration),
            status: ResultStatus::from(status),
            reason: item.child(tag::RESULT_REASON).and_then(enumeration),
            message: item
                .child(tag::RESULT_MESSAGE)
                .and_then(|i| match &i.value {
                    Value::TextString(s) => Some(s.clone()),
                    _ => None,
                }),
            payload: item.child(tag::RESPONSE_PAYLOAD).cloned(),
        })
    }

    /// The versions listed by a DiscoverVersions payload, in the server's order of preference.
    pub fn discovered_versions(&self) -> Result<Vec<ProtocolVersion>, ParseError> {
        let Some(payload) = &self.payload else {
            return Ok(Vec::new());
        };
        payload
            .children(tag::PROTOCOL_VERSION)
            .map(ProtocolVersion::from_item)
            .collect()
    }

    /// The unique identifiers a Register, Get or Locate answer names.
    pub fn unique_identifiers(&self) -> Vec<String> {
        let Some(payload) = &self.payload else {
            return Vec::new();
        };
        payload
            .children(tag::UNIQUE_IDENTIFIER)
            .filter_map(|i| match &i.value {
                Value::TextString(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    /// The Text String attributes a Get Attributes answer holds, by name (others are skipped).
    pub fn text_attributes(&self) -> Vec<CustomAttribute> {
        let Some(payload) = &self.payload else {
            return Vec::new();
        };
        payload
            .children(tag::ATTRIBUTE)
            .filter_map(|attribute| {
                let name = match &attribute.child(tag::ATTRIBUTE_NAME)?.value {
                    Value::TextString(name) => name,
                    _ => return None,
                };
                match &attribute.child(tag::ATTRIBUTE_VALUE)?.value {
                    Value::TextString(value) => Some(CustomAttribute::new(name, value)),
                    _ => None,
                }
            })
            .collect()
    }

    /// The raw key material of a Get answer for a symmetric key.
    pub fn key_material(&self) -> Option<Vec<u8>> {
        let material = self
            .payload
            .as_ref()?
            .child(tag::SYMMETRIC_KEY)?
            .child(tag::KEY_BLOCK)?
            .child(tag::KEY_VALUE)?
            .child(tag::KEY_MATERIAL)?;
        match &material.value {
            Value::ByteString(bytes) => Some(bytes.clone()),
            _ => None,
        }
    }

    /// What a Query payload says.
    pub fn query_answer(&self) -> QueryAnswer {
        let Some(payload) = &self.payload else {
            return QueryAnswer::default();
        };
        QueryAnswer {
            operations: payload
                .children(tag::OPERATION)
                .filter_map(enumeration)
                .collect(),
            object_types: payload
                .children(tag::OBJECT_TYPE)
                .filter_map(enumeration)
                .collect(),
            vendor_identification: payload
                .child(tag::VENDOR_IDENTIFICATION)
                .and_then(|i| match &i.value {
                    Value::TextString(s) => Some(s.clone()),
                    _ => None,
                }),
            server_information: payload.child(tag::SERVER_INFORMATION).cloned(),
        }
    }
}

/// The answer to a Query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryAnswer {
    pub operations: Vec<u32>,
    pub object_types: Vec<u32>,
    pub vendor_identification: Option<String>,
    pub server_information: Option<Item>,
}

/// A decoded response message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub protocol_version: ProtocolVersion,
    pub batch: Vec<BatchResult>,
}

/// Why a well-formed TTLV item is not the response we expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("expected a Response Message, found tag {0:?}")]
    NotAResponse(crate::ttlv::Tag),
    #[error("the response has no {0}")]
    Missing(&'static str),
    #[error("{0} has the wrong type")]
    WrongType(&'static str),
}

impl Response {
    pub fn from_item(item: &Item) -> Result<Self, ParseError> {
        if item.tag.0 != tag::RESPONSE_MESSAGE {
            return Err(ParseError::NotAResponse(item.tag));
        }
        let header = item
            .child(tag::RESPONSE_HEADER)
            .ok_or(ParseError::Missing("Response Header"))?;
        let version = header
            .child(tag::PROTOCOL_VERSION)
            .ok_or(ParseError::Missing("Protocol Version"))?;
        Ok(Response {
            protocol_version: ProtocolVersion::from_item(version)?,
            batch: item
                .children(tag::BATCH_ITEM)
                .map(BatchResult::from_item)
                .collect::<Result<_, _>>()?,
        })
    }
}

fn integer(parent: &Item, child: u32, name: &'static str) -> Result<i32, ParseError> {
    match parent.child(child).map(|i| &i.value) {
        Some(Value::Integer(v)) => Ok(*v),
        Some(_) => Err(ParseError::WrongType(name)),
        None => Err(ParseError::Missing(name)),
    }
}

fn enumeration(item: &Item) -> Option<u32> {
    match item.value {
        Value::Enumeration(v) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_discover_versions_request_has_header_and_one_batch_item() {
        let bytes = encode_request(&[Request::DiscoverVersions(vec![])], None);
        let message = Item::from_bytes(&bytes).unwrap();
        assert_eq!(message.tag.0, tag::REQUEST_MESSAGE);
        let header = message.child(tag::REQUEST_HEADER).unwrap();
        assert_eq!(
            header.child(tag::BATCH_COUNT).unwrap().value,
            Value::Integer(1)
        );
        assert!(header.child(tag::AUTHENTICATION).is_none());
        let item = message.child(tag::BATCH_ITEM).unwrap();
        assert_eq!(
            item.child(tag::OPERATION).unwrap().value,
            Value::Enumeration(0x1E)
        );
    }

    #[test]
    fn a_credential_travels_in_the_request_header() {
        let credential = Credential {
            username: "kmip-user".into(),
            password: "s3cret".into(),
        };
        let bytes = encode_request(
            &[Request::Query(vec![QueryFunction::Operations])],
            Some(&credential),
        );
        let message = Item::from_bytes(&bytes).unwrap();
        let value = message
            .child(tag::REQUEST_HEADER)
            .and_then(|h| h.child(tag::AUTHENTICATION))
            .and_then(|a| a.child(tag::CREDENTIAL))
            .and_then(|c| c.child(tag::CREDENTIAL_VALUE))
            .unwrap();
        assert_eq!(
            value.child(tag::USERNAME).unwrap().value,
            Value::TextString("kmip-user".into())
        );
        assert_eq!(
            value.child(tag::PASSWORD).unwrap().value,
            Value::TextString("s3cret".into())
        );
        assert!(!format!("{credential:?}").contains("s3cret"));
    }

    fn response(batch: Vec<Item>) -> Item {
        let mut items = vec![Item::new(
            tag::RESPONSE_HEADER,
            Value::Structure(vec![ProtocolVersion { major: 1, minor: 2 }.to_item()]),
        )];
        items.extend(batch);
        Item::new(tag::RESPONSE_MESSAGE, Value::Structure(items))
    }

    #[test]
    fn parses_versions_and_failures() {
        let ok = Item::new(
            tag::BATCH_ITEM,
            Value::Structure(vec![
                Item::new(tag::OPERATION, Value::Enumeration(0x1E)),
                Item::new(tag::RESULT_STATUS, Value::Enumeration(0)),
                Item::new(
                    tag::RESPONSE_PAYLOAD,
                    Value::Structure(vec![
                        ProtocolVersion { major: 2, minor: 0 }.to_item(),
                        ProtocolVersion { major: 1, minor: 4 }.to_item(),
                    ]),
                ),
            ]),
        );
        let failed = Item::new(
            tag::BATCH_ITEM,
            Value::Structure(vec![
                Item::new(tag::RESULT_STATUS, Value::Enumeration(1)),
                Item::new(tag::RESULT_REASON, Value::Enumeration(3)),
                Item::new(tag::RESULT_MESSAGE, Value::TextString("nope".into())),
            ]),
        );
        let parsed = Response::from_item(&response(vec![ok, failed])).unwrap();
        assert_eq!(
            parsed.batch[0].discovered_versions().unwrap(),
            vec![
                ProtocolVersion { major: 2, minor: 0 },
                ProtocolVersion { major: 1, minor: 4 }
            ]
        );
        assert_eq!(parsed.batch[1].status, ResultStatus::OperationFailed);
        assert_eq!(parsed.batch[1].reason, Some(3));
        assert_eq!(result_reason_name(3), "Authentication Not Successful");
        assert_eq!(parsed.batch[1].message.as_deref(), Some("nope"));
    }

    #[test]
    fn a_request_is_not_a_response() {
        let bytes = encode_request(&[Request::DiscoverVersions(vec![])], None);
        let item = Item::from_bytes(&bytes).unwrap();
        assert!(matches!(
            Response::from_item(&item),
            Err(ParseError::NotAResponse(_))
        ));
    }
}
