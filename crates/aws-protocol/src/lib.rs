//! AWS wire protocol pieces shared by every Stratus API surface.
//!
//! This crate knows how AWS clients talk — SigV4 signatures, the error
//! shapes of the JSON 1.1, REST-JSON and Query protocols, ids, ARNs,
//! timestamps and the ECR registry tokens — and nothing about functions,
//! images or HTTP servers. It speaks in `http` types and plain bytes, reads
//! no environment or files, and never panics on input.

pub mod arn;
pub mod error;
pub mod ids;
pub mod sigv4;
pub mod time;
pub mod token;

pub use arn::{Arn, ArnError};
pub use error::{AwsError, Protocol};
pub use sigv4::{Credential, SigV4Error, SignedRequestAuth};

mod mac {
    use hmac::digest::KeyInit;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    pub(crate) type HmacSha256 = Hmac<Sha256>;

    /// An HMAC-SHA256 keyed with `key`, ready for `update`.
    pub(crate) fn hmac_sha256(key: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length, so the fallback is unreachable; it
        // exists only to keep this path free of panics.
        <HmacSha256 as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()))
    }

    /// HMAC-SHA256 of `data` under `key`.
    pub(crate) fn sign(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = hmac_sha256(key);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}
