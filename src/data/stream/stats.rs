//! The statistics pass: one read of the training shards before training, for what the
//! first step needs: the row count, the positives per label (`pos_weight`), the
//! per-feature maximum (stored in the model: the attack's and verified training's
//! threat), the input scaling, the width, and how every shard is to be read so they all
//! agree (svmlight index base, multi-label classes, CSV class values).

use super::{Schema, ShardReader};
use crate::data::{self, DataInfo, Dataset, Features, IndexBase, LoadOptions};
use crate::error::{Error, Result};
use crate::model::scaler::{ScaleKind, Scaler, ScalerFit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the statistics pass learnt of the training shards.
#[derive(Clone, Debug)]
pub struct Stats {
    pub rows: usize,
    pub schema: Schema,
    /// Positive rows per label, in `schema.label_names` order.
    pub positives: Vec<usize>,
    /// Largest raw value of each feature, as [`crate::pipeline::feature_max`] of all rows.
    pub feature_max: Vec<f32>,
    /// Dense data: the fits of the scalings that need statistics, in [`FITTED`] order.
    fits: Vec<ScalerFit>,
    /// Sparse data: the most negative value (0 when none is).
    sparse_min: f32,
    /// The options every shard is read with (index base, width, classes resolved).
    pub opts: LoadOptions,
    /// What the model remembers of how the data was read.
    pub info: DataInfo,
    /// Bytes of the largest shard in memory, and of all rows in memory.
    pub largest_shard_bytes: usize,
    pub data_bytes: usize,
    /// Whether `fits` saw every training row (after [`Stats::merge`] of several ranks'
    /// passes, only once [`Stats::add_fit_sums`] has added up their sums).
    whole_fits: bool,
}

/// What one rank's statistics pass adds to the run's in data-parallel training over
/// shards ([`Stats::merge`]; the feature maxima travel apart).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Partial {
    pub rows: usize,
    pub cols: usize,
    pub label_names: Vec<String>,
    pub positives: Vec<usize>,
    pub sparse_min: f32,
    pub index_base: Option<IndexBase>,
    pub negative: Option<String>,
    pub largest_shard_bytes: usize,
    pub data_bytes: usize,
}

/// The running sums of one pass.
struct Pass {
    rows: usize,
    first: Option<(Schema, DataInfo)>,
    cols: usize,
    /// Multi-label: positives per class id; binary: one entry, key 0.
    positives: BTreeMap<u64, usize>,
    multilabel: bool,
    feature_max: Vec<f32>,
    fits: Vec<ScalerFit>,
    sparse_min: f32,
    bases: Vec<IndexBase>,
    negative: Option<(PathBuf, String)>,
    largest: usize,
    bytes: usize,
}

/// The scalings fitted on dense data (the others need no statistics or are the
/// per-feature maximum of sparse data).
const FITTED: [ScaleKind; 3] = [
    ScaleKind::Standard,
    ScaleKind::Minmax,
    ScaleKind::Log1pStandard,
];

/// Bytes a data set takes in memory.
pub fn bytes_of(d: &Dataset) -> usize {
    let x = match &d.x {
        Features::Dense(m) => m.values.len() * 4,
        Features::Sparse(m) => m.indptr.len() * 8 + m.indices.len() * 8,
    };
    x + d.y.as_ref().map_or(0, |y| y.len() * 4)
}

impl Stats {
    /// Reads every shard once.
    pub fn gather(paths: &[PathBuf], opts: &LoadOptions, read_ahead: usize) -> Result<Stats> {
        let opts = &LoadOptions {
            shard: true,
            ..opts.clone()
        };
        if paths.len() > 1 && opts.labels_path.is_some() {
            return Err(Error::invalid(
                "one labels file (the `labels` option) cannot label several shards: give \
                 each shard its labels (an .npz with X and y, svmlight or CSV)",
            ));
        }
        let mut pass = run_pass(paths, opts, read_ahead)?;
        let mixed = pass.bases.windows(2).any(|w| w[0] != w[1]);
        if mixed && opts.index_base == IndexBase::Auto {
            // Some shard has index 0: all are 0-based (as one file of them all would be).
            let zero = LoadOptions {
                index_base: IndexBase::Zero,
                ..opts.clone()
            };
            pass = run_pass(paths, &zero, read_ahead)?;
        }
        pass.finish(opts)
    }

    /// The scaling `kind` fitted on all training rows: the bits [`Scaler::fit`] gives on
    /// one matrix of them (sums are added in the same row order).
    pub fn scaler(&self, kind: ScaleKind) -> Result<Scaler> {
        let cols = self.schema.cols;
        if !self.schema.sparse && !self.whole_fits && FITTED.contains(&kind) {
            return Err(Error::invalid(
                "standard, minmax and log1p-standard scaling (the `scale` option) are fitted \
                 on sums over all training rows, and this rank's statistics hold only its own \
                 shards' sums",
            ));
        }
        if !self.schema.sparse {
            return Ok(match FITTED.iter().position(|&k| k == kind) {
                Some(i) => self.fits[i].clone().finish(cols),
                None => Scaler::fit(kind, &Features::Dense(dense_rows(cols)))?,
            });
        }
        // Sparse scalings need the maxima only (and must refuse negative values).
        let mut m = crate::data::CsrMatrix::with_capacity(cols, 2, cols + 1);
        let all: Vec<u32> = (0..cols as u32).collect();
        m.push_row(&all, &self.feature_max);
        if self.sparse_min < 0.0 {
            m.push_row(&[0], &[self.sparse_min]);
        }
        Scaler::fit(kind, &Features::Sparse(m))
    }
}

impl Stats {
    /// This pass's part in the statistics of a run over several ranks' shards.
    pub fn partial(&self) -> Partial {
        Partial {
            rows: self.rows,
            cols: self.schema.cols,
            label_names: self.schema.label_names.clone(),
            positives: self.positives.clone(),
            sparse_min: self.sparse_min,
            index_base: self.info.index_base,
            negative: self.info.negative.clone(),
            largest_shard_bytes: self.largest_shard_bytes,
            data_bytes: self.data_bytes,
        }
    }

    /// Makes this rank's statistics the run's: `parts` are every rank's [`Stats::partial`]
    /// in rank order (taken after all read with one index base), `feature_max` the
    /// features' maxima over all ranks. Fails when the ranks' shards disagree.
    pub fn merge(&mut self, parts: &[Partial], feature_max: Vec<f32>) -> Result<()> {
        let first = &parts[0];
        for (r, p) in parts.iter().enumerate() {
            let other = |what: &str| {
                Error::Mismatch(format!(
                    "the shards of rank {r} have {what} than those of rank 0 (data-parallel \
                     training needs every rank's shards to agree)"
                ))
            };
            if p.label_names != first.label_names {
                return Err(other(&format!(
                    "labels {:?}, other {:?}",
                    p.label_names, first.label_names
                )));
            }
            let negatives = (p.negative.as_ref(), self.info.negative.as_ref());
            if matches!(negatives, (Some(a), Some(b)) if a != b) {
                return Err(other("another negative class value"));
            }
            if !self.schema.sparse && p.cols != first.cols {
                return Err(other("another number of features"));
            }
        }
        self.rows = parts.iter().map(|p| p.rows).sum();
        for (k, pos) in self.positives.iter_mut().enumerate() {
            *pos = parts.iter().map(|p| p.positives[k]).sum();
        }
        self.sparse_min = parts.iter().fold(0f32, |m, p| m.min(p.sparse_min));
        self.largest_shard_bytes = parts
            .iter()
            .map(|p| p.largest_shard_bytes)
            .max()
            .unwrap_or(0);
        self.data_bytes = parts.iter().map(|p| p.data_bytes).sum();
        if let Some(n) = parts.iter().find_map(|p| p.negative.clone()) {
            if self.opts.positive.is_some() {
                self.opts.negative = Some(n.clone());
                self.info.negative = Some(n);
            }
        }
        if self.schema.sparse {
            let cols = parts.iter().map(|p| p.cols).max().unwrap_or(0);
            self.schema.cols = cols;
            self.opts.n_features = Some(cols);
        }
        self.feature_max = feature_max;
        self.whole_fits = parts.len() == 1 || self.schema.sparse;
        Ok(())
    }

    /// Dense data: this pass's scaler statistics as numbers, to be added up over ranks
    /// ([`Stats::add_fit_sums`]); empty for sparse data (its scalings need the maxima only).
    pub fn fit_sums(&self) -> Vec<f64> {
        if self.schema.sparse {
            return Vec::new();
        }
        let cols = self.schema.cols;
        self.fits.iter().flat_map(|f| f.sums(cols)).collect()
    }

    /// Makes the scaler statistics every rank's [`Stats::fit_sums`] (`all`, in rank order)
    /// added up in rank order: the fits then stand for all training rows.
    pub fn add_fit_sums(&mut self, all: &[f64], ranks: usize) {
        if self.schema.sparse || all.is_empty() {
            return;
        }
        self.fits = FITTED.iter().map(|&k| ScalerFit::new(k)).collect();
        for rank in all.chunks(all.len() / ranks) {
            for (fit, part) in self
                .fits
                .iter_mut()
                .zip(rank.chunks(rank.len() / FITTED.len()))
            {
                fit.add_sums(part);
            }
        }
        self.whole_fits = true;
    }
}

/// An empty dense matrix of `cols` columns.
fn dense_rows(cols: usize) -> crate::data::DenseMatrix {
    crate::data::DenseMatrix {
        rows: 0,
        cols,
        values: Vec::new(),
    }
}

/// One read of all shards.
fn run_pass(paths: &[PathBuf], opts: &LoadOptions, read_ahead: usize) -> Result<Pass> {
    let mut pass = Pass {
        rows: 0,
        first: None,
        cols: 0,
        positives: BTreeMap::new(),
        multilabel: false,
        feature_max: Vec::new(),
        fits: FITTED.iter().map(|&k| ScalerFit::new(k)).collect(),
        sparse_min: 0.0,
        bases: Vec::new(),
        negative: None,
        largest: 0,
        bytes: 0,
    };
    let o = opts.clone();
    let mut reader =
        ShardReader::start(paths.to_vec(), read_ahead, move |p| data::load_info(p, &o));
    while let Some((path, shard)) = reader.next_shard() {
        let (d, info) = shard?;
        pass.add(&path, &d, info)?;
    }
    Ok(pass)
}

impl Pass {
    fn add(&mut self, path: &Path, d: &Dataset, info: DataInfo) -> Result<()> {
        let schema = Schema::of(d);
        let Some((first, _)) = &self.first else {
            self.multilabel = d.n_labels > 1
                || (info.kind == Some(data::InputKind::Svmlight) && d.label_names != ["label"]);
            self.first = Some((schema, info.clone()));
            return self.add(path, d, info);
        };
        // Sparse shards may be narrower than the widest; multi-label classes are merged.
        let expected = Schema {
            cols: if first.sparse {
                schema.cols
            } else {
                first.cols
            },
            sparse: first.sparse,
            n_labels: if self.multilabel {
                schema.n_labels
            } else {
                first.n_labels
            },
            label_names: match self.multilabel {
                true => schema.label_names,
                false => first.label_names.clone(),
            },
            feature_names: first.feature_names.clone(),
        };
        expected.check(path, d)?;
        self.count_labels(path, d)?;
        if let Some(b) = info.index_base {
            self.bases.push(b);
        }
        if let Some(n) = info.negative {
            match &self.negative {
                Some((p, other)) if *other != n => {
                    return Err(Error::format(
                        path,
                        format!(
                            "its negative class is `{n}`, that of {} is `{other}`: a label \
                             column holds two values",
                            p.display()
                        ),
                    ))
                }
                Some(_) => {}
                None => self.negative = Some((path.to_path_buf(), n)),
            }
        }
        self.rows += d.rows();
        self.cols = self.cols.max(d.x.cols());
        let max = crate::pipeline::feature_max(&d.x);
        merge_max(&mut self.feature_max, &max, d.x.is_sparse());
        match &d.x {
            Features::Dense(_) => {
                for f in &mut self.fits {
                    f.add(&d.x)?;
                }
            }
            Features::Sparse(m) => {
                let low = m.values.iter().fold(0f32, |a, &v| a.min(v));
                self.sparse_min = self.sparse_min.min(low);
            }
        }
        let b = bytes_of(d);
        self.largest = self.largest.max(b);
        self.bytes += b;
        Ok(())
    }

    /// Adds the shard's positives per label (per class id when multi-label).
    fn count_labels(&mut self, path: &Path, d: &Dataset) -> Result<()> {
        let y = d.y.as_ref().expect("shards are read with labels required");
        let l = d.n_labels;
        for (k, name) in d.label_names.iter().enumerate() {
            let key = match self.multilabel {
                true => name.parse::<u64>().map_err(|_| {
                    Error::format(path, format!("class id `{name}` is not a number"))
                })?,
                false => k as u64,
            };
            let pos = y.iter().skip(k).step_by(l).filter(|&&v| v > 0.5).count();
            *self.positives.entry(key).or_default() += pos;
        }
        Ok(())
    }

    fn finish(mut self, opts: &LoadOptions) -> Result<Stats> {
        let Some((mut schema, mut info)) = self.first.take() else {
            return Err(Error::invalid("no training shards"));
        };
        let mut opts = opts.clone();
        if let Some(&base) = self.bases.first() {
            let base = if self.bases.contains(&IndexBase::Zero) {
                IndexBase::Zero
            } else {
                base
            };
            opts.index_base = base;
            info.index_base = Some(base);
        }
        if let Some((_, n)) = self.negative.take().filter(|_| opts.positive.is_some()) {
            opts.negative = Some(n.clone());
            info.negative = Some(n);
        }
        if schema.sparse {
            schema.cols = self.cols;
            opts.n_features = Some(self.cols);
            self.feature_max.resize(self.cols, 0.0);
        }
        if self.multilabel {
            schema.label_names = self.positives.keys().map(u64::to_string).collect();
            schema.n_labels = schema.label_names.len();
            opts.label_names = Some(schema.label_names.clone());
        }
        Ok(Stats {
            rows: self.rows,
            positives: self.positives.values().copied().collect(),
            feature_max: self.feature_max,
            fits: self.fits,
            sparse_min: self.sparse_min,
            schema,
            opts,
            info,
            largest_shard_bytes: self.largest,
            data_bytes: self.bytes,
            whole_fits: true,
        })
    }
}

/// `acc` becomes the elementwise maximum of `acc` and `max` (a sparse shard's implicit
/// zeros count, as in one matrix of all rows).
fn merge_max(acc: &mut Vec<f32>, max: &[f32], sparse: bool) {
    if max.len() > acc.len() {
        let fill = if sparse { 0.0 } else { f32::NEG_INFINITY };
        acc.resize(max.len(), fill);
    }
    for (a, &m) in acc.iter_mut().zip(max) {
        *a = a.max(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (name, content) into a fresh folder; returns it and their paths.
    fn files(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let paths = files
            .iter()
            .map(|(name, text)| {
                let p = dir.path().join(name);
                std::fs::write(&p, text).unwrap();
                p
            })
            .collect();
        (dir, paths)
    }

    /// The statistics of `shards`, and of `whole` (one file holding them all), read alike.
    fn stats_and_whole(
        shards: &[(&str, &str)],
        whole: &str,
        opts: &LoadOptions,
    ) -> (Stats, Dataset) {
        let ext = shards[0].0.rsplit('.').next().unwrap();
        let (_d, p) = files(shards);
        let (_w, all) = files(&[(&format!("all.{ext}"), whole)]);
        let stats = Stats::gather(&p, opts, 1).unwrap();
        (stats, crate::data::load(&all[0], opts).unwrap())
    }

    #[test]
    fn svmlight_shards_agree_with_one_file_of_them_all() {
        let shards = [("a.svm", "1 3:2 5:1\n0 4:1\n"), ("b.svm", "0 0:1 7:3\n")];
        let all = "1 3:2 5:1\n0 4:1\n0 0:1 7:3\n";
        let (s, whole) = stats_and_whole(&shards, all, &LoadOptions::labelled());
        assert_eq!(s.opts.index_base, IndexBase::Zero, "index 0 in one shard");
        assert_eq!(s.rows, 3);
        assert_eq!(s.schema.cols, whole.x.cols());
        assert_eq!(s.feature_max, crate::pipeline::feature_max(&whole.x));
        assert_eq!(s.positives, vec![1]);
        let multi = [("a.svm", "1,3 1:1\n2 2:1\n"), ("b.svm", "7 1:1\n")];
        let opts = LoadOptions {
            multilabel: true,
            ..LoadOptions::labelled()
        };
        let (s, whole) = stats_and_whole(&multi, "1,3 1:1\n2 2:1\n7 1:1\n", &opts);
        assert_eq!(
            s.schema.label_names, whole.label_names,
            "the union of class ids"
        );
        assert_eq!(s.positives, vec![1, 1, 1, 1]);
    }

    #[test]
    fn dense_scalers_have_the_bits_of_one_matrix() {
        let shards = [
            ("a.csv", "x,y,label\n1.5,2,1\n0.25,7,0\n"),
            ("b.csv", "x,y,label\n3,0.125,0\n9,1,1\n"),
        ];
        let all = "x,y,label\n1.5,2,1\n0.25,7,0\n3,0.125,0\n9,1,1\n";
        let (s, whole) = stats_and_whole(&shards, all, &LoadOptions::labelled());
        for kind in [
            ScaleKind::Standard,
            ScaleKind::Minmax,
            ScaleKind::Log1pStandard,
            ScaleKind::Log1p,
        ] {
            assert_eq!(
                s.scaler(kind).unwrap(),
                Scaler::fit(kind, &whole.x).unwrap()
            );
        }
    }

    #[test]
    fn shards_that_disagree_are_named() {
        let opts = LoadOptions {
            positive: Some("spam".into()),
            ..LoadOptions::labelled()
        };
        let (_d, p) = files(&[
            ("a.csv", "x,label\n1,spam\n2,ham\n"),
            ("b.csv", "x,label\n1,spam\n2,eggs\n"),
        ]);
        let err = Stats::gather(&p, &opts, 1).unwrap_err().to_string();
        assert!(err.contains("b.csv") && err.contains("a.csv"), "{err}");
        let (_d, p) = files(&[("a.csv", "x,label\n1,1\n"), ("b.csv", "z,label\n1,0\n")]);
        let err = Stats::gather(&p, &LoadOptions::labelled(), 1).unwrap_err();
        assert!(err.to_string().contains("b.csv"), "{err}");
    }
}
