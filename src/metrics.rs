//! How a task's loss and metric are reported to people.

use crate::model::Loss;
use crate::train::Evaluation;

/// What the numbers mean for the task at hand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetricStyle {
    /// Class accuracy beside the loss (tagging, classification).
    Classification,
    /// Cross-entropy per token, perplexity and bits per character.
    LanguageModel,
    /// MSE and MAE, multiplied back into the target's original units by `scale`
    /// (the standard deviation used to normalise it; 1 when not normalised).
    Regression { scale: f64 },
}

impl MetricStyle {
    /// The style that fits `loss` when the task says nothing more.
    pub fn for_loss(loss: Loss) -> Self {
        match loss {
            Loss::CrossEntropy | Loss::Bce => MetricStyle::Classification,
            Loss::Mse | Loss::Mae => MetricStyle::Regression { scale: 1.0 },
        }
    }

    /// Named values of an evaluation, e.g. `[("loss", 0.31), ("accuracy", 0.912)]`.
    pub fn values(&self, loss: Loss, e: &Evaluation) -> Vec<(&'static str, f64)> {
        match self {
            MetricStyle::Classification => vec![("loss", e.loss), ("accuracy", e.metric)],
            MetricStyle::LanguageModel => vec![
                ("loss", e.loss),
                ("perplexity", e.loss.exp()),
                ("bits_per_char", e.loss / std::f64::consts::LN_2),
                ("accuracy", e.metric),
            ],
            MetricStyle::Regression { scale } => {
                let (mse, mae) = match loss {
                    Loss::Mae => (e.metric, e.loss),
                    _ => (e.loss, e.metric),
                };
                vec![
                    ("loss", e.loss),
                    ("mse", mse * scale * scale),
                    ("mae", mae * scale),
                ]
            }
        }
    }

    /// One line for people, e.g. `loss 0.3100  accuracy 91.20%`.
    pub fn describe(&self, loss: Loss, e: &Evaluation) -> String {
        self.values(loss, e)
            .into_iter()
            .map(|(name, v)| match name {
                "accuracy" => format!("accuracy {:.2}%", 100.0 * v),
                "loss" => format!("loss {v:.6}"),
                _ => format!("{} {v:.4}", name.replace('_', " ")),
            })
            .collect::<Vec<_>>()
            .join("  ")
    }
}
