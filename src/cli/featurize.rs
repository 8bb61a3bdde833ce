//! `nonneg featurize`: raw samples to an svmlight file plus its featurizer spec.
//!
//! ```text
//! nonneg featurize text  --class spam=PATH --class ham=PATH ... --out data.svm
//!     [--positive NAME] [--build-vocab V.json --min-df 2 --max-features N | --vocab V.json
//!     | --hash-bits B] [--input-kind auto|email|text] [--subject-words]
//!     [--header-tokens] [--url-hosts] [--counts --cap K]
//! nonneg featurize bytes --class malicious=PATH --class benign=PATH --out data.svm
//!     [--positive NAME] [--ngram 4] [--hash-bits 20] [--imports]
//! nonneg featurize text|bytes ... --out DIR/part --shard-rows N   # DIR/part-00000.svm, ...
//! ```
//!
//! PATH is a directory (recursive), a file, or a `.tar` / `.tar.gz` / `.tgz` / `.tar.bz2`
//! archive, streamed member by member (never unpacked nor held whole). `--class` may repeat with the same NAME. The positive class (label 1) defaults
//! to the first `--class` name. Besides `--out`, the spec is written to
//! `<out>.featurizer.json`; either that file or `--build-vocab`'s can be passed to
//! `--vocab` to featurize test data with the same features. The featurizing itself is
//! [`nonneg::features::corpus`].

use super::Context;
use anyhow::{bail, Context as _};
use nonneg::features::bytes::BytesSpec;
use nonneg::features::corpus::{featurize_corpus, spec_path_for, write_corpus, SpecSource};
use nonneg::features::shards::{featurize_to_shards, shard_path};
use nonneg::features::text::{InputKind, TextOptions, TextSpec, ValueMode, Vocabulary};
use nonneg::features::{FeaturizerKind, FeaturizerSpec};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug, Clone)]
pub struct FeaturizeArgs {
    #[command(subcommand)]
    pub kind: FeaturizeKind,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum FeaturizeKind {
    /// Emails or plain-text files: binary (or capped-count) token presence.
    Text(TextArgs),
    /// Any files (executables): hashed byte n-gram presence, optionally PE/ELF imports.
    Bytes(BytesArgs),
}

/// Arguments common to every featurizer.
#[derive(clap::Args, Debug, Clone)]
pub struct CorpusArgs {
    /// A class and where its samples are: NAME=PATH (directory, file, .tar, .tar.gz,
    /// .tgz, .tar.bz2; archives are streamed, not unpacked). Repeat for more classes or
    /// more paths of one class.
    #[arg(long = "class", value_name = "NAME=PATH", required = true, value_parser = parse_class)]
    pub classes: Vec<(String, PathBuf)>,
    /// Output svmlight file (1-based indices, labels 0/1); the spec goes beside it as
    /// `<OUT>.featurizer.json`. With --shard-rows: the shards' prefix.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Write shards `<OUT>-00000.svm`, `<OUT>-00001.svm`, ... of N rows each (the last
    /// may have fewer), in memory bounded by one shard, not the corpus; the spec goes
    /// beside the first shard, where `train --data '<OUT>-*.svm'` finds it.
    #[arg(long, value_name = "N")]
    pub shard_rows: Option<usize>,
    /// The class labelled 1 (default: the first --class name).
    #[arg(long, value_name = "NAME")]
    pub positive: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct TextArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// Build the vocabulary from these samples and also write the spec to this file.
    #[arg(long, value_name = "V.json", conflicts_with = "vocab")]
    pub build_vocab: Option<PathBuf>,
    /// Use the vocabulary and settings of a saved spec (from --build-vocab or a
    /// .featurizer.json) instead of building one.
    #[arg(long, value_name = "V.json", conflicts_with_all = ["hash_bits", "min_df", "max_features"])]
    pub vocab: Option<PathBuf>,
    /// Keep tokens found in at least this many samples [default: 2].
    #[arg(long, value_name = "N")]
    pub min_df: Option<usize>,
    /// Keep only the N tokens with the highest document frequency (ties by token).
    #[arg(long, value_name = "N")]
    pub max_features: Option<usize>,
    /// Hash tokens into 2^B features instead of building a vocabulary.
    #[arg(long, value_name = "B", conflicts_with_all = ["min_df", "max_features"])]
    pub hash_bits: Option<u32>,
    /// Which samples are emails: auto (those starting with a mail header block naming
    /// From/To/Subject/Date/Received/Message-ID/...), email (any `Word: ...` first line),
    /// text (none) [default: auto].
    #[arg(long, value_enum, value_name = "KIND")]
    pub input_kind: Option<InputKind>,
    /// Count an email's Subject words as body words too (off by default: it did not
    /// raise validation AUC on SpamAssassin).
    #[arg(long)]
    pub subject_words: bool,
    /// Add Subject/From/To tokens as subject:word, from:word, to:word [default: on when
    /// every sample is an email, see --no-email-defaults].
    #[arg(long)]
    pub header_tokens: bool,
    /// Add the host of every http(s) URL as host:example.com [default: on when every
    /// sample is an email].
    #[arg(long)]
    pub url_hosts: bool,
    /// Add the tokens of every raw header line as hdr:word [default: on when every sample
    /// is an email].
    #[arg(long)]
    pub raw_headers: bool,
    /// Without --header-tokens, --url-hosts or --raw-headers, all three are on when every
    /// sample is an email (they raised validation AUC on SpamAssassin); this keeps them off.
    /// Plain text is never affected.
    #[arg(long)]
    pub no_email_defaults: bool,
    /// Feature value = number of occurrences capped at --cap (default: presence 0/1).
    #[arg(long)]
    pub counts: bool,
    /// Cap for --counts [default: 10].
    #[arg(long, value_name = "K", requires = "counts")]
    pub cap: Option<u32>,
    /// TF-IDF weighting. NOT add-monotone: certify will refuse models trained on it.
    #[arg(long)]
    pub tfidf: bool,
    /// L2-normalise rows. NOT add-monotone: certify will refuse models trained on it.
    #[arg(long)]
    pub normalize: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct BytesArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// n-gram length in bytes.
    #[arg(long, default_value_t = 4)]
    pub ngram: usize,
    /// Hash into 2^B features.
    #[arg(long, default_value_t = 20, value_name = "B")]
    pub hash_bits: u32,
    /// Also hash PE/ELF import names (import:kernel32.dll!createfilea) into the space.
    #[arg(long)]
    pub imports: bool,
}

/// `--class NAME=PATH` (also for `eval` and `attack` on raw samples).
pub fn parse_class(s: &str) -> std::result::Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH, got {s:?}"))?;
    if name.is_empty() {
        return Err(format!("empty class name in {s:?}"));
    }
    if path.is_empty() {
        return Err(format!("empty path in {s:?}"));
    }
    Ok((name.to_owned(), PathBuf::from(path)))
}

/// Runs `nonneg featurize ...`; `--quiet` keeps the summary off stderr (not warnings).
pub fn run(args: &FeaturizeArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let (corpus_args, source, vocab_out) = match &args.kind {
        FeaturizeKind::Text(t) => (&t.corpus, text_source(t)?, t.build_vocab.clone()),
        FeaturizeKind::Bytes(b) => {
            let spec = FeaturizerSpec::bytes(BytesSpec {
                ngram: b.ngram,
                hash_bits: b.hash_bits,
                imports: b.imports,
            });
            spec.validate()?;
            (&b.corpus, SpecSource::Fixed(spec), None)
        }
    };
    let positive = corpus_args
        .positive
        .clone()
        .unwrap_or_else(|| corpus_args.classes[0].0.clone());
    if let Some(rows) = corpus_args.shard_rows {
        return run_sharded(corpus_args, &positive, source, rows, vocab_out, ctx);
    }
    for out in [&corpus_args.out, &spec_path_for(&corpus_args.out)] {
        nonneg::atomic::check_output(out)?;
    }
    let start = std::time::Instant::now();
    let spinner = super::progress::Spinner::start(ctx.quiet, "featurizing");
    let corpus = featurize_corpus(&corpus_args.classes, &positive, source);
    spinner.finish();
    let corpus = corpus?;
    warn_if_not_monotone(&corpus.spec)?;
    let spec_path = write_corpus(&corpus_args.out, &corpus)
        .with_context(|| format!("writing {}", corpus_args.out.display()))?;
    save_vocab(&corpus.spec, vocab_out.as_deref())?;
    if ctx.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    crate::cli::errln!("{}", corpus.summary)?;
    crate::cli::errln!(
        "wrote {} ({} rows, {} non-zeros) and {} in {:.2}s",
        corpus_args.out.display(),
        corpus.x.rows,
        corpus.x.indices.len(),
        spec_path.display(),
        start.elapsed().as_secs_f64()
    )?;
    if let Some(v) = vocab_out {
        crate::cli::errln!("vocabulary/spec: {} (use with --vocab)", v.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `featurize ... --shard-rows N`: the corpus in shards of N rows (see
/// [`nonneg::features::shards`]).
fn run_sharded(
    corpus_args: &CorpusArgs,
    positive: &str,
    source: SpecSource,
    rows: usize,
    vocab_out: Option<PathBuf>,
    ctx: &Context,
) -> anyhow::Result<ExitCode> {
    let first = shard_path(&corpus_args.out, 0);
    for out in [&first, &spec_path_for(&first)] {
        nonneg::atomic::check_output(out)?;
    }
    let start = std::time::Instant::now();
    let spinner = super::progress::Spinner::start(ctx.quiet, "featurizing");
    let shards = featurize_to_shards(
        &corpus_args.classes,
        positive,
        source,
        &corpus_args.out,
        rows,
    );
    spinner.finish();
    // Its errors name the sample or the shard.
    let shards = shards?;
    warn_if_not_monotone(&shards.spec)?;
    save_vocab(&shards.spec, vocab_out.as_deref())?;
    if ctx.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    crate::cli::errln!("{}", shards.summary)?;
    crate::cli::errln!(
        "wrote {} shards {}-00000.svm ... ({} rows, {} non-zeros, at most {rows} a shard) and {} in {:.2}s",
        shards.paths.len(),
        corpus_args.out.display(),
        shards.summary.n_samples,
        shards.nnz,
        shards.sidecar.display(),
        start.elapsed().as_secs_f64()
    )?;
    if let Some(v) = vocab_out {
        crate::cli::errln!("vocabulary/spec: {} (use with --vocab)", v.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--build-vocab FILE`: the featurizer spec, for `--vocab` on later corpora.
fn save_vocab(spec: &FeaturizerSpec, out: Option<&Path>) -> anyhow::Result<()> {
    if let Some(v) = out {
        spec.save(v)
            .with_context(|| format!("writing the vocabulary {}", v.display()))?;
    }
    Ok(())
}

/// Warns (stderr, even with --quiet) that certify will refuse models on this featurizer.
fn warn_if_not_monotone(spec: &FeaturizerSpec) -> anyhow::Result<()> {
    if let Err(why) = spec.add_monotone() {
        crate::cli::errln!("warning: this featurizer is NOT add-monotone ({why}); certify will refuse models trained on it")?;
    }
    Ok(())
}

/// The text featurizer the flags ask for: a saved spec (`--vocab`), hashing, or a
/// vocabulary built from the samples.
fn text_source(t: &TextArgs) -> anyhow::Result<SpecSource> {
    let value = if t.counts {
        ValueMode::Counts {
            cap: t.cap.unwrap_or(10),
        }
    } else {
        ValueMode::Binary
    };
    let options = TextOptions {
        input_kind: t.input_kind.unwrap_or(InputKind::Auto),
        subject_words: t.subject_words,
        header_tokens: t.header_tokens,
        url_hosts: t.url_hosts,
        raw_headers: t.raw_headers,
        value,
        tfidf: t.tfidf,
        normalize: t.normalize,
    };
    if let Some(vpath) = &t.vocab {
        let spec = FeaturizerSpec::load(vpath)?;
        let FeaturizerKind::Text(ts) = &spec.kind else {
            bail!("{} is not a text featurizer spec", vpath.display());
        };
        let mut flags: Vec<&str> = options
            .requested_but_not_in(&ts.options)
            .iter()
            .map(|&field| setting_flag(field))
            .collect();
        if t.input_kind.is_some_and(|k| k != ts.options.input_kind) {
            flags.push("--input-kind");
        }
        if !flags.is_empty() {
            bail!(
                "{} differ from the settings in {} (the spec's settings are used with --vocab; drop the flags)",
                flags.join(", "),
                vpath.display()
            );
        }
        return Ok(SpecSource::Fixed(spec));
    }
    if let Some(bits) = t.hash_bits {
        let spec = FeaturizerSpec::text(TextSpec {
            options,
            vocabulary: Vocabulary::Hashing { bits },
            idf: None,
        });
        spec.validate()?;
        return Ok(SpecSource::Fixed(spec));
    }
    let explicit = t.header_tokens || t.url_hosts || t.raw_headers;
    Ok(SpecSource::BuildVocabulary {
        options,
        min_df: t.min_df.unwrap_or(2),
        max_features: t.max_features,
        email_defaults: !explicit && !t.no_email_defaults,
    })
}

/// The flag that sets a [`TextOptions`] field.
fn setting_flag(field: &'static str) -> &'static str {
    match field {
        "subject_words" => "--subject-words",
        "header_tokens" => "--header-tokens",
        "url_hosts" => "--url-hosts",
        "raw_headers" => "--raw-headers",
        "value" => "--counts/--cap",
        "tfidf" => "--tfidf",
        "normalize" => "--normalize",
        other => other,
    }
}
