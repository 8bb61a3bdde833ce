//! Command implementations. Every command that reads data takes the same data options,
//! so a file is read the same way for train, eval and predict.

pub mod attack;
pub mod autotune;
pub mod certify;
pub mod choices;
pub mod cv;
pub mod demo;
pub mod eval;
pub mod featurize;
pub mod inspect;
pub mod predict;
#[cfg(feature = "serve")]
pub mod serve;
pub mod split;
pub mod train;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use nonneg::data::{self, Dataset, Features, IndexBase, LoadOptions};
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
    /// CSV: the label value of the positive class (e.g. `spam`); others are negative.
    #[arg(long)]
    pub positive: Option<String>,
    /// scipy.sparse CSR .npz: labels as a .npy file.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// svmlight: feature index base: auto (1-based unless a 0 appears), 0 or 1.
    #[arg(long, value_enum, default_value_t = IndexBase::Auto)]
    pub index_base: IndexBase,
    /// svmlight: labels are comma-separated class ids (multi-label).
    #[arg(long)]
    pub multilabel: bool,
}

impl DataArgs {
    pub fn options(&self, model: Option<&Model>, require_labels: bool) -> LoadOptions {
        LoadOptions {
            label_column: self.label_column.clone(),
            positive: self.positive.clone(),
            labels_path: self.labels.clone(),
            index_base: self.index_base,
            multilabel: self.multilabel,
            n_features: model.map(|m| m.mlp.input_dim),
            expected_features: model.and_then(|m| m.feature_names.clone()),
            label_names: model
                .filter(|m| m.mlp.n_labels() > 1)
                .map(|m| m.label_names.clone()),
            require_labels,
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
    let ds = data::load(path, &args.options(model, require_labels))?;
    if let Some(m) = model {
        check_matches(&ds, m, path)?;
    }
    Ok(ds)
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
pub fn write_output(path: Option<&Path>, text: &str) -> Result<()> {
    match path {
        Some(p) if p != Path::new("-") => Ok(nonneg::atomic::write_bytes(p, text.as_bytes())?),
        _ => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

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
        eprintln!("{}", corpus.summary);
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
