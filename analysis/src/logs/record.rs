//! The compact event every analysis works on, and the checks a parsed line
//! must pass to become one. Both parsers (`fast.rs` and `parse.rs`) end here,
//! so a line is accepted or rejected by the same rules whichever path read it.

/// `Record::recommendation` when the event has none (a `last`). Reserving a
/// track id spares [`Record`] the 8 bytes an `Option<u32>` would add.
const NO_TRACK: u32 = u32::MAX;
/// `Record::arm` when the event does not carry the experiment asked for.
pub const NO_ARM: u8 = u8::MAX;
/// `Record::propensity` when the event has none (a `last`, or a log written
/// before botify logged it): a propensity is never 0, so no `Option` is paid for.
const NO_PROPENSITY: f32 = 0.0;

/// One event, reduced to the fields the analyses use. 56 bytes (48 before
/// the propensity, which needs its own 4 bytes and so rounds the struct up
/// to the next multiple of 8), so ten million events fit in 0.56 GB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    pub user: u64,
    /// Epoch milliseconds.
    pub timestamp: u64,
    /// Fraction of `track` listened, 0.0–1.0.
    pub time: f64,
    /// Seconds spent serving the request.
    pub latency: f64,
    /// The track just listened.
    pub track: u32,
    recommendation: u32,
    /// The logged probability of `recommendation`, or [`NO_PROPENSITY`]. An
    /// f32 keeps 7 significant digits: importance weights need no more.
    propensity: f32,
    /// Position in reading order (files sorted by path, then line order):
    /// breaks timestamp ties so sessionization is deterministic.
    pub seq: u32,
    /// Arm index in the requested experiment (`C` = 0, `Tk` = k), or [`NO_ARM`].
    pub arm: u8,
    /// True for a `last` event (the session ends here).
    pub last: bool,
    /// True when botify answered from a fallback (`"fallback": true`: the
    /// state store was unavailable, or the recommender had no candidate).
    /// Fits in what was padding.
    pub fallback: bool,
}

impl Record {
    /// Builds a record (for tests and generators; readers parse lines).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        user: u64,
        timestamp: u64,
        track: u32,
        time: f64,
        latency: f64,
        recommendation: Option<u32>,
        arm: u8,
        last: bool,
    ) -> Record {
        Record {
            user,
            timestamp,
            time,
            latency,
            track,
            recommendation: recommendation.unwrap_or(NO_TRACK),
            propensity: NO_PROPENSITY,
            seq: 0,
            arm,
            last,
            fallback: false,
        }
    }

    /// The track served in answer to this event; `None` on `last`.
    pub fn recommendation(&self) -> Option<u32> {
        (self.recommendation != NO_TRACK).then_some(self.recommendation)
    }

    /// The logged probability that the arm served `recommendation`; `None`
    /// on `last` and in logs written before botify logged it.
    pub fn propensity(&self) -> Option<f64> {
        (self.propensity != NO_PROPENSITY).then_some(f64::from(self.propensity))
    }

    /// This record with `propensity` (in (0, 1], as the readers check), or
    /// none.
    pub fn with_propensity(mut self, propensity: Option<f64>) -> Record {
        self.propensity = match propensity {
            // A probability below f32's range still is one: keep it above 0.
            Some(p) => (p as f32).max(f32::MIN_POSITIVE),
            None => NO_PROPENSITY,
        };
        self
    }
}

/// `C` → 0, `T1` → 1, … (`botify::experiments::arm_label` in reverse).
/// `None` for anything else, including arms past 254.
pub fn parse_arm_label(label: &str) -> Option<u8> {
    if label == "C" {
        return Some(0);
    }
    let digits = label.strip_prefix('T')?;
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u8>().ok().filter(|&k| k >= 1 && k != NO_ARM)
}

/// A line's values, before the checks both parsers share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Fields {
    pub(super) last: bool,
    pub(super) timestamp: u64,
    pub(super) user: u64,
    pub(super) track: u32,
    pub(super) time: f64,
    pub(super) latency: f64,
    pub(super) recommendation: Option<u32>,
    pub(super) propensity: Option<f64>,
    pub(super) arm: u8,
    pub(super) fallback: bool,
}

impl Fields {
    /// The record, or why the values are out of range (the message serde
    /// reports as the line's error).
    pub(super) fn record(self) -> Result<Record, String> {
        check_values(
            self.time,
            self.latency,
            self.track,
            self.recommendation,
            self.propensity,
        )?;
        let mut record = Record::new(
            self.user,
            self.timestamp,
            self.track,
            self.time,
            self.latency,
            self.recommendation,
            self.arm,
            self.last,
        );
        record.fallback = self.fallback;
        Ok(record.with_propensity(self.propensity))
    }
}

/// A line's [`Fields`] as a parser meets them, in any order: each one the
/// line must have stays `None` until it is read.
pub(super) struct Partial {
    pub(super) last: Option<bool>,
    pub(super) timestamp: Option<u64>,
    pub(super) user: Option<u64>,
    pub(super) track: Option<u32>,
    pub(super) time: Option<f64>,
    pub(super) latency: Option<f64>,
    pub(super) recommendation: Option<u32>,
    pub(super) propensity: Option<f64>,
    pub(super) arm: u8,
    pub(super) fallback: bool,
}

impl Default for Partial {
    /// Nothing read yet: no recommendation, not in the experiment, no fallback.
    fn default() -> Partial {
        Partial {
            last: None,
            timestamp: None,
            user: None,
            track: None,
            time: None,
            latency: None,
            recommendation: None,
            propensity: None,
            arm: NO_ARM,
            fallback: false,
        }
    }
}

impl Partial {
    /// The fields, or the name of the first one the line lacks (in the
    /// order serde_json's reference parser reports them).
    pub(super) fn complete(self) -> Result<Fields, &'static str> {
        Ok(Fields {
            last: self.last.ok_or("message")?,
            timestamp: self.timestamp.ok_or("timestamp")?,
            user: self.user.ok_or("user")?,
            track: self.track.ok_or("track")?,
            time: self.time.ok_or("time")?,
            latency: self.latency.ok_or("latency")?,
            recommendation: self.recommendation,
            propensity: self.propensity,
            arm: self.arm,
            fallback: self.fallback,
        })
    }
}

/// The range checks every reader of a line applies (a [`Record`] here, a
/// full event for the export), so a line is accepted or rejected alike.
pub(super) fn check_values(
    time: f64,
    latency: f64,
    track: u32,
    recommendation: Option<u32>,
    propensity: Option<f64>,
) -> Result<(), String> {
    if !(0.0..=1.0).contains(&time) {
        return Err(format!("time {time} is outside 0..=1"));
    }
    if !(latency >= 0.0 && latency.is_finite()) {
        return Err(format!(
            "latency {latency} is not a non-negative number of seconds"
        ));
    }
    if track == NO_TRACK || recommendation == Some(NO_TRACK) {
        return Err("track id 4294967295 is reserved".to_string());
    }
    if let Some(p) = propensity {
        if !(p > 0.0 && p <= 1.0) {
            return Err(format!("propensity {p} is outside (0, 1]"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use botify::experiments::arm_label;

    #[test]
    fn record_stays_56_bytes() {
        assert_eq!(std::mem::size_of::<Record>(), 56);
    }

    #[test]
    fn arm_labels_round_trip_with_botify() {
        for arm in 0..254usize {
            assert_eq!(parse_arm_label(&arm_label(arm)), Some(arm as u8));
        }
        for bad in ["", "c", "T", "T0", "T01", "T255", "T-1", "X1"] {
            assert_eq!(parse_arm_label(bad), None, "{bad}");
        }
    }
}
