//! What `train --robust-budget` asks for: the budgets, the loss's mix and the warm-up.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// What `train --robust-budget` asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobustConfig {
    /// Additions the bound holds against (K, the largest when several); 0 turns verified
    /// training off.
    pub budget: usize,
    /// Smaller budgets trained at once with `budget` (`--robust-budget 20,50,150`): the
    /// robust loss is the mean of the bound's loss at each budget. Empty: `budget` alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smaller_budgets: Vec<usize>,
    /// Weight `w` of the bound's loss on positives: `(1 - w) clean + w robust`; 0: off.
    pub weight: f32,
    /// Epochs over which K and `w` rise linearly from 0 (0: full from the first step).
    pub warmup_epochs: usize,
    /// CROWN-IBP's share `beta` of the bound, `beta crown_ibp + (1 - beta) ibp`, after the
    /// warm-up; during it `beta` falls linearly from 1 (Zhang et al. 2020). 0: IBP only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub crown: f32,
    /// Per-row budgets (`--robust-length N`): a positive with `n` present features trains
    /// at `ceil(K n / N)` additions (each budget alike); 0: K for every row.
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub length: usize,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

fn is_zero_usize(v: &usize) -> bool {
    *v == 0
}

/// The budgets of one training step (ramped), and the row length they hold for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepBudgets {
    pub k: Vec<usize>,
    /// [`RobustConfig::length`].
    pub length: usize,
}

impl StepBudgets {
    /// The budget `k` for a row with `present` features.
    pub fn of_row(&self, k: usize, present: usize) -> usize {
        match self.length {
            0 => k,
            n => (k * present).div_ceil(n),
        }
    }
}

impl RobustConfig {
    /// Default `w` (chosen on validation data: docs/verified-training.md).
    pub const DEFAULT_WEIGHT: f32 = 0.5;
    /// Default warm-up in epochs (chosen on validation data: docs/verified-training.md).
    pub const DEFAULT_WARMUP: usize = 2;

    pub fn new(budget: usize) -> Self {
        RobustConfig {
            budget,
            smaller_budgets: Vec::new(),
            weight: Self::DEFAULT_WEIGHT,
            warmup_epochs: Self::DEFAULT_WARMUP,
            crown: 0.0,
            length: 0,
        }
    }

    /// Verified training at every budget of `budgets` (in any order, repeats ignored): the
    /// largest is `budget`, the others `smaller_budgets`; a 0 is only allowed alone (off).
    pub fn with_budgets(budgets: &[usize]) -> Result<Self> {
        let mut b = budgets.to_vec();
        b.sort_unstable();
        b.dedup();
        let budget = b
            .pop()
            .ok_or_else(|| Error::invalid("no robust budget given"))?;
        if b.first() == Some(&0) {
            return Err(Error::invalid(format!(
                "robust budgets must be at least 1 when several are given, got {budgets:?}"
            )));
        }
        Ok(RobustConfig {
            smaller_budgets: b,
            ..Self::new(budget)
        })
    }

    /// Every budget trained at, ascending.
    pub fn budgets(&self) -> Vec<usize> {
        let mut b = self.smaller_budgets.clone();
        b.push(self.budget);
        b
    }

    /// Whether it changes training at all.
    pub fn active(&self) -> bool {
        self.budget > 0 && self.weight > 0.0
    }

    /// Checks the values, and that the bound exists for a network with these `hidden`
    /// units of activation `act`.
    pub fn validate(&self, hidden: &[usize], act: crate::model::Activation) -> Result<()> {
        for (what, v) in [
            ("robust loss weight", self.weight),
            ("CROWN-IBP share", self.crown),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::invalid(format!(
                    "the {what} must be in [0, 1], got {v}"
                )));
            }
        }
        if self.crown > 0.0 && self.active() {
            super::crown::supported(hidden, act)?;
        }
        Ok(())
    }

    /// Every K, `w` and CROWN-IBP's share after `done` of the warm-up's steps (a fraction,
    /// capped at 1): each K and `w` rise linearly (K rounded up), the share falls from 1.
    pub fn ramped(&self, done: f32) -> (StepBudgets, f32, f32) {
        let f = done.clamp(0.0, 1.0);
        let beta = match self.crown > 0.0 {
            true => 1.0 - (1.0 - self.crown) * f,
            false => 0.0,
        };
        let k = self.budgets().into_iter();
        let k = k.map(|b| (b as f32 * f).ceil() as usize).collect();
        let budgets = StepBudgets {
            k,
            length: self.length,
        };
        (budgets, self.weight * f, beta)
    }
}
