//! TTLV, KMIP's binary encoding: every item is a 3-byte tag, a 1-byte type, a 4-byte big-endian
//! length and a value padded with zeros to a multiple of 8 bytes.
//!
//! Hand-written rather than taken from `kmip-ttlv`: that crate maps TTLV onto serde, which makes
//! "any byte sequence gives a value or an error" and the size and depth bounds hard to see at a
//! glance. We need ten types and a handful of messages; this decoder is one small total function
//! over a byte slice, with its bounds checked before anything is buffered (fuzzed by
//! `crates/kmip/fuzz/`).

#![forbid(unsafe_code)]

use std::fmt;

/// Tags of the KMIP specification (section 9.1.3.1), those the client and the test servers use.
pub mod tag {
    pub const ATTRIBUTE: u32 = 0x420008;
    pub const ATTRIBUTE_NAME: u32 = 0x42000A;
    pub const ATTRIBUTE_VALUE: u32 = 0x42000B;
    pub const AUTHENTICATION: u32 = 0x42000C;
    pub const BATCH_COUNT: u32 = 0x42000D;
    pub const BATCH_ITEM: u32 = 0x42000F;
    pub const CREDENTIAL: u32 = 0x420023;
    pub const CRYPTOGRAPHIC_ALGORITHM: u32 = 0x420028;
    pub const CRYPTOGRAPHIC_LENGTH: u32 = 0x42002A;
    pub const CREDENTIAL_TYPE: u32 = 0x420024;
    pub const CREDENTIAL_VALUE: u32 = 0x420025;
    pub const KEY_BLOCK: u32 = 0x420040;
    pub const KEY_FORMAT_TYPE: u32 = 0x420042;
    pub const KEY_MATERIAL: u32 = 0x420043;
    pub const KEY_VALUE: u32 = 0x420045;
    pub const NAME: u32 = 0x420053;
    pub const NAME_TYPE: u32 = 0x420054;
    pub const NAME_VALUE: u32 = 0x420055;
    pub const OBJECT_TYPE: u32 = 0x420057;
    pub const OPERATION: u32 = 0x42005C;
    pub const PASSWORD: u32 = 0x4200A1;
    pub const PROTOCOL_VERSION: u32 = 0x420069;
    pub const PROTOCOL_VERSION_MAJOR: u32 = 0x42006A;
    pub const PROTOCOL_VERSION_MINOR: u32 = 0x42006B;
    pub const QUERY_FUNCTION: u32 = 0x420074;
    pub const REQUEST_HEADER: u32 = 0x420077;
    pub const REQUEST_MESSAGE: u32 = 0x420078;
    pub const REQUEST_PAYLOAD: u32 = 0x420079;
    pub const RESPONSE_HEADER: u32 = 0x42007A;
    pub const RESPONSE_MESSAGE: u32 = 0x42007B;
    pub const RESPONSE_PAYLOAD: u32 = 0x42007C;
    pub const RESULT_MESSAGE: u32 = 0x42007D;
    pub const RESULT_REASON: u32 = 0x42007E;
    pub const RESULT_STATUS: u32 = 0x42007F;
    pub const REVOCATION_REASON: u32 = 0x420081;
    pub const REVOCATION_REASON_CODE: u32 = 0x420082;
    pub const SYMMETRIC_KEY: u32 = 0x42008F;
    pub const TEMPLATE_ATTRIBUTE: u32 = 0x420091;
    pub const UNIQUE_IDENTIFIER: u32 = 0x420094;
    pub const USERNAME: u32 = 0x420099;
    pub const VENDOR_IDENTIFICATION: u32 = 0x42009D;
    pub const SERVER_INFORMATION: u32 = 0x420088;
}

/// A message larger than this (header included) is refused before it is read.
pub const MAX_MESSAGE_LEN: usize = 1 << 20;
/// Structures nested deeper than this are refused (the outermost structure is level 1).
pub const MAX_DEPTH: usize = 16;
/// Every item starts with tag (3), type (1) and length (4).
pub const HEADER_LEN: usize = 8;

/// A KMIP tag: 3 bytes, shown as `0x42xxxx`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag(pub u32);

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:06X}", self.0)
    }
}

/// One TTLV item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub tag: Tag,
    pub value: Value,
}

/// The value of an item, one variant per KMIP item type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Structure(Vec<Item>),
    Integer(i32),
    LongInteger(i64),
    /// Two's complement, big-endian, a multiple of 8 bytes long.
    BigInteger(Vec<u8>),
    Enumeration(u32),
    Boolean(bool),
    TextString(String),
    ByteString(Vec<u8>),
    /// Seconds since the Unix epoch.
    DateTime(i64),
    /// Seconds.
    Interval(u32),
}

impl Value {
    fn type_code(&self) -> u8 {
        match self {
            Value::Structure(_) => 0x01,
            Value::Integer(_) => 0x02,
            Value::LongInteger(_) => 0x03,
            Value::BigInteger(_) => 0x04,
            Value::Enumeration(_) => 0x05,
            Value::Boolean(_) => 0x06,
            Value::TextString(_) => 0x07,
            Value::ByteString(_) => 0x08,
            Value::DateTime(_) => 0x09,
            Value::Interval(_) => 0x0A,
        }
    }
}

/// Why bytes are not a valid TTLV item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: {needed} more bytes expected, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("unknown item type 0x{0:02X}")]
    UnknownType(u8),
    #[error("item of type 0x{item_type:02X} has length {length}, which that type cannot have")]
    BadLength { item_type: u8, length: u32 },
    #[error("message of {length} bytes exceeds the {max}-byte limit")]
    TooLarge { length: usize, max: usize },
    #[error("structures nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("text string is not valid UTF-8")]
    InvalidUtf8,
    #[error("boolean with value {0}, expected 0 or 1")]
    InvalidBoolean(u64),
    #[error("{0} bytes after the end of the message")]
    TrailingBytes(usize),
    #[error("a message must be a structure, found item type 0x{0:02X}")]
    NotAStructure(u8),
}

impl Item {
    pub fn new(tag: u32, value: Value) -> Self {
        Item {
            tag: Tag(tag),
            value,
        }
    }

    /// The encoded bytes of this item.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag.0.to_be_bytes()[1..]);
        out.push(self.value.type_code());
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let value_at = out.len();
        match &self.value {
            Value::Structure(items) => items.iter().for_each(|item| item.encode_into(out)),
            Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::LongInteger(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::BigInteger(bytes) | Value::ByteString(bytes) => out.extend_from_slice(bytes),
            Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
            Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
            Value::DateTime(v) => out.extend_from_slice(&v.to_be_bytes()),
        }
        // Our own messages are far below 4 GiB; saturating keeps this total anyway.
        let length = u32::try_from(out.len() - value_at).unwrap_or(u32::MAX);
        out[length_at..value_at].copy_from_slice(&length.to_be_bytes());
        out.resize(out.len() + padding(out.len() - value_at), 0);
    }

    /// Decodes exactly one item that spans all of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Item, DecodeError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::TooLarge {
                length: bytes.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let mut rest = bytes;
        let item = decode_item(&mut rest, 0)?;
        match rest.len() {
            0 => Ok(item),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// The direct children of a structure with this tag, in order.
    pub fn children<'a>(&'a self, tag: u32) -> impl Iterator<Item = &'a Item> + 'a {
        let items: &[Item] = match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        };
        items.iter().filter(move |item| item.tag.0 == tag)
    }

    /// The first direct child of a structure with this tag.
    pub fn child(&self, tag: u32) -> Option<&Item> {
        self.children(tag).next()
    }
}

/// Reads the 8-byte header of a message and returns how many bytes follow it, refusing anything
/// that is not a structure or that would make the message larger than [`MAX_MESSAGE_LEN`].
/// A reader calls this before it allocates a buffer for the body.
pub fn message_body_len(header: [u8; HEADER_LEN]) -> Result<usize, DecodeError> {
    if header[3] != 0x01 {
        return Err(DecodeError::NotAStructure(header[3]));
    }
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let total = HEADER_LEN.saturating_add(length);
    if total > MAX_MESSAGE_LEN {
        return Err(DecodeError::TooLarge {
            length: total,
            max: MAX_MESSAGE_LEN,
        });
    }
    // Structure contents are whole items, so always a multiple of 8 bytes.
    if length % 8 != 0 {
        return Err(DecodeError::BadLength {
            item_type: 0x01,
            length: length as u32,
        });
    }
    Ok(length)
}

fn padding(len: usize) -> usize {
    (8 - len % 8) % 8
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(DecodeError::Truncated {
            needed: n,
            available: input.len(),
        });
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn decode_item(input: &mut &[u8], depth: usize) -> Result<Item, DecodeError> {
    let header = take(input, HEADER_LEN)?;
    let tag = u32::from_be_bytes([0, header[0], header[1], header[2]]);
    let item_type = header[3];
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let value_len = length as usize;
    let padded_len = value_len
        .checked_add(padding(value_len))
        .ok_or(DecodeError::BadLength { item_type, length })?;
    let raw = take(input, padded_len)?;
    let value_bytes = &raw[..value_len];
    let fixed = |expected: usize| -> Result<&[u8], DecodeError> {
        if value_len == expected {
            Ok(value_bytes)
        } else {
            Err(DecodeError::BadLength { item_type, length })
        }
    };
    let value = match item_type {
        0x01 => Value::Structure(decode_structure(value_bytes, depth + 1, length)?),
        0x02 => Value::Integer(i32::from_be_bytes(array(fixed(4)?))),
        0x03 => Value::LongInteger(i64::from_be_bytes(array(fixed(8)?))),
        0x04 if value_len % 8 == 0 => Value::BigInteger(value_bytes.to_vec()),
        0x04 => return Err(DecodeError::BadLength { item_type, length }),
        0x05 => Value::Enumeration(u32::from_be_bytes(array(fixed(4)?))),
        0x06 => match u64::from_be_bytes(array(fixed(8)?)) {
            0 => Value::Boolean(false),
            1 => Value::Boolean(true),
            other => return Err(DecodeError::InvalidBoolean(other)),
        },
        0x07 => Value::TextString(
            String::from_utf8(value_bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8)?,
        ),
        0x08 => Value::ByteString(value_bytes.to_vec()),
        0x09 => Value::DateTime(i64::from_be_bytes(array(fixed(8)?))),
        0x0A => Value::Interval(u32::from_be_bytes(array(fixed(4)?))),
        other => return Err(DecodeError::UnknownType(other)),
    };
    Ok(Item {
        tag: Tag(tag),
        value,
    })
}

fn decode_structure(mut bytes: &[u8], depth: usize, length: u32) -> Result<Vec<Item>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    if bytes.len() % 8 != 0 {
        return Err(DecodeError::BadLength {
            item_type: 0x01,
            length,
        });
    }
    let mut items = Vec::new();
    while !bytes.is_empty() {
        items.push(decode_item(&mut bytes, depth)?);
    }
    Ok(items)
}

/// Copies a slice whose length the caller has already checked into an array.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The encoding examples of the KMIP specification (KMIP 1.x, section 9.1.2), tag 0x420020.
    fn spec_examples() -> Vec<(Value, &'static str)> {
        vec![
            (
                Value::Integer(8),
                "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00",
            ),
            (
                Value::LongInteger(123_456_789_000_000_000),
                "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00",
            ),
            (
                Value::BigInteger(hex("00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00")),
                "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00",
            ),
            (
                Value::Enumeration(255),
                "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
            ),
            (
                Value::Boolean(true),
                "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01",
            ),
            (
                Value::TextString("Hello World".into()),
                "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00",
            ),
            (
                Value::ByteString(vec![1, 2, 3]),
                "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00",
            ),
            (
                Value::DateTime(0x47DA_67F8),
                "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8",
            ),
            (
                Value::Interval(864_000),
                "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00",
            ),
            (
                Value::Structure(vec![
                    Item::new(0x420004, Value::Enumeration(254)),
                    Item::new(0x420005, Value::Integer(255)),
                ]),
                "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 \
                 | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
            ),
        ]
    }

    #[test]
    fn encodes_the_specification_examples() {
        for (value, expected) in spec_examples() {
            assert_eq!(
                Item::new(0x420020, value.clone()).to_bytes(),
                hex(expected),
                "{value:?}"
            );
        }
    }

    #[test]
    fn decodes_the_specification_examples() {
        for (value, bytes) in spec_examples() {
            assert_eq!(
                Item::from_bytes(&hex(bytes)),
                Ok(Item::new(0x420020, value))
            );
        }
    }

    #[test]
    fn every_truncation_of_a_message_is_an_error() {
        let (value, bytes) = spec_examples().pop().unwrap();
        let bytes = hex(bytes);
        assert!(matches!(value, Value::Structure(_)));
        for len in 0..bytes.len() {
            assert!(
                Item::from_bytes(&bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    #[test]
    fn refuses_wrong_fixed_lengths_unknown_types_and_bad_values() {
        let cases = [
            (
                "42 00 20 | 02 | 00 00 00 08 | 00 00 00 00 00 00 00 08",
                "integer of 8 bytes",
            ),
            (
                "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 02",
                "boolean 2",
            ),
            ("42 00 20 | 0B | 00 00 00 00", "type 0x0B"),
            (
                "42 00 20 | 07 | 00 00 00 02 | FF FE 00 00 00 00 00 00",
                "invalid UTF-8",
            ),
            (
                "42 00 20 | 04 | 00 00 00 03 | 01 02 03 00 00 00 00 00",
                "big integer of 3 bytes",
            ),
            (
                "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00 | 00",
                "trailing byte",
            ),
        ];
        for (bytes, what) in cases {
            assert!(Item::from_bytes(&hex(bytes)).is_err(), "{what} decoded");
        }
    }

    #[test]
    fn refuses_structures_nested_too_deep() {
        let nest = |levels: usize| {
            let mut item = Item::new(0x420020, Value::Integer(1));
            for _ in 0..levels {
                item = Item::new(0x420020, Value::Structure(vec![item]));
            }
            item.to_bytes()
        };
        assert!(Item::from_bytes(&nest(MAX_DEPTH)).is_ok());
        assert_eq!(
            Item::from_bytes(&nest(MAX_DEPTH + 1)),
            Err(DecodeError::TooDeep)
        );
    }

    #[test]
    fn message_header_bounds_the_body_before_it_is_read() {
        assert_eq!(
            message_body_len(array(&hex("42 00 7B 01 00 00 00 20"))),
            Ok(0x20)
        );
        assert!(matches!(
            message_body_len(array(&hex("42 00 7B 01 7F FF FF F8"))),
            Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(
            message_body_len(array(&hex("48 54 54 50 2F 31 2E 31"))),
            Err(DecodeError::NotAStructure(0x50)),
            "an HTTP answer is not a KMIP message"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i32>().prop_map(Value::Integer),
                any::<i64>().prop_map(Value::LongInteger),
                prop::collection::vec(any::<[u8; 8]>(), 0..3)
                    .prop_map(|words| Value::BigInteger(words.concat())),
                any::<u32>().prop_map(Value::Enumeration),
                any::<bool>().prop_map(Value::Boolean),
                ".{0,20}".prop_map(Value::TextString),
                prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::ByteString),
                any::<i64>().prop_map(Value::DateTime),
                any::<u32>().prop_map(Value::Interval),
            ]
        }

        fn item() -> impl Strategy<Value = Item> {
            let leaf_item = (0x420000u32..0x42FFFF, leaf()).prop_map(|(t, v)| Item::new(t, v));
            leaf_item.prop_recursive(4, 32, 6, |inner| {
                (0x420000u32..0x42FFFF, prop::collection::vec(inner, 0..6))
                    .prop_map(|(t, items)| Item::new(t, Value::Structure(items)))
            })
        }

        proptest! {
            #[test]
            fn every_item_round_trips(item in item()) {
                let bytes = item.to_bytes();
                prop_assert_eq!(bytes.len() % 8, 0);
                prop_assert_eq!(Item::from_bytes(&bytes), Ok(item));
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                let _ = Item::from_bytes(&bytes);
            }

            #[test]
            fn corrupting_one_byte_never_panics(item in item(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
                let mut bytes = item.to_bytes();
                let i = at.index(bytes.len());
                bytes[i] = byte;
                let _ = Item::from_bytes(&bytes);
            }
        }
    }
}
