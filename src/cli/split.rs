//! `nonneg split`: a stratified, seeded train/test split written in the input's format.
//! The featurizer sidecar of a featurized file (`<data>.featurizer.json`) goes with both
//! parts, so a model trained on a part still scores raw samples.

use super::{load_data, Context, DataArgs};
use anyhow::{bail, Result};
use clap::Args;
use nonneg::atomic::Group;
use nonneg::data::{split, write};
use nonneg::features::corpus::{load_sidecar, spec_path_for, stage_sidecar};
use nonneg::features::FeaturizerSpec;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct SplitArgs {
    /// The labelled data to split (CSV, svmlight or npz); its featurizer spec, if any, is
    /// carried to both parts.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// Fraction of rows held out for testing, stratified by label.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the training part goes (same format as --data).
    #[arg(long)]
    pub train_out: PathBuf,
    /// Where the test part goes (same format as --data).
    #[arg(long)]
    pub test_out: PathBuf,
}

/// Copies the selected records of a CSV verbatim (labels keep their spelling, e.g.
/// `spam`), so the parts read exactly like the original.
fn write_csv_rows(src: &Path, rows: &[usize], out: &Path, group: &mut Group) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new().from_path(src)?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(reader.headers()?)?;
    let mut next = rows.iter().peekable();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec?;
        if next.peek() == Some(&&i) {
            w.write_record(&rec)?;
            next.next();
        }
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    group.write_bytes(out, &bytes)?;
    Ok(())
}

/// Stages one part of the split in `group`.
fn write_part(
    src: &Path,
    data: &nonneg::data::Dataset,
    rows: &[usize],
    out: &Path,
    group: &mut Group,
) -> Result<()> {
    let is_csv = |p: &Path| p.to_string_lossy().to_lowercase().ends_with(".csv");
    if is_csv(src) && is_csv(out) {
        write_csv_rows(src, rows, out, group)
    } else if is_csv(out) {
        let part = split::subset(data, rows);
        Ok(group.stage(out, "", |t| write::write_csv(&part, t))?)
    } else {
        let part = split::subset(data, rows);
        Ok(group.stage(out, "", |t| write::write_svmlight(&part, t))?)
    }
}

/// `data`'s featurizer sidecar, checked to be its own; `None` when it has none.
fn read_sidecar(data: &Path) -> Result<Option<FeaturizerSpec>> {
    let path = spec_path_for(data);
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some(load_sidecar(&path, data)?))
}

/// Stages `out`'s sidecar (the input's featurizer, with the fingerprint of the part staged
/// for `out`), or the removal of a stale one left by an earlier run, which `train` would
/// otherwise pick up.
fn write_sidecar(sidecar: Option<&FeaturizerSpec>, out: &Path, group: &mut Group) -> Result<()> {
    match sidecar {
        Some(spec) => stage_sidecar(group, spec, out)?,
        None => group.remove(&spec_path_for(out))?,
    }
    Ok(())
}

pub fn run(a: &SplitArgs, ctx: &Context) -> Result<ExitCode> {
    if !(a.test_fraction > 0.0 && a.test_fraction < 1.0) {
        bail!("--test-fraction must be between 0 and 1");
    }
    for out in [&a.train_out, &a.test_out] {
        nonneg::atomic::check_output(out)?;
    }
    let data = load_data(&a.data, &a.data_args, None, true)?;
    let (train, test) = split::stratified_split(&data, a.test_fraction, a.seed)?;
    if train.is_empty() || test.is_empty() {
        bail!(
            "--test-fraction {} of {} rows leaves {} train and {} test rows: both parts need \
             at least one",
            a.test_fraction,
            data.rows(),
            train.len(),
            test.len()
        );
    }
    let sidecar = read_sidecar(&a.data)?;
    // All four files (two parts, two sidecars) are replaced together or not at all.
    let mut group = Group::new();
    for (rows, out) in [(&train, &a.train_out), (&test, &a.test_out)] {
        // The part first: its sidecar records the part's fingerprint.
        write_part(&a.data, &data, rows, out, &mut group)?;
        write_sidecar(sidecar.as_ref(), out, &mut group)?;
    }
    group.commit()?;
    if !ctx.quiet {
        crate::cli::errln!(
            "{} rows: {} train -> {}, {} test -> {}",
            data.rows(),
            train.len(),
            a.train_out.display(),
            test.len(),
            a.test_out.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
