//! Fast path for log lines: a byte scanner for flat JSON objects of the shape
//! botify writes, about three times quicker than driving serde_json (no
//! visitor dispatch, no UTF-8 validation of strings it only compares).
//!
//! It accepts any key order and whitespace, but only what it can decode with
//! certainty: on anything else — an escape or non-ASCII byte in a string, a
//! nested value other than `experiments`, a number outside JSON's grammar, a
//! missing field, a value out of range — it returns `None` and the caller
//! falls back to serde_json, which decides and words the error. So both
//! paths give the same answer for every line (the tests below check this on
//! random lines, for both readers).
//!
//! One scan serves both readers: [`scan`] reads every field of a line,
//! borrowing from it (no allocation): a [`Record`]'s [`Fields`], which
//! [`parse`] keeps, and the [`Extras`] the export (`event.rs`) adds to them
//! where they are typed as it writes them.

use std::borrow::Cow;

use super::record::{parse_arm_label, Fields, Partial, Record, NO_ARM};

/// The scanner's strings are printable ASCII, hence UTF-8.
pub(super) fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// `Some(record)` when the line is a well-formed event; `None` when serde_json
/// must decide.
#[inline]
pub(super) fn parse(line: &[u8], experiment: Option<&str>) -> Option<Record> {
    scan(line, experiment)?.0.record().ok()
}

/// What the export keeps of a line beyond a [`Record`]'s [`Fields`].
pub(super) struct Extras<'a> {
    /// The `experiments` object's bytes (`{}` when the line has none).
    pub experiments: &'a [u8],
    pub recommender: Option<Cow<'a, str>>,
    pub model_version: Option<Cow<'a, str>>,
    /// The export may keep the line as scanned: its text fields strings or
    /// null, no field twice (`ab` keeps the last of a repeated field and
    /// ignores the text fields, as serde's visitor for a [`Record`] does).
    pub typed: bool,
}

/// Which field a key is, as a bit, to tell a repeated one.
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
const PROPENSITY: u16 = 1 << 11;

/// Every field of a well-formed line, borrowed from it; `None` when
/// serde_json must decide. Ranges are not checked here: each reader applies
/// `record.rs`'s checks.
#[inline]
pub(super) fn scan<'a>(line: &'a [u8], experiment: Option<&str>) -> Option<(Fields, Extras<'a>)> {
    let mut c = Cursor::new(line);
    c.eat(b'{')?;
    let mut seen = 0u16;
    let mut typed = true;
    let mut read = Partial::default();
    let mut experiments: &[u8] = b"{}";
    let mut recommender = None;
    let mut model_version = None;
    loop {
        let key = c.string()?;
        c.eat(b':')?;
        c.ws();
        let field = match key {
            b"message" => {
                read.last = Some(match c.string()? {
                    b"next" => false,
                    b"last" => true,
                    _ => return None,
                });
                MESSAGE
            }
            b"timestamp" => {
                read.timestamp = Some(c.uint()?);
                TIMESTAMP
            }
            b"user" => {
                read.user = Some(c.uint()?);
                USER
            }
            b"track" => {
                read.track = Some(u32::try_from(c.uint()?).ok()?);
                TRACK
            }
            b"time" => {
                read.time = Some(c.float()?);
                TIME
            }
            b"latency" => {
                read.latency = Some(c.float()?);
                LATENCY
            }
            b"recommendation" => {
                read.recommendation = c.nullable(|c| u32::try_from(c.uint()?).ok())?;
                RECOMMENDATION
            }
            b"propensity" => {
                read.propensity = c.nullable(Cursor::float)?;
                PROPENSITY
            }
            b"experiments" => {
                let start = c.position();
                read.arm = c.experiments(experiment)?;
                experiments = c.since(start);
                EXPERIMENTS
            }
            b"recommender" => {
                recommender = c.text(&mut typed)?;
                RECOMMENDER
            }
            b"model_version" => {
                model_version = c.text(&mut typed)?;
                MODEL_VERSION
            }
            b"fallback" => {
                read.fallback = match c.peek()? {
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
        typed &= seen & field == 0;
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
    let extras = Extras {
        experiments,
        recommender,
        model_version,
        typed,
    };
    Some((read.complete().ok()?, extras))
}

/// A position in a line. `event.rs` walks a scanned `experiments` object
/// again with [`Cursor::string_pairs`], the walk the scan checked it with.
pub(super) struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

/// A scanned number.
struct Number<'a> {
    text: &'a [u8],
    negative: bool,
    /// All decimal digits, integer and fraction, as one integer (valid when
    /// `significant` ≤ 19).
    mantissa: u64,
    /// Digits from the first non-zero one.
    significant: u32,
    /// Digits after the point.
    fraction: u32,
    exponent: bool,
}

/// Powers of ten exactly representable in f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

impl<'a> Cursor<'a> {
    pub(super) fn new(line: &'a [u8]) -> Cursor<'a> {
        Cursor { s: line, i: 0 }
    }

    /// Bytes consumed so far.
    fn position(&self) -> usize {
        self.i
    }

    /// The bytes consumed since `start` (a [`Cursor::position`]).
    fn since(&self, start: usize) -> &'a [u8] {
        &self.s[start..self.i]
    }

    /// True when only whitespace is left.
    fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.bump()? == byte).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.s.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A string of printable ASCII without escapes; its bytes.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.s[self.i..];
        let end = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b))?;
        if rest[end] != b'"' {
            return None;
        }
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// A number in JSON's grammar, `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`,
    /// with its decimal digits accumulated on the way (one pass).
    fn number(&mut self) -> Option<Number<'a>> {
        self.ws();
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let mut n = Number {
            text: &[],
            negative,
            mantissa: 0,
            significant: 0,
            fraction: 0,
            exponent: false,
        };
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits(&mut n.mantissa, &mut n.significant);
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            n.fraction = self.digits(&mut n.mantissa, &mut n.significant);
            if n.fraction == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits(&mut 0, &mut 0) == 0 {
                return None;
            }
            n.exponent = true;
        }
        n.text = &self.s[start..self.i];
        Some(n)
    }

    /// Consumes decimal digits into `acc` (wrapping: callers check
    /// `significant`, the digits from the first non-zero one); returns how many.
    fn digits(&mut self, acc: &mut u64, significant: &mut u32) -> u32 {
        let mut count = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            if *acc != 0 || d != b'0' {
                *significant += 1;
            }
            *acc = acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            self.i += 1;
            count += 1;
        }
        count
    }

    /// A non-negative integer that fits u64 (fractions, exponents, signs, 20
    /// digits and more: serde decides).
    fn uint(&mut self) -> Option<u64> {
        let n = self.number()?;
        (!n.negative && n.fraction == 0 && !n.exponent && n.significant <= 19).then_some(n.mantissa)
    }

    /// A number as f64, computed as serde_json computes it (without its
    /// `float_roundtrip` feature): the decimal digits as an integer, divided
    /// by a power of ten. Exact when the digits fit 2^53 (Clinger), else
    /// within an ulp — like pandas' `read_json`, whose default parser is not
    /// correctly rounded either. Exponents and longer numbers go through the
    /// standard library's correctly rounded parser.
    fn float(&mut self) -> Option<f64> {
        let n = self.number()?;
        if !n.exponent && n.significant <= 19 && (n.fraction as usize) < POW10.len() {
            let v = n.mantissa as f64 / POW10[n.fraction as usize];
            return Some(if n.negative { -v } else { v });
        }
        // JSON numbers are ASCII, so this cannot fail.
        std::str::from_utf8(n.text).ok()?.parse().ok()
    }

    /// Skips a string, number, `true`, `false` or `null` (extra fields such as
    /// `recommender` and `fallback`); anything nested: serde decides.
    fn scalar(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    /// `null` as `None`, else the value `value` reads.
    fn nullable<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            Some(None)
        } else {
            value(self).map(Some)
        }
    }

    /// A text field: a plain string, or `null`; another scalar is skipped
    /// and clears `typed` (the export refuses it, `ab` ignores it).
    fn text(&mut self, typed: &mut bool) -> Option<Option<Cow<'a, str>>> {
        Some(match self.peek()? {
            b'"' => Some(Cow::Borrowed(ascii(self.string()?))),
            b'n' => self.literal(b"null").map(|()| None)?,
            _ => {
                self.scalar()?;
                *typed = false;
                None
            }
        })
    }

    /// `{"NAME": "LABEL", ...}`: calls `pair` with each name and label, in
    /// line order; `None` when the object is not one of plain strings or
    /// `pair` declines.
    pub(super) fn string_pairs(
        &mut self,
        mut pair: impl FnMut(&'a [u8], &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            let name = self.string()?;
            self.eat(b':')?;
            let label = self.string()?;
            pair(name, label)?;
            self.ws();
            match self.bump()? {
                b',' => continue,
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// The `experiments` object: the arm of `experiment`, or `NO_ARM`.
    fn experiments(&mut self, experiment: Option<&str>) -> Option<u8> {
        let mut arm = NO_ARM;
        self.string_pairs(|name, label| {
            if experiment.is_some_and(|e| e.as_bytes() == name) {
                arm = parse_arm_label(std::str::from_utf8(label).ok()?)?;
            }
            Some(())
        })?;
        Some(arm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn floats_match_serde_json() {
        let mut rng = SmallRng::seed_from_u64(11);
        let check = |text: String| {
            let mut c = Cursor {
                s: text.as_bytes(),
                i: 0,
            };
            let fast = c.float().unwrap();
            let serde: f64 = serde_json::from_str(&text).unwrap();
            let correct: f64 = text.parse().unwrap();
            // Same bits as serde_json for the digits botify writes; never more
            // than an ulp from the correctly rounded value.
            let significant = text.trim_start_matches(['0', '.']).len();
            if significant <= 19 && !text.contains(['e', 'E']) {
                assert_eq!(fast.to_bits(), serde.to_bits(), "{text}");
            }
            assert!(
                (fast.to_bits() as i64 - correct.to_bits() as i64).abs() <= 1,
                "{text}"
            );
        };
        for text in [
            "0",
            "-0",
            "1.0",
            "0.00054",
            "0.1",
            "0.30000000000000004",
            "0.0010861749394458935",
            "1e-3",
            "2E+2",
        ] {
            check(text.to_string());
        }
        for _ in 0..100_000 {
            let int = rng.gen_range(0..1_000u64);
            let fraction: String = (0..rng.gen_range(1..24))
                .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                .collect();
            check(format!("{int}.{fraction}"));
            // What serde_json writes for an f64 (shortest round-trip digits).
            check(serde_json::to_string(&rng.gen::<f64>()).unwrap());
        }
    }

    /// What both readers' scans must agree with serde on: random lines of
    /// mostly plain values, sometimes odd ones (out of range, outside JSON's
    /// grammar, wrong type), in any order, with some fields left out.
    #[test]
    fn both_readers_agree_with_serde_on_random_lines() {
        use super::super::event::{fast, tests::pairs, with_serde, Event, Experiments};
        use super::super::parse::parse_with_serde;

        let mut rng = SmallRng::seed_from_u64(3);
        let odd = [
            "-0",
            "-1",
            "1e400",
            "00",
            "1.",
            ".5",
            "1.5",
            "4294967295",
            "4294967296",
            "18446744073709551616",
            "\"1\"",
            "true",
            "null",
            "{}",
        ];
        let pick = |rng: &mut SmallRng, plain: &[&'static str]| -> &'static str {
            if rng.gen_bool(0.9) {
                plain[rng.gen_range(0..plain.len())]
            } else {
                odd[rng.gen_range(0..odd.len())]
            }
        };
        let (mut records, mut events) = (0, 0);
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
                    r#""propensity":{}"#,
                    pick(&mut rng, &["1", "0.25", "1e-3", "1.0", "null"])
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
                format!(r#""model_version":{}"#, pick(&mut rng, &["\"v1\"", "null"])),
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

            // The record `ab` reads: the same as serde's whenever the scan
            // accepts; what serde accepts and the scan declines must involve
            // an odd value (serde ignores `experiments` when no experiment is
            // asked for; "-0" is a valid f64).
            let reference = parse_with_serde(line.as_bytes(), experiment);
            if let Some(record) = parse(line.as_bytes(), experiment) {
                assert_eq!(Ok(record), reference.map_err(|e| e.to_string()), "{line}");
                records += 1;
            } else if let Ok(record) = reference {
                assert!(
                    odd.iter().any(|o| line.contains(o)),
                    "declined a plain line {line}: {record:?}"
                );
            }

            // The event the export writes: every field the same as serde's.
            if let Some(scanned) = fast(line.as_bytes(), experiment) {
                let reference = with_serde(line.as_bytes(), experiment)
                    .expect("serde accepts what the scan accepts");
                assert_eq!(pairs(&scanned), pairs(&reference), "{line}");
                fn strip(e: Event<'_>) -> Event<'_> {
                    Event {
                        experiments: Experiments::Scanned(b""),
                        ..e
                    }
                }
                assert_eq!(strip(scanned), strip(reference), "{line}");
                events += 1;
            }
        }
        assert!(records > 5_000, "the record scan taken {records} times");
        assert!(events > 5_000, "the event scan taken {events} times");
    }
}
