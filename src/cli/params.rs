//! `wgrnn params`: each tensor's PyTorch name, shape and size, and the total.

use super::args::ModelArgs;
use anyhow::Result;
use wgrnn::model::ParamLayout;

pub fn run(model: &ModelArgs) -> Result<()> {
    let config = model.config(None, None)?;
    let layout = ParamLayout::new(&config);
    let width = layout
        .tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0);
    for t in &layout.tensors {
        let shape = format!("{:?}", t.shape);
        println!("{:<width$}  {shape:<14} {:>10}", t.name, t.len());
    }
    println!("trainable parameters: {}", layout.total);
    Ok(())
}
