//! How ONTAP keeps its keys on a KMIP server, as far as it is publicly known (the sources and
//! what is inferred are in the project's `docs/compatibility.md`): ONTAP makes each key itself
//! (AES-256 material and an 80-hex-digit key id), registers it with its own custom attributes —
//! `x-NETAPP-KeyId` above all — finds it again by `Locate` on `x-NETAPP-KeyId`, and reads it
//! with `Get`. A server may refuse those attributes (PyKMIP: "The x-NETAPP-KeyId attribute is
//! unsupported.") or store them and ignore them in `Locate` (answering every object for any key
//! id): every match is confirmed by its attributes before it is trusted, and the others are
//! counted, so that callers can report an over-broad `Locate` by name.

use crate::client::Session;
use crate::error::{Error, Failure};
use crate::message::{Credential, CustomAttribute, Request};

/// ONTAP's custom attributes (KMIP 1.x, Text String).
pub mod attribute {
    pub const KEY_ID: &str = "x-NETAPP-KeyId";
    pub const CLUSTER_NAME: &str = "x-NETAPP-ClusterName";
    pub const CLUSTER_ID: &str = "x-NETAPP-ClusterId";
    pub const NODE_ID: &str = "x-NETAPP-NodeId";
    pub const VSERVER_ID: &str = "x-NETAPP-VserverId";
    pub const KEY_TYPE: &str = "x-NETAPP-KeyType";
    pub const PRODUCT: &str = "x-NETAPP-Product";
}

/// What ONTAP writes in `x-NETAPP-Product`.
pub const PRODUCT: &str = "Data ONTAP";

/// ONTAP's key ids: 80 hexadecimal digits.
pub const KEY_ID_DIGITS: usize = 80;

/// KMIP Result Reasons by which a server refuses to destroy a key that is still usable.
const PERMISSION_DENIED: u32 = 0x0C;
const ILLEGAL_OPERATION: u32 = 0x0B;

/// The kinds of ONTAP keys, with the digits their key ids carry after 16 zeros (as ONTAP's
/// published key ids show: `...0100...` for authentication keys, `...0500...` for volume keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An NSE authentication key (`nse_ak`).
    Authentication,
    /// A volume encryption key (`vek`).
    Volume,
}

impl KeyKind {
    fn id_digits(self) -> &'static str {
        match self {
            KeyKind::Authentication => "0200000000000100",
            KeyKind::Volume => "0200000000000500",
        }
    }
}

/// Who a key belongs to, as ONTAP labels it on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLabels {
    pub cluster_name: String,
    pub cluster_id: String,
    pub node_id: String,
    /// The SVM's uuid; the admin SVM's (the cluster's) for cluster keys.
    pub vserver_id: String,
    /// ONTAP's key type, as its REST API names it: `nse_ak`, `vek`, ...
    pub key_type: String,
}

/// A key as ONTAP stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct OntapKey {
    pub key_id: String,
    pub material: [u8; 32],
    pub labels: KeyLabels,
}

impl std::fmt::Debug for OntapKey {
    /// Never the material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OntapKey")
            .field("key_id", &self.key_id)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl OntapKey {
    /// A new key: random material, and a key id shaped as ONTAP's (16 zero digits, the key's
    /// kind, 32 random digits, 16 zero digits), random where ONTAP's is.
    pub fn generate(kind: KeyKind, labels: KeyLabels) -> Result<OntapKey, Error> {
        let mut material = [0u8; 32];
        let mut unique = [0u8; 16];
        for buffer in [&mut material[..], &mut unique[..]] {
            openssl::rand::rand_bytes(buffer)
                .map_err(|e| Error::new("local", Failure::Tls, e.to_string()))?;
        }
        let zeros = "0".repeat(16);
        Ok(OntapKey {
            key_id: format!("{zeros}{}{}{zeros}", kind.id_digits(), hex(&unique)),
            material,
            labels,
        })
    }

    /// The attributes ONTAP registers the key with.
    pub fn attributes(&self) -> Vec<CustomAttribute> {
        let labels = &self.labels;
        [
            (attribute::KEY_ID, self.key_id.as_str()),
            (attribute::CLUSTER_NAME, &labels.cluster_name),
            (attribute::CLUSTER_ID, &labels.cluster_id),
            (attribute::NODE_ID, &labels.node_id),
            (attribute::VSERVER_ID, &labels.vserver_id),
            (attribute::KEY_TYPE, &labels.key_type),
            (attribute::PRODUCT, PRODUCT),
        ]
        .into_iter()
        .map(|(name, value)| CustomAttribute::new(name, value))
        .collect()
    }
}

/// What a `Locate` by key id found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Located {
    /// The objects whose `x-NETAPP-KeyId` is the key id: the key, as stored (once per copy).
    pub confirmed: Vec<String>,
    /// The objects the server answered that are not the key: a `Locate` that ignores ONTAP's
    /// filter, which ONTAP would take for its key.
    pub foreign: Vec<String>,
}

/// Registers `key` with ONTAP's attributes: answers its unique identifier on the server.
pub async fn register(
    session: &mut Session,
    credential: Option<&Credential>,
    key: &OntapKey,
) -> Result<String, Error> {
    let request = Request::Register {
        key: key.material.to_vec(),
        attributes: key.attributes(),
    };
    let result = session.call(&request, credential).await?;
    result
        .unique_identifiers()
        .into_iter()
        .next()
        .ok_or_else(|| malformed(session, "Register answered no unique identifier"))
}

/// Finds the objects the server holds for `key_id`, each confirmed by its attributes.
pub async fn locate(
    session: &mut Session,
    credential: Option<&Credential>,
    key_id: &str,
) -> Result<Located, Error> {
    let request = Request::Locate {
        attributes: vec![CustomAttribute::new(attribute::KEY_ID, key_id)],
    };
    let answered = session
        .call(&request, credential)
        .await?
        .unique_identifiers();
    let mut located = Located::default();
    for id in answered {
        match key_id_of(session, credential, &id).await?.as_deref() == Some(key_id) {
            true => located.confirmed.push(id),
            false => located.foreign.push(id),
        }
    }
    Ok(located)
}

/// The objects whose attributes include every one of `filter` (ONTAP's keys of a cluster, of an
/// SVM...), each with its ONTAP attributes; objects the server answers that do not have them
/// are left out, and counted in the answer's second part.
pub async fn locate_labelled(
    session: &mut Session,
    credential: Option<&Credential>,
    filter: &[CustomAttribute],
) -> Result<(Vec<(String, Vec<CustomAttribute>)>, usize), Error> {
    let request = Request::Locate {
        attributes: filter.to_vec(),
    };
    let answered = session
        .call(&request, credential)
        .await?
        .unique_identifiers();
    let mut labelled = Vec::new();
    let mut foreign = 0;
    for id in answered {
        let attributes = attributes_of(session, credential, &id).await?;
        match filter.iter().all(|f| attributes.contains(f)) {
            true => labelled.push((id, attributes)),
            false => foreign += 1,
        }
    }
    Ok((labelled, foreign))
}

/// ONTAP's attributes of an object (those it has).
pub async fn attributes_of(
    session: &mut Session,
    credential: Option<&Credential>,
    id: &str,
) -> Result<Vec<CustomAttribute>, Error> {
    let names = [
        attribute::KEY_ID,
        attribute::CLUSTER_NAME,
        attribute::CLUSTER_ID,
        attribute::NODE_ID,
        attribute::VSERVER_ID,
        attribute::KEY_TYPE,
        attribute::PRODUCT,
    ];
    let request = Request::GetAttributes {
        id: id.to_string(),
        names: names.iter().map(|n| n.to_string()).collect(),
    };
    Ok(session.call(&request, credential).await?.text_attributes())
}

/// The `x-NETAPP-KeyId` of an object, if it has one.
pub async fn key_id_of(
    session: &mut Session,
    credential: Option<&Credential>,
    id: &str,
) -> Result<Option<String>, Error> {
    let request = Request::GetAttributes {
        id: id.to_string(),
        names: vec![attribute::KEY_ID.to_string()],
    };
    let attributes = session.call(&request, credential).await?.text_attributes();
    Ok(attributes
        .into_iter()
        .find(|a| a.name == attribute::KEY_ID)
        .map(|a| a.value))
}

/// The key material of an object.
pub async fn get(
    session: &mut Session,
    credential: Option<&Credential>,
    id: &str,
) -> Result<Vec<u8>, Error> {
    let request = Request::Get { id: id.to_string() };
    session
        .call(&request, credential)
        .await?
        .key_material()
        .ok_or_else(|| malformed(session, "Get answered no symmetric key material"))
}

/// Destroys an object; when the server refuses to destroy a usable key, revokes it first.
/// Answers whether it had to revoke.
pub async fn destroy(
    session: &mut Session,
    credential: Option<&Credential>,
    id: &str,
) -> Result<bool, Error> {
    let destroy = Request::Destroy { id: id.to_string() };
    match session.call(&destroy, credential).await {
        Ok(_) => return Ok(false),
        Err(e) if !demands_revocation(&e) => return Err(e),
        Err(_) => {}
    }
    session
        .call(&Request::Revoke { id: id.to_string() }, credential)
        .await?;
    session.call(&destroy, credential).await?;
    Ok(true)
}

fn demands_revocation(error: &Error) -> bool {
    matches!(
        error.result,
        Some((_, Some(PERMISSION_DENIED | ILLEGAL_OPERATION)))
    )
}

pub(crate) fn malformed(session: &Session, detail: &str) -> Error {
    Error::new(session.server(), Failure::OperationFailed, detail)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> KeyLabels {
        KeyLabels {
            cluster_name: "cluster1".into(),
            cluster_id: "c1".into(),
            node_id: "n1".into(),
            vserver_id: "v1".into(),
            key_type: "vek".into(),
        }
    }

    #[test]
    fn key_ids_are_eighty_hex_digits_shaped_as_ontaps() {
        let key = OntapKey::generate(KeyKind::Volume, labels()).expect("key");
        assert_eq!(key.key_id.len(), KEY_ID_DIGITS);
        assert!(key.key_id.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(key.key_id.starts_with("00000000000000000200000000000500"));
        assert!(key.key_id.ends_with("0000000000000000"));
        let other = OntapKey::generate(KeyKind::Volume, labels()).expect("key");
        assert_ne!(key.key_id, other.key_id);
        assert_ne!(key.material, other.material);
    }

    #[test]
    fn the_attributes_are_ontaps_and_the_material_is_never_shown() {
        let key = OntapKey::generate(KeyKind::Authentication, labels()).expect("key");
        let attributes = key.attributes();
        let names: Vec<&str> = attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-NETAPP-KeyId",
                "x-NETAPP-ClusterName",
                "x-NETAPP-ClusterId",
                "x-NETAPP-NodeId",
                "x-NETAPP-VserverId",
                "x-NETAPP-KeyType",
                "x-NETAPP-Product"
            ]
        );
        assert_eq!(attributes[0].value, key.key_id);
        assert_eq!(attributes[6].value, "Data ONTAP");
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex(&key.material)), "{shown}");
    }
}
