//! Featurizing documents handed over one by one, as the Python `TextFeaturizer` does:
//! texts already in memory, or paths (a file, a folder or an archive, each sample a row;
//! an archive is streamed as `nonneg featurize` streams it).
//! The analysis, vocabulary and values are [`super::corpus`]'s, so a spec fitted here
//! equals `nonneg featurize text`'s on the same samples.

use super::corpus::{featurize_inputs, SpecSource};
use super::inputs::Inputs;
use super::source::{Sample, SampleData};
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
    let mut inputs = Inputs::default();
    for (i, d) in docs.into_iter().enumerate() {
        match d {
            Doc::Raw(bytes) => inputs.push_sample(
                0,
                Sample {
                    name: format!("document {i}"),
                    data: SampleData::Memory(bytes),
                },
            ),
            Doc::Path(p) => inputs.push_path(0, &p)?,
        }
    }
    // One unnamed class: the labels are not returned.
    let class = [(String::new(), PathBuf::new())];
    let corpus = featurize_inputs(&class, "", inputs, spec_checked(source)?)?;
    Ok((corpus.spec, corpus.x))
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

    #[test]
    fn an_archive_gives_its_folders_rows() {
        let dir = tempfile::tempdir().unwrap();
        let texts = ["b free money", "a meeting notes", "c free notes"];
        let tar_path = dir.path().join("d.tar");
        let mut tar = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        std::fs::create_dir(dir.path().join("d")).unwrap();
        for t in texts {
            let name = format!("{}.txt", &t[..1]);
            std::fs::write(dir.path().join("d").join(&name), t).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(t.len() as u64);
            h.set_mode(0o644);
            tar.append_data(&mut h, format!("d/{name}"), t.as_bytes())
                .unwrap();
        }
        tar.finish().unwrap();
        let raw = Doc::Raw(b"free free".to_vec());
        let (_, folder) = featurize_docs(build(), vec![Doc::Path(dir.path().join("d"))]).unwrap();
        let (_, archive) = featurize_docs(build(), vec![Doc::Path(tar_path), raw]).unwrap();
        assert_eq!(archive.rows, 4);
        for r in 0..3 {
            assert_eq!(archive.row(r), folder.row(r));
        }
        assert_eq!(archive.row(3).0.len(), 1);
    }
}
