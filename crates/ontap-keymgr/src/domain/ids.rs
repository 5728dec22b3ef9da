//! Identifiers that cannot be mistaken for one another: a key manager's uuid is a
//! [`KeyManagerId`], a certificate's a [`CertificateId`], an SVM's an [`SvmId`]. They are parsed
//! at the edge (a path that holds no uuid names nothing) and compared by value; each is a
//! lower-case hyphenated uuid, as ONTAP writes them.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

/// The uuid of an object of kind `K`.
pub struct Id<K> {
    uuid: String,
    kind: PhantomData<fn() -> K>,
}

/// The kinds of objects with identifiers.
pub enum KeyManagerKindMarker {}
pub enum CertificateKindMarker {}
pub enum SvmKindMarker {}
pub enum VolumeKindMarker {}

pub type KeyManagerId = Id<KeyManagerKindMarker>;
pub type CertificateId = Id<CertificateKindMarker>;
pub type SvmId = Id<SvmKindMarker>;
pub type VolumeId = Id<VolumeKindMarker>;

impl<K> Id<K> {
    /// A new, random identifier.
    pub fn new_random() -> Id<K> {
        Id::from_uuid(uuid::Uuid::new_v4())
    }

    fn from_uuid(uuid: uuid::Uuid) -> Id<K> {
        Id {
            uuid: uuid.hyphenated().to_string(),
            kind: PhantomData,
        }
    }

    /// An identifier as a client gives it: a hyphenated uuid, in either case; `None` when it
    /// is anything else (then it names nothing). The other spellings the uuid crate accepts
    /// (braced, urn, no hyphens) are refused because ONTAP never writes them.
    pub fn parse(text: &str) -> Option<Id<K>> {
        const HYPHENATED_LEN: usize = 36;
        if text.len() != HYPHENATED_LEN {
            return None;
        }
        uuid::Uuid::parse_str(text).ok().map(Id::from_uuid)
    }

    /// An identifier the store wrote: it is taken as it is.
    pub fn from_stored(uuid: String) -> Id<K> {
        Id {
            uuid,
            kind: PhantomData,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.uuid
    }
}

// Written by hand: derives would require `K` itself to be Clone, Eq...
impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        Id::from_stored(self.uuid.clone())
    }
}

impl<K> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.uuid == other.uuid
    }
}

impl<K> Eq for Id<K> {}

impl<K> Hash for Id<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uuid.hash(state);
    }
}

impl<K> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.uuid)
    }
}

impl<K> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uuid)
    }
}

impl<K> serde::Serialize for Id<K> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.uuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_uuids_in_lower_case() {
        let id = KeyManagerId::parse("1CA08B5B-5609-4F1A-A0D2-3E4F5A6B7C8D").expect("uuid");
        assert_eq!(id.as_str(), "1ca08b5b-5609-4f1a-a0d2-3e4f5a6b7c8d");
        assert_eq!(
            KeyManagerId::parse("1ca08b5b-5609-4f1a-a0d2-3e4f5a6b7c8d"),
            Some(id)
        );
        assert!(SvmId::parse("svm1").is_none());
        assert!(SvmId::parse("1ca08b5b56094f1aa0d23e4f5a6b7c8d").is_none());
        assert!(SvmId::parse("{1ca08b5b-5609-4f1a-a0d2-3e4f5a6b7c8}").is_none());
        assert_ne!(CertificateId::new_random(), CertificateId::new_random());
    }
}
