//! Integers as JSON Schema counts them: `576` and `576.0` alike.
//!
//! The OpenAPI description says "integer" and JSON Schema holds `576.0` to
//! be one, so a client generating from the description may send it; serde
//! reads it as a float and would refuse it. These `deserialize_with`
//! helpers accept any JSON number with no fractional part that fits the
//! target type, and refuse the rest with serde's own error.

use serde::de::{Deserialize, Deserializer, Error};
use serde_json::Number;

use crate::catalog::TrackId;

/// `number` as a `T`, if it is integral and fits.
pub fn integral<T: TryFrom<i128>>(number: &Number) -> Option<T> {
    let wide = if let Some(u) = number.as_u64() {
        i128::from(u)
    } else if let Some(i) = number.as_i64() {
        i128::from(i)
    } else {
        let float = number.as_f64()?;
        // Exactly integral and well inside i128: the cast below is exact.
        if float.fract() != 0.0 || float.abs() > 1e30 {
            return None;
        }
        float as i128
    };
    T::try_from(wide).ok()
}

fn one<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
    deserializer: D,
    expected: &str,
) -> Result<T, D::Error> {
    let number = Number::deserialize(deserializer)?;
    integral(&number).ok_or_else(|| D::Error::custom(format!("{number} is not {expected}")))
}

const TRACK_ID: &str = "a track id (an integer in 0..=4294967295)";

/// A track id.
pub fn track_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TrackId, D::Error> {
    one(deserializer, TRACK_ID)
}

/// An optional track id (`null` or absent: none).
pub fn optional_track_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TrackId>, D::Error> {
    Option::<Number>::deserialize(deserializer)?
        .map(|n| integral(&n).ok_or_else(|| D::Error::custom(format!("{n} is not {TRACK_ID}"))))
        .transpose()
}

/// An optional `i32` (`null` or absent: none).
pub fn optional_i32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    Option::<Number>::deserialize(deserializer)?
        .map(|n| {
            integral(&n).ok_or_else(|| D::Error::custom(format!("{n} is not a 32-bit integer")))
        })
        .transpose()
}

/// A list of track ids, into any collection.
pub fn track_ids<'de, D: Deserializer<'de>, C: FromIterator<TrackId>>(
    deserializer: D,
) -> Result<C, D::Error> {
    Vec::<Number>::deserialize(deserializer)?
        .iter()
        .map(|n| integral(n).ok_or_else(|| D::Error::custom(format!("{n} is not {TRACK_ID}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn integral_floats_count_as_integers() {
        assert_eq!(integral::<u32>(&number("576")), Some(576));
        assert_eq!(integral::<u32>(&number("576.0")), Some(576));
        assert_eq!(integral::<u32>(&number("5.76e2")), Some(576));
        assert_eq!(integral::<i32>(&number("-3.0")), Some(-3));
        for bad in ["576.5", "-1", "4294967296", "1e300"] {
            assert_eq!(integral::<u32>(&number(bad)), None, "{bad}");
        }
    }
}
