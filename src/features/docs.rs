//! Featurizing documents handed over one by one, as the Python `TextFeaturizer` does:
//! texts already in memory, or paths (a file, a folder or an archive, each sample a row).
//! The analysis, vocabulary and values are [`super::corpus`]'s, so a spec fitted here
//! equals `nonneg featurize text`'s on the same samples.

use super::corpus::{featurize_all, resolve_email_defaults, SpecSource};
use super::source::{self, Sample, SampleData};
use super::FeaturizerSpec;
use crate::data::CsrMatrix;
use crate::error::Result;
use std::path::PathBuf;

/// One document argument.
pub enum Doc {
    /// A raw sample (an email or a text).
    Raw(Vec<u8>),
    /// Every sample under a file, folder or archive.
    Path(PathBuf),
}

/// Featurizes `docs` with the spec `source` gives (built from these documents when asked),
/// returning the spec and one row per sample, in order.
pub fn featurize_docs(source: SpecSource, docs: Vec<Doc>) -> Result<(FeaturizerSpec, CsrMatrix)> {
    let mut samples = Vec::with_capacity(docs.len());
    for (i, d) in docs.into_iter().enumerate() {
        match d {
            Doc::Raw(bytes) => samples.push((
                0,
                Sample {
                    name: format!("document {i}"),
                    data: SampleData::Memory(bytes),
                },
            )),
            Doc::Path(p) => samples.extend(source::list(&p)?.samples.into_iter().map(|s| (0, s))),
        }
    }
    let (source, _) = resolve_email_defaults(spec_checked(source)?, &samples)?;
    let (spec, rows) = featurize_all(source, &samples)?;
    let nnz = rows.iter().map(|r| r.indices.len()).sum();
    let mut x = CsrMatrix::with_capacity(spec.n_features(), rows.len(), nnz);
    for r in &rows {
        x.push_row(&r.indices, &r.values);
    }
    Ok((spec, x))
}

fn spec_checked(source: SpecSource) -> Result<SpecSource> {
    if let SpecSource::Fixed(spec) = &source {
        spec.validate()?;
    }
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::text::{InputKind, TextOptions};

    fn build() -> SpecSource {
        SpecSource::BuildVocabulary {
            options: TextOptions {
                input_kind: InputKind::Auto,
                ..TextOptions::default()
            },
            min_df: 1,
            max_features: None,
            email_defaults: false,
        }
    }

    #[test]
    fn texts_and_paths_give_the_same_rows() {
        let docs = ["free money now", "meeting notes attached"];
        let raw = docs
            .iter()
            .map(|d| Doc::Raw(d.as_bytes().to_vec()))
            .collect();
        let (spec, x) = featurize_docs(build(), raw).unwrap();
        assert_eq!(x.rows, 2);
        assert_eq!(x.cols, 6, "{:?}", spec.feature_names());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), docs[0]).unwrap();
        let (_, from_path) = featurize_docs(
            SpecSource::Fixed(spec),
            vec![Doc::Path(dir.path().join("a.txt"))],
        )
        .unwrap();
        assert_eq!(from_path.row(0), x.row(0));
    }
}
