//! Optimizers with PyTorch's update rules (checked step by step against fixtures written
//! by torch in `tests/parity.rs`), and learning-rate schedules.
//!
//! - `sgd`: `g += wd*p; buf = momentum*buf + g; g = nesterov ? g + momentum*buf : buf;
//!   p -= lr*g` (the buffer starts at zero, which equals torch's first-step clone).
//! - `adam`: coupled L2 (`g += wd*p`), `m += (1-b1)(g-m)`, `v = b2 v + (1-b2) g^2`,
//!   `p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)`.
//! - `adamw`: decoupled decay `p *= 1 - lr*wd`, then Adam without L2.
//!
//! Rows of a sparse first layer are updated lazily: only the rows of features active in
//! the batch take a step (their moments too), with the global step count in the bias
//! correction, as PyTorch's `SparseAdam`; weight decay then also touches active rows only.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl OptimizerConfig {
    /// The same optimizer with no weight decay (reparametrised rows decay the effective
    /// weight through their gradient instead).
    pub fn without_weight_decay(&self) -> Self {
        OptimizerConfig {
            weight_decay: 0.0,
            ..self.clone()
        }
    }

    pub fn new(kind: OptimizerKind, lr: f32) -> Self {
        OptimizerConfig {
            kind,
            lr,
            momentum: 0.0,
            nesterov: false,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// Checks the values; errors name each value's option by its field (the command line
    /// turns "the `lr` option" into its flag).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::invalid(what.to_string()));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(&format!(
                "the learning rate (the `lr` option) must be a positive number, got {}",
                self.lr
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(&format!(
                "the momentum (the `momentum` option) must be in [0, 1), got {}",
                self.momentum
            ));
        }
        if self.nesterov && (self.kind != OptimizerKind::Sgd || self.momentum == 0.0) {
            return bad("Nesterov momentum (the `nesterov` option) needs SGD with a momentum > 0");
        }
        for (name, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return bad(&format!("the `{name}` option must be in [0, 1), got {v}"));
            }
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return bad(&format!(
                "the `eps` option must be a positive number, got {}",
                self.eps
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(&format!(
                "the weight decay (the `weight_decay` option) must be >= 0, got {}",
                self.weight_decay
            ));
        }
        Ok(())
    }

    /// Whether the optimizer keeps a first (momentum) and a second moment.
    pub fn slots(&self) -> (bool, bool) {
        match self.kind {
            OptimizerKind::Sgd => (self.momentum > 0.0, false),
            _ => (true, true),
        }
    }

    /// Per-step scalars that do not depend on the element.
    pub fn step_scalars(&self, lr: f32, t: u64) -> StepScalars {
        let bc1 = 1.0 - (self.beta1 as f64).powi(t as i32);
        let bc2 = 1.0 - (self.beta2 as f64).powi(t as i32);
        StepScalars {
            lr,
            step_size: (lr as f64 / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
        }
    }

    /// Updates parameters `p` with gradient `g` and state slots `m` (momentum buffer or
    /// first moment) and `v` (second moment), elementwise. Call it through
    /// `kernels::optimizer_update`, which compiles it for wide vector units.
    #[inline(always)]
    pub fn update(&self, s: &StepScalars, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let wd = self.weight_decay;
        match self.kind {
            OptimizerKind::Sgd => {
                let mu = self.momentum;
                if mu == 0.0 {
                    for (p, &g) in p.iter_mut().zip(g) {
                        let g = if wd != 0.0 { g + wd * *p } else { g };
                        *p -= s.lr * g;
                    }
                } else {
                    for ((p, &g), b) in p.iter_mut().zip(g).zip(m.iter_mut()) {
                        let g = if wd != 0.0 { g + wd * *p } else { g };
                        *b = mu * *b + g;
                        let d = if self.nesterov { g + mu * *b } else { *b };
                        *p -= s.lr * d;
                    }
                }
            }
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                let decoupled = self.kind == OptimizerKind::Adamw;
                let (b1c, b2, b2c) = (1.0 - self.beta1, self.beta2, 1.0 - self.beta2);
                let decay = 1.0 - s.lr * wd;
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    let g = if decoupled {
                        *p *= decay;
                        g
                    } else if wd != 0.0 {
                        g + wd * *p
                    } else {
                        g
                    };
                    *m += b1c * (g - *m);
                    *v = *v * b2 + b2c * g * g;
                    let denom = v.sqrt() / s.bc2_sqrt + self.eps;
                    *p += (-s.step_size * *m) / denom; // torch addcdiv order
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct StepScalars {
    pub lr: f32,
    step_size: f32,
    bc2_sqrt: f32,
}

/// Learning rate over training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `every_epochs` epochs.
    Step {
        every_epochs: usize,
        gamma: f32,
    },
    /// Cosine decay from the base rate to `min_lr` over all steps.
    Cosine {
        min_lr: f32,
    },
}

impl Schedule {
    /// The rate at `step` (0-based) of `total_steps`, in epoch `epoch` (0-based).
    pub fn lr(&self, base: f32, epoch: usize, step: u64, total_steps: u64) -> f32 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step {
                every_epochs,
                gamma,
            } => base * gamma.powi((epoch / every_epochs.max(1)) as i32),
            Schedule::Cosine { min_lr } => {
                let t = step as f64 / total_steps.max(1) as f64;
                (min_lr as f64
                    + 0.5 * (base - min_lr) as f64 * (1.0 + (std::f64::consts::PI * t).cos()))
                    as f32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_decay_as_documented() {
        let s = Schedule::Step {
            every_epochs: 2,
            gamma: 0.5,
        };
        assert_eq!(s.lr(1.0, 0, 0, 10), 1.0);
        assert_eq!(s.lr(1.0, 3, 0, 10), 0.5);
        assert_eq!(s.lr(1.0, 4, 0, 10), 0.25);
        let c = Schedule::Cosine { min_lr: 0.0 };
        assert_eq!(c.lr(1.0, 0, 0, 100), 1.0);
        assert!((c.lr(1.0, 0, 50, 100) - 0.5).abs() < 1e-6);
        assert!(c.lr(1.0, 0, 100, 100).abs() < 1e-6);
    }

    #[test]
    fn adam_first_step_moves_each_weight_by_about_lr() {
        let cfg = OptimizerConfig::new(OptimizerKind::Adam, 0.01);
        let s = cfg.step_scalars(0.01, 1);
        let mut p = vec![1.0, -1.0, 0.5];
        let g = vec![0.3, -2.0, 1e-3];
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        cfg.update(&s, &mut p, &g, &mut m, &mut v);
        for (after, before) in p.iter().zip([1.0f32, -1.0, 0.5]) {
            assert!(((before - after).abs() - 0.01).abs() < 1e-4);
        }
    }

    #[test]
    fn sgd_momentum_and_nesterov_follow_torch_rules() {
        let mut cfg = OptimizerConfig::new(OptimizerKind::Sgd, 0.1);
        cfg.momentum = 0.9;
        let s = cfg.step_scalars(0.1, 1);
        let (mut p, mut b) = (vec![0.0f32], vec![0.0f32]);
        cfg.update(&s, &mut p, &[1.0], &mut b, &mut []);
        cfg.update(&s, &mut p, &[1.0], &mut b, &mut []);
        // buf: 1, then 1.9; p = -0.1 - 0.19
        assert!((p[0] + 0.29).abs() < 1e-6);
        cfg.nesterov = true;
        let (mut p, mut b) = (vec![0.0f32], vec![0.0f32]);
        cfg.update(&s, &mut p, &[1.0], &mut b, &mut []);
        // buf 1, step g + 0.9*buf = 1.9
        assert!((p[0] + 0.19).abs() < 1e-6);
    }
}
