//! One line to *every* field of the event, for the Parquet export (a
//! [`Record`](super::Record) keeps only what the analyses use).
//!
//! The same two paths as `parse.rs`: the byte scanner of `fast.rs` for the
//! lines botify writes, serde_json for anything it declines — which decides
//! and words the error. Both apply the range checks of `record.rs`, and the
//! arm label of the experiment asked for is checked as `ab` checks it, so a
//! line the export keeps is a line `ab` keeps. The export is stricter in one
//! way only: every field it writes must have its type (`fallback` a boolean,
//! `recommender` a string or null, experiment labels strings), and a field
//! may appear once.

use std::borrow::Cow;
use std::collections::BTreeMap;

use botify::events::Message;
use serde::de::Error as _;
use serde::Deserialize;

use super::fast::Cursor;
use super::record::{check_values, parse_arm_label, NO_ARM};

/// The last millisecond of 9999-12-31 (UTC): later timestamps have no
/// four-digit date to partition by.
pub const MAX_TIMESTAMP: u64 = 253_402_300_799_999;

/// Every field of one event line, borrowing from the line where it can.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// True for a `last` event.
    pub last: bool,
    /// Epoch milliseconds, at most [`MAX_TIMESTAMP`].
    pub timestamp: u64,
    pub user: u64,
    pub track: u32,
    pub time: f64,
    pub latency: f64,
    pub recommendation: Option<u32>,
    pub experiments: Experiments<'a>,
    pub recommender: Option<Cow<'a, str>>,
    pub fallback: bool,
    /// The version of the models that served (`null` when botify had none).
    pub model_version: Option<Cow<'a, str>>,
    /// Arm index in the experiment asked for (`C` = 0, `Tk` = k), or [`NO_ARM`].
    pub arm: u8,
}

/// The `experiments` object: left as the scanned bytes on the fast path (no
/// allocation per line), decoded on the serde path.
#[derive(Debug, Clone, PartialEq)]
pub enum Experiments<'a> {
    /// `{"NAME":"LABEL",…}` with plain ASCII strings, checked by the scanner.
    Scanned(&'a [u8]),
    Decoded(BTreeMap<Cow<'a, str>, Cow<'a, str>>),
}

impl Experiments<'_> {
    /// Calls `f` with each (experiment name, arm label), in line order.
    pub fn for_each(&self, mut f: impl FnMut(&str, &str)) {
        match self {
            Experiments::Decoded(map) => map.iter().for_each(|(k, v)| f(k, v)),
            Experiments::Scanned(bytes) => {
                let mut c = Cursor::new(bytes);
                // The scanner accepted these bytes, so each step succeeds.
                let _ = (|| -> Option<()> {
                    c.eat(b'{')?;
                    c.ws();
                    if c.peek() == Some(b'}') {
                        return Some(());
                    }
                    loop {
                        let name = ascii(c.string()?);
                        c.eat(b':')?;
                        let label = ascii(c.string()?);
                        f(name, label);
                        c.ws();
                        if c.bump()? == b'}' {
                            return Some(());
                        }
                    }
                })();
            }
        }
    }

    /// True when the event carries no experiment.
    pub fn is_empty(&self) -> bool {
        let mut empty = true;
        self.for_each(|_, _| empty = false);
        empty
    }
}

/// The scanner's strings are printable ASCII, hence UTF-8.
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// Parses one (trimmed) line, decoding the arm of `experiment`.
pub fn parse_event<'a>(
    line: &'a [u8],
    experiment: Option<&str>,
) -> Result<Event<'a>, serde_json::Error> {
    match fast(line, experiment) {
        Some(event) => Ok(event),
        None => with_serde(line, experiment),
    }
}

/// Which field a key is, as a bit, to refuse duplicates as serde does.
const MESSAGE: u16 = 1;
const TIMESTAMP: u16 = 1 << 1;
const USER: u16 = 1 << 2;
const TRACK: u16 = 1 << 3;
const TIME: u16 = 1 << 4;
const LATENCY: u16 = 1 << 5;
const RECOMMENDATION: u16 = 1 << 6;
const EXPERIMENTS: u16 = 1 << 7;
const RECOMMENDER: u16 = 1 << 8;
const FALLBACK: u16 = 1 << 9;
const MODEL_VERSION: u16 = 1 << 10;

fn fast<'a>(line: &'a [u8], experiment: Option<&str>) -> Option<Event<'a>> {
    let mut c = Cursor::new(line);
    c.eat(b'{')?;
    let mut seen = 0u16;
    let mut last = None;
    let mut timestamp = None;
    let mut user = None;
    let mut track = None;
    let mut time = None;
    let mut latency = None;
    let mut recommendation = None;
    let mut experiments: &[u8] = b"{}";
    let mut arm = NO_ARM;
    let mut recommender = None;
    let mut model_version = None;
    let mut fallback = false;
    loop {
        let key = c.string()?;
        c.eat(b':')?;
        c.ws();
        let field = match key {
            b"message" => {
                last = Some(match c.string()? {
                    b"next" => false,
                    b"last" => true,
                    _ => return None,
                });
                MESSAGE
            }
            b"timestamp" => {
                timestamp = Some(c.uint()?);
                TIMESTAMP
            }
            b"user" => {
                user = Some(c.uint()?);
                USER
            }
            b"track" => {
                track = Some(u32::try_from(c.uint()?).ok()?);
                TRACK
            }
            b"time" => {
                time = Some(c.float()?);
                TIME
            }
            b"latency" => {
                latency = Some(c.float()?);
                LATENCY
            }
            b"recommendation" => {
                recommendation = if c.peek() == Some(b'n') {
                    c.literal(b"null")?;
                    None
                } else {
                    Some(u32::try_from(c.uint()?).ok()?)
                };
                RECOMMENDATION
            }
            b"experiments" => {
                let start = c.position();
                arm = c.experiments(experiment)?;
                experiments = c.since(start);
                EXPERIMENTS
            }
            b"recommender" => {
                recommender = if c.peek() == Some(b'n') {
                    c.literal(b"null")?;
                    None
                } else {
                    Some(Cow::Borrowed(ascii(c.string()?)))
                };
                RECOMMENDER
            }
            b"model_version" => {
                model_version = if c.peek() == Some(b'n') {
                    c.literal(b"null")?;
                    None
                } else {
                    Some(Cow::Borrowed(ascii(c.string()?)))
                };
                MODEL_VERSION
            }
            b"fallback" => {
                fallback = match c.peek()? {
                    b't' => c.literal(b"true").map(|()| true)?,
                    b'f' => c.literal(b"false").map(|()| false)?,
                    _ => return None,
                };
                FALLBACK
            }
            _ => {
                c.scalar()?;
                0
            }
        };
        if seen & field != 0 {
            return None;
        }
        seen |= field;
        c.ws();
        match c.bump()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    if !c.at_end() {
        return None;
    }
    let event = Event {
        last: last?,
        timestamp: timestamp?,
        user: user?,
        track: track?,
        time: time?,
        latency: latency?,
        recommendation,
        experiments: Experiments::Scanned(experiments),
        recommender,
        fallback,
        model_version,
        arm,
    };
    check(&event).ok()?;
    Some(event)
}

/// A line as serde sees it: any valid JSON, borrowed strings where no escape
/// needs decoding.
#[derive(Deserialize)]
struct Line<'a> {
    message: Message,
    timestamp: u64,
    user: u64,
    track: u32,
    time: f64,
    latency: f64,
    #[serde(default)]
    recommendation: Option<u32>,
    #[serde(default, borrow)]
    experiments: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(default, borrow)]
    recommender: Option<Cow<'a, str>>,
    #[serde(default)]
    fallback: bool,
    #[serde(default, borrow)]
    model_version: Option<Cow<'a, str>>,
}

fn with_serde<'a>(
    line: &'a [u8],
    experiment: Option<&str>,
) -> Result<Event<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let parsed = Line::deserialize(&mut de)?;
    de.end()?;
    let arm = match experiment.and_then(|name| parsed.experiments.get(name).map(|l| (name, l))) {
        None => NO_ARM,
        Some((name, label)) => parse_arm_label(label).ok_or_else(|| {
            serde_json::Error::custom(format_args!(
                "experiment {name:?} has arm label {label:?}; expected C, T1, T2, …"
            ))
        })?,
    };
    let event = Event {
        last: parsed.message == Message::Last,
        timestamp: parsed.timestamp,
        user: parsed.user,
        track: parsed.track,
        time: parsed.time,
        latency: parsed.latency,
        recommendation: parsed.recommendation,
        experiments: Experiments::Decoded(parsed.experiments),
        recommender: parsed.recommender,
        fallback: parsed.fallback,
        model_version: parsed.model_version,
        arm,
    };
    check(&event).map_err(serde_json::Error::custom)?;
    Ok(event)
}

/// The range checks of `record.rs`, plus the timestamp's.
fn check(event: &Event<'_>) -> Result<(), String> {
    check_values(event.time, event.latency, event.track, event.recommendation)?;
    if event.timestamp > MAX_TIMESTAMP {
        return Err(format!(
            "timestamp {} is after 9999-12-31 (epoch milliseconds expected)",
            event.timestamp
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parse_line;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn pairs(event: &Event<'_>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        event
            .experiments
            .for_each(|k, v| out.push((k.to_string(), v.to_string())));
        out
    }

    #[test]
    fn reads_every_field_botify_writes() {
        let event = botify::events::Event {
            message: Message::Next,
            timestamp: 1_767_225_600_123,
            user: 7,
            track: 3,
            time: 0.5,
            latency: 0.002,
            recommendation: Some(9),
            propensity: None,
            experiments: [
                ("AB".to_string(), "T2".to_string()),
                ("AA".to_string(), "C".to_string()),
            ]
            .into(),
            recommender: Some("memory".into()),
            fallback: true,
            model_version: Some("00ff00ff00ff00ff".into()),
        };
        let line = serde_json::to_string(&event).unwrap();
        let fast = fast(line.as_bytes(), Some("AB")).expect("fast path");
        let serde = with_serde(line.as_bytes(), Some("AB")).unwrap();
        for parsed in [&fast, &serde] {
            assert_eq!(
                (parsed.last, parsed.timestamp, parsed.user, parsed.track),
                (false, 1_767_225_600_123, 7, 3)
            );
            assert_eq!((parsed.time, parsed.latency), (0.5, 0.002));
            assert_eq!(parsed.recommendation, Some(9));
            assert_eq!(parsed.recommender.as_deref(), Some("memory"));
            assert_eq!(parsed.model_version.as_deref(), Some("00ff00ff00ff00ff"));
            assert!(parsed.fallback);
            assert_eq!(parsed.arm, 2);
            assert_eq!(
                pairs(parsed),
                [("AA".into(), "C".into()), ("AB".into(), "T2".into())]
            );
        }
        let last = r#"{"message":"last","timestamp":1,"user":1,"track":2,"time":0.25,"latency":0,"experiments":{}}"#;
        let parsed = parse_event(last.as_bytes(), Some("AB")).unwrap();
        assert!(parsed.last && parsed.experiments.is_empty());
        assert_eq!(
            (
                parsed.recommendation,
                parsed.recommender,
                parsed.fallback,
                parsed.arm
            ),
            (None, None, false, NO_ARM)
        );
    }

    #[test]
    fn keeps_exactly_the_lines_ab_keeps_with_typed_extras() {
        let base = r#""message":"next","timestamp":1,"user":1,"track":2,"latency":0.001"#;
        // Rejected by both readers.
        for line in [
            format!(r#"{{{base},"time":1.5}}"#),
            format!(r#"{{{base},"time":0.5,"experiments":{{"AB":"X"}}}}"#),
            format!(r#"{{{base}}}"#),
            "not json".to_string(),
        ] {
            assert!(parse_line(&line, Some("AB")).is_err(), "{line}");
            assert!(parse_event(line.as_bytes(), Some("AB")).is_err(), "{line}");
        }
        // Typed where the export writes the field.
        for (line, expected) in [
            (format!(r#"{{{base},"time":0.5,"fallback":"yes"}}"#), "boolean"),
            (format!(r#"{{{base},"time":0.5,"recommender":5}}"#), "string"),
            (format!(r#"{{{base},"time":0.5,"time":0.5}}"#), "duplicate field"),
            (
                r#"{"message":"next","timestamp":253402300800000,"user":1,"track":2,"time":0.5,"latency":0}"#
                    .to_string(),
                "after 9999-12-31",
            ),
        ] {
            let err = parse_event(line.as_bytes(), Some("AB")).unwrap_err().to_string();
            assert!(err.contains(expected), "{line}: {err}");
        }
        // Escapes and non-ASCII go through serde, decoded.
        let line = format!(
            r#"{{{base},"time":0.5,"recommender":"m\u00e9moire","experiments":{{"A\"B":"T1"}}}}"#
        );
        let parsed = parse_event(line.as_bytes(), Some("A\"B")).unwrap();
        assert_eq!(parsed.recommender.as_deref(), Some("mémoire"));
        assert_eq!(
            (parsed.arm, pairs(&parsed)),
            (1, vec![("A\"B".into(), "T1".into())])
        );
    }

    #[test]
    fn fast_path_agrees_with_serde_on_random_lines() {
        let mut rng = SmallRng::seed_from_u64(5);
        let odd = [
            "-1",
            "1e400",
            "\"1\"",
            "true",
            "null",
            "{}",
            "4294967295",
            "1.5",
        ];
        let pick = |rng: &mut SmallRng, plain: &[&'static str]| -> &'static str {
            if rng.gen_bool(0.9) {
                plain[rng.gen_range(0..plain.len())]
            } else {
                odd[rng.gen_range(0..odd.len())]
            }
        };
        let mut fast_taken = 0;
        for _ in 0..20_000 {
            let mut fields: Vec<String> = vec![
                format!(r#""message":{}"#, pick(&mut rng, &["\"next\"", "\"last\""])),
                format!(r#""timestamp":{}"#, pick(&mut rng, &["0", "1767225600000"])),
                format!(r#""user":{}"#, pick(&mut rng, &["0", "42"])),
                format!(r#""track":{}"#, pick(&mut rng, &["0", "576"])),
                format!(r#""time":{}"#, pick(&mut rng, &["0", "0.5", "1.0", "2E-2"])),
                format!(r#""latency":{}"#, pick(&mut rng, &["0", "0.00054"])),
                format!(r#""recommendation":{}"#, pick(&mut rng, &["null", "7"])),
                format!(
                    r#""experiments":{{"AA":{},"B":"C"}}"#,
                    pick(&mut rng, &["\"C\"", "\"T1\""])
                ),
                format!(r#""fallback":{}"#, pick(&mut rng, &["false", "true"])),
                format!(
                    r#""recommender":{}"#,
                    pick(&mut rng, &["\"toppop\"", "null"])
                ),
                format!(r#""model_version":{}"#, pick(&mut rng, &["\"v1\"", "null"])),
            ];
            for i in (1..fields.len()).rev() {
                fields.swap(i, rng.gen_range(0..=i));
            }
            if rng.gen_bool(0.1) {
                fields.truncate(rng.gen_range(5..fields.len()));
            }
            let line = format!("{{{}}}", fields.join(", "));
            let experiment = [Some("AA"), None][rng.gen_range(0..2)];
            let reference = with_serde(line.as_bytes(), experiment);
            if let Some(event) = fast(line.as_bytes(), experiment) {
                let reference = reference.expect("serde accepts what the fast path accepts");
                assert_eq!(event.arm, reference.arm, "{line}");
                assert_eq!(pairs(&event), pairs(&reference), "{line}");
                fn strip(e: Event<'_>) -> Event<'_> {
                    Event {
                        experiments: Experiments::Scanned(b""),
                        ..e
                    }
                }
                assert_eq!(strip(event), strip(reference), "{line}");
                fast_taken += 1;
            }
        }
        assert!(fast_taken > 5_000, "fast path taken {fast_taken} times");
    }
}
