//! The experiment behind `nonneg demo`: unconstrained vs last-layer-NonNeg vs monotone
//! models on bundled data, each trained with `nonneg train`'s defaults for its preset.
//!
//! SpamAssassin: featurize the corpus straight from its archives (vocabulary from the
//! older `*-1` collections only, test on the newer `*-2`), train the three models, certify
//! each and attack each with the white-box greedy feature-addition attack, at the model's
//! threshold and at a common operating point (1% false positives on the test ham).
//! Spambase: the tabular version, without attacks.
//!
//! Each step is a function so the caller can report between them (the CLI prints).

use super::budget_eval::{self, BudgetDetection};
use super::{fit, label_metrics, FitOptions, Fitted};
use crate::attack::{self, AttackConfig, BudgetResult, Method};
use crate::certify::budget::Budget;
use crate::data::{self, split, CsrMatrix, Dataset, Features, LoadOptions};
use crate::error::{Error, Result};
use crate::features::corpus::{featurize_corpus, SpecSource};
use crate::features::text::{TextOptions, ValueMode};
use crate::features::FeaturizerSpec;
use crate::train::{Preset, Progress, TrainConfig};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The three models of the comparison, by name.
pub const MODELS: [(&str, Preset); 3] = [
    ("unconstrained", Preset::None),
    ("last-nonneg", Preset::LastNonneg),
    ("monotone", Preset::Monotone),
];

/// `nonneg train`'s defaults for `preset` (64-32 hidden units; the recipe decides the
/// rest for the input kind: for the monotone model tanh, a skip connection, and on sparse
/// input L2 1e-2).
pub fn options(preset: Preset, seed: u64) -> FitOptions {
    let mut cfg = TrainConfig::new(vec![64, 32], preset);
    cfg.seed = seed;
    FitOptions::new(cfg)
}

/// The verified-trained model the SpamAssassin demo adds: `--hidden '' --robust-budget
/// 150 --lr 1e-2` (docs/verified-training.md; the linear one, whose certificate is exact,
/// because it trains in seconds where the 64-unit MLP takes minutes).
pub const VERIFIED: &str = "verified";

pub fn verified_options(seed: u64) -> FitOptions {
    let mut cfg = TrainConfig::new(vec![], Preset::None);
    cfg.seed = seed;
    cfg.optimizer.lr = 1e-2;
    cfg.robust = Some(crate::train::RobustConfig::new(150));
    FitOptions::new(cfg)
}

/// SpamAssassin featurized: train on `*-1`, test on `*-2`.
pub struct SpamAssassin {
    pub train: Dataset,
    pub test: Dataset,
    pub spec: FeaturizerSpec,
    /// Time spent featurizing.
    pub seconds: f64,
}

/// Looks for `<name>.tar.gz`, then `<name>/`.
fn collection(dir: &Path, name: &str) -> Result<PathBuf> {
    for p in [dir.join(format!("{name}.tar.gz")), dir.join(name)] {
        if p.exists() {
            return Ok(p);
        }
    }
    Err(Error::invalid(format!(
        "the demo needs the SpamAssassin collection {name} in {}",
        dir.display()
    )))
}

fn sparse_dataset(x: CsrMatrix, y: Vec<f32>, source: &str) -> Dataset {
    Dataset {
        x: Features::Sparse(x),
        y: Some(y),
        n_labels: 1,
        label_names: vec!["spam".into()],
        feature_names: None,
        source: source.into(),
    }
}

/// Featurizes the collections in `dir`: binary token presence with header, URL-host and
/// raw-header tokens, the vocabulary (min_df 2) from the training collections only.
pub fn load_spamassassin(dir: &Path) -> Result<SpamAssassin> {
    let c = |class: &str, name: &str| -> Result<(String, PathBuf)> {
        Ok((class.to_string(), collection(dir, name)?))
    };
    let train_classes = [
        c("spam", "spam-1")?,
        c("ham", "easy-ham-1")?,
        c("ham", "hard-ham-1")?,
    ];
    let test_classes = [c("spam", "spam-2")?, c("ham", "easy-ham-2")?];
    let options = TextOptions {
        header_tokens: true,
        url_hosts: true,
        raw_headers: true,
        value: ValueMode::Binary,
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let vocabulary = SpecSource::BuildVocabulary {
        options,
        min_df: 2,
        max_features: None,
        email_defaults: false,
    };
    let train = featurize_corpus(&train_classes, "spam", vocabulary)?;
    let spec = train.spec.clone();
    let test = featurize_corpus(&test_classes, "spam", SpecSource::Fixed(spec.clone()))?;
    Ok(SpamAssassin {
        train: sparse_dataset(train.x, train.y, "spamassassin *-1"),
        test: sparse_dataset(test.x, test.y, "spamassassin *-2"),
        spec,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// What the experiment does with each SpamAssassin model.
pub struct AttackPlan {
    /// Greedy attack budgets (features added).
    pub budgets: Vec<usize>,
    /// Attack the first this many detected spam emails (`None`: all).
    pub limit: Option<usize>,
    pub seed: u64,
}

/// One SpamAssassin model's numbers.
pub struct SpamAssassinRow {
    pub name: &'static str,
    pub fitted: Fitted,
    pub auc: f64,
    pub accuracy: f64,
    pub tpr1: f64,
    pub certified: bool,
    pub evasion: Vec<BudgetResult>,
    /// At the test thresholds giving 1% and 0.1% false positives ([`budget_eval::FPRS`]):
    /// clean, attacked and certified TPR at the plan's budgets and `inf`, as `eval
    /// --budget` reports them (the attack on every detected spam not certified).
    pub detection: Vec<BudgetDetection>,
    /// Time spent attacking and certifying.
    pub attack_seconds: f64,
}

impl SpamAssassinRow {
    /// Share of all test spam detected at the 1%-FPR threshold without an attack.
    pub fn detected_at_1pct(&self) -> f64 {
        self.detection[0].clean
    }

    /// Share of all test spam still detected after the greedy attack with budget number
    /// `k`, at the 1%-FPR threshold.
    pub fn detected_under_attack(&self, k: usize) -> f64 {
        self.detection[0].points[k].empirical.unwrap_or(f64::NAN)
    }
}

/// Trains model `name` with `opts`, saves it as `out_dir/spamassassin-<name>.safetensors`
/// (with its featurizer), evaluates, certifies and attacks it on the test collections.
pub fn spamassassin_model(
    name: &'static str,
    mut opts: FitOptions,
    data: &SpamAssassin,
    plan: &AttackPlan,
    out_dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<SpamAssassinRow> {
    opts.featurizer = Some(data.spec.clone());
    let fitted = fit(&opts, &data.train, None, progress)?;
    let model = &fitted.model;
    let path = out_dir.join(format!("spamassassin-{name}.safetensors"));
    crate::model::io::save(model, &path)?;
    let test = &data.test;
    let y = test.y.as_ref().expect("featurized corpora have labels");
    let logits = model.logits(&test.x);
    let m = &label_metrics(model, &logits, y)[0];
    let certified = crate::certify::certify(model, None).certified;
    let mut acfg = AttackConfig::new(Method::Greedy, plan.budgets.clone());
    acfg.seed = plan.seed;
    acfg.limit = plan.limit;
    let report = attack::attack(model, test, &acfg)?;
    // Common operating points (1% and 0.1% false positives on the test ham): the same
    // attack, and the budget certificates.
    let t0 = std::time::Instant::now();
    let budgets: Vec<Budget> = plan
        .budgets
        .iter()
        .map(|&k| Budget::Finite(k))
        .chain([Budget::Unbounded])
        .collect();
    let detection = budget_eval::budget_detection_with(model, test, &budgets, true)?;
    Ok(SpamAssassinRow {
        name,
        auc: m.auc.unwrap_or(f64::NAN),
        accuracy: m.accuracy,
        tpr1: m.tpr_at_fpr_1pct.unwrap_or(f64::NAN),
        certified,
        evasion: report.results,
        detection,
        attack_seconds: report.seconds + t0.elapsed().as_secs_f64(),
        fitted,
    })
}

/// The `summary.json` object: every model's numbers.
pub fn summary_json(rows: &[SpamAssassinRow], budgets: &[usize]) -> Value {
    let models: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "model": r.name, "accuracy": r.accuracy, "auc": r.auc,
                "tpr_at_fpr_1pct": r.tpr1, "certified": r.certified, "evasion": r.evasion,
                "at_fpr_1pct": {
                    "detected": r.detected_at_1pct(),
                    "detected_under_attack": (0..budgets.len())
                        .map(|k| json!({
                            "budget": budgets[k], "detected": r.detected_under_attack(k)
                        }))
                        .collect::<Vec<_>>(),
                },
                "budget_detection": r.detection,
            })
        })
        .collect();
    json!({ "models": models })
}

/// Writes `out_dir/summary.json` and the evasion plot; returns the plot's path.
pub fn write_spamassassin_outputs(
    rows: &[SpamAssassinRow],
    budgets: &[usize],
    out_dir: &Path,
) -> Result<PathBuf> {
    attack::write_json(&out_dir.join("summary.json"), &summary_json(rows, budgets))?;
    let plot = out_dir.join("evasion.png");
    let runs: Vec<(String, Vec<BudgetResult>)> = rows
        .iter()
        .map(|r| (r.name.to_string(), r.evasion.clone()))
        .collect();
    attack::plot_curves(
        &runs,
        "Greedy feature-addition attack, SpamAssassin *-2",
        &plot,
    )?;
    Ok(plot)
}

/// Spambase split 80/20, stratified.
pub struct Spambase {
    /// Rows and features of the whole file.
    pub rows: usize,
    pub features: usize,
    pub train: Dataset,
    pub test: Dataset,
}

/// Reads the Spambase CSV (label column `type`, positive `spam`) and splits it.
pub fn load_spambase(path: &Path, seed: u64) -> Result<Spambase> {
    let opts = LoadOptions {
        label_column: Some("type".into()),
        positive: Some("spam".into()),
        require_labels: true,
        ..Default::default()
    };
    let all = data::load(path, &opts)?;
    let (tr, te) = split::stratified_split(&all, 0.2, seed)?;
    Ok(Spambase {
        rows: all.rows(),
        features: all.x.cols(),
        train: split::subset(&all, &tr),
        test: split::subset(&all, &te),
    })
}

/// One Spambase model's numbers.
pub struct SpambaseRow {
    pub name: &'static str,
    pub auc: f64,
    pub accuracy: f64,
    pub tpr1: f64,
    /// Negative weights in all kernels (skip connection included).
    pub negative: usize,
    pub certified: bool,
}

/// Trains model `name` with `preset`, saves it as `out_dir/spambase-<name>.safetensors`,
/// evaluates and certifies it.
pub fn spambase_model(
    name: &'static str,
    preset: Preset,
    data: &Spambase,
    seed: u64,
    out_dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<SpambaseRow> {
    let fitted = fit(&options(preset, seed), &data.train, None, progress)?;
    let model = &fitted.model;
    crate::model::io::save(model, &out_dir.join(format!("spambase-{name}.safetensors")))?;
    let logits = model.logits(&data.test.x);
    let y = data.test.y.as_ref().expect("loaded with labels");
    let m = &label_metrics(model, &logits, y)[0];
    let negative = model
        .mlp
        .layers
        .iter()
        .chain(&model.mlp.skip)
        .map(|l| l.weight.iter().filter(|&&w| w < 0.0).count())
        .sum();
    Ok(SpambaseRow {
        name,
        auc: m.auc.unwrap_or(f64::NAN),
        accuracy: m.accuracy,
        tpr1: m.tpr_at_fpr_1pct.unwrap_or(f64::NAN),
        negative,
        certified: crate::certify::certify(model, None).certified,
    })
}
