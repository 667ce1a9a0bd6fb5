//! `listen_curve.json`: how long a listener is expected to listen to a track,
//! given the track's cosine with the session's interest in the learned space
//! and how often its artist was already played this session. Fitted from the
//! logs by `analysis train` alongside the track vectors it is read with;
//! `session_interest` ranks candidates by it.

use serde::{Deserialize, Serialize};

/// `expected_time(c, p) = sigmoid((c − bias) × sharpness) × discount^p`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenCurve {
    /// The cosine at which a fresh artist's track is listened half-way.
    pub bias: f32,
    /// How steeply listen time rises around `bias`.
    pub sharpness: f32,
    /// What each earlier play of the artist this session multiplies the
    /// listen time by (0..=1).
    pub discount: f32,
}

impl Default for ListenCurve {
    /// Before any training: half-way at a cosine of 0.5, and the
    /// simulator's documented default discount, a prior rather than a fit.
    fn default() -> Self {
        ListenCurve {
            bias: 0.5,
            sharpness: 8.0,
            discount: 0.8,
        }
    }
}

impl ListenCurve {
    pub fn expected_time(&self, cosine: f32, artist_plays: u32) -> f32 {
        let fresh = 1.0 / (1.0 + (-(cosine - self.bias) * self.sharpness).exp());
        fresh * self.discount.powi(artist_plays as i32)
    }

    /// `Err` says which field is out of range.
    pub fn validate(&self) -> Result<(), String> {
        if !self.bias.is_finite() || !self.sharpness.is_finite() || self.sharpness < 0.0 {
            return Err(format!(
                "bias {} and sharpness {}: expected finite numbers, sharpness ≥ 0",
                self.bias, self.sharpness
            ));
        }
        if !(0.0..=1.0).contains(&self.discount) {
            return Err(format!("discount {}: expected 0..=1", self.discount));
        }
        Ok(())
    }
}
