//! Corrections for many comparisons (many arms × many metrics):
//! Holm–Bonferroni (the default: controls the family-wise error rate, the
//! chance of any false positive, under any dependence between tests) and
//! Benjamini–Hochberg (controls the false discovery rate, the expected share
//! of false positives among the significant rows; more power when many
//! effects are real). Both return adjusted p-values, so a row is significant
//! when its adjusted p is below α.

use clap::ValueEnum;

/// Which correction `--correction` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Correction {
    /// Holm–Bonferroni step-down: family-wise error rate.
    Holm,
    /// Benjamini–Hochberg step-up: false discovery rate.
    Bh,
    /// No correction: each row at its own α.
    None,
}

impl Correction {
    /// Adjusted p-values, in the order given. NaN p-values stay NaN and do
    /// not count as tests.
    pub fn adjust(self, p: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
        order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
        let m = order.len() as f64;
        let mut adjusted = vec![f64::NAN; p.len()];
        match self {
            Correction::None => return p.to_vec(),
            Correction::Holm => {
                let mut running = 0.0f64;
                for (rank, &i) in order.iter().enumerate() {
                    running = running.max(((m - rank as f64) * p[i]).min(1.0));
                    adjusted[i] = running;
                }
            }
            Correction::Bh => {
                let mut running = 1.0f64;
                for (rank, &i) in order.iter().enumerate().rev() {
                    running = running.min((m / (rank as f64 + 1.0) * p[i]).min(1.0));
                    adjusted[i] = running;
                }
            }
        }
        adjusted
    }

    pub fn name(self) -> &'static str {
        match self {
            Correction::Holm => "Holm–Bonferroni",
            Correction::Bh => "Benjamini–Hochberg",
            Correction::None => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() < 1e-12 || (x.is_nan() && y.is_nan()))
    }

    #[test]
    fn matches_statsmodels_multipletests() {
        // statsmodels.stats.multitest.multipletests(p, method='holm' / 'fdr_bh')[1]
        let p = [0.01, 0.04, 0.03, 0.005, 0.5];
        let holm = Correction::Holm.adjust(&p);
        assert!(close(&holm, &[0.04, 0.09, 0.09, 0.025, 0.5]), "{holm:?}");
        let bh = Correction::Bh.adjust(&p);
        assert!(close(&bh, &[0.025, 0.05, 0.05, 0.025, 0.5]), "{bh:?}");
        assert_eq!(Correction::None.adjust(&p), p);
    }

    #[test]
    fn nan_p_values_are_not_tests() {
        let holm = Correction::Holm.adjust(&[0.01, f64::NAN, 0.02]);
        assert!(close(&holm, &[0.02, f64::NAN, 0.02]), "{holm:?}");
        assert!(Correction::Bh.adjust(&[]).is_empty());
    }
}
