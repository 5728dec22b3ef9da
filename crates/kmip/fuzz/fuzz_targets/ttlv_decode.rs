//! Any bytes a key server sends must decode to a value or an error, never a panic, and whatever
//! decodes must survive an encode/decode round trip unchanged.
#![no_main]

use kmip::message::Response;
use kmip::ttlv::{self, Item};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(header) = data.first_chunk::<{ ttlv::HEADER_LEN }>() {
        let _ = ttlv::message_body_len(*header);
    }
    if let Ok(item) = Item::from_bytes(data) {
        assert_eq!(Item::from_bytes(&item.to_bytes()).as_ref(), Ok(&item));
        let _ = Response::from_item(&item);
    }
});
