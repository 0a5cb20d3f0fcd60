//! JSON encoding and the tolerant decoder used for every payload a guest receives.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes a payload as `T`; an absent payload decodes as JSON `null`.
///
/// Tolerant of double encoding: when the text does not decode as `T` but is a JSON string,
/// the string's content is decoded as `T` instead (some clients, such as the official
/// Python one, send `"\"{\\\"a\\\":1}\""` for `{"a":1}`). On failure the error of the
/// first attempt is returned, since it describes the payload as sent.
pub(crate) fn decode<T: DeserializeOwned>(json: Option<&str>) -> Result<T, serde_json::Error> {
    let text = json.unwrap_or("null");
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(error) => match serde_json::from_str::<String>(text) {
            Ok(inner) => serde_json::from_str(&inner).map_err(|_| error),
            Err(_) => Err(error),
        },
    }
}

/// Encodes a value as JSON text.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct A {
        a: i64,
    }

    #[test]
    fn absent_payload_decodes_as_null() {
        assert_eq!(decode::<Option<i64>>(None).unwrap(), None);
        decode::<()>(None).unwrap();
    }

    #[test]
    fn double_encoded_object_decodes() {
        assert_eq!(decode::<A>(Some(r#""{\"a\":1}""#)).unwrap(), A { a: 1 });
    }

    #[test]
    fn string_holding_a_number_decodes_as_number() {
        assert_eq!(decode::<i64>(Some(r#""2""#)).unwrap(), 2);
    }

    #[test]
    fn plain_string_stays_a_string() {
        assert_eq!(decode::<String>(Some(r#""2""#)).unwrap(), "2");
    }

    #[test]
    fn undecodable_payload_reports_the_first_error() {
        let error = decode::<i64>(Some(r#""x""#)).unwrap_err();
        assert!(error.to_string().contains("invalid type: string"), "{error}");
    }
}
