//! `nonneg train --autotune`: the search's flags, its progress lines, and the call to
//! [`pipeline::autotune`].

use super::train::TrainArgs;
use super::Context;
use anyhow::{anyhow, Result};
use clap::Args;
use nonneg::data::Dataset;
use nonneg::pipeline::autotune::TuneProgress;
use nonneg::pipeline::{self, AutotuneOptions, FitOptions, Fitted, TuneMetric};
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct AutotuneArgs {
    /// Search the training settings (hidden layers unless --hidden is given, learning
    /// rate, batch size, weight decay, early-stopping patience, dropout with
    /// --autotune-dropout; for dense data the scaling
    /// (the recipe's or quantile) unless --scale is given; for monotone networks the
    /// activation and skip connection unless given) on a stratified 20% of --data (or
    /// --valid, or --autotune-folds), then refit the winner on all of --data for its best
    /// epoch count. The trials and the winner are stored in the model (training.autotune).
    #[arg(long, conflicts_with = "valid_fraction")]
    pub autotune: bool,
    /// Start no new trial after this long: e.g. 90s, 5m, 1h (default 5m without
    /// --autotune-trials). The result then depends on the machine's speed.
    #[arg(long, requires = "autotune", value_parser = parse_duration)]
    pub autotune_duration: Option<Duration>,
    /// What the search maximises on held-out data: auc (ROC AUC) or tpr@fpr (TPR at 1%
    /// FPR, ties broken by AUC).
    #[arg(long, requires = "autotune", value_enum, default_value_t = TuneMetric::Auc)]
    pub autotune_metric: TuneMetric,
    /// Score each trial on this many stratified folds instead of one 20% split.
    #[arg(long, requires = "autotune")]
    pub autotune_folds: Option<usize>,
    /// Run at most this many trials: the same data, options and seed then give the same
    /// model on any machine.
    #[arg(long, requires = "autotune")]
    pub autotune_trials: Option<usize>,
    /// Search hidden dropout and, for sparse data, input dropout too (off: the search keeps
    /// --dropout and --input-dropout, 0 unless given; on SpamAssassin's temporal
    /// validation split searching them chose worse, docs/autotune.md).
    #[arg(long, requires = "autotune", conflicts_with_all = ["dropout", "input_dropout"])]
    pub autotune_dropout: bool,
}

/// `90`, `90s`, `5m`, `1.5h`: a duration in seconds, minutes or hours.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(anyhow!(
                "`{text}`: use a number of s, m or h, e.g. 90s or 5m"
            ))
        }
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| Duration::from_secs_f64(v * scale))
        .ok_or_else(|| anyhow!("`{text}`: use a positive number of s, m or h, e.g. 90s or 5m"))
}

fn options(a: &TrainArgs) -> Result<AutotuneOptions> {
    let t = &a.autotune;
    if t.autotune_trials == Some(0) {
        return Err(anyhow!("--autotune-trials must be at least 1"));
    }
    if t.autotune_folds.is_some_and(|k| k < 2) {
        return Err(anyhow!("--autotune-folds must be at least 2"));
    }
    let own_constraints = a.constraint_config.is_some() || !a.layer_constraint.is_empty();
    Ok(AutotuneOptions {
        metric: t.autotune_metric,
        budget: t.autotune_duration.or(t
            .autotune_trials
            .is_none()
            .then_some(pipeline::autotune::DEFAULT_BUDGET)),
        trials: t.autotune_trials,
        folds: t.autotune_folds,
        valid_fraction: 0.2,
        // Depth is searched unless --hidden (or per-layer constraints) fix it.
        hidden_preset: (a.hidden.is_none() && !own_constraints).then_some(a.constraint),
        search_dropout: t.autotune_dropout,
    })
}

/// Runs the search and the refit, printing a line per trial and the winner on stderr.
pub fn fit(
    opts: &FitOptions,
    data: &Dataset,
    valid: Option<&Dataset>,
    a: &TrainArgs,
    ctx: &Context,
) -> Result<Fitted> {
    let tune = options(a)?;
    let quiet = ctx.quiet;
    let tuned = pipeline::autotune(opts, data, valid, &tune, &mut |p| match p {
        TuneProgress::Start { .. } => {}
        TuneProgress::Done {
            trial,
            result,
            seconds,
        } if !quiet => {
            let outcome = match (&result.error, result.auc) {
                (Some(e), _) => format!("failed: {e}"),
                (None, auc) => format!(
                    "AUC {:.4}, TPR@1%FPR {:.3}, best epoch {}",
                    auc.unwrap_or(f64::NAN),
                    result.tpr_at_fpr_1pct.unwrap_or(f64::NAN),
                    result.best_epoch
                ),
            };
            crate::cli::errln!(
                "trial {:>3}: {} -> {outcome} ({seconds:.1}s)",
                trial + 1,
                result.settings.describe()
            )
            .ok(); // progress only: the summary after it reports a failed write
        }
        _ => {}
    })?;
    if !quiet {
        let w = &tuned.trials[tuned.winner];
        crate::cli::errln!(
            "autotune chose trial {} of {}: {}, {} epochs on all the training data",
            tuned.winner + 1,
            tuned.trials.len(),
            w.settings.describe(),
            w.best_epoch
        )?;
    }
    Ok(tuned.fitted)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
