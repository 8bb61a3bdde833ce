//! Command implementations. Every command that reads data takes the same data options,
//! so a file is read the same way for train, eval and predict.

pub mod attack;
pub mod autotune;
pub mod certify;
pub mod choices;
pub mod command;
pub mod cv;
pub mod demo;
pub mod eval;
pub mod export;
pub mod featurize;
pub mod guard;
pub mod inspect;
pub mod predict;
pub mod progress;
#[cfg(feature = "serve")]
pub mod serve;
pub mod split;
pub mod stream;
pub mod train;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use nonneg::data::{self, Dataset, Features, IndexBase, InputKind, LoadOptions};
use nonneg::features::corpus::{featurize_corpus, SpecSource};
use nonneg::model::Model;
use std::path::{Path, PathBuf};

pub struct Context {
    pub quiet: bool,
}

/// How to read a data file (CSV, svmlight/libsvm, .npz).
#[derive(Args, Clone, Debug, Default)]
pub struct DataArgs {
    /// CSV: the label column (default: the last column).
    #[arg(long)]
    pub label_column: Option<String>,
    /// CSV: the label value of the positive class (e.g. `spam`); the column may hold one
    /// other value, the negative class (default with a model: the model's).
    #[arg(long)]
    pub positive: Option<String>,
    /// CSV with --positive: the label value of the negative class; any third value is an
    /// error (default with a model: the model's; without: the one other value).
    #[arg(long, requires = "positive")]
    pub negative: Option<String>,
    /// scipy.sparse CSR .npz: labels as a .npy file.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// svmlight: feature index base: auto (1-based unless a 0 appears; with a model: the
    /// base of its training data), 0 or 1.
    #[arg(long, value_enum, default_value_t = IndexBase::Auto)]
    pub index_base: IndexBase,
    /// svmlight: labels are comma-separated class ids (multi-label).
    #[arg(long)]
    pub multilabel: bool,
}

impl DataArgs {
    /// The load options; with a model, what it stored of its training data fills in what
    /// the flags leave out (label column, class values, index base).
    pub fn options(&self, model: Option<&Model>, require_labels: bool) -> LoadOptions {
        let info = model.map(|m| &m.input);
        let stored = |f: fn(&nonneg::data::DataInfo) -> Option<String>| info.and_then(f);
        let positive = self
            .positive
            .clone()
            .or_else(|| stored(|i| i.positive.clone()));
        let negative = match &self.positive {
            Some(_) => self.negative.clone(),
            None => stored(|i| i.negative.clone()),
        };
        LoadOptions {
            label_column: self
                .label_column
                .clone()
                .or_else(|| stored(|i| i.label_column.clone())),
            positive,
            negative,
            labels_path: self.labels.clone(),
            index_base: match (self.index_base, info.and_then(|i| i.index_base)) {
                (IndexBase::Auto, Some(b)) => b,
                (b, _) => b,
            },
            multilabel: self.multilabel,
            n_features: model.map(|m| m.mlp.input_dim),
            expected_features: model.and_then(|m| m.feature_names.clone()),
            label_names: model
                .filter(|m| m.mlp.n_labels() > 1)
                .map(|m| m.label_names.clone()),
            require_labels,
            shard: false,
        }
    }
}

/// Reads a data file; with a model, checks that its features are the model's.
pub fn load_data(
    path: &Path,
    args: &DataArgs,
    model: Option<&Model>,
    require_labels: bool,
) -> Result<Dataset> {
    if let Some(m) = model {
        check_format(path, args, m)?;
    }
    let ds = data::load(path, &args.options(model, require_labels))?;
    if let Some(m) = model {
        check_matches(&ds, m, path)?;
    }
    Ok(ds)
}

/// Refuses a file the model would read differently than its training data: svmlight or
/// npz columns for a model of named features (they would be matched by position, and a
/// short row zero-padded), or an index base other than the training data's.
fn check_format(path: &Path, args: &DataArgs, m: &Model) -> Result<()> {
    let kind = InputKind::of(path);
    if let (Some(names), true) = (&m.feature_names, kind != InputKind::Csv) {
        bail!(
            "{}: {} columns have no names, and this model's {} features are named \
             ({}, ...): give a CSV with these columns",
            path.display(),
            kind.name(),
            names.len(),
            names.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if let (Some(stored), true) = (m.input.index_base, args.index_base != IndexBase::Auto) {
        if stored != args.index_base {
            bail!(
                "--index-base {}: the model was trained on {}-based indices; the same \
                 file would score differently",
                u8::from(args.index_base == IndexBase::One),
                u8::from(stored == IndexBase::One)
            );
        }
    }
    Ok(())
}

pub fn check_matches(ds: &Dataset, m: &Model, path: &Path) -> Result<()> {
    if ds.x.cols() != m.mlp.input_dim {
        bail!(nonneg::Error::Mismatch(format!(
            "{} has {} features, the model expects {}",
            path.display(),
            ds.x.cols(),
            m.mlp.input_dim
        )));
    }
    if ds.y.is_some() && ds.n_labels != m.mlp.n_labels() {
        bail!(nonneg::Error::Mismatch(format!(
            "{} has {} labels, the model predicts {}",
            path.display(),
            ds.n_labels,
            m.mlp.n_labels()
        )));
    }
    Ok(())
}

pub fn load_model(path: &Path) -> Result<Model> {
    nonneg::model::io::load(path).with_context(|| "cannot load the model".to_string())
}

/// Writes text to a file atomically, or to stdout for `-`/None.
/// The operating point of this run: `eval` and `predict` decide at the model's threshold
/// unless told otherwise.
#[derive(Args, Clone, Debug, Default)]
pub struct ThresholdArgs {
    /// Decide at this logit instead of the model's threshold.
    #[arg(
        long,
        value_name = "LOGIT",
        conflicts_with = "threshold_fpr",
        allow_negative_numbers = true
    )]
    pub threshold: Option<f32>,
    /// Decide at the threshold that gives this false positive rate on the negatives of the
    /// evaluated data (eval: optimistic, the data chose it; `train --threshold-fpr` chooses on
    /// validation data) or of --calibration (predict).
    #[arg(long, value_name = "FPR")]
    pub threshold_fpr: Option<f64>,
}

/// Applies `--threshold` or `--threshold-fpr` (on the negatives of `data`) to the model for
/// this run; the chosen thresholds are said on stderr unless `quiet`.
pub fn operating_point(
    model: &mut Model,
    t: &ThresholdArgs,
    data: Option<&Dataset>,
    quiet: bool,
) -> Result<()> {
    if let Some(v) = t.threshold {
        model.set_threshold(v)?;
    }
    if let (Some(f), Some(data)) = (t.threshold_fpr, data) {
        let th = model.set_threshold_for_fpr(data, f)?;
        if !quiet {
            errln!("threshold (logit) for FPR {f}: {th:?}")?;
        }
    }
    Ok(())
}

pub fn write_output(path: Option<&Path>, text: &str) -> Result<()> {
    match path {
        Some(p) if p != Path::new("-") => Ok(nonneg::atomic::write_bytes(p, text.as_bytes())?),
        _ => print_to(std::io::stdout().lock(), "standard output", text),
    }
}

/// Writes `text` and flushes, naming the stream on failure (a full disk, a closed pipe):
/// `println!` would panic instead.
pub fn print_to(mut w: impl std::io::Write, name: &str, text: &str) -> Result<()> {
    w.write_all(text.as_bytes())
        .and_then(|()| w.flush())
        .with_context(|| format!("cannot write to {name}"))
}

/// `println!` that returns an error instead of panicking when stdout cannot be written.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::print_to(std::io::stdout().lock(), "standard output", &format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that returns an error instead of panicking when stderr cannot be written.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::print_to(std::io::stderr().lock(), "standard error", &format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use {errln, outln};

/// Raw samples (`--class NAME=PATH`, or plain paths) featurized with the model's own
/// featurizer, exactly as `nonneg featurize` did for its training data. Labels are 1 for
/// samples of `positive`.
pub fn featurize_raw(
    model: &Model,
    classes: &[(String, PathBuf)],
    positive: &str,
    quiet: bool,
) -> Result<(Dataset, Vec<String>)> {
    let Some(spec) = model.featurizer.clone() else {
        bail!("this model has no featurizer: it takes feature files (--data), not raw samples");
    };
    let corpus = featurize_corpus(classes, positive, SpecSource::Fixed(spec))?;
    if !quiet {
        crate::cli::errln!("{}", corpus.summary)?;
    }
    let names = corpus.names.clone();
    let ds = Dataset {
        x: Features::Sparse(corpus.x),
        y: Some(corpus.y),
        n_labels: 1,
        label_names: model.label_names.clone(),
        feature_names: None,
        source: "raw samples".into(),
    };
    check_matches(&ds, model, Path::new("raw samples"))?;
    Ok((ds, names))
}

/// The library names an option by its field ("the `label_column` load option", "the `lr`
/// option"); the command line names the flag (`--label-column`, `--lr`).
pub fn with_flag_names(message: &str) -> String {
    const START: &str = "the `";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(START) {
        let field_start = i + START.len();
        let after = &rest[field_start..];
        let field_len = after.find('`').unwrap_or(after.len());
        let field = &after[..field_len];
        let tail = &after[field_len..];
        let suffix = ["` load option", "` option"]
            .into_iter()
            .find(|s| tail.starts_with(s));
        match suffix {
            Some(suffix) if !field.is_empty() && !field.contains(' ') => {
                out.push_str(&rest[..i]);
                out.push_str("--");
                out.push_str(&field.replace('_', "-"));
                rest = &tail[suffix.len()..];
            }
            _ => {
                out.push_str(&rest[..field_start]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn load_option_fields_become_flags() {
        assert_eq!(
            super::with_flag_names(
                "a.csv:3: label `x` (check the `positive` load option); the `label_column` load option"
            ),
            "a.csv:3: label `x` (check --positive); --label-column"
        );
        assert_eq!(
            super::with_flag_names("the `a b` load option"),
            "the `a b` load option"
        );
    }
}
