//! The certificate as text: the verdict line and the human report.

use super::{Certificate, LayerViolation, LipschitzProof};
use std::fmt;

impl Certificate {
    /// The one-line verdict.
    pub fn verdict(&self) -> String {
        let scores = if self.n_labels > 1 {
            "a score"
        } else {
            "the score"
        };
        let of = if self.all_declared {
            " (all features)".to_string()
        } else {
            format!(" (of {} features)", self.n_features)
        };
        if self.certified {
            let s = if self.n_labels > 1 {
                "no score can decrease"
            } else {
                "the score cannot decrease"
            };
            if self.decreasing > 0 {
                return format!(
                    "CERTIFIED: {s} when content is added: it is non-decreasing in the {} \
                     declared features additions raise and non-increasing in the {} they \
                     lower{of}",
                    self.declared - self.decreasing,
                    self.decreasing
                );
            }
            return format!(
                "CERTIFIED: {s} when any of the {} declared features is added{of}{}",
                self.declared,
                self.lipschitz_clause()
            );
        }
        let mut why = Vec::new();
        if !self.violations.is_empty() {
            let count: usize = self.violations.iter().map(|v| v.count).sum();
            why.push(format!(
                "{} of the {} declared features may lower {scores} when added ({count} \
                 negative weights lie on their paths to the output)",
                self.n_uncovered, self.declared
            ));
        }
        // The Lipschitz proof's shortfall is news only for a model that looks like a
        // Lipschitz monotonic network (some feature proved, or skip weights of the right
        // sign); a free skip beside a monotone MLP fails it by construction.
        let lmn_like = |p: &&LipschitzProof| p.proved > 0 || p.min_ratio.is_some_and(|r| r > 0.0);
        if let Some(p) = self
            .lipschitz
            .as_ref()
            .filter(|p| p.proved < p.checked)
            .filter(lmn_like)
        {
            why.push(format!(
                "{} of them have a skip weight below the MLP's Lipschitz bound (smallest \
                 ratio {}{})",
                p.checked - p.proved,
                p.min_ratio.map_or("-".into(), |r| format!("{r:.4}")),
                p.worst_feature
                    .map_or(String::new(), |j| format!(", feature index {j}"))
            ));
        }
        why.extend(self.reasons.iter().cloned());
        format!("NOT CERTIFIED: {}", why.join("; "))
    }
}

impl Certificate {
    /// How many declared features the Lipschitz proof covered, when it covered any.
    fn lipschitz_clause(&self) -> String {
        match &self.lipschitz {
            Some(p) if p.proved > 0 => format!(
                "; {} of them by the Lipschitz proof (skip weight >= the MLP's bound, \
                 smallest ratio {})",
                p.proved,
                p.min_ratio.map_or("-".into(), |r| format!("{r:.6}"))
            ),
            _ => String::new(),
        }
    }
}

/// A weight as a plain decimal with 4 significant digits (`-0.2641`, `-0.000003142`):
/// a report for people, not `-2.6409072e-1`.
fn plain(v: f32) -> String {
    let a = v.abs();
    if a == 0.0 || !a.is_finite() {
        return v.to_string();
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

fn list<T: fmt::Display>(items: &[T], total: usize) -> String {
    let mut s = items
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if total > items.len() {
        s += &format!(" ... and {} more", total - items.len());
    }
    s
}

/// The human report: verdict, per-layer table, violations, uncovered features, notes.
impl fmt::Display for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.verdict())?;
        self.layer_table(f)?;
        for v in &self.violations {
            writeln!(f)?;
            violation_lines(f, v)?;
        }
        if self.n_uncovered > 0 {
            writeln!(f)?;
            writeln!(
                f,
                "declared features not covered ({}): {}",
                self.n_uncovered,
                list(&self.uncovered, self.n_uncovered)
            )?;
        }
        if !self.reasons.is_empty() {
            writeln!(f)?;
            writeln!(f, "reasons:")?;
            for r in &self.reasons {
                writeln!(f, "  - {r}")?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "notes (negative weights that do not break the certificate):"
            )?;
            for n in &self.notes {
                writeln!(f, "  - {n}")?;
            }
        }
        Ok(())
    }
}

impl Certificate {
    /// One line per layer: shape, activation, negative and violating weights.
    fn layer_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.layers.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:>5}  {:>9}  {:>7}  {:<10}  {:>9}  {:>9}  {:>13}",
            "layer", "in", "out", "activation", "negative", "violating", "most negative"
        )?;
        for s in &self.layers {
            let v = self.violations.iter().find(|v| v.layer == s.layer);
            let most = v.map_or("-".to_string(), |v| plain(v.most_negative));
            let name = if s.skip {
                "skip".to_string()
            } else {
                s.layer.to_string()
            };
            writeln!(
                f,
                "{:>5}  {:>9}  {:>7}  {:<10}  {:>9}  {:>9}  {:>13}",
                name, s.n_in, s.n_out, s.activation, s.negative, s.violating, most
            )?;
        }
        Ok(())
    }
}

/// A layer's violating weights: count, most negative, sources and targets.
fn violation_lines(f: &mut fmt::Formatter<'_>, v: &LayerViolation) -> fmt::Result {
    let from = if v.layer == 0 || v.skip {
        "features"
    } else {
        "units"
    };
    let which = if v.skip {
        "skip connection".to_string()
    } else {
        format!("layer {}", v.layer)
    };
    writeln!(
        f,
        "{which}: {} violating weights, most negative {}",
        v.count,
        plain(v.most_negative)
    )?;
    writeln!(
        f,
        "  from {} {from}: {}",
        v.n_sources,
        list(&v.sources, v.n_sources)
    )?;
    writeln!(
        f,
        "  into {} units: {}",
        v.n_targets,
        list(&v.targets, v.n_targets)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn weights_print_as_plain_decimals() {
        assert_eq!(super::plain(-0.26409072), "-0.2641");
        assert_eq!(super::plain(-3.14159e-6), "-0.000003142");
        assert_eq!(super::plain(-12.5), "-12.50");
        assert_eq!(super::plain(-1234.5), "-1234");
    }
}
