//! Count, mean and sample variance, shared by `analysis ab` (per-arm user
//! metrics) and `sim` (per-run rewards and session lengths).
//!
//! Three ways to fill one [`Moments`], because their users have their data
//! differently:
//! - [`Moments::of`], two passes over values all in memory: as accurate as
//!   pandas on large samples;
//! - [`Moments::from_parts`], a count, mean and sum of squared deviations
//!   computed elsewhere: the A/B engine's, from per-arm sufficient
//!   statistics (n, Σy, Σy²);
//! - [`Moments::add`] and [`Moments::merge`], Welford's streaming update:
//!   the simulator summarises sessions as they finish, without keeping them,
//!   and merges the summaries of concurrent workers.

/// Count, mean and sum of squared deviations from the mean, from which the
/// sample variance (ddof = 1, as pandas' `var`) and the standard error follow.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    count: u64,
    mean: f64,
    /// Σ (x − mean)².
    m2: f64,
}

impl Moments {
    /// Two-pass moments of `values`. With no values the mean is NaN; with one
    /// the variance is NaN (0/0), so an interval built on it is undefined
    /// rather than falsely narrow.
    pub fn of(values: &[f64]) -> Moments {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let m2 = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
        Moments {
            count: values.len() as u64,
            mean,
            m2,
        }
    }

    /// From a count, a mean and the sum of squared deviations from it, as
    /// computed elsewhere (`analysis ab` from sufficient statistics: n, Σy
    /// and Σy² of SQL, or of its own reading of the logs).
    pub fn from_parts(count: u64, mean: f64, m2: f64) -> Moments {
        Moments { count, mean, m2 }
    }

    /// Adds one value (Welford).
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Adds all the values `other` summarises (Chan et al.'s pairwise update).
    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        let n = self.count + other.count;
        let delta = other.mean - self.mean;
        self.mean += delta * other.count as f64 / n as f64;
        self.m2 += other.m2 + delta * delta * (self.count as f64 * other.count as f64) / n as f64;
        self.count = n;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample variance (ddof = 1); NaN for a single value.
    pub fn var(&self) -> f64 {
        self.m2 / (self.count as f64 - 1.0)
    }

    /// Standard error of the mean; 0 for fewer than two values, so a run of
    /// one session still prints a number.
    pub fn standard_error(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        (self.var() / self.count as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn moments_use_sample_variance() {
        let m = Moments::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((m.count(), m.mean()), (4, 2.5));
        assert!(close(m.var(), 5.0 / 3.0, 1e-15));
        assert!(Moments::of(&[1.0]).var().is_nan());
    }

    #[test]
    fn moments_match_direct_formulas_and_merge() {
        let xs = [1.0, 2.0, 4.0, 7.0, 11.0];
        let mut all = Moments::default();
        xs.iter().for_each(|&x| all.add(x));
        let mean = xs.iter().sum::<f64>() / 5.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
        assert!((all.mean() - mean).abs() < 1e-12);
        assert!((all.standard_error() - (var / 5.0).sqrt()).abs() < 1e-12);
        let (mut a, mut b) = (Moments::default(), Moments::default());
        xs[..2].iter().for_each(|&x| a.add(x));
        xs[2..].iter().for_each(|&x| b.add(x));
        a.merge(&b);
        assert!((a.mean() - all.mean()).abs() < 1e-12);
        assert!((a.standard_error() - all.standard_error()).abs() < 1e-12);
    }

    #[test]
    fn streaming_and_two_pass_agree() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f64 / 10.0)
            .collect();
        let two_pass = Moments::of(&xs);
        let mut streamed = Moments::default();
        let (mut left, mut right) = (Moments::default(), Moments::of(&xs[600..]));
        for &x in &xs {
            streamed.add(x);
        }
        xs[..600].iter().for_each(|&x| left.add(x));
        left.merge(&right);
        right.merge(&Moments::default());
        assert_eq!(right, Moments::of(&xs[600..]), "merging nothing is a no-op");
        for m in [streamed, left] {
            assert_eq!(m.count(), two_pass.count());
            assert!(close(m.mean(), two_pass.mean(), 1e-12));
            assert!(close(m.var(), two_pass.var(), 1e-12));
            assert!(close(m.standard_error(), two_pass.standard_error(), 1e-12));
        }
    }

    #[test]
    fn fewer_than_two_values() {
        let mut one = Moments::default();
        assert_eq!(
            (one.count(), one.mean(), one.standard_error()),
            (0, 0.0, 0.0)
        );
        one.add(3.0);
        assert_eq!(
            (one.count(), one.mean(), one.standard_error()),
            (1, 3.0, 0.0)
        );
        assert!(one.var().is_nan());
        assert!(Moments::of(&[]).mean().is_nan());
    }
}
