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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v5_is_stable_versioned_and_hyphenated() {
        let a = uuid_v5("instance_1970-01-01T00:00:00.0000000Z_0");
        assert_eq!(a, uuid_v5("instance_1970-01-01T00:00:00.0000000Z_0"));
        assert_ne!(a, uuid_v5("instance_1970-01-01T00:00:00.0000000Z_1"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "5");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(a, a.to_lowercase());
    }

    #[test]
    fn uuid_v5_matches_a_reference_implementation() {
        // Python: uuid.uuid5(UUID("9e952958-5e33-4daf-827f-2fa12937b875"), name)
        assert_eq!(
            uuid_v5("abc_1970-01-01T00:00:00.0000000Z_0"),
            "5f5f59fe-84fc-5304-b842-6e260c6ad666"
        );
    }
}
