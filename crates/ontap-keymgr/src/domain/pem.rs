//! PEM, read strictly: the blocks of a text, each with its label and its base64 body. Written by
//! hand because the usual readers skip text between blocks and accept headers (encrypted keys),
//! which must be refused here with a reason that quotes nothing of a private key.

/// One `-----BEGIN label-----` … `-----END label-----` block, its base64 body joined.
#[derive(Debug)]
pub(super) struct PemBlock {
    pub label: String,
    pub base64: String,
}

/// Why a text is not well-formed PEM. The reasons quote nothing of the text, so they are safe
/// for private keys too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PemError {
    TextOutsideBlock,
    MalformedBoundary,
    Unterminated,
    MismatchedEnd,
    Headers,
    InvalidBase64,
}

impl PemError {
    pub fn reason(self) -> &'static str {
        match self {
            PemError::TextOutsideBlock => "unexpected text outside the PEM block",
            PemError::MalformedBoundary => "malformed PEM BEGIN or END line",
            PemError::Unterminated => "the PEM block has no END line",
            PemError::MismatchedEnd => "the PEM END line does not match its BEGIN line",
            PemError::Headers => "PEM headers are not supported (is it encrypted?)",
            PemError::InvalidBase64 => "the PEM block contains characters that are not base64",
        }
    }
}

/// Splits a text into its PEM blocks, strictly: unlike the usual PEM readers, which skip
/// anything between blocks, non-blank text outside a block is an error when there are blocks,
/// because in a request field it means the client pasted more than it meant to. A text with no
/// block at all gives no blocks, for the caller to say that nothing was found.
pub(super) fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, PemError> {
    let mut blocks = Vec::new();
    let mut current: Option<PemBlock> = None;
    let mut text_outside = false;
    for line in text.lines().map(str::trim) {
        current = match current.take() {
            None => match open_block(line) {
                Err(PemError::TextOutsideBlock) => {
                    text_outside = true;
                    None
                }
                opened => opened?,
            },
            Some(block) => match continue_block(block, line)? {
                BlockState::Open(block) => Some(block),
                BlockState::Closed(block) => {
                    blocks.push(block);
                    None
                }
            },
        };
    }
    if current.is_some() {
        return Err(PemError::Unterminated);
    }
    if text_outside && !blocks.is_empty() {
        return Err(PemError::TextOutsideBlock);
    }
    Ok(blocks)
}

enum BlockState {
    Open(PemBlock),
    Closed(PemBlock),
}

/// A line outside any block: blank, or the BEGIN line of the next one.
fn open_block(line: &str) -> Result<Option<PemBlock>, PemError> {
    if line.is_empty() {
        return Ok(None);
    }
    if !line.starts_with("-----BEGIN") {
        return Err(PemError::TextOutsideBlock);
    }
    let label = boundary_label(line, "-----BEGIN ")?;
    Ok(Some(PemBlock {
        label: label.to_string(),
        base64: String::new(),
    }))
}

/// A line inside a block: its END line, or more base64.
fn continue_block(mut block: PemBlock, line: &str) -> Result<BlockState, PemError> {
    if line.starts_with("-----END") {
        return if boundary_label(line, "-----END ")? == block.label {
            Ok(BlockState::Closed(block))
        } else {
            Err(PemError::MismatchedEnd)
        };
    }
    if line.starts_with("-----BEGIN") {
        return Err(PemError::Unterminated);
    }
    // RFC 1421 headers ("Proc-Type: 4,ENCRYPTED") mark legacy encrypted keys.
    if line.contains(':') {
        return Err(PemError::Headers);
    }
    if !line.bytes().all(is_base64_byte) {
        return Err(PemError::InvalidBase64);
    }
    block.base64.push_str(line);
    Ok(BlockState::Open(block))
}

/// The label of a `-----BEGIN label-----` or `-----END label-----` line.
fn boundary_label<'a>(line: &'a str, prefix: &str) -> Result<&'a str, PemError> {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix("-----"))
        .filter(|label| !label.is_empty())
        .ok_or(PemError::MalformedBoundary)
}

fn is_base64_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=')
}

/// The block rebuilt in canonical form, for `rustls-pki-types` to decode: its decoder is
/// constant-time for private keys, and it knows which DER type each key label holds.
pub(super) fn canonical_pem(block: &PemBlock) -> String {
    format!(
        "-----BEGIN {label}-----\n{body}\n-----END {label}-----\n",
        label = block.label,
        body = block.base64
    )
}
