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
use super::record::{parse_arm_label, Fields, Record, NO_ARM};

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
fn parse_with_serde(line: &[u8], experiment: Option<&str>) -> Result<Record, serde_json::Error> {
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
        let mut message = None;
        let mut timestamp = None;
        let mut user = None;
        let mut track = None;
        let mut time = None;
        let mut latency = None;
        let mut recommendation = None;
        let mut arm = NO_ARM;
        let mut fallback = false;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Message => message = Some(map.next_value::<Message>()?),
                Field::Timestamp => timestamp = Some(map.next_value::<u64>()?),
                Field::User => user = Some(map.next_value::<u64>()?),
                Field::Track => track = Some(map.next_value::<u32>()?),
                Field::Time => time = Some(map.next_value::<f64>()?),
                Field::Latency => latency = Some(map.next_value::<f64>()?),
                Field::Recommendation => recommendation = map.next_value::<Option<u32>>()?,
                Field::Experiments => match self.experiment {
                    Some(name) => arm = map.next_value_seed(ArmSeed(name))?,
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
                Field::Fallback => fallback = map.next_value::<bool>()?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let message = message.ok_or_else(|| de::Error::missing_field("message"))?;
        let timestamp = timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?;
        let user = user.ok_or_else(|| de::Error::missing_field("user"))?;
        let track = track.ok_or_else(|| de::Error::missing_field("track"))?;
        let time = time.ok_or_else(|| de::Error::missing_field("time"))?;
        let latency = latency.ok_or_else(|| de::Error::missing_field("latency"))?;
        let fields = Fields {
            last: message == Message::Last,
            timestamp,
            user,
            track,
            time,
            latency,
            recommendation,
            arm,
            fallback,
        };
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
        let mut arm = NO_ARM;
        while let Some(ours) = map.next_key_seed(KeyIs(self.0))? {
            if ours {
                arm = map.next_value_seed(LabelSeed(self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(arm)
    }
}

/// A map key, compared with the wanted name.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an experiment name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// An arm label (`C`, `T1`, …), decoded to its index.
struct LabelSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for LabelSeed<'_> {
    type Value = u8;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u8, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for LabelSeed<'_> {
    type Value = u8;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an arm label such as \"C\" or \"T1\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u8, E> {
        parse_arm_label(v).ok_or_else(|| {
            E::custom(format_args!(
                "experiment {:?} has arm label {v:?}; expected C, T1, T2, …",
                self.0
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

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

    #[test]
    fn agrees_with_serde_on_random_lines() {
        let mut rng = SmallRng::seed_from_u64(3);
        // Mostly plain values, sometimes odd ones (out of range, outside JSON's
        // grammar, wrong type), so both acceptance and fallback are exercised.
        let odd = [
            "-0",
            "-1",
            "1e400",
            "00",
            "1.",
            ".5",
            "4294967295",
            "4294967296",
            "18446744073709551616",
            "\"1\"",
            "true",
        ];
        let pick = |rng: &mut SmallRng, plain: &[&'static str]| -> &'static str {
            if rng.gen_bool(0.9) {
                plain[rng.gen_range(0..plain.len())]
            } else {
                odd[rng.gen_range(0..odd.len())]
            }
        };
        let mut fast = 0;
        for _ in 0..20_000 {
            let mut fields: Vec<String> = vec![
                format!(r#""message":{}"#, pick(&mut rng, &["\"next\"", "\"last\""])),
                format!(r#""timestamp":{}"#, pick(&mut rng, &["0", "1700000000123"])),
                format!(r#""user":{}"#, pick(&mut rng, &["0", "42", "123456789"])),
                format!(r#""track":{}"#, pick(&mut rng, &["0", "576", "16000"])),
                format!(
                    r#""time":{}"#,
                    pick(&mut rng, &["0", "1", "0.5", "1.0", "0.25e0", "2E-2"])
                ),
                format!(
                    r#""latency":{}"#,
                    pick(&mut rng, &["0", "0.00054", "1e-3", "12.5"])
                ),
                format!(
                    r#""recommendation":{}"#,
                    pick(&mut rng, &["null", "7", "14035"])
                ),
                format!(
                    r#""experiments":{{"AA":{},"B":"C"}}"#,
                    pick(&mut rng, &["\"C\"", "\"T1\"", "\"T12\""])
                ),
                format!(r#""fallback":{}"#, pick(&mut rng, &["false", "true"])),
                format!(
                    r#""recommender":{}"#,
                    pick(&mut rng, &["\"toppop\"", "null"])
                ),
            ];
            for i in (1..fields.len()).rev() {
                fields.swap(i, rng.gen_range(0..=i));
            }
            if rng.gen_bool(0.1) {
                fields.truncate(rng.gen_range(5..fields.len()));
            }
            let sep = [",", " , ", ",\t"][rng.gen_range(0..3)];
            let line = format!("{{{}}}", fields.join(sep));
            let experiment = [Some("AA"), None][rng.gen_range(0..2)];
            if same_as_serde(&line, experiment).is_some() {
                fast += 1;
            } else if let Ok(record) = parse_with_serde(line.as_bytes(), experiment) {
                // What serde accepts and the fast path declines must involve an
                // odd value (serde ignores `experiments` when no experiment is
                // asked for; "-0" is a valid f64).
                assert!(
                    odd.iter().any(|o| line.contains(o)),
                    "declined a plain line {line}: {record:?}"
                );
            }
        }
        assert!(fast > 5_000, "fast path taken {fast} times");
    }
}
