//! JSON encoding and the tolerant decoder used for every payload a guest receives.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes a payload as `T`; an absent payload decodes as JSON `null`.
///
/// Tolerant of double encoding, because the official Python client sends every payload
/// JSON-encoded twice (`{"a":1}` arrives as a JSON string holding that text):
/// - a JSON string whose content is a JSON string, object or array is decoded from that
///   content when it fits `T`;
/// - a JSON string whose content is any other JSON (`"3"`) is decoded from the content only
///   when the text itself does not fit `T`, so a plain string `"3"` stays a string;
/// - an empty string (`""`, what the JavaScript client sends for "no input") that does not
///   fit `T` decodes as `null`.
///
/// On failure the error of the first attempt is returned, since it describes the payload as
/// sent.
pub(crate) fn decode<T: DeserializeOwned>(json: Option<&str>) -> Result<T, serde_json::Error> {
    let text = json.unwrap_or("null");
    let inner = serde_json::from_str::<String>(text).ok();
    if let Some(inner) = &inner
        && inner.trim_start().starts_with(['"', '{', '['])
        && let Ok(value) = serde_json::from_str(inner)
    {
        return Ok(value);
    }
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(error) => match inner {
            Some(inner) if inner.is_empty() => serde_json::from_str("null").map_err(|_| error),
            Some(inner) => serde_json::from_str(&inner).map_err(|_| error),
            None => Err(error),
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
    fn double_encoded_string_decodes_without_its_quotes() {
        assert_eq!(decode::<String>(Some(r#""\"London\"""#)).unwrap(), "London");
        assert_eq!(decode::<serde_json::Value>(Some(r#""\"London\"""#)).unwrap(), "London");
        assert_eq!(
            decode::<serde_json::Value>(Some(r#""{\"a\":1}""#)).unwrap(),
            serde_json::json!({"a": 1})
        );
    }

    #[test]
    fn empty_string_input_decodes_as_null_when_it_does_not_fit() {
        assert_eq!(decode::<Option<A>>(Some(r#""""#)).unwrap(), None);
        assert_eq!(decode::<String>(Some(r#""""#)).unwrap(), "");
    }

    #[test]
    fn undecodable_payload_reports_the_first_error() {
        let error = decode::<i64>(Some(r#""x""#)).unwrap_err();
        assert!(error.to_string().contains("invalid type: string"), "{error}");
    }
}
