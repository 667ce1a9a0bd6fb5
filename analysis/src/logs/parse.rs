//! One line to one [`Record`]: the fast path (`fast.rs`) for the lines botify
//! writes, serde_json for everything else. serde_json is the reference: it
//! accepts any valid JSON and words the error of a broken line (the report
//! quotes it and classifies it as not JSON, truncated or bad fields), so the
//! fast path only has to be right on what it accepts, never on what it
//! rejects. Its visitor decodes straight into a [`Record`]: no `BTreeMap` of
//! experiments, no `String`s, the arm label matched and decoded in place.

use std::fmt;

use botify::events::Message;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::fast;
use super::record::{parse_arm_label, Partial, Record, NO_ARM};

/// Parses one JSON line: the fast path for well-formed lines, serde_json for
/// anything the fast path does not handle (and for the error message).
pub fn parse_line(line: &str, experiment: Option<&str>) -> Result<Record, serde_json::Error> {
    parse(line.as_bytes(), experiment)
}

/// [`parse_line`] on the bytes the reader has: lines are not validated as
/// UTF-8 up front, the fast path compares bytes and serde_json checks what it reads.
///
/// Called once per line from `read.rs`, another module and so possibly
/// another codegen unit: `#[inline]` keeps this dispatch inlined into the
/// reader's loop, as it was when both lived in one file.
#[inline]
pub(super) fn parse(line: &[u8], experiment: Option<&str>) -> Result<Record, serde_json::Error> {
    match fast::parse(line, experiment) {
        Some(record) => Ok(record),
        None => parse_with_serde(line, experiment),
    }
}

/// The reference parser: any valid JSON, precise errors.
pub(super) fn parse_with_serde(
    line: &[u8],
    experiment: Option<&str>,
) -> Result<Record, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let record = LineSeed { experiment }.deserialize(&mut de)?;
    de.end()?;
    Ok(record)
}

/// Parses one log line into a [`Record`], decoding the arm of `experiment`.
struct LineSeed<'a> {
    experiment: Option<&'a str>,
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = Record;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Record, D::Error> {
        deserializer.deserialize_map(self)
    }
}

enum Field {
    Message,
    Timestamp,
    User,
    Track,
    Time,
    Latency,
    Recommendation,
    Propensity,
    Experiments,
    Fallback,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "message" => Field::Message,
                    "timestamp" => Field::Timestamp,
                    "user" => Field::User,
                    "track" => Field::Track,
                    "time" => Field::Time,
                    "latency" => Field::Latency,
                    "recommendation" => Field::Recommendation,
                    "propensity" => Field::Propensity,
                    "experiments" => Field::Experiments,
                    "fallback" => Field::Fallback,
                    _ => Field::Other,
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a botify event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let mut read = Partial::default();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Message => read.last = Some(map.next_value::<Message>()? == Message::Last),
                Field::Timestamp => read.timestamp = Some(map.next_value::<u64>()?),
                Field::User => read.user = Some(map.next_value::<u64>()?),
                Field::Track => read.track = Some(map.next_value::<u32>()?),
                Field::Time => read.time = Some(map.next_value::<f64>()?),
                Field::Latency => read.latency = Some(map.next_value::<f64>()?),
                Field::Recommendation => read.recommendation = map.next_value::<Option<u32>>()?,
                Field::Propensity => read.propensity = map.next_value::<Option<f64>>()?,
                Field::Experiments => match self.experiment {
                    Some(name) => read.arm = map.next_value_seed(ArmSeed(name))?,
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
                Field::Fallback => read.fallback = map.next_value::<bool>()?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let fields = read.complete().map_err(de::Error::missing_field)?;
        fields.record().map_err(de::Error::custom)
    }
}

/// Finds one experiment in the `experiments` object without allocating.
struct ArmSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for ArmSeed<'_> {
    type Value = u8;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u8, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ArmSeed<'_> {
    type Value = u8;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of experiment name to arm label")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u8, A::Error> {
        let name = self.0;
        let mut arm = NO_ARM;
        while let Some(ours) = map.next_key_seed(InPlace {
            expecting: "an experiment name",
            decode: |key: &str| Ok(key == name),
        })? {
            if ours {
                arm = map.next_value_seed(InPlace {
                    expecting: "an arm label such as \"C\" or \"T1\"",
                    decode: |label: &str| {
                        parse_arm_label(label).ok_or_else(|| {
                            format!(
                                "experiment {name:?} has arm label {label:?}; expected C, T1, T2, …"
                            )
                        })
                    },
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(arm)
    }
}

/// A string decoded where it lies, without allocating: a map key compared
/// with a name, an arm label turned into its index. `decode`'s error is the
/// line's error.
struct InPlace<F> {
    expecting: &'static str,
    decode: F,
}

impl<'de, T, F: FnOnce(&str) -> Result<T, String>> DeserializeSeed<'de> for InPlace<F> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for InPlace<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.decode)(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEXT: &str = r#"{"message": "next", "timestamp": 1700000000123, "user": 3255, "track": 576, "time": 1.0, "latency": 0.00054, "recommendation": 14035, "experiments": {"ALL": "T6", "AA": "C"}, "recommender": "random"}"#;

    #[test]
    fn parses_the_documented_line() {
        let r = parse_line(NEXT, Some("ALL")).unwrap();
        assert_eq!(
            r,
            Record::new(
                3255,
                1_700_000_000_123,
                576,
                1.0,
                0.00054,
                Some(14035),
                6,
                false
            )
        );
        assert_eq!(r.recommendation(), Some(14035));
        assert_eq!(parse_line(NEXT, Some("AA")).unwrap().arm, 0);
        assert_eq!(parse_line(NEXT, Some("OTHER")).unwrap().arm, NO_ARM);
        assert_eq!(parse_line(NEXT, None).unwrap().arm, NO_ARM);
    }

    #[test]
    fn parses_a_last_without_recommendation() {
        let line = r#"{"message":"last","timestamp":5,"user":1,"track":2,"time":0.25,"latency":0.001,"experiments":{}}"#;
        let r = parse_line(line, Some("AA")).unwrap();
        assert!(r.last);
        assert_eq!(r.recommendation(), None);
        assert_eq!(r.arm, NO_ARM);
    }

    #[test]
    fn parses_what_botify_writes() {
        let event = botify::events::Event {
            message: Message::Next,
            timestamp: 42,
            user: 7,
            track: 3,
            time: 0.5,
            latency: 0.002,
            recommendation: Some(9),
            propensity: None,
            experiments: [("AB".to_string(), "T2".to_string())].into(),
            recommender: Some("memory".into()),
            fallback: true,
            model_version: Some("9f1c2e4d5a6b7c80".into()),
        };
        let line = serde_json::to_string(&event).unwrap();
        let r = parse_line(&line, Some("AB")).unwrap();
        let mut expected = Record::new(7, 42, 3, 0.5, 0.002, Some(9), 2, false);
        expected.fallback = true;
        assert_eq!(r, expected);
        // Both parsers read `fallback`; absent means false.
        let spaced = line
            .replace(':', ": ")
            .replace("\"fallback\": true", "\"fallback\" : true");
        assert!(
            parse_with_serde(spaced.as_bytes(), Some("AB"))
                .unwrap()
                .fallback
        );
        assert!(!parse_line(NEXT, Some("AA")).unwrap().fallback);
        let bad = line.replace("\"fallback\":true", "\"fallback\":1");
        assert!(parse_line(&bad, Some("AB")).is_err(), "{bad}");
    }

    #[test]
    fn rejects_missing_fields_bad_types_and_ranges() {
        let cases = [
            (
                r#"{"message":"next","timestamp":1,"user":1,"track":2,"time":0.5}"#,
                "latency",
            ),
            (
                r#"{"message":"next","timestamp":1,"user":-1,"track":2,"time":0.5,"latency":0}"#,
                "invalid value",
            ),
            (
                r#"{"message":"skip","timestamp":1,"user":1,"track":2,"time":0.5,"latency":0}"#,
                "unknown variant",
            ),
            (
                r#"{"message":"next","timestamp":1,"user":1,"track":2,"time":1.5,"latency":0}"#,
                "outside 0..=1",
            ),
            (
                r#"{"message":"next","timestamp":1,"user":1,"track":2,"time":0.5,"latency":0,"experiments":{"AA":"B"}}"#,
                "arm label \"B\"",
            ),
        ];
        for (line, expected) in cases {
            let err = parse_line(line, Some("AA")).unwrap_err().to_string();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }

    // The fast path against the reference: whatever it accepts, serde_json
    // must parse to the same record.

    fn same_as_serde(line: &str, experiment: Option<&str>) -> Option<Record> {
        let fast = fast::parse(line.as_bytes(), experiment);
        let reference = parse_with_serde(line.as_bytes(), experiment);
        if let Some(record) = fast {
            assert_eq!(Ok(record), reference.map_err(|e| e.to_string()), "{line}");
        }
        fast
    }

    #[test]
    fn takes_botify_lines() {
        let line = r#"{"message":"next","timestamp":1700000000123,"user":3255,"track":576,"time":1.0,"latency":0.00054,"recommendation":14035,"experiments":{"ALL":"T6"},"recommender":"memory","fallback":true,"model_version":"9f1c2e4d5a6b7c80"}"#;
        let r = same_as_serde(line, Some("ALL")).expect("fast path");
        assert_eq!((r.user, r.arm, r.recommendation()), (3255, 6, Some(14035)));
        let spaced = r#" { "user" : 1 , "message" : "last" , "time" : 0.5e0 , "latency" : 1E-3 , "track" : 0 , "timestamp" : 0 , "recommendation" : null , "experiments" : { } } "#;
        assert!(same_as_serde(spaced, Some("ALL")).is_some());
    }

    #[test]
    fn leaves_everything_unusual_to_serde() {
        let base = r#""timestamp":1,"user":1,"track":2,"time":0.5,"latency":0.001"#;
        for line in [
            format!(r#"{{"message":"ne\u0078t",{base}}}"#), // escape
            format!(r#"{{"message":"next",{base},"recommender":"é"}}"#), // non-ASCII
            format!(r#"{{"message":"next",{base},"extra":[1,2]}}"#), // nested
            format!(r#"{{"message":"next",{base},"recommendation":01}}"#), // leading zero
            format!(r#"{{"message":"next",{base},"recommendation":1.0}}"#), // not an integer
            r#"{"message":"next","timestamp":1,"user":-1,"track":2,"time":0.5,"latency":0}"#
                .to_string(),
            r#"{"message":"next","timestamp":1,"user":1,"track":2,"time":1.01,"latency":0}"#
                .to_string(),
            format!(r#"{{"message":"next",{base},"experiments":{{"AA":"X"}}}}"#), // bad label
            format!(r#"{{"message":"next",{base}}} trailing"#),
            format!(r#"{{"message":"next",{base}"#), // truncated
            r#"{"message":"next","timestamp":1}"#.to_string(), // missing fields
        ] {
            assert_eq!(same_as_serde(&line, Some("AA")), None, "{line}");
        }
    }
}
