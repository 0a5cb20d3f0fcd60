//! How deep JSON may nest, checked in one place.
//!
//! Every JSON payload the host takes in (API inputs, guest outputs) must nest arrays and
//! objects at most [`MAX_JSON_DEPTH`] levels deep. Deeper text is refused at the door, so
//! nothing stored is too deep to parse, show or hand to a guest; parsers that recurse per
//! level (serde_json, the guests' own) then never run out of stack or give up on stored data.

use serde::de::DeserializeOwned;

/// The deepest nesting of arrays and objects accepted in any payload: `[]` is one level,
/// `[[]]` two.
pub const MAX_JSON_DEPTH: usize = 128;

/// Whether `text` nests arrays and objects deeper than `limit` levels.
///
/// A byte scan, not a parser: it counts `[`/`{` against `]`/`}` outside strings (minding
/// escapes), uses no recursion and stops at the first level past the limit, so it is safe
/// and cheap on any input. It does not check that `text` is valid JSON; for text that is
/// not, it still answers whether its brackets nest that deep.
pub fn nests_deeper_than(text: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether `text` is over [`MAX_JSON_DEPTH`].
pub fn too_deep(text: &str) -> bool {
    nests_deeper_than(text.as_bytes(), MAX_JSON_DEPTH)
}

/// Parses JSON that may nest up to `limit` levels.
///
/// serde_json refuses 128 levels and more on its own (a guard for its recursive parser);
/// this lifts that guard only after [`nests_deeper_than`] has shown the text to be no
/// deeper than `limit`, so payloads at [`MAX_JSON_DEPTH`], or inside an envelope of a few
/// levels more, parse. Fails if the text is deeper or is not JSON of type `T`.
pub fn parse<T: DeserializeOwned>(text: &[u8], limit: usize) -> Result<T, serde_json::Error> {
    if nests_deeper_than(text, limit) {
        return Err(serde::de::Error::custom(format_args!(
            "JSON nested deeper than {limit} levels"
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    deserializer.disable_recursion_limit();
    let value = T::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn counts_arrays_and_objects_as_levels() {
        assert!(!nests_deeper_than(b"1", 0));
        assert!(nests_deeper_than(b"[]", 0));
        assert!(!nests_deeper_than(b"[]", 1));
        assert!(!nests_deeper_than(br#"{"a":[1,{"b":2}],"c":[]}"#, 3));
        assert!(nests_deeper_than(br#"{"a":[1,{"b":[2]}]}"#, 3));
        assert!(!too_deep(&nested(MAX_JSON_DEPTH)));
        assert!(too_deep(&nested(MAX_JSON_DEPTH + 1)));
    }

    #[test]
    fn brackets_inside_strings_do_not_count_and_escapes_are_minded() {
        let deep_string = format!("\"{}\"", "[".repeat(1000));
        assert!(!too_deep(&deep_string));
        // An escaped quote does not end the string; an escaped backslash does not escape it.
        assert!(!nests_deeper_than(br#"["\"[[[[", 1]"#, 1));
        assert!(nests_deeper_than(br#"["\\", [[1]]]"#, 2));
    }

    #[test]
    fn stops_early_on_a_huge_deep_input() {
        let deep = "[".repeat(10_000_000);
        let started = std::time::Instant::now();
        assert!(too_deep(&deep));
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn parses_up_to_the_limit_and_refuses_past_it() {
        let at_limit = nested(MAX_JSON_DEPTH);
        assert!(
            serde_json::from_str::<Value>(&at_limit).is_err(),
            "serde_json alone stops short"
        );
        let value: Value = parse(at_limit.as_bytes(), MAX_JSON_DEPTH).expect("parses at the limit");
        assert_eq!(value.to_string(), at_limit);
        let too_deep = parse::<Value>(nested(MAX_JSON_DEPTH + 1).as_bytes(), MAX_JSON_DEPTH).unwrap_err();
        assert!(too_deep.to_string().contains("deeper than 128 levels"), "{too_deep}");
        assert!(parse::<Value>(b"[1,", MAX_JSON_DEPTH).is_err());
        assert!(parse::<Value>(b"[1] x", MAX_JSON_DEPTH).is_err());
    }
}
