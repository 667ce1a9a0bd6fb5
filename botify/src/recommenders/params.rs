//! An experiment arm's keys, read strictly: a key the arm's recommender
//! does not accept, a value of the wrong type or out of range stops
//! start-up with an error naming the key. Read leniently, a typo
//! (`temprature = 0.3`) would silently serve the default — exploration
//! off while the experiment file says it is on.

use crate::experiments::ArmSpec;

use super::NAMES;

/// Why an experiment arm names no recommender that can be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BuildError {
    #[error("unknown recommender {name:?}; known: {}", NAMES.join(", "))]
    Unknown { name: String },
    #[error("{recommender}: unknown key {key:?}; {recommender} accepts {accepted}")]
    UnknownKey {
        recommender: String,
        key: String,
        accepted: String,
    },
    /// A value of the wrong type, or outside what the key accepts. `value`
    /// is the value as the recommender read it (some parameters are `f32`),
    /// formatted, so the message shows exactly what was checked.
    #[error("{recommender}: {param} = {value} is not accepted; expected {expected}")]
    InvalidParam {
        recommender: String,
        param: String,
        value: String,
        expected: &'static str,
    },
}

/// Keys every arm accepts, whatever its recommender: the serving policy's
/// (`policy.rs`).
pub const COMMON_KEYS: [&str; 5] = ["noise", "policy", "temperature", "epsilon", "top"];

/// What `expected` says of a fraction.
pub const FRACTION: &str = "a number in 0..=1";

/// One arm's keys, for the recommender it names.
pub struct Params<'a> {
    arm: &'a ArmSpec,
}

impl<'a> Params<'a> {
    /// The arm's keys, refused unless each is in `accepted` or
    /// [`COMMON_KEYS`].
    pub fn strict(arm: &'a ArmSpec, accepted: &[&str]) -> Result<Params<'a>, BuildError> {
        if let Some(key) = arm
            .keys()
            .find(|key| !accepted.contains(key) && !COMMON_KEYS.contains(key))
        {
            let all: Vec<&str> = accepted.iter().chain(&COMMON_KEYS).copied().collect();
            return Err(BuildError::UnknownKey {
                recommender: arm.recommender().to_string(),
                key: key.to_string(),
                accepted: all.join(", "),
            });
        }
        Ok(Params { arm })
    }

    /// The arm's keys, without checking which are set: for readers of the
    /// common keys once [`strict`](Self::strict) has checked them.
    pub fn of(arm: &'a ArmSpec) -> Params<'a> {
        Params { arm }
    }

    /// `key` refused: `value` is not what it expects.
    pub fn invalid(&self, key: &str, value: impl ToString, expected: &'static str) -> BuildError {
        BuildError::InvalidParam {
            recommender: self.arm.recommender().to_string(),
            param: key.to_string(),
            value: value.to_string(),
            expected,
        }
    }

    /// A non-negative integer, if set.
    pub fn count(&self, key: &str) -> Result<Option<usize>, BuildError> {
        const EXPECTED: &str = "a non-negative integer";
        let Some(value) = self.arm.get(key) else {
            return Ok(None);
        };
        let count = value
            .as_integer()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| self.invalid(key, value, EXPECTED))?;
        Ok(Some(count))
    }

    /// A positive integer, or `default`.
    pub fn positive(&self, key: &str, default: usize) -> Result<usize, BuildError> {
        match self.count(key)? {
            Some(0) => Err(self.invalid(key, 0, "a positive integer")),
            value => Ok(value.unwrap_or(default)),
        }
    }

    /// A number (an integer reads as one), if set.
    pub fn number(&self, key: &str) -> Result<Option<f64>, BuildError> {
        let Some(value) = self.arm.get(key) else {
            return Ok(None);
        };
        let number = value
            .as_float()
            .or_else(|| value.as_integer().map(|i| i as f64))
            .filter(|v| v.is_finite())
            .ok_or_else(|| self.invalid(key, value, "a number"))?;
        Ok(Some(number))
    }

    /// A number as the `f32` the recommenders compute with, or `default`.
    pub fn number_f32(&self, key: &str, default: f32) -> Result<f32, BuildError> {
        Ok(self.number(key)?.map_or(default, |v| v as f32))
    }

    /// A number in 0..=1, or `default`.
    pub fn fraction(&self, key: &str, default: f64) -> Result<f64, BuildError> {
        let value = self.number(key)?.unwrap_or(default);
        if !(0.0..=1.0).contains(&value) {
            return Err(self.invalid(key, value, FRACTION));
        }
        Ok(value)
    }

    /// A string, if set.
    pub fn string(&self, key: &str) -> Result<Option<&'a str>, BuildError> {
        let Some(value) = self.arm.get(key) else {
            return Ok(None);
        };
        let text = value
            .as_str()
            .ok_or_else(|| self.invalid(key, value, "a string"))?;
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::arm;
    use super::*;

    #[test]
    fn unknown_keys_are_refused_naming_the_key_and_what_is_accepted() {
        let spec = arm(r#"{ recommender = "toppop", kk = 3 }"#);
        let err = Params::strict(&spec, &["k"]).err().unwrap().to_string();
        assert!(
            err.contains("unknown key \"kk\"") && err.contains("accepts k, noise, policy"),
            "{err}"
        );
        let spec = arm(r#"{ recommender = "toppop", k = 3, temperature = 0.2 }"#);
        assert!(Params::strict(&spec, &["k"]).is_ok(), "common keys pass");
    }

    #[test]
    fn values_of_the_wrong_type_or_range_are_refused_naming_key_and_value() {
        let spec = arm(r#"{ recommender = "x", a = "hot", b = -1, c = 1.5, d = 0, e = 2 }"#);
        let params = Params::of(&spec);
        let err = params.number("a").unwrap_err().to_string();
        assert!(
            err.contains("a = \"hot\"") && err.contains("a number"),
            "{err}"
        );
        let err = params.count("b").unwrap_err().to_string();
        assert!(
            err.contains("b = -1") && err.contains("non-negative"),
            "{err}"
        );
        let err = params.fraction("c", 0.0).unwrap_err().to_string();
        assert!(err.contains("c = 1.5") && err.contains("0..=1"), "{err}");
        let err = params.positive("d", 5).unwrap_err().to_string();
        assert!(err.contains("d = 0") && err.contains("positive"), "{err}");
        assert!(params.string("e").is_err());
        assert_eq!(params.number("e"), Ok(Some(2.0)), "an integer is a number");
        assert_eq!(params.positive("missing", 5), Ok(5));
        assert_eq!(params.string("missing"), Ok(None));
    }
}
