//! A synthetic task for tests and the soak benchmark: delayed echo. Each step's target is
//! the token seen `delay` steps earlier (class 0 before that), so the model must carry
//! memory through its hidden state, across chunk boundaries too.

use super::{Dataset, Inputs, Targets};
use crate::rng::Rng;

#[derive(Clone, Copy, Debug)]
pub struct DelayedEcho {
    pub sequences: usize,
    pub steps: usize,
    pub vocab: usize,
    pub delay: usize,
}

impl Default for DelayedEcho {
    fn default() -> Self {
        Self {
            sequences: 512,
            steps: 32,
            vocab: 10,
            delay: 5,
        }
    }
}

pub fn delayed_echo(task: &DelayedEcho, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let (n, t) = (task.sequences, task.steps);
    let ids: Vec<u32> = (0..n * t).map(|_| rng.below(task.vocab) as u32).collect();
    let mut targets = vec![0u32; n * t];
    for s in 0..n {
        for step in task.delay..t {
            targets[s * t + step] = ids[s * t + step - task.delay];
        }
    }
    Dataset {
        n,
        steps: t,
        lengths: vec![t; n],
        inputs: Inputs::Tokens { ids },
        targets: Targets::Classes {
            ids: targets,
            per_step: true,
        },
    }
}
