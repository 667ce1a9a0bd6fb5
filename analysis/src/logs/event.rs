//! One line to *every* field of the event, for the Parquet export (a
//! [`Record`](super::Record) keeps only what the analyses use).
//!
//! The same two paths as `parse.rs`: the scan of `fast.rs` (the one `ab`
//! reads its records with) for the lines botify writes, serde_json for
//! anything it declines — which decides and words the error. Both apply the
//! range checks of `record.rs`, and the arm label of the experiment asked
//! for is checked as `ab` checks it, so a line the export keeps is a line
//! `ab` keeps. The export is stricter in one way only: every field it writes
//! must have its type (`fallback` a boolean, `recommender` a string or null,
//! experiment labels strings), and a field may appear once.

use std::borrow::Cow;
use std::collections::BTreeMap;

use botify::events::Message;
use serde::de::Error as _;
use serde::Deserialize;

use super::fast::{self, ascii, Cursor};
use super::record::{check_values, parse_arm_label, Fields, NO_ARM};

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
    /// The logged probability of `recommendation`, in (0, 1]; `None` on
    /// `last` and in logs written before botify logged it.
    pub propensity: Option<f64>,
    pub experiments: Experiments<'a>,
    pub recommender: Option<Cow<'a, str>>,
    pub fallback: bool,
    /// The version of the models that served (`null` when botify had none).
    pub model_version: Option<Cow<'a, str>>,
    /// Arm index in the experiment asked for (`C` = 0, `Tk` = k), or [`NO_ARM`].
    pub arm: u8,
}

impl<'a> Event<'a> {
    /// A [`Record`](super::Record)'s fields and what the export adds to them.
    fn new(
        fields: Fields,
        experiments: Experiments<'a>,
        recommender: Option<Cow<'a, str>>,
        model_version: Option<Cow<'a, str>>,
    ) -> Event<'a> {
        Event {
            last: fields.last,
            timestamp: fields.timestamp,
            user: fields.user,
            track: fields.track,
            time: fields.time,
            latency: fields.latency,
            recommendation: fields.recommendation,
            propensity: fields.propensity,
            experiments,
            recommender,
            fallback: fields.fallback,
            model_version,
            arm: fields.arm,
        }
    }
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
                // The scanner accepted these bytes, so the walk succeeds.
                let _ = Cursor::new(bytes).string_pairs(|name, label| {
                    f(ascii(name), ascii(label));
                    Some(())
                });
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

/// The scan's event, when the export can keep it as it is: its fields typed
/// as the export writes them, in range (else serde decides and words it).
pub(super) fn fast<'a>(line: &'a [u8], experiment: Option<&str>) -> Option<Event<'a>> {
    let (fields, extras) = fast::scan(line, experiment)?;
    let event = Event::new(
        fields,
        Experiments::Scanned(extras.experiments),
        extras.recommender,
        extras.model_version,
    );
    (extras.typed && check(&event).is_ok()).then_some(event)
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
    #[serde(default)]
    propensity: Option<f64>,
    #[serde(default, borrow)]
    experiments: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(default, borrow)]
    recommender: Option<Cow<'a, str>>,
    #[serde(default)]
    fallback: bool,
    #[serde(default, borrow)]
    model_version: Option<Cow<'a, str>>,
}

pub(super) fn with_serde<'a>(
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
    let fields = Fields {
        last: parsed.message == Message::Last,
        timestamp: parsed.timestamp,
        user: parsed.user,
        track: parsed.track,
        time: parsed.time,
        latency: parsed.latency,
        recommendation: parsed.recommendation,
        propensity: parsed.propensity,
        arm,
        fallback: parsed.fallback,
    };
    let event = Event::new(
        fields,
        Experiments::Decoded(parsed.experiments),
        parsed.recommender,
        parsed.model_version,
    );
    check(&event).map_err(serde_json::Error::custom)?;
    Ok(event)
}

/// The range checks of `record.rs`, plus the timestamp's.
fn check(event: &Event<'_>) -> Result<(), String> {
    check_values(
        event.time,
        event.latency,
        event.track,
        event.recommendation,
        event.propensity,
    )?;
    if event.timestamp > MAX_TIMESTAMP {
        return Err(format!(
            "timestamp {} is after 9999-12-31 (epoch milliseconds expected)",
            event.timestamp
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::logs::parse_line;

    pub(in crate::logs) fn pairs(event: &Event<'_>) -> Vec<(String, String)> {
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
            propensity: Some(0.25),
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
            assert_eq!(parsed.propensity, Some(0.25));
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
        assert_eq!(parsed.propensity, None, "old logs and `last` have none");
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
            format!(r#"{{{base},"time":0.5,"recommendation":3,"propensity":0}}"#),
            format!(r#"{{{base},"time":0.5,"recommendation":3,"propensity":1.5}}"#),
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
}
