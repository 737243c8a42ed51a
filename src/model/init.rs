//! PyTorch's default initialisation, drawn from wgrnn's own seeded RNG:
//! nn.Embedding ~ N(0, 1); nn.RNN ~ U(-1/√H, 1/√H); nn.Linear ~ U(-1/√fan_in, 1/√fan_in).

use super::config::ModelConfig;
use super::layout::{ParamLayout, EMBEDDING, HEAD_BIAS, HEAD_WEIGHT};
use crate::rng::Rng;

/// Fresh weights for `config`, as the flat parameter vector of `ParamLayout::new(config)`.
pub fn init_params(config: &ModelConfig, seed: u64) -> Vec<f32> {
    let layout = ParamLayout::new(config);
    let mut rng = Rng::new(seed);
    let mut params = vec![0f32; layout.total];
    let rnn_bound = 1.0 / (config.hidden as f64).sqrt();
    let head_bound = 1.0 / (config.hidden as f64).sqrt();
    for t in &layout.tensors {
        for v in &mut params[t.range()] {
            *v = match t.name {
                EMBEDDING => rng.normal(),
                HEAD_WEIGHT | HEAD_BIAS => rng.uniform(-head_bound, head_bound),
                _ => rng.uniform(-rnn_bound, rnn_bound),
            } as f32;
        }
    }
    params
}
