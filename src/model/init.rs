//! PyTorch's default initialisation, drawn from wgrnn's own seeded RNG:
//! nn.Embedding ~ N(0, 1); nn.RNN, nn.LSTM, nn.GRU ~ U(-1/√H, 1/√H);
//! nn.Linear ~ U(-1/√fan_in, 1/√fan_in).

use super::config::{Cell, ModelConfig};
use super::layout::{ParamLayout, Unit, EMBEDDING, HEAD_BIAS, HEAD_WEIGHT};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Fresh weights for `config`, as the flat parameter vector of `ParamLayout::new(config)`.
pub fn init_params(config: &ModelConfig, seed: u64) -> Vec<f32> {
    let layout = ParamLayout::new(config);
    let mut rng = Rng::new(seed);
    let mut params = vec![0f32; layout.total];
    let rnn_bound = 1.0 / (config.hidden as f64).sqrt();
    let head_bound = 1.0 / (config.output_width() as f64).sqrt();
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

/// Sets an LSTM's forget-gate bias to `value` (`--forget-bias`, off by default for PyTorch
/// parity): in every layer and direction `bias_ih[H..2H] = value` and `bias_hh[H..2H] = 0`,
/// so the gate's total bias is `value`. Errors for the other cells, which have no forget gate.
pub fn set_forget_bias(config: &ModelConfig, params: &mut [f32], value: f32) -> Result<()> {
    if config.cell != Cell::Lstm {
        return Err(Error::Config(format!(
            "--forget-bias applies to the lstm cell; {} has no forget gate",
            config.cell
        )));
    }
    let layout = ParamLayout::new(config);
    let h = config.hidden;
    for unit in Unit::all(config) {
        let offsets = layout.unit(unit);
        params[offsets.bias_ih + h..offsets.bias_ih + 2 * h].fill(value);
        params[offsets.bias_hh + h..offsets.bias_hh + 2 * h].fill(0.0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Activation, InputKind, Loss, OutputActivation, Pool, TaskKind, BIAS_HH, BIAS_IH,
    };

    #[test]
    fn forget_bias_sets_only_the_lstm_forget_block() {
        let mut config = ModelConfig {
            cell: Cell::Lstm,
            layers: 1,
            bidirectional: false,
            input: InputKind::Dense { size: 3 },
            hidden: 5,
            output_size: 2,
            activation: Activation::Tanh,
            output_activation: OutputActivation::Identity,
            task: TaskKind::ManyToMany,
            pool: Pool::Last,
            loss: Loss::Mse,
        };
        let fresh = init_params(&config, 7);
        let mut params = fresh.clone();
        set_forget_bias(&config, &mut params, 1.0).unwrap();
        let layout = ParamLayout::new(&config);
        let (ih, hh) = (layout.offset(BIAS_IH), layout.offset(BIAS_HH));
        for (i, (&now, &before)) in params.iter().zip(&fresh).enumerate() {
            let want = if (ih + 5..ih + 10).contains(&i) {
                1.0
            } else if (hh + 5..hh + 10).contains(&i) {
                0.0
            } else {
                before
            };
            assert_eq!(now, want, "parameter {i}");
        }
        config.cell = Cell::Gru;
        assert!(set_forget_bias(&config, &mut params, 1.0).is_err());
    }
}
