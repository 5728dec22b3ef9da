//! A small, honest KMIP object server for tests: it keeps symmetric keys with whatever Text
//! String attributes a client registers them with (ONTAP's `x-NETAPP-*` among them), and answers
//! Register, Locate (every filter attribute must match), Get Attributes, Get, Revoke, Destroy,
//! Query and DiscoverVersions. PyKMIP refuses ONTAP's attributes, and no other KMIP server is in the test
//! world, so this is where keys stored as ONTAP stores them can succeed. Two faults of real
//! servers can be switched on: a `Locate` that ignores its filter, and refusing to destroy a key
//! that was not revoked first. A replica shares one's objects: a secondary that replicates at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use ttlv::tag;
use ttlv::{Item, Value};

/// How far a real server strays from the specification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// `Locate` answers every object, whatever its filter.
    pub locate_ignores_filter: bool,
    /// `Destroy` of a key that was not revoked is refused (Permission Denied).
    pub destroy_demands_revocation: bool,
}

/// One stored key.
#[derive(Debug, Clone)]
struct Object {
    material: Vec<u8>,
    attributes: Vec<(String, String)>,
    revoked: bool,
}

#[derive(Default)]
struct Objects {
    by_id: BTreeMap<String, Object>,
    next_id: u64,
}

pub struct KmipObjectServer {
    pub address: SocketAddr,
    objects: Arc<Mutex<Objects>>,
    /// How long each answer waits (milliseconds): a slow server, changeable while it runs.
    delay_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl KmipObjectServer {
    /// Listens on 127.0.0.1 (port 0) with this certificate and key, trusting clients of `ca_pem`.
    pub async fn start(cert_pem: &str, key_pem: &str, ca_pem: &str, faults: Faults) -> Self {
        let objects = Arc::new(Mutex::new(Objects::default()));
        Self::serving(objects, cert_pem, key_pem, ca_pem, faults).await
    }

    /// The same with the test PKI's server certificate, trusting its CA: what most tests want.
    pub async fn start_for(pki: &crate::pki::TestPki, faults: Faults) -> Self {
        Self::start(
            &pki.server.cert_pem,
            &pki.server.key_pem,
            &pki.ca.cert_pem,
            faults,
        )
        .await
    }

    /// Another server on the same objects, as a secondary that replicates at once.
    pub async fn replica(&self, cert_pem: &str, key_pem: &str, ca_pem: &str) -> Self {
        let objects = Arc::clone(&self.objects);
        Self::serving(objects, cert_pem, key_pem, ca_pem, Faults::default()).await
    }

    async fn serving(
        objects: Arc<Mutex<Objects>>,
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
        faults: Faults,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let acceptor = crate::responder::acceptor(cert_pem, key_pem, ca_pem);
        let shared = Arc::clone(&objects);
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delays = Arc::clone(&delay_ms);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let objects = Arc::clone(&shared);
                let delays = Arc::clone(&delays);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    while let Some(request) = read_message(&mut tls).await {
                        let delay = Duration::from_millis(delays.load(Ordering::SeqCst));
                        tokio::time::sleep(delay).await;
                        let reply = answer(&request, &objects, faults);
                        if tls.write_all(&reply.to_bytes()).await.is_err() {
                            return;
                        }
                    }
                    let _ = tls.shutdown().await;
                });
            }
        });
        KmipObjectServer {
            address,
            objects,
            delay_ms,
            task,
        }
    }

    /// Makes every answer from now on wait `delay`.
    pub fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(millis, Ordering::SeqCst);
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Text String attributes of every key it holds, by unique identifier.
    pub fn attributes(&self) -> BTreeMap<String, Vec<(String, String)>> {
        self.lock()
            .by_id
            .iter()
            .map(|(id, object)| (id.clone(), object.attributes.clone()))
            .collect()
    }

    /// Stores a key directly, as another client (or another cluster) would have.
    pub fn insert(&self, material: &[u8], attributes: &[(&str, &str)]) -> String {
        let object = Object {
            material: material.to_vec(),
            attributes: attributes
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            revoked: false,
        };
        self.lock().insert(object)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Objects> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for KmipObjectServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Objects {
    fn insert(&mut self, object: Object) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.by_id.insert(id.clone(), object);
        id
    }
}

/// The largest request it reads.
const MAX_REQUEST: usize = 64 * 1024;

async fn read_message<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<Item> {
    let mut header = [0u8; ttlv::HEADER_LEN];
    stream.read_exact(&mut header).await.ok()?;
    let length = usize::try_from(u32::from_be_bytes([
        header[4], header[5], header[6], header[7],
    ]))
    .ok()?;
    if length > MAX_REQUEST {
        return None;
    }
    let mut message = header.to_vec();
    message.resize(ttlv::HEADER_LEN + length, 0);
    stream
        .read_exact(&mut message[ttlv::HEADER_LEN..])
        .await
        .ok()?;
    Item::from_bytes(&message).ok()
}

// KMIP's enumerations, as far as this server speaks them.
const DISCOVER_VERSIONS: u32 = 0x1E;
const REGISTER: u32 = 0x03;
const LOCATE: u32 = 0x08;
const GET: u32 = 0x0A;
const GET_ATTRIBUTES: u32 = 0x0B;
const REVOKE: u32 = 0x13;
const DESTROY: u32 = 0x14;
const QUERY: u32 = 0x18;
/// What Query says it does.
const OPERATIONS: [u32; 8] = [
    REGISTER,
    LOCATE,
    GET,
    GET_ATTRIBUTES,
    REVOKE,
    DESTROY,
    QUERY,
    DISCOVER_VERSIONS,
];
const SUCCESS: u32 = 0x00;
const OPERATION_FAILED: u32 = 0x01;
const ITEM_NOT_FOUND: u32 = 0x01;
const OPERATION_NOT_SUPPORTED: u32 = 0x05;
const INVALID_FIELD: u32 = 0x07;
const PERMISSION_DENIED: u32 = 0x0C;
const SYMMETRIC_KEY_TYPE: u32 = 0x02;
const RAW: u32 = 0x01;
const AES: u32 = 0x03;

/// What one batch item answers: its payload, or the reason and message of its failure.
type Outcome = Result<Vec<Item>, (u32, String)>;

fn answer(request: &Item, objects: &Mutex<Objects>, faults: Faults) -> Item {
    let items: Vec<Item> = request
        .children(tag::BATCH_ITEM)
        .map(|batch_item| {
            let operation = batch_item
                .child(tag::OPERATION)
                .and_then(|o| match o.value {
                    Value::Enumeration(op) => Some(op),
                    _ => None,
                })
                .unwrap_or(0);
            let empty = Item::new(tag::REQUEST_PAYLOAD, Value::Structure(Vec::new()));
            let payload = batch_item.child(tag::REQUEST_PAYLOAD).unwrap_or(&empty);
            let mut objects = objects.lock().unwrap_or_else(|e| e.into_inner());
            let outcome = perform(operation, payload, &mut objects, faults);
            response_item(operation, outcome)
        })
        .collect();
    let header = Item::new(
        tag::RESPONSE_HEADER,
        Value::Structure(vec![
            version(1, 2),
            Item::new(
                tag::BATCH_COUNT,
                Value::Integer(i32::try_from(items.len()).unwrap_or(i32::MAX)),
            ),
        ]),
    );
    Item::new(
        tag::RESPONSE_MESSAGE,
        Value::Structure(std::iter::once(header).chain(items).collect()),
    )
}

fn perform(operation: u32, payload: &Item, objects: &mut Objects, faults: Faults) -> Outcome {
    match operation {
        DISCOVER_VERSIONS => Ok(vec![version(1, 4), version(1, 2)]),
        QUERY => Ok(OPERATIONS
            .iter()
            .map(|op| Item::new(tag::OPERATION, Value::Enumeration(*op)))
            .chain([
                Item::new(tag::OBJECT_TYPE, Value::Enumeration(SYMMETRIC_KEY_TYPE)),
                Item::new(
                    tag::VENDOR_IDENTIFICATION,
                    Value::TextString("test-support KMIP object server".into()),
                ),
            ])
            .collect()),
        REGISTER => register(payload, objects),
        LOCATE => Ok(locate(payload, objects, faults)),
        GET_ATTRIBUTES => get_attributes(payload, objects),
        GET => get(payload, objects),
        REVOKE => {
            let id = unique_identifier(payload)?;
            found(objects, &id)?.revoked = true;
            Ok(vec![identifier(&id)])
        }
        DESTROY => {
            let id = unique_identifier(payload)?;
            if faults.destroy_demands_revocation && !found(objects, &id)?.revoked {
                return Err((PERMISSION_DENIED, "Revoke the key first.".into()));
            }
            objects.by_id.remove(&id).ok_or_else(|| not_found(&id))?;
            Ok(vec![identifier(&id)])
        }
        other => Err((
            OPERATION_NOT_SUPPORTED,
            format!("Operation 0x{other:02X} is not supported."),
        )),
    }
}

fn register(payload: &Item, objects: &mut Objects) -> Outcome {
    let material = payload
        .child(tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(tag::KEY_BLOCK))
        .and_then(|b| b.child(tag::KEY_VALUE))
        .and_then(|v| v.child(tag::KEY_MATERIAL))
        .and_then(|m| match &m.value {
            Value::ByteString(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .ok_or((INVALID_FIELD, "Only symmetric keys are stored.".to_string()))?;
    let attributes = payload
        .child(tag::TEMPLATE_ATTRIBUTE)
        .map(text_attributes)
        .unwrap_or_default();
    let id = objects.insert(Object {
        material,
        attributes,
        revoked: false,
    });
    Ok(vec![identifier(&id)])
}

fn locate(payload: &Item, objects: &Objects, faults: Faults) -> Vec<Item> {
    let filter = text_attributes(payload);
    objects
        .by_id
        .iter()
        .filter(|(_, object)| {
            faults.locate_ignores_filter || filter.iter().all(|f| object.attributes.contains(f))
        })
        .map(|(id, _)| identifier(id))
        .collect()
}

fn get_attributes(payload: &Item, objects: &mut Objects) -> Outcome {
    let id = unique_identifier(payload)?;
    let names: Vec<String> = payload
        .children(tag::ATTRIBUTE_NAME)
        .filter_map(|n| match &n.value {
            Value::TextString(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    let object = found(objects, &id)?;
    let attributes = object
        .attributes
        .iter()
        .filter(|(name, _)| names.is_empty() || names.contains(name))
        .map(|(name, value)| {
            Item::new(
                tag::ATTRIBUTE,
                Value::Structure(vec![
                    Item::new(tag::ATTRIBUTE_NAME, Value::TextString(name.clone())),
                    Item::new(tag::ATTRIBUTE_VALUE, Value::TextString(value.clone())),
                ]),
            )
        });
    Ok(std::iter::once(identifier(&id)).chain(attributes).collect())
}

fn get(payload: &Item, objects: &mut Objects) -> Outcome {
    let id = unique_identifier(payload)?;
    let material = found(objects, &id)?.material.clone();
    let bits = i32::try_from(material.len() * 8).unwrap_or(i32::MAX);
    let key_block = Item::new(
        tag::KEY_BLOCK,
        Value::Structure(vec![
            Item::new(tag::KEY_FORMAT_TYPE, Value::Enumeration(RAW)),
            Item::new(
                tag::KEY_VALUE,
                Value::Structure(vec![Item::new(
                    tag::KEY_MATERIAL,
                    Value::ByteString(material),
                )]),
            ),
            Item::new(tag::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(AES)),
            Item::new(tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)),
        ]),
    );
    Ok(vec![
        Item::new(tag::OBJECT_TYPE, Value::Enumeration(SYMMETRIC_KEY_TYPE)),
        identifier(&id),
        Item::new(tag::SYMMETRIC_KEY, Value::Structure(vec![key_block])),
    ])
}

/// The Text String attributes directly under `parent`.
fn text_attributes(parent: &Item) -> Vec<(String, String)> {
    parent
        .children(tag::ATTRIBUTE)
        .filter_map(|a| {
            let name = match &a.child(tag::ATTRIBUTE_NAME)?.value {
                Value::TextString(name) => name.clone(),
                _ => return None,
            };
            match &a.child(tag::ATTRIBUTE_VALUE)?.value {
                Value::TextString(value) => Some((name, value.clone())),
                _ => None,
            }
        })
        .collect()
}

fn unique_identifier(payload: &Item) -> Result<String, (u32, String)> {
    match payload.child(tag::UNIQUE_IDENTIFIER).map(|i| &i.value) {
        Some(Value::TextString(id)) => Ok(id.clone()),
        _ => Err((INVALID_FIELD, "A Unique Identifier is required.".into())),
    }
}

fn found<'a>(objects: &'a mut Objects, id: &str) -> Result<&'a mut Object, (u32, String)> {
    objects.by_id.get_mut(id).ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> (u32, String) {
    (ITEM_NOT_FOUND, format!("No object with the id {id}."))
}

fn identifier(id: &str) -> Item {
    Item::new(tag::UNIQUE_IDENTIFIER, Value::TextString(id.to_string()))
}

pub(crate) fn version(major: i32, minor: i32) -> Item {
    Item::new(
        tag::PROTOCOL_VERSION,
        Value::Structure(vec![
            Item::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(major)),
            Item::new(tag::PROTOCOL_VERSION_MINOR, Value::Integer(minor)),
        ]),
    )
}

pub(crate) fn response_item(operation: u32, outcome: Outcome) -> Item {
    let mut children = vec![Item::new(tag::OPERATION, Value::Enumeration(operation))];
    match outcome {
        Ok(payload) => children.extend([
            Item::new(tag::RESULT_STATUS, Value::Enumeration(SUCCESS)),
            Item::new(tag::RESPONSE_PAYLOAD, Value::Structure(payload)),
        ]),
        Err((reason, message)) => children.extend([
            Item::new(tag::RESULT_STATUS, Value::Enumeration(OPERATION_FAILED)),
            Item::new(tag::RESULT_REASON, Value::Enumeration(reason)),
            Item::new(tag::RESULT_MESSAGE, Value::TextString(message)),
        ]),
    }
    Item::new(tag::BATCH_ITEM, Value::Structure(children))
}

/// The answer to a DiscoverVersions alone: success, KMIP 1.4 and 1.2.
pub fn discover_versions_reply() -> Vec<u8> {
    let header = Item::new(
        tag::RESPONSE_HEADER,
        Value::Structure(vec![
            version(1, 2),
            Item::new(tag::BATCH_COUNT, Value::Integer(1)),
        ]),
    );
    let item = response_item(DISCOVER_VERSIONS, Ok(vec![version(1, 4), version(1, 2)]));
    Item::new(tag::RESPONSE_MESSAGE, Value::Structure(vec![header, item])).to_bytes()
}
