//! Request bodies, read field by field: an unknown field is refused (ONTAP 262179, with the
//! field's dotted name as target), a field of the wrong type is refused with its name as target.
//! serde's derive could parse the happy path, but not report ONTAP's codes and targets per field.

use axum::body::{Body as HttpBody, Bytes};
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use super::query::Field;
use crate::domain::Error;
use crate::domain::model::Secret;

/// The largest body the service reads; certificates are the biggest inputs.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a client may take to send a request body, start to end (the headers have their own
/// limit): a client that declares a body and stops sending must not hold its connection forever.
pub const BODY_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads a request body of at most [`MAX_BODY_BYTES`], within [`BODY_TIME_LIMIT`].
pub async fn read(body: HttpBody) -> Result<Bytes, Error> {
    read_within(body, BODY_TIME_LIMIT).await
}

async fn read_within(body: HttpBody, limit: std::time::Duration) -> Result<Bytes, Error> {
    tokio::time::timeout(limit, read_all(body))
        .await
        .unwrap_or_else(|_| {
            Err(Error::InvalidJson(format!(
                "the body did not arrive within {} seconds",
                limit.as_secs()
            )))
        })
}

/// Transfer codings other than `chunked` (`gzip, chunked`...) are not decoded here: refused
/// rather than read as plain bytes.
pub fn check_transfer_coding(headers: &axum::http::HeaderMap) -> Result<(), Error> {
    for value in headers.get_all(axum::http::header::TRANSFER_ENCODING) {
        let text = value.to_str().unwrap_or("?");
        if let Some(coding) = text
            .split(',')
            .map(str::trim)
            .find(|c| !c.eq_ignore_ascii_case("chunked"))
        {
            return Err(Error::InvalidJson(format!(
                "the transfer coding \"{coding}\" is not supported: send the body plain or chunked"
            )));
        }
    }
    if let Some(coding) = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"))
        .filter(|c| !c.eq_ignore_ascii_case("identity"))
    {
        return Err(Error::InvalidJson(format!(
            "the content coding \"{coding}\" is not supported: send the body uncompressed"
        )));
    }
    Ok(())
}

/// Whether the request announces a body larger than [`MAX_BODY_BYTES`]: refused before a byte
/// of it is read (a client that sent `Expect: 100-continue` never sends it).
pub fn announced_too_large(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .is_some_and(|length| length > MAX_BODY_BYTES as u64)
}

/// Reads until the body ends or passes [`MAX_BODY_BYTES`]; then it stops: the refusal closes
/// the connection, so nothing more of the body is ever read.
async fn read_all(mut body: HttpBody) -> Result<Bytes, Error> {
    let mut kept: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Error::InvalidJson(format!("the body is incomplete: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if kept.len().saturating_add(data.len()) > MAX_BODY_BYTES {
            return Err(Error::BodyTooLarge(MAX_BODY_BYTES));
        }
        kept.extend_from_slice(&data);
    }
    Ok(Bytes::from(kept))
}

/// A JSON object being read. `prefix` is the dotted path of the object in the body.
#[derive(Debug)]
pub struct Body {
    fields: Map<String, Value>,
    prefix: String,
}

impl Body {
    /// Parses a request body; an empty body is an empty object.
    pub fn parse(bytes: &[u8]) -> Result<Body, Error> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body {
                fields: Map::new(),
                prefix: String::new(),
            });
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| Error::InvalidJson(e.to_string()))?;
        Body::from_value(value, "")
    }

    fn from_value(value: Value, prefix: &str) -> Result<Body, Error> {
        match value {
            Value::Object(fields) => Ok(Body {
                fields: expand_dotted(fields, prefix)?,
                prefix: prefix.to_string(),
            }),
            Value::Array(_) if !prefix.is_empty() => Err(Error::ArrayNotExpected(
                prefix.trim_end_matches('.').to_string(),
            )),
            _ if prefix.is_empty() => {
                Err(Error::InvalidJson("the body must be a JSON object".into()))
            }
            _ => Err(Error::InvalidValue {
                field: prefix.trim_end_matches('.').to_string(),
                message: format!(
                    "Field \"{}\" must be an object.",
                    prefix.trim_end_matches('.')
                ),
            }),
        }
    }

    /// The body as it came, for the audit trail (which redacts it).
    pub fn raw(&self) -> Value {
        Value::Object(self.fields.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Refuses any field that `table` (an operation's body fields, dotted) does not name at this
    /// object's place in the body: the handler and the OpenAPI document read the same table.
    pub fn allow_in(&self, table: &[Field]) -> Result<(), Error> {
        let allowed: Vec<&str> = table
            .iter()
            .filter_map(|(name, _)| name.strip_prefix(self.prefix.as_str()))
            .map(|rest| rest.split('.').next().unwrap_or(rest))
            .collect();
        self.allow(&allowed)
    }

    /// Refuses any field not in `allowed`.
    pub fn allow(&self, allowed: &[&str]) -> Result<(), Error> {
        match self.fields.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(unknown) => Err(Error::UnexpectedArgument(self.path(unknown))),
            None => Ok(()),
        }
    }

    /// Refuses fields that exist but cannot be set by this operation.
    pub fn refuse(&self, read_only: &[&str]) -> Result<(), Error> {
        match read_only
            .iter()
            .find(|name| self.fields.contains_key(**name))
        {
            Some(name) => Err(Error::ReadOnlyField(self.path(name))),
            None => Ok(()),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name).filter(|v| !v.is_null())
    }

    fn wrong_type(&self, name: &str, expected: &str) -> Error {
        let field = self.path(name);
        Error::InvalidValue {
            message: format!("Field \"{field}\" must be {expected}."),
            field,
        }
    }

    pub fn string(&mut self, name: &str) -> Result<Option<String>, Error> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Array(_)) => Err(Error::ArrayNotExpected(self.path(name))),
            Some(_) => Err(self.wrong_type(name, "a string")),
        }
    }

    pub fn secret(&mut self, name: &str) -> Result<Option<Secret>, Error> {
        Ok(self.string(name)?.map(Secret::new))
    }

    /// An integer, also accepted as a string of digits (ONTAP's own examples send `"60"`).
    pub fn integer(&mut self, name: &str) -> Result<Option<i64>, Error> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(name, "an integer")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.wrong_type(name, "an integer")),
            Some(Value::Array(_)) => Err(Error::ArrayNotExpected(self.path(name))),
            Some(_) => Err(self.wrong_type(name, "an integer")),
        }
    }

    pub fn boolean(&mut self, name: &str) -> Result<Option<bool>, Error> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(self.wrong_type(name, "true or false")),
        }
    }

    pub fn string_list(&mut self, name: &str) -> Result<Option<Vec<String>>, Error> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(self.wrong_type(name, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(Error::ArrayExpected(self.path(name))),
        }
    }

    pub fn object(&mut self, name: &str) -> Result<Option<Body>, Error> {
        let prefix = format!("{}.", self.path(name));
        self.take(name)
            .map(|v| Body::from_value(v, &prefix))
            .transpose()
    }

    pub fn object_list(&mut self, name: &str) -> Result<Option<Vec<Body>>, Error> {
        let prefix = format!("{}.", self.path(name));
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| Body::from_value(item, &prefix))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(Error::ArrayExpected(self.path(name))),
        }
    }
}

/// ONTAP reads `{"fips.enabled": true}` as `{"fips": {"enabled": true}}`, and clients send both
/// forms (Ansible's modules the dotted one): expand dotted names into nested objects.
fn expand_dotted(fields: Map<String, Value>, prefix: &str) -> Result<Map<String, Value>, Error> {
    let mut expanded = Map::new();
    for (name, value) in fields {
        let Some((head, rest)) = name.split_once('.') else {
            merge(&mut expanded, name, value, prefix)?;
            continue;
        };
        if head.is_empty() || rest.is_empty() {
            return Err(Error::UnexpectedArgument(format!("{prefix}{name}")));
        }
        let mut inner = Map::new();
        inner.insert(rest.to_string(), value);
        merge(
            &mut expanded,
            head.to_string(),
            Value::Object(inner),
            prefix,
        )?;
    }
    Ok(expanded)
}

/// Adds `name: value`, merging objects given both ways; any other clash is a conflict.
fn merge(
    into: &mut Map<String, Value>,
    name: String,
    value: Value,
    prefix: &str,
) -> Result<(), Error> {
    match (into.get_mut(&name), value) {
        (None, value) => {
            into.insert(name, value);
            Ok(())
        }
        (Some(Value::Object(existing)), Value::Object(more)) => {
            for (inner_name, inner_value) in more {
                merge(
                    existing,
                    inner_name,
                    inner_value,
                    &format!("{prefix}{name}."),
                )?;
            }
            Ok(())
        }
        (Some(_), _) => Err(Error::ConflictingFields {
            first: format!("{prefix}{name}"),
            second: format!("{prefix}{name}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let mut body = Body::parse(br#"{"external": {"servers": [{"server": "a", "port": 1}]}}"#)
            .expect("json");
        body.allow(&["external"]).expect("known");
        let mut external = body.object("external").expect("object").expect("present");
        let servers = external
            .object_list("servers")
            .expect("list")
            .expect("present");
        let error = servers[0].allow(&["server"]).unwrap_err();
        assert_eq!(
            error,
            Error::UnexpectedArgument("external.servers.port".into())
        );
    }

    #[test]
    fn wrong_types_have_targets() {
        let mut body =
            Body::parse(br#"{"timeout": "x", "server": 5, "secondary_key_servers": "a,b"}"#)
                .expect("json");
        assert_eq!(
            body.integer("timeout").unwrap_err().target().as_deref(),
            Some("timeout")
        );
        assert_eq!(
            body.string("server").unwrap_err().target().as_deref(),
            Some("server")
        );
        assert_eq!(
            body.string_list("secondary_key_servers")
                .unwrap_err()
                .code(),
            262254
        );
    }

    #[test]
    fn dotted_names_are_nested_objects() {
        let mut body = Body::parse(
            br#"{"fips.enabled": true, "tls": {"cipher_suites": ["A"]}, "tls.protocol_versions": ["TLSv1.2"]}"#,
        )
        .expect("json");
        body.allow(&["fips", "tls"]).expect("known");
        let mut fips = body.object("fips").expect("object").expect("present");
        assert_eq!(fips.boolean("enabled").expect("bool"), Some(true));
        let mut tls = body.object("tls").expect("object").expect("present");
        assert_eq!(
            tls.string_list("protocol_versions").expect("list"),
            Some(vec!["TLSv1.2".to_string()])
        );
        assert_eq!(
            tls.string_list("cipher_suites").expect("list"),
            Some(vec!["A".to_string()])
        );
        let mut clash =
            Body::parse(br#"{"fips.enabled": true, "fips.enabled.x": 1}"#).expect("json");
        assert_eq!(clash.object("fips").unwrap_err().code(), 262186);
        assert_eq!(
            Body::parse(br#"{"fips.": true}"#).unwrap_err().code(),
            262179
        );
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_is_cut_off() {
        // A client that sent part of its body and then nothing, holding the connection open.
        let (mut sender, channel) = http_body_util::Channel::<Bytes>::new(1);
        sender
            .send_data(Bytes::from_static(b"{\"na"))
            .await
            .expect("send");
        let error = read_within(
            HttpBody::new(channel),
            std::time::Duration::from_millis(100),
        )
        .await
        .unwrap_err();
        assert_eq!(error.code(), 262199);
        assert!(
            error.to_string().contains("did not arrive within"),
            "{error}"
        );
        drop(sender);
    }

    #[test]
    fn only_plain_and_chunked_bodies_are_read() {
        let mut headers = axum::http::HeaderMap::new();
        assert!(check_transfer_coding(&headers).is_ok());
        headers.insert("transfer-encoding", "chunked".parse().expect("header"));
        assert!(check_transfer_coding(&headers).is_ok());
        headers.insert(
            "transfer-encoding",
            "gzip, chunked".parse().expect("header"),
        );
        assert_eq!(check_transfer_coding(&headers).unwrap_err().code(), 262199);
        headers.remove("transfer-encoding");
        headers.insert("content-encoding", "gzip".parse().expect("header"));
        assert!(check_transfer_coding(&headers).is_err());
    }

    #[test]
    fn integers_may_come_as_strings_and_bad_json_is_262199() {
        let mut body = Body::parse(br#"{"timeout": "60"}"#).expect("json");
        assert_eq!(body.integer("timeout").expect("int"), Some(60));
        assert_eq!(Body::parse(b"{not json").unwrap_err().code(), 262199);
        assert_eq!(Body::parse(b"[1]").unwrap_err().code(), 262199);
        assert!(Body::parse(b"").expect("empty").is_empty());
    }
}
