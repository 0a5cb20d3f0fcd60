//! Deterministic name-based GUIDs (RFC 4122 version 5, SHA-1).

/// The namespace Durable Functions uses for `NewGuid`.
const NAMESPACE: [u8; 16] = [
    0x9e, 0x95, 0x29, 0x58, 0x5e, 0x33, 0x4d, 0xaf, 0x82, 0x7f, 0x2f, 0xa1, 0x29, 0x37, 0xb8, 0x75,
];

/// A version 5 UUID of `name` in the Durable Functions namespace, lowercase and hyphenated.
pub(crate) fn uuid_v5(name: &str) -> String {
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(&NAMESPACE);
    hasher.update(name.as_bytes());
    let digest = hasher.digest().bytes();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
